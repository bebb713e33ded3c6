//! GeoJSON point incidents: a FeatureCollection of Point features whose properties hold
//! a `month` or `date`, a `category` (or `crime_type`, `type`) and optionally an `id`.
//! Features are numbered from 1 in reject reports (the "line").

use serde_json::Value;

use crate::model::{CrimeType, Severity, parse_when};

use super::fields::{check_lonlat, strip_bom};
use super::{FileStats, Identity, IngestError, Record, Reject, Sink, Text};

pub(super) fn parse(
    file: &str,
    bytes: &[u8],
    sink: &mut dyn Sink,
) -> Result<FileStats, IngestError> {
    let v: Value = serde_json::from_slice(strip_bom(bytes)).map_err(|e| IngestError::Format {
        file: file.to_owned(),
        reason: format!(
            "not valid JSON at line {} column {}: {e}",
            e.line(),
            e.column()
        ),
    })?;
    let features = match (v.get("type").and_then(Value::as_str), v.get("features")) {
        (Some("FeatureCollection"), Some(Value::Array(f))) => f,
        _ => {
            return Err(IngestError::Format {
                file: file.to_owned(),
                reason: "not a GeoJSON FeatureCollection".into(),
            });
        }
    };
    let mut stats = FileStats::default();
    for (i, f) in features.iter().enumerate() {
        stats.rows_read += 1;
        match feature(f) {
            Ok(r) => {
                stats.records += 1;
                stats.unlocated += u64::from(r.point.is_none());
                sink.record(&r)?;
            }
            Err((field, reason)) => stats.reject(Reject {
                file: file.to_owned(),
                line: i as u64 + 1,
                field: field.into(),
                reason,
                value: String::new(),
            }),
        }
    }
    Ok(stats)
}

fn prop<'a>(props: &'a serde_json::Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|n| props.get(*n))
        .filter(|v| !v.is_null())
}

fn feature(f: &Value) -> Result<Record<'_>, (&'static str, String)> {
    let props = f.get("properties").and_then(Value::as_object).ok_or((
        "properties",
        "missing properties: month and category are required".to_owned(),
    ))?;
    let point = match f.get("geometry") {
        None | Some(Value::Null) => None,
        Some(g) => {
            if g.get("type").and_then(Value::as_str) != Some("Point") {
                return Err(("geometry", "not a Point".into()));
            }
            let c = g
                .get("coordinates")
                .and_then(Value::as_array)
                .ok_or(("geometry", "no coordinates".to_owned()))?;
            let (Some(lon), Some(lat)) = (
                c.first().and_then(Value::as_f64),
                c.get(1).and_then(Value::as_f64),
            ) else {
                return Err(("geometry", "coordinates are not numbers".into()));
            };
            check_lonlat(lon, lat).map_err(|(_, r)| ("geometry", r))?;
            Some((lon, lat))
        }
    };
    let date = prop(props, &["month", "date", "Month"])
        .and_then(Value::as_str)
        .ok_or(("month", "missing month or date".to_owned()))?;
    let when = parse_when(date).map_err(|e| ("month", e.to_string()))?;
    let cat = prop(props, &["category", "crime_type", "Crime type", "type"])
        .and_then(Value::as_str)
        .ok_or(("category", "missing category".to_owned()))?;
    let ctype =
        CrimeType::parse_lenient(cat).ok_or(("category", format!("unknown category '{cat}'")))?;
    let id = prop(props, &["id", "crime_id", "Crime ID"]).map(|v| match v {
        Value::String(s) => Text::raw(s.as_bytes()),
        other => Text::owned(other.to_string()),
    });
    let location = prop(props, &["location", "Location"])
        .and_then(Value::as_str)
        .unwrap_or("");
    let lsoa_code = prop(props, &["lsoa_code", "LSOA code", "LSOA11CD", "LSOA21CD"])
        .and_then(Value::as_str)
        .unwrap_or("");
    Ok(Record {
        month: when.month,
        day: when.day,
        minute: when.minute,
        ctype,
        severity: Severity::None,
        point,
        crime_id: id.clone().unwrap_or_default(),
        lsoa_code: Text::raw(lsoa_code.as_bytes()),
        location: Text::raw(location.as_bytes()),
        outcome: Text::default(),
        identity: match id {
            Some(key) if !key.is_blank() => Identity::Key {
                source: "geojson",
                key,
            },
            _ => Identity::None,
        },
    })
}
