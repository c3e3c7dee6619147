"""Ingest: verify a landed extract against its manifest and copy it into the lake.

An extract is accepted whole or not at all. Checks, in order: the manifest exists (it
is written last, so without it the extract is incomplete), parses, names its own date;
every listed file exists inside the extract, has the listed sha256 and row count and is
readable Parquet with every contract column at its contract type; no unlisted Parquet
file lies beside them. Accepted data is rewritten (contract columns only, zstd) into
``<lake>/incoming/extract_date=D/`` by one rename; validation then promotes it to the
screened zone ``<lake>/extracts/``. Landing files are only ever read.

Re-delivering an extract with the same manifest changes nothing. A different manifest
for a date already in the lake is refused unless ``replace=True`` (a corrected
re-delivery), which swaps the whole extract atomically.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import contract, crashpoints, lake
from pipeline.lake import sql_literal
from pipeline.settings import Settings


class ExtractRefused(Exception):
    """The extract is incomplete, corrupt or malformed; nothing of it was landed."""

    def __init__(self, extract_date: str, problems: list[str]):
        self.extract_date = extract_date
        self.problems = problems
        super().__init__(f"extract {extract_date} refused: " + "; ".join(problems))


@dataclass
class IngestResult:
    extract_date: str
    status: str            # "ingested", "unchanged", "replaced"
    rows: dict
    warnings: list


def incoming_dir(settings: Settings, extract_date: str) -> Path:
    return settings.lake_dir / "incoming" / f"extract_date={extract_date}"


def log_event(settings: Settings, event: dict) -> None:
    """Append one line to the lake's ledger (ingests, refusals, promotions)."""
    settings.lake_dir.mkdir(parents=True, exist_ok=True)
    event = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **event}
    line = (json.dumps(event, ensure_ascii=False) + "\n").encode("utf-8")
    with open(settings.lake_dir / "ledger.jsonl", "a+b") as f:
        # a process killed mid-write leaves a line without its newline: start a new one,
        # so the cut line stays the only casualty (readers skip it)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                line = b"\n" + line
        f.write(line)


def landed_dates(landing: Path) -> list[str]:
    """Extract folders in a landing area (complete or not), oldest first."""
    out = []
    for p in Path(landing).iterdir() if Path(landing).exists() else []:
        try:
            date.fromisoformat(p.name)
        except ValueError:
            continue
        if p.is_dir():
            out.append(p.name)
    return sorted(out)


def verify(extract: Path) -> tuple[contract.Manifest, str, list[str]]:
    """Check an extract folder against its manifest and the contract.

    Returns (manifest, manifest sha256, warnings); raises ExtractRefused with every
    problem found (not just the first), each naming the file and what is wrong.
    """
    extract = Path(extract)
    d = extract.name
    mpath = extract / contract.MANIFEST_NAME
    if extract.is_symlink():
        raise ExtractRefused(d, [f"{extract}: a symbolic link; an extract must be a plain folder in the "
                                 f"landing area (nothing outside it is read)"])
    if not extract.is_dir():
        raise ExtractRefused(d, [f"{extract}: no such extract folder"])
    links = _symlinks(extract)
    if links:
        raise ExtractRefused(d, [f"{d}/{rel}: a symbolic link; landing files must be plain files inside the "
                                 f"extract folder (nothing outside it is read)" for rel in links])
    if not mpath.exists():
        raise ExtractRefused(d, [f"{mpath}: missing (the producer writes it last; without it the "
                                 f"extract is incomplete)"])
    try:
        manifest = contract.Manifest.parse(mpath.read_text(encoding="utf-8"), str(mpath))
    except (ValueError, UnicodeDecodeError) as e:
        raise ExtractRefused(d, [str(e)]) from None
    problems: list[str] = []
    warnings: list[str] = []
    if manifest.extract_date != d:
        problems.append(f"{mpath}: extract_date {manifest.extract_date!r} does not match folder {d!r}")
    listed = set()
    tables_seen = set()
    root = extract.resolve()
    for f in manifest.files:
        p = (extract / f.path)
        where = f"{d}/{f.path}"
        table = contract.table_of(f.path)
        if Path(f.path).is_absolute() or ".." in Path(f.path).parts:
            problems.append(f"{where}: an absolute path or '..' in the manifest; files must be named "
                            f"relative to the extract folder (nothing outside it is read)")
            continue
        if table is None or not p.resolve().is_relative_to(root):
            problems.append(f"{where}: not a contract file path (settlements/part-*.parquet, "
                            f"settlement_items/part-*.parquet or reference/<table>.parquet)")
            continue
        listed.add(p.resolve())
        if not p.exists():
            problems.append(f"{where}: listed in the manifest but missing")
            continue
        digest = contract.sha256_file(p)
        if digest != f.sha256:
            problems.append(f"{where}: sha256 {digest[:12]}… differs from the manifest's {f.sha256[:12]}… "
                            f"(corrupt or changed after the manifest was written)")
            continue
        try:
            pf = pq.ParquetFile(p)
        except Exception as e:  # pyarrow raises several types for damaged files
            problems.append(f"{where}: not readable Parquet ({type(e).__name__}: {e})")
            continue
        if pf.metadata.num_rows != f.rows:
            problems.append(f"{where}: {pf.metadata.num_rows} rows, manifest says {f.rows}")
        problems += _schema_problems(where, pf.schema_arrow, contract.ALL_TABLES[table], warnings)
        tables_seen.add(table)
    for table in contract.FACT_TABLES:
        if table not in tables_seen and not any(contract.table_of(f.path) == table for f in manifest.files):
            problems.append(f"{d}/{table}/: the manifest lists no file (1..n part files required)")
    for p in sorted(extract.rglob("*.parquet")):
        if p.resolve() not in listed:
            problems.append(f"{d}/{p.relative_to(extract).as_posix()}: present but not in the manifest")
    if problems:
        raise ExtractRefused(d, problems)
    return manifest, contract.sha256_file(mpath), warnings


def _symlinks(extract: Path) -> list[str]:
    """Symbolic links anywhere under the extract folder (not followed), relative paths."""
    out = []
    for dirpath, dirnames, filenames in os.walk(extract):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if p.is_symlink():
                out.append(p.relative_to(extract).as_posix())
    return sorted(out)


def _schema_problems(where: str, actual: pa.Schema, expected: pa.Schema, warnings: list) -> list[str]:
    problems = []
    for field in expected:
        idx = actual.get_field_index(field.name)
        if idx < 0:
            problems.append(f"{where}: column {field.name!r} is missing")
            continue
        got = actual.field(idx).type
        if not got.equals(field.type):
            problems.append(f"{where}: column {field.name!r} has type {got}, contract says {field.type}")
    extra = [n for n in actual.names if expected.get_field_index(n) < 0]
    if extra:
        warnings.append(f"{where}: columns not in the contract are dropped: {extra}")
    return problems


def _existing(settings: Settings, extract_date: str) -> Path | None:
    for p in (lake.extract_dir(settings, extract_date), incoming_dir(settings, extract_date)):
        if (p / "_INGESTED.json").exists():
            return p
    return None


def landing_manifest_sha256(extract: Path) -> str | None:
    """sha256 of a landed extract's manifest, or None when it has none (yet)."""
    p = Path(extract) / contract.MANIFEST_NAME
    try:
        return contract.sha256_file(p) if p.is_file() else None
    except OSError:
        return None


def _blocked_in_incoming(settings: Settings, extract_date: str, prior: Path, entry: dict) -> bool:
    """True when ``prior`` is the not-yet-promoted copy of a night the gate blocked."""
    if prior != incoming_dir(settings, extract_date):
        return False
    results = settings.lake_dir / "validation" / extract_date / "results.json"
    try:
        doc = json.loads(results.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return doc.get("status") == "blocked" and doc.get("manifest_sha256") == entry.get("manifest_sha256")


def ingest_one(settings: Settings, landing: Path, extract_date: str, replace: bool = False) -> IngestResult:
    """Verify and land one extract; see the module docstring for the guarantees."""
    extract = Path(landing) / extract_date
    try:
        manifest, msha, warnings = verify(extract)
    except ExtractRefused as e:
        log_event(settings, {"event": "refused", "extract_date": extract_date, "problems": e.problems,
                             "landing_manifest_sha256": landing_manifest_sha256(extract)})
        raise
    with lake.lake_lock(settings):
        prior = _existing(settings, extract_date)
        if prior is not None:
            entry = json.loads((prior / "_INGESTED.json").read_text())
            if entry["manifest_sha256"] == msha:
                log_event(settings, {"event": "unchanged", "extract_date": extract_date})
                return IngestResult(extract_date, "unchanged", entry["rows"], warnings)
            # a night the gate blocked never reached the screened data: the producer's
            # corrected re-delivery takes its place without --replace
            if not replace and not _blocked_in_incoming(settings, extract_date, prior, entry):
                problem = (f"{extract_date} is already in the lake from a different manifest "
                           f"(sha256 {entry['manifest_sha256'][:12]}…); a corrected re-delivery "
                           f"must be ingested with --replace")
                log_event(settings, {"event": "refused", "extract_date": extract_date, "problems": [problem]})
                raise ExtractRefused(extract_date, [problem])
        clear_stale_staging(settings)
        staging = settings.lake_dir / ".staging" / f"{extract_date}-{uuid.uuid4().hex[:8]}"
        staged = staging / f"extract_date={extract_date}"
        try:
            rows = _stage(settings, extract, manifest, staged)
            (staged / "_INGESTED.json").write_text(json.dumps({
                "extract_date": extract_date, "manifest_sha256": msha,
                "producer": manifest.producer, "rows": rows,
                "source": str(extract.resolve()),
                "ingested_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "warnings": warnings,
            }, indent=1))
            target = incoming_dir(settings, extract_date)
            target.parent.mkdir(parents=True, exist_ok=True)
            if prior is not None:
                # replace: move the old version out of sight first, then the new one in
                graveyard = settings.lake_dir / ".replaced" / f"{extract_date}-{uuid.uuid4().hex[:8]}"
                graveyard.parent.mkdir(parents=True, exist_ok=True)
                prior.rename(graveyard)
            crashpoints.point("ingest.staged")
            staged.rename(target)
            crashpoints.point("ingest.landed")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        status = "replaced" if prior is not None else "ingested"
        log_event(settings, {"event": status, "extract_date": extract_date, "rows": rows,
                             "manifest_sha256": msha})
        return IngestResult(extract_date, status, rows, warnings)


def clear_stale_staging(settings: Settings) -> None:
    """Remove what an ingest killed mid-way left in .staging/ (call under the lake lock:
    every ingest stages under it, so nothing there belongs to a live one)."""
    root = settings.lake_dir / ".staging"
    if root.exists():
        for p in root.iterdir():
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def _stage(settings: Settings, extract: Path, manifest: contract.Manifest, staged: Path) -> dict:
    con = lake.connect(settings)
    rows: dict[str, int] = {}
    try:
        for f in manifest.files:
            table = contract.table_of(f.path)
            schema = contract.ALL_TABLES[table]
            src = extract / f.path
            if table in contract.FACT_TABLES:
                dst = staged / table / Path(f.path).name
            else:
                dst = staged / "reference" / f"{table}.parquet"
            dst.parent.mkdir(parents=True, exist_ok=True)
            cols = ", ".join(f'"{c}"' for c in schema.names)
            con.execute(f"COPY (SELECT {cols} FROM read_parquet({sql_literal(src)})) "
                        f"TO {sql_literal(dst)} (FORMAT parquet, COMPRESSION zstd)")
            rows[table] = rows.get(table, 0) + f.rows
    finally:
        con.close()
    return rows


class ExtractsRefused(ExtractRefused):
    """Some nights of a multi-night ingest were refused; every other night was landed."""

    def __init__(self, refused: list[ExtractRefused], results: list[IngestResult]):
        self.refused = refused
        self.results = results
        first = refused[0]
        super().__init__(first.extract_date, [p for e in refused for p in
                                              ([f"[{e.extract_date}] {x}" for x in e.problems]
                                               if len(refused) > 1 else e.problems)])


def pending_dates(settings: Settings, landing: Path, upto: str | None = None) -> list[str]:
    """Landed dates not yet in the lake (neither incoming nor promoted), oldest first."""
    return [d for d in landed_dates(Path(landing))
            if _existing(settings, d) is None and (upto is None or d <= upto)]


def ingest(settings: Settings, landing: Path, dates: list[str] | None = None,
           replace: bool = False) -> list[IngestResult]:
    """Ingest the given dates, or every landed date not yet in the lake (oldest first).

    Nights are independent: a refused night is logged and skipped, every other night is
    still landed. When any night was refused, ``ExtractsRefused`` is raised at the end,
    carrying the refusals and the results of the nights that were landed.
    """
    landing = Path(landing)
    if dates is None:
        dates = pending_dates(settings, landing)
    results, refused = [], []
    for d in dates:
        try:
            results.append(ingest_one(settings, landing, d, replace=replace))
        except ExtractRefused as e:
            refused.append(e)
    if refused:
        raise ExtractsRefused(refused, results)
    return results
