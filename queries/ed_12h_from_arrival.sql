-- 12 hours from arrival: of the attendances that have left the department, those that spent
-- more than 12 hours from arrival to departure. By day of arrival.
SELECT local_date(arrival_time) AS period, org_code, site,
       CAST(SUM(CASE WHEN departure_time > arrival_time + INTERVAL '12 hours' THEN 1 ELSE 0 END) AS DOUBLE) AS numerator,
       CAST(SUM(CASE WHEN departure_time IS NOT NULL THEN 1 ELSE 0 END) AS DOUBLE) AS denominator
FROM kpi.ed_attendances_latest
-- Arrivals are stored by UTC day; the trust's day can begin an hour earlier.
WHERE arrival_date >= CAST(CAST($since AS DATE) - INTERVAL '1 day' AS DATE)
  AND local_date(arrival_time) >= CAST($since AS DATE)
GROUP BY local_date(arrival_time), org_code, site
