-- Patients in a bed at the midnight that ends the day whose admission day was 7 or more days
-- before it (kpi.ward_census counts them on the ward they are on).
SELECT day AS period, org_code, site, ward,
       CAST(stay_7_days AS DOUBLE) AS numerator,
       CAST(NULL AS DOUBLE) AS denominator
FROM kpi.ward_census
WHERE day >= CAST($since AS DATE)
