//! Typed reads of what the pages list row by row rather than chart: the latest records ingest
//! refused or flagged (`dq_issues`), and a day's theatre lists with their milestones so far.
//! Each is one query over the tables and the acknowledged rows; the callers get plain records,
//! never batches.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use chrono::{DateTime, NaiveDate, Utc};

use crate::query::{QueryEngine, QueryError};
use crate::schema::{common, dq_issues, theatre_events as ev, theatre_sessions as ts};

/// Column `i` of a batch as text, nulls as `None`.
fn texts(batch: &RecordBatch, i: usize) -> Result<Vec<Option<String>>, QueryError> {
    let column = cast(batch.column(i), &DataType::Utf8)?;
    let column = column.as_string::<i32>();
    Ok((0..column.len())
        .map(|r| column.is_valid(r).then(|| column.value(r).to_string()))
        .collect())
}

/// Column `i` of a batch, a timestamp or an integer, as a 64-bit integer (a timestamp's
/// microseconds since the epoch).
fn ints(batch: &RecordBatch, i: usize) -> Result<Vec<Option<i64>>, QueryError> {
    let column = cast(batch.column(i), &DataType::Int64)?;
    let column = column.as_primitive::<Int64Type>();
    Ok((0..column.len())
        .map(|r| column.is_valid(r).then(|| column.value(r)))
        .collect())
}

fn time(micros: Option<i64>) -> Option<DateTime<Utc>> {
    micros.and_then(DateTime::from_timestamp_micros)
}

/// A record a feed sent that ingest refused or flagged, as `dq_issues` keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Issue {
    pub received_at: DateTime<Utc>,
    pub feed: String,
    /// The team told about it.
    pub owner: Option<String>,
    /// Which delivery: a message's sender and control id, a file, an HTTP request.
    pub record: Option<String>,
    pub reason: String,
}

/// The latest `limit` issues, newest first.
pub async fn latest_issues(engine: &QueryEngine, limit: usize) -> Result<Vec<Issue>, QueryError> {
    let sql = format!(
        "SELECT {at}, {feed}, {owner}, {record}, {reason} FROM dq_issues \
         ORDER BY {at} DESC, {feed}, {record} LIMIT {limit}",
        at = dq_issues::RECEIVED_AT,
        feed = dq_issues::FEED,
        owner = dq_issues::OWNER,
        record = dq_issues::RECORD_REF,
        reason = dq_issues::REASON,
    );
    let output = engine.sql(&sql).await?;
    let mut read = Vec::with_capacity(output.num_rows());
    for batch in &output.batches {
        let at = ints(batch, 0)?;
        let (feed, owner, record, reason) = (
            texts(batch, 1)?,
            texts(batch, 2)?,
            texts(batch, 3)?,
            texts(batch, 4)?,
        );
        for row in 0..batch.num_rows() {
            let Some(received_at) = time(at[row]) else {
                continue;
            };
            read.push(Issue {
                received_at,
                feed: feed[row].clone().unwrap_or_default(),
                owner: owner[row].clone(),
                record: record[row].clone(),
                reason: reason[row].clone().unwrap_or_default(),
            });
        }
    }
    Ok(read)
}

/// One milestone of a case on a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Milestone {
    pub case_id: String,
    /// Position of the case on the list (1-based; `i32::MAX` when the feed did not say).
    pub planned_order: i32,
    /// A milestone name, or `cancelled`.
    pub milestone: String,
    pub time: DateTime<Utc>,
    pub procedure_name: Option<String>,
    /// The minutes booked for the case, anaesthesia start to out of theatre.
    pub planned_duration_min: Option<i32>,
}

/// A theatre list of one day with its milestones so far.
#[derive(Debug, Clone, PartialEq)]
pub struct TheatreList {
    pub session_id: String,
    pub site: String,
    pub theatre: String,
    pub specialty: Option<String>,
    pub planned_start: DateTime<Utc>,
    pub planned_end: DateTime<Utc>,
    /// The whole list was cancelled before the day.
    pub cancelled: bool,
    pub milestones: Vec<Milestone>,
}

/// The lists of the trust's day `date` with their milestones up to `until` (a feed that sends
/// ahead must not move a room into the future), ordered by session id.
pub async fn theatre_lists(
    engine: &QueryEngine,
    date: NaiveDate,
    until: DateTime<Utc>,
) -> Result<Vec<TheatreList>, QueryError> {
    let sql = format!(
        "SELECT s.{sid}, s.{site}, s.{theatre}, s.{specialty}, s.{start}, s.{end}, \
                CAST(s.{cancelled} AS VARCHAR), e.{case}, e.{order}, e.{milestone}, e.{at}, \
                e.{procedure}, e.{duration} \
         FROM theatre_sessions s \
         LEFT JOIN (SELECT * FROM theatre_events \
                    WHERE {event_date} BETWEEN DATE '{date}' - INTERVAL '1 day' \
                                          AND DATE '{date}' + INTERVAL '1 day') e \
           ON e.{sid} = s.{sid} AND e.{at} <= to_timestamp_micros({until}) \
         WHERE s.{date_col} = DATE '{date}'",
        sid = ts::SESSION_ID,
        site = common::SITE,
        theatre = ts::THEATRE,
        specialty = ts::SPECIALTY,
        start = ts::PLANNED_START,
        end = ts::PLANNED_END,
        cancelled = ts::CANCELLED,
        case = ev::CASE_ID,
        order = ev::PLANNED_ORDER,
        milestone = ev::MILESTONE,
        at = ev::EVENT_TIME,
        procedure = ev::PROCEDURE_NAME,
        duration = ev::PLANNED_DURATION_MIN,
        date_col = ts::SESSION_DATE,
        // Only the partitions a day's lists can have events in (a list that runs past
        // midnight, a day cut in UTC or local time), not the whole history.
        event_date = ev::EVENT_DATE,
        until = until.timestamp_micros(),
    );
    let output = engine.sql(&sql).await?;
    let mut lists: BTreeMap<String, TheatreList> = BTreeMap::new();
    for batch in &output.batches {
        let (id, site, theatre, specialty) = (
            texts(batch, 0)?,
            texts(batch, 1)?,
            texts(batch, 2)?,
            texts(batch, 3)?,
        );
        let (start, end, cancelled) = (ints(batch, 4)?, ints(batch, 5)?, texts(batch, 6)?);
        let (case, order, milestone, at, procedure, duration) = (
            texts(batch, 7)?,
            ints(batch, 8)?,
            texts(batch, 9)?,
            ints(batch, 10)?,
            texts(batch, 11)?,
            ints(batch, 12)?,
        );
        for row in 0..batch.num_rows() {
            let (Some(sid), Some(start), Some(end)) =
                (id[row].clone(), time(start[row]), time(end[row]))
            else {
                continue;
            };
            let list = lists.entry(sid.clone()).or_insert_with(|| TheatreList {
                session_id: sid,
                site: site[row].clone().unwrap_or_default(),
                theatre: theatre[row].clone().unwrap_or_default(),
                specialty: specialty[row].clone(),
                planned_start: start,
                planned_end: end,
                cancelled: cancelled[row].as_deref() == Some("true"),
                milestones: Vec::new(),
            });
            if let (Some(case_id), Some(milestone), Some(time)) =
                (case[row].clone(), milestone[row].clone(), time(at[row]))
            {
                list.milestones.push(Milestone {
                    case_id,
                    planned_order: order[row]
                        .and_then(|o| i32::try_from(o).ok())
                        .unwrap_or(i32::MAX),
                    milestone,
                    time,
                    procedure_name: procedure[row].clone(),
                    planned_duration_min: duration[row].and_then(|d| i32::try_from(d).ok()),
                });
            }
        }
    }
    Ok(lists.into_values().collect())
}

/// The emergency department of one site at an instant, from the latest version of each
/// attendance (`kpi.ed_attendances_latest`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EdNow {
    pub site: String,
    /// Arrived and not yet departed.
    pub in_department: i64,
    /// Of those, in the department 4 and 12 hours or more since arrival.
    pub over_4h: i64,
    pub over_12h: i64,
    /// In the department with a decision to admit: waiting for a bed.
    pub decisions_to_admit: i64,
    /// Arrived by ambulance and not yet handed over.
    pub ambulances_waiting: i64,
    /// Mean minutes from ambulance arrival to handover of the handovers in the last hour.
    pub handover_mean_min: Option<f64>,
}

/// Each site's emergency department at `now`. Arrivals from a week before count (a longer
/// attendance is a recording error), none after `now`.
pub async fn ed_now(engine: &QueryEngine, now: DateTime<Utc>) -> Result<Vec<EdNow>, QueryError> {
    let at = format!("to_timestamp_micros({})", now.timestamp_micros());
    let since = (now - chrono::Duration::days(8)).date_naive();
    let sql = format!(
        "WITH here AS (
             SELECT * FROM kpi.ed_attendances_latest
             WHERE arrival_date >= DATE '{since}' AND arrival_time <= {at}
               AND arrival_time > {at} - INTERVAL '7 days'
         )
         SELECT site,
                count(*) FILTER (WHERE inside) AS in_department,
                count(*) FILTER (WHERE inside AND arrival_time <= {at} - INTERVAL '4 hours'),
                count(*) FILTER (WHERE inside AND arrival_time <= {at} - INTERVAL '12 hours'),
                count(*) FILTER (WHERE inside AND decision_to_admit_time <= {at}),
                count(*) FILTER (WHERE inside AND ambulance_arrival_time <= {at}
                                 AND (handover_time IS NULL OR handover_time > {at})),
                avg(minutes_between(ambulance_arrival_time, handover_time))
                    FILTER (WHERE handover_time > {at} - INTERVAL '1 hour'
                            AND handover_time <= {at})
         FROM (SELECT *, departure_time IS NULL OR departure_time > {at} AS inside FROM here)
         GROUP BY site ORDER BY site"
    );
    let output = engine.sql(&sql).await?;
    let mut sites = Vec::new();
    for batch in &output.batches {
        let site = texts(batch, 0)?;
        let counts: Vec<Vec<Option<i64>>> =
            (1..=5).map(|i| ints(batch, i)).collect::<Result<_, _>>()?;
        let handover = cast(batch.column(6), &DataType::Float64)?;
        let handover = handover.as_primitive::<arrow::datatypes::Float64Type>();
        for row in 0..batch.num_rows() {
            let n = |i: usize| counts[i][row].unwrap_or(0);
            sites.push(EdNow {
                site: site[row].clone().unwrap_or_default(),
                in_department: n(0),
                over_4h: n(1),
                over_12h: n(2),
                decisions_to_admit: n(3),
                ambulances_waiting: n(4),
                handover_mean_min: handover.is_valid(row).then(|| handover.value(row)),
            });
        }
    }
    Ok(sites)
}

/// One ward now: its beds open today (from `beds`) and the patients on it
/// (`kpi.current_inpatients`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WardNow {
    pub site: String,
    pub ward: String,
    pub ward_type: Option<String>,
    pub beds: i64,
    pub patients: i64,
}

/// Every ward with beds open on `today` or patients on it now.
pub async fn wards_now(engine: &QueryEngine, today: NaiveDate) -> Result<Vec<WardNow>, QueryError> {
    let sql = format!(
        "WITH open_beds AS (
             SELECT org_code, site, ward, max(ward_type) AS ward_type, sum(beds) AS beds
             FROM beds
             WHERE valid_from <= DATE '{today}' AND (valid_to IS NULL OR valid_to >= DATE '{today}')
             GROUP BY org_code, site, ward
         ),
         patients AS (
             SELECT org_code, site, ward, count(*) AS patients
             FROM kpi.current_inpatients GROUP BY org_code, site, ward
         )
         SELECT COALESCE(b.site, p.site), COALESCE(b.ward, p.ward), b.ward_type,
                COALESCE(b.beds, 0), COALESCE(p.patients, 0)
         FROM open_beds b
         FULL JOIN patients p
           ON p.org_code = b.org_code AND p.site = b.site AND p.ward = b.ward
         ORDER BY 1, 2"
    );
    let output = engine.sql(&sql).await?;
    let mut wards = Vec::new();
    for batch in &output.batches {
        let (site, ward, kind) = (texts(batch, 0)?, texts(batch, 1)?, texts(batch, 2)?);
        let (beds, patients) = (ints(batch, 3)?, ints(batch, 4)?);
        for row in 0..batch.num_rows() {
            wards.push(WardNow {
                site: site[row].clone().unwrap_or_default(),
                ward: ward[row].clone().unwrap_or_default(),
                ward_type: kind[row].clone(),
                beds: beds[row].unwrap_or(0),
                patients: patients[row].unwrap_or(0),
            });
        }
    }
    Ok(wards)
}

/// Discharges (A03, cancellations applied) on the trust's day `today` so far, and the mean of
/// the same weekday over the four weeks before: what the day is expected to reach.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Discharges {
    pub today: i64,
    pub expected: f64,
}

pub async fn discharges(engine: &QueryEngine, today: NaiveDate) -> Result<Discharges, QueryError> {
    let weeks: Vec<String> = (1..=4)
        .map(|w| format!("DATE '{}'", today - chrono::Duration::weeks(w)))
        .collect();
    let sql = format!(
        "SELECT count(*) FILTER (WHERE day = DATE '{today}'),
                CAST(count(*) FILTER (WHERE day IN ({weeks})) AS DOUBLE) / 4.0
         FROM (SELECT local_date(end_time) AS day FROM kpi.inpatient_stays
               WHERE end_event = 'A03' AND end_time >= CAST(DATE '{first}' AS TIMESTAMP))",
        weeks = weeks.join(", "),
        first = today - chrono::Duration::weeks(4) - chrono::Duration::days(1),
    );
    let output = engine.sql(&sql).await?;
    let batch = output
        .batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| {
            QueryError::DataFusion(datafusion::error::DataFusionError::Internal(
                "a count returns one row".into(),
            ))
        })?;
    let expected = cast(batch.column(1), &DataType::Float64)?;
    let expected = expected.as_primitive::<arrow::datatypes::Float64Type>();
    Ok(Discharges {
        today: ints(batch, 0)?[0].unwrap_or(0),
        expected: if expected.is_valid(0) {
            expected.value(0)
        } else {
            0.0
        },
    })
}

/// One operating list held on a day, as `kpi.theatre_lists` works it out: the figures the
/// theatre performance report adds up by theatre, specialty and site.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ListHeld {
    pub org_code: String,
    pub site: String,
    pub theatre: String,
    pub specialty: Option<String>,
    pub session_id: String,
    pub planned_start: DateTime<Utc>,
    pub planned_end: DateTime<Utc>,
    pub planned_min: f64,
    /// First patient into the anaesthetic room, last patient out of theatre.
    pub first_in: Option<DateTime<Utc>>,
    pub last_out: Option<DateTime<Utc>>,
    pub touch_min: f64,
    pub touch_capped_min: f64,
    pub turnaround_min: f64,
    pub turnarounds: i64,
    pub cases_booked: i64,
    pub cases_cancelled: i64,
    pub cases_completed: i64,
}

/// A list of the day cancelled before the day, or a case cancelled on it, with where it was.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Cancelled {
    pub org_code: String,
    pub site: String,
    pub theatre: String,
    pub specialty: Option<String>,
    /// The reason the theatre system gave (cases only; `None` when it gave none).
    pub reason: Option<String>,
    pub count: i64,
}

/// A day of theatre lists for the performance report.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TheatreDay {
    pub lists: Vec<ListHeld>,
    /// Lists planned for the day and cancelled before it, by theatre.
    pub lists_cancelled: Vec<Cancelled>,
    /// Cases cancelled on the day on lists held, by theatre, list specialty and reason.
    pub cases_cancelled: Vec<Cancelled>,
}

/// The lists of the trust's day `date`, from the same views the KPI catalogue's theatre KPIs
/// read, so the report and the catalogue cannot disagree on a definition.
pub async fn theatre_day(engine: &QueryEngine, date: NaiveDate) -> Result<TheatreDay, QueryError> {
    let lists = engine
        .sql(&format!(
            "SELECT org_code, site, theatre, specialty, session_id, planned_start, planned_end,
                    first_in, last_out, cases_booked, cases_cancelled, cases_completed,
                    turnarounds, planned_min, touch_min, touch_capped_min, turnaround_min
             FROM kpi.theatre_lists WHERE session_date = DATE '{date}'
             ORDER BY org_code, site, theatre, planned_start"
        ))
        .await?;
    let mut day = TheatreDay::default();
    for batch in &lists.batches {
        let text: Vec<Vec<Option<String>>> =
            (0..5).map(|i| texts(batch, i)).collect::<Result<_, _>>()?;
        let int: Vec<Vec<Option<i64>>> =
            (5..13).map(|i| ints(batch, i)).collect::<Result<_, _>>()?;
        let float: Vec<Vec<Option<f64>>> = (13..17)
            .map(|i| floats(batch, i))
            .collect::<Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            let (Some(planned_start), Some(planned_end)) = (time(int[0][row]), time(int[1][row]))
            else {
                continue;
            };
            let t = |i: usize| text[i][row].clone().unwrap_or_default();
            let n = |i: usize| int[i][row].unwrap_or(0);
            let f = |i: usize| float[i][row].unwrap_or(0.0);
            day.lists.push(ListHeld {
                org_code: t(0),
                site: t(1),
                theatre: t(2),
                specialty: text[3][row].clone(),
                session_id: t(4),
                planned_start,
                planned_end,
                first_in: time(int[2][row]),
                last_out: time(int[3][row]),
                cases_booked: n(4),
                cases_cancelled: n(5),
                cases_completed: n(6),
                turnarounds: n(7),
                planned_min: f(0),
                touch_min: f(1),
                touch_capped_min: f(2),
                turnaround_min: f(3),
            });
        }
    }
    day.lists_cancelled = cancellations(
        engine,
        &format!(
            "SELECT org_code, site, theatre, specialty, CAST(NULL AS VARCHAR), count(*)
             FROM theatre_sessions WHERE session_date = DATE '{date}' AND cancelled
             GROUP BY org_code, site, theatre, specialty ORDER BY 1, 2, 3, 4"
        ),
    )
    .await?;
    // One reason per case (as kpi.theatre_cases counts one cancellation per case), on the
    // list's specialty (as the KPI breaks it down).
    day.cases_cancelled = cancellations(
        engine,
        &format!(
            "WITH cases AS (
                 SELECT org_code, session_id, case_id, MIN(cancel_reason) AS reason
                 FROM theatre_events WHERE milestone = 'cancelled'
                 GROUP BY org_code, site, theatre, session_id, case_id
             )
             SELECT s.org_code, s.site, s.theatre, s.specialty, c.reason, count(*)
             FROM cases c
             JOIN theatre_sessions s ON s.org_code = c.org_code AND s.session_id = c.session_id
             WHERE s.session_date = DATE '{date}' AND NOT s.cancelled
             GROUP BY s.org_code, s.site, s.theatre, s.specialty, c.reason
             ORDER BY 1, 2, 3, 4, 5"
        ),
    )
    .await?;
    Ok(day)
}

/// Rows the lake's `theatre_reports` table holds for `date` (none until its morning run).
pub async fn theatre_report_rows(engine: &QueryEngine, date: NaiveDate) -> Result<i64, QueryError> {
    let output = engine
        .sql(&format!(
            "SELECT count(*) FROM theatre_reports WHERE report_date = DATE '{date}'"
        ))
        .await?;
    Ok(first_int(&output)?.unwrap_or(0))
}

/// The alerts the lake's `alerts` table holds numbered `first..=last` and raised between the
/// days `from` and `to`: (number, raised at in microseconds).
pub async fn alerts_held(
    engine: &QueryEngine,
    first: i64,
    last: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<std::collections::HashSet<(i64, i64)>, QueryError> {
    let output = engine
        .sql(&format!(
            "SELECT alert_id, raised_at FROM alerts
             WHERE raised_date BETWEEN DATE '{from}' AND DATE '{to}'
               AND alert_id BETWEEN {first} AND {last}"
        ))
        .await?;
    let mut held = std::collections::HashSet::new();
    for batch in &output.batches {
        let (ids, at) = (ints(batch, 0)?, ints(batch, 1)?);
        held.extend(
            ids.into_iter()
                .zip(at)
                .filter_map(|(id, at)| Some((id?, at?))),
        );
    }
    Ok(held)
}

/// The first value of a query's first column, as an integer.
fn first_int(output: &crate::query::QueryOutput) -> Result<Option<i64>, QueryError> {
    match output.batches.iter().find(|b| b.num_rows() > 0) {
        Some(batch) => Ok(ints(batch, 0)?[0]),
        None => Ok(None),
    }
}

async fn cancellations(engine: &QueryEngine, sql: &str) -> Result<Vec<Cancelled>, QueryError> {
    let output = engine.sql(sql).await?;
    let mut out = Vec::new();
    for batch in &output.batches {
        let text: Vec<Vec<Option<String>>> =
            (0..5).map(|i| texts(batch, i)).collect::<Result<_, _>>()?;
        let count = ints(batch, 5)?;
        for row in 0..batch.num_rows() {
            let t = |i: usize| text[i][row].clone().unwrap_or_default();
            out.push(Cancelled {
                org_code: t(0),
                site: t(1),
                theatre: t(2),
                specialty: text[3][row].clone(),
                reason: text[4][row].clone(),
                count: count[row].unwrap_or(0),
            });
        }
    }
    Ok(out)
}

/// Column `i` of a batch as 64-bit floats.
fn floats(batch: &RecordBatch, i: usize) -> Result<Vec<Option<f64>>, QueryError> {
    let column = cast(batch.column(i), &DataType::Float64)?;
    let column = column.as_primitive::<arrow::datatypes::Float64Type>();
    Ok((0..column.len())
        .map(|r| column.is_valid(r).then(|| column.value(r)))
        .collect())
}

/// A table or view analysts can query, with its columns (name and type), as
/// `information_schema` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Listed {
    /// `schema.name`: `lake.beds`, `kpi.ed_4h_performance`.
    pub name: String,
    pub columns: Vec<(String, String)>,
}

/// Every lake table, then every KPI view, each with its columns in order.
pub async fn tables(engine: &QueryEngine) -> Result<Vec<Listed>, QueryError> {
    let output = engine
        .sql(
            "SELECT table_schema, table_name, column_name, data_type \
             FROM information_schema.columns WHERE table_schema IN ('lake', 'kpi') \
             ORDER BY table_schema DESC, table_name, ordinal_position",
        )
        .await?;
    let mut tables: Vec<Listed> = Vec::new();
    for batch in &output.batches {
        let (schema, table, column, kind) = (
            texts(batch, 0)?,
            texts(batch, 1)?,
            texts(batch, 2)?,
            texts(batch, 3)?,
        );
        for r in 0..batch.num_rows() {
            let text = |c: &Vec<Option<String>>| c[r].clone().unwrap_or_default();
            let name = format!("{}.{}", text(&schema), text(&table));
            let pair = (text(&column), text(&kind));
            match tables.last_mut() {
                Some(listed) if listed.name == name => listed.columns.push(pair),
                _ => tables.push(Listed {
                    name,
                    columns: vec![pair],
                }),
            }
        }
    }
    Ok(tables)
}
