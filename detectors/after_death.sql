/*---
id: after_death
name_en: Claims after death
name_zh: 死亡后就医
family: policy
judgement: violation
entity_type: settlement
severity: 5
params: {}
reads: [claims]
scheme: |
  A settlement for a visit, stay or purchase that began after the insured person's death
  as recorded by the civil registry: a dead person's card used by someone else, or a
  fabricated claim.
score: |
  1 + log(1 + days between death and the visit): the longer after death, the less room
  for a late registration or a data-entry slip.
false_positives: |
  A death date recorded wrongly in the civil registry. A patient who dies during a stay
  (admitted before death, discharged on the day of death) is not flagged.
---*/
SELECT
    settlement_id AS finding_key,
    'settlement' AS entity_type,
    settlement_id AS entity_id,
    institution_id,
    patient_id,
    doctor_id,
    [settlement_id] AS settlement_ids,
    1 + ln(1 + date_diff('day', death_date, admit_date)) AS score,
    fund_paid AS amount_at_risk,
    format('{} settlement dated {}, {} day(s) after the patient''s recorded death on {}.',
           visit_type, CAST(admit_date AS VARCHAR), date_diff('day', death_date, admit_date),
           CAST(death_date AS VARCHAR)) AS reason,
    CAST(json_object('death_date', death_date, 'admit_date', admit_date, 'visit_type', visit_type,
                     'days_after_death', date_diff('day', death_date, admit_date),
                     'fund_paid', fund_paid) AS VARCHAR) AS evidence
FROM claims
WHERE death_date IS NOT NULL
  AND admit_date > death_date
