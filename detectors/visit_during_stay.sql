/*---
id: visit_during_stay
name_en: Outpatient or pharmacy claims during a stay
name_zh: 住院期间门诊购药
family: management
judgement: suspicious
entity_type: settlement
severity: 3
params:
  include_same_institution:
    default: false
    description: also flag outpatient settlements at the institution where the patient is staying
reads: [claims, stays]
scheme: |
  While the patient is an inpatient, an outpatient visit or a pharmacy purchase is settled
  on their card elsewhere: the card is lent or used by someone else, or the patient is not
  really in the bed ("hanging bed").
score: |
  1 + ln(1 + days between the visit and the nearer end of the stay), plus 0.5 for a
  pharmacy purchase: the deeper inside the stay, the less room for a same-day slip.
false_positives: |
  Visits on the day of admission or of discharge are not during the stay. A relative
  buying the patient's own regular medicine at a pharmacy during a long stay looks the
  same. The settlement is charged to the institution of the visit.
---*/
WITH visits AS (
    SELECT settlement_id, patient_id, institution_id, doctor_id, visit_type, admit_date AS visit_date,
           fund_paid, institution_kind
    FROM claims
    WHERE visit_type IN ('outpatient', 'pharmacy')
),
during AS (
    SELECT v.*,
           s.settlement_id AS stay_id, s.institution_id AS stay_institution,
           s.admit_date AS stay_admit, s.discharge_date AS stay_discharge
    FROM visits AS v
    JOIN stays AS s
      ON s.patient_id = v.patient_id
     AND v.visit_date > s.admit_date
     AND v.visit_date < s.discharge_date
    WHERE $include_same_institution OR s.institution_id <> v.institution_id
),
one_per_visit AS (
    SELECT *
    FROM during
    QUALIFY row_number() OVER (PARTITION BY settlement_id ORDER BY stay_admit, stay_id) = 1
)
SELECT
    settlement_id AS finding_key,
    'settlement' AS entity_type,
    settlement_id AS entity_id,
    institution_id,
    patient_id,
    doctor_id,
    [stay_id, settlement_id] AS settlement_ids,
    1 + ln(1 + least(date_diff('day', stay_admit, visit_date), date_diff('day', visit_date, stay_discharge)))
        + CASE WHEN visit_type = 'pharmacy' THEN 0.5 ELSE 0 END AS score,
    fund_paid AS amount_at_risk,
    format('{} settlement at {} on {} while the patient was an inpatient at {} from {} to {} (day {} of the stay).',
           CASE visit_type WHEN 'pharmacy' THEN 'Pharmacy' ELSE 'Outpatient' END, institution_id,
           CAST(visit_date AS VARCHAR), stay_institution, CAST(stay_admit AS VARCHAR),
           CAST(stay_discharge AS VARCHAR), date_diff('day', stay_admit, visit_date) + 1) AS reason,
    CAST(json_object('visit_type', visit_type, 'visit_date', visit_date, 'stay_settlement_id', stay_id,
                     'stay_institution_id', stay_institution, 'stay_admit', stay_admit,
                     'stay_discharge', stay_discharge, 'fund_paid', fund_paid) AS VARCHAR) AS evidence
FROM one_per_visit
