/*---
id: over_price_cap
name_en: Charging above the price cap
name_zh: 超标准收费
family: policy
judgement: violation
entity_type: settlement
severity: 3
params:
  tolerance_pct:
    default: 0
    description: a unit price may exceed the cap by this many percent before it is flagged (0 = strictly above the cap)
  min_excess_amount:
    default: 0
    description: smallest excess fund money (yuan) per settlement worth a finding
reads: [lines]
scheme: |
  An item is charged at a unit price above the highest price the catalog allows for the
  institution's level (a level-1 clinic charging the level-3 price, or a price above any
  level's cap).
score: |
  1 + ln(1 + excess percentage over the cap) of the worst line, times 1 + ln(number of
  lines over the cap): a large overcharge or a habit across many lines scores higher.
false_positives: |
  A price exactly at the cap is never flagged. A catalog snapshot that lags a price
  revision (the institution already charges the new, higher cap) looks the same; check
  the catalog date. Items without a cap for the level are not checked.
---*/
WITH overcharged_lines AS (
    SELECT
        settlement_id, patient_id, institution_id, doctor_id, institution_level,
        item_code, item_name, service_date, quantity, unit_price, price_cap, amount, line_fund,
        (unit_price - price_cap) * quantity AS excess_amount,
        -- the fund's part of the excess: the line's fund share applied to the overcharge
        CASE WHEN amount > 0 THEN (unit_price - price_cap) * quantity * line_fund / amount ELSE 0 END
            AS excess_fund,
        100.0 * (unit_price - price_cap) / price_cap AS excess_pct
    FROM lines
    WHERE price_cap IS NOT NULL
      AND price_cap > 0
      AND quantity > 0
      AND unit_price > price_cap * (1 + $tolerance_pct / 100.0)
),
per_settlement AS (
    SELECT
        settlement_id, patient_id, institution_id, doctor_id,
        any_value(institution_level) AS institution_level,
        count(*) AS n_lines,
        sum(excess_amount) AS excess_amount,
        sum(excess_fund) AS excess_fund,
        max(excess_pct) AS max_excess_pct,
        arg_max(item_code, excess_pct) AS worst_item,
        arg_max(item_name, excess_pct) AS worst_item_name,
        arg_max(unit_price, excess_pct) AS worst_price,
        arg_max(price_cap, excess_pct) AS worst_cap,
        list({'item_code': item_code, 'service_date': service_date, 'quantity': quantity,
              'unit_price': unit_price, 'price_cap': price_cap,
              'excess_amount': round(excess_amount, 2)} ORDER BY excess_pct DESC, item_code) AS lines_over
    FROM overcharged_lines
    GROUP BY settlement_id, patient_id, institution_id, doctor_id
    HAVING sum(excess_fund) >= $min_excess_amount
)
SELECT
    settlement_id AS finding_key,
    'settlement' AS entity_type,
    settlement_id AS entity_id,
    institution_id,
    patient_id,
    doctor_id,
    [settlement_id] AS settlement_ids,
    (1 + ln(1 + max_excess_pct / 100.0)) * (1 + ln(n_lines)) AS score,
    excess_fund AS amount_at_risk,
    format('{} line(s) charged above the level-{} price cap; worst: {} ({}) at {} per unit against a cap of {} ({}% over); {} charged in excess.',
           n_lines, institution_level, worst_item, worst_item_name, round(worst_price, 2),
           round(worst_cap, 2), round(max_excess_pct, 1), round(excess_amount, 2)) AS reason,
    CAST(json_object('institution_level', institution_level, 'n_lines', n_lines,
                     'excess_amount', round(excess_amount, 2), 'excess_fund', round(excess_fund, 2),
                     'max_excess_pct', round(max_excess_pct, 1), 'lines', lines_over) AS VARCHAR) AS evidence
FROM per_settlement
