//! The boundaries tiles: layer `districts` (code, name) at every zoom and layer `lsoas`
//! (code, name, district) from zoom [`LSOA_MIN_ZOOM`], where 941 small areas become
//! legible.
//!
//! The polygons are projected to Web Mercator once per geography and kept; a tile is a
//! bounding-box scan (15 and 941 shapes: no index needed) and a clip. Below zoom
//! [`SIMPLIFY_BELOW`] rings are simplified (Ramer-Douglas-Peucker, [`SIMPLIFY_UNITS`] tile
//! units, an eighth of a pixel) after clipping: the bundled boundaries are already ONS's
//! "super generalised" set, so snapping to the 4096 grid does most of the work and the
//! simplification only drops vertices no one could see. From zoom 10 nothing is
//! simplified beyond the snapping, so neighbouring LSOAs and their district share edges.

use std::sync::{Arc, Mutex, Weak};

use ::mvt::{Layer, Tile};
use geo::MultiPolygon;

use super::geom::{self, EXTENT, Frame, Polygon};
use crate::serve::AppError;
use crate::serve::tile::TileCoord;
use crate::spatial::Geography;

/// First zoom with the `lsoas` layer.
pub const LSOA_MIN_ZOOM: u8 = 10;
/// Zooms below this are simplified.
pub const SIMPLIFY_BELOW: u8 = 10;
/// Simplification tolerance in tile units.
pub const SIMPLIFY_UNITS: f64 = 2.0;

/// One boundary in Web Mercator with its extent.
struct Shape {
    polygons: Vec<Polygon>,
    bbox: [f64; 4],
}

/// Every boundary of one geography, projected.
pub struct Shapes {
    geography: Weak<Geography>,
    districts: Vec<Shape>,
    lsoas: Vec<Shape>,
}

fn shape(mp: &MultiPolygon<f64>) -> Shape {
    let polygons: Vec<Polygon> =
        mp.0.iter()
            .map(|p| {
                std::iter::once(p.exterior())
                    .chain(p.interiors())
                    .map(|r| geom::ring_to_mercator(r.0.iter().map(|c| (c.x, c.y))))
                    .collect()
            })
            .collect();
    let bbox = geom::bbox(polygons.iter().flatten());
    Shape { polygons, bbox }
}

impl Shapes {
    /// The extent of every district, in metres (min x, min y, max x, max y).
    pub fn extent(&self) -> [f64; 4] {
        self.districts.iter().fold(
            [
                f64::INFINITY,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NEG_INFINITY,
            ],
            |a, s| {
                [
                    a[0].min(s.bbox[0]),
                    a[1].min(s.bbox[1]),
                    a[2].max(s.bbox[2]),
                    a[3].max(s.bbox[3]),
                ]
            },
        )
    }
}

static SHAPES: Mutex<Option<Arc<Shapes>>> = Mutex::new(None);

/// The projected boundaries of `g`, computed on first use (blocking: a few ms).
pub fn shapes(g: &Arc<Geography>) -> Arc<Shapes> {
    let mut cached = match SHAPES.lock() {
        Ok(c) => c,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(s) = cached.as_ref()
        && std::ptr::eq(s.geography.as_ptr(), Arc::as_ptr(g))
        && s.geography.strong_count() > 0
    {
        return s.clone();
    }
    let s = Arc::new(Shapes {
        geography: Arc::downgrade(g),
        districts: g.districts.polygons.iter().map(shape).collect(),
        lsoas: g.lsoas.polygons.iter().map(shape).collect(),
    });
    *cached = Some(s.clone());
    s
}

/// Adds the shapes touching the frame as features, `tags` naming each one's attributes.
fn add_features<'a>(
    mut layer: Layer,
    frame: &Frame,
    simplify: f64,
    shapes: &[Shape],
    tags: impl Fn(usize) -> Vec<(&'static str, &'a str)>,
) -> Result<Layer, AppError> {
    for (i, s) in shapes.iter().enumerate() {
        if !frame.touches(&s.bbox) {
            continue;
        }
        let parts: Vec<_> = s
            .polygons
            .iter()
            .map(|p| frame.rings(p, simplify))
            .filter(|r| !r.is_empty())
            .collect();
        if parts.is_empty() {
            continue;
        }
        let Some(g) = geom::encode(&parts)
            .map_err(|e| AppError::Internal(format!("vector tile encoding: {e}")))?
        else {
            continue;
        };
        let mut f = layer.into_feature(g);
        f.set_id(i as u64 + 1);
        for (k, v) in tags(i) {
            f.add_tag_string(k, v);
        }
        layer = f.into_layer();
    }
    Ok(layer)
}

/// The encoded boundaries tile (zero bytes when nothing touches it); with `only`, just
/// that layer (`districts` or `lsoas`).
///
/// # Errors
/// Internal only: the encoder refusing what this module built.
pub fn tile(
    g: &Geography,
    shapes: &Shapes,
    t: TileCoord,
    only: Option<&str>,
) -> Result<Vec<u8>, AppError> {
    let wants = |layer: &str| only.is_none_or(|o| o == layer);
    let frame = Frame::new(t);
    let simplify = if t.z < SIMPLIFY_BELOW {
        SIMPLIFY_UNITS
    } else {
        0.0
    };
    let mut tile = Tile::new(EXTENT);
    let enc = |e: ::mvt::Error| AppError::Internal(format!("vector tile encoding: {e}"));
    if wants("districts") {
        let districts = add_features(
            tile.create_layer("districts"),
            &frame,
            simplify,
            &shapes.districts,
            |i| {
                vec![
                    ("code", g.districts.codes[i].as_str()),
                    ("name", g.districts.names[i].as_str()),
                ]
            },
        )?;
        if districts.num_features() > 0 {
            tile.add_layer(districts).map_err(enc)?;
        }
    }
    if wants("lsoas") && t.z >= LSOA_MIN_ZOOM {
        let district = |i: usize| {
            let d = usize::from(g.lsoa_district[i]);
            g.districts.names.get(d).map_or("", String::as_str)
        };
        let lsoas = add_features(
            tile.create_layer("lsoas"),
            &frame,
            simplify,
            &shapes.lsoas,
            |i| {
                vec![
                    ("code", g.lsoas.codes[i].as_str()),
                    ("name", g.lsoas.names[i].as_str()),
                    ("district", district(i)),
                ]
            },
        )?;
        if lsoas.num_features() > 0 {
            tile.add_layer(lsoas).map_err(enc)?;
        }
    }
    if tile.num_layers() == 0 {
        return Ok(Vec::new());
    }
    tile.to_bytes().map_err(enc)
}
