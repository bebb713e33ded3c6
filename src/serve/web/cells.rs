//! `/map/api/cells`: the H3 cells of one filter at a chosen resolution as GeoJSON, with
//! the statistic the analyst picked (`method`), so the map can switch resolution and
//! method without waiting for a tile pyramid. The vector tiles (`/tiles/cells`) tie the
//! resolution to the zoom and carry Gi* only; this is the analyst's explicit choice.
//!
//! Every feature has `cell`, `count`, `per_km2`, `value` and `bin`, `p` where the method
//! has one, and `category` (emerging hot spot pattern) at resolutions 7 to 9:
//! - `counts`: `value` = count, `bin` 0, no `p`.
//! - `gistar`: Getis-Ord Gi* (k = 1 ring, binary weights with self); `value` = z,
//!   `bin` -3..3 (99/95/90 % cold/hot), Benjamini-Hochberg FDR when `fdr=true`.
//! - `moran`: local Moran's I (999 conditional permutations, seed 1, alpha 0.05, FDR when
//!   asked); `value` = I, `bin` 2 high-high, 1 high-low, -1 low-high, -2 low-low, 0 not
//!   significant (and 0 for an empty cell whose neighbours are all empty: see `compute`).
//!
//! With harm weights (`measure=harm`, analysts only: `serve --harm FILE`) each incident
//! counts as its category's weight: every feature gains `harm`, `counts`' value is the
//! harm, Gi*, local Moran and the emerging categories are of harm; `count` stays the
//! incidents.
//!
//! Only cells with incidents, a significant bin or an emerging pattern are kept, as in
//! the tiles. Results are cached per store, generation and query (`CAPACITY`).

use std::fmt::Write as _;
use std::sync::Arc;

use h3o::{CellIndex, Resolution};

use crate::analysis::{AnalysisStore, Filter};
use crate::lru::Lru;
use crate::serve::disclosure::basis::Basis;
use crate::stats::emerging::{self, Category};
use crate::stats::gi_star::gi_star;
use crate::stats::harm::HarmWeights;
use crate::stats::local_moran::{Quadrant, local_moran};
use crate::stats::patrol::UnitIncidents;
use crate::stats::study::{Contiguity, Study, Units};

/// Cached results (each a few MB of GeoJSON at most).
const CAPACITY: usize = 24;

/// Permutations for local Moran's p-values.
const PERMUTATIONS: usize = 999;

/// The statistic coloured on the cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Counts,
    GiStar,
    Moran,
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "counts" => Ok(Method::Counts),
            "gistar" => Ok(Method::GiStar),
            "moran" => Ok(Method::Moran),
            _ => Err(format!("'{s}' is not one of counts, gistar, moran")),
        }
    }
}

/// What one request asks for, besides the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellQuery {
    pub res: Resolution,
    pub method: Method,
    pub fdr: bool,
    /// Disclosure control below analyst (`serve::disclosure`): counts from 1 to k - 1
    /// withheld, with secondary suppression within parent cells and the whole grid; a
    /// withheld cell has `count`, `per_km2`, `value` and `p` null and `suppressed: true`,
    /// and every cell's statistic is published as its bin only (`value` and `p` null:
    /// exact z or I could be solved back to a withheld count). Counts are then published
    /// perturbed (`disclosure::ckp`, the table of `ckp_seed`), and suppressed on that.
    pub withhold_below: Option<u64>,
    pub ckp_seed: u64,
}

/// Resolutions offered (6: a town per cell; 10: a street block).
pub const RESOLUTIONS: std::ops::RangeInclusive<u8> = 6..=10;

/// Parses `res` (6 to 10, default 8).
///
/// # Errors
/// A message naming the accepted values.
pub fn parse_res(v: Option<&String>) -> Result<Resolution, String> {
    let Some(v) = v else {
        return Ok(Resolution::Eight);
    };
    v.parse::<u8>()
        .ok()
        .filter(|r| RESOLUTIONS.contains(r))
        .and_then(|r| Resolution::try_from(r).ok())
        .ok_or_else(|| format!("'{v}' is not an H3 resolution from 6 to 10"))
}

/// Parses a boolean flag (`true`/`false`, `1`/`0`).
///
/// # Errors
/// A message naming the accepted values.
pub fn parse_flag(v: Option<&String>, default: bool) -> Result<bool, String> {
    match v.map(String::as_str) {
        None => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(o) => Err(format!("'{o}' is not true or false")),
    }
}

/// (generation, filter and harm weights, resolution, method, FDR, k, seed).
type Key = (u64, String, Resolution, Method, bool, Option<u64>, u64);
static CACHE: Lru<AnalysisStore, Key, Result<String, String>> = Lru::new(CAPACITY);

/// The GeoJSON FeatureCollection for `q` under `filter` (cached), by harm when `harm`
/// is given (exact answers only: the caller refuses it below analyst).
///
/// # Errors
/// The weights' message when they miss a category the filter has incidents of.
pub fn geojson(
    store: &Arc<AnalysisStore>,
    generation: u64,
    filter: &Filter,
    q: CellQuery,
    harm: Option<&HarmWeights>,
) -> Arc<Result<String, String>> {
    let key = (
        generation,
        format!(
            "{}|{}",
            filter.key(),
            harm.map_or_else(String::new, HarmWeights::key)
        ),
        q.res,
        q.method,
        q.fdr,
        q.withhold_below,
        q.ckp_seed,
    );
    CACHE.get(store, key, || compute(store.clone(), filter, q, harm))
}

/// One cell's statistic.
struct Stat {
    value: f64,
    p: Option<f64>,
    bin: i8,
}

fn compute(
    store: Arc<AnalysisStore>,
    filter: &Filter,
    q: CellQuery,
    harm: Option<&HarmWeights>,
) -> Result<String, String> {
    let study = Study::new(store, Units::H3(q.res), filter);
    // With weights: each cell's harm, and its months' (never below analyst).
    let harm = match harm {
        Some(h) if q.withhold_below.is_none() => {
            let inc = UnitIncidents::weighted(&study, filter, h).map_err(|e| e.to_string())?;
            Some((
                inc.unit_counts(0..inc.months.len()),
                inc.monthly(),
                inc.observed,
            ))
        }
        _ => None,
    };
    let density = study.density();
    // Exact from analyst up; below analyst the perturbed counts (and densities scaled with
    // them), and every statistic computed from them (`disclosure::basis`), so a bin says
    // nothing the counts do not.
    let view = Basis::of(q.withhold_below.is_some(), q.ckp_seed);
    let shown_counts = view.study(&study);
    let density: Vec<f64> = if view.is_perturbed() {
        let t = crate::serve::disclosure::ckp::PTable::new(q.ckp_seed);
        (0..study.len())
            .map(|i| t.scale(density[i], study.counts[i].max(0.0) as u64, study.keys[i]))
            .collect()
    } else {
        density
    };
    let basis: &[f64] = match &harm {
        Some((totals, ..)) => totals,
        None => &shown_counts,
    };
    let w = study.weights(1, Contiguity::Queen, true);
    let stats: Vec<Stat> = match q.method {
        Method::Counts => basis
            .iter()
            .map(|&c| Stat {
                value: c,
                p: None,
                bin: 0,
            })
            .collect(),
        Method::GiStar => {
            let g = gi_star(basis, &w, q.fdr);
            (0..study.len())
                .map(|i| Stat {
                    value: g.z[i],
                    p: Some(g.p[i]),
                    bin: g.bin[i],
                })
                .collect()
        }
        Method::Moran => {
            let w = study.weights(1, Contiguity::Queen, false);
            let m = local_moran(basis, &w, PERMUTATIONS, 1, 0.05, q.fdr);
            let c = basis;
            // An empty cell among empty neighbours is not drawn as a low-low cluster. Its
            // permutations mostly tie with it, and esda's folded p-value (which
            // stats::local_moran matches) then reads it as extreme: p = 1/(n+1). On
            // sparse data at resolution 10 that marked most of the county "significant"
            // (a 37 MB answer for burglary); the map would show only that artefact.
            let empty_run =
                |i: usize| c[i] <= 0.0 && w.row(i).iter().all(|&j| c[j as usize] <= 0.0);
            (0..study.len())
                .map(|i| Stat {
                    value: m.i[i],
                    p: Some(m.p_sim[i]),
                    // I = 0 (a unit at the mean, or all counts equal, as under a
                    // filter with no incidents) is neither cluster nor outlier, whatever
                    // p_sim says: stats::local_moran gives constant input p = 1/(n+1).
                    bin: if m.significant[i] && m.i[i] != 0.0 && !empty_run(i) {
                        moran_bin(m.quadrant[i])
                    } else {
                        0
                    },
                })
                .collect()
        }
    };
    let categories = match &harm {
        _ if !(7..=9).contains(&u8::from(q.res)) => None,
        Some((_, monthly, observed)) => emerging_categories(&study, &w, q.fdr, monthly, observed),
        None => categories(&study, &w, filter, q.fdr, &view),
    };
    let withheld: Vec<bool> = match q.withhold_below {
        Some(k) => {
            let counts: Vec<u64> = shown_counts.iter().map(|&c| c.max(0.0) as u64).collect();
            let cells: Vec<Option<CellIndex>> = study.cells.iter().copied().map(Some).collect();
            crate::serve::disclosure::suppress(
                &counts,
                &crate::serve::disclosure::cell_groups(&cells),
                k,
            )
        }
        None => vec![false; study.len()],
    };
    // Gi* and Moran's normal approximation on too few cells with incidents (a foreign
    // member the legend shows).
    let warning = match q.method {
        Method::GiStar | Method::Moran => {
            crate::stats::patrol::sparse_warning(basis.iter().filter(|c| **c > 0.0).count())
        }
        _ => None,
    };
    let mut out = String::from(r#"{"type":"FeatureCollection","#);
    // Below analyst: what was withheld and perturbed, and that the bins are of the
    // perturbed counts (`disclosure::metadata`).
    if let Some(k) = q.withhold_below {
        out.push_str(&format!(
            "\"disclosure\":{},",
            crate::serve::disclosure::metadata(k)
        ));
    }
    if let Some(w) = warning {
        out.push_str(&format!("\"warning\":{},", serde_json::Value::String(w)));
    }
    out.push_str(r#""features":["#);
    let mut first = true;
    for (i, s) in stats.iter().enumerate() {
        let category = categories.as_ref().map(|c| c[i]);
        let patterned = category.is_some_and(|c| c != Category::NoPattern);
        // A withheld cell is drawn even when empty: were it left out, its absence would
        // say it is an empty cell, and withholding a zero is how secondary suppression
        // hides which withheld cell is which.
        if study.counts[i] <= 0.0 && s.bin == 0 && !patterned && !withheld[i] {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        push_feature(
            &mut out,
            study.cells[i],
            (!withheld[i]).then_some((shown_counts[i], density[i])),
            s,
            q.withhold_below.is_some(),
            category,
            harm.as_ref().map(|(totals, ..)| totals[i]),
        );
    }
    out.push_str("]}");
    Ok(out)
}

/// Emerging hot spot categories of the monthly values `monthly` (counts or harm) over
/// the months `observed` marks (None with under 3 of them or under 3 units).
fn emerging_categories(
    study: &Study,
    w: &crate::stats::Weights,
    fdr: bool,
    monthly: &[Vec<f64>],
    observed: &[bool],
) -> Option<Vec<Category>> {
    if observed.iter().filter(|o| **o).count() < 3 || study.len() < 3 {
        return None;
    }
    emerging::emerging_hot_spots_observed(
        monthly,
        observed,
        w,
        emerging::ESRI_DEFAULT_WINDOW,
        fdr,
        emerging::DEFAULT_TREND_ALPHA,
    )
    .map_err(|e| tracing::warn!(error = %e, "emerging hot spots for the web map"))
    .ok()
    .map(|e| e.category)
}

/// The Moran quadrant as a signed bin: hot clusters and outliers positive.
pub fn moran_bin(q: Quadrant) -> i8 {
    match q {
        Quadrant::HighHigh => 2,
        Quadrant::HighLow => 1,
        Quadrant::LowHigh => -1,
        Quadrant::LowLow => -2,
    }
}

/// Emerging hot spot categories of the study's units (None with under 3 months), of the
/// monthly cube on `basis` (each cell-month perturbed from its own records below analyst).
pub fn categories(
    study: &Study,
    w: &crate::stats::Weights,
    filter: &Filter,
    fdr: bool,
    basis: &Basis,
) -> Option<Vec<Category>> {
    let monthly = study.monthly(filter);
    if monthly.observed_len() < 3 {
        return None;
    }
    emerging_categories(study, w, fdr, &basis.monthly(&monthly), &monthly.observed)
}

fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

/// The start of a cell's GeoJSON Feature: its hexagon (closed ring, 6 decimals) and its
/// properties up to and including `"cell":"...",` (the caller writes the rest and the
/// closing `}}`).
pub fn push_cell_start(out: &mut String, cell: CellIndex) {
    out.push_str(r#"{"type":"Feature","geometry":{"type":"Polygon","coordinates":[["#);
    let boundary = cell.boundary();
    let first = boundary.iter().next().map(|ll| (ll.lng(), ll.lat()));
    for (k, ll) in boundary
        .iter()
        .map(|ll| (ll.lng(), ll.lat()))
        .chain(first)
        .enumerate()
    {
        if k > 0 {
            out.push(',');
        }
        let _ = write!(out, "[{:.6},{:.6}]", ll.0, ll.1);
    }
    let _ = write!(out, r#"]]}},"properties":{{"cell":"{cell}","#);
}

/// One feature; `shown` is the count and density unless withheld; `bin_only` publishes
/// the statistic as its bin (disclosure control); `harm` with harm weights.
fn push_feature(
    out: &mut String,
    cell: CellIndex,
    shown: Option<(f64, f64)>,
    s: &Stat,
    bin_only: bool,
    category: Option<Category>,
    harm: Option<f64>,
) {
    push_cell_start(out, cell);
    match shown {
        Some((count, per_km2)) => {
            let _ = write!(
                out,
                r#""count":{},"per_km2":{:.4},"#,
                count as u64,
                finite(per_km2)
            );
        }
        None => out.push_str(r#""count":null,"per_km2":null,"suppressed":true,"#),
    }
    if bin_only {
        let _ = write!(out, r#""value":null,"bin":{}"#, s.bin);
        if s.p.is_some() {
            out.push_str(r#","p":null"#);
        }
    } else {
        let _ = write!(out, r#""value":{:.4},"bin":{}"#, finite(s.value), s.bin);
        if let Some(p) = s.p {
            let _ = write!(out, r#","p":{:.6}"#, finite(p));
        }
    }
    if let Some(c) = category {
        let _ = write!(
            out,
            r#","category":"{}","category_code":{}"#,
            c.label(),
            c.code()
        );
    }
    if let Some(h) = harm {
        let _ = write!(out, r#","harm":{:.4}"#, finite(h));
    }
    out.push_str("}}");
}
