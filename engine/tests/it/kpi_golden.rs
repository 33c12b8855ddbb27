//! Golden tests of the KPI catalogue: every `.slt` file in `queries/tests/` runs, with the
//! sqllogictest runner, against a real lake built from the hand-made fixture tables in
//! `data-samples/kpi/` (one CSV per table; the expected answers in the `.slt` files were
//! worked out by hand from those rows, as each file's comments show).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bright_engine::arrow::array::Array;
use bright_engine::arrow::datatypes::DataType;
use bright_engine::arrow::util::display::{ArrayFormatter, FormatOptions};
use bright_engine::kpi::Catalogue;
use bright_engine::lake::Lake;
use bright_engine::query::{QueryConfig, QueryEngine, QueryError};
use bright_engine::schema::Table;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A lake holding the fixture rows of every table.
pub async fn fixture_lake(dir: &Path) -> Lake {
    let lake = Lake::open(dir.to_str().expect("utf-8 temp path")).expect("lake opens");
    for table in Table::ALL {
        let path = repo()
            .join("data-samples/kpi")
            .join(format!("{}.csv", table.name()));
        let file = std::fs::File::open(&path).expect("every table has a fixture");
        let reader = bright_engine::arrow::csv::ReaderBuilder::new(table.schema())
            .with_header(true)
            .build(file)
            .expect("csv reader");
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        lake.append(table, batches).await.expect("append fixture");
    }
    lake
}

/// The fixture lake's engine with the built-in catalogue registered.
pub async fn fixture_engine(dir: &Path) -> QueryEngine {
    catalogue_engine(&fixture_lake(dir).await).await
}

/// An engine over `lake` with the built-in catalogue registered.
pub async fn catalogue_engine(lake: &Lake) -> QueryEngine {
    let mut engine = QueryEngine::open(lake, &QueryConfig::default())
        .await
        .expect("engine opens");
    engine
        .register_kpis(
            Catalogue::embedded().expect("built-in catalogue"),
            &BTreeMap::new(),
        )
        .await
        .expect("every KPI plans");
    engine
}

struct Db(Arc<QueryEngine>);

#[async_trait]
impl AsyncDB for Db {
    type Error = QueryError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, QueryError> {
        let output = self.0.sql(sql).await?;
        let types = output
            .schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                t if t.is_integer() => DefaultColumnType::Integer,
                DataType::Float64 | DataType::Float32 | DataType::Decimal128(_, _) => {
                    DefaultColumnType::FloatingPoint
                }
                _ => DefaultColumnType::Text,
            })
            .collect();
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in &output.batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()?;
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .zip(batch.columns())
                        .map(|(f, column)| {
                            if column.is_null(row) {
                                "NULL".to_string()
                            } else {
                                f.value(row).to_string()
                            }
                        })
                        .collect(),
                );
            }
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kpi_matches_its_hand_worked_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(fixture_engine(dir.path()).await);
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("queries/tests"))
        .expect("queries/tests exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no golden files");
    let mut text = String::new();
    for file in &files {
        let mut runner = Runner::new(|| {
            let engine = engine.clone();
            async move { Ok(Db(engine)) }
        });
        if let Err(e) = runner.run_file_async(file).await {
            panic!("{}: {}", file.display(), e.display(true));
        }
        text.push_str(&std::fs::read_to_string(file).expect("read slt"));
    }
    let catalogue = engine.kpi_catalogue().expect("registered");
    let untested: Vec<&str> = catalogue
        .kpis
        .iter()
        .map(|k| k.id.as_str())
        .filter(|id| {
            !text.contains(&format!("kpi.{id} ")) && !text.contains(&format!("kpi.{id}\n"))
        })
        .collect();
    assert!(
        untested.is_empty(),
        "KPIs without a golden test: {untested:?}"
    );
}
