"""Honest stays that resemble bed-hanging (挂床) or false hospitalisation: long stays with
real daily care, patients waiting for their operation, palliative care, and deaths in
hospital settled after the death. Several variants of each (lengths, kinds of care)."""
from __future__ import annotations

import numpy as np

from pipeline.synth.catalog import ELDERLY, IP
from pipeline.synth.lookalikes.basic import _la
from pipeline.synth.schemes import SchemeOutput
from pipeline.synth.schemes._common import adult_or_elderly, day_in, pick_dx, pick_inst
from pipeline.synth.world import HOSP, Line, World

CARE = ("drug", "herbal", "exam", "lab", "treatment")
# operations and the diagnosis they treat (the catalog's dx_only), with the lowest level
SURGERY = (("Laparoscopic cholecystectomy", "K80.2"), ("Fracture internal fixation", "S52.5"),
           ("Appendectomy", "K35.8"), ("Transurethral resection of prostate", "N40"))


def _hotel(W: World, rng, admit: int, discharge: int) -> tuple[list[Line], set]:
    bed = W.bed_items[int(rng.integers(0, 2))]
    nurse = int(rng.choice(W.nursing_items))
    return ([Line(k, d, 1000) for d in range(admit, discharge) for k in (bed, nurse, W.ip_fee)],
            {bed, nurse, W.ip_fee})


def _care(W: World, rng, p: int, inst: int, dx: int | None, day: int, n: int, base: set,
          categories=CARE) -> list[Line]:
    """Up to n honest items of the given categories on one day (no bundle clash)."""
    taken, out = set(base), []
    for l in W.honest_lines(rng, p, inst, IP, dx, day, max(n * 2, 2), exclude=taken):
        if len(out) < n and W.item_cat_names[l.item] in categories and not W._bundle_clash(l.item, taken):
            taken.add(l.item)
            out.append(l)
    return out


def _patient(W: World, ag: int | None = None, sex: int | None = None) -> int | None:
    """A reserved person, or None when the pool (tiny worlds) has none of that kind left."""
    try:
        return W.take_patients(1, ag=ag, sex=sex)[0]
    except RuntimeError:
        return None


def _hospital(W: World, rng, min_level: int = 1) -> int:
    pool = np.flatnonzero((W.inst_kind == HOSP) & (W.inst_level >= min_level))
    return int(pool[int(rng.integers(0, len(pool)))])


def _long_daily_care(W: World, rng, out: SchemeOutput, rows: list, variant: int) -> None:
    """A long stay (rehabilitation after a stroke, COPD, heart failure) with care every day:
    daily infusions and drugs, daily physiotherapy, or oral drugs dispensed for several
    days at a time (a drug's days_supply covers the days it lasts)."""
    p = _patient(W, adult_or_elderly(rng))
    if p is None:
        return
    inst = pick_inst(W, rng, IP, 0.0)
    dx = pick_dx(W, rng, IP, p)
    los = int(rng.integers(14, 36))
    discharge = day_in(W, rng, 0, 0)
    admit = discharge - los
    lines, base = _hotel(W, rng, admit, discharge)
    for d in range(admit, admit + 2):
        lines += _care(W, rng, p, inst, dx, d, int(rng.integers(3, 6)), base)
    physio = W.item_index_by_name("Physiotherapy (per 30 minutes)")
    kinds = ("daily infusions and drugs", "daily physiotherapy with a test now and then",
             "oral drugs dispensed for several days at a time")
    d = admit + 2
    while d < discharge:
        if variant == 0:
            lines += _care(W, rng, p, inst, dx, d, int(rng.integers(1, 4)), base)
            d += 1
        elif variant == 1:
            lines.append(Line(physio, d, int(rng.integers(2, 5)) * 1000))
            if rng.random() < 0.3:
                lines += _care(W, rng, p, inst, dx, d, 1, base | {physio}, ("lab", "exam"))
            d += 1
        else:
            drugs = _care(W, rng, p, inst, dx, d, 1, base, ("drug",))
            span = int(rng.integers(3, 8))
            for l in drugs:
                l.days_supply = min(span, discharge - d)
            lines += drugs
            d += span if drugs else 1
    s = out.add(W.settlement(rng, p, inst, IP, discharge, lines, dx=dx, admit=admit, discharge=discharge))
    rows.append(_la("long_stay_daily_care", f"honest {los}-day stay with {kinds[variant]}",
                    W.pid(p), W.inst_id_list[inst], [s.id]))


def _pre_surgery_wait(W: World, rng, out: SchemeOutput, rows: list, variant: int) -> None:
    """Admitted for an operation: tests on the first days, then a wait of several days on
    the ward for the theatre slot (or for the swelling to go down), then the operation and
    post-operative care."""
    p = _patient(W, adult_or_elderly(rng))
    if p is None:
        return
    inst = _hospital(W, rng, 2)
    fits = [(name, code) for name, code in SURGERY
            if W.compatible(W.item_index_by_name(name), IP, int(W.sex[p]), int(W.agegroup[p]),
                            int(W.inst_level[inst]))]
    if not fits:
        return
    name, dx_code = fits[int(rng.integers(0, len(fits)))]
    k = W.item_index_by_name(name)
    dx = W.dx_index[dx_code]
    wait = int(rng.integers(5, 11))
    post = int(rng.integers(2, 6))
    discharge = day_in(W, rng, 0, 0)
    admit = discharge - (2 + wait + post)
    lines, base = _hotel(W, rng, admit, discharge)
    for d in range(admit, admit + 2):
        lines += _care(W, rng, p, inst, dx, d, int(rng.integers(2, 5)), base, ("lab", "exam"))
    if variant == 1:        # a repeat test during the wait
        lines += _care(W, rng, p, inst, dx, admit + 2 + wait // 2, 1, base, ("lab",))
    op = admit + 2 + wait
    lines.append(Line(k, op, 1000))
    for d in range(op, discharge + 1):
        lines += _care(W, rng, p, inst, dx, d, int(rng.integers(2, 4)), base | {k}, ("drug", "lab", "treatment"))
    s = out.add(W.settlement(rng, p, inst, IP, discharge, lines, dx=dx, admit=admit, discharge=discharge,
                             dx_code=dx_code))
    rows.append(_la("pre_surgery_wait", f"tests, then {wait} days on the ward waiting for {name.lower()}, "
                    "then the operation and post-operative care", W.pid(p), W.inst_id_list[inst], [s.id]))


def _palliative(W: World, rng, out: SchemeOutput, rows: list, variant: int) -> None:
    """Palliative care (Z51.5): comfort care on the ward, bed and nursing most days with an
    analgesic or oxygen now and then. Coded as the primary diagnosis, or as a secondary
    one beside the cancer."""
    p = _patient(W, ELDERLY)
    if p is None:
        return
    inst = pick_inst(W, rng, IP, 0.0)
    dx = W.dx_index["C34.9"]
    los = int(rng.integers(12, 31))
    discharge = day_in(W, rng, 0, 0)
    admit = discharge - los
    lines, base = _hotel(W, rng, admit, discharge)
    menu_dx = None if variant == 0 else dx      # no drug indicated for the cancer under a Z51.5 primary
    lines += _care(W, rng, p, inst, menu_dx, admit, int(rng.integers(2, 4)), base, ("lab", "exam"))
    oxygen = W.item_index_by_name("Oxygen inhalation (per hour)")
    for d in range(admit + 1, discharge):
        u = rng.random()
        if u < 0.15:
            lines += _care(W, rng, p, inst, menu_dx, d, 1, base, ("drug",))
        elif u < 0.25:
            lines.append(Line(oxygen, d, int(rng.integers(2, 9)) * 1000))
    kw = {"dx_code": "Z51.5"} if variant == 0 else {"dx2": ["Z51.5"]}
    s = out.add(W.settlement(rng, p, inst, IP, discharge, lines, dx=dx, admit=admit, discharge=discharge, **kw))
    rows.append(_la("palliative_care", "palliative care (Z51.5, " + ("primary" if variant == 0 else "secondary")
                    + f" diagnosis): {los} days of comfort care, mostly bed and nursing",
                    W.pid(p), W.inst_id_list[inst], [s.id]))


def _death_in_hospital(W: World, rng, out: SchemeOutput, rows: list, variant: int) -> None:
    """A patient who dies on the ward: treated every day, with only comfort care (oxygen
    now and then) in the last two to four days, or treated to the end; discharged on the
    day of death and settled by the family one to five days later (the death may not be
    in the registry yet when the stay is screened)."""
    p = _patient(W, ELDERLY)
    if p is None:
        return
    inst = pick_inst(W, rng, IP, 0.0)
    dx = W.dx_index[("I63.9", "I50.9", "J44.9", "C34.9")[int(rng.integers(0, 4))]]
    lag = int(rng.integers(1, 6))
    death = day_in(W, rng, 0, lag)
    los = int(rng.integers(10, 26))
    admit = death - los
    W.death[p] = death
    lines, base = _hotel(W, rng, admit, death)
    comfort = int(rng.integers(2, 5)) if variant == 0 else 0
    oxygen = W.item_index_by_name("Oxygen inhalation (per hour)")
    for d in range(admit, death + 1):
        if d < death - comfort:
            lines += _care(W, rng, p, inst, dx, d, int(rng.integers(1, 4)), base)
        elif rng.random() < 0.5:
            lines.append(Line(oxygen, d, int(rng.integers(4, 13)) * 1000))
    s = out.add(W.settlement(rng, p, inst, IP, death + lag, lines, dx=dx, admit=admit, discharge=death))
    last = f"comfort care in the last {comfort} days" if comfort else "daily care to the end"
    rows.append(_la("death_in_hospital_settled_after",
                    f"died on the ward after {los} days ({last}), settled {lag} day(s) after the death",
                    W.pid(p), W.inst_id_list[inst], [s.id]))


def plant(W: World, rng, scale: float) -> tuple[SchemeOutput, list[dict]]:
    out = SchemeOutput()
    rows: list[dict] = []
    if W.days < 10:
        return out, rows
    n = max(2, round(2 * scale ** 0.5))
    for j in range(n):
        _long_daily_care(W, rng, out, rows, j % 3)
        _pre_surgery_wait(W, rng, out, rows, j % 2)
        _palliative(W, rng, out, rows, j % 2)
        _death_in_hospital(W, rng, out, rows, j % 2)
    if n < 3:       # every kind of daily care at least once
        _long_daily_care(W, rng, out, rows, 2)
    return out, rows
