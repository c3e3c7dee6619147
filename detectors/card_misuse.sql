/*---
id: card_misuse
name_en: Card lending and impersonation
name_zh: 冒名就医
family: model
judgement: suspicious
entity_type: patient
severity: 4
params:
  distant_prefix_digits:
    default: 4
    description: two institutions are distant when their 6-digit region codes differ in this many leading digits (4 = another prefecture)
  stay_grace_days:
    default: 1
    description: an inpatient stay elsewhere must overlap by more than this many days (a transfer shares a day)
  min_cards_per_contact:
    default: 4
    description: a phone or address counts as a card collection point only when this many insured persons share it
  min_cards_same_day:
    default: 3
    description: cards of one contact used at one institution on one day that make a cluster event
  rounds_min_days:
    default: 3
    description: days an address's cards came together to one institution on its round weekdays before the calendar can show rounds
  rounds_min_fill:
    default: 0.7
    description: share of the round weekdays' dates (first to last) the address's cards were seen at that institution, for the events to be rounds
  min_score:
    default: 2.0
    description: weighted evidence a patient needs to be reported
reads: [claims, stays, insured_persons]
scheme: |
  An insured person's card (or e-voucher) is used by someone else: lent to a relative or
  sold to an agent, or the card of a dead person kept in use. Traces: the same card used
  on the same day at institutions in distant regions; visits or purchases at another
  institution while the card holder lies in hospital; visits after the recorded death;
  many cards registered to one phone or address used together at one institution.
score: |
  Weighted evidence per patient: 3 per settlement after death, 2.5 per visit at another
  institution during one of the patient's stays (strictly inside the stay; overlapping
  stays need more than stay_grace_days of overlap), 2 per day with settlements in two
  distant regions, cards used / min_cards_same_day (x 1.5 when that phone/address has such
  events on two days or more; at most 2) per cluster event (cards of one phone/address
  used together at one institution on one day; at most 3 events).
  Reported at min_score or above.
false_positives: |
  A genuine traveller seen in two cities on one day; a relative buying medicine with the
  patient's consent while the patient is in hospital; a wrong death registration. A
  transfer between hospitals (discharge and admission on the same day) is not counted,
  nor a family of fewer than min_cards_per_contact sharing a phone, and a household (cards
  sharing both phone and address) visiting together never makes a cluster event. Residents of a care
  home registered at one address and seen together by the doctor on rounds are not a
  collection point: an address whose cards come together to one institution on a weekly
  calendar (fixed weekdays, rounds_min_days at least, most of those dates seen:
  rounds_min_fill) makes no cluster event there. Known gap: an agent taking the cards of
  one address to one clinic on fixed weekdays every week looks like rounds.
---*/
WITH visits AS (
    SELECT settlement_id, patient_id, institution_id, visit_type, admit_date, end_date,
           fund_paid, home_region, institution_region, death_date, phone_hash, address_hash
    FROM claims
),
after_death AS (
    SELECT patient_id, 'after_death' AS kind, settlement_id, institution_id, admit_date AS day,
           3.0 AS weight
    FROM visits
    WHERE death_date IS NOT NULL AND admit_date > death_date
),
during_stay AS (
    -- a settlement at another institution strictly inside one of the patient's stays
    SELECT v.patient_id, 'during_stay_elsewhere' AS kind, v.settlement_id, v.institution_id,
           v.admit_date AS day, 2.5 AS weight, s.settlement_id AS stay_settlement_id
    FROM visits AS v
    JOIN stays AS s
      ON s.patient_id = v.patient_id
     AND s.institution_id <> v.institution_id
     AND s.settlement_id <> v.settlement_id
    WHERE (v.visit_type <> 'inpatient'
           AND v.admit_date > s.admit_date AND v.admit_date < s.discharge_date)
       -- two overlapping stays: the later admission is the suspicious one, counted once
       OR (v.visit_type = 'inpatient'
           AND (v.admit_date > s.admit_date OR (v.admit_date = s.admit_date AND v.settlement_id > s.settlement_id))
           AND date_diff('day', greatest(v.admit_date, s.admit_date),
                         least(v.end_date, s.discharge_date)) > $stay_grace_days)
),
busy_days AS MATERIALIZED (
    -- first pass on one 64-bit hash per (patient, day): only a day with two settlements
    -- can pair them (collisions only add candidates; the self-join below decides)
    SELECT *
    FROM visits
    WHERE hash(patient_id, admit_date) IN (SELECT hash(patient_id, admit_date) AS key
                                           FROM visits
                                           GROUP BY key
                                           HAVING count(*) >= 2)
),
same_day_distant AS (
    -- two settlements on one day in regions that differ in the leading digits
    SELECT a.patient_id, a.admit_date AS day,
           a.settlement_id AS sid_a, b.settlement_id AS sid_b,
           a.institution_id AS inst_a, b.institution_id AS inst_b,
           a.institution_region AS region_a, b.institution_region AS region_b,
           a.home_region
    FROM busy_days AS a
    JOIN busy_days AS b
      ON a.patient_id = b.patient_id
     AND a.admit_date = b.admit_date
     AND a.settlement_id < b.settlement_id
     AND left(a.institution_region, $distant_prefix_digits) <> left(b.institution_region, $distant_prefix_digits)
    WHERE a.visit_type <> 'inpatient' OR b.visit_type <> 'inpatient'
),
distant_evidence AS (
    -- the settlement away from home is the suspicious side (both when neither is at home)
    SELECT patient_id, 'same_day_distant' AS kind, sid_a AS settlement_id, inst_a AS institution_id, day
    FROM same_day_distant
    WHERE left(region_a, $distant_prefix_digits) <> left(coalesce(home_region, ''), $distant_prefix_digits)
    UNION
    SELECT patient_id, 'same_day_distant', sid_b, inst_b, day
    FROM same_day_distant
    WHERE left(region_b, $distant_prefix_digits) <> left(coalesce(home_region, ''), $distant_prefix_digits)
       OR left(region_a, $distant_prefix_digits) = left(coalesce(home_region, ''), $distant_prefix_digits)
              AND left(region_b, $distant_prefix_digits) = left(coalesce(home_region, ''), $distant_prefix_digits)
),
contact_cards AS (
    -- phones and addresses shared by many insured persons
    SELECT 'phone' AS contact_kind, phone_hash AS contact, count(*) AS n_cards
    FROM insured_persons WHERE phone_hash IS NOT NULL GROUP BY phone_hash
    HAVING count(*) >= $min_cards_per_contact
    UNION ALL
    SELECT 'address', address_hash, count(*)
    FROM insured_persons WHERE address_hash IS NOT NULL GROUP BY address_hash
    HAVING count(*) >= $min_cards_per_contact
),
contact_visits AS (
    -- outpatient visits and purchases only: group admissions from one address are the
    -- false hospitalisation model's business
    SELECT c.contact_kind, c.contact, c.n_cards, v.*
    FROM visits AS v
    JOIN contact_cards AS c ON c.contact_kind = 'phone' AND c.contact = v.phone_hash
    WHERE v.visit_type <> 'inpatient'
    UNION ALL
    SELECT c.contact_kind, c.contact, c.n_cards, v.*
    FROM visits AS v
    JOIN contact_cards AS c ON c.contact_kind = 'address' AND c.contact = v.address_hash
    WHERE v.visit_type <> 'inpatient'
),
cluster_keys AS (
    -- first pass on one 64-bit hash per (contact, institution, day): a slot needs
    -- min_cards_same_day visits to hold that many cards (collisions only add candidates)
    SELECT hash(contact_kind, contact, institution_id, admit_date) AS key
    FROM contact_visits
    GROUP BY key
    HAVING count(*) >= $min_cards_same_day
),
cluster_events AS (
    -- cards from more than one household: a family shares both its phone and its address,
    -- an intermediary's cards share the phone (or the address) but not the other
    SELECT contact_kind, contact, institution_id, admit_date AS day, any_value(n_cards) AS n_cards,
           count(DISTINCT patient_id) AS cards_used
    FROM contact_visits
    WHERE hash(contact_kind, contact, institution_id, admit_date) IN (SELECT key FROM cluster_keys)
    GROUP BY contact_kind, contact, institution_id, admit_date
    HAVING count(DISTINCT patient_id) >= $min_cards_same_day
       AND count(DISTINCT CASE WHEN contact_kind = 'phone' THEN coalesce(address_hash, patient_id)
                               ELSE coalesce(phone_hash, patient_id) END) >= 2
),
round_weekdays AS (
    -- rounds: the weekdays on which an address's cards came together to one institution
    -- on two dates at least
    SELECT contact, institution_id, isodow(day) AS weekday
    FROM cluster_events
    WHERE contact_kind = 'address'
    GROUP BY ALL
    HAVING count(*) >= 2
),
round_events AS (
    SELECT e.contact, e.institution_id, count(*) AS n_events,
           count(*) FILTER (WHERE w.weekday IS NOT NULL) AS on_events,
           min(e.day) FILTER (WHERE w.weekday IS NOT NULL) AS first_on,
           max(e.day) FILTER (WHERE w.weekday IS NOT NULL) AS last_on
    FROM cluster_events AS e
    LEFT JOIN round_weekdays AS w
      ON w.contact = e.contact AND w.institution_id = e.institution_id AND w.weekday = isodow(e.day)
    WHERE e.contact_kind = 'address'
    GROUP BY ALL
),
round_slots AS (
    -- the dates of those weekdays from the first to the last such event, and whether any
    -- card of the address was seen there that date
    SELECT r.contact, r.institution_id, s.day,
           EXISTS (SELECT 1 FROM contact_visits AS v
                   WHERE v.contact_kind = 'address' AND v.contact = r.contact
                     AND v.institution_id = r.institution_id AND v.admit_date = s.day) AS seen
    FROM round_events AS r,
         LATERAL (SELECT CAST(unnest(generate_series(r.first_on::TIMESTAMP, r.last_on::TIMESTAMP,
                                                     INTERVAL 1 DAY)) AS DATE) AS day) AS s
    WHERE r.on_events >= $rounds_min_days
      AND r.n_events - r.on_events <= greatest(1, floor(0.2 * r.n_events))
      AND isodow(s.day) IN (SELECT weekday FROM round_weekdays AS w
                            WHERE w.contact = r.contact AND w.institution_id = r.institution_id)
),
rounds AS (
    -- an address whose cards are seen together at one institution on a weekly calendar
    -- (fixed weekdays, most of those dates taken) is a residence on its doctor's rounds (a
    -- care home), not a card collection point
    SELECT contact, institution_id
    FROM round_slots
    GROUP BY ALL
    HAVING avg(CASE WHEN seen THEN 1.0 ELSE 0.0 END) >= $rounds_min_fill
),
repeat_contacts AS (
    -- a contact whose cards turn up together on several days is a collection point
    SELECT contact_kind, contact, count(DISTINCT day) AS event_days
    FROM cluster_events
    WHERE NOT (contact_kind = 'address' AND (contact, institution_id) IN (SELECT (contact, institution_id) FROM rounds))
    GROUP BY contact_kind, contact
),
cluster_evidence AS (
    SELECT v.patient_id, 'shared_contact_cluster' AS kind, v.settlement_id, v.institution_id,
           v.admit_date AS day, e.contact_kind,
           e.cards_used * CASE WHEN rc.event_days >= 2 THEN 1.5 ELSE 1.0 END AS cards_used, e.n_cards
    FROM contact_visits AS v
    JOIN repeat_contacts AS rc ON rc.contact_kind = v.contact_kind AND rc.contact = v.contact
    JOIN cluster_events AS e
      ON e.contact_kind = v.contact_kind AND e.contact = v.contact
     AND e.institution_id = v.institution_id AND e.day = v.admit_date
    WHERE NOT (e.contact_kind = 'address' AND (e.contact, e.institution_id) IN (SELECT (contact, institution_id) FROM rounds))
),
evidence AS (
    SELECT patient_id, kind, settlement_id, institution_id, day, weight FROM after_death
    UNION ALL
    SELECT patient_id, kind, settlement_id, institution_id, day, weight FROM during_stay
    UNION ALL
    -- weighted per distant day, spread over that day's suspicious settlements
    SELECT patient_id, kind, settlement_id, institution_id, day,
           2.0 / count(*) OVER (PARTITION BY patient_id, day) AS weight
    FROM distant_evidence
    UNION ALL
    -- a cluster event is worth cards used / min_cards_same_day (x 1.5 at a contact with
    -- events on several days; at most 2), at most 3 events per patient
    SELECT patient_id, kind, settlement_id, institution_id, day,
           CASE WHEN dense_rank() OVER (PARTITION BY patient_id ORDER BY day, institution_id) <= 3
                THEN least(cards_used / $min_cards_same_day, 2.0)
                     / count(*) OVER (PARTITION BY patient_id, day, institution_id) ELSE 0 END AS weight
    FROM (SELECT patient_id, kind, settlement_id, institution_id, day, max(cards_used) AS cards_used
          FROM cluster_evidence GROUP BY ALL)
),
per_settlement AS (
    -- one settlement can carry several kinds of evidence: each kind counts once per settlement
    SELECT patient_id, settlement_id, any_value(institution_id) AS institution_id,
           sum(weight) AS weight, list(DISTINCT kind) AS kinds
    FROM (SELECT patient_id, settlement_id, institution_id, kind, max(weight) AS weight
          FROM evidence GROUP BY ALL)
    GROUP BY patient_id, settlement_id
),
kind_counts AS (
    SELECT patient_id,
           count(DISTINCT settlement_id) FILTER (WHERE kind = 'after_death') AS n_after_death,
           count(DISTINCT settlement_id) FILTER (WHERE kind = 'during_stay_elsewhere') AS n_during_stay,
           count(DISTINCT day) FILTER (WHERE kind = 'same_day_distant') AS n_distant_days,
           count(DISTINCT (day, institution_id)) FILTER (WHERE kind = 'shared_contact_cluster') AS n_cluster_events
    FROM evidence
    GROUP BY patient_id
),
institution_weight AS (
    SELECT patient_id, institution_id, sum(weight) AS w
    FROM per_settlement
    GROUP BY patient_id, institution_id
),
per_patient AS (
    SELECT p.patient_id,
           sum(p.weight) AS score,
           list(p.settlement_id ORDER BY p.settlement_id) AS settlement_ids,
           count(*) AS n_settlements
    FROM per_settlement AS p
    GROUP BY p.patient_id
    HAVING sum(p.weight) >= $min_score
),
charged AS (
    SELECT patient_id, arg_max(institution_id, (w, institution_id)) AS institution_id
    FROM institution_weight GROUP BY patient_id
),
at_risk AS (
    SELECT p.patient_id, sum(v.fund_paid) AS fund
    FROM per_settlement AS p JOIN visits AS v USING (settlement_id)
    GROUP BY p.patient_id
),
contacts AS (
    SELECT patient_id, phone_hash, address_hash FROM insured_persons
)
SELECT
    pp.patient_id AS finding_key,
    'patient' AS entity_type,
    pp.patient_id AS entity_id,
    ch.institution_id,
    pp.patient_id,
    CAST(NULL AS VARCHAR) AS doctor_id,
    pp.settlement_ids,
    pp.score,
    coalesce(r.fund, 0) AS amount_at_risk,
    concat('Card of ', pp.patient_id, ' shows signs of use by someone else: ',
           concat_ws('; ',
               CASE WHEN k.n_after_death > 0 THEN format('{} settlement(s) after the recorded death', k.n_after_death) END,
               CASE WHEN k.n_during_stay > 0 THEN format('{} settlement(s) at another institution while the holder was an inpatient', k.n_during_stay) END,
               CASE WHEN k.n_distant_days > 0 THEN format('{} day(s) with settlements in distant regions', k.n_distant_days) END,
               CASE WHEN k.n_cluster_events > 0 THEN format('{} time(s) used together with other cards of the same phone/address at one institution on one day', k.n_cluster_events) END),
           '.') AS reason,
    CAST(json_object('n_after_death', k.n_after_death, 'n_during_stay_elsewhere', k.n_during_stay,
                     'n_distant_days', k.n_distant_days, 'n_cluster_events', k.n_cluster_events,
                     'score', round(pp.score, 3), 'n_settlements', pp.n_settlements,
                     'phone_hash', c.phone_hash, 'address_hash', c.address_hash,
                     'weights', json_object('after_death', 3, 'during_stay_elsewhere', 2.5,
                                            'distant_day', 2, 'cluster_event', 1))
         AS VARCHAR) AS evidence
FROM per_patient AS pp
JOIN kind_counts AS k USING (patient_id)
LEFT JOIN charged AS ch USING (patient_id)
LEFT JOIN at_risk AS r USING (patient_id)
LEFT JOIN contacts AS c USING (patient_id)
