//! Sparse binary spatial weights in compressed-row form: the neighbour list of every unit.
//!
//! Built from H3 grid disks (k rings), polygon queen contiguity (a shared vertex, as
//! libpysal's `Queen` decides), or a distance band. Whether a unit counts as its own
//! neighbour is the builder's choice: Gi* includes it (the "star"), local Moran does not.

use geo::{Centroid, MultiPolygon};
use h3o::CellIndex;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

/// Neighbour lists, row `i` being `neighbours[offsets[i]..offsets[i + 1]]`, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weights {
    offsets: Vec<u32>,
    neighbours: Vec<u32>,
}

impl Weights {
    /// From per-unit neighbour lists (sorted and deduplicated here).
    pub fn from_lists(lists: Vec<Vec<u32>>) -> Self {
        let mut offsets = Vec::with_capacity(lists.len() + 1);
        let mut neighbours = Vec::new();
        offsets.push(0);
        for mut l in lists {
            l.sort_unstable();
            l.dedup();
            neighbours.extend_from_slice(&l);
            offsets.push(neighbours.len() as u32);
        }
        Weights {
            offsets,
            neighbours,
        }
    }

    /// Number of units.
    pub fn n(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Neighbours of unit `i`.
    #[inline]
    pub fn row(&self, i: usize) -> &[u32] {
        &self.neighbours[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// The same weights with each unit added to (or removed from) its own row.
    pub fn with_self(&self, include: bool) -> Self {
        Self::from_lists(
            (0..self.n())
                .map(|i| {
                    let mut r: Vec<u32> = self
                        .row(i)
                        .iter()
                        .copied()
                        .filter(|&j| j as usize != i)
                        .collect();
                    if include {
                        r.push(i as u32);
                    }
                    r
                })
                .collect(),
        )
    }

    /// H3 cells within `k` rings of each cell of `cells` (the cell itself included),
    /// restricted to `cells`.
    pub fn h3_disk(cells: &[CellIndex], k: u32) -> Self {
        let index: FxHashMap<CellIndex, u32> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, i as u32))
            .collect();
        Self::from_lists(
            cells
                .par_iter()
                .map(|c| {
                    c.grid_disk_safe(k)
                        .filter_map(|n| index.get(&n).copied())
                        .collect()
                })
                .collect(),
        )
    }

    /// Queen contiguity: polygons sharing at least one vertex (self excluded).
    pub fn queen(polygons: &[MultiPolygon<f64>]) -> Self {
        let mut by_vertex: FxHashMap<(u64, u64), Vec<u32>> = FxHashMap::default();
        for (i, mp) in polygons.iter().enumerate() {
            for p in &mp.0 {
                for ring in std::iter::once(p.exterior()).chain(p.interiors()) {
                    for c in &ring.0 {
                        let key = (c.x.to_bits(), c.y.to_bits());
                        let v = by_vertex.entry(key).or_default();
                        if v.last() != Some(&(i as u32)) {
                            v.push(i as u32);
                        }
                    }
                }
            }
        }
        let mut lists = vec![Vec::new(); polygons.len()];
        for units in by_vertex.values() {
            for &a in units {
                lists[a as usize].extend(units.iter().copied().filter(|&b| b != a));
            }
        }
        Self::from_lists(lists)
    }

    /// Units whose centroids lie within `metres` of each other (self excluded), on a
    /// local equirectangular projection (accurate to well under 1% across a county).
    pub fn distance_band(polygons: &[MultiPolygon<f64>], metres: f64) -> Self {
        let pts: Vec<(f64, f64)> = polygons
            .iter()
            .map(|mp| {
                mp.centroid()
                    .map_or((f64::NAN, f64::NAN), |c| (c.x(), c.y()))
            })
            .collect();
        let lat0 = pts
            .iter()
            .map(|p| p.1)
            .filter(|v| v.is_finite())
            .sum::<f64>()
            / pts.len().max(1) as f64;
        let (mx, my) = (111_320.0 * lat0.to_radians().cos(), 110_574.0);
        let xy: Vec<(f64, f64)> = pts.iter().map(|p| (p.0 * mx, p.1 * my)).collect();
        let tree = rstar::RTree::bulk_load(
            xy.iter()
                .enumerate()
                .map(|(i, p)| rstar::primitives::GeomWithData::new([p.0, p.1], i as u32))
                .collect(),
        );
        Self::from_lists(
            xy.iter()
                .enumerate()
                .map(|(i, p)| {
                    tree.locate_within_distance([p.0, p.1], metres * metres)
                        .map(|e| e.data)
                        .filter(|&j| j as usize != i)
                        .collect()
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;

    #[test]
    fn queen_links_polygons_that_share_only_a_corner() {
        let sq = |x: f64, y: f64| {
            MultiPolygon(vec![
                polygon![(x: x, y: y), (x: x + 1.0, y: y), (x: x + 1.0, y: y + 1.0), (x: x, y: y + 1.0)],
            ])
        };
        // 0 and 1 share an edge, 0 and 2 a corner, 3 is apart.
        let w = Weights::queen(&[sq(0.0, 0.0), sq(1.0, 0.0), sq(1.0, 1.0), sq(5.0, 5.0)]);
        assert_eq!(w.row(0), &[1, 2]);
        assert_eq!(w.row(1), &[0, 2]);
        assert_eq!(w.row(3), &[] as &[u32]);
        assert_eq!(w.with_self(true).row(3), &[3]);
    }

    #[test]
    fn h3_disk_counts_rings_within_the_grid() {
        let c = h3o::LatLng::new(53.76, -2.70)
            .unwrap()
            .to_cell(h3o::Resolution::Eight);
        let mut cells: Vec<CellIndex> = c.grid_disk(2);
        cells.sort_unstable();
        let w = Weights::h3_disk(&cells, 1);
        let i = cells.iter().position(|x| *x == c).unwrap();
        assert_eq!(w.row(i).len(), 7);
        // An outer cell has fewer neighbours inside the 2-disk.
        assert!((0..cells.len()).any(|j| w.row(j).len() < 7));
    }
}
