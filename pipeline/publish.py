"""Publish: make a ranked run visible to the supervision department, atomically.

``<publish>/<run_date>`` is a symbolic link to an immutable version folder
``<publish>/.versions/<run_date>.<stamp>/``. A run is assembled in full (tables,
reports, then ``_MANIFEST.json`` last) and the link is switched with one rename, so
readers see the old run or the new one, never half of either. Older versions of the
same date are pruned after the switch (the previous one is kept for rollback).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq

from pipeline import ROOT, __version__, contract, crashpoints
from pipeline.lake import ALL, Shard
from pipeline.rank import RANKED_TABLES, ranked_dir
from pipeline.settings import Settings

KEEP_VERSIONS = 2      # the published version and the one it replaced


def code_version() -> str:
    """Package version plus the git commit when running from a checkout."""
    try:
        sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha, dirty = "", ""
    return f"{__version__}+{sha}{'.dirty' if dirty else ''}" if sha else __version__


@contextlib.contextmanager
def _publish_lock(root: Path):
    """One publish at a time per published folder (a second waits for the first): two runs
    of the same date end as one consistent run, never a mix; and whatever a publish killed
    mid-way left (a version being built, a link not yet switched) belongs to no live one."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _clear_stale(root: Path, versions: Path) -> None:
    for p in versions.glob(".building-*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in root.glob(".link-*"):
        p.unlink(missing_ok=True)


def publish(settings: Settings, run_date: str, run_params: dict, shard: Shard = ALL,
            render=None) -> Path:
    """Publish the ranked tables of run_date; ``render(folder)`` may add reports first."""
    run_date = str(run_date)
    src = ranked_dir(settings, run_date, shard)
    root = settings.publish_dir
    versions = root / ".versions"
    versions.mkdir(parents=True, exist_ok=True)
    with _publish_lock(root):
        _clear_stale(root, versions)
        return _publish_locked(root, versions, src, run_date, run_params, render)


def _publish_locked(root: Path, versions: Path, src: Path, run_date: str, run_params: dict, render) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    target = versions / f"{run_date}.{stamp}"
    building = versions / f".building-{run_date}.{stamp}"
    building.mkdir()
    try:
        files = []
        for name in RANKED_TABLES:
            shutil.copyfile(src / f"{name}.parquet", building / f"{name}.parquet")
        if render is not None:
            render(building)
        crashpoints.point("publish.building")
        for p in sorted(building.rglob("*")):
            if p.is_file():
                rel = p.relative_to(building).as_posix()
                entry = {"path": rel, "sha256": contract.sha256_file(p), "bytes": p.stat().st_size}
                if p.suffix == ".parquet":
                    entry["rows"] = pq.ParquetFile(p).metadata.num_rows
                files.append(entry)
        manifest = {
            "output_contract_version": "1",
            "run_date": run_date,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "code_version": code_version(),
            "files": files,
            "parameters": run_params,
        }
        (building / "_MANIFEST.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False,
                                                            default=str), encoding="utf-8")
        building.rename(target)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    crashpoints.point("publish.built")
    link = root / run_date
    previous = os.readlink(link) if link.is_symlink() else None
    tmp_link = root / f".link-{run_date}.{uuid.uuid4().hex[:6]}"
    os.symlink(os.path.join(".versions", target.name), tmp_link)
    if link.exists() and not link.is_symlink():
        # a plain folder from an older layout: move it aside so the link can take its place
        previous = f"{run_date}.legacy-{int(time.time())}"
        link.rename(versions / previous)
    os.replace(tmp_link, link)
    _prune(versions, run_date, keep={target.name, Path(previous).name if previous else None})
    return link


def _prune(versions: Path, run_date: str, keep: set) -> None:
    """Keep the published version and the one it replaced (for rollback); drop the rest,
    including versions a publish killed before its link switch left unlinked."""
    mine = sorted(p for p in versions.glob(f"{run_date}.*") if p.is_dir())
    for old in mine:
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)
