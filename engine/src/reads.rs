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
