-- Feed freshness: minutes from a feed's latest record to the end of the day (the trust's
-- clock), or to now for today. Every day from a feed's first record to the last day any feed
-- has reached carries the feed's latest record so far, so a silent feed shows growing
-- staleness, also on a day when no feed sent anything. Until ingest records arrival times, a
-- record's time is the time it carries: ADT when recorded (EVN-2), ED arrivals, theatre
-- milestones.
WITH records AS (
    -- Days before today come from each feed's latest record per day (kpi.feed_days): none of
    -- their records can be later than now.
    SELECT org_code, feed, day, latest FROM kpi.feed_days
    WHERE day < local_date(now())
    UNION ALL
    -- Today's records come from the lake, where now applies: a sender's clock running ahead
    -- must not make a feed look fresh before its records' time. ED and theatre records are
    -- filed under their time's UTC day, which is today's or yesterday's, so only those days'
    -- files are read; an ADT record is filed under its event's day, which may be any.
    SELECT org_code, 'adt', local_date(recorded_at), recorded_at FROM adt_events
    WHERE recorded_at >= local_day_start(local_date(now())) AND recorded_at <= now()
    UNION ALL
    SELECT org_code, 'ed', local_date(arrival_time), arrival_time FROM ed_attendances
    WHERE arrival_date >= CAST(local_date(now()) - INTERVAL '1 day' AS DATE)
      AND arrival_time >= local_day_start(local_date(now())) AND arrival_time <= now()
    UNION ALL
    SELECT org_code, 'theatre', local_date(event_time), event_time FROM theatre_events
    WHERE event_date >= CAST(local_date(now()) - INTERVAL '1 day' AS DATE)
      AND event_time >= local_day_start(local_date(now())) AND event_time <= now()
),
-- Days before the first one asked for matter only through each feed's latest day before it,
-- which carries on into the days asked for: that one day stands for them all. Kept by a
-- window over one grouped read: DataFusion reads a CTE again at each reference, so a second
-- branch for the days before would read today's files twice.
per_day AS (
    SELECT org_code, feed, day, latest
    FROM (
        SELECT org_code, feed, day, MAX(latest) AS latest,
               MAX(CASE WHEN day < CAST($since AS DATE) THEN day END)
                   OVER (PARTITION BY org_code, feed) AS last_before
        FROM records
        GROUP BY org_code, feed, day
    ) AS days
    WHERE day >= CAST($since AS DATE) OR day = last_before
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
