"""More than 24 hours of time-based items billed for one patient on one day (two hourly
items whose hours add up to 26-40, each within its own daily limit)."""
from pipeline.synth.catalog import IP
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import adult_or_elderly, pick_dx, pick_inst, stay_window
from pipeline.synth.world import Line

SCHEME_ID = "over_24_hours"


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    hourly = [k for k in W.time_items if W.item_hpu[k] == 1.0]
    for _ in range(n_cases(scale)):
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        inst = pick_inst(W, rng, IP)
        dx = pick_dx(W, rng, IP, p)
        admit, discharge = stay_window(W, rng, 2, 7)
        lines = W.stay_lines(rng, p, inst, dx, admit, discharge)
        a, b = [int(x) for x in rng.permutation(hourly)[:2]]
        for d in range(admit, discharge):
            if d == admit + 1 or rng.random() < 0.3:
                h1 = int(rng.integers(14, 25))
                h2 = int(rng.integers(max(1, 26 - h1), 17))
                lines += [Line(a, d, h1 * 1000), Line(b, d, h2 * 1000)]
        s = out.add(W.settlement(rng, p, inst, IP, discharge, lines, dx=dx, admit=admit, discharge=discharge))
        out.case(SCHEME_ID, "settlement", s.id, [s])
    return out
