//! A small least-recently-used cache of computed values, each belonging to an owner (a
//! store or a geography, held weakly and compared by identity, so a replaced store's
//! entries are never served and are dropped once it is gone).
//!
//! Each entry is a `OnceLock` handed out before it is filled: concurrent requests for
//! one key (a map asks for a dozen tiles at once) wait for the one computation instead
//! of each redoing it. The lock is only held to find or insert the entry, never while
//! computing. Callers compute on the blocking pool.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

type Slot<V> = Arc<OnceLock<Arc<V>>>;

struct Entry<O, K, V> {
    owner: Weak<O>,
    key: K,
    value: Slot<V>,
}

/// At most `capacity` values, least recently used evicted first.
pub struct Lru<O, K, V> {
    entries: Mutex<VecDeque<Entry<O, K, V>>>,
    capacity: usize,
}

impl<O, K: PartialEq, V> Lru<O, K, V> {
    pub const fn new(capacity: usize) -> Self {
        Lru {
            entries: Mutex::new(VecDeque::new()),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Entry<O, K, V>>> {
        match self.entries.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The slot for `owner` and `key`, now the most recently used.
    fn slot(&self, owner: &Arc<O>, key: K) -> Slot<V> {
        let mut entries = self.lock();
        entries.retain(|e| e.owner.strong_count() > 0);
        let same = |e: &Entry<O, K, V>| std::ptr::eq(e.owner.as_ptr(), Arc::as_ptr(owner));
        if let Some(i) = entries.iter().position(|e| same(e) && e.key == key)
            && let Some(e) = entries.remove(i)
        {
            let value = e.value.clone();
            entries.push_back(e);
            return value;
        }
        let value = Slot::default();
        entries.push_back(Entry {
            owner: Arc::downgrade(owner),
            key,
            value: value.clone(),
        });
        while entries.len() > self.capacity {
            entries.pop_front();
        }
        value
    }

    /// The value for `owner` and `key`, computed by `compute` unless cached (or being
    /// computed by another thread, which this one then waits for). Blocking.
    pub fn get(&self, owner: &Arc<O>, key: K, compute: impl FnOnce() -> V) -> Arc<V> {
        self.slot(owner, key)
            .get_or_init(|| {
                // A miss: the request's compute slot (`crate::cancel::admit`).
                let _slot = crate::cancel::admit();
                Arc::new(compute())
            })
            .clone()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_goes_and_dead_owners_are_forgotten() {
        let lru: Lru<u8, u32, u32> = Lru::new(2);
        let (a, b) = (Arc::new(1u8), Arc::new(2u8));
        let calls = std::cell::Cell::new(0);
        let get = |o: &Arc<u8>, k: u32| {
            *lru.get(o, k, || {
                calls.set(calls.get() + 1);
                k * 10
            })
        };
        assert_eq!(get(&a, 1), 10);
        assert_eq!(get(&a, 1), 10);
        assert_eq!(get(&b, 1), 10); // another owner: computed again
        assert_eq!(get(&a, 1), 10); // touched: (b, 1) is now the least recently used
        assert_eq!(get(&a, 2), 20); // evicts (b, 1)
        assert_eq!(get(&a, 1), 10); // still cached
        assert_eq!(calls.get(), 3);
        assert_eq!(get(&b, 1), 10);
        assert_eq!(calls.get(), 4);
        drop(b);
        // The dead owner's entry goes at the next look-up.
        assert_eq!(*lru.get(&a, 1, || 0), 10);
        assert_eq!(lru.len(), 1);
    }
}
