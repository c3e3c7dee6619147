"""The validation gate: one test per malformed input, each built by corrupting a
builder-made extract, plus the clean case, reports, quarantine and publishing.

Every case checks that nothing is lost: landing files are byte-identical afterwards,
the screened zone (lake/extracts) is unchanged when an extract is refused, and
quarantined rows can be read back.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from expectations import TABLES, suite_module
from expectations._suite import build_suite, load_config
from pipeline import builder, contract, ingest, lake, validate
from pipeline.settings import load_settings

D1, D2 = "2026-10-05", "2026-10-06"
H3, H2, PH = "H00000000003", "H00000000002", "P00000000001"
CLEAN_B = [f"B{i:02d}" for i in range(1, 15)]


def _world():
    settlements = [
        {"settlement_id": "A1", "patient_id": "P001", "institution_id": H3, "doctor_id": "D000000000001",
         "visit_type": "inpatient", "admit_date": "2026-10-01", "discharge_date": D1},
        {"settlement_id": "A2", "patient_id": "P002", "institution_id": H2, "admit_date": D1},
        {"settlement_id": "A3", "patient_id": "P003", "institution_id": PH, "visit_type": "pharmacy",
         "admit_date": D1},
        {"settlement_id": "BIN", "patient_id": "P030", "institution_id": H3, "visit_type": "inpatient",
         "admit_date": "2026-10-02", "discharge_date": D2},
        # a genuine reversal: negative amounts are right here
        {"settlement_id": "R1", "patient_id": "P002", "institution_id": H2, "admit_date": D1,
         "settle_date": D2, "reversal_of": "A2"},
    ] + [{"settlement_id": b, "patient_id": f"P{4 + i:03d}", "institution_id": H2, "admit_date": D2}
         for i, b in enumerate(CLEAN_B)]
    items = [
        {"settlement_id": "A1", "item_code": "BED01", "service_date": "2026-10-01", "quantity": 4, "unit_price": 45},
        {"settlement_id": "A1", "item_code": "LAB01", "service_date": "2026-10-02", "unit_price": 20},
        {"settlement_id": "A2", "item_code": "CON01", "service_date": D1, "unit_price": 30},
        {"settlement_id": "A3", "item_code": "DRG01", "service_date": D1, "unit_price": 18, "days_supply": 7},
        {"settlement_id": "BIN", "item_code": "BED01", "service_date": "2026-10-02", "quantity": 4, "unit_price": 45},
        {"settlement_id": "BIN", "item_code": "LAB01", "service_date": D2, "unit_price": 20},
        {"settlement_id": "R1", "item_code": "CON01", "service_date": D1, "quantity": -1, "unit_price": 30},
    ] + [{"settlement_id": b, "item_code": "CON01", "service_date": D2, "unit_price": 30} for b in CLEAN_B]
    return settlements, items


@pytest.fixture(scope="session")
def base(tmp_path_factory):
    """Landing with two nights; the lake holds night 1, validated and promoted."""
    root = tmp_path_factory.mktemp("validation_base")
    builder.write_extracts(root / "landing", *_world())
    st = load_settings(data_dir=root / "data")
    ingest.ingest_one(st, root / "landing", D1)
    validate.validate(st, D1)
    return root


@pytest.fixture
def world(base, tmp_path):
    """A private copy of the base: (settings, landing)."""
    shutil.copytree(base, tmp_path / "w", symlinks=True)
    root = tmp_path / "w"
    return load_settings(data_dir=root / "data"), root / "landing"


# ----------------------------------------------------------------------------- helpers

def _nullable(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_nullable(True) for f in schema])


def edit(landing: Path, table: str, fn, schema: pa.Schema | None = None) -> None:
    """Rewrite night 2's table through fn(rows) -> rows, then re-write its manifest."""
    path = landing / D2 / table / "part-0000.parquet"
    rows = fn(pq.read_table(path).to_pylist())
    schema = schema or _nullable(contract.FACT_TABLES[table])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    write_manifest(landing / D2)


def write_manifest(extract: Path) -> None:
    """A manifest that matches the files as they now are (even files that are not Parquet),
    so the test reaches the check it is about rather than the checksum."""
    files = []
    for p in sorted(extract.rglob("*.parquet")):
        try:
            rows = pq.ParquetFile(p).metadata.num_rows
        except Exception:
            rows = 0
        files.append({"path": p.relative_to(extract).as_posix(), "rows": rows, "sha256": contract.sha256_file(p)})
    (extract / contract.MANIFEST_NAME).write_text(json.dumps(
        {"schema_version": "1", "extract_date": extract.name, "producer": "test", "files": files}))


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): contract.sha256_file(p)
            for p in sorted(root.rglob("*")) if p.is_file()} if root.exists() else {}


def run_night(st, landing, **kw):
    """Ingest + validate night 2; returns (result or exception, landing-before, extracts-before)."""
    before_landing, before_lake = tree(landing), tree(lake.extracts_dir(st))
    try:
        ingest.ingest_one(st, landing, D2)
        outcome = validate.validate(st, D2, **kw)
    except (ingest.ExtractRefused, validate.ExtractBlocked) as e:
        outcome = e
    assert tree(landing) == before_landing, "landing files must never change"
    return outcome, before_lake


def assert_refused_untouched(st, before_lake):
    assert tree(lake.extracts_dir(st)) == before_lake, "the screened zone must not change"
    assert D2 not in lake.ingested_dates(st)


def rename(rows, old, new):
    for r in rows:
        if r["settlement_id"] == old:
            r["settlement_id"] = new
    return rows


def data_rows(st, table) -> list[dict]:
    files = sorted((lake.extract_dir(st, D2) / table).glob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]).to_pylist()


def quarantine_rows(st, table) -> list[dict]:
    path = validate.quarantined(st, D2).get(table)
    return pq.read_table(path).to_pylist() if path else []


# ----------------------------------------------------------------------------- clean

def test_clean_nights_pass_with_reports(world):
    st, landing = world
    result, _ = run_night(st, landing)
    assert isinstance(result, validate.ValidationResult), result
    assert result.status == "passed" and not result.blocking and not result.quarantined
    assert result.rules["failed"] == 0 and result.rules["evaluated"] > 50
    assert D2 in lake.ingested_dates(st)
    assert {r["settlement_id"] for r in data_rows(st, "settlements")} == set(CLEAN_B) | {"BIN", "R1"}
    stored = validate.load_results(st, D2)
    assert stored["status"] == "passed"
    assert set(stored["suites"]) == {"settlements", "settlement_items", "extract"}
    docs = validate.report_dir(st, D2) / "data_docs"
    assert "Extract validation" in (docs / "index.html").read_text(encoding="utf-8")
    page = (docs / "settlements.html").read_text(encoding="utf-8")
    assert "<html" in page and "settle_date" in page
    # night 1 (with reference snapshots) was validated by the base fixture
    assert set(validate.load_results(st, D1)["suites"]) >= set(TABLES)
    text = validate.summary(result)
    assert "PASSED" in text and len(text.splitlines()) < 25


def test_generated_nights_pass_clean(tmp_path):
    """Generated nights (with planted fraud and honest look-alikes) pass the gate: no
    blocking failure, no quarantined row; fraud stays visible to the detectors."""
    from pipeline import synth
    synth.generate(tmp_path, days=3, scale=0.05, seed=3, start="2026-10-01", fraud=True)
    st = load_settings(data_dir=tmp_path)
    for d in ingest.landed_dates(tmp_path / "landing"):
        ingest.ingest_one(st, tmp_path / "landing", d)
        v = validate.validate(st, d)
        assert v.status == "passed" and not v.blocking and not v.quarantined, validate.summary(v)
        assert not validate.quarantined(st, d)
    assert len(lake.ingested_dates(st)) == 3


def test_volume_surges_and_dropped_regions_are_reported_not_blocked(world):
    st, landing = world
    # night 1 settled 3 claims, 1 of them at H2, all in region 440100; night 2 moves every
    # claim to region 440300 and H2 bills 15: a region vanished, a hospital surged
    edit(landing, "settlements", lambda rows: [{**r, "settle_region": "440300"} for r in rows])
    result, _ = run_night(st, landing, overrides={"volume": {
        "min_history": 1, "institution_min_settlements": 5, "region_min_median": 1}})
    assert isinstance(result, validate.ValidationResult) and result.status == "passed", result
    assert not result.quarantined
    text = "\n".join(result.warnings)
    assert "institution_volume_surge" in text and H2 in text
    assert "region_volume_drop" in text and "440100" in text
    assert "volume_rows_in_band" in text
    assert "region_volume_drop" in (validate.report_dir(st, D2) / "data_docs" / "index.html").read_text(encoding="utf-8")


def test_every_rule_has_a_severity_and_every_severity_a_rule():
    cfg = load_config()
    for table in TABLES:
        module = suite_module(table)
        suite = build_suite(module, cfg, D2)      # raises on a rule without severity
        ids = {e.meta["rule"] for e in suite.expectations} | {c.id for c in module.CHECKS}
        assert ids == set(cfg.doc["severity"][table]), table
        assert all(e.meta["name_zh"] and e.meta["name_en"] for e in suite.expectations)


# ----------------------------------------------------------------------------- refused at ingest

def test_missing_column_is_refused(world):
    st, landing = world
    schema = pa.schema([f for f in _nullable(contract.SETTLEMENTS) if f.name != "visit_type"])
    edit(landing, "settlements", lambda rows: [{k: v for k, v in r.items() if k != "visit_type"} for r in rows],
         schema)
    outcome, before = run_night(st, landing)
    assert isinstance(outcome, ingest.ExtractRefused)
    assert "column 'visit_type' is missing" in str(outcome)
    assert_refused_untouched(st, before)


def test_wrong_type_is_refused(world):
    st, landing = world
    schema = pa.schema([f.with_type(pa.float64()) if f.name == "total_amount" else f
                        for f in _nullable(contract.SETTLEMENTS)])
    edit(landing, "settlements", lambda rows: [{**r, "total_amount": float(r["total_amount"])} for r in rows],
         schema)
    outcome, before = run_night(st, landing)
    assert isinstance(outcome, ingest.ExtractRefused)
    assert "'total_amount' has type double" in str(outcome)
    assert_refused_untouched(st, before)


def test_empty_file_is_refused(world):
    st, landing = world
    (landing / D2 / "settlements" / "part-0001.parquet").write_bytes(b"")
    write_manifest(landing / D2)
    outcome, before = run_night(st, landing)
    assert isinstance(outcome, ingest.ExtractRefused)
    assert "part-0001.parquet: not readable Parquet" in str(outcome)
    assert_refused_untouched(st, before)


def test_file_that_is_not_parquet_is_refused(world):
    st, landing = world
    (landing / D2 / "settlement_items" / "part-0000.parquet").write_text("settlement_id,line_no\nB01,1\n")
    write_manifest(landing / D2)
    outcome, before = run_night(st, landing)
    assert isinstance(outcome, ingest.ExtractRefused)
    assert "settlement_items/part-0000.parquet: not readable Parquet" in str(outcome)
    assert_refused_untouched(st, before)


# ----------------------------------------------------------------------------- blocked by the gate

def _blocked(st, outcome, before, rule: str, where: str):
    assert isinstance(outcome, validate.ExtractBlocked), outcome
    msg = str(outcome)
    assert rule in msg and where in msg, msg
    assert_refused_untouched(st, before)
    assert (ingest.incoming_dir(st, D2) / "_INGESTED.json").exists(), "kept in incoming for a re-check"
    assert not (ingest.incoming_dir(st, D2) / validate.QUARANTINE).exists()
    stored = validate.load_results(st, D2)
    assert stored["status"] == "blocked" and stored["blocking"]
    assert (validate.report_dir(st, D2) / "data_docs" / "index.html").exists()
    return msg


def test_null_key_blocks_the_extract(world):
    st, landing = world
    edit(landing, "settlements", lambda rows: [{**r, "settlement_id": None} if r["settlement_id"] == "B03" else r
                                               for r in rows])
    outcome, before = run_night(st, landing)
    _blocked(st, outcome, before, "settlement_id_not_null", "settlements.settlement_id")
    # validating again (e.g. after a retry) blocks again and still promotes nothing
    with pytest.raises(validate.ExtractBlocked):
        validate.validate(st, D2)
    assert_refused_untouched(st, before)
    ledger = [json.loads(x) for x in (st.lake_dir / "ledger.jsonl").read_text().splitlines()]
    assert ledger[-1]["event"] == "blocked"


def test_corrected_redelivery_of_a_blocked_night_passes(world, base):
    st, landing = world
    edit(landing, "settlements", lambda rows: [{**r, "settlement_id": None} if r["settlement_id"] == "B03" else r
                                               for r in rows])
    outcome, before = run_night(st, landing)
    assert isinstance(outcome, validate.ExtractBlocked)
    # the producer re-sends the night, corrected; it replaces the blocked copy in incoming
    shutil.rmtree(landing / D2)
    shutil.copytree(base / "landing" / D2, landing / D2)
    assert ingest.ingest_one(st, landing, D2, replace=True).status == "replaced"
    v = validate.validate(st, D2)
    assert v.status == "passed" and not v.quarantined
    assert validate.load_results(st, D2)["status"] == "passed"
    assert "B03" in {r["settlement_id"] for r in data_rows(st, "settlements")}


def test_zero_row_extract_is_blocked(world):
    st, landing = world
    edit(landing, "settlements", lambda rows: [])
    edit(landing, "settlement_items", lambda rows: [])
    # the feed's usual night (here 3 settlements) is above the configured floor
    outcome, before = run_night(st, landing, overrides={"volume": {"empty_blocks_from_median": 1}})
    _blocked(st, outcome, before, "extract_not_empty", "settlements")


def test_zero_row_night_of_a_tiny_feed_passes_with_a_warning(world):
    st, landing = world
    edit(landing, "settlements", lambda rows: [])
    edit(landing, "settlement_items", lambda rows: [])
    result, _ = run_night(st, landing)       # a 3-settlement feed may settle nothing one day
    assert isinstance(result, validate.ValidationResult) and result.status == "passed", result
    assert any("extract_has_rows" in w for w in result.warnings)


def test_duplicate_delivery_beyond_the_escalation_limit_blocks(world):
    st, landing = world
    # three of the night's settlements repeat night 1's ids: more than 10% of the rows
    def dup(rows):
        for old, new in (("B01", "A1"), ("B02", "A2"), ("B03", "A3")):
            rename(rows, old, new)
        return rows
    edit(landing, "settlements", dup)
    edit(landing, "settlement_items", dup)
    outcome, before = run_night(st, landing, overrides={"escalate": {"fraction": 0.1, "min_rows": 2}})
    msg = _blocked(st, outcome, before, "settlement_id_not_delivered_before", "feed fault")
    assert "A1" in msg


# ----------------------------------------------------------------------------- quarantined rows

#: settlement -> the reason its settlement row must carry (items: see CASES_ITEMS)
CASES = {
    "duplicate_settlement_id_within_extract": ("B01", "DUPLICATE_SETTLEMENT_ID"),
    "duplicate_settlement_id_across_extracts": ("A1", "ALREADY_DELIVERED"),
    "negative_amount_outside_reversal": ("B03", "NEGATIVE_AMOUNT"),
    "fund_above_total": ("B04", "FUND_ABOVE_TOTAL"),
    "discharge_before_admission": ("B05", "DISCHARGE_BEFORE_ADMIT"),
    "unknown_patient": ("B06", "UNKNOWN_PATIENT"),
    "unknown_institution": ("B07", "UNKNOWN_INSTITUTION"),
    "unknown_enum_value": ("B09", "UNKNOWN_ENUM"),
    "reversal_of_unknown_settlement": ("R2", "REVERSAL_OF_UNKNOWN"),
}
CASES_ITEMS = {
    "unknown_catalog_code": ("B08", "UNKNOWN_ITEM_CODE"),
    "dangling_item": ("GHOST", "DANGLING_ITEM"),
}


def _corrupt_settlements(rows):
    by = {r["settlement_id"]: r for r in rows}
    rows.append(dict(by["B01"]))                                  # same id twice
    rename(rows, "B02", "A1")                                     # id of night 1
    by["B03"].update(total_amount=-30, fund_paid=-21, self_paid=-9)
    by["B04"].update(fund_paid=by["B04"]["total_amount"] + 50,
                     self_paid=-50)
    by["B05"].update(visit_type="inpatient", discharge_date=by["B05"]["admit_date"].replace(day=4))
    by["B06"]["patient_id"] = "P999"
    by["B07"]["institution_id"] = "H99999999999"
    by["B09"]["visit_type"] = "emergency"
    rows.append({**by["R1"], "settlement_id": "R2", "reversal_of": "NO-SUCH-ID"})
    return rows


def _corrupt_items(rows):
    rename(rows, "B02", "A1")
    for r in rows:
        if r["settlement_id"] == "B08":
            r["item_code"] = "ZZZ99"
    rows.append({**next(r for r in rows if r["settlement_id"] == "R1"), "settlement_id": "R2"})
    rows.append({**rows[0], "settlement_id": "GHOST"})
    return rows


@pytest.fixture(scope="module")
def corrupted(base, tmp_path_factory):
    """One night with every row-level fault planted on its own settlement; validated in
    tiny GX batches (3 rows) so results must be summed across batches to be right."""
    root = tmp_path_factory.mktemp("corrupted")
    shutil.copytree(base, root / "w", symlinks=True)
    st, landing = load_settings(data_dir=root / "w" / "data"), root / "w" / "landing"
    edit(landing, "settlements", _corrupt_settlements)
    edit(landing, "settlement_items", _corrupt_items)
    result, before = run_night(st, landing, overrides={"batch_rows": 3})
    return st, result


@pytest.mark.parametrize("case", sorted(CASES))
def test_row_fault_is_quarantined_with_its_reason(corrupted, case):
    st, result = corrupted
    assert isinstance(result, validate.ValidationResult) and result.status == "passed", result
    sid, reason = CASES[case]
    held = [r for r in quarantine_rows(st, "settlements") if r["settlement_id"] == sid]
    assert held, f"{sid} not in quarantine"
    assert all(reason in r["reason_code"].split(",") for r in held), held
    assert all(r["expectation"] for r in held)
    if case == "duplicate_settlement_id_within_extract":
        assert len(held) == 2, "both copies are held back"
    # held whole: none of its rows or lines reach the screened data
    assert sid not in {r["settlement_id"] for r in data_rows(st, "settlements")}
    assert sid not in {r["settlement_id"] for r in data_rows(st, "settlement_items")}
    lines = [r for r in quarantine_rows(st, "settlement_items") if r["settlement_id"] == sid]
    assert lines and all(r["reason_code"] and r["expectation"] for r in lines)


@pytest.mark.parametrize("case", sorted(CASES_ITEMS))
def test_line_fault_is_quarantined_with_its_reason(corrupted, case):
    st, result = corrupted
    sid, reason = CASES_ITEMS[case]
    lines = [r for r in quarantine_rows(st, "settlement_items") if r["settlement_id"] == sid]
    assert lines and any(reason in r["reason_code"].split(",") for r in lines), lines
    assert sid not in {r["settlement_id"] for r in data_rows(st, "settlement_items")}
    if case == "unknown_catalog_code":   # its settlement is held with it
        held = [r for r in quarantine_rows(st, "settlements") if r["settlement_id"] == sid]
        assert [r["reason_code"] for r in held] == ["HELD_WITH_LINES"]


def test_clean_rows_of_a_faulty_night_proceed_and_detectors_never_see_quarantine(corrupted):
    st, result = corrupted
    kept = {r["settlement_id"] for r in data_rows(st, "settlements")}
    assert kept == {"B10", "B11", "B12", "B13", "B14", "BIN", "R1"}, "genuine reversal R1 passes"
    q = quarantine_rows(st, "settlements") + quarantine_rows(st, "settlement_items")
    assert {r["settlement_id"] for r in q} >= {"B01", "A1", "B03", "B08", "GHOST", "R2"}
    # nothing lost: every planted row is either screened or quarantined
    assert len(data_rows(st, "settlements")) + len(quarantine_rows(st, "settlements")) == 16 + 2  # + the duplicate copy and R2
    con = lake.open_screening(st, D2, features=False)
    seen = {r[0] for r in con.execute("SELECT settlement_id FROM settlements_delivered "
                                      "WHERE extract_date = DATE '2026-10-06'").fetchall()}
    con.close()
    assert seen == kept
    assert result.quarantined["settlements"]["HELD_WITH_LINES"] == 1
    stored = validate.load_results(st, D2)
    failed = {x["expectation_config"]["meta"]["rule"] for s in stored["suites"].values()
              for x in s["results"] if not x["success"]}
    assert {"settlement_id_unique_in_extract", "settlement_id_not_delivered_before", "fund_not_above_total",
            "item_has_settlement", "reversal_names_known_settlement"} <= failed
    text = validate.summary(result)
    assert "quarantined" in text and "DANGLING_ITEM" in text


def test_quarantine_cli_lists_rows(corrupted, capsys):
    from pipeline import cli
    st, _ = corrupted
    assert cli.main(["--data-dir", str(st.data_dir), "quarantine", "--date", D2]) == 0
    out = capsys.readouterr().out
    assert "UNKNOWN_PATIENT" in out and "settlement_items" in out


def test_blocked_night_exits_3_in_cli(world, capsys):
    from pipeline import cli
    st, landing = world
    edit(landing, "settlements", lambda rows: [])
    edit(landing, "settlement_items", lambda rows: [])
    cfg = st.data_dir / "gate.yaml"      # the gate's config file, with a higher floor for empty nights
    doc = yaml.safe_load((Path(validate.__file__).parents[1] / "expectations" / "config.yaml").read_text())
    doc["volume"]["empty_blocks_from_median"] = 1
    cfg.write_text(yaml.safe_dump(doc))
    assert cli.main(["--data-dir", str(st.data_dir), "ingest", "--landing", str(landing), "--date", D2,
                     "--gate-config", str(cfg)]) == 3
    assert "BLOCKED" in capsys.readouterr().err


def test_published_run_carries_the_validation_docs(world):
    from pipeline import screen
    st, landing = world
    run_night(st, landing)
    out = screen.screen(st, D2)
    assert (out / "validation" / "index.html").exists()
    assert (out / "validation" / "settlements.html").exists()
    assert json.loads((out / "validation" / "results.json").read_text())["status"] == "passed"


# ----------------------------------------------------------------------------- one process, many nights

def _suites_without_run_times(st) -> dict:
    suites = validate.load_results(st, D2)["suites"]
    for s in suites.values():
        s["meta"]["run_id"].pop("run_time")
    return suites


def test_nights_validated_in_one_process_share_the_gx_engine_and_agree(base, tmp_path):
    """The GX engine is set up once per process; a second night through it (with
    quarantined rows, in 3-row batches) gives exactly the first night's results."""
    engine = validate._gx_engine()
    outcomes = []
    for copy in ("a", "b"):
        shutil.copytree(base, tmp_path / copy, symlinks=True)
        st, landing = load_settings(data_dir=tmp_path / copy / "data"), tmp_path / copy / "landing"
        edit(landing, "settlements", _corrupt_settlements)
        result, _ = run_night(st, landing, overrides={"batch_rows": 3})
        assert isinstance(result, validate.ValidationResult) and result.quarantined, result
        outcomes.append((result.quarantined, result.warnings, _suites_without_run_times(st),
                         quarantine_rows(st, "settlements")))
    assert validate._gx_engine() is engine
    assert outcomes[0] == outcomes[1]


def test_gx_configuration_memo_holds_only_inside_a_validate_call():
    """Inside the gate's GX calls an expectation's configuration is built once; anywhere
    else GX's property is as shipped (a fresh configuration on every read); the results
    of a suite are the same either way."""
    import great_expectations as gx
    import pandas as pd

    engine = validate._gx_engine()
    e = gx.expectations.ExpectColumnValuesToBeBetween(column="x", min_value=0, max_value=10)
    assert e.configuration is not e.configuration
    with validate._configurations_memoized():
        assert e.configuration is e.configuration
    assert e.configuration is not e.configuration

    suite = gx.ExpectationSuite(name="memo", expectations=[
        gx.expectations.ExpectColumnValuesToBeBetween(column="x", min_value=0, max_value=10),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="y"),
        gx.expectations.ExpectColumnValuesToBeInSet(column="y", value_set=["a", "b"])])
    df = pd.DataFrame({"x": [1, 5, 11, -2], "y": ["a", None, "c", "b"]})
    fmt = {"result_format": "COMPLETE", "unexpected_index_column_names": ["x"]}
    batch_def = engine.batch_definition("memo_test")

    def run():
        res = batch_def.get_batch(batch_parameters={"dataframe": df}).validate(suite, result_format=fmt)
        return [(r.success, r.result, r.expectation_config.to_json_dict()) for r in res.results]
    plain = run()
    with validate._configurations_memoized():
        memoized = run()
    assert memoized == plain
    assert [ok for ok, _, _ in plain] == [False, False, False]
