-- One row per spell of an admitted patient on one ward: from the admission (A01) or transfer
-- (A02) that put them there to the transfer or discharge (A03) that took them away; end_time
-- is NULL while they are still there. start_day, end_day and admit_day are those times' days
-- on the trust's clock, worked out once here for the census and the KPIs that count by day.
--
-- Corrections are applied first, as the patient administration system means them:
--   * an encounter with an A11 (cancel admit) never happened;
--   * an A12 (cancel transfer) cancels the transfer it follows, an A13 (cancel discharge) the
--     discharge it follows, so the patient never left the ward;
--   * the patient is the surviving record of any A40 merges (kpi.patient_merges), so a
--     patient registered twice and merged reads as one person.
-- Events are ordered by when they happened (event_time), not when they were keyed in.
-- Each encounter's patient (the admission's record, else any its events name), admission time
-- and method; an encounter with an A11 is dropped here. One scan of the ADT events serves
-- every encounter-wide value, so the windows below need no partition per encounter.
WITH encounters AS (
    SELECT encounter_id,
           COALESCE(MIN(CASE WHEN event_type = 'A01' THEN patient_key END),
                    MIN(CASE WHEN event_type <> 'A11' THEN patient_key END)) AS patient_key,
           MIN(CASE WHEN event_type = 'A01' THEN event_time END) AS admit_time,
           MIN(CASE WHEN event_type = 'A01' THEN admission_method END) AS admission_method
    FROM adt_events
    WHERE event_type IN ('A01', 'A02', 'A03', 'A11') AND encounter_id IS NOT NULL
    GROUP BY encounter_id
    HAVING COUNT(CASE WHEN event_type = 'A11' THEN 1 END) = 0
),
-- Cancellations (A12, A13) are rare (under 1% of encounters): only their encounters' events go
-- through the window that finds which transfer or discharge each one cancels; every other
-- encounter's A01, A02 and A03 are its moves as they stand. That window over every event, with
-- its sort, was a third of the time the stays took to build.
corrected AS (
    SELECT DISTINCT encounter_id
    FROM adt_events
    WHERE event_type IN ('A12', 'A13') AND encounter_id IS NOT NULL
),
-- The events carry only what the windows need; the encounter-wide values join the spans at
-- the end, with the encounters (one row each) as the side held in memory. Joined before the
-- windows, every event carried them through the sort, and the join held every event: at
-- region scale more than the query memory pool.
events AS (
    SELECT org_code, site, ward, bed, encounter_id, specialty, discharge_destination,
           event_type, event_time, event_id,
           CASE WHEN event_type IN ('A02', 'A12') THEN 'transfer'
                WHEN event_type IN ('A03', 'A13') THEN 'discharge'
                ELSE 'admission' END AS kind
    FROM corrected c
    JOIN adt_events a USING (encounter_id)
    WHERE event_type IN ('A01', 'A02', 'A03', 'A12', 'A13')
),
-- The next event of the same kind (transfer or discharge) in the encounter. The windows
-- here and in spans run over all their events in one order, encounter first, and look at the
-- next row only when it is the same encounter's: a window partitioned by encounter paid a
-- fixed cost for each of the hundred thousand encounters.
ordered AS (
    SELECT *,
           CASE WHEN LEAD(encounter_id) OVER k = encounter_id AND LEAD(kind) OVER k = kind
                THEN LEAD(event_type) OVER k END AS next_of_kind
    FROM events
    WINDOW k AS (ORDER BY encounter_id, kind, event_time, event_type, event_id)
),
moves AS (
    SELECT org_code, site, ward, bed, encounter_id, specialty, discharge_destination,
           event_type, event_time, event_id
    FROM ordered
    WHERE event_type IN ('A01', 'A02', 'A03')
      AND NOT (event_type = 'A02' AND COALESCE(next_of_kind, '') = 'A12')
      AND NOT (event_type = 'A03' AND COALESCE(next_of_kind, '') = 'A13')
    UNION ALL
    -- Every other encounter's moves. Here and in events the corrected encounters are joined
    -- as the side held in memory (here an outer join kept where nothing matched); written as
    -- IN and NOT EXISTS, both held every event instead: 18.7 s against 15.5 s at region scale.
    SELECT org_code, site, ward, bed, a.encounter_id, specialty, discharge_destination,
           event_type, event_time, event_id
    FROM corrected c
    RIGHT JOIN adt_events a ON a.encounter_id = c.encounter_id
    WHERE a.event_type IN ('A01', 'A02', 'A03') AND a.encounter_id IS NOT NULL
      AND c.encounter_id IS NULL
),
spans AS (
    SELECT org_code, site, ward, bed, encounter_id, specialty,
           event_type AS start_event, event_time AS start_time,
           CASE WHEN LEAD(encounter_id) OVER w = encounter_id THEN LEAD(event_type) OVER w END
               AS end_event,
           CASE WHEN LEAD(encounter_id) OVER w = encounter_id THEN LEAD(event_time) OVER w END
               AS end_time,
           CASE WHEN LEAD(encounter_id) OVER w = encounter_id
                THEN LEAD(discharge_destination) OVER w END AS discharge_destination
    FROM moves
    WINDOW w AS (ORDER BY encounter_id, event_time, event_type, event_id)
)
SELECT s.org_code, s.site, s.ward, s.bed, COALESCE(m.patient_key, n.patient_key) AS patient_key,
       s.encounter_id, s.specialty, n.admission_method, n.admit_time, s.start_event,
       s.start_time, s.end_event, s.end_time, s.discharge_destination,
       local_date(s.start_time) AS start_day, local_date(s.end_time) AS end_day,
       local_date(n.admit_time) AS admit_day
FROM encounters n
JOIN spans s ON s.encounter_id = n.encounter_id
LEFT JOIN kpi.patient_merges m ON m.prior_patient_key = n.patient_key
WHERE s.start_event <> 'A03'
