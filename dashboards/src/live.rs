//! Live boards: a board's state is computed once per change and pushed to every viewer over
//! Server-Sent Events, never computed per viewer.
//!
//! A [`Hub`] keeps the latest [`Frame`] of one board (its data for the JSON twin, and its
//! views already rendered, one per filter such as a site), the last few frames for viewers
//! that reconnect, and a broadcast channel to every open stream. [`stream`] serves one viewer:
//! after a reconnect (`Last-Event-ID`) it replays the frames the viewer missed, or sends the
//! latest frame whole when those are gone (another process's id, or too far behind); a viewer
//! that is behind gets the newest frame whole instead of each one it missed, and one too slow
//! for the broadcast the latest whole instead of a broken stream; a viewer that has the frame
//! before gets only the pieces that changed (a tile, not the board); and a
//! `ping` event every few seconds lets the page tell a live link from a dead one (comments,
//! the usual SSE keep-alive, never reach a page's script).

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, watch};

/// Frames kept for viewers that reconnect.
const KEPT: usize = 32;
/// Frames a viewer may fall behind before it gets the latest one whole.
const BACKLOG: usize = 16;
/// How often an open stream says it is alive; pages dim after missing about two of these.
pub const PING: Duration = Duration::from_secs(5);
/// How long the browser waits before it reconnects a dropped stream.
const RETRY: Duration = Duration::from_secs(2);

/// Views whose key starts with this hold the board's JSON twin for that view, written once
/// per frame like the markup (not sent on the stream).
pub const JSON_VIEW: &str = "json:";

/// Each view's pieces (element id, markup), in the order they stand on the page.
pub type Pieces = BTreeMap<String, Vec<(String, String)>>;

/// One state of a board.
#[derive(Debug)]
pub struct Frame<T> {
    /// `{process}-{n}`: ids from another run of the service never match this run's.
    pub id: String,
    n: u64,
    pub at: DateTime<Utc>,
    pub data: Arc<T>,
    /// The board as each view renders it (key `""`: unfiltered).
    pub views: BTreeMap<String, String>,
    /// Each view's pieces that a page can replace one by one (id, markup), when the board
    /// has them.
    parts: Pieces,
    /// Each view on the wire, written once and shared by every viewer (at ten thousand
    /// screens, formatting the event per viewer was most of the cost).
    wire: BTreeMap<String, Wire>,
}

/// A view of a frame as events: the whole view, and (when the view has the same pieces as in
/// the frame before) only the pieces that changed, for viewers that have that frame.
#[derive(Debug)]
struct Wire {
    whole: Bytes,
    change: Option<Bytes>,
}

impl<T> Frame<T> {
    /// The JSON twin of `view`, if the board wrote one.
    pub fn json(&self, view: &str) -> Option<Response> {
        let body = self.views.get(&format!("{JSON_VIEW}{view}"))?;
        Some(([(CONTENT_TYPE, "application/json")], body.clone()).into_response())
    }
}

#[derive(Debug)]
struct Kept<T> {
    next: u64,
    frames: VecDeque<Arc<Frame<T>>>,
}

/// The latest state of one board and the viewers that follow it.
#[derive(Debug)]
pub struct Hub<T> {
    run: String,
    kept: Mutex<Kept<T>>,
    latest: watch::Sender<Option<Arc<Frame<T>>>>,
    sent: broadcast::Sender<Arc<Frame<T>>>,
    open: Arc<AtomicUsize>,
    /// True once the service is stopping: open streams end, so a graceful shutdown is not
    /// held up by viewers that never leave.
    closed: watch::Sender<bool>,
}

impl<T: Send + Sync + 'static> Default for Hub<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + Sync + 'static> Hub<T> {
    pub fn new() -> Self {
        Hub {
            run: Utc::now().timestamp_millis().to_string(),
            kept: Mutex::new(Kept {
                next: 1,
                frames: VecDeque::new(),
            }),
            latest: watch::Sender::new(None),
            sent: broadcast::channel(BACKLOG).0,
            open: Arc::new(AtomicUsize::new(0)),
            closed: watch::Sender::new(false),
        }
    }

    /// Ends every open stream, and any opened later.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept<T>> {
        // A poisoned lock only means a publisher panicked between whole updates.
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes a new state unless every view renders as the latest one already does
    /// (nothing a viewer sees changed: the boards print their computation time to the
    /// second, so in practice two computations within one second). Returns whether it was
    /// sent.
    pub fn publish(&self, data: T, views: BTreeMap<String, String>) -> bool {
        self.publish_parts(data, views, BTreeMap::new())
    }

    /// [`Hub::publish`], with each view's pieces (`parts[view]`: id and markup of elements
    /// that together make the view): a viewer that has the frame before gets only the pieces
    /// that changed (a `parts` event) when the view has the same pieces in the same order,
    /// instead of the whole board — at a room changing status, one tile, not twenty.
    pub fn publish_parts(&self, data: T, views: BTreeMap<String, String>, parts: Pieces) -> bool {
        let frame = {
            let mut kept = self.kept();
            let before = kept.frames.back().cloned();
            if before.as_ref().is_some_and(|f| f.views == views) {
                return false;
            }
            let n = kept.next;
            kept.next += 1;
            let id = format!("{}-{n}", self.run);
            let wire = views
                .iter()
                .filter(|(view, _)| !view.starts_with(JSON_VIEW))
                .map(|(view, markup)| {
                    let earlier = before.as_ref().and_then(|f| f.parts.get(view));
                    let change = match (earlier, parts.get(view)) {
                        (Some(earlier), Some(now))
                            if earlier.len() == now.len()
                                && earlier.iter().zip(now).all(|(a, b)| a.0 == b.0) =>
                        {
                            let changed: String = earlier
                                .iter()
                                .zip(now)
                                .filter(|(a, b)| a.1 != b.1)
                                .map(|(_, b)| b.1.as_str())
                                .collect();
                            Some(event("parts", &id, &changed))
                        }
                        _ => None,
                    };
                    let whole = event("board", &id, markup);
                    (view.clone(), Wire { whole, change })
                })
                .collect();
            let frame = Arc::new(Frame {
                id,
                n,
                at: Utc::now(),
                data: Arc::new(data),
                views,
                parts,
                wire,
            });
            kept.frames.push_back(frame.clone());
            while kept.frames.len() > KEPT {
                kept.frames.pop_front();
            }
            frame
        };
        self.latest.send_replace(Some(frame.clone()));
        // No viewer open is not an error.
        let _ = self.sent.send(frame);
        true
    }

    /// The latest frame, if one was published.
    pub fn latest(&self) -> Option<Arc<Frame<T>>> {
        self.latest.borrow().clone()
    }

    /// The latest frame, waiting up to `wait` for the first one.
    pub async fn first(&self, wait: Duration) -> Option<Arc<Frame<T>>> {
        let mut latest = self.latest.subscribe();
        let found = tokio::time::timeout(wait, latest.wait_for(Option::is_some)).await;
        found.ok()?.ok()?.clone()
    }

    /// Streams open now.
    pub fn viewers(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// What a viewer that last saw `last_id` needs first: the frames after it when this run
    /// still keeps them, else the latest frame whole.
    fn catch_up(&self, last_id: Option<&str>) -> Vec<Arc<Frame<T>>> {
        let kept = self.kept();
        let seen = last_id.and_then(|id| {
            id.strip_prefix(&self.run)?
                .strip_prefix('-')?
                .parse::<u64>()
                .ok()
        });
        let oldest = kept.frames.front().map(|f| f.n);
        match (seen, oldest) {
            // Every frame after the one seen is still here (an id from the future is not).
            (Some(seen), Some(oldest)) if seen + 1 >= oldest && seen < kept.next => {
                kept.frames.iter().filter(|f| f.n > seen).cloned().collect()
            }
            _ => kept.frames.back().cloned().into_iter().collect(),
        }
    }
}

/// A board computed by one task for every viewer: its hub, and whether the task runs.
#[derive(Debug)]
pub struct LiveBoard<T> {
    pub hub: Arc<Hub<T>>,
    started: std::sync::OnceLock<()>,
}

impl<T: Send + Sync + 'static> Default for LiveBoard<T> {
    fn default() -> Self {
        LiveBoard {
            hub: Arc::new(Hub::new()),
            started: std::sync::OnceLock::new(),
        }
    }
}

impl<T: Send + Sync + 'static> LiveBoard<T> {
    /// Starts `run` (the board's loop) unless it runs already; it stops when `stopped` turns
    /// true (or with the runtime, when there is none), and then every open stream ends.
    pub fn start<F, Fut>(
        &self,
        state: &crate::AppState,
        stopped: Option<watch::Receiver<bool>>,
        run: F,
    ) where
        F: FnOnce(crate::AppState, Arc<Hub<T>>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        if self.started.set(()).is_err() {
            return;
        }
        let hub = self.hub.clone();
        let running = run(state.clone(), hub.clone());
        tokio::spawn(async move {
            let stopped = async move {
                match stopped {
                    Some(mut s) => {
                        let _ = s.wait_for(|stop| *stop).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = running => {}
                () = stopped => {}
            }
            hub.close();
        });
    }

    /// The latest frame, starting `run` if need be and waiting briefly for its first.
    pub async fn latest<F, Fut>(
        &self,
        state: &crate::AppState,
        run: F,
    ) -> Result<Arc<Frame<T>>, String>
    where
        F: FnOnce(crate::AppState, Arc<Hub<T>>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.start(state, None, run);
        self.hub
            .first(Duration::from_secs(30))
            .await
            .ok_or_else(|| "the board has not been computed yet".to_string())
    }
}

/// Counts a stream as open for as long as it lives.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Open(count.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Viewer<T> {
    hub: Arc<Hub<T>>,
    view: String,
    /// Shown when the view is not one the frame has (a filter naming nothing).
    absent: String,
    pending: VecDeque<Arc<Frame<T>>>,
    /// The newest frame sent: older ones arriving late are skipped.
    sent: u64,
    frames: broadcast::Receiver<Arc<Frame<T>>>,
    ping: tokio::time::Interval,
    closed: watch::Receiver<bool>,
    still_allowed: Box<dyn Fn() -> bool + Send>,
    _open: Open,
}

impl<T: Send + Sync + 'static> Viewer<T> {
    /// After a frame arrives: the frames already queued behind it too, and of them all only
    /// the newest — a viewer that is behind (a slow link, a busy service) gets the board as it
    /// is now, whole, instead of working through every state it missed.
    fn newest_only(&mut self) {
        loop {
            match self.frames.try_recv() {
                Ok(frame) => self.pending.push_back(frame),
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    self.pending.clear();
                    self.pending.extend(self.hub.latest());
                    return;
                }
                Err(_) => break,
            }
        }
        if self.pending.len() > 1 {
            let newest = self.pending.pop_back();
            self.pending.clear();
            self.pending.extend(newest);
        }
    }
}

/// An event (`board` or `parts`) as Server-Sent Events write it: each line of the markup its
/// own `data:` line (a browser joins them with newlines).
fn event(name: &str, id: &str, markup: &str) -> Bytes {
    let mut event = format!("event: {name}\nid: {id}\n");
    for line in markup.split('\n') {
        event.push_str("data: ");
        event.push_str(line.trim_end_matches('\r'));
        event.push('\n');
    }
    event.push('\n');
    Bytes::from(event)
}

/// One viewer's stream of `view` (`""` for the whole board): `board` events carrying the
/// view's markup with the frame's id, and `ping` events carrying the time. `absent` is the
/// markup sent when a frame has no such view. The stream ends at a ping once
/// `still_allowed` says the viewer's credential has gone (a revoked kiosk link).
pub fn stream<T: Send + Sync + 'static>(
    hub: Arc<Hub<T>>,
    view: String,
    absent: String,
    last_id: Option<&str>,
    still_allowed: Box<dyn Fn() -> bool + Send>,
) -> Response {
    // Subscribe before catching up, so no frame falls between the two.
    let frames = hub.sent.subscribe();
    let pending: VecDeque<_> = hub.catch_up(last_id).into();
    let mut ping = tokio::time::interval(PING);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let viewer = Viewer {
        _open: Open::new(&hub.open),
        closed: hub.closed.subscribe(),
        still_allowed,
        hub,
        view,
        absent,
        pending,
        sent: 0,
        frames,
        ping,
    };
    let first = Bytes::from(format!(
        "retry: {}\n: bright live board\n\n",
        RETRY.as_millis()
    ));
    let events = futures_util::stream::unfold(Some(viewer), |viewer| async move {
        let mut viewer = viewer?;
        loop {
            if *viewer.closed.borrow() {
                return None;
            }
            if let Some(frame) = viewer.pending.pop_front() {
                if frame.n <= viewer.sent {
                    continue;
                }
                // Only the changed pieces when the viewer has the frame just before.
                let follows = viewer.sent != 0 && frame.n == viewer.sent + 1;
                viewer.sent = frame.n;
                let event = match frame.wire.get(&viewer.view) {
                    Some(Wire {
                        change: Some(change),
                        ..
                    }) if follows => change.clone(),
                    Some(wire) => wire.whole.clone(),
                    None => event("board", &frame.id, &viewer.absent),
                };
                return Some((Ok::<_, Infallible>(event), Some(viewer)));
            }
            tokio::select! {
                received = viewer.frames.recv() => match received {
                    Ok(frame) => {
                        viewer.pending.push_back(frame);
                        viewer.newest_only();
                    }
                    // Too far behind: the latest state whole, not the frames it missed.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        viewer.pending.extend(viewer.hub.latest());
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = viewer.closed.changed() => {}
                _ = viewer.ping.tick() => {
                    if !(viewer.still_allowed)() {
                        return None;
                    }
                    let event = format!("event: ping\ndata: {}\n\n", Utc::now().to_rfc3339());
                    return Some((Ok(Bytes::from(event)), Some(viewer)));
                }
            }
        }
    });
    let body = Body::from_stream(futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok(first) }),
        events,
    ));
    (
        [
            (CONTENT_TYPE, "text/event-stream"),
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The page script that follows a stream: each `board` event replaces the board's markup,
/// each `parts` event the elements it carries (by id), and a stream silent for longer than two pings (or dropped) dims the page and says it is
/// reconnecting, so numbers that stopped never look live; refused for good (the session
/// ended, the kiosk link was revoked), it says to sign in again. The element `#board` names
/// its stream in `data-stream`.
pub const FOLLOW_SCRIPT: &str = "(function(){var b=document.getElementById('board');\
if(!b||!window.EventSource)return;var heard=Date.now();\
var es=new EventSource(b.getAttribute('data-stream'));\
function live(){heard=Date.now();document.body.classList.remove('offline');}\
function dim(){document.body.classList.add('offline');}\
es.addEventListener('board',function(e){b.innerHTML=e.data;live();});\
es.addEventListener('parts',function(e){var t=document.createElement('template');t.innerHTML=e.data;\
Array.prototype.slice.call(t.content.children).forEach(function(n){var o=document.getElementById(n.id);\
if(o)o.replaceWith(n);});live();});\
es.addEventListener('ping',live);\
es.addEventListener('error',function(){dim();if(es.readyState===2){var l=document.getElementById('link');\
if(l)l.textContent='This screen is no longer signed in: reload the page to sign in again.';}});\
setInterval(function(){if(Date.now()-heard>12000)dim();},1000);})();";

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::BodyDataStream;
    use futures_util::StreamExt;

    fn views(text: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(String::new(), text.to_string())])
    }

    /// A viewer's open stream of `view`, as bytes.
    fn open(hub: &Arc<Hub<u32>>, view: &str, last_id: Option<&str>) -> BodyDataStream {
        let sse = stream(
            hub.clone(),
            view.to_string(),
            "no such site".into(),
            last_id,
            Box::new(|| true),
        );
        sse.into_body().into_data_stream()
    }

    /// What the stream says until `done` holds of it (each chunk within 5 s).
    async fn read_until(body: &mut BodyDataStream, done: impl Fn(&str) -> bool) -> String {
        let mut text = String::new();
        while !done(&text) {
            let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
                .await
                .expect("an event within 5 s")
                .expect("the stream is open")
                .expect("a chunk");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        text
    }

    /// What the stream says as far as its `n`th board event.
    async fn boards(body: &mut BodyDataStream, n: usize) -> String {
        read_until(body, |t| t.matches("event: board").count() >= n).await
    }

    #[tokio::test]
    async fn a_new_viewer_gets_the_latest_frame_then_each_new_one() {
        let hub = Arc::new(Hub::<u32>::new());
        assert!(hub.publish(1, views("one")));
        assert!(
            !hub.publish(2, views("one")),
            "nothing a viewer sees changed"
        );
        assert!(hub.publish(3, views("two")));
        let mut body = open(&hub, "", None);
        assert_eq!(hub.viewers(), 1);
        let first = boards(&mut body, 1).await;
        hub.publish(4, views("three\nlines"));
        let text = first + &boards(&mut body, 1).await;
        assert!(
            text.starts_with("retry: 2000\n: bright live board\n"),
            "{text}"
        );
        assert!(!text.contains("data: one"), "{text}");
        let two = text.find("data: two").expect("the latest frame first");
        let three = text
            .find("data: three\ndata: lines")
            .expect("then the next");
        assert!(two < three);
        assert_eq!(*hub.latest().expect("a frame").data, 4);
    }

    /// A view made of two pieces, `a` and `b`, whole and in pieces.
    fn pieces(a: &str, b: Option<&str>) -> (BTreeMap<String, String>, Pieces) {
        let mut parts = vec![("a".to_string(), format!("<p id=\"a\">{a}</p>"))];
        if let Some(b) = b {
            parts.push(("b".to_string(), format!("<p id=\"b\">{b}</p>")));
        }
        let whole: String = parts.iter().map(|(_, m)| m.as_str()).collect();
        (views(&whole), BTreeMap::from([(String::new(), parts)]))
    }

    #[tokio::test]
    async fn a_viewer_with_the_frame_before_gets_only_the_pieces_that_changed() {
        let hub = Arc::new(Hub::<u32>::new());
        let (v, p) = pieces("1", Some("x"));
        hub.publish_parts(1, v, p);
        let mut body = open(&hub, "", None);
        let first = boards(&mut body, 1).await;
        assert!(
            first.contains(r#"data: <p id="a">1</p><p id="b">x</p>"#),
            "{first}"
        );
        // One piece changed: only it, as a `parts` event with the frame's id.
        let (v, p) = pieces("2", Some("x"));
        hub.publish_parts(2, v, p);
        let change = read_until(&mut body, |t| t.contains("event: parts")).await;
        assert!(change.contains(r#"data: <p id="a">2</p>"#), "{change}");
        assert!(!change.contains(r#"id="b""#), "{change}");
        assert!(change.contains(&format!("id: {}-2", hub.run)), "{change}");
        // Other pieces (a room gone): the whole view.
        let (v, p) = pieces("3", None);
        hub.publish_parts(3, v, p);
        let whole = boards(&mut body, 1).await;
        assert!(whole.contains(r#"data: <p id="a">3</p>"#), "{whole}");
        // A viewer without the frame before (new, or back after a reconnect): whole first,
        // then pieces.
        let mut late = open(&hub, "", Some(&format!("{}-2", hub.run)));
        let text = boards(&mut late, 1).await;
        assert!(
            text.contains("event: board") && !text.contains("event: parts"),
            "{text}"
        );
        let (v, p) = pieces("4", None);
        hub.publish_parts(4, v, p);
        let text = read_until(&mut late, |t| t.contains("event: parts")).await;
        assert!(text.contains(r#"data: <p id="a">4</p>"#), "{text}");
    }

    #[tokio::test]
    async fn a_viewer_that_reconnects_gets_what_it_missed_or_the_latest_whole() {
        let hub = Arc::new(Hub::<u32>::new());
        for n in 1..=5 {
            hub.publish(n, views(&format!("frame {n}")));
        }
        let id = |n: u64| format!("{}-{n}", hub.run);
        // Saw frame 3: frames 4 and 5 follow, in order.
        let text = boards(&mut open(&hub, "", Some(&id(3))), 2).await;
        assert!(!text.contains("frame 3"), "{text}");
        assert!(text.find("frame 4").expect("4") < text.find("frame 5").expect("5"));
        assert!(text.contains(&format!("id: {}", id(5))), "{text}");
        // An id of another run, or garbage: the latest whole.
        for stale in ["1700000000000-3", "garbage"] {
            let text = boards(&mut open(&hub, "", Some(stale)), 1).await;
            assert!(
                text.contains("frame 5") && !text.contains("frame 4"),
                "{text}"
            );
        }
        // Seen a frame older than those kept: the latest whole, alone.
        for n in 6..=(6 + KEPT as u32) {
            hub.publish(n, views(&format!("frame {n}")));
        }
        let mut body = open(&hub, "", Some(&id(5)));
        let text = boards(&mut body, 1).await;
        assert!(text.contains(&format!("frame {}", 6 + KEPT)), "{text}");
        hub.publish(100, views("frame 100"));
        let next = boards(&mut body, 1).await;
        assert!(next.contains("frame 100") && !next.contains(&format!("frame {}", 5 + KEPT)));
    }

    #[tokio::test]
    async fn a_viewer_behind_by_several_frames_gets_the_newest_whole_not_each_in_turn() {
        let hub = Arc::new(Hub::<u32>::new());
        let (v, p) = pieces("1", Some("x"));
        hub.publish_parts(1, v, p);
        let mut body = open(&hub, "", None);
        boards(&mut body, 1).await;
        // Three frames while the viewer reads nothing.
        for n in 2..=4 {
            let (v, p) = pieces(&n.to_string(), Some("x"));
            hub.publish_parts(n, v, p);
        }
        let text = boards(&mut body, 1).await;
        assert!(
            text.contains(r#"data: <p id="a">4</p><p id="b">x</p>"#),
            "{text}"
        );
        assert!(!text.contains(">2<") && !text.contains(">3<"), "{text}");
        assert!(!text.contains("event: parts"), "{text}");
        // Caught up: the next frame is a change again.
        let (v, p) = pieces("5", Some("x"));
        hub.publish_parts(5, v, p);
        let text = read_until(&mut body, |t| t.contains("event: parts")).await;
        assert!(text.contains(r#"data: <p id="a">5</p>"#), "{text}");
    }

    #[tokio::test]
    async fn a_viewer_too_slow_for_the_broadcast_gets_the_latest_frame_whole() {
        let hub = Arc::new(Hub::<u32>::new());
        hub.publish(0, views("frame 0"));
        let mut body = open(&hub, "", None);
        // The viewer reads nothing while far more frames than the backlog go out.
        for n in 1..=(BACKLOG as u32 * 3) {
            hub.publish(n, views(&format!("frame {n}")));
        }
        let last = format!("frame {}", BACKLOG * 3);
        let text = read_until(&mut body, |t| t.contains(&last)).await;
        // Frame 0, then (after the lag) the latest whole: the stream goes on, ids only go up,
        // and the frames it could not keep up with are skipped.
        let ids: Vec<u64> = text
            .lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .filter_map(|id| id.rsplit('-').next()?.parse().ok())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(ids.len() < BACKLOG * 3, "it skipped ahead: {ids:?}");
    }

    #[tokio::test]
    async fn a_view_the_frame_lacks_gets_the_absent_markup_and_viewers_are_counted() {
        let hub = Arc::new(Hub::<u32>::new());
        hub.publish(1, views("all"));
        {
            let mut body = open(&hub, "XYZ", None);
            assert_eq!(hub.viewers(), 1);
            let text = boards(&mut body, 1).await;
            assert!(text.contains("data: no such site"), "{text}");
        }
        assert_eq!(hub.viewers(), 0, "a closed stream is no longer counted");
    }

    #[tokio::test]
    async fn closing_the_hub_ends_every_open_stream() {
        let hub = Arc::new(Hub::<u32>::new());
        hub.publish(1, views("one"));
        let mut body = open(&hub, "", None);
        boards(&mut body, 1).await;
        hub.close();
        let end = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("the stream ends at once");
        assert!(end.is_none(), "{end:?}");
    }
}
