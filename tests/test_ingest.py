"""Ingest: whole-extract refusals with clear messages, nothing lost, idempotent re-delivery."""
import json
import multiprocessing
import shutil

import pyarrow.parquet as pq
import pytest

from pipeline import contract, ingest, lake, validate
from tests.conftest import tree_digest


def _refused(settings, landing, date, *fragments):
    before_lake = tree_digest(settings.lake_dir / "extracts") | tree_digest(settings.lake_dir / "incoming")
    before_landing = tree_digest(landing)
    with pytest.raises(ingest.ExtractRefused) as e:
        ingest.ingest_one(settings, landing, date)
    text = str(e.value)
    for f in fragments:
        assert f in text, text
    after = tree_digest(settings.lake_dir / "extracts") | tree_digest(settings.lake_dir / "incoming")
    assert after == before_lake, "the lake changed on a refused extract"
    assert tree_digest(landing) == before_landing, "landing files were modified"
    assert date not in lake.ingested_dates(settings)
    return text


def test_missing_manifest_is_refused(settings, planted_landing):
    (planted_landing / "2026-10-03" / "_MANIFEST.json").unlink()
    _refused(settings, planted_landing, "2026-10-03", "_MANIFEST.json", "missing", "incomplete")


def test_checksum_mismatch_is_refused(settings, planted_landing):
    m = json.loads((planted_landing / "2026-10-03" / "_MANIFEST.json").read_text())
    m["files"][0]["sha256"] = "0" * 64
    (planted_landing / "2026-10-03" / "_MANIFEST.json").write_text(json.dumps(m))
    _refused(settings, planted_landing, "2026-10-03", m["files"][0]["path"], "sha256")


def test_row_count_mismatch_is_refused(settings, planted_landing):
    mp = planted_landing / "2026-10-03" / "_MANIFEST.json"
    m = json.loads(mp.read_text())
    entry = next(f for f in m["files"] if f["path"].startswith("settlements/"))
    entry["rows"] += 1
    mp.write_text(json.dumps(m))
    _refused(settings, planted_landing, "2026-10-03", entry["path"], "rows, manifest says")


def test_truncated_parquet_is_refused(settings, planted_landing):
    ex = planted_landing / "2026-10-03"
    part = ex / "settlement_items" / "part-0000.parquet"
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    # the checksum is updated so the damage is caught by the Parquet check itself
    mp = ex / "_MANIFEST.json"
    m = json.loads(mp.read_text())
    for f in m["files"]:
        if f["path"] == "settlement_items/part-0000.parquet":
            f["sha256"] = contract.sha256_file(part)
    mp.write_text(json.dumps(m))
    _refused(settings, planted_landing, "2026-10-03", "settlement_items/part-0000.parquet",
             "not readable Parquet")


def test_missing_column_is_refused(settings, planted_landing):
    ex = planted_landing / "2026-10-03"
    part = ex / "settlements" / "part-0000.parquet"
    pq.write_table(pq.read_table(part).drop(["fund_paid"]), part)
    contract.write_manifest(ex, "2026-10-03", "test")
    _refused(settings, planted_landing, "2026-10-03", "column 'fund_paid' is missing")


def test_wrong_type_is_refused(settings, planted_landing):
    ex = planted_landing / "2026-10-03"
    part = ex / "settlements" / "part-0000.parquet"
    t = pq.read_table(part)
    t = t.set_column(t.schema.get_field_index("total_amount"), "total_amount",
                     t["total_amount"].cast("float64"))
    pq.write_table(t, part)
    contract.write_manifest(ex, "2026-10-03", "test")
    _refused(settings, planted_landing, "2026-10-03", "'total_amount' has type double")


def test_unlisted_and_missing_files_are_refused(settings, planted_landing):
    ex = planted_landing / "2026-10-05"
    shutil.copy(ex / "settlements" / "part-0000.parquet", ex / "settlements" / "part-0001.parquet")
    text = _refused(settings, planted_landing, "2026-10-05", "part-0001.parquet", "not in the manifest")
    (ex / "settlements" / "part-0001.parquet").unlink()
    (ex / "settlement_items" / "part-0000.parquet").unlink()
    _refused(settings, planted_landing, "2026-10-05", "listed in the manifest but missing")
    assert text


def test_redelivery_changes_nothing(settings, planted_landing):
    first = ingest.ingest(settings, planted_landing)
    assert [r.status for r in first] == ["ingested"] * len(first)
    for r in first:
        validate.validate(settings, r.extract_date)
    snapshot = tree_digest(settings.lake_dir / "extracts")
    again = [ingest.ingest_one(settings, planted_landing, r.extract_date) for r in first]
    assert {r.status for r in again} == {"unchanged"}
    assert ingest.ingest(settings, planted_landing) == []     # nothing new
    assert tree_digest(settings.lake_dir / "extracts") == snapshot


def test_changed_redelivery_needs_replace(settings, planted_landing):
    ingest.ingest_one(settings, planted_landing, "2026-10-03")
    validate.validate(settings, "2026-10-03")
    ex = planted_landing / "2026-10-03"
    contract.write_manifest(ex, "2026-10-03", "a different producer run")
    with pytest.raises(ingest.ExtractRefused, match="--replace"):
        ingest.ingest_one(settings, planted_landing, "2026-10-03")
    r = ingest.ingest_one(settings, planted_landing, "2026-10-03", replace=True)
    assert r.status == "replaced"
    validate.validate(settings, "2026-10-03")
    assert "2026-10-03" in lake.ingested_dates(settings)


def _ingest_all(data_dir, landing):
    from pipeline.settings import load_settings
    s = load_settings(data_dir=data_dir)
    out = []
    for r in ingest.ingest(s, landing):
        out.append(r.status)
    return out


def test_concurrent_ingests_do_not_corrupt_the_lake(settings, planted_landing):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.starmap(_ingest_all, [(settings.data_dir, planted_landing)] * 2)
    statuses = sorted(s for r in results for s in r)
    n = len(ingest.landed_dates(planted_landing))
    assert statuses.count("ingested") == n            # each extract landed exactly once
    assert set(statuses) <= {"ingested", "unchanged"}
    for d in ingest.landed_dates(planted_landing):
        staged = ingest.incoming_dir(settings, d)
        assert (staged / "_INGESTED.json").exists()
    assert not any((settings.lake_dir / ".staging").glob("*/*"))
