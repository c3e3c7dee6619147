"""The synthetic world: regions, institutions, practitioners, insured persons, catalog.

Everything is held as numpy arrays (vectorised daily generation reads them) plus a small
Python builder API (`World.settlement`, `World.honest_lines`, `World.stay_lines`) that
schemes and look-alikes use to add hand-made settlements that obey every billing rule
except the one a scheme breaks on purpose.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pyarrow as pa

from pipeline import contract
from pipeline.synth import arrowutil as au
from pipeline.synth.catalog import (ADULT, AGE_RANGE, CHILD, DX_LIST, ELDERLY, IP, OP, PH, SPECIALTIES,
                                    VT_NAMES, build_items)

NEVER = -(10 ** 6)          # "no previous stay"
ALIVE = 2 ** 31 - 1         # death_day sentinel
CITIES = [("4401", ["03", "04", "05", "06", "11"]), ("4403", ["03", "04", "05", "06"]),
          ("4404", ["02", "03", "04"]), ("4406", ["04", "05", "06"]), ("4420", ["00"])]
CITY_NAMES = {"4401": "Guangzhou", "4403": "Shenzhen", "4404": "Zhuhai", "4406": "Foshan",
              "4420": "Zhongshan"}
KIND_NAMES = ("hospital", "clinic", "community", "pharmacy")
HOSP, CLINIC, COMMUNITY, PHARMACY = range(4)
TRACE_MULT = 741_235_711          # odd, not divisible by 5: bijection mod 10**12
TRACE_MOD = 10 ** 12
PLANTED_TRACE_BASE = 600_000_000_000


def cents(x: int) -> Decimal:
    return Decimal(int(x)).scaleb(-2)


def ten_thousandths(x: int) -> Decimal:
    return Decimal(int(x)).scaleb(-4)


def milli(x: int) -> Decimal:
    return Decimal(int(x)).scaleb(-3)


def trace_code(day: int, counter: int) -> str:
    ymd = au.day_to_str(day).replace("-", "")
    return f"{ymd}{(counter * TRACE_MULT + 12345) % TRACE_MOD:012d}"


@dataclass
class Line:
    item: int
    date: int
    qty: int                 # thousandths
    price: int | None = None  # ten-thousandths; None: the institution's list price
    days_supply: int | None = None
    trace: list[str] | None = None   # explicit trace codes (else generated)


@dataclass
class Planted:
    """A hand-made settlement (scheme or look-alike), already priced."""
    settle_day: int
    num: int
    row: dict
    items: list[dict]

    @property
    def id(self) -> str:
        return self.row["settlement_id"]


class World:
    def __init__(self, scale: float, seed: int, start_day: int, days: int, profile="standard"):
        from pipeline.synth.profile import get as _profile
        self.profile = P = _profile(profile)
        self.scale, self.seed, self.start, self.days = scale, seed, start_day, days
        self.end = start_day + days - 1
        self.mid = start_day + days // 2 if days >= 4 else None   # mid-run insured_persons snapshot
        rng = np.random.default_rng([seed, 11])
        self._build_catalog()
        self._build_regions()
        self._build_institutions(rng)
        self._build_practitioners(rng)
        self._build_persons(rng)
        self._build_prices(rng)
        self._build_menus()
        self.daily_target = self._daily_targets(np.random.default_rng([seed, 12]))
        self.reserved_nums: dict[int, set[int]] = {}
        self.trace_counter: dict[int, int] = {}
        self._reserved_pool = list(np.flatnonzero(self.role == 2)[
            np.random.default_rng([seed, 13]).permutation(int((self.role == 2).sum()))])

    # ------------------------------------------------------------------ catalog
    def _build_catalog(self):
        items = build_items()
        self.items = items
        self.n_items = n = len(items)
        self.item_code = pa.array([i.code for i in items], pa.string())
        self.item_code_list = [i.code for i in items]
        self.item_index = {i.code: k for k, i in enumerate(items)}
        self.item_cat_names = [i.category for i in items]
        self.item_cat = pa.array(self.item_cat_names, pa.string())
        l3 = np.array([round(i.price * 10000) for i in items], dtype=np.int64)
        disc = np.array([i.level_discount for i in items])
        l2 = np.where(disc, np.round(l3 * 0.9 / 100) * 100, l3).astype(np.int64)
        l1 = np.where(disc, np.round(l3 * 0.8 / 100) * 100, l3).astype(np.int64)
        self.capped = np.array([i.capped for i in items])
        # cap by institution level 0..3 (0 uses the level-1 cap)
        self.cap_by_level = np.stack([l1, l1, l2, l3], axis=1)
        self.list_price = l3
        self.item_sex = np.array([{"M": 0, "F": 1}.get(i.sex_only, -1) for i in items])
        self.item_min_age = np.array([-1 if i.min_age is None else i.min_age for i in items])
        self.item_max_age = np.array([999 if i.max_age is None else i.max_age for i in items])
        self.item_min_level = np.array([0 if i.min_level is None else i.min_level for i in items])
        self.item_qmin = np.array([round(i.qmin * 1000) for i in items], dtype=np.int64)
        self.item_qmax = np.array([round(i.qmax * 1000) for i in items], dtype=np.int64)
        self.item_max_daily = np.array([-1 if i.max_daily is None else round(i.max_daily * 1000)
                                        for i in items], dtype=np.int64)
        self.item_elig = np.array([i.eligible_pct for i in items], dtype=np.int64)
        self.item_is_drug = np.array([i.category == "drug" for i in items])
        self.item_role = np.array([i.role for i in items])
        self.item_hpu = np.array([0.0 if i.hours_per_unit is None else i.hours_per_unit for i in items])
        self.item_mds = np.array([-1 if i.max_days_supply is None else i.max_days_supply for i in items])
        self.packages = [(k, [self.item_index[c] for c in i.bundle_of]) for k, i in enumerate(items)
                         if i.bundle_of]
        self.component_of = {c: p for p, comps in self.packages for c in comps}
        self.chronic_items = np.flatnonzero(self.item_role == "chronic")
        self.time_items = np.flatnonzero(self.item_role == "time")
        self.bed_items = [self.item_index_by_name(n) for n in ("General ward bed", "Double room bed")]
        self.nursing_items = np.flatnonzero(self.item_role == "nursing_day")
        self.consult_items = np.flatnonzero(self.item_role == "consult")
        self.booklet = self.item_index_by_name("Medical record booklet")
        self.ip_fee = self.item_index_by_name("Inpatient diagnosis fee")
        self.dx = DX_LIST
        self.dx_codes = [d.code for d in DX_LIST]
        self.dx_index = {d.code: k for k, d in enumerate(DX_LIST)}
        self.dx_code_arr = pa.array(self.dx_codes, pa.string())
        self.depts = list(SPECIALTIES)
        self.dx_dept = np.array([self.depts.index(d.dept) for d in DX_LIST])

    def item_index_by_name(self, name: str) -> int:
        for k, i in enumerate(self.items):
            if i.name == name:
                return k
        raise KeyError(name)

    def catalog_table(self) -> pa.Table:
        its = self.items
        def capcol(j):
            return au.dec(self.cap_by_level[:, j], contract.UNIT_PRICE, mask=~self.capped)
        cols = {
            "item_code": self.item_code,
            "name": pa.array([i.name for i in its]),
            "category": self.item_cat,
            "unit": pa.array([i.unit for i in its]),
            "price_cap_l3": capcol(3), "price_cap_l2": capcol(2), "price_cap_l1": capcol(1),
            "sex_only": pa.array([i.sex_only for i in its], pa.string()),
            "min_age": pa.array([i.min_age for i in its], pa.int16()),
            "max_age": pa.array([i.max_age for i in its], pa.int16()),
            "min_level": pa.array([i.min_level for i in its], pa.int8()),
            "max_daily_qty": au.dec(self.item_max_daily, contract.QTY, mask=self.item_max_daily < 0),
            "max_days_supply": pa.array([i.max_days_supply for i in its], pa.int16()),
            "indication_dx": pa.array([i.indication for i in its], pa.list_(pa.string())),
            "high_resale": pa.array([i.high_resale for i in its], pa.bool_()),
            "bundle_of": pa.array([i.bundle_of for i in its], pa.list_(pa.string())),
            "hours_per_unit": au.dec(np.round(self.item_hpu * 100).astype(np.int64), pa.decimal128(6, 2),
                                     mask=self.item_hpu == 0),
        }
        return pa.table(cols).cast(contract.CATALOG)

    # ------------------------------------------------------------------ regions
    def _build_regions(self):
        self.city_codes = [c for c, _ in CITIES]
        self.districts = []          # (code, city index)
        for ci, (c, ds) in enumerate(CITIES):
            for d in ds:
                self.districts.append((c + d, ci))
        self.district_code = np.array([d for d, _ in self.districts])
        self.district_city = np.array([c for _, c in self.districts])
        self.city_region = pa.array([c + "00" for c in self.city_codes])

    # ------------------------------------------------------------------ institutions
    def _build_institutions(self, rng):
        P = self.profile
        n = max(30, round(P.institutions_per_scale * self.scale))
        kind = rng.choice(4, n, p=list(P.kind_mix))
        kind[:6] = [HOSP, HOSP, HOSP, CLINIC, COMMUNITY, PHARMACY]
        kind[6:9] = PHARMACY
        level = np.zeros(n, dtype=np.int64)
        h = kind == HOSP
        level[h] = rng.choice([3, 2, 1], h.sum(), p=list(P.hospital_levels))
        level[:3] = [3, 2, 1]
        c = kind == CLINIC
        level[c] = rng.choice([1, 0], c.sum(), p=[0.7, 0.3])
        level[kind == COMMUNITY] = 1
        private = np.zeros(n, dtype=bool)
        private[h & (level == 2)] = rng.random((h & (level == 2)).sum()) < 0.3
        private[h & (level == 1)] = rng.random((h & (level == 1)).sum()) < 0.6
        private[c] = rng.random(c.sum()) < 0.8
        private[kind == PHARMACY] = rng.random((kind == PHARMACY).sum()) < 0.9
        private[1:3] = True
        beds = np.full(n, -1)
        beds[h & (level == 3)] = rng.integers(800, 2000, (h & (level == 3)).sum())
        beds[h & (level == 2)] = rng.integers(200, 600, (h & (level == 2)).sum())
        beds[h & (level == 1)] = rng.integers(30, 150, (h & (level == 1)).sum())
        district = rng.integers(0, len(self.districts), n)
        self.inst_kind, self.inst_level, self.inst_private, self.inst_beds = kind, level, private, beds
        self.inst_district = district
        self.inst_city = self.district_city[district]
        self.n_inst = n
        seq = np.arange(n)
        codes = self.district_code[district]
        self.inst_id_list = [("P" if k == PHARMACY else "H") + f"{codes[i]}{10000 + i:05d}"
                             for i, k in enumerate(kind)]
        self.inst_id = pa.array(self.inst_id_list)
        self.inst_contract_start = au.str_to_day("2010-01-01") + rng.integers(0, 365 * 14, n)
        # visit weights per class: OP -> hospitals/clinics/community, PH -> pharmacies, IP -> beds
        w_op = np.select([h & (level == 3), h & (level == 2), h & (level == 1), c, kind == COMMUNITY],
                         list(P.outpatient_weights), 0.0)
        w_ph = (kind == PHARMACY).astype(float)
        w_ip = np.where(h, beds, 0).astype(float)
        self.inst_weights = {OP: w_op, PH: w_ph, IP: w_ip}
        # culprits: private level 1-2 hospitals/clinics and some pharmacies
        hc = np.flatnonzero(private & np.isin(kind, [HOSP, CLINIC]) & np.isin(level, [1, 2]))
        ph = np.flatnonzero(private & (kind == PHARMACY))
        nc = max(2, round(0.04 * n))
        self.culprit_h = [int(x) for x in rng.permutation(hc)[:nc]]
        self.culprit_ip = [i for i in self.culprit_h if kind[i] == HOSP] or [1, 2]
        self.culprit_p = [int(x) for x in rng.permutation(ph)[:max(1, nc // 2)]]

    def institutions_table(self) -> pa.Table:
        names = [f"{CITY_NAMES[self.city_codes[self.inst_city[i]]]} "
                 f"{['Hospital', 'Clinic', 'Community Health Centre', 'Pharmacy'][k]} No.{i + 1}"
                 for i, k in enumerate(self.inst_kind)]
        t = pa.table({
            "institution_id": self.inst_id,
            "name": pa.array(names),
            "kind": pa.array([KIND_NAMES[k] for k in self.inst_kind]),
            "level": pa.array(self.inst_level.astype(np.int8)),
            "ownership": pa.array(np.where(self.inst_private, "private", "public")),
            "region": pa.array(self.district_code[self.inst_district]),
            "beds": pa.array(self.inst_beds.astype(np.int32), mask=self.inst_beds < 0),
            "contract_start": au.dates(self.inst_contract_start),
            "contract_end": pa.nulls(self.n_inst, pa.date32()),
        })
        return t.cast(contract.INSTITUTIONS)

    # ------------------------------------------------------------------ practitioners
    def _build_practitioners(self, rng):
        target = max(100, round(600 * self.scale))
        nonph = np.flatnonzero(self.inst_kind != PHARMACY)
        w = self.inst_weights[OP][nonph]
        extra = rng.multinomial(max(0, target - len(nonph)), w / w.sum())
        per = np.zeros(self.n_inst, dtype=np.int64)
        per[nonph] = 1 + extra
        ph = self.inst_kind == PHARMACY
        per[ph] = 1 + (rng.random(ph.sum()) < 0.5)
        inst = np.repeat(np.arange(self.n_inst), per)
        self.doc_inst = inst
        self.n_doc = len(inst)
        self.doc_start = np.concatenate([[0], np.cumsum(per)[:-1]])
        self.doc_count = per
        spec = rng.integers(0, len(SPECIALTIES), self.n_doc)
        self.doc_spec = np.where(self.inst_kind[inst] == PHARMACY, -1, spec)
        self.doc_id_list = [f"D{self.district_code[self.inst_district[i]]}{100000 + k:06d}"
                            for k, i in enumerate(inst)]
        self.doc_id = pa.array(self.doc_id_list)
        self.doc_licensed = au.str_to_day("1995-01-01") + rng.integers(0, 365 * 28, self.n_doc)

    def practitioners_table(self) -> pa.Table:
        return pa.table({
            "doctor_id": self.doc_id,
            "institution_id": self.inst_id.take(pa.array(self.doc_inst)),
            "specialty": pa.array([("PHA" if s < 0 else SPECIALTIES[s]) for s in self.doc_spec]),
            "licensed_from": au.dates(self.doc_licensed),
        }).cast(contract.PRACTITIONERS)

    def pick_doctors(self, inst: np.ndarray, rng, null_share_pharmacy: float = 0.4) -> np.ndarray:
        doc = self.doc_start[inst] + (rng.random(len(inst)) * self.doc_count[inst]).astype(np.int64)
        nul = (self.inst_kind[inst] == PHARMACY) & (rng.random(len(inst)) < null_share_pharmacy)
        return np.where(nul, -1, doc)

    # ------------------------------------------------------------------ persons
    def _build_persons(self, rng):
        P = self.profile
        n = max(1500, round(P.persons_per_scale * self.scale))
        sizes = rng.choice([1, 2, 3, 4, 5], n, p=list(P.household_sizes))
        hh = np.repeat(np.arange(n), sizes)[:n]
        self.n_persons = n
        self.household = hh
        hh_district = rng.integers(0, len(self.districts), n)
        self.p_district = hh_district[hh]
        self.p_city = self.district_city[self.p_district]
        ag = rng.choice(3, n, p=list(P.age_mix))
        self.agegroup = ag
        lo = np.array([1.0, 19.5, 61.5])[ag]
        hi = np.array([13.0, 58.5, 94.0])[ag]
        age_years = lo + rng.random(n) * (hi - lo)
        self.birth = (self.start - np.round(age_years * 365.25)).astype(np.int64)
        self.sex = rng.integers(0, 2, n)
        emp_p = np.array([0.0, 0.6, 0.4])[ag]
        self.ins = (rng.random(n) >= emp_p).astype(np.int64)      # 0 employee, 1 resident
        shared_phone = rng.random(n) < P.shared_phone_share
        self.shared_phone_hh = shared_phone                        # per household
        own = ~shared_phone[hh]
        self.phone_key = np.where(own, 10 ** 9 + np.arange(n), hh).astype(np.uint64)
        self.phone_null = (own & (ag == CHILD) & (rng.random(n) < 0.7)) | (rng.random(n) < 0.01)
        self.addr_null = rng.random(n) < 0.02
        self.enrolled = au.str_to_day("2000-01-01") + rng.integers(0, max(1, self.start - 30 - au.str_to_day("2000-01-01")), n)
        self.enrolled = np.maximum(self.enrolled, self.birth)
        self.death = np.full(n, ALIVE, dtype=np.int64)
        # roles: 0 outpatient/pharmacy pool, 1 inpatient pool, 2 reserved for schemes & look-alikes
        u = rng.random(n)
        res = max(0.05, min(0.3, 500 / n))          # small runs still need people for the schemes
        self.role = np.where(u < res, 2, np.where(u < res + P.inpatient_pool, 1, 0))
        self.phase5 = rng.integers(0, 5, n)
        self.last_discharge = np.full(n, NEVER, dtype=np.int64)
        # chronic patients with monthly/fortnightly refills at their usual pharmacy
        chronic = (self.role == 0) & (ag != CHILD) & (rng.random(n) < np.where(ag == ELDERLY, P.chronic_rate[1],
                                                                                P.chronic_rate[0]))
        self.chronic = chronic
        cdx = rng.choice(["I10", "E11.9", "E78.5"], n, p=[0.5, 0.3, 0.2])
        self.chronic_dx = np.array([self.dx_index[c] for c in cdx])
        self.chronic_drug = np.full(n, -1)
        for code in ("I10", "E11.9", "E78.5"):
            drugs = [k for k in self.chronic_items if code[:3] in (self.items[k].indication or [])]
            m = chronic & (cdx == code)
            self.chronic_drug[m] = np.array(drugs)[rng.integers(0, len(drugs), m.sum())]
        self.chronic_period = rng.choice(list(P.chronic_periods), n, p=list(P.chronic_period_p))
        self.chronic_phase = rng.integers(0, 28, n) % self.chronic_period
        pharm = np.flatnonzero(self.inst_kind == PHARMACY)
        self.usual_pharmacy = pharm[rng.integers(0, len(pharm), n)]
        # honest deaths during the run, from the outpatient pool
        nd = max(3, round(n * 0.0005))
        cand = np.flatnonzero(self.role == 0)
        self.honest_dead = rng.choice(cand, min(nd, len(cand)), replace=False)
        if self.days >= 3:
            self.death[self.honest_dead] = self.start + rng.integers(2, self.days, len(self.honest_dead))
        else:
            self.honest_dead = self.honest_dead[:0]
        cw = np.flatnonzero(self.chronic & (self.chronic_period == 14) & (self.death == ALIVE))
        self.watch_chronic = cw[:3]
        self.patient_id = au.padded("P", (np.arange(n) * 7919 + 1000003) % 10 ** 11 + 10 ** 11, 12)

    def pid(self, p: int) -> str:
        return self.patient_id[int(p)].as_py()

    def age_at(self, p: int, day: int) -> int:
        b = np.datetime64(au.day_to_str(int(self.birth[p])))
        d = np.datetime64(au.day_to_str(int(day)))
        by, bm, bd = [int(x) for x in str(b).split("-")]
        dy, dm, dd = [int(x) for x in str(d).split("-")]
        return dy - by - ((dm, dd) < (bm, bd))

    def insured_persons_table(self, as_of_day: int) -> pa.Table:
        death = np.where(self.death < as_of_day, self.death, 0)
        return pa.table({
            "patient_id": self.patient_id,
            "sex": pa.array(np.where(self.sex == 0, "M", "F")),
            "birth_date": au.dates(self.birth),
            "death_date": au.dates(death, mask=self.death >= as_of_day),
            "home_region": pa.array(self.district_code[self.p_district]),
            "insurance_type": pa.array(np.where(self.ins == 0, "employee", "resident")),
            "phone_hash": _masked(au.hexhash(self.phone_key, 101), self.phone_null),
            "address_hash": _masked(au.hexhash(self.household.astype(np.uint64), 202), self.addr_null),
            "enrolled_date": au.dates(self.enrolled),
        }).cast(contract.INSURED_PERSONS)

    def take_patients(self, k: int = 1, ag: int | None = None, sex: int | None = None,
                      from_end: bool = False) -> list[int]:
        """Reserved persons (no background claims) for schemes and look-alikes.

        Schemes are planted in name order, each drawing from the front of the pool; a
        scheme added later can draw `from_end` so the schemes after it in name order keep
        the patients (ages, households) they always had."""
        out, idx = [], []
        order = range(len(self._reserved_pool) - 1, -1, -1) if from_end else range(len(self._reserved_pool))
        for j in order:
            p = self._reserved_pool[j]
            if (ag is None or self.agegroup[p] == ag) and (sex is None or self.sex[p] == sex):
                out.append(int(p))
                idx.append(j)
                if len(out) == k:
                    break
        if len(out) < k:
            raise RuntimeError("reserved pool exhausted")
        for j in sorted(idx, reverse=True):
            del self._reserved_pool[j]
        return out

    # ------------------------------------------------------------------ prices
    def _build_prices(self, rng):
        """Each institution's price list: at or below the cap for its level (~30% exactly at the cap)."""
        cap = self.cap_by_level[:, self.inst_level].T            # (n_inst, n_items)
        P = self.profile
        f = P.price_floor + (1 - P.price_floor) * rng.random(cap.shape)
        at_cap = rng.random(cap.shape) < P.at_cap_share
        capped_price = np.where(at_cap, cap, np.floor(cap * f / 100) * 100).astype(np.int64)
        uncapped = np.round(self.list_price[None, :] * (0.9 + 0.3 * rng.random(cap.shape)) / 100) * 100
        self.price = np.where(self.capped[None, :], capped_price, uncapped.astype(np.int64))
        self.price = np.maximum(self.price, 100)

    # ------------------------------------------------------------------ menus
    def compatible(self, k: int, vt: int, sex: int, ag: int, level: int) -> bool:
        i = self.items[k]
        if "oip"[vt] not in i.vts:
            return False
        if i.sex_only is not None and {"M": 0, "F": 1}[i.sex_only] != sex:
            return False
        lo, hi = AGE_RANGE[ag]
        if i.min_age is not None and lo < i.min_age:
            return False
        if i.max_age is not None and hi > i.max_age:
            return False
        if i.min_level is not None and level < i.min_level:
            return False
        if vt == PH and i.category not in ("drug", "herbal", "material"):
            return False
        return True

    def _build_menus(self):
        def pad(rows):
            width = max(1, max(len(r) for r in rows))
            arr = np.zeros((len(rows), width), dtype=np.int64)
            ln = np.zeros(len(rows), dtype=np.int64)
            for j, r in enumerate(rows):
                arr[j, :len(r)] = r
                ln[j] = len(r)
            return arr, ln
        gen_rows = []
        for vt in range(3):
            for sex in range(2):
                for ag in range(3):
                    for lvl in range(4):
                        gen_rows.append([k for k, i in enumerate(self.items)
                                         if i.role in ("general", "package") and i.indication is None
                                         and i.dx_only is None and self.compatible(k, vt, sex, ag, lvl)])
        self.gen_menu, self.gen_len = pad(gen_rows)
        ndx = len(self.dx)
        dx_rows = []
        for vt in range(3):
            for d, dx in enumerate(self.dx):
                for sex in range(2):
                    for ag in range(3):
                        for lvl in range(4):
                            dx_rows.append([k for k, i in enumerate(self.items)
                                            if i.role == "general"
                                            and dx.cat3 in ((i.indication or []) + (i.dx_only or []))
                                            and self.compatible(k, vt, sex, ag, lvl)])
        self.dx_menu, self.dx_len = pad(dx_rows)
        self.ndx = ndx
        # diagnosis menus per (visit class op/ip, sex, agegroup), weighted
        self.dxsel = {}
        for vt, attr in ((OP, "w_op"), (IP, "w_ip")):
            for sex in range(2):
                for ag in range(3):
                    ok = [(k, getattr(d, attr)) for k, d in enumerate(self.dx)
                          if getattr(d, attr) > 0 and ag in d.ages
                          and (d.sex is None or {"M": 0, "F": 1}[d.sex] == sex)]
                    ks = np.array([k for k, _ in ok])
                    w = np.array([x for _, x in ok], dtype=float)
                    self.dxsel[(vt, sex, ag)] = (ks, np.cumsum(w) / w.sum())

    def gen_key(self, vt, sex, ag, lvl):
        return ((vt * 2 + sex) * 3 + ag) * 4 + lvl

    def dx_key(self, vt, dx, sex, ag, lvl):
        return (((vt * self.ndx + dx) * 2 + sex) * 3 + ag) * 4 + lvl

    def draw_dx(self, vt: int, sex: np.ndarray, ag: np.ndarray, rng) -> np.ndarray:
        out = np.empty(len(sex), dtype=np.int64)
        u = rng.random(len(sex))
        for s in range(2):
            for a in range(3):
                m = (sex == s) & (ag == a)
                if m.any():
                    ks, cdf = self.dxsel[(vt, s, a)]
                    out[m] = ks[np.minimum(np.searchsorted(cdf, u[m], side="right"), len(ks) - 1)]
        return out

    def pick_institutions(self, vt: int, city: np.ndarray, rng, local: float = 0.8) -> np.ndarray:
        w = self.inst_weights[vt]
        out = np.empty(len(city), dtype=np.int64)
        u = rng.random(len(city))
        loc = rng.random(len(city)) < local
        gcdf = np.cumsum(w) / w.sum()
        out[:] = np.searchsorted(gcdf, u, side="right")
        for ci in range(len(self.city_codes)):
            wc = np.where(self.inst_city == ci, w, 0.0)
            if wc.sum() == 0:
                continue
            m = loc & (city == ci)
            cdf = np.cumsum(wc) / wc.sum()
            out[m] = np.searchsorted(cdf, u[m], side="right")
        return np.minimum(out, self.n_inst - 1)

    def _daily_targets(self, rng) -> np.ndarray:
        d = np.arange(self.start, self.start + self.days)
        weekday = (d + 3) % 7          # 1970-01-01 was a Thursday: 0 = Monday
        P = self.profile
        f = np.where(weekday >= 5, P.weekend_factor, 1.08) * (0.95 + 0.1 * rng.random(self.days))
        return np.round(P.settlements_per_scale * self.scale * f).astype(np.int64)

    # ------------------------------------------------------------------ ids
    def reserve_num(self, day: int, rng) -> int:
        used = self.reserved_nums.setdefault(day, set())
        hi = max(10, int(self.daily_target[min(max(day - self.start, 0), self.days - 1)] * 0.9))
        while True:
            x = int(rng.integers(0, hi))
            if x not in used:
                used.add(x)
                return x

    @staticmethod
    def settlement_id(day: int, num: int) -> str:
        return "S" + au.day_to_str(day).replace("-", "") + f"{num:07d}"

    def next_trace(self, day: int, n: int) -> list[str]:
        c = self.trace_counter.get(day, PLANTED_TRACE_BASE)
        self.trace_counter[day] = c + n
        return [trace_code(day, c + j) for j in range(n)]

    # ------------------------------------------------------------------ builder for schemes
    def honest_lines(self, rng, p: int, inst: int, vt: int, dx: int | None, day: int, n: int,
                     exclude: set[int] | None = None) -> list[Line]:
        """n honest lines (distinct items) for one visit/purchase on `day`."""
        sex, ag, lvl = int(self.sex[p]), int(self.agegroup[p]), int(self.inst_level[inst])
        pool = list(self.gen_menu[self.gen_key(vt, sex, ag, lvl)][:self.gen_len[self.gen_key(vt, sex, ag, lvl)]])
        dpool = []
        if dx is not None:
            key = self.dx_key(vt, dx, sex, ag, lvl)
            dpool = list(self.dx_menu[key][:self.dx_len[key]])
        exclude = set(exclude or ())
        lines: list[Line] = []
        if vt == OP:
            lines.append(self.line(int(rng.choice(self.consult_items)), day, rng))
        chosen = {l.item for l in lines}
        tries = 0
        while len(lines) < n and tries < 200:
            tries += 1
            src = dpool if (dpool and rng.random() < 0.5) else pool
            k = int(src[int(rng.integers(0, len(src)))])
            if k in chosen or k in exclude or self._bundle_clash(k, chosen):
                continue
            chosen.add(k)
            lines.append(self.line(k, day, rng, vt=vt))
        return lines

    def _bundle_clash(self, k: int, chosen: set[int]) -> bool:
        for pk, comps in self.packages:
            if (k == pk and chosen.intersection(comps)) or (k in comps and pk in chosen):
                return True
        return False

    def line(self, k: int, day: int, rng, vt: int = OP, qty: int | None = None) -> Line:
        if qty is None:
            lo, hi = int(self.item_qmin[k]) // 1000, int(self.item_qmax[k]) // 1000
            qty = int(rng.integers(lo, hi + 1)) * 1000
        ds = None
        if self.items[k].category == "drug":
            ds = 1 if vt == IP else int(rng.integers(3, 6))
        return Line(k, day, qty, days_supply=ds)

    def stay_lines(self, rng, p: int, inst: int, dx: int, admit: int, discharge: int, n_extra: int = 12) -> list[Line]:
        lines: list[Line] = []
        bed = self.bed_items[int(rng.integers(0, 2))]
        nurse = int(rng.choice(self.nursing_items))
        assert discharge > admit, "a stay has at least one night"
        for d in range(admit, discharge):
            for k in (bed, nurse, self.ip_fee):
                lines.append(Line(k, d, 1000))
        for d in range(admit, discharge + 1):
            per_day = max(1, n_extra // (discharge - admit + 1))
            ex = {l.item for l in lines if l.date == d}
            for l in self.honest_lines(rng, p, inst, IP, dx, d, per_day, exclude=ex):
                if not self._bundle_clash(l.item, ex):
                    ex.add(l.item)
                    lines.append(l)
        return lines

    def settlement(self, rng, p: int, inst: int, vt: int, settle_day: int, lines: list[Line],
                   dx: int | None = None, admit: int | None = None, discharge: int | None = None,
                   doctor: int | str | None = "auto", dx2: list[str] | None = None,
                   dx_code: str | None = None) -> Planted:
        """Build, price and register one hand-made settlement arriving in the `settle_day` extract."""
        num = self.reserve_num(settle_day, rng)
        sid = self.settlement_id(settle_day, num)
        if doctor == "auto":
            doctor = int(self.pick_doctors(np.array([inst]), rng, 0.3)[0])
        doc_id = None if doctor is None or doctor < 0 else self.doc_id_list[doctor]
        items, total, elig = [], 0, 0
        for j, l in enumerate(lines, 1):
            price = l.price if l.price is not None else int(self.price[inst, l.item])
            amount = (l.qty * price + 50000) // 100000
            el = amount * int(self.item_elig[l.item]) // 100
            total += amount
            elig += el
            trace = None
            if self.item_is_drug[l.item]:
                trace = l.trace if l.trace is not None else self.next_trace(settle_day, l.qty // 1000)
            items.append({
                "settlement_id": sid, "line_no": j, "item_code": self.item_code_list[l.item],
                "item_category": self.item_cat_names[l.item], "service_date": au.day_to_date(l.date),
                "quantity": milli(l.qty), "unit_price": ten_thousandths(price), "amount": cents(amount),
                "fund_eligible_amount": cents(el), "ordering_doctor_id": doc_id,
                "days_supply": l.days_supply if self.item_is_drug[l.item] else None, "trace_codes": trace})
        ins = int(self.ins[p])
        share = (0.70 + 0.15 * rng.random()) if ins == 0 else (0.55 + 0.15 * rng.random())
        fund = int(elig * share)
        admit = settle_day if admit is None else admit
        dept = None
        if vt != PH and dx is not None:
            dept = "PED" if self.agegroup[p] == CHILD else self.dx[dx].dept
        row = {
            "settlement_id": sid, "patient_id": self.pid(p), "institution_id": self.inst_id_list[inst],
            "doctor_id": doc_id, "dept_code": dept, "visit_type": VT_NAMES[vt],
            "admit_date": au.day_to_date(admit),
            "discharge_date": au.day_to_date(discharge) if discharge is not None else None,
            "settle_date": au.day_to_date(settle_day),
            "primary_dx": dx_code or (self.dx_codes[dx] if dx is not None else None),
            "secondary_dx": dx2, "total_amount": cents(total), "fund_paid": cents(fund),
            "self_paid": cents(total - fund), "insurance_type": ("employee", "resident")[ins],
            "settle_region": self.city_codes[self.p_city[p]] + "00", "reversal_of": None,
        }
        return Planted(settle_day, num, row, items)


def _masked(arr: pa.Array, mask: np.ndarray) -> pa.Array:
    import pyarrow.compute as pc
    return pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), arr)
