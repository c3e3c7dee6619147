"""The corruption matrix (issue 12, part 2): every way a nightly delivery can be wrong,
each with its expected outcome, its message, and proof that nothing of it leaked.

Outcomes (documented kind by kind in expectations/README.md):

- ``refused``     ingest refuses the night whole: nothing of it is landed;
- ``blocked``     the gate refuses the night: it stays in incoming/, nothing is promoted;
- ``quarantined`` the offending settlements (whole, with their lines) go to quarantine with
                  a reason code, the rest of the night is promoted;
- ``accepted``    the night is promoted, with a warning.

Night 1 (2026-10-05, with the reference snapshots) is promoted first; night 2 is the one
corrupted, then run through the feed (``feed.catch_up``) as ``claimscreen ingest`` does.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import builder, contract, feed, lake, validate
from pipeline.settings import load_settings
from tests.conftest import tree_digest

D1, D2 = "2026-10-05", "2026-10-06"
H2, H3 = "H00000000002", "H00000000003"
CLEAN = [f"B{i:02d}" for i in range(1, 13)]


def _world():
    settlements = [
        {"settlement_id": "A1", "patient_id": "P001", "institution_id": H2, "admit_date": D1},
        {"settlement_id": "A2", "patient_id": "P002", "institution_id": H2, "admit_date": D1},
        {"settlement_id": "RA2", "patient_id": "P002", "institution_id": H2, "admit_date": D1,
         "reversal_of": "A2"},
    ] + [{"settlement_id": b, "patient_id": f"P{4 + i:03d}", "institution_id": H2, "admit_date": D2}
         for i, b in enumerate(CLEAN)]
    items = []
    for s in settlements:
        sign = -1 if s.get("reversal_of") else 1
        items.append({"settlement_id": s["settlement_id"], "item_code": "CON01", "service_date": s["admit_date"],
                      "quantity": sign, "unit_price": 30})
        items.append({"settlement_id": s["settlement_id"], "item_code": "LAB01", "service_date": s["admit_date"],
                      "quantity": sign, "unit_price": 20})
    return settlements, items


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Landing with both nights; the lake holds night 1, validated and promoted."""
    root = tmp_path_factory.mktemp("matrix_base")
    assert builder.write_extracts(root / "landing", *_world()) == [D1, D2]
    st = load_settings(data_dir=root / "data")
    report = feed.catch_up(st, root / "landing", upto=D1)
    assert [n.status for n in report.finals()] == ["promoted"]
    return root


# ----------------------------------------------------------------------------- helpers

def refresh(ex: Path) -> None:
    """Bring the manifest's rows and sha256 in line with the files it lists (so the night
    reaches the check the case is about, not the checksum)."""
    m = json.loads((ex / contract.MANIFEST_NAME).read_text())
    for f in m["files"]:
        p = ex / f["path"]
        if not p.exists():
            continue
        try:
            f["rows"] = pq.ParquetFile(p).metadata.num_rows
        except Exception:
            f["rows"] = 0
        f["sha256"] = contract.sha256_file(p)
    (ex / contract.MANIFEST_NAME).write_text(json.dumps(m))


def relist(ex: Path) -> None:
    """A manifest listing every Parquet file now in the extract."""
    files = []
    for p in sorted(ex.rglob("*.parquet")):
        files.append({"path": p.relative_to(ex).as_posix(), "rows": pq.ParquetFile(p).metadata.num_rows,
                      "sha256": contract.sha256_file(p)})
    doc = json.loads((ex / contract.MANIFEST_NAME).read_text())
    doc["files"] = files
    (ex / contract.MANIFEST_NAME).write_text(json.dumps(doc))


def manifest(ex: Path, fn) -> None:
    mp = ex / contract.MANIFEST_NAME
    doc = json.loads(mp.read_text())
    fn(doc)
    mp.write_text(json.dumps(doc))


def part(ex: Path, table: str) -> Path:
    return ex / table / "part-0000.parquet"


def retype(ex: Path, table: str, column: str, fn, typ) -> None:
    t = pq.read_table(part(ex, table))
    i = t.schema.get_field_index(column)
    t = t.set_column(i, pa.field(column, typ), pa.array([fn(v) for v in t[column].to_pylist()], typ))
    pq.write_table(t, part(ex, table))
    refresh(ex)


def rows_edit(settlements=None, items=None):
    """A row-level corruption: edit the builder's rows of night 2, rebuild the night."""
    def apply(ex: Path, landing: Path, tmp: Path):
        s, i = _world()
        if settlements:
            settlements(s)
        if items:
            items(i)
        builder.write_extracts(tmp / "rebuilt", s, i)
        shutil.rmtree(ex)
        shutil.copytree(tmp / "rebuilt" / D2, ex)
    return apply


def _by(rows, sid):
    return next(r for r in rows if r["settlement_id"] == sid)


def _lines(sid, sign=1, date=D2):
    return [{"settlement_id": sid, "item_code": "CON01", "service_date": date, "quantity": sign, "unit_price": 30},
            {"settlement_id": sid, "item_code": "LAB01", "service_date": date, "quantity": sign, "unit_price": 20}]


def _reversal(sid, of, patient="P003"):
    return {"settlement_id": sid, "patient_id": patient, "institution_id": H2, "admit_date": D1,
            "settle_date": D2, "reversal_of": of}


# ----------------------------------------------------------------------------- the file-level kinds

def c_checksum(ex, landing, tmp):
    manifest(ex, lambda m: m["files"][0].update(sha256="0" * 64))


def c_row_count(ex, landing, tmp):
    manifest(ex, lambda m: next(f for f in m["files"] if f["path"].startswith("settlements/")).update(rows=99))


def c_missing_file(ex, landing, tmp):
    part(ex, "settlement_items").unlink()


def c_extra_file(ex, landing, tmp):
    shutil.copy(part(ex, "settlements"), ex / "settlements" / "part-0001.parquet")


def c_missing_column(ex, landing, tmp):
    pq.write_table(pq.read_table(part(ex, "settlements")).drop(["visit_type"]), part(ex, "settlements"))
    refresh(ex)


def c_extra_column(ex, landing, tmp):
    t = pq.read_table(part(ex, "settlements"))
    pq.write_table(t.append_column("hospital_note", pa.array(["x"] * t.num_rows)), part(ex, "settlements"))
    refresh(ex)


def c_money_as_float(ex, landing, tmp):
    retype(ex, "settlements", "total_amount", float, pa.float64())


def c_dates_as_strings(ex, landing, tmp):
    retype(ex, "settlements", "admit_date", lambda v: v.isoformat(), pa.string())


def c_not_parquet(ex, landing, tmp):
    part(ex, "settlement_items").write_text("settlement_id,line_no\nB01,1\n")
    refresh(ex)


def c_truncated(ex, landing, tmp):
    p = part(ex, "settlement_items")
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    refresh(ex)


def c_empty_file(ex, landing, tmp):
    part(ex, "settlements").write_bytes(b"")
    refresh(ex)


def c_manifest_missing(ex, landing, tmp):
    (ex / contract.MANIFEST_NAME).unlink()


def c_manifest_not_json(ex, landing, tmp):
    (ex / contract.MANIFEST_NAME).write_text('{"schema_version": "1", "files": [')


def c_manifest_without_files(ex, landing, tmp):
    manifest(ex, lambda m: m.pop("files"))


def c_manifest_date_mismatch(ex, landing, tmp):
    manifest(ex, lambda m: m.update(extract_date="2026-10-07"))


def c_manifest_path_traversal(ex, landing, tmp):
    other = landing / D1 / "settlements" / "part-0000.parquet"
    manifest(ex, lambda m: m["files"].append({"path": f"../{D1}/settlements/part-0000.parquet",
                                              "rows": 3, "sha256": contract.sha256_file(other)}))


def c_manifest_absolute_path(ex, landing, tmp):
    other = landing / D1 / "settlements" / "part-0000.parquet"
    manifest(ex, lambda m: m["files"].append({"path": str(other.resolve()), "rows": 3,
                                              "sha256": contract.sha256_file(other)}))


def c_symlinked_file(ex, landing, tmp):
    outside = tmp / "outside.parquet"
    shutil.copy(part(ex, "settlement_items"), outside)
    part(ex, "settlement_items").unlink()
    os.symlink(outside, part(ex, "settlement_items"))


def c_symlinked_folder(ex, landing, tmp):
    shutil.move(ex, tmp / "elsewhere")
    os.symlink(tmp / "elsewhere", ex)


def c_schema_version_future(ex, landing, tmp):
    manifest(ex, lambda m: m.update(schema_version="2"))


def c_no_settlements_listed(ex, landing, tmp):
    part(ex, "settlements").unlink()
    manifest(ex, lambda m: m.update(files=[f for f in m["files"] if not f["path"].startswith("settlements/")]))


def c_duplicate_key_in_reference(ex, landing, tmp):
    t = pq.read_table(landing / D1 / "reference" / "insured_persons.parquet")
    (ex / "reference").mkdir(exist_ok=True)
    pq.write_table(pa.concat_tables([t, t.slice(3, 1)]), ex / "reference" / "insured_persons.parquet")
    relist(ex)


def c_null_key(ex, landing, tmp):
    t = pq.read_table(part(ex, "settlements"))
    ids = [None if s == "B03" else s for s in t["settlement_id"].to_pylist()]
    schema = pa.schema([f.with_nullable(True) for f in contract.SETTLEMENTS])
    pq.write_table(t.set_column(0, pa.field("settlement_id", pa.string()), pa.array(ids)).cast(schema),
                   part(ex, "settlements"))
    refresh(ex)


# ----------------------------------------------------------------------------- the row-level kinds

def _dup_in_night(s):
    s.append(dict(_by(s, "B01")))


def _rename(rows, old, new):
    for r in rows:
        if r["settlement_id"] == old:
            r["settlement_id"] = new


def _fund_above_total(s):
    _by(s, "B04").update(total_amount=50, fund_paid=100, self_paid=-50)


def _total_off(s):
    _by(s, "B05").update(total_amount=60, fund_paid=35, self_paid=15)


def _discharge_before_admit(s):
    _by(s, "B06").update(visit_type="inpatient", admit_date=D2, discharge_date="2026-10-04", settle_date=D2)


def _reversal_unknown(s):
    s.append(_reversal("R9", "NO-SUCH-ID"))


def _reversal_twice_across(s):
    s.append(_reversal("R8", "A2"))          # A2 was already reversed by RA2 in night 1


def _reversal_twice_in_night(s):
    s.extend([_reversal("R6", "A1", "P001"), _reversal("R7", "A1", "P001")])


def _add_lines(*specs):
    def fn(i):
        for sid, sign, date in specs:
            i.extend(_lines(sid, sign, date))
    return fn


def _drop_lines(sid):
    def fn(i):
        i[:] = [r for r in i if r["settlement_id"] != sid]
    return fn


def _unknown_item(i):
    for r in i:
        if r["settlement_id"] == "B07" and r["item_code"] == "LAB01":
            r["item_code"] = "ZZZ99"


def _ghost_line(i):
    i.append({**_lines("B08")[0], "settlement_id": "GHOST"})


@dataclass(frozen=True)
class Kind:
    corrupt: Callable
    outcome: str                 # refused / blocked / quarantined / accepted
    message: str                 # a fragment of what the user is told
    held: dict | None = None     # quarantined: {settlement_id: reason code on its settlement row or lines}


def _ghost(ex, landing, tmp):
    """A charge line whose settlement is not in the night (the builder needs a settlement
    for every line, so the line is added to the written file)."""
    t = pq.read_table(part(ex, "settlement_items"))
    row = t.slice(0, 1).to_pylist()[0]
    row["settlement_id"] = "GHOST"
    pq.write_table(pa.concat_tables([t, pa.Table.from_pylist([row], schema=t.schema)]), part(ex, "settlement_items"))
    refresh(ex)


KINDS: dict[str, Kind] = {
    # refused at ingest: the night is not landed at all
    "checksum": Kind(c_checksum, "refused", "differs from the manifest's"),
    "row_count": Kind(c_row_count, "refused", "rows, manifest says 99"),
    "missing_file": Kind(c_missing_file, "refused", "settlement_items/part-0000.parquet: listed in the manifest but missing"),
    "extra_file": Kind(c_extra_file, "refused", "settlements/part-0001.parquet: present but not in the manifest"),
    "missing_column": Kind(c_missing_column, "refused", "column 'visit_type' is missing"),
    "money_as_float": Kind(c_money_as_float, "refused", "column 'total_amount' has type double, contract says decimal128(14, 2)"),
    "dates_as_strings": Kind(c_dates_as_strings, "refused", "column 'admit_date' has type string, contract says date32"),
    "not_parquet": Kind(c_not_parquet, "refused", "settlement_items/part-0000.parquet: not readable Parquet"),
    "truncated": Kind(c_truncated, "refused", "settlement_items/part-0000.parquet: not readable Parquet"),
    "empty_file": Kind(c_empty_file, "refused", "settlements/part-0000.parquet: not readable Parquet"),
    "manifest_missing": Kind(c_manifest_missing, "refused", "_MANIFEST.json: missing (the producer writes it last"),
    "manifest_not_json": Kind(c_manifest_not_json, "refused", "not valid JSON"),
    "manifest_without_files": Kind(c_manifest_without_files, "refused", "missing key 'files'"),
    "manifest_date_mismatch": Kind(c_manifest_date_mismatch, "refused", "extract_date '2026-10-07' does not match folder"),
    "manifest_path_traversal": Kind(c_manifest_path_traversal, "refused", "an absolute path or '..' in the manifest"),
    "manifest_absolute_path": Kind(c_manifest_absolute_path, "refused", "an absolute path or '..' in the manifest"),
    "symlinked_file": Kind(c_symlinked_file, "refused", "settlement_items/part-0000.parquet: a symbolic link"),
    "symlinked_extract_folder": Kind(c_symlinked_folder, "refused", "a symbolic link; an extract must be a plain folder"),
    "schema_version_from_the_future": Kind(c_schema_version_future, "refused", "schema_version '2' is not supported"),
    "no_settlements_file": Kind(c_no_settlements_listed, "refused", "settlements/: the manifest lists no file"),
    # accepted with a warning
    "extra_column": Kind(c_extra_column, "accepted", "columns not in the contract are dropped: ['hospital_note']"),
    # blocked by the gate: kept in incoming/, nothing promoted
    "duplicate_key_in_reference_snapshot": Kind(c_duplicate_key_in_reference, "blocked", "patient_id_unique"),
    "null_settlement_id": Kind(c_null_key, "blocked", "settlement_id_not_null"),
    # quarantined rows, the rest of the night promoted
    "duplicate_settlement_id_in_night": Kind(rows_edit(_dup_in_night), "quarantined", "DUPLICATE_SETTLEMENT_ID",
                                             {"B01": "DUPLICATE_SETTLEMENT_ID"}),
    "duplicate_settlement_id_across_nights": Kind(
        rows_edit(lambda s: _rename(s, "B02", "A1"), lambda i: _rename(i, "B02", "A1")), "quarantined",
        "ALREADY_DELIVERED", {"A1": "ALREADY_DELIVERED"}),
    "line_without_settlement": Kind(_ghost, "quarantined", "DANGLING_ITEM", {"GHOST": "DANGLING_ITEM"}),
    "settlement_without_lines": Kind(rows_edit(None, _drop_lines("B03")), "quarantined", "NO_LINES",
                                     {"B03": "NO_LINES"}),
    "fund_paid_above_total": Kind(rows_edit(_fund_above_total), "quarantined", "FUND_ABOVE_TOTAL",
                                  {"B04": "FUND_ABOVE_TOTAL"}),
    "total_not_fund_plus_self": Kind(rows_edit(_total_off), "quarantined", "TOTAL_NE_FUND_PLUS_SELF",
                                     {"B05": "TOTAL_NE_FUND_PLUS_SELF"}),
    "discharge_before_admission": Kind(rows_edit(_discharge_before_admit), "quarantined", "DISCHARGE_BEFORE_ADMIT",
                                       {"B06": "DISCHARGE_BEFORE_ADMIT"}),
    "reversal_of_unknown_settlement": Kind(rows_edit(_reversal_unknown, _add_lines(("R9", -1, D1))), "quarantined",
                                           "REVERSAL_OF_UNKNOWN", {"R9": "REVERSAL_OF_UNKNOWN"}),
    "reversal_twice_across_nights": Kind(rows_edit(_reversal_twice_across, _add_lines(("R8", -1, D1))),
                                         "quarantined", "REVERSAL_REPEATED", {"R8": "REVERSAL_REPEATED"}),
    "reversal_twice_in_night": Kind(rows_edit(_reversal_twice_in_night, _add_lines(("R6", -1, D1), ("R7", -1, D1))),
                                    "quarantined", "REVERSAL_REPEATED",
                                    {"R6": "REVERSAL_REPEATED", "R7": "REVERSAL_REPEATED"}),
    "unknown_catalog_item": Kind(rows_edit(None, _unknown_item), "quarantined", "UNKNOWN_ITEM_CODE",
                                 {"B07": "UNKNOWN_ITEM_CODE"}),
}


def test_the_matrix_is_at_least_twenty_kinds_and_documented():
    assert len(KINDS) >= 20
    doc = (Path(validate.__file__).parents[1] / "expectations" / "README.md").read_text(encoding="utf-8")
    for name, kind in KINDS.items():
        assert f"`{name}`" in doc, f"{name} is not in expectations/README.md's corruption matrix"


@pytest.fixture
def world(base, tmp_path):
    shutil.copytree(base, tmp_path / "w", symlinks=True)
    return load_settings(data_dir=tmp_path / "w" / "data"), tmp_path / "w" / "landing"


def _delivered(st, table: str) -> list[dict]:
    """Rows of night 2 the detectors would read (the canonical delivered views)."""
    con = lake.open_screening(st, D2, features=False)
    try:
        cur = con.execute(f"SELECT * FROM {table}_delivered WHERE extract_date = DATE '{D2}'")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]
    finally:
        con.close()


def _quarantine(st, table: str) -> list[dict]:
    path = validate.quarantined(st, D2).get(table)
    return pq.read_table(path).to_pylist() if path else []


@pytest.mark.parametrize("name", sorted(KINDS))
def test_corruption_kind(world, tmp_path, name):
    st, landing = world
    kind = KINDS[name]
    screened_before = tree_digest(lake.extracts_dir(st))
    kind.corrupt(landing / D2, landing, tmp_path)
    landing_before = tree_digest(landing)

    report = feed.catch_up(st, landing)
    night = report.final(D2)
    assert night is not None
    text = "\n".join(str(m) for m in night.messages)
    assert tree_digest(landing) == landing_before, "landing files are only ever read"

    if kind.outcome == "refused":
        assert night.status == "refused", text
        assert kind.message in text, text
        assert report.exit_code == feed.EXIT_REFUSED
        assert not (st.lake_dir / "incoming" / f"extract_date={D2}").exists(), "nothing of it is landed"
        assert feed.status(st, landing)[-1].state == "refused"
    elif kind.outcome == "blocked":
        assert night.status == "blocked", text
        assert kind.message in text, text
        assert report.exit_code == feed.EXIT_BLOCKED
        assert feed.night_state(st, D2, landing) == "blocked"
    if kind.outcome in ("refused", "blocked"):
        assert lake.ingested_dates(st) == [D1]
        assert tree_digest(lake.extracts_dir(st)) == screened_before, "the screened zone did not change"
        assert _delivered(st, "settlements") == [] and _delivered(st, "settlement_items") == []
        return

    assert night.status == "promoted", text
    assert report.exit_code == feed.EXIT_OK
    result = night.result
    delivered = {r["settlement_id"] for r in _delivered(st, "settlements")}
    lines = {r["settlement_id"] for r in _delivered(st, "settlement_items")}
    if kind.outcome == "accepted":
        assert kind.message in "\n".join(result.warnings), result.warnings
        assert delivered == set(CLEAN)
        names = pq.read_schema(next((lake.extract_dir(st, D2) / "settlements").glob("*.parquet"))).names
        assert "hospital_note" not in names
        return

    assert kind.message in validate.summary(result)
    held_rows = _quarantine(st, "settlements") + _quarantine(st, "settlement_items")
    for sid, reason in kind.held.items():
        mine = [r for r in held_rows if r["settlement_id"] == sid]
        assert mine, f"{sid} not quarantined"
        assert any(reason in r["reason_code"].split(",") for r in mine), mine
        assert all(r["reason_code"] and r["expectation"] for r in mine)
        assert sid not in delivered and sid not in lines, f"{sid} leaked into the screened data"
    # the rest of the night goes on
    untouched = set(CLEAN) - set(kind.held) - {"B02"}     # B02 is renamed A1 in one kind
    assert untouched <= delivered


def test_quarantined_rows_never_reach_findings(world, tmp_path):
    """One night with every row-level fault, each faulty settlement also double-billing a
    lab test; a clean settlement double-billing the same way is the control: the
    duplicate_billing detector finds the control and none of the quarantined ones."""
    from pipeline import screen
    st, landing = world

    def settlements(s):
        _dup_in_night(s)
        _fund_above_total(s)
        _total_off(s)
        _discharge_before_admit(s)
        _reversal_unknown(s)
        _reversal_twice_in_night(s)
        s.append({"settlement_id": "CTRL", "patient_id": "P030", "institution_id": H2, "admit_date": D2})

    def items(i):
        _drop_lines("B03")(i)
        _unknown_item(i)
        _add_lines(("R9", -1, D1), ("R6", -1, D1), ("R7", -1, D1))(i)
        for sid in ("B01", "B04", "B05", "B06", "B07", "CTRL"):
            i.append({"settlement_id": sid, "item_code": "LAB01", "service_date": D2, "unit_price": 20})
        i.append({"settlement_id": "CTRL", "item_code": "CON01", "service_date": D2, "unit_price": 30})
        i.append({"settlement_id": "CTRL", "item_code": "LAB01", "service_date": D2, "unit_price": 20})

    rows_edit(settlements, items)(landing / D2, landing, tmp_path)
    report = feed.catch_up(st, landing)
    assert report.final(D2).status == "promoted", report.final(D2).messages
    held = {r["settlement_id"] for r in _quarantine(st, "settlements")}
    assert held >= {"B01", "B03", "B04", "B05", "B06", "B07", "R9", "R6", "R7"}
    out = screen.screen(st, D2, render=False)
    findings = pq.read_table(out / "findings.parquet").to_pylist()
    evidence = {sid for f in findings for sid in (f["settlement_ids"] or [])}
    assert "CTRL" in {sid for f in findings if f["detector_id"] == "duplicate_billing"
                      for sid in f["settlement_ids"]}, "the control is found"
    assert not evidence & held, f"quarantined settlements in findings: {evidence & held}"
