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

use crate::support::{ok, serve_with_env, terminate};

const KEY: &str = "a browser test key, 16+ bytes";
const NAME: &str = "ward.manager";
const PASSWORD: &str = "correct horse battery staple";
/// An analyst, who signs in after the manager to use the SQL page.
const ANALYST: &str = "data.analyst";
/// The cleaning team's webhook signing secret.
const CLEANING_SECRET: &str = "the cleaning team's webhook secret";
/// The theatre system's token for the ingest API.
const THEATRE_TOKEN: &str = "t-theatre-system-0123456789";

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

/// `path` of the open site fetched by the page (its session's cookie goes along), read as
/// `text` or `json`.
async fn fetch(client: &Client, path: &str, read: &str) -> Value {
    client
        .execute_async(
            &format!(
                "const done = arguments[arguments.length - 1];
                 fetch('{path}').then(r => r.{read}()).then(done);"
            ),
            vec![],
        )
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Opens `file` from disk and checks it drew without fetching anything.
async fn opens_offline(client: &Client, file: &std::path::Path) {
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
    assert_eq!(fetched, json!([]), "{} fetched something", file.display());
}

/// The text of the page the browser shows.
/// Clicks the element `css` selects.
async fn click(client: &Client, css: &str) {
    let element = client.find(Locator::Css(css)).await;
    let element = element.unwrap_or_else(|e| panic!("{css}: {e}"));
    element
        .click()
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
}

/// Waits up to `seconds` for an element `css` selects.
async fn wait_for(client: &Client, css: &str, seconds: u64) {
    let found = client
        .wait()
        .at_most(std::time::Duration::from_secs(seconds))
        .for_element(Locator::Css(css))
        .await;
    found.unwrap_or_else(|e| panic!("{css}: {e}"));
}

/// Types `name` and the password into the sign-in form on screen.
async fn fill_sign_in(client: &Client, name: &str) {
    client
        .find(Locator::Id("name"))
        .await
        .expect("a name field")
        .send_keys(name)
        .await
        .expect("types");
    client
        .find(Locator::Id("password"))
        .await
        .expect("a password")
        .send_keys(PASSWORD)
        .await
        .expect("types");
}

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
    for (name, role) in [(NAME, "manager"), (ANALYST, "analyst")] {
        crate::support::add_user(&dir.path().join("users.sqlite3"), name, role, PASSWORD);
    }
    // Charts start on the first simulated day, as `bright generate` advises.
    let advice = generated
        .lines()
        .find_map(|l| l.split_once("put `").and_then(|(_, r)| r.split_once('`')))
        .map(|(setting, _)| setting.to_string())
        .expect("generate says how to set history_from");
    let first_day = chrono::Utc::now().date_naive() - chrono::Duration::days(120);
    assert_eq!(advice, format!("history_from = \"{first_day}\""));
    // The cleaning team's end of the webhook: a real HTTP receiver on loopback.
    let hook = Receiver::start().await;
    // The theatre office's: told when the morning report is ready.
    let office = Receiver::start().await;
    let config = dir.path().join("bright.toml");
    std::fs::write(
        &config,
        format!(
            "[dashboards]\n{advice}\n\n[[dashboards.clients]]\nname = \"theatre-system\"\n\
             token_sha256 = \"{}\"\nscopes = [\"ingest:theatre_sessions\", \"ingest:theatre_events\"]\n\n\
             [[alerts.webhooks]]\nname = \"cleaning-team\"\nurl = \"http://{}/hook\"\n\
             secret_env = \"BRIGHT_CLEANING_SECRET\"\nkinds = [\"room_ready_for_cleaning\"]\n\n\
             [[alerts.webhooks]]\nname = \"theatre-office\"\nurl = \"http://{}/hook\"\n\
             secret_env = \"BRIGHT_CLEANING_SECRET\"\nkinds = [\"theatre_report\"]\n",
            bright_dashboards::auth::token_sha256(THEATRE_TOKEN),
            hook.addr,
            office.addr
        ),
    )
    .expect("writes");
    let (server, _, http) = serve_with_env(
        dir.path(),
        KEY,
        &["--config", config.to_str().expect("utf-8")],
        &[("BRIGHT_CLEANING_SECRET", CLEANING_SECRET)],
    );
    let base = format!("http://127.0.0.1:{http}");
    let driver = chromedriver();
    let client = browser(&driver).await;
    let shots = screenshots();

    // Opening a page first asks to sign in, then lands on that page.
    client.goto(&format!("{base}/ipr")).await.expect("opens");
    let login = client.current_url().await.expect("a url");
    assert_eq!(login.path(), "/login", "{login}");
    fill_sign_in(&client, NAME).await;
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
        // The first report is computed as the service warms, beside other tests' work.
        .at_most(std::time::Duration::from_secs(60))
        .for_url(&landing)
        .await
        .expect("lands on the page it asked for");

    let pages: [(&str, &str, &[&str]); 11] = [
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
            "theatre-report",
            "/theatres/report",
            &[
                "Theatre performance report",
                "By theatre",
                "Cancelled on the day, by reason",
                "Definitions and thresholds used",
            ],
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
    let exported = fetch(&client, "/ipr/export", "text").await;
    let file = dir.path().join("ipr.html");
    std::fs::write(&file, exported.as_str().expect("html")).expect("saved");
    opens_offline(&client, &file).await;
    let icons = client
        .find_all(Locator::Css("table.ipr svg"))
        .await
        .expect("svgs");
    assert!(icons.len() >= 60, "icons and sparklines are drawn");
    std::fs::write(shots.join("ipr-export.png"), whole_page(&client).await).expect("saved");

    // The morning's theatre report, made by the service itself at start (nobody asked for
    // it): in the reports folder, announced on the alert rail, readable offline, and printed
    // by Chromium on A4 landscape pages.
    // Announced once its files are written: the office's receiver is told (signed, as every
    // webhook delivery), and the report is in the reports folder.
    let announced = office.first(std::time::Duration::from_secs(120)).await;
    assert_eq!(announced["kind"], "theatre_report", "{announced}");
    let link = announced["link"].as_str().expect("a link");
    let day = link
        .strip_prefix("/theatres/report?date=")
        .expect("the report's page");
    let report = dir
        .path()
        .join("reports")
        .join(format!("theatre-report-{day}.html"));
    assert!(report.exists(), "{}", report.display());
    assert!(report.with_extension("csv").exists(), "its CSV beside it");
    client
        .goto(&format!("{base}/theatres/report"))
        .await
        .expect("opens");
    let rail = fetch(&client, "/api/alerts", "json").await;
    assert!(
        rail.to_string().contains("\"kind\":\"theatre_report\""),
        "announced: {rail}"
    );
    opens_offline(&client, &report).await;
    let text = body_text(&client).await;
    for wanted in [
        "Theatre performance report",
        "By theatre",
        "Definitions and thresholds used",
    ] {
        assert!(text.contains(wanted), "the kept report: '{wanted}'");
    }
    std::fs::write(
        shots.join("theatre-report-kept.png"),
        whole_page(&client).await,
    )
    .expect("saved");
    let pdf = dir.path().join("theatre-report.pdf");
    let printed = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
        ])
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", report.display()))
        .output()
        .expect("chromium prints");
    assert!(printed.status.success(), "{printed:?}");
    let pdf = std::fs::read(&pdf).expect("a PDF");
    let text = String::from_utf8_lossy(&pdf);
    let pages = text.matches("/MediaBox [0 0 841.").count();
    assert!(pages >= 1, "A4 landscape pages (841.92 × 595.2 points)");
    assert_eq!(
        pages,
        text.matches("/MediaBox").count(),
        "every page A4 landscape"
    );

    // The trackboard live: a list starts today and its milestones are posted as the theatre
    // system would; the open page shows each without being reloaded, "Ready for cleaning"
    // within 2 s of the milestone's acknowledgement.
    client
        .goto(&format!("{base}/theatres"))
        .await
        .expect("opens");
    let today: Value = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/api/theatres').then(r => r.json()).then(b => done(b.date));",
            vec![],
        )
        .await
        .expect("the board's day");
    let today = today.as_str().expect("a date");
    let now = chrono::Utc::now();
    let at = |minutes: i64| (now + chrono::Duration::minutes(minutes)).to_rfc3339();
    post(
        http,
        "theatre_sessions",
        &json!({"session_id": "S-LIVE", "org_code": "RXN", "site": "Main site",
                "theatre": "Theatre 9", "session_date": today, "planned_start": at(-60),
                "planned_end": at(180), "specialty": "110", "cancelled": false})
        .to_string(),
    );
    let milestone = |name: &str, minutes: i64| {
        json!({"event_id": format!("C1-{name}"), "case_id": "C1", "session_id": "S-LIVE",
               "org_code": "RXN", "site": "Main site", "theatre": "Theatre 9",
               "specialty": "110", "procedure_code": "W401",
               "procedure_name": "Total knee replacement", "milestone": name,
               "event_time": at(minutes), "planned_order": 1, "planned_duration_min": 90})
        .to_string()
    };
    let events: Vec<String> = [
        ("sent_for", -70),
        ("in_anaesthetic_room", -60),
        ("anaesthesia_start", -55),
        ("knife_to_skin", -45),
        ("surgery_end", -3),
    ]
    .iter()
    .map(|(name, minutes)| milestone(name, *minutes))
    .collect();
    post(http, "theatre_events", &events.join("\n"));
    let tile = "//li[contains(@class, 'room') and contains(., 'Theatre 9')]";
    client
        .wait()
        .at_most(std::time::Duration::from_secs(10))
        .for_element(Locator::XPath(&format!("{tile}[contains(., 'Closing')]")))
        .await
        .expect("the tile appears and follows the milestones without a reload");
    post(http, "theatre_events", &milestone("out_of_theatre", 0));
    let acknowledged = std::time::Instant::now();
    client
        .wait()
        .at_most(std::time::Duration::from_secs(2))
        .for_element(Locator::XPath(&format!(
            "{tile}[contains(., 'Ready for cleaning')]"
        )))
        .await
        .expect("'Ready for cleaning' within 2 s of the acknowledgement");
    println!(
        "Ready for cleaning on the page {} ms after the acknowledgement",
        acknowledged.elapsed().as_millis()
    );
    // And the cleaning team is told, without anyone phoning: one signed notification.
    let told = hook.first(std::time::Duration::from_secs(10)).await;
    assert_eq!(told["kind"], "room_ready_for_cleaning", "{told}");
    assert_eq!(
        told["title"], "Theatre 9 (Main site) is ready for cleaning",
        "{told}"
    );

    // The service's own health, for the trust's monitoring, says the same.
    let metrics: Value = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/metrics').then(r => r.text()).then(done);",
            vec![],
        )
        .await
        .expect("fetches");
    let metrics = metrics.as_str().expect("text");
    let sample = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    assert_eq!(
        sample("bright_ingest_records_total{feed=\"theatre_events\"}"),
        6.0
    );
    assert_eq!(
        sample("bright_ingest_records_total{feed=\"theatre_sessions\"}"),
        1.0
    );
    assert!(
        sample("bright_live_streams{board=\"theatres\"}") >= 1.0,
        "this page's stream"
    );
    assert!(sample("bright_alerts_raised_total") >= 1.0);
    assert!(sample("bright_alert_deliveries{state=\"delivered\"}") >= 1.0);
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').expect("a name and a value");
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    assert_eq!(script_errors(&client).await, Vec::<String>::new());
    let violations = accessibility(&client, &axe).await;
    assert!(violations.is_empty(), "/theatres live: {violations:#?}");
    std::fs::write(shots.join("trackboard-live.png"), whole_page(&client).await).expect("saved");

    // A wall screen: a kiosk link for one site, a dozen theatres at different stages; the
    // board fits 1920×1080 and 3840×2160 with no scrollbar and nothing cut off.
    let sessions: Vec<String> = (1..=11)
        .map(|n| {
            json!({"session_id": format!("S-{n}"), "org_code": "RXN", "site": "Main site",
                   "theatre": format!("Theatre {n:02}"), "session_date": today,
                   "planned_start": at(-180), "planned_end": at(60), "specialty": "100",
                   "cancelled": false})
            .to_string()
        })
        .collect();
    post(http, "theatre_sessions", &sessions.join("\n"));
    let case = |session: &str, theatre: &str, name: &str, minutes: i64, booked: i64| {
        json!({"event_id": format!("{session}-{name}"), "case_id": format!("{session}-1"),
               "session_id": session, "org_code": "RXN", "site": "Main site",
               "theatre": theatre, "specialty": "100", "procedure_code": "H011",
               "procedure_name": "Laparoscopic appendicectomy", "milestone": name,
               "event_time": at(minutes), "planned_order": 1, "planned_duration_min": booked})
        .to_string()
    };
    let stages = [
        case("S-1", "Theatre 01", "anaesthesia_start", -40, 60),
        case("S-1", "Theatre 01", "knife_to_skin", -30, 60),
        case("S-2", "Theatre 02", "sent_for", -5, 60),
        case("S-3", "Theatre 03", "out_of_theatre", -20, 60),
        case("S-3", "Theatre 03", "cleaning_start", -10, 60),
        case("S-4", "Theatre 04", "anaesthesia_start", -170, 240),
        case("S-4", "Theatre 04", "surgery_end", -2, 240),
    ];
    post(http, "theatre_events", &stages.join("\n"));
    let users_db = dir.path().join("users.sqlite3");
    let kiosk = |board: &str, label: &str| kiosk_link(&users_db, board, label);
    let (corridor, link) = kiosk("theatres", "Theatre corridor");
    client.delete_all_cookies().await.expect("signed out");
    client.goto(&format!("{base}{link}")).await.expect("opens");
    client
        .wait()
        .at_most(std::time::Duration::from_secs(10))
        .for_element(Locator::XPath(
            "//li[contains(@class, 'room') and contains(., 'Theatre 04') and contains(., 'Expected to overrun')]",
        ))
        .await
        .expect("the kiosk board, live");
    fits_both_screens(&client, &shots, "trackboard-kiosk", ".room", 12).await;
    let violations = accessibility(&client, &axe).await;
    assert!(violations.is_empty(), "kiosk: {violations:#?}");
    // The link opens its board and nothing else.
    let elsewhere: Value = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             Promise.all(['/ipr', '/api/feeds', '/theatres'].map(p => fetch(p, {redirect: 'manual'})
               .then(r => r.status))).then(done);",
            vec![],
        )
        .await
        .expect("fetches");
    assert_eq!(elsewhere, json!([403, 403, 200]));
    // Revoked: the screen stops at once, and dims.
    ok(&[
        "kiosk",
        "revoke",
        &corridor,
        "--db",
        dir.path().join("users.sqlite3").to_str().expect("utf-8"),
    ]);
    client
        .wait()
        .at_most(std::time::Duration::from_secs(20))
        .for_element(Locator::Css("body.offline"))
        .await
        .expect("the revoked screen dims");
    let status: Value = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/api/theatres').then(r => done(r.status));",
            vec![],
        )
        .await
        .expect("fetches");
    assert_eq!(status, json!(401));

    // The command-centre wall on a kiosk link: it fits both screens with nothing cut off.
    let (_, link) = kiosk("command-centre", "Command centre wall");
    client.goto(&format!("{base}{link}")).await.expect("opens");
    client
        .wait()
        .at_most(std::time::Duration::from_secs(10))
        .for_element(Locator::Css("#board .wall"))
        .await
        .expect("the wall");
    let text = body_text(&client).await;
    for wanted in [
        "Pressure level",
        "ED now",
        "Beds",
        "Discharges today",
        "Theatres",
        "Alerts",
    ] {
        assert!(text.contains(wanted), "the wall has no '{wanted}'");
    }
    // The cleaning alert raised above is on the rail.
    assert!(
        text.contains("Theatre 9 (Main site) is ready for cleaning"),
        "{text}"
    );
    fits_both_screens(&client, &shots, "command-centre", ".tile", 7).await;
    assert_eq!(script_errors(&client).await, Vec::<String>::new());
    let violations = accessibility(&client, &axe).await;
    assert!(violations.is_empty(), "command centre: {violations:#?}");

    // An analyst, in a browser of their own (no cookie of the kiosk or the manager), signs in
    // and asks the lake a question.
    client.delete_all_cookies().await.expect("cookies gone");
    client.goto(&format!("{base}/sql")).await.expect("opens");
    fill_sign_in(&client, ANALYST).await;
    click(&client, "button[type=submit]").await;
    wait_for(&client, "#sql", 20).await;
    let editor = client.find(Locator::Id("sql")).await.expect("the editor");
    editor.clear().await.expect("cleared");
    editor
        .send_keys(
            "SELECT site, ward, count(*) AS beds_reported\nFROM beds\nGROUP BY site, ward\nORDER BY site, ward",
        )
        .await
        .expect("types");
    click(&client, ".sql-actions button.button").await;
    wait_for(&client, ".sql-answer table", 30).await;
    let text = body_text(&client).await;
    assert!(
        text.contains("beds_reported") && text.contains(" rows"),
        "{text}"
    );
    assert!(text.contains("Tables and views"));
    assert_eq!(script_errors(&client).await, Vec::<String>::new());
    let violations = accessibility(&client, &axe).await;
    assert!(violations.is_empty(), "/sql: {violations:#?}");
    std::fs::write(shots.join("sql.png"), whole_page(&client).await).expect("saved");

    // The server stops: the page dims and says it is reconnecting, so the numbers left on
    // it never look live.
    let (_, link) = kiosk("theatres", "Theatre reception");
    client.goto(&format!("{base}{link}")).await.expect("opens");
    client
        .wait()
        .at_most(std::time::Duration::from_secs(10))
        .for_element(Locator::Css("#board .room"))
        .await
        .expect("the board");
    terminate(server);
    client
        .wait()
        .at_most(std::time::Duration::from_secs(20))
        .for_element(Locator::Css("body.offline"))
        .await
        .expect("the page dims");
    let link = client
        .find(Locator::Id("link"))
        .await
        .expect("the link notice");
    assert!(link.is_displayed().await.expect("visible"));
    assert!(link.text().await.expect("text").contains("Reconnecting"));
    std::fs::write(
        shots.join("trackboard-offline.png"),
        whole_page(&client).await,
    )
    .expect("saved");

    client.close().await.expect("closes");
    println!("Screenshots: {}", shots.display());
}

/// Posts NDJSON records to feed `feed` of the service on `http` as the theatre system, with
/// curl; panics unless they are acknowledged.
fn post(http: u16, feed: &str, ndjson: &str) {
    let mut curl = Command::new("curl")
        .args(["-sS", "--fail-with-body", "-X", "POST"])
        .args(["-H", &format!("Authorization: Bearer {THEATRE_TOKEN}")])
        .args([
            "-H",
            "Content-Type: application/x-ndjson",
            "--data-binary",
            "@-",
        ])
        .arg(format!("http://127.0.0.1:{http}/api/ingest/{feed}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl runs");
    curl.stdin
        .take()
        .expect("stdin")
        .write_all(ndjson.as_bytes())
        .expect("writes");
    let out = curl.wait_with_output().expect("curl ends");
    assert!(
        out.status.success(),
        "{feed}: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A webhook receiver on loopback that keeps what it is sent and checks each request's
/// signature as the cleaning team's system would.
struct Receiver {
    addr: std::net::SocketAddr,
    /// What it was sent, in order; waiters see each arrival.
    got: std::sync::Arc<tokio::sync::watch::Sender<Vec<Value>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        use axum::http::{HeaderMap, StatusCode};
        type Got = std::sync::Arc<tokio::sync::watch::Sender<Vec<Value>>>;
        async fn receive(
            axum::extract::State(got): axum::extract::State<Got>,
            headers: HeaderMap,
            body: axum::body::Bytes,
        ) -> StatusCode {
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            };
            let Ok(timestamp) = header("x-bright-timestamp").parse::<i64>() else {
                return StatusCode::BAD_REQUEST;
            };
            let expected =
                bright_dashboards::alerts::signature(CLEANING_SECRET.as_bytes(), timestamp, &body);
            if header("x-bright-signature") != expected {
                return StatusCode::UNAUTHORIZED;
            }
            match serde_json::from_slice(&body) {
                Ok(alert) => {
                    got.send_modify(|all| all.push(alert));
                    StatusCode::NO_CONTENT
                }
                Err(_) => StatusCode::BAD_REQUEST,
            }
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("an address");
        let got: Got = std::sync::Arc::new(tokio::sync::watch::Sender::new(Vec::new()));
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(got.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, got }
    }

    /// The first notification received, waiting up to `wait`.
    async fn first(&self, wait: std::time::Duration) -> Value {
        let mut got = self.got.subscribe();
        let arrived = tokio::time::timeout(wait, got.wait_for(|all| !all.is_empty()))
            .await
            .unwrap_or_else(|_| panic!("no notification within {wait:?}"))
            .expect("the receiver runs");
        arrived[0].clone()
    }
}

/// A new kiosk link for `board` (the trackboard's for "Main site"): its id and its path.
fn kiosk_link(users_db: &std::path::Path, board: &str, label: &str) -> (String, String) {
    let db = users_db.to_str().expect("utf-8");
    let mut args = vec![
        "kiosk", "new", "--board", board, "--label", label, "--db", db,
    ];
    if board == "theatres" {
        args.extend(["--site", "Main site"]);
    }
    let out = ok(&args);
    let link = out
        .lines()
        .find_map(|l| l.strip_prefix("Open on the screen: "))
        .expect("the link")
        .to_string();
    let id = out.split_whitespace().nth(2).expect("the id").to_string();
    (id, link)
}

/// The open page at 1920×1080 and 3840×2160: no scrollbar, and each of its `count` boxes
/// (`selector`, each headed by an h2) shows all it holds. A screenshot of each is saved.
async fn fits_both_screens(
    client: &Client,
    shots: &std::path::Path,
    name: &str,
    selector: &str,
    count: usize,
) {
    for (width, height) in [(1920u32, 1080u32), (3840, 2160)] {
        client
            .set_window_size(width, height)
            .await
            .expect("resizes");
        std::fs::write(
            shots.join(format!("{name}-{width}x{height}.png")),
            client.screenshot().await.expect("a screenshot"),
        )
        .expect("saved");
        let fit: Value = client
            .execute(
                "const d = document.documentElement;
                 const boxes = Array.from(document.querySelectorAll(arguments[0]));
                 return {page: d.scrollWidth <= innerWidth && d.scrollHeight <= innerHeight,
                         cut: boxes.filter(b => b.scrollHeight > b.clientHeight + 1)
                                   .map(b => b.querySelector('h2').textContent + ': ' +
                                             b.scrollHeight + ' > ' + b.clientHeight),
                         boxes: boxes.length, nav: document.querySelectorAll('nav').length};",
                vec![json!(selector)],
            )
            .await
            .expect("measures");
        assert_eq!(
            fit,
            json!({"page": true, "cut": [], "boxes": count, "nav": 0}),
            "{name} at {width}×{height}"
        );
    }
    client.set_window_size(1440, 1000).await.expect("resizes");
}
