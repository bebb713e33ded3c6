//! What writing one file needs of a database, so that the writer's logic (row ids by
//! batch, police.uk replacement, coverage, the log row) is written once for SQLite
//! (`sqlite_tx.rs`) and PostgreSQL (`pg.rs`). Every call runs inside the file's one
//! transaction.

use crate::ingest::OutcomeMatch;

pub(crate) type DbError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type DbResult<T> = Result<T, DbError>;

/// An error with its causes: postgres::Error's own text is only its kind ("db error",
/// "error connecting to server"), the server's message or the refusal is its source.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        cause = c.source();
    }
    out
}

/// One incident row (`key`: its (source, key) when it upserts).
pub(crate) struct IncidentRow<'a> {
    pub id: i64,
    pub month: u16,
    pub ctype: u8,
    pub severity: u8,
    pub loc: Option<i64>,
    pub crime_id: &'a str,
    pub outcome: &'a str,
    pub key: Option<(&'a str, &'a str)>,
    pub day: Option<i32>,
    pub minute: Option<u16>,
}

/// One police.uk stop and search.
pub(crate) struct SearchRow<'a> {
    pub batch: &'a str,
    pub ingest_id: i64,
    pub month: u16,
    pub day: Option<i32>,
    pub minute: Option<u16>,
    pub lon_e7: Option<i32>,
    pub lat_e7: Option<i32>,
    pub kind: &'a str,
    pub object: &'a str,
    pub outcome: &'a str,
    pub legislation: &'a str,
}

/// One STATS19 casualty (its incident row is written beside it).
pub(crate) struct CasualtyRow<'a> {
    pub collision_index: &'a str,
    pub vehicle_reference: i64,
    pub casualty_reference: i64,
    pub casualty_class: Option<i64>,
    pub severity: u8,
    pub casualty_type: Option<i64>,
    pub road_user: u8,
    pub age: Option<i64>,
    pub age_band: Option<i64>,
    pub child: Option<bool>,
    pub adjusted_serious: Option<f64>,
    pub adjusted_slight: Option<f64>,
}

/// When and where a stored collision happened (what its casualties inherit).
pub(crate) struct Collision {
    pub month: u16,
    pub day: Option<i32>,
    pub minute: Option<u16>,
    pub loc: Option<i64>,
}

/// The ingest log's row for a file.
pub(crate) struct LogRow<'a> {
    pub id: i64,
    pub file: &'a str,
    pub sha256: &'a str,
    pub format: &'a str,
    pub started: &'a str,
    pub rows_read: u64,
    pub stored: u64,
    pub replaced: u64,
    pub unlocated: u64,
    pub rejected: u64,
}

/// The statements of one file's transaction.
pub(crate) trait WriteTx {
    /// Whether a file with these bytes was stored before (files that join or update
    /// other files' rows do not count: they are applied again).
    fn seen(&mut self, sha256: &str) -> DbResult<bool>;
    /// The database's clock as RFC 3339 UTC with milliseconds.
    fn now(&mut self) -> DbResult<String>;
    /// Every stored location: `f(id, lon_e7, lat_e7, lsoa_code)`.
    fn locations(&mut self, f: &mut dyn FnMut(i64, i32, i32, String)) -> DbResult<()>;
    /// The next ids of the ingest log, the locations and the batches.
    fn next_ids(&mut self) -> DbResult<[i64; 3]>;
    fn insert_location(
        &mut self,
        id: i64,
        lon_e7: i32,
        lat_e7: i32,
        street: &str,
        code: &str,
    ) -> DbResult<()>;
    /// Inserts the row, or (keyed) updates the row of the same key, keeping its id.
    fn insert_incident(&mut self, r: &IncidentRow<'_>) -> DbResult<()>;
    /// The batch of this key: (id, rows).
    fn batch(&mut self, key: &str) -> DbResult<Option<(i64, i64)>>;
    /// Deletes a batch and its rows (ids `id << 32 ..`).
    fn delete_batch(&mut self, id: i64) -> DbResult<()>;
    fn cover(&mut self, dataset: &str, force: &str, month: u16, ingest_id: i64) -> DbResult<()>;
    fn insert_batch(&mut self, id: i64, key: &str, ingest_id: i64, rows: i64) -> DbResult<()>;
    /// Sets a crime's outcome unless its stored one is of a later month.
    fn set_outcome(&mut self, crime_id: &str, outcome: &str, month: u16) -> DbResult<OutcomeMatch>;
    /// Deletes an earlier ingest's stop and searches of the batch; returns how many.
    fn clear_searches(&mut self, batch: &str) -> DbResult<u64>;
    fn insert_search(&mut self, s: &SearchRow<'_>) -> DbResult<()>;
    /// The stored STATS19 collision of this index.
    fn collision(&mut self, index: &str) -> DbResult<Option<Collision>>;
    /// Upserts the casualty's incident row (`incident`, keyed) and the casualty, which
    /// refers to the incident row's id (an earlier ingest's, when it was stored before).
    fn upsert_casualty(&mut self, incident: &IncidentRow<'_>, c: &CasualtyRow<'_>) -> DbResult<()>;
    fn log_ingest(&mut self, row: &LogRow<'_>) -> DbResult<()>;
}
