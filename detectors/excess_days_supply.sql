/*---
id: excess_days_supply
name_en: Excess or overlapping drug supply
name_zh: 超量开药/重复开药
family: medical
judgement: suspicious
entity_type: settlement
severity: 3
params:
  window_days:
    default: 90
    description: look-back window (days) over which one patient's dispensings of one drug are added up
  min_ratio:
    default: 1.5
    description: days supplied within the window divided by the days they can cover (from the first dispensing to the latest end of supply) that counts as excess
  min_excess_days:
    default: 7
    description: fewest surplus days of drug on hand worth a finding
  early_refill_days:
    default: 3
    description: days early each refill may come without counting as stockpiling (a patient collects before the pack runs out) - the surplus must exceed min_excess_days plus this for every refill in the window
  check_max_days_supply:
    default: true
    description: also flag a single dispensing above the catalog's maximum days' supply
reads: [lines, line_facts]
scheme: |
  One patient takes home far more days of one drug than there are days to take it, usually
  from several institutions or pharmacies within a few days (doctor shopping, stockpiling
  for resale), or a single dispensing exceeds the most days the catalog pays for at once.
score: |
  1 + ln(days supplied / days they can cover in the window) + 0.5 per further institution
  involved.
false_positives: |
  Only take-home dispensings count (outpatient and pharmacy settlements): a drug given on
  the ward day by day is not a supply, whatever days_supply its lines carry. The judgement
  is over the window, not one pair of dispensings: regular refills a few days early (a
  chronic patient's monthly pack, cycle after cycle) stay close to a ratio of 1 and are not
  flagged, and the surplus must exceed min_excess_days plus early_refill_days for every
  refill in the window (a weekly pack collected a few days early every week accumulates
  a surplus that is still tolerance, not stockpiling). A replacement for lost medicine or a dose change with a new
  prescription looks the same. Long prescriptions for chronic disease allowed by local
  policy exceed the catalog maximum; regions allowing them set check_max_days_supply off.
---*/
WITH repeat_pairs AS (
    -- a cheap first pass on one 64-bit key per patient and drug: only a drug the patient
    -- got in two settlements or more can overlap. Most pairs are a single dispensing (an
    -- acute course), so the windows below see a fraction of the drug lines. A hash
    -- collision only adds a pair, never loses one.
    -- (sorted by pair and settlement, a row whose pair equals its predecessor's but whose
    -- settlement does not: cheaper than a hash table of millions of nearly-distinct pairs)
    SELECT pair_key
    FROM (SELECT hash(patient_id, item_code) AS pair_key, hash(settlement_id) AS settlement_key
          FROM line_facts
          WHERE days_supply IS NOT NULL AND days_supply > 0 AND quantity > 0
            AND visit_type IN ('outpatient', 'pharmacy'))
    WINDOW w AS (ORDER BY pair_key, settlement_key)
    QUALIFY lag(pair_key) OVER w = pair_key AND lag(settlement_key) OVER w <> settlement_key
),
dispensings AS (
    -- every dispensing of a repeated pair, and the single ones over the catalog maximum
    SELECT patient_id, item_code, settlement_id, service_date,
           any_value(item_name) AS item_name,
           any_value(institution_id) AS institution_id,
           any_value(doctor_id) AS doctor_id,
           any_value(max_days_supply) AS max_days_supply,
           sum(days_supply) AS days_supply,
           sum(line_fund) AS fund
    FROM lines
    WHERE days_supply IS NOT NULL AND days_supply > 0 AND quantity > 0
      AND visit_type IN ('outpatient', 'pharmacy')
      AND (hash(patient_id, item_code) IN (SELECT pair_key FROM repeat_pairs)
           OR ($check_max_days_supply AND days_supply > max_days_supply))
    GROUP BY patient_id, item_code, settlement_id, service_date
),
windowed AS (
    SELECT *,
           sum(days_supply) OVER w AS window_supply,
           min(service_date) OVER w AS window_start,
           max(service_date + to_days(CAST(days_supply AS INTEGER))) OVER w AS window_supply_end,
           count(*) OVER w AS n_dispensings
    FROM dispensings
    WINDOW w AS (PARTITION BY patient_id, item_code ORDER BY service_date
                 RANGE BETWEEN to_days(CAST($window_days AS INTEGER) - 1) PRECEDING AND CURRENT ROW)
),
measured AS (
    SELECT *,
           date_diff('day', window_start, window_supply_end) AS coverable_days,
           window_supply - date_diff('day', window_start, window_supply_end) AS surplus_days
    FROM windowed
),
attributed AS (
    -- each dispensing answers only for the surplus it added to the previous one's
    SELECT *,
           greatest(0, surplus_days - coalesce(lag(surplus_days) OVER (PARTITION BY patient_id, item_code
                                                                      ORDER BY service_date, settlement_id), 0)) AS added_surplus,
           CASE WHEN $check_max_days_supply AND max_days_supply IS NOT NULL
                THEN greatest(0, days_supply - max_days_supply) ELSE 0 END AS over_max_days
    FROM measured
),
flagged AS (
    SELECT *,
           least(days_supply, greatest(CASE WHEN overlap_flag THEN added_surplus ELSE 0 END, over_max_days)) AS excess_days
    FROM (SELECT *,
                 n_dispensings > 1
                   AND surplus_days >= $min_excess_days + $early_refill_days * (n_dispensings - 1)
                   AND window_supply >= $min_ratio * coverable_days
                   AND added_surplus > 0 AS overlap_flag
          FROM attributed)
    WHERE overlap_flag OR over_max_days > 0
),
evidence AS (
    -- the dispensings in each flagged one's window (only flagged rows look back: cheap)
    SELECT f.settlement_id, f.item_code,
           list(DISTINCT d.settlement_id ORDER BY d.settlement_id) AS window_settlements,
           count(DISTINCT d.institution_id) AS n_institutions
    FROM flagged AS f
    JOIN dispensings AS d
      ON d.patient_id = f.patient_id AND d.item_code = f.item_code
     AND d.service_date BETWEEN f.window_start AND f.service_date
    WHERE f.overlap_flag OR d.settlement_id = f.settlement_id
    GROUP BY f.settlement_id, f.item_code
)
SELECT
    concat_ws('|', settlement_id, item_code) AS finding_key,
    'settlement' AS entity_type,
    settlement_id AS entity_id,
    institution_id,
    patient_id,
    doctor_id,
    list_sort(list_distinct(window_settlements)) AS settlement_ids,
    1 + ln(greatest(window_supply / greatest(coverable_days, 1), days_supply / coalesce(max_days_supply, days_supply)))
        + 0.5 * (n_institutions - 1) AS score,
    fund * excess_days / days_supply AS amount_at_risk,
    CASE WHEN overlap_flag
         THEN format('{} days of {} ({}) dispensed in {} dispensing(s) at {} institution(s) between {} and {}, enough to last until {}: {} surplus day(s); this dispensing of {} days added {}.',
                     window_supply, item_code, item_name, n_dispensings, n_institutions,
                     CAST(window_start AS VARCHAR), CAST(service_date AS VARCHAR),
                     CAST(window_start + to_days(CAST(window_supply AS INTEGER)) AS VARCHAR),
                     surplus_days, days_supply, added_surplus)
         ELSE format('{} days of {} ({}) dispensed at once on {}, above the catalog maximum of {} days.',
                     days_supply, item_code, item_name, CAST(service_date AS VARCHAR), max_days_supply)
    END AS reason,
    CAST(json_object('item_code', item_code, 'service_date', service_date, 'days_supply', days_supply,
                     'max_days_supply', max_days_supply, 'window_days', $window_days,
                     'window_start', window_start, 'window_supply_days', window_supply,
                     'coverable_days', coverable_days, 'surplus_days', surplus_days,
                     'surplus_added_here', added_surplus, 'over_max_days', over_max_days,
                     'excess_days', excess_days, 'n_dispensings', n_dispensings,
                     'n_institutions', n_institutions, 'fund', fund) AS VARCHAR) AS evidence
FROM flagged
JOIN evidence USING (settlement_id, item_code)
