-- Ranking: turn tonight's findings into one suspicion score per screened institution.
-- Inputs: raw_findings (every detector's findings file), detector_meta(detector_id,
-- severity, judgement), prior_findings(finding_id, first_seen) from the previous published
-- run, claims (the shared feature), run_context.
--
-- The score, in one line (each part explained where it is computed below):
--   score(institution) = sum over detectors d of
--                          weight(d) * ln(1 + size(i) * sum over its findings f of strength(f) * w(f))
--                        * (1 + min(1, fund at risk / fund paid to the institution))
--   weight(d)   = severity(d), times 0.6 for a `suspicious` (model) detector: a breached
--                 rule is a fact, a model's suspicion is an inference with look-alikes
--   strength(f) = score(f) / the strongest score of detector d tonight       (0..1]
--   w(f)        = 0.5 for findings about a person (patient, ring), else 1, divided by the
--                 number of institutions the findings about the same patient are charged to;
--                 one patient's findings of one detector at one institution count at most
--                 their strongest + 0.5 (evidence counted per patient, not per line)
--   size(i)     = sqrt(median settlements of institutions of its kind / its settlements),
--                 capped to [0.1, 2]: evidence counted as a rate, so a large hospital's many
--                 weak findings do not outrank a small culprit's few flagrant ones
-- Top detectors are listed by their term in the sum. Checked against planted cases with
-- `claimscreen evaluate` (institution average precision, precision@k, top decile).

CREATE OR REPLACE TEMP TABLE ranked_findings AS
SELECT
    f.run_date, f.finding_id,
    coalesce(p.first_seen, f.run_date) AS first_seen,
    f.detector_id, f.entity_type, f.entity_id, f.institution_id, f.patient_id, f.doctor_id,
    f.settlement_ids, f.score, f.amount_at_risk, f.reason, f.evidence
FROM raw_findings AS f
LEFT JOIN prior_findings AS p USING (finding_id);

-- Every institution with at least one effective settlement is screened (score 0 if clean).
CREATE OR REPLACE TEMP TABLE screened AS
SELECT institution_id, any_value(institution_kind) AS kind, count(*) AS n_settlements,
       sum(fund_paid) AS fund_total
FROM claims
GROUP BY institution_id
UNION ALL
SELECT DISTINCT institution_id, NULL, 0, 0
FROM ranked_findings
WHERE institution_id IS NOT NULL
  AND institution_id NOT IN (SELECT institution_id FROM claims);

-- How big an institution is against its peers of the same kind (hospital, clinic,
-- community, pharmacy): the factor its evidence count is scaled by. An institution with
-- findings but no effective settlement tonight gets the cap.
CREATE OR REPLACE TEMP TABLE institution_size AS
WITH medians AS (
    SELECT kind, median(n_settlements) AS median_settlements
    FROM screened WHERE n_settlements > 0
    GROUP BY kind
)
SELECT s.institution_id,
       CASE WHEN s.n_settlements > 0 AND m.median_settlements > 0
            THEN least(2.0, greatest(0.1, sqrt(m.median_settlements / s.n_settlements)))
            ELSE 2.0 END AS size_factor
FROM (SELECT institution_id, any_value(kind) AS kind, sum(n_settlements) AS n_settlements
      FROM screened GROUP BY institution_id) AS s
LEFT JOIN medians AS m ON m.kind IS NOT DISTINCT FROM s.kind;

-- Money at risk counted once per settlement: each finding's amount is spread over its
-- evidence settlements in proportion to their fund payment; per settlement the largest
-- claim on it is kept, capped at what the fund paid for it.
CREATE OR REPLACE TEMP TABLE settlement_risk AS
WITH spread AS (
    SELECT f.institution_id, f.finding_id, f.amount_at_risk, unnest(f.settlement_ids) AS settlement_id
    FROM ranked_findings AS f
    WHERE f.institution_id IS NOT NULL AND len(f.settlement_ids) > 0
),
weighted AS (
    SELECT s.institution_id, s.settlement_id, c.fund_paid,
           s.amount_at_risk * coalesce(c.fund_paid / nullif(sum(c.fund_paid) OVER (PARTITION BY s.finding_id, s.institution_id), 0),
                                       1.0 / count(*) OVER (PARTITION BY s.finding_id, s.institution_id)) AS share
    FROM spread AS s
    LEFT JOIN claims AS c USING (settlement_id)
)
SELECT institution_id, settlement_id,
       CASE WHEN any_value(fund_paid) IS NULL THEN max(share)
            ELSE least(max(share), any_value(fund_paid)) END AS at_risk
FROM weighted
GROUP BY institution_id, settlement_id;

CREATE OR REPLACE TEMP TABLE institution_risk AS
SELECT institution_id, sum(at_risk) AS at_risk
FROM (
    SELECT institution_id, at_risk FROM settlement_risk
    UNION ALL
    -- findings without evidence settlements (peer outliers, rings) count their own amount
    SELECT institution_id, amount_at_risk FROM ranked_findings
    WHERE institution_id IS NOT NULL AND len(coalesce(settlement_ids, [])) = 0
)
GROUP BY institution_id;

-- Each finding's strength is its score relative to the strongest finding of the same
-- detector tonight (0..1]; an institution's evidence from one detector is
-- weight * ln(1 + size * sum of strengths): more findings count, with diminishing
-- returns, so one rule firing a thousand times cannot drown every other signal, and
-- counted against the institution's size, so volume alone does not.
-- A finding about a person (entity patient or ring: card lending, drug resale) says
-- less about the institution that served them than one about its own billing
-- (settlement, doctor, institution): it counts half, so one impostor seen once at a
-- bystander hospital weighs little, while many such patients at one pharmacy add up.
CREATE OR REPLACE TEMP TABLE detector_components AS
WITH spread AS (
    -- the institutions a patient's findings are charged to: a patient who shops around
    -- (doctor shopping, resale, a lent card) leaves findings at several of them, and each
    -- answers for its share only; one that many such patients concentrate on adds up
    SELECT patient_id, count(DISTINCT institution_id) AS n_institutions
    FROM ranked_findings
    WHERE patient_id IS NOT NULL AND institution_id IS NOT NULL
    GROUP BY patient_id
),
finding_strength AS (
    SELECT f.institution_id, f.detector_id, f.patient_id, f.finding_id,
           greatest(f.score, 0) / nullif(max(greatest(f.score, 0)) OVER (PARTITION BY f.detector_id), 0)
               * CASE WHEN f.entity_type IN ('patient', 'ring') THEN 0.5 ELSE 1.0 END
               / coalesce(p.n_institutions, 1) AS s
    FROM ranked_findings AS f
    LEFT JOIN spread AS p USING (patient_id)
    WHERE f.institution_id IS NOT NULL
),
per_detector AS (
    -- evidence counted per patient: one patient's findings of one detector at one
    -- institution add up to at most one strong finding (a single shopper's five
    -- dispensings at a bystander pharmacy are one piece of evidence, not five), while
    -- many patients with findings there add up; findings about no patient count each
    SELECT institution_id, detector_id, patient_id,
           CASE WHEN patient_id IS NULL THEN sum(coalesce(s, 0))
                ELSE least(sum(coalesce(s, 0)), max(coalesce(s, 0)) + 0.5) END AS s,
           count(*) AS n
    FROM finding_strength
    GROUP BY institution_id, detector_id, patient_id, CASE WHEN patient_id IS NULL THEN finding_id END
),
strength AS (
    -- and across detectors: the several rules one patient's claims break at one
    -- institution (a shopper's surplus supply, resale and reused packs) are one story,
    -- scaled so that together they weigh at most its strongest part + 0.5
    SELECT institution_id, detector_id,
           s * CASE WHEN patient_id IS NULL THEN 1.0
                    ELSE least(1.0, (max(s) OVER p + 0.5) / nullif(sum(s) OVER p, 0)) END AS s,
           n
    FROM per_detector
    WINDOW p AS (PARTITION BY institution_id, patient_id)
)
SELECT s.institution_id, s.detector_id,
       m.severity * CASE WHEN m.judgement = 'suspicious' THEN 0.6 ELSE 1.0 END
           * ln(1 + coalesce(any_value(z.size_factor), 2.0) * sum(coalesce(s.s, 0))) AS component,
       sum(s.n) AS n
FROM strength AS s
JOIN detector_meta AS m USING (detector_id)
LEFT JOIN institution_size AS z USING (institution_id)
GROUP BY s.institution_id, s.detector_id, m.severity, m.judgement;

-- The score grows with the share of the institution's fund money at risk (up to 2x).
CREATE OR REPLACE TEMP TABLE ranked_institutions AS
WITH totals AS (
    SELECT institution_id,
           sum(component) AS evidence,
           sum(n) AS n_findings,
           list(detector_id ORDER BY component DESC, detector_id) AS top_detectors
    FROM detector_components
    GROUP BY institution_id
),
scored AS (
    SELECT s.institution_id,
           coalesce(t.evidence, 0)
             * (1 + least(1, coalesce(r.at_risk, 0) / nullif(s.fund_total, 0))) AS score,
           coalesce(r.at_risk, 0) AS amount_at_risk,
           coalesce(t.n_findings, 0) AS n_findings,
           coalesce(t.top_detectors, []) AS top_detectors
    FROM (SELECT institution_id, sum(n_settlements) AS n_settlements, sum(fund_total) AS fund_total
          FROM screened GROUP BY institution_id) AS s
    LEFT JOIN totals AS t USING (institution_id)
    LEFT JOIN institution_risk AS r USING (institution_id)
)
SELECT
    (SELECT run_date FROM run_context) AS run_date,
    institution_id,
    CAST(dense_rank() OVER (ORDER BY round(score, 9) DESC) AS INTEGER) AS rank,
    CAST(score AS DOUBLE) AS score,
    CAST(round(amount_at_risk, 2) AS DECIMAL(14, 2)) AS amount_at_risk,
    CAST(n_findings AS BIGINT) AS n_findings,
    CAST(top_detectors[1:5] AS VARCHAR[]) AS top_detectors
FROM scored
ORDER BY rank, institution_id;
