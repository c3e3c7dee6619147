"""回流药 the same drug traceability code dispensed twice: a pack sold, returned to the
market and sold (and reimbursed) again at another pharmacy."""
from pipeline.synth.catalog import PH
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import adult_or_elderly, day_in, pick_inst
from pipeline.synth.world import Line

SCHEME_ID = "duplicate_trace_code"


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    drugs = [k for k, i in enumerate(W.items) if i.category == "drug" and i.role == "general"
             and i.indication is None and "p" in i.vts and i.min_age is None and i.max_age is None]
    for _ in range(n_cases(scale)):
        p1 = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        p2 = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        drug = int(drugs[int(rng.integers(0, len(drugs)))])
        d1 = day_in(W, rng, 0, 1)
        d2 = min(d1 + int(rng.integers(4, 9)), W.end)
        a = pick_inst(W, rng, PH, 0.3)
        b = pick_inst(W, rng, PH, 0.9)
        codes = W.next_trace(d1, 2)
        s1 = out.add(W.settlement(rng, p1, a, PH, d1, [Line(drug, d1, 2000, days_supply=4, trace=codes)]))
        second = p1 if (rng.random() < 0.3 and d2 - d1 >= 4) else p2
        s2 = out.add(W.settlement(rng, second, b, PH, d2, [Line(drug, d2, 1000, days_supply=3, trace=codes[1:])]))
        out.case(SCHEME_ID, "settlement", s2.id, [s1, s2], institution_id=W.inst_id_list[b])
    return out
