//! Annotations: dated notes on a KPI ("discharge lounge opened") and recorded rebases (a new
//! process from a date, with who and why), kept in the lake's `annotations` table so SQL sees
//! them beside the data they explain, and drawn on every chart of their KPI.
//!
//! They are few (a handful a month), so each is its own small commit: durable before the
//! writer is answered. `bright lake optimize` folds the small files together.

use std::fmt;
use std::str::FromStr;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Date32Type, TimestampMicrosecondType};
use chrono::{DateTime, NaiveDate, Utc};

use crate::batch::BatchBuilder;
use crate::lake::LakeError;
use crate::query::{QueryEngine, QueryError};
use crate::schema::{MAX_FREE_TEXT_CHARS, Table, annotations as col, common};

/// The `org_code` of an annotation about every organisation in the lake.
pub const EVERY_ORG: &str = "*";

/// What an annotation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A note drawn on the chart.
    Note,
    /// The process is taken to start again on the date: limits are recalculated from there.
    Rebase,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Note => "note",
            Kind::Rebase => "rebase",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = AnnotationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "note" => Ok(Kind::Note),
            "rebase" => Ok(Kind::Rebase),
            other => Err(AnnotationError::Invalid(format!(
                "unknown kind '{}' (note or rebase)",
                other.chars().take(40).collect::<String>()
            ))),
        }
    }
}

/// One annotation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Annotation {
    pub id: String,
    pub kpi_id: String,
    /// The organisation it is about, or [`EVERY_ORG`].
    pub org_code: String,
    pub kind: Kind,
    pub on_date: NaiveDate,
    pub note: String,
    pub author: String,
    pub created_at: DateTime<Utc>,
}

/// Why an annotation was not stored or read.
#[derive(Debug, thiserror::Error)]
pub enum AnnotationError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("the annotations table: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

impl Annotation {
    /// Checks what a person typed: a note of 1 to [`MAX_FREE_TEXT_CHARS`] characters, codes
    /// of sensible length.
    pub fn validate(&self) -> Result<(), AnnotationError> {
        let note = self.note.trim();
        if note.is_empty() {
            return Err(AnnotationError::Invalid(
                "an annotation needs a note saying what happened".into(),
            ));
        }
        if note.chars().count() > MAX_FREE_TEXT_CHARS {
            return Err(AnnotationError::Invalid(format!(
                "a note holds at most {MAX_FREE_TEXT_CHARS} characters"
            )));
        }
        for (what, value) in [
            ("id", &self.id),
            ("KPI", &self.kpi_id),
            ("organisation", &self.org_code),
            ("author", &self.author),
        ] {
            let limit = Table::Annotations.max_chars(col::KPI_ID);
            if value.is_empty() || value.chars().count() > limit {
                return Err(AnnotationError::Invalid(format!(
                    "an annotation's {what} has 1 to {limit} characters"
                )));
            }
        }
        Ok(())
    }

    /// Whether this annotation belongs on a chart of its KPI filtered to `org` (`None`: every
    /// organisation together).
    pub fn applies_to(&self, org: Option<&str>) -> bool {
        match org {
            None => true,
            Some(org) => self.org_code == org || self.org_code == EVERY_ORG,
        }
    }
}

/// `annotations` as rows of the lake's table.
pub fn to_batch(annotations: &[Annotation]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let mut builder = BatchBuilder::new(Table::Annotations);
    for a in annotations {
        builder
            .row()
            .text(&a.id)
            .text(&a.kpi_id)
            .text(&a.org_code)
            .text(a.kind.as_str())
            .text(a.note.trim())
            .text(&a.author)
            .timestamp(a.created_at.timestamp_micros())
            .date(days_since_epoch(a.on_date))
            .end();
    }
    builder.finish()
}

fn days_since_epoch(date: NaiveDate) -> i32 {
    (date - NaiveDate::default()).num_days() as i32
}

/// Stores `annotation` (one commit, durable when this returns) and moves `engine` to the new
/// snapshot, so the next read sees it.
pub async fn add(engine: &QueryEngine, annotation: &Annotation) -> Result<(), AnnotationError> {
    annotation.validate()?;
    let batch = to_batch(std::slice::from_ref(annotation))?;
    engine
        .lake()
        .append(Table::Annotations, vec![batch])
        .await?;
    engine.refresh_table(Table::Annotations).await?;
    Ok(())
}

/// Every annotation in the lake, oldest date first.
pub async fn read_all(engine: &QueryEngine) -> Result<Vec<Annotation>, AnnotationError> {
    let output = engine
        .sql(&format!(
            "SELECT {}, {}, {}, {}, {}, {}, {}, {} FROM annotations ORDER BY {}, {}",
            col::ANNOTATION_ID,
            col::KPI_ID,
            common::ORG_CODE,
            col::KIND,
            col::NOTE,
            col::AUTHOR,
            col::CREATED_AT,
            col::ON_DATE,
            col::ON_DATE,
            col::CREATED_AT,
        ))
        .await?;
    let mut found = Vec::with_capacity(output.num_rows());
    for batch in &output.batches {
        let text = |i: usize| batch.column(i).as_string_opt::<i32>();
        let (Some(id), Some(kpi), Some(org), Some(kind), Some(note), Some(author)) =
            (text(0), text(1), text(2), text(3), text(4), text(5))
        else {
            return Err(AnnotationError::Invalid(
                "the annotations table's text columns are not text".into(),
            ));
        };
        let (Some(created), Some(on)) = (
            batch
                .column(6)
                .as_primitive_opt::<TimestampMicrosecondType>(),
            batch.column(7).as_primitive_opt::<Date32Type>(),
        ) else {
            return Err(AnnotationError::Invalid(
                "the annotations table's times are not times".into(),
            ));
        };
        for row in 0..batch.num_rows() {
            let (Some(created_at), Some(on_date)) = (
                DateTime::from_timestamp_micros(created.value(row)),
                Date32Type::to_naive_date_opt(on.value(row)),
            ) else {
                continue;
            };
            // A kind a later bright wrote is skipped, not misread.
            let Ok(kind) = kind.value(row).parse() else {
                continue;
            };
            if created.is_null(row) || on.is_null(row) {
                continue;
            }
            found.push(Annotation {
                id: id.value(row).to_string(),
                kpi_id: kpi.value(row).to_string(),
                org_code: org.value(row).to_string(),
                kind,
                on_date,
                note: note.value(row).to_string(),
                author: author.value(row).to_string(),
                created_at,
            });
        }
    }
    Ok(found)
}
