//! The lake on a real S3-compatible server: moto's, started on a free loopback port.
//!
//! `scripts/test` installs moto into a virtualenv and exports `BRIGHT_TEST_PYTHON`; without it
//! the test fails with a message saying so, rather than passing without S3.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bright_engine::lake::Lake;
use bright_engine::query::{QueryConfig, QueryEngine};
use bright_engine::schema::Table;

use crate::fixtures::{int, rows};

/// A moto S3 server for the life of the test.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> String {
    std::env::var("BRIGHT_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_moto() -> Moto {
    let port = free_port();
    let mut child = Command::new(python())
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start moto; run the tests with scripts/test, which installs it");
    // Ready when the server says it is listening (werkzeug logs "Running on …").
    let stderr = child.stderr.take().expect("piped");
    let mut lines = BufReader::new(stderr).lines();
    let mut log = Vec::new();
    loop {
        match lines.next() {
            Some(Ok(line)) => {
                let ready = line.contains("Running on");
                log.push(line);
                if ready {
                    break;
                }
            }
            _ => panic!(
                "moto exited before listening (is it installed? run scripts/test):\n{}",
                log.join("\n")
            ),
        }
    }
    // Keep draining its log so the pipe never fills and stalls the server.
    std::thread::spawn(move || for _ in lines {});
    Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    }
}

fn create_bucket(moto: &Moto, bucket: &str) {
    let script = format!(
        "import boto3\n\
         boto3.client('s3', endpoint_url='{}', aws_access_key_id='testing',\n\
         aws_secret_access_key='testing', region_name='us-east-1').create_bucket(Bucket='{bucket}')",
        moto.endpoint
    );
    let status = Command::new(python())
        .args(["-c", &script])
        .status()
        .unwrap();
    assert!(status.success(), "cannot create bucket {bucket}");
}

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
    assert_eq!((stats.rows, stats.files), (60, 6));
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

    let compacted = lake.optimize(Table::EdAttendances).await.unwrap();
    assert_eq!((compacted.files_removed, compacted.files_added), (6, 2));
    let vacuumed = lake
        .vacuum(Table::EdAttendances, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(vacuumed.files_deleted, 6);
    engine.refresh().await.unwrap();
    let out = engine
        .sql("SELECT count(*) FROM ed_attendances")
        .await
        .unwrap();
    assert_eq!(int(&out, 0, 0), 60);
}
