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
-- Every site with an ED, whatever the window read, gets a row before its first change (no day,
-- no change), so a quiet site and the days before a site's first change show zero.
changes AS (
    SELECT org_code, site, day, delta, seen FROM per_day
    UNION ALL
    SELECT DISTINCT org_code, site, CAST(NULL AS DATE) AS day, 0 AS delta, false AS seen
    FROM ed_attendances
),
-- Windows over the one grouped read, not a calendar joined to it (DataFusion computes a CTE
-- again at each reference, here the latest versions of every attendance): each change's
-- running count holds until the site's next change, the last one until the last day data has
-- reached (arrivals and departures), not a week-long stay's removal day still to come.
counted AS (
    SELECT org_code, site, day,
           SUM(delta) OVER (
               PARTITION BY org_code, site ORDER BY day NULLS FIRST
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
           ) AS patients,
           LEAD(day) OVER (PARTITION BY org_code, site ORDER BY day NULLS FIRST) AS next_day,
           MIN(day) OVER () AS first_change,
           MAX(CASE WHEN seen THEN day END) OVER () AS last_day
    FROM changes
),
spans AS (
    SELECT c.org_code, c.site, c.patients,
           CASE WHEN c.day IS NULL THEN LEAST(c.first_change, f.day) ELSE c.day END AS from_day,
           LEAST(COALESCE(CAST(c.next_day - INTERVAL '1 day' AS DATE), c.last_day), c.last_day)
               AS to_day
    FROM counted c CROSS JOIN first f
),
census AS (
    SELECT org_code, site, patients, CAST(d AS DATE) AS day
    FROM (
        SELECT org_code, site, patients,
               unnest(generate_series(from_day, to_day, INTERVAL '1 day')) AS d
        FROM spans
        WHERE from_day <= to_day
    ) AS days
)
SELECT day AS period, org_code, site,
       CAST(patients AS DOUBLE) AS numerator,
       CAST(NULL AS DOUBLE) AS denominator
FROM census
WHERE day >= CAST($since AS DATE)
