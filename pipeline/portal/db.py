"""The portal's database: users, their regions, sessions and the append-only audit log.

SQLite by default (``<data_dir>/portal.db``); any SQLAlchemy URL through
``CLAIMSCREEN_PORTAL_DB`` (e.g. ``postgresql+psycopg://…``). Passwords are stored as
salted scrypt hashes (standard library, no new dependency). The audit log is only ever
inserted into; the database itself refuses UPDATE and DELETE on it (triggers), so a bug
or a compromised app account cannot rewrite history through the app's connection.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import (Boolean, Column, DateTime, ForeignKey, Index, Integer, MetaData, String,
                        Table, create_engine, event, func, insert, select, text)
from sqlalchemy.engine import Engine

ROLES = ("city", "province", "admin", "institution", "investigator", "tips")
#: roles that need region prefixes (a tips desk without regions serves the whole province)
REGIONAL_ROLES = ("city", "investigator")
INSTITUTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
REGION = re.compile(r"^\d{2,6}$")
USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
SESSION_HOURS = 8
FAILED_LOGINS_ALLOWED = 5
FAILED_LOGIN_WINDOW = timedelta(minutes=15)

metadata = MetaData()

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime, nullable=False),
)

user_regions = Table(
    "user_regions", metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("region", String(12), primary_key=True),
)

user_institutions = Table(   # the one institution an ``institution`` account speaks for
    "user_institutions", metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("institution_id", String(40), nullable=False),
)

sessions = Table(
    "sessions", metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("user_name", String(64)),
    Column("action", String(32), nullable=False),
    Column("target", String(500)),
    Column("ip", String(64)),
    Column("status", Integer),
    Index("ix_audit_user_ip_at", "user_name", "ip", "at"),
)

_APPEND_ONLY = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
        "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
        "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
    ],
}


def now() -> datetime:
    """UTC, naive (stored the same way by every backend)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def default_url(data_dir) -> str:
    return os.environ.get("CLAIMSCREEN_PORTAL_DB") or f"sqlite:///{os.path.join(str(data_dir), 'portal.db')}"


def connect(url: str) -> Engine:
    """An engine with the schema created and the audit log made append-only."""
    if url.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(os.path.abspath(url[len("sqlite:///"):])) or ".", exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 15} if url.startswith("sqlite") else {})
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_con, _record):
            cur = dbapi_con.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    from pipeline.portal import cases   # registers the case and tip tables (imports this module)
    metadata.create_all(engine)
    with engine.begin() as con:
        for stmt in _APPEND_ONLY.get(engine.dialect.name, []) + cases.append_only(engine.dialect.name):
            con.execute(text(stmt))
    return engine


# ------------------------------------------------------------------- passwords

_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt${n}${r}${p}${salt}${digest}".format(
        **_SCRYPT, salt=base64.b64encode(salt).decode(), digest=base64.b64encode(digest).decode())


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r),
                             p=int(p), dklen=len(base64.b64decode(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


_DUMMY_HASH = hash_password(secrets.token_hex(8))   # unknown users cost the same time


# ----------------------------------------------------------------------- users

@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    regions: tuple[str, ...]
    institution: str | None = None      # institution accounts only

    @property
    def scope(self) -> list[str] | None:
        """Region prefixes this user may see; None = every region (an institution
        account has no region scope: it sees its own institution only)."""
        if self.role == "institution":
            return []
        if self.role == "tips" and not self.regions:     # a province's tips desk
            return None
        return None if self.role in ("province", "admin") else list(self.regions)

    def sees(self, region: str | None) -> bool:
        scope = self.scope
        return scope is None or (region is not None and any(str(region).startswith(p) for p in scope))

    def sees_institution(self, institution_id: str | None, region: str | None) -> bool:
        """May this user see the reports and findings of this institution?"""
        if self.role == "institution":
            return institution_id is not None and institution_id == self.institution
        return self.sees(region)


def add_user(engine: Engine, name: str, password: str, role: str, regions: list[str],
             institution: str | None = None) -> User:
    if not USER_NAME.match(name or ""):
        raise ValueError("user name: 1-64 of letters, digits and _ . @ -")
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    regions = sorted({r.strip() for r in regions if r.strip()})
    bad = [r for r in regions if not REGION.match(r)]
    if bad:
        raise ValueError(f"region codes are 2-6 digits (a prefix): {bad}")
    if role in REGIONAL_ROLES and not regions:
        raise ValueError(f"a {role} user needs at least one region code")
    if role == "institution":
        if not INSTITUTION_ID.match(institution or "") or regions:
            raise ValueError("an institution user needs --institution <id> and no regions")
    elif institution:
        raise ValueError("only an institution user is bound to an institution")
    if len(password) < 8:
        raise ValueError("password: at least 8 characters")
    with engine.begin() as con:
        if con.execute(select(users.c.id).where(users.c.name == name)).first():
            raise ValueError(f"user {name!r} exists")
        uid = con.execute(insert(users).values(name=name, password_hash=hash_password(password),
                                               role=role, disabled=False, created_at=now())).inserted_primary_key[0]
        for r in regions:
            con.execute(insert(user_regions).values(user_id=uid, region=r))
        if role == "institution":
            con.execute(insert(user_institutions).values(user_id=uid, institution_id=institution))
    return User(uid, name, role, tuple(regions), institution if role == "institution" else None)


def _load_user(con, row) -> User:
    regions = tuple(r for (r,) in con.execute(
        select(user_regions.c.region).where(user_regions.c.user_id == row.id).order_by(user_regions.c.region)))
    inst = con.execute(select(user_institutions.c.institution_id).where(
        user_institutions.c.user_id == row.id)).scalar() if row.role == "institution" else None
    return User(row.id, row.name, row.role, regions, inst)


def list_users(engine: Engine) -> list[tuple[User, bool, datetime]]:
    with engine.connect() as con:
        rows = con.execute(select(users).order_by(users.c.name)).all()
        return [(_load_user(con, r), bool(r.disabled), r.created_at) for r in rows]


def authenticate(engine: Engine, name: str, password: str) -> User | None:
    with engine.connect() as con:
        row = con.execute(select(users).where(users.c.name == name)).first()
        if row is None:
            verify_password(password, _DUMMY_HASH)
            return None
        if not verify_password(password, row.password_hash) or row.disabled:
            return None
        return _load_user(con, row)


def failed_logins(engine: Engine, name: str, ip: str) -> int:
    """Wrong passwords for this name from this address in the window, since its last sign-in."""
    since = now() - FAILED_LOGIN_WINDOW
    with engine.connect() as con:
        last_ok = con.execute(select(func.max(audit_log.c.at)).where(
            audit_log.c.user_name == name, audit_log.c.ip == ip, audit_log.c.action == "login")).scalar()
        if last_ok is not None and last_ok > since:
            since = last_ok
        return con.execute(select(func.count()).select_from(audit_log).where(
            audit_log.c.user_name == name, audit_log.c.ip == ip,
            audit_log.c.action == "login_failed", audit_log.c.at > since)).scalar()


# -------------------------------------------------------------------- sessions

def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(engine: Engine, user: User) -> str:
    token = secrets.token_urlsafe(32)
    with engine.begin() as con:
        con.execute(sessions.delete().where(sessions.c.expires_at <= now()))
        con.execute(insert(sessions).values(token_sha256=_token_hash(token), user_id=user.id,
                                            created_at=now(), expires_at=now() + timedelta(hours=SESSION_HOURS)))
    return token


def session_user(engine: Engine, token: str | None) -> User | None:
    if not token or len(token) > 100:
        return None
    with engine.connect() as con:
        row = con.execute(select(users).join(sessions, sessions.c.user_id == users.c.id).where(
            sessions.c.token_sha256 == _token_hash(token), sessions.c.expires_at > now(),
            users.c.disabled.is_(False))).first()
        return _load_user(con, row) if row else None


def close_session(engine: Engine, token: str | None) -> None:
    if token:
        with engine.begin() as con:
            con.execute(sessions.delete().where(sessions.c.token_sha256 == _token_hash(token)))


# ----------------------------------------------------------------------- audit

def audit(engine: Engine, user_name: str | None, action: str, target: str | None, ip: str | None,
          status: int | None = None) -> None:
    """Append one row to the audit log (the only write the app ever makes to it)."""
    with engine.begin() as con:
        con.execute(insert(audit_log).values(at=now(), user_name=(user_name or None) and user_name[:64],
                                             action=action[:32], target=(target or "")[:500],
                                             ip=(ip or "")[:64], status=status))


def audit_rows(engine: Engine, limit: int = 100, user_name: str | None = None,
               action: str | None = None) -> list:
    q = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if user_name:
        q = q.where(audit_log.c.user_name == user_name)
    if action:
        q = q.where(audit_log.c.action == action)
    with engine.connect() as con:
        return con.execute(q).all()
