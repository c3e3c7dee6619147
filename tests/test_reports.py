"""Reports of a published run: every institution with findings gets HTML, XLSX and CSV;
the XLSX holds exactly its findings; the HTML opens in headless Chromium."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook

from pipeline import reports
from report_world import RUN_DATE, build_run, chromium

from pipeline import ROOT as _ROOT
from pipeline.rules_config import load_rules as _load_rules

RULES_VERSION = _load_rules(_ROOT / "data" / "rules.yaml").version

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reports")
    st, out = build_run(tmp)
    return st, out


def _findings(out: Path, where: str = "true", params=None) -> list[dict]:
    con = duckdb.connect()
    cur = con.execute(f"SELECT * FROM read_parquet('{out / 'findings.parquet'}') WHERE {where} "
                      f"ORDER BY finding_id", params or [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def _flagged(out: Path) -> list[str]:
    t = pq.read_table(out / "institutions.parquet")
    return sorted(i for i, n in zip(t["institution_id"].to_pylist(), t["n_findings"].to_pylist()) if n > 0)


def test_every_institution_with_findings_has_all_formats_in_the_manifest(run):
    st, out = run
    flagged = _flagged(out)
    assert flagged == ["H00000000001", "H00000000002", "H00000000004", "P00000000002"]
    listed = {f["path"] for f in json.loads((out / "_MANIFEST.json").read_text())["files"]}
    for inst in flagged:
        for ext in ("html", "xlsx", "csv"):
            assert f"reports/institutions/{inst}.{ext}" in listed
            assert (out / "reports" / "institutions" / f"{inst}.{ext}").stat().st_size > 0
    # clean institutions get no report, but are in the index
    assert not (out / "reports" / "institutions" / "H00000000003.html").exists()
    idx = pq.read_table(out / "reports" / "index.parquet").to_pylist()
    assert {r["institution_id"] for r in idx} == {"H00000000001", "H00000000002", "H00000000003",
                                                   "H00000000004", "P00000000001", "P00000000002"}
    assert {r["institution_id"]: r["region"] for r in idx}["P00000000002"] == "440305"
    assert {"overview.html", "reports/index.parquet", "reports/report_meta.json"} <= listed


def test_xlsx_holds_the_same_rows_as_findings_per_entity_type(run):
    st, out = run
    for inst in _flagged(out):
        expected = _findings(out, "institution_id = ?", [inst])
        wb = load_workbook(out / "reports" / "institutions" / f"{inst}.xlsx")
        got = []
        for ws in wb.worksheets:
            if ws.title.startswith("Summary"):
                continue
            assert ws.auto_filter.ref and ws.auto_filter.ref.startswith("A1:")
            header = [c.value.split(" / ")[0] for c in ws[1]]
            rows = [dict(zip(header, [c.value for c in r])) for r in ws.iter_rows(min_row=2)]
            assert {r["Entity type"] for r in rows} == {ws.title.split()[0]}, "one sheet per entity type"
            got.extend(rows)
        assert sorted(r["Finding id"] for r in got) == [f["finding_id"] for f in expected]
        by_id = {r["Finding id"]: r for r in got}
        for f in expected:
            row = by_id[f["finding_id"]]
            assert row["Rule id"] == f["detector_id"]
            assert row["Reason"] == f["reason"]
            assert Decimal(str(row["Amount at risk"])).quantize(Decimal("0.01")) == f["amount_at_risk"]
            assert row["Settlements"] == ", ".join(f["settlement_ids"])
            assert row["Evidence"] == f["evidence"]
        summary = wb["Summary 概要"]
        facts = {r[0].value: r[1].value for r in summary.iter_rows()}
        assert facts["Institution / 机构编码"] == inst
        assert facts["Rules version / 规则配置版本"] == RULES_VERSION


def test_csv_holds_the_same_rows_and_opens_in_excel(run):
    st, out = run
    inst = "P00000000002"
    raw = (out / "reports" / "institutions" / f"{inst}.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 BOM so Excel reads the Chinese headers"
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    expected = _findings(out, "institution_id = ?", [inst])
    assert sorted(r["Finding id / 疑点编号"] for r in rows) == [f["finding_id"] for f in expected]


def test_institution_html_is_self_contained_and_bilingual(run):
    st, out = run
    page = (out / "reports" / "institutions" / "H00000000004.html").read_text(encoding="utf-8")
    assert "Riverside Hospital" in page and "440111" in page
    assert "Claims after death" in page and "死亡后就医" in page          # rule names from the registry
    assert RULES_VERSION in page                                           # rules configuration version
    assert "<svg" in page                                                # charts inline
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page and "<script" not in page
    idx = {r["institution_id"]: r for r in pq.read_table(out / "reports" / "index.parquet").to_pylist()}
    assert f'class="grade g{idx["H00000000004"]["grade"]}"' in page
    for f in _findings(out, "institution_id = 'H00000000004'"):
        assert f["reason"].replace("'", "&#x27;") in page


def test_grades_follow_the_evidence_and_the_rank(run):
    st, out = run
    # A: nothing open; with findings: by the share of screened institutions ranked above
    assert [reports.grade_of(0, 0.0), reports.grade_of(3, 0.0), reports.grade_of(3, 0.029),
            reports.grade_of(3, 0.03), reports.grade_of(3, 0.09), reports.grade_of(3, 0.2),
            reports.grade_of(3, 0.25), reports.grade_of(1, 0.9)] == ["A", "E", "E", "D", "D", "C", "B", "B"]
    idx = pq.read_table(out / "reports" / "index.parquet").to_pylist()
    for r in idx:
        assert r["grade"] == reports.grade_of(r["n_findings"], r["grade_share_above"])
        assert (r["grade"] == "A") == (r["n_findings"] == 0)
    # monotone: a more suspicious rank never carries a better grade; ties share one
    worse = "ABCDE".index
    for a in idx:
        for b in idx:
            if a["rank"] < b["rank"]:
                assert worse(a["grade"]) >= worse(b["grade"]), (a["institution_id"], b["institution_id"])
            if a["rank"] == b["rank"] and a["n_findings"] and b["n_findings"]:
                assert a["grade"] == b["grade"]
    by = {r["institution_id"]: r for r in idx}
    assert by["H00000000003"]["grade"] == "A"
    assert by["H00000000004"]["rank"] == 1 and by["H00000000004"]["grade"] == "E"
    # the grade of each published run, by the same rule, in its report
    hist = by["H00000000004"]["grade_history"]
    assert [h["run_date"] for h in hist] == ["2026-10-10", RUN_DATE] and by["H00000000004"]["grade_runs"] == 2
    assert hist[-1]["grade"] == "E" and hist[-1]["rank"] == 1
    page = (out / "reports" / "institutions" / "H00000000004.html").read_text(encoding="utf-8")
    assert "Grade history / 历次等级" in page and "10-10" in page


def test_grade_definition_is_on_the_overview_and_in_each_report(run):
    st, out = run
    pages = [(out / "overview.html").read_text(encoding="utf-8"),
             (out / "reports" / "institutions" / "H00000000001.html").read_text(encoding="utf-8")]
    for page in pages:
        for g, (en, zh) in reports.GRADE_RULE.items():
            assert en.replace("'", "&#x27;") in page and zh in page, g
    assert "what makes an A and an E" in pages[0]


def test_grade_is_monotone_with_rank_on_a_large_ranking(tmp_path):
    """200 institutions, every tie and band boundary: grade never improves with a worse rank."""
    con = duckdb.connect()
    con.execute("CREATE TABLE report_history AS SELECT DATE '2026-10-12' AS run_date, "
                "'I' || lpad(CAST(i AS VARCHAR), 3, '0') AS institution_id, "
                "CAST(1 + i // 3 AS INTEGER) AS rank, CASE WHEN i < 150 THEN 1 + i % 4 ELSE 0 END AS n_findings "
                "FROM range(200) AS t(i)")
    rows = con.execute(f"SELECT rank, n_findings, {reports._grade_sql('n_findings', 'share')} AS grade FROM ("
                       "SELECT *, (rank() OVER (ORDER BY rank) - 1) / 200.0 AS share FROM report_history) "
                       "ORDER BY rank").fetchall()
    grades = ["ABCDE".index(g) for _, _, g in rows]
    assert grades == sorted(grades, reverse=True)
    assert {g for _, _, g in rows} == set("ABCDE")


def test_overview_links_every_report_and_shows_the_trend(run):
    st, out = run
    page = (out / "overview.html").read_text(encoding="utf-8")
    for inst in _flagged(out):
        assert f"href='reports/institutions/{inst}.html'" in page
    assert "2026-10-10" in page and RUN_DATE in page                     # trend over both runs
    assert "440305" in page and "Duplicate billing / 重复收费" in page
    # the gate's Data Docs of the run date's extract are published with the run, and linked
    assert 'href="validation/index.html"' in page and (out / "validation" / "index.html").is_file()


def test_overview_links_validation_docs_when_present_and_scopes_to_regions(run, tmp_path):
    st, out = run
    copy = tmp_path / RUN_DATE
    shutil.copytree(out, copy)
    (copy / "validation").mkdir(exist_ok=True)      # the gate's docs are there already
    (copy / "validation" / "index.html").write_text("<html>docs</html>")
    page = reports.overview_html(copy, history=[], meta={"run_date": RUN_DATE, "rules_version": "x"})
    assert 'href="validation/index.html"' in page
    scoped = reports.overview_html(copy, history=[], meta={"run_date": RUN_DATE, "rules_version": "x"},
                                   regions=["4403"])
    assert "P00000000002" in scoped and "H00000000001" not in scoped and "440111" not in scoped


def test_ring_pictures_are_embedded(run, tmp_path):
    st, out = run
    copy = tmp_path / RUN_DATE
    shutil.copytree(out, copy)
    rings = pq.read_table(copy / "rings.parquet")
    ring = pa.table({"run_date": pa.array([date(2026, 10, 12)], pa.date32()),
                     "ring_id": ["RING0001"], "member_type": ["institution"], "member_id": ["H00000000001"],
                     "ring_score": [1.0], "n_members": pa.array([3], pa.int32())}).select(rings.schema.names)
    pq.write_table(ring.cast(rings.schema), copy / "rings.parquet")
    (copy / "rings").mkdir()
    (copy / "rings" / "RING0001.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><circle r="4" cx="5" cy="5"/></svg>')
    reports.render_run(st, RUN_DATE, copy)
    page = (copy / "reports" / "institutions" / "H00000000001.html").read_text(encoding="utf-8")
    assert "data:image/svg+xml;base64," in page and "RING0001" in page
    assert "data:image/svg+xml" not in (copy / "reports" / "institutions" / "H00000000002.html").read_text()


def test_spreadsheet_cells_never_become_formulas(tmp_path):
    row = {c: None for c, _ in reports.FINDING_COLUMNS}
    row.update(finding_id="f1", entity_type="settlement", entity_id="=HYPERLINK(\"http://x\")",
               reason="+cmd|' /C calc'!A0", settlement_ids=["S1"], score=1.0,
               amount_at_risk=Decimal("1.00"))
    files = reports._InstitutionFiles({}, {}, tmp_path, stem="x")
    files.add(row)
    files.close()
    ws = load_workbook(tmp_path / "x.xlsx")["settlement 结算单"]
    assert ws["F2"].value == '=HYPERLINK("http://x")' and ws["F2"].data_type == "s"
    text = (tmp_path / "x.csv").read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in text and "'+cmd" in text


def _dump_dom(browser: str, page: Path, tmp: Path) -> str:
    res = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}", "--dump-dom",
                          page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def test_report_and_overview_open_in_headless_chromium(run, tmp_path):
    browser = chromium()
    st, out = run
    dom = _dump_dom(browser, out / "reports" / "institutions" / "H00000000001.html", tmp_path)
    assert "Kangning Clinic" in dom and "重复收费" in dom and "Ranked suspicion list" in dom
    assert dom.count("<svg") >= 3
    dom = _dump_dom(browser, out / "overview.html", tmp_path)
    assert "Flight-inspection target list" in dom and "飞行检查" in dom and "Riverside Hospital" in dom
    shot = tmp_path / "overview.png"
    res = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          "--window-size=1280,900", f"--screenshot={shot}", (out / "overview.html").as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and shot.stat().st_size > 10_000      # a page was painted, not blank


def test_key_content_is_visible_in_chromium(run):
    """Visibility (not just presence in the DOM), through Playwright driving Debian's chromium."""
    browser = chromium()
    sync_api = pytest.importorskip("playwright.sync_api") if not os.environ.get("CI") else \
        __import__("playwright.sync_api", fromlist=["sync_playwright"])
    st, out = run
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=browser, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = b.new_page()
            page.goto((out / "reports" / "institutions" / "H00000000004.html").as_uri())
            assert page.get_by_role("heading", name="Riverside Hospital").is_visible()
            assert page.locator('.grade[title="grade"]').is_visible()
            assert page.locator("td", has_text="死亡后就医").first.is_visible()
            page.goto((out / "overview.html").as_uri())
            assert page.get_by_role("heading", name="Flight-inspection target list / 飞行检查对象建议名单").is_visible()
            page.get_by_role("link", name="H00000000004").click()
            assert page.get_by_role("heading", name="Riverside Hospital").is_visible()
        finally:
            b.close()


def test_long_lists_are_capped_in_html_and_complete_in_files(run, tmp_path, monkeypatch):
    st, out = run
    copy = tmp_path / RUN_DATE
    shutil.copytree(out, copy)
    monkeypatch.setattr(reports, "HTML_ROWS_PER_TYPE", 1)
    monkeypatch.setattr(reports, "FETCH_ROWS", 2)          # batches cut across institutions
    reports.render_run(st, RUN_DATE, copy)
    page = (copy / "reports" / "institutions" / "H00000000001.html").read_text(encoding="utf-8")
    assert "3 finding(s)" in page and "2 more in the XLSX/CSV" in page
    assert page.count("Item LAB01 (Complete blood count) billed") == 1
    expected = [f["finding_id"] for f in _findings(out, "institution_id = 'H00000000001'")]
    ws = load_workbook(copy / "reports" / "institutions" / "H00000000001.xlsx")["settlement 结算单"]
    assert sorted(r[0].value for r in ws.iter_rows(min_row=2)) == expected
    assert ws.auto_filter.ref == "A1:P4"
    rows = list(csv.reader((copy / "reports" / "institutions" / "H00000000001.csv")
                           .read_text(encoding="utf-8-sig").splitlines()))
    assert sorted(r[0] for r in rows[1:]) == expected


def test_a_run_without_findings_still_gets_an_overview(tmp_path):
    from pipeline import builder, ingest, screen, validate
    from pipeline.settings import load_settings
    builder.write_extracts(tmp_path / "landing", [dict(settlement_id="S1", patient_id="P001",
                                                       institution_id="H00000000003", admit_date="2026-10-05")],
                           [dict(settlement_id="S1", item_code="CON01", service_date="2026-10-05", unit_price=20)])
    st = load_settings(data_dir=tmp_path / "data")
    for r in ingest.ingest(st, tmp_path / "landing"):
        validate.validate(st, r.extract_date)
    out = screen.screen(st, "2026-10-05")
    assert list((out / "reports" / "institutions").iterdir()) == []
    page = (out / "overview.html").read_text(encoding="utf-8")
    assert "Flight-inspection target list" in page and "H00000000003" not in page
    assert pq.read_table(out / "reports" / "index.parquet").num_rows == 1


def test_demo_summary_columns_line_up_with_chinese_labels(run):
    from test_terminal import assert_aligned

    from pipeline import demo
    st, out = run
    text = demo.summary_text(out, RUN_DATE)
    assert "Claims after death / 死亡后就医" in text and "Riverside Hospital" in text
    assert "按规则统计" in text and "机构疑点排名前十" in text
    assert_aligned(text, min_tables=2)
    top = [line for line in text.splitlines() if "H00000000004" in line]
    assert top and "│ E " in top[0]                                   # rank 1 carries its grade


def test_screening_logs_a_line_per_stage_with_counts(run, tmp_path, caplog):
    from pipeline import screen
    st, out = run
    with caplog.at_level("INFO", logger="claimscreen.progress"):
        screen.screen(st, RUN_DATE, ["after_death"])
    text = caplog.text
    assert f"{RUN_DATE} features" in text
    assert f"{RUN_DATE} detect after_death: 2 findings" in text
    assert f"{RUN_DATE} rank: 6 institutions" in text
    assert f"{RUN_DATE} reports: overview and 4 institution reports" in text


SCREENSHOTS = _ROOT / "docs" / "screenshots"


def test_screenshots_of_the_overview_a_report_and_a_ring_picture(run, tmp_path):
    """Full-page screenshots taken in Chromium: the overview, an institution report and a
    ring picture inside its report. With CLAIMSCREEN_SCREENSHOTS=1 (scripts/screenshots.sh)
    they replace docs/screenshots/."""
    from test_fonts import RING, _ring_module
    browser = chromium()
    sync_api = pytest.importorskip("playwright.sync_api") if not os.environ.get("CI") else \
        __import__("playwright.sync_api", fromlist=["sync_playwright"])
    st, out = run
    copy = tmp_path / RUN_DATE
    shutil.copytree(out, copy)
    rings = pq.read_table(copy / "rings.parquet")
    ring = pa.table({"run_date": pa.array([date(2026, 10, 12)], pa.date32()),
                     "ring_id": ["RING0001"], "member_type": ["institution"], "member_id": ["H00000000001"],
                     "ring_score": [RING["score"]], "n_members": pa.array([len(RING["members"])], pa.int32())})
    pq.write_table(ring.select(rings.schema.names).cast(rings.schema), copy / "rings.parquet")
    (copy / "rings").mkdir()
    _ring_module().draw_ring(RING, copy / "rings" / "RING0001.png")
    reports.render_run(st, RUN_DATE, copy)
    shots = {}
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=browser, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = b.new_page(viewport={"width": 1280, "height": 900})
            page.goto((copy / "overview.html").as_uri())
            assert page.get_by_text("what makes an A and an E").is_visible()
            shots["run_overview.png"] = page.screenshot(full_page=True)
            page.goto((copy / "reports" / "institutions" / "H00000000004.html").as_uri())
            assert page.get_by_role("heading", name="Grade history / 历次等级").is_visible()
            shots["institution_report.png"] = page.screenshot(full_page=True)
            page.goto((copy / "reports" / "institutions" / "H00000000001.html").as_uri())
            img = page.locator("img[alt='ring RING0001']")
            assert img.is_visible() and img.evaluate("i => i.naturalWidth") > 500
            shots["ring_picture.png"] = img.screenshot()
        finally:
            b.close()
    for name, png in shots.items():
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000, name      # painted, not blank
        (tmp_path / name).write_bytes(png)
    if os.environ.get("CLAIMSCREEN_SCREENSHOTS"):
        for name, png in shots.items():
            (SCREENSHOTS / name).write_bytes(png)
