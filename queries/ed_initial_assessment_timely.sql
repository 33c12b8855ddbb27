-- Timely initial assessment: of the attendances with an initial assessment, those assessed
-- within $initial_assessment_target_min minutes of arrival. By day of arrival.
SELECT local_date(arrival_time) AS period, org_code, site,
       CAST(SUM(CASE WHEN minutes_between(arrival_time, initial_assessment_time)
                          <= $initial_assessment_target_min
                     THEN 1 ELSE 0 END) AS DOUBLE) AS numerator,
       CAST(COUNT(initial_assessment_time) AS DOUBLE) AS denominator
FROM kpi.ed_attendances_latest
-- Arrivals are stored by UTC day; the trust's day can begin an hour earlier.
WHERE arrival_date >= CAST(CAST($since AS DATE) - INTERVAL '1 day' AS DATE)
  AND local_date(arrival_time) >= CAST($since AS DATE)
GROUP BY local_date(arrival_time), org_code, site
