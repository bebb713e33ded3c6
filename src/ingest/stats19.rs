//! DfT STATS19 road collision CSV, every header vintage: `accident_*` (to 2022),
//! `collision_*` (from late 2023) and the 44-column 2024 file (`*_historic` columns,
//! `local_authority_highway_current`, `collision_injury_based`,
//! `collision_adjusted_severity_*`), found by column name, not position. Dates are
//! `DD/MM/YYYY`, spreadsheet-saved `D/M/YYYY` or `YYYY-MM-DD`; the day and the `time`
//! (HH:MM) are kept.
//!
//! Locations come from the OSGR easting/northing through OSTN15 when present, else from
//! the longitude/latitude columns; missing values are empty, `-1` or `NULL`. Severity
//! 1/2/3 is kept; -1 or 9 means unknown. Rows upsert by collision index.

use crate::model::{CrimeType, Severity, parse_time, parse_when};
use crate::spatial::bng::bng_to_wgs84;

use super::detect::header_fields;
use super::fields::{check_bng, check_lonlat, is_missing, number, show, text};
use super::scan::{Row, Scanner};
use super::{FileStats, Identity, IngestError, Record, Sink, Text};

struct Columns {
    /// The file's own names for the index and severity columns (vintage-dependent).
    index_name: String,
    severity_name: String,
    index: usize,
    severity: Option<usize>,
    date: usize,
    time: Option<usize>,
    easting: Option<usize>,
    northing: Option<usize>,
    lon: Option<usize>,
    lat: Option<usize>,
    lsoa: Option<usize>,
    width: usize,
}

fn columns(file: &str, header: &[String]) -> Result<Columns, IngestError> {
    let find = |names: &[&str]| header.iter().position(|h| names.contains(&h.as_str()));
    let need = |names: &[&str]| {
        find(names).ok_or_else(|| IngestError::Header {
            file: file.to_owned(),
            line: 1,
            reason: format!("STATS19 header lacks a {} column", names.join("/")),
        })
    };
    let index = need(&["collision_index", "accident_index"])?;
    let severity = find(&["collision_severity", "accident_severity"]);
    let c = Columns {
        index_name: header[index].clone(),
        severity_name: severity
            .map_or_else(|| "collision_severity".to_owned(), |i| header[i].clone()),
        index,
        severity,
        date: need(&["date", "collision_date", "accident_date"])?,
        time: find(&["time", "collision_time", "accident_time"]),
        easting: find(&["location_easting_osgr"]),
        northing: find(&["location_northing_osgr"]),
        lon: find(&["longitude"]),
        lat: find(&["latitude"]),
        lsoa: find(&["lsoa_of_accident_location", "lsoa_of_collision_location"]),
        width: header.len(),
    };
    if (c.easting.is_none() || c.northing.is_none()) && (c.lon.is_none() || c.lat.is_none()) {
        return Err(IngestError::Header {
            file: file.to_owned(),
            line: 1,
            reason: "STATS19 header has neither location_easting_osgr/location_northing_osgr nor longitude/latitude".into(),
        });
    }
    Ok(c)
}

pub(super) fn parse(
    file: &str,
    bytes: &[u8],
    sink: &mut dyn Sink,
) -> Result<FileStats, IngestError> {
    let header = header_fields(bytes);
    let cols = columns(file, &header)?;
    let mut scan = Scanner::new(bytes);
    let _header = scan.next_row();
    super::drive(file, &mut scan, sink, |rec| row(&cols, rec))
}

type RowError = (String, String, String);

fn row<'r>(c: &Columns, rec: &Row<'r>) -> Result<Record<'r>, RowError> {
    let err = |f: &str, r: String, v: &[u8]| (f.to_owned(), r, show(v));
    if rec.len() != c.width {
        let f = rec.get(c.index).trim_ascii();
        if f.eq_ignore_ascii_case(b"accident_index") || f.eq_ignore_ascii_case(b"collision_index") {
            return Err(err("*", "repeated header".into(), b""));
        }
        return Err(err(
            "*",
            format!(
                "wrong number of fields: expected {}, found {} (truncated or malformed row)",
                c.width,
                rec.len()
            ),
            &rec.raw(),
        ));
    }
    let index_b = rec.get(c.index).trim_ascii();
    let index = text(index_b);
    if index.is_empty() {
        return Err(err(&c.index_name, "missing collision index".into(), b""));
    }
    if index.eq_ignore_ascii_case("accident_index") || index.eq_ignore_ascii_case("collision_index")
    {
        return Err(err("*", "repeated header".into(), b""));
    }
    let when = parse_when(&text(rec.get(c.date)))
        .map_err(|e| err("date", e.to_string(), rec.get(c.date)))?;
    let minute = match c.time.map(|i| rec.get(i)).filter(|t| !is_missing(t)) {
        None => when.minute,
        Some(t) => Some(
            parse_time(&text(t))
                .ok_or_else(|| err("time", "not a time: expected HH:MM".into(), t))?,
        ),
    };
    let severity = match c.severity.map(|i| rec.get(i).trim_ascii()) {
        None | Some(b"-1" | b"9" | b"" | b"NULL" | b"null") => Severity::None,
        Some(b"1") => Severity::Fatal,
        Some(b"2") => Severity::Serious,
        Some(b"3") => Severity::Slight,
        Some(other) => {
            return Err(err(&c.severity_name, "not 1, 2, 3, 9 or -1".into(), other));
        }
    };
    let point = match (c.easting, c.northing) {
        (Some(e), Some(n)) if !is_missing(rec.get(e)) && !is_missing(rec.get(n)) => {
            let east = number(rec.get(e))
                .ok_or_else(|| err("location_easting_osgr", "not a number".into(), rec.get(e)))?;
            let north = number(rec.get(n))
                .ok_or_else(|| err("location_northing_osgr", "not a number".into(), rec.get(n)))?;
            check_bng(east, north)
                .map_err(|(f, r)| (format!("location_{f}_osgr"), r, format!("{east},{north}")))?;
            Some(
                bng_to_wgs84(east, north)
                    .map_err(|e| err("location_easting_osgr", e.to_string(), b""))?,
            )
        }
        _ => lonlat(c, rec)?,
    };
    Ok(Record {
        month: when.month,
        day: when.day,
        minute,
        ctype: CrimeType::RoadCollision,
        severity,
        point,
        crime_id: Text::raw(index_b),
        lsoa_code: c
            .lsoa
            .map(|i| rec.get(i))
            .filter(|v| !is_missing(v))
            .map_or(Text::default(), Text::raw),
        location: Text::default(),
        outcome: Text::default(),
        identity: Identity::Key {
            source: "stats19",
            key: Text::raw(index_b),
        },
    })
}

fn lonlat(c: &Columns, rec: &Row<'_>) -> Result<Option<(f64, f64)>, RowError> {
    let (Some(lo), Some(la)) = (c.lon, c.lat) else {
        return Ok(None);
    };
    if is_missing(rec.get(lo)) || is_missing(rec.get(la)) {
        return Ok(None);
    }
    let lon = number(rec.get(lo)).ok_or_else(|| {
        (
            "longitude".to_owned(),
            "not a number".to_owned(),
            show(rec.get(lo)),
        )
    })?;
    let lat = number(rec.get(la)).ok_or_else(|| {
        (
            "latitude".to_owned(),
            "not a number".to_owned(),
            show(rec.get(la)),
        )
    })?;
    check_lonlat(lon, lat).map_err(|(f, r)| (f.to_ascii_lowercase(), r, format!("{lon},{lat}")))?;
    Ok(Some((lon, lat)))
}
