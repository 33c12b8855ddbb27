-- One row per ED attendance: the latest of the versions its system sent. ED systems send an
-- attendance again as it progresses (at arrival, then when the patient is seen, admitted or
-- leaves) and a nightly extract lists a patient still in the department again once they
-- have left; ingest keeps every version. Milestones are only ever added, so the latest
-- version is the most complete: departed before still in the department, then the latest
-- departure, decision to admit, seen, assessment and handover times; the remaining columns
-- only make the choice deterministic.
--
-- Versions are told apart within the UTC day of arrival (the table's partition), so a query
-- that filters `arrival_date` still reads only the days it needs, and a day's rows come only
-- from that day's versions: the view is kept from `$since` on (`day` in kpis.toml).
--
-- Each day's rows are put in one order, attendance first and its latest version first, and
-- a row is kept when it starts a new attendance. Ranking with one window partition per
-- attendance cost more than everything else in an ED KPI (DataFusion pays a fixed cost per
-- partition; benches/RESULTS.md), whether or not the attendance was sent more than once.
SELECT attendance_id, org_code, site, patient_key, arrival_time, arrival_mode,
       ambulance_arrival_time, handover_time, acuity, initial_assessment_time, seen_time,
       decision_to_admit_time, departure_time, disposal, age_band, chief_complaint,
       arrival_date
FROM (
    SELECT *,
           LAG(org_code) OVER v AS previous_org,
           LAG(attendance_id) OVER v AS previous_id,
           ROW_NUMBER() OVER v AS n
    FROM ed_attendances
    WHERE arrival_date >= CAST($since AS DATE)
    WINDOW v AS (
        PARTITION BY arrival_date
        ORDER BY org_code, attendance_id,
                 departure_time IS NULL, departure_time DESC, disposal IS NULL,
                 decision_to_admit_time DESC NULLS LAST, seen_time DESC NULLS LAST,
                 initial_assessment_time DESC NULLS LAST, handover_time DESC NULLS LAST,
                 arrival_time DESC, acuity DESC NULLS LAST, disposal DESC,
                 age_band DESC NULLS LAST, chief_complaint DESC NULLS LAST,
                 patient_key DESC NULLS LAST, site DESC, arrival_mode DESC,
                 ambulance_arrival_time DESC NULLS LAST
    )
) AS versions
-- Each IS DISTINCT FROM in parentheses: without them the parser takes the OR between the two
-- as an operand of the first.
WHERE n = 1
   OR (previous_org IS DISTINCT FROM org_code)
   OR (previous_id IS DISTINCT FROM attendance_id)
