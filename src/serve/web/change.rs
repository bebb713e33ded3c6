//! `/map/api/change`: the change map. The filter's period ("now") against the period before
//! it (`against=previous`, the same number of months just before) or the same months a year
//! earlier (`against=year`), per H3 cell at `res`, with the exact conditional test of
//! `stats::change` (binomial given the two counts, exposure = the months each period has
//! data for; a month no force published is left out of both) and Benjamini-Hochberg FDR at
//! 5 % across the cells tested when `fdr=true` (the default).
//!
//! Each feature has `cell`, `now`, `before` (incidents in each period), `ratio` (the
//! monthly rate now over before; null when before is 0), `p` and `bin` (1 significant
//! increase, -1 significant decrease, 0 neither) and `class` in words. The document says
//! which months each period covers (`periods`) and the test (`test`).
//!
//! Below analyst the counts of each period are the ones `/map/api/cells` publishes for that
//! period (cell-key perturbed, small counts and their secondary suppression withheld), the
//! test runs on those perturbed counts, and only the bin is published (`ratio` and `p`
//! null: with one count they would give the other). A cell with either count withheld has
//! `bin` null and `class` "withheld".

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use h3o::{CellIndex, Resolution};
use serde_json::{Value, json};

use crate::analysis::{AnalysisStore, Filter};
use crate::lru::Lru;
use crate::model::Month;
use crate::stats::change::{Direction, changes};
use crate::stats::study::{Study, Units};

/// Significance level of the test.
pub const ALPHA: f64 = 0.05;

/// The comparison period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Against {
    /// The same number of months just before.
    Previous,
    /// The same months one year earlier.
    Year,
}

impl std::str::FromStr for Against {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "previous" => Ok(Against::Previous),
            "year" => Ok(Against::Year),
            _ => Err(format!("'{s}' is not one of previous, year")),
        }
    }
}

/// One request besides its filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeQuery {
    pub res: Resolution,
    pub against: Against,
    pub fdr: bool,
    /// k below analyst (see the module doc), None from analyst up.
    pub withhold_below: Option<u64>,
    pub ckp_seed: u64,
}

type Key = (u64, String, Resolution, Against, bool, Option<u64>, u64);
static CACHE: Lru<AnalysisStore, Key, Result<String, String>> = Lru::new(12);

/// An inclusive range of month indices.
pub type Span = (u16, u16);

/// The two periods: (now, before), each as an inclusive month-index range.
///
/// # Errors
/// No data in the filter's period, or none in the comparison period (a message for 400).
pub fn periods(
    store: &AnalysisStore,
    filter: &Filter,
    against: Against,
) -> Result<(Span, Span), String> {
    let (first, last) = store
        .month_range()
        .ok_or_else(|| "no incidents in the store".to_owned())?;
    let lo = filter.from.unwrap_or(first).index().max(first.index());
    let hi = filter.to.unwrap_or(last).index().min(last.index());
    if lo > hi {
        return Err(format!(
            "the period has no data (the data run from {first} to {last})"
        ));
    }
    let len = hi - lo + 1;
    let (blo, bhi) = match against {
        Against::Previous => (lo.checked_sub(len), lo.checked_sub(1)),
        Against::Year => (lo.checked_sub(12), hi.checked_sub(12)),
    };
    match (blo, bhi) {
        (Some(a), Some(b)) if b >= first.index() => Ok(((lo, hi), (a.max(first.index()), b))),
        _ => Err(format!(
            "parameter 'against': no data to compare with before {} (the data start in {first})",
            Month::from_index(lo)
        )),
    }
}

fn months(r: Span) -> Vec<Month> {
    (r.0..=r.1).map(Month::from_index).collect()
}

fn with_months(filter: &Filter, r: Span) -> Filter {
    Filter {
        from: Some(Month::from_index(r.0)),
        to: Some(Month::from_index(r.1)),
        ..filter.clone()
    }
}

/// The GeoJSON document (cached), or a message for 400.
pub fn geojson(
    store: &Arc<AnalysisStore>,
    generation: u64,
    filter: &Filter,
    q: ChangeQuery,
) -> Arc<Result<String, String>> {
    let key = (
        generation,
        filter.key(),
        q.res,
        q.against,
        q.fdr,
        q.withhold_below,
        q.ckp_seed,
    );
    CACHE.get(store, key, || compute(store, filter, q))
}

/// A period's counts per cell as published to the caller: (count, withheld).
fn published(
    store: &Arc<AnalysisStore>,
    filter: &Filter,
    q: ChangeQuery,
) -> HashMap<CellIndex, (u64, bool)> {
    let study = Study::new(store.clone(), Units::H3(q.res), filter);
    let true_counts = |i: usize| study.counts[i].max(0.0) as u64;
    let (counts, withheld): (Vec<u64>, Vec<bool>) = match q.withhold_below {
        Some(k) => {
            let t = crate::serve::disclosure::ckp::PTable::new(q.ckp_seed);
            let c: Vec<u64> = (0..study.len())
                .map(|i| t.perturb(true_counts(i), study.keys[i]))
                .collect();
            let cells: Vec<Option<CellIndex>> = study.cells.iter().copied().map(Some).collect();
            let w = crate::serve::disclosure::suppress(
                &c,
                &crate::serve::disclosure::cell_groups(&cells),
                k,
            );
            (c, w)
        }
        None => (
            (0..study.len()).map(true_counts).collect(),
            vec![false; study.len()],
        ),
    };
    study
        .cells
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, (counts[i], withheld[i])))
        .collect()
}

fn compute(store: &Arc<AnalysisStore>, filter: &Filter, q: ChangeQuery) -> Result<String, String> {
    let (now_r, before_r) = periods(store, filter, q.against)?;
    let (now_m, before_m) = (months(now_r), months(before_r));
    let observed = |m: &[Month]| store.observed_months(filter, m);
    let (now_obs, before_obs) = (observed(&now_m), observed(&before_m));
    let t_now = now_obs.iter().filter(|&&o| o).count() as f64;
    let t_before = before_obs.iter().filter(|&&o| o).count() as f64;
    if t_now == 0.0 || t_before == 0.0 {
        return Err("parameter 'against': one of the two periods has no published month".into());
    }
    let now = published(store, &with_months(filter, now_r), q);
    let before = published(store, &with_months(filter, before_r), q);
    let mut cells: Vec<CellIndex> = now.keys().chain(before.keys()).copied().collect();
    cells.sort_unstable();
    cells.dedup();
    let get = |m: &HashMap<CellIndex, (u64, bool)>, c: &CellIndex| {
        m.get(c).copied().unwrap_or((0, false))
    };
    let a: Vec<u64> = cells.iter().map(|c| get(&now, c).0).collect();
    let b: Vec<u64> = cells.iter().map(|c| get(&before, c).0).collect();
    let (p, dir) = changes(&a, &b, t_now, t_before, ALPHA, q.fdr);
    let bin_only = q.withhold_below.is_some();
    let mut features = String::new();
    let mut n = 0usize;
    for (i, c) in cells.iter().enumerate() {
        let (wa, wb) = (get(&now, c).1, get(&before, c).1);
        let withheld = wa || wb;
        if a[i] + b[i] == 0 && !withheld {
            continue;
        }
        if n > 0 {
            features.push(',');
        }
        n += 1;
        push_feature(
            &mut features,
            *c,
            &Row {
                now: (!wa).then_some(a[i]),
                before: (!wb).then_some(b[i]),
                ratio: (!bin_only && b[i] > 0)
                    .then(|| (a[i] as f64 / t_now) / (b[i] as f64 / t_before)),
                p: (!bin_only).then_some(p[i]),
                dir: (!withheld).then_some(dir[i]),
            },
        );
    }
    let period = |r: Span, obs: &[bool], m: &[Month]| -> Value {
        json!({
            "from": Month::from_index(r.0).to_string(),
            "to": Month::from_index(r.1).to_string(),
            "months_with_data": obs.iter().filter(|&&o| o).count(),
            "missing": crate::coverage::missing_of(m, obs).iter().map(ToString::to_string).collect::<Vec<_>>(),
        })
    };
    let head = json!({
        "periods": {
            "now": period(now_r, &now_obs, &now_m),
            "before": period(before_r, &before_obs, &before_m),
            "against": match q.against { Against::Previous => "previous", Against::Year => "year" },
        },
        "test": format!(
            "exact conditional binomial test of two Poisson counts (monthly rates over the months with data), two-sided, {}alpha {ALPHA}",
            if q.fdr { "Benjamini-Hochberg false discovery rate at " } else { "" }
        ),
        "resolution": u8::from(q.res),
    });
    let mut out = String::from(r#"{"type":"FeatureCollection","#);
    for (k, v) in head.as_object().into_iter().flatten() {
        let _ = write!(out, "{}:{},", Value::String(k.clone()), v);
    }
    if bin_only {
        let _ = write!(
            out,
            r#""disclosure":{},"#,
            crate::serve::disclosure::metadata(q.withhold_below.unwrap_or(0))
        );
    }
    let _ = write!(out, r#""features":[{features}]}}"#);
    Ok(out)
}

struct Row {
    now: Option<u64>,
    before: Option<u64>,
    ratio: Option<f64>,
    p: Option<f64>,
    dir: Option<Direction>,
}

fn push_feature(out: &mut String, cell: CellIndex, r: &Row) {
    super::cells::push_cell_start(out, cell);
    let num = |v: Option<f64>, places: usize| match v {
        Some(x) if x.is_finite() => format!("{x:.places$}"),
        _ => "null".to_owned(),
    };
    let int = |v: Option<u64>| v.map_or_else(|| "null".to_owned(), |x| x.to_string());
    let _ = write!(
        out,
        r#""now":{},"before":{},"ratio":{},"p":{},"bin":{},"class":"{}"}}}}"#,
        int(r.now),
        int(r.before),
        num(r.ratio, 4),
        num(r.p, 8),
        r.dir
            .map_or_else(|| "null".to_owned(), |d| d.bin().to_string()),
        r.dir.map_or("withheld", Direction::label),
    );
}
