"""The case workflow, self-inspection, tips and credit pages of the portal.

::

    /runs/<date>/findings/<institution>    findings of one institution (self-inspection for
                                           an institution account; "open a case" for reviewers)
    /cases[?overdue=1]  /cases/<id>        cases in scope; one case, its history, its actions
    POST /cases/open                       run_date, finding_id[, tip_id] → a case at first review
    POST /cases/<id>/act                   action, note → the next step (see cases.TRANSITIONS)
    /cases/precision                       per detector and month, from decided cases
    /credit  /credit/practitioners         credit grade history; practitioner points
    /tips/new  POST /tips/new  POST /api/tips   submit a tip (no sign-in needed)
    /tips  /tips/<id>  POST /tips/<id>/link    the tips desk only

Every refusal is audited (``denied`` with the HTTP status) and answers 404 when the
object is outside the user's scope (nothing is said about what exists), 403 when it is
in scope but the role may not do the action, 409 when the step is not current or its
time is over, 400 for a malformed form.
"""
from __future__ import annotations

import json
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse

from pipeline import reports
from pipeline.portal import cases, db

FINDING_ID = r"^[0-9a-f]{8,64}$"
FORM_LIMIT = 20_000          # bytes of a posted form or JSON body


def _e(s) -> str:
    import html
    return "" if s is None else html.escape(str(s), quote=True)


def credit_of(engine, run_date: str, config=None):
    """row of a run's report index -> its credit grade as of that run (see cases.credit_history)."""
    from datetime import datetime, timedelta
    conf = cases.load_config(config)
    confirmed = cases.confirmed_in_window(engine, conf, datetime.fromisoformat(run_date) + timedelta(days=1))

    def grade(row: dict) -> str:
        return cases.credit_grade(row["grade"], confirmed.get(row["institution_id"], 0), conf)
    return grade


def register(app, *, engine, published, settings, config, current, ip_of, html_response, not_found,
             sign_in_first, page) -> None:
    import re

    import duckdb

    from pipeline.lake import sql_literal
    from pipeline.portal.app import NotFound

    conf = cases.load_config(config)
    finding_id_re = re.compile(FINDING_ID)
    inst_re = re.compile(r"^[A-Za-z0-9_-]{1,40}$")

    def refuse(request: Request, user, status: int, what: str, message: str):
        db.audit(engine, user.name if user else None, "denied", what[:400], ip_of(request), status)
        if status == 404:
            return not_found_quiet(user)
        return html_response(page("Refused / 拒绝", user, f"<p>{_e(message)}</p>"), status)

    def not_found_quiet(user):
        return html_response(page("Not found / 未找到", user, "<p>No such file in your regions. / "
                                  "您的辖区内无此文件。</p>"), 404)

    def foreign_origin(request: Request) -> bool:
        origin = request.headers.get("origin")
        return bool(origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"))

    def too_large(request: Request) -> bool:
        try:
            return int(request.headers.get("content-length") or 0) > FORM_LIMIT
        except ValueError:
            return True

    async def body_of(request: Request) -> bytes:
        """The request body, read no further than FORM_LIMIT (a chunked body has no length)."""
        if too_large(request):
            raise cases.CaseError(413, "too large")
        chunks, n = [], 0
        async for chunk in request.stream():
            n += len(chunk)
            if n > FORM_LIMIT:
                raise cases.CaseError(413, "too large")
            chunks.append(chunk)
        return b"".join(chunks)

    async def form_of(request: Request) -> dict:
        from urllib.parse import parse_qsl
        raw = await body_of(request)
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            raise cases.CaseError(400, "a form")
        return {k: v for k, v in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)}

    def region_of(run_date: str, institution_id: str | None) -> str | None:
        for r in published.index(run_date):
            if r["institution_id"] == institution_id:
                return r["region"]
        return None

    def latest_region(institution_id: str | None) -> str | None:
        for d in reversed(published.runs()):
            reg = region_of(d, institution_id)
            if reg is not None:
                return reg
        return None

    def findings_of(run_date: str, where: str, params: list) -> list[dict]:
        path = published.file(run_date, "findings.parquet")
        con = duckdb.connect()
        try:
            cur = con.execute(f"SELECT * FROM read_parquet({sql_literal(path)}) WHERE {where} "
                              "ORDER BY score DESC, finding_id LIMIT 2000", params)
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, row)) for row in cur.fetchall()]
        finally:
            con.close()

    def case_row_html(c, user) -> str:
        overdue = c.state in cases.OPEN_STATES and c.due_at is not None and c.due_at < db.now()
        who = "" if user.role == "institution" else f"<td>{_e(c.patient_id)}</td>"
        return (f"<tr><td><a href='/cases/{c.id}'>#{c.id}</a></td><td>{_e(cases.label(c.state))}</td>"
                f"<td>{_e(c.due_at and c.due_at.strftime('%Y-%m-%d %H:%M'))}"
                f"{' <b>OVERDUE / 超期</b>' if overdue else ''}</td>"
                f"<td>{_e(c.institution_id)}</td><td>{_e(c.region)}</td><td>{_e(c.detector_id)}</td>"
                f"<td>{_e(c.doctor_id)}</td>{who}<td class=n>¥{float(c.amount_at_risk or 0):,.2f}</td></tr>")

    def cases_table(rows, user) -> str:
        who = "" if user.role == "institution" else "<th>Patient / 参保人</th>"
        return ("<table><tr><th>Case / 案件</th><th>Step / 环节</th><th>Due / 期限 (UTC)</th>"
                "<th>Institution / 机构</th><th>Region / 区划</th><th>Rule / 规则</th><th>Doctor / 医师</th>"
                f"{who}<th>Amount / 金额</th></tr>" + "".join(case_row_html(c, user) for c in rows) + "</table>")

    # ------------------------------------------------------------- findings

    @app.get("/runs/{run_date}/findings/{institution_id}")
    def institution_findings(request: Request, run_date: str, institution_id: str):
        user = current(request)
        if user is None:
            return sign_in_first()
        try:
            if not inst_re.match(institution_id):
                raise NotFound(institution_id)
            row = published.institution(run_date, institution_id, user)
            rows = findings_of(run_date, "institution_id = ?", [institution_id])
        except NotFound:
            return refuse(request, user, 404, f"{run_date[:40]}/findings/{institution_id[:40]}", "")
        can_open = user.role in cases.OPENERS
        trs = []
        for f in rows:
            btn = (f"<form method=post action='/cases/open' style='display:inline'>"
                   f"<input type=hidden name=run_date value='{_e(run_date)}'>"
                   f"<input type=hidden name=finding_id value='{_e(f['finding_id'])}'>"
                   f"<button type=submit>Open case / 立案</button></form>") if can_open else ""
            trs.append(f"<tr><td>{_e(f['finding_id'])}</td><td>{_e(f['detector_id'])}</td>"
                       f"<td>{_e(f['entity_type'])} {_e(f['entity_id'])}</td><td>{_e(f['patient_id'])}</td>"
                       f"<td>{_e(f['doctor_id'])}</td><td class=n>¥{float(f['amount_at_risk'] or 0):,.2f}</td>"
                       f"<td>{_e(f['reason'])}</td><td>{btn}</td></tr>")
        db.audit(engine, user.name, "view", f"{run_date}/findings/{institution_id}", ip_of(request), 200)
        title = ("Self-inspection / 自查" if user.role == "institution" else "Findings / 疑点") + \
            f": {row['name'] or institution_id}"
        return html_response(page(title, user, (
            f"<p class=small>{len(rows)} finding(s) / 条疑点 · run / 批次 {_e(run_date)}</p>"
            "<table><tr><th>Finding / 疑点编号</th><th>Rule / 规则</th><th>Entity / 对象</th>"
            "<th>Patient / 参保人</th><th>Doctor / 医师</th><th>Amount / 金额</th><th>Reason / 说明</th><th></th></tr>"
            + "".join(trs) + "</table>")))

    # ---------------------------------------------------------------- cases

    @app.get("/cases")
    def case_list(request: Request, overdue: int = 0):
        user = current(request)
        if user is None:
            return sign_in_first()
        if user.role == "tips":
            return refuse(request, user, 404, "cases", "")
        rows = cases.list_cases(engine, user, overdue_only=bool(overdue))
        db.audit(engine, user.name, "list_cases", "overdue" if overdue else None, ip_of(request), 200)
        own = ""
        if user.role == "institution":
            runs = published.runs()
            if runs:
                own = (f"<p><a href='/runs/{runs[-1]}/findings/{_e(user.institution)}'>"
                       f"Self-inspection: my findings / 自查：本机构疑点</a></p>")
        return html_response(page("Overdue cases / 超期案件" if overdue else "Cases / 案件", user, (
            own + "<p><a href='/cases?overdue=1'>Overdue only / 仅超期</a> · <a href='/cases'>All / 全部</a> · "
            f"config {_e(conf.version)}</p><p class=small>{len(rows)} case(s) / 件</p>" + cases_table(rows, user))))

    @app.post("/cases/open")
    async def case_open(request: Request):
        user = current(request)
        if user is None:
            return sign_in_first()
        if foreign_origin(request):
            return refuse(request, user, 403, "cases/open cross-site", "Cross-site request refused.")
        try:
            form = await form_of(request)
        except cases.CaseError as e:
            return refuse(request, user, e.status, "cases/open", str(e))
        run_date, fid = form.get("run_date", "")[:12], form.get("finding_id", "")[:80]
        tip_raw = form.get("tip_id", "")
        what = f"cases/open {run_date} {fid}"
        if user.role not in cases.OPENERS or (user.role == "tips" and not tip_raw):
            return refuse(request, user, 403, what, "Your role does not open cases. / 您的角色不能立案。")
        if not finding_id_re.match(fid) or not reports.RUN_DATE.match(run_date):
            return refuse(request, user, 404, what, "")
        tip_id = None
        try:
            if tip_raw:
                if user.role != "tips" or not tip_raw.isdigit():
                    raise cases.CaseError(404, "tip")
                tip_id = cases.get_tip(engine, user, int(tip_raw)).id
            found = findings_of(run_date, "finding_id = ?", [fid])
            if not found:
                raise NotFound(fid)
            f = found[0]
            region = region_of(run_date, f["institution_id"])
            if not user.sees_institution(f["institution_id"], region) or (region is None and user.scope is not None):
                raise NotFound(fid)
            cid = cases.open_case(engine, user, f, run_date, region, conf, tip_id=tip_id, note=form.get("note", ""))
        except NotFound:
            return refuse(request, user, 404, what, "")
        except cases.CaseError as e:
            return refuse(request, user, e.status, what, str(e))
        db.audit(engine, user.name, "case_open", f"case {cid} {run_date} {fid}" + (f" tip {tip_id}" if tip_id else ""),
                 ip_of(request), 303)
        return RedirectResponse(f"/cases/{cid}", status_code=303)

    @app.get("/cases/precision")
    def case_precision(request: Request):
        user = current(request)
        if user is None:
            return sign_in_first()
        if user.role not in ("city", "province", "admin"):
            return refuse(request, user, 404, "cases/precision", "")
        rows = cases.precision(engine, user)
        db.audit(engine, user.name, "view", "cases/precision", ip_of(request), 200)
        trs = "".join(f"<tr><td>{_e(r['detector_id'])}</td><td>{r['month']}</td><td class=n>{r['confirmed']}</td>"
                      f"<td class=n>{r['dismissed']}</td><td class=n>{100 * r['precision']:.0f}%</td></tr>" for r in rows)
        return html_response(page("Precision of the rules from decided cases / 规则准确率（按办结案件）", user,
                                  "<table><tr><th>Rule / 规则</th><th>Month decided / 办结月份</th>"
                                  "<th>Confirmed / 确认</th><th>Dismissed / 排除</th><th>Precision / 准确率</th></tr>"
                                  + trs + "</table>"))

    @app.get("/cases/{case_id}")
    def case_page(request: Request, case_id: str):
        user = current(request)
        if user is None:
            return sign_in_first()
        c = cases.get_case(engine, int(case_id)) if case_id.isdigit() and len(case_id) < 10 else None
        if c is None or not cases.may_view(user, c):
            return refuse(request, user, 404, f"case {case_id[:20]}", "")
        evs = cases.events(engine, c.id)
        if user.role == "institution":      # the offices' internal review is not the institution's to read
            evs = [e for e in evs if e.action in cases.INSTITUTION_EVENTS]
        forms = "".join(
            f"<form method=post action='/cases/{c.id}/act'><input type=hidden name=action value='{a}'>"
            f"<label>Note / 说明 <textarea name=note rows=2 cols=60></textarea></label> "
            f"<button type=submit>{_e(cases.TRANSITIONS[a][3])} / {_e(cases.TRANSITIONS[a][4])}</button></form>"
            for a in cases.actions_for(user, c))
        facts = [("Step / 环节", cases.label(c.state)), ("Due / 期限 (UTC)", c.due_at),
                 ("Institution / 机构", c.institution_id), ("Region / 区划", c.region),
                 ("Rule / 规则", c.detector_id), ("Finding / 疑点", c.finding_id), ("Run / 批次", c.run_date),
                 ("Entity / 对象", f"{c.entity_type} {c.entity_id}"), ("Doctor / 医师", c.doctor_id),
                 ("Patient / 参保人", c.patient_id), ("Settlements / 结算单", ", ".join(json.loads(c.settlement_ids))),
                 ("Amount at risk / 涉及金额", f"¥{float(c.amount_at_risk or 0):,.2f}"), ("Reason / 说明", c.reason),
                 ("Appeal / 申诉", c.appeal_text)]
        hist = "".join(f"<tr><td>{_e(e.at)}</td><td>{_e(e.role if user.role == 'institution' else e.user_name)}"
                       f"{'' if user.role == 'institution' else f' ({_e(e.role)})'}</td><td>{_e(e.action)}</td>"
                       f"<td>{_e(e.from_state and cases.label(e.from_state))} → {_e(cases.label(e.to_state))}</td>"
                       f"<td>{_e(e.note)}</td></tr>" for e in evs)
        db.audit(engine, user.name, "view_case", f"case {c.id}", ip_of(request), 200)
        return html_response(page(f"Case / 案件 #{c.id}", user, (
            "<table class=facts>" + "".join(f"<tr><th>{k}</th><td>{_e(v)}</td></tr>" for k, v in facts) + "</table>"
            + (f"<h2>Actions / 操作</h2>{forms}" if forms else "")
            + "<h2>History / 流转记录</h2><table><tr><th>When / 时间 (UTC)</th><th>Who / 经办</th><th>Action / 操作</th>"
            f"<th>Step / 环节</th><th>Note / 说明</th></tr>{hist}</table>")))

    @app.post("/cases/{case_id}/act")
    async def case_act(request: Request, case_id: str):
        user = current(request)
        if user is None:
            return sign_in_first()
        what = f"case {case_id[:20]} act"
        if foreign_origin(request):
            return refuse(request, user, 403, what + " cross-site", "Cross-site request refused.")
        if not case_id.isdigit() or len(case_id) >= 10:
            return refuse(request, user, 404, what, "")
        form: dict = {}
        try:
            form = await form_of(request)
            action = form.get("action", "")[:32]
            src = cases.get_case(engine, int(case_id))
            dst = cases.act(engine, user, int(case_id), action, form.get("note", ""), conf, settings=settings)
        except cases.CaseError as e:
            return refuse(request, user, e.status, f"{what} {form.get('action', '')[:32]}", str(e))
        db.audit(engine, user.name, f"case_{action}", f"case {case_id} {src.state}->{dst}", ip_of(request), 303)
        return RedirectResponse(f"/cases/{case_id}", status_code=303)

    # --------------------------------------------------------------- credit

    def index_by_run():
        return {d: published.index(d) for d in published.runs()[-30:]}

    @app.get("/credit")
    def credit_page(request: Request):
        user = current(request)
        if user is None:
            return sign_in_first()
        if user.role not in ("city", "province", "admin", "institution"):
            return refuse(request, user, 404, "credit", "")
        hist = cases.credit_history(index_by_run(), engine, user=user, config=conf)
        db.audit(engine, user.name, "view", "credit", ip_of(request), 200)
        trs = []
        for inst, rows in sorted(hist.items(), key=lambda kv: (
                -cases.GRADES.index(kv[1][-1]["credit_grade"]), kv[0])):
            last = rows[-1]
            trail = " ".join(f"{r['run_date'][5:] if r['run_date'] != 'now' else 'now / 当前'}:{r['credit_grade']}"
                             for r in rows)
            trs.append(f"<tr><td>{_e(inst)}</td><td>{_e(last['name'])}</td><td>{_e(last['region'])}</td>"
                       f"<td>{_e(last['screening_grade'])}</td><td class=n>{last['confirmed']}</td>"
                       f"<td><span class='grade g{last['credit_grade']}' style='font-size:16px;width:24px;height:24px;"
                       f"line-height:24px'>{last['credit_grade']}</span></td><td class=small>{_e(trail)}</td></tr>")
        floors = ", ".join(f"{n}+ → {g}" for n, g in sorted(conf.credit_floors.items()))
        return html_response(page("Credit grades / 信用等级", user, (
            f"<p class=small>Credit grade = the run's screening grade, no better than the floor of the cases "
            f"confirmed in the last {conf.credit_window_days} days ({_e(floors)}). / 信用等级 = 筛查等级，"
            f"且不优于近 {conf.credit_window_days} 天确认违规案件数对应的下限。</p>"
            "<table><tr><th>Institution / 机构</th><th>Name / 名称</th><th>Region / 区划</th>"
            "<th>Screening grade / 筛查等级</th><th>Confirmed / 确认违规</th><th>Credit / 信用等级</th>"
            "<th>History / 历史</th></tr>" + "".join(trs) + "</table>")))

    @app.get("/credit/practitioners")
    def points_page(request: Request, year: int = 0):
        user = current(request)
        if user is None:
            return sign_in_first()
        if user.role not in ("city", "province", "admin", "institution"):
            return refuse(request, user, 404, "credit/practitioners", "")
        rows = cases.points(engine, conf, user=user, year=year or None)
        db.audit(engine, user.name, "view", "credit/practitioners", ip_of(request), 200)
        trs = "".join(f"<tr><td>{_e(r['doctor_id'])}</td><td>{_e(r['institution_id'])}</td><td class=n>{r['points']}</td>"
                      f"<td>{'SUSPENDED / 暂停医保支付资格' if r['suspended'] else 'active / 正常'}</td>"
                      f"<td>{', '.join(f'#{c}' for c in r['cases'])}</td></tr>" for r in rows)
        return html_response(page("Practitioner points / 医保支付资格记分", user, (
            f"<p class=small>Yearly threshold / 年度记分上限: {conf.yearly_threshold}</p>"
            "<table><tr><th>Doctor / 医师</th><th>Institution / 机构</th><th>Points / 记分</th><th>Billing / 支付资格</th>"
            "<th>Cases / 案件</th></tr>" + trs + "</table>")))

    # ----------------------------------------------------------------- tips

    def tips_throttled(request: Request) -> bool:
        from datetime import timedelta
        from sqlalchemy import func, select
        with engine.connect() as con:
            n = con.execute(select(func.count()).select_from(db.audit_log).where(
                db.audit_log.c.action == "tip_submitted", db.audit_log.c.ip == ip_of(request),
                db.audit_log.c.at > db.now() - timedelta(hours=1))).scalar()
        return n >= conf.tips_per_address_per_hour

    def take_tip(request: Request, user, fields: dict):
        if foreign_origin(request):
            raise cases.CaseError(403, "cross-site submission refused")
        if tips_throttled(request):
            raise cases.CaseError(429, "too many tips from this address: try again in an hour")
        inst = str(fields.get("institution_id") or "").strip()[:40]
        ref = cases.submit_tip(engine, cases.tips_key(settings), fields, latest_region(inst) if inst else None)
        db.audit(engine, user.name if user else None, "tip_submitted", ref, ip_of(request), 200)
        return ref

    TIP_FORM = """
<form method="post" action="/tips/new">
<p><label>Institution id / 机构编码 <input name="institution_id" maxlength="40"></label></p>
<p><label>Doctor id / 医师编码 <input name="doctor_id" maxlength="64"></label></p>
<p><label>Patient id / 参保人编码 <input name="patient_id" maxlength="64"></label></p>
<p><label>From / 起始日期 <input name="date_from" type="date"></label>
<label>To / 截止日期 <input name="date_to" type="date"></label></p>
<p><label>What happened / 举报内容 <textarea name="text" rows="6" cols="70" required></textarea></label></p>
<p><label>Your name (optional, kept sealed) / 举报人姓名（可不填，加密保存） <input name="reporter_name"></label></p>
<p><label>Contact (optional) / 联系方式（可不填） <input name="reporter_contact"></label></p>
<p><button type="submit">Submit tip / 提交举报</button></p></form>"""

    @app.get("/tips/new")
    def tip_form(request: Request):
        return html_response(page("Report a clue / 举报线索", current(request), TIP_FORM))

    @app.post("/tips/new")
    async def tip_post(request: Request):
        user = current(request)
        try:
            ref = take_tip(request, user, await form_of(request))
        except cases.CaseError as e:
            return refuse(request, user, e.status, "tip", str(e))
        return html_response(page("Thank you / 已受理", user,
                                  f"<p>Your reference / 受理编号: <b>{_e(ref)}</b></p>"))

    @app.post("/api/tips")
    async def tip_api(request: Request):
        user = current(request)
        try:
            raw = await body_of(request)
            try:
                body = json.loads(raw)
            except ValueError:
                raise cases.CaseError(400, "a JSON object") from None
            if not isinstance(body, dict):
                raise cases.CaseError(400, "a JSON object")
            ref = take_tip(request, user, body)
        except cases.CaseError as e:
            db.audit(engine, user.name if user else None, "denied", "api/tips", ip_of(request), e.status)
            return JSONResponse({"error": str(e)}, status_code=e.status)
        return JSONResponse({"reference": ref}, status_code=201)

    def tips_only(request: Request, user, what: str):
        if not cases.may_read_tips(user):
            return refuse(request, user, 404, what, "")
        return None

    @app.get("/tips")
    def tip_list(request: Request):
        user = current(request)
        if user is None:
            return sign_in_first()
        if (r := tips_only(request, user, "tips")) is not None:
            return r
        rows = cases.list_tips(engine, user)
        db.audit(engine, user.name, "list_tips", None, ip_of(request), 200)
        trs = "".join(f"<tr><td><a href='/tips/{t.id}'>{_e(t.public_ref)}</a></td><td>{_e(t.submitted_at)}</td>"
                      f"<td>{_e(t.institution_id)}</td><td>{_e(t.doctor_id)}</td><td>{_e(t.patient_id)}</td>"
                      f"<td>{'yes / 是' if t.reward_eligible else ''}</td></tr>" for t in rows)
        return html_response(page("Tips / 举报线索", user, (
            "<table><tr><th>Ref / 编号</th><th>Received / 受理时间</th><th>Institution / 机构</th>"
            "<th>Doctor / 医师</th><th>Patient / 参保人</th><th>Reward eligible / 可奖励</th></tr>" + trs + "</table>")))

    @app.get("/tips/{tip_id}")
    def tip_page(request: Request, tip_id: str):
        user = current(request)
        if user is None:
            return sign_in_first()
        if (r := tips_only(request, user, f"tip {tip_id[:20]}")) is not None:
            return r
        try:
            if not tip_id.isdigit() or len(tip_id) >= 10:
                raise cases.CaseError(404, "tip")
            t = cases.get_tip(engine, user, int(tip_id))
            try:
                who = cases.reporter(t, cases.tips_key(settings))
            except cases.CaseError:
                raise
            except Exception:           # sealed under another key: say so, never guess
                who = {"name": "(sealed under another key / 密钥不符，无法解密)", "contact": ""}
        except cases.CaseError as e:
            return refuse(request, user, e.status, f"tip {tip_id[:20]}", str(e))
        # findings and rings of the newest run touching the same entities
        hits, ring_hits = [], []
        runs = published.runs()
        if runs:
            d = runs[-1]
            conds, params = [], []
            for col in ("institution_id", "doctor_id", "patient_id"):
                if getattr(t, col):
                    conds.append(f"{col} = ?")
                    params.append(getattr(t, col))
            try:
                hits = [f for f in findings_of(d, " OR ".join(conds), params)
                        if user.sees_institution(f["institution_id"], region_of(d, f["institution_id"]))]
                rings = published.run_folder(d) / "rings.parquet"
                if rings.exists():
                    con = duckdb.connect()
                    ring_hits = con.execute(
                        f"SELECT DISTINCT ring_id, member_type, member_id FROM read_parquet({sql_literal(rings)}) "
                        "WHERE member_id IN (?, ?, ?) ORDER BY 1", [t.institution_id, t.doctor_id, t.patient_id]).fetchall()
                    con.close()
            except NotFound:
                pass
        linked = cases.tip_cases(engine, t)
        db.audit(engine, user.name, "view_tip", f"tip {t.id}", ip_of(request), 200)
        frows = "".join(
            f"<tr><td>{_e(f['finding_id'])}</td><td>{_e(f['detector_id'])}</td><td>{_e(f['institution_id'])}</td>"
            f"<td>{_e(f['doctor_id'])}</td><td>{_e(f['patient_id'])}</td><td>{_e(f['reason'])}</td><td>"
            f"<form method=post action='/cases/open'><input type=hidden name=run_date value='{runs[-1]}'>"
            f"<input type=hidden name=finding_id value='{_e(f['finding_id'])}'>"
            f"<input type=hidden name=tip_id value='{t.id}'><button type=submit>Open case from tip / 据线索立案</button>"
            f"</form></td></tr>" for f in hits)
        crows = "".join(
            f"<tr><td><a href='/cases/{c.id}'>#{c.id}</a></td><td>{_e(cases.label(c.state))}</td>"
            f"<td>{_e(c.institution_id)}</td><td>{_e(c.doctor_id)}</td><td>"
            + ("linked / 已关联" if is_linked else
               f"<form method=post action='/tips/{t.id}/link'><input type=hidden name=case_id value='{c.id}'>"
               f"<button type=submit>Link / 关联</button></form>") + "</td></tr>"
            for c, is_linked in linked if cases.may_view(user, c))
        rrows = "".join(f"<tr><td>{_e(a)}</td><td>{_e(b)}</td><td>{_e(c)}</td></tr>" for a, b, c in ring_hits)
        ident = ("anonymous / 匿名" if who is None else f"{_e(who['name'])} · {_e(who['contact'])}")
        return html_response(page(f"Tip / 举报线索 {t.public_ref}", user, (
            f"<table class=facts><tr><th>Received / 受理</th><td>{_e(t.submitted_at)}</td></tr>"
            f"<tr><th>Reporter (sealed) / 举报人（保密）</th><td>{ident}</td></tr>"
            f"<tr><th>Institution / 机构</th><td>{_e(t.institution_id)}</td></tr>"
            f"<tr><th>Doctor / 医师</th><td>{_e(t.doctor_id)}</td></tr><tr><th>Patient / 参保人</th><td>{_e(t.patient_id)}</td></tr>"
            f"<tr><th>Dates / 日期</th><td>{_e(t.date_from)} – {_e(t.date_to)}</td></tr>"
            f"<tr><th>Text / 内容</th><td>{_e(t.text)}</td></tr>"
            f"<tr><th>Reward eligible / 可奖励</th><td>{'yes, case #' + str(t.reward_case_id) if t.reward_eligible else 'no / 否'}</td></tr></table>"
            "<h2>Findings touching the same entities / 相关疑点</h2><table><tr><th>Finding</th><th>Rule</th>"
            f"<th>Institution</th><th>Doctor</th><th>Patient</th><th>Reason</th><th></th></tr>{frows}</table>"
            f"<h2>Rings / 团伙</h2><table><tr><th>Ring</th><th>Member type</th><th>Member</th></tr>{rrows}</table>"
            f"<h2>Cases / 案件</h2><table><tr><th>Case</th><th>Step</th><th>Institution</th><th>Doctor</th><th></th></tr>"
            f"{crows}</table>")))

    @app.post("/tips/{tip_id}/link")
    async def tip_link(request: Request, tip_id: str):
        user = current(request)
        if user is None:
            return sign_in_first()
        what = f"tip {tip_id[:20]} link"
        if (r := tips_only(request, user, what)) is not None:
            return r
        if foreign_origin(request):
            return refuse(request, user, 403, what + " cross-site", "Cross-site request refused.")
        try:
            form = await form_of(request)
            cid = form.get("case_id", "")
            if not tip_id.isdigit() or not cid.isdigit() or len(tip_id) >= 10 or len(cid) >= 10:
                raise cases.CaseError(404, "no such case")
            cases.link_tip(engine, user, int(tip_id), int(cid))
        except cases.CaseError as e:
            return refuse(request, user, e.status, what, str(e))
        db.audit(engine, user.name, "tip_link", f"tip {tip_id} case {cid}", ip_of(request), 303)
        return RedirectResponse(f"/tips/{tip_id}", status_code=303)
