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
    description: identical charges (same item, quantity and unit price) for the same patient, day, institution and department that make a duplicate
  visit_fee_min_share:
    default: 0.05
    description: an item billed in at least this share of outpatient visits is a visit fee (consultation, registration) - a new visit the same day bills it again, so its repeat in another settlement is not a duplicate
  max_usual_repeat_share:
    default: 0.05
    description: an item billed twice the same day this often (share of its lines) is billed per dose or order at these institutions - its repeats are normal practice, not duplicates
  min_item_lines:
    default: 100
    description: lines an item needs before its visit share and usual repeat share are trusted (a small feed judges every repeat)
reads: [lines, line_facts, claims]
scheme: |
  The same service is charged again: an identical charge (same item, quantity and unit
  price) billed more than once to the same patient on the same day at the same institution
  and department - a copied charge line within one settlement, or the same charge repeated
  in a second settlement of that day.
score: |
  Number of extra copies, weighted up when the copies are identical (same quantity and
  unit price) and when they sit in different settlements.
false_positives: |
  A second visit the same day is a new service: another department is never compared, and
  a new consultation (a visit-fee item, found as one billed in a large share of outpatient
  visits) repeated in a second settlement is not a duplicate. Items given several times a
  day as separate orders of different quantity are not flagged, and neither are items that
  these institutions routinely bill several times a day (repeat share above
  max_usual_repeat_share over all screened lines: doses, infusions). Repeats of a rare item
  billed as identical lines are flagged and a reviewer should check the orders. Reversed
  settlements are never flagged.
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
charges AS (
    -- the candidate lines grouped by identical charge
    SELECT
        l.patient_id, l.institution_id, l.item_code, l.service_date, coalesce(l.dept_code, '') AS dept_code,
        l.quantity, l.unit_price,
        any_value(l.item_name) AS item_name,
        count(*) AS n_copies,
        count(DISTINCT l.settlement_id) AS n_settlements,
        list(DISTINCT l.settlement_id ORDER BY l.settlement_id) AS settlement_ids,
        max(l.settlement_id) AS last_settlement_id,
        arg_max(l.doctor_id, l.settlement_id) AS doctor_id,
        sum(l.line_fund) AS fund_total,
        max(l.line_fund) AS fund_original,
        sum(l.amount) AS amount_total
    FROM lines AS l
    WHERE hash(l.patient_id, l.institution_id, l.item_code, l.service_date, coalesce(l.dept_code, ''))
          IN (SELECT line_key FROM repeated_keys)
    GROUP BY ALL
),
item_usage AS (
    -- how the screened institutions normally bill each repeated item: its lines, and the
    -- share of outpatient visits that bill it
    SELECT item_code,
           count(*) AS n_lines,
           count(*) FILTER (WHERE visit_type = 'outpatient')
               / greatest((SELECT count(*) FROM claims WHERE visit_type = 'outpatient'), 1) AS visit_share
    FROM line_facts
    WHERE item_code IN (SELECT item_code FROM charges WHERE n_copies > 1)
    GROUP BY item_code
),
item_repeats AS (
    SELECT c.item_code, count(*) AS n_repeated_days
    FROM charges AS c
    WHERE c.n_copies > 1
    GROUP BY c.item_code
),
duplicates AS (
    SELECT c.*, u.visit_share, r.n_repeated_days / u.n_lines AS repeat_share
    FROM charges AS c
    JOIN item_usage AS u USING (item_code)
    JOIN item_repeats AS r USING (item_code)
    WHERE c.n_copies >= $min_copies
      -- a visit fee repeated once per settlement is a new visit, not a copy
      AND NOT (u.n_lines >= $min_item_lines AND u.visit_share >= $visit_fee_min_share
               AND c.n_settlements = c.n_copies)
      -- an item these institutions routinely bill several times a day
      AND NOT (u.n_lines >= $min_item_lines AND r.n_repeated_days / u.n_lines > $max_usual_repeat_share)
)
SELECT
    concat_ws('|', patient_id, institution_id, item_code, CAST(service_date AS VARCHAR), dept_code,
              CAST(quantity AS VARCHAR), CAST(unit_price AS VARCHAR)) AS finding_key,
    'settlement' AS entity_type,
    last_settlement_id AS entity_id,
    institution_id,
    patient_id,
    doctor_id,
    settlement_ids,
    (n_copies - 1) * 1.5 * (CASE WHEN n_settlements > 1 THEN 1.2 ELSE 1.0 END) AS score,
    fund_total - fund_original AS amount_at_risk,
    format('Item {} ({}) billed {} times with the same quantity and price on {} to the same patient at the same institution{}, in {} settlement(s).',
           item_code, item_name, n_copies, CAST(service_date AS VARCHAR),
           CASE WHEN dept_code <> '' THEN ' and department ' || dept_code ELSE '' END, n_settlements) AS reason,
    CAST(json_object('item_code', item_code, 'service_date', service_date, 'n_lines', n_copies,
                     'n_settlements', n_settlements, 'identical_copies', true,
                     'quantity', quantity, 'unit_price', unit_price,
                     'item_visit_share', round(visit_share, 4), 'item_repeat_share', round(repeat_share, 4),
                     'amount_total', amount_total, 'fund_duplicated', fund_total - fund_original)
         AS VARCHAR) AS evidence
FROM duplicates
