//! Polygons from Web Mercator metres to Mapbox Vector Tile geometry commands.
//!
//! The `mvt` crate writes the protobuf and the MoveTo/LineTo/ClosePath commands, but it
//! neither clips polygons properly nor orients rings, and the MVT 2.1 spec (4.3.4.4)
//! makes orientation part of the meaning: an exterior ring has a positive area by the
//! surveyor's formula in tile coordinates (x right, y down, so it looks clockwise on
//! screen) and an interior ring a negative one. So every ring goes through here first:
//!
//! 1. project to tile coordinates (extent 4096, y down);
//! 2. clip to the tile grown by [`BUFFER`] units on each side (Sutherland-Hodgman: exact
//!    for the convex H3 cells; a concave boundary may keep zero-width slivers along the
//!    buffer's edge, outside the visible tile, which renderers draw as nothing);
//! 3. optionally simplify (Ramer-Douglas-Peucker, epsilon in tile units);
//! 4. snap to the integer grid and drop repeated points;
//! 5. drop rings left with no area, and the holes of a dropped exterior;
//! 6. orient: exteriors positive, holes negative, whatever the source winding;
//! 7. when a feature is encoded, make it valid on the integer grid ([`valid`]): snapping a
//!    ring to whole tile units can make it cross itself, a hole touch its exterior, or
//!    two parts of a district overlap (1,872 of 59,278 county features at z6-z14 did), so
//!    all the feature's rings go through `i_overlay`'s OGC-valid simplification in
//!    integer coordinates (non-zero fill), which introduces no new rounding.

use ::mvt::{GeomData, GeomEncoder, GeomType};
use geo::{Coord, LineString, Simplify};
use i_overlay::core::fill_rule::FillRule;
use i_overlay::core::overlay::IntOverlayOptions;
use i_overlay::core::simplify::Simplify as _;
use i_overlay::i_float::int::point::IntPoint;

use crate::serve::tile::{TileCoord, lonlat_to_mercator};

/// Tile extent (the MVT default, and what DOMAIN.md asks for).
pub const EXTENT: u32 = 4096;

/// Clip buffer around the tile, in tile units (64 of 4096: 4 px on a 256 px tile), so
/// strokes along a tile edge do not show seams.
pub const BUFFER: f64 = 64.0;

/// A ring in Web Mercator metres, without the closing repeat.
pub type Ring = Vec<(f64, f64)>;

/// A polygon: its exterior ring, then its holes.
pub type Polygon = Vec<Ring>;

/// A WGS84 ring (lon, lat) as Web Mercator metres, dropping a closing repeat.
pub fn ring_to_mercator(points: impl IntoIterator<Item = (f64, f64)>) -> Ring {
    let mut ring: Ring = points
        .into_iter()
        .map(|(lon, lat)| lonlat_to_mercator(lon, lat))
        .collect();
    if ring.len() > 1 && ring.first() == ring.last() {
        ring.pop();
    }
    ring
}

/// The bounding box (min x, min y, max x, max y) of some rings.
pub fn bbox<'a>(rings: impl IntoIterator<Item = &'a Ring>) -> [f64; 4] {
    let mut b = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for &(x, y) in rings.into_iter().flatten() {
        b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
    }
    b
}

/// One tile's mapping from Web Mercator metres to tile units.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    min_x: f64,
    max_y: f64,
    /// Tile units per metre.
    scale: f64,
    /// The buffered tile in metres: (min x, min y, max x, max y).
    pub query: [f64; 4],
}

impl Frame {
    pub fn new(t: TileCoord) -> Self {
        let (x0, y0, x1, y1) = t.mercator_bounds();
        let scale = f64::from(EXTENT) / (x1 - x0);
        let pad = BUFFER / scale;
        Frame {
            min_x: x0,
            max_y: y1,
            scale,
            query: [x0 - pad, y0 - pad, x1 + pad, y1 + pad],
        }
    }

    /// Whether a bounding box in metres touches the buffered tile.
    pub fn touches(&self, b: &[f64; 4]) -> bool {
        b[0] <= self.query[2]
            && b[2] >= self.query[0]
            && b[1] <= self.query[3]
            && b[3] >= self.query[1]
    }

    fn project(&self, (x, y): (f64, f64)) -> (f64, f64) {
        ((x - self.min_x) * self.scale, (self.max_y - y) * self.scale)
    }

    /// A polygon's rings as they go into the tile: exterior first (positive area), then
    /// holes (negative); empty when nothing with an area is left.
    pub fn rings(&self, polygon: &Polygon, simplify: f64) -> Vec<Vec<(i32, i32)>> {
        let mut out = Vec::with_capacity(polygon.len());
        for (k, ring) in polygon.iter().enumerate() {
            let projected: Vec<(f64, f64)> = ring.iter().map(|p| self.project(*p)).collect();
            let Some(r) = finish(clip(&projected), simplify, k == 0) else {
                if k == 0 {
                    return vec![];
                }
                continue;
            };
            out.push(r);
        }
        out
    }
}

/// Sutherland-Hodgman against the buffered tile square.
fn clip(ring: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let (lo, hi) = (-BUFFER, f64::from(EXTENT) + BUFFER);
    let mut pts = ring.to_vec();
    // (axis, bound, keep-side sign): inside means sign * (coord - bound) >= 0.
    for (axis, bound, sign) in [(0, lo, 1.0), (0, hi, -1.0), (1, lo, 1.0), (1, hi, -1.0)] {
        if pts.is_empty() {
            break;
        }
        let coord = |p: (f64, f64)| if axis == 0 { p.0 } else { p.1 };
        let inside = |p: (f64, f64)| sign * (coord(p) - bound) >= 0.0;
        let mut next = Vec::with_capacity(pts.len() + 4);
        for i in 0..pts.len() {
            let (a, b) = (pts[(i + pts.len() - 1) % pts.len()], pts[i]);
            if inside(b) != inside(a) {
                let t = (bound - coord(a)) / (coord(b) - coord(a));
                next.push((a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1)));
            }
            if inside(b) {
                next.push(b);
            }
        }
        pts = next;
    }
    pts
}

/// Twice the signed area by the surveyor's formula (positive: exterior in MVT terms).
pub fn area2(ring: &[(i32, i32)]) -> i64 {
    let n = ring.len();
    (0..n)
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % n]);
            i64::from(a.0) * i64::from(b.1) - i64::from(b.0) * i64::from(a.1)
        })
        .sum()
}

/// Simplifies, snaps, removes repeats and orients one clipped ring.
fn finish(ring: Vec<(f64, f64)>, simplify: f64, exterior: bool) -> Option<Vec<(i32, i32)>> {
    let ring = if simplify > 0.0 && ring.len() > 4 {
        let mut ls = LineString::from(ring);
        ls.close();
        let mut v: Vec<(f64, f64)> = ls.simplify(simplify).0.iter().map(Coord::x_y).collect();
        v.pop();
        v
    } else {
        ring
    };
    let mut snapped: Vec<(i32, i32)> = Vec::with_capacity(ring.len());
    for (x, y) in ring {
        // Inside the buffered square after clipping, so the casts cannot overflow.
        let p = (x.round() as i32, y.round() as i32);
        if snapped.last() != Some(&p) {
            snapped.push(p);
        }
    }
    while snapped.len() > 1 && snapped.first() == snapped.last() {
        snapped.pop();
    }
    let a = area2(&snapped);
    if snapped.len() < 3 || a == 0 {
        return None;
    }
    if (a > 0) != exterior {
        snapped.reverse();
    }
    Some(snapped)
}

/// The polygons of one feature (rings through [`Frame::rings`]: exteriors positive, holes
/// negative) as OGC-valid polygons on the same integer grid: no ring crosses itself, holes
/// lie inside their exterior, no two parts overlap. Each output polygon is an exterior
/// (positive area) followed by its holes (negative), as MVT wants them.
pub fn valid(polygons: &[Vec<Vec<(i32, i32)>>]) -> Vec<Vec<Vec<(i32, i32)>>> {
    let contours: Vec<Vec<IntPoint>> = polygons
        .iter()
        .flatten()
        .map(|r| r.iter().map(|&(x, y)| IntPoint::new(x, y)).collect())
        .collect();
    if contours.is_empty() {
        return Vec::new();
    }
    // Non-zero fill: exteriors and holes are oriented oppositely (step 6), so a hole
    // subtracts from its exterior and parts that overlap after snapping merge.
    let shapes = contours
        .as_slice()
        .simplify(FillRule::NonZero, IntOverlayOptions::ogc());
    shapes
        .into_iter()
        .filter_map(|shape| {
            let rings: Vec<Vec<(i32, i32)>> = shape
                .into_iter()
                .enumerate()
                .filter_map(|(k, c)| {
                    let mut r: Vec<(i32, i32)> = c.into_iter().map(|p| (p.x, p.y)).collect();
                    let a = area2(&r);
                    if r.len() < 3 || a == 0 {
                        return None;
                    }
                    // Exterior positive, holes negative, whatever the library's direction.
                    if (a > 0) != (k == 0) {
                        r.reverse();
                    }
                    Some(r)
                })
                .collect();
            // A shape whose exterior vanished has nothing left to draw.
            rings.first().is_some_and(|r| area2(r) > 0).then_some(rings)
        })
        .collect()
}

/// Encodes polygons (already through [`Frame::rings`]) as one MVT polygon geometry, made
/// valid first ([`valid`]); `None` when nothing with an area is left.
///
/// # Errors
/// Only if the encoder refuses a point (it cannot, for points inside the buffer).
pub fn encode(polygons: &[Vec<Vec<(i32, i32)>>]) -> Result<Option<GeomData>, ::mvt::Error> {
    let polygons = valid(polygons);
    if polygons.is_empty() {
        return Ok(None);
    }
    encode_rings(&polygons).map(Some)
}

/// Encodes rings as they are (exterior, holes; next exterior...).
fn encode_rings(polygons: &[Vec<Vec<(i32, i32)>>]) -> Result<GeomData, ::mvt::Error> {
    let mut enc = GeomEncoder::<i32>::new(GeomType::Polygon);
    let mut last: Option<(i32, i32)> = None;
    for ring in polygons.iter().flatten() {
        // The encoder folds a ring's MoveTo into the previous ring when the new ring starts
        // where the last one ended, which would leave a ring without its MoveTo: start
        // such a ring one vertex later (it has at least three distinct vertices).
        let start = usize::from(ring.first() == last.as_ref());
        for i in 0..ring.len() {
            let (x, y) = ring[(i + start) % ring.len()];
            enc.add_point(x, y)?;
        }
        last = ring.get((start + ring.len() - 1) % ring.len()).copied();
        enc.complete_geom()?;
    }
    enc.encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame {
        Frame::new(TileCoord::new(12, 2013, 1313).unwrap())
    }

    #[test]
    fn clipping_keeps_the_buffered_square_and_orientation_is_forced() {
        let f = Frame {
            min_x: 0.0,
            max_y: 4096.0,
            scale: 1.0,
            query: [0.0; 4],
        };
        // A counter-clockwise-on-screen square (negative area) far bigger than the tile.
        let big: Polygon = vec![vec![(-1e4, 1e4), (-1e4, -1e4), (1e4, -1e4), (1e4, 1e4)]];
        let mut big_screen = big.clone();
        big_screen[0].reverse();
        for p in [&big, &big_screen] {
            let r = f.rings(p, 0.0);
            assert_eq!(r.len(), 1);
            assert!(area2(&r[0]) > 0, "exterior must be positive");
            for &(x, y) in &r[0] {
                assert!(
                    (-64..=4160).contains(&x) && (-64..=4160).contains(&y),
                    "{x},{y}"
                );
            }
            assert_eq!(area2(&r[0]), 2 * 4224 * 4224);
        }
        // A hole stays negative; a sliver thinner than a unit disappears.
        let holed: Polygon = vec![
            vec![(0.0, 0.0), (100.0, 0.0), (100.0, 100.0), (0.0, 100.0)],
            vec![(10.0, 10.0), (10.0, 20.0), (20.0, 20.0), (20.0, 10.0)],
            vec![(50.0, 50.0), (50.2, 50.0), (50.2, 50.1)],
        ];
        let r = f.rings(&holed, 0.0);
        assert_eq!(r.len(), 2);
        assert!(area2(&r[0]) > 0 && area2(&r[1]) < 0);
        // Entirely outside: nothing.
        let away: Polygon = vec![vec![(9e3, 9e3), (9e3 + 5.0, 9e3), (9e3, 9e3 + 5.0)]];
        assert!(f.rings(&away, 0.0).is_empty());
    }

    #[test]
    fn snapped_rings_that_cross_or_overlap_come_out_valid() {
        use geo::{MultiPolygon, Polygon, Validation};
        let as_geo = |ps: &[Vec<Vec<(i32, i32)>>]| {
            MultiPolygon::new(
                ps.iter()
                    .map(|p| {
                        let ring = |r: &Vec<(i32, i32)>| {
                            LineString::from(
                                r.iter()
                                    .map(|&(x, y)| (f64::from(x), f64::from(y)))
                                    .collect::<Vec<_>>(),
                            )
                        };
                        Polygon::new(ring(&p[0]), p[1..].iter().map(ring).collect())
                    })
                    .collect(),
            )
        };
        // A bow tie (a ring crossing itself), two overlapping parts, and a hole that
        // pokes out of its exterior.
        let bow = vec![vec![vec![(0, 0), (10, 10), (10, 0), (0, 10)]]];
        let overlap = vec![
            vec![vec![(0, 0), (10, 0), (10, 10), (0, 10)]],
            vec![vec![(5, 5), (15, 5), (15, 15), (5, 15)]],
        ];
        let poking = vec![vec![
            vec![(0, 0), (10, 0), (10, 10), (0, 10)],
            vec![(2, 2), (2, 12), (8, 12), (8, 2)],
        ]];
        for input in [bow, overlap, poking] {
            assert!(!as_geo(&input).is_valid(), "the case must start invalid");
            let out = valid(&input);
            assert!(!out.is_empty());
            assert!(as_geo(&out).is_valid(), "{input:?} -> {out:?}");
            for p in &out {
                assert!(area2(&p[0]) > 0 && p[1..].iter().all(|h| area2(h) < 0));
            }
        }
        // A valid square stays the same area.
        let sq = vec![vec![vec![(0, 0), (10, 0), (10, 10), (0, 10)]]];
        assert_eq!(area2(&valid(&sq)[0][0]), 200);
    }

    #[test]
    fn rings_touching_at_a_vertex_still_each_start_with_a_move_to() {
        let a = vec![(0, 0), (10, 0), (10, 10)];
        let b = vec![(10, 10), (20, 10), (20, 20)];
        let geom = encode_rings(&[vec![a], vec![b]]).unwrap();
        let mut tile = ::mvt::Tile::new(EXTENT);
        let layer = tile.create_layer("t").into_feature(geom).into_layer();
        tile.add_layer(layer).unwrap();
        let bytes = tile.to_bytes().unwrap();
        // MoveTo(1) = 9, LineTo(2) = 18, ClosePath = 15, zigzag parameters; the second
        // ring starts at (20, 10), one vertex on, with its own MoveTo.
        let want: [u8; 18] = [
            9, 0, 0, 18, 20, 0, 0, 20, 15, 9, 20, 0, 18, 0, 20, 19, 19, 15,
        ];
        assert!(bytes.windows(18).any(|w| w == want), "{bytes:?}");
        assert!(frame().query[0] < frame().query[2]);
    }
}
