/*---
id: indication_mismatch
name_en: Item billed outside its indications
name_zh: 限适应症
family: medical
judgement: suspicious
entity_type: settlement
severity: 2
params:
  dx_lookback_days:
    default: 0
    description: also accept a matching diagnosis from the patient's other settlements up to this many days before the service (0 = the settlement's own diagnoses only)
  flag_missing_dx:
    default: false
    description: flag restricted items on settlements that carry no diagnosis at all (otherwise they cannot be judged and are skipped)
reads: [lines, claims]
scheme: |
  An item the fund pays only for certain conditions (its catalog indication list of
  ICD-10 prefixes) is billed on a settlement none of whose diagnoses, primary or
  secondary, falls under that list: the drug is used off-label at the fund's expense, or
  the claim was padded.
score: |
  1 + ln(1 + fund money of the offending lines / 100), plus 0.5 per further offending item.
false_positives: |
  A chronic condition treated at a visit coded only with another diagnosis (insulin at a
  visit coded as hypertension); dx_lookback_days lets a region accept the patient's
  recent diagnoses. Settlements with no diagnosis are skipped unless flag_missing_dx.
  Codes are compared as prefixes, ignoring case and dots.
---*/
WITH indicated_lines AS NOT MATERIALIZED (
    SELECT settlement_id, line_no, patient_id, institution_id, doctor_id, service_date,
           item_code, item_name, amount, line_fund, indication_dx, primary_dx
    FROM lines
    -- items with an indication list, found in the catalog (a few rows) rather than by
    -- testing the list on every line
    WHERE item_code IN (SELECT item_code FROM catalog WHERE len(indication_dx) > 0)
      AND quantity > 0
),
primary_matches AS (
    -- most lines are explained by their settlement's primary diagnosis alone: judge each
    -- (item, primary diagnosis) once (the test sits on the grouped rows, so the planner
    -- cannot push it down to every line) and send only the rest on to the secondary ones
    SELECT item_code, primary_dx
    FROM (SELECT item_code, primary_dx, any_value(indication_dx) AS indication_dx
          FROM indicated_lines
          WHERE primary_dx IS NOT NULL
          GROUP BY item_code, primary_dx)
    WHERE list_bool_or(list_transform(indication_dx,
              lambda p: starts_with(replace(upper(trim(primary_dx)), '.', ''), replace(upper(trim(p)), '.', ''))))
),
restricted_lines AS (
    SELECT l.* EXCLUDE (primary_dx), c.primary_dx, c.secondary_dx
    FROM indicated_lines AS l
    ANTI JOIN primary_matches AS m
      ON m.item_code = l.item_code AND m.primary_dx = l.primary_dx
    JOIN claims AS c USING (settlement_id)
),
combinations AS (
    -- the prefix test depends only on (item, diagnoses): judge each combination once
    SELECT item_code, primary_dx, secondary_dx,
           any_value(indications) AS indications, any_value(dxs) AS dxs
    FROM (SELECT DISTINCT item_code, primary_dx, secondary_dx, indication_dx FROM restricted_lines)
    CROSS JOIN LATERAL (SELECT
           list_transform(indication_dx, lambda p: replace(upper(trim(p)), '.', '')) AS indications,
           list_filter(list_transform(list_concat([primary_dx], coalesce(secondary_dx, [])),
                                      lambda d: replace(upper(trim(d)), '.', '')),
                       lambda d: d IS NOT NULL AND d <> '') AS dxs)
    GROUP BY item_code, primary_dx, secondary_dx
),
unmatched_combinations AS (
    SELECT *
    FROM combinations
    WHERE NOT coalesce(list_bool_or(list_transform(dxs, lambda d: list_bool_or(list_transform(indications, lambda p: starts_with(d, p))))), false)
      AND (len(dxs) > 0 OR $flag_missing_dx)
),
unmatched_lines AS (
    SELECT r.settlement_id, r.line_no, r.patient_id, r.institution_id, r.doctor_id, r.service_date,
           r.item_code, r.item_name, r.amount, r.line_fund, u.indications, u.dxs
    FROM restricted_lines AS r
    JOIN unmatched_combinations AS u
      ON u.item_code = r.item_code
     AND u.primary_dx IS NOT DISTINCT FROM r.primary_dx
     AND u.secondary_dx IS NOT DISTINCT FROM r.secondary_dx
),
patient_dx AS (
    -- the patient's diagnoses from every settlement, for the optional look-back
    SELECT patient_id, admit_date, replace(upper(trim(dx)), '.', '') AS dx
    FROM (SELECT patient_id, admit_date, unnest(list_concat([primary_dx], coalesce(secondary_dx, []))) AS dx
          FROM claims
          WHERE $dx_lookback_days > 0
            AND patient_id IN (SELECT patient_id FROM unmatched_lines))
    WHERE dx IS NOT NULL
),
explained_by_history AS (
    SELECT DISTINCT u.settlement_id, u.line_no
    FROM unmatched_lines AS u
    JOIN patient_dx AS h
      ON h.patient_id = u.patient_id
     AND h.admit_date BETWEEN u.service_date - to_days(CAST($dx_lookback_days AS INTEGER)) AND u.service_date
    WHERE list_bool_or(list_transform(u.indications, lambda p: starts_with(h.dx, p)))
),
offending_lines AS (
    SELECT u.*
    FROM unmatched_lines AS u
    ANTI JOIN explained_by_history AS e USING (settlement_id, line_no)
),
per_settlement AS (
    SELECT settlement_id, patient_id, institution_id, doctor_id,
           any_value(dxs) AS dxs,
           count(*) AS n_lines,
           count(DISTINCT item_code) AS n_items,
           list(DISTINCT item_code ORDER BY item_code) AS items,
           string_agg(DISTINCT item_name || ' (' || item_code || ': ' || array_to_string(indications, '/') || ')', '; '
                      ORDER BY item_name || ' (' || item_code || ': ' || array_to_string(indications, '/') || ')') AS item_text,
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
    1 + ln(1 + fund / 100) + 0.5 * (n_items - 1) AS score,
    fund AS amount_at_risk,
    format('{} item(s) billed outside their indications: {}; the settlement''s diagnoses are {}.',
           n_items, item_text, CASE WHEN len(dxs) = 0 THEN 'missing' ELSE array_to_string(dxs, ', ') END) AS reason,
    CAST(json_object('diagnoses', dxs, 'items', items, 'n_lines', n_lines,
                     'amount', amount, 'fund', fund) AS VARCHAR) AS evidence
FROM per_settlement
