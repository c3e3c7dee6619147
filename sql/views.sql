-- Canonical views over the lake, as of one run date.
--
-- Inputs prepared by pipeline.lake before this file runs:
--   raw_settlements, raw_settlement_items, raw_insured_persons, raw_institutions,
--   raw_practitioners, raw_catalog   every landed row, with its extract_date
--   run_context(run_date, shard_index, shard_count)
-- Detectors never read raw_*: they read the views below (or the shared features).

-- Everything delivered up to the run date: a backfill of an old date sees what that
-- night saw, never later extracts.
CREATE OR REPLACE TEMP VIEW settlements_delivered AS
SELECT s.*
FROM raw_settlements AS s, run_context AS rc
WHERE s.extract_date <= rc.run_date
  AND (rc.shard_count = 1 OR hash(s.patient_id) % rc.shard_count = rc.shard_index);

-- Reversal rows (refunds): they cancel the settlement they name.
CREATE OR REPLACE TEMP VIEW reversals AS
SELECT settlement_id, reversal_of, extract_date, settle_date, fund_paid
FROM settlements_delivered
WHERE reversal_of IS NOT NULL;

-- The settlements the fund really paid: no reversal rows, no reversed originals, and a
-- re-delivered id counted once (the first delivery wins).
CREATE OR REPLACE TEMP VIEW settlements AS
WITH originals AS (
    SELECT * EXCLUDE (reversal_of)
    FROM settlements_delivered
    WHERE reversal_of IS NULL
),
deliveries AS (
    SELECT settlement_id, count(*) AS n
    FROM originals
    GROUP BY settlement_id
),
first_delivery AS (
    -- nearly every id is delivered once and passes straight through; only re-delivered
    -- ids are ranked (ranking them all costs more than the rest of the view: DuckDB turns
    -- the window into a group-by over a struct of every column)
    SELECT o.*
    FROM originals AS o
    SEMI JOIN deliveries AS d ON d.settlement_id = o.settlement_id AND d.n = 1
    UNION ALL
    SELECT *
    FROM (SELECT o.*
          FROM originals AS o
          SEMI JOIN deliveries AS d ON d.settlement_id = o.settlement_id AND d.n > 1)
    QUALIFY row_number() OVER (PARTITION BY settlement_id ORDER BY extract_date) = 1
)
SELECT f.*
FROM first_delivery AS f
WHERE NOT EXISTS (SELECT 1 FROM reversals AS r WHERE r.reversal_of = f.settlement_id);

-- Charge lines of the effective settlements only.
CREATE OR REPLACE TEMP VIEW settlement_items AS
SELECT i.*
FROM raw_settlement_items AS i
SEMI JOIN settlements AS s
  ON s.settlement_id = i.settlement_id AND s.extract_date = i.extract_date;

-- Every charge line delivered up to the run date, effective or not (reversed, re-delivered,
-- other shards). Only for cheap first passes that a later step narrows to the effective
-- lines (joined to line_facts on settlement_id, line_no and extract_date); never a finding
-- by itself.
CREATE OR REPLACE TEMP VIEW settlement_items_delivered AS
SELECT * FROM raw_settlement_items;

-- Reference tables: the newest snapshot delivered on or before the run date.
CREATE OR REPLACE TEMP VIEW insured_persons AS
SELECT r.* EXCLUDE (extract_date)
FROM raw_insured_persons AS r
WHERE r.extract_date = (SELECT max(x.extract_date) FROM raw_insured_persons AS x, run_context AS rc
                        WHERE x.extract_date <= rc.run_date);

CREATE OR REPLACE TEMP VIEW institutions AS
SELECT r.* EXCLUDE (extract_date)
FROM raw_institutions AS r
WHERE r.extract_date = (SELECT max(x.extract_date) FROM raw_institutions AS x, run_context AS rc
                        WHERE x.extract_date <= rc.run_date);

CREATE OR REPLACE TEMP VIEW practitioners AS
SELECT r.* EXCLUDE (extract_date)
FROM raw_practitioners AS r
WHERE r.extract_date = (SELECT max(x.extract_date) FROM raw_practitioners AS x, run_context AS rc
                        WHERE x.extract_date <= rc.run_date);

CREATE OR REPLACE TEMP VIEW catalog AS
SELECT r.* EXCLUDE (extract_date)
FROM raw_catalog AS r
WHERE r.extract_date = (SELECT max(x.extract_date) FROM raw_catalog AS x, run_context AS rc
                        WHERE x.extract_date <= rc.run_date);
