//! Computed collections, kept briefly so the pages of one result set (a client walking
//! `next` links) do not each redo the statistics; and the time each store was first
//! served, which is the `timeStamp` of every response about it.
//!
//! Entries belong to one store (held weakly, compared by identity) and generation, so an
//! ingest that swaps the store never serves stale features. The cache is small and
//! bounded by rows, so memory stays bounded whatever clients ask.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::build::Items;
use crate::analysis::AnalysisStore;
use crate::serve::AppError;

/// Most entries kept.
const MAX_ENTRIES: usize = 12;
/// Most rows kept over all entries.
const MAX_ROWS: usize = 500_000;

struct Entry {
    store: Weak<AnalysisStore>,
    generation: u64,
    key: String,
    items: Arc<Items>,
}

static ENTRIES: Mutex<VecDeque<Entry>> = Mutex::new(VecDeque::new());

struct Seen {
    store: Weak<AnalysisStore>,
    generation: u64,
    stamp: String,
}

static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn same(w: &Weak<AnalysisStore>, store: &Arc<AnalysisStore>) -> bool {
    std::ptr::eq(w.as_ptr(), Arc::as_ptr(store)) && w.strong_count() > 0
}

/// Locks held while one key is computed, so that concurrent misses on it (QGIS and
/// ogr2ogr ask for several pages at once) compute it once: the others wait, then find
/// it cached. Keyed by store address, generation and key; a lock is dropped with its
/// last holder. A computation that unwinds (cancelled, `crate::cancel`) poisons its
/// lock; the next waiter takes it anyway, finds nothing cached and computes.
static FLIGHTS: Mutex<Vec<(String, Weak<Mutex<()>>)>> = Mutex::new(Vec::new());

fn flight(store: &Arc<AnalysisStore>, generation: u64, key: &str) -> Arc<Mutex<()>> {
    let id = format!("{:p}/{generation}/{key}", Arc::as_ptr(store));
    let mut flights = lock(&FLIGHTS);
    flights.retain(|(_, w)| w.strong_count() > 0);
    if let Some(held) = flights
        .iter()
        .find(|(k, _)| *k == id)
        .and_then(|(_, w)| w.upgrade())
    {
        return held;
    }
    let new = Arc::new(Mutex::new(()));
    flights.push((id, Arc::downgrade(&new)));
    new
}

fn cached(store: &Arc<AnalysisStore>, generation: u64, key: &str) -> Option<Arc<Items>> {
    let mut entries = lock(&ENTRIES);
    entries.retain(|e| e.store.strong_count() > 0);
    let pos = entries
        .iter()
        .position(|e| e.generation == generation && e.key == key && same(&e.store, store))?;
    // Most recently used goes to the back.
    let e = entries.remove(pos)?;
    let items = e.items.clone();
    entries.push_back(e);
    Some(items)
}

/// The items for `key`, computed by `compute` unless a live entry has them (or another
/// request is computing them: then it waits for that one).
///
/// # Errors
/// Whatever `compute` returns.
pub fn items(
    store: &Arc<AnalysisStore>,
    generation: u64,
    key: &str,
    compute: impl FnOnce() -> Result<Items, AppError>,
) -> Result<Arc<Items>, AppError> {
    if let Some(items) = cached(store, generation, key) {
        return Ok(items);
    }
    let flight = flight(store, generation, key);
    let _computing = lock(&flight);
    if let Some(items) = cached(store, generation, key) {
        return Ok(items);
    }
    // A miss: the request's compute slot (`crate::cancel::admit`).
    let slot = crate::cancel::admit();
    let items = Arc::new(compute()?);
    drop(slot);
    let mut entries = lock(&ENTRIES);
    entries.push_back(Entry {
        store: Arc::downgrade(store),
        generation,
        key: key.to_owned(),
        items: items.clone(),
    });
    while entries.len() > MAX_ENTRIES
        || (entries.len() > 1 && entries.iter().map(|e| e.items.len()).sum::<usize>() > MAX_ROWS)
    {
        entries.pop_front();
    }
    Ok(items)
}

/// When this store (at this generation) was first served, RFC 3339 UTC to the second.
pub fn time_stamp(store: &Arc<AnalysisStore>, generation: u64) -> String {
    let mut seen = lock(&SEEN);
    seen.retain(|s| s.store.strong_count() > 0);
    if let Some(s) = seen
        .iter()
        .find(|s| s.generation == generation && same(&s.store, store))
    {
        return s.stamp.clone();
    }
    let stamp = crate::serve::clock::now_rfc3339();
    seen.push(Seen {
        store: Arc::downgrade(store),
        generation,
        stamp: stamp.clone(),
    });
    stamp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn concurrent_misses_on_one_key_compute_it_once() {
        let geography = crate::spatial::Geography::bundled().expect("bundled geography");
        let store = Arc::new(crate::analysis::build::Builder::new().finish(Arc::new(geography)));
        let calls = AtomicUsize::new(0);
        let start = std::sync::Barrier::new(4);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    start.wait();
                    items(&store, 1, "single-flight-test", || {
                        calls.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(200));
                        Ok(Items {
                            ids: Vec::new(),
                            geoms: Vec::new(),
                            columns: Vec::new(),
                            keys: Vec::new(),
                        })
                    })
                    .expect("items");
                });
            }
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Another key is its own computation.
        let _ = items(&store, 1, "another-key", || {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(AppError::NotFound("x".into()))
        });
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
