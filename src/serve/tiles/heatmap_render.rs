//! Rendering one 256 px heatmap tile: where each pixel is on the ground, its kernel
//! density, its colour, and the PNG.
//!
//! # Where a pixel is
//! The density is in British National Grid metres (true distances and areas), so each
//! pixel centre must go Web Mercator -> WGS84 -> BNG. OSTN15 for each of 65,536 pixels
//! costs more than the density itself, and the map is smooth at tile scale, so the tile
//! is covered by a lattice of nodes converted exactly (`mercator_to_lonlat` then
//! OSTN15), 16 px apart (17 x 17 nodes) from z 10 and 8 px apart (33 x 33) below, and each
//! pixel centre is interpolated bilinearly between the four nodes around it.
//!
//! Error (measured by `lattice_error_is_below_a_metre_from_z8` against exact per-pixel
//! conversion, all 65,536 pixels of tiles over Preston and Lancaster): 0.22 m at z 8
//! (pixels of 360 m on the ground), 0.07 m at z 10, under 6 mm at z 12 and about 1 mm from
//! z 14 (the floor is OSTN15's own bilinear 1 km grid, which the lattice cannot follow
//! exactly). Bilinear error grows with the square of the node spacing, hence the finer
//! lattice below z 10. At z 6 it is about 3 m against pixels of 1.4 km. So from z 8 the
//! positions are far inside both the pixel and the smallest bandwidth (50 m), and the
//! colours are those of the exact positions. A lattice node outside the OSTN15 grid (far
//! offshore) makes the pixels of its lattice cells be converted one by one, and a pixel
//! outside the grid is transparent (no incident can be within reach: every point was
//! inside the grid).
//!
//! Pixel rows are evaluated in parallel (rayon). A tile with no incident within a
//! bandwidth of it, or whose pixels all come out transparent, is the one precomputed
//! transparent PNG ([`empty_png`]).

use std::sync::LazyLock;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};
use rayon::prelude::*;

use super::ramp::Ramp;
use super::surface::Surface;
use crate::serve::tile::{TileCoord, mercator_to_lonlat};
use crate::spatial::bng::wgs84_to_bng;

/// Tile size in pixels.
pub const TILE_PX: usize = 256;

/// Pixels between exactly converted lattice nodes, from [`FINE_BELOW_ZOOM`] on.
pub const LATTICE_STEP: usize = 16;

/// Below this zoom the lattice is twice as fine (8 px, 33 x 33 nodes).
pub const FINE_BELOW_ZOOM: u8 = 10;

/// Most nodes per side of the lattice.
const MAX_NODES: usize = TILE_PX / (LATTICE_STEP / 2) + 1;

/// Pixels between lattice nodes at zoom `z`.
pub fn lattice_step(z: u8) -> usize {
    if z < FINE_BELOW_ZOOM {
        LATTICE_STEP / 2
    } else {
        LATTICE_STEP
    }
}

static EMPTY_PNG: LazyLock<Vec<u8>> = LazyLock::new(|| encode_png(&vec![0; TILE_PX * TILE_PX * 4]));

/// The fully transparent 256 x 256 tile (encoded once).
pub fn empty_png() -> &'static [u8] {
    &EMPTY_PNG
}

/// RGBA bytes (256 x 256, row-major from the north-west) to PNG.
pub fn encode_png(rgba: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 * 1024);
    let encoder =
        PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive);
    let side = TILE_PX as u32;
    match encoder.write_image(rgba, side, side, ExtendedColorType::Rgba8) {
        Ok(()) => out,
        // Only a buffer of the wrong length fails, and every caller passes 256 x 256 x 4.
        Err(e) => {
            tracing::error!(error = %e, "PNG encoding failed");
            empty_png().to_vec()
        }
    }
}

/// Web Mercator metres of a point given in tile pixels (continuous, 0..256 from the
/// north-west corner).
pub fn pixel_to_mercator(t: TileCoord, px: f64, py: f64) -> (f64, f64) {
    let (x0, _, x1, y1) = t.mercator_bounds();
    let size = x1 - x0;
    let k = size / TILE_PX as f64;
    (x0 + px * k, y1 - py * k)
}

/// British National Grid metres of a point given in tile pixels, exactly (OSTN15).
pub fn pixel_to_bng(t: TileCoord, px: f64, py: f64) -> Option<(f64, f64)> {
    let (mx, my) = pixel_to_mercator(t, px, py);
    let (lon, lat) = mercator_to_lonlat(mx, my);
    wgs84_to_bng(lon, lat)
        .ok()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
}

/// Exact BNG positions of a lattice of nodes over a tile.
pub struct Lattice {
    tile: TileCoord,
    /// Pixels between nodes.
    step: usize,
    /// Nodes per side.
    n: usize,
    /// Row-major from the north: `nodes[j * n + i]` is pixel (step i, step j).
    nodes: Vec<Option<(f64, f64)>>,
}

impl Lattice {
    pub fn new(tile: TileCoord) -> Self {
        let step = lattice_step(tile.z);
        let n = TILE_PX / step + 1;
        let nodes = (0..n * n)
            .map(|k| {
                let (i, j) = (k % n, k / n);
                pixel_to_bng(tile, (i * step) as f64, (j * step) as f64)
            })
            .collect();
        Lattice {
            tile,
            step,
            n,
            nodes,
        }
    }

    /// The BNG bounding box of the converted nodes, if any converted.
    pub fn bbox(&self) -> Option<(f64, f64, f64, f64)> {
        self.nodes.iter().flatten().fold(None, |b, &(x, y)| {
            let (x0, y0, x1, y1) = b.unwrap_or((x, y, x, y));
            Some((x0.min(x), y0.min(y), x1.max(x), y1.max(y)))
        })
    }

    /// BNG positions of the centres of pixel row `py` (NaN where not convertible).
    pub fn row(&self, py: usize, out: &mut [(f64, f64)]) {
        let (n, step) = (self.n, self.step as f64);
        let v = (py as f64 + 0.5) / step;
        let j = (v as usize).min(n - 2);
        let fv = v - j as f64;
        let lerp =
            |a: (f64, f64), b: (f64, f64), f: f64| (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f);
        // The row's position along each lattice column.
        let mut column: [Option<(f64, f64)>; MAX_NODES] = [None; MAX_NODES];
        for (i, c) in column.iter_mut().enumerate().take(n) {
            let (a, b) = (self.nodes[j * n + i], self.nodes[(j + 1) * n + i]);
            *c = a.zip(b).map(|(a, b)| lerp(a, b, fv));
        }
        for (px, o) in out.iter_mut().enumerate().take(TILE_PX) {
            let u = (px as f64 + 0.5) / step;
            let i = (u as usize).min(n - 2);
            *o = match column[i].zip(column[i + 1]) {
                Some((a, b)) => lerp(a, b, u - i as f64),
                None => pixel_to_bng(self.tile, px as f64 + 0.5, py as f64 + 0.5)
                    .unwrap_or((f64::NAN, f64::NAN)),
            };
        }
    }
}

/// The tile's PNG: density at each pixel centre through `ramp`, `t = density / max`
/// (`max_per_m2` in incidents per m²), leaving transparent every pixel with fewer than
/// `min_count` incidents within the bandwidth (disclosure control; 0 draws all). The
/// transparent tile when nothing shows.
pub fn render(
    surface: &Surface,
    tile: TileCoord,
    ramp: Ramp,
    max_per_m2: f64,
    min_count: f64,
) -> Vec<u8> {
    if !(max_per_m2.is_finite() && max_per_m2 > 0.0) {
        return empty_png().to_vec();
    }
    let lattice = Lattice::new(tile);
    let near = lattice
        .bbox()
        .is_some_and(|(x0, y0, x1, y1)| surface.near(x0, y0, x1, y1));
    if !near {
        return empty_png().to_vec();
    }
    let inv_max = 1.0 / max_per_m2;
    let mut rgba = vec![0u8; TILE_PX * TILE_PX * 4];
    rgba.par_chunks_mut(TILE_PX * 4)
        .enumerate()
        .for_each(|(py, row)| {
            let mut pos = [(0.0, 0.0); TILE_PX];
            lattice.row(py, &mut pos);
            for (px, &(x, y)) in row.chunks_exact_mut(4).zip(&pos) {
                let d = if min_count > 0.0 {
                    let (d, n) = surface.density_and_count_at(x, y);
                    if n < min_count { 0.0 } else { d }
                } else {
                    surface.density_at(x, y)
                };
                if d > 0.0 {
                    px.copy_from_slice(&ramp.rgba(d * inv_max));
                }
            }
        });
    if rgba.chunks_exact(4).all(|p| p[3] == 0) {
        return empty_png().to_vec();
    }
    encode_png(&rgba)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::tile::lonlat_to_mercator;

    fn tile_at(lon: f64, lat: f64, z: u8) -> TileCoord {
        let (mx, my) = lonlat_to_mercator(lon, lat);
        const HALF: f64 = 20_037_508.342_789_244;
        let n = f64::from(1u32 << z);
        let x = ((mx + HALF) / (2.0 * HALF) * n) as u32;
        let y = ((HALF - my) / (2.0 * HALF) * n) as u32;
        TileCoord::new(u32::from(z), x, y).expect("in range")
    }

    /// Largest distance (m) between interpolated and exact pixel centres over a tile.
    fn max_error(t: TileCoord) -> f64 {
        let lattice = Lattice::new(t);
        let mut pos = [(0.0, 0.0); TILE_PX];
        let mut worst = 0.0f64;
        for py in 0..TILE_PX {
            lattice.row(py, &mut pos);
            for (px, &(x, y)) in pos.iter().enumerate() {
                let (ex, ey) =
                    pixel_to_bng(t, px as f64 + 0.5, py as f64 + 0.5).expect("inside OSTN15");
                worst = worst.max((x - ex).hypot(y - ey));
            }
        }
        worst
    }

    #[test]
    fn lattice_error_is_below_a_metre_from_z8() {
        // Preston and Lancaster.
        for (lon, lat) in [(-2.7006, 53.7590), (-2.8007, 54.0466)] {
            for (z, limit) in [
                (6, 5.0),
                (8, 0.3),
                (9, 0.1),
                (10, 0.1),
                (12, 0.01),
                (14, 0.005),
                (16, 0.005),
            ] {
                let e = max_error(tile_at(lon, lat, z));
                eprintln!("lattice error z {z}: {e:.5} m");
                assert!(e < limit, "z {z}: {e} m");
            }
        }
    }

    #[test]
    fn nodes_outside_the_grid_fall_back_to_exact_or_nothing() {
        // The world at z 1: most nodes are outside OSTN15; positions are NaN there.
        let t = TileCoord::new(1, 0, 0).expect("valid");
        let lattice = Lattice::new(t);
        assert!(lattice.nodes.iter().any(Option::is_none));
        let mut pos = [(0.0, 0.0); TILE_PX];
        lattice.row(0, &mut pos);
        assert!(pos.iter().all(|p| p.0.is_nan()));
        let empty = image::load_from_memory(empty_png())
            .expect("decodes")
            .to_rgba8();
        assert_eq!(empty.dimensions(), (256, 256));
        assert!(empty.pixels().all(|p| p.0 == [0, 0, 0, 0]));
    }
}
