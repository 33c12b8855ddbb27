-- Cases per list: completed operations over lists held.
SELECT session_date AS period, org_code, site, theatre, specialty,
       CAST(SUM(cases_completed) AS DOUBLE) AS numerator,
       CAST(COUNT(*) AS DOUBLE) AS denominator
FROM kpi.theatre_lists
WHERE session_date >= CAST($since AS DATE)
GROUP BY session_date, org_code, site, theatre, specialty
