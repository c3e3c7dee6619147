"""``claimscreen cases export|overdue|precision|points``: the case workflow from a terminal."""
from __future__ import annotations

import json
from pathlib import Path


def _engine(args, settings):
    from pipeline.portal import db
    return db.connect(args.db or db.default_url(settings.data_dir))


def _everyone():
    from pipeline.portal import db
    return db.User(0, "cli", "admin", ())


def cmd_export(args, settings) -> int:
    from pipeline.portal import cases
    n = cases.export_truth(_engine(args, settings), Path(args.out), settings.publish_dir)
    print(f"wrote {args.out}: {n['confirmed']} confirmed case(s) (cases.parquet), {n['dismissed']} dismissed "
          f"(lookalikes.parquet), {n['ring_members']} ring member(s); read it with "
          f"`claimscreen evaluate --truth {args.out}`")
    return 0


def cmd_overdue(args, settings) -> int:
    from pipeline.portal import cases
    rows = cases.list_cases(_engine(args, settings), _everyone(), overdue_only=True)
    for r in rows:
        print(f"#{r.id:<6d} {cases.label(r.state):28s} due {r.due_at:%Y-%m-%d %H:%M}Z  {r.institution_id or '-':14s} "
              f"{r.region or '-':8s} {r.detector_id}")
    print(f"{len(rows)} overdue case(s) / 超期案件")
    return 0


def cmd_precision(args, settings) -> int:
    from pipeline.portal import cases
    rows = cases.precision(_engine(args, settings))
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        print(f"{r['detector_id']:28s} {r['month']}  confirmed {r['confirmed']:4d}  dismissed {r['dismissed']:4d}  "
              f"precision {100 * r['precision']:5.1f}%")
    return 0


def cmd_points(args, settings) -> int:
    from pipeline.portal import cases
    conf = cases.load_config(args.cases_config)
    for r in cases.points(_engine(args, settings), conf, year=args.year):
        print(f"{r['doctor_id']:16s} {r['institution_id'] or '-':14s} {r['points']:3d}/{r['threshold']} "
              f"{'SUSPENDED / 暂停医保支付资格' if r['suspended'] else 'active / 正常'}")
    return 0


def add_commands(sub, wrap, db_arg) -> None:
    p = sub.add_parser("cases", help="case workflow: export outcomes, overdue cases, precision, points")
    cs = p.add_subparsers(dest="cases_cmd", required=True)
    e = cs.add_parser("export", help="decided cases in the ground-truth format `claimscreen evaluate` reads")
    e.add_argument("--out", required=True, help="folder for cases.parquet, lookalikes.parquet, ring_members.parquet")
    db_arg(e)
    e.set_defaults(fn=wrap(cmd_export))
    o = cs.add_parser("overdue", help="open cases past their step's time limit")
    db_arg(o)
    o.set_defaults(fn=wrap(cmd_overdue))
    pr = cs.add_parser("precision", help="per detector and month: confirmed / decided")
    pr.add_argument("--json", action="store_true")
    db_arg(pr)
    pr.set_defaults(fn=wrap(cmd_precision))
    pt = cs.add_parser("points", help="practitioner points this year and who is suspended")
    pt.add_argument("--year", type=int)
    pt.add_argument("--cases-config", help="case configuration (default data/cases.yaml)")
    db_arg(pt)
    pt.set_defaults(fn=wrap(cmd_points))
