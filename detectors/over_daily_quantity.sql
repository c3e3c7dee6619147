/*---
id: over_daily_quantity
name_en: Quantity above the daily limit
name_zh: 超量/超频次
family: policy
judgement: violation
entity_type: settlement
severity: 2
params:
  tolerance_units:
    default: 0
    description: units a day's total may exceed the catalog limit by before it is flagged
reads: [patient_days]
scheme: |
  More units of an item are billed to one patient on one day at one institution than the
  catalog pays per day (two bed-days on one day, three consultations, four CT scans),
  whether in one settlement or spread over several.
score: |
  1 + ln(units billed / daily limit): twice the limit scores 1.69, ten times 3.3.
false_positives: |
  A stay's bed or nursing charge billed as one summary line (on a single date) covering
  several days of the stay is not flagged; billed day by day, each day is held to the limit. The limit is per institution: a patient seen at two institutions on one day is judged
  at each separately. Reversed settlements are excluded before counting. A limit recorded
  wrongly in the catalog flags every patient alike; many findings on one item across many
  institutions point to the catalog, not the institutions.
---*/
WITH over_limit AS (
    SELECT *,
           quantity - max_daily_qty AS excess_units
    FROM patient_days
    WHERE max_daily_qty IS NOT NULL
      AND max_daily_qty > 0
      AND quantity > max_daily_qty + $tolerance_units
      -- a stay's bed or nursing charge is often one summary line (the item on a single
      -- date of the stay): it may hold as many days as remain in the stay (total
      -- bed-days beyond the stay are bed_days_exceed_stay's finding)
      AND NOT (stay_summary AND discharge_date IS NOT NULL
               AND quantity <= max_daily_qty * (date_diff('day', service_date, discharge_date) + 1)
                                + $tolerance_units)
)
SELECT
    concat_ws('|', patient_id, institution_id, item_code, CAST(service_date AS VARCHAR)) AS finding_key,
    'settlement' AS entity_type,
    last_settlement_id AS entity_id,
    institution_id,
    patient_id,
    doctor_id,
    settlement_ids,
    1 + ln(quantity / max_daily_qty) AS score,
    -- the excess units at the day's average fund money per unit
    line_fund * excess_units / quantity AS amount_at_risk,
    format('{} {} of {} ({}) billed on {} against a limit of {} a day: {} unit(s) over, in {} settlement(s).',
           quantity::DOUBLE, item_unit, item_code, item_name, CAST(service_date AS VARCHAR),
           max_daily_qty::DOUBLE, excess_units::DOUBLE, len(settlement_ids)) AS reason,
    CAST(json_object('item_code', item_code, 'service_date', service_date,
                     'units_billed', quantity, 'daily_limit', max_daily_qty,
                     'excess_units', excess_units, 'n_lines', n_lines,
                     'fund_for_the_day', line_fund) AS VARCHAR) AS evidence
FROM over_limit
