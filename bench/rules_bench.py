"""Benchmark the whole rule library against a bare DuckDB scan of the same charge lines.

    /usr/bin/time -v python bench/rules_bench.py --data <data_dir> --date <run_date> --phase scan
    /usr/bin/time -v python bench/rules_bench.py --data <data_dir> --date <run_date> --phase library

``scan`` is the yardstick: ``SELECT count(*), sum(amount)`` over every settlement_items
file in the lake up to the run date. ``library`` is what a night costs the rules: the shared
features (claims, stays, lines, patient_days) built once, then every enabled detector.
Run each phase in its own process so /usr/bin/time reports its own peak RSS. Settings
(memory limit, threads, spill folder) are the pipeline's own (CLAIMSCREEN_* variables).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="data dir holding lake/ (and work/)")
    ap.add_argument("--date", required=True, help="run date (the last ingested extract)")
    ap.add_argument("--phase", choices=("scan", "library"), required=True)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)

    from pipeline import detect, features, lake
    from pipeline.settings import load_settings
    st = load_settings(data_dir=Path(args.data))
    files = lake.lake_files(st, "settlement_items", upto=args.date)
    con = lake.connect(st)
    n_lines = con.execute("SELECT count(*) FROM read_parquet([" + ", ".join(
        lake.sql_literal(f) for f in files) + "])").fetchone()[0]
    con.close()
    result = {"phase": args.phase, "lines": n_lines, "files": len(files),
              "memory_limit": st.duckdb_memory_limit, "threads": st.duckdb_threads, "runs": []}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        if args.phase == "scan":
            con = lake.connect(st)
            row = con.execute("SELECT count(*), sum(amount) FROM read_parquet([" + ", ".join(
                lake.sql_literal(f) for f in files) + "])").fetchone()
            con.close()
            run = {"wall_s": round(time.perf_counter() - t0, 3), "result": [row[0], str(row[1])]}
        else:
            counts = features.build(st, args.date)
            t1 = time.perf_counter()
            stats = detect.detect(st, args.date)
            t2 = time.perf_counter()
            run = {"wall_s": round(t2 - t0, 3), "features_s": round(t1 - t0, 3),
                   "detect_s": round(t2 - t1, 3), "feature_rows": counts,
                   "detectors": {s["detector_id"]: {"s": s["seconds"], "findings": s["findings"]}
                                 for s in stats}}
        run["rows_per_s"] = round(n_lines / run["wall_s"])
        result["runs"].append(run)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
