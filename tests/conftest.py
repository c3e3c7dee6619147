import hashlib
from pathlib import Path

import pytest

from pipeline import builder
from pipeline.settings import load_settings


@pytest.fixture
def settings(tmp_path):
    return load_settings(data_dir=tmp_path / "data")


def tree_digest(root: Path) -> dict:
    """sha256 of every file under root (to prove a folder was not touched)."""
    root = Path(root)
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


#: A small month with each skeleton scheme planted once, and their honest look-alikes.
PLANTED_SETTLEMENTS = [
    # split hospitalisation: P001 readmitted to the clinic 3 days after discharge, related dx;
    # the first stay arrives in the 2026-10-05 extract, the readmission in 2026-10-12's
    dict(settlement_id="S01", patient_id="P001", institution_id="H00000000001", visit_type="inpatient",
         admit_date="2026-10-01", discharge_date="2026-10-05", primary_dx="J18.9", doctor_id="D000000000004"),
    dict(settlement_id="S02", patient_id="P001", institution_id="H00000000001", visit_type="inpatient",
         admit_date="2026-10-08", discharge_date="2026-10-12", primary_dx="J18.0", doctor_id="D000000000004"),
    # look-alike: readmission with an unrelated diagnosis
    dict(settlement_id="S03", patient_id="P004", institution_id="H00000000002", visit_type="inpatient",
         admit_date="2026-10-01", discharge_date="2026-10-04", primary_dx="K35.8"),
    dict(settlement_id="S04", patient_id="P004", institution_id="H00000000002", visit_type="inpatient",
         admit_date="2026-10-06", discharge_date="2026-10-09", primary_dx="S52.5"),
    # look-alike: transfer to another institution with the same diagnosis
    dict(settlement_id="S05", patient_id="P005", institution_id="H00000000002", visit_type="inpatient",
         admit_date="2026-10-02", discharge_date="2026-10-05", primary_dx="I63.9"),
    dict(settlement_id="S06", patient_id="P005", institution_id="H00000000003", visit_type="inpatient",
         admit_date="2026-10-05", discharge_date="2026-10-12", primary_dx="I63.9"),
    # duplicate billing: the same blood count twice in one outpatient settlement
    dict(settlement_id="S07", patient_id="P002", institution_id="H00000000003", visit_type="outpatient",
         admit_date="2026-10-03", primary_dx="I10", doctor_id="D000000000001"),
    # look-alike: two visits the same day to different departments, different items
    dict(settlement_id="S08", patient_id="P006", institution_id="H00000000003", visit_type="outpatient",
         admit_date="2026-10-03", dept_code="CARD", primary_dx="I10"),
    dict(settlement_id="S09", patient_id="P006", institution_id="H00000000003", visit_type="outpatient",
         admit_date="2026-10-03", dept_code="ENDO", primary_dx="E11.9"),
    # after death: P003 dies on 10-02 (recorded only in the 10-12 snapshot), card used 10-09
    dict(settlement_id="S10", patient_id="P003", institution_id="P00000000001", visit_type="pharmacy",
         admit_date="2026-10-09", primary_dx="E11.9"),
    # look-alike: P007 bought drugs before dying on 10-10
    dict(settlement_id="S11", patient_id="P007", institution_id="P00000000001", visit_type="pharmacy",
         admit_date="2026-10-09", primary_dx="E11.9"),
    # a reversed settlement that would otherwise be a duplicate: never flagged
    dict(settlement_id="S12", patient_id="P008", institution_id="H00000000002", visit_type="outpatient",
         admit_date="2026-10-05", primary_dx="J06.9"),
    dict(settlement_id="S13", patient_id="P008", institution_id="H00000000002", visit_type="outpatient",
         admit_date="2026-10-05", primary_dx="J06.9"),
    dict(settlement_id="S14", patient_id="P008", institution_id="H00000000002", visit_type="outpatient",
         admit_date="2026-10-05", settle_date="2026-10-09", reversal_of="S13",
         total_amount=-20, fund_paid=-14, self_paid=-6),
]
PLANTED_ITEMS = [
    dict(settlement_id="S01", item_code="BED01", service_date="2026-10-01", quantity=4, unit_price=30),
    dict(settlement_id="S02", item_code="BED01", service_date="2026-10-08", quantity=4, unit_price=30),
    dict(settlement_id="S03", item_code="BED01", service_date="2026-10-01", quantity=3, unit_price=45),
    dict(settlement_id="S04", item_code="BED01", service_date="2026-10-06", quantity=3, unit_price=45),
    dict(settlement_id="S05", item_code="BED01", service_date="2026-10-02", quantity=3, unit_price=45),
    dict(settlement_id="S06", item_code="BED01", service_date="2026-10-05", quantity=7, unit_price=60),
    dict(settlement_id="S07", item_code="LAB01", service_date="2026-10-03", unit_price=20),
    dict(settlement_id="S07", item_code="LAB01", service_date="2026-10-03", unit_price=20),
    dict(settlement_id="S08", item_code="CON01", service_date="2026-10-03", unit_price=50),
    dict(settlement_id="S09", item_code="CON01", service_date="2026-10-03", unit_price=40),
    dict(settlement_id="S09", item_code="LAB01", service_date="2026-10-03", unit_price=25),
    dict(settlement_id="S10", item_code="DRG02", service_date="2026-10-09", unit_price=150, days_supply=30),
    dict(settlement_id="S11", item_code="DRG02", service_date="2026-10-09", unit_price=150, days_supply=30),
    dict(settlement_id="S12", item_code="LAB01", service_date="2026-10-05", unit_price=20),
    dict(settlement_id="S13", item_code="LAB01", service_date="2026-10-05", unit_price=20),
    dict(settlement_id="S14", item_code="LAB01", service_date="2026-10-05", quantity=-1, unit_price=20),
]
DEATHS = {"2026-10-12": {"insured_persons": [
    dict(builder.DEFAULT_REFERENCE["insured_persons"][2], death_date=builder.D("2026-10-02")),
    dict(builder.DEFAULT_REFERENCE["insured_persons"][6], death_date=builder.D("2026-10-10")),
]}}
PLANTED = {"split_hospitalization": {"S02"}, "duplicate_billing": {"S07"}, "after_death": {"S10"}}


@pytest.fixture
def planted_landing(tmp_path):
    landing = tmp_path / "landing"
    builder.write_extracts(landing, PLANTED_SETTLEMENTS, PLANTED_ITEMS, reference_dates=DEATHS)
    return landing
