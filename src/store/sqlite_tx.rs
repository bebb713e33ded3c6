//! The SQLite statements of one file's transaction (`backend::WriteTx`).

use rusqlite::{CachedStatement, OptionalExtension, Transaction, params};

use super::backend::{CasualtyRow, Collision, DbResult, IncidentRow, LogRow, SearchRow, WriteTx};
use crate::ingest::OutcomeMatch;

pub(crate) struct SqliteTx<'t> {
    tx: &'t Transaction<'t>,
    crime_id_index: bool,
    plain: CachedStatement<'t>,
    keyed: CachedStatement<'t>,
    new_location: CachedStatement<'t>,
}

impl<'t> SqliteTx<'t> {
    pub(crate) fn new(tx: &'t Transaction<'t>) -> rusqlite::Result<Self> {
        Ok(SqliteTx {
            tx,
            crime_id_index: false,
            plain: tx.prepare_cached(
                "INSERT INTO incidents (id, month, ctype, severity, loc, crime_id, outcome, day, minute) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?,
            keyed: tx.prepare_cached(
                "INSERT INTO incidents (id, month, ctype, severity, loc, crime_id, outcome, source, ext_key, day, minute)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (source, ext_key) WHERE ext_key IS NOT NULL DO UPDATE SET
                 month = excluded.month, ctype = excluded.ctype, severity = excluded.severity,
                 loc = excluded.loc, crime_id = excluded.crime_id, outcome = excluded.outcome,
                 day = excluded.day, minute = excluded.minute",
            )?,
            new_location: tx.prepare_cached("INSERT INTO locations (id, lon_e7, lat_e7, street, lsoa_code) VALUES (?1, ?2, ?3, ?4, ?5)")?,
        })
    }
}

impl WriteTx for SqliteTx<'_> {
    fn seen(&mut self, sha256: &str) -> DbResult<bool> {
        Ok(self.tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM ingest_log WHERE sha256 = ?1
                 AND format NOT IN ('PoliceOutcomes', 'Stats19Casualty'))",
            [sha256],
            |r| r.get(0),
        )?)
    }

    fn now(&mut self) -> DbResult<String> {
        Ok(self
            .tx
            .query_row("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", [], |r| {
                r.get(0)
            })?)
    }

    fn locations(&mut self, f: &mut dyn FnMut(i64, i32, i32, String)) -> DbResult<()> {
        let mut q = self
            .tx
            .prepare("SELECT id, lon_e7, lat_e7, lsoa_code FROM locations")?;
        let mut rows = q.query([])?;
        while let Some(r) = rows.next()? {
            f(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        }
        Ok(())
    }

    fn next_ids(&mut self) -> DbResult<[i64; 3]> {
        let max = |t: &str| -> rusqlite::Result<i64> {
            self.tx
                .query_row(&format!("SELECT coalesce(max(id), 0) FROM {t}"), [], |r| {
                    r.get(0)
                })
        };
        Ok([
            max("ingest_log")? + 1,
            max("locations")? + 1,
            max("batches")? + 1,
        ])
    }

    fn insert_location(
        &mut self,
        id: i64,
        lon_e7: i32,
        lat_e7: i32,
        street: &str,
        code: &str,
    ) -> DbResult<()> {
        self.new_location
            .execute(params![id, lon_e7, lat_e7, street, code])?;
        Ok(())
    }

    fn insert_incident(&mut self, r: &IncidentRow<'_>) -> DbResult<()> {
        match r.key {
            Some((source, key)) => self.keyed.execute(params![
                r.id, r.month, r.ctype, r.severity, r.loc, r.crime_id, r.outcome, source, key,
                r.day, r.minute
            ])?,
            None => self.plain.execute(params![
                r.id, r.month, r.ctype, r.severity, r.loc, r.crime_id, r.outcome, r.day, r.minute
            ])?,
        };
        Ok(())
    }

    fn batch(&mut self, key: &str) -> DbResult<Option<(i64, i64)>> {
        Ok(self
            .tx
            .query_row("SELECT id, rows FROM batches WHERE key = ?1", [key], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?)
    }

    fn delete_batch(&mut self, id: i64) -> DbResult<()> {
        self.tx.execute(
            "DELETE FROM incidents WHERE id >= ?1 AND id < ?2",
            params![id << 32, (id + 1) << 32],
        )?;
        self.tx.execute("DELETE FROM batches WHERE id = ?1", [id])?;
        Ok(())
    }

    fn cover(&mut self, dataset: &str, force: &str, month: u16, ingest_id: i64) -> DbResult<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO coverage (dataset, force, month, ingest_id) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (dataset, force, month) DO UPDATE SET ingest_id = excluded.ingest_id",
            )?
            .execute(params![dataset, force, month, ingest_id])?;
        Ok(())
    }

    fn insert_batch(&mut self, id: i64, key: &str, ingest_id: i64, rows: i64) -> DbResult<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO batches (id, key, ingest_id, rows) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, key, ingest_id, rows])?;
        Ok(())
    }

    fn set_outcome(&mut self, crime_id: &str, outcome: &str, month: u16) -> DbResult<OutcomeMatch> {
        if !self.crime_id_index {
            self.tx.execute_batch(super::schema::CRIME_ID_INDEX)?;
            self.crime_id_index = true;
        }
        let changed = self
            .tx
            .prepare_cached(
                "UPDATE incidents SET outcome = ?2, outcome_month = ?3
                 WHERE crime_id = ?1 AND crime_id <> '' AND coalesce(outcome_month, -1) <= ?3",
            )?
            .execute(params![crime_id, outcome, month])?;
        if changed > 0 {
            return Ok(OutcomeMatch::Updated);
        }
        let known: bool = self
            .tx
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM incidents WHERE crime_id = ?1 AND crime_id <> '')",
            )?
            .query_row([crime_id], |r| r.get(0))?;
        Ok(if known {
            OutcomeMatch::Older
        } else {
            OutcomeMatch::Unmatched
        })
    }

    fn clear_searches(&mut self, batch: &str) -> DbResult<u64> {
        let n = self
            .tx
            .execute("DELETE FROM stop_searches WHERE batch = ?1", [batch])?;
        Ok(n as u64)
    }

    fn insert_search(&mut self, s: &SearchRow<'_>) -> DbResult<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO stop_searches (batch, ingest_id, month, day, minute, lon_e7, lat_e7, type, object, outcome, legislation)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                s.batch,
                s.ingest_id,
                s.month,
                s.day,
                s.minute,
                s.lon_e7,
                s.lat_e7,
                s.kind,
                s.object,
                s.outcome,
                s.legislation,
            ])?;
        Ok(())
    }

    fn collision(&mut self, index: &str) -> DbResult<Option<Collision>> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT month, day, minute, loc FROM incidents WHERE source = 'stats19' AND ext_key = ?1",
            )?
            .query_row([index], |r| {
                Ok(Collision {
                    month: r.get(0)?,
                    day: r.get(1)?,
                    minute: r.get(2)?,
                    loc: r.get(3)?,
                })
            })
            .optional()?)
    }

    fn upsert_casualty(&mut self, incident: &IncidentRow<'_>, c: &CasualtyRow<'_>) -> DbResult<()> {
        self.insert_incident(incident)?;
        let (source, key) = incident.key.unwrap_or_default();
        // The upsert keeps the row id of an earlier ingest of the same casualty.
        let incident_id: i64 = self
            .tx
            .prepare_cached("SELECT id FROM incidents WHERE source = ?1 AND ext_key = ?2")?
            .query_row(params![source, key], |r| r.get(0))?;
        self.tx
            .prepare_cached(
                "INSERT INTO casualties (collision_index, vehicle_reference, casualty_reference, incident_id,
                     casualty_class, casualty_severity, casualty_type, road_user, age, age_band, child,
                     adjusted_serious, adjusted_slight)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT (collision_index, vehicle_reference, casualty_reference) DO UPDATE SET
                 incident_id = excluded.incident_id, casualty_class = excluded.casualty_class,
                 casualty_severity = excluded.casualty_severity, casualty_type = excluded.casualty_type,
                 road_user = excluded.road_user, age = excluded.age, age_band = excluded.age_band,
                 child = excluded.child, adjusted_serious = excluded.adjusted_serious,
                 adjusted_slight = excluded.adjusted_slight",
            )?
            .execute(params![
                c.collision_index,
                c.vehicle_reference,
                c.casualty_reference,
                incident_id,
                c.casualty_class,
                c.severity,
                c.casualty_type,
                c.road_user,
                c.age,
                c.age_band,
                c.child,
                c.adjusted_serious,
                c.adjusted_slight,
            ])?;
        Ok(())
    }

    fn log_ingest(&mut self, row: &LogRow<'_>) -> DbResult<()> {
        self.tx.execute(
            "INSERT INTO ingest_log (id, file, sha256, format, started, rows_read, stored, replaced, unlocated, rejected)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                row.id,
                row.file,
                row.sha256,
                row.format,
                row.started,
                row.rows_read,
                row.stored,
                row.replaced,
                row.unlocated,
                row.rejected
            ],
        )?;
        Ok(())
    }
}
