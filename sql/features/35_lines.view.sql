-- lines (a view, never written): line_facts with the catalog facts of each item and the
-- price cap for the institution's level. The catalog is a few hundred to a few thousand
-- rows, so this join is a cheap hash probe at read time.
SELECT
    l.*,
    k.name AS item_name, k.unit AS item_unit,
    CASE WHEN l.institution_level >= 3 THEN k.price_cap_l3
         WHEN l.institution_level = 2 THEN k.price_cap_l2
         ELSE k.price_cap_l1 END AS price_cap,
    k.sex_only, k.min_age, k.max_age, k.min_level, k.max_daily_qty, k.max_days_supply,
    k.indication_dx, k.high_resale, k.bundle_of, k.hours_per_unit
FROM line_facts AS l
LEFT JOIN catalog AS k ON k.item_code = l.item_code
