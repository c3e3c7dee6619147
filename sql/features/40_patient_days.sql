-- patient_days: per patient, institution, day and item, the units billed of the items the
-- catalog limits per day (max_daily_qty) or bills by the hour (hours_per_unit), shared by
-- the daily-quantity and 24-hour rules so neither re-aggregates the charge lines.
-- Kept: the days over the daily limit and every day of an hourly item (the 24-hour rule
-- adds items together, so it needs them all). A day within its limit cannot become a
-- finding, so it is dropped: the table stays a tiny fraction of the lines.
WITH repeated_keys AS (
    -- first pass, on one 64-bit key per patient, institution, day and item: the keys
    -- billed on more than one line (a key equal to its predecessor in sorted order:
    -- sorting the integers costs less than a hash table whose groups are nearly all
    -- distinct). A day can only be over its limit with several lines or one line over it;
    -- a hash collision can only add a candidate. The exact pass below decides.
    SELECT day_key
    FROM (SELECT hash(patient_id, institution_id, service_date, item_code) AS day_key
          FROM lines
          WHERE max_daily_qty IS NOT NULL OR hours_per_unit IS NOT NULL)
    QUALIFY lag(day_key) OVER (ORDER BY day_key) = day_key
),
candidate_lines AS MATERIALIZED (      -- a few rows: read by the three steps below
    SELECT *
    FROM lines
    WHERE (max_daily_qty IS NOT NULL OR hours_per_unit IS NOT NULL)
      AND (quantity > max_daily_qty OR hours_per_unit IS NOT NULL
           OR hash(patient_id, institution_id, service_date, item_code) IN (SELECT day_key FROM repeated_keys))
),
summary_lines AS (
    -- a stay's bed, nursing or hourly item billed on one date only: a summary line for
    -- the stay (its units may stand for several days)
    SELECT settlement_id, item_code
    FROM lines
    WHERE visit_type = 'inpatient' AND (item_category IN ('bed', 'nursing') OR hours_per_unit IS NOT NULL)
      AND settlement_id IN (SELECT settlement_id FROM candidate_lines)
    GROUP BY settlement_id, item_code
    HAVING count(DISTINCT service_date) = 1
),
day_totals AS (
    -- numbers only: list aggregates over every patient-day would dominate the run
    SELECT
        patient_id, institution_id, service_date, item_code,
        any_value(max_daily_qty) AS max_daily_qty,
        any_value(hours_per_unit) AS hours_per_unit,
        any_value(item_category) AS item_category,
        bool_or(sl.settlement_id IS NOT NULL) AS stay_summary,
        max(discharge_date) AS discharge_date,
        sum(quantity) AS quantity,
        count(*) AS n_lines,
        sum(line_fund) AS line_fund,
        sum(amount) AS amount,
        max(settlement_id) AS last_settlement_id,
        arg_max(doctor_id, settlement_id) AS doctor_id
    FROM candidate_lines
    LEFT JOIN summary_lines AS sl USING (settlement_id, item_code)
    GROUP BY patient_id, institution_id, service_date, item_code
    HAVING sum(quantity) > any_value(max_daily_qty) OR any_value(hours_per_unit) IS NOT NULL
),
day_settlements AS (
    SELECT l.patient_id, l.institution_id, l.service_date, l.item_code,
           any_value(l.item_name) AS item_name,
           any_value(l.item_unit) AS item_unit,
           list(DISTINCT l.settlement_id ORDER BY l.settlement_id) AS settlement_ids
    FROM candidate_lines AS l
    SEMI JOIN day_totals AS d
      ON l.patient_id = d.patient_id AND l.institution_id = d.institution_id
     AND l.service_date = d.service_date AND l.item_code = d.item_code
    GROUP BY l.patient_id, l.institution_id, l.service_date, l.item_code
)
SELECT
    d.patient_id, d.institution_id, d.service_date, d.item_code,
    s.item_name, s.item_unit, d.max_daily_qty, d.hours_per_unit,
    d.item_category, d.stay_summary, d.discharge_date,
    d.quantity, d.n_lines, d.line_fund, d.amount,
    s.settlement_ids, d.last_settlement_id, d.doctor_id
FROM day_totals AS d
JOIN day_settlements AS s USING (patient_id, institution_id, service_date, item_code)
