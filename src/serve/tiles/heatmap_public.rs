//! The heatmap below the analyst role: drawn from the perturbed, suppressed counts of a
//! fixed public grid, never from incident points.
//!
//! # Why
//! A kernel density of the incident points is a sum of one kernel per incident. Two
//! renders whose filters differ by one incident (a type set with and without a rare type,
//! at the minimum bandwidth) differ by exactly that incident's kernel, and a fit of a
//! quartic kernel to the difference put the incident's snap point to within a few metres.
//! A minimum bandwidth and a "k incidents under a pixel" mask do not stop that: the
//! difference is still one kernel, centred on the point, and the mask's edge itself
//! follows the exact points.
//!
//! # What the public surface is
//! 1. **The grid**: squares of [`GRID_M`] (500 m) on the British National Grid (EPSG:27700),
//!    aligned to the grid's origin: cell (col, row) is `[500 col, 500 (col + 1)) x
//!    [500 row, 500 (row + 1))` metres. Fixed, so it does not move with the data.
//! 2. **Counts**: per cell, the filter's incidents and the sum of their record keys
//!    ([`grid_counts`]; the same filter, months, districts, severities and the same
//!    exclusion of sensitive categories as every public output).
//! 3. **Disclosure control** ([`publish`]): each cell's count through the cell-key
//!    perturbation table (`disclosure::ckp::PTable::publish`: noise -2..+2 fixed by the
//!    cell's records, zeros stay zero), and a perturbed count from 1 to k - 1 withheld
//!    (it adds nothing to the map).
//! 4. **Density**: the quartic kernel density (the analyst's kernel, bandwidth in metres)
//!    of the published cells, each a weighted point at its cell's centre. The default
//!    bandwidth is ArcGIS's rule on those weighted centres and the default top of the
//!    ramp the 99.5th percentile of this density at the published cells (weighted by
//!    their published counts): nothing public is derived from exact points.
//! 5. **A raster**, computed once per (store, generation, filter, bandwidth) ([`Raster`]):
//!    the density at nodes of a BNG lattice aligned to the grid, at most `bandwidth / 16`
//!    apart (62.5 m at the minimum bandwidth of 1000 m). A public tile is each pixel's
//!    BNG position (the analyst's lattice, `render::Lattice`), a bilinear sample of the
//!    raster, the ramp and a PNG encode: no kernel is evaluated per tile. Bilinear error
//!    is at most `h^2 / 8` times the density's second derivative, which for one kernel
//!    is at most `8 / r^2` times its peak: with `h = r / 16`, under 0.4% of the summed
//!    peaks within reach (`raster_matches_the_kernel_sum_of_the_published_cells`).
//!
//! # Why 500 m
//! Coarse enough that a cell says little: a 500 m square holds several streets (hundreds
//! of addresses in a town), and the best any fit can do is the cell's centre, which lies
//! within 100 m of a point placed anywhere in the cell with probability `pi 100^2 /
//! 500^2 = 0.126` (a 250 m grid would give 0.50). Fine enough for the map: the public
//! bandwidth is at least two cells ([`MIN_BANDWIDTH_M`], 1000 m, the default
//! `heatmap_min_bandwidth_m`), so each kernel spans about 12 cells and the surface stays
//! smooth; what is lost is detail under about 500 m, which the minimum bandwidth already
//! blurred away.
//!
//! # What it guarantees, and what it does not
//! - The public surface is a function of the per-cell (count, key sum) pairs of the
//!   filter and nothing else, so moving an incident within its cell (its record key
//!   kept) leaves every public tile byte-identical
//!   (`moving_an_incident_within_its_cell_changes_no_public_tile`). Record keys are a
//!   hash that includes the place, so a *real* move within the cell redraws that cell's
//!   noise from the secret permutation: the tile changes by the cell's noise, which says
//!   nothing about where in the cell the incident is.
//! - Two public renders whose filters differ by one incident differ, at most, by a
//!   kernel at the *centre* of that incident's cell, scaled by the change of the cell's
//!   perturbed count (-3..+5, 0 in about a quarter of cases, and nothing at all where
//!   both counts are withheld): the fit locates the cell, never the point in it
//!   (`tests/adversarial.rs`, `kernel_fit_locates_the_cell_not_the_incident`).
//! - Not hidden: which 500 m cells hold at least about k incidents of a filter, and their
//!   counts to within the perturbation (as the OGC H3 collections publish for finer
//!   cells). Incidents in cells of fewer than k (perturbed) are not drawn at all, so the
//!   public map under-draws sparse rural incidents; the legend says so.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Weak};

use quick_cache::sync::Cache;
use rayon::prelude::*;

use super::ramp::Ramp;
use super::render::{Lattice, TILE_PX, empty_png, encode_indexed};

/// Pixel rows per parallel task of a public render (256 tasks of one row cost more in
/// scheduling than the row's work).
const ROWS_PER_TASK: usize = 32;
use super::surface::{BANDWIDTH_RANGE_M, FALLBACK_BANDWIDTH_M, next_id, weighted_percentile};
use crate::analysis::{AnalysisStore, Filter};
use crate::serve::AppError;
use crate::serve::disclosure::ckp::PTable;
use crate::serve::tile::TileCoord;
use crate::spatial::bng::wgs84_to_bng;
use crate::stats::kde::{WeightedPoint, default_bandwidth, per_km2};

/// Side of a public grid cell, metres on the British National Grid.
pub const GRID_M: f64 = 500.0;

/// The smallest public bandwidth, whatever the settings: two grid cells.
pub const MIN_BANDWIDTH_M: f64 = 2.0 * GRID_M;

/// Raster nodes per bandwidth, at least.
pub const NODES_PER_BANDWIDTH: f64 = 16.0;

/// Most raster nodes (about 32 MB of f32); a larger extent gets a coarser step.
const MAX_RASTER_NODES: usize = 8 << 20;

/// Public surfaces kept (each a raster of a few MB over the county).
const CAPACITY: usize = 8;

/// A grid cell: (row, col), ordered south to north, then west to east.
pub type Cell = (i32, i32);

/// The grid cell holding BNG (x, y).
pub fn cell_of(x: f64, y: f64) -> Cell {
    ((y / GRID_M).floor() as i32, (x / GRID_M).floor() as i32)
}

/// The BNG centre of a grid cell.
pub fn cell_centre((row, col): Cell) -> (f64, f64) {
    (
        (f64::from(col) + 0.5) * GRID_M,
        (f64::from(row) + 0.5) * GRID_M,
    )
}

/// A cell's true count and the sum of its records' keys (exact: never published).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CellCount {
    pub count: u64,
    pub key_sum: u32,
}

/// The exact count and key sum per grid cell of the incidents passing `filter` (types,
/// severities, inclusive months, districts). Locations outside the OSTN15 grid are left
/// out, as the analyst's surface leaves them out.
pub fn grid_counts(store: &AnalysisStore, filter: &Filter) -> BTreeMap<Cell, CellCount> {
    let l = &store.locations;
    let inc = &store.incidents;
    let record_keys = store.record_keys();
    let n_loc = l.len();
    let keep_loc: Vec<bool> = (0..n_loc)
        .map(|i| match &filter.districts {
            None => true,
            Some(d) => l.district.get(i).is_some_and(|x| d.contains(x)),
        })
        .collect();
    let lo = filter.from.map_or(u16::MIN, |m| m.index());
    let hi = filter.to.map_or(u16::MAX, |m| m.index());
    let n = inc
        .loc
        .len()
        .min(inc.month.len())
        .min(inc.ctype.len())
        .min(inc.severity.len());
    // (count, key sum) per location.
    let per_loc = (0..n)
        .into_par_iter()
        .with_min_len(1 << 16)
        .fold(
            || vec![(0u32, 0u32); n_loc],
            |mut acc, i| {
                let loc = inc.loc[i] as usize;
                if (lo..=hi).contains(&inc.month[i])
                    && filter.keeps(inc.ctype[i], inc.severity[i])
                    && keep_loc.get(loc).copied().unwrap_or(false)
                {
                    let key = u32::from(record_keys.get(i).copied().unwrap_or(0));
                    let a = &mut acc[loc];
                    *a = (a.0.saturating_add(1), a.1.wrapping_add(key));
                }
                acc
            },
        )
        .reduce(
            || vec![(0u32, 0u32); n_loc],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x = (x.0.saturating_add(y.0), x.1.wrapping_add(y.1));
                }
                a
            },
        );
    let located: Vec<(Cell, u32, u32)> = per_loc
        .par_iter()
        .enumerate()
        .filter(|(_, c)| c.0 > 0)
        .filter_map(|(i, &(c, k))| {
            let lon = f64::from(*l.lon_e7.get(i)?) / 1e7;
            let lat = f64::from(*l.lat_e7.get(i)?) / 1e7;
            let (x, y) = wgs84_to_bng(lon, lat).ok()?;
            (x.is_finite() && y.is_finite()).then(|| (cell_of(x, y), c, k))
        })
        .collect();
    let mut cells: BTreeMap<Cell, CellCount> = BTreeMap::new();
    for (cell, c, k) in located {
        let e = cells.entry(cell).or_default();
        e.count += u64::from(c);
        e.key_sum = e.key_sum.wrapping_add(k);
    }
    cells
}

/// The published cells: each cell's perturbed count, withheld (left out) from 1 to k - 1;
/// zeros are not listed. Ordered as the cells are (south to north, west to east).
pub fn publish(cells: &BTreeMap<Cell, CellCount>, ptable: &PTable, k: u64) -> Vec<(Cell, u64)> {
    cells
        .iter()
        .filter_map(|(&cell, c)| {
            ptable
                .publish(c.count, c.key_sum, k)
                .filter(|&p| p > 0)
                .map(|p| (cell, p))
        })
        .collect()
}

/// The quartic kernel density of weighted points at the nodes of a BNG lattice:
/// node (i, j) at `((i0 + i) step, (j0 + j) step)`, row-major from the south.
#[derive(Debug, Clone)]
pub struct Raster {
    i0: i64,
    j0: i64,
    step: f64,
    /// `1 / step` (a multiply per sample instead of a divide).
    inv_step: f64,
    cols: usize,
    rows: usize,
    /// Density per m².
    values: Vec<f32>,
}

impl Raster {
    /// The density of `points` (sorted by y, then x, for a fixed summation order) at
    /// bandwidth `r`, with nodes `step` apart over the points' extent grown by `r`.
    fn build(points: &[WeightedPoint], r: f64, step: f64) -> Raster {
        let empty = Raster {
            i0: 0,
            j0: 0,
            step,
            inv_step: 1.0 / step,
            cols: 0,
            rows: 0,
            values: Vec::new(),
        };
        let Some((min_x, min_y, max_x, max_y)) = points.iter().fold(None, |b, p| {
            let (x0, y0, x1, y1) = b.unwrap_or((p.x, p.y, p.x, p.y));
            Some((x0.min(p.x), y0.min(p.y), x1.max(p.x), y1.max(p.y)))
        }) else {
            return empty;
        };
        let mut step = step;
        let (mut i0, mut j0, mut cols, mut rows);
        loop {
            i0 = ((min_x - r) / step).floor() as i64 - 1;
            j0 = ((min_y - r) / step).floor() as i64 - 1;
            let i1 = ((max_x + r) / step).ceil() as i64 + 1;
            let j1 = ((max_y + r) / step).ceil() as i64 + 1;
            cols = (i1 - i0 + 1).max(2) as usize;
            rows = (j1 - j0 + 1).max(2) as usize;
            if cols.saturating_mul(rows) <= MAX_RASTER_NODES {
                break;
            }
            step *= 2.0;
        }
        let r2 = r * r;
        let norm = 3.0 / (std::f64::consts::PI * r2);
        let inv_r2 = 1.0 / r2;
        let ys: Vec<f64> = points.iter().map(|p| p.y).collect();
        debug_assert!(ys.windows(2).all(|w| w[0] <= w[1]), "points sorted by y");
        let mut values = vec![0f32; cols * rows];
        values.par_chunks_mut(cols).enumerate().for_each_init(
            || vec![0f64; cols],
            |acc, (j, out)| {
                acc.iter_mut().for_each(|a| *a = 0.0);
                let y = (j0 + j as i64) as f64 * step;
                // Points within r of the row, in their fixed order.
                let a = ys.partition_point(|&py| py <= y - r);
                let b = ys.partition_point(|&py| py < y + r);
                for p in &points[a..b] {
                    let dy = p.y - y;
                    let rest = r2 - dy * dy;
                    if rest <= 0.0 {
                        continue;
                    }
                    let half = rest.sqrt();
                    let c0 = (((p.x - half) / step).ceil() as i64 - i0).max(0);
                    let c1 = (((p.x + half) / step).floor() as i64 - i0).min(cols as i64 - 1);
                    for c in c0..=c1 {
                        let dx = p.x - (i0 + c) as f64 * step;
                        let d2 = dx * dx + dy * dy;
                        if d2 < r2 {
                            let t = (r2 - d2) * inv_r2;
                            acc[c as usize] += p.w * t * t * norm;
                        }
                    }
                }
                for (o, a) in out.iter_mut().zip(acc.iter()) {
                    *o = *a as f32;
                }
            },
        );
        Raster {
            i0,
            j0,
            step,
            inv_step: 1.0 / step,
            cols,
            rows,
            values,
        }
    }

    /// Metres between nodes.
    pub fn step(&self) -> f64 {
        self.step
    }

    /// Nodes (columns x rows).
    pub fn nodes(&self) -> (usize, usize) {
        (self.cols, self.rows)
    }

    /// The BNG rectangle the nodes cover (None when empty).
    pub fn bbox(&self) -> Option<(f64, f64, f64, f64)> {
        (self.cols > 0 && self.rows > 0).then(|| {
            (
                self.i0 as f64 * self.step,
                self.j0 as f64 * self.step,
                (self.i0 + self.cols as i64 - 1) as f64 * self.step,
                (self.j0 + self.rows as i64 - 1) as f64 * self.step,
            )
        })
    }

    /// Density per m² at BNG (x, y), bilinear between the four nodes around it; 0
    /// outside the raster or at a position that is not a number.
    #[inline]
    pub fn sample(&self, x: f64, y: f64) -> f64 {
        let fx = x * self.inv_step - self.i0 as f64;
        let fy = y * self.inv_step - self.j0 as f64;
        // Also false for NaN, and before any cast of a huge value.
        let inside = fx >= 0.0
            && fy >= 0.0
            && fx < self.cols.saturating_sub(1) as f64
            && fy < self.rows.saturating_sub(1) as f64;
        if !inside {
            return 0.0;
        }
        let (i, j) = (fx as usize, fy as usize);
        let (u, v) = (fx - i as f64, fy - j as f64);
        let k = j * self.cols + i;
        // Inside: i + 1 < cols and j + 1 < rows, so the four nodes are in the slice.
        let (s, n) = (
            &self.values[k..k + 2],
            &self.values[k + self.cols..k + self.cols + 2],
        );
        let (s0, s1, n0, n1) = (
            f64::from(s[0]),
            f64::from(s[1]),
            f64::from(n[0]),
            f64::from(n[1]),
        );
        let south = s0 + (s1 - s0) * u;
        let north = n0 + (n1 - n0) * u;
        south + (north - south) * v
    }
}

/// A filter's public heatmap surface: the published grid and its density raster.
#[derive(Debug)]
pub struct PublicSurface {
    id: u64,
    raster: Raster,
    bandwidth: f64,
    bandwidth_is_default: bool,
    default_max: f64,
    published: usize,
    withheld: usize,
    _store: Weak<AnalysisStore>,
}

/// Raster step for bandwidth `r`: the grid cell divided into the fewest equal parts that
/// put at least [`NODES_PER_BANDWIDTH`] nodes per bandwidth (so nodes fall on the cells'
/// edges, and on their centres when the parts are even).
pub fn raster_step(r: f64) -> f64 {
    let parts = (GRID_M * NODES_PER_BANDWIDTH / r).ceil().clamp(1.0, 64.0);
    GRID_M / parts
}

impl PublicSurface {
    /// The public surface of `filter` (sensitive categories already left out by the
    /// caller): cells' counts perturbed by `ptable`, withheld below `k`, the bandwidth
    /// requested or the default, at least `min_bandwidth_m` and [`MIN_BANDWIDTH_M`].
    pub fn build(
        store: &Arc<AnalysisStore>,
        filter: &Filter,
        bandwidth_m: Option<f64>,
        min_bandwidth_m: f64,
        ptable: &PTable,
        k: u64,
    ) -> Self {
        let counts = grid_counts(store, filter);
        Self::from_counts(store, &counts, bandwidth_m, min_bandwidth_m, ptable, k)
    }

    /// As [`Self::build`], from the grid counts.
    pub fn from_counts(
        store: &Arc<AnalysisStore>,
        counts: &BTreeMap<Cell, CellCount>,
        bandwidth_m: Option<f64>,
        min_bandwidth_m: f64,
        ptable: &PTable,
        k: u64,
    ) -> Self {
        let published = publish(counts, ptable, k);
        let points: Vec<WeightedPoint> = published
            .iter()
            .map(|&(cell, p)| {
                let (x, y) = cell_centre(cell);
                WeightedPoint { x, y, w: p as f64 }
            })
            .collect();
        let (lo, hi) = BANDWIDTH_RANGE_M;
        let r = bandwidth_m
            .unwrap_or_else(|| {
                default_bandwidth(&points).map_or(FALLBACK_BANDWIDTH_M, |r| r.clamp(lo, hi))
            })
            .max(min_bandwidth_m)
            .max(MIN_BANDWIDTH_M)
            .min(hi);
        let raster = Raster::build(&points, r, raster_step(r));
        let default_max = percentile_at(&raster, &points);
        PublicSurface {
            id: next_id(),
            raster,
            bandwidth: r,
            bandwidth_is_default: bandwidth_m.is_none(),
            default_max,
            published: published.len(),
            withheld: counts
                .values()
                .filter(|c| c.count > 0)
                .count()
                .saturating_sub(published.len()),
            _store: Arc::downgrade(store),
        }
    }

    /// Unique per built surface (shared with the analyst's surfaces).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The search radius in metres.
    pub fn bandwidth(&self) -> f64 {
        self.bandwidth
    }

    /// Whether the bandwidth is the default rather than requested.
    pub fn bandwidth_is_default(&self) -> bool {
        self.bandwidth_is_default
    }

    /// The default top of the ramp in incidents per km² (0 without published cells).
    pub fn default_max_per_km2(&self) -> f64 {
        per_km2(self.default_max)
    }

    /// The density raster.
    pub fn raster(&self) -> &Raster {
        &self.raster
    }

    /// Non-empty cells published, and withheld.
    pub fn cells(&self) -> (usize, usize) {
        (self.published, self.withheld)
    }
}

/// The weighted default-top percentile (`weighted_percentile`) of the raster at the
/// points, per m².
fn percentile_at(raster: &Raster, points: &[WeightedPoint]) -> f64 {
    let d: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (raster.sample(p.x, p.y), p.w))
        .collect();
    weighted_percentile(d)
}

/// What a public surface is cached under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    store: usize,
    generation: u64,
    filter: String,
    bandwidth_bits: Option<u64>,
    min_bandwidth_bits: u64,
    k: u64,
    seed: u64,
}

static SURFACES: LazyLock<Cache<Key, Arc<PublicSurface>>> = LazyLock::new(|| Cache::new(CAPACITY));

/// The cached public surface, built on a miss (blocking: call from a blocking task).
///
/// # Errors
/// None today; the `Result` keeps the analyst's surface's shape.
#[allow(clippy::too_many_arguments)]
pub fn surface(
    store: &Arc<AnalysisStore>,
    generation: u64,
    filter: &Filter,
    bandwidth_m: Option<f64>,
    min_bandwidth_m: f64,
    k: u64,
    seed: u64,
) -> Result<Arc<PublicSurface>, AppError> {
    let key = Key {
        store: Arc::as_ptr(store) as usize,
        generation,
        filter: filter.key(),
        bandwidth_bits: bandwidth_m.map(f64::to_bits),
        min_bandwidth_bits: min_bandwidth_m.to_bits(),
        k,
        seed,
    };
    SURFACES.get_or_insert_with(&key, || {
        // A miss is a layer's computation: one of the bounded pool's slots.
        let _slot = crate::cancel::admit();
        Ok::<_, AppError>(Arc::new(PublicSurface::build(
            store,
            filter,
            bandwidth_m,
            min_bandwidth_m,
            &PTable::new(seed),
            k,
        )))
    })
}

/// A public tile: each pixel centre's BNG position, a bilinear sample of the raster,
/// `ramp` at `density / max_per_m2`, PNG. The transparent tile when nothing shows.
pub fn render(surface: &PublicSurface, tile: TileCoord, ramp: Ramp, max_per_m2: f64) -> Vec<u8> {
    if !(max_per_m2.is_finite() && max_per_m2 > 0.0) {
        return empty_png().to_vec();
    }
    let raster = &surface.raster;
    let Some((rx0, ry0, rx1, ry1)) = raster.bbox() else {
        return empty_png().to_vec();
    };
    let lattice = Lattice::new(tile);
    let Some((x0, y0, x1, y1)) = lattice.bbox() else {
        return empty_png().to_vec();
    };
    if x1 < rx0 || x0 > rx1 || y1 < ry0 || y0 > ry1 {
        return empty_png().to_vec();
    }
    let inv_max = 1.0 / max_per_m2;
    let mut steps = vec![0u8; TILE_PX * TILE_PX];
    let drawn: usize = steps
        .par_chunks_mut(TILE_PX * ROWS_PER_TASK)
        .enumerate()
        .map_init(
            || vec![(0.0, 0.0); TILE_PX],
            |pos, (task, rows)| {
                let mut n = 0;
                for (r, row) in rows.chunks_exact_mut(TILE_PX).enumerate() {
                    lattice.row(task * ROWS_PER_TASK + r, pos);
                    for (px, &(x, y)) in row.iter_mut().zip(pos.iter()) {
                        // Step 0 (also for no density) is the only transparent one.
                        *px = Ramp::index(raster.sample(x, y) * inv_max);
                        n += usize::from(*px > 0);
                    }
                }
                n
            },
        )
        .sum();
    if drawn == 0 {
        return empty_png().to_vec();
    }
    encode_indexed(&steps, ramp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spatial::bng::bng_to_wgs84;

    fn tile_at(lon: f64, lat: f64, z: u8) -> TileCoord {
        TileCoord::containing(lon, lat, z).expect("in range")
    }

    fn fixtures() -> AnalysisStore {
        let g = Arc::new(crate::spatial::Geography::bundled().expect("bundled geography"));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample");
        crate::analysis::from_csv_paths(&[dir], g)
            .expect("fixtures")
            .0
    }

    #[test]
    fn cells_are_fixed_500_m_squares_of_the_bng() {
        assert_eq!(cell_of(0.0, 0.0), (0, 0));
        assert_eq!(cell_of(499.999, 500.0), (1, 0));
        assert_eq!(cell_of(354_250.0, 429_999.0), (859, 708));
        assert_eq!(cell_centre((859, 708)), (354_250.0, 429_750.0));
        assert_eq!(raster_step(1000.0), 62.5);
        assert_eq!(raster_step(2000.0), 125.0);
        assert_eq!(raster_step(20_000.0), 500.0);
    }

    #[test]
    fn publish_perturbs_withholds_below_k_and_keeps_zeros_out() {
        let t = PTable::new(42);
        let mut cells = BTreeMap::new();
        for (i, n) in [0u64, 1, 2, 4, 5, 9, 40, 300].iter().enumerate() {
            cells.insert(
                (0, i as i32),
                CellCount {
                    count: *n,
                    key_sum: 37 * i as u32,
                },
            );
        }
        let p = publish(&cells, &t, 5);
        for &(cell, v) in &p {
            let c = cells[&cell];
            assert_eq!(Some(v), t.publish(c.count, c.key_sum, 5));
            assert!(v >= 5 && v.abs_diff(c.count) <= 2, "{c:?} -> {v}");
        }
        // 0, 1 and 2 never show (1 + 2 < 5); 40 and 300 always do.
        let shown: Vec<i32> = p.iter().map(|(c, _)| c.1).collect();
        assert!(!shown.contains(&0) && !shown.contains(&1) && !shown.contains(&2));
        assert!(shown.contains(&6) && shown.contains(&7));
    }

    #[test]
    fn raster_matches_the_kernel_sum_of_the_published_cells() {
        let store = Arc::new(fixtures());
        let filter = Filter::default();
        let t = PTable::new(7);
        let counts = grid_counts(&store, &filter);
        let total: u64 = counts.values().map(|c| c.count).sum();
        assert_eq!(
            total,
            crate::stats::kde::points_from_store(&store, &filter)
                .iter()
                .map(|p| p.w as u64)
                .sum::<u64>(),
            "every located incident is in one cell"
        );
        for r in [1000.0, 1700.0] {
            let s = PublicSurface::from_counts(&store, &counts, Some(r), 0.0, &t, 5);
            let pts: Vec<WeightedPoint> = publish(&counts, &t, 5)
                .iter()
                .map(|&(c, p)| {
                    let (x, y) = cell_centre(c);
                    WeightedPoint { x, y, w: p as f64 }
                })
                .collect();
            let kde = crate::stats::kde::KernelDensity::new(pts.clone(), r).expect("kde");
            let peak: f64 = 3.0 / (std::f64::consts::PI * r * r);
            let mut worst = 0.0f64;
            for i in 0..4000 {
                let f = f64::from(i);
                let (x, y) = (
                    340_000.0 + (f * 7919.0) % 60_000.0,
                    410_000.0 + (f * 104_729.0) % 60_000.0,
                );
                let exact = kde.density_at(x, y);
                let h = s.raster().step();
                // Incidents whose kernel reaches one of the four nodes around (x, y).
                let within: f64 = pts
                    .iter()
                    .filter(|p| (p.x - x).hypot(p.y - y) < r + 2.0 * h)
                    .map(|p| p.w)
                    .sum();
                let err = (s.raster().sample(x, y) - exact).abs();
                // Bilinear bound: h^2/8 (|f_xx| + |f_yy|), each at most 8/r^2 times a
                // kernel's peak, per incident within reach (+ f32 rounding).
                let bound = 2.0 * (h * h / (r * r)) * peak * within.max(1.0) + 1e-6 * exact;
                worst = worst.max(err / (peak * within.max(1.0)));
                assert!(err <= bound, "r {r} ({x}, {y}): {err} > {bound}");
            }
            eprintln!("r {r}: worst error {worst:.5} of the summed peaks");
        }
    }

    #[test]
    fn any_tile_renders_without_panic_and_far_tiles_are_empty() {
        let store = Arc::new(fixtures());
        let s = PublicSurface::build(&store, &Filter::default(), None, 1000.0, &PTable::new(1), 5);
        assert!(s.cells().0 > 100, "{:?}", s.cells());
        let max = s.default_max_per_km2() / 1e6;
        for (z, x, y) in [
            (0, 0, 0),
            (1, 0, 0),
            (1, 1, 1),
            (3, 3, 2),
            (5, 15, 10),
            (20, 0, 0),
        ] {
            let t = TileCoord::new(z, x, y).expect("valid");
            let _ = render(&s, t, Ramp::Magma, max);
        }
        // Mid-Atlantic and the North Sea: nothing.
        assert_eq!(
            render(&s, tile_at(-30.0, 50.0, 9), Ramp::Viridis, max),
            empty_png()
        );
        assert_eq!(
            render(&s, tile_at(3.0, 56.0, 12), Ramp::Viridis, max),
            empty_png()
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                render(&s, tile_at(-2.7, 53.76, 12), Ramp::Viridis, bad),
                empty_png()
            );
        }
        assert_ne!(
            render(&s, tile_at(-2.7006, 53.7590, 12), Ramp::Viridis, max),
            empty_png()
        );
        for (x, y) in [
            (f64::NAN, 0.0),
            (1e300, 1e300),
            (-1e300, 5.0),
            (f64::INFINITY, 0.0),
        ] {
            assert_eq!(s.raster().sample(x, y), 0.0);
        }
        let empty =
            PublicSurface::from_counts(&store, &BTreeMap::new(), None, 0.0, &PTable::new(1), 5);
        assert_eq!(empty.raster().sample(350_000.0, 430_000.0), 0.0);
        assert_eq!(
            render(&empty, tile_at(-2.7, 53.76, 12), Ramp::Viridis, 1e-6),
            empty_png()
        );
    }

    /// Moves location `l` of `store` to BNG (x, y), keeping every record (and its key).
    fn moved(store: &AnalysisStore, l: usize, x: f64, y: f64) -> AnalysisStore {
        let (lon, lat) = bng_to_wgs84(x, y).expect("in grid");
        let mut s = store.clone();
        s.locations.lon_e7[l] = (lon * 1e7).round() as i32;
        s.locations.lat_e7[l] = (lat * 1e7).round() as i32;
        s
    }

    #[test]
    fn moving_an_incident_within_its_cell_changes_no_public_tile() {
        use super::super::surface::Surface;
        let store = fixtures();
        let filter = Filter::default();
        let t = PTable::new(99);
        let counts = grid_counts(&store, &filter);
        // A location whose cell is published, with the fewest incidents there (so the
        // move is a small part of its cell), in a busy cell.
        let inc = &store.incidents;
        let mut per_loc = vec![0u32; store.locations.len()];
        for &l in &inc.loc {
            per_loc[l as usize] += 1;
        }
        let bng = |l: usize| {
            wgs84_to_bng(store.locations.lon(l), store.locations.lat(l)).expect("in grid")
        };
        let (l, _) = (0..store.locations.len())
            .filter(|&l| per_loc[l] > 0)
            .filter_map(|l| {
                let (x, y) = bng(l);
                let c = counts[&cell_of(x, y)];
                (t.publish(c.count, c.key_sum, 5).is_some_and(|p| p >= 20))
                    .then_some((l, per_loc[l]))
            })
            .min_by_key(|&(l, n)| (n, l))
            .expect("a published cell");
        let (x, y) = bng(l);
        let cell = cell_of(x, y);
        let (cx, cy) = cell_centre(cell);
        // To the mirror point through the cell's centre: up to 700 m away, same cell.
        let (nx, ny) = (
            (2.0 * cx - x).clamp(cx - 240.0, cx + 240.0),
            (2.0 * cy - y).clamp(cy - 240.0, cy + 240.0),
        );
        let other = moved(&store, l, nx, ny);
        let (mx, my) = wgs84_to_bng(other.locations.lon(l), other.locations.lat(l)).expect("in");
        assert_eq!(cell_of(mx, my), cell, "still in its cell");
        let dist = (mx - x).hypot(my - y);
        eprintln!(
            "moved location {l} ({} incidents) by {dist:.0} m",
            per_loc[l]
        );
        assert!(dist > 20.0, "moved {dist} m");
        assert_eq!(grid_counts(&other, &filter), counts);

        let (a, b) = (Arc::new(store), Arc::new(other));
        let (lon, lat) = bng_to_wgs84(x, y).expect("in grid");
        let (mut compared, mut drawn) = (0, 0);
        for bandwidth in [None, Some(1000.0)] {
            let pa = PublicSurface::build(&a, &filter, bandwidth, 1000.0, &t, 5);
            let pb = PublicSurface::build(&b, &filter, bandwidth, 1000.0, &t, 5);
            assert_eq!(pa.raster().values, pb.raster().values);
            let max = pa.default_max / 4.0;
            assert!(max > 0.0);
            for z in 8..=16u8 {
                let c = tile_at(lon, lat, z);
                for (dx, dy) in (0..9).map(|k| (k % 3, k / 3)) {
                    let Ok(tile) = TileCoord::new(u32::from(z), c.x + dx - 1, c.y + dy - 1) else {
                        continue;
                    };
                    let (ta, tb) = (
                        render(&pa, tile, Ramp::Viridis, max),
                        render(&pb, tile, Ramp::Viridis, max),
                    );
                    assert!(ta == tb, "public tile {tile:?} changed");
                    compared += 1;
                    drawn += usize::from(ta != empty_png());
                }
            }
        }
        assert!(drawn > 50, "only {drawn} of {compared} public tiles drawn");
        // The analyst's exact surface does show the move (so the comparison can fail).
        let (sa, sb) = (
            Surface::build(&a, &filter, Some(1000.0), 0.0).expect("surface"),
            Surface::build(&b, &filter, Some(1000.0), 0.0).expect("surface"),
        );
        let max = sa.default_max_per_km2() / 1e6;
        let tile = tile_at(lon, lat, 14);
        assert_ne!(
            super::super::render::render(&sa, tile, Ramp::Viridis, max, 0.0),
            super::super::render::render(&sb, tile, Ramp::Viridis, max, 0.0),
            "the analyst tile shows the move"
        );
    }
}
