/*---
id: split_hospitalization
name_en: Split hospitalisation
name_zh: 分解住院
family: management
judgement: suspicious
entity_type: settlement
severity: 4
params:
  window_days:
    default: 15
    description: a readmission this many days or fewer after discharge counts
reads: [stays]
scheme: |
  One treatment episode is cut into several stays to earn more per-admission payments or
  to dodge per-stay limits: the patient is discharged and readmitted to the same
  institution within a few days for the same or a related condition.
score: |
  Higher the sooner the readmission (1 + (window - gap) / window) and the more stays in
  the same chain; identical primary diagnoses count more than the same ICD-10 category.
false_positives: |
  Genuine relapses and planned staged treatment (chemotherapy cycles) look the same;
  transfers to another institution and readmissions for an unrelated diagnosis are not
  flagged.
---*/
WITH ordered AS (
    SELECT
        *,
        lag(settlement_id) OVER w AS prev_settlement_id,
        lag(discharge_date) OVER w AS prev_discharge,
        lag(admit_date) OVER w AS prev_admit,
        lag(primary_dx) OVER w AS prev_dx,
        lag(secondary_dx) OVER w AS prev_secondary_dx,
        -- stays of this patient at this institution admitted in the 60 days up to this one
        count(*) OVER (PARTITION BY patient_id, institution_id ORDER BY admit_date
                       RANGE BETWEEN INTERVAL 60 DAY PRECEDING AND CURRENT ROW) AS stays_in_60d
    FROM stays
    WINDOW w AS (PARTITION BY patient_id, institution_id ORDER BY admit_date, discharge_date, settlement_id)
),
readmissions AS (
    SELECT
        *,
        date_diff('day', prev_discharge, admit_date) AS gap_days,
        primary_dx = prev_dx AS same_dx
    FROM ordered
    WHERE prev_settlement_id IS NOT NULL
      AND date_diff('day', prev_discharge, admit_date) BETWEEN 0 AND $window_days
      AND (left(primary_dx, 3) = left(prev_dx, 3)
           OR list_contains(coalesce(secondary_dx, []), prev_dx)
           OR list_contains(coalesce(prev_secondary_dx, []), primary_dx))
)
SELECT
    settlement_id AS finding_key,
    'settlement' AS entity_type,
    settlement_id AS entity_id,
    institution_id,
    patient_id,
    doctor_id,
    [prev_settlement_id, settlement_id] AS settlement_ids,
    (1 + ($window_days - gap_days) / greatest($window_days, 1))
        * (CASE WHEN same_dx THEN 1.2 ELSE 1.0 END)
        * (1 + 0.25 * (stays_in_60d - 2)) AS score,
    fund_paid AS amount_at_risk,
    format('Readmitted {} day(s) after discharge on {} to the same institution with {} diagnosis {} (previous {}); {} stays there within 60 days.',
           gap_days, CAST(prev_discharge AS VARCHAR), CASE WHEN same_dx THEN 'the same' ELSE 'related' END,
           primary_dx, prev_dx, stays_in_60d) AS reason,
    CAST(json_object('gap_days', gap_days, 'previous_settlement_id', prev_settlement_id,
                     'previous_admit', prev_admit, 'previous_discharge', prev_discharge,
                     'admit_date', admit_date, 'discharge_date', discharge_date,
                     'primary_dx', primary_dx, 'previous_dx', prev_dx,
                     'stays_in_60_days', stays_in_60d, 'window_days', $window_days) AS VARCHAR) AS evidence
FROM readmissions
