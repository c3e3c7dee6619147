"""More bed-days billed than nights in the stay."""
from pipeline.synth.catalog import IP
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import adult_or_elderly, pick_dx, pick_inst, stay_window
from pipeline.synth.world import Line

SCHEME_ID = "bed_days_exceed_stay"


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    for _ in range(n_cases(scale)):
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        inst = pick_inst(W, rng, IP)
        dx = pick_dx(W, rng, IP, p)
        admit, discharge = stay_window(W, rng, 2, 9)
        lines = W.stay_lines(rng, p, inst, dx, admit, discharge)
        bed = next(l.item for l in lines if W.item_cat_names[l.item] == "bed")
        lines.append(Line(bed, discharge, 1000))        # the discharge day billed as a night
        if rng.random() < 0.4:                          # and a second bed type on one night
            other = next(b for b in W.bed_items if b != bed)
            lines.append(Line(other, admit, 1000))
        s = out.add(W.settlement(rng, p, inst, IP, discharge, lines, dx=dx, admit=admit, discharge=discharge))
        out.case(SCHEME_ID, "settlement", s.id, [s])
    return out
