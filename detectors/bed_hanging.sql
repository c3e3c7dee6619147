/*---
id: bed_hanging
name_en: Bed-hanging (bed and nursing billed without treatment)
name_zh: 挂床住院
family: model
judgement: suspicious
entity_type: settlement
severity: 4
params:
  grace_days:
    default: 3
    description: first days of a stay never counted idle (admission work-up, a patient settling in; the days a bed-hanging stay spends its few real items)
  min_care_share_of_day:
    default: 0.15
    description: care billed on a day below this share of that day's bed, nursing and fee counts as none (a single tablet or a finger-prick test does not make a treated day); a course of medicine covering the day always counts
  min_idle_days:
    default: 5
    description: idle days (bed, daily nursing and fees only) a stay needs to be reported; fewer is a weekend or a wait for a report, not a stay kept open to bill beds
  min_idle_share:
    default: 0.7
    description: share of the days after the grace period that are idle; below it the patient is still being treated most days
  min_idle_run:
    default: 7
    description: consecutive idle nights that are reported whatever the share (a week on the ward with nothing given after the treatment ended, 压床), unless the diagnosis's stays elsewhere are mostly idle
  min_peer_gap:
    default: 0.3
    description: how far the stay's idle share must exceed that of the same diagnosis category at other institutions (when they have min_peer_stays stays), so a diagnosis whose patients honestly rest in bed is judged against its own kind
  min_peer_stays:
    default: 20
    description: stays of the diagnosis category at other institutions needed before their idle share is trusted as a baseline
  exempt_dx:
    default: [Z51.5]
    description: primary or secondary diagnoses whose care is mostly bed and nursing by nature (Z51.5 palliative care)
  exempt_death_in_stay:
    default: true
    description: a stay that ends with the patient's death is end-of-life care, not a patient kept in bed to bill it
reads: [stays, lines, claims]
scheme: |
  The hospital keeps a patient (often one who is barely ill, or not there at all) on the
  ward and bills a bed, daily nursing and the daily inpatient fee night after night while
  treatment has stopped: after the first days (some tests and drugs on admission) come
  days with no drug, test, examination, treatment or operation, sometimes dotted with a
  cheap item to look active.
score: |
  Per stay, days are the billed nights with a bed, daily-nursing or daily-fee line. A day
  is idle when no course of medicine covers it (a drug or herbal medicine dispensed
  with days_supply d covers its service date and the d - 1 days after) and the care
  billed on it (drugs, exams, labs, treatments, operations, hourly nursing) is below
  min_care_share_of_day of its bed, nursing and fee money: none at all, or a token item.
  Days before grace_days after admission, and days up to the stay's last operation (a
  pre-surgery wait), are not assessed. Reported at min_idle_days idle days making
  min_idle_share of the assessed days, or at a stretch of min_idle_run consecutive idle
  nights. Score =
  idle share x ln(1 + idle days) + max(0, idle share - peers' idle share), where peers
  are the stays of the same diagnosis category (first three characters) at other
  institutions. amount_at_risk = the fund money of the idle days' bed, nursing and fee
  lines.
false_positives: |
  Palliative care (exempt_dx), end-of-life stays (exempt_death_in_stay) and patients
  waiting for an operation (days before the operation are not assessed). Rehabilitation
  or long-term care wards whose daily therapy is billed as a package the catalog calls a
  fee; patients waiting for a bed in a nursing home after their treatment ended (a
  discharge-planning failure, still worth a look, but not fraud).
---*/
WITH stay AS (
    SELECT s.settlement_id, s.patient_id, s.institution_id, s.doctor_id, s.admit_date,
           s.discharge_date, s.los_days, s.primary_dx, s.secondary_dx, s.dx_category,
           s.fund_paid, c.death_date
    FROM stays AS s
    LEFT JOIN (SELECT settlement_id, death_date FROM claims
               WHERE visit_type = 'inpatient' AND death_date IS NOT NULL) AS c USING (settlement_id)
),
stay_lines AS (
    SELECT l.settlement_id, l.service_date, l.item_category, l.amount, l.line_fund,
           l.days_supply, l.hours_per_unit, l.item_code
    FROM lines AS l
    WHERE l.visit_type = 'inpatient'
),
hotel_days AS (
    -- the billed nights inside the stay: days with a bed, daily nursing or daily fee line
    SELECT l.settlement_id, l.service_date AS day,
           sum(l.line_fund) AS hotel_fund, sum(l.amount) AS hotel_amount
    FROM stay_lines AS l
    JOIN stay AS s USING (settlement_id)
    WHERE (l.item_category IN ('bed', 'other')
           OR (l.item_category = 'nursing' AND l.hours_per_unit IS NULL))
      AND l.service_date >= s.admit_date
      AND l.service_date < greatest(s.discharge_date, s.admit_date + 1)
    GROUP BY l.settlement_id, l.service_date
),
care_lines AS (
    -- what counts as treatment: medicines, tests, examinations, treatments, operations
    -- and hourly (special) nursing; a drug's days_supply is capped at the stay's length
    SELECT l.settlement_id, l.service_date, l.item_category, l.amount,
           CASE WHEN l.item_category IN ('drug', 'herbal')
                THEN least(greatest(coalesce(l.days_supply, 1), 1), s.los_days + 1) ELSE 1 END AS cover_days
    FROM stay_lines AS l
    JOIN stay AS s USING (settlement_id)
    WHERE l.item_category IN ('drug', 'herbal', 'exam', 'lab', 'treatment', 'surgery')
       OR (l.item_category = 'nursing' AND l.hours_per_unit IS NOT NULL)
),
care_days AS (
    -- care billed per day; a course of medicine (days_supply of 2 or more) covers every
    -- day it lasts whatever it costs, an item of one day must be worth something
    SELECT settlement_id, day, sum(care_amount) AS care_amount, bool_or(course) AS on_course
    FROM (SELECT settlement_id, service_date AS day, amount AS care_amount, false AS course
          FROM care_lines WHERE cover_days = 1
          UNION ALL
          SELECT settlement_id, CAST(service_date + to_days(CAST(k AS INTEGER)) AS DATE), amount / cover_days, true
          FROM (SELECT settlement_id, service_date, amount, cover_days, unnest(range(cover_days)) AS k
                FROM care_lines WHERE cover_days > 1))
    GROUP BY settlement_id, day
),
last_surgery AS (
    SELECT settlement_id, max(service_date) AS last_surgery_date
    FROM care_lines
    WHERE item_category = 'surgery'
    GROUP BY settlement_id
),
assessed AS (
    -- billed nights after the grace period and after the last operation
    SELECT h.settlement_id, h.day, h.hotel_fund, h.hotel_amount,
           coalesce(c.care_amount, 0) AS care_amount,
           c.day IS NULL OR (NOT c.on_course AND c.care_amount < $min_care_share_of_day * h.hotel_amount) AS idle
    FROM hotel_days AS h
    JOIN stay AS s USING (settlement_id)
    LEFT JOIN last_surgery AS o USING (settlement_id)
    LEFT JOIN care_days AS c ON c.settlement_id = h.settlement_id AND c.day = h.day
    WHERE h.day >= s.admit_date + to_days(CAST($grace_days AS INTEGER))
      AND (o.last_surgery_date IS NULL OR h.day > o.last_surgery_date)
),
idle_runs AS (
    -- consecutive idle nights (gaps and islands): the longest stretch after treatment stopped
    SELECT settlement_id, max(run_days) AS longest_idle_run
    FROM (SELECT settlement_id, count(*) AS run_days
          FROM (SELECT settlement_id, day,
                       date_diff('day', DATE '2000-01-01', day)
                           - row_number() OVER (PARTITION BY settlement_id ORDER BY day) AS island
                FROM assessed WHERE idle)
          GROUP BY settlement_id, island)
    GROUP BY settlement_id
),
per_stay AS (
    SELECT settlement_id,
           count(*) AS assessed_days,
           count(*) FILTER (WHERE idle) AS idle_days,
           coalesce(sum(hotel_fund) FILTER (WHERE idle), 0) AS idle_fund,
           coalesce(sum(hotel_amount) FILTER (WHERE idle), 0) AS idle_amount,
           min(day) FILTER (WHERE idle) AS first_idle_day,
           max(day) FILTER (WHERE idle) AS last_idle_day
    FROM assessed
    GROUP BY settlement_id
),
care_counts AS (
    -- how much treatment the stay had at all, on the first days and after them
    SELECT c.settlement_id,
           count(*) FILTER (WHERE c.service_date < s.admit_date + to_days(CAST($grace_days AS INTEGER))) AS early_care_lines,
           count(*) FILTER (WHERE c.service_date >= s.admit_date + to_days(CAST($grace_days AS INTEGER))) AS later_care_lines,
           coalesce(sum(c.amount) FILTER (WHERE c.service_date >= s.admit_date + to_days(CAST($grace_days AS INTEGER))), 0) AS later_care_amount
    FROM care_lines AS c
    JOIN stay AS s USING (settlement_id)
    GROUP BY c.settlement_id
),
measured AS (
    SELECT s.*, p.assessed_days, p.idle_days, p.idle_fund, p.idle_amount,
           p.first_idle_day, p.last_idle_day,
           p.idle_days / p.assessed_days AS idle_share,
           coalesce(r.longest_idle_run, 0) AS longest_idle_run,
           coalesce(cc.early_care_lines, 0) AS early_care_lines,
           coalesce(cc.later_care_lines, 0) AS later_care_lines,
           coalesce(cc.later_care_amount, 0) AS later_care_amount,
           o.last_surgery_date
    FROM stay AS s
    JOIN per_stay AS p USING (settlement_id)
    LEFT JOIN idle_runs AS r USING (settlement_id)
    LEFT JOIN care_counts AS cc USING (settlement_id)
    LEFT JOIN last_surgery AS o USING (settlement_id)
),
peer_inst AS (
    SELECT dx_category, institution_id, count(*) AS n_stays,
           sum(idle_days) AS idle_days, sum(assessed_days) AS assessed_days
    FROM measured
    GROUP BY dx_category, institution_id
),
peer_all AS (
    SELECT dx_category, sum(n_stays) AS n_stays, sum(idle_days) AS idle_days,
           sum(assessed_days) AS assessed_days
    FROM peer_inst
    GROUP BY dx_category
),
peers AS (
    -- the diagnosis category at the other institutions (a culprit's own stays cannot set
    -- its baseline)
    SELECT i.dx_category, i.institution_id,
           a.n_stays - i.n_stays AS peer_stays,
           (a.idle_days - i.idle_days) / nullif(a.assessed_days - i.assessed_days, 0) AS peer_idle_share
    FROM peer_inst AS i
    JOIN peer_all AS a USING (dx_category)
),
reported AS (
    SELECT m.*, p.peer_stays, p.peer_idle_share,
           m.idle_share * ln(1 + m.idle_days)
               + greatest(m.idle_share - coalesce(p.peer_idle_share, 0), 0) AS score
    FROM measured AS m
    LEFT JOIN peers AS p ON p.dx_category IS NOT DISTINCT FROM m.dx_category AND p.institution_id = m.institution_id
    WHERE ((m.idle_days >= $min_idle_days AND m.idle_share >= $min_idle_share
            AND (p.peer_stays IS NULL OR p.peer_stays < $min_peer_stays OR p.peer_idle_share IS NULL
                 OR m.idle_share - p.peer_idle_share >= $min_peer_gap))
           -- or a long stretch of nothing, in a diagnosis whose stays are not mostly idle
           OR (m.longest_idle_run >= $min_idle_run
               AND (p.peer_stays IS NULL OR p.peer_stays < $min_peer_stays OR p.peer_idle_share IS NULL
                    OR p.peer_idle_share < 1 - $min_idle_share)))
      AND NOT list_contains(CAST($exempt_dx AS VARCHAR[]), m.primary_dx)
      AND len(list_intersect(coalesce(m.secondary_dx, []), CAST($exempt_dx AS VARCHAR[]))) = 0
      AND NOT ($exempt_death_in_stay AND m.death_date IS NOT NULL
               AND m.death_date BETWEEN m.admit_date AND coalesce(m.discharge_date, m.admit_date) + 1)
)
SELECT
    settlement_id AS finding_key,
    'settlement' AS entity_type,
    settlement_id AS entity_id,
    institution_id,
    patient_id,
    doctor_id,
    [settlement_id] AS settlement_ids,
    score,
    idle_fund AS amount_at_risk,
    format('Stay {} ({} to {}, {} day(s), {}) billed bed, nursing and fees with no drug, test or treatment (or only a token item) on {} of its {} assessed days ({}%, at most {} in a row){}{}.',
           settlement_id, CAST(admit_date AS VARCHAR), CAST(discharge_date AS VARCHAR), los_days,
           coalesce(primary_dx, 'no diagnosis'), idle_days, assessed_days, round(100 * idle_share),
           longest_idle_run,
           CASE WHEN later_care_lines = 0
                THEN format(' after {} care item(s) on the first {} days', early_care_lines, $grace_days)
                ELSE format('; {} care item(s) after the first {} days', later_care_lines, $grace_days) END,
           CASE WHEN peer_idle_share IS NOT NULL AND peer_stays >= $min_peer_stays
                THEN format(' (same diagnosis elsewhere: {}% idle)', round(100 * peer_idle_share))
                ELSE '' END) AS reason,
    CAST(json_object(
        'admit_date', admit_date, 'discharge_date', discharge_date, 'los_days', los_days,
        'primary_dx', primary_dx, 'assessed_days', assessed_days, 'idle_days', idle_days,
        'idle_share', round(idle_share, 3), 'longest_idle_run', longest_idle_run,
        'first_idle_day', first_idle_day,
        'last_idle_day', last_idle_day, 'idle_bed_nursing_fee_amount', idle_amount,
        'idle_bed_nursing_fee_fund', idle_fund, 'early_care_lines', early_care_lines,
        'later_care_lines', later_care_lines, 'later_care_amount', later_care_amount,
        'last_surgery_date', last_surgery_date, 'peer_stays', peer_stays,
        'peer_idle_share', round(peer_idle_share, 3), 'grace_days', $grace_days) AS VARCHAR) AS evidence
FROM reported
