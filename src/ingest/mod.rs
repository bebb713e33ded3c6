//! Parsing of incident files into [`Record`]s: police.uk street CSVs, DfT STATS19
//! collision CSVs (both header vintages), generic CSVs with named columns, and GeoJSON
//! points, from plain files, directories, or the zip archives police.uk ships.
//!
//! Parsers never panic and never stop at a bad row: each row either becomes a `Record`
//! handed to a [`Sink`] or a [`Reject`] naming file, line, field and reason. Only a file
//! whose header is unusable fails as a whole ([`IngestError::Header`]). The same parsers
//! feed both the SQLite store of record and the in-memory analysis store, so the two can
//! never disagree about what a row means.

mod detect;
mod fields;
mod generic;
mod geojson_points;
mod police;
mod scan;
mod source;
mod stats19;

use std::borrow::Cow;
use std::collections::BTreeMap;

use thiserror::Error;

use crate::model::{CrimeType, Month, Severity};

pub use detect::{Format, detect_format};
pub use source::{Source, discover};

/// One parsed incident, borrowing its text from the parser's buffer.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    pub month: Month,
    pub ctype: CrimeType,
    pub severity: Severity,
    /// WGS84 (lon, lat); `None` for rows the source could not locate.
    pub point: Option<(f64, f64)>,
    pub crime_id: Text<'a>,
    /// The LSOA code the publisher assigned (police.uk `LSOA code`, STATS19
    /// `lsoa_of_accident_location`, a generic `lsoa_code` column); blank when none.
    pub lsoa_code: Text<'a>,
    /// police.uk `Location` ("On or near ...") or a generic location text.
    pub location: Text<'a>,
    pub outcome: Text<'a>,
    /// How the row is kept unique across ingests.
    pub identity: Identity<'a>,
}

/// Field text as read, decoded only when a sink needs it (the analysis store reads the
/// location text once per distinct location, not once per row).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text<'a>(Cow<'a, [u8]>);

impl<'a> Text<'a> {
    pub fn raw(b: &'a [u8]) -> Self {
        Text(Cow::Borrowed(b))
    }
    pub fn owned(s: String) -> Text<'static> {
        Text(Cow::Owned(s.into_bytes()))
    }
    /// The bytes as read (untrimmed).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// Trimmed text: UTF-8, or Latin-1 when the bytes are not UTF-8.
    pub fn decode(&self) -> Cow<'_, str> {
        fields::text(&self.0)
    }
    pub fn is_blank(&self) -> bool {
        self.0.trim_ascii().is_empty()
    }
}

impl std::fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.decode())
    }
}

/// The rule that makes re-ingesting the same data store nothing new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity<'a> {
    /// police.uk: a (force, month) is replaced as a whole when it is ingested again.
    Batch { force: Text<'a>, month: Month },
    /// STATS19 collision index or a generic id column: upserted by key within the source.
    Key { source: &'static str, key: Text<'a> },
    /// No identity: the file's checksum alone guards against a repeat.
    None,
}

/// A row that was not stored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub file: String,
    pub line: u64,
    pub field: String,
    pub reason: String,
    pub value: String,
}

/// Where parsed records go (the SQLite writer, the in-memory builder, a test).
pub trait Sink {
    /// Takes one record; an error aborts the file (nothing of it is kept).
    ///
    /// # Errors
    /// When the sink cannot store the record (a database failure).
    fn record(&mut self, rec: &Record<'_>) -> Result<(), IngestError>;
}

impl<F: FnMut(&Record<'_>)> Sink for F {
    fn record(&mut self, rec: &Record<'_>) -> Result<(), IngestError> {
        self(rec);
        Ok(())
    }
}

/// Counts for one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileStats {
    pub rows_read: u64,
    pub records: u64,
    pub unlocated: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// The first [`MAX_REJECTS_KEPT`] rejects with their details.
    pub rejects: Vec<Reject>,
}

/// Rejects kept in detail per file (all are counted).
pub const MAX_REJECTS_KEPT: usize = 100_000;

impl FileStats {
    pub(crate) fn reject(&mut self, r: Reject) {
        self.rejected += 1;
        *self
            .rejected_by_reason
            .entry(reason_class(&r.reason))
            .or_default() += 1;
        if self.rejects.len() < MAX_REJECTS_KEPT {
            self.rejects.push(r);
        }
    }
}

/// The reason without its row-specific detail, for the summary table.
fn reason_class(reason: &str) -> String {
    reason
        .split([':', '('])
        .next()
        .unwrap_or(reason)
        .trim()
        .to_owned()
}

/// A file that could not be ingested at all.
#[derive(Debug, Error)]
pub enum IngestError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: line {line}: {reason}")]
    Header {
        file: String,
        line: u64,
        reason: String,
    },
    #[error("{file}: {reason}")]
    Format { file: String, reason: String },
    #[error("{file}: store: {reason}")]
    Store { file: String, reason: String },
}

/// The loop every CSV parser shares: each remaining record of `scan` goes through `row`
/// and becomes a record for `sink` or a reject naming the file, line and field.
fn drive<F, Fd>(
    file: &str,
    scan: &mut scan::Scanner<'_>,
    sink: &mut dyn Sink,
    mut row: F,
) -> Result<FileStats, IngestError>
where
    F: for<'r> FnMut(&scan::Row<'r>) -> Result<Record<'r>, (Fd, String, String)>,
    Fd: Into<String>,
{
    let mut stats = FileStats::default();
    while let Some((line, rec)) = scan.next_row() {
        stats.rows_read += 1;
        match row(&rec) {
            Ok(r) => {
                stats.records += 1;
                stats.unlocated += u64::from(r.point.is_none());
                sink.record(&r)?;
            }
            Err((field, reason, value)) => stats.reject(Reject {
                file: file.to_owned(),
                line,
                field: field.into(),
                reason,
                value,
            }),
        }
    }
    Ok(stats)
}

/// Parses one file's bytes, handing records to `sink`.
///
/// # Errors
/// When the header is unusable or the sink fails; rows never fail the file.
pub fn parse_bytes(
    file: &str,
    bytes: &[u8],
    format: Option<Format>,
    sink: &mut dyn Sink,
) -> Result<FileStats, IngestError> {
    let format = match format {
        Some(f) => f,
        None => detect_format(file, bytes)?,
    };
    match format {
        Format::PoliceUk => police::parse(file, bytes, sink),
        Format::Stats19 => stats19::parse(file, bytes, sink),
        Format::Generic => generic::parse(file, bytes, sink),
        Format::GeoJson => geojson_points::parse(file, bytes, sink),
    }
}

#[cfg(test)]
#[path = "ingest_tests.rs"]
mod tests;
