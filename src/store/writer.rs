//! Writing one file into the store inside one transaction.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rusqlite::{CachedStatement, OptionalExtension, Transaction, params};
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

use super::Store;
use crate::ingest::{
    self, Casualty, FileStats, Format, Identity, IngestError, Joined, Outcome, OutcomeMatch,
    Record, Reject, Sink, Source, StopSearch,
};

/// What ingesting one file did.
#[derive(Debug, Clone, Default)]
pub struct IngestSummary {
    pub file: String,
    pub format: String,
    pub sha256: String,
    /// True when the same bytes were ingested before, so nothing was done.
    pub unchanged: bool,
    pub rows_read: u64,
    pub stored: u64,
    /// Rows of earlier ingests replaced by this one (police.uk force-months).
    pub replaced: u64,
    pub unlocated: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub rejects: Vec<Reject>,
    /// police.uk outcomes files: crimes whose outcome was set, crimes whose stored outcome
    /// is of a later month (kept), and Crime IDs not in the store.
    pub outcomes_updated: u64,
    pub outcomes_older: u64,
    pub outcomes_unmatched: u64,
    /// police.uk stop-and-search records stored (their own table, not incidents).
    pub searches: u64,
    /// STATS19 casualties stored (also in `stored`: each is an incident of its road-user
    /// group's type).
    pub casualties: u64,
    /// Rows read but not stored, and why (should not happen through the store).
    pub skipped: u64,
    pub skipped_reason: Option<String>,
}

/// Packs a coordinate as the location key (1e-7 degree, about 1 cm).
pub fn location_key(lon: f64, lat: f64) -> (i32, i32) {
    (crate::model::to_e7(lon), crate::model::to_e7(lat))
}

fn pack(k: (i32, i32)) -> u64 {
    (u64::from(k.0 as u32) << 32) | u64::from(k.1 as u32)
}

impl Store {
    /// Ingests one source (file or archive entry) as one transaction.
    ///
    /// # Errors
    /// When the source cannot be read, its header is unusable, or the database fails;
    /// the store is then unchanged.
    pub fn ingest_source(
        &mut self,
        src: &Source,
        format: Option<Format>,
    ) -> Result<IngestSummary, IngestError> {
        let bytes = src.read()?;
        self.ingest_bytes(&src.name(), &bytes, format)
    }

    /// Ingests the bytes of one file named `file` as one transaction.
    ///
    /// # Errors
    /// As [`Store::ingest_source`].
    pub fn ingest_bytes(
        &mut self,
        file: &str,
        bytes: &[u8],
        format: Option<Format>,
    ) -> Result<IngestSummary, IngestError> {
        self.ingest_hashed(file, bytes, sha256_hex(bytes), format)
    }

    /// Ingests several sources in order, one transaction each, reading and checksumming
    /// the next file on another thread while this one is written. `each` sees every
    /// file's outcome as it completes; a failed file leaves the store unchanged for it
    /// and the rest still go in.
    pub fn ingest_sources(
        &mut self,
        sources: &[Source],
        format: Option<Format>,
        mut each: impl FnMut(&Source, Result<IngestSummary, IngestError>),
    ) {
        type Read = Result<(Vec<u8>, String), IngestError>;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Read>(1);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                for src in sources {
                    let read = src.read().map(|b| {
                        let sha = sha256_hex(&b);
                        (b, sha)
                    });
                    if tx.send(read).is_err() {
                        break;
                    }
                }
            });
            for (src, read) in sources.iter().zip(rx.iter()) {
                let result = read
                    .and_then(|(bytes, sha)| self.ingest_hashed(&src.name(), &bytes, sha, format));
                each(src, result);
            }
        });
    }

    fn ingest_hashed(
        &mut self,
        file: &str,
        bytes: &[u8],
        sha256: String,
        format: Option<Format>,
    ) -> Result<IngestSummary, IngestError> {
        let sql = |e: rusqlite::Error| IngestError::Store {
            file: file.to_owned(),
            reason: e.to_string(),
        };
        // Files that update or join rows of other files (police.uk outcomes, STATS19
        // casualties) are applied again even when seen: what they match depends on what
        // was stored since (a casualty file read before its collisions), and applying
        // them twice changes nothing (latest month wins; upsert by casualty).
        let seen: bool = self
            .conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM ingest_log WHERE sha256 = ?1
                     AND format NOT IN ('PoliceOutcomes', 'Stats19Casualty'))",
                [&sha256],
                |r| r.get(0),
            )
            .map_err(sql)?;
        if seen {
            return Ok(IngestSummary {
                file: file.to_owned(),
                sha256,
                unchanged: true,
                ..Default::default()
            });
        }
        let format = match format {
            Some(f) => f,
            None => ingest::detect_format(file, bytes)?,
        };
        let started: String = self
            .conn
            .query_row("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", [], |r| {
                r.get(0)
            })
            .map_err(sql)?;
        let tx = self.conn.transaction().map_err(sql)?;
        let dataset = crate::coverage::Dataset::of_format(format);
        let mut w = TxWriter::new(&tx, file, &sha256, dataset).map_err(sql)?;
        let stats = ingest::parse_bytes(file, bytes, Some(format), &mut w)?;
        let replaced = w.finish().map_err(sql)?;
        let FileStats {
            rows_read,
            records,
            unlocated,
            rejected,
            rejected_by_reason,
            rejects,
            outcomes_updated,
            outcomes_older,
            outcomes_unmatched,
            searches,
            casualties,
            skipped,
            skipped_reason,
        } = stats;
        tx.execute(
            "INSERT INTO ingest_log (file, sha256, format, started, rows_read, stored, replaced, unlocated, rejected)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![file, sha256, format!("{format:?}"), started, rows_read, records, replaced, unlocated, rejected],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(IngestSummary {
            file: file.to_owned(),
            format: format!("{format:?}"),
            sha256,
            unchanged: false,
            rows_read,
            stored: records,
            replaced,
            unlocated,
            rejected,
            rejected_by_reason,
            rejects,
            outcomes_updated,
            outcomes_older,
            outcomes_unmatched,
            searches,
            casualties,
            skipped,
            skipped_reason,
        })
    }
}

struct OpenBatch {
    id: i64,
    rows: i64,
}

/// The sink that writes records inside the file's transaction.
struct TxWriter<'t> {
    tx: &'t Transaction<'t>,
    file: String,
    sha256: String,
    ingest_id: i64,
    /// coordinate -> (LSOA code, location id) for each code seen there (usually one).
    locations: FxHashMap<u64, Vec<(Box<str>, i64)>>,
    next_location: i64,
    next_batch: i64,
    batches: Vec<(String, u16, OpenBatch)>,
    file_batch: Option<OpenBatch>,
    replaced: u64,
    /// The stop-and-search batches this file already cleared of an earlier ingest's rows.
    search_batches: Vec<String>,
    crime_id_index: bool,
    /// The dataset the file's incidents belong to (`crate::coverage`), and the first and
    /// last month of its records that name no police.uk (force, month).
    dataset: Option<crate::coverage::Dataset>,
    span: Option<(u16, u16)>,
    plain: CachedStatement<'t>,
    keyed: CachedStatement<'t>,
    new_location: CachedStatement<'t>,
}

impl<'t> TxWriter<'t> {
    fn new(
        tx: &'t Transaction<'t>,
        file: &str,
        sha256: &str,
        dataset: Option<crate::coverage::Dataset>,
    ) -> rusqlite::Result<Self> {
        let mut locations = FxHashMap::default();
        {
            let mut q = tx.prepare("SELECT id, lon_e7, lat_e7, lsoa_code FROM locations")?;
            let mut rows = q.query([])?;
            while let Some(r) = rows.next()? {
                let code: String = r.get(3)?;
                locations
                    .entry(pack((r.get(1)?, r.get(2)?)))
                    .or_insert_with(Vec::new)
                    .push((code.into(), r.get(0)?));
            }
        }
        let max = |t: &str| -> rusqlite::Result<i64> {
            tx.query_row(&format!("SELECT coalesce(max(id), 0) FROM {t}"), [], |r| {
                r.get(0)
            })
        };
        Ok(TxWriter {
            tx,
            file: file.to_owned(),
            sha256: sha256.to_owned(),
            ingest_id: max("ingest_log")? + 1,
            next_location: max("locations")? + 1,
            next_batch: max("batches")? + 1,
            locations,
            batches: Vec::new(),
            file_batch: None,
            replaced: 0,
            search_batches: Vec::new(),
            crime_id_index: false,
            dataset,
            span: None,
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

    fn location(&mut self, rec: &Record<'_>) -> rusqlite::Result<Option<i64>> {
        let Some((lon, lat)) = rec.point else {
            return Ok(None);
        };
        let key = location_key(lon, lat);
        let code = rec.lsoa_code.decode();
        let code = code.as_ref();
        let found = self.locations.get(&pack(key)).and_then(|v| {
            v.iter()
                .find(|(c, _)| c.as_ref() == code)
                .map(|&(_, id)| id)
        });
        if let Some(id) = found {
            return Ok(Some(id));
        }
        let id = self.next_location;
        self.next_location += 1;
        self.new_location.execute(params![
            id,
            key.0,
            key.1,
            rec.location.decode().as_ref(),
            code
        ])?;
        self.locations
            .entry(pack(key))
            .or_default()
            .push((code.into(), id));
        Ok(Some(id))
    }

    /// The row id for the next record of a police.uk (force, month), replacing what an
    /// earlier ingest stored for it.
    fn police_id(&mut self, force: &str, month: u16) -> rusqlite::Result<i64> {
        // A file is almost always one (force, month): a linear scan of the open batches
        // finds it without allocating a key per row.
        let found = self
            .batches
            .iter()
            .position(|(f, m, _)| *m == month && f == force);
        let index = match found {
            Some(i) => i,
            None => self.open_police_batch(force, month)?,
        };
        let b = &mut self.batches[index].2;
        let id = (b.id << 32) | b.rows;
        b.rows += 1;
        Ok(id)
    }

    /// Opens a batch for a police.uk (force, month), deleting an earlier ingest's rows.
    fn open_police_batch(&mut self, force: &str, month: u16) -> rusqlite::Result<usize> {
        {
            let name = format!("police|{force}|{month}");
            let old: Option<(i64, i64)> = self
                .tx
                .query_row(
                    "SELECT id, rows FROM batches WHERE key = ?1",
                    [&name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map(Some)
                .or_else(|e| {
                    if e == rusqlite::Error::QueryReturnedNoRows {
                        Ok(None)
                    } else {
                        Err(e)
                    }
                })?;
            if let Some((old_id, old_rows)) = old {
                self.tx.execute(
                    "DELETE FROM incidents WHERE id >= ?1 AND id < ?2",
                    params![old_id << 32, (old_id + 1) << 32],
                )?;
                self.tx
                    .execute("DELETE FROM batches WHERE id = ?1", [old_id])?;
                self.replaced += old_rows as u64;
            }
            let id = self.next_batch;
            self.next_batch += 1;
            self.batches
                .push((force.to_owned(), month, OpenBatch { id, rows: 0 }));
        }
        Ok(self.batches.len() - 1)
    }

    fn file_id(&mut self) -> i64 {
        let b = self.file_batch.get_or_insert_with(|| {
            let id = self.next_batch;
            self.next_batch += 1;
            OpenBatch { id, rows: 0 }
        });
        let id = (b.id << 32) | b.rows;
        b.rows += 1;
        id
    }

    /// Records the batches opened and what the file covers; returns the rows replaced.
    fn finish(self) -> rusqlite::Result<u64> {
        use crate::coverage::Dataset;
        let mut cover = self.tx.prepare_cached(
            "INSERT INTO coverage (dataset, force, month, ingest_id) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (dataset, force, month) DO UPDATE SET ingest_id = excluded.ingest_id",
        )?;
        for (force, month, _) in &self.batches {
            cover.execute(params![
                Dataset::PoliceUk.name(),
                force,
                month,
                self.ingest_id
            ])?;
        }
        if let (Some(d @ (Dataset::Stats19 | Dataset::Generic)), Some((lo, hi))) =
            (self.dataset, self.span)
        {
            for month in lo..=hi {
                cover.execute(params![d.name(), "", month, self.ingest_id])?;
            }
        }
        let mut ins = self.tx.prepare_cached(
            "INSERT INTO batches (id, key, ingest_id, rows) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (force, month, b) in &self.batches {
            ins.execute(params![
                b.id,
                format!("police|{force}|{month}"),
                self.ingest_id,
                b.rows
            ])?;
        }
        if let Some(b) = &self.file_batch {
            // The ingest id keeps the key unique when a joining file (casualties,
            // outcomes) is applied again.
            ins.execute(params![
                b.id,
                format!("file|{}|{}|{}", self.sha256, self.file, self.ingest_id),
                self.ingest_id,
                b.rows
            ])?;
        }
        Ok(self.replaced)
    }

    fn write(&mut self, rec: &Record<'_>) -> rusqlite::Result<()> {
        let loc = self.location(rec)?;
        let (month, ctype, sev) = (rec.month.index(), rec.ctype as u8, rec.severity as u8);
        let (id, key) = match &rec.identity {
            Identity::Batch { force, month: m } => {
                (self.police_id(&force.decode(), m.index())?, None)
            }
            Identity::Key { source, key } => (self.file_id(), Some((*source, key.decode()))),
            Identity::None => (self.file_id(), None),
        };
        if !matches!(rec.identity, Identity::Batch { .. }) {
            self.span = Some(match self.span {
                Some((lo, hi)) => (lo.min(month), hi.max(month)),
                None => (month, month),
            });
        }
        let (crime_id, outcome) = (rec.crime_id.decode(), rec.outcome.decode());
        let (crime_id, outcome) = (crime_id.as_ref(), outcome.as_ref());
        let (day, minute) = (rec.day, rec.minute);
        match key {
            Some((source, key)) => self.keyed.execute(params![
                id,
                month,
                ctype,
                sev,
                loc,
                crime_id,
                outcome,
                source,
                key.as_ref(),
                day,
                minute
            ])?,
            None => self.plain.execute(params![
                id, month, ctype, sev, loc, crime_id, outcome, day, minute
            ])?,
        };
        Ok(())
    }

    fn write_outcome(&mut self, o: &Outcome<'_>) -> rusqlite::Result<OutcomeMatch> {
        if !self.crime_id_index {
            self.tx.execute_batch(super::schema::CRIME_ID_INDEX)?;
            self.crime_id_index = true;
        }
        let (id, outcome, month) = (o.crime_id.decode(), o.outcome.decode(), o.month.index());
        let changed = self
            .tx
            .prepare_cached(
                "UPDATE incidents SET outcome = ?2, outcome_month = ?3
                 WHERE crime_id = ?1 AND crime_id <> '' AND coalesce(outcome_month, -1) <= ?3",
            )?
            .execute(params![id.as_ref(), outcome.as_ref(), month])?;
        if changed > 0 {
            return Ok(OutcomeMatch::Updated);
        }
        let known: bool = self
            .tx
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM incidents WHERE crime_id = ?1 AND crime_id <> '')",
            )?
            .query_row([id.as_ref()], |r| r.get(0))?;
        Ok(if known {
            OutcomeMatch::Older
        } else {
            OutcomeMatch::Unmatched
        })
    }

    fn write_search(&mut self, s: &StopSearch<'_>) -> rusqlite::Result<()> {
        if !self.search_batches.contains(&s.batch) {
            let n = self
                .tx
                .execute("DELETE FROM stop_searches WHERE batch = ?1", [&s.batch])?;
            self.replaced += n as u64;
            self.search_batches.push(s.batch.clone());
        }
        let (lon, lat) = match s.point {
            Some((lon, lat)) => {
                let k = location_key(lon, lat);
                (Some(k.0), Some(k.1))
            }
            None => (None, None),
        };
        self.tx
            .prepare_cached(
                "INSERT INTO stop_searches (batch, ingest_id, month, day, minute, lon_e7, lat_e7, type, object, outcome, legislation)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                s.batch,
                self.ingest_id,
                s.when.month.index(),
                s.when.day,
                s.when.minute,
                lon,
                lat,
                s.kind.decode().as_ref(),
                s.object.decode().as_ref(),
                s.outcome.decode().as_ref(),
                s.legislation.decode().as_ref(),
            ])?;
        Ok(())
    }

    fn write_casualty(&mut self, c: &Casualty<'_>) -> rusqlite::Result<Joined> {
        let index = c.collision_index.decode();
        // month, day, minute, location of the collision.
        type At = (i64, Option<i32>, Option<i64>, Option<i64>);
        let collision: Option<At> = self
            .tx
            .prepare_cached(
                "SELECT month, day, minute, loc FROM incidents WHERE source = 'stats19' AND ext_key = ?1",
            )?
            .query_row([index.as_ref()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        let Some((month, day, minute, loc)) = collision else {
            return Ok(Joined::UnknownCollision);
        };
        let key = format!("{index}|{}|{}", c.vehicle_reference, c.casualty_reference);
        let id = self.file_id();
        let (ctype, sev) = (c.group as u8, c.severity as u8);
        self.keyed.execute(params![
            id,
            month,
            ctype,
            sev,
            loc,
            index.as_ref(),
            "",
            CASUALTY_SOURCE,
            key,
            day,
            minute
        ])?;
        // The upsert keeps the row id of an earlier ingest of the same casualty.
        let incident_id: i64 = self
            .tx
            .prepare_cached("SELECT id FROM incidents WHERE source = ?1 AND ext_key = ?2")?
            .query_row(params![CASUALTY_SOURCE, key], |r| r.get(0))?;
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
                index.as_ref(),
                c.vehicle_reference,
                c.casualty_reference,
                incident_id,
                c.casualty_class,
                sev,
                c.casualty_type,
                ctype,
                c.age,
                c.age_band,
                c.child,
                c.adjusted_serious,
                c.adjusted_slight,
            ])?;
        Ok(Joined::Stored {
            located: loc.is_some(),
        })
    }
}

/// The `source` of casualty incidents (keyed by `index|vehicle|casualty`).
pub const CASUALTY_SOURCE: &str = "stats19-casualty";

impl TxWriter<'_> {
    fn store_err(&self, e: &rusqlite::Error) -> IngestError {
        IngestError::Store {
            file: self.file.clone(),
            reason: e.to_string(),
        }
    }
}

impl Sink for TxWriter<'_> {
    fn record(&mut self, rec: &Record<'_>) -> Result<(), IngestError> {
        self.write(rec).map_err(|e| self.store_err(&e))
    }

    fn outcome(&mut self, o: &Outcome<'_>) -> Result<OutcomeMatch, IngestError> {
        self.write_outcome(o).map_err(|e| self.store_err(&e))
    }

    fn stop_search(&mut self, s: &StopSearch<'_>) -> Result<bool, IngestError> {
        self.write_search(s).map_err(|e| self.store_err(&e))?;
        Ok(true)
    }

    fn casualty(&mut self, c: &Casualty<'_>) -> Result<Joined, IngestError> {
        self.write_casualty(c).map_err(|e| self.store_err(&e))
    }
}

/// The SHA-256 of `bytes` in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
