/*---
id: duplicate_billing
name_en: Duplicate billing
name_zh: 重复收费
family: policy
judgement: violation
entity_type: settlement
severity: 3
params:
  min_copies:
    default: 2
    description: lines of the same item for the same patient, day and institution that make a duplicate
reads: [lines, line_facts]
scheme: |
  The same item is charged more than once to the same patient on the same day at the same
  institution: a copied charge line within one settlement, or the same charge repeated in
  a second settlement of that day in the same department.
score: |
  Number of extra copies, weighted up when the copies are identical (same quantity and
  unit price) and when they sit in different settlements.
false_positives: |
  Items legitimately given several times a day as separate orders of different quantity
  in one settlement are not flagged; repeated doses billed as identical lines are, and a
  reviewer should check the orders. Two visits the same day to different departments
  (each with its own consultation) are not duplicates. Reversed settlements are never
  flagged.
---*/
WITH repeated_keys AS (
    -- a cheap first pass over every line on one 64-bit key per patient, institution, item,
    -- day and department: only keys billed at least min_copies times go further (a key
    -- equal to the one min_copies - 1 places before it in sorted order: sorting the
    -- integers costs less than a hash table whose groups are nearly all distinct). A hash
    -- collision can only add a candidate (the exact grouping below drops it), never lose one.
    SELECT line_key
    FROM (SELECT hash(patient_id, institution_id, item_code, service_date, coalesce(dept_code, '')) AS line_key
          FROM line_facts)
    QUALIFY lag(line_key, greatest(CAST($min_copies AS INTEGER) - 1, 1)) OVER (ORDER BY line_key) = line_key
),
line_groups AS (
    SELECT
        l.patient_id, l.institution_id, l.item_code, l.service_date, coalesce(l.dept_code, '') AS dept_code,
        any_value(l.item_name) AS item_name,
        count(*) AS n_lines,
        count(DISTINCT l.settlement_id) AS n_settlements,
        count(DISTINCT (l.quantity, l.unit_price)) AS n_distinct_charges,
        list(DISTINCT l.settlement_id ORDER BY l.settlement_id) AS settlement_ids,
        max(l.settlement_id) AS last_settlement_id,
        arg_max(l.doctor_id, l.settlement_id) AS doctor_id,
        sum(l.line_fund) AS fund_total,
        max(l.line_fund) AS fund_original,
        sum(l.amount) AS amount_total
    FROM lines AS l
    WHERE hash(l.patient_id, l.institution_id, l.item_code, l.service_date, coalesce(l.dept_code, ''))
          IN (SELECT line_key FROM repeated_keys)
    GROUP BY l.patient_id, l.institution_id, l.item_code, l.service_date, coalesce(l.dept_code, '')
    HAVING count(*) >= $min_copies
),
duplicates AS (
    -- a copy is either an identical line or a charge repeated in another settlement
    SELECT *
    FROM line_groups
    WHERE n_distinct_charges < n_lines OR n_settlements > 1
)
SELECT
    concat_ws('|', patient_id, institution_id, item_code, CAST(service_date AS VARCHAR), dept_code) AS finding_key,
    'settlement' AS entity_type,
    last_settlement_id AS entity_id,
    institution_id,
    patient_id,
    doctor_id,
    settlement_ids,
    (n_lines - 1) * (CASE WHEN n_distinct_charges = 1 THEN 1.5 ELSE 1.0 END)
        * (CASE WHEN n_settlements > 1 THEN 1.2 ELSE 1.0 END) AS score,
    fund_total - fund_original AS amount_at_risk,
    format('Item {} ({}) billed {} times on {} to the same patient at the same institution{}, in {} settlement(s).',
           item_code, item_name, n_lines, CAST(service_date AS VARCHAR),
           CASE WHEN dept_code <> '' THEN ' and department ' || dept_code ELSE '' END, n_settlements) AS reason,
    CAST(json_object('item_code', item_code, 'service_date', service_date, 'n_lines', n_lines,
                     'n_settlements', n_settlements, 'identical_copies', n_distinct_charges = 1,
                     'amount_total', amount_total, 'fund_duplicated', fund_total - fund_original)
         AS VARCHAR) AS evidence
FROM duplicates
