-- Discharges before noon: of the day's discharges (a spell ending in an A03 that was not
-- cancelled; deaths, discharge destination 79, excluded), those before 12:00 on the trust's
-- clock. Counted on the ward the patient left from.
SELECT end_day AS period, org_code, site, ward,
       CAST(SUM(CASE WHEN local_hour(end_time) < 12 THEN 1 ELSE 0 END) AS DOUBLE) AS numerator,
       CAST(COUNT(*) AS DOUBLE) AS denominator
FROM kpi.inpatient_stays
WHERE end_event = 'A03'
  AND COALESCE(discharge_destination, '') <> '79'
  AND end_day >= CAST($since AS DATE)
GROUP BY end_day, org_code, site, ward
