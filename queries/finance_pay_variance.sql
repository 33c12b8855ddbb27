-- Pay variance: pay spend minus pay budget, pounds (positive is an overspend).
SELECT month AS period, org_code, site, specialty, cost_centre,
       CAST(SUM(actual - budget) AS DOUBLE) AS numerator,
       CAST(NULL AS DOUBLE) AS denominator
FROM finance_ledger
WHERE category = 'pay'
  AND month >= CAST($since AS DATE)
GROUP BY month, org_code, site, specialty, cost_centre
