"""What every suite module shares: rules, DuckDB checks, configuration and the suite builder.

A table module (``expectations/<table>.py``) declares

- ``TABLE`` and ``KEY`` (the contract table and its key columns),
- ``BATCH_SQL``: the DuckDB query that cuts the GX batches from the new extract (the
  contract columns the rules read, money as DOUBLE, plus a few derived check columns
  such as ``money_gap`` whose SQL is right there to read),
- ``rules(cfg, extract_date)``: GX 1.x expectations (``gx.expectations.*``), each tagged
  with a rule id, a reason code and English/Chinese names,
- ``CHECKS``: the checks GX's pandas engine cannot answer batch by batch (uniqueness
  over the whole extract, references to other tables, repeats of earlier extracts,
  volume against history). They run in DuckDB and are reported as GX
  ``UnexpectedRowsExpectation`` results in the same suite result; the query text in the
  report is exactly what ran.

Severity (blocking | row | warn) and tolerances come from ``expectations/config.yaml``.
"""
from __future__ import annotations

import contextlib
import copy
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

CONFIG_FILE = Path(__file__).with_name("config.yaml")
SEVERITIES = ("blocking", "row", "warn")
#: GX 1.x has its own severity field; ours maps onto it so Data Docs show it too.
GX_SEVERITY = {"blocking": "critical", "row": "warning", "warn": "info"}


@dataclass(frozen=True)
class Rule:
    """One rule checked by GX on every batch: one or more expectations sharing an id."""
    id: str
    reason: str            # reason code written next to quarantined rows
    en: str
    zh: str
    expectations: tuple


@dataclass(frozen=True)
class Check:
    """One rule checked by DuckDB over the whole extract (and the lake).

    ``sql`` selects the offending rows, key columns first; ``{batch}`` stands for the
    new extract's table. ``params(cfg)`` gives its bound parameters.
    """
    id: str
    reason: str
    en: str
    zh: str
    sql: str
    params: Callable[["Config"], dict] = field(default=lambda cfg: {})
    #: "rows": every returned row is an offender (quarantinable by key);
    #: "extract": any returned row is a finding about the extract as a whole.
    scope: str = "rows"


def rule(id: str, reason: str, en: str, zh: str, *expectations) -> Rule:
    return Rule(id, reason, en, zh, tuple(expectations))


@dataclass
class Config:
    doc: dict

    @property
    def version(self) -> str:
        return str(self.doc.get("version", ""))

    @property
    def batch_rows(self) -> int:
        return int(self.doc.get("batch_rows", 500_000))

    def tolerance(self, name: str):
        return self.doc["tolerances"][name]

    def volume(self, name: str):
        return self.doc["volume"][name]

    @property
    def escalate_fraction(self) -> float:
        return float(self.doc["escalate"]["fraction"])

    @property
    def escalate_min_rows(self) -> int:
        return int(self.doc["escalate"]["min_rows"])

    def severity(self, table: str, rule_id: str) -> str:
        try:
            sev = self.doc["severity"][table][rule_id]
        except KeyError:
            raise KeyError(f"expectations/config.yaml: no severity for {table}.{rule_id}") from None
        if sev not in SEVERITIES:
            raise ValueError(f"expectations/config.yaml: {table}.{rule_id}: severity {sev!r} "
                             f"is not one of {SEVERITIES}")
        return sev


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> Config:
    """The gate configuration; ``overrides`` is merged into it key by key (tests, one-offs)."""
    doc = yaml.safe_load(Path(path or CONFIG_FILE).read_text(encoding="utf-8"))
    if overrides:
        doc = _merge(copy.deepcopy(doc), overrides)
    return Config(doc)


def _merge(base: dict, extra: dict) -> dict:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


def build_suite(module, cfg: Config, extract_date: str):
    """The module's GX ExpectationSuite for one extract date, severities from config.

    Every expectation carries in ``meta``: rule id, reason code, names, severity.
    """
    import great_expectations as gx

    expectations = []
    for r in module.rules(cfg, extract_date):
        sev = cfg.severity(module.TABLE, r.id)
        for e in r.expectations:
            e.meta = {"rule": r.id, "reason_code": r.reason, "name_en": r.en, "name_zh": r.zh,
                      "severity": sev, "evaluated_by": "great_expectations pandas engine, per batch"}
            e.severity = GX_SEVERITY[sev]
            # Data Docs print the description instead of GX's English template: give the
            # supervisors both names and the columns it reads
            e.description = f"{r.en} / {r.zh} ({_columns(e)}; {sev})"
            expectations.append(e)
    return gx.ExpectationSuite(name=module.TABLE, expectations=expectations)


def _columns(e) -> str:
    for names in (("column",), ("column_A", "column_B"), ("column_set",)):
        vals = [getattr(e, n, None) for n in names]
        if all(v is not None for v in vals):
            flat = [x for v in vals for x in (v if isinstance(v, (list, tuple, set)) else [v])]
            return ", ".join(map(str, flat)) if len(flat) <= 4 else f"{len(flat)} columns"
    return "table"


def check_expectation(table: str, check: Check, cfg: Config, sql: str):
    """The GX expectation that stands for a DuckDB check in the report."""
    import great_expectations as gx

    sev = cfg.severity(table, check.id)
    with contextlib.redirect_stdout(io.StringIO()):   # GX prints a hint when {batch} is absent
        e = gx.expectations.UnexpectedRowsExpectation(
            unexpected_rows_query=sql, description=f"{check.en} / {check.zh} (DuckDB; {sev})")
    e.meta = {"rule": check.id, "reason_code": check.reason, "name_en": check.en, "name_zh": check.zh,
              "severity": sev, "evaluated_by": "duckdb, whole extract", "scope": check.scope}
    e.severity = GX_SEVERITY[sev]
    return e
