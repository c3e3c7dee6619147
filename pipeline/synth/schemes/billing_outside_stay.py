"""Inpatient lines dated after discharge (or before admission); the stay settles a few days
after discharge so the extra lines are not future-dated."""
from pipeline.synth.catalog import IP
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import adult_or_elderly, pick_dx, pick_inst, stay_window

SCHEME_ID = "billing_outside_stay"


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    for _ in range(n_cases(scale)):
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        inst = pick_inst(W, rng, IP)
        dx = pick_dx(W, rng, IP, p)
        lag = int(rng.integers(1, 4)) if days > 4 else 0
        admit, discharge = stay_window(W, rng, 2, 8, tail=lag)
        lines = W.stay_lines(rng, p, inst, dx, admit, discharge)
        when = discharge + lag if lag else admit - 1
        lines += W.honest_lines(rng, p, inst, IP, dx, when, int(rng.integers(1, 4)))
        s = out.add(W.settlement(rng, p, inst, IP, discharge + lag, lines, dx=dx, admit=admit,
                                 discharge=discharge))
        out.case(SCHEME_ID, "settlement", s.id, [s])
    return out
