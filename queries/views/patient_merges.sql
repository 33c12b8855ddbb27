-- The surviving record of every patient record merged away by an A40 (kpi.merge_edges, the
-- merge that stands for each). Merges chain: a record merged into one that is itself merged
-- later ends at the last survivor. The chain is followed up to 16 merges, which also ends a
-- loop a PAS should never send.
WITH RECURSIVE edges AS (
    SELECT prior_patient_key AS prior, patient_key AS survivor
    FROM kpi.merge_edges
),
chain AS (
    SELECT prior, survivor, 1 AS steps FROM edges
    UNION ALL
    SELECT c.prior, e.survivor, c.steps + 1
    FROM chain c
    JOIN edges e ON e.prior = c.survivor
    WHERE c.steps < 16
)
SELECT prior AS prior_patient_key, survivor AS patient_key
FROM (
    SELECT prior, survivor,
           ROW_NUMBER() OVER (PARTITION BY prior ORDER BY steps DESC) AS last
    FROM chain
) AS ends
WHERE last = 1
