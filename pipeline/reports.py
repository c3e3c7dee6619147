"""Reports published beside each run, for the supervisors who act on it.

Written into the (unpublished) run folder by :func:`renderer` before the manifest, so
every file is listed in ``_MANIFEST.json`` and appears atomically with the run::

    overview.html                        the run overview: flight-inspection target list,
                                         totals by rule and region, trend, links
    reports/index.parquet                one row per screened institution: reference facts,
                                         rank, score, grade; what the portal scopes on
    reports/report_meta.json             rules version, previous runs used, when rendered
    reports/institutions/<id>.html       self-contained (inline CSS, inline SVG charts)
    reports/institutions/<id>.xlsx       one sheet per entity type, filters on
    reports/institutions/<id>.csv        UTF-8 with BOM (opens in Excel in Chinese)

Everything is computed in DuckDB over the run's Parquet files and the lake's feature
views; Python only formats the (bounded) rows of one institution at a time.

Grade (credit-style, A best … E worst), read from tonight's evidence and rank only, so it
never contradicts the page it is printed on: A — no open finding tonight; otherwise by the
share of screened institutions ranked above it (more suspicious) tonight: E — fewer than
3 % (the top of the target list), D — fewer than 10 %, C — fewer than 25 %, B — the
rest with findings. A higher rank never gets a better grade; tied institutions share one.
It is relative: it orders institutions for attention, it says nothing about how much
fraud one commits. Each report shows the grade of every published run (grade history),
computed by the same rule from that run's ranking.
"""
from __future__ import annotations

import csv
import html
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline import fonts, lake, registry, terminal
from pipeline import report_svg as svg
from pipeline.lake import sql_literal
from pipeline.rules_config import load_rules
from pipeline.settings import Settings

HISTORY_RUNS = 30          # previous published runs read for trends
#: (share of screened institutions ranked above, grade) for institutions with findings
GRADE_BANDS = ((0.03, "E"), (0.10, "D"), (0.25, "C"), (float("inf"), "B"))
HTML_ROWS_PER_TYPE = 300
TREND_TABLE_RUNS = 10      # rows of the overview's trend table (the chart shows every run)   # the HTML lists the strongest; XLSX/CSV hold every row
INSTITUTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
RUN_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

ENTITY_TYPES = {
    "settlement": ("Settlements", "结算单"),
    "patient": ("Patients", "参保人"),
    "doctor": ("Doctors", "医师"),
    "institution": ("Institution", "机构"),
    "ring": ("Rings", "团伙"),
}
KIND_ZH = {"hospital": "医院", "clinic": "诊所", "community": "社区卫生服务中心", "pharmacy": "药店"}
LEVEL_ZH = {0: "未定级", 1: "一级", 2: "二级", 3: "三级"}
OWNERSHIP_ZH = {"public": "公立", "private": "民营"}
GRADE_TEXT = {"A": ("low concern", "关注度低"), "B": ("some concern", "一般关注"),
              "C": ("concern", "重点关注"), "D": ("high concern", "高度关注"),
              "E": ("highest concern", "最高关注")}
GRADE_RULE = {  # what makes each grade, as printed on the overview and in every report
    "A": ("no open finding tonight", "本次筛查无疑点"),
    "B": ("findings; 25 % or more of the screened institutions rank above it",
          "有疑点，排名在全部筛查机构的前 25% 之外"),
    "C": ("findings; fewer than 25 % rank above it", "有疑点，排名在前 25% 之内"),
    "D": ("findings; fewer than 10 % rank above it", "有疑点，排名在前 10% 之内"),
    "E": ("findings; fewer than 3 % rank above it (the top of the target list)",
          "有疑点，排名在前 3% 之内（飞行检查名单之首）"),
}
PEER_METRICS = (  # column, English, Chinese, format
    ("cost_per_visit", "Cost per visit", "次均费用", svg.money),
    ("fund_per_patient", "Fund paid per patient", "人均统筹支付", svg.money),
    ("drug_share", "Drug share of charges", "药占比", lambda v: f"{100 * v:.1f}%"),
    ("inpatient_share", "Inpatient share of visits", "住院占比", lambda v: f"{100 * v:.1f}%"),
    ("visits_per_patient", "Visits per patient", "人次人头比", lambda v: f"{v:.2f}"),
)
FINDING_COLUMNS = (  # column, header shown (English / 中文)
    ("finding_id", "Finding id / 疑点编号"),
    ("detector_id", "Rule id / 规则编号"),
    ("rule_en", "Rule / 规则"),
    ("rule_zh", "规则名称"),
    ("entity_type", "Entity type / 对象类型"),
    ("entity_id", "Entity / 对象"),
    ("patient_id", "Patient / 参保人"),
    ("doctor_id", "Doctor / 医师"),
    ("settlement_ids", "Settlements / 结算单"),
    ("score", "Score / 评分"),
    ("amount_at_risk", "Amount at risk / 涉及金额"),
    ("first_seen", "First seen / 首次发现"),
    ("reason", "Reason / 疑点说明"),
    ("evidence", "Evidence / 证据"),
    ("institution_id", "Institution / 机构"),
    ("run_date", "Run date / 筛查日期"),
)

CSS = """
body{font-family:""" + fonts.CSS_FONT_FAMILY + """;margin:24px auto;
max-width:1180px;color:#222;line-height:1.45}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;border-bottom:2px solid #3b6ea5;padding-bottom:3px;margin-top:28px}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;width:100%;font-size:13px}td,th{border:1px solid #ccd;padding:3px 6px;vertical-align:top}
th{background:#eef2f7;text-align:left}td.n{text-align:right;white-space:nowrap}
.facts td{border:none;padding:2px 12px 2px 0}.facts th{background:none;border:none;padding:2px 8px 2px 0;color:#555;font-weight:normal}
.grade{display:inline-block;font-size:34px;font-weight:bold;width:56px;height:56px;line-height:56px;text-align:center;
border-radius:8px;color:#fff}
.gA{background:#2e8b57}.gB{background:#7fa33a}.gC{background:#d4a017}.gD{background:#e0702a}.gE{background:#c0392b}
.small{font-size:12px;color:#555}.legend{width:auto;margin:4px 0}.legend td{vertical-align:middle}.new{background:#c0392b;color:#fff;border-radius:3px;padding:0 4px;font-size:11px}
svg{display:block}.charts{display:flex;flex-wrap:wrap;gap:18px}.chart{flex:1 1 540px}
.head{display:flex;gap:28px;align-items:flex-start}footer{margin-top:36px;font-size:12px;color:#555;border-top:1px solid #ccc;padding-top:8px}
a{color:#1d4f8c}@media print{.noprint{display:none}body{margin:0}}
"""


def _e(s) -> str:
    return "" if s is None else html.escape(str(s), quote=True)


def grade_of(n_findings: int, share_above: float) -> str:
    """The grade of an institution with n_findings open findings tonight, of which a
    share_above of the screened institutions rank above (see the module docstring)."""
    if not n_findings:
        return "A"
    for bound, g in GRADE_BANDS:
        if share_above < bound:
            return g
    return "B"


def _grade_sql(n_findings: str, share_above: str) -> str:
    """grade_of as a SQL CASE expression over two column expressions."""
    bands = " ".join(f"WHEN {share_above} < {b} THEN '{g}'" for b, g in GRADE_BANDS[:-1])
    return f"CASE WHEN coalesce({n_findings}, 0) = 0 THEN 'A' {bands} ELSE 'B' END"


def renderer(settings: Settings, run_date: str):
    """A callable that renders the reports of a run into its (unpublished) folder."""
    def render(folder: Path) -> None:
        copy_validation_docs(settings, run_date, Path(folder))   # first: the overview links it
        copy_ring_pictures(settings, run_date, Path(folder))     # first: the reports embed them
        render_run(settings, run_date, Path(folder))
    return render


def copy_ring_pictures(settings: Settings, run_date: str, folder: Path) -> Path | None:
    """Ring pictures the graph detectors drew (<findings>/rings/) go beside the run, in rings/."""
    import shutil

    from pipeline.detect import findings_dir
    src = findings_dir(settings, run_date) / "rings"
    if not src.is_dir():
        return None
    dst = folder / "rings"
    dst.mkdir(exist_ok=True)
    for p in sorted(src.iterdir()):
        if p.is_file() and not p.name.startswith("."):
            shutil.copyfile(p, dst / p.name)
    return dst


def copy_validation_docs(settings: Settings, run_date: str, folder: Path) -> Path | None:
    """Put the validation Data Docs and results of the run date's extract beside the run."""
    import shutil

    from pipeline.validate import report_dir
    src = report_dir(settings, run_date)
    if not (src / "data_docs").is_dir():
        return None
    dst = folder / "validation"
    shutil.copytree(src / "data_docs", dst)
    if (src / "results.json").exists():
        shutil.copyfile(src / "results.json", dst / "results.json")
    return dst


def published_runs(publish_dir: Path, before: str | None = None, limit: int = HISTORY_RUNS) -> list[Path]:
    """Published run folders (with a manifest), oldest first, optionally only before a date."""
    if not Path(publish_dir).exists():
        return []
    runs = sorted(p for p in Path(publish_dir).iterdir()
                  if RUN_DATE.match(p.name) and (before is None or p.name < before)
                  and (p / "_MANIFEST.json").exists())
    return runs[-limit:] if limit else runs


def _detector_meta() -> pa.Table:
    dets = registry.all_detectors()
    return pa.table({"detector_id": [d.id for d in dets], "rule_en": [d.name_en for d in dets],
                     "rule_zh": [d.name_zh for d in dets],
                     "severity": pa.array([d.severity for d in dets], pa.float64())})


def _history_sql(folder: Path, history: list[Path]) -> str:
    files = [sql_literal(p / "institutions.parquet") for p in history] + \
        [sql_literal(folder / "institutions.parquet")]
    return (f"SELECT CAST(run_date AS DATE) AS run_date, institution_id, rank, score, "
            f"CAST(amount_at_risk AS DOUBLE) AS amount_at_risk, n_findings "
            f"FROM read_parquet([{', '.join(files)}], union_by_name = true)")


def credit_as_of(settings: Settings, run_date: str) -> dict | None:
    """Credit grades and practitioner points as of the run, from the portal's database
    (``$CLAIMSCREEN_PORTAL_DB``, else ``<data_dir>/portal.db`` when that file exists):
    cases confirmed on or before the run date only, so re-rendering a run gives the same
    answer whatever was decided later. None without a portal database (the reports then
    carry the screening grade alone)."""
    import os
    from datetime import timedelta
    if not os.environ.get("CLAIMSCREEN_PORTAL_DB") and not (Path(settings.data_dir) / "portal.db").is_file():
        return None
    from sqlalchemy import create_engine, exc, inspect

    from pipeline.portal import cases, db
    url = db.default_url(settings.data_dir)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        return None                      # opening it would create an empty file
    config = cases.load_config()
    engine = create_engine(url)          # no schema created, nothing written
    try:
        if not inspect(engine).has_table("cases"):
            return None
        before = datetime.fromisoformat(run_date) + timedelta(days=1)   # decisions up to the end of the day
        year = int(run_date[:4])
        return {"as_of": run_date, "config": config, "year": year,
                "confirmed": cases.confirmed_in_window(engine, config, before),
                "points": cases.points(engine, config, year=year, before=before)}
    except exc.OperationalError as e:    # a portal server that is down must not stop the publish
        terminal.log.warning("%s reports: portal database unreachable, no credit grades or points: %s",
                             run_date, str(e).splitlines()[0][:200])
        return None
    finally:
        engine.dispose()


def _credit_reason(n: int, config) -> str:
    """Why the credit grade is what it is, in one line (English / 中文)."""
    from pipeline.portal import cases
    days = config.credit_window_days
    if not n:
        return (f"no confirmed case in the last {days} days: the screening grade stands / "
                f"近 {days} 天无确认违规案件，信用等级即筛查等级")
    floor = cases.credit_floor(n, config)
    cases_en = "1 confirmed case" if n == 1 else f"{n} confirmed cases"
    if floor == "A":
        return (f"{cases_en} in the last {days} days: below every floor / "
                f"近 {days} 天确认违规案件 {n} 件，未达等级下限")
    return (f"{cases_en} in the last {days} days: no better than {floor} / "
            f"近 {days} 天确认违规案件 {n} 件，信用等级不优于 {floor}")


def _add_credit(con: duckdb.DuckDBPyConnection, credit: dict) -> None:
    """credit_grade, credit_confirmed and credit_reason columns on report_index."""
    from pipeline.portal import cases
    config = credit["config"]
    ids, grades, ns, reasons = [], [], [], []
    for iid, grade in con.execute("SELECT institution_id, grade FROM report_index").fetchall():
        n = credit["confirmed"].get(iid, 0)
        ids.append(iid)
        grades.append(cases.credit_grade(grade, n, config))
        ns.append(n)
        reasons.append(_credit_reason(n, config))
    con.register("report_credit", pa.table({"institution_id": pa.array(ids, pa.string()),
                                            "credit_grade": pa.array(grades, pa.string()),
                                            "credit_confirmed": pa.array(ns, pa.int32()),
                                            "credit_reason": pa.array(reasons, pa.string())}))
    con.execute("CREATE OR REPLACE TEMP TABLE report_index AS SELECT i.*, c.credit_grade, c.credit_confirmed, "
                "c.credit_reason FROM report_index AS i LEFT JOIN report_credit AS c USING (institution_id)")
    con.unregister("report_credit")


def render_run(settings: Settings, run_date: str, folder: Path) -> dict:
    """Render the index, every institution's reports and the overview into folder."""
    t0 = time.perf_counter()
    run_date = str(run_date)
    history = published_runs(settings.publish_dir, before=run_date)
    rules = load_rules(settings.rules_file)
    out = folder / "reports"
    (out / "institutions").mkdir(parents=True, exist_ok=True)
    meta = {"run_date": run_date, "rules_version": rules.version, "rules_sha256": rules.sha256,
            "previous_runs": [p.name for p in history],
            "rendered_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    credit = credit_as_of(settings, run_date)
    if credit is not None:
        meta["credit"] = {"as_of": run_date, "cases_config_version": credit["config"].version,
                          "window_days": credit["config"].credit_window_days,
                          "points_year": credit["year"], "yearly_threshold": credit["config"].yearly_threshold}
    con = lake.open_screening(settings, run_date)
    try:
        _prepare(con, folder, history)
        if credit is not None:
            _add_credit(con, credit)
        con.execute(f"COPY (SELECT * FROM report_index ORDER BY rank, institution_id) "
                    f"TO {sql_literal(out / 'index.parquet')} (FORMAT parquet)")
        (out / "report_meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        run = _RunData.load(con, folder, meta)
        run.credit = credit
        # ids become file names: an institution id that is not plain letters/digits gets none
        flagged = render_institutions(run, out / "institutions")
    finally:
        con.close()
    (folder / "overview.html").write_text(
        overview_html(folder, history, meta=meta), encoding="utf-8")
    meta["seconds"] = round(time.perf_counter() - t0, 2)
    meta["institution_reports"] = len(flagged)
    terminal.log.info("%s reports: overview and %s institution reports (%.1fs)", run_date,
                      f"{len(flagged):,}", meta["seconds"])
    return meta


def _prepare(con: duckdb.DuckDBPyConnection, folder: Path, history: list[Path]) -> None:
    """Temp tables on a screening connection: report_findings, report_index, peer metrics."""
    con.register("detector_meta", _detector_meta())
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE report_findings AS
        WITH f AS (SELECT * FROM read_parquet({sql_literal(folder / 'findings.parquet')}))
        SELECT f.*, coalesce(m.rule_en, f.detector_id) AS rule_en, coalesce(m.rule_zh, f.detector_id) AS rule_zh,
               coalesce(m.severity, 1) * coalesce(greatest(f.score, 0)
                   / nullif(max(greatest(f.score, 0)) OVER (PARTITION BY f.detector_id), 0), 0) AS priority
        FROM f LEFT JOIN detector_meta AS m USING (detector_id)
        ORDER BY f.institution_id""")
    con.execute(f"CREATE OR REPLACE TEMP VIEW report_history AS {_history_sql(folder, history)}")
    # grade of every published run (this one included), each from that run's own ranking
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE report_grades AS
        WITH h AS (
            SELECT run_date, institution_id, rank, n_findings,
                   count(*) OVER (PARTITION BY run_date) AS n_screened,
                   rank() OVER (PARTITION BY run_date ORDER BY rank) - 1 AS n_above
            FROM report_history
        )
        SELECT run_date, institution_id, rank, n_screened, n_above,
               CAST(n_above AS DOUBLE) / n_screened AS share_above,
               {_grade_sql("n_findings", "CAST(n_above AS DOUBLE) / n_screened")} AS grade
        FROM h""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE report_metrics AS
        WITH c AS (
            SELECT institution_id, count(*) AS n_settlements, count(DISTINCT patient_id) AS n_patients,
                   sum(total_amount) AS total_amount, sum(fund_paid) AS fund_paid,
                   avg(CASE WHEN visit_type = 'inpatient' THEN 1.0 ELSE 0.0 END) AS inpatient_share
            FROM claims GROUP BY institution_id
        ),
        l AS (
            SELECT institution_id, sum(amount) FILTER (WHERE item_category = 'drug') AS drug_amount,
                   sum(amount) AS line_amount
            FROM lines GROUP BY institution_id
        )
        SELECT c.institution_id, c.n_settlements, c.n_patients,
               CAST(c.total_amount / nullif(c.n_settlements, 0) AS DOUBLE) AS cost_per_visit,
               CAST(c.fund_paid / nullif(c.n_patients, 0) AS DOUBLE) AS fund_per_patient,
               CAST(coalesce(l.drug_amount, 0) / nullif(l.line_amount, 0) AS DOUBLE) AS drug_share,
               CAST(c.inpatient_share AS DOUBLE) AS inpatient_share,
               CAST(c.n_settlements / nullif(c.n_patients, 0) AS DOUBLE) AS visits_per_patient
        FROM c LEFT JOIN l USING (institution_id)""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE report_index AS
        WITH ranked AS (SELECT * FROM read_parquet({sql_literal(folder / 'institutions.parquet')})),
             screened AS (SELECT count(*) AS n FROM ranked),
             newf AS (SELECT institution_id, count(*) AS n_new FROM report_findings
                      WHERE first_seen = run_date GROUP BY institution_id)
        SELECT r.run_date, r.institution_id, i.name, i.kind, CAST(i.level AS INTEGER) AS level,
               i.ownership, i.region, r.rank, (SELECT n FROM screened) AS n_screened, r.score,
               r.amount_at_risk, r.n_findings, coalesce(n.n_new, 0) AS n_new_findings, r.top_detectors,
               coalesce(g.grade, 'A') AS grade, g.share_above AS grade_share_above,
               gh.grade_runs, gh.grade_history,
               r.n_findings > 0 AS has_report,
               m.n_settlements, m.n_patients, m.cost_per_visit, m.fund_per_patient, m.drug_share,
               m.inpatient_share, m.visits_per_patient
        FROM ranked AS r
        LEFT JOIN institutions AS i ON i.institution_id = r.institution_id
        LEFT JOIN report_grades AS g ON g.institution_id = r.institution_id
                                     AND g.run_date = CAST(r.run_date AS DATE)
        LEFT JOIN (SELECT institution_id, count(*) AS grade_runs,
                          list(struct_pack(run_date := CAST(run_date AS VARCHAR), grade := grade, rank := rank)
                               ORDER BY run_date) AS grade_history
                   FROM report_grades GROUP BY institution_id) AS gh ON gh.institution_id = r.institution_id
        LEFT JOIN report_metrics AS m ON m.institution_id = r.institution_id
        LEFT JOIN newf AS n ON n.institution_id = r.institution_id""")


@dataclass
class _RunData:
    """What every institution report of a run shares, read once: the index rows, each
    institution's money at risk per published run, its rings."""
    con: duckdb.DuckDBPyConnection
    folder: Path
    meta: dict
    index: dict[str, dict]
    trends: dict[str, list[tuple[str, float]]]
    rings: dict[str, set[str]]
    credit: dict | None = None       # credit_as_of: None without a portal database

    @classmethod
    def load(cls, con, folder: Path, meta: dict) -> "_RunData":
        index = {r["institution_id"]: r for r in
                 _rows(con, "SELECT * FROM report_index ORDER BY rank, institution_id")}
        trends: dict[str, list] = {}
        for iid, d, amount in con.execute(
                "SELECT institution_id, CAST(run_date AS VARCHAR), amount_at_risk FROM report_history "
                "WHERE institution_id IN (SELECT institution_id FROM report_index WHERE n_findings > 0) "
                "ORDER BY institution_id, run_date").fetchall():
            trends.setdefault(iid, []).append((d, amount))
        rings: dict[str, set] = {}
        for iid, rid in con.execute(
                "SELECT institution_id, entity_id FROM report_findings WHERE entity_type = 'ring' "
                "AND institution_id IS NOT NULL UNION SELECT member_id, ring_id FROM read_parquet("
                + sql_literal(folder / "rings.parquet") + ") WHERE member_type = 'institution'").fetchall():
            rings.setdefault(iid, set()).add(rid)
        return cls(con, folder, meta, index, trends, rings)


def _rows(con, sql: str, params=None) -> list[dict]:
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def _kind_level(kind, level) -> str:
    k = f"{_e(kind)} {KIND_ZH.get(kind, '')}".strip() if kind else "—"
    lv = f"level {level} / {LEVEL_ZH.get(level, '')}" if level is not None else "—"
    return f"{k}, {lv}"


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{_e(title)}</title><style>{CSS}</style></head><body>{body}</body></html>')


def grade_legend() -> str:
    """The A–E definition as a table: what makes each grade (overview and every report)."""
    rows = "".join(
        f"<tr><td><span class='grade g{g}' style='font-size:13px;width:22px;height:22px;line-height:22px'>{g}</span>"
        f"</td><td>{GRADE_TEXT[g][0]} / {GRADE_TEXT[g][1]}</td><td>{_e(en)}</td><td>{_e(zh)}</td></tr>"
        for g, (en, zh) in GRADE_RULE.items())
    return (
        "<table class='legend'><tr><th>Grade / 等级</th><th>Meaning / 含义</th><th>What makes it</th>"
        f"<th>判定标准</th></tr>{rows}</table>"
        "<p class='small'>The grade comes from tonight's findings and rank alone (rank 1 = most "
        "suspicious): a higher rank never gets a better grade, and institutions tied on score share "
        "one. It orders institutions for attention against each other; it is not proof of fraud. "
        "等级只依据本次筛查的疑点与排名确定：排名越靠前等级不会越好，评分相同的机构等级相同。"
        "等级为相对排序，用于确定关注重点，不作为违规定性依据。</p>")


def _grade_footer(meta: dict, legend: bool = True) -> str:
    return (
        (f"<h3>Grade / 信用等级</h3>{grade_legend()}" if legend else "") +
        f"<p>Rules configuration / 规则配置版本: <b>{_e(meta.get('rules_version'))}</b> · "
        f"run date / 筛查日期 {_e(meta.get('run_date'))} · rendered / 生成时间 {_e(meta.get('rendered_at'))}</p>")


def _grade_history(head: dict) -> str:
    hist = head.get("grade_history") or []
    if not hist:
        return ""
    cells = "".join(
        f"<td style='text-align:center'><span class='grade g{h['grade']}' style='font-size:12px;width:20px;"
        f"height:20px;line-height:20px'>{h['grade']}</span><br><span class=small>{_e(h['run_date'][5:])}"
        f"<br>#{h['rank']}</span></td>" for h in hist)
    return (f"<h3>Grade history / 历次等级</h3><table class='facts' style='width:auto'><tr>{cells}</tr></table>"
            f"<p class='small'>Grade and rank in each published run ({len(hist)}), by the same rule "
            f"from that run's ranking / 各次已发布筛查的等级与排名。</p>")


# ----------------------------------------------------------------- institution report

FETCH_ROWS = 5000          # findings streamed from DuckDB in batches
_TYPE_ORDER = ("coalesce(array_position(['" + "', '".join(ENTITY_TYPES) + "'], entity_type), 99), "
               "entity_type")


def _entity_order(types) -> list[str]:
    return [t for t in ENTITY_TYPES if t in types] + sorted(set(types) - set(ENTITY_TYPES))


def render_institutions(run: _RunData, out: Path) -> list[str]:
    """Every flagged institution's HTML, XLSX and CSV in one streamed pass over the
    findings (ordered by institution, entity type, strength): memory stays bounded by one
    batch plus the HTML's strongest rows, and there is no query per institution."""
    ids = [i for i, r in run.index.items() if r["n_findings"] > 0 and INSTITUTION_ID.match(i)]
    cur = run.con.execute(f"""
        SELECT run_date, finding_id, first_seen, detector_id, rule_en, rule_zh, entity_type, entity_id,
               institution_id, patient_id, doctor_id, settlement_ids, score, amount_at_risk, reason,
               evidence, priority
        FROM report_findings
        WHERE list_contains(?, institution_id)
        ORDER BY institution_id, {_TYPE_ORDER}, priority DESC, amount_at_risk DESC, finding_id""", [ids])
    cols = [d[0] for d in cur.description]
    files: _InstitutionFiles | None = None
    done = []
    while batch := cur.fetchmany(FETCH_ROWS):
        for values in batch:
            r = dict(zip(cols, values))
            if files is None or files.institution_id != r["institution_id"]:
                if files is not None:
                    done.append(_finish_institution(run, files))
                files = _InstitutionFiles(run.index[r["institution_id"]], run.meta, out)
            files.add(r)
    if files is not None:
        done.append(_finish_institution(run, files))
    return done


def _finish_institution(run: _RunData, files: "_InstitutionFiles") -> str:
    files.close()
    html_text = _institution_html(run, files.head, files.top, files.totals, files.rules())
    (files.out / f"{files.institution_id}.html").write_text(html_text, encoding="utf-8")
    return files.institution_id


class _InstitutionFiles:
    """One institution's CSV and XLSX, written row by row as the findings stream past
    (ordered by entity type, then strength), keeping for the HTML only the totals per
    entity type and per rule and the strongest HTML_ROWS_PER_TYPE rows of each type."""

    def __init__(self, head: dict, meta: dict, out: Path, stem: str | None = None):
        from openpyxl import Workbook
        self.head, self.meta, self.out = head, meta, out
        self.institution_id = head.get("institution_id")
        stem = stem or self.institution_id
        self.csv_path, self.xlsx_path = out / f"{stem}.csv", out / f"{stem}.xlsx"
        self._csv_fh = open(self.csv_path, "w", encoding="utf-8-sig", newline="")
        self._csv = csv.writer(self._csv_fh)
        self._csv.writerow([h for _, h in FINDING_COLUMNS])
        self._wb = Workbook(write_only=True)
        self._summary()
        self._ws, self._type, self._n = None, None, 0
        self.totals: dict[str, list] = {}
        self._by_rule: dict[tuple, list] = {}
        self.top: list[dict] = []

    def _summary(self) -> None:
        ws = self._wb.create_sheet("Summary 概要")
        for k, label in (("institution_id", "Institution / 机构编码"), ("name", "Name / 名称"),
                         ("kind", "Kind / 类型"), ("level", "Level / 等级"), ("region", "Region / 区划"),
                         ("rank", "Rank / 排名"), ("score", "Score / 评分"),
                         ("amount_at_risk", "Amount at risk / 涉及金额"), ("grade", "Grade / 信用等级"),
                         ("n_findings", "Findings / 疑点数")):
            v = self.head.get(k)
            ws.append([label, float(v) if k == "amount_at_risk" and v is not None else v])
        if self.head.get("credit_grade") is not None:
            ws.append(["Credit grade / 信用等级", self.head["credit_grade"]])
            ws.append(["Credit grade, why / 信用等级说明", self.head.get("credit_reason")])
        ws.append(["Rules version / 规则配置版本", self.meta.get("rules_version")])
        ws.append(["Run date / 筛查日期", self.meta.get("run_date")])

    def _close_sheet(self) -> None:
        from openpyxl.utils import get_column_letter
        if self._ws is not None:
            self._ws.auto_filter.ref = f"A1:{get_column_letter(len(FINDING_COLUMNS))}{self._n + 1}"

    def add(self, r: dict) -> None:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
        etype = r["entity_type"]
        if etype != self._type:
            self._close_sheet()
            en, zh = ENTITY_TYPES.get(etype, (etype, etype))
            self._ws = self._wb.create_sheet(f"{etype} {zh}"[:31])
            self._ws.freeze_panes = "A2"
            self._ws.append([h for _, h in FINDING_COLUMNS])
            self._type, self._n = etype, 0
        self._n += 1
        values = [_cell_text(c, r[c]) for c, _ in FINDING_COLUMNS]
        self._csv.writerow([_csv_safe(v) for v in values])
        line = []
        for v in values:
            if isinstance(v, str):
                v = ILLEGAL_CHARACTERS_RE.sub("", v)[:32000]
                if v.startswith("="):     # openpyxl would store it as a formula
                    cell = WriteOnlyCell(self._ws, value=v)
                    cell.data_type = "s"
                    v = cell
            line.append(v)
        self._ws.append(line)
        amount = float(r["amount_at_risk"] or 0)
        t = self.totals.setdefault(etype, [0, 0.0])
        t[0] += 1
        t[1] += amount
        k = self._by_rule.setdefault((r["rule_en"], r["rule_zh"]), [0, 0.0])
        k[0] += 1
        k[1] += amount
        if self._n <= HTML_ROWS_PER_TYPE:
            self.top.append(r)

    def rules(self) -> list[tuple]:
        """(rule_en, rule_zh, findings, money at risk), most money first."""
        return sorted(((en, zh, n, a) for (en, zh), (n, a) in self._by_rule.items()),
                      key=lambda x: (-x[3], str(x[0])))

    def close(self) -> None:
        self._close_sheet()
        self._wb.save(self.xlsx_path)
        self._csv_fh.close()


def _cell_text(col: str, v) -> object:
    if v is None:
        return None
    if col == "settlement_ids":
        return ", ".join(v)
    if col == "amount_at_risk":
        return float(v)
    if col in ("run_date", "first_seen"):
        return v.isoformat()
    return v


def _csv_safe(v):
    # a cell starting with = + - @ is a formula to a spreadsheet: ids come from extracts
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return "" if v is None else v


def _above(head: dict) -> str:
    n, share = head.get("n_screened") or 0, head.get("grade_share_above")
    if share is None or not n:
        return ""
    k = round(share * n)
    return f"{k} of {n} ranked above ({share:.0%}) / {n} 家中排名在前的有 {k} 家"


def _institution_html(run: _RunData, head: dict, top: list[dict], totals: dict, by_rule: list) -> str:
    meta = run.meta
    iid = head["institution_id"]
    name = head.get("name") or iid
    grade = head.get("grade") or "A"
    g_en, g_zh = GRADE_TEXT[grade]
    credit = run.credit is not None and head.get("credit_grade") is not None
    facts = [
        ("Institution id / 机构编码", _e(iid)),
        ("Kind, level / 类型、等级", _kind_level(head.get("kind"), head.get("level"))),
        ("Ownership / 性质", f"{_e(head.get('ownership'))} {OWNERSHIP_ZH.get(head.get('ownership'), '')}"),
        ("Region / 行政区划", _e(head.get("region"))),
        ("Rank / 排名", f"{head['rank']} of {head['n_screened']} screened / 共 {head['n_screened']} 家"),
        ("Score / 疑点评分", f"{head['score']:.3f}"),
        ("Amount at risk / 涉及金额", svg.money(head["amount_at_risk"])),
        ("Findings / 疑点数", f"{head['n_findings']} ({head['n_new_findings']} new tonight / 本次新增)"),
        ("Settlements screened / 筛查结算单", _e(head.get("n_settlements"))),
    ]
    fact_rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
    header = (f'<div class="head"><div><h1>{_e(name)}</h1>'
              f'<div class="small">Suspicion report / 医保基金疑点报告 · run / 筛查日期 {_e(meta["run_date"])}</div>'
              f'<table class="facts">{fact_rows}</table>'
              f'<p class="noprint">Download / 下载: <a href="{_e(iid)}.xlsx">Excel (XLSX)</a> · '
              f'<a href="{_e(iid)}.csv">CSV</a> · <a href="../../overview.html">Run overview / 筛查总览</a></p></div>'
              f'<div><div class="grade g{grade}" title="grade">{grade}</div>'
              f'<div class="small">{"Screening grade / 筛查等级" if credit else "Grade / 信用等级"}'
              f'<br>{g_en} / {g_zh}<br>'
              f'{_e(GRADE_RULE[grade][0])}<br>{_e(GRADE_RULE[grade][1])}<br>'
              f'{_above(head)}</div>'
              f'</div>{_credit_box(head) if credit else ""}</div>') + _grade_history(head)
    if credit:
        header += _points_section(iid, run.credit)
    charts = _institution_charts(run, head, by_rule)
    lists = _suspicion_lists(top, totals)
    body = (header + charts + lists + f"<footer>{_grade_footer(meta)}<p>Rankings and findings are leads "
            f"for review, not determinations / 本报告所列疑点需经核查确认。</p></footer>")
    return _page(f"{name} — suspicion report / 疑点报告 {meta['run_date']}", body)


def _credit_box(head: dict) -> str:
    g = head["credit_grade"]
    en, zh = GRADE_TEXT[g]
    reason_en, _, reason_zh = str(head.get("credit_reason") or "").partition(" / ")
    return (f'<div><div class="grade g{g}" title="credit grade">{g}</div>'
            f'<div class="small">Credit grade / 信用等级<br>{en} / {zh}<br>'
            f'{_e(reason_en)}<br>{_e(reason_zh)}<br>'
            f'the screening grade, no better than the floor of confirmed cases / 筛查等级，且不优于确认违规案件对应的下限'
            f'</div></div>')


def _points_section(iid: str, credit: dict) -> str:
    """This institution's practitioners' points this calendar year from confirmed cases
    (decided on or before the run date), with the threshold that suspends billing."""
    year, threshold = credit["year"], credit["config"].yearly_threshold
    mine = [p for p in credit["points"] if iid in p["institutions"]]
    head = (f"<h3>Practitioner points {year} / {year} 年度医师医保支付资格记分</h3>"
            f"<p class='small'>Points from cases confirmed from 1 January to the run date "
            f"{_e(credit['as_of'])}, charged to a doctor of this institution (each doctor's total over "
            f"every institution); {threshold} points in one calendar year suspend the doctor's billing. / "
            f"{year} 年 1 月 1 日至筛查日确认的违规案件记分（医师全年合计）；一个自然年内累计达到 "
            f"{threshold} 分暂停医保结算资格。</p>")
    if not mine:
        return head + ("<p class='small'>No confirmed case charged to a doctor of this institution this year "
                       "/ 本年度本机构医师无确认违规记分</p>")
    rows = "".join(
        f"<tr><td>{_e(p['doctor_id'])}</td><td class=n>{p['points']}</td><td class=n>{threshold}</td>"
        f"<td class=n>{len(p['cases'])}</td><td>"
        + ("<b class='new'>SUSPENDED / 暂停医保结算资格</b>" if p["suspended"] else
           f"{threshold - p['points']} point(s) left / 距暂停尚余 {threshold - p['points']} 分")
        + "</td></tr>" for p in mine)
    return head + (f"<table style='width:auto'><tr><th>Doctor / 医师</th><th>Points / 记分</th>"
                   f"<th>Threshold / 记分上限</th><th>Confirmed cases / 确认案件</th><th>Billing / 医保结算</th></tr>"
                   f"{rows}</table>")


def _institution_charts(run: _RunData, head: dict, by_rule: list) -> str:
    iid = head["institution_id"]
    parts = []
    parts.append('<div class="chart"><h3>Findings by rule / 按规则统计疑点</h3>'
                 '<p class="small">bar: money at risk / 涉及金额; in brackets: findings / 括号内为疑点数</p>'
                 + svg.bar_chart([(f"{en} / {zh}", amount or 0, f"{svg.money(amount)} ({n})")
                                  for en, zh, n, amount in by_rule], "findings by rule") + "</div>")
    trend = run.trends.get(iid, [])
    parts.append('<div class="chart"><h3>Money at risk over published runs / 历次筛查涉及金额</h3>' +
                 svg.line_chart(trend, "money at risk over time", fmt=svg.money) + "</div>")
    peers = []
    if head.get("kind") is not None:
        # peers: same kind and level; too few of those (< 3) widens to the same kind, then to all
        groups = ((lambda r: r["kind"] == head["kind"] and r["level"] == head["level"],
                   "of the same kind and level", "同类型同级别"),
                  (lambda r: r["kind"] == head["kind"], "of the same kind", "同类型"),
                  (lambda r: True, "screened", "全部筛查"))
        for same, en_g, zh_g in groups:
            peer_rows = [r for r in run.index.values()
                         if r["institution_id"] != iid and r["n_settlements"] and same(r)]
            if len(peer_rows) >= 3:
                break
        for col, en, zh, fmt in PEER_METRICS:
            peers.append(f"<div class=small><b>{en} / {zh}</b>: "
                         f"{_e(fmt(head[col])) if head.get(col) is not None else '—'}</div>"
                         + svg.strip_chart(f"{en} / {zh}", [p[col] for p in peer_rows], head.get(col), fmt=fmt))
        parts.append(f'<div class="chart"><h3>Against {len(peer_rows)} peer institutions {en_g} / '
                     f'与{zh_g} {len(peer_rows)} 家机构对比</h3><p class="small">grey: peers / 同类机构; '
                     f'red: this institution / 本机构; bar: median / 中位数</p>{"".join(peers)}</div>')
    rings = _ring_pictures(run.folder, run.rings.get(iid, ()))
    if rings:
        parts.append(f'<div class="chart"><h3>Rings / 团伙关系图</h3>{rings}</div>')
    return '<h2>Charts / 图表</h2><div class="charts">' + "".join(parts) + "</div>"


def _ring_pictures(folder: Path, ids) -> str:
    """Ring pictures the ring detectors left in <run>/rings/<ring_id>.svg|png, embedded as
    data URIs (an <img> never runs a script an SVG might hold)."""
    import base64
    ring_dir = folder / "rings"
    if not ids or not ring_dir.is_dir():
        return ""
    out = []
    for rid in sorted(ids):
        if not INSTITUTION_ID.match(str(rid)):
            continue
        for ext, mime in (("svg", "image/svg+xml"), ("png", "image/png")):
            p = ring_dir / f"{rid}.{ext}"
            if p.is_file() and p.resolve().is_relative_to(ring_dir.resolve()):
                data = base64.b64encode(p.read_bytes()).decode()
                out.append(f'<figure><img alt="ring {_e(rid)}" style="max-width:540px" '
                           f'src="data:{mime};base64,{data}"><figcaption>{_e(rid)}</figcaption></figure>')
                break
    return "".join(out)


def _suspicion_lists(top: list[dict], totals: dict) -> str:
    """The strongest HTML_ROWS_PER_TYPE findings of each entity type (top), with the full
    count and money per type (totals: type -> (n, amount))."""
    parts = ['<h2>Ranked suspicion list / 疑点清单（按可疑程度排序）</h2>']
    by_type: dict[str, list[dict]] = {}
    for r in top:
        by_type.setdefault(r["entity_type"], []).append(r)
    for etype in _entity_order(totals):
        en, zh = ENTITY_TYPES.get(etype, (etype, etype))
        shown = by_type.get(etype, [])
        n_all, total = totals[etype]
        trs = []
        for k, r in enumerate(shown, 1):
            sids = r["settlement_ids"] or []
            sid_text = ", ".join(sids[:6]) + (f" … (+{len(sids) - 6})" if len(sids) > 6 else "")
            new = ' <span class="new">NEW 新</span>' if r["first_seen"] == r["run_date"] else ""
            trs.append(
                f"<tr><td class=n>{k}</td><td>{_e(r['rule_en'])}<br>{_e(r['rule_zh'])}</td>"
                f"<td>{_e(r['entity_id'])}{new}</td><td>{_e(r['patient_id'])}</td><td>{_e(r['doctor_id'])}</td>"
                f"<td class=small>{_e(sid_text)}</td><td class=n>{r['score']:.2f}</td>"
                f"<td class=n>{svg.money(r['amount_at_risk'])}</td><td>{_e(r['reason'])}</td></tr>")
        more = (f'<p class="small">{n_all - len(shown)} more in the XLSX/CSV / 其余 '
                f'{n_all - len(shown)} 条见 Excel/CSV 文件</p>') if n_all > len(shown) else ""
        parts.append(
            f'<h3>{en} / {zh} — {n_all} finding(s) / 条, {svg.money(total)}</h3>'
            f'<table><tr><th>#</th><th>Rule / 规则</th><th>{en} / {zh}</th><th>Patient / 参保人</th>'
            f'<th>Doctor / 医师</th><th>Evidence settlements / 证据结算单</th><th>Score / 评分</th>'
            f'<th>Money at risk / 涉及金额</th><th>Reason / 疑点说明</th></tr>{"".join(trs)}</table>{more}')
    return "".join(parts)


# ----------------------------------------------------------------------- overview

def _scope_sql(regions: list[str] | None) -> tuple[str, list]:
    if regions is None:
        return "true", []
    if not regions:
        return "false", []
    return "(" + " OR ".join("starts_with(coalesce(region, ''), ?)" for _ in regions) + ")", list(regions)


def overview_html(folder: Path, history: list[Path] | None = None, meta: dict | None = None,
                  regions: list[str] | None = None) -> str:
    """The run overview from the run folder's files alone (so the portal can render it
    for one office's regions); ``regions`` None = everything."""
    folder = Path(folder)
    if meta is None:
        meta = json.loads((folder / "reports" / "report_meta.json").read_text(encoding="utf-8"))
    if history is None:
        history = published_runs(folder.parent, before=meta["run_date"])
    con = duckdb.connect()
    try:
        con.register("detector_meta", _detector_meta())
        scope, params = _scope_sql(regions)
        con.execute(f"CREATE TEMP TABLE idx AS SELECT * FROM read_parquet({sql_literal(folder / 'reports' / 'index.parquet')}) "
                    f"WHERE {scope}", params)
        con.execute(f"CREATE TEMP TABLE fnd AS SELECT f.*, coalesce(m.rule_en, f.detector_id) AS rule_en, "
                    f"coalesce(m.rule_zh, f.detector_id) AS rule_zh "
                    f"FROM read_parquet({sql_literal(folder / 'findings.parquet')}) AS f "
                    f"LEFT JOIN detector_meta AS m USING (detector_id) "
                    + ("" if regions is None else "WHERE f.institution_id IN (SELECT institution_id FROM idx)"))
        con.execute(f"CREATE TEMP VIEW hist AS SELECT * FROM ({_history_sql(folder, history)}) "
                    + ("" if regions is None else "WHERE institution_id IN (SELECT institution_id FROM idx)"))
        return _overview_page(con, folder, meta, regions)
    finally:
        con.close()


def _overview_page(con, folder: Path, meta: dict, regions) -> str:
    tot = _rows(con, """SELECT count(*) AS screened, count(*) FILTER (WHERE n_findings > 0) AS flagged,
                            coalesce(sum(amount_at_risk), 0) AS at_risk, coalesce(sum(n_findings), 0) AS findings,
                            coalesce(sum(n_new_findings), 0) AS new_findings FROM idx""")[0]
    ranking = _rows(con, "SELECT * FROM idx WHERE n_findings > 0 ORDER BY rank, institution_id LIMIT 500")
    names = {r["detector_id"]: (r["rule_en"], r["rule_zh"]) for r in _rows(con, "SELECT * FROM detector_meta")}
    by_rule = _rows(con, """SELECT detector_id, any_value(rule_en) AS rule_en, any_value(rule_zh) AS rule_zh,
                               count(*) AS n, count(*) FILTER (WHERE first_seen = run_date) AS n_new,
                               count(DISTINCT institution_id) AS n_inst,
                               CAST(sum(amount_at_risk) AS DOUBLE) AS at_risk
                            FROM fnd GROUP BY detector_id ORDER BY at_risk DESC, detector_id""")
    by_region = _rows(con, """SELECT coalesce(region, '?') AS region, left(coalesce(region, '?'), 4) AS city,
                                 count(*) AS screened, count(*) FILTER (WHERE n_findings > 0) AS flagged,
                                 sum(n_findings) AS findings, CAST(sum(amount_at_risk) AS DOUBLE) AS at_risk
                              FROM idx GROUP BY ALL ORDER BY at_risk DESC, region""")
    trend = _rows(con, """SELECT CAST(run_date AS VARCHAR) AS run_date, count(*) FILTER (WHERE n_findings > 0) AS flagged,
                             sum(n_findings) AS findings, sum(amount_at_risk) AS at_risk
                          FROM hist GROUP BY run_date ORDER BY run_date""")
    scope_note = ("all regions / 全部辖区" if regions is None
                  else "regions / 辖区 " + ", ".join(_e(r) for r in regions))
    credit = any(r.get("credit_grade") is not None for r in ranking)

    def credit_cell(r) -> str:
        if not credit:
            return ""
        g = r.get("credit_grade")
        if g is None:
            return "<td>—</td>"
        return (f"<td><span class='grade g{g}' style='font-size:13px;width:22px;height:22px;line-height:22px'>"
                f"{g}</span>" + (f"<div class=small>{_e(r.get('credit_reason'))}</div>" if r.get("credit_confirmed")
                                  else "") + "</td>")
    rank_rows = "".join(
        f"<tr><td class=n>{r['rank']}</td><td><span class='grade g{r['grade']}' style='font-size:13px;width:22px;"
        f"height:22px;line-height:22px'>{r['grade']}</span></td>{credit_cell(r)}"
        f"<td><a href='reports/institutions/{_e(r['institution_id'])}.html'>{_e(r['institution_id'])}</a></td>"
        f"<td>{_e(r['name'])}</td><td>{_kind_level(r['kind'], r['level'])}</td><td>{_e(r['region'])}</td>"
        f"<td class=n>{r['score']:.3f}</td><td class=n>{svg.money(r['amount_at_risk'])}</td>"
        f"<td class=n>{r['n_findings']} ({r['n_new_findings']} new)</td>"
        f"<td>{'<br>'.join(_e(' / '.join(names.get(d, (d, d)))) for d in (r['top_detectors'] or [])[:3])}</td>"
        f"<td class=small><a href='reports/institutions/{_e(r['institution_id'])}.xlsx'>xlsx</a> "
        f"<a href='reports/institutions/{_e(r['institution_id'])}.csv'>csv</a></td></tr>"
        for r in ranking)
    rule_rows = "".join(
        f"<tr><td>{_e(r['rule_en'])} / {_e(r['rule_zh'])}</td><td class=n>{r['n']}</td><td class=n>{r['n_new']}</td>"
        f"<td class=n>{r['n_inst']}</td><td class=n>{svg.money(r['at_risk'])}</td></tr>" for r in by_rule)
    region_rows = "".join(
        f"<tr><td>{_e(r['region'])}</td><td>{_e(r['city'])}</td><td class=n>{r['screened']}</td>"
        f"<td class=n>{r['flagged']}</td><td class=n>{r['findings']}</td><td class=n>{svg.money(r['at_risk'])}</td></tr>"
        for r in by_region)
    trend_rows = "".join(
        f"<tr><td>{_e(r['run_date'])}</td><td class=n>{r['flagged']}</td><td class=n>{r['findings']}</td>"
        f"<td class=n>{svg.money(r['at_risk'])}</td></tr>" for r in list(reversed(trend))[:TREND_TABLE_RUNS])
    cmeta = meta.get("credit") or {}
    credit_note = (f"<p class='small'>Credit grade / 信用等级: the screening grade, made no better than the floor "
                   f"reached by the cases confirmed in the {_e(cmeta.get('window_days'))} days up to the run date "
                   f"(case configuration {_e(cmeta.get('cases_config_version'))}) / 信用等级为筛查等级，且不优于"
                   f"截至筛查日近 {_e(cmeta.get('window_days'))} 天确认违规案件数对应的下限。</p>") if credit else ""
    validation = folder / "validation" / "index.html"
    links = ('<a href="validation/index.html">Validation Data Docs / 数据质量校验报告</a>'
             if validation.is_file() and regions is None else
             "Validation Data Docs / 数据质量校验报告: not in this run folder / 本次未生成"
             if regions is None else "")
    body = f"""
<h1>Screening run {_e(meta['run_date'])} / 医保基金智能筛查 {_e(meta['run_date'])}</h1>
<div class="small">Scope / 范围: {scope_note} · rules configuration / 规则配置版本 <b>{_e(meta.get('rules_version'))}</b></div>
<table class="facts">
<tr><th>Institutions screened / 筛查机构</th><td>{tot['screened']}</td>
<th>With findings / 有疑点机构</th><td>{tot['flagged']}</td></tr>
<tr><th>Findings / 疑点数</th><td>{tot['findings']} ({tot['new_findings']} new tonight / 本次新增)</td>
<th>Amount at risk / 涉及金额</th><td>{svg.money(tot['at_risk'])}</td></tr></table>
<p class="noprint">{links}</p>
<h2>Flight-inspection target list / 飞行检查对象建议名单</h2>
<details open class="small"><summary>Grades A–E: what makes an A and an E / 等级说明</summary>{grade_legend()}</details>
{credit_note}
<table><tr><th>Rank / 排名</th><th>{"Screening grade / 筛查等级</th><th>Credit grade / 信用等级" if credit else "Grade / 等级"}</th><th>Institution / 机构编码</th><th>Name / 名称</th>
<th>Kind, level / 类型等级</th><th>Region / 区划</th><th>Score / 评分</th><th>Amount at risk / 涉及金额</th>
<th>Findings / 疑点数</th><th>Top rules / 主要规则</th><th>Files / 文件</th></tr>{rank_rows}</table>
<h2>Totals by rule / 按规则汇总</h2>
<div class="charts"><div class="chart">{svg.bar_chart([(f"{r['rule_en']} / {r['rule_zh']}", r['at_risk']) for r in by_rule], "amount at risk by rule", fmt=svg.money)}</div>
<div class="chart"><table><tr><th>Rule / 规则</th><th>Findings / 疑点</th><th>New / 新增</th><th>Institutions / 机构</th>
<th>Amount at risk / 涉及金额</th></tr>{rule_rows}</table>
<p class="small">Per-rule amounts add each finding's own amount; one settlement can be hit by several rules.
按规则汇总金额为各疑点金额之和，同一结算单可能被多条规则命中。</p></div></div>
<h2>Totals by region / 按行政区划汇总</h2>
<table><tr><th>Region / 区划</th><th>City / 地市</th><th>Screened / 筛查机构</th><th>With findings / 有疑点</th>
<th>Findings / 疑点数</th><th>Amount at risk / 涉及金额</th></tr>{region_rows}</table>
<h2>Trend over published runs / 历次筛查趋势</h2>
<div class="charts"><div class="chart">{svg.line_chart([(r['run_date'], r['at_risk'] or 0) for r in trend], "amount at risk per run", fmt=svg.money)}</div>
<div class="chart"><table><tr><th>Run / 筛查日期</th><th>With findings / 有疑点机构</th><th>Findings / 疑点数</th>
<th>Amount at risk / 涉及金额</th></tr>{trend_rows}</table></div></div>
<footer>{_grade_footer(meta, legend=False)}</footer>"""
    return _page(f"Screening run {meta['run_date']} / 筛查总览 {meta['run_date']}", body)
