"""The ``claimscreen`` command: one door into the pipeline stages (the DAGs are the other)."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from pipeline.settings import Settings, load_settings


def _settings(args) -> Settings:
    return load_settings(args.config, data_dir=getattr(args, "data_dir", None),
                         lake_dir=getattr(args, "lake", None),
                         publish_dir=getattr(args, "publish", None),
                         region=getattr(args, "region", None))


def cmd_synth(args) -> int:
    from pipeline import synth, terminal
    t0, written = time.perf_counter(), []

    def progress(day: str) -> None:
        written.append(day)
        terminal.step(len(written), args.days, f"synth {day}: extract written", time.perf_counter() - t0)
    terminal.log.info("synth: world at scale %s (seed %s), planting schemes and look-alikes ...",
                      args.scale, args.seed)
    summary = synth.generate(Path(args.out), days=args.days, scale=args.scale, seed=args.seed,
                             start=args.start, fraud=not args.no_fraud, profile=args.profile,
                             progress=progress)
    print(json.dumps(summary, indent=1, default=str))
    return 0


def _say(night) -> None:
    """Print one night's outcome as the feed reaches it (problems on stderr)."""
    from pipeline import feed
    d = night.extract_date
    if night.status in feed.LANDED_OK:
        print(f"{d}: {night.status} {night.result.rows if night.result else ''}")
        for w in getattr(night.result, "warnings", []) or []:
            print(f"  warning: {w}")
    elif night.status == "refused":
        print(f"REFUSED extract {d} — nothing of it was landed:", file=sys.stderr)
        for p in night.messages:
            print(f"  - {p}", file=sys.stderr)
    elif night.status == "blocked":
        print(f"BLOCKED extract {d} — it stays out of the screened data:", file=sys.stderr)
        for f in night.messages:
            print(f"  - {f}", file=sys.stderr)
        if night.report_dir:
            print(f"  report: {night.report_dir / 'data_docs' / 'index.html'}", file=sys.stderr)
    elif night.status == "waiting":
        print(f"WAITING extract {d} — not validated yet:", file=sys.stderr)
        for m in night.messages:
            print(f"  - {m}", file=sys.stderr)
    elif night.status == "promoted":
        print(night.messages[0] if night.messages else f"{d}: promoted")
    else:
        print(f"{d}: {night.status} " + "; ".join(night.messages))


def _feed_summary(report) -> None:
    finals = report.finals()
    if not finals:
        return
    counts: dict[str, list[str]] = {}
    for n in finals:
        counts.setdefault(n.status, []).append(n.extract_date)
    parts = [f"{k} {len(v)} ({', '.join(v) if len(v) <= 6 else v[0] + ' … ' + v[-1]})"
             for k, v in sorted(counts.items())]
    print("feed: " + "; ".join(parts))
    if report.exit_code:
        print("  `claimscreen status` shows every night and what to do next", file=sys.stderr)


def cmd_ingest(args) -> int:
    from pipeline import feed
    s = _settings(args)
    landing = Path(args.landing or s.landing_dir)
    report = feed.catch_up(s, landing, [args.date] if args.date else None, upto=args.date,
                           replace=args.replace, validate=not args.no_validate,
                           gate_config=args.gate_config, say=_say)
    if not report.nights:
        print(f"nothing new in {landing}")
    _feed_summary(report)
    return report.exit_code


def _print_blocked(e) -> None:
    print(f"BLOCKED extract {e.extract_date} — it stays out of the screened data:", file=sys.stderr)
    for f in e.failures:
        print(f"  - {f}", file=sys.stderr)
    if getattr(e, "report_dir", None):
        print(f"  report: {e.report_dir / 'data_docs' / 'index.html'}", file=sys.stderr)


def cmd_validate(args) -> int:
    from pipeline import feed, ingest, lake
    s = _settings(args)
    if args.date and not (ingest.incoming_dir(s, args.date) / "_INGESTED.json").exists():
        if (lake.extract_dir(s, args.date) / "_INGESTED.json").exists():
            print(f"{args.date}: already promoted")
        else:
            print(f"extract {args.date} is not in the lake: ingest it first", file=sys.stderr)
            return 1
    report = feed.catch_up(s, None, upto=args.date, gate_config=args.gate_config, say=_say,
                           force=[args.date] if args.date else None)
    if not report.nights and not args.date:
        print("no landed night waits for the gate")
    _feed_summary(report)
    return report.exit_code


def cmd_status(args) -> int:
    from pipeline import feed
    s = _settings(args)
    rows = feed.status(s, Path(args.landing) if args.landing else None)
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=1, ensure_ascii=False))
    else:
        print(feed.format_status(rows))
    return 0


def cmd_quarantine(args) -> int:
    import duckdb

    from pipeline import terminal, validate
    from pipeline.lake import sql_literal
    files = validate.quarantined(_settings(args), args.date)
    if not files:
        print(f"{args.date}: no quarantined rows")
        return 0
    con = duckdb.connect()
    for table, path in files.items():
        rel = f"read_parquet({sql_literal(path)}, hive_partitioning = false)"
        counts = con.execute(f"SELECT reason_code, expectation, count(*) FROM {rel} GROUP BY 1, 2 ORDER BY 1").fetchall()
        print(f"{table}: {path}")
        print(terminal.table(["reason / 原因", "expectation / 校验规则", "rows / 行数"], counts))
        if args.rows:
            print(con.sql(f"SELECT * FROM {rel} LIMIT {int(args.rows)}"))
    return 0


def cmd_run(args) -> int:
    from pipeline import feed, screen
    s = _settings(args)
    t0 = time.perf_counter()
    report = feed.catch_up(s, None, upto=args.date, say=_say)
    try:
        feed.require_promoted(s, report, args.date)
    except feed.NightNotPromoted as e:
        print(f"NOT SCREENED {args.date}: its extract is {e.status} — nothing published "
              f"(`claimscreen status` says what to do)", file=sys.stderr)
        for m in e.night.messages[:8]:
            print(f"  - {m}", file=sys.stderr)
        return feed.EXIT_REFUSED if e.status == "refused" else feed.EXIT_BLOCKED
    out = screen.screen(s, args.date, args.detectors or None)
    print(f"published {out} in {time.perf_counter() - t0:.1f}s")
    return 0


def cmd_backfill(args) -> int:
    from pipeline import screen
    s = _settings(args)
    from pipeline import feed
    try:
        for p in screen.backfill(s, args.start, args.end, args.detectors or None,
                                 landing=Path(args.landing) if args.landing else None, say=_say):
            print(f"published {p}")
    except screen.BackfillIncomplete as e:
        for p in e.published:
            print(f"published {p}")
        for n in e.skipped:
            print(f"NOT SCREENED {n.extract_date}: its extract is {n.status}", file=sys.stderr)
        print("  `claimscreen status` shows every night and what to do next", file=sys.stderr)
        return (feed.EXIT_REFUSED if any(n.status == "refused" for n in e.skipped)
                else feed.EXIT_BLOCKED)
    return 0


def cmd_detectors(args) -> int:
    from pipeline import registry, terminal
    print(terminal.table(
        ["detector", "name / 名称", "family / 类别", "judgement / 判定", "parameters / 参数"],
        [(d.id, d.label, d.family, d.judgement, ", ".join(f"{p.name}={p.default}" for p in d.params))
         for d in registry.all_detectors()]))
    return 0


def cmd_dismiss(args) -> int:
    from pipeline import dismiss
    out = dismiss.dismiss(_settings(args), args.finding_id, args.reason, args.by, args.on)
    print(f"dismissed {args.finding_id} from {args.on or 'today'} on ({out.name}); "
          f"it leaves the next published run")
    return 0


def cmd_catalogue(args) -> int:
    from pipeline import catalogue
    s = _settings(args)
    print(f"wrote {catalogue.write(args.out, s.rules_file)}")
    return 0


def cmd_evaluate(args) -> int:
    from pipeline import evaluate
    result = evaluate.evaluate(_settings(args), Path(args.truth), args.date)
    print(evaluate.to_json(result) if args.json else evaluate.format_report(result))
    return 0


def cmd_demo(args) -> int:
    from pipeline import demo
    return demo.main(_settings(args), days=args.days, scale=args.scale, seed=args.seed, quiet=args.quiet)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="claimscreen", description=__doc__)
    ap.add_argument("--config", help="settings TOML file (default: $CLAIMSCREEN_CONFIG or none)")
    ap.add_argument("--data-dir", help="root of landing/lake/work/published (default: ./data)")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("-q", "--quiet", action="store_true",
                    help="no progress lines (they go to a terminal's stderr only, never to a pipe)")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("synth", help="write synthetic nightly extracts and their ground truth")
    p.add_argument("--out", required=True, help="folder: landing/ and truth/ are written inside")
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--start", default="2026-10-01")
    p.add_argument("--no-fraud", action="store_true", help="plant no fraud (honest look-alikes only)")
    p.add_argument("--profile", default="standard", choices=["standard", "county"],
                   help="shape of the world: standard (mixed urban) or county (older, busier hospitals)")
    p.set_defaults(fn=cmd_synth)

    p = sub.add_parser("ingest", help="verify and land extracts (one date or every new one)")
    p.add_argument("--landing", help="landing folder (default: settings landing_dir)")
    p.add_argument("--date", help="one extract date (default: every landed date not yet ingested)")
    p.add_argument("--replace", action="store_true", help="accept a corrected re-delivery")
    p.add_argument("--no-validate", action="store_true", help="land only; run the gate later")
    p.add_argument("--gate-config", help="validation gate configuration (default expectations/config.yaml)")
    p.set_defaults(fn=cmd_ingest)

    p = sub.add_parser("validate", help="run the validation gate on landed extracts")
    p.add_argument("--date", help="this night (and any earlier one waiting for the gate); "
                                  "default: every night waiting")
    p.add_argument("--gate-config", help="validation gate configuration (default expectations/config.yaml)")
    p.set_defaults(fn=cmd_validate)

    p = sub.add_parser("status", help="per extract date: landed, refused, blocked, promoted, published; what next")
    p.add_argument("--landing", help="landing folder (default: settings landing_dir)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_status)

    p = sub.add_parser("quarantine", help="list the rows validation held back from an extract")
    p.add_argument("--date", required=True)
    p.add_argument("--rows", type=int, default=0, help="also print this many rows per table")
    p.set_defaults(fn=cmd_quarantine)

    p = sub.add_parser("run", help="screen and publish one run date")
    p.add_argument("--date", required=True)
    p.add_argument("--detectors", nargs="*", help="re-run only these (others reused if fresh)")
    p.add_argument("--region", help="region code whose rule overrides apply")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("backfill", help="re-screen a date range")
    p.add_argument("--start", required=True)
    p.add_argument("--end", required=True)
    p.add_argument("--detectors", nargs="*")
    p.add_argument("--landing", help="also ingest landed extracts of those dates")
    p.set_defaults(fn=cmd_backfill)

    p = sub.add_parser("dismiss", help="close a finding after review (append-only record)")
    p.add_argument("--finding-id", required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--by", required=True, help="who decided")
    p.add_argument("--on", help="effective date (default today)")
    p.set_defaults(fn=cmd_dismiss)

    p = sub.add_parser("detectors", help="list the detectors in the registry")
    p.set_defaults(fn=cmd_detectors)

    p = sub.add_parser("catalogue", help="write the rule catalogue page from the detector headers")
    p.add_argument("--out", help="Markdown file (default: docs/rules.md of the checkout)")
    p.set_defaults(fn=cmd_catalogue)

    p = sub.add_parser("evaluate", help="precision and recall of a published run against known cases")
    p.add_argument("--truth", required=True, help="ground-truth folder (cases.parquet, ring_members.parquet, ...)")
    p.add_argument("--date", help="published run date (default: the newest)")
    p.add_argument("--publish", help="published runs folder (default: settings publish_dir)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("demo", help="generate a synthetic month, ingest night by night, screen, publish")
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--scale", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(fn=cmd_demo)

    from pipeline.portal import cli as portal_cli
    portal_cli.add_commands(sub, _settings)

    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s")
    from pipeline import terminal
    terminal.show_progress(not args.quiet)
    try:
        return args.fn(args)
    finally:
        terminal.reset_progress()


if __name__ == "__main__":
    sys.exit(main())
