//! The kernel density surface behind the heatmap, one per (store, generation, filter,
//! bandwidth), and its small LRU.
//!
//! Why a cached surface: counting the filtered incidents per location, projecting them
//! to British National Grid and bucketing them for [`KernelDensity`] costs a scan of
//! every incident, far more than one tile; a map asks for a dozen tiles at once, all of
//! the same filter. So that work is done once per key and shared. Concurrent requests for
//! a key that is still being built wait for the first one (`get_or_insert_with` holds a
//! placeholder) instead of each building it again.
//!
//! The surface also carries, computed once with it:
//! - the default bandwidth, ArcGIS's rule ([`default_bandwidth`]) on the filtered points,
//!   clamped to the accepted `bandwidth` range (50 m to 20 km), or
//!   [`FALLBACK_BANDWIDTH_M`] when the rule has no answer (fewer than two incidents, all at
//!   one place);
//! - the default top of the colour ramp, a fixed density for the filter so a colour means
//!   the same density at every zoom and on every tile: the 99.5th percentile (weighted by
//!   incidents) of the density at the incident locations. A hot street keeps its colour as
//!   the analyst zooms in, and one extreme snap point does not wash out the rest;
//! - a coarse occupancy table (summed counts over cells at least one bandwidth wide) that
//!   answers "is any incident within a bandwidth of this rectangle" in constant time, so
//!   empty tiles cost no density evaluation at all.
//!
//! Keys hold the store's address, and each surface a `Weak` to that store: the `Weak`
//! keeps the allocation (not the data) alive, so no other store can reuse that address
//! while the entry exists. A generation bump (ingest replaced the store) changes the key;
//! old entries are never hit again and age out of the LRU.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Weak};

use quick_cache::sync::Cache;
use rayon::prelude::*;

use crate::analysis::{AnalysisStore, Filter};
use crate::serve::AppError;
use crate::stats::kde::{KdeError, KernelDensity, WeightedPoint, default_bandwidth, per_km2};

/// Accepted `bandwidth` values in metres (and the clamp on the default).
pub const BANDWIDTH_RANGE_M: (f64, f64) = (50.0, 20_000.0);

/// Bandwidth when ArcGIS's rule has no answer (under two incidents, or all at one place).
pub const FALLBACK_BANDWIDTH_M: f64 = 1_000.0;

/// The percentile of incident-location density used as the default top of the ramp.
pub const DEFAULT_MAX_PERCENTILE: f64 = 99.5;

/// Surfaces kept (each holds one point per distinct location: a few MB at most).
const CAPACITY: usize = 8;

/// Most cells per side of the occupancy table.
const OCCUPANCY_MAX_SIDE: f64 = 1024.0;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh surface id (analyst and public surfaces share the sequence, so a tile cached
/// under one never answers for the other).
pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

static SURFACES: LazyLock<Cache<SurfaceKey, Arc<Surface>>> = LazyLock::new(|| Cache::new(CAPACITY));

/// Prefix sums of point counts over a uniform grid in metres.
#[derive(Debug, Clone)]
struct Occupancy {
    min_x: f64,
    min_y: f64,
    cell: f64,
    cols: usize,
    rows: usize,
    /// `(cols + 1) x (rows + 1)`, row-major; entry (c, r) counts cells `< c` and `< r`.
    sums: Vec<u32>,
}

impl Occupancy {
    fn new(points: &[WeightedPoint], radius: f64) -> Self {
        let (mut min_x, mut min_y) = (f64::INFINITY, f64::INFINITY);
        let (mut max_x, mut max_y) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
        for p in points {
            (min_x, max_x) = (min_x.min(p.x), max_x.max(p.x));
            (min_y, max_y) = (min_y.min(p.y), max_y.max(p.y));
        }
        if points.is_empty() {
            return Occupancy {
                min_x: 0.0,
                min_y: 0.0,
                cell: 1.0,
                cols: 0,
                rows: 0,
                sums: vec![0],
            };
        }
        let span = (max_x - min_x).max(max_y - min_y);
        let cell = radius.max(span / OCCUPANCY_MAX_SIDE).max(1.0);
        let cols = ((max_x - min_x) / cell) as usize + 1;
        let rows = ((max_y - min_y) / cell) as usize + 1;
        let w = cols + 1;
        let mut sums = vec![0u32; w * (rows + 1)];
        for p in points {
            let c = (((p.x - min_x) / cell) as usize).min(cols - 1);
            let r = (((p.y - min_y) / cell) as usize).min(rows - 1);
            sums[(r + 1) * w + c + 1] += 1;
        }
        for r in 1..=rows {
            for c in 1..=cols {
                sums[r * w + c] +=
                    sums[r * w + c - 1] + sums[(r - 1) * w + c] - sums[(r - 1) * w + c - 1];
            }
        }
        Occupancy {
            min_x,
            min_y,
            cell,
            cols,
            rows,
            sums,
        }
    }

    /// Whether any point lies in the rectangle (conservatively: in the cells it touches).
    fn any(&self, x0: f64, y0: f64, x1: f64, y1: f64) -> bool {
        if self.cols == 0 || !(x0 <= x1 && y0 <= y1) {
            return false;
        }
        let to_cell = |v: f64, min: f64, n: usize| ((v - min) / self.cell).floor().min(n as f64);
        let (c0, c1) = (
            to_cell(x0, self.min_x, self.cols),
            to_cell(x1, self.min_x, self.cols),
        );
        let (r0, r1) = (
            to_cell(y0, self.min_y, self.rows),
            to_cell(y1, self.min_y, self.rows),
        );
        if c1 < 0.0 || r1 < 0.0 || c0 >= self.cols as f64 || r0 >= self.rows as f64 {
            return false;
        }
        let (c0, r0) = (c0.max(0.0) as usize, r0.max(0.0) as usize);
        let (c1, r1) = (
            (c1 as usize + 1).min(self.cols),
            (r1 as usize + 1).min(self.rows),
        );
        let w = self.cols + 1;
        let s = |c: usize, r: usize| i64::from(self.sums[r * w + c]);
        s(c1, r1) - s(c0, r1) - s(c1, r0) + s(c0, r0) > 0
    }
}

/// One filter's kernel density surface, with its default bandwidth and scale.
#[derive(Debug)]
pub struct Surface {
    id: u64,
    kde: KernelDensity,
    bandwidth_is_default: bool,
    default_max: f64,
    occupancy: Occupancy,
    _store: Weak<AnalysisStore>,
}

impl Surface {
    /// Builds the surface of `filter`'s incidents; `bandwidth_m: None` takes the default
    /// (see the module documentation).
    ///
    /// # Errors
    /// When the bandwidth is not a finite positive number.
    pub fn build(
        store: &Arc<AnalysisStore>,
        filter: &Filter,
        bandwidth_m: Option<f64>,
        min_bandwidth_m: f64,
    ) -> Result<Self, KdeError> {
        let points = crate::stats::kde::points_from_store(store, filter);
        let (lo, hi) = BANDWIDTH_RANGE_M;
        let r = bandwidth_m
            .unwrap_or_else(|| {
                default_bandwidth(&points).map_or(FALLBACK_BANDWIDTH_M, |r| r.clamp(lo, hi))
            })
            .max(min_bandwidth_m);
        let occupancy = Occupancy::new(&points, r);
        let kde = KernelDensity::new(points.clone(), r)?;
        let default_max = percentile_at_points(&kde, &points);
        Ok(Surface {
            id: next_id(),
            kde,
            bandwidth_is_default: bandwidth_m.is_none(),
            default_max,
            occupancy,
            _store: Arc::downgrade(store),
        })
    }

    /// Unique per built surface (rendered tiles are cached under it).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The search radius in metres.
    pub fn bandwidth(&self) -> f64 {
        self.kde.bandwidth()
    }

    /// Whether the bandwidth is the default rather than requested.
    pub fn bandwidth_is_default(&self) -> bool {
        self.bandwidth_is_default
    }

    /// The default top of the ramp in incidents per km² (0 without incidents).
    pub fn default_max_per_km2(&self) -> f64 {
        per_km2(self.default_max)
    }

    /// Incidents in the surface.
    pub fn incidents(&self) -> f64 {
        self.kde.total_weight()
    }

    /// The kernel density surface itself.
    pub fn kde(&self) -> &KernelDensity {
        &self.kde
    }

    /// Density in incidents per m² at BNG (x, y).
    #[inline]
    pub fn density_at(&self, x: f64, y: f64) -> f64 {
        self.kde.density_at(x, y)
    }

    /// Density per m² at BNG (x, y), and the incidents within the bandwidth of it.
    #[inline]
    pub fn density_and_count_at(&self, x: f64, y: f64) -> (f64, f64) {
        self.kde.density_and_weight_at(x, y)
    }

    /// Whether any incident lies within a bandwidth of the BNG rectangle.
    pub fn near(&self, min_x: f64, min_y: f64, max_x: f64, max_y: f64) -> bool {
        let r = self.bandwidth();
        self.occupancy
            .any(min_x - r, min_y - r, max_x + r, max_y + r)
    }
}

/// The weighted [`DEFAULT_MAX_PERCENTILE`] of the density at the points, per m².
fn percentile_at_points(kde: &KernelDensity, points: &[WeightedPoint]) -> f64 {
    let d: Vec<(f64, f64)> = points
        .par_iter()
        .map(|p| (kde.density_at(p.x, p.y), p.w))
        .collect();
    weighted_percentile(d)
}

/// The weighted [`DEFAULT_MAX_PERCENTILE`] of (value, weight) pairs; non-finite values
/// and non-positive weights are left out (0 when none is left). Shared by the analyst's
/// and the public surface.
pub(super) fn weighted_percentile(mut d: Vec<(f64, f64)>) -> f64 {
    d.retain(|(v, w)| v.is_finite() && *w > 0.0);
    d.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = d.iter().map(|p| p.1).sum();
    let target = total * DEFAULT_MAX_PERCENTILE / 100.0;
    let mut cum = 0.0;
    for &(v, w) in &d {
        cum += w;
        if cum >= target {
            return v;
        }
    }
    d.last().map_or(0.0, |p| p.0)
}

/// What a surface is cached under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SurfaceKey {
    store: usize,
    generation: u64,
    /// `Filter::key`.
    filter: String,
    bandwidth_bits: Option<u64>,
    min_bandwidth_bits: u64,
}

/// The cached surface for this store, generation, filter and bandwidth (at least
/// `min_bandwidth_m`: 0 for none), built on a miss. Blocking: call from a blocking task.
///
/// # Errors
/// 500 if the surface cannot be built (the bandwidth was validated before).
pub fn surface(
    store: &Arc<AnalysisStore>,
    generation: u64,
    filter: &Filter,
    bandwidth_m: Option<f64>,
    min_bandwidth_m: f64,
) -> Result<Arc<Surface>, AppError> {
    let key = SurfaceKey {
        store: Arc::as_ptr(store) as usize,
        generation,
        filter: filter.key(),
        bandwidth_bits: bandwidth_m.map(f64::to_bits),
        min_bandwidth_bits: min_bandwidth_m.to_bits(),
    };
    SURFACES.get_or_insert_with(&key, || {
        // A miss is a layer's computation: one of the bounded pool's slots.
        let _slot = crate::cancel::admit();
        Surface::build(store, filter, bandwidth_m, min_bandwidth_m)
            .map(Arc::new)
            .map_err(|e| AppError::Internal(format!("heatmap surface: {e}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wp(x: f64, y: f64, w: f64) -> WeightedPoint {
        WeightedPoint { x, y, w }
    }

    #[test]
    fn occupancy_finds_every_point_and_only_nearby_ones() {
        let pts: Vec<WeightedPoint> = (0..200)
            .map(|i| {
                let f = f64::from(i);
                wp(
                    350_000.0 + (f * 7919.0) % 30_000.0,
                    420_000.0 + (f * 104_729.0) % 20_000.0,
                    1.0,
                )
            })
            .collect();
        let cell = 500.0;
        let occ = Occupancy::new(&pts, cell);
        for i in 0..400 {
            let f = f64::from(i);
            let (x0, y0) = (
                345_000.0 + (f * 3571.0) % 40_000.0,
                415_000.0 + (f * 7577.0) % 30_000.0,
            );
            let (x1, y1) = (x0 + (f * 13.0) % 900.0, y0 + (f * 29.0) % 900.0);
            let inside = |p: &WeightedPoint, m: f64| {
                p.x >= x0 - m && p.x <= x1 + m && p.y >= y0 - m && p.y <= y1 + m
            };
            let any = occ.any(x0, y0, x1, y1);
            if pts.iter().any(|p| inside(p, 0.0)) {
                assert!(any, "rectangle {i} misses a point");
            }
            if any {
                assert!(
                    pts.iter().any(|p| inside(p, occ.cell)),
                    "rectangle {i}: nothing near"
                );
            }
        }
        assert!(!occ.any(0.0, 0.0, 10.0, 10.0));
        assert!(!occ.any(f64::NAN, 0.0, 1e9, 1e9));
        assert!(!Occupancy::new(&[], 100.0).any(0.0, 0.0, 1e9, 1e9));
    }

    #[test]
    fn default_top_is_the_weighted_percentile_of_density_at_the_points() {
        // 199 lone points far apart and one heavy point: the heavy point has 1/2 of the
        // weight, so the 99.5th percentile (by incidents) is its density.
        let mut pts: Vec<WeightedPoint> = (0..199)
            .map(|i| wp(f64::from(i) * 10_000.0, 0.0, 1.0))
            .collect();
        pts.push(wp(5_000.0, 50_000.0, 199.0));
        let kde = KernelDensity::new(pts.clone(), 100.0).expect("valid");
        let top = percentile_at_points(&kde, &pts);
        assert_eq!(top, kde.density_at(5_000.0, 50_000.0));
        let lone = KernelDensity::new(pts[..10].to_vec(), 100.0).expect("valid");
        assert_eq!(
            percentile_at_points(&lone, &pts[..10]),
            lone.density_at(0.0, 0.0)
        );
        assert_eq!(percentile_at_points(&lone, &[]), 0.0);
    }
}
