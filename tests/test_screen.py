"""Screening end to end: the three skeleton detectors, history, stable findings, publishing."""
import json
import os

import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline import contract, detect, ingest, screen, synth, validate
from pipeline.detect import FINDINGS_SCHEMA
from pipeline.rules_config import load_rules
from pipeline.settings import load_settings
from tests.conftest import PLANTED

SKELETON = ("duplicate_billing", "split_hospitalization", "after_death")


def _load(settings, landing, upto=None, gate=False):
    """Ingest every landed night; promote it through the full validation gate only when
    asked (the gate costs seconds of fixed Great Expectations work per night and has its
    own tests; detector behaviour does not depend on it for clean input)."""
    for d in ingest.landed_dates(landing):
        if upto and d > upto:
            break
        ingest.ingest_one(settings, landing, d)
        if gate:
            validate.validate(settings, d)
        else:
            validate.promote(settings, d)


def _findings(run):
    return duckdb.sql(f"SELECT * FROM '{run}/findings.parquet'").fetchall()


def _by_detector(run):
    rows = duckdb.sql(f"SELECT detector_id, entity_id FROM '{run}/findings.parquet'").fetchall()
    out = {}
    for d, e in rows:
        out.setdefault(d, set()).add(e)
    return out


def test_planted_cases_found_and_lookalikes_not(settings, planted_landing):
    _load(settings, planted_landing, gate=True)
    run = screen.screen(settings, "2026-10-12")
    got = _by_detector(run)
    for det in SKELETON:
        assert got.get(det, set()) == PLANTED[det], det


def test_published_tables_match_the_output_contract(settings, planted_landing):
    _load(settings, planted_landing)
    run = screen.screen(settings, "2026-10-12")
    assert pq.read_schema(run / "findings.parquet").names == FINDINGS_SCHEMA.names
    inst = pq.read_table(run / "institutions.parquet")
    assert inst.schema.names == ["run_date", "institution_id", "rank", "score", "amount_at_risk",
                                 "n_findings", "top_detectors"]
    assert str(inst.schema.field("rank").type) == "int32"
    assert str(inst.schema.field("amount_at_risk").type) == "decimal128(14, 2)"
    ranks = inst.column("rank").to_pylist()
    assert ranks == sorted(ranks) and ranks[0] == 1
    # dense ranking: no gaps
    assert sorted(set(ranks)) == list(range(1, max(ranks) + 1))
    assert pq.read_schema(run / "rings.parquet").names == ["run_date", "ring_id", "member_type",
                                                           "member_id", "ring_score", "n_members"]
    manifest = json.loads((run / "_MANIFEST.json").read_text())
    listed = {f["path"]: f for f in manifest["files"]}
    for name in ("institutions.parquet", "findings.parquet", "rings.parquet"):
        assert listed[name]["sha256"] == contract.sha256_file(run / name)
        assert listed[name]["rows"] == pq.ParquetFile(run / name).metadata.num_rows
    assert manifest["parameters"]["rules_version"]
    assert manifest["code_version"]


def test_amount_at_risk_is_counted_once_per_settlement(settings, planted_landing):
    _load(settings, planted_landing)
    run = screen.screen(settings, "2026-10-12")
    inst = dict(duckdb.sql(f"SELECT institution_id, amount_at_risk FROM '{run}/institutions.parquet'").fetchall())
    fund = dict(duckdb.sql(f"SELECT settlement_id, fund_paid FROM read_parquet('{settings.lake_dir}/extracts/*/settlements/*.parquet')").fetchall())
    # the claim after death puts the whole settlement at risk, once
    assert inst["P00000000001"] == fund["S10"]
    assert inst["H00000000003"] > 0 and inst.get("H00000000002", 0) == 0


def test_split_across_two_extracts_is_found_once_with_a_stable_id(settings, planted_landing):
    _load(settings, planted_landing, upto="2026-10-05")
    first = screen.screen(settings, "2026-10-05")
    assert "split_hospitalization" not in _by_detector(first)      # readmission not yet settled
    _load(settings, planted_landing)
    run12 = screen.screen(settings, "2026-10-12")
    split = duckdb.sql(f"SELECT finding_id, first_seen FROM '{run12}/findings.parquet' "
                       f"WHERE detector_id = 'split_hospitalization'").fetchall()
    assert len(split) == 1
    assert str(split[0][1]) == "2026-10-12"
    run13 = screen.screen(settings, "2026-10-13")
    again = duckdb.sql(f"SELECT finding_id, first_seen FROM '{run13}/findings.parquet' "
                       f"WHERE detector_id = 'split_hospitalization'").fetchall()
    assert again == split            # same id, still first seen on the 12th: not news again


def test_late_death_record_and_late_reversal(settings, planted_landing):
    _load(settings, planted_landing, upto="2026-10-09")
    before = screen.screen(settings, "2026-10-09")
    assert "after_death" not in _by_detector(before)              # death not yet registered
    _load(settings, planted_landing)
    after = screen.screen(settings, "2026-10-12")
    assert _by_detector(after)["after_death"] == {"S10"}
    # S13 was reversed (S14): its duplicate with S12 is never flagged
    assert not any("S13" in (f[9] or []) for f in _findings(after))


def test_reversal_withdraws_an_open_finding(settings, planted_landing, tmp_path):
    from pipeline import builder
    _load(settings, planted_landing)
    run = screen.screen(settings, "2026-10-12")
    assert "S07" in _by_detector(run)["duplicate_billing"]
    builder.write_extracts(planted_landing, [dict(
        settlement_id="S07R", patient_id="P002", institution_id="H00000000003", visit_type="outpatient",
        admit_date="2026-10-03", settle_date="2026-10-14", reversal_of="S07",
        total_amount=-40, fund_paid=-28, self_paid=-12)], [], extra_dates=[])
    # the builder writes the default reference again with its first date: drop it
    for p in (planted_landing / "2026-10-14" / "reference").glob("*.parquet"):
        p.unlink()
    (planted_landing / "2026-10-14" / "reference").rmdir()
    contract.write_manifest(planted_landing / "2026-10-14", "2026-10-14", "test")
    _load(settings, planted_landing)
    run14 = screen.screen(settings, "2026-10-14")
    assert "S07" not in _by_detector(run14).get("duplicate_billing", set())


def test_rerun_gives_the_same_answer_and_swaps_atomically(settings, planted_landing):
    _load(settings, planted_landing)
    a = screen.screen(settings, "2026-10-12")
    target_a = os.readlink(a)
    rows_a = sorted(_findings(a))
    inst_a = duckdb.sql(f"SELECT * FROM '{a}/institutions.parquet'").fetchall()
    b = screen.screen(settings, "2026-10-12")
    assert os.readlink(b) != target_a                   # a new immutable version ...
    assert sorted(_findings(b)) == rows_a               # ... with the same answer
    assert duckdb.sql(f"SELECT * FROM '{b}/institutions.parquet'").fetchall() == inst_a


def test_backfill_rescreens_a_range(settings, planted_landing):
    outs = screen.backfill(settings, "2026-10-03", "2026-10-05", landing=planted_landing)
    assert [p.name for p in outs] == ["2026-10-03", "2026-10-04", "2026-10-05"]
    assert all((p / "_MANIFEST.json").exists() for p in outs)


def test_detectors_run_on_an_empty_lake(settings):
    stats = detect.detect(settings, "2026-10-01")
    assert stats and all(s["findings"] == 0 for s in stats)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    out = {}
    for fraud in (True, False):
        base = root / ("fraud" if fraud else "clean")
        synth.generate(base, days=12, scale=0.15, seed=11, fraud=fraud)
        s = load_settings(data_dir=base)
        _load(s, base / "landing")
        last = ingest.landed_dates(base / "landing")[-1]
        out[fraud] = (base, screen.screen(s, last))
    return out


@pytest.mark.parametrize("detector_id", SKELETON)
def test_generated_month_every_planted_case_found(generated, detector_id):
    base, run = generated[True]
    missed = duckdb.sql(f"""
        SELECT c.case_id FROM '{base}/truth/cases.parquet' c
        WHERE c.scheme = '{detector_id}'
          AND NOT EXISTS (SELECT 1 FROM '{run}/findings.parquet' f
                          WHERE f.detector_id = c.scheme
                            AND len(list_intersect(f.settlement_ids, c.settlement_ids)) > 0)
    """).fetchall()
    n = duckdb.sql(f"SELECT count(*) FROM '{base}/truth/cases.parquet' WHERE scheme = '{detector_id}'").fetchall()[0][0]
    assert n > 0 and missed == []


@pytest.mark.parametrize("detector_id", SKELETON)
def test_generated_month_without_fraud_flags_nothing(generated, detector_id):
    _, run = generated[False]
    n = duckdb.sql(f"SELECT count(*) FROM '{run}/findings.parquet' WHERE detector_id = '{detector_id}'").fetchall()[0][0]
    assert n == 0


def test_dismissal_closes_a_finding_from_its_date_on(settings, planted_landing):
    from pipeline import dismiss
    _load(settings, planted_landing)
    run = screen.screen(settings, "2026-10-12")
    fid = duckdb.sql(f"SELECT finding_id FROM '{run}/findings.parquet' "
                     f"WHERE detector_id = 'duplicate_billing'").fetchall()[0][0]
    dismiss.dismiss(settings, fid, "reviewed: two orders, both given", by="inspector", on="2026-10-13")
    assert fid in {r[1] for r in _findings(screen.screen(settings, "2026-10-12"))}   # history unchanged
    assert fid not in {r[1] for r in _findings(screen.screen(settings, "2026-10-13"))}
    with pytest.raises(ValueError):
        dismiss.dismiss(settings, "../../etc", "x", by="y")


def test_partial_feature_build_gives_the_same_findings(settings, planted_landing):
    """Only what a detector reads is materialised; anything else is computed from its SQL."""
    from pipeline import features
    _load(settings, planted_landing)
    run_date = "2026-10-12"
    dup = detect.selected_detectors(load_rules(settings.rules_file), ["duplicate_billing", "split_hospitalization"])
    rows = features.build(settings, run_date, names=features.needed_by(dup))
    assert set(rows) == {"settled", "claims", "line_facts", "stays"}     # no patient_days, no covisit_pairs
    assert features.is_fresh(settings, run_date, names={"stays"})
    assert not features.is_fresh(settings, run_date, names={"patient_days"})
    partial = {s["detector_id"]: s["findings"] for s in detect.detect(settings, run_date)}
    partial_rows = {d: pq.read_table(detect.findings_dir(settings, run_date) / f"{d}.parquet")
                    .drop_columns(["run_date"]).to_pylist() for d in partial}
    features.build(settings, run_date, force=True)
    full = {s["detector_id"]: s["findings"] for s in detect.detect(settings, run_date)}
    full_rows = {d: pq.read_table(detect.findings_dir(settings, run_date) / f"{d}.parquet")
                 .drop_columns(["run_date"]).to_pylist() for d in full}
    assert partial == full and partial_rows == full_rows
    assert full["duplicate_billing"] >= 1 and full["split_hospitalization"] >= 1


def test_findings_computed_by_other_code_are_recomputed(settings, planted_landing, monkeypatch):
    """Same lake and parameters, but the detector file changed: its findings are stale."""
    _load(settings, planted_landing)
    run_date = "2026-10-12"
    screen.screen(settings, run_date, render=False)
    assert screen.stale_detectors(settings, run_date, list(SKELETON)) == []
    real = detect.code_hash
    monkeypatch.setattr(detect, "code_hash",
                        lambda det: "edited" if det.id == "after_death" else real(det))
    assert screen.stale_detectors(settings, run_date, list(SKELETON)) == ["after_death"]
