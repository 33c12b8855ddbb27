-- Mean time to initial assessment: minutes from arrival to initial assessment, summed, over
-- attendances with an initial assessment. By day of arrival.
SELECT local_date(arrival_time) AS period, org_code, site,
       SUM(minutes_between(arrival_time, initial_assessment_time)) AS numerator,
       CAST(COUNT(initial_assessment_time) AS DOUBLE) AS denominator
FROM kpi.ed_attendances_latest
-- Arrivals are stored by UTC day; the trust's day can begin an hour earlier.
WHERE arrival_date >= CAST(CAST($since AS DATE) - INTERVAL '1 day' AS DATE)
  AND local_date(arrival_time) >= CAST($since AS DATE)
GROUP BY local_date(arrival_time), org_code, site
