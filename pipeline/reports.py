"""Reports published beside each run: a self-contained HTML overview.

(The full per-institution reports, XLSX and CSV downloads build on this module.)
"""
from __future__ import annotations

import html
from pathlib import Path

import duckdb

from pipeline import registry
from pipeline.lake import sql_literal
from pipeline.settings import Settings


def renderer(settings: Settings, run_date: str):
    """A callable that renders the reports of a run into its (unpublished) folder."""
    def render(folder: Path) -> None:
        render_overview(folder, run_date)
        copy_validation_docs(settings, run_date, folder)
    return render


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


def render_overview(folder: Path, run_date: str) -> Path:
    con = duckdb.connect()
    inst = sql_literal(folder / "institutions.parquet")
    fnd = sql_literal(folder / "findings.parquet")
    top = con.execute(f"SELECT rank, institution_id, score, amount_at_risk, n_findings, "
                      f"array_to_string(top_detectors, ', ') FROM read_parquet({inst}) "
                      f"WHERE n_findings > 0 ORDER BY rank, institution_id LIMIT 50").fetchall()
    by_rule = dict(con.execute(f"SELECT detector_id, count(*) FROM read_parquet({fnd}) GROUP BY 1").fetchall())
    con.close()
    names = {d.id: d.label for d in registry.all_detectors()}
    rows = "".join(
        f"<tr><td>{r}</td><td>{html.escape(i)}</td><td>{s:.3f}</td><td>{a}</td><td>{n}</td>"
        f"<td>{html.escape(t)}</td></tr>" for r, i, s, a, n, t in top)
    rules = "".join(f"<tr><td>{html.escape(names.get(d, d))}</td><td>{n}</td></tr>"
                    for d, n in sorted(by_rule.items()))
    page = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>Screening run {run_date} / 筛查结果 {run_date}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}}th{{background:#eee}}</style></head><body>
<h1>Screening run {run_date} / 医保基金筛查 {run_date}</h1>
<h2>Findings by rule / 按规则统计</h2>
<table><tr><th>Rule / 规则</th><th>Findings / 疑点数</th></tr>{rules}</table>
<h2>Institution ranking / 机构疑点排名</h2>
<table><tr><th>Rank / 排名</th><th>Institution / 机构</th><th>Score / 评分</th>
<th>Amount at risk / 涉及金额</th><th>Findings / 疑点数</th><th>Top rules / 主要规则</th></tr>{rows}</table>
</body></html>"""
    out = folder / "overview.html"
    out.write_text(page, encoding="utf-8")
    return out
