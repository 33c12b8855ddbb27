-- ED attendances: arrivals by day (the trust's clock), site and arrival mode.
SELECT local_date(arrival_time) AS period, org_code, site, arrival_mode,
       CAST(COUNT(*) AS DOUBLE) AS numerator,
       CAST(NULL AS DOUBLE) AS denominator
FROM kpi.ed_attendances_latest
-- Arrivals are stored by UTC day; the trust's day can begin an hour earlier.
WHERE arrival_date >= CAST(CAST($since AS DATE) - INTERVAL '1 day' AS DATE)
  AND local_date(arrival_time) >= CAST($since AS DATE)
GROUP BY local_date(arrival_time), org_code, site, arrival_mode
