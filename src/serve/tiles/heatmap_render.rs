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
//! # How dense a pixel is
//! Where a pixel is small against the bandwidth (from about z 13 at the default
//! bandwidths), the density is evaluated exactly only at a lattice of pixel positions at
//! most `bandwidth / DENSITY_NODES_PER_BANDWIDTH` apart on the ground (every 2 to 16
//! pixels, [`density_step`]) and interpolated bilinearly in between, as the positions are.
//! The quartic kernel is smooth at that scale: bilinear error is at most `h^2 / 8` times
//! the density's second derivative, which for one incident is at most `8 / r^2` times its
//! peak, so with `h = r / 32` a pixel is off by under 0.1% of the summed peaks within
//! reach. Measured on the fixtures (`interpolated_density_is_within_a_ramp_step_of_exact`,
//! bandwidths 50 m to 2.2 km, z 12 to 17): under a third of one step of the 256-colour
//! ramp, and alpha (which rises over the first tenth of the ramp) within 3 of 255. It saves 4 to 256 times the kernel sums at z 13 to 16,
//! where pixels of a few metres would otherwise each repeat their neighbours' sum.
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
use crate::stats::kde::KernelDensity;

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

/// Ramp steps (256 x 256, row-major from the north-west; [`Ramp::palette`]) to an 8-bit
/// indexed PNG with the ramp's palette and alpha (`PLTE`, `tRNS`): a quarter of the bytes
/// RGBA would compress, so about an eighth of the time, and smaller tiles.
pub fn encode_indexed(steps: &[u8], ramp: Ramp) -> Vec<u8> {
    let pal = ramp.palette();
    let rgb: Vec<u8> = pal.iter().flat_map(|c| [c[0], c[1], c[2]]).collect();
    let alpha: Vec<u8> = pal.iter().map(|c| c[3]).collect();
    let mut out = Vec::with_capacity(32 * 1024);
    let side = TILE_PX as u32;
    let written = (|| -> Result<(), png::EncodingError> {
        let mut e = png::Encoder::new(&mut out, side, side);
        e.set_color(png::ColorType::Indexed);
        e.set_depth(png::BitDepth::Eight);
        e.set_palette(rgb);
        e.set_trns(alpha);
        e.set_compression(png::Compression::Fast);
        e.set_filter(png::Filter::Sub);
        let mut w = e.write_header()?;
        w.write_image_data(steps)?;
        w.finish()
    })();
    match written {
        Ok(()) => out,
        // Only a buffer of the wrong length fails, and every caller passes 256 x 256.
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
        // OSTN15 per node is most of a public tile's lattice: both cores.
        let nodes = (0..n * n)
            .into_par_iter()
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
        // Pixel px lies in segment i = px / step of the row, at (px mod step + 0.5) /
        // step along it.
        let s = self.step;
        let inv = 1.0 / step;
        for (i, seg) in out[..TILE_PX].chunks_mut(s).enumerate().take(n - 1) {
            match column[i].zip(column[i + 1]) {
                Some((a, b)) => {
                    let d = (b.0 - a.0, b.1 - a.1);
                    for (k, o) in seg.iter_mut().enumerate() {
                        let f = (k as f64 + 0.5) * inv;
                        *o = (a.0 + d.0 * f, a.1 + d.1 * f);
                    }
                }
                None => {
                    for (k, o) in seg.iter_mut().enumerate() {
                        let px = (i * s + k) as f64 + 0.5;
                        *o = pixel_to_bng(self.tile, px, py as f64 + 0.5)
                            .unwrap_or((f64::NAN, f64::NAN));
                    }
                }
            }
        }
    }
}

/// Lattice nodes per bandwidth on the ground, at least, where densities are interpolated.
pub const DENSITY_NODES_PER_BANDWIDTH: f64 = 32.0;

/// Pixels between exactly evaluated densities over a tile whose converted lattice spans
/// `span_m` metres across, at bandwidth `r` metres: the largest power of two up to 16
/// with the nodes at most `r / DENSITY_NODES_PER_BANDWIDTH` apart (1: every pixel).
pub fn density_step(span_m: f64, r: f64) -> usize {
    let pixel_m = span_m / TILE_PX as f64;
    let mut step = 1;
    while step < 16 && (2 * step) as f64 * pixel_m <= r / DENSITY_NODES_PER_BANDWIDTH {
        step *= 2;
    }
    step
}

impl Lattice {
    /// BNG position of continuous pixel coordinates `(u, v)` (0..=256 from the
    /// north-west corner), interpolated as the pixel centres are; `None` where not
    /// convertible.
    fn at(&self, u: f64, v: f64) -> Option<(f64, f64)> {
        let (n, step) = (self.n, self.step as f64);
        let (fu, fv) = (u / step, v / step);
        let i = (fu.max(0.0) as usize).min(n - 2);
        let j = (fv.max(0.0) as usize).min(n - 2);
        let (a, b) = (fu - i as f64, fv - j as f64);
        match (
            self.nodes[j * n + i],
            self.nodes[j * n + i + 1],
            self.nodes[(j + 1) * n + i],
            self.nodes[(j + 1) * n + i + 1],
        ) {
            (Some(p00), Some(p10), Some(p01), Some(p11)) => {
                let lerp = |p: (f64, f64), q: (f64, f64), f: f64| {
                    (p.0 + (q.0 - p.0) * f, p.1 + (q.1 - p.1) * f)
                };
                Some(lerp(lerp(p00, p10, a), lerp(p01, p11, a), b))
            }
            _ => pixel_to_bng(self.tile, u, v),
        }
    }
}

/// Densities (per m²) of the tile's pixel centres, row-major; NaN where not convertible.
/// With `min_count > 0`, 0 wherever fewer incidents than that lie within the bandwidth
/// (disclosure control). Where densities are interpolated, a pixel is drawn only if one of
/// the four nodes around it has `min_count` incidents within `r - δ`, δ the longest
/// distance from a node to a pixel of its cells: that smaller disc lies inside the
/// pixel's own, so no pixel with fewer incidents is ever drawn, and the mask's edge is
/// within δ (about r/20) of the exact one, on the side of leaving out.
pub fn densities(surface: &Surface, lattice: &Lattice, step: usize, min_count: f64) -> Vec<f64> {
    let masked = min_count > 0.0;
    if step <= 1 {
        let mut pos = vec![(0.0, 0.0); TILE_PX * TILE_PX];
        for (py, row) in pos.chunks_exact_mut(TILE_PX).enumerate() {
            lattice.row(py, row);
        }
        let radius = masked.then_some(surface.bandwidth());
        let (mut density, count) = sample(surface.kde(), &pos, TILE_PX, radius);
        if masked {
            for (d, n) in density.iter_mut().zip(&count) {
                if *n < min_count {
                    *d = 0.0;
                }
            }
        }
        return density;
    }
    // Nodes at pixel centres 0.5, 0.5 + step, ... and one past the last centre, so every
    // centre lies between four nodes.
    let n = TILE_PX / step + 1;
    let node = |k: usize| (k * step) as f64 + 0.5;
    let pos: Vec<(f64, f64)> = (0..n * n)
        .map(|k| {
            let (i, j) = (k % n, k / n);
            lattice.at(node(i), node(j)).unwrap_or((f64::NAN, f64::NAN))
        })
        .collect();
    let radius = if masked {
        // Diagonal of a node cell on the ground, from its longest side, and a metre for
        // the lattice's own error.
        let (x0, y0, x1, y1) = lattice.bbox().unwrap_or((0.0, 0.0, 0.0, 0.0));
        let pixel_m = (x1 - x0).max(y1 - y0) / TILE_PX as f64;
        let delta = step as f64 * pixel_m * std::f64::consts::SQRT_2 * 1.05 + 1.0;
        Some((surface.bandwidth() - delta).max(0.0))
    } else {
        None
    };
    let (nodes, counts) = sample(surface.kde(), &pos, n, radius);
    let inv = 1.0 / step as f64;
    let mut out = vec![0.0; TILE_PX * TILE_PX];
    out.par_chunks_mut(TILE_PX)
        .enumerate()
        .for_each(|(py, row)| {
            let j = py / step;
            let fv = (py % step) as f64 * inv;
            for (px, d) in row.iter_mut().enumerate() {
                let i = px / step;
                let fu = (px % step) as f64 * inv;
                let (d00, d10) = (nodes[j * n + i], nodes[j * n + i + 1]);
                let (d01, d11) = (nodes[(j + 1) * n + i], nodes[(j + 1) * n + i + 1]);
                let hidden = masked
                    && [
                        j * n + i,
                        j * n + i + 1,
                        (j + 1) * n + i,
                        (j + 1) * n + i + 1,
                    ]
                    .iter()
                    .all(|&k| counts[k] < min_count);
                *d = if hidden || d00 == 0.0 && d10 == 0.0 && d01 == 0.0 && d11 == 0.0 {
                    0.0
                } else {
                    let top = d00 + (d10 - d00) * fu;
                    let bottom = d01 + (d11 - d01) * fu;
                    top + (bottom - top) * fv
                };
            }
        });
    out
}

/// The density at each of an `m` x `m` grid of BNG positions (row-major, as a tile's
/// pixels or lattice nodes lie), exactly.
///
/// Rather than each position gathering the incidents within a bandwidth from the
/// 3 x 3 bucket cells around it (which visits about three times the points that count,
/// through an indirection), each incident near the tile is spread over the positions it
/// reaches, row by row. The grid is nearly affine (Web Mercator to BNG is smooth at tile
/// scale), which picks the rows an incident can reach (widened by the grid's largest
/// departure from affine); within a row, the chord inside a bandwidth of the incident is
/// solved for along the line through the row's ends, widened by the row's largest
/// departure from that line (a parallel of latitude is a curve on the BNG), and only the
/// positions of that chord are tested, with their own coordinates. So the result is the
/// same sum as `KernelDensity::density_at` at every position
/// (`spreading_equals_gathering`). A grid with an unconvertible position (far offshore),
/// or one too degenerate to invert, is evaluated position by position.
fn sample(
    kde: &KernelDensity,
    pos: &[(f64, f64)],
    m: usize,
    count_radius: Option<f64>,
) -> (Vec<f64>, Vec<f64>) {
    let with_count = count_radius.is_some();
    let cr = count_radius.unwrap_or(0.0).min(kde.bandwidth());
    let cr2 = cr * cr;
    let gather = || -> (Vec<f64>, Vec<f64>) {
        let both: Vec<(f64, f64)> = pos
            .par_iter()
            .map(|&(x, y)| {
                if x.is_nan() {
                    (f64::NAN, 0.0)
                } else if with_count {
                    let mut n = 0.0;
                    kde.for_points_near((x, y, x, y), |p| {
                        if (p.x - x).powi(2) + (p.y - y).powi(2) < cr2 {
                            n += p.w;
                        }
                    });
                    (kde.density_at(x, y), n)
                } else {
                    (kde.density_at(x, y), 0.0)
                }
            })
            .collect();
        let count = if with_count {
            both.iter().map(|b| b.1).collect()
        } else {
            Vec::new()
        };
        (both.into_iter().map(|b| b.0).collect(), count)
    };
    if m < 2 || pos.len() != m * m || pos.iter().any(|p| !(p.0.is_finite() && p.1.is_finite())) {
        return gather();
    }
    let last = (m - 1) as f64;
    let p0 = pos[0];
    let eu = ((pos[m - 1].0 - p0.0) / last, (pos[m - 1].1 - p0.1) / last);
    let ev = (
        (pos[(m - 1) * m].0 - p0.0) / last,
        (pos[(m - 1) * m].1 - p0.1) / last,
    );
    let (a, b, c) = (
        eu.0 * eu.0 + eu.1 * eu.1,
        eu.0 * ev.0 + eu.1 * ev.1,
        ev.0 * ev.0 + ev.1 * ev.1,
    );
    let det = eu.0 * ev.1 - eu.1 * ev.0;
    let gram = a * c - b * b;
    if !(det.abs() > 1e-9 && a > 0.0 && c > 0.0 && gram > 0.0) {
        return gather();
    }
    // The grid's largest departure from the affine one, in metres.
    let mut dev = 0.0f64;
    let mut bbox = (
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    );
    for (k, &(x, y)) in pos.iter().enumerate() {
        let (i, j) = ((k % m) as f64, (k / m) as f64);
        let (ax, ay) = (p0.0 + i * eu.0 + j * ev.0, p0.1 + i * eu.1 + j * ev.1);
        dev = dev.max((x - ax).hypot(y - ay));
        bbox = (bbox.0.min(x), bbox.1.min(y), bbox.2.max(x), bbox.3.max(y));
    }
    let r = kde.bandwidth();
    let r2 = r * r;
    // Every position truly within r of an incident is within this of it on the affine grid.
    let reach = r + dev + 1e-6 * r;
    // Incidents near the tile in grid coordinates (u along a row, v down the rows).
    let mut near: Vec<(f64, f64, f64, f64, f64)> = Vec::new();
    kde.for_points_near(bbox, |p| {
        let (dx, dy) = (p.x - p0.0, p.y - p0.1);
        let u = (dx * ev.1 - dy * ev.0) / det;
        let v = (eu.0 * dy - eu.1 * dx) / det;
        near.push((v, u, p.w, p.x, p.y));
    });
    if near.is_empty() {
        return (
            vec![0.0; m * m],
            if with_count {
                vec![0.0; m * m]
            } else {
                Vec::new()
            },
        );
    }
    near.sort_unstable_by(|p, q| p.0.total_cmp(&q.0));
    // Rows a bandwidth reaches: a u^2 + 2 b u dv + c dv^2 < reach^2 has a solution in u.
    let rows_reached = reach * (a / gram).sqrt() + 1.0;
    let mut out = vec![0.0; m * m];
    let mut count = vec![0.0; if with_count { m * m } else { 0 }];
    let rows: Vec<(&mut [f64], Option<&mut [f64]>)> = if with_count {
        out.chunks_mut(m)
            .zip(count.chunks_mut(m).map(Some))
            .collect()
    } else {
        out.chunks_mut(m).map(|r| (r, None)).collect()
    };
    rows.into_par_iter()
        .enumerate()
        .for_each(|(j, (row, mut row_count))| {
            let jf = j as f64;
            let lo = near.partition_point(|q| q.0 < jf - rows_reached);
            let hi = near.partition_point(|q| q.0 <= jf + rows_reached);
            let positions = &pos[j * m..(j + 1) * m];
            // The row as a line (its ends) and its largest departure from it: far smaller
            // than the whole grid's at low zoom, where the Mercator scale varies down a tile.
            let (start, end) = (positions[0], positions[m - 1]);
            let e = ((end.0 - start.0) / last, (end.1 - start.1) / last);
            let e2 = e.0 * e.0 + e.1 * e.1;
            if e2.is_nan() || e2 <= 0.0 {
                for (k, &(x, y)) in positions.iter().enumerate() {
                    row[k] = kde.density_at(x, y);
                    if let Some(c) = row_count.as_deref_mut() {
                        let mut n = 0.0;
                        kde.for_points_near((x, y, x, y), |p| {
                            if (p.x - x).powi(2) + (p.y - y).powi(2) < cr2 {
                                n += p.w;
                            }
                        });
                        c[k] = n;
                    }
                }
                return;
            }
            let row_dev = positions
                .iter()
                .enumerate()
                .map(|(i, &(x, y))| {
                    let i = i as f64;
                    (x - start.0 - i * e.0).hypot(y - start.1 - i * e.1)
                })
                .fold(0.0f64, f64::max);
            let reach = r + row_dev + 1e-6 * r;
            let reach2 = reach * reach;
            let inv_len = 1.0 / e2.sqrt();
            for &(_, _, w, qx, qy) in &near[lo..hi] {
                let (dx, dy) = (qx - start.0, qy - start.1);
                // Position along the row (in pixels) and distance from its line (metres).
                let along = (dx * e.0 + dy * e.1) / e2;
                let across = (dx * e.1 - dy * e.0) * inv_len;
                let rest = reach2 - across * across;
                if rest < 0.0 {
                    continue;
                }
                let half = rest.sqrt() * inv_len + 1.0;
                let i0 = (along - half).ceil().max(0.0);
                let i1 = (along + half).floor().min(last);
                if i1 < i0 {
                    continue;
                }
                let (i0, i1) = (i0 as usize, i1 as usize);
                let chord = row[i0..=i1].iter_mut().zip(&positions[i0..=i1]);
                if let Some(c) = row_count.as_deref_mut() {
                    for ((d, &(x, y)), n) in chord.zip(&mut c[i0..=i1]) {
                        let (dx, dy) = (qx - x, qy - y);
                        let d2 = dx * dx + dy * dy;
                        if d2 < r2 {
                            *d += w * kde.kernel(d2);
                            if d2 < cr2 {
                                *n += w;
                            }
                        }
                    }
                } else {
                    for (d, &(x, y)) in chord {
                        let (dx, dy) = (qx - x, qy - y);
                        let d2 = dx * dx + dy * dy;
                        if d2 < r2 {
                            *d += w * kde.kernel(d2);
                        }
                    }
                }
            }
        });
    (out, count)
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
    let Some((x0, y0, x1, y1)) = lattice.bbox() else {
        return empty_png().to_vec();
    };
    if !surface.near(x0, y0, x1, y1) {
        return empty_png().to_vec();
    }
    let step = density_step((x1 - x0).max(y1 - y0), surface.bandwidth());
    let density = densities(surface, &lattice, step, min_count);
    let inv_max = 1.0 / max_per_m2;
    let steps: Vec<u8> = density.iter().map(|&d| Ramp::index(d * inv_max)).collect();
    // Step 0 is the only transparent one.
    if steps.iter().all(|&s| s == 0) {
        return empty_png().to_vec();
    }
    encode_indexed(&steps, ramp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile_at(lon: f64, lat: f64, z: u8) -> TileCoord {
        TileCoord::containing(lon, lat, z).expect("in range")
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

    #[test]
    fn interpolated_density_is_within_a_ramp_step_of_exact() {
        use std::sync::Arc;
        let g = Arc::new(crate::spatial::Geography::bundled().expect("bundled geography"));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample");
        let (store, _) = crate::analysis::from_csv_paths(&[dir], g).expect("fixtures");
        let store = Arc::new(store);
        let filter = crate::analysis::Filter::default();
        let mut interpolated = 0;
        for bandwidth in [None, Some(400.0), Some(50.0)] {
            let surface = Surface::build(&store, &filter, bandwidth, 0.0).expect("surface");
            let max = surface.default_max_per_km2() / 1e6;
            // Preston, Blackpool and Burnley town centres.
            for (lon, lat) in [(-2.7006, 53.7590), (-3.0500, 53.8175), (-2.2430, 53.7893)] {
                for z in 12..=17 {
                    let t = tile_at(lon, lat, z);
                    let lattice = Lattice::new(t);
                    let (x0, y0, x1, y1) = lattice.bbox().expect("converted");
                    let step = density_step((x1 - x0).max(y1 - y0), surface.bandwidth());
                    if step == 1 {
                        continue;
                    }
                    interpolated += 1;
                    let exact = densities(&surface, &lattice, 1, 0.0);
                    let fast = densities(&surface, &lattice, step, 0.0);
                    let (mut worst_index, mut worst_alpha) = (0.0f64, 0i32);
                    for (e, f) in exact.iter().zip(&fast) {
                        worst_index = worst_index.max((e - f).abs() / max * 255.0);
                        let (a, b) = (Ramp::alpha(e / max), Ramp::alpha(f / max));
                        worst_alpha = worst_alpha.max((i32::from(a) - i32::from(b)).abs());
                    }
                    eprintln!(
                        "r {:.0} m, z {z}, step {step}: worst {worst_index:.3} ramp steps, alpha {worst_alpha}",
                        surface.bandwidth()
                    );
                    assert!(worst_index < 0.5, "z {z} step {step}: {worst_index}");
                    // Alpha is per ramp step and rises over the first tenth, 10 of 255 a
                    // step there: within half a step of exact, a pixel is at most one step
                    // off, so at most 10.
                    assert!(worst_alpha <= 10, "z {z} step {step}: alpha {worst_alpha}");
                }
            }
        }
        assert!(interpolated >= 10, "only {interpolated} tiles interpolated");
    }

    #[test]
    fn density_step_keeps_nodes_within_a_fraction_of_the_bandwidth() {
        // 256 px over 256 m: 1 m pixels.
        assert_eq!(density_step(256.0, 800.0), 16);
        assert_eq!(density_step(256.0, 100.0), 2);
        assert_eq!(density_step(256.0, 24.0), 1);
        assert_eq!(density_step(256.0 * 40.0, 800.0), 1);
        for (span, r) in [(3000.0, 805.0), (700.0, 50.0), (12000.0, 20000.0)] {
            let step = density_step(span, r);
            assert!(step == 1 || step as f64 * span / 256.0 <= r / DENSITY_NODES_PER_BANDWIDTH);
        }
    }

    #[test]
    fn spreading_equals_gathering() {
        use std::sync::Arc;
        let g = Arc::new(crate::spatial::Geography::bundled().expect("bundled geography"));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample");
        let (store, _) = crate::analysis::from_csv_paths(&[dir], g).expect("fixtures");
        let store = Arc::new(store);
        let filter = crate::analysis::Filter::default();
        let mut compared = 0usize;
        for bandwidth in [None, Some(300.0), Some(50.0)] {
            let surface = Surface::build(&store, &filter, bandwidth, 0.0).expect("surface");
            let kde = surface.kde();
            for (lon, lat) in [(-2.7006, 53.7590), (-3.0500, 53.8175), (-2.5, 54.1)] {
                for z in [7, 8, 10, 11, 12, 14, 16] {
                    let t = tile_at(lon, lat, z);
                    let lattice = Lattice::new(t);
                    for m in [TILE_PX, 33, 17] {
                        let step = TILE_PX / (m - 1).max(1);
                        let pos: Vec<(f64, f64)> = if m == TILE_PX {
                            let mut pos = vec![(0.0, 0.0); TILE_PX * TILE_PX];
                            for (py, row) in pos.chunks_exact_mut(TILE_PX).enumerate() {
                                lattice.row(py, row);
                            }
                            pos
                        } else {
                            (0..m * m)
                                .map(|k| {
                                    let (i, j) = ((k % m * step) as f64, (k / m * step) as f64);
                                    lattice.at(i + 0.5, j + 0.5).expect("converted")
                                })
                                .collect()
                        };
                        let (spread, count) = sample(kde, &pos, m, Some(kde.bandwidth()));
                        for (k, &(x, y)) in pos.iter().enumerate() {
                            let (want, n) = kde.density_and_weight_at(x, y);
                            let got = spread[k];
                            assert!(
                                (got - want).abs() <= 1e-9 * want.abs() + 1e-300,
                                "z {z} m {m} ({x}, {y}): {got} vs {want}"
                            );
                            assert!((count[k] - n).abs() < 1e-9, "count {} vs {n}", count[k]);
                            compared += usize::from(want > 0.0);
                        }
                    }
                }
            }
        }
        assert!(
            compared > 100_000,
            "only {compared} non-zero densities compared"
        );
    }

    #[test]
    fn masked_pixels_never_show_fewer_than_the_minimum_count() {
        use std::sync::Arc;
        let g = Arc::new(crate::spatial::Geography::bundled().expect("bundled geography"));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample");
        let (store, _) = crate::analysis::from_csv_paths(&[dir], g).expect("fixtures");
        let store = Arc::new(store);
        // Few incidents: one type over one month, so the mask bites.
        let filter = crate::analysis::Filter {
            types: [crate::model::CrimeType::Robbery].into_iter().collect(),
            ..crate::analysis::Filter::default()
        };
        let (mut shown, mut hidden, mut steps) =
            (0usize, 0usize, std::collections::BTreeSet::new());
        for bandwidth in [1000.0, 300.0] {
            let surface = Surface::build(&store, &filter, Some(bandwidth), 0.0).expect("surface");
            let kde = surface.kde();
            for (lon, lat) in [(-2.7006, 53.7590), (-3.0500, 53.8175), (-2.4849, 53.7480)] {
                for z in [11, 12, 14, 16] {
                    let t = tile_at(lon, lat, z);
                    let lattice = Lattice::new(t);
                    let (x0, y0, x1, y1) = lattice.bbox().expect("converted");
                    let step = density_step((x1 - x0).max(y1 - y0), surface.bandwidth());
                    steps.insert(step);
                    let plain = densities(&surface, &lattice, step, 0.0);
                    let masked = densities(&surface, &lattice, step, 5.0);
                    let mut pos = vec![(0.0, 0.0); TILE_PX * TILE_PX];
                    for (py, row) in pos.chunks_exact_mut(TILE_PX).enumerate() {
                        lattice.row(py, row);
                    }
                    for ((&d, &p), &(x, y)) in masked.iter().zip(&plain).zip(&pos) {
                        if d > 0.0 {
                            let (_, n) = kde.density_and_weight_at(x, y);
                            assert!(n >= 5.0, "z {z} step {step}: drawn with {n} incidents");
                            assert_eq!(d, p, "the mask changes nothing it draws");
                            shown += 1;
                        } else if p > 0.0 {
                            hidden += 1;
                        }
                    }
                }
            }
        }
        eprintln!("shown {shown}, hidden {hidden}, steps {steps:?}");
        assert!(
            shown > 10_000 && hidden > 10_000,
            "shown {shown}, hidden {hidden}"
        );
        assert!(steps.contains(&1) && steps.len() > 1, "{steps:?}");
    }
}
