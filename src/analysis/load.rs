//! Filling the analysis store: from the SQLite store of record at start-up, or straight
//! from CSV files (the ingest benchmark and quick looks without a store).

use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;
use rusqlite::{Connection, OpenFlags};
use rustc_hash::FxHashMap;
use thiserror::Error;

use super::{AnalysisStore, Builder};
use crate::ingest::{self, FileStats, IngestError, Source};
use crate::spatial::Geography;
use crate::store::{DB_FILE, StoreAt, StoreError};

/// Why the analysis store could not be filled.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

/// Loads every located incident from the SQLite store in `dir` ([`from_store_at`]).
///
/// # Errors
/// When the store is missing or unreadable.
pub fn from_store(
    dir: &std::path::Path,
    geography: Arc<Geography>,
) -> Result<AnalysisStore, LoadError> {
    from_store_at(&StoreAt::Dir(dir.to_owned()), geography)
}

/// What a load reads before the incidents: the coverage, the locations (id, lon_e7,
/// lat_e7, LSOA code, street), unlocated counts per type, the batches (id, key, the
/// format its ingest logged) and the store's version.
struct Meta {
    coverage: crate::coverage::Coverage,
    locations: Vec<(i64, i32, i32, String, String)>,
    unlocated: Vec<(u8, u64)>,
    batches: Vec<(i64, String, String)>,
    version: u64,
}

const LOCATIONS: &str = "SELECT id, lon_e7, lat_e7, lsoa_code, street FROM locations ORDER BY id";
const UNLOCATED: &str = "SELECT ctype, count(*) FROM incidents WHERE loc IS NULL GROUP BY ctype";
const BATCHES: &str = "SELECT b.id, b.key, coalesce(l.format, '') FROM batches b
     LEFT JOIN ingest_log l ON l.id = b.ingest_id ORDER BY b.id";
const VERSION: &str = "SELECT coalesce(max(id), 0) FROM ingest_log";

/// Loads every located incident from the store `at` names, reading id ranges in
/// parallel on separate connections: read-only SQLite connections, or PostgreSQL
/// connections that all read the snapshot of the first (`pg_export_snapshot`), so an
/// ingest committing meanwhile is wholly in or wholly out.
///
/// # Errors
/// When the store is missing or unreadable.
pub fn from_store_at(at: &StoreAt, geography: Arc<Geography>) -> Result<AnalysisStore, LoadError> {
    match at {
        StoreAt::Dir(dir) => from_sqlite(&dir.join(DB_FILE), geography),
        StoreAt::Postgres(url) => from_postgres(url, geography),
    }
}

fn from_sqlite(
    path: &std::path::Path,
    geography: Arc<Geography>,
) -> Result<AnalysisStore, LoadError> {
    let open = || -> Result<Connection, StoreError> {
        if !path.exists() {
            return Err(StoreError::Schema {
                path: path.to_owned(),
                reason: "no store here: run `hotspot ingest` first".into(),
            });
        }
        crate::store::check_file(path)?;
        Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Sql {
            path: path.to_owned(),
            source,
        })
    };
    let sql = |source| StoreError::Sql {
        path: path.to_owned(),
        source,
    };
    let conn = open()?;
    crate::store::check_ours(&conn, path)?;
    let all = |q: &str| -> Result<Vec<(i64, String, String)>, StoreError> {
        let mut q = conn.prepare(q).map_err(sql)?;
        q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(Iterator::collect)
            .map_err(sql)
    };
    let meta = Meta {
        coverage: crate::store::read_coverage(&conn).map_err(sql)?,
        locations: {
            let mut q = conn.prepare(LOCATIONS).map_err(sql)?;
            q.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .and_then(Iterator::collect)
            .map_err(sql)?
        },
        unlocated: {
            let mut q = conn.prepare(UNLOCATED).map_err(sql)?;
            q.query_map([], |r| {
                Ok((
                    u8::try_from(r.get::<_, i64>(0)?).unwrap_or(u8::MAX),
                    r.get::<_, i64>(1)? as u64,
                ))
            })
            .and_then(Iterator::collect)
            .map_err(sql)?
        },
        batches: all(BATCHES)?,
        version: conn
            .query_row(VERSION, [], |r| r.get::<_, i64>(0))
            .map_err(sql)? as u64,
    };
    build(meta, geography, |lo, hi, each| {
        let conn = open()?;
        let mut q = conn
            .prepare_cached(
                "SELECT loc, month, ctype, severity, id FROM incidents WHERE id >= ?1 AND id < ?2 AND loc IS NOT NULL",
            )
            .map_err(sql)?;
        let mut rows = q.query([lo, hi]).map_err(sql)?;
        while let Some(r) = rows.next().map_err(sql)? {
            each(
                r.get(0).map_err(sql)?,
                r.get(1).map_err(sql)?,
                r.get(2).map_err(sql)?,
                r.get(3).map_err(sql)?,
                r.get(4).map_err(sql)?,
            );
        }
        Ok(())
    })
}

fn from_postgres(url: &str, geography: Arc<Geography>) -> Result<AnalysisStore, LoadError> {
    use crate::store::pg;
    use postgres::types::Type;
    let err = |e: postgres::Error| pg::error(url, e);
    let mut client = pg::connect(url)?;
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(err)?;
    let snapshot: String = tx
        .query_one("SELECT pg_export_snapshot()", &[])
        .map_err(err)?
        .get(0);
    let mut coverage = crate::coverage::Coverage::new();
    for r in tx
        .query("SELECT dataset, force, month FROM coverage", &[])
        .map_err(err)?
    {
        let (d, f, m): (String, String, i32) = (r.get(0), r.get(1), r.get(2));
        if let (Some(d), Ok(m)) = (crate::coverage::Dataset::parse(&d), u16::try_from(m)) {
            coverage.add(d, &f, m);
        }
    }
    let mut locations = Vec::new();
    pg::copy_rows(
        &mut tx,
        LOCATIONS,
        &[Type::INT8, Type::INT4, Type::INT4, Type::TEXT, Type::TEXT],
        |r| {
            locations.push((
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
            ));
            Ok(())
        },
    )
    .map_err(err)?;
    // Unlocated incidents are counted in the parallel pass (loc -1), not by a scan of
    // their own.
    let unlocated = Vec::new();
    let batches = tx
        .query(BATCHES, &[])
        .map_err(err)?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let version = tx.query_one(VERSION, &[]).map_err(err)?.get::<_, i64>(0) as u64;
    let meta = Meta {
        coverage,
        locations,
        unlocated,
        batches,
        version,
    };
    let store = build(meta, geography, |lo, hi, each| {
        let mut c = pg::connect_raw(url)?;
        let mut tx = c
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(err)?;
        tx.batch_execute(&format!("SET TRANSACTION SNAPSHOT '{snapshot}'"))
            .map_err(err)?;
        // Two 8-byte columns a row, packed by the server and read without a row object:
        // the location (-1: none), and batch << 32 | month << 16 | type << 8 | severity
        // (each column checked to fit first, so a foreign value cannot spill into its
        // neighbour).
        let reader = tx
            .copy_out(&format!(
                "COPY (SELECT coalesce(loc, -1), ((id >> 32) << 32) | (month::int8 << 16) | (ctype::int8 << 8) | severity::int8
                 FROM incidents
                 WHERE id >= {lo} AND id < {hi}
                   AND month BETWEEN 0 AND 65535 AND ctype BETWEEN 0 AND 255 AND severity BETWEEN 0 AND 255)
                 TO STDOUT (FORMAT binary)"
            ))
            .map_err(err)?;
        pg::int8_rows(reader, |[loc, packed]| {
            each(
                loc,
                (packed >> 16) as u16,
                (packed >> 8) as u8,
                packed as u8,
                packed,
            );
        })
        .map_err(|e| pg::error(url, e))
    })?;
    tx.commit().map_err(err)?;
    Ok(store)
}

/// Fills the builder from `meta`, then the incidents of each id range (`read(lo, hi,
/// each)` calling `each(loc, month, ctype, severity, id)`, `loc` -1 for an incident
/// without a location when the reader counts those itself), ranges in parallel.
fn build(
    meta: Meta,
    geography: Arc<Geography>,
    read: impl Fn(i64, i64, &mut dyn FnMut(i64, u16, u8, u8, i64)) -> Result<(), StoreError> + Sync,
) -> Result<AnalysisStore, LoadError> {
    let mut builder = Builder::new();
    builder.set_coverage(meta.coverage);
    // Location ids in the database -> dense ids in the builder.
    let mut db_to_dense: Vec<u32> = Vec::new();
    for (id, lon, lat, code, street) in &meta.locations {
        let dense = builder.location(*lon, *lat, code, street);
        let id = usize::try_from(*id).unwrap_or(0);
        if db_to_dense.len() <= id {
            db_to_dense.resize(id + 1, u32::MAX);
        }
        db_to_dense[id] = dense;
    }
    drop(meta.locations);
    for (t, n) in meta.unlocated {
        builder.unlocated(t, n);
    }
    // Each batch's dataset bit (a row's batch is its id >> 32).
    let batch_bit: FxHashMap<i64, u8> = meta
        .batches
        .iter()
        .map(|(id, key, format)| (*id, batch_dataset_bit(key, format)))
        .collect();
    let batches: Vec<i64> = meta.batches.iter().map(|b| b.0).collect();
    let ranges = id_ranges(&batches, rayon::current_num_threads() * 2);
    type Part = (Builder, [u8; 32], [u64; 256]);
    let parts: Vec<Result<Part, StoreError>> = ranges
        .par_iter()
        .map(|&(lo, hi)| {
            let mut part = Builder::new();
            let mut by_type = [0u8; 32];
            let mut unlocated = [0u64; 256];
            let mut last = (i64::MIN, GENERIC_BIT);
            read(lo, hi, &mut |loc, month, ctype, severity, id| {
                if loc < 0 {
                    unlocated[usize::from(ctype)] += 1;
                    return;
                }
                let dense = usize::try_from(loc)
                    .ok()
                    .and_then(|i| db_to_dense.get(i))
                    .copied()
                    .unwrap_or(u32::MAX);
                if dense == u32::MAX {
                    return;
                }
                let batch = id >> 32;
                if batch != last.0 {
                    last = (batch, batch_bit.get(&batch).copied().unwrap_or(GENERIC_BIT));
                }
                if let Some(m) = by_type.get_mut(usize::from(ctype)) {
                    *m |= last.1;
                }
                part.incident(dense, month, ctype, severity);
            })?;
            Ok((part, by_type, unlocated))
        })
        .collect();
    let mut by_type = vec![0u8; 32];
    for p in parts {
        let (part, bits, unlocated) = p?;
        for (t, &n) in unlocated.iter().enumerate() {
            if n > 0 {
                builder.unlocated(t as u8, n);
            }
        }
        builder.append_incidents(part);
        for (m, b) in by_type.iter_mut().zip(bits) {
            *m |= b;
        }
    }
    let mut store = builder.finish(geography);
    store.datasets_by_type = Some(by_type);
    store.version = meta.version;
    Ok(store)
}

/// The bit of `crate::coverage::Dataset::Generic` (a record of unknown origin counts as
/// a partner's: protected).
const GENERIC_BIT: u8 = 1 << 2;

/// A batch's dataset bit (`1 << i` for `Dataset::ALL[i]`): police.uk batches by their key,
/// a file's by the format its ingest recorded (casualties are STATS19's); anything else
/// is a partner's extract.
fn batch_dataset_bit(key: &str, format: &str) -> u8 {
    use crate::coverage::Dataset;
    let d = if key.starts_with("police|") {
        Dataset::PoliceUk
    } else if format.starts_with("Stats19") {
        Dataset::Stats19
    } else {
        Dataset::Generic
    };
    let i = Dataset::ALL.iter().position(|&x| x == d).unwrap_or(2);
    1 << i
}

/// Splits the row-id space into about `n` ranges along batch boundaries, covering it all.
fn id_ranges(batches: &[i64], n: usize) -> Vec<(i64, i64)> {
    let n = n.max(1);
    let mut cuts: Vec<i64> = (1..n)
        .filter_map(|k| batches.get(k * batches.len() / n).map(|b| b << 32))
        .collect();
    cuts.dedup();
    let mut out = Vec::new();
    let mut lo = i64::MIN;
    for c in cuts {
        if c > lo {
            out.push((lo, c));
            lo = c;
        }
    }
    out.push((lo, i64::MAX));
    out
}

/// Parses CSV (and other) files straight into an analysis store, runs of consecutive
/// files in parallel.
/// Returns the store and the per-file statistics.
///
/// # Errors
/// When a path cannot be read or a file's header is unusable.
pub fn from_csv_paths(
    paths: &[PathBuf],
    geography: Arc<Geography>,
) -> Result<(AnalysisStore, Vec<FileStats>), LoadError> {
    let sources = ingest::discover(paths)?;
    // Runs of consecutive files, a builder each, read in parallel and merged in order:
    // locations get their ids in order of first appearance, as one sequential read would
    // give them, and a builder meets each of its locations once, not once per file
    // (police.uk snap points repeat month after month).
    let sizes: Vec<u64> = sources.iter().map(size_hint).collect();
    let groups = runs(&sizes, rayon::current_num_threads() * 2);
    let parts: Vec<Result<(Builder, Vec<FileStats>), IngestError>> = groups
        .par_iter()
        .map(|run| {
            let files = &sources[run.clone()];
            let bytes: u64 = sizes[run.clone()].iter().sum();
            // police.uk rows run about 200 bytes; reserving avoids regrowing the columns.
            let mut b = Builder::with_capacity(usize::try_from(bytes / 160).unwrap_or(0));
            let mut stats = Vec::with_capacity(files.len());
            let mut buf = Vec::new();
            for src in files {
                let s = src.with_bytes(&mut buf, |bytes| {
                    let name = src.name();
                    let format = ingest::detect_format(&name, bytes).ok();
                    b.start_file(format.and_then(crate::coverage::Dataset::of_format));
                    ingest::parse_bytes(&name, bytes, format, &mut b)
                })?;
                stats.push(s);
            }
            Ok((b, stats))
        })
        .collect();
    let mut builder: Option<Builder> = None;
    let mut stats = Vec::with_capacity(sources.len());
    for p in parts {
        let (b, s) = p?;
        match &mut builder {
            None => builder = Some(b),
            Some(base) => base.merge(b),
        }
        stats.extend(s);
    }
    Ok((builder.unwrap_or_default().finish(geography), stats))
}

/// A source's size in bytes where it is cheap to know (a plain file), else a guess.
fn size_hint(src: &Source) -> u64 {
    match src {
        Source::File(p) => std::fs::metadata(p).map_or(1 << 20, |m| m.len()),
        Source::ZipEntry { .. } => 1 << 20,
    }
}

/// Up to `n` runs of consecutive sources of about equal total size (`sizes`, one per
/// source), covering them all in order.
fn runs(sizes: &[u64], n: usize) -> Vec<std::ops::Range<usize>> {
    let total: u64 = sizes.iter().sum();
    let per = total.div_ceil(n.max(1) as u64).max(1);
    let mut out = Vec::new();
    let (mut start, mut acc) = (0, 0);
    for (i, &s) in sizes.iter().enumerate() {
        acc += s;
        if acc >= per {
            out.push(start..i + 1);
            (start, acc) = (i + 1, 0);
        }
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Source, id_ranges, runs, size_hint};

    #[test]
    fn runs_cover_the_sources_in_order() {
        for len in 0..12 {
            let sources: Vec<Source> = (0..len)
                .map(|i| Source::File(format!("no-such-file-{i}.csv").into()))
                .collect();
            let sizes: Vec<u64> = sources.iter().map(size_hint).collect();
            for n in 1..6 {
                let r = runs(&sizes, n);
                assert!(r.len() <= n, "{len} sources, {n} runs: {r:?}");
                let flat: Vec<usize> = r.iter().flat_map(Clone::clone).collect();
                assert_eq!(flat, (0..len).collect::<Vec<_>>(), "{r:?}");
                assert!(r.iter().all(|x| !x.is_empty()));
            }
        }
    }

    #[test]
    fn id_ranges_cover_everything_without_overlap() {
        for batches in [vec![], vec![1], vec![1, 2, 3, 4, 5, 9, 12]] {
            for n in 1..6 {
                let r = id_ranges(&batches, n);
                assert_eq!(r[0].0, i64::MIN);
                assert_eq!(r.last().unwrap().1, i64::MAX);
                for w in r.windows(2) {
                    assert_eq!(w[0].1, w[1].0);
                    assert!(w[0].0 < w[0].1);
                }
            }
        }
    }
}
