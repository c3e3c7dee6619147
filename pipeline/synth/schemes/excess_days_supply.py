"""超量开药 the same drug bought at several pharmacies within days, each time with about a
month's supply: days supplied far above days elapsed (often a high-resale drug)."""
from pipeline.synth.catalog import PH
from pipeline.synth.schemes import SchemeOutput, n_cases
from pipeline.synth.schemes._common import adult_or_elderly, day_in, pick_inst
from pipeline.synth.world import Line

SCHEME_ID = "excess_days_supply"


def plant(W, days, rng, scale) -> SchemeOutput:
    out = SchemeOutput()
    for _ in range(n_cases(scale)):
        p = W.take_patients(1, ag=adult_or_elderly(rng))[0]
        drugs = [int(k) for k in W.chronic_items if W.items[k].high_resale or rng.random() < 0.3]
        drug = drugs[int(rng.integers(0, len(drugs)))]
        ind = W.items[drug].indication[0]
        dx = next(k for k, d in enumerate(W.dx) if d.cat3 == ind)
        n = int(rng.integers(3, 5))
        day = day_in(W, rng, 0, 3 * (n - 1))
        evidence = []
        last = None
        for _j in range(n):
            if day == last:
                break
            inst = pick_inst(W, rng, PH, 0.5)
            lines = [Line(drug, day, 4000, days_supply=28)]
            evidence.append(out.add(W.settlement(rng, p, inst, PH, day, lines, dx=dx)))
            last = day
            day = min(day + int(rng.integers(1, 4)), W.end)
        out.case(SCHEME_ID, "patient", W.pid(p), evidence)
    return out
