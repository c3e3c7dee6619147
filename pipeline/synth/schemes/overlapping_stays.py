"""The same patient inpatient at two institutions on overlapping days (挂床 / ghost stays)."""
from pipeline.synth.catalog import IP
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import adult_or_elderly, pick_dx, pick_inst, stay_window

SCHEME_ID = "overlapping_stays"


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    for _ in range(n_cases(scale)):
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        a_inst = pick_inst(W, rng, IP, 0.2)
        b_inst = pick_inst(W, rng, IP, 0.9)
        while b_inst == a_inst:
            b_inst = pick_inst(W, rng, IP, 0.0)
        admit, discharge = stay_window(W, rng, 4, 10)
        b_admit = admit + int(rng.integers(1, discharge - admit))
        b_dis = b_admit + int(rng.integers(2, 6))
        b_dis = min(b_dis, W.end) if b_dis > W.end else b_dis
        if b_dis <= b_admit:
            b_dis = b_admit + 1
        dx = pick_dx(W, rng, IP, p)
        dx2 = pick_dx(W, rng, IP, p)
        l1 = W.stay_lines(rng, p, a_inst, dx, admit, discharge)
        s1 = out.add(W.settlement(rng, p, a_inst, IP, discharge, l1, dx=dx, admit=admit, discharge=discharge))
        taken = {(l.item, l.date) for l in l1}   # no item twice a day: only the overlap is wrong
        settle = max(b_dis, W.start)
        if settle > W.end:
            settle = W.end
            b_dis = min(b_dis, W.end)
        s2 = out.add(W.settlement(rng, p, b_inst, IP, settle,
                                  [l for l in W.stay_lines(rng, p, b_inst, dx2, b_admit, b_dis)
                                   if (l.item, l.date) not in taken],
                                  dx=dx2, admit=b_admit, discharge=b_dis))
        later = s2 if s2.settle_day >= s1.settle_day else s1
        out.case(SCHEME_ID, "settlement", later.id, [s1, s2], institution_id=W.inst_id_list[b_inst])
    return out
