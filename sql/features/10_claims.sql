-- claims: one row per effective settlement, with the patient and institution facts
-- every rule needs (age at admission, death date, institution level) and the settlement's
-- fund-eligible total (what spreads its fund money over its lines). Derived once per run.
WITH eligible AS (
    -- grouped by delivery: a re-delivered settlement id keeps the lines of the delivery
    -- that counts (the one in `settled`, joined on both keys below)
    SELECT settlement_id, extract_date, sum(fund_eligible_amount) AS eligible_total
    FROM raw_settlement_items
    GROUP BY settlement_id, extract_date
)
SELECT
    s.settlement_id, s.patient_id, s.institution_id, s.doctor_id, s.dept_code, s.visit_type,
    s.admit_date, s.discharge_date, s.settle_date, s.extract_date,
    coalesce(s.discharge_date, s.admit_date) AS end_date,
    s.primary_dx, s.secondary_dx,
    s.total_amount, s.fund_paid, s.self_paid, s.insurance_type, s.settle_region,
    p.sex, p.birth_date, p.death_date, p.home_region, p.phone_hash, p.address_hash,
    year(s.admit_date) - year(p.birth_date)
        - CASE WHEN strftime(s.admit_date, '%m%d') < strftime(p.birth_date, '%m%d') THEN 1 ELSE 0 END
        AS age,
    i.kind AS institution_kind, i.level AS institution_level, i.ownership,
    i.region AS institution_region,
    coalesce(e.eligible_total, 0) AS eligible_total
FROM settled AS s
LEFT JOIN insured_persons AS p USING (patient_id)
LEFT JOIN institutions AS i USING (institution_id)
LEFT JOIN eligible AS e USING (settlement_id, extract_date)
