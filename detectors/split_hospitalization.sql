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
    description: a readmission this many days or fewer after discharge can be part of a split
  max_single_gap_days:
    default: 3
    description: a lone readmission (no other one nearby) is a split only this many days or fewer after discharge - later, one readmission with the same diagnosis is a relapse that happens
  pattern_days:
    default: 60
    description: readmissions of a patient to one institution within this many days of each other form one pattern (two or more of them are repeated splitting)
reads: [stays]
scheme: |
  One treatment episode is cut into several stays to earn more per-admission payments or
  to dodge per-stay limits: the patient is discharged and readmitted to the same
  institution for the same or a related condition, and it is a pattern - readmitted within
  a few days of discharge, or again and again (two or more readmissions within
  pattern_days, each within window_days of the previous discharge).
score: |
  Higher the sooner the readmission (1 + (window - gap) / window), times 1.2 for the
  identical primary diagnosis, times 1 + 0.5 per further readmission in the pattern.
false_positives: |
  One readmission with the same diagnosis a week or two after discharge happens (a
  relapse) and is not flagged on its own; nor are transfers to another institution and
  readmissions for an unrelated diagnosis. Planned staged treatment (chemotherapy cycles,
  staged surgery) can look like a repeated pattern: the reviewer checks the plan.
---*/
WITH ordered AS (
    SELECT
        *,
        lag(settlement_id) OVER w AS prev_settlement_id,
        lag(discharge_date) OVER w AS prev_discharge,
        lag(admit_date) OVER w AS prev_admit,
        lag(primary_dx) OVER w AS prev_dx,
        lag(secondary_dx) OVER w AS prev_secondary_dx
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
),
patterned AS (
    -- the readmissions of the same patient and institution around this one
    SELECT *,
           count(*) OVER (PARTITION BY patient_id, institution_id ORDER BY admit_date
                          RANGE BETWEEN to_days(CAST($pattern_days AS INTEGER)) PRECEDING
                                    AND to_days(CAST($pattern_days AS INTEGER)) FOLLOWING) AS n_readmissions
    FROM readmissions
),
splits AS (
    SELECT *
    FROM patterned
    WHERE gap_days <= $max_single_gap_days OR n_readmissions >= 2
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
        * (1 + 0.5 * (n_readmissions - 1)) AS score,
    fund_paid AS amount_at_risk,
    format('Readmitted {} day(s) after discharge on {} to the same institution with {} diagnosis {} (previous {}){}.',
           gap_days, CAST(prev_discharge AS VARCHAR), CASE WHEN same_dx THEN 'the same' ELSE 'a related' END,
           primary_dx, prev_dx,
           CASE WHEN n_readmissions >= 2
                THEN format('; one of {} such readmissions there within {} days', n_readmissions, $pattern_days)
                ELSE '' END) AS reason,
    CAST(json_object('gap_days', gap_days, 'previous_settlement_id', prev_settlement_id,
                     'previous_admit', prev_admit, 'previous_discharge', prev_discharge,
                     'admit_date', admit_date, 'discharge_date', discharge_date,
                     'primary_dx', primary_dx, 'previous_dx', prev_dx,
                     'readmissions_in_pattern', n_readmissions, 'pattern_days', $pattern_days,
                     'short_gap', gap_days <= $max_single_gap_days,
                     'window_days', $window_days) AS VARCHAR) AS evidence
FROM splits
