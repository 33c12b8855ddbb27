-- One row per spell of an admitted patient on one ward: from the admission (A01) or transfer
-- (A02) that put them there to the transfer or discharge (A03) that took them away; end_time
-- is NULL while they are still there.
--
-- Corrections are applied first, as the patient administration system means them:
--   * an encounter with an A11 (cancel admit) never happened;
--   * an A12 (cancel transfer) cancels the transfer it follows, an A13 (cancel discharge) the
--     discharge it follows, so the patient never left the ward;
--   * the patient is the surviving record of any A40 merges (kpi.patient_merges), so a
--     patient registered twice and merged reads as one person.
-- Events are ordered by when they happened (event_time), not when they were keyed in.
WITH cancelled_encounters AS (
    SELECT DISTINCT encounter_id
    FROM adt_events
    WHERE event_type = 'A11' AND encounter_id IS NOT NULL
),
events AS (
    SELECT e.org_code, e.site, e.ward, e.bed, e.encounter_id, e.specialty, e.admission_method,
           e.discharge_destination, e.event_type, e.event_time, e.event_id,
           CASE WHEN e.event_type IN ('A02', 'A12') THEN 'transfer'
                WHEN e.event_type IN ('A03', 'A13') THEN 'discharge'
                ELSE 'admission' END AS kind
    FROM adt_events e
    LEFT JOIN cancelled_encounters c ON c.encounter_id = e.encounter_id
    WHERE e.event_type IN ('A01', 'A02', 'A03', 'A12', 'A13')
      AND e.encounter_id IS NOT NULL
      AND c.encounter_id IS NULL
),
-- The next event of the same kind (transfer or discharge) in the encounter: ordering each
-- encounter by kind first keeps one partition per encounter, which is cheaper to window.
ordered AS (
    SELECT *,
           LEAD(kind) OVER k AS next_kind,
           LEAD(event_type) OVER k AS next_event
    FROM events
    WINDOW k AS (PARTITION BY encounter_id ORDER BY kind, event_time, event_type, event_id)
),
marked AS (
    SELECT *, CASE WHEN next_kind = kind THEN next_event END AS next_of_kind
    FROM ordered
),
moves AS (
    SELECT *
    FROM marked
    WHERE event_type IN ('A01', 'A02', 'A03')
      AND NOT (event_type = 'A02' AND COALESCE(next_of_kind, '') = 'A12')
      AND NOT (event_type = 'A03' AND COALESCE(next_of_kind, '') = 'A13')
),
spans AS (
    SELECT org_code, site, ward, bed, encounter_id, specialty, event_type AS start_event,
           event_time AS start_time,
           LEAD(event_type) OVER w AS end_event,
           LEAD(event_time) OVER w AS end_time,
           LEAD(discharge_destination) OVER w AS discharge_destination,
           MIN(CASE WHEN event_type = 'A01' THEN event_time END)
               OVER (PARTITION BY encounter_id) AS admit_time,
           MIN(CASE WHEN event_type = 'A01' THEN admission_method END)
               OVER (PARTITION BY encounter_id) AS admission_method
    FROM moves
    WINDOW w AS (PARTITION BY encounter_id ORDER BY event_time, event_type, event_id)
),
-- Each encounter's patient: the admission's record (else any the encounter's events name),
-- joined after the windows so the sorts above do not carry the long keys.
patients AS (
    SELECT encounter_id,
           COALESCE(MIN(CASE WHEN event_type = 'A01' THEN patient_key END),
                    MIN(patient_key)) AS patient_key
    FROM adt_events
    WHERE event_type IN ('A01', 'A02', 'A03') AND encounter_id IS NOT NULL
    GROUP BY encounter_id
)
SELECT s.org_code, s.site, s.ward, s.bed, COALESCE(m.patient_key, p.patient_key) AS patient_key,
       s.encounter_id, s.specialty, s.admission_method, s.admit_time, s.start_event,
       s.start_time, s.end_event, s.end_time, s.discharge_destination
FROM spans s
LEFT JOIN patients p ON p.encounter_id = s.encounter_id
LEFT JOIN kpi.patient_merges m ON m.prior_patient_key = p.patient_key
WHERE s.start_event <> 'A03'
