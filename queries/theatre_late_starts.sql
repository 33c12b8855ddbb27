-- Late starts: lists whose first patient entered the anaesthetic room more than
-- $late_start_grace_min minutes after the planned start, over lists with a patient.
SELECT session_date AS period, org_code, site, theatre, specialty,
       CAST(SUM(CASE WHEN minutes_between(planned_start, first_in) > $late_start_grace_min THEN 1 ELSE 0 END)
            AS DOUBLE) AS numerator,
       CAST(COUNT(*) AS DOUBLE) AS denominator
FROM kpi.theatre_lists
WHERE session_date >= CAST($since AS DATE)
  AND first_in IS NOT NULL
GROUP BY session_date, org_code, site, theatre, specialty
