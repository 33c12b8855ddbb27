-- Patients in the department at the midnight that ends the day: arrived on or before the day
-- and departed after it, or not yet departed (so today's value is the count now). As in the
-- bed census, each attendance adds one on its arrival day and removes one on its departure
-- day, and a running sum gives the count.
--
-- An attendance counts for a week at most: one longer is a recording error (data quality
-- flags it), not a patient in the department. It is removed on the eighth day after its
-- arrival if it has not departed by then, so a day's count never depends on how far back a
-- run reads (a run reads arrivals from a week before its first day).
WITH stays AS (
    SELECT org_code, site, local_date(arrival_time) AS arrival_day,
           local_date(departure_time) AS departure_day
    FROM kpi.ed_attendances_latest
    WHERE arrival_date >= CAST(CAST($since AS DATE) - INTERVAL '8 days' AS DATE)
      AND local_date(arrival_time) >= CAST(CAST($since AS DATE) - INTERVAL '7 days' AS DATE)
),
-- Each stay read once, paired with +1 and -1: a UNION of two reads of `stays` would compute
-- the latest versions of every attendance twice, as CTEs are not kept between references.
-- `seen` marks the days that data has reached (arrivals and departures): the calendar ends
-- at the last of them, not at a week-long stay's removal day still to come.
deltas AS (
    SELECT s.org_code, s.site,
           CASE WHEN k.delta = 1 THEN s.arrival_day
                WHEN s.departure_day < s.week_over THEN s.departure_day
                ELSE s.week_over END AS day,
           k.delta,
           k.delta = 1 OR s.departure_day IS NOT NULL AS seen
    FROM (SELECT *, CAST(arrival_day + INTERVAL '8 days' AS DATE) AS week_over FROM stays) s
    CROSS JOIN (VALUES (1), (-1)) AS k(delta)
),
per_day AS (
    SELECT org_code, site, day, SUM(delta) AS delta, bool_or(seen) AS seen
    FROM deltas GROUP BY org_code, site, day
),
-- The calendar starts at the run's first day (or the first arrival, in a full run) even when
-- the week read before it holds nothing, so a windowed run has every day a full run has.
first AS (
    SELECT GREATEST(CAST($since AS DATE), MIN(arrival_date)) AS day FROM ed_attendances
),
days AS (
    SELECT CAST(d AS DATE) AS day
    FROM (
        SELECT unnest(generate_series(LEAST(MIN(p.day), MIN(f.day)),
                                      MAX(CASE WHEN p.seen THEN p.day END),
                                      INTERVAL '1 day')) AS d
        FROM per_day p CROSS JOIN first f
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
