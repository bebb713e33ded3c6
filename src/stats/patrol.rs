//! A short ranked list of places to patrol, for neighbourhood teams.
//!
//! # Ranking
//! Units (H3 cells or LSOAs of a [`Study`]) are ranked by Gi* z-score (Ord and Getis
//! 1995, `gi_star`, Benjamini-Hochberg control on by default) among the significant hot
//! units (bin > 0), highest first. When fewer than N units are hot the list is filled with
//! the units with the most incidents, marked not significant; units without incidents
//! never fill. Because significance only rises with z, "hot first, by z" is the plain z
//! order over the hot units; the fill is by count because a non-significant z says little.
//! [`rank_units`] is that order over every unit, shared with `backtest`.
//!
//! # What each place carries
//! Its count and Gi*, its emerging hot spot category (`emerging`, space-time Gi* and
//! Mann-Kendall over every month of the filter with data: a month some force did not
//! publish is left out, `crate::coverage`), the LSOA, district and police.uk
//! `Location` text ("On or near ...") most of its incidents have, and the share of all
//! incidents the list captures down to it with the list's PAI so far (`pai`, Chainey,
//! Tompson and Uhlig 2008).
//!
//! # Incidents to units
//! Each store location is placed in a study unit once ([`UnitIncidents`]): for H3 the
//! parent of its base-resolution cell at the study resolution, as `aggregate` does; for
//! LSOAs its LSOA. One pass over the incidents under the filter then counts by month and
//! location, which gives every per-unit count, per month or over any window of months.

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use thiserror::Error;

use super::emerging::{self, Category, EmergingError};
use super::gi_star::gi_star;
use super::pai;
use super::study::{Contiguity, Study, Units};
use crate::analysis::{AnalysisStore, Filter};
use crate::model::Month;
use crate::spatial::geography::{NO_DISTRICT, NO_LSOA};

/// Marks a location outside every study unit.
pub const NO_UNIT: u32 = u32::MAX;

/// Why a patrol list could not be made.
#[derive(Debug, Error)]
pub enum PatrolError {
    #[error("the study area has {0} units; at least 3 are needed")]
    TooFewUnits(usize),
    #[error("the list needs at least one place (--top 1 or more)")]
    ZeroTop,
    #[error(transparent)]
    Emerging(#[from] EmergingError),
}

/// Incidents under a filter, by month and store location, with each location's unit.
#[derive(Debug, Clone)]
pub struct UnitIncidents {
    /// Every month of the filter (or of the data), in order.
    pub months: Vec<Month>,
    /// Whether each month is observed (false: missing, no file published; its counts
    /// are zeros that mean no data). From `AnalysisStore::observed_months`.
    pub observed: Vec<bool>,
    /// The study unit of each store location, or [`NO_UNIT`].
    pub loc_unit: Vec<u32>,
    /// Per month, `(location, incidents)` sorted by location, zero counts left out.
    pub by_month: Vec<Vec<(u32, u32)>>,
    /// Number of study units.
    pub units: usize,
}

impl UnitIncidents {
    /// Places every location in `study` and counts the incidents passing `filter`.
    pub fn new(study: &Study, filter: &Filter) -> Self {
        let loc_unit = location_units(study, filter);
        let store = &study.store;
        let months = store.series_months(filter);
        let observed = store.observed_months(filter, &months);
        let (lo, hi) = match (months.first(), months.last()) {
            (Some(f), Some(t)) => (f.index(), t.index()),
            _ => (1, 0),
        };
        let mut by_month = vec![Vec::new(); months.len()];
        let inc = &store.incidents;
        let span = hi.wrapping_sub(lo);
        let mut keys: Vec<u64> = inc
            .loc
            .par_iter()
            .zip(&inc.month)
            .zip(&inc.ctype)
            .zip(&inc.severity)
            .with_min_len(1 << 14)
            .filter_map(|(((&l, &m), &c), &v)| {
                let dm = m.wrapping_sub(lo);
                let unit = loc_unit.get(l as usize).copied().unwrap_or(NO_UNIT);
                (hi >= lo && dm <= span && unit != NO_UNIT && filter.keeps(c, v))
                    .then_some((u64::from(dm) << 32) | u64::from(l))
            })
            .collect();
        keys.par_sort_unstable();
        for run in keys.chunk_by(|a, b| a == b) {
            let t = (run[0] >> 32) as usize;
            by_month[t].push((run[0] as u32, run.len() as u32));
        }
        UnitIncidents {
            months,
            observed,
            loc_unit,
            by_month,
            units: study.len(),
        }
    }

    /// Incidents per unit over the months `range` (indices into `months`).
    pub fn unit_counts(&self, range: std::ops::Range<usize>) -> Vec<f64> {
        let mut out = vec![0.0; self.units];
        for month in self.by_month.get(range).unwrap_or_default() {
            for &(l, c) in month {
                out[self.loc_unit[l as usize] as usize] += f64::from(c);
            }
        }
        out
    }

    /// Incidents per month and unit, `[t][i]`.
    pub fn monthly(&self) -> Vec<Vec<f64>> {
        (0..self.months.len())
            .map(|t| self.unit_counts(t..t + 1))
            .collect()
    }

    /// Per month, `(unit, incidents)` sorted by unit, zero counts left out.
    pub fn unit_months(&self) -> Vec<Vec<(u32, f64)>> {
        self.by_month
            .iter()
            .map(|month| {
                let mut acc: FxHashMap<u32, f64> = FxHashMap::default();
                for &(l, c) in month {
                    *acc.entry(self.loc_unit[l as usize]).or_default() += f64::from(c);
                }
                let mut v: Vec<(u32, f64)> = acc.into_iter().collect();
                v.sort_unstable_by_key(|e| e.0);
                v
            })
            .collect()
    }

    /// Incidents per store location over every month.
    pub fn location_totals(&self) -> Vec<u32> {
        let mut out = vec![0u32; self.loc_unit.len()];
        for &(l, c) in self.by_month.iter().flatten() {
            out[l as usize] += c;
        }
        out
    }
}

/// The study unit of every store location ([`NO_UNIT`] when it has none or its district
/// is filtered out).
pub fn location_units(study: &Study, filter: &Filter) -> Vec<u32> {
    let l = &study.store.locations;
    (0..l.len())
        .into_par_iter()
        .map(|i| {
            let kept = filter
                .districts
                .as_ref()
                .is_none_or(|d| d.contains(&l.district[i]));
            let pos = match study.units {
                _ if !kept => None,
                Units::H3(res) => l
                    .cell(i, res)
                    .and_then(|c| study.cells.binary_search(&c).ok()),
                Units::Lsoa(v) => study.lsoas.binary_search(&u32::from(l.lsoa_of(v)[i])).ok(),
            };
            pos.map_or(NO_UNIT, |p| p as u32)
        })
        .collect()
}

/// Patrol order over every unit: significant hot units (`bin > 0`) by z descending, then
/// the other units with incidents by count descending; ties by count (then z), then index.
/// Each entry is `(unit, significant)`.
pub fn rank_units(z: &[f64], bin: &[i8], counts: &[f64]) -> Vec<(usize, bool)> {
    let n = z.len().min(bin.len()).min(counts.len());
    let (mut hot, mut rest): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| bin[i] > 0);
    hot.sort_by(|&a, &b| {
        z[b].total_cmp(&z[a])
            .then(counts[b].total_cmp(&counts[a]))
            .then(a.cmp(&b))
    });
    rest.retain(|&i| counts[i] > 0.0);
    rest.sort_by(|&a, &b| {
        counts[b]
            .total_cmp(&counts[a])
            .then(z[b].total_cmp(&z[a]))
            .then(a.cmp(&b))
    });
    let hot = hot.into_iter().map(|i| (i, true));
    hot.chain(rest.into_iter().map(|i| (i, false))).collect()
}

/// How the list is made.
#[derive(Debug, Clone, Copy)]
pub struct PatrolOptions {
    /// Places wanted.
    pub top: usize,
    /// H3 rings in the Gi* neighbourhood (LSOAs use queen contiguity).
    pub k: u32,
    /// Benjamini-Hochberg control of the Gi* and emerging bins.
    pub fdr: bool,
}

/// One place to patrol.
#[derive(Debug, Clone)]
pub struct Place {
    /// 1-based.
    pub rank: usize,
    /// Index of the unit in the study.
    pub unit: usize,
    /// H3 cell or LSOA code.
    pub code: String,
    pub district: String,
    pub lsoa_code: String,
    pub lsoa_name: String,
    /// The commonest police.uk `Location` text among its incidents ("" without any).
    pub location: String,
    pub count: f64,
    pub z: f64,
    pub p: f64,
    pub bin: i8,
    /// Hot at the chosen confidence; false for the count fill.
    pub significant: bool,
    /// Emerging hot spot category (None with fewer than 3 months with data).
    pub trend: Option<Category>,
    pub area_km2: f64,
    /// Share of all the study's incidents captured by places 1..=rank.
    pub share: f64,
    /// PAI of places 1..=rank.
    pub pai: Option<f64>,
}

/// The list with the study it came from.
#[derive(Debug, Clone)]
pub struct PatrolList {
    pub study: Study,
    pub months: Vec<Month>,
    pub places: Vec<Place>,
}

/// Makes the patrol list for `filter` over `units`.
///
/// # Errors
/// [`PatrolError`] with fewer than 3 units, `top == 0`, or an inconsistent cube.
pub fn patrol(
    store: std::sync::Arc<AnalysisStore>,
    units: Units,
    filter: &Filter,
    opts: PatrolOptions,
) -> Result<PatrolList, PatrolError> {
    if opts.top == 0 {
        return Err(PatrolError::ZeroTop);
    }
    let study = Study::new(store, units, filter);
    if study.len() < 3 {
        return Err(PatrolError::TooFewUnits(study.len()));
    }
    let w = study.weights(opts.k, Contiguity::Queen, true);
    let gi = gi_star(&study.counts, &w, opts.fdr);
    let incidents = UnitIncidents::new(&study, filter);
    let trend = trends(&incidents, &w, opts.fdr)?;
    let mut ranked = rank_units(&gi.z, &gi.bin, &study.counts);
    ranked.truncate(opts.top);
    let order: Vec<usize> = ranked.iter().map(|r| r.0).collect();
    let cumulative = pai::cumulative(&study.counts, &study.area_km2, &order);
    let names = place_names(&study, &incidents, &order);
    let places = ranked
        .iter()
        .zip(cumulative)
        .zip(names)
        .enumerate()
        .map(|(r, ((&(i, significant), (share, pai)), names))| Place {
            rank: r + 1,
            unit: i,
            code: study.codes[i].clone(),
            district: names.district,
            lsoa_code: names.lsoa_code,
            lsoa_name: names.lsoa_name,
            location: names.location,
            count: study.counts[i],
            z: gi.z[i],
            p: gi.p[i],
            bin: gi.bin[i],
            significant,
            trend: trend.as_ref().map(|t| t[i]),
            area_km2: study.area_km2[i],
            share,
            pai,
        })
        .collect();
    Ok(PatrolList {
        months: incidents.months,
        study,
        places,
    })
}

/// Emerging hot spot categories of every unit over the observed months (None under 3):
/// a missing month is left out, not read as zero (`emerging`, "Missing months").
fn trends(
    incidents: &UnitIncidents,
    w: &super::Weights,
    fdr: bool,
) -> Result<Option<Vec<Category>>, EmergingError> {
    if incidents.observed.iter().filter(|o| **o).count() < 3 {
        return Ok(None);
    }
    let e = emerging::emerging_hot_spots_observed(
        &incidents.monthly(),
        &incidents.observed,
        w,
        emerging::ESRI_DEFAULT_WINDOW,
        fdr,
        emerging::DEFAULT_TREND_ALPHA,
    )?;
    Ok(Some(e.category))
}

/// District, LSOA and street of one place.
#[derive(Debug, Clone, Default)]
struct Names {
    district: String,
    lsoa_code: String,
    lsoa_name: String,
    location: String,
}

/// Incident counts of one place by LSOA, district and location text.
#[derive(Default)]
struct Tally<'a> {
    lsoa: FxHashMap<u16, u32>,
    district: FxHashMap<u8, u32>,
    street: FxHashMap<&'a str, u32>,
}

/// The key with the most incidents; ties to the smallest key.
fn mode<K: Ord + Copy>(m: &FxHashMap<K, u32>) -> Option<K> {
    m.iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(k, _)| *k)
}

/// Names of the places `order` from the incidents in them: one pass over the locations.
fn place_names(study: &Study, inc: &UnitIncidents, order: &[usize]) -> Vec<Names> {
    let store = &study.store;
    let (l, g) = (&store.locations, &store.geography);
    let slot: FxHashMap<u32, usize> = order
        .iter()
        .enumerate()
        .map(|(k, &u)| (u as u32, k))
        .collect();
    let mut tallies: Vec<Tally> = (0..order.len()).map(|_| Tally::default()).collect();
    for (loc, total) in inc.location_totals().into_iter().enumerate() {
        if let Some(&k) = slot.get(&inc.loc_unit[loc]).filter(|_| total > 0) {
            let t = &mut tallies[k];
            *t.lsoa.entry(l.lsoa[loc]).or_default() += total;
            *t.district.entry(l.district[loc]).or_default() += total;
            // STATS19 collisions carry no police.uk location text.
            if !l.street[loc].is_empty() {
                *t.street.entry(&l.street[loc]).or_default() += total;
            }
        }
    }
    order
        .iter()
        .zip(&tallies)
        .map(|(&u, t)| {
            // The LSOA named is of the study's vintage; under H3, of 2011.
            let vintage = match study.units {
                Units::Lsoa(v) => v,
                Units::H3(_) => crate::spatial::geography::Vintage::V2011,
            };
            let set = g.lsoa_set(vintage);
            let (lsoa, district) = match study.units {
                Units::Lsoa(v) => {
                    let i = study.lsoas[u] as usize;
                    (Some(i), Some(usize::from(g.lsoa_districts(v)[i])))
                }
                Units::H3(_) => {
                    let ll = h3o::LatLng::from(study.cells[u]);
                    let (cl, cd) = g.locate(ll.lng(), ll.lat());
                    let lsoa = mode(&t.lsoa).unwrap_or(cl);
                    let district = mode(&t.district).unwrap_or(cd);
                    let lsoa = (lsoa != NO_LSOA).then_some(usize::from(lsoa));
                    (
                        lsoa,
                        (district != NO_DISTRICT).then_some(usize::from(district)),
                    )
                }
            };
            Names {
                district: district.map_or_else(String::new, |d| g.districts.names[d].clone()),
                lsoa_code: lsoa.map_or_else(String::new, |i| set.codes[i].clone()),
                lsoa_name: lsoa.map_or_else(String::new, |i| set.names[i].clone()),
                location: mode(&t.street).unwrap_or_default().to_owned(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_units_come_first_by_z_then_the_rest_by_count() {
        let z = [0.5, 3.0, 2.5, 1.0, -1.0, 2.5];
        let bin = [0, 2, 1, 0, 0, 1];
        let counts = [9.0, 1.0, 4.0, 9.0, 0.0, 5.0];
        let r = rank_units(&z, &bin, &counts);
        // 1 (z 3.0), then the tie at 2.5 by count (5 before 2), then 3 and 0 (count 9,
        // z breaks the tie); unit 4 has no incidents and never fills.
        assert_eq!(
            r,
            vec![(1, true), (5, true), (2, true), (3, false), (0, false)]
        );
    }

    #[test]
    fn modes_break_ties_by_the_smallest_key() {
        let m: FxHashMap<&str, u32> = [("b", 3), ("a", 3), ("c", 1)].into_iter().collect();
        assert_eq!(mode(&m), Some("a"));
        assert_eq!(mode(&FxHashMap::<u8, u32>::default()), None);
    }
}
