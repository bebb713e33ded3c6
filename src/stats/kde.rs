//! Kernel density of incidents in British National Grid metres, as ArcGIS computes it.
//!
//! Analysts compare our heatmaps with ArcGIS Pro's Kernel Density tool, so we use the
//! same kernel and the same default search radius, and work in BNG metres (EPSG:27700,
//! points converted once through OSTN15) so that distances and areas are true on the
//! ground rather than distorted by degrees or Web Mercator.
//!
//! # Kernel
//! The quartic (biweight) kernel of Silverman (1986), eq. 4.5, scaled to bandwidth `r`:
//!
//! ```text
//! K(d) = 3 / (pi r^2) * (1 - (d/r)^2)^2   for d < r,   0 otherwise
//! density(x, y) = sum_i w_i K(d_i)
//! ```
//!
//! `d_i` is the distance from (x, y) to point i and `w_i` its weight (the population
//! field in ArcGIS; here usually the number of incidents at one snapped location). Each
//! kernel integrates to 1 over the plane, so the density is in incidents per square
//! metre and integrates to the total weight; [`per_km2`] converts to per square km.
//!
//! # Default bandwidth (search radius)
//! Esri's spatial variant of Silverman's rule of thumb, robust to spatial outliers:
//!
//! ```text
//! r = 0.9 * min(SD, sqrt(1 / ln 2) * Dm) * n^(-1/5)
//! ```
//!
//! What [`bandwidth_stats`] implements, every sum weighted by `w_i` (Esri: "if a
//! population field is used, this and all the following calculations are weighted"):
//! - mean centre `(mx, my) = (sum w x / W, sum w y / W)`, `W = sum w`;
//! - standard distance `SD = sqrt(sum w ((x - mx)^2 + (y - my)^2) / W)` (population
//!   form, divisor `W`, as Esri's Standard Distance tool);
//! - `Dm` the weighted median of the distances to the mean centre: the smallest distance
//!   at which the cumulative weight (distances ascending) reaches `W / 2`, and when it
//!   reaches exactly `W / 2`, the mean of that distance and the next one, so unit
//!   weights give the ordinary median;
//! - `n = W` (Esri: the sum of the population field, or the number of points without one).
//!
//! With count weights this equals running ArcGIS on the individual incidents without a
//! population field. [`default_bandwidth`] returns `None` (no panic, no fallback) when
//! `n < 2`, when a point is not finite or has a negative weight, or when the radius is not
//! a finite positive number: all points at one place, or more than half the weight
//! exactly at the mean centre (`Dm = 0`). Callers then choose a fixed radius.
//!
//! # Evaluation
//! Points are bucketed in a uniform grid whose cells are at least `r` wide (slightly
//! more, so rounding can never hide a neighbour), so a query visits only the 3x3 cells
//! around it: three contiguous runs of points, no allocation. This is what heatmap tiles
//! call per pixel. For a tiny radius over a wide area the cells are widened (doubling)
//! to bound the index at about four cells per point; results are unchanged.
//!
//! # References
//! - Silverman, B. W. (1986). *Density Estimation for Statistics and Data Analysis*.
//!   Chapman and Hall, London. Eq. 4.5 (the bivariate biweight kernel), section 4.2.
//! - Esri. "How Kernel Density works". ArcGIS Pro documentation, Spatial Analyst
//!   toolbox (quartic kernel, default search radius, population field).

use rayon::prelude::*;
use thiserror::Error;

use crate::analysis::{AnalysisStore, Filter};
use crate::spatial::bng::wgs84_to_bng;

/// `sqrt(1 / ln 2)`, Esri's factor on the median distance.
pub const SQRT_INV_LN2: f64 = 1.201_122_408_786_449_8;

/// Square metres in a square kilometre.
pub const M2_PER_KM2: f64 = 1.0e6;

/// Largest coordinate magnitude accepted (metres): far beyond any projected grid, and
/// small enough that spans and squared distances cannot overflow.
const MAX_COORD: f64 = 1.0e12;

/// Relative widening of the bucket cells over the radius, so that floating-point
/// rounding in the bucket arithmetic can never put a neighbour two cells away.
const CELL_MARGIN: f64 = 1.0e-6;

/// A point in metres with a weight (an incident count or another population value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightedPoint {
    pub x: f64,
    pub y: f64,
    pub w: f64,
}

/// Why a kernel density surface could not be built.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum KdeError {
    #[error("the bandwidth must be a finite positive number of metres, got {0}")]
    InvalidBandwidth(f64),
    #[error(
        "point {index} (x {x}, y {y}, weight {w}) is invalid: coordinates must be finite \
         and within 1e12 m of the origin, the weight finite and not negative"
    )]
    InvalidPoint {
        index: usize,
        x: f64,
        y: f64,
        w: f64,
    },
}

/// Density per square metre to density per square kilometre.
pub fn per_km2(density_per_m2: f64) -> f64 {
    density_per_m2 * M2_PER_KM2
}

fn point_is_valid(p: &WeightedPoint) -> bool {
    p.x.is_finite()
        && p.y.is_finite()
        && p.x.abs() <= MAX_COORD
        && p.y.abs() <= MAX_COORD
        && p.w.is_finite()
        && p.w >= 0.0
}

/// The weighted summary statistics behind ArcGIS's default search radius.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BandwidthStats {
    /// Sum of the weights (the number of points with unit weights).
    pub n: f64,
    pub mean_x: f64,
    pub mean_y: f64,
    /// Weighted standard distance `SD` (metres).
    pub standard_distance: f64,
    /// Weighted median distance `Dm` to the weighted mean centre (metres).
    pub median_distance: f64,
}

impl BandwidthStats {
    /// `0.9 * min(SD, sqrt(1/ln 2) * Dm) * n^-0.2`, unchecked (may be 0 or not finite).
    pub fn radius(&self) -> f64 {
        0.9 * self
            .standard_distance
            .min(SQRT_INV_LN2 * self.median_distance)
            * self.n.powf(-0.2)
    }
}

/// Weighted mean centre, standard distance and median distance of `points` (see the
/// module documentation). `None` when a point is invalid or the total weight is not
/// positive. Points of weight 0 take no part.
pub fn bandwidth_stats(points: &[WeightedPoint]) -> Option<BandwidthStats> {
    if !points.iter().all(point_is_valid) {
        return None;
    }
    let pts: Vec<&WeightedPoint> = points.iter().filter(|p| p.w > 0.0).collect();
    let n: f64 = pts.iter().map(|p| p.w).sum();
    if !(n > 0.0 && n.is_finite()) {
        return None;
    }
    let mean_x = pts.iter().map(|p| p.w * p.x).sum::<f64>() / n;
    let mean_y = pts.iter().map(|p| p.w * p.y).sum::<f64>() / n;
    let d2 = |p: &WeightedPoint| (p.x - mean_x).powi(2) + (p.y - mean_y).powi(2);
    let variance = pts.iter().map(|p| p.w * d2(p)).sum::<f64>() / n;
    let dist: Vec<(f64, f64)> = pts.iter().map(|p| (d2(p).sqrt(), p.w)).collect();
    Some(BandwidthStats {
        n,
        mean_x,
        mean_y,
        standard_distance: variance.sqrt(),
        median_distance: weighted_median(dist, n),
    })
}

/// Weighted median of `(value, weight)` pairs with positive weights summing to `total`.
fn weighted_median(mut values: Vec<(f64, f64)>, total: f64) -> f64 {
    values.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let half = total / 2.0;
    let mut cum = 0.0;
    for (k, &(v, w)) in values.iter().enumerate() {
        cum += w;
        if cum == half {
            return values.get(k + 1).map_or(v, |next| (v + next.0) / 2.0);
        }
        if cum > half {
            return v;
        }
    }
    // Only reached if rounding left the sum just under half the total.
    values.last().map_or(0.0, |last| last.0)
}

/// ArcGIS's default search radius in metres (see the module documentation), or `None`
/// when `n < 2`, a point is invalid, or the spread is zero.
pub fn default_bandwidth(points: &[WeightedPoint]) -> Option<f64> {
    let stats = bandwidth_stats(points)?;
    if stats.n < 2.0 {
        return None;
    }
    let r = stats.radius();
    (r.is_finite() && r > 0.0).then_some(r)
}

/// Points bucketed by a uniform grid, stored cell by cell (row-major cells).
#[derive(Debug, Clone)]
struct BucketGrid {
    min_x: f64,
    min_y: f64,
    inv_cell: f64,
    cols: usize,
    rows: usize,
    /// `start[c]..start[c + 1]` are the points of cell `c`; length `cols * rows + 1`.
    start: Vec<usize>,
    points: Vec<WeightedPoint>,
}

impl BucketGrid {
    /// Buckets `points` (all valid) into cells at least `radius` wide.
    fn new(points: Vec<WeightedPoint>, radius: f64) -> Self {
        let (mut min_x, mut min_y) = (f64::INFINITY, f64::INFINITY);
        let (mut max_x, mut max_y) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
        for p in &points {
            (min_x, max_x) = (min_x.min(p.x), max_x.max(p.x));
            (min_y, max_y) = (min_y.min(p.y), max_y.max(p.y));
        }
        if points.is_empty() {
            return BucketGrid {
                min_x: 0.0,
                min_y: 0.0,
                inv_cell: 1.0,
                cols: 0,
                rows: 0,
                start: vec![0],
                points,
            };
        }
        let cap = (points.len().saturating_mul(4)).clamp(4096, 1 << 24) as f64;
        let dims = |cell: f64| {
            let cols = ((max_x - min_x) / cell).floor() + 1.0;
            let rows = ((max_y - min_y) / cell).floor() + 1.0;
            (cols, rows)
        };
        let mut cell = radius * (1.0 + CELL_MARGIN);
        while dims(cell).0 * dims(cell).1 > cap {
            cell *= 2.0;
        }
        let (cols, rows) = dims(cell);
        let mut grid = BucketGrid {
            min_x,
            min_y,
            inv_cell: 1.0 / cell,
            cols: cols as usize,
            rows: rows as usize,
            start: Vec::new(),
            points: Vec::new(),
        };
        grid.fill(points);
        grid
    }

    /// Cell column and row of a coordinate (unclamped, as floats: may be out of range).
    #[inline]
    fn cell_of(&self, x: f64, y: f64) -> (f64, f64) {
        (
            ((x - self.min_x) * self.inv_cell).floor(),
            ((y - self.min_y) * self.inv_cell).floor(),
        )
    }

    /// Counting sort of the points into their cells.
    fn fill(&mut self, points: Vec<WeightedPoint>) {
        let cells = self.cols * self.rows;
        let ids: Vec<usize> = points
            .iter()
            .map(|p| {
                let (c, r) = self.cell_of(p.x, p.y);
                let c = (c.max(0.0) as usize).min(self.cols - 1);
                let r = (r.max(0.0) as usize).min(self.rows - 1);
                r * self.cols + c
            })
            .collect();
        let mut start = vec![0usize; cells + 1];
        for &id in &ids {
            start[id + 1] += 1;
        }
        for c in 0..cells {
            start[c + 1] += start[c];
        }
        let mut next = start.clone();
        let mut sorted = vec![
            WeightedPoint {
                x: 0.0,
                y: 0.0,
                w: 0.0
            };
            points.len()
        ];
        for (p, &id) in points.into_iter().zip(&ids) {
            sorted[next[id]] = p;
            next[id] += 1;
        }
        self.start = start;
        self.points = sorted;
    }
}

/// The cells `c - 1 ..= c + 1` clipped to `0 .. n`, or `None` if that is empty.
#[inline]
fn neighbours(c: f64, n: usize) -> Option<(usize, usize)> {
    let lo = (c - 1.0).max(0.0);
    let hi = (c + 1.0).min(n as f64 - 1.0);
    (lo <= hi).then_some((lo as usize, hi as usize))
}

/// A quartic kernel density surface over weighted points in metres.
#[derive(Debug, Clone)]
pub struct KernelDensity {
    bandwidth: f64,
    r2: f64,
    inv_r2: f64,
    /// `3 / (pi r^2)`.
    norm: f64,
    total_weight: f64,
    grid: BucketGrid,
}

impl KernelDensity {
    /// Indexes `points` for evaluation with search radius `bandwidth_m` (metres). Points
    /// of weight 0 are dropped.
    ///
    /// # Errors
    /// [`KdeError::InvalidBandwidth`] unless the bandwidth is finite and positive (and
    /// its square a normal number); [`KdeError::InvalidPoint`] for a non-finite or
    /// out-of-range coordinate, or a non-finite or negative weight.
    pub fn new(points: Vec<WeightedPoint>, bandwidth_m: f64) -> Result<Self, KdeError> {
        let r2 = bandwidth_m * bandwidth_m;
        let norm = 3.0 / (std::f64::consts::PI * r2);
        if !(bandwidth_m.is_finite() && bandwidth_m > 0.0 && r2.is_normal() && norm.is_normal()) {
            return Err(KdeError::InvalidBandwidth(bandwidth_m));
        }
        if let Some((index, p)) = points.iter().enumerate().find(|(_, p)| !point_is_valid(p)) {
            return Err(KdeError::InvalidPoint {
                index,
                x: p.x,
                y: p.y,
                w: p.w,
            });
        }
        let points: Vec<WeightedPoint> = points.into_iter().filter(|p| p.w > 0.0).collect();
        let total_weight = points.iter().map(|p| p.w).sum();
        Ok(KernelDensity {
            bandwidth: bandwidth_m,
            r2,
            inv_r2: 1.0 / r2,
            norm,
            total_weight,
            grid: BucketGrid::new(points, bandwidth_m),
        })
    }

    /// The search radius `r` in metres.
    pub fn bandwidth(&self) -> f64 {
        self.bandwidth
    }

    /// Number of points with positive weight.
    pub fn len(&self) -> usize {
        self.grid.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.grid.points.is_empty()
    }

    /// Sum of the weights: the integral of the density over the plane.
    pub fn total_weight(&self) -> f64 {
        self.total_weight
    }

    /// Calls `f` with every point that may lie within a bandwidth of the rectangle
    /// (a superset: the points of the grid cells it overlaps, widened by a bandwidth).
    pub fn for_points_near(
        &self,
        (min_x, min_y, max_x, max_y): (f64, f64, f64, f64),
        mut f: impl FnMut(&WeightedPoint),
    ) {
        let g = &self.grid;
        if g.points.is_empty() || !(min_x <= max_x && min_y <= max_y) {
            return;
        }
        let r = self.bandwidth;
        let (c0, r0) = g.cell_of(min_x - r, min_y - r);
        let (c1, r1) = g.cell_of(max_x + r, max_y + r);
        let clip = |lo: f64, hi: f64, n: usize| {
            let (lo, hi) = (lo.max(0.0), hi.min(n as f64 - 1.0));
            (lo <= hi).then_some((lo as usize, hi as usize))
        };
        let (Some((c0, c1)), Some((r0, r1))) = (clip(c0, c1, g.cols), clip(r0, r1, g.rows)) else {
            return;
        };
        for row in r0..=r1 {
            let base = row * g.cols;
            for p in &g.points[g.start[base + c0]..g.start[base + c1 + 1]] {
                f(p);
            }
        }
    }

    /// The kernel's value per unit weight at squared distance `d2` (0 from the bandwidth
    /// out), in per square metre.
    #[inline]
    pub fn kernel(&self, d2: f64) -> f64 {
        if d2 < self.r2 {
            let t = (self.r2 - d2) * self.inv_r2;
            t * t * self.norm
        } else {
            0.0
        }
    }

    /// Density at (x, y) in weight per square metre; NaN if x or y is not finite.
    #[inline]
    pub fn density_at(&self, x: f64, y: f64) -> f64 {
        self.density_and_weight_at(x, y).0
    }

    /// Density at (x, y) as [`Self::density_at`], and the weight of the points within
    /// the bandwidth of it (what a disclosure rule on "incidents under this pixel" needs).
    #[inline]
    pub fn density_and_weight_at(&self, x: f64, y: f64) -> (f64, f64) {
        if !(x.is_finite() && y.is_finite()) {
            return (f64::NAN, 0.0);
        }
        let g = &self.grid;
        let (c, r) = g.cell_of(x, y);
        let (Some((c0, c1)), Some((r0, r1))) = (neighbours(c, g.cols), neighbours(r, g.rows))
        else {
            return (0.0, 0.0);
        };
        let mut sum = 0.0;
        let mut weight = 0.0;
        for row in r0..=r1 {
            let base = row * g.cols;
            for p in &g.points[g.start[base + c0]..g.start[base + c1 + 1]] {
                let (dx, dy) = (p.x - x, p.y - y);
                let d2 = dx * dx + dy * dy;
                if d2 < self.r2 {
                    // (r^2 - d^2) / r^2 rather than 1 - d^2/r^2: accurate near the rim.
                    let t = (self.r2 - d2) * self.inv_r2;
                    sum += p.w * t * t;
                    weight += p.w;
                }
            }
        }
        (sum * self.norm, weight)
    }

    /// Densities at the centres of a `cols x rows` raster, row-major: cell (col, row) is
    /// centred at `(origin_x + (col + 0.5) * cell_m, origin_y + (row + 0.5) * cell_m)`,
    /// so row 0 is the southern edge when `cell_m > 0` (reverse the rows for a north-up
    /// image). Rows are computed in parallel. Empty if `cols * rows` is 0 or overflows.
    pub fn grid(
        &self,
        origin_x: f64,
        origin_y: f64,
        cell_m: f64,
        cols: usize,
        rows: usize,
    ) -> Vec<f64> {
        let Some(len) = cols.checked_mul(rows).filter(|&n| n > 0) else {
            return Vec::new();
        };
        let mut out = vec![0.0; len];
        let tok = crate::cancel::current();
        out.par_chunks_mut(cols)
            .enumerate()
            .for_each(|(row, values)| {
                crate::cancel::check(&tok);
                let y = origin_y + (row as f64 + 0.5) * cell_m;
                for (col, v) in values.iter_mut().enumerate() {
                    *v = self.density_at(origin_x + (col as f64 + 0.5) * cell_m, y);
                }
            });
        out
    }
}

/// Incidents per location that pass `filter` (types, inclusive month range, districts).
fn location_counts(store: &AnalysisStore, filter: &Filter) -> Vec<u32> {
    let l = &store.locations;
    let inc = &store.incidents;
    let n_loc = l.len();
    let keep: Vec<bool> = (0..n_loc)
        .map(|i| match &filter.districts {
            None => true,
            Some(d) => l.district.get(i).is_some_and(|x| d.contains(x)),
        })
        .collect();
    let lo = filter.from.map_or(u16::MIN, |m| m.index());
    let hi = filter.to.map_or(u16::MAX, |m| m.index());
    inc.loc
        .par_iter()
        .zip(&inc.month)
        .zip(&inc.ctype)
        .zip(&inc.severity)
        .with_min_len(1 << 16)
        .fold(
            || vec![0u32; n_loc],
            |mut acc, (((&loc, &month), &ctype), &sev)| {
                let i = loc as usize;
                let pass = (lo..=hi).contains(&month) && filter.keeps(ctype, sev);
                if pass && keep.get(i).copied().unwrap_or(false) {
                    acc[i] = acc[i].saturating_add(1);
                }
                acc
            },
        )
        .reduce(
            || vec![0u32; n_loc],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x = x.saturating_add(y);
                }
                a
            },
        )
}

/// One weighted point per distinct location of `store` with incidents passing `filter`:
/// BNG metres through OSTN15, weight = the number of those incidents. Locations outside
/// the OSTN15 grid are skipped. Order follows the store's location order.
pub fn points_from_store(store: &AnalysisStore, filter: &Filter) -> Vec<WeightedPoint> {
    let counts = location_counts(store, filter);
    let l = &store.locations;
    counts
        .par_iter()
        .enumerate()
        .filter(|&(_, &c)| c > 0)
        .filter_map(|(i, &c)| {
            let lon = f64::from(*l.lon_e7.get(i)?) / 1e7;
            let lat = f64::from(*l.lat_e7.get(i)?) / 1e7;
            let (x, y) = wgs84_to_bng(lon, lat).ok()?;
            (x.is_finite() && y.is_finite()).then_some(WeightedPoint {
                x,
                y,
                w: f64::from(c),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::f64::consts::PI;

    fn wp(x: f64, y: f64, w: f64) -> WeightedPoint {
        WeightedPoint { x, y, w }
    }

    /// The definition, summed over every point: w * 3/(pi r^2) * (1 - d^2/r^2)^2, d < r
    /// (the bracket written as (r^2 - d^2)/r^2, which is exact near the rim).
    fn brute(points: &[WeightedPoint], r: f64, x: f64, y: f64) -> f64 {
        let r2 = r * r;
        let sum: f64 = points
            .iter()
            .map(|p| {
                let d2 = (x - p.x).powi(2) + (y - p.y).powi(2);
                if d2 < r2 {
                    p.w * ((r2 - d2) / r2).powi(2)
                } else {
                    0.0
                }
            })
            .sum();
        sum * 3.0 / (PI * r2)
    }

    fn assert_close(got: f64, want: f64, rel: f64, what: &str) {
        assert!(
            got == want || (got - want).abs() <= rel * want.abs(),
            "{what}: got {got}, want {want}"
        );
    }

    fn random_points(rng: &mut ChaCha8Rng, n: usize, extent: f64) -> Vec<WeightedPoint> {
        (0..n)
            .map(|_| {
                let x = 350_000.0 + rng.random_range(0.0..extent);
                let y = 420_000.0 + rng.random_range(0.0..extent);
                wp(x, y, f64::from(rng.random_range(1..4u8)))
            })
            .collect()
    }

    /// Every query compared with the brute-force sum; returns how many were non-zero.
    fn check_against_brute(
        kd: &KernelDensity,
        points: &[WeightedPoint],
        queries: &[(f64, f64)],
    ) -> usize {
        let mut nonzero = 0;
        for &(x, y) in queries {
            let want = brute(points, kd.bandwidth(), x, y);
            assert_close(kd.density_at(x, y), want, 1e-9, &format!("at ({x}, {y})"));
            nonzero += usize::from(want > 0.0);
        }
        nonzero
    }

    #[test]
    fn density_matches_brute_force_including_bucket_edges_and_rim() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let r = 137.0;
        let mut points = random_points(&mut rng, 1500, 4000.0);
        // A lattice at spacing r: many pairs exactly r apart, and points on bucket edges.
        for i in 0..12 {
            for j in 0..12 {
                points.push(wp(
                    350_000.0 + f64::from(i) * r,
                    420_000.0 + f64::from(j) * r,
                    1.0,
                ));
            }
        }
        let kd = KernelDensity::new(points.clone(), r).expect("valid");
        let g = &kd.grid;
        let cell = 1.0 / g.inv_cell;
        let mut queries: Vec<(f64, f64)> = (0..1500)
            .map(|_| {
                let x = 350_000.0 + rng.random_range(-300.0..4300.0);
                (x, 420_000.0 + rng.random_range(-300.0..4300.0))
            })
            .collect();
        for k in 0..g.cols.min(20) {
            for eps in [-1e-7, 0.0, 1e-7, 0.5 * cell, cell - 1e-9] {
                let e = g.min_x + k as f64 * cell + eps;
                queries.push((e, g.min_y + rng.random_range(0.0..4000.0)));
                queries.push((
                    g.min_x + rng.random_range(0.0..4000.0),
                    g.min_y + k as f64 * cell + eps,
                ));
                queries.push((e, g.min_y + k as f64 * cell + eps));
            }
        }
        for p in points.iter().step_by(10) {
            for (dx, dy) in [(r, 0.0), (-r, 0.0), (0.0, r), (0.0, -r), (r * 0.6, r * 0.8)] {
                queries.push((p.x + dx, p.y + dy));
            }
            queries.push((p.x + r * (1.0 - 1e-12), p.y));
            queries.push((p.x, p.y));
        }
        let nonzero = check_against_brute(&kd, &points, &queries);
        assert!(
            nonzero > queries.len() / 2,
            "only {nonzero} non-zero queries"
        );
    }

    #[test]
    fn kernel_values_follow_the_quartic_formula_and_vanish_at_r() {
        let r = 200.0;
        let kd = KernelDensity::new(vec![wp(1000.0, 2000.0, 1.0)], r).expect("valid");
        let k0 = 3.0 / (PI * r * r);
        for frac in [0.0f64, 0.1, 0.5, 0.9, 0.999] {
            let want = k0 * (1.0 - frac * frac).powi(2);
            let got = kd.density_at(1000.0 + frac * r, 2000.0);
            assert!(
                (got - want).abs() <= 1e-12 * k0,
                "d = {frac} r: {got} vs {want}"
            );
        }
        assert_eq!(kd.density_at(1000.0 + r, 2000.0), 0.0);
        assert_eq!(kd.density_at(1000.0, 2000.0 - r), 0.0);
        assert_eq!(kd.density_at(1000.0 + 1.5 * r, 2000.0), 0.0);
        assert_eq!(kd.density_at(1000.0 + r * (1.0 + 1e-8), 2000.0), 0.0);
        assert!(kd.density_at(1000.0 + 0.9999 * r, 2000.0) > 0.0);
        assert_close(
            per_km2(kd.density_at(1000.0, 2000.0)),
            k0 * 1e6,
            1e-12,
            "per km2",
        );
    }

    #[test]
    fn kernel_integrates_to_the_weight() {
        let r = 250.0;
        let (px, py) = (354_321.37, 431_234.56);
        for w in [1.0, 3.0] {
            let kd = KernelDensity::new(vec![wp(px, py, w)], r).expect("valid");
            let cell = 1.0;
            let n = (2.0 * r / cell) as usize + 2;
            let values = kd.grid(px - r - cell, py - r - cell, cell, n, n);
            let integral: f64 = values.iter().sum::<f64>() * cell * cell;
            assert!(
                (integral - w).abs() < 1e-3 * w,
                "w {w}: integral {integral}"
            );
            assert_eq!(kd.total_weight(), w);
        }
    }

    #[test]
    fn grid_equals_density_at_cell_centres_row_major_from_the_south() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let points = random_points(&mut rng, 300, 2000.0);
        let kd = KernelDensity::new(points, 180.0).expect("valid");
        let (ox, oy, cell, cols, rows) = (349_900.0, 419_950.0, 37.5, 61, 57);
        let values = kd.grid(ox, oy, cell, cols, rows);
        assert_eq!(values.len(), cols * rows);
        for row in 0..rows {
            for col in 0..cols {
                let x = ox + (col as f64 + 0.5) * cell;
                let y = oy + (row as f64 + 0.5) * cell;
                assert_eq!(
                    values[row * cols + col],
                    kd.density_at(x, y),
                    "({col}, {row})"
                );
            }
        }
        assert!(values.iter().any(|&v| v > 0.0));
        // One point in the cell (col 3, row 1): that is where the maximum is.
        let one = KernelDensity::new(vec![wp(35.0, 15.0, 1.0)], 25.0).expect("valid");
        let v = one.grid(0.0, 0.0, 10.0, 8, 4);
        let max = v.iter().copied().fold(f64::MIN, f64::max);
        assert_eq!(v[8 + 3], max);
        assert!(one.grid(0.0, 0.0, 10.0, 0, 4).is_empty());
        assert!(one.grid(0.0, 0.0, 10.0, usize::MAX, 2).is_empty());
    }

    #[test]
    fn tiny_bandwidth_over_a_wide_area_still_matches_brute_force() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut points = random_points(&mut rng, 400, 200_000.0);
        let extra: Vec<WeightedPoint> = points
            .iter()
            .map(|p| wp(p.x + rng.random_range(-0.4..0.4), p.y + 0.3, 2.0))
            .collect();
        points.extend(extra);
        let kd = KernelDensity::new(points.clone(), 0.5).expect("valid");
        let g = &kd.grid;
        assert!(g.cols * g.rows <= 4096, "{} x {} cells", g.cols, g.rows);
        assert!(1.0 / g.inv_cell > 0.5, "cells were widened");
        let queries: Vec<(f64, f64)> = points
            .iter()
            .map(|p| {
                (
                    p.x + rng.random_range(-0.5..0.5),
                    p.y + rng.random_range(-0.5..0.5),
                )
            })
            .collect();
        let nonzero = check_against_brute(&kd, &points, &queries);
        assert!(
            nonzero > queries.len() / 2,
            "only {nonzero} non-zero queries"
        );
    }

    #[test]
    fn default_bandwidth_matches_hand_computation() {
        // Points on a line: mean centre 21.2; distances 21.2, 20.2, 19.2, 18.2, 78.8, so
        // Dm = 20.2; SD^2 = (449.44 + 408.04 + 368.64 + 331.24 + 6209.44) / 5 = 1553.36.
        // sqrt(1/ln 2) * 20.2 = 24.26 < SD = 39.41: the median branch.
        let line: Vec<_> = [0.0, 1.0, 2.0, 3.0, 100.0]
            .map(|x| wp(x, 0.0, 1.0))
            .to_vec();
        let s = bandwidth_stats(&line).expect("stats");
        assert_close(s.mean_x, 21.2, 1e-12, "mean x");
        assert_close(s.standard_distance, 1553.36f64.sqrt(), 1e-12, "SD");
        assert_close(s.median_distance, 20.2, 1e-12, "Dm");
        let want = 0.9 * SQRT_INV_LN2 * 20.2 * 5f64.powf(-0.2);
        assert_close(default_bandwidth(&line).expect("r"), want, 1e-12, "line r");

        // Rectangle corners and centre: mean (3, 4), distances 0, 5, 5, 5, 5, so Dm = 5
        // and SD = sqrt(4 * 25 / 5) = sqrt(20) = 4.47 < 1.2011 * 5: the SD branch.
        let rect: Vec<_> = [(0.0, 0.0), (6.0, 0.0), (0.0, 8.0), (6.0, 8.0), (3.0, 4.0)]
            .map(|(x, y)| wp(x, y, 1.0))
            .to_vec();
        let want = 0.9 * 20f64.sqrt() * 5f64.powf(-0.2);
        assert_close(default_bandwidth(&rect).expect("r"), want, 1e-12, "rect r");
        assert_close(
            SQRT_INV_LN2,
            (1.0 / std::f64::consts::LN_2).sqrt(),
            1e-15,
            "const",
        );
    }

    #[test]
    fn weighted_bandwidth_uses_n_as_the_sum_of_weights() {
        // (0,0) weight 3 and (10,0) weight 1: mean 2.5, SD^2 = (3 * 6.25 + 56.25) / 4,
        // distances 2.5 (weight 3) and 7.5: Dm = 2.5, 1.2011 * 2.5 < SD; n = 4.
        let pts = [wp(0.0, 0.0, 3.0), wp(10.0, 0.0, 1.0), wp(50.0, 50.0, 0.0)];
        let s = bandwidth_stats(&pts).expect("stats");
        assert_eq!((s.n, s.mean_x, s.mean_y), (4.0, 2.5, 0.0));
        assert_close(s.standard_distance, 18.75f64.sqrt(), 1e-12, "SD");
        assert_eq!(s.median_distance, 2.5);
        let want = 0.9 * SQRT_INV_LN2 * 2.5 * 4f64.powf(-0.2);
        assert_close(default_bandwidth(&pts).expect("r"), want, 1e-12, "r");
        // Even count, unit weights: the median averages the middle two.
        let even = [0.0, 1.0, 3.0, 10.0].map(|x| wp(x, 0.0, 1.0));
        assert_eq!(bandwidth_stats(&even).expect("stats").median_distance, 3.0);
    }

    #[test]
    fn weights_equal_duplicated_points() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..50 {
            let n = rng.random_range(2..30);
            let weighted = random_points(&mut rng, n, 1000.0);
            let duplicated: Vec<_> = weighted
                .iter()
                .flat_map(|p| std::iter::repeat_n(wp(p.x, p.y, 1.0), p.w as usize))
                .collect();
            let (a, b) = (
                bandwidth_stats(&weighted).expect("a"),
                bandwidth_stats(&duplicated).expect("b"),
            );
            assert_eq!(a.n, b.n);
            assert_close(a.standard_distance, b.standard_distance, 1e-9, "SD");
            assert_close(a.median_distance, b.median_distance, 1e-9, "Dm");
            let (ka, kb) = (
                KernelDensity::new(weighted, 90.0).expect("a"),
                KernelDensity::new(duplicated, 90.0).expect("b"),
            );
            let (x, y) = (
                350_000.0 + rng.random_range(0.0..1000.0),
                420_000.0 + rng.random_range(0.0..1000.0),
            );
            assert_close(ka.density_at(x, y), kb.density_at(x, y), 1e-9, "density");
        }
    }

    #[test]
    fn degenerate_inputs_have_no_default_bandwidth() {
        assert_eq!(default_bandwidth(&[]), None);
        assert_eq!(default_bandwidth(&[wp(1.0, 2.0, 1.0)]), None);
        assert_eq!(
            default_bandwidth(&[wp(1.0, 2.0, 1.0), wp(3.0, 2.0, 0.5)]),
            None
        );
        assert_eq!(
            default_bandwidth(&[wp(5.0, 5.0, 1.0), wp(5.0, 5.0, 7.0)]),
            None
        );
        // Over half the weight at the mean centre: Dm = 0.
        let centre = [wp(0.0, 0.0, 3.0), wp(-1.0, 0.0, 1.0), wp(1.0, 0.0, 1.0)];
        assert_eq!(default_bandwidth(&centre), None);
        assert_eq!(
            default_bandwidth(&[wp(f64::NAN, 0.0, 1.0), wp(1.0, 0.0, 1.0)]),
            None
        );
        assert_eq!(
            default_bandwidth(&[wp(0.0, 0.0, -1.0), wp(1.0, 0.0, 3.0)]),
            None
        );
        assert!(default_bandwidth(&[wp(0.0, 0.0, 1.0), wp(1.0, 0.0, 1.0)]).is_some());
    }

    #[test]
    fn bad_bandwidths_and_points_are_errors() {
        let pts = vec![wp(0.0, 0.0, 1.0)];
        for r in [
            0.0,
            -0.0,
            -5.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-200,
            1e200,
        ] {
            assert!(
                matches!(
                    KernelDensity::new(pts.clone(), r),
                    Err(KdeError::InvalidBandwidth(_))
                ),
                "{r}"
            );
        }
        for (i, bad) in [
            wp(f64::NAN, 0.0, 1.0),
            wp(0.0, f64::INFINITY, 1.0),
            wp(2e12, 0.0, 1.0),
            wp(0.0, 0.0, -1.0),
            wp(0.0, 0.0, f64::NAN),
        ]
        .into_iter()
        .enumerate()
        {
            let err = KernelDensity::new(vec![wp(1.0, 1.0, 1.0), bad], 10.0);
            assert!(
                matches!(err, Err(KdeError::InvalidPoint { index: 1, .. })),
                "case {i}"
            );
        }
    }

    #[test]
    fn empty_and_zero_weight_surfaces_are_zero_and_nan_queries_are_nan() {
        let empty = KernelDensity::new(vec![], 10.0).expect("valid");
        assert!(empty.is_empty());
        assert_eq!(empty.density_at(0.0, 0.0), 0.0);
        assert_eq!(empty.grid(0.0, 0.0, 1.0, 3, 2), vec![0.0; 6]);
        let zero =
            KernelDensity::new(vec![wp(0.0, 0.0, 0.0), wp(1.0, 0.0, 2.0)], 10.0).expect("ok");
        assert_eq!(zero.len(), 1);
        assert!(zero.density_at(f64::NAN, 0.0).is_nan());
        assert_eq!(zero.density_at(1e300, -1e300), 0.0);
    }

    fn store(lonlat: &[(f64, f64, u8)], incidents: &[(u32, u16, u8)]) -> AnalysisStore {
        use crate::analysis::{Incidents, Locations};
        use crate::spatial::Geography;
        let geography = Geography::empty();
        let n = lonlat.len();
        AnalysisStore {
            geography: std::sync::Arc::new(geography),
            locations: Locations {
                lon_e7: lonlat.iter().map(|l| crate::model::to_e7(l.0)).collect(),
                lat_e7: lonlat.iter().map(|l| crate::model::to_e7(l.1)).collect(),
                cells: Default::default(),
                lsoa: vec![0; n],
                lsoa21: vec![0; n],
                district: lonlat.iter().map(|l| l.2).collect(),
                street: vec![Box::from(""); n],
            },
            incidents: Incidents {
                loc: incidents.iter().map(|i| i.0).collect(),
                month: incidents.iter().map(|i| i.1).collect(),
                ctype: incidents.iter().map(|i| i.2).collect(),
                severity: vec![0; incidents.len()],
                key: Default::default(),
            },
            unlocated: 0,
            unlocated_by_type: vec![0; 256],
            outside_by_type: vec![0; 256],
            outside_by_month: Default::default(),
            lsoa_vintage: crate::spatial::geography::Vintage::V2011,
            coverage: Default::default(),
            datasets_by_type: None,
            version: 0,
        }
    }

    #[test]
    fn points_from_store_counts_filtered_incidents_per_location() {
        use crate::model::{Month, TypeSet};
        // Preston, Blackpool, Lancaster; and one far outside the OSTN15 grid.
        let locs = [
            (-2.7006, 53.7590, 0),
            (-3.0357, 53.8175, 1),
            (-2.8007, 54.0466, 2),
            (20.0, 10.0, 0),
        ];
        let incidents = [
            (0, 600, 1),
            (0, 600, 1),
            (0, 601, 2),
            (1, 600, 1),
            (1, 605, 1),
            (2, 600, 3),
            (2, 600, 1),
            (3, 600, 1),
            (9, 600, 1),
        ];
        let s = store(&locs, &incidents);
        let bng = |i: usize| wgs84_to_bng(locs[i].0, locs[i].1).expect("in grid");
        let all = points_from_store(&s, &Filter::default());
        let want: Vec<(f64, f64, f64)> = [(0, 3.0), (1, 2.0), (2, 2.0)]
            .iter()
            .map(|&(i, w)| {
                let (x, y) = bng(i);
                (x, y, w)
            })
            .collect();
        let got: Vec<(f64, f64, f64)> = all.iter().map(|p| (p.x, p.y, p.w)).collect();
        assert_eq!(got, want);
        let code = 1u8;
        let filter = Filter {
            types: TypeSet::empty().with(crate::model::CrimeType::ALL[usize::from(code)]),
            from: Some(Month::from_index(600)),
            to: Some(Month::from_index(604)),
            districts: Some(vec![0, 1]),
            ..Filter::default()
        };
        assert!(filter.types.contains_code(code) && !filter.types.contains_code(2));
        let got: Vec<(f64, f64, f64)> = points_from_store(&s, &filter)
            .iter()
            .map(|p| (p.x, p.y, p.w))
            .collect();
        assert_eq!(
            got,
            vec![(bng(0).0, bng(0).1, 2.0), (bng(1).0, bng(1).1, 1.0)]
        );
    }
}
