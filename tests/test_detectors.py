"""The rule library against its golden cases, and every detector against the contract.

Golden cases live in ``tests/detectors/<detector_id>/*.yaml``, one small planted world
each (see tests/detectors/README.md for the format): settlements and charge lines
written as contract extracts by pipeline.builder, ingested, validated and screened by
``pipeline.detect.detect`` for that one detector, then compared with the expected
findings (entity, evidence settlements, money at risk).
"""
from __future__ import annotations

import json
import re
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline import ROOT, builder, detect, features, ingest, registry, screen, validate
from pipeline.rules_config import load_rules
from pipeline.settings import load_settings

GOLDEN = ROOT / "tests" / "detectors"
RULES = ROOT / "data" / "rules.yaml"
DETECTORS = registry.all_detectors()
DETECTOR_IDS = [d.id for d in DETECTORS]
CASES = sorted(GOLDEN.glob("*/*.yaml"))


# --------------------------------------------------------------------------- helpers

def load_case(path: Path) -> dict:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in ("description", "settlements", "expected"):
        assert key in case, f"{path}: golden case needs {key!r}"
    return case


def _complete_rows(case: dict) -> tuple[list[dict], list[dict]]:
    """Fill what the builder cannot guess: a line's date defaults to its settlement's
    admission, a reversal row's amounts default to the negatives of the original's."""
    settlements = [dict(s) for s in case["settlements"]]
    admit = {s["settlement_id"]: s.get("admit_date") for s in settlements}
    items = [dict(i) for i in case.get("items") or []]
    for it in items:
        it.setdefault("service_date", admit[it["settlement_id"]])
    done = builder.complete_settlements(
        [s for s in settlements if not s.get("reversal_of")],
        builder.complete_items(items, {r["item_code"]: r["category"]
                                       for r in builder.DEFAULT_REFERENCE["catalog"]}))
    by_id = {s["settlement_id"]: s for s in done}
    for s in settlements:
        if s.get("reversal_of"):
            orig = by_id[s["reversal_of"]]
            s.setdefault("patient_id", orig["patient_id"])
            s.setdefault("institution_id", orig["institution_id"])
            s.setdefault("visit_type", orig["visit_type"])
            s.setdefault("admit_date", orig["admit_date"])
            if orig.get("discharge_date"):
                s.setdefault("discharge_date", orig["discharge_date"])
            s.setdefault("total_amount", -orig["total_amount"])
            s.setdefault("fund_paid", -orig["fund_paid"])
            s.setdefault("self_paid", -orig["self_paid"])
    return settlements, items


def build_world(case: dict, tmp: Path, detector_id: str | None = None) -> "Settings":
    """Write the case as extracts, ingest and validate them; settings for that lake."""
    settlements, items = _complete_rows(case)
    builder.write_extracts(tmp / "landing", settlements, items, reference=case.get("reference"),
                           extra_dates=[str(case["run_date"])] if case.get("run_date") else ())
    rules_file = tmp / "rules.yaml"
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    if case.get("params") and detector_id:
        doc["defaults"].setdefault(detector_id, {}).update(case["params"])
    rules_file.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    st = load_settings(data_dir=tmp / "data", rules_file=rules_file)
    for r in ingest.ingest(st, tmp / "landing"):
        validate.promote(st, r.extract_date)   # detector tests skip the gate: tests/test_validation.py covers it
    return st


def run_date_of(case: dict) -> str:
    if case.get("run_date"):
        return str(case["run_date"])
    dates = [str(s.get("settle_date") or s.get("discharge_date") or s["admit_date"])
             for s in case["settlements"]]
    return max(dates)


def read_findings(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def assert_contract(path: Path) -> None:
    """The findings file has the contract's columns, in order, with its types."""
    schema = pq.read_schema(path)
    assert [(f.name, f.type) for f in schema] == [(f.name, f.type) for f in detect.FINDINGS_SCHEMA]


def _norm(f: dict) -> tuple:
    return (str(f["entity_id"]), tuple(sorted(f["settlement_ids"])),
            Decimal(str(f["amount_at_risk"])).quantize(Decimal("0.01")))


# --------------------------------------------------------------------------- registry walk

@pytest.mark.parametrize("det", DETECTORS, ids=DETECTOR_IDS)
def test_header_is_complete(det):
    again = registry.parse(det.path)
    assert again.id == det.id
    assert det.name_en and det.name_zh and det.scheme and det.score and det.false_positives
    for p in det.params:
        assert p.description, f"{det.id}: parameter {p.name} needs a description"
    views = {"settlements", "settlement_items", "settlement_items_delivered", "reversals",
             "insured_persons", "institutions", "practitioners", "catalog"}
    assert set(det.reads) <= views | set(features.dependencies())


@pytest.mark.parametrize("det", DETECTORS, ids=DETECTOR_IDS)
def test_reads_names_every_feature_the_detector_reads(det):
    """`reads` decides which features a partial run materialises: it must be complete."""
    text = re.sub(r"--[^\n]*", "", det.path.read_text(encoding="utf-8"))
    used = {m.group(2) for m in re.finditer(r"\b(FROM|JOIN)\s+([a-z_]+)\b", text)}
    assert used & set(features.dependencies()) <= set(det.reads), f"{det.id} reads {sorted(used)}"


def test_feature_closure_builds_only_what_is_needed(tmp_path):
    assert features.closure({"patient_days"}) == {"settled", "claims", "line_facts", "lines", "patient_days"}
    over_daily = registry.get("over_daily_quantity")
    assert "covisit_pairs" not in features.needed_by([over_daily])
    with pytest.raises(KeyError):
        features.closure({"no_such_feature"})


@pytest.mark.parametrize("det", DETECTORS, ids=DETECTOR_IDS)
def test_rules_yaml_lists_every_parameter(det):
    rules = load_rules(RULES)
    assert set(rules.defaults.get(det.id, {})) == {p.name for p in det.params}, \
        f"data/rules.yaml defaults for {det.id} must list exactly its parameters"
    # the configured default equals the documented header default
    for p in det.params:
        assert rules.defaults[det.id][p.name] == p.default, (det.id, p.name)


@pytest.fixture(scope="module")
def empty_lake(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("empty")
    return load_settings(data_dir=tmp / "data")


@pytest.mark.parametrize("det", DETECTORS, ids=DETECTOR_IDS)
def test_runs_on_an_empty_lake_and_matches_the_contract(det, empty_lake):
    stats = detect.detect(empty_lake, "2026-10-01", [det.id])
    assert stats[0]["findings"] == 0
    out = detect.findings_dir(empty_lake, "2026-10-01") / f"{det.id}.parquet"
    assert_contract(out)


@pytest.mark.parametrize("det", DETECTORS, ids=DETECTOR_IDS)
def test_has_golden_cases(det):
    if det.family in ("model", "graph"):
        # models and graphs judge a case against its peers, so their planted positives and
        # benign look-alikes live in a planted world: a test named after the detector
        import re
        here = Path(__file__).resolve().parent
        named = [p.name for p in here.glob("test_*.py")
                 if re.search(rf"^def test_\w*{det.id}\w*\(", p.read_text(encoding="utf-8"), re.M)]
        assert named, f"{det.id}: needs a planted test named test_*{det.id}* (positive and look-alike)"
        return
    folder = GOLDEN / det.id
    cases = [load_case(p) for p in sorted(folder.glob("*.yaml"))]
    assert any(c["expected"] for c in cases), f"{det.id}: needs a planted positive"
    assert any(not c["expected"] for c in cases), f"{det.id}: needs a near-miss negative"


# --------------------------------------------------------------------------- golden cases

@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_golden_case(path, tmp_path):
    detector_id = path.parent.name
    case = load_case(path)
    st = build_world(case, tmp_path, detector_id)
    run_date = run_date_of(case)
    detect.detect(st, run_date, [detector_id])
    out = detect.findings_dir(st, run_date) / f"{detector_id}.parquet"
    assert_contract(out)
    found = read_findings(out)
    assert sorted(map(_norm, found)) == sorted(map(_norm, case["expected"])), \
        f"{case['description']}\nfound: {[(f['entity_id'], f['settlement_ids'], f['amount_at_risk'], f['reason']) for f in found]}"
    by_entity = {f["entity_id"]: f for f in found}
    for exp in case["expected"]:
        f = by_entity[str(exp["entity_id"])]
        assert f["detector_id"] == detector_id
        assert f["entity_type"] in registry.ENTITY_TYPES
        assert f["reason"] and f["reason"].endswith("."), f["reason"]
        evidence = json.loads(f["evidence"])
        assert isinstance(evidence, dict) and evidence
        assert f["score"] > 0
        for key in ("institution_id", "patient_id", "doctor_id"):
            if key in exp:
                assert f[key] == exp[key], (key, f[key])
        for text in exp.get("reason_contains", []):
            assert text in f["reason"], (text, f["reason"])
        for key, value in (exp.get("evidence") or {}).items():
            assert evidence.get(key) == value, (key, evidence.get(key), value)


# --------------------------------------------------------------------------- history and reversals

def _two_night_world(tmp: Path, reversal: bool = False):
    """A split hospitalisation whose second stay settles a night after the first."""
    settlements = [
        {"settlement_id": "S1", "patient_id": "P005", "institution_id": "H00000000002",
         "visit_type": "inpatient", "admit_date": "2026-10-01", "discharge_date": "2026-10-05",
         "primary_dx": "J18.9"},
        {"settlement_id": "S2", "patient_id": "P005", "institution_id": "H00000000002",
         "visit_type": "inpatient", "admit_date": "2026-10-05", "discharge_date": "2026-10-06",
         "primary_dx": "J18.9"},
    ]
    if reversal:
        settlements.append({"settlement_id": "R2", "reversal_of": "S2", "settle_date": "2026-10-08"})
    case = {"settlements": settlements, "items": [
        {"settlement_id": "S1", "item_code": "BED01", "quantity": 4, "unit_price": 45,
         "service_date": "2026-10-01"},
        {"settlement_id": "S2", "item_code": "BED01", "quantity": 1, "unit_price": 45,
         "service_date": "2026-10-05"}], "run_date": "2026-10-08" if reversal else "2026-10-07"}
    return build_world(case, tmp)


def _published(folder: Path, detector_id: str) -> list[dict]:
    rows = pq.read_table(folder / "findings.parquet").to_pylist()
    return [r for r in rows if r["detector_id"] == detector_id]


def test_case_split_across_two_nights_is_found_once_with_a_stable_id(tmp_path):
    st = _two_night_world(tmp_path)
    first = _published(screen.screen(st, "2026-10-06", render=False), "split_hospitalization")
    second = _published(screen.screen(st, "2026-10-07", render=False), "split_hospitalization")
    assert len(first) == 1 and len(second) == 1
    assert first[0]["finding_id"] == second[0]["finding_id"]
    assert first[0]["first_seen"] == second[0]["first_seen"] == date(2026, 10, 6)
    assert second[0]["run_date"] == date(2026, 10, 7)
    assert sorted(first[0]["settlement_ids"]) == ["S1", "S2"]


def test_late_reversal_withdraws_the_finding(tmp_path):
    st = _two_night_world(tmp_path, reversal=True)
    before = _published(screen.screen(st, "2026-10-06", render=False), "split_hospitalization")
    assert len(before) == 1
    after = _published(screen.screen(st, "2026-10-08", render=False), "split_hospitalization")
    assert after == []


# --------------------------------------------------------------------------- configuration

def test_a_broken_header_fails(tmp_path):
    good = registry.get("over_price_cap").path.read_text(encoding="utf-8")
    bad = tmp_path / "over_price_cap.sql"
    bad.write_text(good.replace("family: policy", "family: finance"), encoding="utf-8")
    with pytest.raises(registry.DetectorError, match="family"):
        registry.parse(bad)
    bad.write_text(good.replace("  tolerance_pct:\n    default: 0\n", "  tolerance_pct:\n"),
                   encoding="utf-8")
    with pytest.raises(registry.DetectorError):
        registry.parse(bad)
    undeclared = tmp_path / "unbundling.sql"
    undeclared.write_text(registry.get("unbundling").path.read_text(encoding="utf-8")
                          .replace("WHERE l.quantity > 0", "WHERE l.quantity > $min_quantity"),
                          encoding="utf-8")
    with pytest.raises(registry.DetectorError, match="min_quantity"):
        registry.parse(undeclared)


def test_region_override_applies_and_the_manifest_records_the_version(tmp_path):
    rules = load_rules(RULES)
    assert rules.regions, "data/rules.yaml should carry an example region override"
    for prefix, overrides in rules.regions.items():
        for detector_id, params in overrides.items():
            det = registry.get(detector_id)
            assert set(params) <= {p.name for p in det.params}, (prefix, detector_id)
            regional = rules.params_for(det, str(prefix) + "01")
            assert all(regional[k] == v for k, v in params.items())
            assert regional != rules.params_for(det)
    # two readmissions 20 and 18 days after discharge: a pattern only under a 30-day region
    case = {"settlements": [
        {"settlement_id": "S1", "patient_id": "P007", "institution_id": "H00000000003",
         "visit_type": "inpatient", "admit_date": "2026-08-14", "discharge_date": "2026-08-18",
         "primary_dx": "I63.9"},
        {"settlement_id": "S2", "patient_id": "P007", "institution_id": "H00000000003",
         "visit_type": "inpatient", "admit_date": "2026-09-07", "discharge_date": "2026-09-10",
         "primary_dx": "I63.9"},
        {"settlement_id": "S3", "patient_id": "P007", "institution_id": "H00000000003",
         "visit_type": "inpatient", "admit_date": "2026-09-28", "discharge_date": "2026-09-28",
         "primary_dx": "I63.9"}], "items": []}
    st = build_world(case, tmp_path)
    doc = yaml.safe_load(st.rules_file.read_text(encoding="utf-8"))
    doc["regions"] = {"4401": {"split_hospitalization": {"window_days": 30}}}
    doc["version"] = "test.1"
    st.rules_file.write_text(yaml.safe_dump(doc), encoding="utf-8")
    plain = _published(screen.screen(st, "2026-09-28", render=False), "split_hospitalization")
    assert plain == []
    regional = st.with_(region="440106")
    found = screen.screen(regional, "2026-09-28", render=False)
    assert len(_published(found, "split_hospitalization")) == 2
    manifest = json.loads((found / "_MANIFEST.json").read_text(encoding="utf-8"))
    assert manifest["parameters"]["rules_version"] == "test.1"
    assert manifest["parameters"]["region"] == "440106"
    assert manifest["parameters"]["detectors"]["split_hospitalization"]["window_days"] == 30


# --------------------------------------------------------------------------- docs

def test_rule_catalogue_is_up_to_date():
    from pipeline import catalogue
    page = ROOT / "docs" / "rules.md"
    assert page.read_text(encoding="utf-8") == catalogue.render(RULES), \
        "docs/rules.md is stale: run `claimscreen catalogue` and commit it"
    for d in DETECTORS:
        assert f"## {d.id}" in page.read_text(encoding="utf-8")


def test_catalogue_cli_writes_the_page(tmp_path):
    from pipeline import cli
    out = tmp_path / "rules.md"
    assert cli.main(["catalogue", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "超标准收费" in text and "tolerance_pct" in text
