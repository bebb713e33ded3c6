//! The fixed geography every month shares: LSOAs, their snap points and the snap points of
//! each planted hotspot.
//!
//! police.uk moves every incident to the nearest of a fixed set of anonymisation points
//! ("On or near ..."), so real files repeat the same few tens of thousands of coordinates.
//! We mimic that with about 30 points per LSOA, drawn uniformly inside its polygon, each with
//! a street or place name, and precompute the CSV text of each point once.

use std::ops::Range;
use std::path::Path;

use geo::{Area, BoundingRect, Centroid, Contains, Intersects, MultiPolygon, Point, Rect};
use rand::Rng;

use super::{
    GenerateError, STREAM_LAYOUT, Weighted, distance_m, point_in_disc, push_csv_field, stream_rng,
};
use crate::generate::hotspots::planted_hotspots;

/// One LSOA of the boundary file.
#[derive(Debug)]
pub(super) struct Lsoa {
    pub code: String,
    pub lad_code: String,
    pub area_km2: f64,
    pub polygon: MultiPolygon<f64>,
    bbox: Rect<f64>,
}

/// An anonymisation point.
#[derive(Debug)]
pub(super) struct SnapPoint {
    pub lon: f64,
    pub lat: f64,
    pub lsoa: u32,
    /// `Longitude,Latitude,Location,LSOA code,LSOA name` as police.uk writes them.
    pub police_text: String,
}

/// Snap points of one planted hotspot and how often each is chosen.
#[derive(Debug)]
pub(super) struct HotspotPoints {
    pub points: Vec<u32>,
    pub weights: Weighted,
}

#[derive(Debug)]
pub(super) struct Layout {
    pub lsoas: Vec<Lsoa>,
    pub points: Vec<SnapPoint>,
    /// The background snap points of each LSOA (contiguous in `points`).
    pub lsoa_points: Vec<Range<u32>>,
    /// Background choice of LSOA: busier where LSOAs are small (dense, urban).
    pub lsoa_weights: Weighted,
    /// Parallel to `planted_hotspots()`.
    pub hotspots: Vec<HotspotPoints>,
}

const MIN_POINTS_PER_LSOA: u32 = 24;
const MAX_POINTS_PER_LSOA: u32 = 36;
/// A hotspot with fewer snap points within its radius gets new ones.
const MIN_HOTSPOT_POINTS: usize = 5;
const REJECTION_TRIES: u32 = 2_000;

impl Layout {
    /// Reads the LSOA polygons and draws the snap points.
    pub fn build(path: Option<&Path>, seed: u64) -> Result<Layout, GenerateError> {
        let lsoas_named = read_lsoas(path)?;
        let mut rng = stream_rng(seed, STREAM_LAYOUT);
        let mut lsoas = Vec::with_capacity(lsoas_named.len());
        let mut points = Vec::new();
        let mut lsoa_points = Vec::with_capacity(lsoas_named.len());
        for (i, (lsoa, name, town)) in lsoas_named.into_iter().enumerate() {
            let n = rng.random_range(MIN_POINTS_PER_LSOA..=MAX_POINTS_PER_LSOA);
            let start = points.len() as u32;
            for _ in 0..n {
                let (lon, lat) = random_point_in(&mut rng, &lsoa);
                let location = place_name(&mut rng, &town);
                points.push(snap_point(lon, lat, i as u32, &location, &lsoa.code, &name));
            }
            lsoa_points.push(start..points.len() as u32);
            lsoas.push((lsoa, name));
        }
        let lsoa_weights =
            Weighted::new(lsoas.iter().map(|(l, _)| 1.0 / l.area_km2.max(0.05).sqrt()));

        let mut hotspots = Vec::new();
        for h in planted_hotspots() {
            let mut inside: Vec<u32> = (0..points.len() as u32)
                .filter(|&p| {
                    let sp = &points[p as usize];
                    distance_m(h.lon, h.lat, sp.lon, sp.lat) <= h.radius_m
                })
                .collect();
            while inside.len() < MIN_HOTSPOT_POINTS {
                let (lon, lat) = point_in_disc(&mut rng, h.lon, h.lat, h.radius_m);
                let lsoa = containing_lsoa(&lsoas, &points, lon, lat);
                let (l, name) = &lsoas[lsoa as usize];
                let location = place_name(&mut rng, "Town");
                inside.push(points.len() as u32);
                points.push(snap_point(lon, lat, lsoa, &location, &l.code, name));
            }
            // Busiest at the centre, a third as busy at the edge.
            let weights = Weighted::new(inside.iter().map(|&p| {
                let sp = &points[p as usize];
                1.5 - distance_m(h.lon, h.lat, sp.lon, sp.lat) / h.radius_m
            }));
            hotspots.push(HotspotPoints {
                points: inside,
                weights,
            });
        }
        Ok(Layout {
            lsoas: lsoas.into_iter().map(|(l, _)| l).collect(),
            points,
            lsoa_points,
            lsoa_weights,
            hotspots,
        })
    }
}

fn snap_point(lon: f64, lat: f64, lsoa: u32, location: &str, code: &str, name: &str) -> SnapPoint {
    let mut text = format!("{lon:.6},{lat:.6},");
    push_csv_field(&mut text, &format!("On or near {location}"));
    text.push(',');
    push_csv_field(&mut text, code);
    text.push(',');
    push_csv_field(&mut text, name);
    SnapPoint {
        lon,
        lat,
        lsoa,
        police_text: text,
    }
}

/// The LSOA holding the point, else the LSOA of the nearest snap point (generalised
/// boundaries cut corners, so a point near the coast may be in none).
fn containing_lsoa(lsoas: &[(Lsoa, String)], points: &[SnapPoint], lon: f64, lat: f64) -> u32 {
    let p = Point::new(lon, lat);
    if let Some(i) = lsoas
        .iter()
        .position(|(l, _)| l.bbox.intersects(&p) && l.polygon.contains(&p))
    {
        return i as u32;
    }
    points
        .iter()
        .min_by(|a, b| {
            distance_m(lon, lat, a.lon, a.lat).total_cmp(&distance_m(lon, lat, b.lon, b.lat))
        })
        .map_or(0, |sp| sp.lsoa)
}

/// A uniformly random point inside the LSOA (rejection sampling on its bounding box).
fn random_point_in<R: Rng>(rng: &mut R, lsoa: &Lsoa) -> (f64, f64) {
    let (min, max) = (lsoa.bbox.min(), lsoa.bbox.max());
    for _ in 0..REJECTION_TRIES {
        let lon = min.x + rng.random::<f64>() * (max.x - min.x);
        let lat = min.y + rng.random::<f64>() * (max.y - min.y);
        if lsoa.polygon.contains(&Point::new(lon, lat)) {
            return (lon, lat);
        }
    }
    // A sliver the sampler keeps missing: its centroid (or bbox centre) will do.
    lsoa.polygon
        .centroid()
        .map_or(lsoa.bbox.center().x_y(), |c| c.x_y())
}

/// Places police.uk names by kind rather than by street.
const PLACES: &[&str] = &[
    "Parking Area",
    "Supermarket",
    "Nightclub",
    "Petrol Station",
    "Sports/Recreation Area",
    "Shopping Area",
    "Further/Higher Educational Building",
    "Hospital",
    "Police Station",
    "Theatre/Concert Hall",
    "Conference/Exhibition Centre",
    "Pedestrian Subway",
    "Bus/Coach Station",
    "Park/Open Space",
];

const STREET_WORDS: &[&str] = &[
    "High",
    "Church",
    "Station",
    "Mill",
    "Victoria",
    "Albert",
    "King",
    "Queen",
    "Park",
    "Manor",
    "Moor",
    "Chapel",
    "Bank",
    "Market",
    "School",
    "Green",
    "Hall",
    "Garden",
    "Oak",
    "Elm",
    "Ash",
    "Ribble",
    "Lune",
    "Wyre",
    "Pendle",
    "Cross",
    "New",
    "North",
    "South",
    "Water",
    "Bridge",
    "Canal",
    "Union",
    "Cemetery",
    "Talbot",
    "Derby",
    "Stanley",
    "Clifton",
    "Fishergate",
    "Lord",
];

const STREET_SUFFIXES: &[&str] = &[
    "Street", "Street", "Street", "Road", "Road", "Road", "Lane", "Avenue", "Close", "Drive",
    "Way", "Grove", "Crescent", "Terrace", "Place", "Court", "Gardens", "Brow", "Row", "Square",
];

/// A plausible street or place name, sometimes after the local town.
fn place_name<R: Rng>(rng: &mut R, town: &str) -> String {
    let roll: f64 = rng.random();
    if roll < 0.2 {
        return PLACES[rng.random_range(0..PLACES.len())].to_owned();
    }
    let suffix = STREET_SUFFIXES[rng.random_range(0..STREET_SUFFIXES.len())];
    if roll < 0.3 {
        return format!("{town} {suffix}");
    }
    let word = STREET_WORDS[rng.random_range(0..STREET_WORDS.len())];
    format!("{word} {suffix}")
}

/// The town word for street names: the first meaningful word of the district name.
fn town_word(lad_name: &str) -> String {
    lad_name
        .split_whitespace()
        .find(|w| !matches!(*w, "South" | "West" | "North" | "East" | "with"))
        .unwrap_or("Town")
        .to_owned()
}

/// Reads the LSOAs as (LSOA, LSOA name, town word), in file order, from `path` (ONS
/// property names) or, without one, from the bundled `boundaries/lsoa11.geojson`.
fn read_lsoas(path: Option<&Path>) -> Result<Vec<(Lsoa, String, String)>, GenerateError> {
    let shown = path.unwrap_or(Path::new("boundaries/lsoa11.geojson"));
    let bad = |reason: String| GenerateError::Geojson {
        path: shown.to_path_buf(),
        reason,
    };
    let text = match path {
        Some(p) => std::fs::read_to_string(p).map_err(GenerateError::io(p))?,
        None => crate::spatial::geography::LSOA_GEOJSON.to_owned(),
    };
    let fc: geojson::FeatureCollection = text
        .parse()
        .map_err(|e: geojson::Error| bad(e.to_string()))?;
    let mut out = Vec::with_capacity(fc.features.len());
    for (index, feature) in fc.features.iter().enumerate() {
        // ONS names, else the names of the bundled boundaries.
        let prop = |key: &str| -> Result<String, GenerateError> {
            let alias = match key {
                "LSOA11CD" => "code",
                "LSOA11NM" => "name",
                "LAD_NAME" => "district_name",
                _ => "district_code",
            };
            feature
                .property(key)
                .or_else(|| feature.property(alias))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("feature {index}: no string property {key}")))
        };
        let geometry = feature
            .geometry
            .as_ref()
            .ok_or_else(|| bad(format!("feature {index}: no geometry")))?;
        let polygon = match geo::Geometry::<f64>::try_from(geometry) {
            Ok(geo::Geometry::Polygon(p)) => MultiPolygon::new(vec![p]),
            Ok(geo::Geometry::MultiPolygon(mp)) => mp,
            Ok(_) => return Err(bad(format!("feature {index}: not a (Multi)Polygon"))),
            Err(e) => return Err(bad(format!("feature {index}: {e}"))),
        };
        let bbox = polygon
            .bounding_rect()
            .ok_or_else(|| bad(format!("feature {index}: empty polygon")))?;
        let lat = bbox.center().y;
        let (mx, my) = super::metres_per_degree(lat);
        let area_km2 = polygon.unsigned_area() * mx * my / 1e6;
        if !(area_km2 > 0.0 && bbox.min().x.is_finite() && bbox.max().y.is_finite()) {
            return Err(bad(format!("feature {index}: degenerate polygon")));
        }
        let lad_name = prop("LAD_NAME")?;
        out.push((
            Lsoa {
                code: prop("LSOA11CD")?,
                lad_code: prop("LAD_CODE")?,
                area_km2,
                polygon,
                bbox,
            },
            prop("LSOA11NM")?,
            town_word(&lad_name),
        ));
    }
    if out.is_empty() {
        return Err(bad("no features".to_owned()));
    }
    Ok(out)
}
