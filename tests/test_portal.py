"""The download portal over a real server on localhost: sign-in, region scopes, path
safety, rate limiting, audit log, and a browser that signs in and downloads a report."""
from __future__ import annotations

import http.client
import io
import os
import re
import shutil
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from pipeline import cli
from pipeline.portal import db
from pipeline.portal.app import create_app
from report_world import RUN_DATE, build_run, chromium, playwright_api, serving

CITY = ("canton", "canton-pass-1", "city", ["4401"])          # Guangzhou: 440106, 440111
SHENZHEN = ("shenzhen", "shenzhen-pass-1", "city", ["4403"])  # 440305
PROVINCE = ("province", "province-pass-1", "province", [])
ADMIN = ("root", "root-pass-123", "admin", [])
OTHER_CITY_INSTITUTION = "P00000000002"                       # Longevity Pharmacy, 440305
SECRET = "TOPSECRET-outside-the-published-folder"


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("portal")
    st, out = build_run(tmp)
    # things a traversal would like to reach: a file beside the published folder, a
    # symlink inside a run pointing at it, a run-date link pointing outside
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "secret.html").write_text(SECRET)
    (outside / "_MANIFEST.json").write_text("{}")
    (outside / "overview.html").write_text(SECRET)
    (out / "validation").mkdir(exist_ok=True)      # the gate's Data Docs are published with the run
    (out / "validation" / "index.html").write_text("<html><body>Data Docs 数据质量</body></html>")
    (out / "validation" / "leak.html").symlink_to(outside / "secret.html")
    (out / "reports" / "institutions" / "H00000000003.html").symlink_to(outside / "secret.html")
    (st.publish_dir / "2026-10-13").symlink_to(outside)
    url = f"sqlite:///{tmp / 'portal.db'}"
    engine = db.connect(url)
    for name, pw, role, regions in (CITY, SHENZHEN, PROVINCE, ADMIN, ("victim", "victim-pass-1", "city", ["4401"])):
        db.add_user(engine, name, pw, role, regions)
    with serving(create_app(st.publish_dir, url)) as port:
        yield {"base": f"http://127.0.0.1:{port}", "port": port, "engine": engine, "url": url,
               "settings": st, "out": out}


def _client(portal, user=None, local_address=None) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=local_address) if local_address else None
    c = httpx.Client(base_url=portal["base"], follow_redirects=False, transport=transport, timeout=30)
    if user:
        r = c.post("/login", data={"name": user[0], "password": user[1]})
        assert r.status_code == 303, r.text
        assert "samesite=strict" in r.headers["set-cookie"].lower()
        assert "httponly" in r.headers["set-cookie"].lower()
    return c


def _raw_get(portal, path: str, cookie: str | None) -> tuple[int, bytes]:
    """Send the path exactly as written (httpx would normalise ../ away)."""
    con = http.client.HTTPConnection("127.0.0.1", portal["port"], timeout=30)
    con.putrequest("GET", path, skip_accept_encoding=True)
    if cookie:
        con.putheader("Cookie", f"claimscreen_session={cookie}")
    con.endheaders()
    r = con.getresponse()
    body = r.read()
    con.close()
    return r.status, body


PAGES = ["/", f"/runs/{RUN_DATE}", f"/runs/{RUN_DATE}/", f"/runs/{RUN_DATE}/?q=Kangning", f"/runs/{RUN_DATE}/overview.html",
         f"/runs/{RUN_DATE}/overview.html?download=1",
         f"/runs/{RUN_DATE}/reports/institutions/H00000000001.html",
         f"/runs/{RUN_DATE}/reports/institutions/H00000000001.xlsx",
         f"/runs/{RUN_DATE}/reports/institutions/H00000000001.csv",
         f"/runs/{RUN_DATE}/validation/index.html", "/audit", "/runs/", "/nothing-here"]


def test_sign_in_is_required_for_everything(portal):
    for cookie in (None, "forged-session-token"):
        c = _client(portal)
        if cookie:
            c.cookies.set("claimscreen_session", cookie)
        for path in PAGES:
            r = c.get(path)
            assert r.status_code == 303 and r.headers["location"] == "/login", path
            assert b"H0000" not in r.content and b"Kangning" not in r.content, path
    r = _client(portal).get("/login")
    assert r.status_code == 200 and 'name="password"' in r.text


def test_wrong_password_does_not_sign_in(portal):
    c = _client(portal)
    r = c.post("/login", data={"name": CITY[0], "password": "not-the-password"})
    assert r.status_code == 401 and "claimscreen_session" not in r.headers.get("set-cookie", "")
    assert c.get("/").status_code == 303


def test_city_user_cannot_see_another_regions_institution(portal):
    c = _client(portal, CITY)
    # by list
    page = c.get(f"/runs/{RUN_DATE}/")
    assert page.status_code == 200
    assert "H00000000001" in page.text and "Kangning Clinic" in page.text     # own region: listed
    assert OTHER_CITY_INSTITUTION not in page.text and "Longevity" not in page.text
    assert "440305" not in c.get("/").text
    # by search (id and name)
    for q in (OTHER_CITY_INSTITUTION, "Longevity", "P000", "440305"):
        r = c.get(f"/runs/{RUN_DATE}/", params={"q": q})
        results = r.text.rsplit("</form>", 1)[1]          # past the search box echoing q
        assert r.status_code == 200 and (q == "P000" or "0 institution(s)" in results)
        assert OTHER_CITY_INSTITUTION not in results and "Longevity" not in results
    # the overview a city office gets covers its regions only
    for path in (f"/runs/{RUN_DATE}/overview.html", f"/runs/{RUN_DATE}/overview.html?download=1"):
        r = c.get(path)
        assert r.status_code == 200 and "H00000000004" in r.text
        assert OTHER_CITY_INSTITUTION not in r.text and "Longevity" not in r.text and "440305" not in r.text
    # by direct URL, every format
    for ext in ("html", "xlsx", "csv"):
        r = c.get(f"/runs/{RUN_DATE}/reports/institutions/{OTHER_CITY_INSTITUTION}.{ext}")
        assert r.status_code == 404 and b"Longevity" not in r.content
        r = c.get(f"/runs/{RUN_DATE}/reports/institutions/{OTHER_CITY_INSTITUTION}.{ext}?download=1")
        assert r.status_code == 404
    # by guessed file names
    for guess in (f"{OTHER_CITY_INSTITUTION}.HTML", OTHER_CITY_INSTITUTION.lower() + ".html",
                  f"{OTHER_CITY_INSTITUTION}.pdf", f"{OTHER_CITY_INSTITUTION}.html.xlsx",
                  f"{OTHER_CITY_INSTITUTION}", f"{OTHER_CITY_INSTITUTION}%00.html",
                  f"{OTHER_CITY_INSTITUTION}.html%3F.xlsx", "index.parquet", "../index.parquet"):
        status, body = _raw_get(portal, f"/runs/{RUN_DATE}/reports/institutions/{guess}",
                                c.cookies.get("claimscreen_session"))
        assert status == 404 and b"Longevity" not in body and b"PAR1" not in body, guess
    for path in (f"/runs/{RUN_DATE}/findings.parquet", f"/runs/{RUN_DATE}/reports/index.parquet",
                 f"/runs/{RUN_DATE}/_MANIFEST.json", f"/runs/{RUN_DATE}/validation/index.html",
                 "/audit"):
        assert c.get(path).status_code == 404, path
    # the positive controls: the other city and the province do see it
    for user in (SHENZHEN, PROVINCE):
        u = _client(portal, user)
        assert OTHER_CITY_INSTITUTION in u.get(f"/runs/{RUN_DATE}/").text
        r = u.get(f"/runs/{RUN_DATE}/reports/institutions/{OTHER_CITY_INSTITUTION}.xlsx")
        assert r.status_code == 200 and r.content[:2] == b"PK"
    assert "H00000000001" not in _client(portal, SHENZHEN).get(f"/runs/{RUN_DATE}/").text


TRAVERSALS = [
    f"/runs/{RUN_DATE}/reports/institutions/../../../../../../etc/passwd",
    f"/runs/{RUN_DATE}/reports/institutions/..%2f..%2f_MANIFEST.json",
    f"/runs/{RUN_DATE}/reports/institutions/%2e%2e%2f%2e%2e%2fportal.db",
    f"/runs/{RUN_DATE}/reports/institutions/%2e%2e%2f%2e%2e%2f..%2f..%2foutside%2fsecret.html",
    f"/runs/{RUN_DATE}/reports/institutions/%2fetc%2fpasswd",
    f"/runs/{RUN_DATE}/validation/../../../../../../etc/passwd",
    f"/runs/{RUN_DATE}/validation/%2e%2e/%2e%2e/findings.parquet",
    f"/runs/{RUN_DATE}/validation/%2e%2e%2f%2e%2e%2f..%2foutside%2fsecret.html",
    f"/runs/{RUN_DATE}/validation//etc/passwd",
    f"/runs/{RUN_DATE}/validation/%2fetc%2fpasswd",
    f"/runs/{RUN_DATE}/validation/leak.html",                    # symlink to a file outside
    f"/runs/{RUN_DATE}/reports/institutions/H00000000003.html",  # symlink planted as a report
    "/runs/2026-10-13/overview.html",                            # run link pointing outside
    "/runs/..%2f..%2foutside/overview.html",
    "/runs/%2e%2e/overview.html",
    "/runs/%2fetc%2fpasswd/overview.html",
    "/runs/2026-10-12%2f..%2f..%2foutside/overview.html",
    "/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
]


def test_path_traversal_is_refused(portal):
    c = _client(portal, PROVINCE)                     # the widest scope
    cookie = c.cookies.get("claimscreen_session")
    assert c.get(f"/runs/{RUN_DATE}/validation/index.html").text.count("Data Docs") == 1   # control
    for path in TRAVERSALS:
        status, body = _raw_get(portal, path, cookie)
        assert status in (400, 404), (path, status)
        assert SECRET.encode() not in body and b"root:" not in body and b"PAR1" not in body, path
        assert b"SQLite format" not in body, path
    assert "2026-10-13" not in c.get("/").text


def test_wrong_passwords_are_rate_limited_per_user_and_address(portal):
    name, pw = "victim", "victim-pass-1"
    c = _client(portal)
    for _ in range(db.FAILED_LOGINS_ALLOWED):
        assert c.post("/login", data={"name": name, "password": "guess"}).status_code == 401
    r = c.post("/login", data={"name": name, "password": pw})      # even the right one now
    assert r.status_code == 429 and "claimscreen_session" not in r.headers.get("set-cookie", "")
    assert c.post("/login", data={"name": name, "password": "guess"}).status_code == 429
    # another address is not locked out by this one's failures, nor another user
    other = _client(portal, local_address="127.0.0.2")
    assert other.post("/login", data={"name": name, "password": pw}).status_code == 303
    assert _client(portal).post("/login", data={"name": CITY[0], "password": CITY[1]}).status_code == 303
    # unknown users are throttled the same way (no user enumeration by behaviour)
    for _ in range(db.FAILED_LOGINS_ALLOWED):
        assert c.post("/login", data={"name": "nobody", "password": "x"}).status_code == 401
    assert c.post("/login", data={"name": "nobody", "password": "x"}).status_code == 429


def test_cross_site_login_is_refused(portal):
    r = _client(portal).post("/login", data={"name": CITY[0], "password": CITY[1]},
                             headers={"Origin": "https://evil.example"})
    assert r.status_code == 403


def test_downloads_are_audited_and_the_log_is_append_only(portal):
    c = _client(portal, SHENZHEN)
    before = max([r.id for r in db.audit_rows(portal["engine"], limit=1)] or [0])
    got = {}
    for ext in ("xlsx", "csv", "html"):
        r = c.get(f"/runs/{RUN_DATE}/reports/institutions/{OTHER_CITY_INSTITUTION}.{ext}",
                  params={"download": 1})
        assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
        got[ext] = r.content
    assert c.get(f"/runs/{RUN_DATE}/overview.html", params={"download": 1}).status_code == 200
    assert c.get(f"/runs/{RUN_DATE}/reports/institutions/{OTHER_CITY_INSTITUTION}.html").status_code == 200
    wb = load_workbook(io.BytesIO(got["xlsx"]))
    assert any(ws.title.startswith("settlement") for ws in wb.worksheets)
    assert got["csv"] == (portal["out"] / "reports" / "institutions" / f"{OTHER_CITY_INSTITUTION}.csv").read_bytes()
    rows = [r for r in db.audit_rows(portal["engine"], limit=50, user_name=SHENZHEN[0]) if r.id > before]
    downloads = sorted(r.target for r in rows if r.action == "download")
    assert downloads == sorted([f"{RUN_DATE}/overview.html"] +
                               [f"{RUN_DATE}/reports/institutions/{OTHER_CITY_INSTITUTION}.{e}"
                                for e in ("csv", "html", "xlsx")])
    assert all(r.ip == "127.0.0.1" and r.at is not None and r.status == 200 for r in rows)
    assert [r.target for r in rows if r.action == "view"] == [
        f"{RUN_DATE}/reports/institutions/{OTHER_CITY_INSTITUTION}.html"]
    # append-only, enforced by the database
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with portal["engine"].begin() as con:
            con.execute(sa.text("UPDATE audit_log SET user_name = 'someone-else'"))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with portal["engine"].begin() as con:
            con.execute(sa.text("DELETE FROM audit_log"))
    assert len(db.audit_rows(portal["engine"], limit=10_000)) > len(rows)


def test_admin_sees_the_audit_log_others_do_not(portal):
    assert _client(portal, PROVINCE).get("/audit").status_code == 404
    r = _client(portal, ADMIN).get("/audit")
    assert r.status_code == 200 and "download" in r.text


def test_passwords_are_salted_hashes(portal):
    with portal["engine"].connect() as con:
        hashes = [h for (h,) in con.execute(sa.select(db.users.c.password_hash))]
    assert all(h.startswith("scrypt$") for h in hashes) and len(set(hashes)) == len(hashes)
    assert not any(pw in h for h in hashes for pw in (CITY[1], PROVINCE[1]))
    a, b = db.hash_password("same-password"), db.hash_password("same-password")
    assert a != b and db.verify_password("same-password", a) and not db.verify_password("other", a)


def test_admin_cli_adds_lists_and_audits(portal, monkeypatch, capsys):
    data_dir = str(portal["settings"].data_dir)
    monkeypatch.setenv("CLAIMSCREEN_PORTAL_DB", portal["url"])
    monkeypatch.setattr("sys.stdin", io.StringIO("foshan-pass-1\n"))
    assert cli.main(["--data-dir", data_dir, "users", "add", "--name", "foshan", "--password-stdin",
                     "--role", "city", "--regions", "4406,440605"]) == 0
    assert cli.main(["--data-dir", data_dir, "users", "add", "--name", "bad", "--password", "long-enough",
                     "--role", "city"]) == 2                          # a city user needs regions
    assert cli.main(["--data-dir", data_dir, "users", "list"]) == 0
    out = capsys.readouterr().out
    assert "foshan" in out and "4406,440605" in out and "bad " not in out
    assert db.authenticate(portal["engine"], "foshan", "foshan-pass-1").regions == ("4406", "440605")
    _client(portal, ("foshan", "foshan-pass-1"))
    assert cli.main(["--data-dir", data_dir, "audit", "--user", "foshan"]) == 0
    assert "login" in capsys.readouterr().out


def test_browser_signs_in_finds_an_institution_and_downloads_its_report(portal, tmp_path):
    browser = chromium()
    sync_api = playwright_api()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=browser, args=["--no-sandbox", "--disable-gpu"])
        try:
            ctx = b.new_context(accept_downloads=True)
            page = ctx.new_page()
            page.goto(portal["base"] + f"/runs/{RUN_DATE}/")
            assert "/login" in page.url                                # sent to sign in first
            page.get_by_label("User / 用户名").fill(CITY[0])
            page.get_by_label("Password / 密码").fill(CITY[1])
            page.get_by_role("button", name="Sign in / 登录").click()
            page.get_by_role("link", name=RUN_DATE).click()
            page.get_by_label("Search institution / 查找机构").fill("Kangning")
            page.get_by_role("button", name="Search / 查找").click()
            assert page.get_by_role("cell", name="Kangning Clinic").is_visible()
            assert page.get_by_role("cell", name="Riverside Hospital").count() == 0
            with page.expect_download() as dl:
                page.get_by_role("link", name="xlsx").click()
            saved = tmp_path / dl.value.suggested_filename
            dl.value.save_as(saved)
            assert saved.name == f"H00000000001-{RUN_DATE}.xlsx"
            assert load_workbook(saved)["Summary 概要"]["B1"].value == "H00000000001"
            page.get_by_role("link", name="view / 查看").click()
            assert page.get_by_role("heading", name="Kangning Clinic").is_visible()
            assert page.get_by_text("Ranked suspicion list").is_visible()
        finally:
            b.close()
    targets = [r.target for r in db.audit_rows(portal["engine"], limit=20, user_name=CITY[0])]
    assert f"{RUN_DATE}/reports/institutions/H00000000001.xlsx" in targets


def test_report_prints_to_pdf_on_request_within_scope(portal):
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: CI set-up must run scripts/setup_browser.sh")
        pytest.skip("chromium not installed: no PDF printing")
    c = _client(portal, SHENZHEN)
    r = c.get(f"/runs/{RUN_DATE}/reports/institutions/{OTHER_CITY_INSTITUTION}.pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    from pipeline import fonts
    if fonts.cjk_font() or os.environ.get("CI"):           # the Chinese is printed in the set-up's font
        assert re.search(rb"/BaseFont\s*/[A-Z]{6}\+(WenQuanYi|NotoSans\w*CJK|SourceHanSans)", r.content)
    assert r.headers["content-disposition"] == f'attachment; filename="{OTHER_CITY_INSTITUTION}-{RUN_DATE}.pdf"'
    assert _client(portal, CITY).get(
        f"/runs/{RUN_DATE}/reports/institutions/{OTHER_CITY_INSTITUTION}.pdf").status_code == 404
    targets = [r.target for r in db.audit_rows(portal["engine"], limit=5, user_name=SHENZHEN[0], action="download")]
    assert f"{RUN_DATE}/reports/institutions/{OTHER_CITY_INSTITUTION}.pdf" in targets
