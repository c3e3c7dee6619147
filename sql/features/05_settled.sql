-- settled: the effective settlements (the `settlements` view: no reversals, no reversed
-- originals, re-deliveries counted once) written once per run. Every later feature reads
-- this file instead of re-deriving the view, and the planner sees its true size, so the
-- joins in `claims` hash the small lookups instead of the wide settlement rows (which at
-- 100M lines ran out of a 4 GB memory limit).
SELECT * FROM settlements
