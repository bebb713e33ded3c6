//! A short ranked list of places to patrol, for neighbourhood teams.
//!
//! # Ranking
//! Places are ranked by the method that would have predicted best for this filter and
//! geography (`backtest`, rolling origin), or by `--method`. The choice backtests the
//! filter's types and districts over every month of the data, one test month per fold,
//! training on as many months as the filter's period holds (fewer when the data could
//! not then give 3 folds), each method choosing as much area as the list covers (N
//! units of the study's mean unit area); the method with the highest mean PEI wins, ties
//! to the simplest ([`Method::RANKING`] order). With too few months to backtest, the
//! list is ranked by count and says so. The chosen method then ranks the units from the
//! filter's whole period.
//!
//! Whatever the method, a place with incidents in the period comes before every place
//! without one: an empty cell beside a busy one has a high Gi* z (with k = 1 it shares
//! all its neighbours' counts) and a KDE surface peaks between incidents, but a sergeant
//! sent to a place where nothing happened while places with burglaries are left off has
//! been sent to the wrong place. Ties go to the count of the last month with data, then
//! the period's count. Empty places are listed only after every place with incidents,
//! and only when the method still scores them above 0.
//!
//! # Sparse data
//! Gi*'s z is a normal approximation: ArcGIS warns below 30 features with non-zero
//! values, and on a handful of incidents it gives p values such as 1e-83 for 3
//! incidents. [`PatrolList::sparse`] says so when fewer units than [`SPARSE_UNITS`]
//! have incidents.

//! # What each place carries
//! Its count and Gi*, its emerging hot spot category (`emerging`, space-time Gi* and
//! Mann-Kendall over every month of the filter with data: a month some force did not
//! publish is left out, `crate::coverage`), the LSOA, district and police.uk
//! `Location` text ("On or near ...") most of its incidents have, and the share of all
//! incidents the list captures down to it with the list's PAI so far (`pai`, Chainey,
//! Tompson and Uhlig 2008).
//!
//! # Harm
//! With harm weights ([`patrol_weighted`], `hotspot patrol --harm FILE`) each incident
//! counts as its category's weight: the choosing backtest scores the harm each method
//! would have captured, the places are ranked by harm and their Gi*, trend, captured
//! share and PAI are of harm, and each place carries its harm beside its count.
//!
//! # Incidents to units
//! Each store location is placed in a study unit once ([`UnitIncidents`]): for H3 the
//! parent of its base-resolution cell at the study resolution, as `aggregate` does; for
//! LSOAs its LSOA. One pass over the incidents under the filter then counts by month and
//! location, which gives every per-unit count, per month or over any window of months.

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use thiserror::Error;

use super::backtest::{self, Backtest, BacktestError, BacktestOptions, Context, Method};
use super::emerging::{self, Category, EmergingError};
use super::gi_star::gi_star;
use super::harm::{HarmError, HarmWeights};
use super::pai;
use super::study::{Contiguity, Study, Units};
use crate::analysis::{AnalysisStore, Filter};
use crate::model::{Month, TypeSet};
use crate::spatial::geography::{NO_DISTRICT, NO_LSOA};

/// Marks a location outside every study unit.
pub const NO_UNIT: u32 = u32::MAX;
/// Units with incidents below which Gi*'s normal approximation is unreliable (ArcGIS's
/// rule of thumb for Hot Spot Analysis: 30 features with non-zero values).
pub const SPARSE_UNITS: usize = 30;
/// The fewest folds the method choice backtests over.
pub const CHOICE_FOLDS: usize = 3;

/// Why a patrol list could not be made.
#[derive(Debug, Error)]
pub enum PatrolError {
    #[error("the study area has {0} units; at least 3 are needed")]
    TooFewUnits(usize),
    #[error("the list needs at least one place (--top 1 or more)")]
    ZeroTop,
    #[error("--method {0} does not rank places (use one of {1})")]
    NotARanking(&'static str, String),
    #[error(transparent)]
    Rank(#[from] BacktestError),
    #[error(transparent)]
    Emerging(#[from] EmergingError),
    #[error(transparent)]
    Harm(#[from] HarmError),
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
    /// Per month, `(location, incidents)` sorted by location, zero counts left out; with
    /// harm weights ([`UnitIncidents::weighted`]) each incident counts as its category's
    /// weight.
    pub by_month: Vec<Vec<(u32, f64)>>,
    /// Number of study units.
    pub units: usize,
}

impl UnitIncidents {
    /// Places every location in `study` and counts the incidents passing `filter`.
    pub fn new(study: &Study, filter: &Filter) -> Self {
        Self::of(study, filter, None).unwrap_or_else(|_| unreachable!("no weights, no error"))
    }

    /// As [`UnitIncidents::new`], each incident counted as its category's weight in `harm`.
    ///
    /// # Errors
    /// [`HarmError::Missing`] naming the categories under the filter the file does not
    /// weigh.
    pub fn weighted(study: &Study, filter: &Filter, harm: &HarmWeights) -> Result<Self, HarmError> {
        Self::of(study, filter, Some(harm))
    }

    /// [`UnitIncidents::weighted`] with weights, [`UnitIncidents::new`] without.
    ///
    /// # Errors
    /// As [`UnitIncidents::weighted`].
    pub fn of(
        study: &Study,
        filter: &Filter,
        harm: Option<&HarmWeights>,
    ) -> Result<Self, HarmError> {
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
        // (month, location) keys, one per incident, sorted so that a run is a count;
        // with harm weights the category too, (month, location, category).
        let weighted = harm.is_some();
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
                (hi >= lo && dm <= span && unit != NO_UNIT && filter.keeps(c, v)).then_some(
                    match weighted {
                        true => (u64::from(dm) << 40) | (u64::from(l) << 8) | u64::from(c),
                        false => (u64::from(dm) << 32) | u64::from(l),
                    },
                )
            })
            .collect();
        keys.par_sort_unstable();
        let mut missing = TypeSet::empty();
        for run in keys.chunk_by(|a, b| a == b) {
            let k = run[0];
            let n = run.len() as f64;
            let (t, l, add) = match harm {
                None => ((k >> 32) as usize, k as u32, n),
                Some(h) => {
                    let c = k as u8;
                    let Some(w) = h.get(c) else {
                        if let Some(ct) = crate::model::CrimeType::from_code(c) {
                            missing = missing.with(ct);
                        }
                        continue;
                    };
                    ((k >> 40) as usize, (k >> 8) as u32, w * n)
                }
            };
            match by_month[t].last_mut() {
                Some((last, x)) if *last == l => *x += add,
                _ => by_month[t].push((l, add)),
            }
        }
        if let Some(h) = harm.filter(|_| missing.bits() != 0) {
            return Err(h.missing(missing));
        }
        Ok(UnitIncidents {
            months,
            observed,
            loc_unit,
            by_month,
            units: study.len(),
        })
    }

    /// Incidents per unit over the months `range` (indices into `months`).
    pub fn unit_counts(&self, range: std::ops::Range<usize>) -> Vec<f64> {
        let mut out = vec![0.0; self.units];
        for month in self.by_month.get(range).unwrap_or_default() {
            for &(l, c) in month {
                out[self.loc_unit[l as usize] as usize] += c;
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
                    *acc.entry(self.loc_unit[l as usize]).or_default() += c;
                }
                let mut v: Vec<(u32, f64)> = acc.into_iter().collect();
                v.sort_unstable_by_key(|e| e.0);
                v
            })
            .collect()
    }

    /// Incidents (or their harm) per store location over every month.
    pub fn location_totals(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.loc_unit.len()];
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

/// How the list is made.
#[derive(Debug, Clone, Copy)]
pub struct PatrolOptions {
    /// Places wanted.
    pub top: usize,
    /// H3 rings in the Gi* neighbourhood (LSOAs use queen contiguity).
    pub k: u32,
    /// Benjamini-Hochberg control of the Gi* and emerging bins.
    pub fdr: bool,
    /// The ranking method; None: the one that backtests best.
    pub method: Option<Method>,
}

/// The ranking method used, and why.
#[derive(Debug, Clone)]
pub struct Choice {
    pub method: Method,
    /// The backtest that chose it (None when `--method` was given or no backtest could
    /// run).
    pub backtest: Option<Backtest>,
    /// Training months per fold and area share of the backtest.
    pub train: usize,
    pub coverage: f64,
    /// Why the backtest could not choose (then the list is ranked by count).
    pub note: Option<String>,
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
    /// With harm weights: the place's harm (its incidents' weights summed), which then
    /// ranks it and is what `z`, `recent`, `trend`, `share` and `pai` are of.
    pub harm: Option<f64>,
    pub z: f64,
    pub p: f64,
    pub bin: i8,
    /// A significant Gi* hot spot (bin > 0).
    pub significant: bool,
    /// Incidents (or their harm) in the last month of the period with data.
    pub recent: f64,
    /// Emerging hot spot category (None with fewer than 3 months with data).
    pub trend: Option<Category>,
    pub area_km2: f64,
    /// Share of all the study's incidents (or harm) captured by places 1..=rank.
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
    pub choice: Choice,
    /// Units with incidents in the period.
    pub units_with_incidents: usize,
    /// A warning when too few units have incidents for Gi*'s normal approximation.
    pub sparse: Option<String>,
    /// With harm weights: the study's harm over the period.
    pub harm: Option<f64>,
}

/// The sparse-data warning for `nonzero` units with incidents (None at 30 or more).
pub fn sparse_warning(nonzero: usize) -> Option<String> {
    (nonzero < SPARSE_UNITS).then(|| {
        format!(
            "only {nonzero} units have incidents: Gi* and local Moran's I rest on a normal \
             approximation that needs about {SPARSE_UNITS} (ArcGIS's rule of thumb), so \
             their z and p values are unreliable here; counts are not"
        )
    })
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
    patrol_weighted(store, units, filter, opts, None)
}

/// As [`patrol`], with each incident counted as its category's weight in `harm` when
/// given: the method is chosen by the harm its places would have captured (the
/// backtest with the same weights), places are ranked by harm, and Gi*, the trend, the
/// last month, the captured share and PAI are of harm; `count` stays the incidents.
///
/// # Errors
/// As [`patrol`], and [`PatrolError::Harm`] for a category the weights miss.
pub fn patrol_weighted(
    store: std::sync::Arc<AnalysisStore>,
    units: Units,
    filter: &Filter,
    opts: PatrolOptions,
    harm: Option<&HarmWeights>,
) -> Result<PatrolList, PatrolError> {
    if opts.top == 0 {
        return Err(PatrolError::ZeroTop);
    }
    let study = Study::new(store, units, filter);
    if study.len() < 3 {
        return Err(PatrolError::TooFewUnits(study.len()));
    }
    let w = study.weights(opts.k, Contiguity::Queen, true);
    let incidents = UnitIncidents::of(&study, filter, harm)?;
    let months = incidents.months.len();
    // What ranks the places: the counts, or with weights their harm.
    let measure = match harm {
        Some(_) => incidents.unit_counts(0..months),
        None => study.counts.clone(),
    };
    let gi = gi_star(&measure, &w, opts.fdr);
    let trend = trends(&incidents, &w, opts.fdr)?;
    let choice = match opts.method {
        Some(m) if m == Method::Random => {
            let names: Vec<&str> = Method::RANKING.iter().map(|m| m.label()).collect();
            return Err(PatrolError::NotARanking(m.label(), names.join(", ")));
        }
        Some(m) => Choice {
            method: m,
            backtest: None,
            train: 0,
            coverage: 0.0,
            note: None,
        },
        None => choose(&study, filter, &incidents, opts, harm),
    };
    let last = incidents.observed.iter().rposition(|o| *o).unwrap_or(0);
    let recent = incidents.unit_counts(last..last + 1);
    let bt = BacktestOptions {
        coverage: 1.0,
        train: months.max(1),
        test: 1,
        k: opts.k,
    };
    let ctx = Context::new(study, incidents, bt);
    let mut order = ctx.ranked(choice.method, 0..months, &[&recent, &measure], opts.fdr)?;
    let Context {
        study,
        inc: incidents,
        ..
    } = ctx;
    order.truncate(opts.top);
    let units_with_incidents = study.counts.iter().filter(|c| **c > 0.0).count();
    let cumulative = pai::cumulative(&measure, &study.area_km2, &order);
    let names = place_names(&study, &incidents, &order);
    let places = order
        .iter()
        .zip(cumulative)
        .zip(names)
        .enumerate()
        .map(|(r, ((&i, (share, pai)), names))| Place {
            rank: r + 1,
            unit: i,
            code: study.codes[i].clone(),
            district: names.district,
            lsoa_code: names.lsoa_code,
            lsoa_name: names.lsoa_name,
            location: names.location,
            count: study.counts[i],
            harm: harm.map(|_| measure[i]),
            z: gi.z[i],
            p: gi.p[i],
            bin: gi.bin[i],
            significant: gi.bin[i] > 0,
            recent: recent[i],
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
        choice,
        units_with_incidents,
        sparse: sparse_warning(units_with_incidents),
        harm: harm.map(|_| measure.iter().sum()),
    })
}

/// Backtests by (filter without period and harm weights, units, training months,
/// coverage bits, rings).
type BacktestKey = (String, Units, usize, u64, u32);
static BACKTESTS: crate::lru::Lru<AnalysisStore, BacktestKey, Result<Backtest, String>> =
    crate::lru::Lru::new(32);

/// The method that backtests best for `filter`'s types and districts over every month
/// of the data (see the module docs), or counts with a note when no backtest can run.
fn choose(
    study: &Study,
    filter: &Filter,
    inc: &UnitIncidents,
    opts: PatrolOptions,
    harm: Option<&HarmWeights>,
) -> Choice {
    let fallback = |note: String| Choice {
        method: Method::Naive,
        backtest: None,
        train: 0,
        coverage: 0.0,
        note: Some(note),
    };
    let mut all = filter.clone();
    all.from = None;
    all.to = None;
    let store = &study.store;
    let months = store.series_months(&all).len();
    let period = inc.months.len().max(1);
    let Some(train) = months
        .checked_sub(CHOICE_FOLDS)
        .map(|m| m.min(period))
        .filter(|t| *t >= 1)
    else {
        return fallback(format!(
            "{months} months of data: too few to backtest ({} needed for {CHOICE_FOLDS} \
             folds); ranked by count",
            CHOICE_FOLDS + 1
        ));
    };
    let total: f64 = study.area_km2.iter().sum();
    let mean = total / study.len().max(1) as f64;
    let coverage = (opts.top as f64 * mean / total).clamp(f64::MIN_POSITIVE, 1.0);
    let bo = BacktestOptions {
        coverage,
        train,
        test: 1,
        k: opts.k,
    };
    // The backtest runs over every month of the data whatever the period, so one period
    // after another (the map's month slider, a changed "to") reuses it: it was most of a
    // period change's 1-2 s.
    let weights = harm.map_or_else(String::new, HarmWeights::key);
    let key = (
        format!("{}|{weights}", all.key()),
        study.units,
        train,
        coverage.to_bits(),
        opts.k,
    );
    let cached = BACKTESTS.get(store, key, || {
        backtest::backtest_weighted(store.clone(), study.units, &all, bo, harm)
            .map_err(|e| e.to_string())
    });
    match cached.as_ref().clone() {
        Ok(b) => {
            let mut best: Option<(Method, f64)> = None;
            for m in Method::RANKING {
                let Some(s) = b.summary.iter().find(|s| s.method == m) else {
                    continue;
                };
                if s.folds == 0 || !s.pei.mean.is_finite() {
                    continue;
                }
                if best.is_none_or(|(_, p)| s.pei.mean > p) {
                    best = Some((m, s.pei.mean));
                }
            }
            match best {
                Some((method, _)) => Choice {
                    method,
                    backtest: Some(b),
                    train,
                    coverage,
                    note: None,
                },
                None => fallback("no backtest fold had test incidents; ranked by count".into()),
            }
        }
        Err(e) => fallback(format!("the backtest could not run ({e}); ranked by count")),
    }
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

/// Incidents (or their harm) of one place by LSOA, district and location text.
#[derive(Default)]
struct Tally<'a> {
    lsoa: FxHashMap<u16, f64>,
    district: FxHashMap<u8, f64>,
    street: FxHashMap<&'a str, f64>,
}

/// The key with the most incidents (or harm); ties to the smallest key.
fn mode<K: Ord + Copy>(m: &FxHashMap<K, f64>) -> Option<K> {
    m.iter()
        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(a.0)))
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
        if let Some(&k) = slot.get(&inc.loc_unit[loc]).filter(|_| total > 0.0) {
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
    fn modes_break_ties_by_the_smallest_key() {
        let m: FxHashMap<&str, f64> = [("b", 3.0), ("a", 3.0), ("c", 1.0)].into_iter().collect();
        assert_eq!(mode(&m), Some("a"));
        assert_eq!(mode(&FxHashMap::<u8, f64>::default()), None);
    }
}
