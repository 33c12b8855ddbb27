-- Each feed's latest record on each day (the trust's clock), per day the lake files its
-- records under: ADT when recorded (EVN-2), ED arrivals, theatre milestones. Feed freshness
-- reads this summary instead of every record of every feed, which it would otherwise read on
-- every tick (it reads the clock). Kept up to date from a day (`day = "lake_day"` in
-- kpis.toml): a row comes only from the lake rows of its `lake_day`, so new rows recompute
-- only the days they land on. An ADT record filed on one day may carry a time of another
-- (EVN-2 is when it was keyed in), so a day's records can sit in more than one row.
SELECT org_code, 'adt' AS feed, event_date AS lake_day, local_date(recorded_at) AS day,
       MAX(recorded_at) AS latest
FROM adt_events
WHERE event_date >= CAST($since AS DATE)
GROUP BY org_code, event_date, local_date(recorded_at)
UNION ALL
SELECT org_code, 'ed' AS feed, arrival_date AS lake_day, local_date(arrival_time) AS day,
       MAX(arrival_time) AS latest
FROM ed_attendances
WHERE arrival_date >= CAST($since AS DATE)
GROUP BY org_code, arrival_date, local_date(arrival_time)
UNION ALL
SELECT org_code, 'theatre' AS feed, event_date AS lake_day, local_date(event_time) AS day,
       MAX(event_time) AS latest
FROM theatre_events
WHERE event_date >= CAST($since AS DATE)
GROUP BY org_code, event_date, local_date(event_time)
