"""An item for one sex only billed for a patient of the other sex."""
from pipeline.synth.catalog import ADULT, OP
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import day_in, op_visit, pick_inst
from pipeline.synth.world import Line

SCHEME_ID = "sex_restricted_item"


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    for _ in range(n_cases(scale)):
        p = W.take_patients(1, ag=ADULT)[0]
        wrong = [k for k, i in enumerate(W.items) if i.sex_only and i.sex_only != "MF"[W.sex[p]]
                 and "o" in i.vts and i.min_level is None and i.category in ("exam", "lab")]
        inst = pick_inst(W, rng, OP)
        day = day_in(W, rng)
        dx, lines = op_visit(W, rng, p, inst, day)
        lines.append(Line(int(wrong[int(rng.integers(0, len(wrong)))]), day, 1000))
        s = out.add(W.settlement(rng, p, inst, OP, day, lines, dx=dx))
        out.case(SCHEME_ID, "settlement", s.id, [s])
    return out
