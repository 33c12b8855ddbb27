//! A runtime of its own for running queries.
//!
//! A DataFusion plan keeps a thread busy for as long as a batch takes to compute, and a KPI
//! refresh over two years of feeds keeps every thread busy for seconds. On the runtime that
//! also answers HTTP and MLLP, requests then wait behind the query (the trackboard's page at
//! 200 connections had a p99 several times its median whenever the KPIs refreshed). Queries
//! run here instead: the operating system shares the cores between this runtime's threads
//! and the service's, so a request is answered between two slices of a query rather than
//! after it.

use std::future::Future;
use std::sync::Arc;

use super::QueryError;

/// A handle on the query runtime; clones share it, and the runtime stops once the last clone
/// is gone (queries still running are then abandoned).
#[derive(Debug, Clone)]
pub struct Executor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    handle: tokio::runtime::Handle,
    /// Dropped with the last clone: the runtime's keeper thread then shuts it down.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Executor {
    /// Starts a runtime of `threads` worker threads named `name`. It may be called inside
    /// another runtime: this one lives on a thread of its own, where it is also dropped (a
    /// runtime may not be dropped from async code).
    pub fn new(name: &str, threads: usize) -> std::io::Result<Executor> {
        Self::with_stack(name, threads, 2 << 20, false)
    }

    /// [`Executor::new`] with threads of `stack` bytes of stack, at a lower scheduling
    /// priority when `background` (the operating system then gives the cores to the
    /// service's threads first, and to these when those have nothing to do).
    pub fn with_stack(
        name: &str,
        threads: usize,
        stack: usize,
        background: bool,
    ) -> std::io::Result<Executor> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(name)
            .thread_stack_size(stack)
            .on_thread_start(move || {
                if background {
                    lower_priority();
                }
            })
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("{name}-keeper"))
            .spawn(move || {
                // Waits for the last handle to go (the sender's drop ends the wait).
                let _ = runtime.block_on(stopped);
                runtime.shutdown_background();
            })?;
        Ok(Executor {
            inner: Arc::new(Inner {
                handle,
                _stop: stop,
            }),
        })
    }

    /// Runs `work` on the query runtime and waits for it. Dropping the returned future (a
    /// request cancelled, a client gone) stops the work too, so nothing runs on unasked.
    pub async fn run<T, F>(&self, work: F) -> Result<T, QueryError>
    where
        F: Future<Output = Result<T, QueryError>> + Send + 'static,
        T: Send + 'static,
    {
        let task = AbortOnDrop(self.inner.handle.spawn(work));
        task.await
    }
}

/// Runs `work` as a task of its own on the caller's runtime and waits for it, stopping it if
/// the returned future is dropped. Queries awaited side by side (a tick's series) then run on
/// every core of the runtime, not in turn on the thread that awaits them all.
pub async fn run_here<T, F>(work: F) -> Result<T, QueryError>
where
    F: Future<Output = Result<T, QueryError>> + Send + 'static,
    T: Send + 'static,
{
    AbortOnDrop(tokio::spawn(work)).await
}

/// Lowers the calling thread's scheduling priority (a nice value of 10). On Linux a thread
/// has its own nice value; elsewhere this does nothing.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take no pointers; a failure only leaves the priority
    // as it was.
    unsafe {
        let thread = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, thread, 10) != 0 {
            tracing::debug!("The query threads' priority could not be lowered.");
        }
    }
}

/// A spawned task that is aborted when its handle is dropped before it finishes.
struct AbortOnDrop<T>(tokio::task::JoinHandle<Result<T, QueryError>>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, QueryError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|joined| {
            joined.unwrap_or_else(|e| {
                Err(QueryError::Stopped(if e.is_panic() {
                    "the query failed unexpectedly (a panic in the query engine)".to_string()
                } else {
                    "the query was stopped: the query runtime is shutting down".to_string()
                }))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_the_query_runtimes_threads() {
        let executor = Executor::new("bright-test-query", 1).expect("runtime");
        let name = executor
            .run(async { Ok(std::thread::current().name().map(str::to_string)) })
            .await
            .expect("ran");
        assert_eq!(name.as_deref(), Some("bright-test-query"));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn background_threads_run_at_a_lower_priority() {
        let nice = || {
            // SAFETY: as in `lower_priority`; getpriority's -1 is also a valid value, which
            // the comparison below tells apart from 10.
            unsafe {
                let thread = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::getpriority(libc::PRIO_PROCESS, thread)
            }
        };
        let mine = nice();
        let background = Executor::with_stack("bright-test-low", 1, 2 << 20, true)
            .expect("runtime")
            .run(async move { Ok(nice()) })
            .await
            .expect("ran");
        // Set to 10, or left where it was when that was lower already.
        assert!(
            background >= 10 && background >= mine.min(10),
            "{background}"
        );
        let foreground = Executor::new("bright-test-normal", 1)
            .expect("runtime")
            .run(async move { Ok(nice()) })
            .await
            .expect("ran");
        assert_eq!(foreground, mine);
    }

    #[tokio::test]
    async fn dropping_the_wait_stops_the_work() {
        let executor = Executor::new("bright-test-query", 1).expect("runtime");
        let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
        let (dropped_tx, dropped) = tokio::sync::oneshot::channel::<()>();
        // The work tells when it starts and, through its guard's drop, when it is stopped.
        struct Guard(Option<tokio::sync::oneshot::Sender<()>>);
        impl Drop for Guard {
            fn drop(&mut self) {
                if let Some(tx) = self.0.take() {
                    let _ = tx.send(());
                }
            }
        }
        // A clone waits, so the runtime itself stays up: only the wait's drop can stop the work.
        let running = executor.clone();
        let waiting = tokio::spawn(async move {
            running
                .run(async move {
                    let _guard = Guard(Some(dropped_tx));
                    let _ = started_tx.send(());
                    std::future::pending::<Result<(), QueryError>>().await
                })
                .await
        });
        started.await.expect("the work started");
        waiting.abort();
        // Bounded so a regression fails rather than hangs; the drop comes at once.
        tokio::time::timeout(std::time::Duration::from_secs(10), dropped)
            .await
            .expect("the work was dropped with its wait")
            .expect("the guard said so");
        assert_eq!(executor.run(async { Ok(1) }).await.expect("ran"), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_awaited_together_here_runs_side_by_side() {
        // Each work blocks its thread until it hears from the other: awaited together, they
        // finish only if they run on two threads at once, not in turn on the awaiting one.
        let (a_tx, a_rx) = std::sync::mpsc::channel::<()>();
        let (b_tx, b_rx) = std::sync::mpsc::channel::<()>();
        let meet = |tx: std::sync::mpsc::Sender<()>, rx: std::sync::mpsc::Receiver<()>| async move {
            let _ = tx.send(());
            rx.recv_timeout(std::time::Duration::from_secs(10))
                .map_err(|_| QueryError::Stopped("the other work never ran alongside".into()))
        };
        let (a, b) = tokio::join!(run_here(meet(a_tx, b_rx)), run_here(meet(b_tx, a_rx)));
        a.expect("the first met the second");
        b.expect("the second met the first");
    }

    #[tokio::test]
    async fn a_panicking_query_is_an_error_not_a_crash() {
        let executor = Executor::new("bright-test-query", 1).expect("runtime");
        let result: Result<(), QueryError> = executor
            .run(async {
                if std::hint::black_box(true) {
                    panic!("boom");
                }
                Ok(())
            })
            .await;
        let error = result.expect_err("a panic is an error");
        assert!(error.to_string().contains("unexpectedly"), "{error}");
        // The runtime goes on.
        assert_eq!(executor.run(async { Ok(7) }).await.expect("ran"), 7);
    }
}
