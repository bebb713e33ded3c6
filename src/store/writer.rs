//! Writing one file into the store inside one transaction.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

use super::Store;
use super::backend::{CasualtyRow, DbError, DbResult, IncidentRow, LogRow, SearchRow, WriteTx};
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
        let sql = |e: &dyn std::fmt::Display| IngestError::Store {
            file: file.to_owned(),
            reason: e.to_string(),
        };
        let summary = match &mut self.db {
            super::Db::Sqlite(conn) => {
                let tx = conn.transaction().map_err(|e| sql(&e))?;
                let summary = {
                    let mut t = super::sqlite_tx::SqliteTx::new(&tx).map_err(|e| sql(&e))?;
                    write_file(&mut t, file, bytes, sha256, format)?
                };
                if !summary.unchanged {
                    tx.commit().map_err(|e| sql(&e))?;
                }
                Ok(summary)
            }
            super::Db::Postgres(client) => super::pg::ingest(
                client
                    .get_mut()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                file,
                bytes,
                sha256,
                format,
            ),
        }?;
        self.written += summary.stored + summary.replaced;
        Ok(summary)
    }
}

/// Writes one file inside the transaction `db`: nothing when the same bytes were stored
/// before (`unchanged`), else its rows, batches, coverage and log row.
pub(crate) fn write_file(
    db: &mut dyn WriteTx,
    file: &str,
    bytes: &[u8],
    sha256: String,
    format: Option<Format>,
) -> Result<IngestSummary, IngestError> {
    let sql = |e: DbError| IngestError::Store {
        file: file.to_owned(),
        reason: super::backend::chain(e.as_ref()),
    };
    // Files that update or join rows of other files (police.uk outcomes, STATS19
    // casualties) are applied again even when seen: what they match depends on what
    // was stored since (a casualty file read before its collisions), and applying
    // them twice changes nothing (latest month wins; upsert by casualty).
    if db.seen(&sha256).map_err(sql)? {
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
    let started = db.now().map_err(sql)?;
    let dataset = crate::coverage::Dataset::of_format(format);
    let mut w = TxWriter::new(db, file, &sha256, dataset).map_err(sql)?;
    let stats = ingest::parse_bytes(file, bytes, Some(format), &mut w)?;
    let (ingest_id, replaced) = w.finish().map_err(sql)?;
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
    let format_name = format!("{format:?}");
    db.log_ingest(&LogRow {
        id: ingest_id,
        file,
        sha256: &sha256,
        format: &format_name,
        started: &started,
        rows_read,
        stored: records,
        replaced,
        unlocated,
        rejected,
    })
    .map_err(sql)?;
    Ok(IngestSummary {
        file: file.to_owned(),
        format: format_name,
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

struct OpenBatch {
    id: i64,
    rows: i64,
}

/// The sink that writes records inside the file's transaction.
struct TxWriter<'t> {
    db: &'t mut dyn WriteTx,
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
    /// The dataset the file's incidents belong to (`crate::coverage`), and the first and
    /// last month of its records that name no police.uk (force, month).
    dataset: Option<crate::coverage::Dataset>,
    span: Option<(u16, u16)>,
}

impl<'t> TxWriter<'t> {
    fn new(
        db: &'t mut dyn WriteTx,
        file: &str,
        sha256: &str,
        dataset: Option<crate::coverage::Dataset>,
    ) -> DbResult<Self> {
        let mut locations: FxHashMap<u64, Vec<(Box<str>, i64)>> = FxHashMap::default();
        db.locations(&mut |id, lon, lat, code| {
            locations
                .entry(pack((lon, lat)))
                .or_default()
                .push((code.into(), id));
        })?;
        let [ingest_id, next_location, next_batch] = db.next_ids()?;
        Ok(TxWriter {
            db,
            file: file.to_owned(),
            sha256: sha256.to_owned(),
            ingest_id,
            next_location,
            next_batch,
            locations,
            batches: Vec::new(),
            file_batch: None,
            replaced: 0,
            search_batches: Vec::new(),
            dataset,
            span: None,
        })
    }

    fn location(&mut self, rec: &Record<'_>) -> DbResult<Option<i64>> {
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
        self.db
            .insert_location(id, key.0, key.1, rec.location.decode().as_ref(), code)?;
        self.locations
            .entry(pack(key))
            .or_default()
            .push((code.into(), id));
        Ok(Some(id))
    }

    /// The row id for the next record of a police.uk (force, month), replacing what an
    /// earlier ingest stored for it.
    fn police_id(&mut self, force: &str, month: u16) -> DbResult<i64> {
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
    fn open_police_batch(&mut self, force: &str, month: u16) -> DbResult<usize> {
        let name = format!("police|{force}|{month}");
        if let Some((old_id, old_rows)) = self.db.batch(&name)? {
            self.db.delete_batch(old_id)?;
            self.replaced += old_rows as u64;
        }
        let id = self.next_batch;
        self.next_batch += 1;
        self.batches
            .push((force.to_owned(), month, OpenBatch { id, rows: 0 }));
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

    /// Records the batches opened and what the file covers; returns the file's ingest id
    /// and the rows replaced.
    fn finish(self) -> DbResult<(i64, u64)> {
        use crate::coverage::Dataset;
        for (force, month, _) in &self.batches {
            self.db
                .cover(Dataset::PoliceUk.name(), force, *month, self.ingest_id)?;
        }
        if let (Some(d @ (Dataset::Stats19 | Dataset::Generic)), Some((lo, hi))) =
            (self.dataset, self.span)
        {
            for month in lo..=hi {
                self.db.cover(d.name(), "", month, self.ingest_id)?;
            }
        }
        for (force, month, b) in &self.batches {
            self.db.insert_batch(
                b.id,
                &format!("police|{force}|{month}"),
                self.ingest_id,
                b.rows,
            )?;
        }
        if let Some(b) = &self.file_batch {
            // The ingest id keeps the key unique when a joining file (casualties,
            // outcomes) is applied again.
            self.db.insert_batch(
                b.id,
                &format!("file|{}|{}|{}", self.sha256, self.file, self.ingest_id),
                self.ingest_id,
                b.rows,
            )?;
        }
        Ok((self.ingest_id, self.replaced))
    }

    fn write(&mut self, rec: &Record<'_>) -> DbResult<()> {
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
        self.db.insert_incident(&IncidentRow {
            id,
            month,
            ctype,
            severity: sev,
            loc,
            crime_id: crime_id.as_ref(),
            outcome: outcome.as_ref(),
            key: key.as_ref().map(|(s, k)| (*s, k.as_ref())),
            day: rec.day,
            minute: rec.minute,
        })
    }

    fn write_outcome(&mut self, o: &Outcome<'_>) -> DbResult<OutcomeMatch> {
        let (id, outcome) = (o.crime_id.decode(), o.outcome.decode());
        self.db
            .set_outcome(id.as_ref(), outcome.as_ref(), o.month.index())
    }

    fn write_search(&mut self, s: &StopSearch<'_>) -> DbResult<()> {
        if !self.search_batches.contains(&s.batch) {
            self.replaced += self.db.clear_searches(&s.batch)?;
            self.search_batches.push(s.batch.clone());
        }
        let (lon_e7, lat_e7) = match s.point {
            Some((lon, lat)) => {
                let k = location_key(lon, lat);
                (Some(k.0), Some(k.1))
            }
            None => (None, None),
        };
        self.db.insert_search(&SearchRow {
            batch: &s.batch,
            ingest_id: self.ingest_id,
            month: s.when.month.index(),
            day: s.when.day,
            minute: s.when.minute,
            lon_e7,
            lat_e7,
            kind: s.kind.decode().as_ref(),
            object: s.object.decode().as_ref(),
            outcome: s.outcome.decode().as_ref(),
            legislation: s.legislation.decode().as_ref(),
        })
    }

    fn write_casualty(&mut self, c: &Casualty<'_>) -> DbResult<Joined> {
        let index = c.collision_index.decode();
        let Some(at) = self.db.collision(index.as_ref())? else {
            return Ok(Joined::UnknownCollision);
        };
        let key = format!("{index}|{}|{}", c.vehicle_reference, c.casualty_reference);
        let id = self.file_id();
        let (ctype, sev) = (c.group as u8, c.severity as u8);
        self.db.upsert_casualty(
            &IncidentRow {
                id,
                month: at.month,
                ctype,
                severity: sev,
                loc: at.loc,
                crime_id: index.as_ref(),
                outcome: "",
                key: Some((CASUALTY_SOURCE, &key)),
                day: at.day,
                minute: at.minute,
            },
            &CasualtyRow {
                collision_index: index.as_ref(),
                vehicle_reference: c.vehicle_reference,
                casualty_reference: c.casualty_reference,
                casualty_class: c.casualty_class,
                severity: sev,
                casualty_type: c.casualty_type,
                road_user: ctype,
                age: c.age,
                age_band: c.age_band,
                child: c.child,
                adjusted_serious: c.adjusted_serious,
                adjusted_slight: c.adjusted_slight,
            },
        )?;
        Ok(Joined::Stored {
            located: at.loc.is_some(),
        })
    }
}

/// The `source` of casualty incidents (keyed by `index|vehicle|casualty`).
pub const CASUALTY_SOURCE: &str = "stats19-casualty";

impl TxWriter<'_> {
    fn store_err(&self, e: &DbError) -> IngestError {
        IngestError::Store {
            file: self.file.clone(),
            reason: super::backend::chain(e.as_ref()),
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
