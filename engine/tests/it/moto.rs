//! A real S3-compatible server (moto) on a free loopback port, for the tests that need S3.
//!
//! `scripts/test` installs moto into a virtualenv and exports `BRIGHT_TEST_PYTHON`; without it
//! these tests fail with a message saying so, rather than passing without S3. The root
//! package's tests include this file too (`#[path]`), so there is one copy.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A moto S3 server for the life of the test.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn python() -> String {
    std::env::var("BRIGHT_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn start_moto() -> Moto {
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

pub fn create_bucket(moto: &Moto, bucket: &str) {
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
