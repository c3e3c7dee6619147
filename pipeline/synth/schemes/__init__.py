"""Planted fraud schemes: one module per detector id, discovered by scanning this folder.

To add a scheme, add `<detector_id>.py` here exposing

    def plant(world, days, rng, scale) -> SchemeOutput

Build settlements with `world.settlement(...)` (lines from `world.honest_lines` /
`world.stay_lines`, then break exactly the rule the scheme is about), add them with
`out.add(...)`, and record the ground truth with `out.case(...)`. Patients should come from
`world.take_patients(...)` (reserved persons with no background claims), so a planted case
does not break any other rule by accident. Modules whose name starts with `_` are helpers.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pipeline.synth import arrowutil as au


@dataclass
class SchemeOutput:
    settlements: list = field(default_factory=list)      # world.Planted
    cases: list[dict] = field(default_factory=list)
    ring_members: list[dict] = field(default_factory=list)
    lookalikes: list[dict] = field(default_factory=list)   # honest look-alikes planted with the scheme

    def add(self, planted):
        self.settlements.append(planted)
        return planted

    def case(self, scheme: str, entity_type: str, entity_id: str, evidence: list, *,
             institution_id: str | None = None, patient_id: str | None = None,
             doctor_id: str | None = None, detectable_from: int | None = None) -> dict:
        rows = [e.row for e in evidence]
        first = min(r["settle_date"] for r in rows)
        last = max(r["settle_date"] for r in rows)
        c = {
            "case_id": f"{scheme}-{len(self.cases) + 1:04d}",
            "scheme": scheme,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "institution_id": institution_id if institution_id is not None else rows[-1]["institution_id"],
            "patient_id": patient_id if patient_id is not None else rows[-1]["patient_id"],
            "doctor_id": doctor_id if doctor_id is not None else rows[-1]["doctor_id"],
            "settlement_ids": [r["settlement_id"] for r in rows],
            "first_date": first,
            "detectable_from": au.day_to_date(detectable_from) if detectable_from is not None else last,
        }
        self.cases.append(c)
        return c


def n_cases(scale: float) -> int:
    """How many cases a scheme plants: grows gently with scale."""
    return max(3, round(5 * scale ** 0.5))


def registry() -> dict[str, Callable]:
    """detector id -> plant function, for every scheme module in this folder (sorted)."""
    out = {}
    for mod in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        m = importlib.import_module(f"{__name__}.{mod.name}")
        fn = getattr(m, "plant", None)
        if callable(fn):
            out[getattr(m, "SCHEME_ID", mod.name)] = fn
    return out
