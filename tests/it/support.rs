//! Running the built `bright` binary and preparing a small lake once per test binary.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

/// The binary under test.
pub fn bright() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bright"))
}

/// Starts `bright serve` in `dir` (lake, log and landing folders there, ports picked by the
/// system) with `args` added, and returns it with its MLLP and HTTP ports once both listen.
pub fn serve(dir: &Path, key: &str, args: &[&str]) -> (Child, u16, u16) {
    serve_with_env(dir, key, args, &[])
}

/// [`serve`] with environment variables added (secrets bright.toml names).
pub fn serve_with_env(
    dir: &Path,
    key: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Child, u16, u16) {
    let (child, ports) = serve_doors(dir, key, args, env);
    (child, ports.mllp, ports.http)
}

/// The ports a started service listens on.
pub struct Ports {
    pub mllp: u16,
    pub http: u16,
    /// The Postgres wire door.
    pub pg: u16,
    /// The Arrow Flight SQL door.
    pub flight: u16,
}

/// [`serve_with_env`], returning every door's port once all listen.
pub fn serve_doors(dir: &Path, key: &str, args: &[&str], env: &[(&str, &str)]) -> (Child, Ports) {
    let mut child = bright()
        .arg("serve")
        .arg("--lake")
        .arg(dir.join("lake"))
        .arg("--wal")
        .arg(dir.join("wal"))
        .arg("--landing")
        .arg(dir.join("landing"))
        .arg("--quarantine")
        .arg(dir.join("quarantine"))
        .arg("--users-db")
        .arg(dir.join("users.sqlite3"))
        .arg("--alerts-db")
        .arg(dir.join("alerts.sqlite3"))
        .arg("--reports")
        .arg(dir.join("reports"))
        .args([
            "--mllp-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--flight-addr",
            "127.0.0.1:0",
        ])
        // A test may open the Postgres door beyond loopback.
        .args(
            (!args.contains(&"--pg-addr"))
                .then_some(["--pg-addr", "127.0.0.1:0"])
                .into_iter()
                .flatten(),
        )
        .args(args)
        .env("BRIGHT_PSEUDO_KEY", key)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("bright serve starts");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let port = |line: &str| -> u16 {
        line.rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port")
    };
    let (mut mllp, mut http, mut pg, mut flight) = (None, None, None, None);
    while mllp.is_none() || http.is_none() || pg.is_none() || flight.is_none() {
        let line = lines
            .next()
            .expect("serve printed its addresses before exiting")
            .expect("reads");
        if line.starts_with("MLLP") && line.contains(": listening on ") {
            mllp = Some(port(&line));
        } else if line.starts_with("HTTP: listening on http://") {
            http = Some(port(&line));
        } else if let Some(address) = line.strip_prefix("Postgres: listening on ") {
            pg = Some(port(address.split(' ').next().unwrap_or(address)));
        } else if line.starts_with("Flight SQL: listening on grpc://") {
            flight = Some(port(&line));
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let ports = Ports {
        mllp: mllp.expect("seen"),
        http: http.expect("seen"),
        pg: pg.expect("seen"),
        flight: flight.expect("seen"),
    };
    (child, ports)
}

/// Adds a person with `role` and `password` to the user store `db`.
pub fn add_user(db: &Path, name: &str, role: &str, password: &str) {
    use std::io::Write;
    let mut add = bright()
        .args([
            "users",
            "add",
            name,
            "--role",
            role,
            "--password-stdin",
            "--db",
        ])
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("bright users add");
    add.stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("writes");
    assert!(add.wait().expect("ends").success());
}

/// Stops `child` with SIGTERM, as a service manager does, and checks that it exits cleanly.
pub fn terminate(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = child.wait().expect("exits");
    assert!(exit.success(), "{exit}");
}

/// Simulated feed files of one trust for `days` days up to `end`, under `dir/feeds`; returns
/// the trust's folder.
pub fn feed_files(dir: &Path, days: u32, seed: u64, end: &str) -> PathBuf {
    let feeds = dir.join("feeds");
    ok(&[
        "generate",
        "--days",
        &days.to_string(),
        "--seed",
        &seed.to_string(),
        "--end",
        end,
        "--out",
        feeds.to_str().expect("utf-8"),
    ]);
    std::fs::read_dir(&feeds)
        .expect("feeds")
        .flatten()
        .next()
        .expect("a trust")
        .path()
}

/// Runs `bright args…` and returns its output.
pub fn run(args: &[&str]) -> Output {
    bright().args(args).output().expect("bright runs")
}

/// Stdout of a command that must succeed.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "bright {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// `bright sql` over the lake at `lake`, as CSV (a header line, then the rows).
pub fn sql_csv(lake: &Path, query: &str) -> String {
    ok(&[
        "sql",
        "--lake",
        lake.to_str().expect("utf-8 path"),
        "--format",
        "csv",
        query,
    ])
}

/// A lake with 45 days of the simulated trust (seed 3), made once and shared (read-only) by
/// the tests of this binary.
pub fn small_lake() -> &'static Path {
    static LAKE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = LAKE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lake");
        ok(&[
            "generate",
            "--days",
            "45",
            "--seed",
            "3",
            "--end",
            "2025-03-01",
            "--lake",
            path.to_str().unwrap(),
        ]);
        (dir, path)
    });
    path
}
