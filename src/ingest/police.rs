//! police.uk street-level crime CSV (`YYYY-MM-<force>-street.csv`).
//!
//! Each row: `Crime ID, Month, Reported by, Falls within, Longitude, Latitude, Location,
//! LSOA code, LSOA name, Crime type, Last outcome category, Context`. Anti-social
//! behaviour rows have no Crime ID; rows police.uk could not map have empty coordinates
//! and `No Location` and are stored as unlocated. A (force, month) is the unit of
//! replacement: police.uk re-issues months with updated outcomes.

use crate::model::{CrimeType, Month, Severity};

use super::detect::POLICE_HEADER;
use super::fields::{check_lonlat, number, show, strip_bom};
use super::scan::{Row, Scanner};
use super::{FileStats, Identity, IngestError, Record, Sink, Text};

const MONTH: usize = 1;
const REPORTED_BY: usize = 2;
const FALLS_WITHIN: usize = 3;
const LON: usize = 4;
const LAT: usize = 5;
const LOCATION: usize = 6;
const LSOA_CODE: usize = 7;
const CRIME_TYPE: usize = 9;
const OUTCOME: usize = 10;

pub(super) fn parse(
    file: &str,
    bytes: &[u8],
    sink: &mut dyn Sink,
) -> Result<FileStats, IngestError> {
    let mut scan = Scanner::new(bytes);
    match scan.next_row() {
        Some((_, h)) if is_header(&h) => {}
        Some((line, _)) => {
            return Err(IngestError::Header {
                file: file.to_owned(),
                line,
                reason: format!("expected the police.uk header {}", POLICE_HEADER.join(",")),
            });
        }
        None => {
            return Err(IngestError::Header {
                file: file.to_owned(),
                line: 1,
                reason: "the file is empty: no header line".into(),
            });
        }
    }
    super::drive(file, &mut scan, sink, row)
}

fn is_header(rec: &Row<'_>) -> bool {
    rec.len() == POLICE_HEADER.len()
        && rec
            .iter()
            .zip(POLICE_HEADER)
            .all(|(f, h)| strip_bom(f).trim_ascii().eq_ignore_ascii_case(h.as_bytes()))
}

type RowError = (&'static str, String, String);

fn row<'r>(rec: &Row<'r>) -> Result<Record<'r>, RowError> {
    if rec.len() != POLICE_HEADER.len() {
        return Err((
            "*",
            format!(
                "wrong number of fields: expected {}, found {} (truncated or malformed row)",
                POLICE_HEADER.len(),
                rec.len()
            ),
            show(&rec.raw()),
        ));
    }
    let month_b = rec.get(MONTH).trim_ascii();
    let month = match Month::parse_bytes(month_b) {
        Ok(m) => m,
        Err(_) if is_header(rec) => return Err(("*", "repeated header".into(), String::new())),
        Err(e) => return Err(("Month", e.to_string(), show(month_b))),
    };
    let ctype_b = rec.get(CRIME_TYPE).trim_ascii();
    let ctype = CrimeType::from_label_bytes(ctype_b)
        .filter(|c| CrimeType::police_uk().contains(c))
        .ok_or_else(|| {
            (
                "Crime type",
                "unknown crime type: not one of the 14 police.uk categories".to_owned(),
                show(ctype_b),
            )
        })?;
    let point = point(rec.get(LON), rec.get(LAT))?;
    let reported = rec.get(REPORTED_BY);
    let force = if reported.trim_ascii().is_empty() {
        rec.get(FALLS_WITHIN)
    } else {
        reported
    };
    Ok(Record {
        month,
        day: None,
        minute: None,
        ctype,
        severity: Severity::None,
        point,
        crime_id: Text::raw(rec.get(0)),
        lsoa_code: Text::raw(rec.get(LSOA_CODE)),
        location: street(rec.get(LOCATION)),
        outcome: Text::raw(rec.get(OUTCOME)),
        identity: Identity::Batch {
            force: Text::raw(force),
            month,
        },
    })
}

/// The `Location` text, where police.uk's bare "On or near " (a snap point with no street
/// name) is no street at all.
pub(super) fn street(b: &[u8]) -> Text<'_> {
    let t = b.trim_ascii();
    if t.eq_ignore_ascii_case(b"On or near") {
        Text::default()
    } else {
        Text::raw(b)
    }
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
