//! Computed collections, kept briefly so the pages of one result set (a client walking
//! `next` links) do not each redo the statistics; and the time each store was first
//! served, which is the `timeStamp` of every response about it.
//!
//! Entries belong to one store (held weakly, compared by identity) and generation, so an
//! ingest that swaps the store never serves stale features. The cache is small and
//! bounded by rows, so memory stays bounded whatever clients ask.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

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
    let stamp = now_rfc3339();
    seen.push(Seen {
        store: Arc::downgrade(store),
        generation,
        stamp: stamp.clone(),
    });
    stamp
}

/// The current time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Year, month, day of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
