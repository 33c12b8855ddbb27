//! The lake on a real S3-compatible server: moto's, started on a free loopback port.
//!

use std::collections::HashMap;
use std::time::Duration;

use bright_engine::lake::Lake;
use bright_engine::query::{QueryConfig, QueryEngine};
use bright_engine::schema::Table;

use crate::fixtures::{int, rows};
use crate::moto::{Moto, create_bucket, start_moto};

fn s3_lake(moto: &Moto, url: &str) -> Lake {
    let options: HashMap<String, String> = [
        ("aws_endpoint", moto.endpoint.as_str()),
        ("aws_access_key_id", "testing"),
        ("aws_secret_access_key", "testing"),
        ("aws_region", "us-east-1"),
        ("aws_allow_http", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Lake::open(url).unwrap().with_storage_options(options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lake_works_on_s3_compatible_storage() {
    let moto = start_moto();
    create_bucket(&moto, "bright-lake");
    let lake = s3_lake(&moto, "s3://bright-lake/trusts/x01");
    lake.ensure_tables().await.unwrap();
    for b in 0..3 {
        lake.append(
            Table::EdAttendances,
            vec![rows(Table::EdAttendances, 20, 2, &format!("b{b}"))],
        )
        .await
        .unwrap();
    }
    // Two writers racing on one table: S3 conditional puts keep both commits.
    let (a, b) = tokio::join!(
        lake.append(Table::Beds, vec![rows(Table::Beds, 5, 1, "a")]),
        lake.append(Table::Beds, vec![rows(Table::Beds, 7, 1, "b")]),
    );
    a.unwrap();
    b.unwrap();

    let stats = lake.stats(Table::EdAttendances).await.unwrap();
    // One file per append (three), each holding both days in order.
    assert_eq!((stats.rows, stats.files), (60, 3));
    let engine = QueryEngine::open(&lake, &QueryConfig::default())
        .await
        .unwrap();
    let out = engine
        .sql(
            "SELECT (SELECT count(*) FROM ed_attendances) AS a, (SELECT count(*) FROM beds) AS b, \
             (SELECT count(DISTINCT arrival_date) FROM ed_attendances) AS d",
        )
        .await
        .unwrap();
    assert_eq!(
        (int(&out, 0, 0), int(&out, 1, 0), int(&out, 2, 0)),
        (60, 12, 2)
    );

    let compacted = lake.optimize(Table::EdAttendances, None).await.unwrap();
    assert_eq!((compacted.files_removed, compacted.files_added), (3, 1));
    let vacuumed = lake
        .vacuum(Table::EdAttendances, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(vacuumed.files_deleted, 3);
    engine.refresh().await.unwrap();
    let out = engine
        .sql("SELECT count(*) FROM ed_attendances")
        .await
        .unwrap();
    assert_eq!(int(&out, 0, 0), 60);
}
