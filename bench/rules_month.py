"""Evaluate the rule library on a generated month: recall per rule and honest flags.

    python bench/rules_month.py --out /tmp/month --days 30 --scale 1 [--no-fraud] [--keep]

Generates the month with pipeline.synth (planted cases in truth/cases.parquet, honest
look-alikes in truth/lookalikes.parquet), ingests and validates every night, then screens
the last date once (every rule sees the whole month, as on the last night) and compares:

- recall per rule: a planted case counts as found when a finding of the detector named by
  its scheme shares a settlement with the case's evidence (``any``) / names the case's
  entity settlement (``entity``);
- honest settlements flagged: settlements in any finding that belong to no planted case,
  as a share of every effective settlement; with --no-fraud every finding is listed with
  its reason, for the note that justifies it.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import duckdb


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--start", default="2026-10-01")
    ap.add_argument("--no-fraud", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="reuse an already generated and ingested month")
    ap.add_argument("--show", type=int, default=5, help="findings listed per detector")
    args = ap.parse_args(argv)

    from pipeline import detect, features, ingest, validate
    from pipeline.settings import load_settings
    out = Path(args.out)
    st = load_settings(data_dir=out / "data")
    t0 = time.perf_counter()
    if not args.reuse:
        from pipeline import synth
        shutil.rmtree(out, ignore_errors=True)
        synth.generate(out, days=args.days, scale=args.scale, seed=args.seed, start=args.start,
                       fraud=not args.no_fraud)
        for r in ingest.ingest(st, out / "landing"):
            validate.validate(st, r.extract_date)
    t1 = time.perf_counter()
    last = sorted(p.name for p in (out / "landing").iterdir() if p.is_dir())[-1]
    features.build(st, last)
    t2 = time.perf_counter()
    stats = detect.detect(st, last)
    t3 = time.perf_counter()
    fdir = detect.findings_dir(st, last)
    con = duckdb.connect()
    con.execute(f"CREATE VIEW findings AS SELECT * FROM read_parquet('{fdir}/*.parquet', union_by_name = true) "
                "WHERE finding_id IS NOT NULL")
    con.execute(f"CREATE VIEW cases AS SELECT * FROM read_parquet('{out}/truth/cases.parquet')")
    con.execute(f"CREATE VIEW lookalikes AS SELECT * FROM read_parquet('{out}/truth/lookalikes.parquet')")
    con.execute(f"CREATE VIEW claims AS SELECT * FROM read_parquet('{st.work_dir}/{last}/all/features/claims/*.parquet')")
    n_settlements = con.execute("SELECT count(*) FROM claims").fetchone()[0]
    print(f"month {args.start} +{args.days}d scale {args.scale} fraud={not args.no_fraud}: "
          f"{n_settlements} effective settlements; generate+ingest {t1 - t0:.1f}s, "
          f"features {t2 - t1:.1f}s, detect {t3 - t2:.1f}s")
    recall = con.execute("""
        WITH c AS (SELECT case_id, scheme, entity_id, settlement_ids FROM cases),
        hits AS (
            SELECT c.case_id,
                   bool_or(len(list_intersect(f.settlement_ids, c.settlement_ids)) > 0) AS any_hit,
                   bool_or(f.entity_id = c.entity_id OR list_contains(f.settlement_ids, c.entity_id)) AS entity_hit
            FROM c JOIN findings AS f ON f.detector_id = c.scheme
            GROUP BY c.case_id)
        SELECT c.scheme, count(*) AS cases,
               count(*) FILTER (WHERE h.any_hit) AS found_any,
               count(*) FILTER (WHERE h.entity_hit) AS found_entity
        FROM c LEFT JOIN hits AS h USING (case_id)
        GROUP BY c.scheme ORDER BY c.scheme""").fetchall()
    if recall:
        print("\nrecall per rule (planted cases found by the detector of their scheme)")
        print(f"{'rule':26s} {'cases':>6s} {'found':>6s} {'recall':>7s}")
        for scheme, n, hit, ent in recall:
            print(f"{scheme:26s} {n:6d} {hit:6d} {hit / n:7.1%}   (entity named: {ent})")
    per = con.execute("""
        WITH planted AS (SELECT DISTINCT unnest(settlement_ids) AS settlement_id FROM cases),
        flagged AS (SELECT detector_id, unnest(settlement_ids) AS settlement_id FROM findings)
        SELECT f.detector_id, count(DISTINCT f.settlement_id) AS flagged,
               count(DISTINCT f.settlement_id) FILTER (WHERE p.settlement_id IS NULL) AS honest
        FROM flagged AS f LEFT JOIN planted AS p USING (settlement_id)
        GROUP BY f.detector_id ORDER BY f.detector_id""").fetchall()
    honest_total = con.execute("""
        WITH planted AS (SELECT DISTINCT unnest(settlement_ids) AS settlement_id FROM cases)
        SELECT count(DISTINCT s) FROM (SELECT unnest(settlement_ids) AS s FROM findings)
        WHERE s NOT IN (SELECT settlement_id FROM planted)""").fetchone()[0]
    print(f"\nhonest settlements flagged: {honest_total} of {n_settlements} "
          f"({honest_total / max(n_settlements, 1):.4%})")
    for det, flagged, honest in per:
        print(f"  {det:26s} settlements flagged {flagged:6d}, outside planted cases {honest:6d}")
    honest_findings = con.execute(f"""
        WITH planted AS (SELECT DISTINCT unnest(settlement_ids) AS settlement_id FROM cases),
        la AS (SELECT kind, unnest(settlement_ids) AS settlement_id FROM lookalikes)
        SELECT f.detector_id, f.entity_id, f.amount_at_risk, f.reason,
               (SELECT string_agg(DISTINCT kind, ',') FROM la WHERE list_contains(f.settlement_ids, la.settlement_id)) AS lookalike
        FROM findings AS f
        WHERE NOT EXISTS (SELECT 1 FROM planted AS p WHERE list_contains(f.settlement_ids, p.settlement_id))
        QUALIFY row_number() OVER (PARTITION BY f.detector_id ORDER BY f.score DESC, f.finding_id) <= {args.show}
        ORDER BY f.detector_id""").fetchall()
    if honest_findings:
        print("\nfindings outside planted cases (up to --show per detector):")
        for det, ent, amt, reason, kind in honest_findings:
            print(f"  [{det}] {ent} {amt} {('(look-alike: ' + kind + ') ') if kind else ''}{reason}")
    print("\ndetector seconds: " + ", ".join(f"{s['detector_id']} {s['seconds']}" for s in stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
