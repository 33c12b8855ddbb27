-- Early finishes: lists whose last patient left theatre more than $early_finish_grace_min
-- minutes before the planned end, over lists with a completed case.
SELECT session_date AS period, org_code, site, theatre, specialty,
       CAST(SUM(CASE WHEN minutes_between(last_out, planned_end)
                     > $early_finish_grace_min THEN 1 ELSE 0 END)
            AS DOUBLE) AS numerator,
       CAST(COUNT(*) AS DOUBLE) AS denominator
FROM kpi.theatre_lists
WHERE session_date >= CAST($since AS DATE)
  AND last_out IS NOT NULL
GROUP BY session_date, org_code, site, theatre, specialty
