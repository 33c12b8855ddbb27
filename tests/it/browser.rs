//! The pages in a real browser: `bright serve` over a generated lake, Debian's headless
//! Chromium driven through chromedriver (W3C WebDriver). A person signs in, opens every page,
//! and each page must load without a script error, show what its reader came for, pass
//! axe-core's accessibility rules with no serious or critical violation, and be usable from the
//! keyboard. The IPR's exported file must open with nothing fetched from anywhere.
//!
//! Each page's screenshot is saved (not committed) in `$BRIGHT_SCREENSHOTS`, or
//! `<target dir>/screenshots`, for people to look at. `scripts/test` installs chromium,
//! chromium-driver and axe-core (`BRIGHT_AXE_JS` names its `axe.min.js`).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::support::{bright, ok, serve, terminate};

const KEY: &str = "a browser test key, 16+ bytes";
const NAME: &str = "ward.manager";
const PASSWORD: &str = "correct horse battery staple";

/// chromedriver on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver runs (Debian's chromium-driver; scripts/test installs it)");
    // Ready when it says so; keep draining its output afterwards so it never blocks.
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let mut said = Vec::new();
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("chromedriver exited before it started: {said:?}"))
            .expect("reads");
        if line.contains("started successfully") {
            break;
        }
        said.push(line);
    }
    std::thread::spawn(move || for _ in lines {});
    Driver { child, port }
}

async fn browser(driver: &Driver) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1440,1000"]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a browser session")
}

fn screenshots() -> PathBuf {
    let dir = std::env::var_os("BRIGHT_SCREENSHOTS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR").map(|t| PathBuf::from(t).join("screenshots"))
        })
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots"));
    std::fs::create_dir_all(&dir).expect("a screenshot folder");
    dir
}

/// The whole page as a PNG (the window is stretched to the page's height first, as far as
/// 6,000 pixels, and put back after).
async fn whole_page(client: &Client) -> Vec<u8> {
    let height: Value = client
        .execute("return document.documentElement.scrollHeight;", vec![])
        .await
        .expect("runs");
    let height = height.as_u64().unwrap_or(1000).clamp(600, 6000) as u32;
    client.set_window_size(1440, height).await.expect("resizes");
    let png = client.screenshot().await.expect("a screenshot");
    client.set_window_size(1440, 1000).await.expect("resizes");
    png
}

/// The text of the page the browser shows.
async fn body_text(client: &Client) -> String {
    client
        .find(Locator::Css("body"))
        .await
        .expect("a body")
        .text()
        .await
        .expect("text")
}

/// Script errors the page's collector caught.
async fn script_errors(client: &Client) -> Vec<String> {
    let errors = client
        .execute(
            "return window.__errs || ['no error collector on this page'];",
            vec![],
        )
        .await
        .expect("runs");
    serde_json::from_value(errors).expect("a list")
}

/// axe-core's serious and critical violations on the open page.
async fn accessibility(client: &Client, axe: &str) -> Vec<String> {
    client.execute(axe, vec![]).await.expect("axe loads");
    let found = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']}).then(r => done(
               r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' — ' +
                      v.nodes.slice(0, 3).map(n => n.target.join(' ')).join('; '))));",
            vec![],
        )
        .await
        .expect("axe runs");
    serde_json::from_value(found).expect("a list")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_signs_in_and_every_page_works_in_a_real_browser() {
    let axe = std::env::var("BRIGHT_AXE_JS")
        .ok()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .expect("BRIGHT_AXE_JS names axe-core's axe.min.js (scripts/test installs it)");
    let dir = tempfile::tempdir().expect("a folder");
    let today = chrono::Utc::now().date_naive().to_string();
    let lake = dir.path().join("lake");
    let generated = ok(&[
        "generate",
        "--days",
        "120",
        "--seed",
        "11",
        "--end",
        &today,
        "--lake",
        lake.to_str().expect("utf-8"),
    ]);
    let mut add = bright()
        .args([
            "users",
            "add",
            NAME,
            "--role",
            "manager",
            "--password-stdin",
            "--db",
        ])
        .arg(dir.path().join("users.sqlite3"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("bright users add");
    add.stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .expect("writes");
    assert!(add.wait().expect("ends").success());
    // Charts start on the first simulated day, as `bright generate` advises.
    let advice = generated
        .lines()
        .find_map(|l| l.split_once("put `").and_then(|(_, r)| r.split_once('`')))
        .map(|(setting, _)| setting.to_string())
        .expect("generate says how to set history_from");
    let first_day = chrono::Utc::now().date_naive() - chrono::Duration::days(120);
    assert_eq!(advice, format!("history_from = \"{first_day}\""));
    let config = dir.path().join("bright.toml");
    std::fs::write(&config, format!("[dashboards]\n{advice}\n")).expect("writes");
    let (server, _, http) = serve(
        dir.path(),
        KEY,
        &["--config", config.to_str().expect("utf-8")],
    );
    let base = format!("http://127.0.0.1:{http}");
    let driver = chromedriver();
    let client = browser(&driver).await;
    let shots = screenshots();

    // Opening a page first asks to sign in, then lands on that page.
    client.goto(&format!("{base}/ipr")).await.expect("opens");
    let login = client.current_url().await.expect("a url");
    assert_eq!(login.path(), "/login", "{login}");
    let name = client
        .find(Locator::Id("name"))
        .await
        .expect("a name field");
    name.send_keys(NAME).await.expect("types");
    let password = client
        .find(Locator::Id("password"))
        .await
        .expect("a password");
    password.send_keys(PASSWORD).await.expect("types");
    std::fs::write(
        shots.join("login.png"),
        client.screenshot().await.expect("a screenshot"),
    )
    .expect("saved");
    client
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("a button")
        .click()
        .await
        .expect("signs in");
    // The sign-in answers with a redirect: wait for the browser to follow it.
    let landing = login.join("/ipr").expect("a url");
    client
        .wait()
        .at_most(std::time::Duration::from_secs(10))
        .for_url(&landing)
        .await
        .expect("lands on the page it asked for");

    let pages: [(&str, &str, &[&str]); 10] = [
        (
            "home",
            "/",
            &["Your dashboards", "What changed since yesterday"],
        ),
        (
            "ipr",
            "/ipr",
            &[
                "Integrated Performance Report",
                "Four-hour performance",
                "Key to the icons",
                "Data as of",
            ],
        ),
        (
            "ed",
            "/dashboards/ed",
            &[
                "Emergency department",
                "Ambulance handovers over 30 minutes",
            ],
        ),
        (
            "flow",
            "/dashboards/flow?grain=month",
            &["Flow and beds", "G&A bed occupancy at midnight"],
        ),
        (
            "theatres",
            "/dashboards/theatres",
            &["Theatres", "Theatre touch-time utilisation (capped)"],
        ),
        (
            "workforce",
            "/dashboards/workforce",
            &["Workforce", "Shift fill rate"],
        ),
        (
            "finance",
            "/dashboards/finance",
            &["Finance", "Pay variance to budget"],
        ),
        (
            "kpi",
            "/kpi/ed_4h_performance",
            &["Four-hour performance", "About this KPI", "The SQL it runs"],
        ),
        ("kpi-by-ward", "/kpi/bed_occupancy_ga?by=ward", &["By ward"]),
        (
            "data-quality",
            "/data-quality",
            &["Data quality", "Feeds now", "hl7_adt"],
        ),
    ];
    for (shot, path, expected) in pages {
        client.goto(&format!("{base}{path}")).await.expect("opens");
        let text = body_text(&client).await;
        for wanted in expected {
            assert!(text.contains(wanted), "{path}: '{wanted}' not on the page");
        }
        assert!(text.contains("Data as of"), "{path}: no data-as-of stamp");
        assert_eq!(script_errors(&client).await, Vec::<String>::new(), "{path}");
        let svgs = client.find_all(Locator::Css("svg")).await.expect("svgs");
        if path != "/" {
            assert!(!svgs.is_empty(), "{path}: no chart or icon");
        }
        let violations = accessibility(&client, &axe).await;
        assert!(violations.is_empty(), "{path}: {violations:#?}");
        std::fs::write(shots.join(format!("{shot}.png")), whole_page(&client).await)
            .expect("saved");
    }

    // The trackboard: this lake ends yesterday, so no theatre has a list today; the page says
    // so and passes the same checks.
    client
        .goto(&format!("{base}/theatres"))
        .await
        .expect("opens");
    let text = body_text(&client).await;
    assert!(text.contains("Theatres now") && text.contains("No theatre has a list today"));
    assert_eq!(script_errors(&client).await, Vec::<String>::new());
    let violations = accessibility(&client, &axe).await;
    assert!(violations.is_empty(), "/theatres: {violations:#?}");
    std::fs::write(shots.join("trackboard.png"), whole_page(&client).await).expect("saved");

    // The keyboard reaches the page: the first Tab lands on "Skip to content".
    client.goto(&format!("{base}/ipr")).await.expect("opens");
    client
        .find(Locator::Css("body"))
        .await
        .expect("body")
        .send_keys("\u{E004}")
        .await
        .expect("tabs");
    let focused: Value = client
        .execute("return document.activeElement.textContent;", vec![])
        .await
        .expect("runs");
    assert_eq!(focused, json!("Skip to content"));

    // A matrix cell filters the table to its KPIs.
    let cell = client
        .find(Locator::Css("table.matrix td a"))
        .await
        .expect("a cell with KPIs");
    let count: usize = cell.text().await.expect("text").parse().expect("a count");
    cell.click().await.expect("filters");
    let rows = client
        .find_all(Locator::Css("table.ipr tr.row"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), count);

    // The exported report, saved and opened from disk, draws without fetching anything.
    let exported: Value = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/ipr/export').then(r => r.text()).then(done);",
            vec![],
        )
        .await
        .expect("downloads");
    let file = dir.path().join("ipr.html");
    std::fs::write(&file, exported.as_str().expect("html")).expect("saved");
    client
        .goto(&format!("file://{}", file.display()))
        .await
        .expect("opens offline");
    let fetched: Value = client
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name);",
            vec![],
        )
        .await
        .expect("runs");
    assert_eq!(fetched, json!([]), "the export fetched something");
    let icons = client
        .find_all(Locator::Css("table.ipr svg"))
        .await
        .expect("svgs");
    assert!(icons.len() >= 60, "icons and sparklines are drawn");
    std::fs::write(shots.join("ipr-export.png"), whole_page(&client).await).expect("saved");

    client.close().await.expect("closes");
    terminate(server);
    println!("Screenshots: {}", shots.display());
}
