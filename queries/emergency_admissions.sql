-- Emergency admissions: admissions (A01, not cancelled by an A11) whose admission method is in
-- the NHS Data Dictionary emergency group: 21–25, 28 and 2A–2D. Counted on the day of
-- admission, at the admitting site, by the admitting specialty.
SELECT start_day AS period, org_code, site, specialty,
       CAST(COUNT(*) AS DOUBLE) AS numerator,
       CAST(NULL AS DOUBLE) AS denominator
FROM kpi.inpatient_stays
WHERE start_event = 'A01'
  AND admission_method IN ('21', '22', '23', '24', '25', '28', '2A', '2B', '2C', '2D')
  AND start_day >= CAST($since AS DATE)
GROUP BY start_day, org_code, site, specialty
