-- Where each admitted patient is now: one row per spell still open in kpi.inpatient_stays
-- (admissions, transfers and discharges with their A11/A12/A13 cancellations applied), with
-- the patient as the surviving record of any A40 merges.
--
-- An A08 (update patient information) sent while the patient is on the ward carries the
-- visit as the PAS now holds it: the latest one's bed and specialty stand (where it has
-- them). An A08 naming another ward is not a transfer (a transfer is an A02) and does not
-- move anyone.
WITH open_spells AS (
    SELECT * FROM kpi.inpatient_stays WHERE end_time IS NULL
),
updates AS (
    SELECT s.encounter_id, s.start_time, u.bed, u.specialty, u.event_time, u.event_id
    FROM open_spells s
    JOIN adt_events u
      ON u.encounter_id = s.encounter_id
     AND u.event_type = 'A08'
     AND u.ward = s.ward
     AND u.event_time >= s.start_time
),
latest AS (
    SELECT encounter_id, start_time, bed, specialty,
           ROW_NUMBER() OVER (PARTITION BY encounter_id, start_time
                              ORDER BY event_time DESC, event_id DESC) AS newest
    FROM updates
)
SELECT s.org_code, s.site, s.ward, COALESCE(l.bed, s.bed) AS bed, s.patient_key,
       s.encounter_id, COALESCE(l.specialty, s.specialty) AS specialty, s.admission_method,
       s.admit_time, s.start_event AS arrived_by, s.start_time AS on_ward_since
FROM open_spells s
LEFT JOIN latest l
       ON l.encounter_id = s.encounter_id AND l.start_time = s.start_time AND l.newest = 1
