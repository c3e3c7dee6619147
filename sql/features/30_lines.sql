-- lines: every effective charge line with its claim and catalog facts, so item rules
-- read one table instead of each re-joining the charge lines.
-- line_fund is the fund money of the line: its eligible amount times the settlement's
-- fund share of eligible money (what an auditor would claw back for that line).
WITH eligible AS (
    SELECT settlement_id, sum(fund_eligible_amount) AS eligible_total
    FROM settlement_items
    GROUP BY settlement_id
)
SELECT
    i.settlement_id, i.line_no, i.item_code, i.item_category, i.service_date,
    i.quantity, i.unit_price, i.amount, i.fund_eligible_amount, i.ordering_doctor_id,
    i.days_supply, i.trace_codes,
    CAST(CASE WHEN e.eligible_total > 0
              THEN round(i.fund_eligible_amount * (c.fund_paid / e.eligible_total), 2)
              ELSE 0 END AS DECIMAL(14, 2)) AS line_fund,
    c.patient_id, c.institution_id, c.doctor_id, c.dept_code, c.visit_type,
    c.admit_date, c.discharge_date, c.settle_date, c.extract_date,
    c.primary_dx, c.secondary_dx, c.sex, c.age, c.birth_date, c.death_date,
    c.institution_kind, c.institution_level, c.institution_region, c.home_region,
    k.name AS item_name, k.unit AS item_unit,
    CASE WHEN c.institution_level >= 3 THEN k.price_cap_l3
         WHEN c.institution_level = 2 THEN k.price_cap_l2
         ELSE k.price_cap_l1 END AS price_cap,
    k.sex_only, k.min_age, k.max_age, k.min_level, k.max_daily_qty, k.max_days_supply,
    k.indication_dx, k.high_resale, k.bundle_of, k.hours_per_unit
FROM settlement_items AS i
JOIN claims AS c USING (settlement_id)
LEFT JOIN eligible AS e USING (settlement_id)
LEFT JOIN catalog AS k ON k.item_code = i.item_code
