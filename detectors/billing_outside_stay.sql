/*---
id: billing_outside_stay
name_en: Charges dated outside the stay
name_zh: 出院后计费
family: policy
judgement: violation
entity_type: settlement
severity: 3
params:
  grace_days:
    default: 0
    description: days before admission or after discharge a charge line may be dated without being flagged
reads: [lines]
scheme: |
  An inpatient settlement carries charge lines dated before the admission or after the
  discharge: services billed for days the patient was not in hospital.
score: |
  1 + ln(1 + days the furthest line lies outside the stay) + 0.1 per offending line.
false_positives: |
  Discharge medication is dispensed on the discharge day and is inside the stay. Tests
  done as an outpatient just before admission and merged into the stay settlement by local
  rule look the same; grace_days allows them.
---*/
WITH outside_lines AS (
    SELECT settlement_id, patient_id, institution_id, doctor_id, admit_date, discharge_date,
           service_date, item_code, amount, line_fund,
           CASE WHEN service_date < admit_date THEN date_diff('day', service_date, admit_date)
                ELSE date_diff('day', coalesce(discharge_date, admit_date), service_date) END AS days_outside
    FROM lines
    WHERE visit_type = 'inpatient'
      AND (service_date < admit_date - to_days(CAST($grace_days AS INTEGER))
           OR service_date > coalesce(discharge_date, admit_date) + to_days(CAST($grace_days AS INTEGER)))
),
per_stay AS (
    SELECT settlement_id, patient_id, institution_id, doctor_id,
           any_value(admit_date) AS admit_date,
           any_value(discharge_date) AS discharge_date,
           count(*) AS n_lines,
           count(*) FILTER (WHERE service_date < admit_date) AS n_before,
           count(*) FILTER (WHERE service_date > coalesce(discharge_date, admit_date)) AS n_after,
           min(service_date) AS first_date,
           max(service_date) AS last_date,
           max(days_outside) AS max_days_outside,
           list(DISTINCT item_code ORDER BY item_code) AS items,
           sum(amount) AS amount,
           sum(line_fund) AS fund
    FROM outside_lines
    GROUP BY settlement_id, patient_id, institution_id, doctor_id
)
SELECT
    settlement_id AS finding_key,
    'settlement' AS entity_type,
    settlement_id AS entity_id,
    institution_id,
    patient_id,
    doctor_id,
    [settlement_id] AS settlement_ids,
    1 + ln(1 + max_days_outside) + 0.1 * n_lines AS score,
    fund AS amount_at_risk,
    format('{} charge line(s) worth {} dated outside the stay from {} to {} ({} before admission, {} after discharge, up to {} day(s) outside, dated {} to {}).',
           n_lines, round(amount, 2), CAST(admit_date AS VARCHAR), CAST(discharge_date AS VARCHAR),
           n_before, n_after, max_days_outside, CAST(first_date AS VARCHAR), CAST(last_date AS VARCHAR)) AS reason,
    CAST(json_object('admit_date', admit_date, 'discharge_date', discharge_date, 'n_lines', n_lines,
                     'n_before_admission', n_before, 'n_after_discharge', n_after,
                     'max_days_outside', max_days_outside, 'first_line_date', first_date,
                     'last_line_date', last_date, 'items', items, 'amount', amount,
                     'fund', fund) AS VARCHAR) AS evidence
FROM per_stay
