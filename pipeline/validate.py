"""Validate: the gate between a landed extract (lake/incoming) and the screened data.

An extract in ``incoming/`` is checked against the suites in ``expectations/`` (one
module per contract table, severities and tolerances in ``expectations/config.yaml``):

- row rules run in Great Expectations' pandas engine, batch by batch: DuckDB streams
  each table of the new extract (with a few derived check columns) as Arrow batches of
  ``batch_rows`` rows, so memory is bounded by one batch whatever the night's size;
  the per-batch results are summed into one GX result per expectation;
- rules that need the whole extract or the lake (uniqueness, references, repeats of
  earlier extracts, volume against history) run in DuckDB and enter the same GX suite
  result as ``UnexpectedRowsExpectation`` results carrying the query that ran.

Outcome, by severity: any blocking failure (or a row rule failing on so many rows that
it is a feed fault) refuses the extract: it stays in ``incoming/``, nothing is promoted,
``ExtractBlocked`` names table, column, rule and sample rows. Otherwise the offending
rows go to ``<extract>/quarantine/<table>.parquet`` with ``reason_code`` and
``expectation`` (a settlement is held whole: its row and all its lines), are removed
from the data files, and the extract is promoted to ``extracts/`` with one rename.

Either way the night's results are written to ``<lake>/validation/<date>/``:
``results.json`` (GX suite results + verdict) and ``data_docs/`` (GX-rendered HTML).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from expectations import TABLES, suite_module
from expectations._suite import Check, build_suite, check_expectation, load_config
from pipeline import contract, crashpoints, lake
from pipeline.ingest import incoming_dir, log_event
from pipeline.lake import sql_literal
from pipeline.settings import Settings

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
log = logging.getLogger("claimscreen.validate")
# GX announces its temporary Data Docs folders at INFO (and sets that logger's level itself
# when imported): noise on a supervisor's terminal, dropped by a filter that outlives it
logging.getLogger("great_expectations.data_context.types.base").addFilter(
    lambda record: record.levelno >= logging.WARNING)

QUARANTINE = "quarantine"
PROFILE = "_profile/volume.parquet"
SAMPLE = 20
FACT_REASON_HELD = {"settlements": "HELD_WITH_LINES", "settlement_items": "HELD_WITH_SETTLEMENT"}


class ExtractBlocked(Exception):
    """Validation found blocking failures; the extract was not promoted."""

    def __init__(self, extract_date: str, failures: list[str], report_dir: Path | None = None):
        self.extract_date = extract_date
        self.failures = failures
        self.report_dir = report_dir
        super().__init__(f"extract {extract_date} blocked by validation: " + "; ".join(failures))


@dataclass
class ValidationResult:
    extract_date: str
    status: str                     # "passed", "blocked", "already_promoted"
    blocking: list = field(default_factory=list)
    quarantined: dict = field(default_factory=dict)     # table -> {reason_code: rows}
    warnings: list = field(default_factory=list)
    rows: dict = field(default_factory=dict)            # table -> rows checked
    rules: dict = field(default_factory=dict)           # evaluated / failed counts
    seconds: float = 0.0
    report_dir: Path | None = None


def report_dir(settings: Settings, extract_date: str) -> Path:
    return settings.lake_dir / "validation" / extract_date


def validate(settings: Settings, extract_date: str, config: str | Path | None = None,
             overrides: dict | None = None) -> ValidationResult:
    """Run the gate on one landed extract and promote it when nothing blocks.

    ``config`` is the gate configuration file (default ``expectations/config.yaml``);
    ``overrides`` merges into it (e.g. ``{"batch_rows": 1000}``). Raises
    ``ExtractBlocked`` when the extract is refused.
    """
    # one gate per night at a time: a second run of the same night (another ingest, run or
    # DAG task) waits, then finds it promoted or gates it itself
    with lake.named_lock(settings, f"validate-{extract_date}",
                         on_wait=lambda: log.warning("another process is validating %s; waiting for it",
                                                     extract_date)):
        return _validate(settings, extract_date, config, overrides)


def _validate(settings: Settings, extract_date: str, config, overrides) -> ValidationResult:
    promoted = lake.extract_dir(settings, extract_date)
    staged = incoming_dir(settings, extract_date)
    if not staged.exists():
        if (promoted / "_INGESTED.json").exists():
            return ValidationResult(extract_date, "already_promoted")
        raise FileNotFoundError(f"extract {extract_date} is not in the lake: ingest it first")
    cfg = load_config(config, overrides)
    inputs = gate_inputs_sha256(settings, cfg)
    t0 = time.perf_counter()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    con = lake.connect(settings)
    try:
        gate = _Gate(con, settings, cfg, extract_date, staged)
        gate.inputs_sha256 = inputs
        gate.run()
        result = gate.verdict()
        result.seconds = round(time.perf_counter() - t0, 2)
        with lake.lake_lock(settings):
            result.report_dir = _write_report(settings, gate, result, started)
        if result.blocking:
            log_event(settings, {"event": "blocked", "extract_date": extract_date,
                                 "failures": result.blocking})
            log.error("%s", summary(result))
            raise ExtractBlocked(extract_date, result.blocking, result.report_dir)
        # quarantine, profile and promotion change the lake: under its lock, and only if
        # the night validated is still the one in incoming (no --replace meanwhile)
        with lake.lake_lock(settings):
            if _manifest_of(staged) != gate.manifest_sha256:
                raise RuntimeError(f"extract {extract_date} was replaced in incoming/ while it was "
                                   f"being validated; run the gate again")
            gate.quarantine()
            gate.write_profile()
            crashpoints.point("validate.before_promote")
            _promote_locked(settings, extract_date)
    finally:
        con.close()
    log_event(settings, {"event": "promoted", "extract_date": extract_date,
                         "quarantined": result.quarantined, "warnings": len(result.warnings)})
    log.info("%s", summary(result))
    return result


def gate_inputs_sha256(settings: Settings, cfg) -> str:
    """What a verdict depends on besides the night itself: the gate configuration and the
    promoted nights (references, earlier deliveries, volume history). A blocked night whose
    inputs have not changed since would be blocked again: the feed does not re-run it."""
    import hashlib
    state = {}
    for d in lake.ingested_dates(settings):
        try:
            state[d] = json.loads((lake.extract_dir(settings, d) / "_INGESTED.json").read_text())["manifest_sha256"]
        except (OSError, ValueError, KeyError):
            state[d] = None
    doc = json.dumps({"config": cfg.doc, "promoted": state}, sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest()


def stored_block(settings: Settings, extract_date: str, cfg) -> dict | None:
    """The stored results of a blocked night when re-running the gate would change nothing
    (same copy in incoming, same configuration, same promoted nights); else None."""
    try:
        doc = load_results(settings, extract_date)
    except (OSError, ValueError):
        return None
    if (doc.get("status") == "blocked"
            and doc.get("manifest_sha256") == _manifest_of(incoming_dir(settings, extract_date))
            and doc.get("inputs_sha256") == gate_inputs_sha256(settings, cfg)):
        return doc
    return None


def promote(settings: Settings, extract_date: str) -> Path:
    """Move a validated extract from incoming/ into the screened zone in one rename.

    Idempotent: an extract already promoted (and not re-delivered since) stays as it is."""
    with lake.lake_lock(settings):
        if not incoming_dir(settings, extract_date).exists():
            done = lake.extract_dir(settings, extract_date)
            if (done / "_INGESTED.json").exists():
                return done
            raise FileNotFoundError(f"extract {extract_date} is not in the lake: ingest it first")
        return _promote_locked(settings, extract_date)


def _promote_locked(settings: Settings, extract_date: str) -> Path:
    src = incoming_dir(settings, extract_date)
    dst = lake.extract_dir(settings, extract_date)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        old = settings.lake_dir / ".replaced" / f"{extract_date}-promoted-{src.stat().st_ino}"
        old.parent.mkdir(parents=True, exist_ok=True)
        dst.rename(old)
    src.rename(dst)
    return dst


def _manifest_of(staged: Path) -> str | None:
    p = staged / "_INGESTED.json"
    return json.loads(p.read_text()).get("manifest_sha256") if p.exists() else None


# --------------------------------------------------------------------------- the GX engine

class _GxEngine:
    """GX's pandas engine, set up once per process and shared by every gate run in it.

    An ephemeral context with one pandas datasource and one dataframe asset per contract
    table; each batch is handed in as a dataframe, so nothing in here belongs to a night.
    """

    def __init__(self):
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.execution_engine import pandas_execution_engine

        # GX fingerprints every pandas batch (an md5 over a hash of every row) for the
        # batch markers of its own suite result; the gate builds its suite results itself
        # and never reads them, so the fingerprint is only per-row cost: skip it
        pandas_execution_engine.HASH_THRESHOLD = 0
        _install_configuration_memo()
        self.ctx = gx.get_context(mode="ephemeral")
        self.ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        self.datasource = self.ctx.data_sources.add_pandas("claimscreen_extract")
        self._batch_defs: dict = {}
        self._lock = threading.Lock()

    def batch_definition(self, table: str):
        """The whole-dataframe batch definition of one table (each batch brings its dataframe)."""
        with self._lock:
            if table not in self._batch_defs:
                asset = self.datasource.add_dataframe_asset(table)
                self._batch_defs[table] = asset.add_batch_definition_whole_dataframe(f"{table} batches")
            return self._batch_defs[table]


_engine: _GxEngine | None = None
_engine_lock = threading.Lock()


def _gx_engine() -> _GxEngine:
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = _GxEngine()
        return _engine


_memo = threading.local()
_original_configuration = None


def _install_configuration_memo() -> None:
    """Let ``Expectation.configuration`` be built once per expectation inside a memoized call.

    In GX 1.x that property rebuilds an ExpectationConfiguration (a pydantic ``.dict()`` of
    every field) on each read, and the validator reads it for every kwarg of every
    expectation while it plans and checks a batch: about a hundred times per expectation
    per batch, most of the gate's fixed cost. Outside ``_configurations_memoized()`` (on
    any thread) the property behaves exactly as GX ships it.
    """
    global _original_configuration
    from great_expectations.expectations.expectation import Expectation

    if _original_configuration is not None:
        return
    original = Expectation.configuration.fget

    def configuration(self):
        cache = getattr(_memo, "cache", None)
        if cache is None:
            return original(self)
        hit = cache.get(id(self))
        if hit is None or hit[0] is not self:
            hit = cache[id(self)] = (self, original(self))
        return hit[1]

    configuration.__doc__ = original.__doc__
    Expectation.configuration = property(configuration)
    _original_configuration = original


@contextlib.contextmanager
def _configurations_memoized():
    """Within one GX validate call, each expectation's configuration is built once.

    The expectations GX reads there are its own short-lived copies (it makes them from the
    suite's configurations with ``to_domain_obj``) and nothing changes them once made, so
    the first reading stands for the rest. The cache (which holds each expectation, so an
    id is never reused while it lives) lasts for the call and for this thread only.
    """
    outer = getattr(_memo, "cache", None)
    _memo.cache = {} if outer is None else outer
    try:
        yield
    finally:
        _memo.cache = outer


# --------------------------------------------------------------------------- the gate

@dataclass
class _RuleOutcome:
    table: str
    rule: str
    severity: str
    reason: str
    en: str
    zh: str
    columns: str
    unexpected: int = 0
    rows: int = 0
    sample: list = field(default_factory=list)
    error: str | None = None
    escalated: bool = False


class _Gate:
    """One run of the gate over one incoming extract (a DuckDB connection; the GX engine is shared)."""

    def __init__(self, con, settings: Settings, cfg, extract_date: str, staged: Path):
        self.con, self.settings, self.cfg, self.date, self.staged = con, settings, cfg, extract_date, staged
        self.tables = [t for t in TABLES if self._files(t)]
        self.rows: dict[str, int] = {}
        self.suite_results: dict = {}
        self.outcomes: list[_RuleOutcome] = []
        self.timings: dict[str, dict] = {}
        ingested = staged / "_INGESTED.json"
        entry = json.loads(ingested.read_text()) if ingested.exists() else {}
        self.ingest_warnings = entry.get("warnings", [])
        self.manifest_sha256 = entry.get("manifest_sha256")

    # ---- inputs
    def _files(self, table: str) -> list[Path]:
        if table in contract.FACT_TABLES:
            return sorted((self.staged / table).glob("*.parquet"))
        p = self.staged / "reference" / f"{table}.parquet"
        return [p] if p.exists() else []

    def _views(self) -> None:
        con = self.con
        con.execute("CREATE OR REPLACE TEMP TABLE offenders (tbl VARCHAR, k1 VARCHAR, k2 INTEGER, "
                    "rule VARCHAR, reason_code VARCHAR)")
        for table, schema in contract.ALL_TABLES.items():
            files = self._files(table)
            if files:
                con.execute(f"CREATE OR REPLACE TEMP VIEW new_{table} AS SELECT * FROM {_parquet(files)}")
        # references as they will stand once this extract is in: its own snapshot (minus
        # rows it quarantines) or else the newest promoted one on or before its date
        self.snapshot_available = {}
        for table, schema in contract.REFERENCE_TABLES.items():
            key = contract.KEYS[table][0]
            if table in self.tables:
                sql = (f"SELECT * FROM new_{table} WHERE {key} IS NULL OR {key} NOT IN "
                       f"(SELECT k1 FROM offenders WHERE tbl = '{table}' AND k1 IS NOT NULL)")
                self.snapshot_available[table] = True
            else:
                files = lake.lake_files(self.settings, table, upto=self.date)
                self.snapshot_available[table] = bool(files)
                sql = (f"SELECT * FROM {_parquet(files[-1])}" if files
                       else lake._empty_relation_sql(schema, with_extract_date=False))
            con.execute(f"CREATE OR REPLACE TEMP VIEW ref_{table} AS {sql}")
        prior = [f for f in lake.lake_files(self.settings, "settlements")
                 if f"extract_date={self.date}" not in f.parts]
        if prior:
            lst = "[" + ", ".join(sql_literal(f) for f in prior) + "]"
            con.execute(f"CREATE OR REPLACE TEMP VIEW prior_settlements AS SELECT settlement_id, reversal_of, "
                        f"CAST(extract_date AS DATE) AS extract_date FROM read_parquet({lst}, "
                        f"hive_partitioning = true, hive_types = {{'extract_date': DATE}})")
        else:
            con.execute("CREATE OR REPLACE TEMP VIEW prior_settlements AS SELECT CAST(NULL AS VARCHAR) "
                        "AS settlement_id, CAST(NULL AS VARCHAR) AS reversal_of, "
                        "CAST(NULL AS DATE) AS extract_date WHERE false")
        con.execute(f"CREATE OR REPLACE TEMP VIEW volume_history AS {self._volume_history_sql()}")

    def _volume_history_sql(self) -> str:
        """Per (night, institution, region) volume of the last promoted extracts before this one."""
        n = int(self.cfg.volume("trailing_extracts"))
        dates = [d for d in lake.ingested_dates(self.settings) if d < self.date][-n:]
        parts = []
        for d in dates:
            base = lake.extract_dir(self.settings, d)
            prof = base / PROFILE
            if prof.exists():
                parts.append(f"SELECT * FROM {_parquet(prof)}")
            else:   # promoted before profiles existed: compute it from the data
                files = sorted((base / "settlements").glob("*.parquet"))
                if files:
                    parts.append(_profile_sql(_parquet(files), d))
        if not parts:
            return ("SELECT CAST(NULL AS DATE) AS extract_date, CAST(NULL AS VARCHAR) AS institution_id, "
                    "CAST(NULL AS VARCHAR) AS settle_region, CAST(NULL AS BIGINT) AS n_settlements, "
                    "CAST(NULL AS DOUBLE) AS fund_paid WHERE false")
        return " UNION ALL ".join(parts)

    # ---- running
    def run(self) -> None:
        self._views()
        self.gx = _gx_engine()
        for table in self.tables:
            self.rows[table] = self.con.execute(f"SELECT count(*) FROM new_{table}").fetchall()[0][0]
            module = suite_module(table)
            t0 = time.perf_counter()
            results = self._run_suite(table, module)
            t1 = time.perf_counter()
            results += [self._run_check(table, module, c) for c in module.CHECKS]
            self.timings[table] = {"gx_pandas_s": round(t1 - t0, 2),
                                   "duckdb_checks_s": round(time.perf_counter() - t1, 2)}
            self.suite_results[table] = _suite_result(table, results, self.date)
        self.suite_results["extract"] = _suite_result("extract", [self._run_extract_checks()], self.date)

    def _run_suite(self, table: str, module) -> list:
        """GX pandas engine over the table's batches; results summed per expectation.

        Two passes: table-level expectations (the column set) see one zero-row frame with
        every column as stored; row expectations see the streamed batches, which leave
        out list columns (no row rule reads them).
        """
        import great_expectations as gx

        suite = build_suite(module, self.cfg, self.date)
        table_level = [e for e in suite.expectations if e.expectation_type.startswith("expect_table_")]
        row_level = [e for e in suite.expectations if not e.expectation_type.startswith("expect_table_")]
        batch_def = self.gx.batch_definition(table)
        schema = contract.ALL_TABLES[table]
        lists = [f.name for f in schema if pa.types.is_list(f.type)]
        params = {"extract_date": self.date,
                  **(module.batch_params(self.cfg) if hasattr(module, "batch_params") else {})}
        row_sql = (f"SELECT * EXCLUDE ({', '.join(lists)}) FROM ({module.BATCH_SQL})" if lists
                   else module.BATCH_SQL)
        out = []
        for sql, expectations in ((f"SELECT * FROM new_{table} LIMIT 0", table_level), (row_sql, row_level)):
            if expectations:
                part = gx.ExpectationSuite(name=table, expectations=expectations)
                out += self._run_batches(table, module, batch_def, part, sql,
                                         params if "$" in sql else {})
        return out

    def _run_batches(self, table: str, module, batch_def, suite, sql: str, params: dict) -> list:
        from great_expectations.core import ExpectationValidationResult

        key = list(module.KEY)
        fmt = {"result_format": "COMPLETE", "unexpected_index_column_names": key,
               "partial_unexpected_count": SAMPLE, "return_unexpected_index_query": False}
        reader = self.con.sql(sql, params=params).to_arrow_reader(self.cfg.batch_rows)
        pending = []        # offender keys, inserted once the stream is drained (one open result)
        limit = self._escalation_limit(table)
        agg: dict[int, dict] = {}
        n_batches = 0

        def batches():
            got = False
            for rb in reader:
                got = True
                yield pa.Table.from_batches([rb])
            if not got:     # an empty table is still checked (schema rules, zero counts)
                yield reader.schema.empty_table()

        for batch in batches():
            n_batches += 1
            df = batch.to_pandas(date_as_object=False, split_blocks=True, self_destruct=True)
            del batch
            with _configurations_memoized():
                res = batch_def.get_batch(batch_parameters={"dataframe": df}).validate(suite, result_format=fmt)
            del df
            for pos, r in enumerate(res.results):
                cfgx = r.expectation_config
                a = agg.setdefault(pos, {"config": cfgx, "success": True, "element_count": 0,
                                         "unexpected_count": 0, "missing_count": 0,
                                         "partial_unexpected_list": [], "partial_unexpected_index_list": [],
                                         "exception": None, "observed": None, "details": None})
                a["success"] &= bool(r.success)
                error = _exception_of(r.exception_info)
                if error:
                    a["exception"] = error
                    continue
                res_d = r.result or {}
                if "observed_value" in res_d and a["observed"] is None:
                    a["observed"], a["details"] = _jsonable(res_d["observed_value"]), _jsonable(res_d.get("details"))
                a["element_count"] += int(res_d.get("element_count") or 0)
                a["unexpected_count"] += int(res_d.get("unexpected_count") or 0)
                a["missing_count"] += int(res_d.get("missing_count") or 0)
                room = SAMPLE - len(a["partial_unexpected_list"])
                if room > 0:
                    a["partial_unexpected_list"] += _jsonable(res_d.get("partial_unexpected_list") or [])[:room]
                    a["partial_unexpected_index_list"] += _jsonable(
                        res_d.get("partial_unexpected_index_list") or [])[:room]
                meta = cfgx.meta
                if meta["severity"] == "row" and res_d.get("unexpected_index_list"):
                    # keys beyond the escalation limit are not needed: the rule blocks anyway
                    have = a.setdefault("collected", 0)
                    idx = res_d["unexpected_index_list"][: max(0, limit + 1 - have)]
                    a["collected"] = have + len(idx)
                    pending.append(_offender_table(table, key, idx, meta))
        reader.close()
        for t in pending:
            self.con.register("_new_offenders", t)
            self.con.execute("INSERT INTO offenders SELECT * FROM _new_offenders")
            self.con.unregister("_new_offenders")
        out = []
        for a in agg.values():
            cfgx = a["config"]
            result = {k: a[k] for k in ("element_count", "unexpected_count", "missing_count",
                                        "partial_unexpected_list", "partial_unexpected_index_list")}
            if a["element_count"]:
                result["unexpected_percent"] = 100.0 * a["unexpected_count"] / a["element_count"]
            if a["observed"] is not None:
                result = {"observed_value": a["observed"], **({"details": a["details"]} if a["details"] else {})}
            exc = ({"raised_exception": True, "exception_message": a["exception"], "exception_traceback": None}
                   if a["exception"] else {"raised_exception": False, "exception_message": None,
                                            "exception_traceback": None})
            success = a["success"] and not a["exception"]
            out.append(ExpectationValidationResult(success=success, expectation_config=cfgx, result=result,
                                                   exception_info=exc, meta={"batches": n_batches}))
            sample = ([dict(i) if isinstance(i, dict) else i for i in a["partial_unexpected_index_list"]]
                      or a["partial_unexpected_list"] or ([a["details"]] if a["details"] else []))
            self._record(table, cfgx.meta, _columns_of(cfgx.kwargs), a["unexpected_count"],
                         a["element_count"] or self.rows[table], sample, a["exception"], success)
        return out

    def _run_check(self, table: str, module, check: Check):
        """One DuckDB check over the whole extract, as a GX UnexpectedRowsExpectation result."""
        from great_expectations.core import ExpectationValidationResult

        sql = check.sql.replace("{batch}", f"new_{table}")
        exp = check_expectation(table, check, self.cfg, check.sql)
        meta = exp.meta
        error = None
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE check_rows AS {sql}", check.params(self.cfg))
            n = self.con.execute("SELECT count(*) FROM check_rows").fetchall()[0][0]
            sample = _rows(self.con, f"SELECT * FROM check_rows LIMIT {SAMPLE}")
            if check.scope == "rows" and meta["severity"] == "row" and n:
                k2 = "CAST(#2 AS INTEGER)" if len(module.KEY) > 1 else "CAST(NULL AS INTEGER)"
                limit = self._escalation_limit(table)
                self.con.execute(f"INSERT INTO offenders SELECT $t, CAST(#1 AS VARCHAR), {k2}, $rule, $reason "
                                 f"FROM check_rows LIMIT {limit + 1}",
                                 {"t": table, "rule": check.id, "reason": check.reason})
        except Exception as e:  # a check that cannot run is a failure, never a pass
            n, sample, error = 0, [], f"{type(e).__name__}: {e}"
        success = error is None and n == 0
        result = {"observed_value": n, "details": {"unexpected_rows": sample}}
        self._record(table, meta, "", n, self.rows.get(table, 0), sample, error, success, check.scope)
        return ExpectationValidationResult(
            success=success, expectation_config=exp.configuration, result=result,
            exception_info={"raised_exception": error is not None, "exception_message": error,
                            "exception_traceback": None}, meta={"evaluated_by": "duckdb"})

    def _run_extract_checks(self):
        missing = [t for t, ok in self.snapshot_available.items() if not ok]
        values = ", ".join(f"('{t}')" for t in missing) or "(NULL)"
        check = Check("reference_snapshots_available", "NO_REFERENCE_SNAPSHOT",
                      "Every reference table has a snapshot (this extract or an earlier one)",
                      "每张参考表都有快照",
                      f"SELECT reference_table FROM (VALUES {values}) AS {{batch}}(reference_table) "
                      f"WHERE reference_table IS NOT NULL", scope="extract")

        class _Extract:      # the extract-wide rules have no table of their own
            KEY = ()
        return self._run_check("extract", _Extract, check)

    def _escalation_limit(self, table: str) -> int:
        return max(self.cfg.escalate_min_rows, int(self.cfg.escalate_fraction * self.rows.get(table, 0)))

    def _record(self, table, meta, columns, unexpected, rows, sample, error, success, scope="rows"):
        o = _RuleOutcome(table, meta["rule"], meta["severity"], meta["reason_code"], meta["name_en"],
                         meta["name_zh"], columns, unexpected, rows, list(sample)[:5], error)
        if success:
            return
        if o.severity == "row" and scope == "rows" and unexpected > self._escalation_limit(table):
            o.escalated = True
        # several expectations may share a rule id (one per column): keep each failure
        self.outcomes.append(o)

    # ---- verdict and consequences
    def verdict(self) -> ValidationResult:
        blocking, warnings = [], [f"ingest: {w}" for w in self.ingest_warnings]
        for o in self.outcomes:
            what = (f"{o.table}.{o.columns or '*'}: rule {o.rule} ({o.en} / {o.zh}) failed on "
                    f"{o.unexpected} of {o.rows} rows; e.g. {json.dumps(o.sample, ensure_ascii=False, default=str)}")
            if o.error:
                blocking.append(f"{o.table}: rule {o.rule} ({o.en}) could not be evaluated: {o.error}")
            elif o.severity == "blocking":
                blocking.append(what)
            elif o.escalated:
                blocking.append(what + f" — more than the escalation limit "
                                       f"({self._escalation_limit(o.table)} rows): a feed fault, not bad rows")
            elif o.severity == "warn" or o.table == "extract":
                warnings.append(what)
            elif not o.unexpected:
                # failed, yet named no offending row: nothing to quarantine, so it must block
                blocking.append(what + " — failed without naming offending rows")
        quarantined = {} if blocking else self._quarantine_counts()
        evaluated = sum(len(r.results) for r in self.suite_results.values())
        failed = sum(1 for r in self.suite_results.values() for x in r.results if not x.success)
        return ValidationResult(self.date, "blocked" if blocking else "passed", blocking, quarantined,
                                warnings, dict(self.rows), {"evaluated": evaluated, "failed": failed})

    def _held_settlements_sql(self) -> str:
        """Settlements held back whole, with every rule that held them (on the row or a line)."""
        return ("SELECT k1 AS settlement_id, string_agg(DISTINCT rule, ',' ORDER BY rule) AS rules "
                "FROM offenders WHERE tbl IN ('settlements', 'settlement_items') AND k1 IS NOT NULL "
                "GROUP BY k1")

    def _quarantine_sql(self, table: str) -> str:
        """The rows of ``table`` held back, each with its reason codes and rules.

        A row held only because its settlement or a sibling line failed gets a HELD_* reason
        and, as expectation, the rules that held its settlement.
        """
        def reasons(tbl, on):
            return (f"(SELECT k1, k2, string_agg(DISTINCT reason_code, ',' ORDER BY reason_code) AS reason_code, "
                    f"string_agg(DISTINCT rule, ',' ORDER BY rule) AS expectation FROM offenders "
                    f"WHERE tbl = '{tbl}' GROUP BY k1, k2) AS r ON {on}")
        if table in contract.FACT_TABLES:
            on = "r.k1 = t.settlement_id" + (" AND r.k2 = t.line_no" if table == "settlement_items" else "")
            return (f"SELECT t.*, coalesce(r.reason_code, '{FACT_REASON_HELD[table]}') AS reason_code, "
                    f"coalesce(r.expectation, h.rules) AS expectation FROM new_{table} AS t "
                    f"JOIN ({self._held_settlements_sql()}) AS h USING (settlement_id) "
                    f"LEFT JOIN {reasons(table, on)}")
        key = contract.KEYS[table][0]
        return (f"SELECT t.*, r.reason_code, r.expectation FROM new_{table} AS t "
                f"JOIN {reasons(table, f'r.k1 = CAST(t.{key} AS VARCHAR)')}")

    def _quarantine_counts(self) -> dict:
        out = {}
        for table in self.tables:
            got = self.con.execute(f"SELECT reason_code, count(*) FROM ({self._quarantine_sql(table)}) "
                                   f"GROUP BY 1 ORDER BY 1").fetchall()
            if got:
                out[table] = dict(got)
        return out

    def quarantine(self) -> None:
        """Write held rows to quarantine/<table>.parquet, then rewrite the data files without them."""
        qdir = self.staged / QUARANTINE
        _clear_stale_temp(self.staged)
        for table in self.tables:
            n = self.con.execute(f"SELECT count(*) FROM ({self._quarantine_sql(table)})").fetchall()[0][0]
            if not n:
                continue
            qdir.mkdir(exist_ok=True)
            dst = qdir / f"{table}.parquet"
            tmp = qdir / f".{table}.{uuid.uuid4().hex[:6]}.parquet"
            sql = self._quarantine_sql(table)
            if dst.exists():    # an interrupted earlier run: keep what it held back too
                sql = f"SELECT DISTINCT * FROM (SELECT * FROM {_parquet(dst)} UNION ALL BY NAME {sql})"
            self.con.execute(f"COPY ({sql}) TO {sql_literal(tmp)} (FORMAT parquet, COMPRESSION zstd)")
            os.replace(tmp, dst)
        crashpoints.point("validate.quarantine_written")
        held = self._held_settlements_sql()
        for table in self.tables:
            if table in contract.FACT_TABLES:
                keep = f"ANTI JOIN ({held}) AS h USING (settlement_id)"
            else:
                key = contract.KEYS[table][0]
                keep = (f"WHERE {key} IS NULL OR CAST({key} AS VARCHAR) NOT IN "
                        f"(SELECT k1 FROM offenders WHERE tbl = '{table}' AND k1 IS NOT NULL)")
            for f in self._files(table):
                src = f"SELECT * FROM {_parquet(f)}"
                before = self.con.execute(f"SELECT count(*) FROM ({src})").fetchall()[0][0]
                after = self.con.execute(f"SELECT count(*) FROM ({src}) AS t {keep}").fetchall()[0][0]
                if after == before:
                    continue
                tmp = f.with_name(f".{f.stem}.{uuid.uuid4().hex[:6]}.rewrite")
                self.con.execute(f"COPY (SELECT t.* FROM ({src}) AS t {keep}) TO {sql_literal(tmp)} "
                                 f"(FORMAT parquet, COMPRESSION zstd)")
                os.replace(tmp, f)

    def write_profile(self) -> None:
        """This night's accepted volume per institution and region: tomorrow's history."""
        dst = self.staged / PROFILE
        dst.parent.mkdir(parents=True, exist_ok=True)
        source = _parquet(self._files("settlements"))
        self.con.execute(f"COPY ({_profile_sql(source, self.date)}) TO {sql_literal(dst)} "
                         f"(FORMAT parquet)")


def _clear_stale_temp(staged: Path) -> None:
    """Temp files a gate killed mid-rewrite left in the night (hidden, never read as data)."""
    for p in staged.rglob(".*"):
        if p.is_file() and (p.suffix == ".rewrite" or p.parent.name == QUARANTINE):
            p.unlink(missing_ok=True)


def _profile_sql(source: str, extract_date: str) -> str:
    return (f"SELECT CAST('{extract_date}' AS DATE) AS extract_date, institution_id, settle_region, "
            f"count(*) AS n_settlements, CAST(coalesce(sum(fund_paid), 0) AS DOUBLE) AS fund_paid "
            f"FROM {source} GROUP BY institution_id, settle_region")


def _offender_table(table: str, key: list[str], index_list: list, meta: dict) -> pa.Table:
    """GX's unexpected_index_list (key values of offending rows) as rows of ``offenders``."""
    n = len(index_list)
    k1 = [None if d.get(key[0]) is None else str(d.get(key[0])) for d in index_list]
    k2 = [None if len(key) < 2 or d.get(key[1]) is None else int(d[key[1]]) for d in index_list]
    return pa.table({"tbl": [table] * n, "k1": pa.array(k1, pa.string()), "k2": pa.array(k2, pa.int32()),
                     "rule": [meta["rule"]] * n, "reason_code": [meta["reason_code"]] * n})


def _exception_of(info) -> str | None:
    """GX reports a failed metric either flat or keyed by metric id: the message, if any."""
    if not info:
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for v in info.values():
        if isinstance(v, dict) and v.get("raised_exception"):
            return str(v.get("exception_message"))
    return None


def _parquet(files) -> str:
    """read_parquet over extract files, without DuckDB adding the extract_date=... folder as a column."""
    files = [files] if isinstance(files, (str, Path)) else list(files)
    return "read_parquet([" + ", ".join(sql_literal(f) for f in files) + "], hive_partitioning = false)"


def _columns_of(kwargs: dict) -> str:
    if "column" in kwargs:
        return kwargs["column"]
    if "column_A" in kwargs:
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    if "column_list" in kwargs:
        return ",".join(kwargs["column_list"])
    return ""


def _jsonable(v):
    return json.loads(json.dumps(v, default=str))


def _rows(con, sql: str) -> list[dict]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return _jsonable([dict(zip(names, r)) for r in cur.fetchall()])


def _suite_result(name: str, results: list, extract_date: str):
    from great_expectations.core import ExpectationSuiteValidationResult

    ok = sum(1 for r in results if r.success)
    return ExpectationSuiteValidationResult(
        success=ok == len(results), results=results, suite_name=name,
        statistics={"evaluated_expectations": len(results), "successful_expectations": ok,
                    "unsuccessful_expectations": len(results) - ok,
                    "success_percent": 100.0 * ok / len(results) if results else 100.0},
        meta={"great_expectations_version": _gx_version(),
              "active_batch_definition": {"datasource_name": "claimscreen_extract", "data_asset_name": name,
                                          "batch_definition_name": f"extract_date={extract_date}"},
              "batch_spec": {"extract_date": extract_date},
              "run_id": {"run_name": f"validate-{extract_date}", "run_time": datetime.now(timezone.utc).isoformat()}})


def _gx_version() -> str:
    import great_expectations as gx
    return gx.__version__


# --------------------------------------------------------------------------- reports

def _write_report(settings: Settings, gate: _Gate, result: ValidationResult, started: str) -> Path:
    """results.json + data_docs/ in <lake>/validation/<date>/, replaced as a whole."""
    from pipeline import validation_docs

    final = report_dir(settings, gate.date)
    for stale in final.parent.glob(f".{final.name}.*") if final.parent.exists() else []:
        shutil.rmtree(stale, ignore_errors=True)      # left by a gate killed while writing (under the lock)
    building = final.with_name(f".{final.name}.{uuid.uuid4().hex[:6]}")
    building.mkdir(parents=True)
    doc = {
        "extract_date": gate.date,
        "manifest_sha256": gate.manifest_sha256,
        "inputs_sha256": getattr(gate, "inputs_sha256", None),
        "status": result.status,
        "started_at": started,
        "seconds": result.seconds,
        "config_version": gate.cfg.version,
        "great_expectations_version": _gx_version(),
        "batch_rows": gate.cfg.batch_rows,
        "rows": result.rows,
        "rules": result.rules,
        "timings": gate.timings,
        "blocking": result.blocking,
        "quarantined": result.quarantined,
        "warnings": result.warnings,
        "suites": {name: r.to_json_dict() for name, r in gate.suite_results.items()},
    }
    (building / "results.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False, default=str),
                                           encoding="utf-8")
    validation_docs.render(building / "data_docs", doc, gate.suite_results)
    if final.exists():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:6]}")
        final.rename(old)
        building.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        building.rename(final)
    return final


def summary(result: ValidationResult) -> str:
    """A one-screen text summary of a night's validation (CLI and Airflow task log)."""
    lines = [f"validation {result.extract_date}: {result.status.upper()} "
             f"({', '.join(f'{t} {n:,}' for t, n in result.rows.items())} rows; "
             f"{result.rules.get('evaluated', 0)} expectations, {result.rules.get('failed', 0)} failed; "
             f"{result.seconds:.1f}s)"]
    if result.blocking:
        lines.append(f"BLOCKED — refused, nothing promoted ({len(result.blocking)}):")
        lines += [f"  ✗ {_clip(b)}" for b in result.blocking[:8]]
    if result.quarantined:
        lines.append("quarantined rows (kept in quarantine/, not screened):")
        for t, reasons in result.quarantined.items():
            lines.append(f"  {t}: " + ", ".join(f"{r} {n}" for r, n in reasons.items()))
    if result.warnings:
        lines.append(f"warnings ({len(result.warnings)}):")
        lines += [f"  ! {_clip(w)}" for w in result.warnings[:6]]
    if result.report_dir:
        lines.append(f"report: {result.report_dir / 'data_docs' / 'index.html'}")
    return "\n".join(lines)


def _clip(text: str, n: int = 220) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def load_results(settings: Settings, extract_date: str) -> dict:
    """The stored results.json of one night's validation."""
    return json.loads((report_dir(settings, extract_date) / "results.json").read_text(encoding="utf-8"))


def quarantined(settings: Settings, extract_date: str) -> dict[str, Path]:
    """Quarantine files of an extract (promoted or still incoming): table -> path."""
    for base in (lake.extract_dir(settings, extract_date), incoming_dir(settings, extract_date)):
        q = base / QUARANTINE
        if q.exists():
            return {p.stem: p for p in sorted(q.glob("*.parquet"))}
    return {}
