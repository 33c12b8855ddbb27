//! The CLI on S3-compatible storage, configured as users do: `--lake s3://bucket/prefix` and
//! the standard AWS environment variables.

use std::process::Output;

use crate::moto::{Moto, create_bucket, start_moto};
use crate::support::bright;

fn on_s3(moto: &Moto, args: &[&str]) -> Output {
    bright()
        .args(args)
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "eu-west-2")
        .env("AWS_ALLOW_HTTP", "true")
        .output()
        .expect("bright runs")
}

fn ok_on_s3(moto: &Moto, args: &[&str]) -> String {
    let out = on_s3(moto, args);
    assert!(
        out.status.success(),
        "bright {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn generate_query_and_maintain_a_lake_on_s3() {
    let moto = start_moto();
    create_bucket(&moto, "nhs-lake");
    let lake = "s3://nhs-lake/north/x01";
    ok_on_s3(
        &moto,
        &[
            "generate",
            "--days",
            "12",
            "--seed",
            "5",
            "--end",
            "2025-02-01",
            "--lake",
            lake,
        ],
    );
    let tables = ok_on_s3(&moto, &["lake", "tables", "--lake", lake]);
    assert_eq!(tables.lines().count(), 13, "{tables}");
    let csv = ok_on_s3(
        &moto,
        &[
            "sql",
            "SELECT count(*) > 3000 AS ed, (SELECT count(*) FROM beds) AS wards FROM ed_attendances",
            "--lake",
            lake,
            "--format",
            "csv",
        ],
    );
    assert_eq!(csv, "ed,wards\ntrue,38\n");
    let optimized = ok_on_s3(
        &moto,
        &["lake", "optimize", "theatre_events", "--lake", lake],
    );
    assert!(optimized.starts_with("theatre_events: "), "{optimized}");
    let vacuumed = ok_on_s3(&moto, &["lake", "vacuum", "--lake", lake]);
    assert_eq!(vacuumed.lines().count(), 12, "{vacuumed}");

    // A lake where there is none fails with one line, not an empty listing.
    let out = on_s3(
        &moto,
        &["lake", "tables", "--lake", "s3://no-such-bucket/x"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
