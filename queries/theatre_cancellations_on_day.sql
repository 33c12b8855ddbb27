-- On-the-day cancellations: cases cancelled on the day over cases booked on lists held.
SELECT session_date AS period, org_code, site, theatre, specialty,
       CAST(SUM(cases_cancelled) AS DOUBLE) AS numerator,
       CAST(SUM(cases_booked) AS DOUBLE) AS denominator
FROM kpi.theatre_lists
WHERE session_date >= CAST($since AS DATE)
GROUP BY session_date, org_code, site, theatre, specialty
