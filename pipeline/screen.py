"""Screen: the stages of one night, and backfills, as plain functions.

The CLI and the Airflow DAGs are two thin doors into these. Every function is pure
over (lake, run date, shard): run it again and it rewrites the same outputs.
"""
from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from pathlib import Path

from pipeline import detect as detect_mod
from pipeline import features, ingest as ingest_mod, lake, publish as publish_mod, rank as rank_mod
from pipeline import validate as validate_mod
from pipeline.lake import ALL, Shard
from pipeline.rules_config import load_rules
from pipeline.settings import Settings

log = logging.getLogger("claimscreen")


def stale_detectors(settings: Settings, run_date: str, detector_ids: list[str],
                    shard: Shard = ALL) -> list[str]:
    """Detectors whose findings file is missing or was computed on another lake state,
    with other parameters or by other code (the detector file or the feature SQL)."""
    from pipeline import registry
    rules = load_rules(settings.rules_file)
    fdir = detect_mod.findings_dir(settings, run_date, shard)
    now = features._lake_state(settings, run_date)
    stale = []
    for d in detector_ids:
        stats = fdir / f"{d}.stats.json"
        if not stats.exists() or not (fdir / f"{d}.parquet").exists():
            stale.append(d)
            continue
        saved = json.loads(stats.read_text())
        params = json.loads(json.dumps(rules.params_for(registry.get(d), settings.region), default=str))
        if (saved.get("lake") != now or saved.get("params") != params
                or saved.get("code") != detect_mod.code_hash(registry.get(d))):
            stale.append(d)
    return stale


def run_params(settings: Settings, run_date: str, detector_ids: list[str], shard: Shard = ALL) -> dict:
    rules = load_rules(settings.rules_file)
    from pipeline import registry
    return {
        "run_date": run_date,
        "shard": shard.tag,
        "region": settings.region,
        "rules_version": rules.version,
        "rules_sha256": rules.sha256,
        "detectors": {d: rules.params_for(registry.get(d), settings.region) for d in detector_ids},
        "extracts": features._lake_state(settings, run_date),
        "duckdb_memory_limit": settings.duckdb_memory_limit,
        "duckdb_threads": settings.duckdb_threads,
    }


def screen(settings: Settings, run_date: str, detector_ids: list[str] | None = None,
           shard: Shard = ALL, render: bool = True) -> Path:
    """Features → detect → rank → publish for one run date; returns the published folder.

    ``detector_ids`` re-runs only those detectors; the others' findings are reused when
    they were computed on the same lake state, else recomputed, so the published run
    always holds every enabled detector.
    """
    run_date = str(run_date)
    rules = load_rules(settings.rules_file)
    enabled = [d.id for d in detect_mod.selected_detectors(rules)]
    features.build(settings, run_date, shard)
    todo = sorted(set(stale_detectors(settings, run_date, enabled, shard)) | set(detector_ids or []))
    if todo:
        detect_mod.detect(settings, run_date, todo, shard, rules)
    rank_mod.rank(settings, run_date, enabled, shard)
    renderer = None
    if render:
        from pipeline import reports
        renderer = reports.renderer(settings, run_date)
    return publish_mod.publish(settings, run_date, run_params(settings, run_date, enabled, shard),
                               shard, render=renderer)


def nightly(settings: Settings, landing: Path, run_date: str) -> Path:
    """One night: ingest the extract of run_date (if landed), validate, screen, publish."""
    landing = Path(landing)
    if (landing / run_date).exists():
        ingest_mod.ingest_one(settings, landing, run_date)
        validate_mod.validate(settings, run_date)
    return screen(settings, run_date)


def date_range(start: str, end: str) -> list[str]:
    a, b = date.fromisoformat(start), date.fromisoformat(end)
    if b < a:
        raise ValueError(f"end {end} is before start {start}")
    return [(a + timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]


def backfill(settings: Settings, start: str, end: str, detector_ids: list[str] | None = None,
             landing: Path | None = None) -> list[Path]:
    """Re-screen every date in [start, end]; ingests missing landed extracts first."""
    out = []
    for d in date_range(start, end):
        if landing is not None and (Path(landing) / d).exists():
            ingest_mod.ingest_one(settings, Path(landing), d)
            validate_mod.validate(settings, d)
        out.append(screen(settings, d, detector_ids))
    return out
