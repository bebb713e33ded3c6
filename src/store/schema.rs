//! Schema and connection settings.

use rusqlite::Connection;

pub const SCHEMA_VERSION: i64 = 3;

pub fn init(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "store schema version {version} is newer than this hotspot ({SCHEMA_VERSION})"
        )));
    }
    if version == 1 {
        // Version 2 keys a location by coordinate and the record's LSOA code (police.uk
        // moved to 2021 codes in June 2023, so one snap point can carry two codes).
        conn.execute_batch(
            "BEGIN;
            CREATE TABLE locations_v2 (
                id INTEGER PRIMARY KEY,
                lon_e7 INTEGER NOT NULL,
                lat_e7 INTEGER NOT NULL,
                street TEXT NOT NULL DEFAULT '',
                lsoa_code TEXT NOT NULL DEFAULT '',
                UNIQUE (lon_e7, lat_e7, lsoa_code)
            );
            INSERT INTO locations_v2 (id, lon_e7, lat_e7, street)
                SELECT id, lon_e7, lat_e7, street FROM locations;
            DROP TABLE locations;
            ALTER TABLE locations_v2 RENAME TO locations;
            PRAGMA user_version = 2;
            COMMIT;",
        )?;
    }
    conn.execute_batch(
        "BEGIN;
        CREATE TABLE IF NOT EXISTS locations (
            id INTEGER PRIMARY KEY,
            lon_e7 INTEGER NOT NULL,
            lat_e7 INTEGER NOT NULL,
            street TEXT NOT NULL DEFAULT '',
            lsoa_code TEXT NOT NULL DEFAULT '',
            UNIQUE (lon_e7, lat_e7, lsoa_code)
        );
        CREATE TABLE IF NOT EXISTS batches (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            ingest_id INTEGER NOT NULL,
            rows INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS incidents (
            id INTEGER PRIMARY KEY,
            month INTEGER NOT NULL,
            ctype INTEGER NOT NULL,
            severity INTEGER NOT NULL DEFAULT 0,
            loc INTEGER,
            source TEXT,
            ext_key TEXT,
            crime_id TEXT NOT NULL DEFAULT '',
            outcome TEXT NOT NULL DEFAULT ''
        );
        CREATE UNIQUE INDEX IF NOT EXISTS incidents_key ON incidents (source, ext_key)
            WHERE ext_key IS NOT NULL;
        CREATE TABLE IF NOT EXISTS ingest_log (
            id INTEGER PRIMARY KEY,
            file TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            format TEXT NOT NULL,
            started TEXT NOT NULL,
            finished TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            rows_read INTEGER NOT NULL,
            stored INTEGER NOT NULL,
            replaced INTEGER NOT NULL,
            unlocated INTEGER NOT NULL,
            rejected INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS ingest_log_sha ON ingest_log (sha256);
        CREATE TABLE IF NOT EXISTS coverage (
            dataset TEXT NOT NULL,
            force TEXT NOT NULL,
            month INTEGER NOT NULL,
            ingest_id INTEGER NOT NULL,
            PRIMARY KEY (dataset, force, month)
        ) WITHOUT ROWID;
        COMMIT;",
    )?;
    additions(conn)?;
    if version < 3 {
        // Version 3 records which force-months each dataset covers (`crate::coverage`);
        // a store written before it gets its coverage back from the rows it holds. A
        // fresh store (version 0) has none to find.
        let tx = conn.unchecked_transaction()?;
        backfill_coverage(&tx)?;
        tx.execute_batch("PRAGMA user_version = 3;")?;
        tx.commit()?;
    }
    Ok(())
}

/// Coverage of the files already stored: each police.uk batch is a (force, month); each
/// other file's rows (its batch of row ids) cover the months from their earliest to
/// their latest, under the dataset of the file's logged format.
fn backfill_coverage(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    use crate::coverage::Dataset;
    let batches: Vec<(i64, String, i64, Option<String>)> = {
        let mut q = tx.prepare(
            "SELECT b.id, b.key, b.ingest_id, l.format FROM batches b
             LEFT JOIN ingest_log l ON l.id = b.ingest_id ORDER BY b.id",
        )?;
        q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?
    };
    let mut ins = tx.prepare(
        "INSERT INTO coverage (dataset, force, month, ingest_id) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (dataset, force, month) DO UPDATE SET ingest_id = max(ingest_id, excluded.ingest_id)",
    )?;
    let mut span =
        tx.prepare("SELECT min(month), max(month) FROM incidents WHERE id >= ?1 AND id < ?2")?;
    for (id, key, ingest_id, format) in batches {
        if let Some(rest) = key.strip_prefix("police|") {
            if let Some((force, month)) = rest.rsplit_once('|')
                && let Ok(month) = month.parse::<i64>()
            {
                ins.execute(rusqlite::params![
                    Dataset::PoliceUk.name(),
                    force,
                    month,
                    ingest_id
                ])?;
            }
            continue;
        }
        let dataset = match format.as_deref() {
            Some("Stats19") => Dataset::Stats19,
            Some("Generic" | "GeoJson") => Dataset::Generic,
            _ => continue,
        };
        let (lo, hi): (Option<i64>, Option<i64>) =
            span.query_row([id << 32, (id + 1) << 32], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if let (Some(lo), Some(hi)) = (lo, hi) {
            for m in lo..=hi {
                ins.execute(rusqlite::params![dataset.name(), "", m, ingest_id])?;
            }
        }
    }
    Ok(())
}

/// Columns and tables added since schema 1, all additive (nullable columns, new tables)
/// so a store written before them opens and keeps working: `day` (days since 1970-01-01)
/// and `minute` (of the day) where the source gives a date and time (STATS19, generic
/// CSVs; NULL for police.uk months), `outcome_month` (the month of the police.uk
/// outcomes file that set `outcome`; NULL when it came with the street file), STATS19
/// casualties and police.uk stop and search.
fn additions(conn: &Connection) -> rusqlite::Result<()> {
    for (column, decl) in [
        ("day", "INTEGER"),
        ("minute", "INTEGER"),
        ("outcome_month", "INTEGER"),
    ] {
        let present: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM pragma_table_info('incidents') WHERE name = ?1)",
            [column],
            |r| r.get(0),
        )?;
        if !present {
            conn.execute_batch(&format!("ALTER TABLE incidents ADD COLUMN {column} {decl}"))?;
        }
    }
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS casualties (
            collision_index TEXT NOT NULL,
            vehicle_reference INTEGER NOT NULL,
            casualty_reference INTEGER NOT NULL,
            incident_id INTEGER NOT NULL,
            casualty_class INTEGER,
            casualty_severity INTEGER NOT NULL,
            casualty_type INTEGER,
            road_user INTEGER NOT NULL,
            age INTEGER,
            age_band INTEGER,
            child INTEGER,
            adjusted_serious REAL,
            adjusted_slight REAL,
            PRIMARY KEY (collision_index, vehicle_reference, casualty_reference)
        );
        CREATE TABLE IF NOT EXISTS stop_searches (
            id INTEGER PRIMARY KEY,
            batch TEXT NOT NULL,
            ingest_id INTEGER NOT NULL,
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
        CREATE INDEX IF NOT EXISTS stop_searches_batch ON stop_searches (batch);",
    )
}

/// The index outcomes files look crimes up by, made when the first one is ingested (so
/// a store without outcomes does not pay for it on every insert).
pub const CRIME_ID_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS incidents_crime_id ON incidents (crime_id) WHERE crime_id <> ''";
