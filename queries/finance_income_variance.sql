-- Income variance: income earned minus planned, pounds (positive is ahead of plan).
SELECT month AS period, org_code, site, specialty, cost_centre,
       CAST(SUM(actual - budget) AS DOUBLE) AS numerator,
       CAST(NULL AS DOUBLE) AS denominator
FROM finance_ledger
WHERE category = 'income'
  AND month >= CAST($since AS DATE)
GROUP BY month, org_code, site, specialty, cost_centre
