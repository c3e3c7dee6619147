"""Detector registry: finds detectors by scanning ``detectors/``, parses their headers.

A detector is ``detectors/<id>.sql`` (a SELECT over the canonical views) or
``detectors/<id>.py`` (graphs, models: a ``detect(con, params, ctx)`` function). Its
metadata travels at the top of the file as YAML: between ``/*---`` and ``---*/`` in SQL,
in the module docstring (between ``---`` lines) in Python. No hand-kept list: adding a
file adds a detector.
"""
from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline import ROOT

DETECTORS_DIR = ROOT / "detectors"

FAMILIES = ("policy", "management", "medical", "model", "graph")
JUDGEMENTS = ("suspicious", "violation")
ENTITY_TYPES = ("settlement", "patient", "doctor", "institution", "ring")
REQUIRED = ("id", "name_en", "name_zh", "family", "judgement", "entity_type", "severity",
            "reads", "scheme", "score", "false_positives")

#: Columns every detector returns, in this order (run_date, detector_id, finding_id and
#: first_seen are added by pipeline.detect).
FINDING_COLUMNS = ("finding_key", "entity_type", "entity_id", "institution_id", "patient_id",
                   "doctor_id", "settlement_ids", "score", "amount_at_risk", "reason",
                   "evidence")

_SQL_HEADER = re.compile(r"\A\s*/\*---\s*\n(.*?)\n---\*/", re.S)
_PY_HEADER = re.compile(r"\A\s*---\s*\n(.*?)\n---", re.S)
_SQL_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class DetectorError(ValueError):
    pass


@dataclass(frozen=True)
class Param:
    name: str
    default: object
    description: str = ""


@dataclass(frozen=True)
class Detector:
    id: str
    path: Path
    kind: str                     # "sql" or "py"
    name_en: str
    name_zh: str
    family: str
    judgement: str
    entity_type: str
    severity: float
    reads: tuple[str, ...]
    params: tuple[Param, ...]
    scheme: str
    score: str
    false_positives: str
    meta: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def label(self) -> str:
        return f"{self.name_en} / {self.name_zh}"

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}

    def sql(self) -> str:
        text = self.path.read_text(encoding="utf-8")
        return _SQL_HEADER.sub("", text, count=1).strip().rstrip(";")


def _strip_sql_comments(sql: str) -> str:
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.S)
    sql = re.sub(r"--[^\n]*", " ", sql)
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


def parse(path: Path) -> Detector:
    """Parse and validate one detector file; raises DetectorError saying what is wrong."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".sql":
        m = _SQL_HEADER.match(text)
        kind = "sql"
    elif path.suffix == ".py":
        doc = ast.get_docstring(ast.parse(text)) or ""
        m = _PY_HEADER.match(doc)
        kind = "py"
    else:
        raise DetectorError(f"{path.name}: detectors are .sql or .py files")
    if not m:
        raise DetectorError(f"{path.name}: no metadata header (YAML between /*--- and ---*/ "
                            f"in SQL, or between --- lines in the module docstring)")
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as e:
        raise DetectorError(f"{path.name}: header is not valid YAML: {e}") from None
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise DetectorError(f"{path.name}: header lacks {missing}")
    if meta["id"] != path.stem:
        raise DetectorError(f"{path.name}: id {meta['id']!r} must equal the file stem")
    for key, allowed in (("family", FAMILIES), ("judgement", JUDGEMENTS),
                         ("entity_type", ENTITY_TYPES)):
        if meta[key] not in allowed:
            raise DetectorError(f"{path.name}: {key} {meta[key]!r} not in {allowed}")
    if not re.search(r"[\u4e00-\u9fff]", str(meta["name_zh"])):
        raise DetectorError(f"{path.name}: name_zh must be the Chinese name")
    try:
        severity = float(meta["severity"])
    except (TypeError, ValueError):
        raise DetectorError(f"{path.name}: severity must be a number") from None
    if not 0 < severity <= 5:
        raise DetectorError(f"{path.name}: severity must be in (0, 5]")
    params = []
    for name, spec in (meta.get("params") or {}).items():
        if isinstance(spec, dict):
            if "default" not in spec:
                raise DetectorError(f"{path.name}: param {name} has no default")
            params.append(Param(name, spec["default"], str(spec.get("description", ""))))
        else:
            params.append(Param(name, spec))
    reads = tuple(meta["reads"] or ())
    det = Detector(id=meta["id"], path=path, kind=kind, name_en=str(meta["name_en"]),
                   name_zh=str(meta["name_zh"]), family=meta["family"],
                   judgement=meta["judgement"], entity_type=meta["entity_type"],
                   severity=severity, reads=reads, params=tuple(params),
                   scheme=str(meta["scheme"]).strip(), score=str(meta["score"]).strip(),
                   false_positives=str(meta["false_positives"]).strip(), meta=meta)
    if kind == "sql":
        used = set(_SQL_PARAM.findall(_strip_sql_comments(det.sql())))
        declared = {p.name for p in params}
        if used != declared:
            raise DetectorError(f"{path.name}: SQL uses parameters {sorted(used)} but the "
                                f"header declares {sorted(declared)}")
    return det


@functools.cache
def _scan(folder: Path) -> tuple[Detector, ...]:
    files = sorted(p for p in folder.iterdir()
                   if p.suffix in (".sql", ".py") and not p.name.startswith("_"))
    dets = [parse(p) for p in files]
    ids = [d.id for d in dets]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise DetectorError(f"detector ids defined twice: {sorted(dup)}")
    return tuple(dets)


def all_detectors(folder: Path = DETECTORS_DIR) -> tuple[Detector, ...]:
    """Every detector in the folder, sorted by id."""
    return _scan(Path(folder))


def get(detector_id: str, folder: Path = DETECTORS_DIR) -> Detector:
    for d in all_detectors(folder):
        if d.id == detector_id:
            return d
    raise KeyError(f"no detector {detector_id!r}; known: {[d.id for d in all_detectors(folder)]}")
