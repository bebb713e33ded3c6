//! `/map/api/labels?bbox=minLon,minLat,maxLon,maxLat&zoom=Z`: the names the map draws
//! itself (offline: no glyph or tile server), inside the box only:
//!
//! - `district`: each district once, at a point inside its polygon;
//! - `town`: the bundled GeoNames towns and villages with their `population`, ranked by
//!   it;
//! - `street`, from zoom 15: the streets of the data's snap points (`streets.rs`) with a
//!   snap point in the box, one label per street and district, at its representative snap
//!   point (the one the search gives) when that is in the box, else at its snap point in
//!   the box nearest it. Below analyst only streets that pass the search's k rule, placed
//!   on snap points with incidents outside the sensitive categories. At most
//!   [`MAX_STREETS`], thinned spatially: the box is cut into a grid and each cell's
//!   streets taken in name order, one per cell per round; earlier rounds rank higher.
//!   Never by incident counts, which would rank by them.
//!
//! `rank`: larger is more important (placed first, kept on collision): every district
//! above every town, every town above every street (`gazetteer::Label`).

use std::sync::Arc;

use serde_json::{Value, json};

use super::streets::{NONE, StreetIndex};
use crate::analysis::AnalysisStore;
use crate::model::TypeSet;
use crate::spatial::gazetteer::{self, Kind, Label};

/// The most street labels in one answer (each round of the thinning has its own rank).
pub const MAX_STREETS: usize = gazetteer::STREET_RANKS as usize;

/// The zoom from which streets are labelled.
pub const STREET_ZOOM: f64 = 15.0;

/// Cells per side of the thinning grid.
const GRID: usize = 8;

pub use crate::serve::ogc::query::Bbox;

fn contains(b: &Bbox, lon: f64, lat: f64) -> bool {
    (b.west..=b.east).contains(&lon) && (b.south..=b.north).contains(&lat)
}

/// `minLon,minLat,maxLon,maxLat`: four finite numbers, longitudes in -180..180,
/// latitudes in -90..90, each minimum below its maximum. The items' bbox parser
/// (`ogc::query::parse_bbox`) checks the numbers and ranges; labels take no heights and
/// no empty box.
///
/// # Errors
/// A message saying what is wrong.
pub fn parse_bbox(v: &str) -> Result<Bbox, String> {
    let n = v.split(',').count();
    if n != 4 {
        return Err(format!(
            "expected 4 numbers minLon,minLat,maxLon,maxLat, got {n}"
        ));
    }
    let b = crate::serve::ogc::query::parse_bbox(v)?;
    if b.west >= b.east || b.south >= b.north {
        return Err("each minimum must be below its maximum".into());
    }
    Ok(b)
}

/// A map zoom from 0 to 24 (fractions allowed, as MapLibre's).
///
/// # Errors
/// A message for anything else.
pub fn parse_zoom(v: &str) -> Result<f64, String> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|z| (0.0..=24.0).contains(z))
        .ok_or_else(|| format!("'{v}' is not a number from 0 to 24"))
}

/// The labels document: `k` below analyst (`None` above), `sensitive` the categories the
/// street rule leaves out.
pub fn labels(
    store: &Arc<AnalysisStore>,
    bbox: Bbox,
    zoom: f64,
    k: Option<u64>,
    sensitive: TypeSet,
) -> Value {
    let fixed = gazetteer::fixed_labels(&store.geography);
    let mut out: Vec<Label> = fixed
        .iter()
        .filter(|l| contains(&bbox, l.lon, l.lat))
        .cloned()
        .collect();
    if zoom >= STREET_ZOOM {
        out.extend(streets(store, bbox, k, sensitive));
    }
    out.sort_by(|a, b| b.rank.cmp(&a.rank).then(a.name.cmp(&b.name)));
    json!({ "labels": out })
}

fn streets(
    store: &Arc<AnalysisStore>,
    bbox: Bbox,
    k: Option<u64>,
    sensitive: TypeSet,
) -> Vec<Label> {
    let index = StreetIndex::of(store, sensitive);
    let locs = &store.locations;
    // Per street: its snap point in the box nearest its representative point.
    let mut best: std::collections::HashMap<u32, (f64, usize)> = Default::default();
    for (i, &s) in index.of_loc.iter().enumerate() {
        if s == NONE || !index.point_shown(i, k) {
            continue;
        }
        let (lon, lat) = (locs.lon(i), locs.lat(i));
        if !contains(&bbox, lon, lat) {
            continue;
        }
        let Some(p) = index.place(s, k) else {
            continue;
        };
        let d = (lon - p.lon).powi(2) + (lat - p.lat).powi(2);
        let e = best.entry(s).or_insert((d, i));
        if d < e.0 || (d == e.0 && i < e.1) {
            *e = (d, i);
        }
    }
    let mut found: Vec<(&str, u8, usize)> = best
        .into_iter()
        .map(|(s, (_, i))| {
            let st = &index.streets[s as usize];
            (&*st.name, st.district, i)
        })
        .collect();
    found.sort_unstable();
    // Spatial thinning: the j-th street (in name order) of its grid cell gets round j.
    let cell = |i: usize| {
        let f = |v: f64, lo: f64, hi: f64| (((v - lo) / (hi - lo)) * GRID as f64) as usize;
        let x = f(locs.lon(i), bbox.west, bbox.east).min(GRID - 1);
        let y = f(locs.lat(i), bbox.south, bbox.north).min(GRID - 1);
        y * GRID + x
    };
    let mut seen = [0u32; GRID * GRID];
    let mut rounds: Vec<(u32, &str, u8, usize)> = found
        .into_iter()
        .map(|(name, d, i)| {
            let c = cell(i);
            seen[c] += 1;
            (seen[c] - 1, name, d, i)
        })
        .collect();
    rounds.sort_unstable();
    rounds.truncate(MAX_STREETS);
    rounds
        .into_iter()
        .map(|(round, name, _, i)| Label {
            name: name.to_string(),
            kind: Kind::Street,
            lon: locs.lon(i),
            lat: locs.lat(i),
            // At most MAX_STREETS labels, so a round is below STREET_RANKS.
            rank: gazetteer::STREET_RANKS.saturating_sub(round),
            population: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bbox_and_zoom_are_checked() {
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
            "",
            "1,2,3",
            "1,2,3,4,5",
            "-3,53.5,-2,54,0,1",
            "a,1,2,3",
            "NaN,1,2,3",
            "-3,inf,-2,54",
            "-181,53,-2,54",
            "-3,53,181,54",
            "-3,-91,-2,54",
            "-3,53,-2,91",
            "-2,53,-3,54",
            "-3,54,-2,53",
            "-3,53,-3,54",
        ] {
            assert!(parse_bbox(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_zoom("15"), Ok(15.0));
        assert_eq!(parse_zoom("14.5"), Ok(14.5));
        for bad in ["-1", "25", "x", "NaN", "inf", ""] {
            assert!(parse_zoom(bad).is_err(), "{bad}");
        }
    }
}
