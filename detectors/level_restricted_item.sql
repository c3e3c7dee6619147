/*---
id: level_restricted_item
name_en: Item billed below its minimum institution level
name_zh: 限医疗机构级别
family: medical
judgement: violation
entity_type: settlement
severity: 3
params: {}
reads: [lines]
scheme: |
  An item the catalog allows only from a given institution level up (CT and MRI, ICU beds,
  complex surgery) is billed by an institution below that level: a service it is not
  equipped or licensed for, or one done elsewhere and billed here.
score: |
  1 + levels short of the minimum, plus 0.5 per further offending line.
false_positives: |
  An institution upgraded recently while the institutions snapshot still shows the old
  level looks the same; check the snapshot date.
---*/
WITH offending_lines AS (
    SELECT settlement_id, patient_id, institution_id, doctor_id, institution_level,
           item_code, item_name, min_level, amount, line_fund
    FROM lines
    WHERE min_level IS NOT NULL
      AND institution_level IS NOT NULL
      AND institution_level < min_level
      AND quantity > 0
),
per_settlement AS (
    SELECT settlement_id, patient_id, institution_id, doctor_id,
           any_value(institution_level) AS institution_level,
           max(min_level) AS max_min_level,
           count(*) AS n_lines,
           list(DISTINCT item_code ORDER BY item_code) AS items,
           arg_max(item_code, min_level) AS worst_item,
           arg_max(item_name, min_level) AS worst_item_name,
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
    1 + (max_min_level - institution_level) + 0.5 * (n_lines - 1) AS score,
    fund AS amount_at_risk,
    format('{} line(s) billed by a level-{} institution for items reserved to higher levels; e.g. {} ({}) needs level {} or above.',
           n_lines, institution_level, worst_item, worst_item_name, max_min_level) AS reason,
    CAST(json_object('institution_level', institution_level, 'required_level', max_min_level,
                     'items', items, 'n_lines', n_lines, 'amount', amount, 'fund', fund) AS VARCHAR) AS evidence
FROM per_settlement
