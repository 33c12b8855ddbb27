-- Feed freshness: minutes from a feed's latest record to the end of the day (the trust's
-- clock), or to now for today. A day without records carries the latest earlier one, so a
-- silent feed shows growing staleness. Until ingest records arrival times, a record's time is
-- the time it carries: ADT when recorded (EVN-2), ED arrivals, theatre milestones.
WITH records AS (
    SELECT org_code, 'adt' AS feed, recorded_at AS seen_at FROM adt_events
    UNION ALL
    SELECT org_code, 'ed' AS feed, arrival_time AS seen_at FROM ed_attendances
    UNION ALL
    SELECT org_code, 'theatre' AS feed, event_time AS seen_at FROM theatre_events
),
per_day AS (
    SELECT org_code, feed, local_date(seen_at) AS day, MAX(seen_at) AS latest
    FROM records
    WHERE seen_at <= now()
    GROUP BY org_code, feed, local_date(seen_at)
),
grid AS (
    SELECT d.day, f.org_code, f.feed
    FROM (SELECT DISTINCT day FROM per_day) AS d
    CROSS JOIN (SELECT DISTINCT org_code, feed FROM per_day) AS f
),
carried AS (
    SELECT g.day, g.org_code, g.feed,
           MAX(p.latest) OVER (
               PARTITION BY g.org_code, g.feed ORDER BY g.day
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
           ) AS latest
    FROM grid g
    LEFT JOIN per_day p ON p.org_code = g.org_code AND p.feed = g.feed AND p.day = g.day
)
SELECT day AS period, org_code, feed,
       minutes_between(
           latest,
           LEAST(local_day_start(CAST(day + INTERVAL '1 day' AS DATE)), now())
       ) AS numerator,
       CAST(NULL AS DOUBLE) AS denominator
FROM carried
WHERE day >= CAST($since AS DATE)
  AND latest IS NOT NULL
