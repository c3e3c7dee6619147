"""A small planted world with findings at several institutions in three regions, screened
on two nights so the reports have a history. Shared by test_reports, test_portal and
test_cases, with the helpers they all need: a portal served on a free local port, and
Debian's chromium (skipped outside CI, a failure in CI where the set-up must install it)."""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipeline import builder, ingest, screen, validate
from pipeline.settings import load_settings

FIRST_RUN = "2026-10-10"
RUN_DATE = "2026-10-12"
D = date.fromisoformat


def _world():
    settlements, items = [], []
    n = 0

    def visit(inst, patient, day, lines, doctor="D000000000001", **kw):
        nonlocal n
        n += 1
        sid = f"S{n:05d}"
        settlements.append({"settlement_id": sid, "patient_id": patient, "institution_id": inst,
                            "doctor_id": doctor, "dept_code": "IM", "admit_date": day,
                            "primary_dx": kw.pop("dx", "J06.9"), **kw})
        for code, price, qty in lines:
            items.append({"settlement_id": sid, "item_code": code, "unit_price": price,
                          "quantity": qty, "service_date": kw.get("admit_date_line", day)})
        return sid

    start = D("2026-10-05")
    # ordinary care at every institution, every day, so peers have metrics
    for k in range(8):
        day = start + timedelta(days=k)
        for j, inst in enumerate(("H00000000001", "H00000000002", "H00000000003", "H00000000004",
                                  "P00000000001", "P00000000002")):
            p = f"P{(k * 6 + j) % 30 + 1:03d}"
            if inst.startswith("P"):
                visit(inst, p, day, [("DRG01", 18, 2)], doctor="D000000000006", dx="J20.9")
            else:
                visit(inst, p, day, [("CON01", 15, 1), ("LAB01", 18, 1), ("DRG01", 18, 1)])
    # duplicate billing at the clinic (region 440111): the same test billed twice, three days
    for k in (1, 3, 6):
        day = start + timedelta(days=k)
        visit("H00000000001", "P031", day, [("LAB01", 18, 1), ("LAB01", 18, 1), ("EXM02", 90, 1)],
              doctor="D000000000004")
    # duplicate billing of insulin at the pharmacy in another city (440305)
    for k in (2, 5):
        day = start + timedelta(days=k)
        visit("P00000000002", "P032", day, [("DRG02", 180, 2)], doctor="D000000000006", dx="E11.9")
        visit("P00000000002", "P032", day, [("DRG02", 180, 2)], doctor="D000000000006", dx="E11.9")
    # split hospitalisation at the district hospital (440106)
    visit("H00000000002", "P033", start, [("BED01", 45, 3), ("NUR01", 25, 3)], doctor="D000000000003",
          visit_type="inpatient", discharge_date=start + timedelta(days=3), dx="I63.9")
    visit("H00000000002", "P033", start + timedelta(days=5), [("BED01", 45, 2), ("NUR01", 25, 2)],
          doctor="D000000000003", visit_type="inpatient", discharge_date=start + timedelta(days=7),
          dx="I63.9")
    # claims after death at the private hospital (440111)
    for k in (2, 4):
        visit("H00000000004", "P034", start + timedelta(days=k), [("CON01", 30, 1), ("DRG02", 180, 1)],
              doctor="D000000000005", dx="E11.9")
    reference = {"insured_persons": [
        {"patient_id": f"P{i:03d}", "sex": "M" if i % 2 else "F", "birth_date": D("1960-01-01"),
         "home_region": "440106", "insurance_type": "employee", "enrolled_date": D("2010-01-01"),
         "death_date": D("2026-09-01") if i == 34 else None}
        for i in range(31, 35)]}
    return settlements, items, reference


def build_run(tmp: Path, publish_dir: Path | None = None):
    """Ingest the world, screen FIRST_RUN and RUN_DATE; returns (settings, published folder)."""
    settlements, items, reference = _world()
    builder.write_extracts(tmp / "landing", settlements, items, reference=reference)
    st = load_settings(data_dir=tmp / "data", publish_dir=publish_dir)
    for r in ingest.ingest(st, tmp / "landing"):
        validate.validate(st, r.extract_date)
    screen.screen(st, FIRST_RUN)
    out = screen.screen(st, RUN_DATE)
    return st, out


def chromium() -> str:
    """Path of Debian's chromium; skip only outside CI (in CI the set-up must install it)."""
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed: CI set-up must run scripts/setup_browser.sh")
    pytest.skip("chromium not installed (run scripts/setup_browser.sh); required in CI")


def playwright_api():
    """playwright.sync_api: required in CI, skipped where it is not installed."""
    if os.environ.get("CI"):
        from playwright import sync_api
        return sync_api
    return pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(app):
    """Serve an ASGI app on a free local port in a thread; yields the port."""
    import uvicorn
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
