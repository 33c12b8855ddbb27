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
