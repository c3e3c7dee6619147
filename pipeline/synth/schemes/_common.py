"""Helpers shared by scheme modules (not a scheme: the leading underscore hides it)."""
from __future__ import annotations

import numpy as np

from pipeline.synth.catalog import ADULT, CHILD, ELDERLY, IP, OP, PH
from pipeline.synth.world import HOSP, PHARMACY, World


def pick_inst(W: World, rng, vt: int, p_culprit: float = 0.7) -> int:
    """A culprit institution most of the time, otherwise any institution of the right kind."""
    if rng.random() < p_culprit:
        pool = {OP: W.culprit_h, IP: W.culprit_ip, PH: W.culprit_p}[vt]
        if pool:
            return int(pool[int(rng.integers(0, len(pool)))])
    w = W.inst_weights[vt]
    return int(rng.choice(W.n_inst, p=w / w.sum()))


def pick_dx(W: World, rng, vt: int, p: int) -> int:
    ks, cdf = W.dxsel[(vt if vt != PH else OP, int(W.sex[p]), int(W.agegroup[p]))]
    return int(ks[min(int(np.searchsorted(cdf, rng.random(), side="right")), len(ks) - 1)])


def day_in(W: World, rng, lo: int = 0, hi: int = 0) -> int:
    """A run day in [start + lo, end - hi] (clamped)."""
    a, b = W.start + lo, W.end - hi
    if b < a:
        b = a
    return int(rng.integers(a, b + 1))


def adult_or_elderly(rng) -> int:
    return ADULT if rng.random() < 0.6 else ELDERLY


def op_visit(W: World, rng, p: int, inst: int, day: int, vt: int = OP, n: int | None = None,
             dx: int | None = None, exclude=()):
    """dx and honest lines of one outpatient visit / pharmacy purchase (not yet a settlement)."""
    dx = pick_dx(W, rng, vt, p) if dx is None else dx
    n = int(rng.integers(2, 6)) if n is None else n
    return dx, W.honest_lines(rng, p, inst, vt, dx, day, n, exclude=set(exclude))


def stay_window(W: World, rng, los_lo: int = 2, los_hi: int = 8, tail: int = 0) -> tuple[int, int]:
    """(admit, discharge) of a stay discharged inside the run, `tail` days before its end at least."""
    los = int(rng.integers(los_lo, los_hi + 1))
    d = day_in(W, rng, 0, tail)
    return d - los, d
