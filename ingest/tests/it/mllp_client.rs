//! A real HL7 client for the tests: python `hl7`'s `mllp_send`, from the test virtualenv
//! (`BRIGHT_TEST_PYTHON`'s folder) or the path, and a listener on a free loopback port for it
//! to talk to. Shared by this crate's tests and the binary's end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::Command;

fn mllp_send() -> PathBuf {
    let python = std::env::var("BRIGHT_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    Path::new(&python)
        .parent()
        .map(|bin| bin.join("mllp_send"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("mllp_send"))
}

/// Sends `file` with `mllp_send --loose` and returns the acknowledgements it printed.
pub fn send(port: u16, file: &Path) -> String {
    let out = Command::new(mllp_send())
        .args(["--loose", "--port", &port.to_string(), "--file"])
        .arg(file)
        .arg("127.0.0.1")
        .output()
        .expect("mllp_send runs (scripts/test installs python's hl7 package)");
    assert!(
        out.status.success(),
        "mllp_send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).replace('\r', "\n")
}

/// Runs `listener` on a free loopback port; returns the port and the switch that stops it.
pub async fn run_on_loopback(
    listener: bright_ingest::mllp::Listener,
) -> (u16, tokio::sync::watch::Sender<bool>) {
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let port = socket.local_addr().expect("addr").port();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(listener.run(socket, stopped));
    (port, stop)
}
