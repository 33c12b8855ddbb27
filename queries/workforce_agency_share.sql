-- Agency share: hours worked by agency staff over all hours worked.
SELECT shift_date AS period, org_code, site, ward, staff_group,
       SUM(CASE WHEN contract = 'agency' THEN worked_hours ELSE 0.0 END) AS numerator,
       SUM(worked_hours) AS denominator
FROM workforce_shifts
WHERE shift_date >= CAST($since AS DATE)
GROUP BY shift_date, org_code, site, ward, staff_group
