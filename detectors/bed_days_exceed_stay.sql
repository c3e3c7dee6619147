/*---
id: bed_days_exceed_stay
name_en: Bed-days billed beyond the length of stay
name_zh: 床位费超住院天数
family: policy
judgement: violation
entity_type: settlement
severity: 3
params:
  count_discharge_day:
    default: false
    description: whether the day of discharge is billable as a bed-day (national practice counts the admission day, not the discharge day; a stay admitted and discharged the same day always allows one)
  tolerance_days:
    default: 0
    description: bed-days a stay may exceed its billable days by before it is flagged
reads: [lines]
scheme: |
  A stay bills more bed-day units (every line of the bed category, whatever the ward) than
  it has days between admission and discharge: days added before admission or after
  discharge, or two beds billed for one night.
score: |
  1 + ln(bed-days billed / billable days).
false_positives: |
  Regions that bill the discharge day set count_discharge_day. A ward transfer billed as
  two beds on the transfer day is one extra bed-day; tolerance_days absorbs it where local
  rules allow it.
---*/
WITH bed_lines AS (
    SELECT settlement_id, patient_id, institution_id, doctor_id, admit_date, discharge_date,
           quantity, amount, line_fund
    FROM lines
    WHERE visit_type = 'inpatient'
      AND item_category = 'bed'
),
per_stay AS (
    SELECT settlement_id, patient_id, institution_id, doctor_id,
           any_value(admit_date) AS admit_date,
           any_value(discharge_date) AS discharge_date,
           greatest(date_diff('day', any_value(admit_date), coalesce(any_value(discharge_date), any_value(admit_date)))
                    + CASE WHEN $count_discharge_day THEN 1 ELSE 0 END, 1) AS billable_days,
           sum(quantity) AS bed_days,
           sum(amount) AS bed_amount,
           sum(line_fund) AS bed_fund
    FROM bed_lines
    GROUP BY settlement_id, patient_id, institution_id, doctor_id
),
excess AS (
    SELECT *, bed_days - billable_days AS excess_days
    FROM per_stay
    WHERE bed_days > billable_days + $tolerance_days
)
SELECT
    settlement_id AS finding_key,
    'settlement' AS entity_type,
    settlement_id AS entity_id,
    institution_id,
    patient_id,
    doctor_id,
    [settlement_id] AS settlement_ids,
    1 + ln(bed_days / billable_days) AS score,
    -- the excess bed-days at the stay's average fund money per bed-day
    bed_fund * excess_days / bed_days AS amount_at_risk,
    format('{} bed-days billed for a stay from {} to {} that allows {}: {} bed-day(s) too many.',
           bed_days::DOUBLE, CAST(admit_date AS VARCHAR), CAST(discharge_date AS VARCHAR),
           billable_days, excess_days::DOUBLE) AS reason,
    CAST(json_object('admit_date', admit_date, 'discharge_date', discharge_date,
                     'billable_days', billable_days, 'bed_days_billed', bed_days,
                     'excess_bed_days', excess_days, 'count_discharge_day', $count_discharge_day,
                     'bed_amount', bed_amount, 'bed_fund', bed_fund) AS VARCHAR) AS evidence
FROM excess
