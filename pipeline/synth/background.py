"""The honest background: one extract day of settlements and charge lines, vectorised.

Honest billing respects every rule in the catalog by construction:
- each person of the outpatient pool has at most one visit every 5 days (acute drugs supply
  3-5 days), chronic refills come exactly every `period` days with `period` days supplied;
- the inpatient pool is disjoint from the outpatient pool, and a new stay starts at least
  31 days after the previous discharge; stays settle on their discharge day; every night
  of a stay carries some care (a drug, test or treatment), besides bed, nursing and fee;
- items are drawn from menus already filtered by sex, age group, institution level and
  diagnosis (indication); (settlement, service_date, item) is unique; a package and its
  components never share a day; at most one time-based line per patient-day (<= 24 h);
- prices come from each institution's price list (at or below the cap of its level).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import contract
from pipeline.synth import arrowutil as au
from pipeline.synth.catalog import IP, OP, PH
from pipeline.synth.world import ALIVE, NEVER, TRACE_MOD, TRACE_MULT, PHARMACY, World

DSPAN = 128          # service dates of one settlement lie within [settle - DSPAN + 1, settle]


@dataclass
class DayResult:
    settlements: pa.Table          # contract columns + "_num" (sort key)
    items: pa.Table                # contract columns + "_num"
    watched: dict = field(default_factory=dict)


def _menu_items(W: World, vt, sex, ag, lvl, dx, rng, p_dx=0.5):
    """Vectorised draw of one item per line from the (dx or general) menus."""
    n = len(vt)
    gk = W.gen_key(vt, sex, ag, lvl)
    glen = W.gen_len[gk]
    u = rng.random(n)
    gi = W.gen_menu[gk, (u * glen).astype(np.int64)]
    dxc = np.maximum(dx, 0)
    dk = W.dx_key(vt, dxc, sex, ag, lvl)
    dlen = W.dx_len[dk]
    di = W.dx_menu[dk, (u * np.maximum(dlen, 1)).astype(np.int64)]
    use = (dx >= 0) & (dlen > 0) & (rng.random(n) < p_dx)
    return np.where(use, di, gi)


def _qty(W: World, item, rng):
    lo = W.item_qmin[item] // 1000
    hi = W.item_qmax[item] // 1000
    return (lo + (rng.random(len(item)) * (hi - lo + 1)).astype(np.int64)) * 1000


def background_day(W: World, day: int, rng: np.random.Generator) -> DayResult:
    di = day - W.start
    n = int(W.daily_target[di])
    n_ip = int(round(0.07 * n))
    n_ph = int(round(0.20 * n))
    n_op = n - n_ip - n_ph
    alive = W.death > day
    refill = W.chronic & alive & ((day + W.chronic_phase) % W.chronic_period == 0)
    elig = (W.role == 0) & alive & ((day + W.phase5) % 5 == 0) & ~refill
    cand = np.flatnonzero(elig)
    k = min(n_op + n_ph, len(cand))
    chosen = rng.choice(cand, k, replace=False) if k else cand[:0]
    op_p = chosen[:min(n_op, k)]
    ph_p = chosen[len(op_p):]
    rf_p = np.flatnonzero(refill)
    # inpatient discharges today
    n_late = int(rng.binomial(max(n_ip, 0), 0.02)) if n_ip else 0
    ipc = np.flatnonzero((W.role == 1) & (W.last_discharge < day - 59))
    ip_p = rng.choice(ipc, min(n_ip - n_late, len(ipc)), replace=False) if len(ipc) else ipc
    los = np.clip(np.round(rng.lognormal(np.log(5.0), 0.6, len(ip_p))), 1, 28).astype(np.int64)
    W.last_discharge[ip_p] = day
    latec = np.flatnonzero((W.role == 1) & (W.last_discharge == NEVER))
    late_p = rng.choice(latec, min(n_late, len(latec)), replace=False) if len(latec) else latec
    W.last_discharge[late_p] = day
    ip_p = np.concatenate([ip_p, late_p])
    los = np.concatenate([los, rng.integers(30, 91, len(late_p))])

    # ---------------------------------------------------------------- settlements
    vt = np.concatenate([np.full(len(op_p), OP), np.full(len(ph_p), PH), np.full(len(rf_p), PH),
                         np.full(len(ip_p), IP)])
    pat = np.concatenate([op_p, ph_p, rf_p, ip_p]).astype(np.int64)
    S = len(pat)
    is_rf = np.zeros(S, bool)
    is_rf[len(op_p) + len(ph_p):len(op_p) + len(ph_p) + len(rf_p)] = True
    sex, ag, city = W.sex[pat], W.agegroup[pat], W.p_city[pat]
    inst = np.empty(S, np.int64)
    dx = np.empty(S, np.int64)
    a, b, c = len(op_p), len(op_p) + len(ph_p), len(op_p) + len(ph_p) + len(rf_p)
    inst[:a] = W.pick_institutions(OP, city[:a], rng)
    inst[a:b] = W.pick_institutions(PH, city[a:b], rng)
    inst[b:c] = W.usual_pharmacy[rf_p]
    inst[c:] = W.pick_institutions(IP, city[c:], rng)
    dx[:a] = W.draw_dx(OP, sex[:a], ag[:a], rng)
    dx[a:b] = np.where(rng.random(b - a) < 0.35, -1, W.draw_dx(OP, sex[a:b], ag[a:b], rng))
    dx[b:c] = W.chronic_dx[rf_p]
    dx[c:] = W.draw_dx(IP, sex[c:], ag[c:], rng)
    lvl = W.inst_level[inst]
    doc = W.pick_doctors(inst, rng)
    admit = np.full(S, day, np.int64)
    admit[c:] = day - los
    # ---------------------------------------------------------------- lines
    parts = []   # (row, date, item, qty, days_supply)
    # outpatient: a consultation + 1..7 menu lines (+ sometimes a record booklet)
    rows = np.arange(a)
    parts.append((rows, np.full(a, day), W.consult_items[rng.integers(0, len(W.consult_items), a)],
                  np.full(a, 1000), None))
    nl = rng.integers(2, 9, a)
    r = np.repeat(rows, nl)
    it = _menu_items(W, np.full(len(r), OP), sex[r], ag[r], lvl[r], dx[r], rng)
    parts.append((r, np.full(len(r), day), it, _qty(W, it, rng), None))
    bk = rows[rng.random(a) < 0.1]
    parts.append((bk, np.full(len(bk), day), np.full(len(bk), W.booklet), np.full(len(bk), 1000), None))
    # acute pharmacy purchases: 1..4 lines
    rows = np.arange(a, b)
    r = np.repeat(rows, rng.integers(1, 5, b - a))
    it = _menu_items(W, np.full(len(r), PH), sex[r], ag[r], lvl[r], dx[r], rng)
    parts.append((r, np.full(len(r), day), it, _qty(W, it, rng), None))
    # chronic refills: one line, period/7 packs, days_supply = period
    rows = np.arange(b, c)
    per = W.chronic_period[rf_p]
    parts.append((rows, np.full(len(rows), day), W.chronic_drug[rf_p], (per // 7) * 1000, per))
    # inpatient: bed + daily nursing + diagnosis fee per night, extra lines inside the stay
    rows = np.arange(c, S)
    L = los
    r = np.repeat(rows, L)
    night = np.arange(len(r)) - np.repeat(np.cumsum(L) - L, L)
    d = admit[r] + night
    bed = np.array(W.bed_items)[rng.integers(0, 2, len(rows))]
    nurse = W.nursing_items[rng.integers(0, len(W.nursing_items), len(rows))]
    ridx = r - c
    one = np.full(len(r), 1000)
    parts.append((r, d, bed[ridx], one, None))
    parts.append((r, d, nurse[ridx], one, None))
    parts.append((r, d, np.full(len(r), W.ip_fee), one, None))
    # time-based: 40% of stays, half of the nights, one item per stay, <= 24 h a day
    tstay = rng.random(len(rows)) < 0.4
    titem = W.time_items[rng.integers(0, len(W.time_items), len(rows))]
    m = tstay[ridx] & (rng.random(len(r)) < 0.5)
    ti = titem[ridx[m]]
    parts.append((r[m], d[m], ti, _qty(W, ti, rng), None))
    T = rng.integers(20, 81, len(rows))
    E = np.maximum(4, T - 3 * L)
    r = np.repeat(rows, E)
    d = admit[r] + (rng.random(len(r)) * (L[r - c] + 1)).astype(np.int64)
    it = _menu_items(W, np.full(len(r), IP), sex[r], ag[r], lvl[r], dx[r], rng, p_dx=0.45)
    parts.append((r, d, it, _qty(W, it, rng), None))
    # real daily care: an inpatient is treated every day of the stay (a drug, a test, a
    # treatment), not only on a few; a long stay billed bed and nursing alone is the
    # bed-hanging scheme, not an honest stay
    r = np.repeat(rows, L)
    d = admit[r] + np.arange(len(r)) - np.repeat(np.cumsum(L) - L, L)
    it = _menu_items(W, np.full(len(r), IP), sex[r], ag[r], lvl[r], dx[r], rng, p_dx=0.6)
    parts.append((r, d, it, _qty(W, it, rng), None))

    row = np.concatenate([p[0] for p in parts]).astype(np.int64)
    date = np.concatenate([p[1] for p in parts]).astype(np.int64)
    item = np.concatenate([p[2] for p in parts]).astype(np.int64)
    qty = np.concatenate([p[3] for p in parts]).astype(np.int64)
    ds = np.concatenate([p[4] if p[4] is not None else np.full(len(p[0]), -1) for p in parts]).astype(np.int64)
    # unique (settlement, date, item); sorted by settlement then date then item
    NI = W.n_items
    off = date - (day - DSPAN + 1)
    key = (row * DSPAN + off) * NI + item
    _, first = np.unique(key, return_index=True)
    row, date, item, qty, ds = row[first], date[first], item[first], qty[first], ds[first]
    # a package and its components never on the same day
    rd = row * DSPAN + (date - (day - DSPAN + 1))
    drop = np.zeros(len(row), bool)
    for pk, comps in W.packages:
        has = np.unique(rd[item == pk])
        if len(has):
            drop |= np.isin(item, comps) & np.isin(rd, has)
    keep = ~drop
    row, date, item, qty, ds = row[keep], date[keep], item[keep], qty[keep], ds[keep]
    drug = W.item_is_drug[item]
    vt_l = vt[row]
    ds = np.where(ds >= 0, ds, np.where(drug, np.where(vt_l == IP, 1, rng.integers(3, 6, len(row))), -1))
    # ---------------------------------------------------------------- money
    price = W.price[inst[row], item]
    amount = (qty * price + 50000) // 100000
    elig = amount * W.item_elig[item] // 100
    counts = np.bincount(row, minlength=S)
    assert (counts > 0).all(), "every settlement has at least one line"
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    total = np.add.reduceat(amount, starts)
    elig_s = np.add.reduceat(elig, starts)
    ins = W.ins[pat]
    share = np.where(ins == 0, 0.70 + 0.15 * rng.random(S), 0.55 + 0.15 * rng.random(S))
    fund = np.floor(elig_s * share).astype(np.int64)
    line_no = np.arange(len(row)) - np.repeat(starts, counts) + 1
    # ---------------------------------------------------------------- ids
    reserved = np.array(sorted(W.reserved_nums.get(day, ())), dtype=np.int64)
    free = np.setdiff1d(np.arange(S + len(reserved)), reserved)[:S]
    nums = free[rng.permutation(S)]
    ymd = au.day_to_str(day).replace("-", "")
    sid = au.padded("S" + ymd, nums, 7)
    # trace codes: one per pack of each drug line
    ntr = np.where(drug, qty // 1000, 0)
    ctr = np.arange(int(ntr.sum()), dtype=np.int64)
    codes = au.padded(ymd, (ctr * TRACE_MULT + 12345) % TRACE_MOD, 12)
    offsets = pa.array(np.concatenate([[0], np.cumsum(ntr)]).astype(np.int32))
    trace = pa.ListArray.from_arrays(offsets, codes, mask=pa.array(~drug))
    # secondary dx: some elderly inpatients carry hypertension / diabetes
    sec_code = np.where(rng.random(S) < 0.5, W.dx_index["I10"], W.dx_index["E11.9"])
    has_sec = (vt == IP) & (ag == 2) & (rng.random(S) < 0.4) & (sec_code != dx)
    sec_off = np.concatenate([[0], np.cumsum(has_sec)]).astype(np.int32)
    secondary = pa.ListArray.from_arrays(pa.array(sec_off), W.dx_code_arr.take(pa.array(sec_code[has_sec])),
                                         mask=pa.array(~has_sec))
    dept = np.where(ag == 0, W.depts.index("PED"), W.dx_dept[np.maximum(dx, 0)])
    dept_null = (vt == PH) | (dx < 0)
    dept_arr = pa.array(W.depts).take(pa.array(dept, mask=dept_null))
    doc_arr = W.doc_id.take(pa.array(doc, mask=doc < 0))
    st = pa.table({
        "settlement_id": sid,
        "patient_id": W.patient_id.take(pa.array(pat)),
        "institution_id": W.inst_id.take(pa.array(inst)),
        "doctor_id": doc_arr,
        "dept_code": dept_arr,
        "visit_type": pa.array(["outpatient", "inpatient", "pharmacy"]).take(pa.array(vt)),
        "admit_date": au.dates(admit),
        "discharge_date": au.dates(np.where(vt == IP, day, 0), mask=vt != IP),
        "settle_date": au.dates(np.full(S, day)),
        "primary_dx": W.dx_code_arr.take(pa.array(dx, mask=dx < 0)),
        "secondary_dx": secondary,
        "total_amount": au.dec(total, contract.MONEY),
        "fund_paid": au.dec(fund, contract.MONEY),
        "self_paid": au.dec(total - fund, contract.MONEY),
        "insurance_type": pa.array(["employee", "resident"]).take(pa.array(ins)),
        "settle_region": W.city_region.take(pa.array(city)),
        "reversal_of": pa.nulls(S, pa.string()),
    }).cast(contract.SETTLEMENTS)
    it_t = pa.table({
        "settlement_id": sid.take(pa.array(row)),
        "line_no": pa.array(line_no.astype(np.int32)),
        "item_code": W.item_code.take(pa.array(item)),
        "item_category": W.item_cat.take(pa.array(item)),
        "service_date": au.dates(date),
        "quantity": au.dec(qty, contract.QTY),
        "unit_price": au.dec(price, contract.UNIT_PRICE),
        "amount": au.dec(amount, contract.MONEY),
        "fund_eligible_amount": au.dec(elig, contract.MONEY),
        "ordering_doctor_id": doc_arr.take(pa.array(row)),
        "days_supply": pa.array(ds.astype(np.int16), mask=~drug),
        "trace_codes": trace,
    }).cast(contract.SETTLEMENT_ITEMS)
    st = st.append_column("_num", pa.array(nums))
    it_t = it_t.append_column("_num", pa.array(nums[row]))
    # ---------------------------------------------------------------- watch lists for look-alikes
    watched = {}
    hd = np.isin(pat, W.honest_dead)
    if hd.any():
        watched["before_death"] = list(zip(pat[hd].tolist(), sid.filter(pa.array(hd)).to_pylist()))
    cw = np.isin(pat, W.watch_chronic) & is_rf
    if cw.any():
        watched["chronic_refill"] = list(zip(pat[cw].tolist(), sid.filter(pa.array(cw)).to_pylist()))
    if di == 0:
        at_cap = W.capped[item] & (price == W.cap_by_level[item, lvl[row]]) & (vt_l == OP)
        rows_at = np.unique(row[at_cap])[:3]
        watched["price_at_cap"] = [(int(pat[x]), sid[int(x)].as_py(), int(inst[x])) for x in rows_at]
    # candidates for reversal: not of persons who die in the run
    watched["reversible"] = np.flatnonzero((W.death[pat] == ALIVE) & (rng.random(S) < 0.005))
    return DayResult(st, it_t, watched)


def reversal_tables(orig_s: pa.Table, orig_i: pa.Table, day: int, nums: np.ndarray) -> tuple[pa.Table, pa.Table]:
    """Reversal rows (new ids, negated amounts) and mirrored negative item lines."""
    ymd = au.day_to_str(day).replace("-", "")
    new_ids = au.padded("S" + ymd, nums, 7)
    n = orig_s.num_rows
    s = orig_s.drop_columns(["_num"]) if "_num" in orig_s.column_names else orig_s
    s = s.set_column(s.column_names.index("reversal_of"), "reversal_of", s["settlement_id"])
    s = s.set_column(0, "settlement_id", new_ids)
    s = s.set_column(s.column_names.index("settle_date"), "settle_date", au.dates(np.full(n, day)))
    for col in ("total_amount", "fund_paid", "self_paid"):
        s = s.set_column(s.column_names.index(col), col, pc.negate(s[col]))
    i = orig_i.drop_columns(["_num"]) if "_num" in orig_i.column_names else orig_i
    pos = pc.index_in(i["settlement_id"], value_set=orig_s["settlement_id"])
    i = i.set_column(0, "settlement_id", new_ids.take(pos))
    for col in ("quantity", "amount", "fund_eligible_amount"):
        i = i.set_column(i.column_names.index(col), col, pc.negate(i[col]))
    s = s.cast(contract.SETTLEMENTS).append_column("_num", pa.array(nums))
    i = i.cast(contract.SETTLEMENT_ITEMS).append_column("_num", pa.array(nums).take(pos))
    return s, i
