"""A drug limited to some diagnoses billed on a visit whose diagnoses are none of them
(often a high-resale drug)."""
from pipeline.synth.catalog import OP
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import adult_or_elderly, day_in, op_visit, pick_inst

SCHEME_ID = "indication_mismatch"


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    for _ in range(n_cases(scale)):
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        inst = pick_inst(W, rng, OP)
        day = day_in(W, rng)
        dx, lines = op_visit(W, rng, p, inst, day)
        cat3 = W.dx_codes[dx][:3]
        wrong = [k for k, i in enumerate(W.items) if i.indication and cat3 not in i.indication
                 and "o" in i.vts and i.role == "general" and i.sex_only is None
                 and (i.high_resale or rng.random() < 0.3)]
        k = int(wrong[int(rng.integers(0, len(wrong)))])
        lines = [l for l in lines if l.item != k] + [W.line(k, day, rng)]
        s = out.add(W.settlement(rng, p, inst, OP, day, lines, dx=dx))
        out.case(SCHEME_ID, "settlement", s.id, [s])
    return out
