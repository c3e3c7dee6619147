"""The download portal: published runs and their reports, per office jurisdiction.

URL layout mirrors the run folder, so the reports' relative links work unchanged::

    /runs/<date>/                               institutions in scope, search (?q=)
    /runs/<date>/overview.html                  run overview (scoped for a city office)
    /runs/<date>/reports/institutions/<id>.<html|xlsx|csv>
    /runs/<date>/validation/<file>              Data Docs (province and admin only)

No URL path is ever joined onto the file system as given: run dates and institution
ids must match strict patterns and be listed (run folder with a manifest; institution in
the run's report index and in the user's regions); the path is then built from those
values, resolved, and refused unless it lies inside the published folder. A refused or
out-of-scope request is a 404, so guessing says nothing about what exists.
"""
from __future__ import annotations

import html
import re
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.parquet as pq
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from pipeline import reports
from pipeline.portal import db

COOKIE = "claimscreen_session"
INDEX_CACHE_RUNS = 64      # report indexes kept in memory (one per published version)
RUNS_LISTED = 90           # newest runs on the start page
REPORT_FILE = re.compile(r"^([A-Za-z0-9_-]{1,40})\.(html|xlsx|csv|pdf)$")
DOC_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,120}$")
MEDIA = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8", "pdf": "application/pdf",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class NotFound(Exception):
    """Anything missing, malformed, outside the published folder or outside the user's
    regions: all look the same to the client."""


def _e(s) -> str:
    return "" if s is None else html.escape(str(s), quote=True)


class Published:
    """Read-only access to the published runs, every path checked."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._index_cache: dict[Path, list[dict]] = {}
        self._lock = threading.Lock()

    def runs(self) -> list[str]:
        return [p.name for p in reports.published_runs(self.root, limit=0)
                if self._inside(p)]

    def _inside(self, p: Path) -> bool:
        try:
            return p.resolve(strict=True).is_relative_to(self.root.resolve(strict=True))
        except OSError:
            return False

    def run_folder(self, run_date: str) -> Path:
        if not reports.RUN_DATE.match(run_date) or run_date not in self.runs():
            raise NotFound(run_date)
        return self.root / run_date

    def file(self, run_date: str, *parts: str) -> Path:
        """A file of a run: parts are already validated names; the result must resolve
        inside the published folder (a symlink pointing out is refused)."""
        folder = self.run_folder(run_date)
        p = folder.joinpath(*parts)
        try:
            real = p.resolve(strict=True)
        except OSError:
            raise NotFound(str(p)) from None
        if not real.is_relative_to(self.root.resolve()) or not real.is_file():
            raise NotFound(str(p))
        return real

    def index(self, run_date: str) -> list[dict]:
        """The run's report index (institution, region, rank, grade …); cached per version
        folder, which never changes once published."""
        try:
            path = self.file(run_date, "reports", "index.parquet")
        except NotFound:
            return []
        with self._lock:
            if path in self._index_cache:
                self._index_cache[path] = self._index_cache.pop(path)     # most recently used last
            else:
                cols = ["institution_id", "name", "kind", "level", "region", "rank", "score",
                        "amount_at_risk", "n_findings", "grade", "has_report"]
                self._index_cache[path] = pq.read_table(path, columns=cols).to_pylist()
                while len(self._index_cache) > INDEX_CACHE_RUNS:
                    self._index_cache.pop(next(iter(self._index_cache)))
            return self._index_cache[path]

    def institution(self, run_date: str, institution_id: str, user: db.User) -> dict:
        for r in self.index(run_date):
            if r["institution_id"] == institution_id:
                if user.sees_institution(institution_id, r["region"]):
                    return r
                break
        raise NotFound(institution_id)


class PdfPrinter:
    """PDF of a report, printed on request by headless Chromium from the published HTML
    (the report is self-contained, so nothing is fetched). No Chromium: no PDF (404).
    At most two print at a time; the PDF is not kept (the published folder is read-only)."""

    FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-pdf-header-footer")

    def __init__(self):
        import shutil
        self.browser = shutil.which("chromium") or shutil.which("chromium-browser")
        self._slots = threading.BoundedSemaphore(2)

    def pdf(self, html_file: Path) -> bytes:
        import subprocess
        import tempfile
        if self.browser is None:
            raise NotFound("pdf")
        with self._slots, tempfile.TemporaryDirectory(prefix="claimscreen-pdf-") as tmp:
            out = Path(tmp) / "report.pdf"
            try:
                subprocess.run([self.browser, *self.FLAGS, f"--user-data-dir={tmp}/profile",
                                f"--print-to-pdf={out}", html_file.as_uri()],
                               capture_output=True, timeout=120, check=True)
            except (OSError, subprocess.SubprocessError):
                raise NotFound("pdf") from None
            if not out.is_file():
                raise NotFound("pdf")
            return out.read_bytes()


def cases_nav(user: db.User) -> str:
    """The links to the case workflow pages this user's role has."""
    links = [("/cases", "Cases / 案件")] if user.role != "tips" else [("/tips", "Tips / 举报线索")]
    if user.role in ("city", "province", "admin"):
        links.append(("/cases/precision", "Precision / 准确率"))
    if user.role in ("city", "province", "admin", "institution"):
        links += [("/credit", "Credit / 信用"), ("/credit/practitioners", "Points / 记分")]
    return "".join(f" · <a href={u}>{t}</a>" for u, t in links)


def _page(title: str, user: db.User | None, body: str) -> str:
    nav = ""
    if user:
        scope = "all regions / 全部辖区" if user.scope is None else ", ".join(user.regions)
        nav = (f'<div class="small" style="display:flex;justify-content:space-between">'
               f'<span><a href="/">Runs / 筛查批次</a>{cases_nav(user)}{" · <a href=/audit>Audit log / 审计日志</a>" if user.role == "admin" else ""}</span>'
               f'<span>{_e(user.name)} ({_e(user.role)}; {_e(scope)}) '
               f'<form method="post" action="/logout" style="display:inline">'
               f'<button type="submit">Sign out / 退出</button></form></span></div>')
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f'<style>{reports.CSS}</style></head><body>{nav}<h1>{_e(title)}</h1>{body}</body></html>')


def create_app(publish_dir: Path, db_url: str, secure_cookie: bool = False, settings=None,
               cases_config=None) -> FastAPI:
    """The portal over publish_dir with users and audit in the database at db_url;
    settings (optional) locate the lake, where a dismissed case's finding is closed."""
    from pipeline.portal import cases_web
    engine = db.connect(db_url)
    published = Published(Path(publish_dir))
    printer = PdfPrinter()
    app = FastAPI(title="claimscreen portal", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = engine
    app.state.published = published

    def ip_of(request: Request) -> str:
        return request.client.host if request.client else ""

    def current(request: Request) -> db.User | None:
        token = request.cookies.get(COOKIE)
        user = db.session_user(engine, token)
        if user is None and token:          # expired, signed out (replayed) or forged
            db.audit(engine, None, "session_invalid", request.url.path[:200], ip_of(request), 303)
        return user

    def html_response(content: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(content, status_code=status, headers=SECURITY_HEADERS)

    def not_found(request: Request, user: db.User | None, what: str) -> HTMLResponse:
        db.audit(engine, user.name if user else None, "denied", what, ip_of(request), 404)
        return html_response(_page("Not found / 未找到", user, "<p>No such file in your regions. / "
                                   "您的辖区内无此文件。</p>"), 404)

    def sign_in_first() -> Response:
        return RedirectResponse("/login", status_code=303, headers=SECURITY_HEADERS)

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    @app.get("/login")
    def login_form(request: Request):
        return html_response(_page("Sign in / 登录", None, """
<form method="post" action="/login">
<p><label>User / 用户名 <input name="name" autocomplete="username" required></label></p>
<p><label>Password / 密码 <input name="password" type="password" autocomplete="current-password" required></label></p>
<p><button type="submit">Sign in / 登录</button></p></form>"""))

    @app.post("/login")
    async def login(request: Request):
        ip = ip_of(request)
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
            db.audit(engine, None, "login_refused", f"origin {origin}", ip, 403)
            return html_response(_page("Sign in / 登录", None, "<p>Cross-site sign-in refused.</p>"), 403)
        form = await request.form()
        name, password = str(form.get("name", ""))[:64], str(form.get("password", ""))[:256]
        if db.failed_logins(engine, name, ip) >= db.FAILED_LOGINS_ALLOWED:
            db.audit(engine, name, "login_throttled", None, ip, 429)
            return html_response(_page("Sign in / 登录", None,
                                       "<p>Too many wrong passwords: try again in 15 minutes. / "
                                       "密码错误次数过多，请 15 分钟后再试。</p>"), 429)
        user = db.authenticate(engine, name, password)
        if user is None:
            db.audit(engine, name, "login_failed", None, ip, 401)
            return html_response(_page("Sign in / 登录", None,
                                       '<p>Wrong user or password. / 用户名或密码错误。</p>'
                                       '<p><a href="/login">Try again / 重试</a></p>'), 401)
        token = db.open_session(engine, user)
        db.audit(engine, user.name, "login", None, ip, 303)
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure_cookie,
                        max_age=db.SESSION_HOURS * 3600, path="/")
        return resp

    @app.post("/logout")
    def logout(request: Request):
        user = current(request)
        db.close_session(engine, request.cookies.get(COOKIE))
        if user:
            db.audit(engine, user.name, "logout", None, ip_of(request), 303)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    @app.get("/")
    def runs(request: Request):
        user = current(request)
        if user is None:
            return sign_in_first()
        rows = []
        for d in list(reversed(published.runs()))[:RUNS_LISTED]:
            mine = [r for r in published.index(d) if user.sees_institution(r["institution_id"], r["region"])]
            flagged = [r for r in mine if r["n_findings"]]
            at_risk = sum(float(r["amount_at_risk"] or 0) for r in flagged)
            rows.append(f'<tr><td><a href="/runs/{d}/">{d}</a></td><td class=n>{len(mine)}</td>'
                        f'<td class=n>{len(flagged)}</td><td class=n>¥{at_risk:,.2f}</td>'
                        f'<td><a href="/runs/{d}/overview.html">overview / 总览</a></td></tr>')
        db.audit(engine, user.name, "list_runs", None, ip_of(request), 200)
        return html_response(_page("Published screening runs / 已发布筛查批次", user,
                                   "<table><tr><th>Run / 批次</th><th>Institutions / 机构</th>"
                                   "<th>With findings / 有疑点</th><th>Amount at risk / 涉及金额</th><th></th></tr>"
                                   + "".join(rows) + "</table>"))

    @app.get("/runs/{run_date}")
    def run_page_no_slash(request: Request, run_date: str):
        user = current(request)
        if user is None:
            return sign_in_first()
        if not reports.RUN_DATE.match(run_date):
            return not_found(request, user, f"run {run_date[:40]}")
        return RedirectResponse(f"/runs/{run_date}/", status_code=307)

    @app.get("/runs/{run_date}/")
    def run_page(request: Request, run_date: str, q: str = ""):
        user = current(request)
        if user is None:
            return sign_in_first()
        try:
            published.run_folder(run_date)
        except NotFound:
            return not_found(request, user, f"run {run_date[:40]}")
        q = q.strip()[:64]
        needle = q.lower()
        credit = cases_web.credit_of(engine, run_date, cases_config)   # screening grade floored by confirmed cases
        rows = [r for r in published.index(run_date) if user.sees_institution(r["institution_id"], r["region"])
                and (not needle or needle in r["institution_id"].lower() or needle in (r["name"] or "").lower())]
        trs = "".join(
            f"<tr><td class=n>{r['rank']}</td><td>{_e(r['grade'])}</td><td>{_e(credit(r))}</td>"
            f"<td>{_e(r['institution_id'])}</td>"
            f"<td>{_e(r['name'])}</td><td>{_e(r['region'])}</td><td class=n>{r['score']:.3f}</td>"
            f"<td class=n>¥{float(r['amount_at_risk'] or 0):,.2f}</td><td class=n>{r['n_findings']}</td><td>"
            + (f"<a href='reports/institutions/{_e(r['institution_id'])}.html'>view / 查看</a> · "
               f"<a href='reports/institutions/{_e(r['institution_id'])}.html?download=1'>html</a> · "
               f"<a href='reports/institutions/{_e(r['institution_id'])}.xlsx'>xlsx</a> · "
               f"<a href='reports/institutions/{_e(r['institution_id'])}.csv'>csv</a> · "
               f"<a href='findings/{_e(r['institution_id'])}'>findings / 疑点</a>"
               + (f" · <a href='reports/institutions/{_e(r['institution_id'])}.pdf'>pdf</a>"
                  if printer.browser else "") if r["has_report"] else
               "no findings / 无疑点") + "</td></tr>"
            for r in rows[:1000])
        db.audit(engine, user.name, "search" if q else "view_run", f"{run_date} q={q}" if q else run_date,
                 ip_of(request), 200)
        body = (f'<form method="get"><label>Search institution / 查找机构 <input name="q" value="{_e(q)}" '
                f'placeholder="id or name / 编码或名称"></label> <button type="submit">Search / 查找</button></form>'
                f'<p><a href="overview.html">Run overview / 筛查总览</a> · '
                f'<a href="overview.html?download=1">download / 下载</a></p>'
                f'<p class="small">{len(rows)} institution(s) / 家机构</p>'
                f"<table><tr><th>Rank / 排名</th><th>Grade / 等级</th><th>Credit / 信用等级</th><th>Institution / 机构编码</th>"
                f"<th>Name / 名称</th><th>Region / 区划</th><th>Score / 评分</th><th>Amount at risk / 涉及金额</th>"
                f"<th>Findings / 疑点</th><th>Reports / 报告</th></tr>{trs}</table>")
        return html_response(_page(f"Run {run_date} / 筛查批次 {run_date}", user, body))

    @app.get("/runs/{run_date}/overview.html")
    def overview(request: Request, run_date: str, download: int = 0):
        user = current(request)
        if user is None:
            return sign_in_first()
        try:
            folder = published.run_folder(run_date)
            if user.role == "institution":      # the overview ranks other institutions
                raise NotFound("overview")
            if user.scope is None:
                content = published.file(run_date, "overview.html").read_text(encoding="utf-8")
            else:   # a city office gets the overview of its own regions, rendered now
                published.file(run_date, "reports", "index.parquet")
                content = reports.overview_html(folder, regions=user.scope)
        except NotFound:
            return not_found(request, user, f"{run_date[:40]}/overview.html")
        action = "download" if download else "view"
        db.audit(engine, user.name, action, f"{run_date}/overview.html", ip_of(request), 200)
        headers = dict(SECURITY_HEADERS)
        if download:
            headers["Content-Disposition"] = f'attachment; filename="overview-{run_date}.html"'
        return HTMLResponse(content, headers=headers)

    @app.get("/runs/{run_date}/reports/institutions/{file_name}")
    def institution_file(request: Request, run_date: str, file_name: str, download: int = 0):
        user = current(request)
        if user is None:
            return sign_in_first()
        m = REPORT_FILE.match(file_name)
        try:
            if not m:
                raise NotFound(file_name)
            inst_id, ext = m.groups()
            row = published.institution(run_date, inst_id, user)
            if not row["has_report"]:
                raise NotFound(inst_id)
            path = published.file(run_date, "reports", "institutions",
                                  f"{inst_id}.{'html' if ext == 'pdf' else ext}")
            if ext == "pdf":
                pdf = printer.pdf(path)
        except NotFound:
            return not_found(request, user, f"{run_date[:40]}/reports/institutions/{file_name[:80]}")
        inline = ext == "html" and not download
        if ext == "pdf":
            db.audit(engine, user.name, "download", f"{run_date}/reports/institutions/{inst_id}.pdf",
                     ip_of(request), 200)
            return Response(pdf, media_type=MEDIA["pdf"], headers={
                **SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{inst_id}-{run_date}.pdf"'})
        db.audit(engine, user.name, "view" if inline else "download",
                 f"{run_date}/reports/institutions/{inst_id}.{ext}", ip_of(request), 200)
        headers = dict(SECURITY_HEADERS)
        if not inline:
            headers["Content-Disposition"] = f'attachment; filename="{inst_id}-{run_date}.{ext}"'
        return FileResponse(path, media_type=MEDIA[ext], headers=headers)

    @app.get("/runs/{run_date}/validation/{doc_path:path}")
    def validation_docs(request: Request, run_date: str, doc_path: str):
        user = current(request)
        if user is None:
            return sign_in_first()
        parts = doc_path.split("/")
        try:
            # Data Docs may quote rows of any region: province and admin only
            if user.role not in ("province", "admin") or not all(DOC_SEGMENT.match(s) and ".." not in s for s in parts):
                raise NotFound(doc_path)
            path = published.file(run_date, "validation", *parts)
        except NotFound:
            return not_found(request, user, f"{run_date[:40]}/validation/{doc_path[:80]}")
        db.audit(engine, user.name, "view", f"{run_date}/validation/{'/'.join(parts)}", ip_of(request), 200)
        return FileResponse(path, headers=SECURITY_HEADERS)

    @app.get("/audit")
    def audit_page(request: Request, limit: int = 200):
        user = current(request)
        if user is None:
            return sign_in_first()
        if user.role != "admin":
            return not_found(request, user, "audit")
        rows = db.audit_rows(engine, limit=max(1, min(limit, 2000)))
        trs = "".join(f"<tr><td>{_e(r.at)}</td><td>{_e(r.user_name)}</td><td>{_e(r.action)}</td>"
                      f"<td>{_e(r.target)}</td><td>{_e(r.ip)}</td><td>{_e(r.status)}</td></tr>" for r in rows)
        return html_response(_page("Audit log / 审计日志", user,
                                   "<table><tr><th>When / 时间 (UTC)</th><th>Who / 用户</th><th>What / 操作</th>"
                                   f"<th>Target / 对象</th><th>IP</th><th>Status</th></tr>{trs}</table>"))

    cases_web.register(app, engine=engine, published=published, settings=settings, config=cases_config,
                       current=current, ip_of=ip_of, html_response=html_response, not_found=not_found,
                       sign_in_first=sign_in_first, page=_page)

    @app.api_route("/{anything:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def everything_else(request: Request, anything: str):
        user = current(request)
        if user is None:
            return sign_in_first()
        return not_found(request, user, anything[:120])

    return app


def serve(publish_dir: Path, db_url: str, host: str = "127.0.0.1", port: int = 8000,
          secure_cookie: bool = False, settings=None) -> None:
    """Run the portal with uvicorn (``claimscreen serve``)."""
    import uvicorn
    uvicorn.run(create_app(publish_dir, db_url, secure_cookie=secure_cookie, settings=settings), host=host, port=port,
                log_level="info", proxy_headers=False)
