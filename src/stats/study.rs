//! A study area ready for the statistics: its units (the H3 cells covering the county or
//! a district, or the LSOAs in it), their counts under a filter, areas, and weights.

use std::sync::Arc;

use h3o::{CellIndex, Resolution};
use rayon::prelude::*;

use super::Weights;
use super::grid::{Grid, cached_cover};
use crate::analysis::aggregate::aggregate;
use crate::analysis::{AnalysisStore, Filter, Query, TimeBin, Unit, UnitKey};
use crate::spatial::boundaries::area_m2;
use crate::spatial::geography::Vintage;

/// The kind of units analysed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Units {
    H3(Resolution),
    /// The LSOAs of a vintage (2011 or 2021), counted by the incidents' LSOA of it.
    Lsoa(Vintage),
}

/// How neighbours are defined for polygon units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Contiguity {
    Queen,
    /// Centroids within this many metres.
    DistanceBand(f64),
}

/// A study's monthly cube: `values[t][i]` for each of `months`, and whether each month
/// is observed (false: missing, no file published for it; its row is zeros).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Monthly {
    pub months: Vec<crate::model::Month>,
    pub values: Vec<Vec<f64>>,
    /// The key sum of each unit-month's records, `keys[t][i]` beside `values[t][i]`
    /// (wrapping; the cell key of cell-key perturbation, `serve::disclosure::ckp`): 0
    /// where the value is 0.
    pub keys: Vec<Vec<u32>>,
    pub observed: Vec<bool>,
}

impl Monthly {
    /// Observed months.
    pub fn observed_len(&self) -> usize {
        self.observed.iter().filter(|o| **o).count()
    }
}

/// Units with counts and areas.
#[derive(Debug, Clone)]
pub struct Study {
    pub units: Units,
    /// Unit codes: H3 cell hex or LSOA code.
    pub codes: Vec<String>,
    /// H3 cells (empty for LSOAs).
    pub cells: Vec<CellIndex>,
    /// LSOA indices into the geography (empty for H3).
    pub lsoas: Vec<u32>,
    pub counts: Vec<f64>,
    /// The key sum of each unit's records (cell-key perturbation; wrapping).
    pub keys: Vec<u32>,
    pub area_km2: Vec<f64>,
    pub store: Arc<AnalysisStore>,
}

impl Study {
    /// Builds the study over the filter's districts (or the whole county).
    pub fn new(store: Arc<AnalysisStore>, units: Units, filter: &Filter) -> Self {
        let g = &store.geography;
        let time = TimeBin::All;
        match units {
            Units::H3(res) => {
                let q = Query {
                    unit: Unit::H3(res),
                    time,
                    by_type: false,
                    filter: filter.clone(),
                };
                let agg = aggregate(&store, &q);
                let covered = cached_cover(g, filter.districts.as_deref(), res);
                let grid = Grid::from_cover(covered.cells.clone(), res, &agg.counts);
                Study {
                    units,
                    codes: grid.cells.par_iter().map(ToString::to_string).collect(),
                    area_km2: grid.cells.par_iter().map(|c| covered.area_of(*c)).collect(),
                    cells: grid.cells,
                    lsoas: vec![],
                    counts: grid.counts,
                    keys: grid.keys,
                    store,
                }
            }
            Units::Lsoa(v) => {
                let (set, lsoa_district) = (g.lsoa_set(v), g.lsoa_districts(v));
                let q = Query {
                    unit: Unit::Lsoa(v),
                    time,
                    by_type: false,
                    filter: filter.clone(),
                };
                let agg = aggregate(&store, &q);
                let keep = |i: usize| {
                    filter
                        .districts
                        .as_ref()
                        .is_none_or(|ds| ds.contains(&lsoa_district[i]))
                };
                let lsoas: Vec<u32> = (0..set.len())
                    .filter(|&i| keep(i))
                    .map(|i| i as u32)
                    .collect();
                let mut pos = vec![usize::MAX; set.len()];
                for (k, &i) in lsoas.iter().enumerate() {
                    pos[i as usize] = k;
                }
                let mut counts = vec![0.0; lsoas.len()];
                let mut keys = vec![0u32; lsoas.len()];
                for c in &agg.counts {
                    if let UnitKey::Index(i) = c.unit
                        && let Some(&k) = pos.get(i as usize).filter(|k| **k != usize::MAX)
                    {
                        counts[k] += c.count as f64;
                        keys[k] = keys[k].wrapping_add(c.key_sum);
                    }
                }
                Study {
                    units,
                    codes: lsoas
                        .iter()
                        .map(|&i| set.codes[i as usize].clone())
                        .collect(),
                    area_km2: lsoas
                        .iter()
                        .map(|&i| area_m2(&set.polygons[i as usize]) / 1e6)
                        .collect(),
                    cells: vec![],
                    lsoas,
                    counts,
                    keys,
                    store,
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Binary weights: k rings for H3, contiguity for LSOAs; `with_self` for Gi*.
    pub fn weights(&self, k: u32, contiguity: Contiguity, with_self: bool) -> Weights {
        let w = match self.units {
            Units::H3(_) => Weights::h3_disk(&self.cells, k),
            Units::Lsoa(v) => {
                let set = self.store.geography.lsoa_set(v);
                let polys: Vec<_> = self
                    .lsoas
                    .iter()
                    .map(|&i| set.polygons[i as usize].clone())
                    .collect();
                match contiguity {
                    Contiguity::Queen => Weights::queen(&polys),
                    Contiguity::DistanceBand(m) => Weights::distance_band(&polys, m),
                }
            }
        };
        w.with_self(with_self)
    }

    /// Counts per month and unit, `[t][i]`, over the filter's months (or the data's), for
    /// H3 studies; with the months and which of them are observed
    /// ([`AnalysisStore::series_months`], [`AnalysisStore::observed_months`]): a missing
    /// month's row is all zeros and must be read as no data, never as zero crime.
    pub fn monthly(&self, filter: &Filter) -> Monthly {
        let Units::H3(res) = self.units else {
            return Monthly::default();
        };
        let months = self.store.series_months(filter);
        let (Some(from), Some(_)) = (months.first(), months.last()) else {
            return Monthly::default();
        };
        let q = Query {
            unit: Unit::H3(res),
            time: TimeBin::Month,
            by_type: false,
            filter: filter.clone(),
        };
        let agg = aggregate(&self.store, &q);
        let mut values = vec![vec![0.0; self.len()]; months.len()];
        let mut keys = vec![vec![0u32; self.len()]; months.len()];
        for c in &agg.counts {
            let t = c
                .month
                .map(|m| usize::from(m.index().wrapping_sub(from.index())));
            if let (UnitKey::Cell(cell), Some(t)) = (c.unit, t)
                && let Ok(i) = self.cells.binary_search(&cell)
                && let (Some(row), Some(krow)) = (values.get_mut(t), keys.get_mut(t))
            {
                row[i] += c.count as f64;
                krow[i] = krow[i].wrapping_add(c.key_sum);
            }
        }
        let observed = self.store.observed_months(filter, &months);
        Monthly {
            months,
            values,
            keys,
            observed,
        }
    }

    /// Counts per km2.
    pub fn density(&self) -> Vec<f64> {
        self.counts
            .iter()
            .zip(&self.area_km2)
            .map(|(c, a)| if *a > 0.0 { c / a } else { 0.0 })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> Arc<AnalysisStore> {
        let g = Arc::new(crate::spatial::Geography::bundled().expect("bundled geography"));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample");
        Arc::new(
            crate::analysis::from_csv_paths(&[dir], g)
                .expect("fixtures")
                .0,
        )
    }

    /// The monthly cube's key sums are those of its unit-months: over the months they add
    /// up (wrapping) to each unit's key sum, as the values add up to its count; a zero has
    /// key 0; and a unit-month's key is the key sum the month's own study gives.
    #[test]
    fn monthly_keys_sum_to_the_units_keys() {
        let store = fixtures();
        let filter = Filter::default();
        let study = Study::new(store.clone(), Units::H3(Resolution::Eight), &filter);
        let m = study.monthly(&filter);
        assert_eq!(m.keys.len(), m.values.len());
        assert!(m.months.len() >= 3);
        let mut keys = vec![0u32; study.len()];
        let mut counts = vec![0.0; study.len()];
        for (vrow, krow) in m.values.iter().zip(&m.keys) {
            assert_eq!(krow.len(), study.len());
            for i in 0..study.len() {
                keys[i] = keys[i].wrapping_add(krow[i]);
                counts[i] += vrow[i];
                if vrow[i] == 0.0 {
                    assert_eq!(krow[i], 0);
                }
            }
        }
        assert_eq!(counts, study.counts);
        assert_eq!(keys, study.keys);
        assert!(keys.iter().any(|&k| k != 0));
        // One month on its own: the same key sums as that month's row.
        let t = m.months.len() / 2;
        let one = Filter {
            from: Some(m.months[t]),
            to: Some(m.months[t]),
            ..Filter::default()
        };
        let s = Study::new(store, Units::H3(Resolution::Eight), &one);
        // (The grids may differ by an occupied cell outside the cover: compare by cell.)
        let mut compared = 0;
        for (i, c) in study.cells.iter().enumerate() {
            if let Ok(j) = s.cells.binary_search(c) {
                assert!(s.keys[j] == m.keys[t][i] && s.counts[j] == m.values[t][i]);
                compared += usize::from(s.counts[j] > 0.0);
            } else {
                assert_eq!(m.values[t][i], 0.0);
            }
        }
        assert!(compared > 10, "{compared}");
    }
}
