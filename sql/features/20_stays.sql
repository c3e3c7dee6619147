-- stays: one row per effective inpatient settlement (a hospital stay).
SELECT
    settlement_id, patient_id, institution_id, doctor_id, dept_code,
    admit_date, discharge_date,
    greatest(date_diff('day', admit_date, coalesce(discharge_date, admit_date)), 1) AS los_days,
    primary_dx, secondary_dx, left(primary_dx, 3) AS dx_category,
    total_amount, fund_paid, extract_date, settle_date,
    age, sex, home_region, address_hash, phone_hash,
    institution_kind, institution_level, institution_region
FROM claims
WHERE visit_type = 'inpatient'
