//! The lake on a local folder: schema round trip, atomic visibility, compaction, vacuum.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bright_engine::arrow::datatypes::{DataType, Field, Schema};
use bright_engine::lake::{Lake, LakeError};
use bright_engine::query::{QueryConfig, QueryEngine};
use bright_engine::schema::Table;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::fixtures::{int, rows};

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("_delta_log") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "parquet") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn local_lake() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    (dir, lake)
}

fn table_dir(dir: &tempfile::TempDir, table: Table) -> PathBuf {
    dir.path().join("lake").join(table.name())
}

#[tokio::test]
async fn every_table_writes_parquet_with_its_registered_schema() {
    let (dir, lake) = local_lake();
    for table in Table::ALL {
        // Six rows over three days, the days interleaved (r-0 day 0, r-1 day 1, …).
        lake.append(table, vec![rows(table, 6, 3, "r")])
            .await
            .unwrap();
        let files = parquet_files(&table_dir(&dir, table));
        assert_eq!(
            files.len(),
            1,
            "{table}: one file per append, no day folders"
        );
        // Every column, the day included, is in the file, in the registered order.
        let registered = table.schema();
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&files[0]).unwrap())
                .unwrap();
        let written = Schema::new(reader.schema().fields().clone());
        assert_eq!(written, *registered, "{table}: {}", files[0].display());
        // Rows are stored in day order, one day's rows in the order they came.
        let batch = reader.build().unwrap().next().unwrap().unwrap();
        let days = batch
            .column_by_name(table.day_column())
            .unwrap()
            .as_any()
            .downcast_ref::<bright_engine::arrow::array::Date32Array>()
            .unwrap()
            .values()
            .to_vec();
        assert_eq!(
            days,
            [0, 0, 1, 1, 2, 2].map(|d| crate::fixtures::DAY0 + d),
            "{table}"
        );
        let text = registered
            .fields()
            .iter()
            .position(|f| f.data_type() == &DataType::Utf8)
            .unwrap();
        let text = batch
            .column(text)
            .as_any()
            .downcast_ref::<bright_engine::arrow::array::StringArray>()
            .unwrap();
        assert_eq!(
            text.iter().flatten().collect::<Vec<_>>(),
            ["r-0", "r-3", "r-1", "r-4", "r-2", "r-5"],
            "{table}"
        );
        // The log knows each file's first day without opening it.
        let listed = lake.files(table).await.unwrap();
        assert_eq!(
            listed.values().copied().collect::<Vec<_>>(),
            [
                bright_engine::arrow::datatypes::Date32Type::to_naive_date_opt(
                    crate::fixtures::DAY0
                )
            ],
            "{table}"
        );
    }
    // Queries see the same columns, types and nullability (text as `Utf8`: see
    // `QueryEngine::open`).
    let engine = QueryEngine::open(&lake, &QueryConfig::default())
        .await
        .unwrap();
    for table in Table::ALL {
        let seen = engine.table_schema(table).expect("registered");
        let seen: Vec<Field> = seen.fields().iter().map(|f| f.as_ref().clone()).collect();
        let registered: Vec<Field> = table
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        assert_eq!(seen, registered, "{table}: as queried");
    }
}

#[tokio::test]
async fn appends_with_the_wrong_schema_are_refused_and_write_nothing() {
    let (_dir, lake) = local_lake();
    let wrong = rows(Table::Beds, 2, 1, "x");
    let err = lake
        .append(Table::AdtEvents, vec![wrong])
        .await
        .unwrap_err();
    assert!(matches!(err, LakeError::SchemaMismatch { .. }), "{err}");
    assert!(!lake.has_table(Table::AdtEvents).await.unwrap());
}

#[tokio::test]
async fn a_reader_during_appends_sees_whole_commits_only() {
    let (_dir, lake) = local_lake();
    lake.ensure_tables().await.unwrap();
    const BATCHES: usize = 25;
    const ROWS: usize = 400;
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let lake = lake.clone();
        let done = done.clone();
        tokio::spawn(async move {
            for b in 0..BATCHES {
                // Each commit spans 8 day partitions, so 8 files that must appear together.
                let batch = rows(Table::DqIssues, ROWS, 8, &format!("batch{b:02}"));
                lake.append(Table::DqIssues, vec![batch]).await.unwrap();
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let engine = QueryEngine::open(&lake, &QueryConfig::default())
        .await
        .unwrap();
    let mut observed = BTreeSet::new();
    loop {
        let finished = done.load(Ordering::SeqCst);
        engine.refresh().await.unwrap();
        let out = engine
            .sql("SELECT count(*) AS n, count(DISTINCT split_part(feed, '-', 1)) AS b FROM dq_issues")
            .await
            .unwrap();
        let (n, b) = (int(&out, 0, 0), int(&out, 1, 0));
        assert_eq!(
            n,
            b * ROWS as i64,
            "a reader saw part of a commit: {n} rows in {b} batches"
        );
        observed.insert(b);
        if finished {
            assert_eq!(b, BATCHES as i64);
            break;
        }
    }
    writer.await.unwrap();
    // The reader really ran during the writes, not only before or after them.
    assert!(
        observed.len() > 2,
        "reads interleaved with writes: {observed:?}"
    );
}

#[tokio::test]
async fn optimize_compacts_and_vacuum_removes_only_replaced_files() {
    let (dir, lake) = local_lake();
    for b in 0..5 {
        lake.append(
            Table::Beds,
            vec![rows(Table::Beds, 10, 1, &format!("b{b}"))],
        )
        .await
        .unwrap();
    }
    let before = lake.stats(Table::Beds).await.unwrap();
    assert_eq!((before.rows, before.files), (50, 5));

    let report = lake.optimize(Table::Beds, None).await.unwrap();
    assert_eq!((report.files_removed, report.files_added), (5, 1));
    let after = lake.stats(Table::Beds).await.unwrap();
    assert_eq!((after.rows, after.files), (50, 1));
    assert_eq!(
        parquet_files(&table_dir(&dir, Table::Beds)).len(),
        6,
        "old files kept for readers"
    );

    // A file an append has written but not yet committed: vacuum must leave it alone.
    let partition = parquet_files(&table_dir(&dir, Table::Beds))[0]
        .parent()
        .unwrap()
        .to_path_buf();
    let in_flight = partition.join("part-in-flight-append.parquet");
    std::fs::copy(&parquet_files(&table_dir(&dir, Table::Beds))[0], &in_flight).unwrap();

    // With the default retention nothing is old enough yet.
    let kept = lake
        .vacuum(Table::Beds, bright_engine::lake::DEFAULT_VACUUM_RETENTION)
        .await
        .unwrap();
    assert_eq!(kept.files_deleted, 0);
    let swept = lake.vacuum(Table::Beds, Duration::ZERO).await.unwrap();
    assert_eq!(swept.files_deleted, 5);
    assert!(
        in_flight.exists(),
        "vacuum deleted an uncommitted append's file"
    );
    let engine = QueryEngine::open(&lake, &QueryConfig::default())
        .await
        .unwrap();
    let out = engine.sql("SELECT count(*) FROM beds").await.unwrap();
    assert_eq!(int(&out, 0, 0), 50);
}

#[tokio::test]
async fn concurrent_appends_to_one_table_all_land() {
    let (_dir, lake) = local_lake();
    lake.ensure_tables().await.unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|w| {
            let lake = lake.clone();
            tokio::spawn(async move {
                for b in 0..3 {
                    let batch = rows(Table::AdtEvents, 50, 2, &format!("w{w}b{b}"));
                    lake.append(Table::AdtEvents, vec![batch]).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let stats = lake.stats(Table::AdtEvents).await.unwrap();
    assert_eq!(stats.rows, 4 * 3 * 50);
}

/// A table made before `adt_events` had `prior_patient_key`: gains the column on open, keeps
/// its rows (the new column null), takes rows of today's schema, and queries like a new table.
#[tokio::test]
async fn a_table_from_an_earlier_schema_gains_the_new_columns() {
    use bright_engine::arrow::array::{Array, RecordBatch, StringArray};
    use deltalake::kernel::StructType;
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;

    let (dir, lake) = local_lake();
    let table = Table::AdtEvents;
    let today = rows(table, 2, 1, "new");
    let added = table
        .schema()
        .index_of("prior_patient_key")
        .expect("the column added since");
    let before: Vec<usize> = (0..table.schema().fields().len())
        .filter(|&i| i != added)
        .collect();
    let old_rows = rows(table, 3, 1, "old").project(&before).unwrap();
    let old_schema: StructType = old_rows.schema().as_ref().try_into_kernel().unwrap();
    std::fs::create_dir_all(table_dir(&dir, table)).unwrap();
    let created = deltalake::DeltaTableBuilder::from_url(lake.table_url(table))
        .unwrap()
        .build()
        .unwrap()
        .create()
        .with_columns(old_schema.fields().cloned())
        .with_partition_columns([table.day_column()])
        .await
        .unwrap();
    created
        .write(vec![old_rows])
        .with_partition_columns([table.day_column()])
        .await
        .unwrap();

    // Read as it is, before anything upgrades it: the missing column reads as null, and a
    // filter on it is applied above the scan.
    let reader = QueryEngine::open(&lake, &QueryConfig::default())
        .await
        .unwrap();
    let out = reader
        .sql("SELECT count(*) AS n FROM adt_events WHERE prior_patient_key IS NULL AND event_id LIKE 'old%'")
        .await
        .unwrap();
    let n =
        bright_engine::arrow::compute::cast(out.batches[0].column(0), &DataType::Int64).unwrap();
    assert_eq!(
        n.as_any()
            .downcast_ref::<bright_engine::arrow::array::Int64Array>()
            .unwrap()
            .value(0),
        3
    );

    lake.ensure_tables().await.unwrap();
    lake.ensure_tables()
        .await
        .expect("a second upgrade finds nothing to do");
    lake.append(table, vec![today]).await.unwrap();

    let engine = QueryEngine::open(&lake, &QueryConfig::default())
        .await
        .unwrap();
    let seen = engine.table_schema(table).expect("registered");
    let names =
        |s: &Schema| -> Vec<String> { s.fields().iter().map(|f| f.name().clone()).collect() };
    assert_eq!(
        names(&seen),
        names(&table.schema()),
        "queried like a new table"
    );
    let out = engine
        .sql(
            "SELECT event_id, prior_patient_key FROM adt_events \
             ORDER BY prior_patient_key IS NULL, event_id",
        )
        .await
        .unwrap();
    let batch: RecordBatch =
        bright_engine::arrow::compute::concat_batches(&out.schema, &out.batches).unwrap();
    assert_eq!(batch.num_rows(), 5);
    let prior = bright_engine::arrow::compute::cast(batch.column(1), &DataType::Utf8).unwrap();
    let prior = prior.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(prior.null_count(), 3, "the old rows have no prior patient");
    assert_eq!(
        engine.lake().stats(table).await.unwrap().rows,
        5,
        "nothing lost in the upgrade"
    );
    // The old table keeps its day folders: the new rows went into one, and the log gives
    // each file's day from its folder.
    let folders: BTreeSet<String> = parquet_files(&table_dir(&dir, table))
        .iter()
        .filter_map(|f| f.parent()?.file_name()?.to_str().map(String::from))
        .collect();
    let day0 =
        bright_engine::arrow::datatypes::Date32Type::to_naive_date_opt(crate::fixtures::DAY0)
            .unwrap();
    assert_eq!(
        folders,
        BTreeSet::from([format!("{}={day0}", table.day_column())])
    );
    let listed = lake.files(table).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.values().all(|d| *d == Some(day0)), "{listed:?}");
}
