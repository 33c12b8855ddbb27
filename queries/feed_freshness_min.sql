-- Feed freshness: minutes from a feed's latest record to the end of the day (the trust's
-- clock), or to now for today. Every day from a feed's first record to the last day any feed
-- has reached carries the feed's latest record so far, so a silent feed shows growing
-- staleness, also on a day when no feed sent anything. Until ingest records arrival times, a
-- record's time is the time it carries: ADT when recorded (EVN-2), ED arrivals, theatre
-- milestones.
WITH records AS (
    SELECT org_code, 'adt' AS feed, recorded_at AS seen_at FROM adt_events
    UNION ALL
    SELECT org_code, 'ed' AS feed, arrival_time AS seen_at FROM ed_attendances
    UNION ALL
    SELECT org_code, 'theatre' AS feed, event_time AS seen_at FROM theatre_events
),
-- Days before the first one asked for matter only through each feed's latest record before
-- it, which carries on into the days asked for: that one record stands for them all, so a
-- tick's run groups only its own days by day, not every record of every feed.
per_day AS (
    SELECT org_code, feed, local_date(seen_at) AS day, MAX(seen_at) AS latest
    FROM records
    WHERE seen_at <= now() AND seen_at >= local_day_start(CAST($since AS DATE))
    GROUP BY org_code, feed, local_date(seen_at)
    UNION ALL
    SELECT org_code, feed, local_date(MAX(seen_at)) AS day, MAX(seen_at) AS latest
    FROM records
    WHERE seen_at <= now() AND seen_at < local_day_start(CAST($since AS DATE))
    GROUP BY org_code, feed
),
-- Each day with records holds until the feed's next such day, the last one until the last
-- day of all. Windows over the one grouped read, not a calendar joined to it: the tables are
-- read once, not once per reference.
spans AS (
    SELECT org_code, feed, day, latest,
           COALESCE(
               CAST(LEAD(day) OVER (PARTITION BY org_code, feed ORDER BY day) - INTERVAL '1 day'
                    AS DATE),
               MAX(day) OVER ()
           ) AS until
    FROM per_day
),
carried AS (
    SELECT org_code, feed, latest, CAST(d AS DATE) AS day
    FROM (
        SELECT org_code, feed, latest,
               unnest(generate_series(day, until, INTERVAL '1 day')) AS d
        FROM spans
    ) AS days
)
SELECT day AS period, org_code, feed,
       minutes_between(
           latest,
           LEAST(local_day_start(CAST(day + INTERVAL '1 day' AS DATE)), now())
       ) AS numerator,
       CAST(NULL AS DOUBLE) AS denominator
FROM carried
WHERE day >= CAST($since AS DATE)
