"""Detect: run detectors over the canonical views and write one findings file each.

Every detector's rows are wrapped in the same final SELECT, which casts them to the
findings contract and adds run_date, detector_id and a stable finding_id, so a detector
cannot publish a malformed row. Output: ``<work>/<run_date>/<shard>/findings/<id>.parquet``
(plus ``<id>.rings.parquet`` for detectors that publish collusion groups), written to a
temporary name and renamed: a crashed task leaves no half file.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline import features, lake, registry, terminal
from pipeline.lake import ALL, Shard, sql_literal
from pipeline.registry import Detector
from pipeline.rules_config import RulesConfig, load_rules
from pipeline.settings import Settings

#: The findings table as published (shared/contract/OUTPUT.md).
FINDINGS_SCHEMA = pa.schema([
    ("run_date", pa.date32()), ("finding_id", pa.string()), ("first_seen", pa.date32()),
    ("detector_id", pa.string()), ("entity_type", pa.string()), ("entity_id", pa.string()),
    ("institution_id", pa.string()), ("patient_id", pa.string()), ("doctor_id", pa.string()),
    ("settlement_ids", pa.list_(pa.string())), ("score", pa.float64()),
    ("amount_at_risk", pa.decimal128(14, 2)), ("reason", pa.string()), ("evidence", pa.string()),
])

RINGS_SCHEMA = pa.schema([
    ("run_date", pa.date32()), ("ring_id", pa.string()), ("member_type", pa.string()),
    ("member_id", pa.string()), ("ring_score", pa.float64()), ("n_members", pa.int32()),
])

_WRAP = """
SELECT
    CAST($run_date AS DATE) AS run_date,
    substr(sha256(concat($detector_id, '|', CAST(d.finding_key AS VARCHAR))), 1, 24) AS finding_id,
    CAST(NULL AS DATE) AS first_seen,
    CAST($detector_id AS VARCHAR) AS detector_id,
    CAST(d.entity_type AS VARCHAR) AS entity_type,
    CAST(d.entity_id AS VARCHAR) AS entity_id,
    CAST(d.institution_id AS VARCHAR) AS institution_id,
    CAST(d.patient_id AS VARCHAR) AS patient_id,
    CAST(d.doctor_id AS VARCHAR) AS doctor_id,
    CAST(d.settlement_ids AS VARCHAR[]) AS settlement_ids,
    CAST(d.score AS DOUBLE) AS score,
    CAST(round(CAST(d.amount_at_risk AS DECIMAL(18, 4)), 2) AS DECIMAL(14, 2)) AS amount_at_risk,
    CAST(d.reason AS VARCHAR) AS reason,
    CAST(d.evidence AS VARCHAR) AS evidence
FROM ({body}) AS d
ORDER BY finding_id
"""


@dataclass(frozen=True)
class DetectContext:
    """What a Python detector may know besides its connection and parameters."""
    settings: Settings
    run_date: str
    shard: Shard
    out_dir: Path


def findings_dir(settings: Settings, run_date: str, shard: Shard = ALL) -> Path:
    return features.run_dir(settings, str(run_date), shard) / "findings"


def _load_py(det: Detector):
    spec = importlib.util.spec_from_file_location(f"detectors.{det.id}", det.path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if not hasattr(mod, "detect"):
        raise registry.DetectorError(f"{det.path.name}: no detect(con, params, ctx) function")
    return mod


def _write_atomic(con: duckdb.DuckDBPyConnection, query: str, params: dict, out: Path) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}")
    con.execute(f"COPY ({query}) TO {sql_literal(tmp)} (FORMAT parquet, COMPRESSION zstd)", params)
    n = con.execute(f"SELECT count(*) FROM read_parquet({sql_literal(tmp)})").fetchall()[0][0]
    tmp.replace(out)
    return n


def code_hash(det: Detector) -> str:
    """What a detector's findings were computed by: its file and the feature SQL it reads."""
    h = hashlib.sha256(det.path.read_bytes())
    h.update(features._sql_hash().encode())
    return h.hexdigest()[:16]


def run_detector(con: duckdb.DuckDBPyConnection, det: Detector, params: dict,
                 ctx: DetectContext) -> dict:
    """Run one detector on an open screening connection; write its findings file."""
    t0 = time.perf_counter()
    out = ctx.out_dir / f"{det.id}.parquet"
    bind = {**params, "run_date": ctx.run_date, "detector_id": det.id}
    rings_rows = 0
    if det.kind == "sql":
        n = _write_atomic(con, _WRAP.format(body=det.sql()), bind, out)
    else:
        result = _load_py(det).detect(con, params, ctx)
        rings = None
        if isinstance(result, dict):
            rings = result.get("rings")
            result = result["findings"]
        con.register("_detector_output", result)
        n = _write_atomic(con, _WRAP.format(body="SELECT * FROM _detector_output"),
                          {"run_date": ctx.run_date, "detector_id": det.id}, out)
        con.unregister("_detector_output")
        if rings is not None:
            con.register("_ring_output", rings)
            rings_rows = _write_atomic(con, """
                SELECT CAST($run_date AS DATE) AS run_date, CAST(ring_id AS VARCHAR) AS ring_id,
                       CAST(member_type AS VARCHAR) AS member_type,
                       CAST(member_id AS VARCHAR) AS member_id,
                       CAST(ring_score AS DOUBLE) AS ring_score,
                       CAST(n_members AS INTEGER) AS n_members
                FROM _ring_output ORDER BY ring_id, member_type, member_id""",
                {"run_date": ctx.run_date}, ctx.out_dir / f"{det.id}.rings.parquet")
            con.unregister("_ring_output")
    stats = {"detector_id": det.id, "findings": n, "ring_members": rings_rows,
             "seconds": round(time.perf_counter() - t0, 3), "params": params, "code": code_hash(det),
             "lake": features._lake_state(ctx.settings, ctx.run_date)}
    (ctx.out_dir / f"{det.id}.stats.json").write_text(json.dumps(stats, default=str))
    return stats


def selected_detectors(rules: RulesConfig, only: list[str] | None = None) -> list[Detector]:
    dets = [d for d in registry.all_detectors() if rules.enabled(d)]
    if only:
        known = {d.id for d in registry.all_detectors()}
        unknown = set(only) - known
        if unknown:
            raise KeyError(f"unknown detectors {sorted(unknown)}; known: {sorted(known)}")
        dets = [d for d in dets if d.id in only]
    return dets


def detect(settings: Settings, run_date: str, detector_ids: list[str] | None = None,
           shard: Shard = ALL, rules: RulesConfig | None = None) -> list[dict]:
    """Run the selected detectors (default: all enabled) for one run date and shard.

    Pure over (lake, run date, shard): reruns overwrite the same files with the same
    answer. Detectors read only views, so each can also run in its own process
    (one Airflow mapped task per detector).
    """
    run_date = str(run_date)
    rules = rules or load_rules(settings.rules_file)
    dets = selected_detectors(rules, detector_ids)
    out_dir = findings_dir(settings, run_date, shard)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = DetectContext(settings, run_date, shard, out_dir)
    con = lake.open_screening(settings, run_date, shard)
    try:
        out = []
        for i, d in enumerate(dets, 1):
            out.append(run_detector(con, d, rules.params_for(d, settings.region), ctx))
            terminal.step(i, len(dets), f"{run_date} detect {d.id}: {out[-1]['findings']:,} findings",
                          out[-1]["seconds"])
        return out
    finally:
        con.close()
