"""The nightly extract contract (shared/contract/EXTRACT.md, version 1) as code.

Generator, ingest, validation and tests all import these schemas: this module is the
project's single source of truth for column names, types and enumerations.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

SCHEMA_VERSION = "1"
MANIFEST_NAME = "_MANIFEST.json"

MONEY = pa.decimal128(14, 2)
QTY = pa.decimal128(12, 3)
UNIT_PRICE = pa.decimal128(12, 4)

SETTLEMENTS = pa.schema([
    pa.field("settlement_id", pa.string(), nullable=False),
    pa.field("patient_id", pa.string(), nullable=False),
    pa.field("institution_id", pa.string(), nullable=False),
    pa.field("doctor_id", pa.string()),
    pa.field("dept_code", pa.string()),
    pa.field("visit_type", pa.string(), nullable=False),
    pa.field("admit_date", pa.date32(), nullable=False),
    pa.field("discharge_date", pa.date32()),
    pa.field("settle_date", pa.date32(), nullable=False),
    pa.field("primary_dx", pa.string()),
    pa.field("secondary_dx", pa.list_(pa.string())),
    pa.field("total_amount", MONEY, nullable=False),
    pa.field("fund_paid", MONEY, nullable=False),
    pa.field("self_paid", MONEY, nullable=False),
    pa.field("insurance_type", pa.string(), nullable=False),
    pa.field("settle_region", pa.string(), nullable=False),
    pa.field("reversal_of", pa.string()),
])

SETTLEMENT_ITEMS = pa.schema([
    pa.field("settlement_id", pa.string(), nullable=False),
    pa.field("line_no", pa.int32(), nullable=False),
    pa.field("item_code", pa.string(), nullable=False),
    pa.field("item_category", pa.string(), nullable=False),
    pa.field("service_date", pa.date32(), nullable=False),
    pa.field("quantity", QTY, nullable=False),
    pa.field("unit_price", UNIT_PRICE, nullable=False),
    pa.field("amount", MONEY, nullable=False),
    pa.field("fund_eligible_amount", MONEY, nullable=False),
    pa.field("ordering_doctor_id", pa.string()),
    pa.field("days_supply", pa.int16()),
    pa.field("trace_codes", pa.list_(pa.string())),
])

INSURED_PERSONS = pa.schema([
    pa.field("patient_id", pa.string(), nullable=False),
    pa.field("sex", pa.string(), nullable=False),
    pa.field("birth_date", pa.date32(), nullable=False),
    pa.field("death_date", pa.date32()),
    pa.field("home_region", pa.string(), nullable=False),
    pa.field("insurance_type", pa.string(), nullable=False),
    pa.field("phone_hash", pa.string()),
    pa.field("address_hash", pa.string()),
    pa.field("enrolled_date", pa.date32(), nullable=False),
])

INSTITUTIONS = pa.schema([
    pa.field("institution_id", pa.string(), nullable=False),
    pa.field("name", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("level", pa.int8(), nullable=False),
    pa.field("ownership", pa.string(), nullable=False),
    pa.field("region", pa.string(), nullable=False),
    pa.field("beds", pa.int32()),
    pa.field("contract_start", pa.date32(), nullable=False),
    pa.field("contract_end", pa.date32()),
])

PRACTITIONERS = pa.schema([
    pa.field("doctor_id", pa.string(), nullable=False),
    pa.field("institution_id", pa.string(), nullable=False),
    pa.field("specialty", pa.string(), nullable=False),
    pa.field("licensed_from", pa.date32(), nullable=False),
])

CATALOG = pa.schema([
    pa.field("item_code", pa.string(), nullable=False),
    pa.field("name", pa.string(), nullable=False),
    pa.field("category", pa.string(), nullable=False),
    pa.field("unit", pa.string(), nullable=False),
    pa.field("price_cap_l3", UNIT_PRICE),
    pa.field("price_cap_l2", UNIT_PRICE),
    pa.field("price_cap_l1", UNIT_PRICE),
    pa.field("sex_only", pa.string()),
    pa.field("min_age", pa.int16()),
    pa.field("max_age", pa.int16()),
    pa.field("min_level", pa.int8()),
    pa.field("max_daily_qty", QTY),
    pa.field("max_days_supply", pa.int16()),
    pa.field("indication_dx", pa.list_(pa.string())),
    pa.field("high_resale", pa.bool_(), nullable=False),
    pa.field("bundle_of", pa.list_(pa.string())),
    pa.field("hours_per_unit", pa.decimal128(6, 2)),
])

#: Fact tables: folder name in the extract -> schema. Each holds 1..n part-*.parquet files.
FACT_TABLES: dict[str, pa.Schema] = {
    "settlements": SETTLEMENTS,
    "settlement_items": SETTLEMENT_ITEMS,
}

#: Reference tables: file stem under reference/ -> schema. Optional in an extract.
REFERENCE_TABLES: dict[str, pa.Schema] = {
    "insured_persons": INSURED_PERSONS,
    "institutions": INSTITUTIONS,
    "practitioners": PRACTITIONERS,
    "catalog": CATALOG,
}

ALL_TABLES: dict[str, pa.Schema] = {**FACT_TABLES, **REFERENCE_TABLES}

#: Primary keys per table (used by validation and ingest).
KEYS: dict[str, tuple[str, ...]] = {
    "settlements": ("settlement_id",),
    "settlement_items": ("settlement_id", "line_no"),
    "insured_persons": ("patient_id",),
    "institutions": ("institution_id",),
    "practitioners": ("doctor_id",),
    "catalog": ("item_code",),
}

VISIT_TYPES = ("outpatient", "inpatient", "pharmacy")
ITEM_CATEGORIES = ("drug", "herbal", "material", "exam", "lab", "treatment", "surgery",
                   "bed", "nursing", "other")
SEXES = ("M", "F")
INSURANCE_TYPES = ("employee", "resident")
INSTITUTION_KINDS = ("hospital", "clinic", "community", "pharmacy")
INSTITUTION_LEVELS = (0, 1, 2, 3)
OWNERSHIPS = ("public", "private")

#: Enumerated columns per table, for validation.
ENUMS: dict[str, dict[str, tuple]] = {
    "settlements": {"visit_type": VISIT_TYPES, "insurance_type": INSURANCE_TYPES},
    "settlement_items": {"item_category": ITEM_CATEGORIES},
    "insured_persons": {"sex": SEXES, "insurance_type": INSURANCE_TYPES},
    "institutions": {"kind": INSTITUTION_KINDS, "level": INSTITUTION_LEVELS,
                     "ownership": OWNERSHIPS},
    "catalog": {"category": ITEM_CATEGORIES, "sex_only": SEXES},
}


def table_of(relpath: str) -> str | None:
    """The contract table a manifest path belongs to, or None when it is not one."""
    parts = Path(relpath).parts
    if len(parts) == 2 and parts[0] in FACT_TABLES and parts[1].endswith(".parquet"):
        return parts[0]
    if len(parts) == 2 and parts[0] == "reference":
        stem = parts[1].removesuffix(".parquet")
        if stem in REFERENCE_TABLES and parts[1].endswith(".parquet"):
            return stem
    return None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class ManifestFile:
    path: str
    rows: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    extract_date: str
    producer: str
    files: tuple[ManifestFile, ...]
    schema_version: str = SCHEMA_VERSION
    extra: dict = field(default_factory=dict, compare=False)

    def to_json(self) -> str:
        return json.dumps({
            "schema_version": self.schema_version,
            "extract_date": self.extract_date,
            "producer": self.producer,
            "files": [{"path": f.path, "rows": f.rows, "sha256": f.sha256} for f in self.files],
        }, indent=2, ensure_ascii=False)

    @classmethod
    def parse(cls, text: str, where: str = "_MANIFEST.json") -> "Manifest":
        """Parse manifest text; raises ValueError naming what is wrong."""
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: not valid JSON ({e})") from None
        if not isinstance(doc, dict):
            raise ValueError(f"{where}: expected a JSON object")
        for key in ("schema_version", "extract_date", "files"):
            if key not in doc:
                raise ValueError(f"{where}: missing key {key!r}")
        if str(doc["schema_version"]) != SCHEMA_VERSION:
            raise ValueError(f"{where}: schema_version {doc['schema_version']!r} is not "
                             f"supported (this pipeline reads version {SCHEMA_VERSION})")
        if not isinstance(doc["files"], list):
            raise ValueError(f"{where}: 'files' must be a list of {{path, rows, sha256}}")
        files = []
        for i, f in enumerate(doc["files"]):
            try:
                files.append(ManifestFile(str(f["path"]), int(f["rows"]), str(f["sha256"]).lower()))
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"{where}: files[{i}] needs path, rows and sha256") from None
        return cls(extract_date=str(doc["extract_date"]), producer=str(doc.get("producer", "")),
                   files=tuple(files), schema_version=str(doc["schema_version"]))


def write_manifest(extract_dir: Path, extract_date: str, producer: str) -> Manifest:
    """Write `_MANIFEST.json` for every contract file under extract_dir (call it last)."""
    import pyarrow.parquet as pq

    files = []
    for p in sorted(extract_dir.rglob("*.parquet")):
        rel = p.relative_to(extract_dir).as_posix()
        if table_of(rel) is None:
            continue
        files.append(ManifestFile(rel, pq.ParquetFile(p).metadata.num_rows, sha256_file(p)))
    m = Manifest(extract_date=extract_date, producer=producer, files=tuple(files))
    tmp = extract_dir / (MANIFEST_NAME + ".tmp")
    tmp.write_text(m.to_json(), encoding="utf-8")
    tmp.replace(extract_dir / MANIFEST_NAME)
    return m
