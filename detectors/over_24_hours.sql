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
    description: hours of one time-based item a patient can receive in one day
reads: [patient_days]
scheme: |
  A time-based item (monitoring, oxygen, special nursing, billed per hour) is billed for
  more hours in one day than the day has, for one patient: hours_per_unit × units summed
  over every institution that billed it that day.
score: |
  1 + ln(hours billed / hours in the day).
false_positives: |
  Different time-based items run at the same time (ECG monitoring and oxygen for 24 hours
  each) are legitimate, so hours are summed per item, never across items. A transfer
  between institutions on one day is fine as long as the two together stay within 24
  hours. The finding is charged to the institution that billed the most hours.
---*/
WITH item_hours AS (
    SELECT patient_id, service_date, item_code,
           any_value(item_name) AS item_name,
           sum(quantity * hours_per_unit) AS hours,
           sum(line_fund) AS fund,
           arg_max(institution_id, quantity * hours_per_unit) AS institution_id,
           arg_max(doctor_id, quantity * hours_per_unit) AS doctor_id,
           arg_max(last_settlement_id, quantity * hours_per_unit) AS entity_settlement_id,
           count(DISTINCT institution_id) AS n_institutions,
           list(DISTINCT institution_id ORDER BY institution_id) AS institutions,
           flatten(list(settlement_ids)) AS settlement_ids
    FROM patient_days
    WHERE hours_per_unit IS NOT NULL AND hours_per_unit > 0
    GROUP BY patient_id, service_date, item_code
),
over_day AS (
    SELECT *, hours - $hours_in_day AS excess_hours
    FROM item_hours
    WHERE hours > $hours_in_day
)
SELECT
    concat_ws('|', patient_id, item_code, CAST(service_date AS VARCHAR)) AS finding_key,
    'settlement' AS entity_type,
    entity_settlement_id AS entity_id,
    institution_id,
    patient_id,
    doctor_id,
    list_sort(list_distinct(settlement_ids)) AS settlement_ids,
    1 + ln(hours / $hours_in_day) AS score,
    -- the fund money of the hours beyond the day, at the day's average per hour
    fund * excess_hours / hours AS amount_at_risk,
    format('{} hours of {} ({}) billed for {} on {}, {} hours more than the day has, by {} institution(s).',
           round(hours, 2)::DOUBLE, item_code, item_name, patient_id, CAST(service_date AS VARCHAR),
           round(excess_hours, 2)::DOUBLE, n_institutions) AS reason,
    CAST(json_object('item_code', item_code, 'service_date', service_date, 'hours_billed', hours,
                     'hours_in_day', $hours_in_day, 'excess_hours', excess_hours,
                     'institutions', institutions, 'fund_for_the_day', fund) AS VARCHAR) AS evidence
FROM over_day
