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
from pipeline import crashpoints, features, lake, publish as publish_mod, rank as rank_mod
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
    with lake.named_lock(settings, f"screen-{run_date}-{shard.tag}",
                         on_wait=lambda: log.warning("another run of %s holds the lock; waiting for it "
                                                     "(this one then reuses what it computed)", run_date)):
        return _screen(settings, run_date, detector_ids, shard, render)


def _screen(settings: Settings, run_date: str, detector_ids, shard: Shard, render: bool) -> Path:
    rules = load_rules(settings.rules_file)
    enabled = [d.id for d in detect_mod.selected_detectors(rules)]
    features.build(settings, run_date, shard)
    crashpoints.point("screen.features_built")
    todo = sorted(set(stale_detectors(settings, run_date, enabled, shard)) | set(detector_ids or []))
    if todo:
        detect_mod.detect(settings, run_date, todo, shard, rules)
    crashpoints.point("screen.detected")
    rank_mod.rank(settings, run_date, enabled, shard)
    renderer = None
    if render:
        from pipeline import reports
        renderer = reports.renderer(settings, run_date)
    return publish_mod.publish(settings, run_date, run_params(settings, run_date, enabled, shard),
                               shard, render=renderer)


def nightly(settings: Settings, landing: Path, run_date: str) -> Path:
    """One night: catch the feed up to run_date (ingest and validate every landed night not
    yet promoted, in date order), then screen and publish run_date. Raises
    :class:`pipeline.feed.NightNotPromoted` when run_date's own extract is refused, blocked
    or waits for an earlier night (other nights' problems do not stop it)."""
    from pipeline import feed
    report = feed.catch_up(settings, Path(landing), upto=run_date)
    feed.require_promoted(settings, report, run_date, landing)
    return screen(settings, run_date)


def date_range(start: str, end: str) -> list[str]:
    a, b = date.fromisoformat(start), date.fromisoformat(end)
    if b < a:
        raise ValueError(f"end {end} is before start {start}")
    return [(a + timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]


class BackfillIncomplete(Exception):
    """Some dates of a backfill were not screened: their extract is refused, blocked or waits."""

    def __init__(self, published: list[Path], skipped: list):
        self.published = published
        self.skipped = skipped
        super().__init__("not screened: " + "; ".join(f"{n.extract_date} ({n.status})" for n in skipped))


def backfill(settings: Settings, start: str, end: str, detector_ids: list[str] | None = None,
             landing: Path | None = None, say=None) -> list[Path]:
    """Re-screen every date in [start, end], oldest first. The feed is caught up to ``end``
    first, once (landed extracts ingested when ``landing`` is given, nights waiting for the
    gate validated in date order); each date's screening sees only the nights up to it (the
    views are as of the run date). A date whose own extract is refused, blocked or waiting
    is skipped, the others go on; :class:`BackfillIncomplete` names the skipped ones at the end."""
    from pipeline import feed
    out, skipped = [], []
    report = feed.catch_up(settings, Path(landing) if landing is not None else None, upto=end, say=say)
    for d in date_range(start, end):
        try:
            feed.require_promoted(settings, report, d, landing)
        except feed.NightNotPromoted as e:
            log.error("%s", e)
            skipped.append(e.night)
            continue
        out.append(screen(settings, d, detector_ids))
    if skipped:
        raise BackfillIncomplete(out, skipped)
    return out
