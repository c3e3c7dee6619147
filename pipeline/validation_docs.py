"""Data Docs for one night's validation: GX-rendered pages per suite plus a bilingual index.

The pages are rendered straight from the suite results with GX's own Data Docs
renderer (``ValidationResultsPageRenderer`` + ``DefaultJinjaPageView``), so no GX
project folder or store is needed; the folder is self-standing and is copied into the
published run as ``validation/`` (see pipeline/reports.py).
"""
from __future__ import annotations

import functools
import html
from pathlib import Path

STATUS_ZH = {"passed": "通过", "blocked": "拒收", "already_promoted": "已入库"}


@functools.cache
def _gx_renderer():
    """GX's page renderer and Jinja view, made once per process: the view's Jinja
    environment compiles its templates on first use and keeps them."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    return ValidationResultsPageRenderer(), DefaultJinjaPageView()


def render(folder: Path, doc: dict, suite_results: dict) -> Path:
    """Write ``<folder>/index.html`` and one ``<suite>.html`` per suite result."""
    folder.mkdir(parents=True, exist_ok=True)
    renderer, view = _gx_renderer()
    rows = []
    for name, result in suite_results.items():
        page = view.render(renderer.render(result))
        (folder / f"{name}.html").write_text(page, encoding="utf-8")
        st = result.statistics
        failed = [r for r in result.results if not r.success]
        rules = sorted({r.expectation_config.meta.get("rule", "") for r in failed})
        rows.append(
            f"<tr class='{'ok' if result.success else 'bad'}'><td><a href='{html.escape(name)}.html'>"
            f"{html.escape(name)}</a></td><td>{doc['rows'].get(name, '')}</td>"
            f"<td>{st['evaluated_expectations']}</td><td>{st['unsuccessful_expectations']}</td>"
            f"<td>{html.escape(', '.join(rules))}</td></tr>")

    def items(xs):
        return "".join(f"<li>{html.escape(x)}</li>" for x in xs) or "<li>—</li>"
    quarantine = [f"{t}: " + ", ".join(f"{r} {n}" for r, n in reasons.items())
                  for t, reasons in doc["quarantined"].items()]
    status = doc["status"]
    page = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>Validation {doc['extract_date']} / 数据校验 {doc['extract_date']}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}}th{{background:#eee}}.bad td{{background:#fde8e8}}
.ok td{{background:#eef8ee}}.status{{font-size:1.3em;font-weight:bold}}</style></head><body>
<h1>Extract validation {doc['extract_date']} / 抽取数据校验 {doc['extract_date']}</h1>
<p class="status">{status.upper()} / {STATUS_ZH.get(status, status)}</p>
<p>Great Expectations {html.escape(doc['great_expectations_version'])} · gate configuration
{html.escape(doc['config_version'])} · {doc['seconds']} s · batches of {doc['batch_rows']:,} rows</p>
<h2>Suites / 校验套件</h2>
<table><tr><th>Suite / 套件</th><th>Rows / 行数</th><th>Expectations / 规则数</th>
<th>Failed / 未通过</th><th>Failed rules / 未通过规则</th></tr>{''.join(rows)}</table>
<h2>Blocking failures (extract refused) / 阻断性错误（拒收）</h2><ul>{items(doc['blocking'])}</ul>
<h2>Quarantined rows / 隔离记录</h2><ul>{items(quarantine)}</ul>
<h2>Warnings / 警告</h2><ul>{items(doc['warnings'])}</ul>
</body></html>"""
    out = folder / "index.html"
    out.write_text(page, encoding="utf-8")
    return out
