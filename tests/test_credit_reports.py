"""Credit grade and practitioner points in the published reports (issue 15): read from the
portal's database as of the run date, so a later decision never changes a rendered run;
without a portal database the reports carry the screening grade alone."""
from __future__ import annotations

import re
import shutil
from datetime import datetime, timedelta

import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline import reports
from pipeline.portal import cases, db
from pipeline.settings import load_settings
from report_world import RUN_DATE, build_run

H1 = "H00000000001"          # Kangning Clinic: screening grade B on RUN_DATE
DOCTOR = "D000000000004"     # its doctor charged with the duplicate billing
ADMIN = db.User(0, "root", "admin", ())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("credit")
    st, out = build_run(tmp)
    return st, out, tmp


def _rerender(st, out, dest):
    """Render RUN_DATE's reports again into a copy of its published folder."""
    folder = dest / RUN_DATE
    shutil.copytree(out, folder)
    shutil.rmtree(folder / "reports")
    (folder / "overview.html").unlink()
    reports.render_run(st, RUN_DATE, folder)
    return folder


def _confirm(engine, out, finding_id: str, at: datetime, conf) -> int:
    """Open a case on a finding of RUN_DATE and take it to confirmed, the decision dated at."""
    con = duckdb.connect()
    row = con.execute("SELECT * FROM read_parquet(?) WHERE finding_id = ?",
                      [str(out / "findings.parquet"), finding_id]).fetchone()
    cols = [d[0] for d in con.description]
    finding = dict(zip(cols, row))
    cid = cases.open_case(engine, ADMIN, finding, RUN_DATE, "440111", conf)
    t0 = at - timedelta(days=25)
    for action, t in (("escalate", t0), ("notify", t0), ("lapse", t0 + timedelta(days=11)),
                      ("report", t0 + timedelta(days=15)), ("confirm", at)):
        cases.act(engine, ADMIN, cid, action, "checked", conf, at=t)
    return cid


def _strip_rendered_at(text: str) -> str:
    return re.sub(r"rendered / 生成时间 [^<]*", "", text)


def test_without_a_portal_database_the_reports_are_unchanged(run, tmp_path, monkeypatch):
    st, out, _ = run
    monkeypatch.delenv("CLAIMSCREEN_PORTAL_DB", raising=False)
    assert not (st.data_dir / "portal.db").exists()
    assert reports.credit_as_of(st, RUN_DATE) is None
    folder = _rerender(st, out, tmp_path)
    assert "credit_grade" not in pq.read_schema(folder / "reports" / "index.parquet").names
    for rel in (f"reports/institutions/{H1}.html", "overview.html"):
        text = (folder / rel).read_text(encoding="utf-8")
        assert _strip_rendered_at(text) == _strip_rendered_at((out / rel).read_text(encoding="utf-8"))
        assert "Credit grade" not in text and "Practitioner points" not in text and "暂停医保结算资格" not in text
    assert "Grade / 信用等级" in (folder / "reports" / "institutions" / f"{H1}.html").read_text(encoding="utf-8")


def test_a_portal_database_in_the_data_dir_is_found_and_left_unwritten(tmp_path, monkeypatch):
    monkeypatch.delenv("CLAIMSCREEN_PORTAL_DB", raising=False)
    st = load_settings(data_dir=tmp_path / "data")
    assert reports.credit_as_of(st, RUN_DATE) is None
    assert not (tmp_path / "data" / "portal.db").exists()          # looking does not create it
    db.connect(f"sqlite:///{tmp_path / 'data' / 'portal.db'}").dispose()
    got = reports.credit_as_of(st, RUN_DATE)
    assert got is not None and got["confirmed"] == {} and got["points"] == [] and got["year"] == 2026
    monkeypatch.setenv("CLAIMSCREEN_PORTAL_DB", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    assert reports.credit_as_of(st, RUN_DATE) is None and not (tmp_path / "elsewhere.db").exists()


def test_confirmed_cases_up_to_the_run_date_floor_the_credit_grade_and_give_points(run, tmp_path, monkeypatch):
    st, out, tmp = run
    conf_file = tmp_path / "cases.yaml"
    doc = cases.yaml.safe_load(cases.CONFIG_FILE.read_text(encoding="utf-8"))
    doc["points"]["yearly_threshold"] = 3            # one duplicate-billing case (3 points) suspends
    conf_file.write_text(cases.yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("CLAIMSCREEN_CASES_CONFIG", str(conf_file))
    url = f"sqlite:///{tmp_path / 'portal.db'}"
    monkeypatch.setenv("CLAIMSCREEN_PORTAL_DB", url)
    engine = db.connect(url)
    conf = cases.load_config()
    dup = [f for (f,) in duckdb.sql(
        f"SELECT finding_id FROM read_parquet('{out / 'findings.parquet'}') WHERE institution_id = '{H1}' "
        f"AND doctor_id = '{DOCTOR}' AND detector_id = 'duplicate_billing' ORDER BY finding_id").fetchall()]
    assert len(dup) >= 2
    # decided the day before the run: counts
    _confirm(engine, out, dup[0], datetime.fromisoformat(RUN_DATE) - timedelta(hours=10), conf)

    first = _rerender(st, out, tmp_path / "first")
    idx = {r["institution_id"]: r for r in pq.read_table(first / "reports" / "index.parquet").to_pylist()}
    assert idx[H1]["grade"] == "B" and idx[H1]["credit_grade"] == "C" and idx[H1]["credit_confirmed"] == 1
    assert "1 confirmed case in the last 365 days: no better than C" in idx[H1]["credit_reason"]
    others = [r for i, r in idx.items() if i != H1]
    assert all(r["credit_grade"] == r["grade"] and r["credit_confirmed"] == 0 for r in others)
    page = (first / "reports" / "institutions" / f"{H1}.html").read_text(encoding="utf-8")
    assert "Screening grade / 筛查等级" in page and "Credit grade / 信用等级" in page
    assert 'class="grade gC" title="credit grade">C<' in page
    assert "1 confirmed case in the last 365 days: no better than C" in page
    points = page.split("Practitioner points 2026")[1]
    assert re.search(rf"<td>{DOCTOR}</td><td class=n>3</td><td class=n>3</td>", points)
    assert "SUSPENDED / 暂停医保结算资格" in points
    # an institution without confirmed cases: its grade stands, no practitioner points
    other = (first / "reports" / "institutions" / "H00000000002.html").read_text(encoding="utf-8")
    assert "no confirmed case in the last 365 days" in other and "SUSPENDED" not in other
    assert "No confirmed case charged to a doctor of this institution this year" in other
    overview = (first / "overview.html").read_text(encoding="utf-8")
    row = overview.split(f"reports/institutions/{H1}.html'>{H1}</a>")[0].rsplit("<tr>", 1)[1]
    assert re.findall(r"'grade g([A-E])'", row) == ["B", "C"] and "no better than C" in row
    assert "Credit grade / 信用等级" in overview

    # decided the day after the run: that run's report is the same when rendered again
    _confirm(engine, out, dup[1], datetime.fromisoformat(RUN_DATE) + timedelta(days=1, hours=9), conf)
    assert cases.points(engine, conf, year=2026)[0]["points"] == 6          # the portal sees both now
    again = _rerender(st, out, tmp_path / "again")
    idx2 = {r["institution_id"]: r for r in pq.read_table(again / "reports" / "index.parquet").to_pylist()}
    assert idx2[H1]["credit_grade"] == "C" and idx2[H1]["credit_confirmed"] == 1
    for rel in (f"reports/institutions/{H1}.html", "overview.html"):
        assert _strip_rendered_at((again / rel).read_text(encoding="utf-8")) == \
            _strip_rendered_at((first / rel).read_text(encoding="utf-8"))
    engine.dispose()
