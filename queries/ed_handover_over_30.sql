-- Handovers over 30 minutes: of ambulance arrivals with a recorded handover, those handed
-- over more than 30 minutes after the ambulance arrived. By day of arrival.
SELECT local_date(arrival_time) AS period, org_code, site,
       CAST(SUM(CASE WHEN minutes_between(ambulance_arrival_time, handover_time) > 30
                     THEN 1 ELSE 0 END) AS DOUBLE) AS numerator,
       CAST(COUNT(minutes_between(ambulance_arrival_time, handover_time)) AS DOUBLE)
           AS denominator
FROM kpi.ed_attendances_latest
-- Arrivals are stored by UTC day; the trust's day can begin an hour earlier.
WHERE arrival_date >= CAST(CAST($since AS DATE) - INTERVAL '1 day' AS DATE)
  AND local_date(arrival_time) >= CAST($since AS DATE)
GROUP BY local_date(arrival_time), org_code, site
