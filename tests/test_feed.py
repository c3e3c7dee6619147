"""The feed is resumable: a bad night never stops the good ones, and a re-delivery makes
everything continue without anyone touching the lake (issue 12, part 1).

Four nights, the first carrying the reference snapshots; the fourth is corrupted in one of
six ways, then re-delivered intact. Everything goes through the command line in-process,
as a new user would run it.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import builder, cli, contract, feed, ingest, lake, validate
from pipeline.settings import load_settings

NIGHTS = ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04"]
D1, D2, D3, D4 = NIGHTS
H3, H2, PH = "H00000000003", "H00000000002", "P00000000001"


def _world():
    settlements, items = [], []
    for n, d in enumerate(NIGHTS):
        for i in range(4):
            sid = f"N{n + 1}S{i}"
            inst = (H3, H2, PH, H2)[i]
            visit = "pharmacy" if inst == PH else "outpatient"
            settlements.append({"settlement_id": sid, "patient_id": f"P{1 + n * 4 + i:03d}",
                                "institution_id": inst, "visit_type": visit, "admit_date": d,
                                "doctor_id": "D000000000001" if inst == H3 else None})
            code = "DRG01" if visit == "pharmacy" else "CON01"
            items.append({"settlement_id": sid, "item_code": code, "service_date": d, "unit_price": 30,
                          **({"days_supply": 7} if code == "DRG01" else {})})
            items.append({"settlement_id": sid, "item_code": "LAB01", "service_date": d, "unit_price": 20})
    return settlements, items


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("feed_pristine")
    dates = builder.write_extracts(root / "landing", *_world())
    assert dates == NIGHTS
    assert (root / "landing" / D1 / "reference").exists() and not (root / "landing" / D2 / "reference").exists()
    return root / "landing"


@pytest.fixture
def feed_world(pristine, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(pristine, landing)
    return load_settings(data_dir=tmp_path / "data"), landing


def rewrite_manifest(extract: Path) -> None:
    """A manifest matching the files as they now are (rows 0 for a file that is not Parquet)."""
    m = json.loads((extract / contract.MANIFEST_NAME).read_text())
    for f in m["files"]:
        p = extract / f["path"]
        try:
            f["rows"] = pq.ParquetFile(p).metadata.num_rows
        except Exception:
            f["rows"] = 0
        f["sha256"] = contract.sha256_file(p)
    (extract / contract.MANIFEST_NAME).write_text(json.dumps(m))


def _manifest_edit(extract: Path, fn) -> None:
    mp = extract / contract.MANIFEST_NAME
    m = json.loads(mp.read_text())
    fn(m)
    mp.write_text(json.dumps(m))


def _settlements(extract: Path) -> Path:
    return extract / "settlements" / "part-0000.parquet"


def corrupt_checksum(ex):
    _manifest_edit(ex, lambda m: m["files"][0].update(sha256="0" * 64))


def corrupt_row_count(ex):
    _manifest_edit(ex, lambda m: next(f for f in m["files"] if f["path"].startswith("settlements/"))
                   .update(rows=5))


def corrupt_missing_column(ex):
    pq.write_table(pq.read_table(_settlements(ex)).drop(["fund_paid"]), _settlements(ex))
    rewrite_manifest(ex)


def corrupt_wrong_type(ex):
    t = pq.read_table(_settlements(ex))
    i = t.schema.get_field_index("total_amount")
    pq.write_table(t.set_column(i, "total_amount", t["total_amount"].cast(pa.float64())), _settlements(ex))
    rewrite_manifest(ex)


def corrupt_not_parquet(ex):
    (ex / "settlement_items" / "part-0000.parquet").write_text("settlement_id,line_no\nN4S0,1\n")
    rewrite_manifest(ex)


def corrupt_truncated(ex):
    p = ex / "settlement_items" / "part-0000.parquet"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    rewrite_manifest(ex)


SIX = {
    "checksum": (corrupt_checksum, "sha256"),
    "row_count": (corrupt_row_count, "rows, manifest says 5"),
    "missing_column": (corrupt_missing_column, "column 'fund_paid' is missing"),
    "wrong_type": (corrupt_wrong_type, "'total_amount' has type double"),
    "not_parquet": (corrupt_not_parquet, "not readable Parquet"),
    "truncated": (corrupt_truncated, "not readable Parquet"),
}


def claimscreen(st, *args) -> int:
    return cli.main(["--data-dir", str(st.data_dir), *args])


def states(st, landing) -> dict[str, str]:
    return {r.extract_date: r.state for r in feed.status(st, landing)}


@pytest.mark.parametrize("case", sorted(SIX))
def test_bad_fourth_night_then_redelivery_end_to_end(feed_world, pristine, case, capsys):
    st, landing = feed_world
    corrupt, message = SIX[case]
    corrupt(landing / D4)

    # first ingest: the bad night is refused, the three good nights go through
    assert claimscreen(st, "ingest", "--landing", str(landing)) == 2
    out = capsys.readouterr()
    assert f"REFUSED extract {D4}" in out.err and message in out.err
    assert lake.ingested_dates(st) == [D1, D2, D3]
    assert not (ingest.incoming_dir(st, D4)).exists(), "nothing of a refused night is landed"
    assert states(st, landing) == {D1: "promoted", D2: "promoted", D3: "promoted", D4: "refused"}
    row = {r.extract_date: r for r in feed.status(st, landing)}[D4]
    assert any(message in w for w in row.why) and "re-deliver" in row.next_step

    # running ingest again before the re-delivery changes nothing and still says why
    assert claimscreen(st, "ingest", "--landing", str(landing)) == 2
    assert lake.ingested_dates(st) == [D1, D2, D3]
    capsys.readouterr()

    # the producer re-delivers the night intact: it is ingested, validated against night 1's
    # reference snapshots, promoted and screened
    shutil.rmtree(landing / D4)
    shutil.copytree(pristine / D4, landing / D4)
    assert claimscreen(st, "status", "--landing", str(landing)) == 0
    assert "re-delivered since it was refused" in capsys.readouterr().out
    assert claimscreen(st, "ingest", "--landing", str(landing)) == 0, capsys.readouterr().err
    assert lake.ingested_dates(st) == NIGHTS
    assert validate.load_results(st, D4)["status"] == "passed"
    assert not validate.quarantined(st, D4)
    assert claimscreen(st, "run", "--date", D4) == 0
    run = st.publish_dir / D4
    assert (run / "_MANIFEST.json").exists()
    manifest = json.loads((run / "_MANIFEST.json").read_text())
    assert sorted(manifest["parameters"]["extracts"]) == NIGHTS, "the run saw all four nights"
    rows = {r.extract_date: r for r in feed.status(st, landing)}
    assert rows[D4].state == "promoted" and rows[D4].screened and rows[D4].published == "yes"
    assert all(rows[d].state == "promoted" for d in NIGHTS)


def test_night_with_the_references_refused_makes_later_nights_wait(feed_world, pristine, capsys):
    st, landing = feed_world
    corrupt_checksum(landing / D1)
    assert claimscreen(st, "ingest", "--landing", str(landing)) == 2
    err = capsys.readouterr().err
    assert f"REFUSED extract {D1}" in err
    for d in (D2, D3, D4):
        assert f"WAITING extract {d}" in err
    assert f"waits for {D1} (refused)" in err and "insured_persons" in err
    assert lake.ingested_dates(st) == []
    assert not list((st.lake_dir / "validation").glob("*")) if (st.lake_dir / "validation").exists() else True
    rows = {r.extract_date: r for r in feed.status(st, landing)}
    assert rows[D1].state == "refused"
    assert {rows[d].state for d in (D2, D3, D4)} == {"waiting"}
    assert D1 in rows[D2].next_step
    # a run for a waiting night publishes nothing and says why
    assert claimscreen(st, "run", "--date", D3) == 3
    assert "waiting" in capsys.readouterr().err
    assert not (st.publish_dir / D3).exists()

    shutil.rmtree(landing / D1)
    shutil.copytree(pristine / D1, landing / D1)
    assert claimscreen(st, "ingest", "--landing", str(landing)) == 0
    assert lake.ingested_dates(st) == NIGHTS
    assert set(states(st, landing).values()) == {"promoted"}


def _null_key(extract: Path) -> None:
    t = pq.read_table(_settlements(extract))
    ids = [None if s == "N2S1" else s for s in t["settlement_id"].to_pylist()]
    schema = pa.schema([f.with_nullable(True) for f in contract.SETTLEMENTS])
    pq.write_table(t.set_column(0, pa.field("settlement_id", pa.string()), pa.array(ids)).cast(schema),
                   _settlements(extract))
    rewrite_manifest(extract)


def test_blocked_middle_night_others_go_on_and_a_corrected_redelivery_needs_no_replace(
        feed_world, pristine, capsys):
    st, landing = feed_world
    _null_key(landing / D2)
    assert claimscreen(st, "ingest", "--landing", str(landing)) == 3
    err = capsys.readouterr().err
    assert f"BLOCKED extract {D2}" in err and "settlement_id_not_null" in err
    assert lake.ingested_dates(st) == [D1, D3, D4]
    assert states(st, landing)[D2] == "blocked"
    # night 3 screened without night 2, which is still blocked
    assert claimscreen(st, "run", "--date", D3) == 0
    assert claimscreen(st, "run", "--date", D2) == 3
    assert not (st.publish_dir / D2).exists()
    # the blocked verdict is kept, not recomputed, while nothing it depends on changes
    before = validate.load_results(st, D2)["started_at"]
    assert claimscreen(st, "ingest", "--landing", str(landing)) == 3
    assert validate.load_results(st, D2)["started_at"] == before
    # ... and `validate --date` runs the gate again on request (e.g. after a config change)
    assert claimscreen(st, "validate", "--date", D2) == 3
    assert validate.load_results(st, D2)["seconds"] >= 0 and feed.ledger(st)[-1]["event"] == "blocked"
    capsys.readouterr()
    assert claimscreen(st, "status", "--json", "--landing", str(landing)) == 0
    doc = {r["extract_date"]: r for r in json.loads(capsys.readouterr().out)}
    assert doc[D2]["state"] == "blocked" and "settlement_id_not_null" in doc[D2]["why"][0]
    assert doc[D3]["published"] == "yes" and doc[D3]["screened"]

    shutil.rmtree(landing / D2)
    shutil.copytree(pristine / D2, landing / D2)
    assert claimscreen(st, "ingest", "--landing", str(landing)) == 0, capsys.readouterr().err
    assert lake.ingested_dates(st) == NIGHTS
    rows = {r.extract_date: r for r in feed.status(st, landing)}
    # night 3 was published before night 2 arrived: the status says so and how to fix it
    assert rows[D3].published == "stale" and "backfill" in rows[D3].next_step
    assert rows[D2].published == "no" and "claimscreen run" in rows[D2].next_step


def test_landed_nights_are_validated_in_date_order_by_the_next_run(feed_world, capsys):
    st, landing = feed_world
    assert claimscreen(st, "ingest", "--landing", str(landing), "--no-validate") == 0
    assert lake.ingested_dates(st) == []
    assert set(states(st, landing).values()) == {"incoming"}
    assert claimscreen(st, "run", "--date", D2) == 0
    assert lake.ingested_dates(st) == [D1, D2], "nights up to the run date, oldest first"
    assert (st.publish_dir / D2 / "_MANIFEST.json").exists()
    ledger = [e for e in feed.ledger(st) if e["event"] == "promoted"]
    assert [e["extract_date"] for e in ledger] == [D1, D2]
    assert claimscreen(st, "validate") == 0
    assert lake.ingested_dates(st) == NIGHTS


def test_nightly_and_backfill_catch_up_and_skip_only_the_bad_night(feed_world):
    from pipeline import screen
    st, landing = feed_world
    corrupt_truncated(landing / D2)
    # the nightly run for D3 ingests and validates D1 and D3; D2's refusal does not stop it
    out = screen.nightly(st, landing, D3)
    assert (out / "_MANIFEST.json").exists()
    assert lake.ingested_dates(st) == [D1, D3]
    with pytest.raises(feed.NightNotPromoted, match="refused"):
        screen.nightly(st, landing, D2)
    with pytest.raises(screen.BackfillIncomplete) as e:
        screen.backfill(st, D1, D4, landing=landing)
    assert [n.extract_date for n in e.value.skipped] == [D2]
    assert [p.name for p in e.value.published] == [D1, D3, D4]
    assert lake.ingested_dates(st) == [D1, D3, D4]


def test_airflow_task_catches_up_and_fails_only_for_its_own_night(feed_world, monkeypatch):
    from pipeline import airflow_tasks
    st, landing = feed_world
    monkeypatch.setenv("CLAIMSCREEN_DATA_DIR", str(st.data_dir))
    monkeypatch.setenv("CLAIMSCREEN_LANDING_DIR", str(landing))
    corrupt_checksum(landing / D3)
    got = airflow_tasks.ingest_and_validate(D4)
    assert got["validation"] == "promoted"
    assert got["nights"] == {D1: "promoted", D2: "promoted", D3: "refused", D4: "promoted"}
    with pytest.raises(airflow_tasks.ExtractRejected, match="sha256"):
        airflow_tasks.ingest_and_validate(D3)


def test_reversal_waits_for_the_night_holding_its_original(tmp_path, capsys):
    """Night 3 refunds a settlement of night 2; while night 2 is refused, night 3 waits
    (validated now, its reversal would be quarantined and the original, arriving later,
    screened as never refunded)."""
    settlements, items = _world()
    settlements.append({"settlement_id": "REV1", "patient_id": "P005", "institution_id": H3,
                        "visit_type": "outpatient", "admit_date": D2, "settle_date": D3,
                        "reversal_of": "N2S0", "doctor_id": "D000000000001"})
    items.append({"settlement_id": "REV1", "item_code": "CON01", "service_date": D2, "quantity": -1,
                  "unit_price": 30})
    items.append({"settlement_id": "REV1", "item_code": "LAB01", "service_date": D2, "quantity": -1,
                  "unit_price": 20})
    builder.write_extracts(tmp_path / "pristine", settlements, items)
    landing = tmp_path / "landing"
    shutil.copytree(tmp_path / "pristine", landing)
    st = load_settings(data_dir=tmp_path / "data")
    corrupt_row_count(landing / D2)
    assert claimscreen(st, "ingest", "--landing", str(landing)) == 2
    err = capsys.readouterr().err
    assert f"WAITING extract {D3}" in err and "REV1 reverses N2S0" in err and f"waits for {D2} (refused)" in err
    assert lake.ingested_dates(st) == [D1, D4]
    assert states(st, landing)[D3] == "waiting"
    shutil.rmtree(landing / D2)
    shutil.copytree(tmp_path / "pristine" / D2, landing / D2)
    assert claimscreen(st, "ingest", "--landing", str(landing)) == 0
    assert lake.ingested_dates(st) == NIGHTS
    assert not validate.quarantined(st, D3), "the reversal found its original"
