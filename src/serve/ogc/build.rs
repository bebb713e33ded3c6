//! The features of a collection under a filter, computed from the store: one row per
//! feature with its id, its geometry (referenced, drawn only for the page sent) and a
//! column per property.

use std::borrow::Cow;
use std::sync::Arc;

use h3o::CellIndex;

use super::catalog::{CollectionId, EMERGING_RES, HOTSPOT_RES, PATROL_TOP};
use crate::analysis::aggregate::aggregate;
use crate::analysis::{AnalysisStore, Filter, Query, TimeBin, Unit, UnitKey};
use crate::model::{CrimeType, Month, Severity};
use crate::serve::AppError;
use crate::serve::disclosure::basis::Basis;
use crate::spatial::boundaries::area_m2;
use crate::spatial::geography::NO_DISTRICT;
use crate::stats::emerging::{self, Category};
use crate::stats::gi_star::gi_star;
use crate::stats::patrol::{PatrolError, PatrolOptions, Place, patrol};
use crate::stats::study::{Contiguity, Study, Units};

/// Where a feature's geometry comes from.
#[derive(Debug, Clone, Copy)]
pub enum Geom {
    Cell(CellIndex),
    Lsoa(u32),
    District(u32),
    /// Longitude and latitude in 1e-7 degrees.
    Point(i32, i32),
}

/// A feature id: a number (incidents) or a code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FeatureId {
    Num(u64),
    Text(String),
}

impl FeatureId {
    pub fn as_text(&self) -> Cow<'_, str> {
        match self {
            FeatureId::Num(n) => Cow::Owned(n.to_string()),
            FeatureId::Text(s) => Cow::Borrowed(s),
        }
    }
}

/// How a number column is written.
#[derive(Debug, Clone, Copy)]
pub enum Style {
    /// At most this many decimals.
    Fixed(usize),
    /// Six significant digits (p-values).
    Significant,
}

/// One property over every row.
#[derive(Debug, Clone)]
pub enum Column {
    Int(Vec<i64>),
    /// None is written as null (a withheld count).
    OptInt(Vec<Option<i64>>),
    Num(Vec<f64>, Style),
    Bool(Vec<bool>),
    /// None is written as null.
    Text(Vec<Option<Cow<'static, str>>>),
    Month(Vec<u16>),
}

impl Column {
    /// The given rows, in that order.
    pub fn take(&self, rows: &[usize]) -> Column {
        fn pick<T: Clone>(v: &[T], rows: &[usize]) -> Vec<T> {
            rows.iter().map(|&i| v[i].clone()).collect()
        }
        match self {
            Column::Int(v) => Column::Int(pick(v, rows)),
            Column::OptInt(v) => Column::OptInt(pick(v, rows)),
            Column::Num(v, s) => Column::Num(pick(v, rows), *s),
            Column::Bool(v) => Column::Bool(pick(v, rows)),
            Column::Text(v) => Column::Text(pick(v, rows)),
            Column::Month(v) => Column::Month(pick(v, rows)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Column::Int(v) => v.len(),
            Column::OptInt(v) => v.len(),
            Column::Num(v, _) => v.len(),
            Column::Bool(v) => v.len(),
            Column::Text(v) => v.len(),
            Column::Month(v) => v.len(),
        }
    }
}

/// A computed collection.
#[derive(Debug, Clone, Default)]
pub struct Items {
    pub ids: Vec<FeatureId>,
    pub geoms: Vec<Geom>,
    /// Property names and columns, in output order.
    pub columns: Vec<(&'static str, Column)>,
    /// The key sum of each row's records (cell-key perturbation, `disclose`); empty for
    /// collections without counts. Never encoded.
    pub keys: Vec<u32>,
}

impl Items {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether a row is withheld (its `suppressed` column; false without one).
    pub fn suppressed(&self, row: usize) -> bool {
        self.columns.iter().any(|(n, c)| {
            *n == "suppressed"
                && matches!(c, Column::Bool(v) if v.get(row).copied().unwrap_or(false))
        })
    }

    /// Row of a feature id.
    pub fn find(&self, fid: &str) -> Option<usize> {
        // Only the canonical spelling of a number ("7", not "007" or "+7").
        let num = fid.parse::<u64>().ok().filter(|n| n.to_string() == fid);
        self.ids.iter().position(|id| match id {
            FeatureId::Num(n) => num == Some(*n),
            FeatureId::Text(s) => s == fid,
        })
    }

    fn check(self) -> Result<Self, AppError> {
        let n = self.ids.len();
        if self.geoms.len() != n
            || self.columns.iter().any(|(_, c)| c.len() != n)
            || !(self.keys.is_empty() || self.keys.len() == n)
        {
            return Err(AppError::Internal(
                "collection columns differ in length".into(),
            ));
        }
        Ok(self)
    }
}

/// The features of collection `id` under `filter`, with their statistics (Gi*, emerging
/// categories, trends) computed on `basis`: exact for analysts, the published perturbed
/// counts and cell-months below (`disclosure::basis`). The `count` column is always the
/// exact count (`disclose` perturbs it from the row's keys).
///
/// # Errors
/// Internal errors only (an inconsistent analysis).
pub fn build(
    id: CollectionId,
    store: Arc<AnalysisStore>,
    filter: &Filter,
    basis: &Basis,
) -> Result<Items, AppError> {
    let items = match id {
        CollectionId::Districts => districts(&store, filter),
        CollectionId::Lsoas => lsoas(store, filter),
        CollectionId::H3(res) => cells(store, res, filter, false, basis),
        CollectionId::Hotspots => cells(store, HOTSPOT_RES, filter, true, basis),
        CollectionId::Emerging => emerging_cells(store, filter, basis)?,
        CollectionId::Patrol => patrol_places(store, filter, basis)?,
        CollectionId::Incidents => incidents(&store, filter),
    };
    items.check()
}

fn text<S: Into<Cow<'static, str>>>(v: impl IntoIterator<Item = S>) -> Column {
    Column::Text(v.into_iter().map(|s| Some(s.into())).collect())
}

fn ints(v: &[f64]) -> Column {
    Column::Int(v.iter().map(|c| *c as i64).collect())
}

fn districts(store: &AnalysisStore, filter: &Filter) -> Items {
    let g = &store.geography;
    let q = Query {
        unit: Unit::District,
        time: TimeBin::All,
        by_type: false,
        filter: filter.clone(),
    };
    let mut counts = vec![0.0; g.districts.len()];
    let mut keys = vec![0u32; g.districts.len()];
    for c in aggregate(store, &q).counts {
        if let UnitKey::Index(i) = c.unit
            && let Some(v) = counts.get_mut(i as usize)
        {
            *v += c.count as f64;
            keys[i as usize] = keys[i as usize].wrapping_add(c.key_sum);
        }
    }
    let rows: Vec<usize> = (0..g.districts.len())
        .filter(|&i| {
            filter
                .districts
                .as_ref()
                .is_none_or(|ds| ds.iter().any(|&d| usize::from(d) == i))
        })
        .collect();
    let count: Vec<f64> = rows.iter().map(|&i| counts[i]).collect();
    let area: Vec<f64> = rows
        .iter()
        .map(|&i| area_m2(&g.districts.polygons[i]) / 1e6)
        .collect();
    Items {
        ids: rows
            .iter()
            .map(|&i| FeatureId::Text(g.districts.codes[i].clone()))
            .collect(),
        geoms: rows.iter().map(|&i| Geom::District(i as u32)).collect(),
        columns: vec![
            (
                "code",
                text(rows.iter().map(|&i| g.districts.codes[i].clone())),
            ),
            (
                "name",
                text(rows.iter().map(|&i| g.districts.names[i].clone())),
            ),
            ("count", ints(&count)),
            (
                "per_km2",
                Column::Num(per_km2(&count, &area), Style::Fixed(4)),
            ),
        ],
        keys: rows.iter().map(|&i| keys[i]).collect(),
    }
}

fn per_km2(count: &[f64], area: &[f64]) -> Vec<f64> {
    count
        .iter()
        .zip(area)
        .map(|(c, a)| if *a > 0.0 { c / a } else { 0.0 })
        .collect()
}

fn lsoas(store: Arc<AnalysisStore>, filter: &Filter) -> Items {
    let study = Study::new(
        store,
        Units::Lsoa(crate::spatial::geography::Vintage::V2011),
        filter,
    );
    let g = &study.store.geography;
    let district_name = |i: u32| {
        let d = g.lsoa_district[i as usize];
        g.districts
            .names
            .get(usize::from(d))
            .cloned()
            .unwrap_or_default()
    };
    Items {
        ids: study.codes.iter().cloned().map(FeatureId::Text).collect(),
        geoms: study.lsoas.iter().map(|&i| Geom::Lsoa(i)).collect(),
        columns: vec![
            ("code", text(study.codes.clone())),
            (
                "name",
                text(
                    study
                        .lsoas
                        .iter()
                        .map(|&i| g.lsoas.names[i as usize].clone()),
                ),
            ),
            (
                "district",
                text(study.lsoas.iter().map(|&i| district_name(i))),
            ),
            ("count", ints(&study.counts)),
            ("per_km2", Column::Num(study.density(), Style::Fixed(4))),
        ],
        keys: study.keys.clone(),
    }
}

/// The study grid with Gi* (k = 1, FDR) of the counts on `basis`; only the hot cells when
/// `hot_only`.
fn cells(
    store: Arc<AnalysisStore>,
    res: h3o::Resolution,
    filter: &Filter,
    hot_only: bool,
    basis: &Basis,
) -> Items {
    let study = Study::new(store, Units::H3(res), filter);
    let w = study.weights(1, Contiguity::Queen, true);
    let gi = gi_star(&basis.study(&study), &w, true);
    let rows: Vec<usize> = (0..study.len())
        .filter(|&i| !hot_only || gi.bin[i] > 0)
        .collect();
    let density = study.density();
    let pick = |v: &[f64]| rows.iter().map(|&i| v[i]).collect::<Vec<f64>>();
    Items {
        ids: rows
            .iter()
            .map(|&i| FeatureId::Text(study.codes[i].clone()))
            .collect(),
        geoms: rows.iter().map(|&i| Geom::Cell(study.cells[i])).collect(),
        columns: vec![
            ("cell", text(rows.iter().map(|&i| study.codes[i].clone()))),
            ("count", ints(&pick(&study.counts))),
            ("per_km2", Column::Num(pick(&density), Style::Fixed(4))),
            ("gi_z", Column::Num(pick(&gi.z), Style::Fixed(6))),
            ("gi_p", Column::Num(pick(&gi.p), Style::Significant)),
            (
                "gi_bin",
                Column::Int(rows.iter().map(|&i| i64::from(gi.bin[i])).collect()),
            ),
        ],
        keys: rows.iter().map(|&i| study.keys[i]).collect(),
    }
}

/// Emerging hot spot analysis (k = 1, Esri's default window, FDR) of a study's monthly
/// cube on `basis`; None with under three observed months or units.
fn emerging_on(
    study: &Study,
    w: &crate::stats::Weights,
    filter: &Filter,
    basis: &Basis,
) -> Result<Option<emerging::Emerging>, AppError> {
    let monthly = study.monthly(filter);
    if monthly.observed_len() < 3 || study.len() < 3 {
        return Ok(None);
    }
    emerging::emerging_hot_spots_observed(
        &basis.monthly(&monthly),
        &monthly.observed,
        w,
        emerging::ESRI_DEFAULT_WINDOW,
        true,
        emerging::DEFAULT_TREND_ALPHA,
    )
    .map(Some)
    .map_err(|e| AppError::Internal(format!("emerging hot spots: {e}")))
}

/// Emerging hot spot categories at resolution 8 (cells with a pattern only), of the
/// monthly cube on `basis`.
fn emerging_cells(
    store: Arc<AnalysisStore>,
    filter: &Filter,
    basis: &Basis,
) -> Result<Items, AppError> {
    let study = Study::new(store, Units::H3(EMERGING_RES), filter);
    let w = study.weights(1, Contiguity::Queen, true);
    let Some(e) = emerging_on(&study, &w, filter, basis)? else {
        return Ok(empty_emerging());
    };
    let rows: Vec<usize> = (0..study.len())
        .filter(|&i| e.category[i] != Category::NoPattern)
        .collect();
    Ok(Items {
        ids: rows
            .iter()
            .map(|&i| FeatureId::Text(study.codes[i].clone()))
            .collect(),
        geoms: rows.iter().map(|&i| Geom::Cell(study.cells[i])).collect(),
        columns: emerging_columns(
            rows.iter().map(|&i| study.codes[i].clone()).collect(),
            rows.iter().map(|&i| study.counts[i]).collect(),
            rows.iter().map(|&i| e.category[i]).collect(),
            rows.iter().map(|&i| (e.trend[i].z, e.trend[i].p)).collect(),
        ),
        keys: rows.iter().map(|&i| study.keys[i]).collect(),
    })
}

fn empty_emerging() -> Items {
    Items {
        columns: emerging_columns(vec![], vec![], vec![], vec![]),
        ..Items::default()
    }
}

fn emerging_columns(
    codes: Vec<String>,
    counts: Vec<f64>,
    category: Vec<Category>,
    trend: Vec<(f64, f64)>,
) -> Vec<(&'static str, Column)> {
    vec![
        ("cell", text(codes)),
        ("count", ints(&counts)),
        ("category", text(category.iter().map(|c| c.label()))),
        (
            "category_code",
            Column::Int(category.iter().map(|c| i64::from(c.code())).collect()),
        ),
        (
            "trend_z",
            Column::Num(trend.iter().map(|t| t.0).collect(), Style::Fixed(6)),
        ),
        (
            "trend_p",
            Column::Num(trend.iter().map(|t| t.1).collect(), Style::Significant),
        ),
    ]
}

/// How the `patrol` collection makes its list (at [`HOTSPOT_RES`]); the server warms
/// the default list with the same at start-up.
pub(crate) const PATROL_OPTIONS: PatrolOptions = PatrolOptions {
    top: PATROL_TOP,
    k: 1,
    fdr: true,
    method: None,
};

/// The patrol list at resolution 9, in rank order; its Gi* bin, `significant` and trend
/// of the counts on `basis`.
///
/// The order itself is of the exact counts on every basis (the ranking methods run on
/// locations and months, below any published count); only ranks are published below
/// analyst, not the scores or cumulative shares behind them.
fn patrol_places(
    store: Arc<AnalysisStore>,
    filter: &Filter,
    basis: &Basis,
) -> Result<Items, AppError> {
    let opts = PATROL_OPTIONS;
    let mut list = match patrol(store, Units::H3(HOTSPOT_RES), filter, opts) {
        Ok(l) => l,
        Err(PatrolError::TooFewUnits(_)) => return Ok(Items::default()),
        Err(e) => return Err(AppError::Internal(format!("patrol list: {e}"))),
    };
    if basis.is_perturbed() {
        // The published statistics of each place: Gi* and the trend of the perturbed
        // counts, as the `h3-9` grid and the map publish them.
        let study = &list.study;
        let w = study.weights(opts.k, Contiguity::Queen, true);
        let gi = gi_star(&basis.study(study), &w, opts.fdr);
        let trend = emerging_on(study, &w, filter, basis)?.map(|e| e.category);
        for place in &mut list.places {
            let u = place.unit;
            place.z = gi.z[u];
            place.p = gi.p[u];
            place.bin = gi.bin[u];
            place.significant = gi.bin[u] > 0;
            place.trend = trend.as_ref().and_then(|t| t.get(u).copied());
        }
    }
    let p = &list.places;
    let cell = |u: usize| list.study.cells.get(u).copied();
    let mut geoms = Vec::with_capacity(p.len());
    for place in p {
        let c = cell(place.unit)
            .ok_or_else(|| AppError::Internal("patrol place outside its study".into()))?;
        geoms.push(Geom::Cell(c));
    }
    Ok(Items {
        ids: p.iter().map(|x| FeatureId::Text(x.code.clone())).collect(),
        geoms,
        columns: patrol_columns(p, list.choice.method.label()),
        keys: p
            .iter()
            .map(|x| list.study.keys.get(x.unit).copied().unwrap_or(0))
            .collect(),
    })
}

fn patrol_columns(p: &[Place], ranking: &'static str) -> Vec<(&'static str, Column)> {
    let col = |f: fn(&Place) -> f64| p.iter().map(f).collect::<Vec<f64>>();
    let txt = |f: fn(&Place) -> &String| text(p.iter().map(|x| f(x).clone()));
    vec![
        (
            "rank",
            Column::Int(p.iter().map(|x| x.rank as i64).collect()),
        ),
        ("cell", txt(|x| &x.code)),
        ("count", ints(&col(|x| x.count))),
        ("gi_z", Column::Num(col(|x| x.z), Style::Fixed(6))),
        ("gi_p", Column::Num(col(|x| x.p), Style::Significant)),
        (
            "gi_bin",
            Column::Int(p.iter().map(|x| i64::from(x.bin)).collect()),
        ),
        (
            "significant",
            Column::Bool(p.iter().map(|x| x.significant).collect()),
        ),
        (
            "trend",
            Column::Text(
                p.iter()
                    .map(|x| x.trend.map(|c| c.label().into()))
                    .collect(),
            ),
        ),
        ("district", txt(|x| &x.district)),
        ("lsoa_code", txt(|x| &x.lsoa_code)),
        ("lsoa_name", txt(|x| &x.lsoa_name)),
        ("location", txt(|x| &x.location)),
        ("share", Column::Num(col(|x| x.share), Style::Fixed(6))),
        (
            "pai",
            Column::Num(col(|x| x.pai.unwrap_or(f64::NAN)), Style::Fixed(4)),
        ),
        // The method that ranked the list (`stats::patrol`: the one that backtests best).
        ("ranking", text(p.iter().map(|_| ranking))),
    ]
}

/// Located incidents under the filter, in store order (id = index in the store).
fn incidents(store: &AnalysisStore, filter: &Filter) -> Items {
    let inc = &store.incidents;
    let loc = &store.locations;
    let lo = filter.from.map_or(0, Month::index);
    let hi = filter.to.map_or(u16::MAX, Month::index);
    let keep = |i: usize| {
        let l = inc.loc[i] as usize;
        let m = inc.month[i];
        filter.keeps(inc.ctype[i], inc.severity[i])
            && (lo..=hi).contains(&m)
            && l < loc.len()
            && filter.districts.as_ref().is_none_or(|ds| {
                let d = loc.district[l];
                d != NO_DISTRICT && ds.contains(&d)
            })
    };
    let rows: Vec<usize> = (0..inc.len()).filter(|&i| keep(i)).collect();
    let severity = |i: usize| {
        let s = Severity::from_code(inc.severity[i]);
        (CrimeType::from_code(inc.ctype[i]) == Some(CrimeType::RoadCollision)
            && s != Severity::None)
            .then(|| Cow::Borrowed(s.label()))
    };
    Items {
        ids: rows.iter().map(|&i| FeatureId::Num(i as u64)).collect(),
        geoms: rows
            .iter()
            .map(|&i| {
                let l = inc.loc[i] as usize;
                Geom::Point(loc.lon_e7[l], loc.lat_e7[l])
            })
            .collect(),
        columns: vec![
            (
                "month",
                Column::Month(rows.iter().map(|&i| inc.month[i]).collect()),
            ),
            (
                "type",
                Column::Text(
                    rows.iter()
                        .map(|&i| CrimeType::from_code(inc.ctype[i]).map(|t| t.label().into()))
                        .collect(),
                ),
            ),
            (
                "severity",
                Column::Text(rows.iter().map(|&i| severity(i)).collect()),
            ),
        ],
        keys: vec![],
    }
}
