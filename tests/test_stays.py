"""Stay models on a generated month: bed-hanging (挂床) stays and false-admission rings
(虚假住院团伙) are found; the honest stays that look like them are left alone.

One month (standard world, scale 0.3, 30 nights) with the planted bed-hanging stays (four
variants), the false-hospitalisation culprits and their recruits, and the honest stay
look-alikes (long stays with daily care, pre-surgery waits, palliative care, deaths in
hospital settled afterwards, a household admitted together after an accident).
"""
from __future__ import annotations

import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline import evaluate, ingest, screen, synth, validate
from pipeline.settings import load_settings

STAY_LOOKALIKES = {"long_stay_daily_care", "pre_surgery_wait", "palliative_care",
                   "death_in_hospital_settled_after", "household_admitted_together"}


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    root = tmp_path_factory.mktemp("stays")
    summary = synth.generate(root, days=30, scale=0.3, seed=11)
    st = load_settings(data_dir=root / "data")
    for r in ingest.ingest(st, root / "landing"):
        validate.promote(st, r.extract_date)
    run = screen.screen(st, summary["dates"][-1], render=False)
    return root, run, evaluate.evaluate(st, root / "truth")


def _detector(result, det):
    return next(d for d in result["detectors"] if d["detector_id"] == det)


def test_bed_hanging_finds_the_planted_stays(month):
    root, run, result = month
    d = _detector(result, "bed_hanging")
    assert d["cases"] >= 4 and d["recall"] >= 0.8, d
    assert d["honest_share"] <= 0.005, d
    con = duckdb.connect()
    rows = con.sql(f"""SELECT entity_type, reason, evidence, amount_at_risk
                       FROM read_parquet('{run}/findings.parquet') WHERE detector_id = 'bed_hanging'""").fetchall()
    assert rows and all(r[0] == "settlement" for r in rows)
    assert all("assessed days" in r[1] and r[3] > 0 for r in rows)


def test_bed_hanging_leaves_the_honest_stay_look_alikes_alone(month):
    root, run, result = month
    la = pq.read_table(root / "truth" / "lookalikes.parquet").to_pylist()
    kinds = {r["kind"] for r in la}
    assert STAY_LOOKALIKES <= kinds, STAY_LOOKALIKES - kinds
    sids = {s for r in la if r["kind"] in STAY_LOOKALIKES for s in r["settlement_ids"]}
    con = duckdb.connect()
    flagged = {r[0] for r in con.sql(f"""
        SELECT unnest(settlement_ids) FROM read_parquet('{run}/findings.parquet')
        WHERE detector_id IN ('bed_hanging', 'false_hospitalization')""").fetchall()}
    assert not (flagged & sids), sorted(flagged & sids)


def test_false_hospitalization_publishes_the_admission_ring(month):
    root, run, result = month
    truth = pq.read_table(root / "truth" / "ring_members.parquet").to_pylist()
    planted = {r["ring_id"] for r in truth if r["ring_id"].startswith("false_hospitalization")}
    assert planted
    best = result["rings"]["best_jaccard"]
    assert all(best[r] >= 0.7 for r in planted), {r: best[r] for r in planted}
    con = duckdb.connect()
    rings = con.sql(f"""SELECT ring_id, member_type, member_id FROM read_parquet('{run}/rings.parquet')
                        WHERE ring_id LIKE 'FH-%'""").fetchall()
    hospitals = {m for _, t, m in rings if t == "institution"}
    culprits = {r["member_id"] for r in truth if r["ring_id"] in planted and r["member_type"] == "institution"}
    assert culprits <= hospitals
    # each published ring is one hospital and its patients
    assert all(rid == f"FH-{m}" for rid, t, m in rings if t == "institution")


def test_collusion_rings_are_still_matched(month):
    _, _, result = month
    r = result["rings"]
    assert r["found"] == r["planted"], r


def test_false_hospitalization_ring_takes_in_weaker_recruits_of_the_same_villages(month, tmp_path):
    """Raise the reporting bar so only a few recruits pass it: the others, weaker but sharing
    an address or phone with them at that hospital, still join the stay findings and the ring."""
    import yaml

    from pipeline import ROOT, detect
    root, run, _ = month
    con = duckdb.connect()
    scores = sorted((r[0] for r in con.sql(f"""
        SELECT score FROM read_parquet('{run}/findings.parquet')
        WHERE detector_id = 'false_hospitalization' AND entity_type = 'settlement'""").fetchall()),
        reverse=True)
    assert len(scores) >= 6
    doc = yaml.safe_load((ROOT / "data" / "rules.yaml").read_text(encoding="utf-8"))
    doc["defaults"]["false_hospitalization"].update(min_score=float(scores[3]), ring_min_score=float(scores[-1]))
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    st = load_settings(data_dir=root / "data", rules_file=rules)
    detect.detect(st, run.name, ["false_hospitalization"])
    out = detect.findings_dir(st, run.name)
    rows = con.sql(f"""SELECT patient_id, CAST(json_extract(evidence, '$.via_ring') AS BOOLEAN), reason
                       FROM read_parquet('{out}/false_hospitalization.parquet')
                       WHERE entity_type = 'settlement'""").fetchall()
    strong = {p for p, via, _ in rows if not via}
    linked = {p for p, via, _ in rows if via}
    assert len(strong) >= 3 and linked, (strong, linked)
    assert all("shares an address or phone" in reason for _, via, reason in rows if via)
    ring = {r[0] for r in con.sql(f"""SELECT member_id FROM read_parquet('{out}/false_hospitalization.rings.parquet')
                                     WHERE member_type = 'patient'""").fetchall()}
    assert linked <= ring, (linked, ring)
