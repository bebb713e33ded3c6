//! Parsing of incident files into [`Record`]s: police.uk street CSVs, DfT STATS19
//! collision CSVs (both header vintages), generic CSVs with named columns, and GeoJSON
//! points, from plain files, directories, or the zip archives police.uk ships.
//!
//! Parsers never panic and never stop at a bad row: each row either becomes a `Record`
//! handed to a [`Sink`] or a [`Reject`] naming file, line, field and reason. Only a file
//! whose header is unusable fails as a whole ([`IngestError::Header`]). The same parsers
//! feed both the SQLite store of record and the in-memory analysis store, so the two can
//! never disagree about what a row means.

mod casualty;
mod detect;
mod fields;
mod generic;
mod geojson_points;
mod police;
mod police_extra;
mod scan;
mod source;
mod stats19;

use std::borrow::Cow;
use std::collections::BTreeMap;

use thiserror::Error;

use crate::model::{CrimeType, Month, Severity};

pub use casualty::{is_child, road_user_group};
pub use detect::{Format, detect_format};
pub use source::{RATIO_FLOOR, Source, ZipLimits, check_zip, discover};

/// One parsed incident, borrowing its text from the parser's buffer.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    pub month: Month,
    /// The day (days since 1970-01-01) where the source gives a date (STATS19, generic
    /// CSVs); `None` for monthly sources (police.uk).
    pub day: Option<i32>,
    /// The minute of the day where the source gives a time (STATS19 `time`).
    pub minute: Option<u16>,
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
///
/// Besides incidents, a police.uk download carries outcomes (updates to crimes already
/// stored) and stop-and-search records, and STATS19 has casualty files joined to stored
/// collisions: a sink that cannot keep those says so (the defaults), and the parser
/// counts the file as skipped with the reason, never silently.
pub trait Sink {
    /// Takes one record; an error aborts the file (nothing of it is kept).
    ///
    /// # Errors
    /// When the sink cannot store the record (a database failure).
    fn record(&mut self, rec: &Record<'_>) -> Result<(), IngestError>;

    /// Sets the outcome of the stored crime with this police.uk Crime ID, unless a later
    /// month's outcome is already stored.
    ///
    /// # Errors
    /// When the sink fails (a database failure).
    fn outcome(&mut self, _o: &Outcome<'_>) -> Result<OutcomeMatch, IngestError> {
        Ok(OutcomeMatch::NotKept)
    }

    /// Stores one stop-and-search record; `false` when this sink does not keep them.
    ///
    /// # Errors
    /// When the sink fails (a database failure).
    fn stop_search(&mut self, _s: &StopSearch<'_>) -> Result<bool, IngestError> {
        Ok(false)
    }

    /// Stores one STATS19 casualty at its collision.
    ///
    /// # Errors
    /// When the sink fails (a database failure).
    fn casualty(&mut self, _c: &Casualty<'_>) -> Result<Joined, IngestError> {
        Ok(Joined::NotKept)
    }
}

impl<F: FnMut(&Record<'_>)> Sink for F {
    fn record(&mut self, rec: &Record<'_>) -> Result<(), IngestError> {
        self(rec);
        Ok(())
    }
}

/// One row of a police.uk `-outcomes.csv`: the latest outcome of a crime.
#[derive(Debug, Clone)]
pub struct Outcome<'a> {
    pub crime_id: Text<'a>,
    /// The month the outcome was recorded (the file's `Month`).
    pub month: Month,
    pub outcome: Text<'a>,
}

/// What an outcome did to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeMatch {
    /// The crime's outcome was set.
    Updated,
    /// The crime is stored, with an outcome of a later month, which was kept.
    Older,
    /// No crime with this ID is stored (a month not ingested).
    Unmatched,
    /// The sink does not keep outcomes (the in-memory analysis store).
    NotKept,
}

/// One row of a police.uk `-stop-and-search.csv`.
#[derive(Debug, Clone)]
pub struct StopSearch<'a> {
    pub when: crate::model::When,
    /// WGS84 (lon, lat); `None` where police.uk gives no location.
    pub point: Option<(f64, f64)>,
    /// `Type`: person search, vehicle search, or both.
    pub kind: Text<'a>,
    pub object: Text<'a>,
    pub outcome: Text<'a>,
    pub legislation: Text<'a>,
    /// The force-month the file covers, from its name (`2021-01-lancashire`): the unit of
    /// replacement when the file is ingested again.
    pub batch: String,
}

/// One row of a STATS19 casualty file.
#[derive(Debug, Clone)]
pub struct Casualty<'a> {
    pub collision_index: Text<'a>,
    pub vehicle_reference: i64,
    pub casualty_reference: i64,
    pub casualty_class: Option<i64>,
    pub severity: Severity,
    /// The raw `casualty_type` code (-1 or missing: `None`).
    pub casualty_type: Option<i64>,
    pub age: Option<i64>,
    pub age_band: Option<i64>,
    /// The probability that the casualty would have been serious under injury-based
    /// recording (`casualty_adjusted_severity_serious`), in newer files.
    pub adjusted_serious: Option<f64>,
    pub adjusted_slight: Option<f64>,
    /// The road-user group, as the type stored for the casualty.
    pub group: CrimeType,
    /// Under 16, from the age or the age band; `None` when neither is known.
    pub child: Option<bool>,
}

/// What a casualty's join to its collision did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// Stored at its collision (located or not).
    Stored { located: bool },
    /// No collision with this index is stored.
    UnknownCollision,
    /// The sink does not keep casualties (the in-memory analysis store).
    NotKept,
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
    /// police.uk outcomes: crimes whose outcome was set, kept (a later outcome is
    /// stored), or not found.
    pub outcomes_updated: u64,
    pub outcomes_older: u64,
    pub outcomes_unmatched: u64,
    /// Stop-and-search records stored.
    pub searches: u64,
    /// STATS19 casualties stored (also counted in `records`).
    pub casualties: u64,
    /// Rows read but not kept by this sink, and why (outcomes, searches or casualties
    /// read into the in-memory analysis store).
    pub skipped: u64,
    pub skipped_reason: Option<String>,
}

/// Rejects kept in detail per file (all are counted).
pub const MAX_REJECTS_KEPT: usize = 100_000;

impl FileStats {
    pub(crate) fn skip(&mut self, reason: &str) {
        self.skipped += 1;
        if self.skipped_reason.is_none() {
            self.skipped_reason = Some(reason.to_owned());
        }
    }

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
    /// The OS error is part of the message, not a source: `{:#}` would print it twice.
    #[error("{file}: {error}")]
    Io { file: String, error: std::io::Error },
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
        Format::PoliceOutcomes => police_extra::parse_outcomes(file, bytes, sink),
        Format::PoliceStopSearch => police_extra::parse_stop_search(file, bytes, sink),
        Format::Stats19Casualty => casualty::parse(file, bytes, sink),
    }
}

#[cfg(test)]
#[path = "ingest_tests.rs"]
mod tests;
