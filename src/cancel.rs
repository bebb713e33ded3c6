//! Cooperative cancellation of long computations.
//!
//! The server runs an expensive layer (Gi* or local Moran at resolution 10, emerging hot
//! spots, a kernel density surface) on the blocking pool and rayon. When the request that
//! asked for it is gone (its timeout answered 503, or the client hung up), the work must
//! stop rather than keep both cores busy for minutes (issue 13). A [`Token`] is cancelled
//! by the request's side when its future is dropped; the computation polls it at
//! checkpoints and, once cancelled, unwinds with the [`Cancelled`] payload to
//! [`run`], which turns it into `Err(Cancelled)`. Unwinding (not a `Result` threaded
//! through every statistic) keeps the statistics' signatures as the library and CLI use
//! them; rayon carries a worker's panic payload back to the caller unchanged, and
//! [`std::sync::OnceLock`] (the caches' single flight) leaves a slot empty when its
//! computation unwinds, so a request still waiting for it computes it anew.
//!
//! Outside [`run`] (the CLI, tests, the library) there is no token and every checkpoint
//! is a no-op.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared cancellation flag of one computation.
#[derive(Debug, Clone, Default)]
pub struct Token(Arc<AtomicBool>);

impl Token {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The payload a cancelled computation unwinds with; [`run`] catches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

thread_local! {
    static CURRENT: RefCell<Option<Token>> = const { RefCell::new(None) };
}

/// The token of the computation running on this thread, to hand to rayon closures
/// (they run on other threads, which have none): check it there with [`check`].
pub fn current() -> Option<Token> {
    CURRENT.with_borrow(Clone::clone)
}

/// Runs `f` with `token` as this thread's token. A checkpoint that finds it cancelled
/// unwinds to here: `Err(Cancelled)`. Any other panic goes on unwinding.
///
/// # Errors
/// [`Cancelled`] when `f` stopped at a checkpoint.
pub fn run<T>(token: Token, f: impl FnOnce() -> T) -> Result<T, Cancelled> {
    let previous = CURRENT.replace(Some(token));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CURRENT.set(previous);
    match result {
        Ok(v) => Ok(v),
        Err(payload) if payload.is::<Cancelled>() => Err(Cancelled),
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Stops the computation on this thread if its token was cancelled. Cheap: one
/// thread-local read and one atomic load.
pub fn checkpoint() {
    CURRENT.with_borrow(check);
}

/// Stops the computation if `token` (from [`current`]) was cancelled: for closures that
/// run on rayon's threads. `resume_unwind` does not call the panic hook, so a
/// cancellation writes nothing to stderr.
pub fn check(token: &Option<Token>) {
    if token.as_ref().is_some_and(Token::is_cancelled) {
        std::panic::resume_unwind(Box::new(Cancelled));
    }
}

/// What a computation calls to take a compute slot: set per request by the server's
/// pool (`serve::compute`); returns the slot, held until dropped.
pub type Admit = std::rc::Rc<dyn Fn() -> Box<dyn std::any::Any>>;

thread_local! {
    static ADMIT: RefCell<Option<Admit>> = const { RefCell::new(None) };
}

/// Runs `f` with `admit` as how this thread's computations take a slot ([`admit`]).
pub fn with_admission<T>(admit: Admit, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Admit>);
    impl Drop for Restore {
        fn drop(&mut self) {
            ADMIT.set(self.0.take());
        }
    }
    let _restore = Restore(ADMIT.replace(Some(admit)));
    f()
}

/// A slot taken by [`admit`]; gives it back when dropped.
pub struct Admitted {
    _slot: Box<dyn std::any::Any>,
    hook: Option<Admit>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        ADMIT.set(self.hook.take());
    }
}

/// Called by the caches just before they compute a miss (`crate::lru`, the OGC cache):
/// takes a slot of the request's compute pool, waiting for one or unwinding with the
/// pool's refusal. A hit never gets here, so cached answers are never queued or refused.
/// None outside the server, on rayon's threads, and when this thread holds a slot
/// already (a miss inside a miss, such as the H3 cover a layer needs).
pub fn admit() -> Option<Admitted> {
    let hook = ADMIT.take()?;
    let slot = hook();
    Some(Admitted {
        _slot: slot,
        hook: Some(hook),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    #[test]
    fn a_cancelled_token_stops_the_work_at_the_next_checkpoint_even_on_rayon_threads() {
        let token = Token::new();
        let seen = std::sync::atomic::AtomicUsize::new(0);
        let t = token.clone();
        let r = run(token, || {
            let tok = current();
            (0..10_000u32).into_par_iter().for_each(|i| {
                check(&tok);
                if i == 100 {
                    t.cancel();
                }
                seen.fetch_add(1, Ordering::Relaxed);
            });
            "finished"
        });
        assert_eq!(r, Err(Cancelled));
        assert!(seen.load(Ordering::Relaxed) < 10_000);
        // The thread's token is restored: no checkpoint fires outside `run`.
        checkpoint();
        assert!(current().is_none());
    }

    #[test]
    fn an_uncancelled_run_returns_its_value_and_other_panics_go_on() {
        assert_eq!(run(Token::new(), || 7), Ok(7));
        let other = std::panic::catch_unwind(|| run(Token::new(), || panic!("boom")));
        assert!(other.is_err());
        checkpoint();
    }

    #[test]
    fn a_once_lock_whose_computation_was_cancelled_stays_empty() {
        let slot = std::sync::OnceLock::<u32>::new();
        let token = Token::new();
        token.cancel();
        let r = run(token, || {
            *slot.get_or_init(|| {
                checkpoint();
                1
            })
        });
        assert_eq!(r, Err(Cancelled));
        assert_eq!(*slot.get_or_init(|| 2), 2);
    }
}
