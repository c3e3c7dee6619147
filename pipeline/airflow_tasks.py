"""The callables the DAGs run: one per task, each a thin call into a pipeline stage.

Kept out of ``dags/`` so the DAG files stay light for the scheduler to parse: nothing
here is imported until a task runs.
"""
from __future__ import annotations

import logging
from pathlib import Path

from pipeline.settings import load_settings

log = logging.getLogger("claimscreen")


class ExtractRejected(Exception):
    """Refused or blocked extract: the run must fail visibly and not be retried."""


def extract_ready(run_date: str) -> bool:
    """True when the extract of run_date is complete in landing or already in the lake."""
    from pipeline import ingest, lake
    s = load_settings()
    landed = (Path(s.landing_dir) / run_date / "_MANIFEST.json").exists()
    in_lake = run_date in lake.ingested_dates(s) or (ingest.incoming_dir(s, run_date) / "_INGESTED.json").exists()
    return landed or in_lake


def ingest_and_validate(run_date: str) -> dict:
    """Catch the feed up to run_date: every landed night not yet in the lake is ingested and
    every night waiting for the gate validated, oldest first (an earlier bad night is logged,
    it does not fail this run); fails only when run_date's own extract is not promoted."""
    from pipeline import feed
    s = load_settings()
    report = feed.catch_up(s, Path(s.landing_dir), upto=run_date,
                           say=lambda n: log.info("%s %s: %s", n.extract_date, n.status,
                                                  "; ".join(n.messages)[:2000]))
    try:
        feed.require_promoted(s, report, run_date)
    except feed.NightNotPromoted as e:
        raise ExtractRejected(str(e)) from None
    night = report.final(run_date)
    return {"run_date": run_date, "validation": night.status if night else "already_promoted",
            "nights": {n.extract_date: n.status for n in report.finals()}}


def build_features(run_date: str) -> dict:
    from pipeline import features
    return features.build(load_settings(), run_date)


def detector_ids(only: list[str] | None = None) -> list[str]:
    from pipeline import detect
    from pipeline.rules_config import load_rules
    return [d.id for d in detect.selected_detectors(load_rules(load_settings().rules_file), only)]


def run_detector(run_date: str, detector_id: str) -> dict:
    from pipeline import detect
    return detect.detect(load_settings(), run_date, [detector_id])[0]


def rank_and_publish(run_date: str) -> str:
    from pipeline import screen
    # screen() reuses every fresh findings file the mapped tasks wrote and recomputes
    # only what is missing or stale, so this task is also safe to re-run alone.
    return str(screen.screen(load_settings(), run_date))


def backfill(start: str, end: str, detectors: list[str] | None) -> list[str]:
    from pipeline import screen
    s = load_settings()
    return [str(p) for p in screen.backfill(s, start, end, detectors or None, landing=s.landing_dir)]
