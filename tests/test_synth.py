"""Tests of the synthetic data generator (tiny scale, a few seconds)."""
from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pyarrow as pa
import pytest

from pipeline import contract
from pipeline.synth import CASES_SCHEMA, generate
from pipeline.synth.check import violations
from pipeline.synth.schemes import registry

DAYS, SCALE = 12, 0.05


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synth")
    return out, generate(out, days=DAYS, scale=SCALE, seed=3)


@pytest.fixture(scope="module")
def honest(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("honest")
    return out, generate(out, days=DAYS, scale=SCALE, seed=3, fraud=False)


def _read(landing: Path, table: str) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted(landing.glob(f"*/{table}/*.parquet"))])


def test_contract_round_trip(run):
    out, summary = run
    landing = out / "landing"
    dates = sorted(p.name for p in landing.iterdir())
    assert dates == summary["dates"] and len(dates) == DAYS
    for d in dates:
        ddir = landing / d
        man = contract.Manifest.parse((ddir / contract.MANIFEST_NAME).read_text())
        assert man.extract_date == d
        listed = {f.path for f in man.files}
        on_disk = {p.relative_to(ddir).as_posix() for p in ddir.rglob("*.parquet")}
        assert listed == on_disk
        for f in man.files:
            p = ddir / f.path
            assert contract.sha256_file(p) == f.sha256
            assert pq.ParquetFile(p).metadata.num_rows == f.rows
            schema = contract.ALL_TABLES[contract.table_of(f.path)]
            got = pq.read_schema(p).remove_metadata()
            assert got.names == schema.names
            assert [x.type for x in got] == [x.type for x in schema]
            t = pq.read_table(p)
            for fld in schema:
                if not fld.nullable:
                    assert t[fld.name].null_count == 0, (f.path, fld.name)
        assert (ddir / "settlements").is_dir() and (ddir / "settlement_items").is_dir()
    assert {p.stem for p in (landing / dates[0] / "reference").glob("*.parquet")} == set(contract.REFERENCE_TABLES)
    snaps = sorted(landing.glob("*/reference/insured_persons.parquet"))
    assert len(snaps) == 2, "a later insured_persons snapshot carries newly recorded deaths"
    d0 = pq.read_table(snaps[0])["death_date"].null_count
    d1 = pq.read_table(snaps[1])["death_date"].null_count
    assert d1 < d0


def test_enums_and_keys(run):
    out, _ = run
    st = _read(out / "landing", "settlements")
    it = _read(out / "landing", "settlement_items")
    assert len(set(st["settlement_id"].to_pylist())) == st.num_rows
    keys = list(zip(it["settlement_id"].to_pylist(), it["line_no"].to_pylist()))
    assert len(set(keys)) == len(keys)
    assert set(it["settlement_id"].to_pylist()) == set(st["settlement_id"].to_pylist())
    assert set(st["visit_type"].to_pylist()) <= set(contract.VISIT_TYPES)
    assert set(it["item_category"].to_pylist()) <= set(contract.ITEM_CATEGORIES)
    ref = out / "landing" / sorted(p.name for p in (out / "landing").iterdir())[0] / "reference"
    cat = set(pq.read_table(ref / "catalog.parquet")["item_code"].to_pylist())
    assert set(it["item_code"].to_pylist()) <= cat
    persons = set(pq.read_table(ref / "insured_persons.parquet")["patient_id"].to_pylist())
    assert set(st["patient_id"].to_pylist()) <= persons
    docs = set(pq.read_table(ref / "practitioners.parquet")["doctor_id"].to_pylist())
    assert set(x for x in st["doctor_id"].to_pylist() if x) <= docs


def test_money_identities(run):
    out, _ = run
    st = _read(out / "landing", "settlements").to_pylist()
    it = _read(out / "landing", "settlement_items").to_pylist()
    lines: dict[str, Decimal] = {}
    for r in it:
        exp = (r["quantity"] * r["unit_price"]).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        assert r["amount"] == exp, r
        assert abs(r["fund_eligible_amount"]) <= abs(r["amount"])
        lines[r["settlement_id"]] = lines.get(r["settlement_id"], Decimal(0)) + r["amount"]
        if r["trace_codes"] is not None:
            assert len(r["trace_codes"]) == abs(int(r["quantity"]))
    for s in st:
        assert s["total_amount"] == s["fund_paid"] + s["self_paid"]
        assert s["total_amount"] == lines[s["settlement_id"]]
        if s["reversal_of"] is None:
            assert Decimal(0) <= s["fund_paid"] <= s["total_amount"]
            assert s["settle_date"] >= s["admit_date"]
        if s["visit_type"] == "inpatient":
            assert s["discharge_date"] is not None and s["discharge_date"] >= s["admit_date"]


def test_reversals_name_earlier_settlements(run):
    out, _ = run
    st = _read(out / "landing", "settlements").to_pylist()
    by_id = {s["settlement_id"]: s for s in st}
    revs = [s for s in st if s["reversal_of"]]
    assert revs, "some settlements are reversed"
    for r in revs:
        o = by_id[r["reversal_of"]]
        assert o["settle_date"] < r["settle_date"]
        assert r["total_amount"] == -o["total_amount"] and r["fund_paid"] == -o["fund_paid"]


def test_determinism(run, tmp_path):
    out, _ = run
    generate(tmp_path, days=DAYS, scale=SCALE, seed=3)
    for man in sorted((out / "landing").glob("*/_MANIFEST.json")):
        other = tmp_path / "landing" / man.parent.name / "_MANIFEST.json"
        a, b = json.loads(man.read_text()), json.loads(other.read_text())
        assert a["files"] == b["files"]
    for name in ("cases.parquet", "lookalikes.parquet"):
        assert pq.read_table(out / "truth" / name).equals(pq.read_table(tmp_path / "truth" / name))


def test_truth(run):
    out, summary = run
    truth = out / "truth"
    assert not (out / "landing" / "truth").exists()
    assert (truth / "README.md").is_file()
    cases = pq.read_table(truth / "cases.parquet")
    assert cases.schema.names == CASES_SCHEMA.names
    assert set(summary["planted"]) == set(registry())
    st_ids = set(_read(out / "landing", "settlements")["settlement_id"].to_pylist())
    for c in cases.to_pylist():
        assert c["scheme"] in registry()
        assert set(c["settlement_ids"]) <= st_ids
        if c["entity_type"] == "settlement":
            assert c["entity_id"] in c["settlement_ids"]
    la = pq.read_table(truth / "lookalikes.parquet").to_pylist()
    kinds = {r["kind"] for r in la}
    assert {"readmission_unrelated_dx", "transfer_same_dx", "two_departments_same_day",
            "price_at_cap", "reversal", "shared_phone_household"} <= kinds
    for r in la:
        assert set(r["settlement_ids"]) <= st_ids


def test_planted_cases_break_their_rule_only(run):
    out, _ = run
    v = violations(out / "landing")
    cases = pq.read_table(out / "truth" / "cases.parquet").to_pylist()
    evidence: dict[str, set] = {}
    for c in cases:
        evidence.setdefault(c["scheme"], set()).update(c["settlement_ids"])
        if c["scheme"] in v:
            if c["entity_type"] == "settlement":
                assert c["entity_id"] in v[c["scheme"]], c
            else:
                assert set(c["settlement_ids"]) & v[c["scheme"]], c
    for rule, ids in v.items():
        assert ids <= evidence.get(rule, set()), (rule, ids - evidence.get(rule, set()))


def test_no_fraud_plants_nothing_and_breaks_no_rule(honest):
    out, summary = honest
    assert summary["planted"] == {} and summary["cases"] == 0
    assert pq.read_table(out / "truth" / "cases.parquet").num_rows == 0
    assert pq.read_table(out / "truth" / "lookalikes.parquet").num_rows > 0
    v = violations(out / "landing")
    assert {k: sorted(x)[:3] for k, x in v.items() if x} == {}
