-- G&A bed occupancy at midnight: patients on general and acute wards at the midnight that
-- ends the day (kpi.ward_census, built from ADT with cancellations applied) over the G&A
-- beds open on those wards that day. Escalation above the bed base shows as over 100%.
SELECT c.day AS period, c.org_code, c.site, c.ward,
       CAST(c.patients AS DOUBLE) AS numerator,
       CAST(b.beds AS DOUBLE) AS denominator
FROM kpi.ward_census c
JOIN beds b
  ON b.org_code = c.org_code AND b.ward = c.ward
 AND b.valid_from <= c.day AND (b.valid_to IS NULL OR b.valid_to >= c.day)
WHERE b.ward_type = 'general_acute'
  AND c.day >= CAST($since AS DATE)
