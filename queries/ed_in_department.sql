-- Patients in the department at the midnight that ends the day: arrived on or before the day
-- and departed after it, or not yet departed (so today's value is the count now). As in the
-- bed census, each attendance adds one on its arrival day and removes one on its departure
-- day, and a running sum gives the count.
--
-- A run reads arrivals from a week before its first day: an attendance longer than a week is
-- a recording error (data quality flags it), not a patient in the department.
WITH stays AS (
    SELECT org_code, site, local_date(arrival_time) AS arrival_day,
           local_date(departure_time) AS departure_day
    FROM kpi.ed_attendances_latest
    WHERE arrival_date >= CAST(CAST($since AS DATE) - INTERVAL '8 days' AS DATE)
      AND local_date(arrival_time) >= CAST(CAST($since AS DATE) - INTERVAL '7 days' AS DATE)
),
-- Each stay read once, paired with +1 and -1: a UNION of two reads of `stays` would compute
-- the latest versions of every attendance twice, as CTEs are not kept between references.
deltas AS (
    SELECT s.org_code, s.site,
           CASE WHEN k.delta = 1 THEN s.arrival_day ELSE s.departure_day END AS day, k.delta
    FROM stays s
    CROSS JOIN (VALUES (1), (-1)) AS k(delta)
    WHERE k.delta = 1 OR s.departure_day IS NOT NULL
),
per_day AS (
    SELECT org_code, site, day, SUM(delta) AS delta FROM deltas GROUP BY org_code, site, day
),
days AS (
    SELECT CAST(d AS DATE) AS day
    FROM (
        SELECT unnest(generate_series(MIN(day), MAX(day), INTERVAL '1 day')) AS d
        FROM per_day
    ) AS calendar
),
grid AS (
    SELECT d.day, s.org_code, s.site
    FROM days d
    -- Every site with an ED, whatever the window read, so a quiet site shows zero.
    CROSS JOIN (SELECT DISTINCT org_code, site FROM ed_attendances) AS s
),
census AS (
    SELECT g.day, g.org_code, g.site,
           SUM(COALESCE(p.delta, 0)) OVER (
               PARTITION BY g.org_code, g.site ORDER BY g.day
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
           ) AS patients
    FROM grid g
    LEFT JOIN per_day p ON p.org_code = g.org_code AND p.site = g.site AND p.day = g.day
)
SELECT day AS period, org_code, site,
       CAST(patients AS DOUBLE) AS numerator,
       CAST(NULL AS DOUBLE) AS denominator
FROM census
WHERE day >= CAST($since AS DATE)
