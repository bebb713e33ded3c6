//! The durable store of record: SQLite (WAL) in the data directory, `hotspot.sqlite`.
//!
//! Each ingested file is one transaction, so a crash leaves it wholly in or wholly out,
//! and the ingest log row is written in the same transaction as the data. Re-ingesting is
//! idempotent three ways: a file whose SHA-256 was already ingested is skipped; a
//! police.uk (force, month) replaces the earlier one as a whole; keyed rows (STATS19
//! collision index, generic id) upsert.
//!
//! Incidents of one batch (a police.uk force-month, or one file's unkeyed rows) get the
//! row ids `batch << 32 | seq`, so replacing a batch is a range delete on the primary key
//! and needs no secondary index to slow the insert path.

mod backend;
pub mod pg;
mod schema;
mod sqlite_tx;
mod writer;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use thiserror::Error;

pub use writer::{CASUALTY_SOURCE, IngestSummary};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "hotspot.sqlite";

/// A store failure, with the database path.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: database error: {source}")]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{path}: {reason}")]
    Schema { path: PathBuf, reason: String },
    /// A PostgreSQL store (named without its password).
    #[error("{store}: {reason}")]
    Postgres { store: String, reason: String },
}

/// Where the store of record is: `hotspot.sqlite` in the data directory, or a PostgreSQL
/// database (`--store postgresql://...`, `HOTSPOT_STORE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreAt {
    Dir(PathBuf),
    Postgres(String),
}

impl StoreAt {
    /// The PostgreSQL database `store` names, else the SQLite store in `dir`.
    ///
    /// # Errors
    /// When `store` is given but is not a `postgresql://` URL.
    pub fn new(dir: &Path, store: Option<&str>) -> Result<Self, StoreError> {
        match store.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(StoreAt::Dir(dir.to_owned())),
            Some(url) if pg::is_url(url) => Ok(StoreAt::Postgres(url.to_owned())),
            Some(other) => Err(StoreError::Postgres {
                store: pg::redact(other),
                reason: "--store (HOTSPOT_STORE) takes a postgresql:// URL; without it the \
                         store is hotspot.sqlite in the data directory"
                    .into(),
            }),
        }
    }

    /// How messages name it (a URL without its password).
    pub fn describe(&self) -> String {
        match self {
            StoreAt::Dir(d) => d.join(DB_FILE).display().to_string(),
            StoreAt::Postgres(url) => pg::redact(url),
        }
    }
}

pub(crate) enum Db {
    Sqlite(Connection),
    Postgres(Box<std::sync::Mutex<postgres::Client>>),
}

/// The client, whoever held it last (a panic while holding it leaves no half-done
/// transaction: the client rolls back what it did not commit).
fn lock(m: &std::sync::Mutex<postgres::Client>) -> std::sync::MutexGuard<'_, postgres::Client> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What to do with a store file that is refused: never replace it (it may be the only
/// copy of someone's data), say how to start afresh.
const REFUSED_HINT: &str = "hotspot will not replace or refill it; restore it from a \
     backup, or move it away to start a new store";

/// Checks the store file before SQLite opens it, so that a file which is present but is
/// not a sound store is refused, naming the file, instead of being opened (SQLite takes
/// a zero-length file for a new, empty database and would happily fill it). Returns
/// whether the file exists (a missing one is a new store, created by the caller).
///
/// Refused: a zero-length file; a file that does not start with SQLite's header; a file
/// cut short (its length is not a whole number of pages, or is less than the page count
/// its header records, when no write-ahead log holds the rest).
///
/// # Errors
/// The refusal, naming the file.
pub fn check_file(path: &Path) -> Result<bool, StoreError> {
    use std::io::Read as _;
    let refuse = |reason: String| StoreError::Schema {
        path: path.to_owned(),
        reason: format!("{reason}: {REFUSED_HINT}"),
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(StoreError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    if !meta.is_file() {
        return Err(refuse("not a file".into()));
    }
    let len = meta.len();
    if len == 0 {
        return Err(refuse("the store file is empty (0 bytes)".into()));
    }
    let mut header = [0u8; 100];
    let mut f = std::fs::File::open(path).map_err(|source| StoreError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut got = 0;
    while got < header.len() {
        match f.read(&mut header[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(StoreError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        }
    }
    if got < header.len() || &header[..16] != b"SQLite format 3\0" {
        return Err(refuse(format!(
            "not a SQLite database ({len} bytes without SQLite's header), so not a hotspot store"
        )));
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65536u64,
        n => u64::from(n),
    };
    if !page_size.is_power_of_two() || !(512..=65536).contains(&page_size) {
        return Err(refuse(format!(
            "damaged: its header gives a page size of {page_size} bytes"
        )));
    }
    if len % page_size != 0 {
        return Err(refuse(format!(
            "truncated: {len} bytes is not a whole number of {page_size}-byte pages"
        )));
    }
    let be =
        |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let pages = u64::from(be(28));
    let pages_valid = pages > 0 && be(24) == be(92);
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal_holds_pages = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
    if pages_valid && !wal_holds_pages && len < pages * page_size {
        return Err(refuse(format!(
            "truncated: its header records {} bytes ({pages} pages), the file has {len}",
            pages * page_size
        )));
    }
    Ok(true)
}

/// Checks that an existing SQLite database is a hotspot store: it carries a hotspot
/// schema version and the incidents table. Another program's database, or one whose
/// first start never finished (no schema), is refused rather than written into.
///
/// # Errors
/// The refusal, naming the file; a database error when it cannot be read.
pub fn check_ours(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let sql = |source| StoreError::Sql {
        path: path.to_owned(),
        source,
    };
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql)?;
    let has_incidents: bool = conn
        .query_row(
            "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'incidents')",
            [],
            |r| r.get(0),
        )
        .map_err(sql)?;
    if version == 0 || !has_incidents {
        return Err(StoreError::Schema {
            path: path.to_owned(),
            reason: format!(
                "a SQLite database but not a hotspot store (schema version {version}, {} \
                 incidents table): {REFUSED_HINT}",
                if has_incidents { "an" } else { "no" }
            ),
        });
    }
    Ok(())
}

/// Casualty counts of one road-user group ([`Store::casualty_counts`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CasualtyCounts {
    pub group: crate::model::CrimeType,
    pub casualties: u64,
    pub ksi: u64,
    pub adjusted_ksi: f64,
    /// Casualties under 16.
    pub children: u64,
}

/// An open store.
pub struct Store {
    pub(crate) db: Db,
    path: PathBuf,
    /// Rows stored or replaced since [`Store::settle`] last ran.
    pub(crate) written: u64,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    ///
    /// # Errors
    /// When the directory cannot be created or the database opened, or it was written by
    /// a newer schema.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let existed = check_file(&path)?;
        let conn = Connection::open(&path).map_err(|source| StoreError::Sql {
            path: path.clone(),
            source,
        })?;
        if existed {
            check_ours(&conn, &path)?;
        }
        schema::init(&conn).map_err(|source| StoreError::Sql {
            path: path.clone(),
            source,
        })?;
        Ok(Store {
            db: Db::Sqlite(conn),
            path,
            written: 0,
        })
    }

    /// Opens (creating if needed) the store `at` names.
    ///
    /// # Errors
    /// As [`Store::open`], or the PostgreSQL database cannot be reached or is refused.
    pub fn open_at(at: &StoreAt) -> Result<Self, StoreError> {
        match at {
            StoreAt::Dir(dir) => Store::open(dir),
            StoreAt::Postgres(url) => Ok(Store {
                db: Db::Postgres(Box::new(std::sync::Mutex::new(pg::connect(url)?))),
                path: PathBuf::from(pg::redact(url)),
                written: 0,
            }),
        }
    }

    /// Ends an ingest run: a PostgreSQL store that took many rows is vacuumed (see
    /// `pg::settle`); nothing for SQLite.
    pub fn settle(&mut self) {
        if let Db::Postgres(client) = &mut self.db
            && self.written >= pg::VACUUM_ROWS
        {
            pg::settle(
                client
                    .get_mut()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
        }
        self.written = 0;
    }

    /// Opens an existing store `at` names for reading.
    ///
    /// # Errors
    /// As [`Store::open_read_only`] and [`Store::open_at`].
    pub fn open_read_only_at(at: &StoreAt) -> Result<Self, StoreError> {
        match at {
            StoreAt::Dir(dir) => Store::open_read_only(dir),
            StoreAt::Postgres(_) => Store::open_at(at),
        }
    }

    /// Opens an existing store read-only (for loading the analysis store).
    ///
    /// # Errors
    /// When there is no store in `dir` or it cannot be opened.
    pub fn open_read_only(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(DB_FILE);
        if !path.exists() {
            return Err(StoreError::Schema {
                path,
                reason: "no store here: run `hotspot ingest` first".into(),
            });
        }
        check_file(&path)?;
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Sql {
            path: path.clone(),
            source,
        })?;
        check_ours(&conn, &path)?;
        Ok(Store {
            db: Db::Sqlite(conn),
            path,
            written: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    fn pg_err(&self, e: postgres::Error) -> StoreError {
        StoreError::Postgres {
            store: self.path.display().to_string(),
            reason: backend::chain(&e),
        }
    }

    /// Number of incidents stored (located or not).
    ///
    /// # Errors
    /// On a database failure.
    pub fn incident_count(&self) -> Result<u64, StoreError> {
        match &self.db {
            Db::Sqlite(conn) => conn
                .query_row("SELECT count(*) FROM incidents", [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(|e| self.err(e)),
            Db::Postgres(client) => lock(client)
                .query_one("SELECT count(*) FROM incidents", &[])
                .map(|r| r.get::<_, i64>(0) as u64)
                .map_err(|e| self.pg_err(e)),
        }
    }

    /// The store's version: its last ingest id (0 when nothing was ingested), the same
    /// for every process that reads it.
    ///
    /// # Errors
    /// On a database failure.
    pub fn version(&self) -> Result<u64, StoreError> {
        match &self.db {
            Db::Sqlite(conn) => conn
                .query_row("SELECT coalesce(max(id), 0) FROM ingest_log", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| n as u64)
                .map_err(|e| self.err(e)),
            Db::Postgres(client) => pg::version(&mut lock(client))
                .map(|n| n as u64)
                .map_err(|e| self.pg_err(e)),
        }
    }

    /// STATS19 casualties by road-user group, as road safety partnerships count them:
    /// all casualties, KSI (killed or seriously injured: casualty severity 1 or 2) and
    /// adjusted KSI (fatal + the sum of `casualty_adjusted_severity_serious` over the
    /// others; a casualty without the adjusted column counts as its recorded severity).
    /// Only groups with casualties are listed, in type order.
    ///
    /// # Errors
    /// On a database failure.
    pub fn casualty_counts(&self) -> Result<Vec<CasualtyCounts>, StoreError> {
        let group = |code: i64| {
            u8::try_from(code)
                .ok()
                .and_then(crate::model::CrimeType::from_code)
                .unwrap_or(crate::model::CrimeType::RoadCasualtyOther)
        };
        let conn = match &self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(client) => {
                let mut client = lock(client);
                let rows = client
                    .query(
                        "SELECT road_user::bigint, count(*),
                                count(*) FILTER (WHERE casualty_severity IN (1, 2)),
                                coalesce(sum(CASE WHEN casualty_severity = 1 THEN 1.0
                                         ELSE coalesce(adjusted_serious,
                                              CASE WHEN casualty_severity = 2 THEN 1.0 ELSE 0.0 END) END), 0)::float8,
                                count(*) FILTER (WHERE child)
                         FROM casualties GROUP BY road_user ORDER BY road_user",
                        &[],
                    )
                    .map_err(|e| self.pg_err(e))?;
                return Ok(rows
                    .iter()
                    .map(|r| CasualtyCounts {
                        group: group(r.get(0)),
                        casualties: r.get::<_, i64>(1) as u64,
                        ksi: r.get::<_, i64>(2) as u64,
                        adjusted_ksi: r.get(3),
                        children: r.get::<_, i64>(4) as u64,
                    })
                    .collect());
            }
        };
        let mut q = conn
            .prepare(
                "SELECT road_user, count(*),
                        sum(casualty_severity IN (1, 2)),
                        sum(CASE WHEN casualty_severity = 1 THEN 1.0
                                 ELSE coalesce(adjusted_serious, casualty_severity = 2) END),
                        sum(child IS 1)
                 FROM casualties GROUP BY road_user ORDER BY road_user",
            )
            .map_err(|e| StoreError::Sql {
                path: self.path.clone(),
                source: e,
            })?;
        let rows = q
            .query_map([], |r| {
                Ok(CasualtyCounts {
                    group: group(r.get(0)?),
                    casualties: r.get::<_, i64>(1)? as u64,
                    ksi: r.get::<_, i64>(2)? as u64,
                    adjusted_ksi: r.get(3)?,
                    children: r.get::<_, i64>(4)? as u64,
                })
            })
            .and_then(Iterator::collect);
        rows.map_err(|e| StoreError::Sql {
            path: self.path.clone(),
            source: e,
        })
    }

    /// Which force-months each dataset covers (`crate::coverage`).
    ///
    /// # Errors
    /// On a database failure.
    pub fn coverage(&self) -> Result<crate::coverage::Coverage, StoreError> {
        match &self.db {
            Db::Sqlite(conn) => read_coverage(conn).map_err(|e| self.err(e)),
            Db::Postgres(client) => pg_coverage(&mut lock(client)).map_err(|e| self.pg_err(e)),
        }
    }

    /// Incidents per month: (month index, all, without a location), ascending.
    ///
    /// # Errors
    /// On a database failure.
    pub fn monthly_totals(&self) -> Result<Vec<(u16, u64, u64)>, StoreError> {
        let month = |m: i64| u16::try_from(m).unwrap_or(u16::MAX);
        let conn = match &self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(client) => {
                let mut client = lock(client);
                let rows = client
                    .query(
                        "SELECT month::bigint, count(*), count(*) FILTER (WHERE loc IS NULL)
                         FROM incidents GROUP BY month ORDER BY month",
                        &[],
                    )
                    .map_err(|e| self.pg_err(e))?;
                return Ok(rows
                    .iter()
                    .map(|r| {
                        (
                            month(r.get(0)),
                            r.get::<_, i64>(1) as u64,
                            r.get::<_, i64>(2) as u64,
                        )
                    })
                    .collect());
            }
        };
        let sql = |source| StoreError::Sql {
            path: self.path.clone(),
            source,
        };
        let mut q = conn
            .prepare(
                "SELECT month, count(*), sum(loc IS NULL) FROM incidents GROUP BY month ORDER BY month",
            )
            .map_err(sql)?;
        q.query_map([], |r| {
            Ok((
                month(r.get(0)?),
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
            ))
        })
        .and_then(Iterator::collect)
        .map_err(sql)
    }

    /// Calls `f(ctype, severity, month, day, lon_e7, lat_e7)` for every located incident
    /// (`day`: days since 1970-01-01, None where the source gives only a month).
    ///
    /// # Errors
    /// On a database failure.
    pub fn for_each_located(
        &self,
        mut f: impl FnMut(u8, u8, u16, Option<i32>, i32, i32),
    ) -> Result<(), StoreError> {
        const QUERY: &str = "SELECT i.ctype, i.severity, i.month, i.day, l.lon_e7, l.lat_e7
                 FROM incidents i JOIN locations l ON l.id = i.loc";
        let small = |v: i32| u8::try_from(v).unwrap_or(u8::MAX);
        let conn = match &self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(client) => {
                let mut client = lock(client);
                use postgres::types::Type;
                return pg::copy_rows(
                    &mut *client,
                    QUERY,
                    &[
                        Type::INT4,
                        Type::INT4,
                        Type::INT4,
                        Type::INT4,
                        Type::INT4,
                        Type::INT4,
                    ],
                    |r| {
                        f(
                            small(r.try_get(0)?),
                            u8::try_from(r.try_get::<i32>(1)?).unwrap_or(0),
                            u16::try_from(r.try_get::<i32>(2)?).unwrap_or(u16::MAX),
                            r.try_get(3)?,
                            r.try_get(4)?,
                            r.try_get(5)?,
                        );
                        Ok(())
                    },
                )
                .map_err(|e| self.pg_err(e));
            }
        };
        let sql = |source| StoreError::Sql {
            path: self.path.clone(),
            source,
        };
        let mut q = conn.prepare(QUERY).map_err(sql)?;
        let mut rows = q.query([]).map_err(sql)?;
        while let Some(r) = rows.next().map_err(sql)? {
            let int = |k: usize| r.get::<_, i64>(k).map_err(sql);
            let day: Option<i64> = r.get(3).map_err(sql)?;
            f(
                u8::try_from(int(0)?).unwrap_or(u8::MAX),
                u8::try_from(int(1)?).unwrap_or(0),
                u16::try_from(int(2)?).unwrap_or(u16::MAX),
                day.and_then(|d| i32::try_from(d).ok()),
                i32::try_from(int(4)?).unwrap_or(i32::MAX),
                i32::try_from(int(5)?).unwrap_or(i32::MAX),
            );
        }
        Ok(())
    }

    /// The database's own consistency check: "ok" when sound (SQLite's
    /// `integrity_check`; for PostgreSQL, which checks its pages itself, that every
    /// incident's batch is recorded and every location it names exists).
    ///
    /// # Errors
    /// On a database failure.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        match &self.db {
            Db::Sqlite(conn) => conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .map_err(|e| self.err(e)),
            Db::Postgres(client) => {
                let mut client = lock(client);
                let r = client
                    .query_one(
                        "SELECT (SELECT count(*) FROM incidents i
                                 WHERE NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = i.id >> 32)),
                                (SELECT count(*) FROM incidents i WHERE i.loc IS NOT NULL
                                 AND NOT EXISTS (SELECT 1 FROM locations l WHERE l.id = i.loc))",
                        &[],
                    )
                    .map_err(|e| self.pg_err(e))?;
                let (orphans, dangling): (i64, i64) = (r.get(0), r.get(1));
                Ok(if orphans == 0 && dangling == 0 {
                    "ok".into()
                } else {
                    format!("{orphans} incidents outside a batch, {dangling} naming no location")
                })
            }
        }
    }
}

/// The coverage table of a PostgreSQL store.
fn pg_coverage(
    client: &mut postgres::Client,
) -> Result<crate::coverage::Coverage, postgres::Error> {
    use crate::coverage::{Coverage, Dataset};
    let mut c = Coverage::new();
    for r in client.query("SELECT dataset, force, month FROM coverage", &[])? {
        let (d, f, m): (String, String, i32) = (r.get(0), r.get(1), r.get(2));
        if let (Some(d), Ok(m)) = (Dataset::parse(&d), u16::try_from(m)) {
            c.add(d, &f, m);
        }
    }
    Ok(c)
}

/// The coverage table (empty when a store of an older schema, opened read-only, has
/// none yet; opening it writable adds and back-fills it). Rows naming an unknown
/// dataset or an out-of-range month are left out.
pub fn read_coverage(conn: &Connection) -> rusqlite::Result<crate::coverage::Coverage> {
    use crate::coverage::{Coverage, Dataset};
    let mut c = Coverage::new();
    let present: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'coverage')",
        [],
        |r| r.get(0),
    )?;
    if !present {
        return Ok(c);
    }
    let mut q = conn.prepare("SELECT dataset, force, month FROM coverage")?;
    let mut rows = q.query([])?;
    while let Some(r) = rows.next()? {
        let (d, f, m): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        if let (Some(d), Ok(m)) = (Dataset::parse(&d), u16::try_from(m)) {
            c.add(d, &f, m);
        }
    }
    Ok(c)
}
