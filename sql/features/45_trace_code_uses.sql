-- trace_code_uses: every effective use of a drug traceability code that was dispensed more
-- than once (one row per code per line: settlement, line, day, item, packs on the line,
-- patient, institution, doctor, the line's fund money). A code is one physical pack, so
-- any code here is a resale or a made-up sale until shown otherwise. Read by
-- duplicate_trace_code and drug_resale, so the 6.6M codes of a 10M-line month are read
-- twice per run instead of four times.
WITH repeated_keys AS (
    -- one 64-bit hash per code over every delivered line (trace codes are not in
    -- line_facts): a key equal to its predecessor in sorted order was seen twice. Reversed
    -- or re-delivered lines and hash collisions only add candidates; the exact count
    -- below is over effective uses only.
    SELECT code_key
    FROM (SELECT hash(unnest(trace_codes)) AS code_key
          FROM settlement_items_delivered
          WHERE trace_codes IS NOT NULL AND quantity > 0)
    QUALIFY lag(code_key) OVER (ORDER BY code_key) = code_key
),
candidate_uses AS MATERIALIZED (
    SELECT k.settlement_id, k.line_no, k.service_date, k.item_code, k.n_codes, k.trace_code,
           l.patient_id, l.institution_id, l.doctor_id, l.line_fund
    FROM (SELECT settlement_id, line_no, extract_date, service_date, item_code,
                 len(trace_codes) AS n_codes, unnest(trace_codes) AS trace_code
          FROM settlement_items_delivered
          WHERE trace_codes IS NOT NULL AND quantity > 0) AS k
    JOIN line_facts AS l USING (settlement_id, line_no, extract_date)
    WHERE hash(k.trace_code) IN (SELECT code_key FROM repeated_keys)
)
SELECT *
FROM candidate_uses
WHERE trace_code IN (SELECT trace_code FROM candidate_uses GROUP BY trace_code HAVING count(*) > 1)
