/*---
id: peer_outlier
name_en: Deviation from peer institutions
name_zh: 同类机构偏离
family: model
judgement: suspicious
entity_type: institution
severity: 3
params:
  z_threshold:
    default: 3.5
    description: robust z-score (median/MAD) from which a metric counts as far from peers
  min_score:
    default: 2.0
    description: evidence needed to report (one metric at z_threshold + 1, or two at z_threshold)
  min_peers:
    default: 5
    description: peers needed in a group; otherwise the next wider group (region -> prefecture -> kind and level)
  min_visits:
    default: 30
    description: settlements an institution needs to be compared
  min_relative_spread:
    default: 0.1
    description: the peer spread (MAD of the log) is taken as at least this relative difference, so identical peers do not make tiny gaps look extreme
  min_doctor_visits:
    default: 30
    description: settlements a doctor needs to be compared
  readmit_days:
    default: 30
    description: a readmission to the same institution within this many days counts
  schedule_min_visits:
    default: 4
    description: outpatient visits of one patient to one institution before they can be a weekly treatment schedule
  schedule_min_weeks:
    default: 3
    description: a weekday is part of a schedule when the patient comes on it in at least this many different weeks
  schedule_share:
    default: 0.8
    description: share of the patient's visits there that must fall on such recurring weekdays
reads: [claims, stays, line_facts, practitioners]
scheme: |
  An institution or a doctor bills far more than comparable ones: higher cost per visit,
  more fund money per patient, a drug or examination share well above peers, long stays,
  frequent readmissions, many visits per patient (induced demand, over-treatment, padded
  bills), or a sudden month-over-month surge in fund money.
score: |
  Each metric is compared with the peers of the same kind, level and region (falling
  back to the prefecture, then to kind and level, when fewer than min_peers), on a log
  scale: robust z = (ln value - peer median of ln) / (1.4826 x peer MAD of ln, at least
  ln(1 + min_relative_spread)); shares and rates get 0.02 added first. Length of stay is
  the entity's median stay; cost per visit (outpatient and pharmacy) and cost per stay are
  separate, so a ward doctor is not compared with a GP; each needs 10 settlements. The
  readmission rate, a rare event, gets a binomial z against the peer rate (at least 2 %)
  instead, so one readmission among a few stays is not an outlier. Only
  higher-than-peer deviations count. Score = sum over metrics of (z - z_threshold + 1)
  for the metrics at or above z_threshold, each capped at 10; reported from min_score
  (with some 600 doctors and 8 metrics, one metric just over the line is expected by
  chance). All metrics are ratios, so a
  big hospital is not punished for its size; the evidence lists every metric, its peer
  median and z.
false_positives: |
  Planned treatment on a weekly calendar (dialysis shifts, rehabilitation groups,
  chemotherapy day cases, a care home on the doctor's rounds) makes many visits per patient
  and costly sessions: a patient whose visits to the institution mostly fall on weekdays
  recurring week after week is left out of cost per visit, fund per patient and visits
  per patient. Specialist centres (oncology, dialysis) differ from the general peers of their level;
  a hospital taking referred severe cases has longer stays and higher cost per visit. A
  surge can be a new department or a seasonal epidemic (check the peers' surge too).
---*/
WITH visits AS (
    SELECT c.settlement_id, c.patient_id, c.institution_id, c.doctor_id, c.visit_type,
           c.admit_date, c.total_amount, c.fund_paid, c.institution_kind, c.institution_level,
           c.institution_region
    FROM claims AS c
),
line_mix AS (
    -- line money per institution and doctor (line_facts carries both): the shares need
    -- only these totals, not one row per settlement (the sums are exact decimals)
    SELECT institution_id, doctor_id,
           sum(amount) AS amount,
           coalesce(sum(amount) FILTER (WHERE item_category IN ('drug', 'herbal')), 0) AS drug_amount,
           coalesce(sum(amount) FILTER (WHERE item_category IN ('exam', 'lab')), 0) AS exam_lab_amount
    FROM line_facts
    GROUP BY institution_id, doctor_id
),
institution_classes AS (
    -- kind and level follow from the institution
    SELECT DISTINCT institution_id, institution_kind, institution_level FROM visits
),
institution_line_mix AS (
    SELECT institution_id, sum(amount) AS amount, sum(drug_amount) AS drug_amount,
           sum(exam_lab_amount) AS exam_lab_amount
    FROM line_mix
    GROUP BY institution_id
),
doctor_line_mix AS (
    SELECT m.doctor_id, k.institution_kind, k.institution_level, sum(m.amount) AS amount,
           sum(m.drug_amount) AS drug_amount, sum(m.exam_lab_amount) AS exam_lab_amount
    FROM line_mix AS m
    JOIN institution_classes AS k USING (institution_id)
    WHERE m.doctor_id IS NOT NULL
    GROUP BY m.doctor_id, k.institution_kind, k.institution_level
),
readmits AS (
    SELECT settlement_id,
           CASE WHEN lead(admit_date) OVER w IS NOT NULL
                 AND date_diff('day', discharge_date, lead(admit_date) OVER w) BETWEEN 0 AND $readmit_days
                THEN 1 ELSE 0 END AS readmitted,
           los_days
    FROM stays
    WINDOW w AS (PARTITION BY patient_id, institution_id ORDER BY admit_date, settlement_id)
),
weekday_use AS (
    -- a patient's outpatient visits to one institution per weekday, and in how many
    -- different weeks that weekday recurs
    SELECT patient_id, institution_id, isodow(admit_date) AS weekday,
           count(*) AS n_visits, count(DISTINCT date_trunc('week', admit_date)) AS n_weeks
    FROM visits
    WHERE visit_type = 'outpatient'
    GROUP BY ALL
),
schedules AS (
    -- planned treatment on a weekly calendar (a dialysis shift, a rehabilitation group, a
    -- care home on the doctor's rounds): most of the patient's visits there fall on
    -- weekdays that recur week after week. Such visits are the plan, not call-backs, and
    -- a session costs what a session costs: they stay out of the per-visit and
    -- per-patient metrics (they still count in the stays and the shares)
    SELECT patient_id, institution_id
    FROM weekday_use
    GROUP BY patient_id, institution_id
    HAVING sum(n_visits) >= $schedule_min_visits
       AND sum(n_visits) FILTER (WHERE n_weeks >= $schedule_min_weeks) >= $schedule_share * sum(n_visits)
),
enriched AS (
    SELECT v.*, r.readmitted, r.los_days, p.specialty,
           v.visit_type = 'outpatient' AND s.patient_id IS NOT NULL AS scheduled
    FROM visits AS v
    LEFT JOIN readmits AS r USING (settlement_id)
    LEFT JOIN practitioners AS p ON p.doctor_id = v.doctor_id
    LEFT JOIN schedules AS s ON s.patient_id = v.patient_id AND s.institution_id = v.institution_id
),
-- one row per (entity, metric): institutions and doctors side by side
institution_visit_metrics AS (
    SELECT 'institution' AS entity_type, institution_id AS entity_id, institution_id,
           concat_ws('|', institution_kind, institution_level, institution_region) AS g1,
           concat_ws('|', institution_kind, institution_level, left(institution_region, 4)) AS g2,
           concat_ws('|', institution_kind, institution_level) AS g3,
           count(*) AS n_visits, count(DISTINCT patient_id) AS n_patients,
           sum(fund_paid) AS fund, sum(total_amount) AS total,
           -- outpatient visits and stays priced separately: a ward doctor is not a costly GP
           CASE WHEN count(*) FILTER (WHERE visit_type <> 'inpatient' AND NOT scheduled) >= 10
                THEN avg(total_amount) FILTER (WHERE visit_type <> 'inpatient' AND NOT scheduled) END AS cost_per_visit,
           CASE WHEN count(*) FILTER (WHERE visit_type = 'inpatient') >= 10
                THEN avg(total_amount) FILTER (WHERE visit_type = 'inpatient') END AS cost_per_stay,
           count(readmitted) AS n_stays, sum(readmitted) AS n_readmitted,
           sum(fund_paid) FILTER (WHERE NOT scheduled)
               / nullif(count(DISTINCT patient_id) FILTER (WHERE NOT scheduled), 0) AS fund_per_patient,
           -- the median stay, so one very long honest stay does not make a doctor an outlier
           CASE WHEN count(los_days) >= 10 THEN median(los_days) END AS length_of_stay,
           CASE WHEN count(readmitted) >= 10 THEN avg(readmitted) END AS readmission_rate,
           count(*) FILTER (WHERE NOT scheduled)
               / nullif(count(DISTINCT patient_id) FILTER (WHERE NOT scheduled), 0) AS visits_per_patient
    FROM enriched
    GROUP BY institution_id, institution_kind, institution_level, institution_region
    HAVING count(*) >= $min_visits
),
institution_metrics AS (
    SELECT i.*,
           coalesce(m.drug_amount, 0) / nullif(coalesce(m.amount, 0), 0) AS drug_share,
           coalesce(m.exam_lab_amount, 0) / nullif(coalesce(m.amount, 0), 0) AS exam_lab_share
    FROM institution_visit_metrics AS i
    LEFT JOIN institution_line_mix AS m USING (institution_id)
),
doctor_visit_metrics AS (
    SELECT 'doctor' AS entity_type, doctor_id AS entity_id, any_value(institution_id) AS institution_id,
           institution_kind, institution_level,
           concat_ws('|', any_value(specialty), institution_kind, institution_level, left(any_value(institution_region), 4)) AS g1,
           concat_ws('|', any_value(specialty), institution_kind, institution_level) AS g2,
           concat_ws('|', institution_kind, institution_level) AS g3,
           count(*) AS n_visits, count(DISTINCT patient_id) AS n_patients,
           sum(fund_paid) AS fund, sum(total_amount) AS total,
           -- outpatient visits and stays priced separately: a ward doctor is not a costly GP
           CASE WHEN count(*) FILTER (WHERE visit_type <> 'inpatient' AND NOT scheduled) >= 10
                THEN avg(total_amount) FILTER (WHERE visit_type <> 'inpatient' AND NOT scheduled) END AS cost_per_visit,
           CASE WHEN count(*) FILTER (WHERE visit_type = 'inpatient') >= 10
                THEN avg(total_amount) FILTER (WHERE visit_type = 'inpatient') END AS cost_per_stay,
           count(readmitted) AS n_stays, sum(readmitted) AS n_readmitted,
           sum(fund_paid) FILTER (WHERE NOT scheduled)
               / nullif(count(DISTINCT patient_id) FILTER (WHERE NOT scheduled), 0) AS fund_per_patient,
           -- the median stay, so one very long honest stay does not make a doctor an outlier
           CASE WHEN count(los_days) >= 10 THEN median(los_days) END AS length_of_stay,
           CASE WHEN count(readmitted) >= 10 THEN avg(readmitted) END AS readmission_rate,
           count(*) FILTER (WHERE NOT scheduled)
               / nullif(count(DISTINCT patient_id) FILTER (WHERE NOT scheduled), 0) AS visits_per_patient
    FROM enriched
    WHERE doctor_id IS NOT NULL
    GROUP BY doctor_id, institution_kind, institution_level
    HAVING count(*) >= $min_doctor_visits
),
doctor_metrics AS (
    SELECT d.* EXCLUDE (institution_kind, institution_level),
           coalesce(m.drug_amount, 0) / nullif(coalesce(m.amount, 0), 0) AS drug_share,
           coalesce(m.exam_lab_amount, 0) / nullif(coalesce(m.amount, 0), 0) AS exam_lab_share
    FROM doctor_visit_metrics AS d
    LEFT JOIN doctor_line_mix AS m
      ON m.doctor_id = d.entity_id AND m.institution_kind IS NOT DISTINCT FROM d.institution_kind
     AND m.institution_level IS NOT DISTINCT FROM d.institution_level
),
monthly AS (
    -- month-over-month growth of fund money per institution
    SELECT institution_id, date_trunc('month', admit_date) AS month, sum(fund_paid) AS fund, count(*) AS n
    FROM visits
    GROUP BY institution_id, date_trunc('month', admit_date)
),
surges AS (
    SELECT institution_id, max(growth) AS fund_growth
    FROM (SELECT institution_id, n,
                 fund / nullif(lag(fund) OVER (PARTITION BY institution_id ORDER BY month), 0) AS growth,
                 lag(n) OVER (PARTITION BY institution_id ORDER BY month) AS prev_n
          FROM monthly)
    WHERE n >= $min_visits AND prev_n >= $min_visits
    GROUP BY institution_id
),
entities AS (
    SELECT i.*, s.fund_growth FROM institution_metrics AS i LEFT JOIN surges AS s USING (institution_id)
    UNION ALL BY NAME
    SELECT d.*, CAST(NULL AS DOUBLE) AS fund_growth FROM doctor_metrics AS d
),
long AS (
    -- metrics compared on a log scale (ratios of money and counts are skewed); shares and
    -- rates get 0.02 added so that a zero does not dominate
    SELECT *,
           ln(greatest(value, 0) + CASE WHEN metric IN ('drug_share', 'exam_lab_share', 'readmission_rate')
                                        THEN 0.02 ELSE 0.01 END) AS log_value
    FROM (UNPIVOT entities
          ON cost_per_visit, cost_per_stay, fund_per_patient, drug_share, exam_lab_share, length_of_stay,
             readmission_rate, visits_per_patient, fund_growth
          INTO NAME metric VALUE value)
),
peer_stats AS (
    SELECT entity_type, metric, level, group_key,
           count(*) AS n_peers, median(value) AS peer_median,
           median(log_value) AS peer_log_median, mad(log_value) AS peer_log_mad
    FROM (SELECT entity_type, metric, value, log_value, 1 AS level, g1 AS group_key FROM long
          UNION ALL SELECT entity_type, metric, value, log_value, 2, g2 FROM long
          UNION ALL SELECT entity_type, metric, value, log_value, 3, g3 FROM long)
    GROUP BY entity_type, metric, level, group_key
),
compared AS (
    -- the finest peer group with enough members (the widest one when none has)
    SELECT l.* EXCLUDE (level, group_key), p.level AS peer_level, p.group_key AS peer_group, p.n_peers, p.peer_median,
           CASE WHEN l.metric = 'readmission_rate'
                -- readmissions are rare events: a binomial z against the peer rate (at least 2 %)
                THEN (l.n_readmitted - l.n_stays * greatest(p.peer_median, 0.02))
                     / sqrt(l.n_stays * greatest(p.peer_median, 0.02) * (1 - greatest(p.peer_median, 0.02)))
                ELSE (l.log_value - p.peer_log_median)
                     / greatest(1.4826 * p.peer_log_mad, ln(1 + $min_relative_spread)) END AS z
    FROM (SELECT *, CASE level WHEN 1 THEN g1 WHEN 2 THEN g2 ELSE g3 END AS group_key
          FROM long, (VALUES (1), (2), (3)) AS levels(level)) AS l
    -- one equi-join on the group of each level (not a join on the metric filtered by a
    -- CASE, which pairs every entity with every group of its metric)
    JOIN peer_stats AS p
      ON p.entity_type = l.entity_type AND p.metric = l.metric
     AND p.level = l.level AND p.group_key = l.group_key
    QUALIFY row_number() OVER (PARTITION BY l.entity_type, l.entity_id, l.metric
                               ORDER BY (p.n_peers >= $min_peers) DESC,
                                        CASE WHEN p.n_peers >= $min_peers THEN p.level ELSE -p.level END) = 1
),
excess AS (
    -- fund money beyond the peer median implied by each flagged metric
    SELECT *,
           z >= $z_threshold AS flagged,
           least(z - $z_threshold + 1, 10) AS contribution,
           greatest(CASE metric
               WHEN 'cost_per_visit' THEN (value - peer_median) / value * fund
               WHEN 'cost_per_stay' THEN (value - peer_median) / value * fund
               WHEN 'fund_per_patient' THEN (value - peer_median) * n_patients
               WHEN 'drug_share' THEN (value - peer_median) * fund
               WHEN 'exam_lab_share' THEN (value - peer_median) * fund
               WHEN 'visits_per_patient' THEN (value - peer_median) / value * fund
               WHEN 'fund_growth' THEN (value - peer_median) / value * fund / 2
               ELSE 0 END, 0) AS excess_fund
    FROM compared
),
per_entity AS (
    SELECT entity_type, entity_id, any_value(institution_id) AS institution_id,
           any_value(n_visits) AS n_visits, any_value(fund) AS fund,
           sum(contribution) FILTER (WHERE flagged) AS score,
           least(max(excess_fund) FILTER (WHERE flagged), any_value(fund)) AS amount_at_risk,
           string_agg(format('{} {} vs peer median {} ({}, z {})', metric,
                             CASE WHEN value < 10 THEN round(value, 3) ELSE round(value, 1) END,
                             CASE WHEN peer_median < 10 THEN round(peer_median, 3) ELSE round(peer_median, 1) END,
                             coalesce(CAST(round(value / nullif(peer_median, 0), 2) AS VARCHAR) || 'x', 'peers at 0'),
                             round(z, 1)), '; ' ORDER BY z DESC)
               FILTER (WHERE flagged) AS flagged_text,
           -- json_group_object(metric, ...) spelled out with the metrics in name order (the
           -- macro's string_agg takes them in whatever order the rows arrive)
           CAST('{' || string_agg(to_json(metric) || ':' ||
                                  to_json(json_object('value', round(value, 4), 'peer_median', round(peer_median, 4),
                                                      'times_peer_median', round(value / nullif(peer_median, 0), 2),
                                                      'z', round(z, 2),
                                                      'n_peers', n_peers, 'peer_group', peer_group,
                                                      'flagged', flagged)),
                                  ',' ORDER BY metric) || '}' AS JSON) AS metrics
    FROM excess
    GROUP BY entity_type, entity_id
    HAVING sum(contribution) FILTER (WHERE flagged) >= $min_score
)
SELECT
    concat(entity_type, '|', entity_id) AS finding_key,
    entity_type,
    entity_id,
    institution_id,
    CAST(NULL AS VARCHAR) AS patient_id,
    CASE WHEN entity_type = 'doctor' THEN entity_id END AS doctor_id,
    CAST([] AS VARCHAR[]) AS settlement_ids,
    score,
    coalesce(amount_at_risk, 0) AS amount_at_risk,
    format('{} {} bills far above comparable peers: {}.',
           CASE WHEN entity_type = 'doctor' THEN 'Doctor' ELSE 'Institution' END, entity_id, flagged_text) AS reason,
    CAST(json_object('n_visits', n_visits, 'fund_paid', fund, 'z_threshold', $z_threshold,
                     'metrics', metrics) AS VARCHAR) AS evidence
FROM per_entity
