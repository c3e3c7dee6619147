"""The versioned rules configuration (``data/rules.yaml``): thresholds per detector."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.registry import Detector


@dataclass(frozen=True)
class RulesConfig:
    version: str
    sha256: str
    defaults: dict
    regions: dict
    disabled: frozenset
    path: str

    def params_for(self, det: Detector, region: str | None = None) -> dict:
        """Bound parameters for a detector: header defaults, then config, then region."""
        params = det.defaults()
        unknown = set(self.defaults.get(det.id, {})) - set(params)
        if unknown:
            raise ValueError(f"{self.path}: {det.id} has no parameters {sorted(unknown)}")
        params.update(self.defaults.get(det.id, {}))
        if region:
            for prefix in sorted(self.regions, key=len):
                if str(region).startswith(str(prefix)):
                    params.update((self.regions[prefix] or {}).get(det.id, {}))
        return params

    def enabled(self, det: Detector) -> bool:
        return det.id not in self.disabled


def load_rules(path: Path) -> RulesConfig:
    raw = Path(path).read_bytes()
    doc = yaml.safe_load(raw) or {}
    if "version" not in doc:
        raise ValueError(f"{path}: rules configuration needs a version")
    return RulesConfig(version=str(doc["version"]), sha256=hashlib.sha256(raw).hexdigest(),
                       defaults=doc.get("defaults") or {}, regions=doc.get("regions") or {},
                       disabled=frozenset(doc.get("disabled") or ()), path=str(path))
