-- Patients on each ward at the midnight that ends each day (the trust's clock), in all and by
-- length of stay. A spell counts on day D when it began on or before D and ended after D (or
-- has not ended): a transfer at 23:59 counts on the new ward, a discharge at 00:00 the next
-- day still counts. Length of stay counts whole days from the admission day: a patient
-- admitted on day A has been in hospital 7 days or more at the midnight that ends A + 7.
--
-- Every ward that has beds or a counted patient is on the census, from the day it first had
-- either (not before the first day a patient counted) to the last day ADT has reached, zeros
-- included. So a day's rows depend only on what had happened by its end: a ward that first
-- appears today does not add rows to days gone by.
--
-- The view is kept up to date from the first day new data reaches (`day` in kpis.toml): with
-- `$since` bound it gives the days from `$since` on, and reads only the spells still counting
-- then. Each spell adds one on its first counted day (or `$since`, if later) and removes one
-- on its last day + 1; a running sum over a grid of every ward and day gives the census.
WITH spells AS (
    SELECT org_code, site, ward, start_day AS first_day, end_day, admit_day
    FROM kpi.inpatient_stays
),
open_spells AS (
    SELECT * FROM spells WHERE end_day IS NULL OR end_day > CAST($since AS DATE)
),
-- The day each spell starts counting towards each threshold (0 = all patients); a spell
-- that ends before it reaches a threshold never counts towards it.
starts AS (
    SELECT org_code, site, ward, 0 AS n, first_day AS from_day, end_day FROM open_spells
    UNION ALL
    SELECT org_code, site, ward, 7, GREATEST(first_day, CAST(admit_day + INTERVAL '7 days' AS DATE)),
           end_day
    FROM open_spells WHERE admit_day IS NOT NULL
    UNION ALL
    SELECT org_code, site, ward, 14, GREATEST(first_day, CAST(admit_day + INTERVAL '14 days' AS DATE)),
           end_day
    FROM open_spells WHERE admit_day IS NOT NULL
    UNION ALL
    SELECT org_code, site, ward, 21, GREATEST(first_day, CAST(admit_day + INTERVAL '21 days' AS DATE)),
           end_day
    FROM open_spells WHERE admit_day IS NOT NULL
),
counted AS (
    SELECT * FROM starts WHERE end_day IS NULL OR from_day < end_day
),
-- Both changes of each counted spell come from one read of it: DataFusion computes a CTE
-- again at each reference, so two reads of counted built every start row twice.
deltas AS (
    SELECT org_code, site, ward, n,
           CASE WHEN e.delta = 1 THEN GREATEST(from_day, CAST($since AS DATE)) ELSE end_day END
               AS day,
           e.delta
    FROM (VALUES (1), (-1)) AS e(delta)
    CROSS JOIN counted
    WHERE e.delta = 1 OR end_day IS NOT NULL
),
per_day AS (
    SELECT org_code, site, ward, day,
           SUM(CASE WHEN n = 0 THEN delta ELSE 0 END) AS d_all,
           SUM(CASE WHEN n = 7 THEN delta ELSE 0 END) AS d_7,
           SUM(CASE WHEN n = 14 THEN delta ELSE 0 END) AS d_14,
           SUM(CASE WHEN n = 21 THEN delta ELSE 0 END) AS d_21
    FROM deltas
    GROUP BY org_code, site, ward, day
),
-- Every ward with beds or a counted spell, and the first day it had either.
wards AS (
    SELECT org_code, site, ward, MIN(first_day) AS first_day
    FROM (
        SELECT org_code, site, ward, first_day
        FROM spells
        WHERE end_day IS NULL OR first_day < end_day
        UNION ALL
        SELECT org_code, site, ward, valid_from FROM beds
    ) AS known
    GROUP BY org_code, site, ward
),
-- From the first day a patient counted (or `$since`, if later) up to the last day ADT has
-- reached: a patient still in reaches 21 days in the future, but a midnight that has not
-- come yet has no census.
days AS (
    SELECT CAST(d AS DATE) AS day
    FROM (
        SELECT unnest(generate_series(GREATEST(f.first_day, CAST($since AS DATE)), a.last_day,
                                      INTERVAL '1 day')) AS d
        FROM (SELECT MIN(first_day) AS first_day FROM spells
              WHERE end_day IS NULL OR first_day < end_day) AS f
        CROSS JOIN (SELECT local_date(MAX(event_time)) AS last_day FROM adt_events) AS a
    ) AS calendar
),
grid AS (
    SELECT d.day, w.org_code, w.site, w.ward
    FROM days d
    JOIN wards w ON w.first_day <= d.day
)
SELECT g.day, g.org_code, g.site, g.ward,
       SUM(COALESCE(p.d_all, 0)) OVER w AS patients,
       SUM(COALESCE(p.d_7, 0)) OVER w AS stay_7_days,
       SUM(COALESCE(p.d_14, 0)) OVER w AS stay_14_days,
       SUM(COALESCE(p.d_21, 0)) OVER w AS stay_21_days
FROM grid g
LEFT JOIN per_day p
       ON p.org_code = g.org_code AND p.site = g.site AND p.ward = g.ward AND p.day = g.day
WINDOW w AS (PARTITION BY g.org_code, g.site, g.ward ORDER BY g.day
             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
