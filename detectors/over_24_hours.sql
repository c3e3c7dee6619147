/*---
id: over_24_hours
name_en: More than 24 hours billed in one day
name_zh: 单日计费超24小时
family: policy
judgement: violation
entity_type: settlement
severity: 3
params:
  hours_in_day:
    default: 24
    description: hours a patient can be billed for in one day
  per_item:
    default: false
    description: add up the hours of each time-based item on its own (true) instead of all time-based items together (false, the national rule)
reads: [patient_days]
scheme: |
  Hourly items (monitoring, oxygen, special nursing, physiotherapy: hours_per_unit x
  units) billed to one patient for more hours in one day than the day has, over every
  institution that billed them that day: hours that cannot have been given. Only the
  hourly clock adds up: items whose unit is a day or more (bed, ICU day, daily nursing)
  are another clock and never count toward the 24 hours.
score: |
  1 + ln(hours billed / hours in the day).
false_positives: |
  Different time-based services genuinely given at the same time (ECG monitoring and
  oxygen for the same 24 hours) add up to more than 24 hours; regions whose price list
  bills them concurrently set per_item, which judges each item on its own. A transfer
  between institutions on one day is fine as long as the hours together stay within the
  day. Intensive care billed as an ICU day plus hourly monitoring is not over the day: the
  ICU day is not an hour count. A stay's hourly item billed as one summary line on one
  date (more hours than the day has, but no more than the days left in the stay) is not
  judged per day. The finding is charged to the institution that billed the most hours.
---*/
WITH time_lines AS (
    -- the hourly clock only: an item whose unit is a whole day or more (a bed day, an ICU
    -- day, a day of nursing) runs alongside the hours, it is not a share of them; and a
    -- stay's summary line (the item on one date of a longer stay, holding more hours than
    -- the day has) says nothing about one day
    SELECT *,
           CASE WHEN $per_item THEN item_code ELSE '*' END AS item_group,
           quantity * hours_per_unit AS hours
    FROM patient_days
    WHERE hours_per_unit IS NOT NULL AND hours_per_unit > 0 AND quantity > 0
      AND hours_per_unit < $hours_in_day
      AND NOT (stay_summary AND n_lines = 1 AND discharge_date IS NOT NULL
               AND date_diff('day', service_date, discharge_date) >= 1
               AND quantity * hours_per_unit > $hours_in_day
               AND quantity * hours_per_unit <= $hours_in_day * (date_diff('day', service_date, discharge_date) + 1))
),
institution_hours AS (
    SELECT patient_id, service_date, item_group, institution_id,
           sum(hours) AS hours,
           any_value(doctor_id) AS doctor_id,
           max(last_settlement_id) AS last_settlement_id
    FROM time_lines
    GROUP BY patient_id, service_date, item_group, institution_id
),
day_hours AS (
    SELECT t.patient_id, t.service_date, t.item_group,
           sum(t.hours) AS hours,
           sum(t.line_fund) AS fund,
           list(DISTINCT t.item_code ORDER BY t.item_code) AS items,
           list(DISTINCT t.institution_id ORDER BY t.institution_id) AS institutions,
           flatten(list(t.settlement_ids)) AS settlement_ids
    FROM time_lines AS t
    GROUP BY t.patient_id, t.service_date, t.item_group
    HAVING sum(t.hours) > $hours_in_day
),
over_day AS (
    -- charged to the institution that billed the most hours that day
    SELECT d.*, d.hours - $hours_in_day AS excess_hours,
           i.institution_id, i.doctor_id, i.last_settlement_id
    FROM day_hours AS d
    JOIN institution_hours AS i USING (patient_id, service_date, item_group)
    QUALIFY row_number() OVER (PARTITION BY d.patient_id, d.service_date, d.item_group
                               ORDER BY i.hours DESC, i.institution_id) = 1
)
SELECT
    concat_ws('|', patient_id, CAST(service_date AS VARCHAR), item_group) AS finding_key,
    'settlement' AS entity_type,
    last_settlement_id AS entity_id,
    institution_id,
    patient_id,
    doctor_id,
    list_sort(list_distinct(settlement_ids)) AS settlement_ids,
    1 + ln(hours / $hours_in_day) AS score,
    -- the fund money of the hours beyond the day, at the day's average per hour
    fund * excess_hours / hours AS amount_at_risk,
    format('{} hours of time-based items ({}) billed for one patient on {}, {} hours more than the day has, by {} institution(s).',
           round(hours, 2)::DOUBLE, array_to_string(items, ', '), CAST(service_date AS VARCHAR),
           round(excess_hours, 2)::DOUBLE, len(institutions)) AS reason,
    CAST(json_object('service_date', service_date, 'items', items, 'hours_billed', hours,
                     'hours_in_day', $hours_in_day, 'excess_hours', excess_hours, 'per_item', $per_item,
                     'institutions', institutions, 'fund_for_the_hours', fund) AS VARCHAR) AS evidence
FROM over_day
