-- Records rejected or flagged: rows ingest wrote to dq_issues, by the trust's day they arrived,
-- the feed and the team that owns the fix.
SELECT local_date(received_at) AS period, org_code, feed, owner,
       CAST(COUNT(*) AS DOUBLE) AS numerator,
       CAST(NULL AS DOUBLE) AS denominator
FROM dq_issues
-- Stored by UTC day; the trust's day can begin an hour earlier.
WHERE received_date >= CAST(CAST($since AS DATE) - INTERVAL '1 day' AS DATE)
  AND local_date(received_at) >= CAST($since AS DATE)
GROUP BY local_date(received_at), org_code, feed, owner
