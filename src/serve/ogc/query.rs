//! The query of `/collections/{id}/items` and `/items/{fid}`: parsed once, strictly
//! (unknown parameters, repeats and bad values are 400s).

use std::collections::BTreeMap;

use super::datetime::parse_datetime;
use crate::analysis::{AnalysisStore, Filter};
use crate::serve::AppError;
use crate::serve::params;

/// Parameters of `/items`.
pub const ITEMS_PARAMS: [&str; 13] = [
    "limit",
    "offset",
    "bbox",
    "bbox-crs",
    "crs",
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
pub const ITEM_PARAMS: [&str; 6] = ["datetime", "types", "severity", "district", "f", "crs"];
/// Parameters of `/queryables` (no geometry, so no `crs`).
pub const QUERYABLES_PARAMS: [&str; 5] = ["datetime", "types", "severity", "district", "f"];

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

/// A coordinate reference system of OGC API - Features Part 2: what `crs` asks the
/// geometries in and `bbox-crs` the box in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crs {
    /// WGS84 longitude, latitude (the default, GeoJSON's own).
    Crs84,
    /// WGS84 with EPSG's axis order: latitude, longitude.
    Epsg4326,
    /// British National Grid (OSGB36, OSTN15): easting, northing in metres.
    Bng,
}

impl Crs {
    /// Every CRS offered, the default first (the collections' `crs` list).
    pub const ALL: [Crs; 3] = [Crs::Crs84, Crs::Epsg4326, Crs::Bng];

    /// The CRS's URI (as `crs`, `bbox-crs`, `storageCrs` and `Content-Crs` name it).
    pub fn uri(self) -> &'static str {
        match self {
            Crs::Crs84 => super::CRS84,
            Crs::Epsg4326 => "http://www.opengis.net/def/crs/EPSG/0/4326",
            Crs::Bng => "http://www.opengis.net/def/crs/EPSG/0/27700",
        }
    }

    /// A CRS from its URI (http or https, as Part 2 allows) or the short `EPSG:27700` /
    /// `[EPSG:27700]` forms some clients send.
    ///
    /// # Errors
    /// A message listing the URIs offered.
    pub fn parse(v: &str) -> Result<Crs, String> {
        let t = v.trim();
        let t = t
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(t);
        let path = t
            .strip_prefix("http://www.opengis.net/def/crs/")
            .or_else(|| t.strip_prefix("https://www.opengis.net/def/crs/"));
        let code = match path {
            Some(p) => p.to_ascii_uppercase(),
            None => t.to_ascii_uppercase().replace("EPSG:", "EPSG/0/"),
        };
        match code.as_str() {
            "OGC/1.3/CRS84" | "OGC/0/CRS84" | "OGC:CRS84" => Ok(Crs::Crs84),
            "EPSG/0/4326" => Ok(Crs::Epsg4326),
            "EPSG/0/27700" => Ok(Crs::Bng),
            _ => Err(format!(
                "'{t}' is not a CRS offered here ({})",
                Crs::ALL.map(Crs::uri).join(", ")
            )),
        }
    }

    /// WGS84 longitude, latitude to this CRS's coordinates, in its axis order; None
    /// outside the OSTN15 grid (British National Grid).
    pub fn from_wgs84(self, lon: f64, lat: f64) -> Option<(f64, f64)> {
        match self {
            Crs::Crs84 => Some((lon, lat)),
            Crs::Epsg4326 => Some((lat, lon)),
            Crs::Bng => crate::spatial::bng::wgs84_to_bng(lon, lat).ok(),
        }
    }

    /// This CRS's coordinates, in its axis order, to WGS84 longitude, latitude.
    pub fn to_wgs84(self, x: f64, y: f64) -> Option<(f64, f64)> {
        match self {
            Crs::Crs84 => Some((x, y)),
            Crs::Epsg4326 => Some((y, x)),
            Crs::Bng => crate::spatial::bng::bng_to_wgs84(x, y).ok(),
        }
    }

    /// Decimals written: 7 of a degree (about 1 cm), 2 of a metre.
    pub fn decimals(self) -> usize {
        match self {
            Crs::Crs84 | Crs::Epsg4326 => 7,
            Crs::Bng => 2,
        }
    }

    /// The names of the two coordinate columns of a CSV, in axis order.
    pub fn axes(self) -> [&'static str; 2] {
        match self {
            Crs::Crs84 => ["lon", "lat"],
            Crs::Epsg4326 => ["lat", "lon"],
            Crs::Bng => ["easting", "northing"],
        }
    }
}

/// A bbox as asked: its WGS84 envelope, and when it was given in British National Grid
/// (`bbox-crs`), the grid rectangle itself as a WGS84 polygon (its edges densified), for
/// the exact test: a feature is in when it intersects the rectangle, not its envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Area {
    pub envelope: Bbox,
    pub exact: Option<geo::Polygon<f64>>,
    /// The box was cut to the part the transformation reaches (said in the answer).
    pub clamped: bool,
}

/// The part of the British National Grid a box in it is cut to: the OSTN15 grid
/// (eastings 0-700 km, northings 0-1,250 km) less 1 km of sea at each edge, where the
/// inverse transformation does not converge. No data lies there.
const BNG_REACH: [f64; 4] = [1_000.0, 1_000.0, 699_000.0, 1_249_000.0];

/// A parsed items query.
#[derive(Debug, Clone)]
pub struct ItemsQuery {
    pub limit: usize,
    pub offset: usize,
    pub bbox: Option<Area>,
    /// `crs`: the CRS of the geometries written (CRS84 unless asked).
    pub crs: Crs,
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
    let crs_of = |p: &str| {
        params
            .get(p)
            .map_or(Ok(Crs::Crs84), |v| Crs::parse(v).map_err(|e| bad(p, e)))
    };
    let crs = crs_of("crs")?;
    let bbox_crs = crs_of("bbox-crs")?;
    let bbox = params
        .get("bbox")
        .map(|v| parse_area(v, bbox_crs).map_err(|e| bad("bbox", e)))
        .transpose()?;
    if bbox.as_ref().is_some_and(|a| a.clamped) {
        notes.push("bbox cut to the OSTN15 grid of Great Britain".into());
    }
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
        crs,
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
    let (west, south, east, north) = four_numbers(v, "minLon,minLat,maxLon,maxLat")?;
    degrees(west, south, east, north)
}

/// A bbox in the CRS `bbox-crs` names: CRS84 as [`parse_bbox`]; EPSG:4326 in its own
/// axis order (`minLat,minLon,maxLat,maxLon`); British National Grid as
/// `minEasting,minNorthing,maxEasting,maxNorthing` in metres, inside the OSTN15 grid.
///
/// # Errors
/// A message for anything but four (or six) finite numbers in range with min <= max.
pub fn parse_area(v: &str, crs: Crs) -> Result<Area, String> {
    match crs {
        Crs::Crs84 => parse_bbox(v).map(|envelope| Area {
            envelope,
            exact: None,
            clamped: false,
        }),
        Crs::Epsg4326 => {
            let (south, west, north, east) = four_numbers(v, "minLat,minLon,maxLat,maxLon")?;
            degrees(west, south, east, north).map(|envelope| Area {
                envelope,
                exact: None,
                clamped: false,
            })
        }
        Crs::Bng => {
            let (w, s, e, n) = four_numbers(v, "minEasting,minNorthing,maxEasting,maxNorthing")?;
            if w > e || s > n {
                return Err("the minimum is above the maximum".into());
            }
            // A client zoomed right out (QGIS) sends boxes beyond the grid: cut to it,
            // as a CRS84 box larger than the cap is cut to the data.
            let [rw, rs, re, rn] = BNG_REACH;
            let c = (w.max(rw), s.max(rs), e.min(re), n.min(rn));
            if c.0 > c.2 || c.1 > c.3 {
                return Err(format!(
                    "the box lies outside the OSTN15 grid of Great Britain (eastings {rw}-{re}, northings {rs}-{rn} metres)"
                ));
            }
            let mut a = bng_area(c.0, c.1, c.2, c.3)?;
            a.clamped = c != (w, s, e, n);
            Ok(a)
        }
    }
}

/// The British National Grid rectangle as a WGS84 polygon: each edge cut into pieces of
/// at most 1 km (at most 64 per edge), so the polygon follows the grid's lines to well
/// under a metre, and its envelope.
fn bng_area(w: f64, s: f64, e: f64, n: f64) -> Result<Area, String> {
    let corners = [(w, s), (e, s), (e, n), (w, n), (w, s)];
    let mut ring: Vec<(f64, f64)> = Vec::new();
    for pair in corners.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        let len = (x1 - x0).abs().max((y1 - y0).abs());
        let pieces = ((len / 1000.0).ceil() as usize).clamp(1, 64);
        for k in 0..pieces {
            let t = k as f64 / pieces as f64;
            let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            let p = Crs::Bng.to_wgs84(x, y).ok_or_else(|| {
                format!("easting {x}, northing {y} is outside the OSTN15 grid of Great Britain")
            })?;
            ring.push(p);
        }
    }
    let (mut west, mut south) = (f64::INFINITY, f64::INFINITY);
    let (mut east, mut north) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    for &(x, y) in &ring {
        west = west.min(x);
        east = east.max(x);
        south = south.min(y);
        north = north.max(y);
    }
    ring.push(ring[0]);
    Ok(Area {
        envelope: Bbox {
            west,
            south,
            east,
            north,
        },
        exact: Some(geo::Polygon::new(geo::LineString::from(ring), vec![])),
        clamped: false,
    })
}

/// Four numbers (or six, the third and sixth heights, ignored), in the order given.
fn four_numbers(v: &str, order: &str) -> Result<(f64, f64, f64, f64), String> {
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
    match nums[..] {
        [w, s, e, n] | [w, s, _, e, n, _] => Ok((w, s, e, n)),
        _ => Err(format!(
            "expected 4 numbers {order} (or 6 with heights), got {}",
            nums.len()
        )),
    }
}

/// A box in degrees, checked: longitudes in -180..180, latitudes in -90..90, min <= max.
fn degrees(west: f64, south: f64, east: f64, north: f64) -> Result<Bbox, String> {
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
    fn crs_uris_and_short_forms() {
        for (v, c) in [
            ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", Crs::Crs84),
            ("https://www.opengis.net/def/crs/EPSG/0/27700", Crs::Bng),
            ("EPSG:27700", Crs::Bng),
            ("[EPSG:4326]", Crs::Epsg4326),
            ("http://www.opengis.net/def/crs/EPSG/0/4326", Crs::Epsg4326),
        ] {
            assert_eq!(Crs::parse(v), Ok(c), "{v}");
        }
        for bad in [
            "",
            "EPSG:3857",
            "http://www.opengis.net/def/crs/EPSG/0/277",
            "27700",
        ] {
            assert!(Crs::parse(bad).is_err(), "{bad}");
        }
        for c in Crs::ALL {
            assert_eq!(Crs::parse(c.uri()), Ok(c));
        }
    }

    #[test]
    fn bbox_in_each_crs() {
        let plain = parse_area("-3,53.5,-2,54", Crs::Crs84).unwrap();
        // EPSG:4326 is latitude first.
        let swapped = parse_area("53.5,-3,54,-2", Crs::Epsg4326).unwrap();
        assert_eq!(plain, swapped);
        assert_ne!(parse_area("-3,53.5,-2,54", Crs::Epsg4326).unwrap(), plain);
        // Latitude 100 in the latitude place.
        assert!(parse_area("53.5,-3,100,-2", Crs::Epsg4326).is_err());
        // A grid box around Preston: its polygon holds the grid points inside it and not
        // those just outside, whatever its WGS84 envelope holds.
        let a = parse_area("350000,425000,360000,435000", Crs::Bng).unwrap();
        assert!(!a.clamped);
        let exact = a.exact.as_ref().unwrap();
        let inside = |e: f64, n: f64| {
            let (lon, lat) = Crs::Bng.to_wgs84(e, n).unwrap();
            geo::Intersects::intersects(exact, &geo::Point::new(lon, lat))
        };
        for (e, n, want) in [
            (355_000.0, 430_000.0, true),
            (350_005.0, 425_005.0, true),
            (359_995.0, 434_995.0, true),
            (349_995.0, 430_000.0, false),
            (360_005.0, 430_000.0, false),
            (355_000.0, 424_995.0, false),
            (355_000.0, 435_005.0, false),
        ] {
            assert_eq!(inside(e, n), want, "{e},{n}");
        }
        // The grid's lines are not meridians and parallels: a corner of the WGS84
        // envelope lies off the grid box, and the polygon leaves it out.
        let env = a.envelope;
        let off: Vec<(f64, f64)> = [
            (env.west, env.south),
            (env.east, env.south),
            (env.east, env.north),
            (env.west, env.north),
        ]
        .into_iter()
        .filter(|&(lon, lat)| {
            let (e, n) = Crs::Bng.from_wgs84(lon, lat).unwrap();
            !((350_000.0..=360_000.0).contains(&e) && (425_000.0..=435_000.0).contains(&n))
        })
        .collect();
        assert!(!off.is_empty());
        for (lon, lat) in off {
            assert!(!geo::Intersects::intersects(
                exact,
                &geo::Point::new(lon, lat)
            ));
        }
        // Beyond the grid: cut to it, said; wholly outside: refused.
        let big = parse_area("-100000,-100000,900000,1400000", Crs::Bng).unwrap();
        assert!(big.clamped);
        assert!(
            big.envelope.west < -7.0 && big.envelope.north > 60.0,
            "{:?}",
            big.envelope
        );
        assert!(parse_area("-9000,0,-1000,10", Crs::Bng).is_err());
        assert!(parse_area("360000,425000,350000,435000", Crs::Bng).is_err());
        assert!(parse_area("1,2,3", Crs::Bng).is_err());
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
