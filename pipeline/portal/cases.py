"""From suspicion to case: the review workflow, its outcomes, tips, credit and points.

A finding of a published run becomes a **case**, which goes through the steps of the
national framework, each with a time limit (``data/cases.yaml``)::

    first_review 初审 ─escalate→ second_review 复审 ─notify→ appeal 申诉 ─appeal/lapse→
    investigation 调查核实 ─report→ decision 处理 ─confirm→ confirmed 确认违规
                                                  └dismiss→ dismissed 排除
    (first and second review may also dismiss)

Who may do what is :data:`TRANSITIONS` (role and step); every transition is a row of
``case_events`` and of the portal's append-only audit log. Outcomes feed back:

* a dismissed case writes a dismissal (:mod:`pipeline.dismiss`): the finding leaves every
  later published run;
* :func:`precision` gives per detector and month confirmed / (confirmed + dismissed);
* :func:`export_truth` writes confirmed cases as ``cases.parquet`` and dismissed ones as
  ``lookalikes.parquet`` in the ground-truth format ``claimscreen evaluate`` reads.

Tips (举报线索) are stored with the reporter's identity encrypted (Fernet, key outside the
database) and are readable by the ``tips`` role only; a tip linked to a case that is
confirmed becomes eligible for a reward. Confirmed cases give practitioners points
(yearly threshold → billing suspended) and floor the institutions' credit grade.

Tables live in the portal's database (SQLite by default, any SQLAlchemy URL).
"""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy import (Boolean, Column, Date, DateTime, ForeignKey, Integer, Numeric, String, Table,
                        Text, insert, select, update)
from sqlalchemy.engine import Engine

from pipeline import ROOT
from pipeline.portal import db

CONFIG_FILE = ROOT / "data" / "cases.yaml"

STATES = {  # state: (English, Chinese)
    "first_review": ("First review", "初审"),
    "second_review": ("Second review", "复审"),
    "appeal": ("Appeal", "申诉"),
    "investigation": ("Investigation", "调查核实"),
    "decision": ("Decision", "处理"),
    "confirmed": ("Confirmed", "确认违规"),
    "dismissed": ("Dismissed", "排除"),
}
OPEN_STATES = ("first_review", "second_review", "appeal", "investigation", "decision")
CLOSED_STATES = ("confirmed", "dismissed")

#: action: (from state, to state, roles that may do it, English, Chinese)
TRANSITIONS = {
    "escalate": ("first_review", "second_review", ("city", "admin"), "Pass to second review", "初审通过，提交复审"),
    "dismiss_first": ("first_review", "dismissed", ("city", "admin"), "Dismiss at first review", "初审排除"),
    "notify": ("second_review", "appeal", ("province", "admin"), "Notify the institution", "复审确认，通知机构申诉"),
    "dismiss_second": ("second_review", "dismissed", ("province", "admin"), "Dismiss at second review", "复审排除"),
    "appeal": ("appeal", "investigation", ("institution",), "Explain or correct (appeal)", "机构申诉/说明"),
    "lapse": ("appeal", "investigation", ("city", "province", "admin"), "Appeal time over: investigate",
              "申诉期满，转调查核实"),
    "report": ("investigation", "decision", ("investigator", "admin"), "Investigation report", "提交核查结论"),
    "confirm": ("decision", "confirmed", ("province", "admin"), "Confirm the violation", "确认违规"),
    "dismiss": ("decision", "dismissed", ("province", "admin"), "Dismiss", "排除疑点"),
}
#: the events an institution reads on its case (not the offices' internal review, nor who did it)
INSTITUTION_EVENTS = ("notify", "appeal", "lapse", "confirm", "dismiss")
#: roles that may open a case from a finding (within their scope)
OPENERS = ("city", "province", "admin", "tips")
GRADES = "ABCDE"

cases = Table(
    "cases", db.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("finding_id", String(64), nullable=False, index=True),
    Column("run_date", String(10), nullable=False),
    Column("detector_id", String(64), nullable=False),
    Column("entity_type", String(16), nullable=False),
    Column("entity_id", String(64)),
    Column("institution_id", String(40), index=True),
    Column("region", String(12)),
    Column("patient_id", String(64)),
    Column("doctor_id", String(64)),
    Column("settlement_ids", Text, nullable=False),           # JSON list
    Column("amount_at_risk", Numeric(14, 2)),
    Column("first_seen", Date),
    Column("reason", Text),
    Column("state", String(16), nullable=False),
    Column("opened_by", String(64), nullable=False),
    Column("opened_at", DateTime, nullable=False),
    Column("step_started_at", DateTime, nullable=False),
    Column("due_at", DateTime),
    Column("notified_at", DateTime),                          # the institution sees the case from here on
    Column("closed_at", DateTime),
    Column("appeal_text", Text),
)

case_events = Table(   # one row per transition; never updated
    "case_events", db.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=False, index=True),
    Column("at", DateTime, nullable=False),
    Column("user_name", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("action", String(32), nullable=False),
    Column("from_state", String(16)),
    Column("to_state", String(16), nullable=False),
    Column("note", Text),
)

tips = Table(
    "tips", db.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("public_ref", String(24), nullable=False, unique=True),   # given to the reporter
    Column("submitted_at", DateTime, nullable=False),
    Column("institution_id", String(40)),
    Column("doctor_id", String(64)),
    Column("patient_id", String(64)),
    Column("date_from", Date),
    Column("date_to", Date),
    Column("region", String(12)),
    Column("text", Text, nullable=False),
    Column("reporter_sealed", Text),              # Fernet token of {"name", "contact"}; null = anonymous
    Column("reward_eligible", Boolean, nullable=False, default=False),
    Column("reward_case_id", Integer),
)

tip_links = Table(
    "tip_links", db.metadata,
    Column("tip_id", Integer, ForeignKey("tips.id"), primary_key=True),
    Column("case_id", Integer, ForeignKey("cases.id"), primary_key=True),
    Column("linked_by", String(64), nullable=False),
    Column("linked_at", DateTime, nullable=False),
)


def append_only(dialect: str) -> list[str]:
    """Triggers making case_events refuse UPDATE and DELETE (as the audit log does)."""
    if dialect == "sqlite":
        return [f"CREATE TRIGGER IF NOT EXISTS case_events_no_{op.lower()} BEFORE {op} ON case_events "
                "BEGIN SELECT RAISE(ABORT, 'case_events is append-only'); END" for op in ("UPDATE", "DELETE")]
    if dialect == "postgresql":
        return ["CREATE OR REPLACE FUNCTION case_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'case_events is append-only'; END $$",
                "DROP TRIGGER IF EXISTS case_events_append_only ON case_events",
                "CREATE TRIGGER case_events_append_only BEFORE UPDATE OR DELETE ON case_events "
                "FOR EACH ROW EXECUTE FUNCTION case_events_append_only()",
                "DROP TRIGGER IF EXISTS case_events_no_truncate ON case_events",
                "CREATE TRIGGER case_events_no_truncate BEFORE TRUNCATE ON case_events "
                "FOR EACH STATEMENT EXECUTE FUNCTION case_events_append_only()"]
    return []


class CaseError(Exception):
    """A refused case operation; status is the HTTP status the portal answers with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# ----------------------------------------------------------------------- config

@dataclass(frozen=True)
class Config:
    version: str
    deadlines_days: dict
    yearly_threshold: int
    points_per_detector: dict
    credit_window_days: int
    credit_floors: dict          # n confirmed -> grade
    tips_per_address_per_hour: int


def load_config(path=None) -> Config:
    path = Path(path or os.environ.get("CLAIMSCREEN_CASES_CONFIG") or CONFIG_FILE)
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    deadlines = {k: int(v) for k, v in (doc.get("deadlines_days") or {}).items()}
    missing = [s for s in OPEN_STATES if s not in deadlines]
    if missing:
        raise ValueError(f"{path}: deadlines_days lacks {missing}")
    floors = {int(k): str(v) for k, v in ((doc.get("credit") or {}).get("floors") or {}).items()}
    if any(g not in GRADES for g in floors.values()):
        raise ValueError(f"{path}: credit floors must be grades A-E")
    points = doc.get("points") or {}
    return Config(version=str(doc.get("version", "")), deadlines_days=deadlines,
                  yearly_threshold=int(points.get("yearly_threshold", 12)),
                  points_per_detector={k: int(v) for k, v in (points.get("per_detector") or {}).items()},
                  credit_window_days=int((doc.get("credit") or {}).get("window_days", 365)),
                  credit_floors=floors,
                  tips_per_address_per_hour=int((doc.get("tips") or {}).get("per_address_per_hour", 5)))


def label(state: str) -> str:
    en, zh = STATES[state]
    return f"{en} / {zh}"


# ----------------------------------------------------------------- visibility

def may_view(user: db.User, case) -> bool:
    """May this user read this case? Institutions see their own once notified."""
    if user.role == "institution":
        return case.institution_id == user.institution and case.notified_at is not None
    return user.sees(case.region)


def actions_for(user: db.User, case) -> list[str]:
    """The transitions this user may do on this case now."""
    if not may_view(user, case):
        return []
    return [a for a, (src, _dst, roles, *_l) in TRANSITIONS.items() if case.state == src and user.role in roles]


def get_case(engine: Engine, case_id: int):
    with engine.connect() as con:
        return con.execute(select(cases).where(cases.c.id == case_id)).first()


def events(engine: Engine, case_id: int) -> list:
    with engine.connect() as con:
        return con.execute(select(case_events).where(case_events.c.case_id == case_id)
                           .order_by(case_events.c.id)).all()


def list_cases(engine: Engine, user: db.User, overdue_only: bool = False, at: datetime | None = None) -> list:
    """The cases this user may read (newest first); overdue_only: open and past their step's limit."""
    q = select(cases).order_by(cases.c.id.desc())
    if user.role == "institution":
        q = q.where(cases.c.institution_id == user.institution, cases.c.notified_at.is_not(None))
    if overdue_only:
        q = q.where(cases.c.state.in_(OPEN_STATES), cases.c.due_at < (at or db.now()))
    with engine.connect() as con:
        rows = con.execute(q).all()
    return [r for r in rows if may_view(user, r)]


# --------------------------------------------------------------- transitions

def open_case(engine: Engine, user: db.User, finding: dict, run_date: str, region: str | None,
              config: Config, tip_id: int | None = None, note: str = "") -> int:
    """A case from a finding of a published run (the caller has checked the finding is in
    the user's scope). One open case per finding."""
    if user.role not in OPENERS:
        raise CaseError(403, "this role does not open cases")
    t = db.now()
    with engine.begin() as con:
        if con.execute(select(cases.c.id).where(cases.c.finding_id == finding["finding_id"],
                                                cases.c.state.in_(OPEN_STATES))).first():
            raise CaseError(409, "this finding already has an open case")
        cid = con.execute(insert(cases).values(
            finding_id=finding["finding_id"], run_date=run_date, detector_id=finding["detector_id"],
            entity_type=finding["entity_type"], entity_id=finding["entity_id"],
            institution_id=finding["institution_id"], region=region, patient_id=finding["patient_id"],
            doctor_id=finding["doctor_id"], settlement_ids=json.dumps(list(finding["settlement_ids"] or [])),
            amount_at_risk=finding["amount_at_risk"], first_seen=finding["first_seen"],
            reason=finding["reason"], state="first_review", opened_by=user.name, opened_at=t,
            step_started_at=t, due_at=t + timedelta(days=config.deadlines_days["first_review"]),
        )).inserted_primary_key[0]
        con.execute(insert(case_events).values(case_id=cid, at=t, user_name=user.name, role=user.role,
                                               action="open", from_state=None, to_state="first_review",
                                               note=note[:4000] or None))
        if tip_id is not None:
            con.execute(insert(tip_links).values(tip_id=tip_id, case_id=cid, linked_by=user.name, linked_at=t))
    return cid


def act(engine: Engine, user: db.User, case_id: int, action: str, note: str, config: Config,
        settings=None, at: datetime | None = None) -> str:
    """Do one transition; returns the new state. Raises CaseError (404 when the user may
    not see the case, 403 when the role may not do it, 409 when the step is not current
    or its time is over)."""
    t = at or db.now()
    note = (note or "").strip()[:4000]
    with engine.begin() as con:
        case = con.execute(select(cases).where(cases.c.id == case_id)).first()
        if case is None or not may_view(user, case):
            raise CaseError(404, "no such case")
        if action not in TRANSITIONS:
            raise CaseError(400, "no such action")
        src, dst, roles, *_ = TRANSITIONS[action]
        if user.role not in roles:
            raise CaseError(403, f"a {user.role} user may not {action}")
        if case.state != src:
            raise CaseError(409, f"the case is at {case.state}, not {src}")
        if action == "appeal" and case.due_at is not None and t > case.due_at:
            raise CaseError(409, "the appeal time is over")
        if action == "lapse" and case.due_at is not None and t <= case.due_at:
            raise CaseError(409, "the institution's appeal time is not over yet")
        if action in ("appeal", "dismiss_first", "dismiss_second", "dismiss", "confirm", "report") and not note:
            raise CaseError(400, "this step needs a written note")
        values = {"state": dst, "step_started_at": t,
                  "due_at": t + timedelta(days=config.deadlines_days[dst]) if dst in OPEN_STATES else None}
        if action == "notify":
            values["notified_at"] = t
        if action == "appeal":
            values["appeal_text"] = note
        if dst in CLOSED_STATES:
            values["closed_at"] = t
        # compare-and-set on the state: two reviewers acting at once cannot both win
        done = con.execute(update(cases).where(cases.c.id == case_id, cases.c.state == src).values(**values))
        if done.rowcount != 1:
            raise CaseError(409, "the case changed meanwhile")
        con.execute(insert(case_events).values(case_id=case_id, at=t, user_name=user.name, role=user.role,
                                               action=action, from_state=src, to_state=dst, note=note or None))
        if dst == "confirmed":
            con.execute(update(tips).where(tips.c.id.in_(select(tip_links.c.tip_id).where(
                tip_links.c.case_id == case_id)), tips.c.reward_eligible.is_(False)).values(
                reward_eligible=True, reward_case_id=case_id))
    if dst == "dismissed" and settings is not None:
        from pipeline import dismiss
        dismiss.dismiss(settings, case.finding_id, f"case {case_id} ({action}): {note}", by=user.name,
                        on=t.date().isoformat())
    return dst


# ------------------------------------------------------------------ feedback

def precision(engine: Engine, user: db.User | None = None) -> list[dict]:
    """Per detector and month of decision: confirmed, dismissed and their precision."""
    with engine.connect() as con:
        rows = con.execute(select(cases).where(cases.c.state.in_(CLOSED_STATES))).all()
    agg: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        if user is not None and not may_view(user, r):
            continue
        k = (r.detector_id, r.closed_at.strftime("%Y-%m"))
        agg.setdefault(k, [0, 0])[0 if r.state == "confirmed" else 1] += 1
    out = []
    for (det, month), (c, d) in sorted(agg.items()):
        out.append({"detector_id": det, "month": month, "confirmed": c, "dismissed": d,
                    "precision": c / (c + d)})
    return out


def export_truth(engine: Engine, out_dir: Path, publish_dir: Path | None = None) -> dict:
    """Decided cases in the ground-truth format of ``claimscreen evaluate``: confirmed
    cases as cases.parquet (scheme = the detector that found it), dismissed ones as
    lookalikes.parquet (honest: a finding touching them is a false positive), and the
    members of confirmed ring cases as ring_members.parquet (from the case's run)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with engine.connect() as con:
        rows = con.execute(select(cases).where(cases.c.state.in_(CLOSED_STATES)).order_by(cases.c.id)).all()
    conf = [r for r in rows if r.state == "confirmed"]
    dism = [r for r in rows if r.state == "dismissed"]

    def sids(r):
        return list(json.loads(r.settlement_ids))

    def first(r):
        return r.first_seen or date.fromisoformat(r.run_date)

    case_schema = pa.schema([("case_id", pa.string()), ("scheme", pa.string()), ("entity_type", pa.string()),
                             ("entity_id", pa.string()), ("institution_id", pa.string()),
                             ("patient_id", pa.string()), ("doctor_id", pa.string()),
                             ("settlement_ids", pa.list_(pa.string())), ("first_date", pa.date32()),
                             ("detectable_from", pa.date32())])
    pq.write_table(pa.table({
        "case_id": [f"{r.detector_id}-case{r.id:05d}" for r in conf], "scheme": [r.detector_id for r in conf],
        "entity_type": [r.entity_type for r in conf], "entity_id": [r.entity_id for r in conf],
        "institution_id": [r.institution_id for r in conf], "patient_id": [r.patient_id for r in conf],
        "doctor_id": [r.doctor_id for r in conf], "settlement_ids": [sids(r) for r in conf],
        "first_date": [first(r) for r in conf], "detectable_from": [first(r) for r in conf]},
        schema=case_schema), out_dir / "cases.parquet")
    la_schema = pa.schema([("kind", pa.string()), ("description", pa.string()), ("scheme", pa.string()),
                           ("entity_type", pa.string()), ("entity_id", pa.string()),
                           ("patient_id", pa.string()), ("institution_id", pa.string()),
                           ("settlement_ids", pa.list_(pa.string()))])
    notes = {}
    if dism:
        with engine.connect() as con:
            for cid, note in con.execute(select(case_events.c.case_id, case_events.c.note).where(
                    case_events.c.case_id.in_([r.id for r in dism]),
                    case_events.c.to_state == "dismissed")):
                notes[cid] = note
    pq.write_table(pa.table({
        "kind": ["dismissed_case"] * len(dism),
        "description": [f"case {r.id}: {notes.get(r.id) or ''}" for r in dism],
        "scheme": [r.detector_id for r in dism], "entity_type": [r.entity_type for r in dism],
        "entity_id": [r.entity_id for r in dism], "patient_id": [r.patient_id for r in dism],
        "institution_id": [r.institution_id for r in dism], "settlement_ids": [sids(r) for r in dism]},
        schema=la_schema), out_dir / "lookalikes.parquet")
    members = {"ring_id": [], "member_type": [], "member_id": []}
    rings = [r for r in conf if r.entity_type == "ring"]
    if rings and publish_dir is not None:
        import duckdb
        from pipeline.lake import sql_literal
        con = duckdb.connect()
        for r in rings:
            f = Path(publish_dir) / r.run_date / "rings.parquet"
            if f.exists():
                for mt, mid in con.execute(f"SELECT member_type, member_id FROM read_parquet({sql_literal(f)}) "
                                           "WHERE ring_id = ? ORDER BY 1, 2", [r.entity_id]).fetchall():
                    members["ring_id"].append(r.entity_id)
                    members["member_type"].append(mt)
                    members["member_id"].append(mid)
        con.close()
    pq.write_table(pa.table(members, schema=pa.schema([("ring_id", pa.string()), ("member_type", pa.string()),
                                                       ("member_id", pa.string())])),
                   out_dir / "ring_members.parquet")
    return {"confirmed": len(conf), "dismissed": len(dism), "ring_members": len(members["ring_id"])}


# -------------------------------------------------------------- credit, points

def _severity() -> dict[str, float]:
    from pipeline import registry
    return {d.id: d.severity for d in registry.all_detectors()}


def points(engine: Engine, config: Config, user: db.User | None = None, year: int | None = None,
           before: datetime | None = None) -> list[dict]:
    """Points per doctor in a calendar year from confirmed cases charged to a doctor;
    at or over the yearly threshold the doctor's billing is suspended. ``before``: only
    cases decided before that moment (the published reports count as of their run)."""
    year = year or db.now().year
    sev = _severity()
    with engine.connect() as con:
        rows = con.execute(select(cases).where(cases.c.state == "confirmed", cases.c.doctor_id.is_not(None))
                           .order_by(cases.c.id)).all()
    agg: dict[str, dict] = {}
    for r in rows:
        if r.closed_at.year != year or (user is not None and not may_view(user, r)):
            continue
        if before is not None and r.closed_at >= before:
            continue
        p = config.points_per_detector.get(r.detector_id, int(round(sev.get(r.detector_id, 3))))
        a = agg.setdefault(r.doctor_id, {"doctor_id": r.doctor_id, "institution_id": r.institution_id,
                                         "region": r.region, "points": 0, "cases": [], "institutions": []})
        a["points"] += p
        a["cases"].append(r.id)
        if r.institution_id not in a["institutions"]:
            a["institutions"].append(r.institution_id)
    out = sorted(agg.values(), key=lambda a: (-a["points"], a["doctor_id"]))
    for a in out:
        a["year"] = year
        a["threshold"] = config.yearly_threshold
        a["suspended"] = a["points"] >= config.yearly_threshold
    return out


def credit_grade(screening_grade: str | None, n_confirmed: int, config: Config) -> str:
    """The screening grade, made no better than the floor of the confirmed cases."""
    g = screening_grade if screening_grade in tuple(GRADES) else "A"
    floor = max((fl for n, fl in config.credit_floors.items() if n_confirmed >= n), key=GRADES.index, default="A")
    return max(g, floor, key=GRADES.index)


def credit_floor(n_confirmed: int, config: Config) -> str:
    """The best grade still possible with n_confirmed cases in the window ("A": no floor)."""
    return credit_grade("A", n_confirmed, config)


def confirmed_in_window(engine: Engine, config: Config, before: datetime) -> dict[str, int]:
    """Per institution, the cases confirmed in the credit window ending at ``before``
    (decided before it, within credit.window_days): what floors the credit grade then."""
    window = timedelta(days=config.credit_window_days)
    return {inst: n for inst, ats in confirmed_by_institution(engine).items()
            if (n := sum(1 for at in ats if before - window <= at < before))}


def confirmed_by_institution(engine: Engine) -> dict[str, list[datetime]]:
    with engine.connect() as con:
        rows = con.execute(select(cases.c.institution_id, cases.c.closed_at).where(cases.c.state == "confirmed")).all()
    out: dict[str, list[datetime]] = {}
    for inst, at in rows:
        out.setdefault(inst, []).append(at)
    return out


def credit_history(index_by_run: dict[str, list[dict]], engine: Engine, config: Config,
                   user: db.User) -> dict[str, list[dict]]:
    """Per institution the user sees: per published run, its screening grade, the cases
    confirmed in the window before the run's date and the credit grade."""
    confirmed = confirmed_by_institution(engine)
    window = timedelta(days=config.credit_window_days)
    out: dict[str, list[dict]] = {}

    def entry(label, day, r):
        n = sum(1 for at in confirmed.get(r["institution_id"], []) if day - window <= at < day)
        return {"run_date": label, "name": r["name"], "region": r["region"], "screening_grade": r["grade"],
                "confirmed": n, "credit_grade": credit_grade(r["grade"], n, config)}

    runs = sorted(index_by_run)
    for run_date in runs:
        day = datetime.fromisoformat(run_date) + timedelta(days=1)      # decisions up to the end of the day
        for r in index_by_run[run_date]:
            if user.sees_institution(r["institution_id"], r["region"]):
                out.setdefault(r["institution_id"], []).append(entry(run_date, day, r))
    if runs:   # today: the newest screening grade with the decisions taken since
        for r in index_by_run[runs[-1]]:
            if r["institution_id"] in out:
                out[r["institution_id"]].append(entry("now", db.now() + timedelta(seconds=1), r))
    return out


# ---------------------------------------------------------------------- tips

def tips_key(settings=None) -> bytes:
    """The Fernet key sealing reporters' identities: $CLAIMSCREEN_TIPS_KEY, else
    ``<data_dir>/tips.key`` (created mode 0600 on first use). Never in the database."""
    env = os.environ.get("CLAIMSCREEN_TIPS_KEY")
    if env:
        return env.encode()
    if settings is None:
        raise CaseError(503, "no key for tips: set CLAIMSCREEN_TIPS_KEY")
    from cryptography.fernet import Fernet
    path = Path(settings.data_dir) / "tips.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
    return path.read_bytes().strip()


def submit_tip(engine: Engine, key: bytes, fields: dict, region: str | None) -> str:
    """Store a tip; returns the reference given to the reporter. fields: institution_id,
    doctor_id, patient_id, date_from, date_to, text, reporter_name, reporter_contact."""
    from cryptography.fernet import Fernet

    def clean(k, n=64):
        v = str(fields.get(k) or "").strip()[:n]
        if v and not db.INSTITUTION_ID.match(v[:40]) and k != "text":
            raise CaseError(400, f"{k}: letters, digits, _ and - only")
        return v or None

    def day(k):
        v = str(fields.get(k) or "").strip()
        try:
            return date.fromisoformat(v) if v else None
        except ValueError:
            raise CaseError(400, f"{k}: a date YYYY-MM-DD") from None

    text = str(fields.get("text") or "").strip()
    if not text:
        raise CaseError(400, "a tip needs a description")
    inst, doctor, patient = clean("institution_id", 40), clean("doctor_id"), clean("patient_id")
    if not (inst or doctor or patient):
        raise CaseError(400, "name at least an institution, a doctor or a patient")
    name = str(fields.get("reporter_name") or "").strip()[:200]
    contact = str(fields.get("reporter_contact") or "").strip()[:200]
    sealed = Fernet(key).encrypt(json.dumps({"name": name, "contact": contact}).encode()).decode() \
        if (name or contact) else None
    ref = "T" + secrets.token_hex(8).upper()
    with engine.begin() as con:
        con.execute(insert(tips).values(public_ref=ref, submitted_at=db.now(), institution_id=inst,
                                        doctor_id=doctor, patient_id=patient, date_from=day("date_from"),
                                        date_to=day("date_to"), region=region, text=text[:4000],
                                        reporter_sealed=sealed, reward_eligible=False))
    return ref


def may_read_tips(user: db.User) -> bool:
    return user.role == "tips"


def list_tips(engine: Engine, user: db.User) -> list:
    if not may_read_tips(user):
        return []
    with engine.connect() as con:
        rows = con.execute(select(tips).order_by(tips.c.id.desc())).all()
    return [r for r in rows if user.scope is None or (r.region is not None and user.sees(r.region))]


def get_tip(engine: Engine, user: db.User, tip_id: int):
    for r in list_tips(engine, user):
        if r.id == tip_id:
            return r
    raise CaseError(404, "no such tip")


def reporter(tip, key: bytes) -> dict | None:
    from cryptography.fernet import Fernet
    if not tip.reporter_sealed:
        return None
    return json.loads(Fernet(key).decrypt(tip.reporter_sealed.encode()))


def tip_cases(engine: Engine, tip) -> list:
    """Cases touching the tip's entities, and those linked to it."""
    conds = []
    if tip.institution_id:
        conds.append(cases.c.institution_id == tip.institution_id)
    if tip.doctor_id:
        conds.append(cases.c.doctor_id == tip.doctor_id)
    if tip.patient_id:
        conds.append(cases.c.patient_id == tip.patient_id)
    from sqlalchemy import or_
    with engine.connect() as con:
        linked = {cid for (cid,) in con.execute(select(tip_links.c.case_id).where(tip_links.c.tip_id == tip.id))}
        rows = con.execute(select(cases).where(or_(cases.c.id.in_(linked or {-1}), *conds))
                           .order_by(cases.c.id)).all()
    return [(r, r.id in linked) for r in rows]


def link_tip(engine: Engine, user: db.User, tip_id: int, case_id: int) -> None:
    tip = get_tip(engine, user, tip_id)
    case = get_case(engine, case_id)
    if case is None or not may_view(user, case) or case.id not in {r.id for r, _ in tip_cases(engine, tip)}:
        raise CaseError(404, "no such case for this tip")
    with engine.begin() as con:
        if con.execute(select(tip_links).where(tip_links.c.tip_id == tip_id, tip_links.c.case_id == case_id)).first():
            raise CaseError(409, "already linked")
        con.execute(insert(tip_links).values(tip_id=tip_id, case_id=case_id, linked_by=user.name, linked_at=db.now()))
    # a tip linked after the decision did not lead to it: no reward from this link
