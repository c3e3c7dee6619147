"""``claimscreen demo``: a synthetic month through the whole pipeline, night by night.

Everything goes under ``<data_dir>/demo/`` (landing, truth, lake, work, published), which
the demo clears first: it never touches a real lake or real published runs.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import duckdb

from pipeline import ingest, registry, screen, synth, validate
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
    for d in nights:
        r = ingest.ingest_one(s, s.landing_dir, d)
        validate.validate(s, d)
        published = screen.screen(s, d)
        say(f"  {d}: {r.status}, validated, screened -> {published}")
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


def print_summary(run: Path, run_date: str) -> None:
    con = duckdb.connect()
    inst = sql_literal(run / "institutions.parquet")
    fnd = sql_literal(run / "findings.parquet")
    n_inst, n_flagged = con.execute(
        f"SELECT count(*), count(*) FILTER (n_findings > 0) FROM read_parquet({inst})").fetchone()
    print(f"Screening run {run_date}: {n_inst} institutions screened, {n_flagged} with findings")
    names = {d.id: d.label for d in registry.all_detectors()}
    print("Findings by detector / 按规则统计:")
    for det, n, amt, new in con.execute(
            f"SELECT detector_id, count(*), sum(amount_at_risk), count(*) FILTER (first_seen = run_date) "
            f"FROM read_parquet({fnd}) GROUP BY 1 ORDER BY 1").fetchall():
        print(f"  {names.get(det, det):48s} {n:6d} findings ({new} new tonight)  at risk {amt:>12,.2f}")
    print("Top 10 institutions / 机构疑点排名前十:")
    for rank, iid, score, amt, n, top in con.execute(
            f"SELECT rank, institution_id, score, amount_at_risk, n_findings, array_to_string(top_detectors, ', ') "
            f"FROM read_parquet({inst}) ORDER BY rank, institution_id LIMIT 10").fetchall():
        print(f"  {rank:3d}. {iid}  score {score:8.2f}  at risk {amt:>11,.2f}  {n:4d} findings  [{top}]")
    con.close()
