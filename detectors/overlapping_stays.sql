/*---
id: overlapping_stays
name_en: In hospital at two places at once
name_zh: 同一时间多处住院
family: management
judgement: violation
entity_type: settlement
severity: 4
params:
  tolerance_days:
    default: 1
    description: calendar days two stays may share without being flagged (1 allows the transfer day, when one discharge and the next admission fall on the same date)
reads: [stays]
scheme: |
  The same patient is recorded as an inpatient at two institutions (or twice at one) on
  the same days: a ghost admission ("hanging bed", 挂床) or a card used by someone else.
score: |
  1 + ln(1 + shared days), doubled when one stay lies wholly inside the other.
false_positives: |
  A transfer (discharge and admission elsewhere on the same day) shares one calendar day
  and is not flagged. A day-case admission that lies strictly inside another stay is
  flagged even though it shares one day. Late corrections of discharge dates look the
  same until the corrected settlement arrives.
---*/
WITH stay_days AS (
    SELECT settlement_id, patient_id, institution_id, doctor_id, admit_date,
           coalesce(discharge_date, admit_date) AS end_date,
           date_diff('day', admit_date, coalesce(discharge_date, admit_date)) + 1 AS calendar_days,
           fund_paid
    FROM stays
),
pairs AS (
    SELECT a.patient_id,
           a.settlement_id AS a_id, b.settlement_id AS b_id,
           a.institution_id AS a_inst, b.institution_id AS b_inst,
           a.admit_date AS a_admit, a.end_date AS a_end, b.admit_date AS b_admit, b.end_date AS b_end,
           date_diff('day', greatest(a.admit_date, b.admit_date), least(a.end_date, b.end_date)) + 1 AS shared_days,
           (b.admit_date > a.admit_date AND b.end_date < a.end_date)
             OR (a.admit_date > b.admit_date AND a.end_date < b.end_date) AS nested,
           -- the smaller stay (less fund money) is the one whose overlapping days are at risk
           CASE WHEN (a.fund_paid, a.settlement_id) <= (b.fund_paid, b.settlement_id) THEN a.settlement_id ELSE b.settlement_id END AS risk_id,
           CASE WHEN (a.fund_paid, a.settlement_id) <= (b.fund_paid, b.settlement_id) THEN a.institution_id ELSE b.institution_id END AS risk_inst,
           CASE WHEN (a.fund_paid, a.settlement_id) <= (b.fund_paid, b.settlement_id) THEN a.doctor_id ELSE b.doctor_id END AS risk_doctor,
           CASE WHEN (a.fund_paid, a.settlement_id) <= (b.fund_paid, b.settlement_id) THEN a.fund_paid ELSE b.fund_paid END AS risk_fund,
           CASE WHEN (a.fund_paid, a.settlement_id) <= (b.fund_paid, b.settlement_id) THEN a.calendar_days ELSE b.calendar_days END AS risk_days
    FROM stay_days AS a
    JOIN stay_days AS b
      ON a.patient_id = b.patient_id
     AND a.settlement_id < b.settlement_id
     AND b.admit_date <= a.end_date
     AND a.admit_date <= b.end_date
),
overlapping AS (
    SELECT *
    FROM pairs
    WHERE shared_days > $tolerance_days OR nested
)
SELECT
    concat_ws('|', a_id, b_id) AS finding_key,
    'settlement' AS entity_type,
    risk_id AS entity_id,
    risk_inst AS institution_id,
    patient_id,
    risk_doctor AS doctor_id,
    [a_id, b_id] AS settlement_ids,
    (1 + ln(1 + shared_days)) * (CASE WHEN nested THEN 2 ELSE 1 END) AS score,
    risk_fund * least(1.0, shared_days / risk_days) AS amount_at_risk,
    format('In hospital at {} from {} to {} and at {} from {} to {}: {} day(s) shared{}.',
           a_inst, CAST(a_admit AS VARCHAR), CAST(a_end AS VARCHAR), b_inst, CAST(b_admit AS VARCHAR),
           CAST(b_end AS VARCHAR), shared_days,
           CASE WHEN nested THEN ', one stay wholly inside the other' ELSE '' END) AS reason,
    CAST(json_object('stays', [json_object('settlement_id', a_id, 'institution_id', a_inst, 'admit_date', a_admit, 'discharge_date', a_end),
                               json_object('settlement_id', b_id, 'institution_id', b_inst, 'admit_date', b_admit, 'discharge_date', b_end)],
                     'shared_days', shared_days, 'nested', nested, 'settlement_at_risk', risk_id,
                     'its_fund_paid', risk_fund, 'its_calendar_days', risk_days) AS VARCHAR) AS evidence
FROM overlapping
