"""Benchmark the model detectors on a screened lake: wall time and throughput per model.

    # once: a lake of ~10 million charge lines (synthetic, ingested and validated)
    python bench/models.py prepare --out /tmp/big --days 30 --scale 23
    # then one detector per process, so /usr/bin/time -v reports each one's peak RSS
    for d in false_hospitalization drug_resale card_misuse peer_outlier; do
        /usr/bin/time -v python bench/models.py run --data-dir /tmp/big/data --detector $d
    done

``run`` builds the shared features first when they are missing or stale (timed apart),
then runs the one detector through pipeline.detect exactly as a night does and prints a
JSON line: seconds, charge lines screened, lines per second, findings.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pipeline import detect, features, ingest, lake, validate
from pipeline.settings import load_settings


def prepare(args) -> None:
    from pipeline import synth
    out = Path(args.out)
    t0 = time.perf_counter()
    summary = synth.generate(out, days=args.days, scale=args.scale, seed=args.seed)
    t1 = time.perf_counter()
    st = load_settings(data_dir=out / "data")
    for r in ingest.ingest(st, out / "landing"):
        validate.validate(st, r.extract_date)
    t2 = time.perf_counter()
    print(json.dumps({"generate_s": round(t1 - t0, 1), "ingest_validate_s": round(t2 - t1, 1),
                      "rows": summary["rows"]}))


def run(args) -> None:
    st = load_settings(data_dir=args.data_dir, duckdb_memory_limit=args.memory_limit)
    run_date = args.date or lake.ingested_dates(st)[-1]
    t0 = time.perf_counter()
    con = lake.open_screening(st, run_date)
    fresh = features.attach(con, st, run_date)
    con.close()
    built = None
    if not fresh:
        built = features.build(st, run_date)
    t1 = time.perf_counter()
    con = lake.open_screening(st, run_date)
    lines = con.execute("SELECT count(*) FROM lines").fetchall()[0][0]
    con.close()
    stats = detect.detect(st, run_date, [args.detector])[0]
    t2 = time.perf_counter()
    print(json.dumps({"detector": args.detector, "run_date": run_date, "charge_lines": lines,
                      "features_s": round(t1 - t0, 2) if built else 0.0,
                      "detect_s": round(t2 - t1, 2),
                      "lines_per_s": round(lines / max(t2 - t1, 1e-9)),
                      "findings": stats["findings"], "ring_members": stats["ring_members"]}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", required=True)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--scale", type=float, default=23)
    p.add_argument("--seed", type=int, default=5)
    p.set_defaults(fn=prepare)
    p = sub.add_parser("run")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--detector", required=True)
    p.add_argument("--date")
    p.add_argument("--memory-limit", default="4GB")
    p.set_defaults(fn=run)
    args = ap.parse_args(argv)
    args.fn(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
