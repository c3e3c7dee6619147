-- line_facts: every effective charge line with the few claim facts the item rules group
-- and filter by. Kept narrow on purpose: it is the one table as long as the charge lines
-- that a run writes, and writing it costs more than computing it. Catalog facts come
-- from the `lines` view (35_lines.view.sql); other claim facts (sex, age, secondary
-- diagnoses, ...)
-- a rule joins from `claims` for the few lines it has kept. Trace codes stay in
-- `settlement_items`: only two detectors read them.
--
-- Effective lines = the lines of the delivery that `claims` kept: the join on both keys
-- is the `settlement_items` view's semi join, done once instead of twice.
-- line_fund is the fund money of the line: its eligible amount times the settlement's
-- fund share of eligible money (what an auditor would claw back for that line).
SELECT
    i.settlement_id, i.line_no, i.item_code, i.item_category, i.service_date,
    i.quantity, i.unit_price, i.amount, i.days_supply,
    CAST(CASE WHEN c.eligible_total > 0
              THEN round(i.fund_eligible_amount * (c.fund_paid / c.eligible_total), 2)
              ELSE 0 END AS DECIMAL(14, 2)) AS line_fund,
    c.patient_id, c.institution_id, c.doctor_id, c.dept_code, c.visit_type,
    c.admit_date, c.discharge_date, c.institution_level, c.primary_dx, i.extract_date
FROM raw_settlement_items AS i
JOIN claims AS c ON c.settlement_id = i.settlement_id AND c.extract_date = i.extract_date
