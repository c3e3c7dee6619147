"""An outpatient visit or pharmacy purchase elsewhere on a day the patient was inpatient."""
from pipeline.synth.catalog import IP, OP, PH
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import adult_or_elderly, day_in, op_visit, pick_dx, pick_inst

SCHEME_ID = "visit_during_stay"


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    for _ in range(n_cases(scale)):
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        inst = pick_inst(W, rng, IP, 0.2)
        dx = pick_dx(W, rng, IP, p)
        vday = day_in(W, rng, 0, 1)                     # strictly inside the stay, inside the run
        admit = vday - int(rng.integers(1, 6))
        discharge = min(vday + int(rng.integers(1, 6)), W.end)
        stay_lines = W.stay_lines(rng, p, inst, dx, admit, discharge)
        stay = out.add(W.settlement(rng, p, inst, IP, discharge, stay_lines, dx=dx, admit=admit,
                                    discharge=discharge))
        vt = PH if rng.random() < 0.5 else OP
        vinst = pick_inst(W, rng, vt, 0.8)
        used = {l.item for l in stay_lines}
        vdx, lines = op_visit(W, rng, p, vinst, vday, vt=vt, exclude=used)
        v = out.add(W.settlement(rng, p, vinst, vt, vday, lines, dx=vdx))
        out.case(SCHEME_ID, "settlement", v.id, [stay, v])
    return out
