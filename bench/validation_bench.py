"""Benchmark: the validation gate on one provincial-size night (~10 million charge lines).

    python bench/validation_bench.py make --out /tmp/vbench --lines 10000000
    /usr/bin/time -v python bench/validation_bench.py validate --out /tmp/vbench

``make`` generates one synthetic night (pipeline.synth) and multiplies it in DuckDB with
fresh settlement ids until it holds ~``--lines`` charge lines, writes it as a landed
extract with its manifest, and ingests it (so the gate runs alone in ``validate``).
``validate`` runs the gate and prints rows/s; run it under ``/usr/bin/time -v`` for the
peak RSS.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import contract, ingest, lake, synth, validate  # noqa: E402
from pipeline.lake import sql_literal  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402

PART_LINES = 2_000_000


def make(out: Path, lines: int, scale: float, faulty_per_million: int = 0) -> None:
    shutil.rmtree(out, ignore_errors=True)
    seed = out / "seed"
    synth.generate(seed, days=1, scale=scale, seed=11, start="2026-10-01", fraud=True)
    night = sorted((seed / "landing").iterdir())[0]
    date = night.name
    ex = out / "landing" / date
    con = lake.connect(load_settings(data_dir=out))
    s_src = f"read_parquet({sql_literal(night / 'settlements' / '*.parquet')}, hive_partitioning = false)"
    i_src = f"read_parquet({sql_literal(night / 'settlement_items' / '*.parquet')}, hive_partitioning = false)"
    seed_lines = con.execute(f"SELECT count(*) FROM {i_src}").fetchall()[0][0]
    copies = max(1, math.ceil(lines / seed_lines))
    print(f"seed night {date}: {seed_lines} lines; {copies} copies")
    rename = "settlement_id || '-' || lpad(CAST(k AS VARCHAR), 4, '0')"
    # optionally plant unknown patients on a share of the settlements: the row path at scale
    faulty = (f"CASE WHEN hash(settlement_id, k) % 1000000 < {int(faulty_per_million)} "
              f"THEN 'P-UNKNOWN' ELSE patient_id END AS patient_id")
    scols = ", ".join(f"{rename} AS settlement_id" if c == "settlement_id" else
                      faulty if c == "patient_id" else
                      (f"CASE WHEN reversal_of IS NULL THEN NULL ELSE reversal_of || '-' || "
                       f"lpad(CAST(k AS VARCHAR), 4, '0') END AS reversal_of" if c == "reversal_of" else c)
                      for c in contract.SETTLEMENTS.names)
    icols = ", ".join(f"{rename} AS settlement_id" if c == "settlement_id" else c
                      for c in contract.SETTLEMENT_ITEMS.names)
    per_part = max(1, PART_LINES // seed_lines)
    for table, cols, src in (("settlements", scols, s_src), ("settlement_items", icols, i_src)):
        (ex / table).mkdir(parents=True, exist_ok=True)
        for p, k0 in enumerate(range(0, copies, per_part)):
            k1 = min(copies, k0 + per_part)
            con.execute(f"COPY (SELECT {cols} FROM {src}, range({k0}, {k1}) AS r(k)) TO "
                        f"{sql_literal(ex / table / f'part-{p:04d}.parquet')} (FORMAT parquet, COMPRESSION zstd)")
    shutil.copytree(night / "reference", ex / "reference")
    contract.write_manifest(ex, date, "validation benchmark (synth night x copies)")
    st = load_settings(data_dir=out)
    t = time.perf_counter()
    r = ingest.ingest_one(st, out / "landing", date)
    print(f"ingested {r.rows} in {time.perf_counter() - t:.1f}s")
    # a pristine copy of the ingested night, so `validate` can be repeated
    shutil.copytree(ingest.incoming_dir(st, date), out / "pristine")
    (out / "bench.json").write_text(json.dumps({"date": date, "rows": r.rows}))


def run(out: Path, batch_rows: int | None) -> None:
    meta = json.loads((out / "bench.json").read_text())
    st = load_settings(data_dir=out)
    for old in (lake.extracts_dir(st), st.lake_dir / "validation", ingest.incoming_dir(st, meta["date"])):
        shutil.rmtree(old, ignore_errors=True)
    shutil.copytree(out / "pristine", ingest.incoming_dir(st, meta["date"]))
    t = time.perf_counter()
    overrides = {"batch_rows": batch_rows} if batch_rows else None
    try:
        v = validate.validate(st, meta["date"], overrides=overrides)
        status = v.status
        print(validate.summary(v))
    except validate.ExtractBlocked as e:
        status = "blocked"
        print("\n".join(e.failures))
    secs = time.perf_counter() - t
    lines = meta["rows"]["settlement_items"]
    total = sum(meta["rows"].values())
    print(json.dumps({"status": status, "seconds": round(secs, 1), "charge_lines": lines, "rows_all_tables": total,
                      "charge_lines_per_s": round(lines / secs), "rows_per_s": round(total / secs)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--out", required=True)
    m.add_argument("--lines", type=int, default=10_000_000)
    m.add_argument("--scale", type=float, default=5.0)
    m.add_argument("--faulty-per-million", type=int, default=0,
                   help="settlements given an unknown patient (quarantined by the gate)")
    v = sub.add_parser("validate")
    v.add_argument("--out", required=True)
    v.add_argument("--batch-rows", type=int)
    a = ap.parse_args()
    if a.cmd == "make":
        make(Path(a.out), a.lines, a.scale, a.faulty_per_million)
    else:
        run(Path(a.out), a.batch_rows)


if __name__ == "__main__":
    main()
