"""Rank: turn the detectors' findings into the three published tables (sql/rank.sql)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow as pa

from pipeline import dismiss, features, lake, registry, terminal
from pipeline.detect import FINDINGS_SCHEMA, RINGS_SCHEMA, findings_dir
from pipeline.lake import ALL, SQL_DIR, Shard, sql_literal
from pipeline.settings import Settings

RANKED_TABLES = ("institutions", "findings", "rings")


def ranked_dir(settings: Settings, run_date: str, shard: Shard = ALL) -> Path:
    return features.run_dir(settings, str(run_date), shard) / "ranked"


def previous_run(settings: Settings, run_date: str) -> Path | None:
    """The newest published run strictly before run_date (its findings carry first_seen)."""
    root = settings.publish_dir
    if not root.exists():
        return None
    dates = sorted(p.name for p in root.iterdir()
                   if not p.name.startswith(".") and p.name < str(run_date)
                   and (p / "_MANIFEST.json").exists())
    return root / dates[-1] if dates else None


def _relation(files: list[Path], schema: pa.Schema) -> str:
    if files:
        return "SELECT * FROM read_parquet([" + ", ".join(sql_literal(f) for f in files) + "])"
    return lake._empty_relation_sql(schema, with_extract_date=False)


def rank(settings: Settings, run_date: str, detector_ids: list[str],
         shard: Shard = ALL) -> dict:
    """Rank institutions for run_date from the findings files of detector_ids."""
    run_date = str(run_date)
    fdir = findings_dir(settings, run_date, shard)
    missing = [d for d in detector_ids if not (fdir / f"{d}.parquet").exists()]
    if missing:
        raise FileNotFoundError(f"no findings for {missing} on {run_date}: run detect first")
    out = ranked_dir(settings, run_date, shard)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    con = lake.open_screening(settings, run_date, shard)
    try:
        dismissed = dismiss.files(settings)
        con.execute("CREATE TEMP VIEW dismissals AS " + _relation(dismissed, dismiss.SCHEMA))
        # a dismissal dated on or before the run date closes the finding
        con.execute("CREATE TEMP VIEW raw_findings AS SELECT * FROM (" + _relation(
            [fdir / f"{d}.parquet" for d in detector_ids], FINDINGS_SCHEMA) + ") AS f "
            "WHERE NOT EXISTS (SELECT 1 FROM dismissals AS x, run_context AS rc "
            "WHERE x.finding_id = f.finding_id AND x.dismissed_on <= rc.run_date)")
        con.execute("CREATE TEMP VIEW raw_rings AS " + _relation(
            [p for d in detector_ids if (p := fdir / f"{d}.rings.parquet").exists()], RINGS_SCHEMA))
        prev = previous_run(settings, run_date)
        con.execute("CREATE TEMP VIEW prior_findings AS " + (
            f"SELECT finding_id, first_seen FROM read_parquet({sql_literal(prev / 'findings.parquet')})"
            if prev else "SELECT CAST(NULL AS VARCHAR) AS finding_id, CAST(NULL AS DATE) AS first_seen WHERE false"))
        meta = pa.table({"detector_id": [d.id for d in registry.all_detectors()],
                         "severity": [d.severity for d in registry.all_detectors()],
                         "judgement": [d.judgement for d in registry.all_detectors()]})
        con.register("detector_meta", meta)
        con.execute((SQL_DIR / "rank.sql").read_text(encoding="utf-8"))
        counts = {}
        for name, query in (
            ("institutions", "SELECT * FROM ranked_institutions ORDER BY rank, institution_id"),
            ("findings", "SELECT * FROM ranked_findings ORDER BY detector_id, finding_id"),
            ("rings", "SELECT * FROM raw_rings ORDER BY ring_id, member_type, member_id"),
        ):
            counts[name] = _write(con, query, out / f"{name}.parquet")
        (out / "_RANKED.json").write_text(json.dumps(
            {"run_date": run_date, "detectors": detector_ids, "rows": counts,
             "previous_run": prev.name if prev else None}, indent=1))
        terminal.log.info("%s rank: %s institutions, %s findings, %s ring members (%.1fs)", run_date,
                          *(f"{counts[k]:,}" for k in RANKED_TABLES), time.perf_counter() - t0)
        return counts
    finally:
        con.close()


def _write(con, query: str, path: Path) -> int:
    tmp = path.with_name("." + path.name + ".tmp")
    con.execute(f"COPY ({query}) TO {sql_literal(tmp)} (FORMAT parquet, COMPRESSION zstd)")
    tmp.replace(path)
    return con.execute(f"SELECT count(*) FROM read_parquet({sql_literal(path)})").fetchone()[0]
