"""死亡后就医 claims after death: settlements dated after the patient's death_date.

Three variants: the death is already in the first insured_persons snapshot; the death
happens during the run and is recorded only in the mid-run snapshot, while the claims
dated after it arrive BEFORE that snapshot (detectable_from = the snapshot date); an
inpatient stay admitted after death. One case per post-death settlement."""
from __future__ import annotations

from pipeline.synth.catalog import ADULT, ELDERLY, IP, OP, PH
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import day_in, pick_dx, pick_inst

SCHEME_ID = "after_death"


def _visit(W, rng, out, p, day, used):
    vt = OP if rng.random() < 0.6 else PH
    inst = pick_inst(W, rng, vt, 0.6)
    dx = pick_dx(W, rng, vt, p)
    lines = W.honest_lines(rng, p, inst, vt, dx, day, int(rng.integers(2, 6)), exclude=used)
    used.update(l.item for l in lines)
    return out.add(W.settlement(rng, p, inst, vt, day, lines, dx=dx))


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    late_ok = W.mid is not None and W.mid - W.start >= 4
    for k in range(n_cases(scale)):
        u = rng.random()
        kind = "known" if u < 0.4 or (u < 0.8 and not late_ok) else ("late" if u < 0.8 else "inpatient")
        if k == 1 and late_ok:
            kind = "late"
        p = W.take_patients(1, ag=ELDERLY if rng.random() < 0.8 else ADULT)[0]
        used: set[int] = set()
        if kind == "known":
            W.death[p] = W.start - int(rng.integers(3, 200))
            for day in sorted(set(int(day_in(W, rng)) for _ in range(int(rng.integers(1, 4))))):
                s = _visit(W, rng, out, p, day, used)
                out.case(SCHEME_ID, "settlement", s.id, [s], detectable_from=day)
        elif kind == "late":
            death = int(rng.integers(W.start + 1, W.mid - 2))
            W.death[p] = death
            if death - 1 >= W.start:      # an honest claim before the death (not evidence)
                _visit(W, rng, out, p, int(rng.integers(W.start, death)), used)
            days_after = sorted(set(int(rng.integers(death + 1, W.mid)) for _ in range(int(rng.integers(1, 3)))))
            if rng.random() < 0.5 and W.end > W.mid:
                days_after.append(int(rng.integers(W.mid, W.end + 1)))
            for day in sorted(set(days_after)):
                s = _visit(W, rng, out, p, day, used)
                out.case(SCHEME_ID, "settlement", s.id, [s], detectable_from=max(day, W.mid))
        else:
            discharge = day_in(W, rng)
            los = int(rng.integers(2, 7))
            admit = discharge - los
            W.death[p] = min(admit, W.start) - int(rng.integers(1, 30))
            inst = pick_inst(W, rng, IP)
            dx = pick_dx(W, rng, IP, p)
            lines = W.stay_lines(rng, p, inst, dx, admit, discharge, n_extra=int(rng.integers(8, 25)))
            s = out.add(W.settlement(rng, p, inst, IP, discharge, lines, dx=dx, admit=admit,
                                     discharge=discharge))
            out.case(SCHEME_ID, "settlement", s.id, [s], detectable_from=discharge)
    return out
