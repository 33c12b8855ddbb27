-- The surviving record of every patient record merged away by an A40 (patient merge: the
-- record in MRG-1 is merged into the one in PID-3, both kept as keyed pseudonyms). Merges
-- chain: a record merged into one that is itself merged later ends at the last survivor.
-- The chain is followed up to 16 merges, which also ends a loop a PAS should never send.
-- Should a record be merged twice, the later merge is the one that stands.
WITH RECURSIVE edges AS (
    SELECT prior, survivor
    FROM (
        SELECT prior_patient_key AS prior, patient_key AS survivor,
               ROW_NUMBER() OVER (PARTITION BY prior_patient_key
                                  ORDER BY event_time DESC, event_id DESC) AS newest
        FROM adt_events
        WHERE event_type = 'A40'
          AND prior_patient_key IS NOT NULL
          AND patient_key IS NOT NULL
          AND prior_patient_key <> patient_key
    ) AS merges
    WHERE newest = 1
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
