-- patient_days: per patient, institution, day and item, the units billed of every item
-- that the catalog limits per day (max_daily_qty) or bills by the hour (hours_per_unit).
-- Shared by the daily-quantity and 24-hour rules so neither re-aggregates the charge lines;
-- only limited items are kept, so the table stays far smaller than the lines.
SELECT
    patient_id, institution_id, service_date, item_code,
    any_value(item_name) AS item_name,
    any_value(item_unit) AS item_unit,
    any_value(max_daily_qty) AS max_daily_qty,
    any_value(hours_per_unit) AS hours_per_unit,
    sum(quantity) AS quantity,
    count(*) AS n_lines,
    sum(line_fund) AS line_fund,
    sum(amount) AS amount,
    list(DISTINCT settlement_id) AS settlement_ids,          -- unordered: rules sort the few they report
    max(settlement_id) AS last_settlement_id,
    arg_max(doctor_id, settlement_id) AS doctor_id
FROM lines
WHERE max_daily_qty IS NOT NULL OR hours_per_unit IS NOT NULL
GROUP BY patient_id, institution_id, service_date, item_code
