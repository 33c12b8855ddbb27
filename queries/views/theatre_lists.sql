-- One row per operating list held (lists cancelled before the day are not held): its
-- planned minutes, first patient into the anaesthetic room, last patient out of theatre,
-- touch minutes in all and inside the planned times, turnarounds, and cases booked,
-- cancelled on the day and completed. A list held with no cases is all downtime.
WITH per_list AS (
    SELECT org_code, session_id,
           MIN(CASE WHEN NOT cancelled THEN in_anaesthetic_room END) AS first_in,
           MAX(CASE WHEN NOT cancelled THEN out_of_theatre END) AS last_out,
           SUM(touch_min) AS touch_min,
           SUM(touch_capped_min) AS touch_capped_min,
           SUM(turnaround_min) AS turnaround_min,
           COUNT(turnaround_min) AS turnarounds,
           COUNT(*) AS cases_booked,
           SUM(CASE WHEN cancelled THEN 1 ELSE 0 END) AS cases_cancelled,
           COUNT(CASE WHEN NOT cancelled THEN out_of_theatre END) AS cases_completed
    FROM kpi.theatre_cases
    GROUP BY org_code, session_id
)
SELECT s.org_code, s.site, s.theatre, s.session_id, s.session_date, s.specialty,
       s.planned_start, s.planned_end,
       minutes_between(s.planned_start, s.planned_end) AS planned_min,
       c.first_in, c.last_out,
       COALESCE(c.touch_min, 0.0) AS touch_min,
       COALESCE(c.touch_capped_min, 0.0) AS touch_capped_min,
       COALESCE(c.turnaround_min, 0.0) AS turnaround_min,
       COALESCE(c.turnarounds, 0) AS turnarounds,
       COALESCE(c.cases_booked, 0) AS cases_booked,
       COALESCE(c.cases_cancelled, 0) AS cases_cancelled,
       COALESCE(c.cases_completed, 0) AS cases_completed
FROM theatre_sessions s
LEFT JOIN per_list c ON c.org_code = s.org_code AND c.session_id = s.session_id
WHERE NOT s.cancelled
