//! The query of `/collections/{id}/items` and `/items/{fid}`: parsed once, strictly
//! (unknown parameters, repeats and bad values are 400s).

use std::collections::BTreeMap;

use super::datetime::parse_datetime;
use crate::analysis::{AnalysisStore, Filter};
use crate::serve::AppError;
use crate::serve::params;

/// Parameters of `/items`.
pub const ITEMS_PARAMS: [&str; 11] = [
    "limit",
    "offset",
    "bbox",
    "datetime",
    "types",
    "severity",
    "district",
    "f",
    "sortby",
    "properties",
    "skipGeometry",
];
/// Parameters of `/items/{fid}`.
pub const ITEM_PARAMS: [&str; 5] = ["datetime", "types", "severity", "district", "f"];

/// Features per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 10;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 10_000;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    GeoJson,
    Csv,
    /// A page for people (`f=html`, or a browser's `Accept`): items only.
    Html,
}

/// West, south, east, north in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bbox {
    pub west: f64,
    pub south: f64,
    pub east: f64,
    pub north: f64,
}

/// A parsed items query.
#[derive(Debug, Clone)]
pub struct ItemsQuery {
    pub limit: usize,
    pub offset: usize,
    pub bbox: Option<Bbox>,
    pub format: Format,
    pub filter: Filter,
    /// The decoded parameters, for building paging links.
    pub params: BTreeMap<String, String>,
    /// What was changed to serve the request (a `limit` capped), said in the answer.
    pub notes: Vec<String>,
    /// Property filters (`name=Preston`): the parameters no definition names, each to
    /// equal a property of the collection (checked against it when it is known).
    pub props: BTreeMap<String, String>,
    /// `sortby=-count,name`: (property, descending).
    pub sortby: Vec<(String, bool)>,
    /// `properties=name,count`: only these properties, in this order.
    pub properties: Option<Vec<String>>,
    /// `skipGeometry=true`: features without their geometry.
    pub skip_geometry: bool,
}

/// Parses an items query (`allowed` is [`ITEMS_PARAMS`] or [`ITEM_PARAMS`]).
///
/// # Errors
/// 400 naming the parameter and what is wrong with it.
pub fn parse(
    raw: Option<&str>,
    allowed: &[&str],
    store: &AnalysisStore,
) -> Result<ItemsQuery, AppError> {
    // Items take property filters (any other name); a single item does not.
    let (mut params, props) = if allowed.contains(&"properties") {
        params::split(raw, allowed)?
    } else {
        (params::parse(raw, allowed)?, BTreeMap::new())
    };
    let bad = |p: &str, e: String| AppError::BadRequest(format!("parameter '{p}': {e}"));
    let names = |v: &str| -> Vec<String> {
        v.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let sortby = params.get("sortby").map_or_else(Vec::new, |v| {
        names(v)
            .into_iter()
            .map(|n| match n.strip_prefix('-') {
                Some(d) => (d.to_owned(), true),
                None => (n.trim_start_matches('+').to_owned(), false),
            })
            .collect()
    });
    let properties = params.get("properties").map(|v| names(v));
    let skip_geometry = match params.get("skipGeometry").map(|v| v.trim()) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(bad(
                "skipGeometry",
                format!("'{other}' is not true or false"),
            ));
        }
    };
    let mut notes = Vec::new();
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => {
            let (n, capped) = parse_limit(v).map_err(|e| bad("limit", e))?;
            if capped {
                notes.push(format!("limit {} capped to {MAX_LIMIT}", v.trim()));
            }
            n
        }
    };
    let offset = match params.get("offset") {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| bad("offset", format!("'{v}' is not a whole number from 0")))?
            as usize,
    };
    let bbox = params
        .get("bbox")
        .map(|v| parse_bbox(v).map_err(|e| bad("bbox", e)))
        .transpose()?;
    let format = match params.get("f").map(|f| f.trim()) {
        None | Some("json" | "geojson") => Format::GeoJson,
        Some("csv") => Format::Csv,
        Some("html") => Format::Html,
        Some(other) => return Err(bad("f", format!("'{other}' is not json, csv or html"))),
    };
    let filter = filter(&params, store)?;
    // Paging links carry the property filters too.
    params.extend(props.clone());
    Ok(ItemsQuery {
        limit,
        offset,
        bbox,
        format,
        filter,
        params,
        notes,
        props,
        sortby,
        properties,
        skip_geometry,
    })
}

/// A `limit` from 1 up; above [`MAX_LIMIT`] it is capped (as pygeoapi and the OGC
/// standard allow), with `true` for "capped".
fn parse_limit(v: &str) -> Result<(usize, bool), String> {
    let n: u64 = v
        .trim()
        .parse()
        .map_err(|_| format!("'{v}' is not a whole number from 1"))?;
    if n < 1 {
        return Err(format!("{n} is not 1 or more"));
    }
    Ok(((n as usize).min(MAX_LIMIT), n > MAX_LIMIT as u64))
}

/// `minLon,minLat,maxLon,maxLat` in WGS84 degrees, or the six-number form with heights
/// (`minLon,minLat,minHeight,maxLon,maxLat,maxHeight`, OGC API - Features part 1), the
/// heights ignored.
///
/// # Errors
/// A message for anything but four or six finite numbers in range with min <= max.
pub fn parse_bbox(v: &str) -> Result<Bbox, String> {
    let nums: Vec<f64> = v
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| format!("'{}' is not a number", p.trim()))
        })
        .collect::<Result<_, _>>()?;
    let (west, south, east, north) = match nums[..] {
        [w, s, e, n] => (w, s, e, n),
        [w, s, _, e, n, _] => (w, s, e, n),
        _ => {
            return Err(format!(
                "expected 4 numbers minLon,minLat,maxLon,maxLat (or 6 with heights), got {}",
                nums.len()
            ));
        }
    };
    for lon in [west, east] {
        if !(-180.0..=180.0).contains(&lon) {
            return Err(format!("longitude {lon} is outside -180..180"));
        }
    }
    for lat in [south, north] {
        if !(-90.0..=90.0).contains(&lat) {
            return Err(format!("latitude {lat} is outside -90..90"));
        }
    }
    if west > east || south > north {
        return Err("the minimum is above the maximum".into());
    }
    Ok(Bbox {
        west,
        south,
        east,
        north,
    })
}

/// The incident filter: `types`, `severity` and `district` as everywhere, months from
/// `datetime`.
fn filter(params: &BTreeMap<String, String>, store: &AnalysisStore) -> Result<Filter, AppError> {
    let mut p: BTreeMap<String, String> = params
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "types" | "severity" | "district"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(dt) = params.get("datetime") {
        let (from, to) = parse_datetime(dt)
            .map_err(|e| AppError::BadRequest(format!("parameter 'datetime': {e}")))?;
        if let Some(m) = from {
            p.insert("from".into(), m.to_string());
        }
        if let Some(m) = to {
            p.insert("to".into(), m.to_string());
        }
    }
    params::filter(&p, store)
}

/// The query string with `offset` replaced (for `next` and `prev`).
pub fn with_offset(params: &BTreeMap<String, String>, offset: usize) -> String {
    let mut p = params.clone();
    p.remove("offset");
    if offset > 0 {
        p.insert("offset".into(), offset.to_string());
    }
    p.iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes all but unreserved characters and the comma.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~,".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bbox_and_limit() {
        assert_eq!(
            parse_bbox("-3, 53.5,-2,54").unwrap(),
            Bbox {
                west: -3.0,
                south: 53.5,
                east: -2.0,
                north: 54.0
            }
        );
        for bad in [
            "1,2,3",
            "a,b,c,d",
            "-2,53,-3,54",
            "-3,95,-2,96",
            "-3,53,-2,NaN",
            "1,2,3,4,5",
            "1,2,0,3,4,0,5",
            "",
        ] {
            assert!(parse_bbox(bad).is_err(), "{bad}");
        }
        // Six numbers: the heights are ignored.
        assert_eq!(
            parse_bbox("-3,53.5,0,-2,54,100"),
            parse_bbox("-3,53.5,-2,54")
        );
        assert_eq!(parse_limit("10000"), Ok((10_000, false)));
        assert_eq!(parse_limit("10001"), Ok((10_000, true)));
        for bad in ["0", "-1", "x", "1.5", ""] {
            assert!(parse_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn offsets_and_encoding() {
        let mut p = BTreeMap::new();
        p.insert("limit".to_owned(), "5".to_owned());
        p.insert("types".to_owned(), "Anti-social behaviour".to_owned());
        assert_eq!(
            with_offset(&p, 10),
            "limit=5&offset=10&types=Anti-social%20behaviour"
        );
        assert_eq!(with_offset(&p, 0), "limit=5&types=Anti-social%20behaviour");
    }
}
