"""``claimscreen serve``, ``claimscreen users …`` and ``claimscreen audit``."""
from __future__ import annotations

import getpass
import sys


def _db_url(args, settings) -> str:
    from pipeline.portal import db
    return args.db or db.default_url(settings.data_dir)


def cmd_serve(args, settings) -> int:
    from pipeline.portal import app
    app.serve(settings.publish_dir, _db_url(args, settings), host=args.host, port=args.port,
              secure_cookie=args.secure_cookie, settings=settings)
    return 0


def cmd_users_add(args, settings) -> int:
    from pipeline.portal import db
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif args.password is not None:
        password = args.password
    else:
        password = getpass.getpass(f"password for {args.name}: ")
    regions = [r for r in (args.regions or "").split(",") if r.strip()]
    try:
        user = db.add_user(db.connect(_db_url(args, settings)), args.name, password, args.role, regions,
                           institution=args.institution)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"added {user.name} ({user.role}; regions {','.join(user.regions) or 'all'})")
    return 0


def cmd_users_list(args, settings) -> int:
    from pipeline import terminal
    from pipeline.portal import db
    print(terminal.table(
        ["user / 用户", "role / 角色", "regions / 辖区", "state / 状态", "created / 创建时间"],
        [(user.name, user.role, f"institution {user.institution}" if user.institution else
          ",".join(user.regions) if user.scope is not None else "all",
          "disabled" if disabled else "active", f"{created:%Y-%m-%d %H:%M}")
         for user, disabled, created in db.list_users(db.connect(_db_url(args, settings)))]))
    return 0


def cmd_audit(args, settings) -> int:
    from pipeline import terminal
    from pipeline.portal import db
    rows = db.audit_rows(db.connect(_db_url(args, settings)), limit=args.limit,
                         user_name=args.user, action=args.action)
    print(terminal.table(
        ["at (UTC) / 时间", "user / 用户", "action / 操作", ("status / 状态", "right"), "address / 地址",
         "target / 对象"],
        [(f"{r.at:%Y-%m-%d %H:%M:%S}Z", r.user_name or "-", r.action, str(r.status or ""), r.ip or "-",
          r.target or "") for r in reversed(rows)]))
    return 0


#: the roles of pipeline.portal.db.ROLES (not imported: SQLAlchemy loads only when a command runs)
ROLES = ("city", "province", "admin", "institution", "investigator", "tips")


def add_commands(sub, settings_of) -> None:
    """Register the portal sub-commands; ``settings_of(args)`` gives the Settings."""
    def wrap(fn):
        return lambda args: fn(args, settings_of(args))

    def db_arg(p):
        p.add_argument("--db", help="SQLAlchemy URL of the portal database "
                                    "(default: $CLAIMSCREEN_PORTAL_DB or sqlite <data_dir>/portal.db)")

    p = sub.add_parser("serve", help="start the download portal over the published runs")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--secure-cookie", action="store_true", help="mark the session cookie Secure (behind HTTPS)")
    db_arg(p)
    p.set_defaults(fn=wrap(cmd_serve))

    p = sub.add_parser("users", help="portal users: add, list")
    us = p.add_subparsers(dest="users_cmd", required=True)
    a = us.add_parser("add", help="add a portal user")
    a.add_argument("--name", required=True)
    pw = a.add_mutually_exclusive_group()
    pw.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    pw.add_argument("--password", help="the password (visible to other local users: prefer --password-stdin)")
    a.add_argument("--role", required=True, choices=ROLES)
    a.add_argument("--institution", help="institution id an institution account speaks for (role institution)")
    a.add_argument("--regions", default="", help="comma-separated region code prefixes, e.g. 4401,4402")
    db_arg(a)
    a.set_defaults(fn=wrap(cmd_users_add))
    ls = us.add_parser("list", help="list portal users")
    db_arg(ls)
    ls.set_defaults(fn=wrap(cmd_users_list))

    from pipeline.portal import cases_cli
    cases_cli.add_commands(sub, wrap, db_arg)

    p = sub.add_parser("audit", help="print the portal's audit log, oldest first")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--user")
    p.add_argument("--action")
    db_arg(p)
    p.set_defaults(fn=wrap(cmd_audit))
