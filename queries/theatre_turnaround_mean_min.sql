-- Mean turnaround: minutes from one patient out of theatre to the next patient's
-- anaesthesia start on the same list, summed, over the number of turnarounds.
SELECT session_date AS period, org_code, site, theatre, specialty,
       CAST(SUM(turnaround_min) AS DOUBLE) AS numerator,
       CAST(SUM(turnarounds) AS DOUBLE) AS denominator
FROM kpi.theatre_lists
WHERE session_date >= CAST($since AS DATE)
GROUP BY session_date, org_code, site, theatre, specialty
