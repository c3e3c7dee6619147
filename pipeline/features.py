"""Shared features: the claims, stays and enriched charge-line tables, derived once per run.

Each ``sql/features/NN_<name>.sql`` is a SELECT over the canonical views (and the
features before it, in file order). :func:`build` materialises them as Parquet in the
run's work folder; :func:`attach` exposes them as views named ``<name>`` on a screening
connection: the materialised files when they were built from the lake as it is now,
otherwise the SQL itself (computed on the fly: correct, only slower).
"""
from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import duckdb

from pipeline import lake
from pipeline.lake import ALL, FEATURES_DIR, Shard, sql_literal
from pipeline.settings import Settings


def feature_files() -> list[tuple[str, Path]]:
    """(name, sql file) pairs in build order."""
    out = []
    for p in sorted(FEATURES_DIR.glob("*.sql")):
        name = p.stem.split("_", 1)[1] if p.stem[:2].isdigit() else p.stem
        out.append((name, p))
    return out


def run_dir(settings: Settings, run_date: str, shard: Shard = ALL) -> Path:
    return settings.work_dir / str(run_date) / shard.tag


def _lake_state(settings: Settings, run_date: str) -> dict:
    """What the features depend on: every ingested extract up to the run date."""
    state = {}
    for d in lake.ingested_dates(settings):
        if d <= run_date:
            entry = json.loads((lake.extract_dir(settings, d) / "_INGESTED.json").read_text())
            state[d] = entry.get("manifest_sha256")
    return state


def is_fresh(settings: Settings, run_date: str, shard: Shard = ALL) -> bool:
    """True when the materialised features match the lake as it is now."""
    state_file = run_dir(settings, str(run_date), shard) / "features" / "_STATE.json"
    if not state_file.exists():
        return False
    saved = json.loads(state_file.read_text())
    names = {n for n, _ in feature_files()}
    return saved.get("lake") == _lake_state(settings, str(run_date)) and set(saved.get("rows", {})) == names


def build(settings: Settings, run_date: str, shard: Shard = ALL, force: bool = False) -> dict:
    """Materialise every feature table for (run_date, shard); returns row counts.

    Skipped (returning the saved counts) when the features are already fresh."""
    run_date = str(run_date)
    target = run_dir(settings, run_date, shard) / "features"
    if not force and is_fresh(settings, run_date, shard):
        return json.loads((target / "_STATE.json").read_text())["rows"]
    tmp = target.with_name(f".features-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    con = lake.open_screening(settings, run_date, shard, features=False)
    counts = {}
    try:
        for name, path in feature_files():
            out = tmp / f"{name}.parquet"
            con.execute(f"COPY ({path.read_text(encoding='utf-8')}) TO {sql_literal(out)} "
                        f"(FORMAT parquet, COMPRESSION zstd)")
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS "
                        f"SELECT * FROM read_parquet({sql_literal(out)})")
            counts[name] = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
        (tmp / "_STATE.json").write_text(json.dumps(
            {"lake": _lake_state(settings, run_date), "rows": counts}, indent=1))
    finally:
        con.close()
    old = target.with_name(f".old-{uuid.uuid4().hex[:8]}")
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return counts


def attach(con: duckdb.DuckDBPyConnection, settings: Settings, run_date: str,
           shard: Shard = ALL) -> bool:
    """Create the feature views on con; True when materialised files were used."""
    folder = run_dir(settings, str(run_date), shard) / "features"
    fresh = is_fresh(settings, run_date, shard)
    for name, path in feature_files():
        f = folder / f"{name}.parquet"
        if fresh and f.exists():
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS "
                        f"SELECT * FROM read_parquet({sql_literal(f)})")
        else:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {path.read_text(encoding='utf-8')}")
    return fresh
