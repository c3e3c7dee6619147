"""One settings object, read from a TOML file and CLAIMSCREEN_* environment variables.

Precedence: environment > TOML file > defaults. The defaults need no file at all:
everything lives under ``data/`` of the checkout (git-ignored).
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from pipeline import ROOT

_PATH_FIELDS = ("data_dir", "landing_dir", "lake_dir", "work_dir", "publish_dir",
                "spill_dir", "rules_file", "truth_dir")


@dataclass(frozen=True)
class Settings:
    data_dir: Path = ROOT / "data"
    landing_dir: Path | None = None      # default: <data_dir>/landing
    lake_dir: Path | None = None         # default: <data_dir>/lake
    work_dir: Path | None = None         # default: <data_dir>/work (per-run scratch)
    publish_dir: Path | None = None      # default: <data_dir>/published
    spill_dir: Path | None = None        # default: <data_dir>/spill (DuckDB temp_directory)
    truth_dir: Path | None = None        # default: <data_dir>/truth (synthetic ground truth)
    rules_file: Path = ROOT / "data" / "rules.yaml"
    region: str | None = None            # rules overrides to apply (6-digit code or prefix)
    duckdb_memory_limit: str = "4GB"
    duckdb_threads: int = 2
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        d = Path(self.data_dir)
        object.__setattr__(self, "data_dir", d)
        for name, sub in (("landing_dir", "landing"), ("lake_dir", "lake"), ("work_dir", "work"),
                          ("publish_dir", "published"), ("spill_dir", "spill"),
                          ("truth_dir", "truth")):
            v = getattr(self, name)
            object.__setattr__(self, name, Path(v) if v is not None else d / sub)
        object.__setattr__(self, "rules_file", Path(self.rules_file))

    def with_(self, **kw) -> "Settings":
        return replace(self, **kw)


def load_settings(config: str | os.PathLike | None = None, **overrides) -> Settings:
    """Settings from defaults, then the TOML file, then CLAIMSCREEN_* env, then overrides.

    The TOML file is ``config`` or ``$CLAIMSCREEN_CONFIG``; keys are the field names,
    either at top level or under a ``[claimscreen]`` table.
    """
    values: dict = {}
    cfg = config or os.environ.get("CLAIMSCREEN_CONFIG")
    if cfg:
        with open(cfg, "rb") as f:
            doc = tomllib.load(f)
        doc = doc.get("claimscreen", doc)
        known = {f.name for f in fields(Settings)}
        unknown = set(doc) - known
        if unknown:
            raise ValueError(f"{cfg}: unknown settings {sorted(unknown)}; known: {sorted(known)}")
        values.update(doc)
    for f in fields(Settings):
        env = os.environ.get("CLAIMSCREEN_" + f.name.upper())
        if env is not None:
            values[f.name] = int(env) if f.name == "duckdb_threads" else env
    values.update({k: v for k, v in overrides.items() if v is not None})
    for k in _PATH_FIELDS:
        if values.get(k) is not None:
            values[k] = Path(values[k])
    return Settings(**values)
