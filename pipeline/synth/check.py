"""A small independent rule checker over generated landing data (DuckDB SQL).

Not the project's detectors: a reference used by the generator's tests to prove that the
honest background breaks no rule, and that each planted case breaks the rule it is for.

    violations(landing_dir) -> {rule id: set of settlement ids}
"""
from __future__ import annotations

from pathlib import Path

import duckdb

RULES: dict[str, str] = {
    "duplicate_billing": """
        SELECT DISTINCT i.settlement_id FROM items i JOIN (
            SELECT s.patient_id, s.institution_id, i.service_date, i.item_code, i.quantity, i.unit_price
            FROM items i JOIN st s USING (settlement_id)
            GROUP BY ALL HAVING count(*) > 1) d
          ON d.item_code = i.item_code AND d.service_date = i.service_date
         AND d.quantity = i.quantity AND d.unit_price = i.unit_price
        JOIN st s ON s.settlement_id = i.settlement_id
          AND s.patient_id = d.patient_id AND s.institution_id = d.institution_id""",
    "split_hospitalization": """
        SELECT b.settlement_id FROM st a JOIN st b
          ON a.patient_id = b.patient_id AND a.institution_id = b.institution_id
         AND a.settlement_id <> b.settlement_id
         AND a.visit_type = 'inpatient' AND b.visit_type = 'inpatient'
         AND b.admit_date >= a.discharge_date AND b.admit_date <= a.discharge_date + 15
         AND substr(a.primary_dx, 1, 3) = substr(b.primary_dx, 1, 3)
        -- a split: readmitted within 3 days, or two readmissions or more (a pattern)
        QUALIFY b.admit_date <= a.discharge_date + 3
             OR count(*) OVER (PARTITION BY b.patient_id, b.institution_id) >= 2""",
    "after_death": """
        SELECT s.settlement_id FROM st s JOIN persons p USING (patient_id)
        WHERE p.death_date IS NOT NULL AND s.admit_date > p.death_date""",
    "over_price_cap": """
        SELECT DISTINCT i.settlement_id FROM items i JOIN st s USING (settlement_id)
        JOIN inst n USING (institution_id) JOIN cat c ON c.item_code = i.item_code
        WHERE i.unit_price > CASE WHEN n.level = 3 THEN c.price_cap_l3 WHEN n.level = 2 THEN c.price_cap_l2
                                  ELSE c.price_cap_l1 END""",
    "unbundling": """
        SELECT DISTINCT i.settlement_id FROM items i JOIN st s USING (settlement_id)
        JOIN (SELECT s2.patient_id, i2.service_date, unnest(c.bundle_of) AS comp
              FROM items i2 JOIN st s2 USING (settlement_id) JOIN cat c ON c.item_code = i2.item_code
              WHERE c.bundle_of IS NOT NULL) b
          ON b.patient_id = s.patient_id AND b.service_date = i.service_date AND b.comp = i.item_code""",
    "sex_restricted_item": """
        SELECT DISTINCT i.settlement_id FROM items i JOIN st s USING (settlement_id)
        JOIN persons p USING (patient_id) JOIN cat c ON c.item_code = i.item_code
        WHERE c.sex_only IS NOT NULL AND c.sex_only <> p.sex""",
    "age_restricted_item": """
        SELECT DISTINCT i.settlement_id FROM items i JOIN st s USING (settlement_id)
        JOIN persons p USING (patient_id) JOIN cat c ON c.item_code = i.item_code
        WHERE date_sub('year', p.birth_date, i.service_date) < c.min_age
           OR date_sub('year', p.birth_date, i.service_date) > c.max_age""",
    "level_restricted_item": """
        SELECT DISTINCT i.settlement_id FROM items i JOIN st s USING (settlement_id)
        JOIN inst n USING (institution_id) JOIN cat c ON c.item_code = i.item_code
        WHERE n.level < c.min_level""",
    "indication_mismatch": """
        SELECT DISTINCT i.settlement_id FROM items i JOIN st s USING (settlement_id)
        JOIN cat c ON c.item_code = i.item_code
        WHERE c.indication_dx IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM (SELECT unnest(list_prepend(s.primary_dx, coalesce(s.secondary_dx, []))) AS dx) d,
                          (SELECT unnest(c.indication_dx) AS pre) q
            WHERE starts_with(d.dx, q.pre))""",
    "over_daily_quantity": """
        SELECT DISTINCT i.settlement_id FROM items i JOIN st s USING (settlement_id) JOIN (
            SELECT s.patient_id, i.service_date, i.item_code FROM items i JOIN st s USING (settlement_id)
            JOIN cat c ON c.item_code = i.item_code WHERE c.max_daily_qty IS NOT NULL
            GROUP BY ALL HAVING sum(i.quantity) > any_value(c.max_daily_qty)) d
          ON d.patient_id = s.patient_id AND d.service_date = i.service_date AND d.item_code = i.item_code""",
    "over_24_hours": """
        SELECT DISTINCT i.settlement_id FROM items i JOIN st s USING (settlement_id) JOIN (
            SELECT s.patient_id, i.service_date FROM items i JOIN st s USING (settlement_id)
            JOIN cat c ON c.item_code = i.item_code WHERE c.hours_per_unit < 24
            GROUP BY ALL HAVING sum(i.quantity * c.hours_per_unit) > 24) d
          ON d.patient_id = s.patient_id AND d.service_date = i.service_date
        JOIN cat c ON c.item_code = i.item_code WHERE c.hours_per_unit < 24""",
    "bed_days_exceed_stay": """
        SELECT s.settlement_id FROM items i JOIN st s USING (settlement_id)
        WHERE i.item_category = 'bed' GROUP BY s.settlement_id, s.admit_date, s.discharge_date
        HAVING sum(i.quantity) > greatest(1, coalesce(s.discharge_date, s.admit_date) - s.admit_date)""",
    "billing_outside_stay": """
        SELECT DISTINCT s.settlement_id FROM items i JOIN st s USING (settlement_id)
        WHERE i.service_date < s.admit_date OR i.service_date > coalesce(s.discharge_date, s.admit_date)""",
    "overlapping_stays": """
        SELECT DISTINCT b.settlement_id FROM st a JOIN st b
          ON a.patient_id = b.patient_id AND a.settlement_id <> b.settlement_id
         AND a.visit_type = 'inpatient' AND b.visit_type = 'inpatient'
         AND a.admit_date < b.discharge_date AND b.admit_date < a.discharge_date""",
    "visit_during_stay": """
        SELECT DISTINCT v.settlement_id FROM st a JOIN st v
          ON a.patient_id = v.patient_id AND a.visit_type = 'inpatient' AND v.visit_type <> 'inpatient'
         AND v.admit_date > a.admit_date AND v.admit_date < a.discharge_date""",
    "excess_days_supply": """
        SELECT DISTINCT i.settlement_id FROM items i JOIN st s USING (settlement_id) JOIN (
            SELECT patient_id, item_code FROM (       -- one row per dispensing
                SELECT s.patient_id, i.item_code, i.settlement_id, i.service_date,
                       sum(i.days_supply) AS days_supply
                FROM items i JOIN st s USING (settlement_id)
                WHERE i.days_supply IS NOT NULL AND s.visit_type <> 'inpatient'
                GROUP BY ALL)
            GROUP BY ALL HAVING count(*) > 1
               AND sum(days_supply) - arg_max(days_supply, service_date)
                   > 1.5 * (max(service_date) - min(service_date)) + 3) d
          ON d.patient_id = s.patient_id AND d.item_code = i.item_code""",
    "duplicate_trace_code": """
        SELECT DISTINCT settlement_id FROM (
            SELECT i.settlement_id, unnest(i.trace_codes) AS code FROM items i) t
        WHERE code IN (SELECT code FROM (SELECT unnest(trace_codes) AS code FROM items)
                       GROUP BY code HAVING count(*) > 1)""",
    "over_days_supply": """
        SELECT DISTINCT i.settlement_id FROM items i JOIN cat c ON c.item_code = i.item_code
        WHERE i.days_supply > c.max_days_supply""",
}


def connect(landing: Path) -> duckdb.DuckDBPyConnection:
    landing = Path(landing)
    con = duckdb.connect()
    g = landing.as_posix()
    con.execute(f"""
        CREATE VIEW all_st AS SELECT * FROM read_parquet('{g}/*/settlements/*.parquet');
        CREATE VIEW st AS SELECT * FROM all_st a WHERE reversal_of IS NULL
            AND settlement_id NOT IN (SELECT reversal_of FROM all_st WHERE reversal_of IS NOT NULL);
        CREATE VIEW items AS SELECT * FROM read_parquet('{g}/*/settlement_items/*.parquet')
            WHERE settlement_id IN (SELECT settlement_id FROM st);
    """)
    for name, view in (("insured_persons", "persons"), ("institutions", "inst"), ("catalog", "cat")):
        files = sorted(landing.glob(f"*/reference/{name}.parquet"))   # the newest snapshot
        con.execute(f"CREATE VIEW {view} AS SELECT * FROM read_parquet('{files[-1].as_posix()}')")
    return con


def violations(landing: Path, rules: dict[str, str] | None = None) -> dict[str, set[str]]:
    con = connect(landing)
    out = {}
    for rule, sql in (rules or RULES).items():
        out[rule] = {r[0] for r in con.execute(sql).fetchall()}
    return out


if __name__ == "__main__":
    import sys
    for rule, ids in violations(Path(sys.argv[1])).items():
        print(f"{rule:24s} {len(ids):6d}  {sorted(ids)[:3]}")
