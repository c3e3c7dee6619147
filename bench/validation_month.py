"""A generated month through ingest + the validation gate, night by night.

    python bench/validation_month.py --out /tmp/vmonth --days 30 --scale 0.1

Prints each night's one-screen summary and, at the end, how many nights passed, were
blocked, quarantined rows or raised warnings (a clean month: all passed, none quarantined).
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import ingest, synth, validate  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    root = Path(a.out)
    shutil.rmtree(root, ignore_errors=True)
    synth.generate(root, days=a.days, scale=a.scale, seed=a.seed, start="2026-10-01", fraud=True)
    st = load_settings(data_dir=root)
    tally = {"passed": 0, "blocked": 0, "quarantined": 0, "warned": 0}
    for d in ingest.landed_dates(root / "landing"):
        ingest.ingest_one(st, root / "landing", d)
        try:
            v = validate.validate(st, d)
        except validate.ExtractBlocked as e:
            tally["blocked"] += 1
            print(f"BLOCKED {d}: {e.failures}")
            continue
        print(validate.summary(v))
        tally["passed"] += 1
        tally["quarantined"] += bool(v.quarantined)
        tally["warned"] += bool(v.warnings)
    print(tally)


if __name__ == "__main__":
    main()
