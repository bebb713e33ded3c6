//! Generic incident CSV with named columns, as force and council extracts come: WGS84
//! `longitude`/`latitude` (or `lon`/`lat`, `x`/`y`) or British National Grid
//! `easting`/`northing`; `date` or `month`; `category` (or `crime_type`, `type`,
//! `offence`); optional `id` (or `crime_id`, `incident_id`, `reference`) and `location`.
//! Rows with an id upsert by it; categories are matched leniently to [`CrimeType`].

use crate::model::{CrimeType, Severity, parse_time, parse_when};
use crate::spatial::bng::bng_to_wgs84;

use super::detect::header_fields;
use super::fields::{check_bng, check_lonlat, is_missing, number, show, text};
use super::scan::{Row, Scanner};
use super::{FileStats, Identity, IngestError, Record, Sink, Text};

const LON: &[&str] = &["longitude", "lon", "lng", "long", "x"];
const LAT: &[&str] = &["latitude", "lat", "y"];
const EAST: &[&str] = &["easting", "eastings", "bng_easting", "x_bng", "east"];
const NORTH: &[&str] = &["northing", "northings", "bng_northing", "y_bng", "north"];
const DATE: &[&str] = &[
    "date",
    "month",
    "occurred",
    "date_occurred",
    "occurrence_date",
];
const CATEGORY: &[&str] = &[
    "category",
    "crime_type",
    "crime type",
    "type",
    "offence",
    "offence_type",
];
const ID: &[&str] = &[
    "id",
    "crime_id",
    "crime id",
    "incident_id",
    "reference",
    "ref",
];
const LOCATION: &[&str] = &["location", "street", "address"];
const LSOA: &[&str] = &["lsoa_code", "lsoa code", "lsoa11cd", "lsoa21cd", "lsoa"];
const TIME: &[&str] = &["time", "time_occurred", "occurrence_time"];

/// Column positions of a generic CSV.
#[derive(Debug, Clone)]
pub struct GenericColumns {
    coords: Coords,
    date: usize,
    category: usize,
    id: Option<usize>,
    location: Option<usize>,
    lsoa: Option<usize>,
    time: Option<usize>,
    width: usize,
}

#[derive(Debug, Clone, Copy)]
enum Coords {
    LonLat(usize, usize),
    Bng(usize, usize),
}

impl GenericColumns {
    /// Finds the columns in a lower-cased header; `Err` says what is missing.
    ///
    /// # Errors
    /// When coordinates, a date/month or a category column is missing.
    pub fn from_header(header: &[String]) -> Result<Self, String> {
        let find = |names: &[&str]| header.iter().position(|h| names.contains(&h.as_str()));
        let coords = match (find(LON), find(LAT), find(EAST), find(NORTH)) {
            (_, _, Some(e), Some(n)) => Coords::Bng(e, n),
            (Some(x), Some(y), _, _) => Coords::LonLat(x, y),
            _ => return Err("coordinate columns (longitude/latitude or easting/northing)".into()),
        };
        Ok(GenericColumns {
            coords,
            date: find(DATE).ok_or("a date or month column")?,
            category: find(CATEGORY).ok_or("a category column")?,
            id: find(ID),
            location: find(LOCATION),
            lsoa: find(LSOA),
            time: find(TIME),
            width: header.len(),
        })
    }
}

pub(super) fn parse(
    file: &str,
    bytes: &[u8],
    sink: &mut dyn Sink,
) -> Result<FileStats, IngestError> {
    let header = header_fields(bytes);
    let cols = GenericColumns::from_header(&header).map_err(|missing| IngestError::Header {
        file: file.to_owned(),
        line: 1,
        reason: format!("generic CSV header lacks {missing}"),
    })?;
    let mut scan = Scanner::new(bytes);
    let _header = scan.next_row();
    super::drive(file, &mut scan, sink, |rec| row(&cols, &header, rec))
}

type RowError = (String, String, String);

fn row<'r>(c: &GenericColumns, header: &[String], rec: &Row<'r>) -> Result<Record<'r>, RowError> {
    let name = |i: usize| header.get(i).cloned().unwrap_or_default();
    if rec.len() != c.width {
        return Err((
            "*".into(),
            format!(
                "wrong number of fields: expected {}, found {} (truncated or malformed row)",
                c.width,
                rec.len()
            ),
            show(&rec.raw()),
        ));
    }
    let header_again = rec
        .iter()
        .zip(header)
        .all(|(f, h)| text(f).eq_ignore_ascii_case(h));
    if header_again {
        return Err(("*".into(), "repeated header".into(), String::new()));
    }
    let date = text(rec.get(c.date));
    let mut when =
        parse_when(&date).map_err(|e| (name(c.date), e.to_string(), show(rec.get(c.date))))?;
    if let Some(t) = c
        .time
        .map(|i| (i, rec.get(i)))
        .filter(|(_, t)| !is_missing(t))
    {
        let minute = parse_time(&text(t.1)).ok_or_else(|| {
            (
                name(t.0),
                "not a time: expected HH:MM".to_owned(),
                show(t.1),
            )
        })?;
        when.minute = Some(minute);
    }
    let cat = text(rec.get(c.category));
    let ctype = CrimeType::parse_lenient(&cat).ok_or_else(|| {
        (
            name(c.category),
            "unknown category: not a police.uk crime type or known alias".into(),
            show(rec.get(c.category)),
        )
    })?;
    let point = match c.coords {
        Coords::LonLat(x, y) => point(rec, x, y, header, false)?,
        Coords::Bng(e, n) => point(rec, e, n, header, true)?,
    };
    let id =
        c.id.map(|i| rec.get(i).trim_ascii())
            .filter(|s| !s.is_empty());
    Ok(Record {
        month: when.month,
        day: when.day,
        minute: when.minute,
        ctype,
        severity: Severity::None,
        point,
        crime_id: Text::raw(id.unwrap_or_default()),
        lsoa_code: c.lsoa.map_or(Text::default(), |i| Text::raw(rec.get(i))),
        location: c
            .location
            .map_or(Text::default(), |i| Text::raw(rec.get(i))),
        outcome: Text::default(),
        identity: match id {
            Some(key) => Identity::Key {
                source: "generic",
                key: Text::raw(key),
            },
            None => Identity::None,
        },
    })
}

fn point(
    rec: &Row<'_>,
    a: usize,
    b: usize,
    header: &[String],
    bng: bool,
) -> Result<Option<(f64, f64)>, RowError> {
    let name = |i: usize| header.get(i).cloned().unwrap_or_default();
    if rec.get(a).trim_ascii().is_empty() && rec.get(b).trim_ascii().is_empty()
        || (is_missing(rec.get(a)) && is_missing(rec.get(b)))
    {
        return Ok(None);
    }
    let x =
        number(rec.get(a)).ok_or_else(|| (name(a), "not a number".to_owned(), show(rec.get(a))))?;
    let y =
        number(rec.get(b)).ok_or_else(|| (name(b), "not a number".to_owned(), show(rec.get(b))))?;
    if bng {
        check_bng(x, y).map_err(|(f, r)| {
            (
                if f == "easting" { name(a) } else { name(b) },
                r,
                format!("{x},{y}"),
            )
        })?;
        let p = bng_to_wgs84(x, y).map_err(|e| (name(a), e.to_string(), format!("{x},{y}")))?;
        return Ok(Some(p));
    }
    check_lonlat(x, y).map_err(|(f, r)| {
        (
            if f == "Longitude" { name(a) } else { name(b) },
            r,
            format!("{x},{y}"),
        )
    })?;
    Ok(Some((x, y)))
}
