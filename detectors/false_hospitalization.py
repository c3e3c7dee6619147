"""
---
id: false_hospitalization
name_en: False hospitalisation
name_zh: 虚假住院
family: model
judgement: suspicious
entity_type: settlement
severity: 4
params:
  min_score:
    default: 4.0
    description: weighted evidence a stay needs to be reported
  min_core:
    default: 1.0
    description: of which at least this much from the strong signs (template items, batch admission from one address, bed-hanging, admission-day spike)
  batch_window_days:
    default: 1
    description: admissions this many days apart or closer count as one batch
  prior_contact_days:
    default: 30
    description: an outpatient contact at the institution this many days before admission counts as a normal referral
  min_template_items:
    default: 5
    description: item lists shorter than this are too generic to call a template
  elderly_age:
    default: 65
    description: age from which a patient counts as elderly
  ring_min_score:
    default: 3.0
    description: weaker evidence that is reported when the patient shares an address or phone with a stay reported at the same hospital and that hospital has a ring (a recruit of the same villages)
  min_institution_stays:
    default: 3
    description: reported stays an institution needs for a roll-up finding of its own and for its patients to be published as a ring
reads: [stays, lines, claims]
scheme: |
  Patients (often elderly, recruited from a few villages or one address, sometimes
  paid) are admitted on paper or kept in bed without treatment (挂床, bed-hanging) so the
  institution can bill the fund: admissions come in batches on the same days, the
  patients had no outpatient contact before, the item lists are copied from a template
  (near-identical across stays), lengths of stay are uniform, diagnoses are mild ones
  usually treated as outpatients, and bed and nursing make up most of the bill.
score: |
  Weighted evidence per stay, each term in [0, 1] and named in the evidence JSON:
  2 x template (soft count of other stays at the institution whose item set has a MinHash
  Jaccard near 1: mean co-bucket count over 4 bands of 8 hashes, full at 3),
  2 x batch (other stays admitted there within batch_window_days by people sharing the
  patient's address or phone, full at 2; or else, at three quarters, by people of the
  patient's home region beyond what the institution's usual catchment would bring, full
  at 4 more than expected and at least twice the expected), 1 x admission-day spike
  (admissions that day / the institution's median admissions per day, from 2x to 5x),
  1.5 x bed-hanging (share of the stay's days with no drug, test, treatment or material
  at all, from 30 % to 80 %), 1 x uniform
  length of stay (of the other admissions there within batch_window_days, the share with
  exactly this length of stay, from 30 % to 80 %, at least 2 of them), 1 x mild diagnosis (share of the diagnosis category's settlements
  that are outpatient, from 50 % to 90 %), 0.5 x elderly, 0.5 x no outpatient contact at
  the institution in the prior_contact_days before. Reported at min_score with at least
  min_core from the strong signs. An institution with min_institution_stays reported
  stays gets a roll-up finding: score = mean stay score + ln(reported stays), and is
  published in rings.parquet with the patients of its reported stays (the recruits):
  ring FH-<institution id>, ring_score = the roll-up score. At such a hospital a stay
  with at least ring_min_score (and min_core) is reported too when its patient shares an
  address or phone with a reported stay there.
false_positives: |
  A genuinely busy tertiary hospital admits many patients every day with standard
  clinical pathways: its admissions do not spike against its own median and its item
  lists vary. Family members admitted together after one accident share an address;
  long-stay rehabilitation wards are bed-heavy. A legitimate transfer between hospitals
  has no prior outpatient contact at the second one.
---
"""
from __future__ import annotations


SCORED_SQL = """
CREATE OR REPLACE TEMP TABLE _fh_scored AS
WITH stay AS (
    SELECT settlement_id, patient_id, institution_id, doctor_id, admit_date, discharge_date,
           los_days, primary_dx, dx_category, fund_paid, total_amount, age,
           address_hash, phone_hash, home_region
    FROM stays
),
item_hashes AS MATERIALIZED (
    -- the 32 MinHash hashes (seed = hash number) of every inpatient item code: a few
    -- thousand codes, so each line only looks its hashes up
    SELECT item_code,
           hash(item_code, CAST(0 AS BIGINT)) AS h0, hash(item_code, CAST(1 AS BIGINT)) AS h1, hash(item_code, CAST(2 AS BIGINT)) AS h2, hash(item_code, CAST(3 AS BIGINT)) AS h3,
           hash(item_code, CAST(4 AS BIGINT)) AS h4, hash(item_code, CAST(5 AS BIGINT)) AS h5, hash(item_code, CAST(6 AS BIGINT)) AS h6, hash(item_code, CAST(7 AS BIGINT)) AS h7,
           hash(item_code, CAST(8 AS BIGINT)) AS h8, hash(item_code, CAST(9 AS BIGINT)) AS h9, hash(item_code, CAST(10 AS BIGINT)) AS h10, hash(item_code, CAST(11 AS BIGINT)) AS h11,
           hash(item_code, CAST(12 AS BIGINT)) AS h12, hash(item_code, CAST(13 AS BIGINT)) AS h13, hash(item_code, CAST(14 AS BIGINT)) AS h14, hash(item_code, CAST(15 AS BIGINT)) AS h15,
           hash(item_code, CAST(16 AS BIGINT)) AS h16, hash(item_code, CAST(17 AS BIGINT)) AS h17, hash(item_code, CAST(18 AS BIGINT)) AS h18, hash(item_code, CAST(19 AS BIGINT)) AS h19,
           hash(item_code, CAST(20 AS BIGINT)) AS h20, hash(item_code, CAST(21 AS BIGINT)) AS h21, hash(item_code, CAST(22 AS BIGINT)) AS h22, hash(item_code, CAST(23 AS BIGINT)) AS h23,
           hash(item_code, CAST(24 AS BIGINT)) AS h24, hash(item_code, CAST(25 AS BIGINT)) AS h25, hash(item_code, CAST(26 AS BIGINT)) AS h26, hash(item_code, CAST(27 AS BIGINT)) AS h27,
           hash(item_code, CAST(28 AS BIGINT)) AS h28, hash(item_code, CAST(29 AS BIGINT)) AS h29, hash(item_code, CAST(30 AS BIGINT)) AS h30, hash(item_code, CAST(31 AS BIGINT)) AS h31
    FROM (SELECT DISTINCT item_code FROM lines WHERE visit_type = 'inpatient')
),
stay_items AS (
    -- one row per stay and item code
    SELECT settlement_id, item_code, sum(amount) AS amount,
           sum(amount) FILTER (WHERE item_category IN ('bed', 'nursing')) AS hotel_amount
    FROM lines
    WHERE visit_type = 'inpatient'
    GROUP BY settlement_id, item_code
),
active AS (
    -- days on which anything beyond bed, nursing and fees was given
    SELECT settlement_id, count(DISTINCT service_date) AS active_days
    FROM lines
    WHERE visit_type = 'inpatient'
      AND item_category IN ('drug', 'herbal', 'exam', 'lab', 'treatment', 'surgery', 'material')
    GROUP BY settlement_id
),
item_sets AS (
    -- the item list's size, money and active days, and the 32 MinHash values of the
    -- stay's item-code set (min over its items of hash(item_code, k), k = 0..31)
    SELECT i.settlement_id,
           count(*) AS n_items,
           sum(i.amount) AS amount,
           sum(i.hotel_amount) AS hotel_amount,
           coalesce(any_value(a.active_days), 0) AS active_days,
           min(h.h0) AS m0, min(h.h1) AS m1, min(h.h2) AS m2, min(h.h3) AS m3,
           min(h.h4) AS m4, min(h.h5) AS m5, min(h.h6) AS m6, min(h.h7) AS m7,
           min(h.h8) AS m8, min(h.h9) AS m9, min(h.h10) AS m10, min(h.h11) AS m11,
           min(h.h12) AS m12, min(h.h13) AS m13, min(h.h14) AS m14, min(h.h15) AS m15,
           min(h.h16) AS m16, min(h.h17) AS m17, min(h.h18) AS m18, min(h.h19) AS m19,
           min(h.h20) AS m20, min(h.h21) AS m21, min(h.h22) AS m22, min(h.h23) AS m23,
           min(h.h24) AS m24, min(h.h25) AS m25, min(h.h26) AS m26, min(h.h27) AS m27,
           min(h.h28) AS m28, min(h.h29) AS m29, min(h.h30) AS m30, min(h.h31) AS m31
    FROM stay_items AS i
    JOIN item_hashes AS h USING (item_code)
    LEFT JOIN active AS a USING (settlement_id)
    GROUP BY i.settlement_id
),
bands AS (
    -- 4 bands of 8 hashes: two stays share a band with probability ~ Jaccard^8
    SELECT settlement_id, 0 AS band, hash([m0, m1, m2, m3, m4, m5, m6, m7]) AS band_sig FROM item_sets
    UNION ALL
    SELECT settlement_id, 1 AS band, hash([m8, m9, m10, m11, m12, m13, m14, m15]) AS band_sig FROM item_sets
    UNION ALL
    SELECT settlement_id, 2 AS band, hash([m16, m17, m18, m19, m20, m21, m22, m23]) AS band_sig FROM item_sets
    UNION ALL
    SELECT settlement_id, 3 AS band, hash([m24, m25, m26, m27, m28, m29, m30, m31]) AS band_sig FROM item_sets
),
band_buckets AS (
    SELECT s.institution_id, b.settlement_id, b.band,
           count(*) OVER (PARTITION BY s.institution_id, b.band, b.band_sig) - 1 AS co_bucket
    FROM bands AS b
    JOIN stay AS s USING (settlement_id)
    JOIN item_sets AS t USING (settlement_id)
    WHERE t.n_items >= $min_template_items
),
template AS (
    SELECT settlement_id, avg(co_bucket) AS template_neighbours
    FROM band_buckets
    GROUP BY settlement_id
),
batch_contact AS (
    -- other admissions at the institution around the same day from the same address or
    -- phone, and how many admissions around that day share this stay's length (windows,
    -- not self-joins: a big hospital has thousands of stays)
    SELECT settlement_id,
           CASE WHEN address_hash IS NULL THEN 0 ELSE count(*) OVER (
               PARTITION BY institution_id, address_hash ORDER BY admit_date
               RANGE BETWEEN $batch_window_days PRECEDING AND $batch_window_days FOLLOWING) - 1 END AS address_mates,
           CASE WHEN phone_hash IS NULL THEN 0 ELSE count(*) OVER (
               PARTITION BY institution_id, phone_hash ORDER BY admit_date
               RANGE BETWEEN $batch_window_days PRECEDING AND $batch_window_days FOLLOWING) - 1 END AS phone_mates,
           count(*) OVER (
               PARTITION BY institution_id ORDER BY admit_date
               RANGE BETWEEN $batch_window_days PRECEDING AND $batch_window_days FOLLOWING) - 1 AS cohort,
           count(*) OVER (
               PARTITION BY institution_id, los_days ORDER BY admit_date
               RANGE BETWEEN $batch_window_days PRECEDING AND $batch_window_days FOLLOWING) - 1 AS same_los_mates,
           count(*) OVER (
               PARTITION BY institution_id, home_region ORDER BY admit_date
               RANGE BETWEEN $batch_window_days PRECEDING AND $batch_window_days FOLLOWING) - 1 AS region_mates
    FROM stay
),
region_share AS (
    -- where the institution's patients usually come from (all its patients, not only the
    -- admitted ones, so a batch of admissions cannot make its own catchment)
    -- (institutions that admit only: the others' shares are never looked up)
    SELECT institution_id, home_region, n_patients / sum(n_patients) OVER (PARTITION BY institution_id) AS share
    FROM (SELECT institution_id, home_region, count(*) AS n_patients
          FROM (SELECT DISTINCT institution_id, home_region, patient_id
                FROM claims
                SEMI JOIN (SELECT DISTINCT institution_id FROM stay) AS i USING (institution_id))
          GROUP BY institution_id, home_region)
),
daily AS (
    SELECT institution_id, admit_date, count(*) AS n_admissions
    FROM stay
    GROUP BY institution_id, admit_date
),
daily_baseline AS (
    SELECT institution_id, median(n_admissions) AS median_daily, count(*) AS admission_days
    FROM daily
    GROUP BY institution_id
),
institution_stays AS (
    SELECT institution_id, count(*) AS n_stays FROM stay GROUP BY institution_id
),
dx_mildness AS (
    -- a diagnosis category mostly settled as outpatient care is a mild one
    SELECT left(primary_dx, 3) AS dx_category,
           avg(CASE WHEN visit_type = 'outpatient' THEN 1.0 ELSE 0.0 END) AS outpatient_share
    FROM claims
    WHERE primary_dx IS NOT NULL AND visit_type <> 'pharmacy'
    GROUP BY left(primary_dx, 3)
),
prior_contact AS (
    SELECT s.settlement_id
    FROM stay AS s
    SEMI JOIN claims AS c
      ON c.patient_id = s.patient_id AND c.institution_id = s.institution_id
     AND c.visit_type = 'outpatient'
     AND c.admit_date BETWEEN s.admit_date - to_days(CAST($prior_contact_days AS INTEGER)) AND s.admit_date
),
features AS (
    SELECT s.*,
           coalesce(t.template_neighbours, 0) AS template_neighbours,
           greatest(bc.address_mates, bc.phone_mates) AS batch_mates,
           bc.cohort, bc.same_los_mates, bc.region_mates,
           -- admissions around that day from the patient's home region beyond what the
           -- institution's usual catchment would bring (a village admitted in a batch)
           bc.region_mates - bc.cohort * coalesce(rs.share, 0) AS region_excess, rs.share AS rs_share,
           d.n_admissions AS admissions_that_day, db.median_daily,
           coalesce(it.hotel_amount, 0) / nullif(it.amount, 0) AS hotel_share,
           greatest(1 - coalesce(it.active_days, 0) / s.los_days, 0) AS idle_share,
           it.n_items,
           m.n_stays AS institution_stays,
           dm.outpatient_share AS dx_outpatient_share,
           pc.settlement_id IS NOT NULL AS had_prior_contact
    FROM stay AS s
    LEFT JOIN template AS t USING (settlement_id)
    LEFT JOIN batch_contact AS bc USING (settlement_id)
    LEFT JOIN daily AS d ON d.institution_id = s.institution_id AND d.admit_date = s.admit_date
    LEFT JOIN daily_baseline AS db ON db.institution_id = s.institution_id
    LEFT JOIN item_sets AS it USING (settlement_id)
    LEFT JOIN institution_stays AS m ON m.institution_id = s.institution_id
    LEFT JOIN region_share AS rs ON rs.institution_id = s.institution_id AND rs.home_region = s.home_region
    LEFT JOIN dx_mildness AS dm ON dm.dx_category = s.dx_category
    LEFT JOIN prior_contact AS pc USING (settlement_id)
),
terms AS (
    SELECT *,
           2.0 * least(template_neighbours / 3.0, 1) AS t_template,
           -- a batch from one address/phone (full at 2 others), or else from one home region
           -- well beyond the catchment (full at 4 more than expected, counted three quarters)
           2.0 * greatest(least(batch_mates / 2.0, 1),
                          0.75 * CASE WHEN region_mates >= 3 AND region_mates >= 2 * cohort * coalesce(rs_share, 0)
                                      THEN least(region_excess / 4.0, 1) ELSE 0 END) AS t_batch,
           1.0 * CASE WHEN admissions_that_day >= 4
                      THEN least(greatest((admissions_that_day / greatest(median_daily, 1) - 2) / 3.0, 0), 1)
                      ELSE 0 END AS t_spike,
           1.5 * least(greatest((idle_share - 0.3) / 0.5, 0), 1) AS t_bed_hanging,
           1.0 * CASE WHEN same_los_mates >= 2
                      THEN least(greatest((same_los_mates / cohort - 0.3) / 0.5, 0), 1) ELSE 0 END AS t_uniform_los,
           1.0 * least(greatest((coalesce(dx_outpatient_share, 0) - 0.5) / 0.4, 0), 1) AS t_mild_dx,
           0.5 * CASE WHEN age >= $elderly_age THEN 1 ELSE 0 END AS t_elderly,
           0.5 * CASE WHEN had_prior_contact THEN 0 ELSE 1 END AS t_no_prior_contact
    FROM features
),
scored AS (
    SELECT *,
           t_template + t_batch + t_spike + t_bed_hanging AS core,
           t_template + t_batch + t_spike + t_bed_hanging + t_uniform_los + t_mild_dx
               + t_elderly + t_no_prior_contact AS score
    FROM terms
)
SELECT * FROM scored
    WHERE score >= least($min_score, $ring_min_score) AND core >= $min_core
"""

#: the stays reported: strong evidence, or weaker evidence from a patient who shares an
#: address or phone with a strongly reported stay at the same hospital when that hospital
#: has a ring (min_institution_stays strong stays): a recruit of the same batch villages
REPORTED_SQL = """
CREATE OR REPLACE TEMP TABLE _fh_reported AS
WITH strong AS (
    SELECT * FROM _fh_scored WHERE score >= $min_score
),
ring_institutions AS (
    SELECT institution_id FROM strong GROUP BY institution_id HAVING count(*) >= $min_institution_stays
),
linked AS (
    SELECT w.* FROM _fh_scored AS w
    SEMI JOIN ring_institutions AS r USING (institution_id)
    WHERE w.score < $min_score
      AND EXISTS (SELECT 1 FROM strong AS s
                  WHERE s.institution_id = w.institution_id AND s.patient_id <> w.patient_id
                    AND (s.address_hash = w.address_hash OR s.phone_hash = w.phone_hash))
)
SELECT *, false AS via_ring FROM strong
UNION ALL
SELECT *, true AS via_ring FROM linked
"""

FINDINGS_SQL = """
WITH reported AS (SELECT * FROM _fh_reported),
stay_findings AS (
    SELECT
        settlement_id AS finding_key,
        'settlement' AS entity_type,
        settlement_id AS entity_id,
        institution_id, patient_id, doctor_id,
        [settlement_id] AS settlement_ids,
        score,
        fund_paid AS amount_at_risk,
        concat(format('Stay {} ({} day(s), {}) looks fabricated or bed-hanging: ', settlement_id, los_days, primary_dx),
               concat_ws(', ',
                   CASE WHEN t_template > 0.5 THEN format('item list nearly identical to ~{} other stays', round(template_neighbours, 1)) END,
                   CASE WHEN batch_mates > 0 AND t_batch > 0 THEN format('admitted with {} other(s) from the same address/phone', batch_mates) END,
                   CASE WHEN batch_mates = 0 AND t_batch > 0 THEN format('admitted with {} other(s) from home region {} (about {} expected)', region_mates, home_region, round(cohort * coalesce(rs_share, 0), 1)) END,
                   CASE WHEN t_spike > 0 THEN format('{} admissions that day vs a median of {}', admissions_that_day, median_daily) END,
                   CASE WHEN t_bed_hanging > 0 THEN format('no treatment on {}% of the days (bed and nursing {}% of the bill)', round(100 * idle_share), round(100 * hotel_share)) END,
                   CASE WHEN t_uniform_los > 0 THEN format('same length of stay ({} days) as {} of the {} other admissions around that day', los_days, same_los_mates, cohort) END,
                   CASE WHEN t_mild_dx > 0 THEN format('mild diagnosis ({}% of such cases are outpatient)', round(100 * dx_outpatient_share)) END,
                   CASE WHEN t_elderly > 0 THEN format('patient aged {}', age) END,
                   CASE WHEN t_no_prior_contact > 0 THEN 'no outpatient contact before' END,
                   CASE WHEN via_ring THEN 'shares an address or phone with stays reported at this hospital' END),
               '.') AS reason,
        CAST(json_object(
            'score', round(score, 3),
            'terms', json_object('template', round(t_template, 3), 'batch', round(t_batch, 3),
                                 'admission_spike', round(t_spike, 3), 'bed_hanging', round(t_bed_hanging, 3),
                                 'uniform_los', round(t_uniform_los, 3), 'mild_dx', round(t_mild_dx, 3),
                                 'elderly', t_elderly, 'no_prior_contact', t_no_prior_contact),
            'template_neighbours', round(template_neighbours, 2), 'n_items', n_items,
            'batch_mates', batch_mates, 'region_mates', region_mates,
            'region_mates_expected', round(cohort * coalesce(rs_share, 0), 2), 'admissions_that_day', admissions_that_day,
            'median_daily_admissions', median_daily, 'hotel_share', round(hotel_share, 3),
            'idle_day_share', round(idle_share, 3),
            'los_days', los_days, 'admissions_around', cohort, 'same_los_around', same_los_mates,
            'primary_dx', primary_dx, 'dx_outpatient_share', round(dx_outpatient_share, 3),
            'age', age, 'admit_date', admit_date, 'discharge_date', discharge_date,
            'via_ring', via_ring) AS VARCHAR) AS evidence
    FROM reported
),
institution_rollup AS (
    SELECT
        concat('institution|', institution_id) AS finding_key,
        'institution' AS entity_type,
        institution_id AS entity_id,
        institution_id,
        CAST(NULL AS VARCHAR) AS patient_id,
        CAST(NULL AS VARCHAR) AS doctor_id,
        list(settlement_id ORDER BY settlement_id) AS settlement_ids,
        avg(score) + ln(count(*)) AS score,
        sum(fund_paid) AS amount_at_risk,
        format('{} of {} stays at this institution look fabricated or bed-hanging (mean evidence {}); strongest signs: {}.',
               count(*), any_value(institution_stays), round(avg(score), 2),
               concat_ws(', ',
                   CASE WHEN avg(t_template) > 0.5 THEN 'template item lists' END,
                   CASE WHEN avg(t_batch) > 0.5 THEN 'batch admissions from shared addresses or one home region' END,
                   CASE WHEN avg(t_spike) > 0.3 THEN 'admission-day spikes' END,
                   CASE WHEN avg(t_bed_hanging) > 0.5 THEN 'bed-hanging' END,
                   CASE WHEN avg(t_uniform_los) > 0.3 THEN 'uniform lengths of stay' END,
                   CASE WHEN avg(t_mild_dx) > 0.5 THEN 'mild diagnoses' END)) AS reason,
        CAST(json_object('reported_stays', count(*), 'institution_stays', any_value(institution_stays),
                         'mean_terms', json_object('template', round(avg(t_template), 3),
                                                   'batch', round(avg(t_batch), 3),
                                                   'admission_spike', round(avg(t_spike), 3),
                                                   'bed_hanging', round(avg(t_bed_hanging), 3),
                                                   'uniform_los', round(avg(t_uniform_los), 3),
                                                   'mild_dx', round(avg(t_mild_dx), 3),
                                                   'elderly', round(avg(t_elderly), 3),
                                                   'no_prior_contact', round(avg(t_no_prior_contact), 3)),
                         'fund_paid', sum(fund_paid)) AS VARCHAR) AS evidence
    FROM reported
    GROUP BY institution_id
    HAVING count(*) >= $min_institution_stays
)
SELECT * FROM stay_findings
UNION ALL
SELECT * FROM institution_rollup

"""

#: one ring per institution with min_institution_stays reported stays: the institution and
#: the patients of those stays (the recruits)
RINGS_SQL = """
WITH inst AS (
    SELECT institution_id, avg(score) + ln(count(*)) AS ring_score
    FROM _fh_reported
    GROUP BY institution_id
    HAVING count(*) >= $min_institution_stays
),
members AS (
    SELECT DISTINCT r.institution_id, 'patient' AS member_type, r.patient_id AS member_id
    FROM _fh_reported AS r SEMI JOIN inst USING (institution_id)
    UNION ALL
    SELECT institution_id, 'institution', institution_id FROM inst
)
SELECT concat('FH-', m.institution_id) AS ring_id, m.member_type, m.member_id, i.ring_score,
       CAST(count(*) OVER (PARTITION BY m.institution_id) AS INTEGER) AS n_members
FROM members AS m JOIN inst AS i USING (institution_id)
ORDER BY ring_id, member_type, member_id
"""


def _bind(sql: str, params: dict) -> dict:
    return {k: v for k, v in params.items() if f"${k}" in sql}


def detect(con, params, ctx):
    try:
        con.execute(SCORED_SQL, _bind(SCORED_SQL, params))
        con.execute(REPORTED_SQL, _bind(REPORTED_SQL, params))
        findings = con.sql(FINDINGS_SQL, params=_bind(FINDINGS_SQL, params)).to_arrow_table()
        rings = con.sql(RINGS_SQL, params=_bind(RINGS_SQL, params)).to_arrow_table()
    finally:
        con.execute("DROP TABLE IF EXISTS _fh_scored")
        con.execute("DROP TABLE IF EXISTS _fh_reported")
    return {"findings": findings, "rings": rings}
