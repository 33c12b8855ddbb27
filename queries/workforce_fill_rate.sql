-- Fill rate: hours worked over hours planned on the roster (an unfilled shift worked none).
SELECT shift_date AS period, org_code, site, ward, staff_group,
       SUM(worked_hours) AS numerator,
       SUM(planned_hours) AS denominator
FROM workforce_shifts
WHERE shift_date >= CAST($since AS DATE)
GROUP BY shift_date, org_code, site, ward, staff_group
