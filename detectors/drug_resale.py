"""
---
id: drug_resale
name_en: Resale of insured drugs
name_zh: 医保药品倒卖
family: model
judgement: suspicious
entity_type: patient
severity: 4
params:
  min_score:
    default: 2.5
    description: weighted evidence a patient needs to be reported alone
  ring_min_score:
    default: 1.5
    description: weaker evidence that is reported when the patient belongs to a ring
  min_ring_size:
    default: 2
    description: patients linked by a shared phone or address that make a ring
  early_refill_fraction:
    default: 0.5
    description: a refill earlier than this fraction of the previous supply is early
  distant_prefix_digits:
    default: 4
    description: leading region digits that make two places different regions
  household_max:
    default: 5
    description: cards at one address that make a family home; two of them are not linked by their shared phone or address
  min_fund:
    default: 100
    description: least fund money on watch-list drugs for a patient to be considered
reads: [lines, line_facts, claims, trace_code_uses, insured_persons]
scheme: |
  Insured persons (often recruited, paid per card) fill prescriptions of high-resale
  drugs (insulin, albumin, targeted oncology drugs...) far beyond their clinical need, at
  many pharmacies and hospitals, sometimes in several regions, refilling long before the
  last supply could be used up; the packs are resold and re-enter the chain (the same
  traceability code dispensed twice). An intermediary (中间人) collects several cards:
  the patients share a phone or address and buy the same way.
score: |
  Weighted evidence per patient, each term named in the evidence JSON:
  3 x oversupply (days supplied / days covered from first purchase to the end of the
  last supply; 1.0 is normal use, full weight at 3.0), 1.5 x many places dispensing the
  same drug (full at 5), 1 x several regions for the same drug, 1.5 x share of early
  refills, 2.5 x traceability
  codes also dispensed in another settlement (full at 2), 0.5 x share of watch-list money
  without a matching diagnosis. Ring members get +1. Rings: candidates (score >=
  ring_min_score) sharing a phone or address and at least one watch-list drug;
  ring_score = mean member score x ln(1 + members).
false_positives: |
  A chronic patient refilling each month at the prescribed dose (oversupply ~1) is not
  reported, even from two pharmacies. Members of one household (one address of at most
  household_max cards) are never linked by their family phone or home: each is judged
  alone, so a family of chronic patients buying the same drug needs min_score each (the
  ring's lower bar is for cards gathered by an intermediary: one phone, different homes,
  or an address binding more cards than a household). A patient stocking up before travel, or whose dose was raised,
  can look over-supplied for one period.
---
"""
from __future__ import annotations

import hashlib
import math

import networkx as nx
import pyarrow as pa

FEATURES_SQL = ("""
CREATE OR REPLACE TEMP TABLE _dr_purchases AS
-- one row per dispensing of a watch-list drug: patient, item, day, settlement
SELECT l.patient_id, l.item_code, any_value(l.item_name) AS item_name,
       l.service_date, l.settlement_id, l.institution_id,
       any_value(c.institution_region) AS institution_region,
       any_value(c.home_region) AS home_region,
       -- days of use the dispensing covers; unknown when the line gives no days_supply
       sum(l.days_supply) AS supply_days,
       sum(l.line_fund) AS fund,
       bool_or(l.indication_dx IS NULL OR len(l.indication_dx) = 0) AS any_indication,
       any_value(l.indication_dx) AS indication_dx
FROM lines AS l
JOIN claims AS c USING (settlement_id)
WHERE l.high_resale AND l.item_category IN ('drug', 'herbal')
  AND l.visit_type IN ('outpatient', 'pharmacy')      -- taken home: drugs given on the ward cannot be resold
  AND l.quantity > 0
GROUP BY l.patient_id, l.item_code, l.service_date, l.settlement_id, l.institution_id
""", """
CREATE OR REPLACE TEMP TABLE _dr_patient AS
WITH ordered AS (
    SELECT *,
           lag(service_date) OVER w AS prev_date,
           lag(supply_days) OVER w AS prev_supply
    FROM _dr_purchases
    WHERE supply_days IS NOT NULL
    WINDOW w AS (PARTITION BY patient_id, item_code ORDER BY service_date, settlement_id)
),
per_item AS (
    SELECT patient_id, item_code, any_value(item_name) AS item_name,
           count(*) AS n_purchases,
           sum(supply_days) AS supplied,
           date_diff('day', min(service_date), max(service_date))
               + arg_max(supply_days, (service_date, settlement_id)) AS covered,
           count(*) FILTER (WHERE prev_date IS NOT NULL
                            AND date_diff('day', prev_date, service_date) < $early_refill_fraction * prev_supply)
               AS early_refills,
           sum(fund) AS fund
    FROM ordered
    GROUP BY patient_id, item_code
),
item_ratio AS (
    SELECT *, supplied / greatest(covered, 1) AS oversupply
    FROM per_item
),
unindicated_buyers AS MATERIALIZED (
    -- the only patients whose diagnoses matter: a watch-list purchase with an indication
    SELECT DISTINCT patient_id FROM _dr_purchases WHERE NOT any_indication
),
dx AS (
    -- every diagnosis the patient was given anywhere
    SELECT patient_id, list(DISTINCT d) AS dxs
    FROM (SELECT patient_id, primary_dx AS d FROM claims
          SEMI JOIN unindicated_buyers USING (patient_id)
          WHERE primary_dx IS NOT NULL
          UNION ALL
          SELECT patient_id, unnest(secondary_dx) FROM claims
          SEMI JOIN unindicated_buyers USING (patient_id)
          WHERE secondary_dx IS NOT NULL)
    GROUP BY patient_id
),
unindicated AS (
    SELECT p.patient_id,
           sum(p.fund) FILTER (WHERE NOT p.any_indication
                               AND NOT list_bool_or(list_transform(p.indication_dx,
                                        lambda ind: list_bool_or(list_transform(coalesce(d.dxs, []),
                                                     lambda x: starts_with(x, ind)))))) AS fund_unindicated
    FROM _dr_purchases AS p
    LEFT JOIN dx AS d USING (patient_id)
    GROUP BY p.patient_id
),
trace_uses AS (
    -- effective uses of codes dispensed more than once (the shared feature), with the
    -- patient they went to
    SELECT settlement_id, trace_code AS code, patient_id
    FROM trace_code_uses
),
trace AS (
    -- traceability codes of drug packs dispensed in more than one settlement
    SELECT code, count(DISTINCT settlement_id) AS n_settlements
    FROM trace_uses
    GROUP BY code
    HAVING count(DISTINCT settlement_id) > 1
),
patient_trace AS (
    SELECT u.patient_id, count(DISTINCT t.code) AS dup_trace_codes
    FROM trace_uses AS u
    JOIN trace AS t USING (code)
    GROUP BY u.patient_id
),
places AS (
    SELECT patient_id,
           -- places and regions counted per drug: the same drug from many counters, not
           -- several drugs from their own prescribers
           max(item_places) AS n_places,
           max(item_regions) AS n_regions,
           count(DISTINCT service_date) AS n_days,
           count(DISTINCT settlement_id) AS n_purchases,
           list(DISTINCT item_code) AS item_codes,
           sum(fund) AS fund,
           min(service_date) AS first_date, max(service_date) AS last_date,
    FROM (SELECT *,
                 count(DISTINCT institution_id) OVER (PARTITION BY patient_id, item_code) AS item_places,
                 count(DISTINCT left(institution_region, $distant_prefix_digits))
                     OVER (PARTITION BY patient_id, item_code) AS item_regions
          FROM _dr_purchases)
    GROUP BY patient_id
),
top_place AS (
    -- the institution that dispensed most of the patient's watch-list money
    SELECT patient_id, arg_max(institution_id, (fund, n)) AS top_institution
    FROM (SELECT patient_id, institution_id, sum(fund) AS fund, count(*) AS n
          FROM _dr_purchases GROUP BY patient_id, institution_id)
    GROUP BY patient_id
),
items AS (
    SELECT patient_id,
           max(oversupply) AS oversupply,
           arg_max(item_code, oversupply) AS worst_item,
           arg_max(item_name, oversupply) AS worst_item_name,
           arg_max(supplied, oversupply) AS worst_supplied,
           arg_max(covered, oversupply) AS worst_covered,
           sum(early_refills) AS early_refills,
           sum(n_purchases - 1) AS refills
    FROM item_ratio
    GROUP BY patient_id
),
features AS (
    SELECT p.patient_id, p.n_places, p.n_regions, p.n_days, p.fund, p.first_date, p.last_date,
           tp.top_institution, i.oversupply, i.worst_item, i.worst_item_name, i.worst_supplied,
           i.worst_covered, p.n_purchases, i.early_refills, i.refills, p.item_codes,
           coalesce(t.dup_trace_codes, 0) AS dup_trace_codes,
           coalesce(u.fund_unindicated, 0) / nullif(p.fund, 0) AS unindicated_share
    FROM places AS p
    JOIN top_place AS tp USING (patient_id)
    LEFT JOIN items AS i USING (patient_id)
    LEFT JOIN patient_trace AS t USING (patient_id)
    LEFT JOIN unindicated AS u USING (patient_id)
    WHERE p.fund >= $min_fund OR coalesce(t.dup_trace_codes, 0) > 0
)
SELECT *,
       3.0 * least(greatest((coalesce(oversupply, 1.0) - 1.0) / 2.0, 0), 1) AS s_oversupply,
       1.5 * least(greatest((n_places - 1) / 4.0, 0), 1) AS s_places,
       1.0 * least(greatest(n_regions - 1, 0) / 2.0, 1) AS s_regions,
       1.5 * CASE WHEN coalesce(early_refills, 0) >= 2 THEN least(early_refills / greatest(refills, 1) / 0.5, 1) ELSE 0 END AS s_early,
       2.5 * least(dup_trace_codes / 2.0, 1) AS s_trace,
       0.5 * coalesce(unindicated_share, 0) AS s_unindicated
FROM features
""", """
CREATE OR REPLACE TEMP TABLE _dr_scored AS
SELECT *, s_oversupply + s_places + s_regions + s_early + s_trace + s_unindicated AS base_score
FROM _dr_patient
""")

FINDINGS_SQL = """
WITH members AS (
    SELECT * FROM _dr_ring_members
),
scored AS (
    SELECT s.*, m.ring_id, m.n_patients,
           s.base_score + CASE WHEN m.ring_id IS NOT NULL THEN 1.0 ELSE 0 END AS score
    FROM _dr_scored AS s
    LEFT JOIN members AS m ON m.member_type = 'patient' AND m.member_id = s.patient_id
),
reported AS (
    SELECT * FROM scored
    WHERE base_score >= $min_score OR (ring_id IS NOT NULL AND base_score >= $ring_min_score)
),
evidence_settlements AS (
    SELECT patient_id, list(DISTINCT settlement_id ORDER BY settlement_id) AS settlement_ids,
           sum(fund) AS fund
    FROM _dr_purchases
    WHERE patient_id IN (SELECT patient_id FROM reported)
    GROUP BY patient_id
),
patient_findings AS (
    SELECT
        r.patient_id AS finding_key,
        'patient' AS entity_type,
        r.patient_id AS entity_id,
        r.top_institution AS institution_id,
        r.patient_id,
        CAST(NULL AS VARCHAR) AS doctor_id,
        e.settlement_ids,
        r.score,
        -- the money beyond clinical need: the oversupplied share of the watch-list spend
        e.fund * greatest(1 - 1 / greatest(coalesce(r.oversupply, 1), 1), CASE WHEN r.dup_trace_codes > 0 THEN 0.5 ELSE 0 END,
                          0.25) AS amount_at_risk,
        concat(CASE WHEN r.oversupply IS NOT NULL
                    THEN format('Bought {} ({}) for {} days of use in {} days ({}x need)',
                                r.worst_item_name, r.worst_item, r.worst_supplied, r.worst_covered,
                                round(r.oversupply, 1))
                    ELSE 'Bought watch-list drugs (days of supply not recorded)' END,
               format(', {} purchases at {} place(s) in {} region(s)', r.n_purchases, r.n_places, r.n_regions),
               CASE WHEN r.early_refills > 0 THEN format(', {} early refill(s)', r.early_refills) ELSE '' END,
               CASE WHEN r.dup_trace_codes > 0 THEN format(', {} traceability code(s) also dispensed elsewhere', r.dup_trace_codes) ELSE '' END,
               CASE WHEN r.ring_id IS NOT NULL THEN format(', linked by phone/address to {} other buyer(s) (ring {})', r.n_patients - 1, r.ring_id) ELSE '' END,
               '.') AS reason,
        CAST(json_object(
            'oversupply', round(r.oversupply, 3), 'worst_item', r.worst_item,
            'days_supplied', r.worst_supplied, 'days_covered', r.worst_covered,
            'n_purchases', r.n_purchases, 'n_places', r.n_places, 'n_regions', r.n_regions,
            'early_refills', r.early_refills, 'refills', r.refills,
            'dup_trace_codes', r.dup_trace_codes, 'unindicated_share', round(r.unindicated_share, 3),
            'watch_list_fund', r.fund, 'first_date', r.first_date, 'last_date', r.last_date,
            'ring_id', r.ring_id,
            'terms', json_object('oversupply', round(r.s_oversupply, 3), 'places', round(r.s_places, 3),
                                 'regions', round(r.s_regions, 3), 'early_refills', round(r.s_early, 3),
                                 'trace_codes', round(r.s_trace, 3), 'unindicated', round(r.s_unindicated, 3),
                                 'ring', CASE WHEN r.ring_id IS NOT NULL THEN 1.0 ELSE 0 END))
            AS VARCHAR) AS evidence
    FROM reported AS r
    JOIN evidence_settlements AS e USING (patient_id)
),
ring_findings AS (
    SELECT
        m.ring_id AS finding_key,
        'ring' AS entity_type,
        m.ring_id AS entity_id,
        -- ordered inputs: ties (one patient per institution) and the list order do not
        -- depend on thread scheduling
        mode(pf.institution_id ORDER BY pf.institution_id) AS institution_id,
        CAST(NULL AS VARCHAR) AS patient_id,
        CAST(NULL AS VARCHAR) AS doctor_id,
        flatten(list(pf.settlement_ids ORDER BY pf.patient_id)) AS settlement_ids,
        any_value(m.ring_score) AS score,
        sum(pf.amount_at_risk) AS amount_at_risk,
        format('{} buyers of watch-list drugs linked by a shared phone or address over-buy the same way: {}.',
               count(*), string_agg(pf.patient_id, ', ' ORDER BY pf.patient_id)) AS reason,
        CAST(json_object('members', list(pf.patient_id ORDER BY pf.patient_id),
                         'intermediaries', any_value(i.contacts),
                         'ring_score', any_value(m.ring_score)) AS VARCHAR) AS evidence
    FROM members AS m
    JOIN patient_findings AS pf ON m.member_type = 'patient' AND pf.patient_id = m.member_id
    LEFT JOIN (SELECT ring_id, list(member_id ORDER BY member_id) AS contacts FROM members
               WHERE member_type = 'intermediary' GROUP BY ring_id) AS i USING (ring_id)
    GROUP BY m.ring_id
)
SELECT * FROM patient_findings
UNION ALL
SELECT * FROM ring_findings
"""

RING_SCHEMA = pa.schema([("ring_id", pa.string()), ("member_type", pa.string()),
                         ("member_id", pa.string()), ("ring_score", pa.float64()),
                         ("n_members", pa.int32())])


def _rings(con, params) -> pa.Table:
    """Group candidate buyers linked by a shared phone or address and a shared drug."""
    edges = con.execute("""
        WITH cand AS (
            SELECT s.patient_id, s.base_score, s.item_codes, p.phone_hash, p.address_hash
            FROM _dr_scored AS s JOIN insured_persons AS p USING (patient_id)
            WHERE s.base_score >= $ring_min_score
        ),
        homes AS (
            -- addresses of at most household_max cards: a family's home
            SELECT address_hash FROM insured_persons
            WHERE address_hash IN (SELECT address_hash FROM cand)
            GROUP BY address_hash HAVING count(DISTINCT patient_id) <= $household_max
        ),
        contact AS (
            SELECT patient_id, base_score, item_codes, address_hash, 'phone:' || phone_hash AS contact
            FROM cand WHERE phone_hash IS NOT NULL
            UNION ALL
            SELECT patient_id, base_score, item_codes, address_hash, 'address:' || address_hash
            FROM cand WHERE address_hash IS NOT NULL
        )
        SELECT a.patient_id AS a, b.patient_id AS b, a.contact, a.base_score AS sa, b.base_score AS sb
        FROM contact AS a JOIN contact AS b
          ON a.contact = b.contact AND a.patient_id < b.patient_id
         AND len(list_intersect(a.item_codes, b.item_codes)) > 0
        -- two cards of one household (one family home) share their phone and address by
        -- living together: not an intermediary's link
        WHERE NOT (a.address_hash = b.address_hash AND a.address_hash IN (SELECT address_hash FROM homes))
    """, {"ring_min_score": params["ring_min_score"], "household_max": params["household_max"]}).fetchall()
    g = nx.Graph()
    contacts: dict[frozenset, set] = {}
    score = {}
    for a, b, contact, sa, sb in edges:
        g.add_edge(a, b)
        score[a], score[b] = sa, sb
        contacts.setdefault(frozenset((a, b)), set()).add(contact)
    rows = {k: [] for k in RING_SCHEMA.names}
    for comp in nx.connected_components(g):
        if len(comp) < int(params["min_ring_size"]):
            continue
        members = sorted(comp)
        ring_id = "DR-" + hashlib.sha256("|".join(members).encode()).hexdigest()[:12]
        ring_contacts = sorted({c for pair, cs in contacts.items() if pair <= comp for c in cs})
        ring_score = sum(score[m] + 1.0 for m in members) / len(members) * math.log(1 + len(members))
        n = len(members) + len(ring_contacts)
        for mtype, ids in (("patient", members), ("intermediary", ring_contacts)):
            for mid in ids:
                rows["ring_id"].append(ring_id)
                rows["member_type"].append(mtype)
                rows["member_id"].append(mid)
                rows["ring_score"].append(ring_score)
                rows["n_members"].append(n)
    return pa.table(rows, schema=RING_SCHEMA)


def detect(con, params, ctx):
    bind = {k: params[k] for k in ("early_refill_fraction", "distant_prefix_digits", "min_fund")}
    for stmt in FEATURES_SQL:
        con.execute(stmt, {k: v for k, v in bind.items() if f"${k}" in stmt})
    rings = _rings(con, params)
    con.register("_dr_ring_members_arrow", rings)
    con.execute("CREATE OR REPLACE TEMP TABLE _dr_ring_members AS "
                "SELECT *, count(*) FILTER (WHERE member_type = 'patient') OVER (PARTITION BY ring_id) AS n_patients "
                "FROM _dr_ring_members_arrow")
    con.unregister("_dr_ring_members_arrow")
    findings = con.sql(FINDINGS_SQL, params={"min_score": params["min_score"],
                                             "ring_min_score": params["ring_min_score"]}).to_arrow_table()
    # a ring whose members are not all reported is still published with those that are
    reported = set(findings.column("patient_id").to_pylist())
    keep = [mt != "patient" or mid in reported
            for mt, mid in zip(rings.column("member_type").to_pylist(), rings.column("member_id").to_pylist())]
    rings = rings.filter(pa.array(keep, pa.bool_()))
    con.register("_dr_rings_kept", rings)
    rings = con.sql("""
        SELECT ring_id, member_type, member_id, ring_score,
               CAST(count(*) OVER (PARTITION BY ring_id) AS INTEGER) AS n_members
        FROM _dr_rings_kept
        QUALIFY count(*) FILTER (WHERE member_type = 'patient') OVER (PARTITION BY ring_id) >= $n
    """, params={"n": int(params["min_ring_size"])}).to_arrow_table()
    con.unregister("_dr_rings_kept")
    for t in ("_dr_purchases", "_dr_patient", "_dr_scored", "_dr_ring_members"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return {"findings": findings, "rings": rings}
