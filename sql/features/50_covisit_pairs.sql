-- covisit_pairs: pairs of patients seen by the same doctor, or at the same institution,
-- on the same day on at least 2 distinct days, with how likely that is by chance.
-- One row per (pair, context); patient_a < patient_b. Graph detectors read this instead
-- of self-joining the claims.
--
-- Bounding the self-join (a busy doctor with 100 patients a day would give ~5,000 pairs a
-- day, every day):
--   1. only "regulars" of a context take part: a patient needs >= 2 distinct days with that
--      doctor / at that institution, since a pair cannot co-visit it on 2 days otherwise
--      (lossless for the >= 2 days rule; drops the one-off visitors who make most of a
--      busy day);
--   2. only slots (context, day) with at most 60 regulars are paired, so a slot yields at
--      most 60*59/2 = 1,770 pairs and the pair count is <= 1,770 x slots. Busier slots
--      (big outpatient halls, a large hospital taken as a whole) are skipped: sharing
--      them says little about two people, and a ring inside a busy hospital still shows
--      at the level of its doctor. A ring hidden in a doctor-day with more than 60
--      regulars is not seen here (known limit, stated in the detector header).
--
-- Chance model: a context is open on open_days distinct days; patients a and b visit it
-- on visits_a and visits_b of them, independently and uniformly. The shared days then
-- follow a hypergeometric law: expected = visits_a * visits_b / open_days, and
-- surprise = -log10 of an upper bound on P(shared >= covisit_days)
-- (P(X >= k) <= (min(na, nb) - k + 1) * P(X = k) once k is past the mode).
--
-- Shared rhythm: patients on a fixed schedule (refills every 14 days, a visit every 5
-- days, dialysis shifts) do not pick days at random. When every gap between a patient's
-- visits to the context is a multiple of rhythm_a, likewise for b, and their first days
-- differ by a multiple of the common period p = gcd(rhythm_a, rhythm_b, first-day gap)
-- >= 2, the two are simply in phase (chance about 1/p), so their surprise is capped at
-- log10(p): scheduled care is explained, as a household's joint visits are.
--
-- Weekly habit: a patient whose visits to the context fall on a few weekdays, at least
-- three visits per weekday kept (dialysis Monday/Wednesday/Friday, rehabilitation
-- Tuesday/Thursday), is habitual (three, not two: a ring member's four or five visits on
-- random meeting days often repeat a weekday twice by chance). A patient also keeps a
-- weekly schedule when the weekdays they came on twice or more hold all their visits but
-- max(1, 20 %) (a make-up session, a sick call) and they came on at least 70 % of those
-- weekdays' dates from the first to the last such visit (4 visits at least): a dialysis
-- newcomer on Mon/Thu, a shift with a missed session, a course on workdays; a ring
-- member's days of the ring's choosing skip most weeks (about 4 % of random 5-9 day sets
-- pass). For two habitual patients the chance model draws their days only from the
-- context's open days on the weekdays either of them keeps, so two patients on the same
-- weekly schedule are not surprising: each one's own schedule explains their days.
WITH visits AS (
    -- one row per patient, context and day: a patient seen twice that day counts once
    SELECT DISTINCT 'doctor' AS context_kind, doctor_id AS context_id, patient_id,
           admit_date AS day
    FROM claims
    WHERE doctor_id IS NOT NULL
    UNION ALL
    SELECT DISTINCT 'institution', institution_id, patient_id, admit_date
    FROM claims
),
context_open AS MATERIALIZED (
    -- the days each context was open (distinct once, counted twice below)
    SELECT DISTINCT context_kind, context_id, day
    FROM visits
),
context_days AS (
    SELECT context_kind, context_id, count(*) AS open_days
    FROM context_open
    GROUP BY context_kind, context_id
),
context_weekdays AS (
    SELECT context_kind, context_id, isodow(day) - 1 AS weekday, count(*) AS open_days
    FROM context_open
    GROUP BY context_kind, context_id, isodow(day) - 1
),
regular_keys AS (
    -- first pass on one 64-bit hash per (context, patient): nearly every patient sees a
    -- context once; only those seen on two days or more can be regulars (collisions only
    -- add candidates, the HAVING of regulars decides). A key equal to its predecessor in
    -- sorted order is seen twice: sorting 2.6M integers costs less than a hash table of
    -- 2.6M nearly all distinct groups.
    SELECT key
    FROM (SELECT hash(context_kind, context_id, patient_id) AS key FROM visits)
    QUALIFY lag(key) OVER (ORDER BY key) = key
),
visit_gaps AS (
    SELECT *, date_diff('day', lag(day) OVER (PARTITION BY context_kind, context_id, patient_id
                                             ORDER BY day), day) AS gap
    FROM visits
    WHERE hash(context_kind, context_id, patient_id) IN (SELECT key FROM regular_keys)
),
visit_weekdays AS (
    -- visits per regular and weekday; a weekday kept on two dates or more is the patient's
    SELECT context_kind, context_id, patient_id, isodow(day) - 1 AS weekday, count(*) AS n,
           min(day) AS first_day, max(day) AS last_day
    FROM visit_gaps
    GROUP BY context_kind, context_id, patient_id, isodow(day) - 1
),
schedules AS (
    SELECT context_kind, context_id, patient_id,
           coalesce(bit_or(CAST(1 << weekday AS INTEGER)) FILTER (WHERE n >= 2), 0) AS kept,
           sum(n) AS n_visits,
           coalesce(sum(n) FILTER (WHERE n >= 2), 0) AS on_kept,
           min(first_day) FILTER (WHERE n >= 2) AS first_on,
           max(last_day) FILTER (WHERE n >= 2) AS last_on
    FROM visit_weekdays
    GROUP BY context_kind, context_id, patient_id
),
schedule_fill AS (
    -- the dates of the kept weekdays from the first to the last visit on them, and how
    -- many of them the patient came: a schedule kept (a missed session, a make-up day)
    SELECT *,
           list_sum(list_transform(range(7), lambda w:
               CASE WHEN (kept >> w) & 1 = 1
                         AND (w - (isodow(first_on) - 1) + 7) % 7 <= date_diff('day', first_on, last_on)
                    THEN (date_diff('day', first_on, last_on) - (w - (isodow(first_on) - 1) + 7) % 7) // 7 + 1
                    ELSE 0 END)) AS slots
    FROM schedules
    WHERE kept <> 0
),
regulars AS (
    SELECT g.context_kind, g.context_id, g.patient_id, count(*) AS visit_days, min(g.day) AS first_day,
           list_reduce(list(g.gap) FILTER (WHERE g.gap IS NOT NULL), lambda a, b: gcd(a, b)) AS rhythm,
           -- the weekdays of a kept schedule, else every weekday visited
           CASE WHEN any_value(f.slots) IS NOT NULL THEN any_value(f.kept)
                ELSE bit_or(CAST(1 << (isodow(g.day) - 1) AS INTEGER)) END AS weekdays,
           count(*) >= 3 * bit_count(bit_or(CAST(1 << (isodow(g.day) - 1) AS INTEGER)))
               OR coalesce(any_value(f.slots) IS NOT NULL, false) AS habitual
    FROM visit_gaps AS g
    LEFT JOIN schedule_fill AS f
      ON f.context_kind = g.context_kind AND f.context_id = g.context_id AND f.patient_id = g.patient_id
     AND f.n_visits >= 4
     AND f.n_visits - f.on_kept <= greatest(1, floor(0.2 * f.n_visits))
     AND f.on_kept >= 0.7 * f.slots
    GROUP BY g.context_kind, g.context_id, g.patient_id
    HAVING count(*) >= 2
),
regular_visits AS (
    SELECT v.context_kind, v.context_id, v.patient_id, v.day
    FROM visits AS v
    SEMI JOIN regulars AS r USING (context_kind, context_id, patient_id)
),
slots AS (
    SELECT context_kind, context_id, day
    FROM regular_visits
    GROUP BY context_kind, context_id, day
    HAVING count(*) BETWEEN 2 AND 60
),
slot_visits AS (
    SELECT rv.*
    FROM regular_visits AS rv
    SEMI JOIN slots USING (context_kind, context_id, day)
),
pairs AS (
    SELECT a.context_kind, a.context_id, a.patient_id AS patient_a, b.patient_id AS patient_b,
           count(*) AS covisit_days, min(a.day) AS first_day, max(a.day) AS last_day
    FROM slot_visits AS a
    JOIN slot_visits AS b
      ON a.context_kind = b.context_kind AND a.context_id = b.context_id AND a.day = b.day
     AND a.patient_id < b.patient_id
    GROUP BY a.context_kind, a.context_id, a.patient_id, b.patient_id
    HAVING count(*) >= 2
),
habit_days AS (
    -- open days on the weekdays two habitual patients keep
    SELECT p.context_kind, p.context_id, p.patient_a, p.patient_b, sum(w.open_days) AS open_days
    FROM pairs AS p
    JOIN regulars AS ra ON ra.context_kind = p.context_kind AND ra.context_id = p.context_id
                       AND ra.patient_id = p.patient_a AND ra.habitual
    JOIN regulars AS rb ON rb.context_kind = p.context_kind AND rb.context_id = p.context_id
                       AND rb.patient_id = p.patient_b AND rb.habitual
    JOIN context_weekdays AS w ON w.context_kind = p.context_kind AND w.context_id = p.context_id
                              AND ((ra.weekdays | rb.weekdays) >> w.weekday) & 1 = 1
    GROUP BY p.context_kind, p.context_id, p.patient_a, p.patient_b
),
scored AS (
    SELECT p.*, ra.visit_days AS visits_a, rb.visit_days AS visits_b,
           coalesce(h.open_days, c.open_days) AS open_days,
           ra.visit_days * rb.visit_days / coalesce(h.open_days, c.open_days) AS expected,
           gcd(gcd(ra.rhythm, rb.rhythm), abs(date_diff('day', ra.first_day, rb.first_day))) AS shared_rhythm,
           CAST(ra.visit_days AS DOUBLE) AS na, CAST(rb.visit_days AS DOUBLE) AS nb,
           CAST(coalesce(h.open_days, c.open_days) AS DOUBLE) AS nd,
           CAST(p.covisit_days AS DOUBLE) AS k
    FROM pairs AS p
    JOIN regulars AS ra ON ra.context_kind = p.context_kind AND ra.context_id = p.context_id
                       AND ra.patient_id = p.patient_a
    JOIN regulars AS rb ON rb.context_kind = p.context_kind AND rb.context_id = p.context_id
                       AND rb.patient_id = p.patient_b
    JOIN context_days AS c ON c.context_kind = p.context_kind AND c.context_id = p.context_id
    LEFT JOIN habit_days AS h ON h.context_kind = p.context_kind AND h.context_id = p.context_id
                             AND h.patient_a = p.patient_a AND h.patient_b = p.patient_b
)
SELECT
    context_kind, context_id, patient_a, patient_b, covisit_days, first_day, last_day,
    visits_a, visits_b, open_days, expected, shared_rhythm,
    covisit_days / nullif(expected, 0) AS lift,
    least(CASE WHEN k > (na + 1) * (nb + 1) / (nd + 2) THEN greatest(0, -(
            -- ln P(X = k) = ln C(na, k) + ln C(nd - na, nb - k) - ln C(nd, nb)
              (lgamma(na + 1) - lgamma(k + 1) - lgamma(na - k + 1))
            + (lgamma(nd - na + 1) - lgamma(nb - k + 1) - lgamma(nd - na - nb + k + 1))
            - (lgamma(nd + 1) - lgamma(nb + 1) - lgamma(nd - nb + 1))
            + ln(least(na, nb) - k + 1)) / ln(10))
         ELSE 0 END,
          CASE WHEN shared_rhythm >= 2 THEN log10(shared_rhythm) ELSE 'infinity'::DOUBLE END) AS surprise
FROM scored
