//! Alert webhooks against a real HTTP receiver on loopback: every alert delivered once,
//! signed, also when the receiver is down for a while and when bright stops before sending.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bright_dashboards::alerts::{Alerts, NewAlert, Severity, Webhook, signature};
use chrono::Utc;

const SECRET: &[u8] = b"the cleaning team's webhook secret";

/// What the receiver got: each request's headers and body.
type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn receive(State(got): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
    got.lock().expect("lock").push((headers, body));
    StatusCode::NO_CONTENT
}

/// A receiver listening on `addr`; stops when the returned sender is dropped.
async fn receiver(addr: SocketAddr, got: Received) -> tokio::sync::oneshot::Sender<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.expect("binds");
    let app = Router::new().route("/hook", post(receive)).with_state(got);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
            .expect("serves");
    });
    stop
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

fn cleaning(key: &str) -> NewAlert {
    NewAlert {
        kind: "room_ready_for_cleaning",
        severity: Severity::Info,
        key: key.into(),
        cooldown: Duration::from_secs(3600),
        title: format!("Theatre {key} is ready for cleaning"),
        detail: "The patient left theatre at 14:05.".into(),
        link: Some("/theatres".into()),
    }
}

/// Waits until `done` holds of the outbox, looking again after each delivery attempt (at
/// most 30 s).
async fn until(alerts: &Alerts, mut done: impl FnMut(&Alerts) -> bool) {
    let mut attempts = alerts.attempts();
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while !done(alerts) {
            attempts.changed().await.expect("the store is open");
        }
    })
    .await;
    assert!(waited.is_ok(), "gave up waiting");
}

/// Checks a request as a receiver would: the signature over timestamp and body.
fn verify(headers: &HeaderMap, body: &[u8]) -> serde_json::Value {
    let timestamp: i64 = headers["x-bright-timestamp"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(
        (Utc::now().timestamp() - timestamp).abs() < 60,
        "a fresh timestamp"
    );
    assert_eq!(
        headers["x-bright-signature"].to_str().expect("ascii"),
        signature(SECRET, timestamp, body)
    );
    assert_eq!(headers["content-type"], "application/json");
    serde_json::from_slice(body).expect("a JSON body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_a_receiver_that_was_down_once_each_and_signed() {
    let dir = tempfile::tempdir().expect("a folder");
    let addr = free_port();
    let hook =
        Webhook::new("cleaning", &format!("http://{addr}/hook"), SECRET, &[]).expect("a webhook");
    let alerts =
        Arc::new(Alerts::open(&dir.path().join("alerts.sqlite3"), vec![hook]).expect("opens"));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let delivery = alerts.clone().spawn_delivery(stopped);

    // The receiver is down: the alert is kept and retried.
    alerts.raise(&cleaning("1"), Utc::now()).expect("raised");
    until(&alerts, |a| a.deliveries().expect("counted").failing == 1).await;
    alerts.raise(&cleaning("2"), Utc::now()).expect("raised");

    // It comes back: both arrive, in order, once each, signed.
    let got: Received = Arc::default();
    let _up = receiver(addr, got.clone()).await;
    until(&alerts, |a| a.deliveries().expect("counted").delivered == 2).await;
    let requests = got.lock().expect("lock").clone();
    assert_eq!(requests.len(), 2, "nothing sent twice");
    let bodies: Vec<serde_json::Value> = requests.iter().map(|(h, b)| verify(h, b)).collect();
    assert_eq!(bodies[0]["title"], "Theatre 1 is ready for cleaning");
    assert_eq!(bodies[1]["title"], "Theatre 2 is ready for cleaning");
    assert_eq!(bodies[0]["kind"], "room_ready_for_cleaning");
    assert_eq!(bodies[0]["severity"], "info");
    let ids: Vec<&str> = requests
        .iter()
        .map(|(h, _)| h["x-bright-delivery"].to_str().expect("ascii"))
        .collect();
    assert_ne!(ids[0], ids[1], "each delivery has its own id");
    assert_eq!(alerts.deliveries().expect("counted").pending, 0);

    // Raised while bright stops, before any attempt: the outbox keeps it, and the next start
    // sends it.
    stop.send_replace(true);
    delivery.await.expect("stops");
    alerts.raise(&cleaning("3"), Utc::now()).expect("raised");
    drop(alerts);
    let hook =
        Webhook::new("cleaning", &format!("http://{addr}/hook"), SECRET, &[]).expect("a webhook");
    let reopened =
        Arc::new(Alerts::open(&dir.path().join("alerts.sqlite3"), vec![hook]).expect("opens"));
    assert_eq!(reopened.deliveries().expect("counted").pending, 1);
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let _delivery = reopened.clone().spawn_delivery(stopped);
    until(&reopened, |a| {
        a.deliveries().expect("counted").delivered == 3
    })
    .await;
    assert_eq!(got.lock().expect("lock").len(), 3, "nothing sent twice");
    let (headers, body) = got.lock().expect("lock")[2].clone();
    assert_eq!(
        verify(&headers, &body)["title"],
        "Theatre 3 is ready for cleaning"
    );
    assert_eq!(reopened.latest(10).expect("listed").len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_holds_up_no_other_webhook() {
    let dir = tempfile::tempdir().expect("a folder");
    // Accepts connections and never answers: each attempt waits for the client's timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let silent_addr = silent.local_addr().expect("an address");
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let addr = free_port();
    let got: Received = Arc::default();
    let _up = receiver(addr, got.clone()).await;
    // The silent one first: its delivery is the older in the outbox.
    let hooks = vec![
        Webhook::new(
            "porters",
            &format!("http://{silent_addr}/hook"),
            SECRET,
            &[],
        )
        .expect("a webhook"),
        Webhook::new("cleaning", &format!("http://{addr}/hook"), SECRET, &[]).expect("a webhook"),
    ];
    let alerts = Arc::new(Alerts::open(&dir.path().join("alerts.sqlite3"), hooks).expect("opens"));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let delivery = alerts.clone().spawn_delivery(stopped);
    alerts.raise(&cleaning("4"), Utc::now()).expect("raised");
    until(&alerts, |a| a.deliveries().expect("counted").delivered == 1).await;
    // Delivered while the silent receiver's attempt is still waiting for an answer: no
    // attempt of it has been settled, so the cleaning team did not queue behind it.
    let counts = alerts.deliveries().expect("counted");
    assert_eq!((counts.pending, counts.failing), (1, 0), "{counts:?}");
    let requests = got.lock().expect("lock").clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        verify(&requests[0].0, &requests[0].1)["title"],
        "Theatre 4 is ready for cleaning"
    );
    stop.send_replace(true);
    delivery.await.expect("stops");
    held.abort();
}

/// Alerts in the lake's `alerts` table: (id, kind, title) by id.
async fn in_lake(engine: &bright_engine::query::QueryEngine) -> Vec<(i64, String, String)> {
    use bright_engine::arrow::array::AsArray;
    use bright_engine::arrow::datatypes::Int64Type;
    let out = engine
        .sql("SELECT alert_id, kind, title FROM alerts ORDER BY alert_id")
        .await
        .expect("the alerts table");
    let mut rows = Vec::new();
    for batch in &out.batches {
        let ids = batch.column(0).as_primitive::<Int64Type>();
        let kinds = bright_engine::arrow::compute::cast(
            batch.column(1),
            &bright_engine::arrow::datatypes::DataType::Utf8,
        )
        .expect("text");
        let titles = bright_engine::arrow::compute::cast(
            batch.column(2),
            &bright_engine::arrow::datatypes::DataType::Utf8,
        )
        .expect("text");
        for i in 0..ids.len() {
            rows.push((
                ids.value(i),
                kinds.as_string::<i32>().value(i).to_string(),
                titles.as_string::<i32>().value(i).to_string(),
            ));
        }
    }
    rows
}

/// Waits (at most 30 s) until the lake's `alerts` table holds `n` alerts.
async fn until_in_lake(engine: &bright_engine::query::QueryEngine, n: usize) {
    let mut changed = engine
        .changes(bright_engine::schema::Table::Alerts)
        .expect("a table");
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while in_lake(engine).await.len() < n {
            changed.changed().await.expect("the engine is open");
        }
    })
    .await;
    assert!(waited.is_ok(), "gave up waiting for {n} alerts in the lake");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alert_raised_reaches_the_lake_once_also_across_a_restart() {
    use bright_engine::query::{QueryConfig, QueryEngine};
    let dir = tempfile::tempdir().expect("a folder");
    let lake = bright_engine::lake::Lake::open(dir.path().join("lake").to_str().expect("utf-8"))
        .expect("a lake");
    lake.ensure_tables().await.expect("tables");
    let engine = Arc::new(
        QueryEngine::open(&lake, &QueryConfig::default())
            .await
            .expect("an engine"),
    );
    let store = dir.path().join("alerts.sqlite3");
    let alerts = Arc::new(Alerts::open(&store, Vec::new()).expect("opens"));
    // Raised before the copy runs (bright was started without it, or it was behind).
    alerts.raise(&cleaning("1"), Utc::now()).expect("raised");
    alerts.raise(&cleaning("2"), Utc::now()).expect("raised");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let copy = alerts.clone().spawn_lake_copy(engine.clone(), stopped);
    until_in_lake(&engine, 2).await;
    alerts.raise(&cleaning("3"), Utc::now()).expect("raised");
    until_in_lake(&engine, 3).await;
    stop.send_replace(true);
    copy.await.expect("stops");

    // Raised while stopped; the next start copies it, and nothing twice.
    alerts.raise(&cleaning("4"), Utc::now()).expect("raised");
    drop(alerts);
    let reopened = Arc::new(Alerts::open(&store, Vec::new()).expect("opens"));
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let _copy = reopened.clone().spawn_lake_copy(engine.clone(), stopped);
    until_in_lake(&engine, 4).await;
    let rows = in_lake(&engine).await;
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(ids, [1, 2, 3, 4], "each alert once");
    assert_eq!(rows[0].1, "room_ready_for_cleaning");
    assert_eq!(rows[3].2, "Theatre 4 is ready for cleaning");
    // A copy with nothing new writes nothing.
    assert_eq!(reopened.copy_to_lake(&engine).await.expect("copies"), 0);
    assert_eq!(in_lake(&engine).await.len(), 4);
    // Stopped between the lake's commit and the store's mark: the next copy finds them in the
    // lake and writes none twice.
    rusqlite::Connection::open(&store)
        .and_then(|db| db.execute("UPDATE alerts SET in_lake = 0", []))
        .expect("unmarked");
    assert_eq!(reopened.copy_to_lake(&engine).await.expect("copies"), 0);
    assert_eq!(in_lake(&engine).await.len(), 4);

    // A new store over the same lake numbers its alerts from 1 again: they are new alerts,
    // not ones the lake has.
    let fresh = Alerts::open(&dir.path().join("another.sqlite3"), Vec::new()).expect("opens");
    fresh
        .raise(&cleaning("5"), Utc::now() + chrono::Duration::seconds(1))
        .expect("raised");
    assert_eq!(fresh.copy_to_lake(&engine).await.expect("copies"), 1);
    let rows = in_lake(&engine).await;
    assert_eq!(rows.len(), 5);
    let new = rows
        .iter()
        .find(|r| r.2 == "Theatre 5 is ready for cleaning")
        .expect("in the lake");
    assert_eq!(new.0, 1, "its number is 1 again");
}
