//! PostgreSQL as the store of record (`--store postgresql://...`, `HOTSPOT_STORE`), with
//! SQLite's guarantees: a file is one transaction (its log row inside it), a file whose
//! bytes were stored is skipped, a police.uk (force, month) replaces the earlier one as a
//! whole, keyed rows upsert. The schema is SQLite's, table for table and column for
//! column, so the writer's logic (`writer.rs`) is the same code over `backend::WriteTx`.
//!
//! Writers on any number of machines take one transaction-scoped advisory lock, so row
//! ids (`batch << 32 | seq`, computed from the tables' maxima) never collide; readers are
//! never blocked. The bulk of a file (new locations, incidents) goes in with binary
//! `COPY`; keyed rows through a staging table and one `INSERT .. ON CONFLICT`. A commit
//! notifies channel [`CHANNEL`] with the file's ingest id, which `hotspot serve` replicas
//! follow (`serve::follow`).
//!
//! The synchronous `postgres` client (tokio-postgres underneath) is used because every
//! caller is synchronous: the CLI, the ingest worker's thread, start-up, the reload
//! thread; none of them runs on the server's async runtime.

use postgres::binary_copy::{BinaryCopyInWriter, BinaryCopyOutIter};
use postgres::fallible_iterator::FallibleIterator as _;
use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls, Transaction};

use super::backend::{CasualtyRow, Collision, DbResult, IncidentRow, LogRow, SearchRow, WriteTx};
use super::{IngestSummary, StoreError};
use crate::ingest::{Format, IngestError, OutcomeMatch};

/// The channel a commit notifies, with the new ingest id as payload.
pub const CHANNEL: &str = "hotspot_store";

/// The advisory lock key every writer holds for its transaction (and schema set-up).
const WRITE_LOCK: i64 = 0x0068_6f74_7370_6f74; // "hotspot"

/// Rows buffered before they are sent with `COPY`.
const FLUSH_ROWS: usize = 50_000;

/// Whether `s` names a PostgreSQL store.
pub fn is_url(s: &str) -> bool {
    s.starts_with("postgresql://") || s.starts_with("postgres://")
}

/// The URL without its password (for messages and logs).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    let host = host.split_once('?').map_or(host, |(h, _)| h);
    match auth.map(|a| a.split_once(':').map_or(a, |(u, _)| u)) {
        Some(user) => format!("{scheme}://{user}@{host}"),
        None => format!("{scheme}://{host}"),
    }
}

pub(crate) fn error(url: &str, e: impl std::error::Error + 'static) -> StoreError {
    StoreError::Postgres {
        store: redact(url),
        reason: super::backend::chain(&e),
    }
}

/// Connects without setting anything up.
///
/// # Errors
/// When the server cannot be reached or refuses the login.
pub fn connect_raw(url: &str) -> Result<Client, StoreError> {
    Client::connect(url, NoTls).map_err(|e| error(url, e))
}

/// Connects and makes sure the database holds a hotspot store, creating the schema in
/// an empty database; a database that has an `incidents` table but no hotspot schema
/// marker is another program's and is refused, never written into.
///
/// # Errors
/// As [`connect_raw`]; a refused database; a newer schema.
pub fn connect(url: &str) -> Result<Client, StoreError> {
    let mut client = connect_raw(url)?;
    let err = |e: postgres::Error| error(url, e);
    // A store already set up is only read (so opening one never waits for a writer's
    // lock); a new one is made under the lock, checked again inside it.
    let marker: bool = client
        .query_one("SELECT to_regclass('hotspot_schema') IS NOT NULL", &[])
        .map_err(err)?
        .get(0);
    let mut tx = client.transaction().map_err(err)?;
    if !marker {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
            .map_err(err)?;
    }
    let marker: bool = tx
        .query_one("SELECT to_regclass('hotspot_schema') IS NOT NULL", &[])
        .map_err(err)?
        .get(0);
    let incidents: bool = tx
        .query_one("SELECT to_regclass('incidents') IS NOT NULL", &[])
        .map_err(err)?
        .get(0);
    if !marker && incidents {
        return Err(StoreError::Postgres {
            store: redact(url),
            reason: "the database has an incidents table but is not a hotspot store: \
                     hotspot will not write into it; name another database"
                .into(),
        });
    }
    if marker {
        let version: i32 = tx
            .query_one("SELECT max(version) FROM hotspot_schema", &[])
            .map_err(err)?
            .get::<_, Option<i32>>(0)
            .unwrap_or(0);
        if i64::from(version) > super::schema::SCHEMA_VERSION {
            return Err(StoreError::Postgres {
                store: redact(url),
                reason: format!(
                    "store schema version {version} is newer than this hotspot ({})",
                    super::schema::SCHEMA_VERSION
                ),
            });
        }
    } else {
        tx.batch_execute(SCHEMA).map_err(err)?;
        tx.execute(
            "INSERT INTO hotspot_schema (version) VALUES ($1)",
            &[&(super::schema::SCHEMA_VERSION as i32)],
        )
        .map_err(err)?;
        geometry(&mut tx, url)?;
    }
    tx.commit().map_err(err)?;
    Ok(client)
}

/// Where the server has PostGIS, a new store gets geometry for GIS clients (QGIS's and
/// GDAL's PostgreSQL drivers open them as layers): `locations.geom`, a point generated
/// from the stored coordinate, and the view `incident_points`, every located incident
/// with its location's point, street and LSOA code. Without PostGIS (or without the
/// right to create the extension) the store works the same, without them.
fn geometry(tx: &mut Transaction<'_>, url: &str) -> Result<(), StoreError> {
    let err = |e: postgres::Error| error(url, e);
    let available: bool = tx
        .query_one(
            "SELECT EXISTS(SELECT 1 FROM pg_available_extensions WHERE name = 'postgis')",
            &[],
        )
        .map_err(err)?
        .get(0);
    if !available {
        return Ok(());
    }
    // In a savepoint: a refusal (not allowed to create it) leaves the schema standing.
    let mut sp = tx.transaction().map_err(err)?;
    match sp.batch_execute("CREATE EXTENSION IF NOT EXISTS postgis") {
        Ok(()) => {}
        Err(e) => {
            tracing::warn!(store = %redact(url), error = %super::backend::chain(&e),
                "PostGIS is installed but cannot be enabled here: no geometry columns");
            return Ok(());
        }
    }
    sp.batch_execute(GEOMETRY).map_err(err)?;
    sp.commit().map_err(err)
}

const GEOMETRY: &str = "
ALTER TABLE locations ADD COLUMN geom geometry(Point, 4326)
    GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon_e7 / 1e7, lat_e7 / 1e7), 4326)) STORED;
CREATE INDEX locations_geom ON locations USING gist (geom);
CREATE VIEW incident_points AS
    SELECT i.id, i.month, i.ctype, i.severity, i.day, i.minute, i.crime_id, i.outcome,
           i.source, i.ext_key, l.street, l.lsoa_code, l.geom
    FROM incidents i JOIN locations l ON l.id = i.loc;
";

/// SQLite's schema (`schema.rs`) in PostgreSQL's types.
const SCHEMA: &str = "
CREATE TABLE hotspot_schema (version INTEGER NOT NULL);
CREATE TABLE locations (
    id BIGINT PRIMARY KEY,
    lon_e7 INTEGER NOT NULL,
    lat_e7 INTEGER NOT NULL,
    street TEXT NOT NULL DEFAULT '',
    lsoa_code TEXT NOT NULL DEFAULT '',
    UNIQUE (lon_e7, lat_e7, lsoa_code)
);
CREATE TABLE batches (
    id BIGINT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    ingest_id BIGINT NOT NULL,
    rows BIGINT NOT NULL
);
CREATE TABLE incidents (
    id BIGINT PRIMARY KEY,
    month INTEGER NOT NULL,
    ctype INTEGER NOT NULL,
    severity INTEGER NOT NULL DEFAULT 0,
    loc BIGINT,
    source TEXT,
    ext_key TEXT,
    crime_id TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL DEFAULT '',
    day INTEGER,
    minute INTEGER,
    outcome_month INTEGER
);
CREATE UNIQUE INDEX incidents_key ON incidents (source, ext_key) WHERE ext_key IS NOT NULL;
CREATE TABLE ingest_log (
    id BIGINT PRIMARY KEY,
    file TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    format TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT NOT NULL
        DEFAULT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
    rows_read BIGINT NOT NULL,
    stored BIGINT NOT NULL,
    replaced BIGINT NOT NULL,
    unlocated BIGINT NOT NULL,
    rejected BIGINT NOT NULL
);
CREATE INDEX ingest_log_sha ON ingest_log (sha256);
CREATE TABLE coverage (
    dataset TEXT NOT NULL,
    force TEXT NOT NULL,
    month INTEGER NOT NULL,
    ingest_id BIGINT NOT NULL,
    PRIMARY KEY (dataset, force, month)
);
CREATE TABLE casualties (
    collision_index TEXT NOT NULL,
    vehicle_reference BIGINT NOT NULL,
    casualty_reference BIGINT NOT NULL,
    incident_id BIGINT NOT NULL,
    casualty_class BIGINT,
    casualty_severity INTEGER NOT NULL,
    casualty_type BIGINT,
    road_user INTEGER NOT NULL,
    age BIGINT,
    age_band BIGINT,
    child BOOLEAN,
    adjusted_serious DOUBLE PRECISION,
    adjusted_slight DOUBLE PRECISION,
    PRIMARY KEY (collision_index, vehicle_reference, casualty_reference)
);
CREATE TABLE stop_searches (
    id BIGSERIAL PRIMARY KEY,
    batch TEXT NOT NULL,
    ingest_id BIGINT NOT NULL,
    month INTEGER NOT NULL,
    day INTEGER,
    minute INTEGER,
    lon_e7 INTEGER,
    lat_e7 INTEGER,
    type TEXT NOT NULL DEFAULT '',
    object TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL DEFAULT '',
    legislation TEXT NOT NULL DEFAULT ''
);
CREATE INDEX stop_searches_batch ON stop_searches (batch);
";

/// Ingests one file as one transaction (see [`super::Store::ingest_bytes`]); the commit
/// notifies [`CHANNEL`].
pub(crate) fn ingest(
    client: &mut Client,
    file: &str,
    bytes: &[u8],
    sha256: String,
    format: Option<Format>,
) -> Result<IngestSummary, IngestError> {
    let sql = |e: &postgres::Error| IngestError::Store {
        file: file.to_owned(),
        reason: super::backend::chain(e),
    };
    let mut tx = client.transaction().map_err(|e| sql(&e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
        .map_err(|e| sql(&e))?;
    let mut t = PgTx::new(tx);
    let summary = super::writer::write_file(&mut t, file, bytes, sha256, format)?;
    if summary.unchanged {
        return Ok(summary);
    }
    t.commit().map_err(|e| sql(&e))?;
    Ok(summary)
}

/// Rows an ingest run stores or replaces past which [`settle`] vacuums.
pub(crate) const VACUUM_ROWS: u64 = 10_000;

/// After an ingest run that wrote many rows: vacuums what it wrote (outside any
/// transaction), so that the replicas' next load, all at once, does not each pay for
/// setting every new row's hint bits. A failure is only logged: the data are committed.
pub(crate) fn settle(client: &mut Client) {
    if let Err(e) = client.batch_execute("VACUUM (ANALYZE) incidents, locations") {
        tracing::warn!(error = %super::backend::chain(&e), "vacuum after the ingest failed");
    }
}

struct Plain {
    id: i64,
    month: i32,
    ctype: i32,
    severity: i32,
    loc: Option<i64>,
    crime_id: String,
    outcome: String,
    day: Option<i32>,
    minute: Option<i32>,
}

/// One file's transaction, with the bulk rows buffered for `COPY`.
struct PgTx<'c> {
    tx: Transaction<'c>,
    locations: Vec<(i64, i32, i32, String, String)>,
    plain: Vec<Plain>,
    /// Keyed rows: (source, key) beside the row, in file order: as SQLite's upsert row by
    /// row, a key repeated in the file keeps its first row's id and its last row's values.
    keyed: Vec<(Plain, String, String)>,
    crime_id_index: bool,
    ingest_id: Option<i64>,
}

impl<'c> PgTx<'c> {
    fn new(tx: Transaction<'c>) -> Self {
        PgTx {
            tx,
            locations: Vec::new(),
            plain: Vec::new(),
            keyed: Vec::new(),
            crime_id_index: false,
            ingest_id: None,
        }
    }

    fn flush(&mut self) -> Result<(), postgres::Error> {
        if !self.locations.is_empty() {
            let sink = self.tx.copy_in(
                "COPY locations (id, lon_e7, lat_e7, street, lsoa_code) FROM STDIN (FORMAT binary)",
            )?;
            let mut w = BinaryCopyInWriter::new(
                sink,
                &[Type::INT8, Type::INT4, Type::INT4, Type::TEXT, Type::TEXT],
            );
            for (id, lon, lat, street, code) in self.locations.drain(..) {
                w.write(&[&id, &lon, &lat, &street, &code])?;
            }
            w.finish()?;
        }
        if !self.plain.is_empty() {
            let sink = self.tx.copy_in(
                "COPY incidents (id, month, ctype, severity, loc, crime_id, outcome, day, minute)
                 FROM STDIN (FORMAT binary)",
            )?;
            let mut w = BinaryCopyInWriter::new(sink, INCIDENT_TYPES);
            for p in self.plain.drain(..) {
                w.write(&p.values())?;
            }
            w.finish()?;
        }
        if !self.keyed.is_empty() {
            self.tx.batch_execute(
                "CREATE TEMP TABLE IF NOT EXISTS stage_keyed (
                     id BIGINT, month INTEGER, ctype INTEGER, severity INTEGER, loc BIGINT,
                     crime_id TEXT, outcome TEXT, day INTEGER, minute INTEGER,
                     source TEXT, ext_key TEXT, seq BIGINT) ON COMMIT DROP;
                 TRUNCATE stage_keyed;",
            )?;
            let sink = self
                .tx
                .copy_in("COPY stage_keyed FROM STDIN (FORMAT binary)")?;
            let mut types = INCIDENT_TYPES.to_vec();
            types.extend([Type::TEXT, Type::TEXT, Type::INT8]);
            let mut w = BinaryCopyInWriter::new(sink, &types);
            for (seq, (p, source, key)) in self.keyed.drain(..).enumerate() {
                let seq = seq as i64;
                let mut v = p.values().to_vec();
                v.extend([&source as &(dyn ToSql + Sync), &key, &seq]);
                w.write(&v)?;
            }
            w.finish()?;
            self.tx.batch_execute(
                "INSERT INTO incidents (id, month, ctype, severity, loc, crime_id, outcome, day, minute, source, ext_key)
                 SELECT DISTINCT ON (source, ext_key)
                        first_value(id) OVER (PARTITION BY source, ext_key ORDER BY seq),
                        month, ctype, severity, loc, crime_id, outcome, day, minute, source, ext_key
                 FROM stage_keyed ORDER BY source, ext_key, seq DESC
                 ON CONFLICT (source, ext_key) WHERE ext_key IS NOT NULL DO UPDATE SET
                 month = excluded.month, ctype = excluded.ctype, severity = excluded.severity,
                 loc = excluded.loc, crime_id = excluded.crime_id, outcome = excluded.outcome,
                 day = excluded.day, minute = excluded.minute",
            )?;
        }
        Ok(())
    }

    fn commit(mut self) -> Result<(), postgres::Error> {
        self.flush()?;
        if let Some(id) = self.ingest_id {
            self.tx
                .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &id.to_string()])?;
        }
        self.tx.commit()
    }

    fn flush_if_full(&mut self) -> DbResult<()> {
        if self.plain.len() + self.keyed.len() + self.locations.len() >= FLUSH_ROWS {
            self.flush()?;
        }
        Ok(())
    }
}

const INCIDENT_TYPES: &[Type] = &[
    Type::INT8,
    Type::INT4,
    Type::INT4,
    Type::INT4,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::INT4,
];

impl Plain {
    fn of(r: &IncidentRow<'_>) -> Self {
        Plain {
            id: r.id,
            month: i32::from(r.month),
            ctype: i32::from(r.ctype),
            severity: i32::from(r.severity),
            loc: r.loc,
            crime_id: r.crime_id.to_owned(),
            outcome: r.outcome.to_owned(),
            day: r.day,
            minute: r.minute.map(i32::from),
        }
    }

    fn values(&self) -> [&(dyn ToSql + Sync); 9] {
        [
            &self.id,
            &self.month,
            &self.ctype,
            &self.severity,
            &self.loc,
            &self.crime_id,
            &self.outcome,
            &self.day,
            &self.minute,
        ]
    }
}

impl WriteTx for PgTx<'_> {
    fn seen(&mut self, sha256: &str) -> DbResult<bool> {
        Ok(self
            .tx
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM ingest_log WHERE sha256 = $1
                     AND format NOT IN ('PoliceOutcomes', 'Stats19Casualty'))",
                &[&sha256],
            )?
            .get(0))
    }

    fn now(&mut self) -> DbResult<String> {
        Ok(self
            .tx
            .query_one(
                "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
                &[],
            )?
            .get(0))
    }

    fn locations(&mut self, f: &mut dyn FnMut(i64, i32, i32, String)) -> DbResult<()> {
        let reader = self.tx.copy_out(
            "COPY (SELECT id, lon_e7, lat_e7, lsoa_code FROM locations) TO STDOUT (FORMAT binary)",
        )?;
        let mut rows =
            BinaryCopyOutIter::new(reader, &[Type::INT8, Type::INT4, Type::INT4, Type::TEXT]);
        while let Some(r) = rows.next()? {
            f(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
        }
        Ok(())
    }

    fn next_ids(&mut self) -> DbResult<[i64; 3]> {
        let r = self.tx.query_one(
            "SELECT (SELECT coalesce(max(id), 0) + 1 FROM ingest_log),
                    (SELECT coalesce(max(id), 0) + 1 FROM locations),
                    (SELECT coalesce(max(id), 0) + 1 FROM batches)",
            &[],
        )?;
        let ingest_id: i64 = r.get(0);
        self.ingest_id = Some(ingest_id);
        Ok([ingest_id, r.get(1), r.get(2)])
    }

    fn insert_location(
        &mut self,
        id: i64,
        lon_e7: i32,
        lat_e7: i32,
        street: &str,
        code: &str,
    ) -> DbResult<()> {
        self.locations
            .push((id, lon_e7, lat_e7, street.to_owned(), code.to_owned()));
        self.flush_if_full()
    }

    fn insert_incident(&mut self, r: &IncidentRow<'_>) -> DbResult<()> {
        match r.key {
            Some((source, key)) => {
                self.keyed
                    .push((Plain::of(r), source.to_owned(), key.to_owned()));
            }
            None => self.plain.push(Plain::of(r)),
        }
        self.flush_if_full()
    }

    fn batch(&mut self, key: &str) -> DbResult<Option<(i64, i64)>> {
        Ok(self
            .tx
            .query_opt("SELECT id, rows FROM batches WHERE key = $1", &[&key])?
            .map(|r| (r.get(0), r.get(1))))
    }

    fn delete_batch(&mut self, id: i64) -> DbResult<()> {
        self.tx.execute(
            "DELETE FROM incidents WHERE id >= $1 AND id < $2",
            &[&(id << 32), &((id + 1) << 32)],
        )?;
        self.tx
            .execute("DELETE FROM batches WHERE id = $1", &[&id])?;
        Ok(())
    }

    fn cover(&mut self, dataset: &str, force: &str, month: u16, ingest_id: i64) -> DbResult<()> {
        self.tx.execute(
            "INSERT INTO coverage (dataset, force, month, ingest_id) VALUES ($1, $2, $3, $4)
             ON CONFLICT (dataset, force, month) DO UPDATE SET ingest_id = excluded.ingest_id",
            &[&dataset, &force, &i32::from(month), &ingest_id],
        )?;
        Ok(())
    }

    fn insert_batch(&mut self, id: i64, key: &str, ingest_id: i64, rows: i64) -> DbResult<()> {
        self.tx.execute(
            "INSERT INTO batches (id, key, ingest_id, rows) VALUES ($1, $2, $3, $4)",
            &[&id, &key, &ingest_id, &rows],
        )?;
        Ok(())
    }

    fn set_outcome(&mut self, crime_id: &str, outcome: &str, month: u16) -> DbResult<OutcomeMatch> {
        self.flush()?;
        if !self.crime_id_index {
            self.tx.batch_execute(
                "CREATE INDEX IF NOT EXISTS incidents_crime_id ON incidents (crime_id) WHERE crime_id <> ''",
            )?;
            self.crime_id_index = true;
        }
        let month = i32::from(month);
        let changed = self.tx.execute(
            "UPDATE incidents SET outcome = $2, outcome_month = $3
             WHERE crime_id = $1 AND crime_id <> '' AND coalesce(outcome_month, -1) <= $3",
            &[&crime_id, &outcome, &month],
        )?;
        if changed > 0 {
            return Ok(OutcomeMatch::Updated);
        }
        let known: bool = self
            .tx
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM incidents WHERE crime_id = $1 AND crime_id <> '')",
                &[&crime_id],
            )?
            .get(0);
        Ok(if known {
            OutcomeMatch::Older
        } else {
            OutcomeMatch::Unmatched
        })
    }

    fn clear_searches(&mut self, batch: &str) -> DbResult<u64> {
        Ok(self
            .tx
            .execute("DELETE FROM stop_searches WHERE batch = $1", &[&batch])?)
    }

    fn insert_search(&mut self, s: &SearchRow<'_>) -> DbResult<()> {
        self.tx.execute(
            "INSERT INTO stop_searches (batch, ingest_id, month, day, minute, lon_e7, lat_e7, type, object, outcome, legislation)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &s.batch,
                &s.ingest_id,
                &i32::from(s.month),
                &s.day,
                &s.minute.map(i32::from),
                &s.lon_e7,
                &s.lat_e7,
                &s.kind,
                &s.object,
                &s.outcome,
                &s.legislation,
            ],
        )?;
        Ok(())
    }

    fn collision(&mut self, index: &str) -> DbResult<Option<Collision>> {
        self.flush()?;
        let row = self.tx.query_opt(
            "SELECT month, day, minute, loc FROM incidents WHERE source = 'stats19' AND ext_key = $1",
            &[&index],
        )?;
        Ok(row.map(|r| Collision {
            month: u16::try_from(r.get::<_, i32>(0)).unwrap_or(u16::MAX),
            day: r.get(1),
            minute: r
                .get::<_, Option<i32>>(2)
                .and_then(|m| u16::try_from(m).ok()),
            loc: r.get(3),
        }))
    }

    fn upsert_casualty(&mut self, incident: &IncidentRow<'_>, c: &CasualtyRow<'_>) -> DbResult<()> {
        self.insert_incident(incident)?;
        self.flush()?;
        let (source, key) = incident.key.unwrap_or_default();
        let incident_id: i64 = self
            .tx
            .query_one(
                "SELECT id FROM incidents WHERE source = $1 AND ext_key = $2",
                &[&source, &key],
            )?
            .get(0);
        self.tx.execute(
            "INSERT INTO casualties (collision_index, vehicle_reference, casualty_reference, incident_id,
                 casualty_class, casualty_severity, casualty_type, road_user, age, age_band, child,
                 adjusted_serious, adjusted_slight)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (collision_index, vehicle_reference, casualty_reference) DO UPDATE SET
             incident_id = excluded.incident_id, casualty_class = excluded.casualty_class,
             casualty_severity = excluded.casualty_severity, casualty_type = excluded.casualty_type,
             road_user = excluded.road_user, age = excluded.age, age_band = excluded.age_band,
             child = excluded.child, adjusted_serious = excluded.adjusted_serious,
             adjusted_slight = excluded.adjusted_slight",
            &[
                &c.collision_index,
                &c.vehicle_reference,
                &c.casualty_reference,
                &incident_id,
                &c.casualty_class,
                &i32::from(c.severity),
                &c.casualty_type,
                &i32::from(c.road_user),
                &c.age,
                &c.age_band,
                &c.child,
                &c.adjusted_serious,
                &c.adjusted_slight,
            ],
        )?;
        Ok(())
    }

    fn log_ingest(&mut self, row: &LogRow<'_>) -> DbResult<()> {
        self.flush()?;
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.tx.execute(
            "INSERT INTO ingest_log (id, file, sha256, format, started, rows_read, stored, replaced, unlocated, rejected)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &row.id,
                &row.file,
                &row.sha256,
                &row.format,
                &row.started,
                &n(row.rows_read),
                &n(row.stored),
                &n(row.replaced),
                &n(row.unlocated),
                &n(row.rejected),
            ],
        )?;
        Ok(())
    }
}

/// The last ingest id (0 for an empty store): the store's version, the same on every
/// replica that has read it.
///
/// # Errors
/// On a database failure.
pub fn version(client: &mut Client) -> Result<i64, postgres::Error> {
    Ok(client
        .query_one("SELECT coalesce(max(id), 0) FROM ingest_log", &[])?
        .get(0))
}

/// Reads the rows of a binary `COPY ... TO STDOUT` whose `N` columns are all `int8` and
/// never NULL, calling `f` with each row: PostgreSQL's binary copy format (a signature,
/// flags and header extension, then per row a field count and each field's length and
/// big-endian bytes, then -1), parsed without a row object.
///
/// # Errors
/// A read failure, or a stream that is not such rows.
pub fn int8_rows<const N: usize>(
    reader: impl std::io::Read,
    mut f: impl FnMut([i64; N]),
) -> std::io::Result<()> {
    use std::io::{BufRead as _, Error, ErrorKind, Read as _};
    let bad = |what: &str| Error::new(ErrorKind::InvalidData, format!("binary COPY: {what}"));
    let mut r = std::io::BufReader::with_capacity(1 << 16, reader);
    let mut head = [0u8; 19];
    r.read_exact(&mut head)?;
    if &head[..11] != b"PGCOPY\n\xff\r\n\0" {
        return Err(bad("no signature"));
    }
    let ext = u32::from_be_bytes([head[15], head[16], head[17], head[18]]);
    std::io::copy(&mut (&mut r).take(u64::from(ext)), &mut std::io::sink())?;
    const FIELD: usize = 4 + 8;
    let row_len = 2 + N * FIELD;
    let mut row = [0i64; N];
    loop {
        let buf = r.fill_buf()?;
        if buf.len() >= row_len {
            // Whole rows straight from the buffer.
            let mut used = 0;
            while buf.len() - used >= row_len {
                let b = &buf[used..used + row_len];
                let count = i16::from_be_bytes([b[0], b[1]]);
                if count == -1 {
                    return Ok(());
                }
                if count as usize != N {
                    return Err(bad("unexpected field count"));
                }
                for (k, v) in row.iter_mut().enumerate() {
                    let at = 2 + k * FIELD;
                    if b[at..at + 4] != 8i32.to_be_bytes() {
                        return Err(bad("a field that is not a non-null int8"));
                    }
                    let mut x = [0u8; 8];
                    x.copy_from_slice(&b[at + 4..at + 12]);
                    *v = i64::from_be_bytes(x);
                }
                f(row);
                used += row_len;
            }
            r.consume(used);
            continue;
        }
        // A row split across reads (or the trailer).
        let mut count = [0u8; 2];
        r.read_exact(&mut count)?;
        let count = i16::from_be_bytes(count);
        if count == -1 {
            return Ok(());
        }
        if count as usize != N {
            return Err(bad("unexpected field count"));
        }
        for v in &mut row {
            let mut field = [0u8; FIELD];
            r.read_exact(&mut field)?;
            if field[..4] != 8i32.to_be_bytes() {
                return Err(bad("a field that is not a non-null int8"));
            }
            let mut x = [0u8; 8];
            x.copy_from_slice(&field[4..]);
            *v = i64::from_be_bytes(x);
        }
        f(row);
    }
}

/// Reads a query's rows through binary `COPY`, `types` naming its columns' types.
///
/// # Errors
/// On a database failure or a type mismatch.
pub(crate) fn copy_rows(
    client: &mut impl postgres::GenericClient,
    query: &str,
    types: &[Type],
    mut f: impl FnMut(&postgres::binary_copy::BinaryCopyOutRow) -> Result<(), postgres::Error>,
) -> Result<(), postgres::Error> {
    let reader = client.copy_out(&format!("COPY ({query}) TO STDOUT (FORMAT binary)"))?;
    let mut rows = BinaryCopyOutIter::new(reader, types);
    while let Some(r) = rows.next()? {
        f(&r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{int8_rows, redact};

    /// A reader that hands out at most `n` bytes a call, so rows split across reads.
    struct Trickle<'a>(&'a [u8], usize);

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn copy_stream(rows: &[[i64; 2]], ext: &[u8]) -> Vec<u8> {
        let mut b = b"PGCOPY\n\xff\r\n\0".to_vec();
        b.extend(0u32.to_be_bytes());
        b.extend((ext.len() as u32).to_be_bytes());
        b.extend(ext);
        for r in rows {
            b.extend(2i16.to_be_bytes());
            for v in r {
                b.extend(8i32.to_be_bytes());
                b.extend(v.to_be_bytes());
            }
        }
        b.extend((-1i16).to_be_bytes());
        b
    }

    #[test]
    fn int8_rows_reads_every_row_however_the_stream_is_cut() {
        let rows: Vec<[i64; 2]> = (0..5000i64)
            .map(|i| [i * 7 - 3, i64::MIN + i * 1_000_003])
            .collect();
        let bytes = copy_stream(&rows, b"ext!");
        for chunk in [1, 3, 25, 26, 27, 4096, usize::MAX] {
            let mut got = Vec::new();
            int8_rows(Trickle(&bytes, chunk), |r: [i64; 2]| got.push(r)).unwrap();
            assert_eq!(got, rows, "chunk {chunk}");
        }
        // Not such a stream: refused, never misread.
        let mut wrong = copy_stream(&rows[..2], b"");
        wrong[19 + 2..19 + 6].copy_from_slice(&4i32.to_be_bytes());
        assert!(int8_rows(&wrong[..], |_: [i64; 2]| {}).is_err());
        assert!(int8_rows(&bytes[..bytes.len() - 2], |_: [i64; 2]| {}).is_err());
        assert!(int8_rows(&b"PGCOPY"[..], |_: [i64; 2]| {}).is_err());
        assert!(int8_rows(&bytes[..], |_: [i64; 3]| {}).is_err());
    }

    #[test]
    fn redact_drops_the_password_only() {
        assert_eq!(
            redact("postgresql://ana:s3cret@db.example:5433/hotspot?sslmode=disable"),
            "postgresql://ana@db.example:5433/hotspot"
        );
        assert_eq!(
            redact("postgresql://ana@127.0.0.1/hotspot"),
            "postgresql://ana@127.0.0.1/hotspot"
        );
        assert_eq!(
            redact("postgres://localhost/hotspot"),
            "postgres://localhost/hotspot"
        );
        assert_eq!(redact("postgresql://u:p@ss:w@h/db"), "postgresql://u@h/db");
    }
}
