-- Capped touch-time utilisation: touch minutes inside each list's planned start and end
-- over planned list minutes, for lists held.
SELECT session_date AS period, org_code, site, theatre, specialty,
       CAST(SUM(touch_capped_min) AS DOUBLE) AS numerator,
       CAST(SUM(planned_min) AS DOUBLE) AS denominator
FROM kpi.theatre_lists
WHERE session_date >= CAST($since AS DATE)
GROUP BY session_date, org_code, site, theatre, specialty
