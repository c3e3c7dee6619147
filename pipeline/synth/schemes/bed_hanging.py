"""挂床 bed-hanging: a hospital keeps a patient on the ward and bills the bed, daily nursing
and the daily inpatient fee night after night while treatment has stopped.

Variants, one case per stay (entity = the stay), at culprit hospitals mostly and at other
hospitals now and then:

- treated then idle: real care (tests, drugs, a treatment) on the first one to three days,
  then bed, nursing and fee only (10-20 nights);
- sporadic cheap items: the same, with a cheap test, injection or tablet every four to
  eight days so the stay does not look empty (12-26 nights);
- long idle: a long stay (24-45 nights) with a little care on the first days and one or
  two items later;
- admitted on paper: a test or two on the admission day and nothing else (8-16 nights);
- kept after treatment: treated every day for 6-14 days, then kept 7-12 more nights with
  nothing given (压床) before discharge.

Patients are reserved persons drawn from the end of the pool (the schemes after this one
in name order keep the patients they always had). Only bed-hanging is wrong with these
stays: one bed, one nursing grade and one fee per night inside the stay, items drawn from
the patient's menus (sex, age, level, no unindicated drug).
"""
from __future__ import annotations

from pipeline.synth.catalog import IP
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import day_in, pick_dx, pick_inst
from pipeline.synth.world import Line, World

SCHEME_ID = "bed_hanging"
VARIANTS = ("treated_then_idle", "sporadic_cheap_items", "long_idle", "admitted_on_paper",
            "kept_after_treatment")
CARE = ("drug", "herbal", "exam", "lab", "treatment")
CHEAP = 15 * 10000          # ten-thousandths of a yuan: a cheap item


def _care_day(W: World, rng, p: int, inst: int, dx: int, day: int, n: int, taken: set) -> list[Line]:
    """n honest care items on one day (no two of a bundle, nothing twice that day)."""
    out = []
    for l in W.honest_lines(rng, p, inst, IP, dx, day, n, exclude=taken):
        if W.item_cat_names[l.item] in CARE and not W._bundle_clash(l.item, taken):
            taken.add(l.item)
            out.append(l)
    return out


def _cheap_items(W: World, p: int, inst: int) -> list[int]:
    """General-menu care items of the patient's kind that cost little at this institution."""
    key = W.gen_key(IP, int(W.sex[p]), int(W.agegroup[p]), int(W.inst_level[inst]))
    menu = [int(k) for k in W.gen_menu[key][:W.gen_len[key]]]
    return [k for k in menu if W.item_cat_names[k] in CARE and int(W.price[inst, k]) <= CHEAP]


def plant(W: World, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    if days < 10:       # the idle nights of a stay must be seen settling inside the run
        return out
    for k in range(n_cases(scale) + 2):
        variant = VARIANTS[k % len(VARIANTS)]
        p = W.take_patients(1, from_end=True)[0]
        inst = pick_inst(W, rng, IP, 0.75)
        dx = pick_dx(W, rng, IP, p)
        treated = {"admitted_on_paper": 1, "kept_after_treatment": int(rng.integers(6, 15))}.get(
            variant, int(rng.integers(1, 4)))
        los = {"treated_then_idle": (10, 21), "sporadic_cheap_items": (12, 27), "long_idle": (24, 46),
               "admitted_on_paper": (8, 17), "kept_after_treatment": (treated + 7, treated + 13)}[variant]
        los = int(rng.integers(*los))
        discharge = day_in(W, rng, 0, 0)
        admit = discharge - los
        bed = W.bed_items[int(rng.integers(0, 2))]
        nurse = int(rng.choice(W.nursing_items))
        lines = [Line(item, d, 1000) for d in range(admit, discharge) for item in (bed, nurse, W.ip_fee)]
        for d in range(admit, admit + treated):
            n = int(rng.integers(1, 3)) if variant == "admitted_on_paper" else int(rng.integers(2, 6))
            lines += _care_day(W, rng, p, inst, dx, d, n, {bed, nurse, W.ip_fee})
        later = []
        if variant == "sporadic_cheap_items":
            cheap = _cheap_items(W, p, inst)
            d = admit + treated + int(rng.integers(2, 6))
            while cheap and d < discharge:
                later.append(d)
                lines.append(W.line(cheap[int(rng.integers(0, len(cheap)))], d, rng, vt=IP))
                d += int(rng.integers(4, 9))
        elif variant == "long_idle":
            for d in sorted({int(x) for x in rng.integers(admit + treated, discharge, int(rng.integers(1, 3)))}):
                later.append(d)
                lines += _care_day(W, rng, p, inst, dx, d, 1, {bed, nurse, W.ip_fee})
        s = out.add(W.settlement(rng, p, inst, IP, discharge, lines, dx=dx, admit=admit, discharge=discharge))
        out.case(SCHEME_ID, "settlement", s.id, [s])
    return out
