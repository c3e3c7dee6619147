"""Render time of the reports on a mid-sized planted run (not part of the test suite).

    PYTHONPATH=. python bench/reports_bench.py /tmp/bench --institutions 400 --days 10

Builds extracts with pipeline.builder (ordinary care everywhere, duplicate billing planted
at a third of the institutions, more at a few), screens two nights, then re-renders the
reports of the last run into a copy of its folder and prints the timings.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

from pipeline import builder, ingest, reports, screen, validate
from pipeline.settings import load_settings

REGIONS = ["440103", "440104", "440106", "440111", "440305", "440306", "440604", "440605"]
KINDS = [("hospital", 3), ("hospital", 2), ("hospital", 1), ("clinic", 1), ("community", 1), ("pharmacy", 0)]


def world(n_inst: int, days: int, seed: int = 7):
    rng = random.Random(seed)
    start = date(2026, 10, 1)
    insts = []
    for k in range(n_inst):
        kind, level = rng.choice(KINDS)
        insts.append({"institution_id": f"{'P' if kind == 'pharmacy' else 'H'}{k + 10:011d}",
                      "name": f"{kind.title()} {k:04d}", "kind": kind, "level": level,
                      "ownership": rng.choice(["public", "private"]), "region": rng.choice(REGIONS),
                      "beds": 100, "contract_start": date(2015, 1, 1)})
    settlements, items, n = [], [], 0
    for d in range(days):
        day = start + timedelta(days=d)
        for inst in insts:
            for _ in range(rng.randint(3, 12)):
                n += 1
                sid = f"S{n:08d}"
                settlements.append({"settlement_id": sid, "patient_id": f"P{rng.randint(1, 40):03d}",
                                    "institution_id": inst["institution_id"], "doctor_id": "D000000000001",
                                    "dept_code": "IM", "admit_date": day, "primary_dx": "J06.9"})
                codes = ["DRG01"] if inst["kind"] == "pharmacy" else rng.sample(["CON01", "LAB01", "DRG01", "EXM02"], 2)
                for c in codes:
                    items.append({"settlement_id": sid, "item_code": c, "unit_price": rng.choice([15, 18, 20]),
                                  "quantity": 1, "service_date": day})
                # a third of the institutions bill some lines twice; a few do it a lot
                p = 0.5 if int(inst["institution_id"][1:]) % 37 == 0 else 0.08
                if int(inst["institution_id"][1:]) % 3 == 0 and rng.random() < p:
                    items.append(dict(items[-1]))
    return settlements, items, {"institutions": insts}, start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--institutions", type=int, default=400)
    ap.add_argument("--days", type=int, default=10)
    a = ap.parse_args()
    shutil.rmtree(a.out, ignore_errors=True)
    t0 = time.perf_counter()
    settlements, items, ref, start = world(a.institutions, a.days)
    builder.write_extracts(a.out / "landing", settlements, items, reference=ref)
    st = load_settings(data_dir=a.out / "data")
    for r in ingest.ingest(st, a.out / "landing"):
        validate.validate(st, r.extract_date)
    t1 = time.perf_counter()
    last = (start + timedelta(days=a.days - 1)).isoformat()
    prev = (start + timedelta(days=a.days - 3)).isoformat()
    screen.screen(st, prev)
    t2 = time.perf_counter()
    out = screen.screen(st, last)
    t3 = time.perf_counter()
    copy = a.out / "render-copy"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "reports")
    meta = reports.render_run(st, last, copy)
    t4 = time.perf_counter()
    import duckdb
    n_find = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{copy}/findings.parquet')").fetchone()[0]
    size = sum(p.stat().st_size for p in (copy / "reports").rglob("*") if p.is_file())
    print(json.dumps({"settlements": len(settlements), "lines": len(items), "institutions": a.institutions,
                      "findings": n_find, "institution_reports": meta["institution_reports"],
                      "build_and_ingest_s": round(t1 - t0, 1), "screen_with_reports_s": round(t3 - t2, 1),
                      "render_only_s": round(t4 - t3, 2),
                      "findings_per_s_rendered": round(n_find / (t4 - t3)),
                      "report_bytes": size, "folder": str(out)}, indent=1))


if __name__ == "__main__":
    main()
