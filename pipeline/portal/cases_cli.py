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
    from pipeline import terminal
    from pipeline.portal import cases
    rows = cases.list_cases(_engine(args, settings), _everyone(), overdue_only=True)
    print(terminal.table(
        [("case / 案件", "right"), "step / 环节", "due (UTC) / 期限", "institution / 机构", "region / 区划",
         "rule / 规则"],
        [(f"#{r.id}", cases.label(r.state), f"{r.due_at:%Y-%m-%d %H:%M}Z", r.institution_id or "-",
          r.region or "-", r.detector_id) for r in rows],
        title=f"{len(rows)} overdue case(s) / 超期案件"))
    return 0


def cmd_precision(args, settings) -> int:
    from pipeline import terminal
    from pipeline.portal import cases
    rows = cases.precision(_engine(args, settings))
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(terminal.table(
        ["rule / 规则", "month decided / 办结月份", "confirmed / 确认", "dismissed / 排除", ("precision / 准确率", "right")],
        [(r["detector_id"], r["month"], r["confirmed"], r["dismissed"], f"{100 * r['precision']:.1f}%") for r in rows]))
    return 0


def cmd_points(args, settings) -> int:
    from pipeline import terminal
    from pipeline.portal import cases
    conf = cases.load_config(args.cases_config)
    rows = cases.points(_engine(args, settings), conf, year=args.year)
    print(terminal.table(
        ["doctor / 医师", "institution / 机构", ("points / 记分", "right"), "billing / 支付资格", "cases / 案件"],
        [(r["doctor_id"], r["institution_id"] or "-", f"{r['points']}/{r['threshold']}",
          "SUSPENDED / 暂停医保支付资格" if r["suspended"] else "active / 正常",
          " ".join(f"#{c}" for c in r["cases"])) for r in rows]))
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
