"""Build small contract-exact extracts from a few hand-written rows.

Used by the golden detector tests (``tests/detectors/<id>/*.yaml``) and anywhere a test
needs a precise planted case. Only the interesting columns need writing: the rest get
consistent defaults (settle_date from the dates, amounts from quantity × price,
settlement totals from their lines, a small default reference world).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import contract

D = date.fromisoformat

#: The default reference world: persons, institutions of each level, doctors, catalog.
DEFAULT_REFERENCE: dict[str, list[dict]] = {
    "insured_persons": [
        {"patient_id": f"P{i:03d}", "sex": "M" if i % 2 else "F",
         "birth_date": D("1950-03-01") + timedelta(days=3650 * (i % 6)),
         "home_region": "440106", "insurance_type": "employee" if i % 3 else "resident",
         "phone_hash": f"ph{i:03d}", "address_hash": f"ad{i:03d}", "enrolled_date": D("2010-01-01")}
        for i in range(1, 41)
    ],
    "institutions": [
        {"institution_id": "H00000000003", "name": "City Hospital No.1", "kind": "hospital", "level": 3,
         "ownership": "public", "region": "440106", "beds": 1200, "contract_start": D("2015-01-01")},
        {"institution_id": "H00000000002", "name": "District Hospital", "kind": "hospital", "level": 2,
         "ownership": "public", "region": "440106", "beds": 300, "contract_start": D("2015-01-01")},
        {"institution_id": "H00000000001", "name": "Kangning Clinic", "kind": "clinic", "level": 1,
         "ownership": "private", "region": "440111", "beds": 20, "contract_start": D("2018-01-01")},
        {"institution_id": "H00000000004", "name": "Riverside Hospital", "kind": "hospital", "level": 2,
         "ownership": "private", "region": "440111", "beds": 150, "contract_start": D("2016-01-01")},
        {"institution_id": "P00000000001", "name": "Health Pharmacy", "kind": "pharmacy", "level": 0,
         "ownership": "private", "region": "440106", "contract_start": D("2019-01-01")},
        {"institution_id": "P00000000002", "name": "Longevity Pharmacy", "kind": "pharmacy", "level": 0,
         "ownership": "private", "region": "440305", "contract_start": D("2019-01-01")},
    ],
    "practitioners": [
        {"doctor_id": f"D{i:012d}", "institution_id": inst, "specialty": spec, "licensed_from": D("2005-01-01")}
        for i, (inst, spec) in enumerate([("H00000000003", "internal"), ("H00000000003", "surgery"),
                                          ("H00000000002", "internal"), ("H00000000001", "general"),
                                          ("H00000000004", "internal"), ("P00000000001", "pharmacist")], 1)
    ],
    "catalog": [
        {"item_code": "BED01", "name": "General ward bed-day", "category": "bed", "unit": "day",
         "price_cap_l3": Decimal("60"), "price_cap_l2": Decimal("45"), "price_cap_l1": Decimal("30"),
         "max_daily_qty": Decimal("1")},
        {"item_code": "NUR01", "name": "Grade-I nursing", "category": "nursing", "unit": "day",
         "price_cap_l3": Decimal("30"), "price_cap_l2": Decimal("25"), "price_cap_l1": Decimal("20"),
         "max_daily_qty": Decimal("1")},
        {"item_code": "MON01", "name": "ECG monitoring", "category": "treatment", "unit": "hour",
         "price_cap_l3": Decimal("8"), "price_cap_l2": Decimal("6"), "price_cap_l1": Decimal("5"),
         "hours_per_unit": Decimal("1")},
        {"item_code": "LAB01", "name": "Complete blood count", "category": "lab", "unit": "test",
         "price_cap_l3": Decimal("25"), "price_cap_l2": Decimal("20"), "price_cap_l1": Decimal("18")},
        {"item_code": "EXM01", "name": "Chest CT", "category": "exam", "unit": "test",
         "price_cap_l3": Decimal("300"), "price_cap_l2": Decimal("260"), "price_cap_l1": Decimal("220"),
         "min_level": 2},
        {"item_code": "EXM02", "name": "Prostate ultrasound", "category": "exam", "unit": "test",
         "price_cap_l3": Decimal("120"), "price_cap_l2": Decimal("100"), "price_cap_l1": Decimal("90"),
         "sex_only": "M"},
        {"item_code": "DRG01", "name": "Amoxicillin 0.5g x24", "category": "drug", "unit": "box",
         "price_cap_l3": Decimal("18"), "price_cap_l2": Decimal("18"), "price_cap_l1": Decimal("18"),
         "max_days_supply": 7, "indication_dx": ["J", "N39"]},
        {"item_code": "DRG02", "name": "Insulin glargine pen", "category": "drug", "unit": "pen",
         "price_cap_l3": Decimal("180"), "price_cap_l2": Decimal("180"), "price_cap_l1": Decimal("180"),
         "max_days_supply": 30, "indication_dx": ["E10", "E11"], "high_resale": True},
        {"item_code": "SUR01", "name": "Laparoscopic cholecystectomy package", "category": "surgery",
         "unit": "case", "price_cap_l3": Decimal("4000"), "price_cap_l2": Decimal("3500"),
         "bundle_of": ["ANE01", "LAB01"], "min_level": 2},
        {"item_code": "ANE01", "name": "General anaesthesia", "category": "treatment", "unit": "case",
         "price_cap_l3": Decimal("800"), "price_cap_l2": Decimal("700"), "price_cap_l1": Decimal("600")},
        {"item_code": "PED01", "name": "Paediatric nebuliser therapy", "category": "treatment", "unit": "time",
         "price_cap_l3": Decimal("20"), "price_cap_l2": Decimal("18"), "price_cap_l1": Decimal("15"),
         "max_age": 14},
        {"item_code": "CON01", "name": "Outpatient consultation", "category": "other", "unit": "time",
         "price_cap_l3": Decimal("50"), "price_cap_l2": Decimal("30"), "price_cap_l1": Decimal("15")},
    ],
}

_CATEGORY = {r["item_code"]: r["category"] for r in DEFAULT_REFERENCE["catalog"]}


def _d(v):
    return D(v) if isinstance(v, str) else v


def _money(v, places="0.01"):
    return None if v is None else Decimal(str(v)).quantize(Decimal(places))


def _table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    cols = {}
    for f in schema:
        vals = [r.get(f.name) for r in rows]
        if pa.types.is_boolean(f.type) and not f.nullable:
            vals = [bool(v) for v in vals]
        if pa.types.is_date(f.type):
            vals = [_d(v) for v in vals]
        elif pa.types.is_decimal(f.type):
            vals = [_money(v, "1." + "0" * f.type.scale if f.type.scale else "1") for v in vals]
        elif pa.types.is_list(f.type) and pa.types.is_date(f.type.value_type):
            vals = [None if v is None else [_d(x) for x in v] for v in vals]
        cols[f.name] = pa.array(vals, f.type)
    return pa.Table.from_pydict(cols, schema=schema)


def complete_items(items: list[dict], catalog: dict[str, str]) -> list[dict]:
    per = defaultdict(int)
    out = []
    for it in items:
        it = dict(it)
        per[it["settlement_id"]] += 1
        it.setdefault("line_no", per[it["settlement_id"]])
        it.setdefault("item_category", catalog.get(it["item_code"], "other"))
        it.setdefault("quantity", 1)
        qty, price = Decimal(str(it["quantity"])), Decimal(str(it.get("unit_price", 10)))
        it["unit_price"] = price
        it.setdefault("amount", (qty * price).quantize(Decimal("0.01")))
        it.setdefault("fund_eligible_amount", it["amount"])
        out.append(it)
    return out


def complete_settlements(settlements: list[dict], items: list[dict]) -> list[dict]:
    totals = defaultdict(lambda: Decimal("0"))
    for it in items:
        totals[it["settlement_id"]] += Decimal(str(it["amount"]))
    out = []
    for s in settlements:
        s = dict(s)
        s.setdefault("visit_type", "outpatient")
        s.setdefault("insurance_type", "employee")
        s.setdefault("settle_region", "440100")
        s["admit_date"] = _d(s["admit_date"])
        if s.get("discharge_date"):
            s["discharge_date"] = _d(s["discharge_date"])
        s.setdefault("settle_date", s.get("discharge_date") or s["admit_date"])
        total = Decimal(str(s.get("total_amount", totals.get(s["settlement_id"], Decimal("100")))))
        fund = Decimal(str(s.get("fund_paid", (total * Decimal("0.7")).quantize(Decimal("0.01")))))
        s["total_amount"], s["fund_paid"] = total, fund
        s.setdefault("self_paid", total - fund)
        out.append(s)
    return out


def _merge(table: str, base: list[dict], rows: list[dict]) -> list[dict]:
    key = contract.KEYS[table][0]
    new = {r[key]: r for r in rows}
    return [r for r in base if r[key] not in new] + list(rows)


def write_extracts(landing: Path, settlements: list[dict], items: list[dict],
                   reference: dict[str, list[dict]] | None = None,
                   reference_dates: dict[str, dict[str, list[dict]]] | None = None,
                   extra_dates: list[str] = ()) -> list[str]:
    """Write one extract per settle_date; the default reference world (merged with
    ``reference`` overrides by key) goes with the first date. ``reference_dates`` adds
    later snapshots: {date: {table: rows}}, merged by key onto the snapshot before."""
    ref = {t: list(rows) for t, rows in DEFAULT_REFERENCE.items()}
    for t, rows in (reference or {}).items():
        ref[t] = _merge(t, ref[t], rows)
    catalog = {r["item_code"]: r["category"] for r in ref["catalog"]}
    items = complete_items(items, catalog)
    settlements = complete_settlements(settlements, items)
    by_date = defaultdict(list)
    for s in settlements:
        by_date[str(s["settle_date"])].append(s)
    settle_of = {s["settlement_id"]: str(s["settle_date"]) for s in settlements}
    items_by_date = defaultdict(list)
    for it in items:
        items_by_date[settle_of[it["settlement_id"]]].append(it)
    dates = sorted(set(by_date) | set(extra_dates) | set((reference_dates or {}).keys()))
    for i, d in enumerate(dates):
        ex = Path(landing) / d
        (ex / "settlements").mkdir(parents=True, exist_ok=True)
        (ex / "settlement_items").mkdir(parents=True, exist_ok=True)
        pq.write_table(_table(by_date.get(d, []), contract.SETTLEMENTS), ex / "settlements" / "part-0000.parquet")
        pq.write_table(_table(items_by_date.get(d, []), contract.SETTLEMENT_ITEMS),
                       ex / "settlement_items" / "part-0000.parquet")
        snaps = dict(ref) if i == 0 else {}
        for t, rows in (reference_dates or {}).get(d, {}).items():
            ref[t] = _merge(t, ref[t], rows)
            snaps[t] = ref[t]
        for t, rows in snaps.items():
            (ex / "reference").mkdir(exist_ok=True)
            pq.write_table(_table(rows, contract.REFERENCE_TABLES[t]), ex / "reference" / f"{t}.parquet")
        contract.write_manifest(ex, d, "claimscreen test builder")
    return dates
