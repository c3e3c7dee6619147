"""Crash safety, tested by killing the process (issue 12, part 3).

Each case starts ``claimscreen`` in a subprocess held at a named point
(``CLAIMSCREEN_PAUSE_AT``, see pipeline/crashpoints.py), sends it SIGKILL there, and checks
that the lake, the ledger and every published run are consistent, that the run published
before is still readable, and that the next commands complete without manual cleanup
(no stale lock, staging or half-built folder left behind) and end where a clean run ends.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline import ROOT, builder, cli, contract, feed, lake, validate
from pipeline.settings import load_settings

D1, D2 = "2026-10-05", "2026-10-06"
H2 = "H00000000002"
CLEAN = [f"B{i:02d}" for i in range(1, 9)]


def _world():
    settlements = [{"settlement_id": "A1", "patient_id": "P001", "institution_id": H2, "admit_date": D1}] + [
        {"settlement_id": b, "patient_id": f"P{4 + i:03d}", "institution_id": H2, "admit_date": D2}
        for i, b in enumerate(CLEAN)]
    # B04 pays more from the fund than it cost: quarantined, so the gate rewrites the night
    settlements[4].update(total_amount=50, fund_paid=100, self_paid=-50)
    items = []
    for s in settlements:
        for code, price in (("CON01", 30), ("LAB01", 20)):
            items.append({"settlement_id": s["settlement_id"], "item_code": code,
                          "service_date": s["admit_date"], "unit_price": price})
    return settlements, items


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Night 1 ingested, validated, screened and published; night 2 landed only."""
    root = tmp_path_factory.mktemp("crash_base")
    builder.write_extracts(root / "landing", *_world())
    st = load_settings(data_dir=root / "data")
    assert cli.main(["--data-dir", str(st.data_dir), "ingest", "--landing", str(root / "landing"),
                     "--date", D1]) == 0
    assert cli.main(["--data-dir", str(st.data_dir), "run", "--date", D1]) == 0
    return root


@pytest.fixture
def world(base, tmp_path):
    shutil.copytree(base, tmp_path / "w", symlinks=True)
    return load_settings(data_dir=tmp_path / "w" / "data"), tmp_path / "w" / "landing"


def kill_at(st, point: str, *args, timeout: float = 300) -> None:
    """Run ``claimscreen <args>`` until it reaches ``point``, then SIGKILL it there."""
    marker = st.data_dir / f"paused-{point}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CLAIMSCREEN_PAUSE_AT": point,
           "CLAIMSCREEN_PAUSE_FILE": str(marker), "CLAIMSCREEN_DATA_DIR": str(st.data_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"exited {proc.returncode} before reaching {point}:\n{out.decode()}\n{err.decode()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{point} not reached in {timeout}s")
        time.sleep(0.2)
    name, pid = marker.read_text().split()
    assert name == point and int(pid) == proc.pid
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


def published_ok(run: Path) -> dict:
    """A published run is readable and every file matches its manifest."""
    manifest = json.loads((run / "_MANIFEST.json").read_text(encoding="utf-8"))
    for f in manifest["files"]:
        assert contract.sha256_file(run / f["path"]) == f["sha256"], f["path"]
        if f["path"].endswith(".parquet"):
            assert pq.ParquetFile(run / f["path"]).metadata.num_rows == f["rows"]
    return manifest


def assert_consistent(st) -> None:
    # the screened zone: every night complete, quarantined settlements absent from its data
    for d in lake.ingested_dates(st):
        base = lake.extract_dir(st, d)
        json.loads((base / "_INGESTED.json").read_text())
        ids = set()
        for p in sorted((base / "settlements").glob("*.parquet")):
            ids |= set(pq.read_table(p, columns=["settlement_id"])["settlement_id"].to_pylist())
        for p in sorted((base / "settlement_items").glob("*.parquet")):
            pq.read_table(p)
        for table, path in validate.quarantined(st, d).items():
            held = set(pq.read_table(path, columns=["settlement_id"])["settlement_id"].to_pylist())
            assert not held & ids, f"{d}: quarantined rows also in the screened data"
    # the ledger reads (a line cut by the kill is the only one skipped)
    lines = (st.lake_dir / "ledger.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(feed.ledger(st)) >= len(lines) - 1
    # every published date is a complete run
    for link in st.publish_dir.iterdir():
        if not link.name.startswith("."):
            published_ok(link)


def assert_clean(st) -> None:
    """Nothing a killed process left behind is still there."""
    assert not list((st.lake_dir / ".staging").glob("*")) if (st.lake_dir / ".staging").exists() else True
    assert not list(st.lake_dir.rglob("*.rewrite"))
    assert not [p for p in st.lake_dir.rglob(".*.parquet")]
    assert not list((st.lake_dir / "validation").glob(".*"))
    assert not list((st.publish_dir / ".versions").glob(".building-*"))
    assert not list(st.publish_dir.glob(".link-*"))
    for d in (D1, D2):
        assert len(list((st.publish_dir / ".versions").glob(f"{d}.*"))) <= 2


#: point -> the command held there. Ingest/validate points run `ingest` of night 2;
#: screen/publish points re-run the already published night 1 (after night 2 is in).
POINTS = {
    "ingest.staged": "ingest",
    "ingest.landed": "ingest",
    "validate.quarantine_written": "ingest",
    "validate.before_promote": "ingest",
    "screen.features_built": "run",
    "screen.detected": "run",
    "publish.building": "run",
    "publish.built": "run",
}


@pytest.mark.parametrize("point", list(POINTS))
def test_killed_at_point_leaves_everything_consistent_and_the_next_run_completes(world, point):
    st, landing = world
    data = str(st.data_dir)
    before = os.readlink(st.publish_dir / D1)
    published_before = published_ok(st.publish_dir / D1)
    if POINTS[point] == "ingest":
        kill_at(st, point, "--data-dir", data, "ingest", "--landing", str(landing))
    else:
        assert cli.main(["--data-dir", data, "ingest", "--landing", str(landing)]) == 0
        kill_at(st, point, "--data-dir", data, "run", "--date", D1)

    assert_consistent(st)
    # the run published before is untouched and readable
    assert os.readlink(st.publish_dir / D1) == before
    assert published_ok(st.publish_dir / D1) == published_before
    assert D2 not in lake.ingested_dates(st) or POINTS[point] == "run"

    # the next commands complete with no manual cleanup and end as a clean run would
    assert cli.main(["--data-dir", data, "ingest", "--landing", str(landing)]) == 0
    assert cli.main(["--data-dir", data, "run", "--date", D1]) == 0
    assert cli.main(["--data-dir", data, "run", "--date", D2]) == 0
    assert lake.ingested_dates(st) == [D1, D2]
    held = pq.read_table(validate.quarantined(st, D2)["settlements"]).to_pylist()
    assert [(r["settlement_id"], r["reason_code"]) for r in held] == [("B04", "FUND_ABOVE_TOTAL,NEGATIVE_AMOUNT")]
    lines = pq.read_table(validate.quarantined(st, D2)["settlement_items"]).to_pylist()
    assert sorted(r["settlement_id"] for r in lines) == ["B04", "B04"]
    assert_consistent(st)
    assert_clean(st)
    for d in (D1, D2):
        m = published_ok(st.publish_dir / d)
        assert sorted(m["parameters"]["extracts"]) == [x for x in (D1, D2) if x <= d]
    assert {r.extract_date: (r.state, r.published) for r in feed.status(st, landing)} == {
        D1: ("promoted", "yes"), D2: ("promoted", "yes")}


def test_two_runs_of_a_date_and_an_ingest_at_once_end_in_one_consistent_run(world):
    """Issue 12, part 4: `run --date D` twice and an `ingest`, started together, all finish;
    the night is gated once, and the published run is whole (never a mix)."""
    st, landing = world
    data = str(st.data_dir)
    assert cli.main(["--data-dir", data, "ingest", "--landing", str(landing), "--no-validate"]) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CLAIMSCREEN_DATA_DIR": data}
    commands = [["run", "--date", D2], ["run", "--date", D2], ["ingest", "--landing", str(landing)]]
    procs = [subprocess.Popen([sys.executable, "-m", "pipeline.cli", "--data-dir", data, *c], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in commands]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err), c in zip(procs, outs, commands):
        assert p.returncode == 0, f"{c}: exit {p.returncode}\n{out.decode()}\n{err.decode()}"
    assert lake.ingested_dates(st) == [D1, D2]
    promoted = [e for e in feed.ledger(st) if e["event"] == "promoted" and e["extract_date"] == D2]
    assert len(promoted) == 1, "the night was gated and promoted once"
    held = pq.read_table(validate.quarantined(st, D2)["settlements"]).to_pylist()
    assert [r["settlement_id"] for r in held] == ["B04"]
    m = published_ok(st.publish_dir / D2)
    assert sorted(m["parameters"]["extracts"]) == [D1, D2]
    assert_consistent(st)
    assert_clean(st)
