//! The study-area grid: every H3 cell at a resolution that covers the study area (the
//! county outline or a district), zero-count cells included, because Gi* and local Moran
//! are defined over all n units of the area, not only the occupied ones.
//!
//! Cells are those that intersect the area (h3o's `Covers` containment), so a coastal or
//! edge incident is never dropped; any occupied cell the polygon test misses (an incident
//! snapped just outside a generalised coastline) is added too.

use std::sync::Arc;

use geo::MultiPolygon;
use h3o::geom::{ContainmentMode, TilerBuilder};
use h3o::{CellIndex, Resolution};
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::analysis::aggregate::{Count, UnitKey};
use crate::lru::Lru;
use crate::spatial::Geography;

/// Cells of a study area with their counts.
#[derive(Debug, Clone)]
pub struct Grid {
    pub resolution: Resolution,
    /// Sorted cells.
    pub cells: Vec<CellIndex>,
    pub counts: Vec<f64>,
    /// The key sum of each cell's records (cell-key perturbation; wrapping).
    pub keys: Vec<u32>,
}

/// Cells at `res` covering `area` (sorted, unique).
pub fn cover(area: &MultiPolygon<f64>, res: Resolution) -> Vec<CellIndex> {
    let mut tiler = TilerBuilder::new(res)
        .containment_mode(ContainmentMode::Covers)
        .build();
    for p in &area.0 {
        // An invalid ring is skipped rather than failing the whole area.
        let _ = tiler.add(p.clone());
    }
    let mut cells: Vec<CellIndex> = tiler.into_coverage().collect();
    cells.sort_unstable();
    cells.dedup();
    cells
}

/// A cached cover: its cells and their areas (an exact cell area is a few dozen
/// trigonometric calls; per request over 30,000 cells it was a quarter of a patrol list).
#[derive(Debug)]
pub struct Cover {
    /// Sorted, unique.
    pub cells: Vec<CellIndex>,
    /// Area of each cell, km².
    pub area_km2: Vec<f64>,
}

impl Cover {
    fn new(cells: Vec<CellIndex>) -> Self {
        let area_km2 = cells.par_iter().map(|c| c.area_km2()).collect();
        Cover { cells, area_km2 }
    }

    /// The area of `cell` in km²: cached for the cover's cells, computed for any other.
    pub fn area_of(&self, cell: CellIndex) -> f64 {
        self.cells
            .binary_search(&cell)
            .map_or_else(|_| cell.area_km2(), |i| self.area_km2[i])
    }
}

/// Covers kept: a few resolutions of the county and of some district selections (the
/// resolution 10 county cover is about 230,000 cells, 4 MB with their areas).
static COVERS: Lru<Geography, (Option<Vec<u8>>, Resolution), Cover> = Lru::new(16);

/// The study area of a district selection (None: the county).
pub fn study_area(g: &Geography, districts: Option<&[u8]>) -> MultiPolygon<f64> {
    match districts {
        None => g.county.clone(),
        Some(ds) => MultiPolygon(
            ds.iter()
                .filter_map(|&d| g.districts.polygons.get(usize::from(d)))
                .flat_map(|p| p.0.clone())
                .collect(),
        ),
    }
}

/// `cover(study_area(g, districts), res)`, cached per geography (by identity), district
/// set and resolution.
///
/// Why: covering the county is nearly all the cost of an H3 study (h3o's tiler takes
/// about a second at resolution 10) and depends only on the area, while analysts change
/// the crime types and months all the time; with the cover cached a new filter costs one
/// aggregation. Concurrent callers for one key wait for a single computation. Blocking.
pub fn cached_cover(g: &Arc<Geography>, districts: Option<&[u8]>, res: Resolution) -> Arc<Cover> {
    let mut key = districts.map(<[u8]>::to_vec);
    if let Some(d) = key.as_mut() {
        d.sort_unstable();
        d.dedup();
    }
    let area_of = key.clone();
    COVERS.get(g, (key, res), || {
        Cover::new(cover(&study_area(g, area_of.as_deref()), res))
    })
}

impl Grid {
    /// The covering grid of `area` at `res`, with the counts of an H3 aggregation at the
    /// same resolution (time not binned) filled in.
    pub fn new(area: &MultiPolygon<f64>, res: Resolution, counts: &[Count]) -> Self {
        Self::from_cover(cover(area, res), res, counts)
    }

    /// As `new`, from the area's cover (`cover` or `cached_cover`).
    pub fn from_cover(mut cells: Vec<CellIndex>, res: Resolution, counts: &[Count]) -> Self {
        let extra: Vec<CellIndex> = counts
            .iter()
            .filter_map(|c| match c.unit {
                UnitKey::Cell(cell) => cells.binary_search(&cell).is_err().then_some(cell),
                UnitKey::Index(_) => None,
            })
            .collect();
        cells.extend(extra);
        cells.sort_unstable();
        cells.dedup();
        let index: FxHashMap<CellIndex, usize> =
            cells.iter().enumerate().map(|(i, c)| (*c, i)).collect();
        let mut values = vec![0.0; cells.len()];
        let mut keys = vec![0u32; cells.len()];
        for c in counts {
            if let UnitKey::Cell(cell) = c.unit
                && let Some(&i) = index.get(&cell)
            {
                values[i] += c.count as f64;
                keys[i] = keys[i].wrapping_add(c.key_sum);
            }
        }
        Grid {
            resolution: res,
            cells,
            counts: values,
            keys,
        }
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_cover_is_the_cover_of_the_same_area_whatever_the_district_order() {
        let g = Arc::new(Geography::bundled().expect("bundled geography"));
        let d = |name: &str| g.district_index(name).expect("district");
        let (burnley, preston) = (d("Burnley"), d("Preston"));
        for (districts, res) in [
            (None, Resolution::Seven),
            (Some(vec![preston, burnley]), Resolution::Eight),
            (Some(vec![d("Blackpool")]), Resolution::Ten),
        ] {
            let want = cover(&study_area(&g, districts.as_deref()), res);
            let a = cached_cover(&g, districts.as_deref(), res);
            assert_eq!(a.cells, want, "{districts:?} {res:?}");
            // The cached areas are the cells' own, and a cell outside asks h3o.
            for (k, c) in a.cells.iter().enumerate().step_by(97) {
                assert_eq!(a.area_km2[k], c.area_km2());
                assert_eq!(a.area_of(*c), c.area_km2());
            }
            let outside = CellIndex::try_from(0x8928308280fffff).expect("a cell in San Francisco");
            assert_eq!(a.area_of(outside), outside.area_km2());
            let mut reversed = districts.clone();
            if let Some(r) = reversed.as_mut() {
                r.reverse();
            }
            let b = cached_cover(&g, reversed.as_deref(), res);
            assert!(Arc::ptr_eq(&a, &b), "computed again for the same area");
        }
        // Another geography (a re-loaded one) never shares the first one's covers.
        let other = Arc::new(Geography::bundled().expect("bundled geography"));
        let a = cached_cover(&g, None, Resolution::Seven);
        let b = cached_cover(&other, None, Resolution::Seven);
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!((&a.cells, &a.area_km2), (&b.cells, &b.area_km2));
    }
}
