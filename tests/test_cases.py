"""The case workflow over a real portal on localhost: every step by the role that owns it,
institution self-inspection, tips with a sealed reporter, credit and points, the outcomes
fed back into the next run and into `evaluate`, and every cross-role / cross-region bypass
we could think of (each refused and audited)."""
from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path

import duckdb
import httpx
import pytest
import sqlalchemy as sa

from pipeline import cli, evaluate, screen
from pipeline.portal import cases, db
from pipeline.portal.app import create_app
from report_world import RUN_DATE, build_run, chromium, playwright_api, serving

PW = "pass-word-1"
USERS = {  # name: (role, regions, institution)
    "canton": ("city", ["4401"], None),           # Guangzhou: 440106, 440111
    "shenzhen": ("city", ["4403"], None),         # 440305
    "province": ("province", [], None),
    "root": ("admin", [], None),
    "kangning": ("institution", [], "H00000000001"),   # Kangning Clinic, 440111
    "longevity": ("institution", [], "P00000000002"),  # Longevity Pharmacy, 440305
    "inv-gz": ("investigator", ["4401"], None),
    "inv-sz": ("investigator", ["4403"], None),
    "tipdesk": ("tips", [], None),
}
H1, H4, P2 = "H00000000001", "H00000000004", "P00000000002"
REPORTER = "Wang Xiaoming 王小明"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cases")
    st, out = build_run(tmp)
    conf = tmp / "cases.yaml"
    doc = cases.yaml.safe_load(cases.CONFIG_FILE.read_text(encoding="utf-8"))
    doc["points"]["yearly_threshold"] = 6           # two duplicate-billing cases (3 points each)
    conf.write_text(cases.yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    # CLAIMSCREEN_TEST_PORTAL_DB runs the whole module on another database (emptied first)
    url = os.environ.get("CLAIMSCREEN_TEST_PORTAL_DB") or f"sqlite:///{tmp / 'portal.db'}"
    engine = db.connect(url)
    if not url.startswith("sqlite"):
        db.metadata.drop_all(engine)
        engine = db.connect(url)
    for name, (role, regions, inst) in USERS.items():
        db.add_user(engine, name, PW, role, regions, institution=inst)
    findings = duckdb.sql(f"SELECT finding_id, detector_id, institution_id, doctor_id FROM "
                          f"read_parquet('{out / 'findings.parquet'}') ORDER BY finding_id").fetchall()
    with serving(create_app(st.publish_dir, url, settings=st, cases_config=conf)) as port:
        yield {"base": f"http://127.0.0.1:{port}", "engine": engine, "url": url, "settings": st, "out": out,
               "conf": conf, "findings": findings, "tmp": tmp}


def _client(world, name=None, local_address=None) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=local_address) if local_address else None
    c = httpx.Client(base_url=world["base"], follow_redirects=False, timeout=30, transport=transport)
    if name:
        r = c.post("/login", data={"name": name, "password": PW})
        assert r.status_code == 303, r.text
    return c


def _finding(world, institution, detector=None, n=0) -> str:
    ids = [f for f, d, i, _ in world["findings"] if i == institution and (detector is None or d == detector)]
    return ids[n]


def _open(world, who, finding, run=RUN_DATE) -> int:
    r = _client(world, who).post("/cases/open", data={"run_date": run, "finding_id": finding})
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


def _act(world, who, case_id, action, note="checked the records", expect=303):
    r = _client(world, who).post(f"/cases/{case_id}/act", data={"action": action, "note": note})
    assert r.status_code == expect, (who, action, r.status_code, r.text[:300])
    return r


def _state(world, case_id) -> str:
    return cases.get_case(world["engine"], case_id).state


def _last_audit_id(world) -> int:
    return max([r.id for r in db.audit_rows(world["engine"], limit=1)] or [0])


def _audited_since(world, since: int) -> list:
    return sorted((r for r in db.audit_rows(world["engine"], limit=10_000) if r.id > since), key=lambda r: r.id)


# ------------------------------------------------------------------ the workflow

def test_a_case_goes_through_every_step_by_the_role_that_owns_it(world):
    fid = _finding(world, H1, "duplicate_billing", 0)
    before = _last_audit_id(world)
    cid = _open(world, "canton", fid)
    assert _state(world, cid) == "first_review"
    # the institution does not see internal review
    assert _client(world, "kangning").get(f"/cases/{cid}").status_code == 404
    assert f"#{cid}<" not in _client(world, "kangning").get("/cases").text
    _act(world, "canton", cid, "escalate")
    assert _state(world, cid) == "second_review"
    _act(world, "province", cid, "notify")
    assert _state(world, cid) == "appeal"
    page = _client(world, "kangning").get(f"/cases/{cid}")
    assert page.status_code == 200 and "Explain or correct (appeal)" in page.text
    _act(world, "kangning", cid, "appeal", note="the second test was ordered by another doctor / 另一医师开具")
    assert _state(world, cid) == "investigation"
    _act(world, "inv-gz", cid, "report", note="only one test was done: the second is billed without a record")
    assert _state(world, cid) == "decision"
    _act(world, "province", cid, "confirm", note="duplicate charge confirmed, refund ordered")
    c = cases.get_case(world["engine"], cid)
    assert c.state == "confirmed" and c.closed_at is not None and c.due_at is None
    assert c.appeal_text.startswith("the second test")
    evs = [(e.action, e.user_name, e.from_state, e.to_state) for e in cases.events(world["engine"], cid)]
    assert evs == [("open", "canton", None, "first_review"),
                   ("escalate", "canton", "first_review", "second_review"),
                   ("notify", "province", "second_review", "appeal"),
                   ("appeal", "kangning", "appeal", "investigation"),
                   ("report", "inv-gz", "investigation", "decision"),
                   ("confirm", "province", "decision", "confirmed")]
    audited = [(r.action, r.user_name) for r in _audited_since(world, before) if r.action.startswith("case_")]
    assert audited == [("case_open", "canton"), ("case_escalate", "canton"), ("case_notify", "province"),
                       ("case_appeal", "kangning"), ("case_report", "inv-gz"), ("case_confirm", "province")]
    # the history is on the case page for every role that sees it
    for who in ("canton", "province", "root", "kangning", "inv-gz"):
        r = _client(world, who).get(f"/cases/{cid}")
        assert r.status_code == 200 and "Confirmed / 确认违规" in r.text and "refund ordered" in r.text, who
    # the institution reads the notification, its appeal and the decision, not the internal review
    inst_page = _client(world, "kangning").get(f"/cases/{cid}").text
    history = inst_page.split("History / 流转记录")[1]
    assert "only one test was done" not in history and "canton" not in history and "inv-gz" not in history
    assert "notify" in history and "appeal" in history and "confirm" in history


def test_each_step_refuses_the_roles_that_do_not_own_it(world):
    fid = _finding(world, H1, "duplicate_billing", 1)
    cid = _open(world, "canton", fid)
    before = _last_audit_id(world)
    for who, action in (("province", "escalate"), ("inv-gz", "escalate"), ("canton", "notify"),
                        ("canton", "confirm"), ("inv-gz", "confirm"), ("root", "report")):
        _act(world, who, cid, action, expect=403 if action in ("escalate", "notify", "confirm") and who != "root"
             else 409)
    _act(world, "canton", cid, "escalate")
    _act(world, "canton", cid, "escalate", expect=409)                 # replayed form: the step is over
    _act(world, "province", cid, "notify")
    _act(world, "kangning", cid, "confirm", expect=403)                # an institution never decides
    _act(world, "kangning", cid, "appeal", note="", expect=400)         # an appeal says something
    denied = [r for r in _audited_since(world, before) if r.action == "denied"]
    assert [r.status for r in denied] == [403, 403, 403, 403, 403, 409, 409, 403, 400]
    assert _state(world, cid) == "appeal"


def test_appeal_within_the_deadline_only_then_the_office_proceeds(world):
    cid = _open(world, "canton", _finding(world, H1, "duplicate_billing", 2))
    _act(world, "canton", cid, "escalate")
    _act(world, "province", cid, "notify")
    _act(world, "canton", cid, "lapse", expect=409)                    # the institution's time is not over
    c = cases.get_case(world["engine"], cid)
    conf = cases.load_config(world["conf"])
    assert (c.due_at - c.step_started_at) == timedelta(days=conf.deadlines_days["appeal"])
    with world["engine"].begin() as con:                               # ten days later
        con.execute(sa.update(cases.cases).where(cases.cases.c.id == cid).values(
            due_at=db.now() - timedelta(minutes=1)))
    before = _last_audit_id(world)
    _act(world, "kangning", cid, "appeal", note="late explanation", expect=409)
    assert [r.status for r in _audited_since(world, before) if r.action == "denied"] == [409]
    overdue = _client(world, "canton").get("/cases", params={"overdue": 1})
    assert f"/cases/{cid}'" in overdue.text and "OVERDUE" in overdue.text
    assert f"/cases/{cid}'" not in _client(world, "shenzhen").get("/cases", params={"overdue": 1}).text
    _act(world, "canton", cid, "lapse", note="")
    assert _state(world, cid) == "investigation"
    # overdue by the clock: an open case past its step's limit is listed, a decided one never
    assert cid not in [r.id for r in cases.list_cases(world["engine"], db.User(0, "x", "admin", ()),
                                                      overdue_only=True)]
    later = db.now() + timedelta(days=conf.deadlines_days["investigation"] + 1)
    assert cid in [r.id for r in cases.list_cases(world["engine"], db.User(0, "x", "admin", ()),
                                                  overdue_only=True, at=later)]


def test_one_open_case_per_finding(world):
    fid = _finding(world, P2, "duplicate_billing", 0)
    cid = _open(world, "shenzhen", fid)
    r = _client(world, "province").post("/cases/open", data={"run_date": RUN_DATE, "finding_id": fid})
    assert r.status_code == 409
    _act(world, "shenzhen", cid, "dismiss_first", note="two dispensings, two prescriptions")
    assert _state(world, cid) == "dismissed"


# ------------------------------------------------------------ self-inspection

def test_institution_sees_its_own_findings_and_reports_only(world):
    c = _client(world, "kangning")
    run = c.get(f"/runs/{RUN_DATE}/")
    assert run.status_code == 200 and H1 in run.text and H4 not in run.text and P2 not in run.text
    own = c.get(f"/runs/{RUN_DATE}/findings/{H1}")
    assert own.status_code == 200 and "Self-inspection" in own.text and "Open case" not in own.text
    assert own.text.count("duplicate_billing") == 3 and "P034" not in own.text
    assert c.get(f"/runs/{RUN_DATE}/reports/institutions/{H1}.html").status_code == 200
    before = _last_audit_id(world)
    for path in (f"/runs/{RUN_DATE}/findings/{H4}", f"/runs/{RUN_DATE}/findings/{P2}",
                 f"/runs/{RUN_DATE}/reports/institutions/{H4}.html",
                 f"/runs/{RUN_DATE}/reports/institutions/{P2}.csv",
                 f"/runs/{RUN_DATE}/overview.html", f"/runs/{RUN_DATE}/validation/index.html",
                 "/tips", "/tips/1", "/cases/precision", "/audit", f"/runs/{RUN_DATE}/findings/{H1.lower()}",
                 f"/runs/{RUN_DATE}/findings/..%2F{H4}"):
        r = c.get(path)
        assert r.status_code == 404, path
        assert b"P034" not in r.content and b"Longevity" not in r.content, path
    denied = [r for r in _audited_since(world, before) if r.action == "denied"]
    assert len(denied) == 12 and all(r.user_name == "kangning" and r.status == 404 for r in denied)
    # opening a case is the office's business, not the institution's
    r = c.post("/cases/open", data={"run_date": RUN_DATE, "finding_id": _finding(world, H1)})
    assert r.status_code == 403


# ------------------------------------------------------------------ bypasses

def test_cross_region_and_cross_institution_bypasses_fail_and_are_audited(world):
    gz_case = _open(world, "canton", _finding(world, H4, "after_death", 0))
    sz_fid = _finding(world, P2, "duplicate_billing", 1)
    before = _last_audit_id(world)
    tries = [  # (who, method, path, form, statuses allowed)
        ("shenzhen", "get", f"/cases/{gz_case}", None, (404,)),                      # direct URL, other city
        ("shenzhen", "post", f"/cases/{gz_case}/act", {"action": "escalate", "note": "x"}, (404,)),
        ("inv-sz", "get", f"/cases/{gz_case}", None, (404,)),                        # investigator, other city
        ("longevity", "get", f"/cases/{gz_case}", None, (404,)),                     # another institution
        ("longevity", "post", f"/cases/{gz_case}/act", {"action": "appeal", "note": "x"}, (404,)),
        ("kangning", "get", f"/cases/{gz_case}", None, (404,)),                      # same city, other institution
        ("canton", "post", "/cases/open", {"run_date": RUN_DATE, "finding_id": sz_fid}, (404,)),  # other city's finding
        ("canton", "post", "/cases/open", {"run_date": "2026-10-13", "finding_id": sz_fid}, (404,)),  # forged run
        ("canton", "post", "/cases/open", {"run_date": RUN_DATE, "finding_id": "../../x"}, (404,)),
        ("canton", "post", "/cases/open", {"run_date": RUN_DATE, "finding_id": "0" * 24}, (404,)),  # no such finding
        ("canton", "post", "/cases/open", {"run_date": RUN_DATE, "finding_id": sz_fid, "tip_id": "1"}, (404,)),
        ("inv-gz", "post", "/cases/open", {"run_date": RUN_DATE, "finding_id": _finding(world, H1)}, (403,)),
        ("canton", "post", f"/cases/{gz_case}/act", {"action": "confirm", "role": "admin", "note": "x"}, (403,)),
        ("canton", "post", f"/cases/{gz_case}/act", {"action": "state=confirmed", "note": "x"}, (400,)),
        ("canton", "post", f"/cases/{gz_case}/act", {"action": "", "note": "x"}, (400,)),
        ("canton", "post", f"/cases/{gz_case} OR 1=1/act", {"action": "escalate"}, (404,)),
        ("canton", "post", "/cases/999999/act", {"action": "escalate", "note": "x"}, (404,)),
        ("canton", "get", "/cases/-1", None, (404,)),
        ("canton", "get", f"/runs/{RUN_DATE}/findings/{P2}", None, (404,)),           # other city's findings
        ("shenzhen", "get", f"/runs/{RUN_DATE}/findings/{H4}", None, (404,)),
        ("canton", "get", "/tips", None, (404,)),                                     # tips: the desk only
        ("province", "get", "/tips/1", None, (404,)),
        ("root", "get", "/tips/1", None, (404,)),                                     # not even the admin
        ("root", "post", "/tips/1/link", {"case_id": str(gz_case)}, (404,)),
        ("inv-gz", "get", "/cases/precision", None, (404,)),
        ("tipdesk", "get", "/cases", None, (404,)),
        ("tipdesk", "post", f"/cases/{gz_case}/act", {"action": "escalate", "note": "x"}, (403,)),
        ("tipdesk", "post", "/cases/open", {"run_date": RUN_DATE, "finding_id": sz_fid}, (403,)),   # only from a tip
        ("tipdesk", "post", "/cases/open", {"run_date": RUN_DATE, "finding_id": sz_fid, "tip_id": "99"}, (404,)),
        ("longevity", "get", f"/runs/{RUN_DATE}/findings/{H1}", None, (404,)),
        ("longevity", "get", "/credit/practitioners?year=2026", None, (200,)),     # control: allowed, own only
    ]
    for who, method, path, form, allowed in tries:
        c = _client(world, who)
        mark = _last_audit_id(world)
        r = c.get(path) if method == "get" else c.post(path, data=form)
        assert r.status_code in allowed, (who, path, form, r.status_code)
        assert b"P034" not in r.content or who in ("canton",), (who, path)
        got = [a for a in _audited_since(world, mark) if a.action == "denied"]
        if r.status_code == 200:
            assert not got and "D000000000004" not in r.text
            continue
        assert got and got[-1].user_name == who and got[-1].status == r.status_code, (who, path)
    assert _state(world, gz_case) == "first_review"                   # nothing moved
    # cross-site form posts are refused even with a valid session
    mark = _last_audit_id(world)
    r = _client(world, "canton").post(f"/cases/{gz_case}/act", data={"action": "escalate", "note": "x"},
                                      headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and _state(world, gz_case) == "first_review"
    assert [a.status for a in _audited_since(world, mark) if a.action == "denied"] == [403]
    assert len([a for a in _audited_since(world, before) if a.action == "denied"]) == len(tries) - 1 + 1


def test_replayed_and_expired_sessions_are_refused_and_audited(world):
    c = _client(world, "province")
    token = c.cookies.get("claimscreen_session")
    assert c.get("/cases").status_code == 200
    assert c.post("/logout").status_code == 303
    replay = httpx.Client(base_url=world["base"], follow_redirects=False, timeout=30)
    replay.cookies.set("claimscreen_session", token)
    mark = _last_audit_id(world)
    for method, path in (("get", "/cases"), ("get", "/cases/1"), ("post", "/cases/1/act"), ("get", "/credit")):
        r = replay.get(path) if method == "get" else replay.post(path, data={"action": "confirm", "note": "x"})
        assert r.status_code == 303 and r.headers["location"] == "/login", path
    got = [a for a in _audited_since(world, mark) if a.action == "session_invalid"]
    assert len(got) == 4 and {a.target for a in got} == {"/cases", "/cases/1", "/cases/1/act", "/credit"}
    # an expired session (8 h) is the same
    c = _client(world, "canton")
    with world["engine"].begin() as con:
        con.execute(sa.update(db.sessions).where(db.sessions.c.token_sha256 == db._token_hash(
            c.cookies.get("claimscreen_session"))).values(expires_at=db.now() - timedelta(seconds=1)))
    mark = _last_audit_id(world)
    assert c.get("/cases").status_code == 303
    assert [a.action for a in _audited_since(world, mark)] == ["session_invalid"]


# ----------------------------------------------------------------------- tips

def test_tips_are_sealed_cross_referenced_and_rewarded(world):
    public = _client(world, local_address="127.0.0.4")                 # nobody signed in
    form = public.get("/tips/new")
    assert form.status_code == 200 and 'name="reporter_name"' in form.text
    r = public.post("/tips/new", data={"institution_id": H4, "doctor_id": "D000000000005", "text":
                                       "a dead relative's card is still used at the private hospital",
                                       "reporter_name": REPORTER, "reporter_contact": "139-0000-0000",
                                       "date_from": "2026-10-01", "date_to": "2026-10-12"})
    assert r.status_code == 200 and "T" in r.text
    ref = r.text.split("<b>")[1].split("</b>")[0]
    r = public.post("/api/tips", json={"patient_id": "P032", "text": "buys insulin twice a day"})
    assert r.status_code == 201 and r.json()["reference"].startswith("T")
    assert public.post("/api/tips", content=b"[1, 2]", headers={"content-type": "application/json"}).status_code == 400
    assert public.post("/api/tips", json={"text": "no entity named"}).status_code == 400
    assert public.post("/api/tips", json={"institution_id": "<script>", "text": "x"}).status_code == 400
    # the reporter's identity is not readable in the database
    with world["engine"].connect() as con:
        dump = "\n".join(str(tuple(row)) for row in con.execute(sa.select(cases.tips)))
    assert "Wang" not in dump and "139-0000" not in dump and "王小明" not in dump
    if world["url"].startswith("sqlite:///"):
        db_file = Path(world["url"][len("sqlite:///"):])
        raw = b"".join(p.read_bytes() for p in (db_file, db_file.with_name(db_file.name + "-wal")) if p.exists())
        assert "王小明".encode() not in raw and b"139-0000" not in raw
    # the tips desk reads it, with the findings and cases touching the same entities
    desk = _client(world, "tipdesk")
    listing = desk.get("/tips")
    assert listing.status_code == 200 and ref in listing.text
    tip_id = cases.list_tips(world["engine"], db.authenticate(world["engine"], "tipdesk", PW))[-1].id
    page = desk.get(f"/tips/{tip_id}")
    assert page.status_code == 200 and REPORTER in page.text and "139-0000-0000" in page.text
    assert page.text.count("after_death") == 2                        # both claims after death of D000000000005
    # the case opened from the tip carries the link; confirming it makes the tip eligible for a reward
    r = desk.post("/cases/open", data={"run_date": RUN_DATE, "finding_id": _finding(world, H4, "after_death", 1),
                                       "tip_id": str(tip_id)})
    assert r.status_code == 303
    cid = int(r.headers["location"].rsplit("/", 1)[1])
    for who, action in (("canton", "escalate"), ("province", "notify")):
        _act(world, who, cid, action)
    with world["engine"].begin() as con:
        con.execute(sa.update(cases.cases).where(cases.cases.c.id == cid).values(due_at=db.now() - timedelta(seconds=1)))
    for who, action in (("canton", "lapse"), ("inv-gz", "report")):
        _act(world, who, cid, action)
    tip = cases.get_tip(world["engine"], db.authenticate(world["engine"], "tipdesk", PW), tip_id)
    assert not tip.reward_eligible
    _act(world, "province", cid, "confirm")
    tip = cases.get_tip(world["engine"], db.authenticate(world["engine"], "tipdesk", PW), tip_id)
    assert tip.reward_eligible and tip.reward_case_id == cid
    assert "yes, case #" in desk.get(f"/tips/{tip_id}").text
    # the institution concerned never sees the tip, nor who sent it
    inst = _client(world, "kangning")
    for path in ("/tips", f"/tips/{tip_id}"):
        assert inst.get(path).status_code == 404
    assert REPORTER not in _client(world, "canton").get(f"/cases/{cid}").text


def test_tip_submissions_are_rate_limited_per_address(world):
    c = _client(world, local_address="127.0.0.5")
    n = cases.load_config(world["conf"]).tips_per_address_per_hour
    for _ in range(n):
        assert c.post("/api/tips", json={"institution_id": H1, "text": "spam?"}).status_code == 201
    assert c.post("/api/tips", json={"institution_id": H1, "text": "spam?"}).status_code == 429
    assert _client(world, local_address="127.0.0.6").post(
        "/api/tips", json={"institution_id": H1, "text": "another person"}).status_code == 201


def test_oversized_and_odd_bodies_are_refused(world):
    c = _client(world, local_address="127.0.0.7")
    big = "x" * 30_000
    assert c.post("/api/tips", json={"institution_id": H1, "text": big}).status_code == 413
    assert c.post("/tips/new", data={"institution_id": H1, "text": big}).status_code == 413

    def chunks():
        for _ in range(30):
            yield b"x" * 1000
    assert c.post("/api/tips", content=chunks(), headers={"content-type": "application/json"}).status_code == 413
    assert c.post("/tips/new", files={"text": ("a.txt", b"hello")}, data={"institution_id": H1}).status_code == 400
    denied = [r.status for r in db.audit_rows(world["engine"], limit=10) if r.ip == "127.0.0.7" and r.action == "denied"]
    assert sorted(denied) == [400, 413, 413, 413]


# ------------------------------------------------------- credit and points

def test_points_suspend_a_doctor_and_confirmed_cases_floor_the_credit_grade(world):
    # D000000000004 (Kangning Clinic) has one confirmed duplicate-billing case (3 points) from the
    # first test; one more reaches the test threshold of 6
    eng = world["engine"]
    open_h1 = [r for r in cases.list_cases(eng, db.User(0, "x", "admin", ())) if r.institution_id == H1
               and r.state == "investigation"]
    cid = open_h1[0].id
    _act(world, "inv-gz", cid, "report")
    _act(world, "province", cid, "confirm")
    pts = {r["doctor_id"]: r for r in cases.points(eng, cases.load_config(world["conf"]))}
    assert pts["D000000000004"]["points"] == 6 and pts["D000000000004"]["suspended"]
    page = _client(world, "canton").get("/credit/practitioners")
    assert "D000000000004" in page.text and "SUSPENDED" in page.text
    assert "D000000000004" not in _client(world, "shenzhen").get("/credit/practitioners").text
    credit = _client(world, "province").get("/credit")
    assert credit.status_code == 200
    row = credit.text.split(f"<td>{H1}</td>")[1].split("</tr>")[0]
    assert "<td>B</td>" in row and "gD" in row                         # screening B, two confirmed: floor D
    mine = _client(world, "kangning").get("/credit")
    assert H1 in mine.text and H4 not in mine.text and P2 not in mine.text
    assert cases.credit_grade("B", 0, cases.load_config(world["conf"])) == "B"
    assert cases.credit_grade("E", 1, cases.load_config(world["conf"])) == "E"
    assert cases.credit_grade("A", 3, cases.load_config(world["conf"])) == "E"


# ------------------------------------------------------------------ feedback

def test_outcomes_feed_precision_evaluate_and_the_next_run(world, capsys):
    eng, st = world["engine"], world["settings"]
    prec = {(r["detector_id"]): r for r in cases.precision(eng)}
    assert prec["duplicate_billing"]["confirmed"] == 2 and prec["duplicate_billing"]["dismissed"] == 1
    assert prec["after_death"]["confirmed"] == 1
    page = _client(world, "province").get("/cases/precision")
    assert page.status_code == 200 and "duplicate_billing" in page.text and "67%" in page.text
    # the export is ground truth `evaluate` reads: confirmed findings become true positives
    truth = world["tmp"] / "outcomes"
    assert cli.main(["--data-dir", str(st.data_dir), "cases", "export", "--out", str(truth), "--db", world["url"]]) == 0
    exported = duckdb.sql(f"SELECT scheme, entity_id FROM read_parquet('{truth / 'cases.parquet'}')").fetchall()
    assert sorted(s for s, _ in exported) == ["after_death", "duplicate_billing", "duplicate_billing"]
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{truth / 'lookalikes.parquet'}')").fetchall() == [(1,)]
    res = evaluate.evaluate(st, truth, RUN_DATE)
    det = {d["detector_id"]: d for d in res["detectors"]}
    assert det["duplicate_billing"]["cases"] == 2 and det["duplicate_billing"]["found"] == 2
    assert det["after_death"]["found"] == 1 and det["after_death"]["precision"] == 1.0
    # Kangning's three copies share the confirmed cases' patient; Longevity's two do not
    assert det["duplicate_billing"]["precision"] == pytest.approx(3 / 5)
    assert det["duplicate_billing"]["lookalike_hits"] >= 1            # the dismissed one is honest
    assert det["card_misuse"]["precision"] == 0 and det["card_misuse"]["precision_any"] == 1.0   # same patient, other rule
    # a dismissed finding leaves the next run (the dismissal is dated the day of the decision)
    dismissed = [r for r in cases.list_cases(eng, db.User(0, "x", "admin", ())) if r.state == "dismissed"]
    assert dismissed
    gone = dismissed[0].finding_id
    next_run = (date.today() + timedelta(days=1)).isoformat()
    out = screen.screen(st, next_run)
    ids = {f for (f,) in duckdb.sql(f"SELECT finding_id FROM read_parquet('{out / 'findings.parquet'}')").fetchall()}
    assert gone not in ids and {f for f, *_ in world["findings"]} - {gone} <= ids
    old = {f for (f,) in duckdb.sql(f"SELECT finding_id FROM read_parquet('{world['out'] / 'findings.parquet'}')").fetchall()}
    assert gone in old                                                 # history is not rewritten
    # the next run's page carries the credit grade: Kangning's two confirmed cases floor it at D
    page = _client(world, "province").get(f"/runs/{next_run}/").text
    row = page.split(f"<td>{H1}</td>")[0].rsplit("<tr>", 1)[1]
    import re
    screening_grade, credit_grade = re.findall(r"<td>([A-E])</td>", row)
    assert credit_grade == "D" and screening_grade in "ABC"
    old_row = _client(world, "province").get(f"/runs/{RUN_DATE}/").text.split(f"<td>{H1}</td>")[0].rsplit("<tr>", 1)[1]
    assert old_row.endswith("<td>B</td>")                              # as of that night: nothing decided yet
    for args in (["cases", "precision"], ["cases", "overdue"], ["cases", "points", "--cases-config", str(world["conf"])]):
        assert cli.main(["--data-dir", str(st.data_dir), *args, "--db", world["url"]]) == 0
    out_text = capsys.readouterr().out
    assert "duplicate_billing" in out_text and "overdue case(s)" in out_text
    assert "D000000000004" in out_text and "SUSPENDED" in out_text and "66.7%" in out_text


# ----------------------------------------------------------------- accounts

def test_accounts_of_the_new_roles_are_checked(world):
    eng = world["engine"]
    with pytest.raises(ValueError, match="institution"):
        db.add_user(eng, "noinst", PW, "institution", [])
    with pytest.raises(ValueError, match="institution"):
        db.add_user(eng, "instregion", PW, "institution", ["4401"], institution=H1)
    with pytest.raises(ValueError, match="only an institution"):
        db.add_user(eng, "cityinst", PW, "city", ["4401"], institution=H1)
    with pytest.raises(ValueError, match="region"):
        db.add_user(eng, "inv", PW, "investigator", [])
    u = db.authenticate(eng, "kangning", PW)
    assert u.institution == H1 and u.scope == [] and not u.sees("440111") and u.sees_institution(H1, "440111")
    assert not u.sees_institution(H4, "440111")
    from pipeline.portal import cli as portal_cli
    assert portal_cli.ROLES == db.ROLES
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with eng.begin() as con:
            con.execute(sa.text("UPDATE case_events SET user_name = 'someone-else'"))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with eng.begin() as con:
            con.execute(sa.text("DELETE FROM case_events"))
    st = world["settings"]
    assert cli.main(["--data-dir", str(st.data_dir), "users", "add", "--name", "riverside", "--password",
                     PW, "--role", "institution", "--institution", "H00000000002", "--db", world["url"]]) == 0
    assert db.authenticate(eng, "riverside", PW).institution == "H00000000002"
    assert cli.main(["--data-dir", str(st.data_dir), "users", "add", "--name", "riverside2", "--password",
                     PW, "--role", "institution", "--db", world["url"]]) == 2
    with pytest.raises(ValueError, match="deadlines_days"):
        bad = world["tmp"] / "bad.yaml"
        bad.write_text(json.dumps({"deadlines_days": {"first_review": 3}}))
        cases.load_config(bad)


# -------------------------------------------------------------------- browser

def test_every_role_walks_its_path_in_a_browser(world):
    browser = chromium()
    sync_api = playwright_api()
    base = world["base"]
    appeal_case = [r for r in cases.list_cases(world["engine"], db.User(0, "x", "admin", ()))
                   if r.institution_id == H1 and r.state == "appeal"][0].id

    def step(page, button: str, note: str) -> None:
        form = page.locator("form", has=page.get_by_role("button", name=button))
        form.get_by_label("Note / 说明").fill(note)
        form.get_by_role("button", name=button).click()

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=browser, args=["--no-sandbox", "--disable-gpu"])
        try:
            def signed_in(name):
                page = b.new_context().new_page()
                page.goto(base + "/cases")
                page.get_by_label("User / 用户名").fill(name)
                page.get_by_label("Password / 密码").fill(PW)
                page.get_by_role("button", name="Sign in / 登录").click()
                return page

            # city reviewer: run → an institution's findings → open a case → first review passes it on
            city = signed_in("canton")
            city.get_by_role("link", name=RUN_DATE).click()
            city.locator("tr", has_text="H00000000002").get_by_role("link", name="findings / 疑点").click()
            assert city.get_by_role("cell", name="split_hospitalization", exact=True).is_visible()
            city.get_by_role("button", name="Open case / 立案").first.click()
            assert city.get_by_text("First review / 初审").first.is_visible()
            new_case = int(city.url.rsplit("/", 1)[1])
            step(city, "Pass to second review / 初审通过，提交复审", "two stays 2 days apart, same diagnosis")
            assert city.get_by_role("cell", name="Second review / 复审", exact=True).is_visible()
            # province reviewer: the case list → the case → notify the institution
            prov = signed_in("province")
            prov.get_by_role("link", name="Cases / 案件").click()
            prov.get_by_role("link", name=f"#{new_case}", exact=True).click()
            step(prov, "Notify the institution / 复审确认，通知机构申诉", "please explain the readmission")
            assert prov.get_by_role("cell", name="Appeal / 申诉", exact=True).is_visible()
            # institution: self-inspection, then its appeal within the time limit
            inst = signed_in("kangning")
            inst.get_by_role("link", name="Cases / 案件").click()
            inst.get_by_role("link", name="Self-inspection: my findings / 自查：本机构疑点").click()
            assert inst.get_by_role("cell", name="duplicate_billing", exact=True).count() == 3
            assert inst.get_by_role("button", name="Open case / 立案").count() == 0
            inst.get_by_role("link", name="Cases / 案件").click()
            assert inst.get_by_role("link", name=f"#{new_case}", exact=True).count() == 0   # not its case
            inst.get_by_role("link", name=f"#{appeal_case}", exact=True).click()
            step(inst, "Explain or correct (appeal) / 机构申诉/说明", "the second line is a refund we forgot to book")
            assert inst.get_by_role("cell", name="Investigation / 调查核实", exact=True).is_visible()
            # investigator: report; province: decide
            inv = signed_in("inv-gz")
            inv.get_by_role("link", name="Cases / 案件").click()
            inv.get_by_role("link", name=f"#{appeal_case}", exact=True).click()
            step(inv, "Investigation report / 提交核查结论", "no refund in the ledger")
            prov.goto(base + f"/cases/{appeal_case}")
            step(prov, "Dismiss / 排除疑点", "refund found at the bank after all")
            assert prov.get_by_role("cell", name="Dismissed / 排除", exact=True).is_visible()
            # a whistleblower (no account) and the tips desk
            anon = b.new_context().new_page()
            anon.goto(base + "/tips/new")
            anon.get_by_label("Institution id / 机构编码").fill(H1)
            anon.get_by_label("What happened / 举报内容").fill("patients are asked to sign blank forms")
            anon.get_by_label("Your name (optional, kept sealed) / 举报人姓名（可不填，加密保存）").fill("Li Si 李四")
            anon.get_by_role("button", name="Submit tip / 提交举报").click()
            ref = anon.locator("b").inner_text()
            desk = signed_in("tipdesk")
            desk.get_by_role("link", name="Tips / 举报线索").click()
            desk.get_by_role("link", name=ref).click()
            assert desk.get_by_text("Li Si 李四").is_visible()
            assert desk.get_by_role("button", name="Open case from tip / 据线索立案").count() == 3
            # admin: every step is in the audit log
            admin = signed_in("root")
            admin.get_by_role("link", name="Audit log / 审计日志").click()
            for action in ("case_open", "case_escalate", "case_notify", "case_appeal", "case_report",
                           "case_dismiss", "tip_submitted", "view_tip"):
                assert admin.get_by_role("cell", name=action, exact=True).count() >= 1, action
        finally:
            b.close()
    assert _state(world, appeal_case) == "dismissed" and _state(world, new_case) == "appeal"


def test_a_regional_tips_desk_reads_the_tips_of_its_regions_only(world):
    eng = world["engine"]
    db.add_user(eng, "tipdesk-sz", PW, "tips", ["4403"])
    public = _client(world, local_address="127.0.0.8")
    assert public.post("/api/tips", json={"institution_id": P2, "text": "insulin resold"}).status_code == 201
    assert public.post("/api/tips", json={"institution_id": "X-UNKNOWN", "text": "no such place"}).status_code == 201
    sz = cases.list_tips(eng, db.authenticate(eng, "tipdesk-sz", PW))
    assert {t.institution_id for t in sz} == {P2}
    everyone = cases.list_tips(eng, db.authenticate(eng, "tipdesk", PW))
    gz_tip = [t for t in everyone if t.institution_id == H1][0]
    c = _client(world, "tipdesk-sz")
    mark = _last_audit_id(world)
    assert c.get(f"/tips/{gz_tip.id}").status_code == 404
    assert c.post(f"/tips/{gz_tip.id}/link", data={"case_id": "1"}).status_code == 404
    assert c.post("/cases/open", data={"run_date": RUN_DATE, "finding_id": _finding(world, H1),
                                       "tip_id": str(gz_tip.id)}).status_code == 404
    assert [a.status for a in _audited_since(world, mark) if a.action == "denied"] == [404, 404, 404]
    assert "X-UNKNOWN" in _client(world, "tipdesk").get("/tips").text      # the province desk has it


def test_confirmed_ring_cases_export_their_members(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    eng = db.connect(f"sqlite:///{tmp_path / 'p.db'}")
    conf = cases.load_config()
    admin = db.User(0, "root", "admin", ())
    run = tmp_path / "published" / "2026-10-12"
    run.mkdir(parents=True)
    pq.write_table(pa.table({"ring_id": ["R1", "R1", "R1", "R2"], "member_type": ["patient", "patient", "doctor", "patient"],
                             "member_id": ["P1", "P2", "D1", "P9"]}), run / "rings.parquet")
    finding = {"finding_id": "ab" * 12, "detector_id": "collusion_ring", "entity_type": "ring", "entity_id": "R1",
               "institution_id": H1, "patient_id": None, "doctor_id": None, "settlement_ids": ["S1", "S2"],
               "amount_at_risk": 120, "first_seen": date(2026, 10, 10), "reason": "a ring"}
    cid = cases.open_case(eng, admin, finding, "2026-10-12", "440111", conf)
    t = db.now()
    for action, at in (("escalate", t), ("notify", t), ("lapse", t + timedelta(days=conf.deadlines_days["appeal"] + 1)),
                       ("report", t + timedelta(days=12)), ("confirm", t + timedelta(days=13))):
        cases.act(eng, admin, cid, action, "n", conf, at=at)
    with pytest.raises(cases.CaseError) as e:
        cases.act(eng, admin, cid, "confirm", "again", conf)
    assert e.value.status == 409
    n = cases.export_truth(eng, tmp_path / "truth", tmp_path / "published")
    assert n == {"confirmed": 1, "dismissed": 0, "ring_members": 3}
    got = duckdb.sql(f"SELECT * FROM read_parquet('{tmp_path / 'truth' / 'ring_members.parquet'}') ORDER BY 3").fetchall()
    assert got == [("R1", "doctor", "D1"), ("R1", "patient", "P1"), ("R1", "patient", "P2")]
    row = duckdb.sql(f"SELECT case_id, scheme, entity_type, entity_id, settlement_ids, first_date "
                     f"FROM read_parquet('{tmp_path / 'truth' / 'cases.parquet'}')").fetchall()
    assert row == [(f"collusion_ring-case{cid:05d}", "collusion_ring", "ring", "R1", ["S1", "S2"], date(2026, 10, 10))]


def test_the_workflow_on_postgresql(tmp_path):
    """The same tables, transitions and append-only triggers on a PostgreSQL server, when one
    is given (CLAIMSCREEN_TEST_POSTGRES_URL, e.g. postgresql+psycopg://postgres@127.0.0.1:55432/portal)."""
    import os
    url = os.environ.get("CLAIMSCREEN_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL server given (CLAIMSCREEN_TEST_POSTGRES_URL)")
    eng = db.connect(url)
    db.metadata.drop_all(eng)
    eng = db.connect(url)
    db.connect(url)                                                    # idempotent: triggers re-created
    conf = cases.load_config()
    city = db.add_user(eng, "pg-city", PW, "city", ["4401"])
    prov = db.add_user(eng, "pg-prov", PW, "province", [])
    inst = db.add_user(eng, "pg-inst", PW, "institution", [], institution=H1)
    inv = db.add_user(eng, "pg-inv", PW, "investigator", ["4401"])
    desk = db.add_user(eng, "pg-desk", PW, "tips", [])
    assert db.authenticate(eng, "pg-inst", PW).institution == H1
    finding = {"finding_id": "cd" * 12, "detector_id": "duplicate_billing", "entity_type": "settlement",
               "entity_id": "S1", "institution_id": H1, "patient_id": "P1", "doctor_id": "D1",
               "settlement_ids": ["S1"], "amount_at_risk": 18.5, "first_seen": date(2026, 10, 10), "reason": "twice"}
    key = __import__("cryptography.fernet", fromlist=["Fernet"]).Fernet.generate_key()
    ref = cases.submit_tip(eng, key, {"institution_id": H1, "text": "a clue", "reporter_name": REPORTER}, "440111")
    tip = cases.list_tips(eng, desk)[0]
    assert tip.public_ref == ref and cases.reporter(tip, key)["name"] == REPORTER
    cid = cases.open_case(eng, desk, finding, RUN_DATE, "440111", conf, tip_id=tip.id)
    with pytest.raises(cases.CaseError):
        cases.open_case(eng, city, finding, RUN_DATE, "440111", conf)          # one open case per finding
    assert not cases.may_view(inst, cases.get_case(eng, cid))
    for user, action in ((city, "escalate"), (prov, "notify"), (inst, "appeal"), (inv, "report"), (prov, "confirm")):
        cases.act(eng, user, cid, action, "note", conf)
    assert cases.get_case(eng, cid).state == "confirmed"
    assert cases.get_tip(eng, desk, tip.id).reward_eligible
    assert [e.action for e in cases.events(eng, cid)] == ["open", "escalate", "notify", "appeal", "report", "confirm"]
    assert cases.points(eng, conf)[0]["points"] == 3
    assert cases.export_truth(eng, tmp_path / "truth")["confirmed"] == 1
    db.audit(eng, "pg-city", "view", "x", "127.0.0.1", 200)
    for table in ("case_events", "audit_log"):
        for stmt in (f"UPDATE {table} SET user_name = 'someone-else'", f"DELETE FROM {table}", f"TRUNCATE {table}"):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                with eng.begin() as con:
                    con.execute(sa.text(stmt))
