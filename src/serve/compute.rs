//! The bounded pool for expensive computations, and work that stops when its request
//! is gone.
//!
//! The routes that compute layers (the web map's cells, details and change map; OGC
//! items; vector cell tiles; heatmap tiles and legend, whose surface is the layer) run
//! their work through [`Pool::run`]:
//!
//! - **Only computations are bounded, never cached answers.** A cache that misses
//!   (`crate::lru`, the OGC cache, the heatmap's surface caches) takes a slot (`crate::cancel::admit`) just for its
//!   computation; a hit takes none, so a map's cached cells and a client paging cached
//!   items are never queued or refused, however busy the pool is.
//! - **Bounded.** At most `compute_slots` computations run at once (default: the cores);
//!   at most `compute_queue` more wait for a slot. One more is refused at once with 503
//!   and `Retry-After`: on 2 cores, 30 concurrent resolution-10 filters used to share
//!   the cores until each missed its timeout. A computation still waiting when its
//!   request's time is up is refused the same way.
//! - **A cost estimate per request, scaled by its filter.** The pool keeps, per layer
//!   kind (route, method and resolution), the running mean of how long its
//!   computations took per unit of *size*: the share of the county's area the filter's
//!   districts cover ([`filter_size`]; 1 for the county), since a layer's study grid,
//!   and so its Gi*, local Moran and emerging work, is the H3 cover of those districts.
//!   A request's estimate is that mean times its own size (at least [`MIN_SIZE`]), so
//!   after a county-wide layer was measured, one district of the same kind is
//!   estimated at its share of it, not at the county's cost. A miss whose estimate,
//!   after the estimated work already running (spread over the slots), would end past
//!   the time its request has left is refused at once (503, `Retry-After`) instead of
//!   being started and timed out. A kind cut off by the timeout counts as longer than
//!   it; a kind estimated past the timeout at full size is let through once a minute to
//!   be measured again. A kind never seen is admitted and measured.
//! - **Cancelled, not finished.** The request's future holds a guard that cancels the
//!   computation's [`crate::cancel::Token`] when it is dropped: the timeout answered
//!   503, or the connection closed. The statistics poll it at checkpoints
//!   (`crate::cancel`) and unwind; the slot is free again within one checkpoint
//!   interval (milliseconds), not minutes later.
//! - Concurrent misses on one key are computed once: the caches (`crate::lru`, the
//!   heatmap's `quick_cache`, the OGC cache's per-key locks) make the other requests
//!   wait for the one computation (holding no slot). When that computation is cancelled
//!   the cache slot stays empty and the next waiter computes it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::error::AppError;
use crate::cancel::{self, Token};

/// A layer kind: its route and resolution (0 where it has none). The unit of the cost
/// estimate.
pub type Kind = (&'static str, u8);

/// The smallest size a request is estimated at: a layer has a fixed part (the
/// aggregation scan over every incident) that no district filter makes smaller.
pub const MIN_SIZE: f64 = 0.05;

/// The size of a layer over `filter`'s districts: their share of the county's area (1
/// for the whole county), at least [`MIN_SIZE`].
pub fn filter_size(g: &crate::spatial::Geography, filter: &crate::analysis::Filter) -> f64 {
    g.area_share(filter.districts.as_deref())
        .clamp(MIN_SIZE, 1.0)
}

/// Running and waiting computations.
#[derive(Debug, Default)]
struct Gate {
    running: usize,
    waiting: usize,
}

/// The pool (one per server, in `AppState`).
#[derive(Debug)]
pub struct Pool {
    slot_count: usize,
    queue: usize,
    timeout: Duration,
    gate: Mutex<Gate>,
    freed: Condvar,
    /// Estimated milliseconds of the computations running.
    backlog_ms: AtomicU64,
    /// Per kind: what its computations took.
    estimates: Mutex<HashMap<Kind, Estimate>>,
}

/// How long a kind's computations took.
#[derive(Debug, Clone, Copy)]
struct Estimate {
    /// Running mean of elapsed milliseconds per unit of size (a cancelled one counts
    /// with the time it had run, a lower bound of its cost; one cut off by the timeout
    /// as longer than the timeout).
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

/// How often a computation waiting for a slot looks at its request's token and clock.
const WAIT_STEP: Duration = Duration::from_millis(50);

/// The unwind payload of a refused admission; [`Pool::run`] turns it into the answer.
struct Refusal(AppError);

/// A computation's slot; gives it back, and records what it took, when dropped.
struct Slot {
    pool: Arc<Pool>,
    kind: Kind,
    size: f64,
    estimate_ms: u64,
    started: Instant,
    requested: Instant,
    token: Token,
}

impl Drop for Slot {
    fn drop(&mut self) {
        {
            let mut g = lock(&self.pool.gate);
            g.running -= 1;
        }
        self.pool.freed.notify_one();
        self.pool
            .backlog_ms
            .fetch_sub(self.estimate_ms, Ordering::SeqCst);
        let timeout = self.pool.timeout;
        // Cut off at (about) the timeout: the kind takes longer than a request may,
        // whatever it had run so far, and the next one is refused at once.
        let took = if self.token.is_cancelled() && self.requested.elapsed() * 10 >= timeout * 9 {
            timeout + Duration::from_millis(1)
        } else {
            self.started.elapsed()
        };
        self.pool.record(self.kind, self.size, took);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn busy(retry_after_ms: u64, reason: String) -> AppError {
    AppError::Busy {
        retry_after_secs: retry_after_ms.div_ceil(1000).max(1),
        reason,
    }
}

/// Stops the computation with a refusal (caught by [`Pool::run`]).
fn refuse(e: AppError) -> ! {
    std::panic::resume_unwind(Box::new(Refusal(e)))
}

impl Pool {
    /// `slots` computations at once, `queue` more waiting, each request answered within
    /// `timeout` (the server's request timeout).
    pub fn new(slots: usize, queue: usize, timeout: Duration) -> Self {
        Pool {
            slot_count: slots.max(1),
            queue,
            timeout,
            gate: Mutex::new(Gate::default()),
            freed: Condvar::new(),
            backlog_ms: AtomicU64::new(0),
            estimates: Mutex::new(HashMap::new()),
        }
    }

    /// The estimated milliseconds of one computation of `kind` at `size` (see
    /// [`filter_size`]; 0 if the kind was never seen).
    pub fn estimate_ms(&self, kind: Kind, size: f64) -> u64 {
        lock(&self.estimates)
            .get(&kind)
            .map_or(0, |e| (e.mean_ms * size.clamp(MIN_SIZE, 1.0)).ceil() as u64)
    }

    fn record(&self, kind: Kind, size: f64, elapsed: Duration) {
        let ms = elapsed.as_secs_f64() * 1000.0 / size.clamp(MIN_SIZE, 1.0);
        let mut all = lock(&self.estimates);
        let e = all.entry(kind).or_insert(Estimate {
            mean_ms: 0.0,
            n: 0,
            at: Instant::now(),
        });
        e.n = (e.n + 1).min(8);
        e.mean_ms += (ms - e.mean_ms) / f64::from(e.n);
        e.at = Instant::now();
    }

    /// Whether `kind`, estimated past the budget, may run now as a probe (once per
    /// [`PROBE_AFTER`]).
    fn probe(&self, kind: Kind) -> bool {
        let mut all = lock(&self.estimates);
        match all.get_mut(&kind) {
            Some(e) if e.at.elapsed() >= PROBE_AFTER => {
                e.at = Instant::now();
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    /// Takes a slot for a computation of `kind` for a request made at `requested`, on
    /// this (blocking) thread: at once, or after waiting in the queue; unwinds with a
    /// refusal when the queue is full, the work cannot be done in time, or no slot came
    /// before the timeout, and with [`cancel::Cancelled`] when the request is gone.
    fn enter(
        self: &Arc<Self>,
        (kind, size): (Kind, f64),
        requested: Instant,
        token: &Token,
    ) -> Slot {
        let estimate = self.estimate_ms(kind, size);
        let budget = self.timeout.as_millis() as u64;
        let left = budget.saturating_sub(requested.elapsed().as_millis() as u64);
        let ahead = self.backlog_ms.load(Ordering::SeqCst) / self.slot_count as u64;
        if estimate > 0 && ahead + estimate > left && !(estimate > budget && self.probe(kind)) {
            refuse(busy(
                ahead.max(estimate.min(PROBE_AFTER.as_millis() as u64)),
                format!(
                    "this layer takes about {estimate} ms and {ahead} ms of work is ahead of it, \
                     more than the {left} ms this request has left; try again later"
                ),
            ));
        }
        let mut g = lock(&self.gate);
        if g.running >= self.slot_count {
            if g.waiting >= self.queue {
                drop(g);
                refuse(busy(
                    ahead.max(estimate),
                    format!(
                        "the server is busy: {} computations running and {} waiting; try again later",
                        self.slot_count, self.queue
                    ),
                ));
            }
            g.waiting += 1;
            while g.running >= self.slot_count {
                g = match self.freed.wait_timeout(g, WAIT_STEP) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
                if g.running >= self.slot_count
                    && (token.is_cancelled() || requested.elapsed() >= self.timeout)
                {
                    g.waiting -= 1;
                    drop(g);
                    cancel::check(&Some(token.clone()));
                    refuse(busy(
                        ahead.max(estimate),
                        "no computation slot came free in time; try again later".into(),
                    ));
                }
            }
            g.waiting -= 1;
        }
        g.running += 1;
        drop(g);
        self.backlog_ms.fetch_add(estimate, Ordering::SeqCst);
        Slot {
            pool: self.clone(),
            kind,
            size,
            estimate_ms: estimate,
            started: Instant::now(),
            requested,
            token: token.clone(),
        }
    }

    /// Runs `f` on the blocking pool, stopping it at its next checkpoint once this
    /// future is dropped. A cache miss inside it (`crate::cancel::admit`) takes one of
    /// the pool's slots for its computation, estimated at `size` ([`filter_size`]); a
    /// hit takes none.
    ///
    /// # Errors
    /// [`AppError::Busy`] (503 with `Retry-After`) when a miss finds the queue full or
    /// cannot be done in time; [`AppError::Internal`] when the task failed.
    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        kind: Kind,
        size: f64,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let guard = CancelOnDrop(Token::new());
        let token = guard.0.clone();
        let pool = self.clone();
        let requested = Instant::now();
        let joined = tokio::task::spawn_blocking(move || {
            let t = token.clone();
            let admit: cancel::Admit =
                std::rc::Rc::new(move || Box::new(pool.enter((kind, size), requested, &t)));
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                cancel::run(token, || cancel::with_admission(admit, f))
            }))
        })
        .await;
        drop(guard);
        match joined {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(cancel::Cancelled))) => {
                Err(AppError::Internal("computation cancelled".into()))
            }
            Ok(Err(payload)) => match payload.downcast::<Refusal>() {
                Ok(r) => Err(r.0),
                Err(_) => Err(AppError::Internal("worker task panicked".into())),
            },
            Err(e) => Err(AppError::Internal(format!("worker task failed: {e}"))),
        }
    }
}

/// Cancels its token when dropped (the request future is gone, or the work is done).
struct CancelOnDrop(Token);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
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

    fn gate(pool: &Pool) -> (usize, usize) {
        let g = lock(&pool.gate);
        (g.running, g.waiting)
    }

    #[test]
    fn misses_past_the_slots_and_queue_are_refused_at_once_and_hits_never_are() {
        rt().block_on(async {
            let pool = Arc::new(Pool::new(1, 1, Duration::from_secs(30)));
            let release = Arc::new(std::sync::Barrier::new(2));
            let r = release.clone();
            let p = pool.clone();
            // A miss holding the one slot.
            let running = tokio::spawn(async move {
                p.run(("t", 0), 1.0, move || {
                    let _slot = cancel::admit();
                    r.wait();
                    1
                })
                .await
            });
            while gate(&pool).0 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // A miss waiting for it.
            let p = pool.clone();
            let queued = tokio::spawn(async move {
                p.run(("t", 0), 1.0, || {
                    let _slot = cancel::admit();
                    2
                })
                .await
            });
            while gate(&pool).1 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // One more miss: refused, at once.
            let started = Instant::now();
            match pool
                .run(("t", 0), 1.0, || {
                    let _slot = cancel::admit();
                    3
                })
                .await
            {
                Err(AppError::Busy {
                    retry_after_secs,
                    reason,
                }) => {
                    assert!(retry_after_secs >= 1);
                    assert!(reason.contains("busy"), "{reason}");
                }
                other => panic!("expected Busy, got {other:?}"),
            }
            assert!(started.elapsed() < Duration::from_secs(1));
            // A hit (no slot asked for) is answered however busy the pool is.
            assert_eq!(pool.run(("t", 0), 1.0, || 4).await.expect("a hit"), 4);
            release.wait();
            assert_eq!(running.await.expect("join").expect("ran"), 1);
            assert_eq!(queued.await.expect("join").expect("ran"), 2);
            assert_eq!(gate(&pool), (0, 0));
            assert_eq!(pool.backlog_ms.load(Ordering::SeqCst), 0);
        });
    }

    #[test]
    fn work_estimated_past_the_timeout_is_refused_and_a_dropped_request_cancels_its_work() {
        rt().block_on(async {
            let pool = Arc::new(Pool::new(1, 4, Duration::from_millis(200)));
            pool.record(("slow", 10), 1.0, Duration::from_millis(500));
            let miss = || {
                let _slot = cancel::admit();
                1
            };
            match pool.run(("slow", 10), 1.0, miss).await {
                Err(AppError::Busy { reason, .. }) => {
                    assert!(reason.contains("500 ms"), "{reason}");
                }
                other => panic!("expected Busy, got {other:?}"),
            }
            // A request dropped mid-computation: the work stops at a checkpoint.
            let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let s = stopped.clone();
            let p = pool.clone();
            let request = async move {
                p.run(("spin", 0), 1.0, move || {
                    let _slot = cancel::admit();
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
            while gate(&pool).0 > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let next = || {
                let _slot = cancel::admit();
                5
            };
            assert_eq!(pool.run(("next", 0), 1.0, next).await.expect("ran"), 5);
        });
    }

    #[test]
    fn the_estimate_scales_with_the_filters_size() {
        rt().block_on(async {
            let pool = Arc::new(Pool::new(1, 4, Duration::from_millis(200)));
            // Measured county-wide at 500 ms, past the 200 ms budget.
            pool.record(("layer", 10), 1.0, Duration::from_millis(500));
            assert_eq!(pool.estimate_ms(("layer", 10), 1.0), 500);
            assert_eq!(pool.estimate_ms(("layer", 10), 0.1), 50);
            // Never below the fixed part.
            assert_eq!(pool.estimate_ms(("layer", 10), 0.001), 25);
            let miss = || {
                let _slot = cancel::admit();
                1
            };
            // The county again: refused at once.
            assert!(matches!(
                pool.run(("layer", 10), 1.0, miss).await,
                Err(AppError::Busy { .. })
            ));
            // A tenth of the county fits: admitted and run.
            assert_eq!(pool.run(("layer", 10), 0.1, miss).await.expect("ran"), 1);
            // Measured per unit of size: a 30 ms run at a tenth is 300 ms a county.
            let pool = Pool::new(1, 4, Duration::from_secs(1));
            pool.record(("k", 0), 0.1, Duration::from_millis(30));
            assert_eq!(pool.estimate_ms(("k", 0), 1.0), 300);
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
