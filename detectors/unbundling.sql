/*---
id: unbundling
name_en: Unbundled billing
name_zh: 分解收费
family: policy
judgement: violation
entity_type: settlement
severity: 3
params: {}
reads: [lines]
scheme: |
  A package item (a panel, a surgical package) is billed and one or more of the items it
  already includes are billed separately to the same patient at the same institution on
  the same day, so the components are paid twice.
score: |
  1 + number of component lines billed beside the package, weighted up when the
  components cost more than the package itself.
false_positives: |
  A component repeated on another day (a blood count the day before surgery) or at
  another institution is not flagged. A genuine repeat of a component later the same day
  (a second blood count after a bleed) looks the same; the order times are needed.
---*/
WITH packages AS (
    SELECT patient_id, institution_id, service_date, item_code AS package_code,
           any_value(item_name) AS package_name,
           min(settlement_id) AS package_settlement_id,
           any_value(doctor_id ORDER BY settlement_id) AS doctor_id,
           sum(amount) AS package_amount,
           any_value(bundle_of) AS bundle_of
    FROM lines
    WHERE bundle_of IS NOT NULL AND len(bundle_of) > 0 AND quantity > 0
    GROUP BY patient_id, institution_id, service_date, item_code
),
package_components AS (
    SELECT * EXCLUDE (bundle_of), unnest(bundle_of) AS component_code
    FROM packages
),
component_lines AS (
    SELECT p.patient_id, p.institution_id, p.service_date, p.package_code, p.package_name,
           p.package_settlement_id, p.doctor_id, p.package_amount,
           l.settlement_id, l.line_no, l.item_code, l.amount, l.line_fund
    FROM package_components AS p
    JOIN lines AS l
      ON l.patient_id = p.patient_id AND l.institution_id = p.institution_id
     AND l.service_date = p.service_date AND l.item_code = p.component_code
    WHERE l.quantity > 0
      -- narrow the lines to component items on one key before the four-key join
      AND l.item_code IN (SELECT component_code FROM package_components)
),
unbundled AS (
    SELECT c.patient_id, c.institution_id, c.service_date, c.package_code,
           any_value(c.package_name) AS package_name,
           any_value(c.package_settlement_id) AS package_settlement_id,
           any_value(c.doctor_id) AS doctor_id,
           count(*) AS n_component_lines,
           list(DISTINCT c.item_code ORDER BY c.item_code) AS components,
           list(DISTINCT c.settlement_id ORDER BY c.settlement_id) AS component_settlements,
           sum(c.amount) AS component_amount,
           sum(c.line_fund) AS component_fund,
           any_value(c.package_amount) AS package_amount
    FROM component_lines AS c
    GROUP BY c.patient_id, c.institution_id, c.service_date, c.package_code
)
SELECT
    concat_ws('|', patient_id, institution_id, package_code, CAST(service_date AS VARCHAR)) AS finding_key,
    'settlement' AS entity_type,
    package_settlement_id AS entity_id,
    institution_id,
    patient_id,
    doctor_id,
    list_sort(list_distinct(list_concat([package_settlement_id], component_settlements))) AS settlement_ids,
    (1 + n_component_lines) * (CASE WHEN component_amount > package_amount THEN 1.5 ELSE 1.0 END) AS score,
    component_fund AS amount_at_risk,
    format('Package {} ({}) billed on {} together with {} separately charged component line(s) it already includes ({}), worth {}.',
           package_code, package_name, CAST(service_date AS VARCHAR), n_component_lines,
           array_to_string(components, ', '), round(component_amount, 2)) AS reason,
    CAST(json_object('package_code', package_code, 'service_date', service_date,
                     'package_amount', package_amount, 'components', components,
                     'n_component_lines', n_component_lines, 'component_amount', component_amount,
                     'component_fund', component_fund) AS VARCHAR) AS evidence
FROM unbundled
