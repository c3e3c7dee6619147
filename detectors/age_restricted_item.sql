/*---
id: age_restricted_item
name_en: Age-restricted item outside its age range
name_zh: 限年龄
family: medical
judgement: violation
entity_type: settlement
severity: 3
params:
  tolerance_years:
    default: 0
    description: years a patient may be outside the item's age range before it is flagged
reads: [lines, claims]
scheme: |
  An item the catalog restricts to an age range (paediatric drugs and therapies, adult-only
  drugs, geriatric assessments) is billed to a patient outside it: often a child's card used
  for an adult or the other way round.
score: |
  1 + ln(1 + years outside the range) of the worst line, plus 0.5 per further offending line.
false_positives: |
  The age is taken at the service date in whole years, so a patient billed on the day of a
  birthday is within range. A wrong birth date in the register looks the same.
---*/
WITH restricted_lines AS MATERIALIZED (
    -- the few lines of age-restricted items first, then the patients' birth dates
    SELECT settlement_id, patient_id, institution_id, doctor_id, item_code, item_name,
           service_date, min_age, max_age, amount, line_fund
    FROM lines
    WHERE (min_age IS NOT NULL OR max_age IS NOT NULL) AND quantity > 0
),
aged_lines AS (
    SELECT l.settlement_id, l.patient_id, l.institution_id, l.doctor_id, l.item_code, l.item_name,
           l.service_date, c.birth_date, l.min_age, l.max_age, l.amount, l.line_fund,
           year(l.service_date) - year(c.birth_date)
             - CASE WHEN strftime(l.service_date, '%m%d') < strftime(c.birth_date, '%m%d') THEN 1 ELSE 0 END
             AS age_at_service
    FROM restricted_lines AS l
    JOIN claims AS c USING (settlement_id)
    WHERE c.birth_date IS NOT NULL
),
offending_lines AS (
    SELECT *,
           greatest(coalesce(min_age - age_at_service, 0), coalesce(age_at_service - max_age, 0)) AS years_outside
    FROM aged_lines
    WHERE age_at_service < min_age - $tolerance_years
       OR age_at_service > max_age + $tolerance_years
),
per_settlement AS (
    SELECT settlement_id, patient_id, institution_id, doctor_id,
           count(*) AS n_lines,
           max(years_outside) AS max_years_outside,
           arg_max(age_at_service, years_outside) AS age_at_service,
           arg_max(item_code, years_outside) AS worst_item,
           arg_max(item_name, years_outside) AS worst_item_name,
           arg_max(concat(coalesce(CAST(min_age AS VARCHAR), '0'), '-', coalesce(CAST(max_age AS VARCHAR), '')),
                   years_outside) AS worst_range,
           list(DISTINCT item_code ORDER BY item_code) AS items,
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
    1 + ln(1 + max_years_outside) + 0.5 * (n_lines - 1) AS score,
    fund AS amount_at_risk,
    format('{} line(s) of age-restricted items billed to a patient aged {}; worst: {} ({}) payable for ages {}, {} year(s) outside.',
           n_lines, age_at_service, worst_item, worst_item_name, worst_range, max_years_outside) AS reason,
    CAST(json_object('age_at_service', age_at_service, 'items', items, 'allowed_ages', worst_range,
                     'years_outside', max_years_outside, 'n_lines', n_lines,
                     'amount', amount, 'fund', fund) AS VARCHAR) AS evidence
FROM per_settlement
