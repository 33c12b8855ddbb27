-- Uncapped touch-time utilisation: all touch minutes, overruns included, over planned list
-- minutes, for lists held.
SELECT session_date AS period, org_code, site, theatre, specialty,
       CAST(SUM(touch_min) AS DOUBLE) AS numerator,
       CAST(SUM(planned_min) AS DOUBLE) AS denominator
FROM kpi.theatre_lists
WHERE session_date >= CAST($since AS DATE)
GROUP BY session_date, org_code, site, theatre, specialty
