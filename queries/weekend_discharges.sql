-- Weekend discharges: of a week's discharges (Monday to Sunday on the trust's clock; deaths,
-- discharge destination 79, excluded), those on Saturday or Sunday.
WITH discharges AS (
    SELECT org_code, site, ward, end_day AS day
    FROM kpi.inpatient_stays
    WHERE end_event = 'A03'
      AND COALESCE(discharge_destination, '') <> '79'
)
SELECT CAST(date_trunc('week', day) AS DATE) AS period, org_code, site, ward,
       CAST(SUM(CASE WHEN date_part('dow', day) IN (0, 6) THEN 1 ELSE 0 END) AS DOUBLE)
           AS numerator,
       CAST(COUNT(*) AS DOUBLE) AS denominator
FROM discharges
WHERE CAST(date_trunc('week', day) AS DATE) >= CAST($since AS DATE)
GROUP BY CAST(date_trunc('week', day) AS DATE), org_code, site, ward
