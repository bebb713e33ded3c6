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

/// The items for `key`, computed by `compute` unless a live entry has them.
///
/// # Errors
/// Whatever `compute` returns.
pub fn items(
    store: &Arc<AnalysisStore>,
    generation: u64,
    key: &str,
    compute: impl FnOnce() -> Result<Items, AppError>,
) -> Result<Arc<Items>, AppError> {
    {
        let mut entries = lock(&ENTRIES);
        entries.retain(|e| e.store.strong_count() > 0);
        if let Some(pos) = entries
            .iter()
            .position(|e| e.generation == generation && e.key == key && same(&e.store, store))
        {
            // Most recently used goes to the back.
            if let Some(e) = entries.remove(pos) {
                let items = e.items.clone();
                entries.push_back(e);
                return Ok(items);
            }
        }
    }
    let items = Arc::new(compute()?);
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
