"""Benchmark: ingest, validation and screening at a given scale, against a bare DuckDB scan.

    python bench/bench.py --scale 10 --days 30          # ~4.6M charge lines
    python bench/bench.py --scale 22 --days 30 --memory-limit 4GB     # ~10M
    python bench/bench.py --out /data/b100 --reuse-lake --memory-limit 4GB   # a lake you landed

Each stage runs in its own process, so its wall time and peak RSS are its own
(``os.wait4`` rusage). Two bare scans of the same Parquet files are the yardstick:
``bare_scan`` reads every column of both fact tables once (a count of each column), the
floor any screening of those files pays; ``bare_scan_narrow`` reads three columns of the
charge lines (count, two sums, distinct settlements), the cheapest query over them.

``rule_library`` is the red-line rule library alone (the features its rules read, then
its rules, in one process); ``features`` + ``detect`` are every feature and all detectors
(rules, models, graph); ``rank_publish`` ranks, renders the reports and publishes.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STAGES = {
    "generate": "from pipeline import synth; synth.generate(Path(a.out), days=a.days, scale=a.scale, seed=a.seed)",
    "bare_scan": (
        "from pipeline import lake; con = lake.connect(S)\n"
        "for t in ('settlements', 'settlement_items'):\n"
        "    files = [p.as_posix() for p in lake.lake_files(S, t)]\n"
        "    cols = [r[0] for r in con.execute('DESCRIBE SELECT * FROM read_parquet($f)', {'f': files}).fetchall()]\n"
        "    print(t, con.execute('SELECT count(*), ' + ', '.join(f'count(\"{c}\")' for c in cols)\n"
        "                         + ' FROM read_parquet($f)', {'f': files}).fetchall()[0][:3])"),
    "bare_scan_narrow": (
        "from pipeline import lake; con = lake.connect(S); "
        "files = [p.as_posix() for p in lake.lake_files(S, 'settlement_items')]; "
        "print(con.execute('SELECT count(*), sum(amount), sum(quantity), count(DISTINCT settlement_id) '"
        "'FROM read_parquet($f)', {'f': files}).fetchall())"),
    "ingest": "from pipeline import ingest; ingest.ingest(S, S.landing_dir)",
    "validate": "from pipeline import validate, ingest; [validate.validate(S, d) for d in ingest.landed_dates(S.landing_dir)]",
    "rule_library": (
        "import json, time; from pipeline import detect, features, lake, registry\n"
        "from pipeline.rules_config import load_rules\n"
        "d = lake.ingested_dates(S)[-1]; rules = load_rules(S.rules_file)\n"
        "dets = [x for x in detect.selected_detectors(rules) if x.family in ('policy', 'management', 'medical')]\n"
        "t0 = time.perf_counter(); rows = features.build(S, d, force=True, names=features.needed_by(dets))\n"
        "t1 = time.perf_counter(); stats = detect.detect(S, d, [x.id for x in dets], rules=rules)\n"
        "print(json.dumps({'features_s': round(t1 - t0, 2), 'rules_s': round(time.perf_counter() - t1, 2), "
        "'rules': len(dets), 'features': sorted(rows), 'findings': sum(x['findings'] for x in stats)}))"),
    "features": "from pipeline import features, lake; features.build(S, lake.ingested_dates(S)[-1], force=True)",
    "detect": "from pipeline import detect, lake; detect.detect(S, lake.ingested_dates(S)[-1])",
    "rank_publish": "from pipeline import screen, lake; screen.screen(S, lake.ingested_dates(S)[-1])",
}


def run_stage(name: str, a) -> dict:
    code = ("import sys; from pathlib import Path; sys.path.insert(0, %r)\n"
            "from pipeline.settings import load_settings\n"
            "import argparse; a = argparse.Namespace(**%r)\n"
            "S = load_settings(data_dir=Path(a.out), duckdb_memory_limit=a.memory_limit, duckdb_threads=a.threads)\n"
            % (str(ROOT), vars(a))) + STAGES[name]
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    out, err = p.stdout.read().decode(), p.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stage {name} failed:\n{err[-3000:]}")
    return {"stage": name, "wall_s": round(wall, 2), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
            "peak_rss_mb": round(ru.ru_maxrss / 1024, 1), "out": out.strip()[-200:]}


def count_lines(out: Path) -> int:
    import duckdb
    files = [p.as_posix() for p in (out / "lake" / "extracts").glob("*/settlement_items/*.parquet")]
    return duckdb.connect().execute("SELECT count(*) FROM read_parquet($f)", {"f": files}).fetchall()[0][0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=10)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"))
    ap.add_argument("--memory-limit", default="4GB")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="reuse generated data in --out")
    ap.add_argument("--reuse-lake", action="store_true",
                    help="screen the lake already in --out (no generate, ingest or validate)")
    ap.add_argument("--stages", help="comma-separated subset of the screening stages to run")
    a = ap.parse_args()
    out = Path(a.out)
    results = []
    stages = ["ingest", "validate", "bare_scan", "bare_scan_narrow", "rule_library", "features", "detect",
              "rank_publish"]
    if a.reuse_lake:
        stages = stages[2:]
        for stage in ("work", "published"):
            shutil.rmtree(out / stage, ignore_errors=True)
    else:
        if not (a.keep and (out / "landing").exists()):
            shutil.rmtree(out, ignore_errors=True)
            results.append(run_stage("generate", a))
        for stage in ("lake", "work", "published"):
            shutil.rmtree(out / stage, ignore_errors=True)
    if a.stages:
        stages = [s for s in stages if s in a.stages.split(",")]
    for name in stages:
        results.append(run_stage(name, a))
        print(json.dumps(results[-1]), flush=True)
    lines = count_lines(out)
    scan = next((r for r in results if r["stage"] == "bare_scan"), {"wall_s": 0})["wall_s"] or float("nan")
    source = f"the lake in {out}" if a.reuse_lake else f"scale {a.scale}, {a.days} days"
    print(f"\n{lines:,} charge lines, {source}, memory_limit {a.memory_limit}, {a.threads} threads")
    print(f"{'stage':14s} {'wall s':>8s} {'cpu s':>8s} {'lines/s':>12s} {'peak RSS MB':>12s} {'x bare scan':>12s}")
    for r in results:
        rate = lines / r["wall_s"] if r["wall_s"] else 0
        print(f"{r['stage']:14s} {r['wall_s']:8.2f} {r['cpu_s']:8.2f} {rate:12,.0f} {r['peak_rss_mb']:12.1f} "
              f"{r['wall_s'] / scan:12.1f}")
    screening = sum(r["wall_s"] for r in results if r["stage"] in ("features", "detect", "rank_publish"))
    if screening:
        print(f"{'screening':14s} {screening:8.2f} {'':8s} {lines / screening:12,.0f} {'':12s} {screening / scan:12.1f}")
    lib = next((r for r in results if r["stage"] == "rule_library"), None)
    if lib:
        print(f"\nrule library: {lib['out']}")


if __name__ == "__main__":
    main()
