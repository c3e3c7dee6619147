"""Scheduled treatment cohorts and care homes: honest groups of patients who see the same
doctor / unit on the same days again and again, by the design of their care, not by a
ring's arrangement.

- dialysis units: 5-25 patients on one shift, 2 or 3 sessions a week on fixed weekdays
  (Mon/Wed/Fri, Tue/Thu/Sat, Mon/Thu, ...), attendance 85-98 %, a missed session sometimes
  made up the next day, some patients starting or leaving during the month;
- chemotherapy day-case units: one chair weekday, cycles of 14, 21 or 28 days (day 1 only,
  days 1 and 8, or days 1 and 2), sometimes a blood test the day before, a cycle now and
  then delayed a week;
- rehabilitation: daily courses on workdays (10-20 sessions, a group starting together or
  staggered) or groups 2-3 times a week on fixed weekdays;
- care homes: 10-40 elderly residents with one to three chronic conditions each (the
  others written as secondary diagnoses, or not), sharing one address (some or all also
  the home's phone), a doctor of a community / clinic institution on rounds once or twice a week who
  sees a share of them each round, now and then a sick call on another day.

Units code their sessions by the condition (N18.5, C34.9, ...), as an encounter for
care (Z49.1 dialysis, Z51.1 chemotherapy, Z50.9 rehabilitation) with the condition as
secondary diagnosis, or either from one session to the next.

Several cohorts of each family (their number grows with sqrt(scale)), each with its own
size, weekdays, attendance and doctors. Items: the catalog's Haemodialysis, Pemetrexed with
an infusion and a blood count, Physiotherapy with acupuncture / tuina / traction, ordinary
consultations for the rounds; each drug is given once per patient (no days-supply overlap).
"""
from __future__ import annotations

import numpy as np

from pipeline.synth.catalog import ELDERLY, OP
from pipeline.synth.lookalikes.basic import _la
from pipeline.synth.schemes import SchemeOutput
from pipeline.synth.schemes._common import adult_or_elderly, op_visit
from pipeline.synth.world import ALIVE, CLINIC, COMMUNITY, HOSP, Line, World

WEEKDAY_SETS_DIALYSIS = [(0, 2, 4), (1, 3, 5), (0, 3), (1, 4), (2, 5)]
WEEKDAY_SETS_REHAB = [(0, 2, 4), (1, 3), (0, 3), (1, 3, 5), (2, 4)]


def _wd(day: int) -> int:
    return (day + 3) % 7               # 1970-01-01 was a Thursday: 0 = Monday


def _days(weekdays) -> str:
    return "/".join(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[w] for w in weekdays)


def _room(W: World, day: int) -> bool:
    """Room left in the day's extract for hand-made settlements (as the ring scheme)."""
    capacity = max(10, int(W.daily_target[min(max(day - W.start, 0), W.days - 1)] * 0.9))
    return len(W.reserved_nums.get(day, ())) < capacity // 2


def _n(scale: float) -> int:
    return max(2, round(3 * scale ** 0.5))


def _people(W: World, rng, k: int, ag: int | None = None) -> list[int]:
    """k persons of the outpatient pool (alive through the run, no chronic refills), taken
    out of the background (role 3: the background draws no visit for them, so no visit of
    theirs lands by chance in a distant city on a session day). The reserved pool is too
    small for hundreds of cohort members. Shrinks the background's candidates by a few per
    cent: the background of a run differs from a run without this module."""
    ok = (W.role == 0) & (W.death == ALIVE) & ~W.chronic
    if ag is not None:
        ok &= W.agegroup == ag
    cand = np.flatnonzero(ok)
    if len(cand) < k + 50:
        return []
    out = [int(p) for p in rng.choice(cand, k, replace=False)]
    W.role[out] = 3
    return out


def _inst(W: World, rng, kinds, min_level: int = 0) -> int | None:
    pool = np.flatnonzero(np.isin(W.inst_kind, kinds) & (W.inst_level >= min_level) & (W.doc_count >= 2))
    if not len(pool):
        return None
    return int(pool[int(rng.integers(0, len(pool)))])


def _doctors(W: World, rng, inst: int, k: int) -> list[int]:
    docs = np.arange(int(W.doc_start[inst]), int(W.doc_start[inst] + W.doc_count[inst]))
    return [int(d) for d in rng.choice(docs, min(k, len(docs)), replace=False)]


def _add(W, rng, out, p, inst, doctor, day, lines, dx, coding=None):
    """One outpatient settlement; coding = (primary code, secondary codes) when the
    session is coded as an encounter for care (Z49 dialysis, Z51 chemotherapy, Z50
    rehabilitation) with the condition beside it."""
    if not (W.start <= day <= W.end) or not _room(W, day):
        return None
    code, dx2 = coding if coding is not None else (None, None)
    return out.add(W.settlement(rng, p, inst, OP, day, lines, dx=dx, doctor=doctor, dx_code=code, dx2=dx2))


def _coding(rng, care_code: str, condition: str):
    """How a unit codes its sessions: the condition, the encounter for care with the
    condition as secondary, or either from one session to the next."""
    style = rng.choice(["condition", "encounter", "mixed"])

    def code():
        if style == "condition" or (style == "mixed" and rng.random() < 0.5):
            return None
        return (care_code, [condition])
    return code


def plant(W: World, rng, scale: float) -> tuple[SchemeOutput, list[dict]]:
    out, rows = SchemeOutput(), []
    if W.days < 8:            # a schedule shows as repetition: too short a run holds none
        return out, rows
    for _ in range(_n(scale)):
        _dialysis(W, rng, out, rows)
        _chemotherapy(W, rng, out, rows)
        _rehabilitation(W, rng, out, rows)
        _care_home(W, rng, out, rows)
    return out, rows


def _dialysis(W: World, rng, out: SchemeOutput, rows: list) -> None:
    size = int(rng.integers(5, 26))
    inst = _inst(W, rng, [HOSP, CLINIC], min_level=2)    # haemodialysis needs level 2
    if inst is None:
        return
    doctors = _doctors(W, rng, inst, 1 if rng.random() < 0.6 else 2)
    weekdays = WEEKDAY_SETS_DIALYSIS[int(rng.integers(0, len(WEEKDAY_SETS_DIALYSIS)))]
    attend = 0.85 + 0.13 * rng.random()
    makeup = 0.6 * rng.random()
    hd = W.item_index_by_name("Haemodialysis")
    labs = [W.item_index_by_name(n) for n in ("Renal function panel", "Complete blood count")]
    dx = W.dx_index["N18.5"]
    coding = _coding(rng, "Z49.1", "N18.5")
    for p in _people(W, rng, size, adult_or_elderly(rng)):
        first, last = W.start, W.end
        u = rng.random()
        if u < 0.15:
            first = W.start + int(rng.integers(3, max(4, W.days // 2)))      # new to the unit
        elif u < 0.25:
            last = W.end - int(rng.integers(3, max(4, W.days // 2)))        # transplanted / moved
        sessions = []
        for d in range(first, last + 1):
            if _wd(d) not in weekdays:
                continue
            if rng.random() < attend:
                sessions.append(d)
            elif rng.random() < makeup and d + 1 <= last and _wd(d + 1) != 6 and _wd(d + 1) not in weekdays:
                sessions.append(d + 1)                                       # made up next day
        sids = []
        for d in sessions:
            lines = [Line(hd, d, 1000)]
            if rng.random() < 0.2:
                lines.append(Line(labs[int(rng.integers(0, 2))], d, 1000))
            s = _add(W, rng, out, p, inst, doctors[int(rng.integers(0, len(doctors)))], d, lines, dx, coding())
            if s is not None:
                sids.append(s.id)
        rows.append(_la("dialysis_cohort",
                        f"haemodialysis patient on a fixed shift ({len(weekdays)} sessions a week, weekdays "
                        f"{_days(weekdays)}) with {size - 1} others",
                        W.pid(p), W.inst_id_list[inst], sids))


def _chemotherapy(W: World, rng, out: SchemeOutput, rows: list) -> None:
    size = int(rng.integers(5, 26))
    inst = _inst(W, rng, [HOSP], min_level=2)
    if inst is None:
        return
    doctors = _doctors(W, rng, inst, 1 if rng.random() < 0.5 else 2)
    chair = int(rng.integers(0, 5))                       # the unit's chemotherapy weekday
    mixed = rng.random() < 0.4                            # cycle length per patient, else per cohort
    cohort_cycle = int(rng.choice([14, 21, 28]))
    regimen = str(rng.choice(["d1", "d1d8", "d1d2"]))
    pre_lab = rng.random() < 0.5
    delay_p = 0.2 * rng.random()
    pem = W.item_index_by_name("Pemetrexed for injection")
    iv = W.item_index_by_name("Intravenous infusion")
    cbc = W.item_index_by_name("Complete blood count")
    dx = W.dx_index["C34.9"]
    coding = _coding(rng, "Z51.1", "C34.9")
    base = W.start + (chair - _wd(W.start)) % 7           # the first chair day of the run
    for p in _people(W, rng, size, ELDERLY):
        cycle = int(rng.choice([14, 21, 28])) if mixed else cohort_cycle
        reg = "d1d8" if (regimen == "d1d8" and cycle == 21) else ("d1" if regimen == "d1d8" else regimen)
        start = base + 7 * int(rng.integers(0, cycle // 7)) - cycle * int(rng.integers(0, 2))
        days, c = set(), start
        while c <= W.end:
            if rng.random() < delay_p:
                c += 7                                      # blood counts too low: a week later
            for off in {"d1": (0,), "d1d8": (0, 7), "d1d2": (0, 1)}[reg]:
                days.add(c + off)
            c += cycle
        sids = []
        for d in sorted(days):
            if d < W.start or d > W.end:
                continue
            day1 = d in {x for x in days if x - 1 not in days and x - 7 not in days} or reg == "d1"
            if pre_lab and day1 and d - 1 >= W.start and d - 1 not in days:
                s = _add(W, rng, out, p, inst, doctors[0], d - 1, [Line(cbc, d - 1, 1000)], dx, coding())
                if s is not None:
                    sids.append(s.id)
            lines = [Line(pem, d, 1000, days_supply=1), Line(iv, d, 1000)]
            if not pre_lab:
                lines.append(Line(cbc, d, 1000))
            s = _add(W, rng, out, p, inst, doctors[int(rng.integers(0, len(doctors)))], d, lines, dx, coding())
            if s is not None:
                sids.append(s.id)
        rows.append(_la("chemotherapy_cohort",
                        f"day-case chemotherapy every {cycle} days ({reg}) on the unit's "
                        f"{_days([chair])} chairs with {size - 1} others",
                        W.pid(p), W.inst_id_list[inst], sids))


REHAB_DX = [("I63.9", "Acupuncture"), ("S52.5", None), ("M54.5", "Lumbar traction"),
            ("M54.5", "Tuina massage"), ("M17.9", "Acupuncture")]


def _rehabilitation(W: World, rng, out: SchemeOutput, rows: list) -> None:
    size = int(rng.integers(5, 26))
    inst = _inst(W, rng, [HOSP, CLINIC, COMMUNITY])
    if inst is None:
        return
    doctor = _doctors(W, rng, inst, 1)[0]
    course = rng.random() < 0.5
    weekdays = (0, 1, 2, 3, 4) if course else WEEKDAY_SETS_REHAB[int(rng.integers(0, len(WEEKDAY_SETS_REHAB)))]
    together = rng.random() < 0.5                     # a class starting on one day
    attend = 0.8 + 0.17 * rng.random()
    physio = W.item_index_by_name("Physiotherapy (per 30 minutes)")
    group_start = W.start + int(rng.integers(0, max(1, W.days - 14)))
    encounter = rng.random() < 0.4           # sessions coded Z50 (rehabilitation), condition beside
    for p in _people(W, rng, size, ELDERLY):
        dx_code, extra = REHAB_DX[int(rng.integers(0, len(REHAB_DX)))]
        dx = W.dx_index[dx_code]
        coding = ("Z50.9", [dx_code]) if encounter else None
        if course:
            start = group_start if together else W.start + int(rng.integers(0, max(1, W.days - 10)))
            n_sessions, slots, d = int(rng.integers(10, 21)), [], start
            while len(slots) < n_sessions and d <= W.end:
                if _wd(d) in weekdays:
                    slots.append(d)
                d += 1
        else:
            start = W.start if rng.random() < 0.8 else W.start + int(rng.integers(3, max(4, W.days // 2)))
            slots = [d for d in range(start, W.end + 1) if _wd(d) in weekdays]
        sids = []
        for d in slots:
            if rng.random() >= attend:
                continue
            lines = [Line(physio, d, 1000)]
            if extra is not None:
                lines.append(Line(W.item_index_by_name(extra), d, 1000))
            s = _add(W, rng, out, p, inst, doctor, d, lines, dx, coding)
            if s is not None:
                sids.append(s.id)
        rows.append(_la("rehabilitation_group",
                        ("daily rehabilitation course on workdays" if course else
                         f"rehabilitation group on {_days(weekdays)}")
                        + f" ({dx_code}) with {size - 1} others",
                        W.pid(p), W.inst_id_list[inst], sids))


CARE_HOME_DX = ["I10", "E11.9", "I50.9", "J44.9", "M17.9", "I63.9"]


def _care_home(W: World, rng, out: SchemeOutput, rows: list) -> None:
    size = int(rng.integers(10, 41))
    inst = _inst(W, rng, [COMMUNITY, CLINIC])
    if inst is None:
        inst = _inst(W, rng, [HOSP])
    if inst is None:
        return
    doctor = _doctors(W, rng, inst, 1)[0]
    others = [d for d in range(int(W.doc_start[inst]), int(W.doc_start[inst] + W.doc_count[inst])) if d != doctor]
    rounds_wd = tuple(sorted(int(x) for x in rng.choice(5, 1 if rng.random() < 0.6 else 2, replace=False)))
    seen_p = 0.3 + 0.4 * rng.random()
    sick_p = 0.3 * rng.random()
    residents = _people(W, rng, size, ELDERLY)
    home = int(W.household.max()) + 1                     # one address for every resident
    W.household[residents] = home
    W.addr_null[residents] = False
    phone = rng.random()                                  # the home's phone: none, some, all
    shared_phone = [p for p in residents if rng.random() < (0.0 if phone < 0.4 else 0.5 if phone < 0.7 else 1.0)]
    W.phone_key[shared_phone] = np.uint64(3 * 10 ** 9 + home)
    W.phone_null[shared_phone] = False
    rounds = [d for d in range(W.start, W.end + 1) if _wd(d) in rounds_wd]
    secondary = rng.random() < 0.5          # the other conditions written beside the visit's one
    for p in residents:
        conditions = [str(c) for c in rng.choice(CARE_HOME_DX, int(rng.integers(1, 4)), replace=False)]
        used: set[int] = set()
        visits = [(d, doctor) for d in rounds if rng.random() < seen_p]
        if rng.random() < sick_p and others:
            d = W.start + int(rng.integers(0, W.days))
            if d not in {v for v, _ in visits}:
                visits.append((d, others[int(rng.integers(0, len(others)))]))
        sids = []
        for d, doc in sorted(visits):
            main = conditions[0] if rng.random() < 0.5 else conditions[int(rng.integers(0, len(conditions)))]
            dx = W.dx_index[main]
            _, lines = op_visit(W, rng, p, inst, d, dx=dx, n=int(rng.integers(1, 4)), exclude=used)
            used.update(l.item for l in lines if W.item_is_drug[l.item])
            besides = [c for c in conditions if c != main]
            s = _add(W, rng, out, p, inst, doc, d, lines, dx, (main, besides) if secondary and besides else None)
            if s is not None:
                sids.append(s.id)
        rows.append(_la("care_home_rounds",
                        f"care-home resident ({size} residents at one address"
                        f"{', the home phone' if p in shared_phone else ''}) seen on the doctor's rounds "
                        f"({_days(rounds_wd)})",
                        W.pid(p), W.inst_id_list[inst], sids))
