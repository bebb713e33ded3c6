//! The bounded pool for expensive layers, and work that stops when its request is gone.
//!
//! Every route that computes a layer (the web map's cells, details and change map; OGC
//! items; vector cell tiles; heatmap tiles) runs its work through [`Pool::run`]:
//!
//! - **Bounded.** At most `compute_slots` computations run at once (default: the cores);
//!   at most `compute_queue` more wait for a slot. One more is refused at once with
//!   503 and `Retry-After`, never queued without bound: on 2 cores, 30 concurrent
//!   resolution-10 filters used to share the cores until each missed its timeout.
//! - **A cost estimate per request.** The pool keeps, per layer kind (route and
//!   resolution), the running mean of how long its computations took (cache hits
//!   included: a kind that is mostly cached is cheap). A request whose estimate, after
//!   the estimated work already running and queued (spread over the slots), would end
//!   past the request timeout is refused at once (503, `Retry-After` the seconds until
//!   the backlog is estimated to clear) instead of being started and timed out. A kind
//!   never seen is admitted (its estimate is 0) and measured.
//! - **Cancelled, not finished.** The request's side holds a guard that cancels the
//!   computation's [`crate::cancel::Token`] when the request future is dropped: the
//!   timeout answered 503, or the connection closed. The statistics poll it at
//!   checkpoints (`crate::cancel`) and unwind; the slot is free again within one
//!   checkpoint interval (a few milliseconds), not minutes later.
//! - Concurrent misses on one key are computed once: the caches (`crate::lru`, the
//!   heatmap's `quick_cache`, the OGC cache's single flight) hand waiting requests the
//!   one computation. When that computation is cancelled its slot stays empty and the
//!   next waiter computes it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::error::AppError;
use crate::cancel::{self, Token};

/// A layer kind: its route and resolution (0 where it has none). The unit of the cost
/// estimate.
pub type Kind = (&'static str, u8);

/// The pool (one per server, in `AppState`).
#[derive(Debug)]
pub struct Pool {
    slots: Arc<Semaphore>,
    slot_count: usize,
    queue: usize,
    timeout: Duration,
    /// Computations running or waiting for a slot.
    admitted: AtomicUsize,
    /// Estimated milliseconds of the work running and waiting.
    backlog_ms: AtomicU64,
    /// Per kind: what its computations took.
    estimates: Arc<Mutex<HashMap<Kind, Estimate>>>,
}

/// How long a kind's computations took.
#[derive(Debug, Clone, Copy)]
struct Estimate {
    /// Running mean of elapsed milliseconds (a cancelled one counts with the time it
    /// had run, a lower bound of its cost).
    mean_ms: f64,
    /// How many went into the mean (at most 8: exponential after the first eight).
    n: u32,
    /// When it last changed, or when the last probe was let through.
    at: Instant,
}

/// A kind estimated past the timeout is refused for this long after it was last
/// measured; then one request is let through to measure it again (the data, or the
/// load, may have changed).
const PROBE_AFTER: Duration = Duration::from_secs(60);

/// Undoes a job's bookkeeping and cancels its token however the request ends.
struct Ticket<'a> {
    pool: &'a Pool,
    kind: Kind,
    entered: Instant,
    estimate_ms: u64,
    /// Set by the computation when it has finished (or stopped).
    done: Arc<AtomicBool>,
    token: Token,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.pool.admitted.fetch_sub(1, Ordering::SeqCst);
        self.pool
            .backlog_ms
            .fetch_sub(self.estimate_ms, Ordering::SeqCst);
        // Dropped unfinished at (about) the timeout: the kind takes longer than a request
        // may, whatever it had run so far; the next one is refused at once.
        let waited = self.entered.elapsed();
        if waited * 10 >= self.pool.timeout * 9 && !self.done.swap(true, Ordering::SeqCst) {
            record(
                &self.pool.estimates,
                self.kind,
                waited.max(self.pool.timeout) + Duration::from_millis(1),
            );
        }
        // Finished work no longer polls it; unfinished work stops at its next checkpoint.
        self.token.cancel();
    }
}

impl Pool {
    /// `slots` computations at once, `queue` more waiting, each request answered within
    /// `timeout` (the server's request timeout).
    pub fn new(slots: usize, queue: usize, timeout: Duration) -> Self {
        let slots = slots.max(1);
        Pool {
            slots: Arc::new(Semaphore::new(slots)),
            slot_count: slots,
            queue,
            timeout,
            admitted: AtomicUsize::new(0),
            backlog_ms: AtomicU64::new(0),
            estimates: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The estimated milliseconds of one computation of `kind` (0 if never seen).
    pub fn estimate_ms(&self, kind: Kind) -> u64 {
        self.estimates()
            .get(&kind)
            .map_or(0, |e| e.mean_ms.round() as u64)
    }

    fn estimates(&self) -> std::sync::MutexGuard<'_, HashMap<Kind, Estimate>> {
        lock(&self.estimates)
    }

    #[cfg(test)]
    fn record(&self, kind: Kind, elapsed: Duration) {
        record(&self.estimates, kind, elapsed);
    }

    /// Whether `kind`, estimated past the budget, may run now as a probe (once per
    /// [`PROBE_AFTER`]).
    fn probe(&self, kind: Kind) -> bool {
        let mut all = self.estimates();
        match all.get_mut(&kind) {
            Some(e) if e.at.elapsed() >= PROBE_AFTER => {
                e.at = Instant::now();
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    fn busy(&self, retry_after_ms: u64, why: String) -> AppError {
        AppError::Busy {
            retry_after_secs: retry_after_ms.div_ceil(1000).max(1),
            reason: why,
        }
    }

    /// Runs `f` on the blocking pool within the bounds; `f` stops at its next checkpoint
    /// once this future is dropped.
    ///
    /// # Errors
    /// [`AppError::Busy`] (503 with `Retry-After`) when the queue is full or the work
    /// cannot be done in time; [`AppError::Internal`] when the task failed.
    pub async fn run<T: Send + 'static>(
        &self,
        kind: Kind,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let estimate = self.estimate_ms(kind);
        let backlog = self.backlog_ms.load(Ordering::SeqCst) / self.slot_count as u64;
        let budget = self.timeout.as_millis() as u64;
        // Counted first, then checked: concurrent arrivals cannot all slip in.
        if self.admitted.fetch_add(1, Ordering::SeqCst) >= self.slot_count + self.queue {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            return Err(self.busy(
                backlog.max(estimate),
                format!(
                    "the server is busy: {} computations running and {} waiting; try again later",
                    self.slot_count, self.queue
                ),
            ));
        }
        if estimate > 0 && backlog + estimate > budget && !(estimate > budget && self.probe(kind)) {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            return Err(self.busy(
                backlog,
                format!(
                    "this layer takes about {estimate} ms and {backlog} ms of work is ahead of it, \
                     more than the {budget} ms a request may take; try again later"
                ),
            ));
        }
        self.backlog_ms.fetch_add(estimate, Ordering::SeqCst);
        let ticket = Ticket {
            pool: self,
            kind,
            entered: Instant::now(),
            estimate_ms: estimate,
            done: Arc::new(AtomicBool::new(false)),
            token: Token::new(),
        };
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| AppError::Internal(format!("compute pool closed: {e}")))?;
        let token = ticket.token.clone();
        let estimates = self.estimates.clone();
        let done = ticket.done.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let started = Instant::now();
            let r = cancel::run(token, f);
            // Here, not in the request's future, so that a computation cancelled
            // because its client went away still counts, with the time it had run (a
            // lower bound of its cost). One dropped at the timeout was recorded by its
            // ticket, as longer than the timeout.
            if !done.swap(true, Ordering::SeqCst) {
                record(&estimates, kind, started.elapsed());
            }
            r
        })
        .await;
        match joined {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(cancel::Cancelled)) => Err(AppError::Internal("computation cancelled".into())),
            Err(e) => Err(AppError::Internal(format!("worker task failed: {e}"))),
        }
    }
}

fn lock(m: &Mutex<HashMap<Kind, Estimate>>) -> std::sync::MutexGuard<'_, HashMap<Kind, Estimate>> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn record(estimates: &Mutex<HashMap<Kind, Estimate>>, kind: Kind, elapsed: Duration) {
    let ms = elapsed.as_secs_f64() * 1000.0;
    let mut all = lock(estimates);
    let e = all.entry(kind).or_insert(Estimate {
        mean_ms: 0.0,
        n: 0,
        at: Instant::now(),
    });
    e.n = (e.n + 1).min(8);
    e.mean_ms += (ms - e.mean_ms) / f64::from(e.n);
    e.at = Instant::now();
}

/// Cancels its token when dropped (the request future is gone, or the work is done).
struct CancelOnDrop(Token);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Runs `f` on the blocking pool, outside the bounds, stopping it at its next
/// checkpoint once this future is dropped: for tiles, which a map asks for a dozen at a
/// time and which mostly share one cached layer (queueing them would refuse a map's
/// first view), but whose first computation can be as long as a layer's.
///
/// # Errors
/// [`AppError::Internal`] when the task failed.
pub async fn cancellable<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    let guard = CancelOnDrop(Token::new());
    let token = guard.0.clone();
    let joined = tokio::task::spawn_blocking(move || cancel::run(token, f)).await;
    drop(guard);
    match joined {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(cancel::Cancelled)) => Err(AppError::Internal("computation cancelled".into())),
        Err(e) => Err(AppError::Internal(format!("worker task failed: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn a_full_queue_is_refused_at_once_with_retry_after() {
        rt().block_on(async {
            let pool = Arc::new(Pool::new(1, 1, Duration::from_secs(30)));
            let gate = Arc::new(std::sync::Barrier::new(2));
            let g = gate.clone();
            let p = pool.clone();
            let running = tokio::spawn(async move {
                p.run(("t", 0), move || {
                    g.wait();
                })
                .await
            });
            // Wait until the first holds the slot.
            while pool.slots.available_permits() > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let p = pool.clone();
            let queued = tokio::spawn(async move { p.run(("t", 0), || 2).await });
            while pool.admitted.load(Ordering::SeqCst) < 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let refused = pool.run(("t", 0), || 3).await;
            match refused {
                Err(AppError::Busy {
                    retry_after_secs, ..
                }) => assert!(retry_after_secs >= 1),
                other => panic!("expected Busy, got {other:?}"),
            }
            gate.wait();
            assert!(running.await.expect("join").is_ok());
            assert_eq!(queued.await.expect("join").expect("ran"), 2);
            assert_eq!(pool.admitted.load(Ordering::SeqCst), 0);
            assert_eq!(pool.backlog_ms.load(Ordering::SeqCst), 0);
        });
    }

    #[test]
    fn work_estimated_past_the_timeout_is_refused_and_a_dropped_request_cancels_its_work() {
        rt().block_on(async {
            let pool = Arc::new(Pool::new(1, 4, Duration::from_millis(200)));
            pool.record(("slow", 10), Duration::from_millis(500));
            match pool.run(("slow", 10), || 1).await {
                Err(AppError::Busy { reason, .. }) => {
                    assert!(reason.contains("500 ms"), "{reason}")
                }
                other => panic!("expected Busy, got {other:?}"),
            }
            // A request dropped mid-computation: the work stops at a checkpoint.
            let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let s = stopped.clone();
            let p = pool.clone();
            let request = async move {
                p.run(("spin", 0), move || {
                    let guard = scopeguard(s);
                    let started = Instant::now();
                    while started.elapsed() < Duration::from_secs(20) {
                        cancel::checkpoint();
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    drop(guard);
                })
                .await
            };
            let answered = tokio::time::timeout(Duration::from_millis(100), request).await;
            assert!(answered.is_err(), "timed out");
            let t = Instant::now();
            while !stopped.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(5) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert!(stopped.load(Ordering::SeqCst), "the work did not stop");
            assert!(t.elapsed() < Duration::from_secs(2));
            // Its slot is free again.
            assert_eq!(pool.run(("next", 0), || 5).await.expect("ran"), 5);
        });
    }

    /// Sets the flag when dropped, also while unwinding.
    fn scopeguard(flag: Arc<std::sync::atomic::AtomicBool>) -> impl Drop {
        struct G(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for G {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        G(flag)
    }
}
