//! Writing one file into the store inside one transaction.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rusqlite::{CachedStatement, Transaction, params};
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

use super::Store;
use crate::ingest::{self, FileStats, Format, Identity, IngestError, Record, Reject, Sink, Source};

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
        let seen: bool = self
            .conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM ingest_log WHERE sha256 = ?1)",
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
        let mut w = TxWriter::new(&tx, file, &sha256).map_err(sql)?;
        let stats = ingest::parse_bytes(file, bytes, Some(format), &mut w)?;
        let replaced = w.finish().map_err(sql)?;
        let FileStats {
            rows_read,
            records,
            unlocated,
            rejected,
            rejected_by_reason,
            rejects,
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
    plain: CachedStatement<'t>,
    keyed: CachedStatement<'t>,
    new_location: CachedStatement<'t>,
}

impl<'t> TxWriter<'t> {
    fn new(tx: &'t Transaction<'t>, file: &str, sha256: &str) -> rusqlite::Result<Self> {
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
            plain: tx.prepare_cached(
                "INSERT INTO incidents (id, month, ctype, severity, loc, crime_id, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?,
            keyed: tx.prepare_cached(
                "INSERT INTO incidents (id, month, ctype, severity, loc, crime_id, outcome, source, ext_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (source, ext_key) WHERE ext_key IS NOT NULL DO UPDATE SET
                 month = excluded.month, ctype = excluded.ctype, severity = excluded.severity,
                 loc = excluded.loc, crime_id = excluded.crime_id, outcome = excluded.outcome",
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

    /// Records the batches opened; returns the rows replaced.
    fn finish(self) -> rusqlite::Result<u64> {
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
            ins.execute(params![
                b.id,
                format!("file|{}|{}", self.sha256, self.file),
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
        let (crime_id, outcome) = (rec.crime_id.decode(), rec.outcome.decode());
        let (crime_id, outcome) = (crime_id.as_ref(), outcome.as_ref());
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
                key.as_ref()
            ])?,
            None => self
                .plain
                .execute(params![id, month, ctype, sev, loc, crime_id, outcome])?,
        };
        Ok(())
    }
}

impl Sink for TxWriter<'_> {
    fn record(&mut self, rec: &Record<'_>) -> Result<(), IngestError> {
        self.write(rec).map_err(|e| IngestError::Store {
            file: self.file.clone(),
            reason: e.to_string(),
        })
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
