"""``claimscreen demo``: a synthetic month through the whole pipeline, night by night.

Everything goes under ``<data_dir>/demo/`` (landing, truth, lake, work, published), which
the demo clears first: it never touches a real lake or real published runs.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import duckdb

from pipeline import ingest, registry, screen, synth, terminal, validate
from pipeline.lake import sql_literal
from pipeline.settings import Settings


def main(settings: Settings, days: int = 30, scale: float = 0.5, seed: int = 7,
         start: str = "2026-10-01", quiet: bool = False) -> int:
    t0 = time.perf_counter()
    root = Path(settings.data_dir) / "demo"
    shutil.rmtree(root, ignore_errors=True)
    s = Settings(data_dir=root, rules_file=settings.rules_file, region=settings.region,
                 duckdb_memory_limit=settings.duckdb_memory_limit,
                 duckdb_threads=settings.duckdb_threads)
    say = (lambda *a: None) if quiet else print
    say(f"generating {days} days of synthetic extracts at scale {scale} (seed {seed}) ...")
    summary = synth.generate(root, days=days, scale=scale, seed=seed, start=start, fraud=True)
    t_gen = time.perf_counter() - t0
    nights = ingest.landed_dates(s.landing_dir)
    say(f"  {len(nights)} nightly extracts in {s.landing_dir} ({t_gen:.1f}s)")
    published = None
    with terminal.muted():           # one line per night here, not one per stage
        for i, d in enumerate(nights, 1):
            t_night = time.perf_counter()
            r = ingest.ingest_one(s, s.landing_dir, d)
            v = validate.validate(s, d)
            published = screen.screen(s, d)
            held = sum(sum(q.values()) for q in (v.quarantined or {}).values())
            say(f"  [{i}/{len(nights)}] {d}: {r.status} {r.rows.get('settlements', 0):,} settlements, "
                f"validated{f' ({held:,} rows quarantined)' if held else ''}, "
                f"{_findings(published):,} findings published "
                f"({time.perf_counter() - t_night:.1f}s, total {time.perf_counter() - t0:.0f}s)")
    t_all = time.perf_counter() - t0
    if published is None:
        say("nothing landed")
        return 1
    say("")
    print_summary(published, nights[-1])
    say(f"\ndemo finished in {t_all:.1f}s (generation {t_gen:.1f}s)")
    say(f"  landing:    {s.landing_dir}\n  truth:      {root / 'truth'}\n  lake:       {s.lake_dir}\n"
        f"  published:  {s.publish_dir}  (latest: {published.resolve()})\n"
        f"  overview:   {published / 'overview.html'}")
    return 0


def _money(v) -> str:
    return "-" if v is None else f"{v:,.2f}"


def _findings(run: Path) -> int:
    import pyarrow.parquet as pq
    return pq.ParquetFile(run / "findings.parquet").metadata.num_rows


def print_summary(run: Path, run_date: str) -> None:
    print(summary_text(run, run_date))


def summary_text(run: Path, run_date: str, width: int | None = None) -> str:
    """The demo's closing summary: institutions screened, findings per detector, the top
    ten institutions; tables aligned by display width (Chinese labels are two columns)."""
    con = duckdb.connect()
    inst = sql_literal(run / "institutions.parquet")
    fnd = sql_literal(run / "findings.parquet")
    idx = run / "reports" / "index.parquet"
    try:
        n_inst, n_flagged = con.execute(
            f"SELECT count(*), count(*) FILTER (n_findings > 0) FROM read_parquet({inst})").fetchone()
        names = {d.id: d.label for d in registry.all_detectors()}
        by_detector = [(names.get(det, det), n, new, _money(amt)) for det, n, new, amt in con.execute(
            f"SELECT detector_id, count(*), count(*) FILTER (first_seen = run_date), "
            f"CAST(sum(amount_at_risk) AS DOUBLE) "
            f"FROM read_parquet({fnd}) GROUP BY 1 ORDER BY 1").fetchall()]
        grade = (f"(SELECT institution_id, grade, name FROM read_parquet({sql_literal(idx)}))" if idx.exists()
                 else "(SELECT NULL::VARCHAR AS institution_id, NULL::VARCHAR AS grade, NULL::VARCHAR AS name)")
        top = con.execute(
            f"SELECT i.rank, g.grade, i.institution_id, g.name, i.score, CAST(i.amount_at_risk AS DOUBLE), "
            f"i.n_findings, array_to_string(i.top_detectors[1:3], ', ') "
            f"FROM read_parquet({inst}) AS i LEFT JOIN {grade} AS g USING (institution_id) "
            f"ORDER BY i.rank, i.institution_id LIMIT 10").fetchall()
        top = [(rank, g or "-", iid, name or "", f"{score:.3f}", _money(amt), n, rules)
               for rank, g, iid, name, score, amt, n, rules in top]
    finally:
        con.close()
    return "\n".join([
        f"Screening run {run_date}: {n_inst} institutions screened, {n_flagged} with findings "
        f"/ 筛查机构 {n_inst} 家，有疑点 {n_flagged} 家",
        terminal.table(["detector / 规则", "findings / 疑点", "new tonight / 本次新增", ("at risk / 涉及金额", "right")],
                       by_detector, title="Findings by detector / 按规则统计", width=width),
        terminal.table(["rank / 排名", "grade / 等级", "institution / 机构", "name / 名称", ("score / 评分", "right"),
                        ("at risk / 涉及金额", "right"), "findings / 疑点", "top rules / 主要规则"],
                       top, title="Top 10 institutions / 机构疑点排名前十", width=width)])
