-- The merge that stands for every patient record merged away by an A40 (patient merge: the
-- record in MRG-1 is merged into the one in PID-3, both kept as keyed pseudonyms): should a
-- record be merged twice, the later merge is the one that stands. Kept by merged record (`key`
-- in kpis.toml): new ADT rows recompute only the records their A40s name.
SELECT prior_patient_key, patient_key
FROM (
    SELECT prior_patient_key, patient_key,
           ROW_NUMBER() OVER (PARTITION BY prior_patient_key
                              ORDER BY event_time DESC, event_id DESC) AS newest
    FROM adt_events
    WHERE event_type = 'A40'
      AND prior_patient_key IS NOT NULL
      AND patient_key IS NOT NULL
      AND prior_patient_key <> patient_key
) AS merges
WHERE newest = 1
