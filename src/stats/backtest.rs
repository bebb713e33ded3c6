//! Which way of choosing places would have predicted next month's incidents best: a
//! rolling-origin backtest of hotspot methods scored by hit rate, PAI and PEI (`pai`).
//!
//! # Folds
//! Over the months of the filter (or of the data), fold f trains on months
//! `f .. f + train` and tests on the `test` months after them; the origin steps one month,
//! so M months give `M - train - test + 1` folds. Every fold uses the same study units and
//! counts from one pass over the incidents ([`UnitIncidents`]).
//!
//! A fold whose training or test window holds a missing month (one some force did not
//! publish, `crate::coverage`) is skipped, not scored: its zeros would read as a month
//! without crime, rewarding methods that predict nothing there and punishing the rest.
//! The origins skipped are listed in [`Backtest::skipped`].
//!
//! # Selection
//! Each method scores every unit from the training window only. Units are then taken in
//! descending score (ties by training count, then unit order) while their total area stays
//! within `coverage x A` (a unit that would overflow is skipped and smaller ones after it
//! may still fit). Units scoring 0 are never taken: a method that names too few places
//! covers less area rather than borrowing random ones. Every method's units with a
//! training incident come before its units without one (the patrol list's rule: never an
//! empty place while places with incidents are left out), so the backtest scores the
//! order the patrol list would use.
//!
//! # Methods
//! - `gistar`: Gi* over the training counts (FDR on): significant hot units by z, then
//!   the rest by count.
//! - `kde`: quartic kernel density at each unit's centre from the training incidents,
//!   ArcGIS's default search radius, or [`KDE_FALLBACK_M`] when it is undefined (`kde`).
//! - `prospective`: Bowers, Johnson and Pease (2004), prospective hotspotting:
//!
//!   ```text
//!   score_i = sum over training incidents e of 1 / ((1 + d_ei) (1 + t_e))
//!   ```
//!
//!   d = H3 grid distance in cells from e's unit to i, counted only up to
//!   [`PROSPECTIVE_BANDWIDTH_CELLS`] (for LSOAs 0 in the same LSOA, 1 for a queen
//!   neighbour, others excluded); t = e's age in weeks at the end of training, from the
//!   middle of its month, at [`WEEKS_PER_MONTH`].
//! - `naive`: the training window's counts ("most incidents last period").
//! - `naive-last`: the counts of the last training month only.
//! - `recent`: risk-weighted recent counts, each training month's count weighted by
//!   `0.5^(age / 3)`, age in months before the last training month.
//! - `etas`: a self-exciting point process (Mohler et al. 2011, 2015) fitted by EM on
//!   the training months: each unit's background rate plus the risk its own incidents
//!   leave, decaying month by month (`etas`); the score is its expected incidents next
//!   month. What `recent` weights by a fixed half-life, it fits.
//! - `random`: not a method but the expected score of places chosen at random for the
//!   same area budget: hit rate = coverage, PAI = 1, PEI = N coverage / n*, RRI = 1.
//!
//! Scores: hit rate, PAI, PEI (`pai`) and Levine's recapture rate index ([`rri`]).
//!
//! # References
//! - Bowers, K. J., Johnson, S. D. and Pease, K. (2004). "Prospective hot-spotting: the
//!   future of crime mapping?" *British Journal of Criminology* 44(5), 641-658.
//! - Chainey, S., Tompson, L. and Uhlig, S. (2008). *Security Journal* 21, 4-28 (PAI).
//! - Hunt, J. M. (2016). PhD thesis, American University (PEI).
//! - Levine, N. (2008). "The 'hottest' part of a hotspot: comments on 'the utility of
//!   hotspot mapping for predicting spatial patterns of crime'". *Security Journal* 21,
//!   295-302 (RRI).

use geo::Centroid;
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use thiserror::Error;

use super::etas;
use super::gi_star::gi_star;
use super::kde::{self, KdeError, KernelDensity, WeightedPoint};
use super::pai::{self, Accuracy};
use super::patrol::UnitIncidents;
use super::study::{Contiguity, Study, Units};
use super::weights::Weights;
use crate::analysis::{AnalysisStore, Filter};
use crate::model::Month;
use crate::spatial::bng::wgs84_to_bng;

/// Search radius when ArcGIS's default is undefined (too few or too concentrated points).
pub const KDE_FALLBACK_M: f64 = 500.0;
/// Prospective hotspotting reaches this many H3 rings.
pub const PROSPECTIVE_BANDWIDTH_CELLS: u32 = 3;
/// The half-life of the `recent` method's weights, months.
pub const RECENT_HALF_LIFE_MONTHS: f64 = 3.0;
/// Mean weeks in a calendar month (365.25 / 7 / 12).
pub const WEEKS_PER_MONTH: f64 = 4.345;

/// A way of choosing places from the training window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Gistar,
    Kde,
    Prospective,
    Naive,
    NaiveLast,
    /// Risk-weighted recent counts: each month's count weighted by
    /// 0.5^(age / [`RECENT_HALF_LIFE_MONTHS`]).
    Recent,
    /// A self-exciting point process (Mohler et al. 2015) fitted on the training months.
    Etas,
    /// The expected score of a random choice of the same area.
    Random,
}

impl Method {
    pub const ALL: [Method; 8] = [
        Method::Gistar,
        Method::Kde,
        Method::Prospective,
        Method::Naive,
        Method::NaiveLast,
        Method::Recent,
        Method::Etas,
        Method::Random,
    ];

    /// The methods that rank places (all but `Random`), in the order ties are broken.
    pub const RANKING: [Method; 7] = [
        Method::Naive,
        Method::Recent,
        Method::NaiveLast,
        Method::Gistar,
        Method::Prospective,
        Method::Kde,
        Method::Etas,
    ];

    /// The method of a label.
    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.label() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Method::Gistar => "gistar",
            Method::Kde => "kde",
            Method::Prospective => "prospective",
            Method::Naive => "naive",
            Method::NaiveLast => "naive-last",
            Method::Recent => "recent",
            Method::Etas => "etas",
            Method::Random => "random",
        }
    }
}

/// Why a backtest could not run.
#[derive(Debug, Error)]
pub enum BacktestError {
    #[error("coverage must be above 0 and at most 1, got {0}")]
    Coverage(f64),
    #[error("the training and test windows must be at least one month each")]
    Window,
    #[error("{months} months of data cannot hold {train} training and {test} test months")]
    TooFewMonths {
        months: usize,
        train: usize,
        test: usize,
    },
    #[error("the study area has {0} units; at least 3 are needed")]
    TooFewUnits(usize),
    #[error(
        "every fold's window of {window} months holds a month with no data published ({missing}); see `hotspot coverage`"
    )]
    NoCompleteWindow { window: usize, missing: String },
    #[error(transparent)]
    Kde(#[from] KdeError),
    #[error(transparent)]
    Harm(#[from] super::harm::HarmError),
}

/// Backtest settings.
#[derive(Debug, Clone, Copy)]
pub struct BacktestOptions {
    /// Share of the study area each method may select.
    pub coverage: f64,
    /// Training months per fold.
    pub train: usize,
    /// Test months per fold.
    pub test: usize,
    /// H3 rings in the Gi* neighbourhood.
    pub k: u32,
}

/// The coverages of the PAI curve (shares of the study area): 0.5% and 1% to 10%, the
/// range Chainey et al. (2008) plot and patrol areas fall in.
pub const CURVE: [f64; 11] = [
    0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10,
];

/// One fold's windows and scores.
#[derive(Debug, Clone)]
pub struct Fold {
    pub train: (Month, Month),
    pub test: (Month, Month),
    /// Incidents in the test window.
    pub test_incidents: f64,
    /// The KDE search radius used, metres.
    pub bandwidth_m: f64,
    /// The `etas` fit on the training months: (theta, beta), None with no incidents.
    pub etas: Option<(f64, f64)>,
    /// Per method in [`Method::ALL`] order; None when the fold had no test incidents or
    /// the method selected nothing.
    pub scores: Vec<(Method, Option<Accuracy>)>,
    /// Recapture rate index per method (same order; None when undefined).
    pub rri: Vec<(Method, Option<f64>)>,
    /// Per method (same order), the PAI of its ranking cut at each [`CURVE`] coverage
    /// (None where it selected nothing or the fold had no test incidents; random's is its
    /// expectation, 1).
    pub curve: Vec<(Method, Vec<Option<f64>>)>,
}

/// Mean and sample standard deviation (sd 0 for one value, both NaN for none).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MeanSd {
    pub mean: f64,
    pub sd: f64,
}

impl MeanSd {
    fn of(v: &[f64]) -> Self {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let ss: f64 = v.iter().map(|x| (x - mean).powi(2)).sum();
        let sd = match v.len() {
            0 => f64::NAN,
            1 => 0.0,
            _ => (ss / (n - 1.0)).sqrt(),
        };
        MeanSd { mean, sd }
    }
}

/// A method's scores over the folds it could be scored on.
#[derive(Debug, Clone)]
pub struct Summary {
    pub method: Method,
    pub folds: usize,
    pub hit_rate: MeanSd,
    pub pai: MeanSd,
    pub pei: MeanSd,
    pub area_share: MeanSd,
    /// Recapture rate index over the folds where it is defined.
    pub rri: MeanSd,
    /// The PAI curve: mean and sd over the folds at each [`CURVE`] coverage.
    pub curve: Vec<MeanSd>,
}

/// The whole backtest.
#[derive(Debug, Clone)]
pub struct Backtest {
    pub units: usize,
    pub study_area_km2: f64,
    pub months: Vec<Month>,
    pub folds: Vec<Fold>,
    /// The first training month of each fold skipped because its windows hold a
    /// missing month.
    pub skipped: Vec<Month>,
    pub summary: Vec<Summary>,
}

/// What every fold shares, computed once; the patrol list ranks with it too.
pub(crate) struct Context {
    pub(crate) study: Study,
    pub(crate) inc: UnitIncidents,
    /// Per month, `(unit, incidents)`.
    unit_months: Vec<Vec<(u32, f64)>>,
    gi_weights: Weights,
    /// Per unit, the units within the prospective bandwidth with their distance.
    near: Vec<Vec<(u32, u8)>>,
    /// BNG metres of each unit's centre and each store location.
    unit_xy: Vec<Option<(f64, f64)>>,
    loc_xy: Vec<Option<(f64, f64)>>,
    budget_km2: f64,
}

/// The first units of `ranked` that fit in `budget_km2`, skipping any that overflow.
fn within(ranked: &[usize], area_km2: &[f64], budget_km2: f64) -> Vec<usize> {
    let mut left = budget_km2;
    let mut out = Vec::new();
    for &i in ranked {
        let a = area_km2[i];
        if a <= left {
            left -= a;
            out.push(i);
        }
    }
    out
}

/// Runs the backtest over `units` for `filter`.
///
/// # Errors
/// [`BacktestError`] for bad options, too few months or units, or a failed KDE.
pub fn backtest(
    store: std::sync::Arc<AnalysisStore>,
    units: Units,
    filter: &Filter,
    opts: BacktestOptions,
) -> Result<Backtest, BacktestError> {
    backtest_weighted(store, units, filter, opts, None)
}

/// As [`backtest`], with each incident counted as its category's weight in `harm` when
/// given: every method ranks by harm and every score is of the harm captured (hit rate:
/// the share of the test window's harm in the chosen places; PEI: of the most harm that
/// area could hold).
///
/// # Errors
/// As [`backtest`], and [`BacktestError::Harm`] for a category the weights miss.
pub fn backtest_weighted(
    store: std::sync::Arc<AnalysisStore>,
    units: Units,
    filter: &Filter,
    opts: BacktestOptions,
    harm: Option<&super::harm::HarmWeights>,
) -> Result<Backtest, BacktestError> {
    if !(opts.coverage > 0.0 && opts.coverage <= 1.0) {
        return Err(BacktestError::Coverage(opts.coverage));
    }
    if opts.train == 0 || opts.test == 0 {
        return Err(BacktestError::Window);
    }
    let study = Study::new(store, units, filter);
    if study.len() < 3 {
        return Err(BacktestError::TooFewUnits(study.len()));
    }
    let inc = UnitIncidents::of(&study, filter, harm)?;
    let m = inc.months.len();
    if m < opts.train + opts.test {
        return Err(BacktestError::TooFewMonths {
            months: m,
            train: opts.train,
            test: opts.test,
        });
    }
    let window = opts.train + opts.test;
    let (origins, skipped): (Vec<usize>, Vec<usize>) =
        (0..=m - window).partition(|&f| inc.observed[f..f + window].iter().all(|o| *o));
    if origins.is_empty() {
        let missing: Vec<String> = crate::coverage::missing_of(&inc.months, &inc.observed)
            .iter()
            .map(ToString::to_string)
            .collect();
        return Err(BacktestError::NoCompleteWindow {
            window,
            missing: missing.join(", "),
        });
    }
    let skipped = skipped.into_iter().map(|f| inc.months[f]).collect();
    let ctx = Context::new(study, inc, opts);
    let folds = origins
        .into_par_iter()
        .map(|f| ctx.fold(f, opts))
        .collect::<Result<Vec<Fold>, BacktestError>>()?;
    Ok(Backtest {
        units: ctx.study.len(),
        study_area_km2: ctx.study.area_km2.iter().sum(),
        months: ctx.inc.months.clone(),
        summary: summarise(&folds),
        folds,
        skipped,
    })
}

fn summarise(folds: &[Fold]) -> Vec<Summary> {
    Method::ALL
        .iter()
        .enumerate()
        .map(|(k, &method)| {
            let acc: Vec<Accuracy> = folds.iter().filter_map(|f| f.scores[k].1).collect();
            let col = |g: fn(&Accuracy) -> f64| MeanSd::of(&acc.iter().map(g).collect::<Vec<_>>());
            Summary {
                method,
                folds: acc.len(),
                hit_rate: col(|a| a.hit_rate),
                pai: col(|a| a.pai),
                pei: col(|a| a.pei),
                area_share: col(|a| a.area_share),
                rri: MeanSd::of(
                    &folds
                        .iter()
                        .filter_map(|f| f.rri.get(k).and_then(|r| r.1))
                        .collect::<Vec<_>>(),
                ),
                curve: (0..CURVE.len())
                    .map(|c| {
                        MeanSd::of(
                            &folds
                                .iter()
                                .filter_map(|f| f.curve.get(k).and_then(|m| m.1[c]))
                                .collect::<Vec<_>>(),
                        )
                    })
                    .collect(),
            }
        })
        .collect()
}

impl Context {
    pub(crate) fn new(study: Study, inc: UnitIncidents, opts: BacktestOptions) -> Self {
        let unit_months = inc.unit_months();
        let l = &study.store.locations;
        let loc_xy = (0..l.len())
            .into_par_iter()
            .map(|i| {
                (inc.loc_unit[i] != super::patrol::NO_UNIT)
                    .then(|| wgs84_to_bng(l.lon(i), l.lat(i)).ok())
                    .flatten()
            })
            .collect();
        Context {
            gi_weights: study.weights(opts.k, Contiguity::Queen, true),
            near: neighbourhoods(&study),
            unit_xy: unit_centres(&study),
            budget_km2: opts.coverage * study.area_km2.iter().sum::<f64>(),
            loc_xy,
            unit_months,
            study,
            inc,
        }
    }

    pub(crate) fn counts(&self, range: std::ops::Range<usize>) -> Vec<f64> {
        let mut out = vec![0.0; self.study.len()];
        for &(u, c) in self.unit_months[range].iter().flatten() {
            out[u as usize] += c;
        }
        out
    }

    fn fold(&self, f: usize, o: BacktestOptions) -> Result<Fold, BacktestError> {
        let (train, test) = (f..f + o.train, f + o.train..f + o.train + o.test);
        let months = &self.inc.months;
        let counts = self.counts(train.clone());
        let truth = self.counts(test.clone());
        let area = &self.study.area_km2;
        let (density, bandwidth_m) = self.kde(train.clone())?;
        // The ETAS fit once per fold: its parameters are reported, its forecast ranks.
        let etas_fit = self.etas_fit(train.clone());
        let etas_scores = self.etas_scores(etas_fit.as_ref(), train.clone());
        let total_km2: f64 = area.iter().sum();
        type Scored = (Option<Accuracy>, Option<f64>, Vec<Option<f64>>);
        let score = |m: Method| -> Result<Scored, BacktestError> {
            if m == Method::Random {
                let acc = self.random(&truth);
                let curve = vec![acc.map(|_| 1.0); CURVE.len()];
                return Ok((acc, acc.map(|_| 1.0), curve));
            }
            let scores = match m {
                Method::Etas => &etas_scores,
                _ => &density,
            };
            let ranked = self.ranked_with(m, train.clone(), &counts, &[&counts], scores, true)?;
            let chosen = self.within_budget(&ranked);
            // The same ranking cut at each coverage of the curve.
            let curve = CURVE
                .iter()
                .map(|&c| {
                    let cut = within(&ranked, area, c * total_km2);
                    pai::accuracy(&truth, area, &cut).map(|a| a.pai)
                })
                .collect();
            Ok((
                pai::accuracy(&truth, area, &chosen),
                rri(&counts, &truth, &chosen),
                curve,
            ))
        };
        let mut scores = Vec::with_capacity(Method::ALL.len());
        let mut rris = Vec::with_capacity(Method::ALL.len());
        let mut curves = Vec::with_capacity(Method::ALL.len());
        for m in Method::ALL {
            let (acc, r, c) = score(m)?;
            scores.push((m, acc));
            rris.push((m, r));
            curves.push((m, c));
        }
        Ok(Fold {
            train: (months[train.start], months[train.end - 1]),
            test: (months[test.start], months[test.end - 1]),
            test_incidents: truth.iter().sum(),
            bandwidth_m,
            etas: etas_fit.map(|f| (f.theta, f.beta)),
            scores,
            rri: rris,
            curve: curves,
        })
    }

    /// The units `m` ranks from the months `train`, best first, with the patrol list's
    /// rule: units with a training incident first, then units without one that the method
    /// still scores above 0. Ties by `ties` in turn (descending), then unit order.
    ///
    /// `fdr`: Benjamini-Hochberg control of Gi*'s bins (the backtest always uses it).
    ///
    /// # Errors
    /// A failed KDE.
    pub(crate) fn ranked(
        &self,
        m: Method,
        train: std::ops::Range<usize>,
        ties: &[&[f64]],
        fdr: bool,
    ) -> Result<Vec<usize>, BacktestError> {
        let counts = self.counts(train.clone());
        let scores = match m {
            Method::Kde => self.kde(train.clone())?.0,
            Method::Etas => {
                let fit = self.etas_fit(train.clone());
                self.etas_scores(fit.as_ref(), train.clone())
            }
            _ => Vec::new(),
        };
        self.ranked_with(m, train, &counts, ties, &scores, fdr)
    }

    /// [`Context::ranked`] with the window's counts given, and for `kde` and `etas` their
    /// scores (computed once per fold by the backtest, which reports their parameters).
    fn ranked_with(
        &self,
        m: Method,
        train: std::ops::Range<usize>,
        counts: &[f64],
        ties: &[&[f64]],
        precomputed: &[f64],
        fdr: bool,
    ) -> Result<Vec<usize>, BacktestError> {
        let n = self.study.len();
        // (tier, score): higher first; a unit with tier 0 and score <= 0 is not ranked.
        let key: Vec<(u8, f64)> = match m {
            Method::Gistar => {
                let gi = gi_star(counts, &self.gi_weights, fdr);
                (0..n)
                    .map(|i| match gi.bin[i] > 0 {
                        true => (1, gi.z[i]),
                        false => (0, counts[i]),
                    })
                    .collect()
            }
            Method::Kde | Method::Etas => precomputed.iter().map(|&d| (0, d)).collect(),
            Method::Prospective => prospective(&self.unit_months, &self.near, train)
                .into_iter()
                .map(|s| (0, s))
                .collect(),
            Method::Naive => counts.iter().map(|&c| (0, c)).collect(),
            Method::NaiveLast => {
                let end = train.end;
                let last = self.counts(end.saturating_sub(1)..end);
                last.into_iter().map(|c| (0, c)).collect()
            }
            Method::Recent => recent(&self.unit_months, n, train)
                .into_iter()
                .map(|s| (0, s))
                .collect(),
            Method::Random => vec![(0, 0.0); n],
        };
        Ok(rank_by(&key, counts, ties))
    }

    /// The first units of `ranked` that fit in the area budget, skipping any that overflow.
    fn within_budget(&self, ranked: &[usize]) -> Vec<usize> {
        within(ranked, &self.study.area_km2, self.budget_km2)
    }

    /// The expected accuracy of a random choice of area `budget`.
    fn random(&self, truth: &[f64]) -> Option<Accuracy> {
        let total: f64 = truth.iter().sum();
        let area = self.study.area_km2.iter().sum::<f64>();
        let share = self.budget_km2 / area;
        let best = pai::best_capture(truth, &self.study.area_km2, self.budget_km2);
        (total > 0.0 && best > 0.0 && share > 0.0).then(|| Accuracy {
            hit_rate: share,
            pai: 1.0,
            pei: (total * share / best).min(1.0),
            area_share: share,
        })
    }

    /// The `etas` model fitted on the months `train` (None without incidents).
    fn etas_fit(&self, train: std::ops::Range<usize>) -> Option<etas::EtasFit> {
        etas::fit(
            &self.unit_months[train.clone()],
            &self.inc.observed[train],
            self.study.len(),
        )
    }

    /// Each unit's `etas` forecast for the month after `train` (zeros without a fit).
    fn etas_scores(&self, fit: Option<&etas::EtasFit>, train: std::ops::Range<usize>) -> Vec<f64> {
        fit.map_or_else(
            || vec![0.0; self.study.len()],
            |f| etas::forecast(f, &self.unit_months[train]),
        )
    }

    /// Kernel density at each unit centre from the training incidents, with the radius.
    fn kde(&self, train: std::ops::Range<usize>) -> Result<(Vec<f64>, f64), KdeError> {
        let mut w: FxHashMap<u32, f64> = FxHashMap::default();
        for &(l, c) in self.inc.by_month[train].iter().flatten() {
            *w.entry(l).or_default() += c;
        }
        let mut points: Vec<WeightedPoint> = w
            .into_iter()
            .filter_map(|(l, w)| self.loc_xy[l as usize].map(|(x, y)| WeightedPoint { x, y, w }))
            .collect();
        // Hash order is arbitrary; the bandwidth's sums should not depend on it.
        points.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
        let r = kde::default_bandwidth(&points).unwrap_or(KDE_FALLBACK_M);
        let surface = KernelDensity::new(points, r)?;
        let values = self
            .unit_xy
            .iter()
            .map(|xy| xy.map_or(0.0, |(x, y)| surface.density_at(x, y)))
            .collect();
        Ok((values, r))
    }
}

/// Bowers, Johnson and Pease's prospective score of every unit from the incidents of the
/// months `train` (`unit_months[t]`: `(unit, incidents)`), spread over `near[j]`: the
/// units within the bandwidth of unit j with their distance in cells.
pub fn prospective(
    unit_months: &[Vec<(u32, f64)>],
    near: &[Vec<(u32, u8)>],
    train: std::ops::Range<usize>,
) -> Vec<f64> {
    let mut score = vec![0.0; near.len()];
    let Some(last) = train.end.checked_sub(1) else {
        return score;
    };
    for t in train {
        // Age at the end of the last month, from the middle of month t.
        let age_weeks = ((last - t) as f64 + 0.5) * WEEKS_PER_MONTH;
        for &(j, c) in unit_months.get(t).map_or(&[][..], Vec::as_slice) {
            for &(i, d) in near.get(j as usize).map_or(&[][..], Vec::as_slice) {
                score[i as usize] += c / ((1.0 + f64::from(d)) * (1.0 + age_weeks));
            }
        }
    }
    score
}

/// Levine's (2008) recapture rate index of the units `chosen`: the ratio of their test
/// to their training incidents over the same ratio for the whole study, (n_test /
/// n_train) / (N_test / N_train); above 1, the places kept more of their incidents than
/// the area as a whole. None when the chosen units or the study had no training
/// incidents, or the study none in the test window.
pub fn rri(train: &[f64], test: &[f64], chosen: &[usize]) -> Option<f64> {
    let sum = |v: &[f64]| chosen.iter().filter_map(|&i| v.get(i)).sum::<f64>();
    let (n_train, n_test) = (sum(train), sum(test));
    let (all_train, all_test) = (train.iter().sum::<f64>(), test.iter().sum::<f64>());
    (n_train > 0.0 && all_train > 0.0 && all_test > 0.0)
        .then(|| (n_test / n_train) / (all_test / all_train))
}

/// Risk-weighted recent counts of every unit from the months `train`: each month's
/// incidents weighted by 0.5^(age / [`RECENT_HALF_LIFE_MONTHS`]), age in months before
/// the last month of `train`.
pub fn recent(
    unit_months: &[Vec<(u32, f64)>],
    units: usize,
    train: std::ops::Range<usize>,
) -> Vec<f64> {
    let mut score = vec![0.0; units];
    let Some(last) = train.end.checked_sub(1) else {
        return score;
    };
    for t in train {
        let w = 0.5f64.powf((last - t) as f64 / RECENT_HALF_LIFE_MONTHS);
        for &(j, c) in unit_months.get(t).map_or(&[][..], Vec::as_slice) {
            if let Some(s) = score.get_mut(j as usize) {
                *s += w * c;
            }
        }
    }
    score
}

/// Units by `key` (tier, then score, both descending) with those holding incidents
/// (`counts > 0`) first; a unit is ranked when it holds incidents, is in a tier above 0
/// or scores above 0. Ties by each of `ties` in turn (descending), then index.
pub fn rank_by(key: &[(u8, f64)], counts: &[f64], ties: &[&[f64]]) -> Vec<usize> {
    let n = key.len().min(counts.len());
    let has = |i: usize| counts[i] > 0.0;
    let mut v: Vec<usize> = (0..n)
        .filter(|&i| has(i) || key[i].0 > 0 || key[i].1 > 0.0)
        .collect();
    v.sort_by(|&a, &b| {
        has(b)
            .cmp(&has(a))
            .then(key[b].0.cmp(&key[a].0))
            .then(key[b].1.total_cmp(&key[a].1))
            .then_with(|| {
                ties.iter()
                    .map(|t| {
                        let g = |i: usize| t.get(i).copied().unwrap_or(0.0);
                        g(b).total_cmp(&g(a))
                    })
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .then(a.cmp(&b))
    });
    v
}

/// Units within the prospective bandwidth of each unit, with their distance.
fn neighbourhoods(study: &Study) -> Vec<Vec<(u32, u8)>> {
    match study.units {
        Units::H3(_) => study
            .cells
            .par_iter()
            .map(|c| {
                c.grid_disk_distances::<Vec<_>>(PROSPECTIVE_BANDWIDTH_CELLS)
                    .into_iter()
                    .filter_map(|(n, d)| {
                        let i = study.cells.binary_search(&n).ok()?;
                        Some((i as u32, u8::try_from(d).ok()?))
                    })
                    .collect()
            })
            .collect(),
        Units::Lsoa(_) => {
            let w = study.weights(1, Contiguity::Queen, false);
            (0..study.len())
                .map(|i| {
                    let nbrs = w.row(i).iter().map(|&j| (j, 1));
                    std::iter::once((i as u32, 0)).chain(nbrs).collect()
                })
                .collect()
        }
    }
}

/// BNG metres of each unit's centre (H3 cell centre or LSOA centroid).
fn unit_centres(study: &Study) -> Vec<Option<(f64, f64)>> {
    let lonlat: Vec<Option<(f64, f64)>> = match study.units {
        Units::H3(_) => study
            .cells
            .iter()
            .map(|c| {
                let ll = h3o::LatLng::from(*c);
                Some((ll.lng(), ll.lat()))
            })
            .collect(),
        Units::Lsoa(v) => study
            .lsoas
            .iter()
            .map(|&i| {
                let poly = &study.store.geography.lsoa_set(v).polygons[i as usize];
                poly.centroid().map(|p| (p.x(), p.y()))
            })
            .collect(),
    };
    lonlat
        .into_par_iter()
        .map(|p| p.and_then(|(lon, lat)| wgs84_to_bng(lon, lat).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_with_incidents_come_first_then_ties_by_the_tie_breakers() {
        let key = [(0, 1.0), (0, 0.0), (0, 2.0), (0, 1.0), (1, 0.5), (0, 0.0)];
        let counts = [1.0, 9.0, 0.0, 3.0, 0.0, 0.0];
        let recent = [5.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        // With incidents: 0 and 3 (score 1, recent breaks the tie), 1 (score 0); then
        // without: 4 (tier 1), 2 (score 2); 5 has nothing and is not ranked.
        assert_eq!(rank_by(&key, &counts, &[&recent]), vec![0, 3, 1, 4, 2]);
        assert_eq!(rank_by(&key, &counts, &[&counts]), vec![3, 0, 1, 4, 2]);
    }

    #[test]
    fn rri_by_hand() {
        let train = [10.0, 0.0, 30.0, 60.0];
        let test = [8.0, 2.0, 6.0, 4.0];
        // Chosen 0 and 2: 14 of 40 training -> (14/40) / (20/100) = 1.75.
        assert!((rri(&train, &test, &[0, 2]).unwrap() - 1.75).abs() < 1e-12);
        assert_eq!(rri(&train, &test, &[1]), None);
        assert_eq!(rri(&train, &[0.0; 4], &[0]), None);
    }

    #[test]
    fn recent_weights_halve_every_three_months() {
        let months = vec![vec![(0, 8.0)], vec![], vec![], vec![(0, 1.0), (1, 2.0)]];
        let s = recent(&months, 2, 0..4);
        assert!((s[0] - (4.0 + 1.0)).abs() < 1e-12, "{s:?}");
        assert!((s[1] - 2.0).abs() < 1e-12);
        assert_eq!(recent(&months, 2, 0..0), vec![0.0, 0.0]);
    }

    #[test]
    fn mean_and_sample_sd() {
        let m = MeanSd::of(&[1.0, 2.0, 3.0]);
        assert!((m.mean - 2.0).abs() < 1e-12 && (m.sd - 1.0).abs() < 1e-12);
        assert_eq!(MeanSd::of(&[4.0]), MeanSd { mean: 4.0, sd: 0.0 });
        assert!(MeanSd::of(&[]).mean.is_nan());
    }

    #[test]
    fn method_labels_are_distinct() {
        let mut l: Vec<&str> = Method::ALL.iter().map(|m| m.label()).collect();
        l.dedup();
        assert_eq!(l.len(), Method::ALL.len());
    }
}
