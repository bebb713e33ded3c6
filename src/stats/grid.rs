//! The study-area grid: every H3 cell at a resolution that covers the study area (the
//! county outline or a district), zero-count cells included, because Gi* and local Moran
//! are defined over all n units of the area, not only the occupied ones.
//!
//! Cells are those that intersect the area (h3o's `Covers` containment), so a coastal or
//! edge incident is never dropped; any occupied cell the polygon test misses (an incident
//! snapped just outside a generalised coastline) is added too.

use geo::MultiPolygon;
use h3o::geom::{ContainmentMode, TilerBuilder};
use h3o::{CellIndex, Resolution};
use rustc_hash::FxHashMap;

use crate::analysis::aggregate::{Count, UnitKey};

/// Cells of a study area with their counts.
#[derive(Debug, Clone)]
pub struct Grid {
    pub resolution: Resolution,
    /// Sorted cells.
    pub cells: Vec<CellIndex>,
    pub counts: Vec<f64>,
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

impl Grid {
    /// The covering grid of `area` at `res`, with the counts of an H3 aggregation at the
    /// same resolution (time not binned) filled in.
    pub fn new(area: &MultiPolygon<f64>, res: Resolution, counts: &[Count]) -> Self {
        let mut cells = cover(area, res);
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
        for c in counts {
            if let UnitKey::Cell(cell) = c.unit
                && let Some(&i) = index.get(&cell)
            {
                values[i] += c.count as f64;
            }
        }
        Grid {
            resolution: res,
            cells,
            counts: values,
        }
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
}
