"""Honest look-alikes: legitimate claims that resemble fraud. Planted always (also without
fraud); none of them breaks a rule. Listed in truth/lookalikes.parquet.

One module per family of look-alikes, discovered by scanning this folder. A module exposes

    def plant(W, rng, scale) -> tuple[SchemeOutput, list[dict]]

(the settlements it adds, and one truth row per look-alike built with `basic._la`), and may
expose `from_watch(W, watched) -> list[dict]` for look-alikes found in the background.
Modules are planted in name order (`basic` first), each with its own random stream, so adding one does not
change what the others plant. Modules whose name starts with `_` are helpers.
"""
from __future__ import annotations

import importlib
import pkgutil
import zlib
from pathlib import Path

import numpy as np

from pipeline.synth.schemes import SchemeOutput


def _modules():
    for mod in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            yield mod.name, importlib.import_module(f"{__name__}.{mod.name}")


def plant(W, rng, scale: float) -> tuple[SchemeOutput, list[dict]]:
    out, rows = SchemeOutput(), []
    seed = None
    for name, m in sorted(_modules(), key=lambda nm: nm[0] != "basic"):
        fn = getattr(m, "plant", None)
        if not callable(fn):
            continue
        if name == "basic":
            sub_rng = rng          # the first module keeps the stream it always had
        else:
            seed = int(rng.integers(0, 2**31)) if seed is None else seed
            sub_rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        o, r = fn(W, sub_rng, scale)
        out.settlements.extend(o.settlements)
        out.cases.extend(o.cases)
        out.ring_members.extend(o.ring_members)
        r.extend(o.lookalikes)
        rows.extend(r)
    return out, rows


def from_watch(W, watched: dict) -> list[dict]:
    rows = []
    for _, m in _modules():
        fn = getattr(m, "from_watch", None)
        if callable(fn):
            rows.extend(fn(W, watched))
    return rows
