//! police.uk street-level crime CSV (`YYYY-MM-<force>-street.csv`).
//!
//! Each row: `Crime ID, Month, Reported by, Falls within, Longitude, Latitude, Location,
//! LSOA code, LSOA name, Crime type, Last outcome category, Context`. Anti-social
//! behaviour rows have no Crime ID; rows police.uk could not map have empty coordinates
//! and `No Location` and are stored as unlocated. A (force, month) is the unit of
//! replacement: police.uk re-issues months with updated outcomes.

use std::borrow::Cow;

use crate::model::{CrimeType, Month, Severity};

use super::detect::POLICE_HEADER;
use super::fields::{check_lonlat, number, show, strip_bom, text};
use super::{FileStats, Identity, IngestError, Record, Reject, Sink};

const MONTH: usize = 1;
const REPORTED_BY: usize = 2;
const FALLS_WITHIN: usize = 3;
const LON: usize = 4;
const LAT: usize = 5;
const LOCATION: usize = 6;
const CRIME_TYPE: usize = 9;
const OUTCOME: usize = 10;

pub(super) fn parse(
    file: &str,
    bytes: &[u8],
    sink: &mut dyn Sink,
) -> Result<FileStats, IngestError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(strip_bom(bytes));
    let mut stats = FileStats::default();
    let mut rec = csv::ByteRecord::new();
    let mut first = true;
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // Only I/O can fail on an in-memory slice with flexible records; report and stop.
                let line = e.position().map_or(0, csv::Position::line);
                stats.rows_read += 1;
                stats.reject(Reject {
                    file: file.to_owned(),
                    line,
                    field: "*".into(),
                    reason: format!("unreadable row: {e}"),
                    value: String::new(),
                });
                break;
            }
        }
        let line = rec.position().map_or(0, csv::Position::line);
        if first {
            first = false;
            if is_header(&rec) {
                continue;
            }
            return Err(IngestError::Header {
                file: file.to_owned(),
                line,
                reason: format!("expected the police.uk header {}", POLICE_HEADER.join(",")),
            });
        }
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

fn is_header(rec: &csv::ByteRecord) -> bool {
    rec.len() == POLICE_HEADER.len()
        && rec
            .iter()
            .zip(POLICE_HEADER)
            .all(|(f, h)| strip_bom(f).trim_ascii().eq_ignore_ascii_case(h.as_bytes()))
}

type RowError = (&'static str, String, String);

fn row(rec: &csv::ByteRecord) -> Result<Record<'_>, RowError> {
    if rec.len() != POLICE_HEADER.len() {
        if is_header(rec) {
            return Err(("*", "repeated header".into(), String::new()));
        }
        return Err((
            "*",
            format!(
                "wrong number of fields: expected {}, found {} (truncated or malformed row)",
                POLICE_HEADER.len(),
                rec.len()
            ),
            show(rec.as_slice()),
        ));
    }
    if is_header(rec) {
        return Err(("*", "repeated header".into(), String::new()));
    }
    let month = Month::parse_bytes(rec[MONTH].trim_ascii())
        .map_err(|e| ("Month", e.to_string(), show(&rec[MONTH])))?;
    let ctype = CrimeType::from_label_bytes(rec[CRIME_TYPE].trim_ascii()).ok_or_else(|| {
        (
            "Crime type",
            "unknown crime type: not one of the 14 police.uk categories".to_owned(),
            show(&rec[CRIME_TYPE]),
        )
    })?;
    let point = point(&rec[LON], &rec[LAT])?;
    let force = match text(&rec[REPORTED_BY]) {
        f if f.is_empty() => text(&rec[FALLS_WITHIN]),
        f => f,
    };
    Ok(Record {
        month,
        ctype,
        severity: Severity::None,
        point,
        crime_id: text(&rec[0]),
        location: text(&rec[LOCATION]),
        outcome: text(&rec[OUTCOME]),
        identity: Identity::Batch {
            force: if force.is_empty() {
                Cow::Borrowed("unknown")
            } else {
                force
            },
            month,
        },
    })
}

fn point(lon_b: &[u8], lat_b: &[u8]) -> Result<Option<(f64, f64)>, RowError> {
    let (lon_e, lat_e) = (lon_b.trim_ascii().is_empty(), lat_b.trim_ascii().is_empty());
    if lon_e && lat_e {
        return Ok(None);
    }
    if lon_e {
        return Err((
            "Longitude",
            "missing while Latitude is given".into(),
            String::new(),
        ));
    }
    if lat_e {
        return Err((
            "Latitude",
            "missing while Longitude is given".into(),
            String::new(),
        ));
    }
    let lon = number(lon_b).ok_or_else(|| ("Longitude", "not a number".to_owned(), show(lon_b)))?;
    let lat = number(lat_b).ok_or_else(|| ("Latitude", "not a number".to_owned(), show(lat_b)))?;
    check_lonlat(lon, lat).map_err(|(f, r)| (f, r, format!("{lon},{lat}")))?;
    Ok(Some((lon, lat)))
}
