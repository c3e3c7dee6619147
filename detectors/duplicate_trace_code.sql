/*---
id: duplicate_trace_code
name_en: Drug traceability code dispensed twice
name_zh: 追溯码重复
family: policy
judgement: violation
entity_type: settlement
severity: 4
params: {}
reads: [trace_code_uses, claims]
scheme: |
  Every physical drug pack carries a unique traceability code, so one code can be sold
  once. A code that appears again in a later dispensing means a pack was resold ("回流药":
  drugs bought on the fund, sold back and sold again) or a sale was made up.
score: |
  1 + ln(number of repeated packs in the settlement) + 0.5 when the first sale was at
  another institution.
false_positives: |
  A returned pack (the first sale reversed) is not flagged, as reversed settlements are
  excluded. A scanner that records one code for several packs of the same line looks the
  same; such repeats sit inside one line and are reported with the same settlement only.
---*/
WITH repeated_uses AS (
    -- the effective uses of codes dispensed more than once (the shared feature), with the
    -- settlement date that orders two uses on one day
    SELECT u.*, c.settle_date
    FROM trace_code_uses AS u
    JOIN claims AS c USING (settlement_id)
),
uses AS (
    SELECT c.*,
           row_number() OVER w AS use_no,
           first_value(c.settlement_id) OVER w AS first_settlement_id,
           first_value(c.institution_id) OVER w AS first_institution_id,
           first_value(c.service_date) OVER w AS first_date
    FROM repeated_uses AS c
    WINDOW w AS (PARTITION BY c.trace_code ORDER BY c.service_date, c.settle_date, c.settlement_id, c.line_no
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
repeats AS (
    SELECT settlement_id, patient_id, institution_id, doctor_id,
           any_value(service_date) AS service_date,
           count(*) AS n_packs,
           list(DISTINCT item_code ORDER BY item_code) AS items,
           list(DISTINCT trace_code ORDER BY trace_code) AS trace_codes,
           list(DISTINCT first_settlement_id ORDER BY first_settlement_id) AS first_settlements,
           min(first_date) AS first_date,
           bool_or(first_institution_id <> institution_id) AS first_sold_elsewhere,
           -- the fund money of the repeated packs: the line's fund share per pack
           sum(line_fund / n_codes) AS fund
    FROM uses
    WHERE use_no > 1
    GROUP BY settlement_id, patient_id, institution_id, doctor_id
)
SELECT
    settlement_id AS finding_key,
    'settlement' AS entity_type,
    settlement_id AS entity_id,
    institution_id,
    patient_id,
    doctor_id,
    list_sort(list_distinct(list_concat(first_settlements, [settlement_id]))) AS settlement_ids,
    1 + ln(n_packs) + CASE WHEN first_sold_elsewhere THEN 0.5 ELSE 0 END AS score,
    fund AS amount_at_risk,
    format('{} drug pack(s) of {} dispensed on {} carry traceability codes already dispensed on {} in settlement(s) {}{}.',
           n_packs, array_to_string(items, ', '), CAST(service_date AS VARCHAR), CAST(first_date AS VARCHAR),
           array_to_string(first_settlements, ', '),
           CASE WHEN first_sold_elsewhere THEN ' at another institution' ELSE '' END) AS reason,
    CAST(json_object('n_repeated_packs', n_packs, 'items', items, 'trace_codes', trace_codes[1:20],
                     'first_settlements', first_settlements, 'first_date', first_date,
                     'first_sold_elsewhere', first_sold_elsewhere, 'fund', fund) AS VARCHAR) AS evidence
FROM repeats
