/*---
id: sex_restricted_item
name_en: Sex-restricted item billed to the other sex
name_zh: 限性别
family: medical
judgement: violation
entity_type: settlement
severity: 3
params: {}
reads: [lines, claims]
scheme: |
  An item the catalog restricts to one sex (a prostate exam, an obstetric ultrasound, a
  gynaecological drug) is billed to a patient of the other sex: a claim made up or moved
  onto another person's card.
score: |
  1 + number of offending lines in the settlement.
false_positives: |
  A wrong sex in the insured-persons register, or a patient whose registered sex changed,
  looks the same; check the register.
---*/
WITH restricted_lines AS MATERIALIZED (
    -- the few lines of sex-restricted items first: left to itself the planner pairs every
    -- claim with every restricted item before it looks at the lines
    SELECT settlement_id, patient_id, institution_id, doctor_id, item_code, item_name,
           sex_only, service_date, amount, line_fund
    FROM lines
    WHERE sex_only IS NOT NULL AND quantity > 0
),
offending_lines AS (
    SELECT l.*, c.sex
    FROM restricted_lines AS l
    JOIN claims AS c USING (settlement_id)
    WHERE c.sex IS NOT NULL
      AND c.sex <> l.sex_only
),
per_settlement AS (
    SELECT settlement_id, patient_id, institution_id, doctor_id,
           any_value(sex) AS sex,
           count(*) AS n_lines,
           list(DISTINCT item_code ORDER BY item_code) AS items,
           string_agg(DISTINCT item_name || ' (' || item_code || ', ' || sex_only || ' only)', '; ' ORDER BY item_name || ' (' || item_code || ', ' || sex_only || ' only)') AS item_text,
           sum(amount) AS amount,
           sum(line_fund) AS fund
    FROM offending_lines
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
    1 + n_lines AS score,
    fund AS amount_at_risk,
    format('{} line(s) of items restricted to the other sex billed to a patient registered as {}: {}.',
           n_lines, CASE sex WHEN 'M' THEN 'male' ELSE 'female' END, item_text) AS reason,
    CAST(json_object('patient_sex', sex, 'items', items, 'n_lines', n_lines,
                     'amount', amount, 'fund', fund) AS VARCHAR) AS evidence
FROM per_settlement
