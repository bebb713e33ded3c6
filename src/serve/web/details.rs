//! `/map/api/details?kind=cell|lsoa|district&id=...`: what the map's details panel shows
//! for one unit under the current filter: counts by crime type (every type, those in the
//! filter marked; road collisions one row per STATS19 severity), the monthly series of the
//! filtered incidents, Gi* z and p, and the trend.
//!
//! - Counts come from one pass over the incidents of the unit (a location belongs to a
//!   cell when its resolution-11 cell's parent is that cell).
//! - Gi* is computed over the whole study area at the unit's level (k = 1 ring or queen
//!   contiguity, FDR when `fdr=true`), as the map colours it; districts (14 units) get
//!   none: too few neighbours for a meaningful local statistic.
//! - The trend is Mann-Kendall on the unit's monthly series (alpha 0.05), and for cells
//!   at resolutions 7 to 9 the emerging hot spot category as well.

use std::sync::Arc;

use h3o::CellIndex;
use serde_json::{Value, json};

use super::cells::categories;
use crate::analysis::{AnalysisStore, Filter};
use crate::model::{CrimeType, Month, Severity, TypeSet};
use crate::serve::AppError;
use crate::stats::gi_star::gi_star;
use crate::stats::mann_kendall::mann_kendall;
use crate::stats::study::{Contiguity, Study, Units};

/// The unit asked about, resolved against the geography.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Cell(CellIndex),
    Lsoa(u16),
    District(u8),
}

impl Unit {
    /// Parses `kind` and `id`.
    ///
    /// # Errors
    /// 400 for an unknown kind, a bad or out-of-range cell, an unknown code.
    pub fn parse(kind: &str, id: &str, store: &AnalysisStore) -> Result<Unit, AppError> {
        let bad = AppError::BadRequest;
        let g = &store.geography;
        match kind {
            "cell" => {
                let cell = id
                    .parse::<CellIndex>()
                    .map_err(|_| bad(format!("parameter 'id': '{id}' is not an H3 cell")))?;
                if !super::cells::RESOLUTIONS.contains(&u8::from(cell.resolution())) {
                    return Err(bad(
                        "parameter 'id': cells of resolution 6 to 10 only".into()
                    ));
                }
                Ok(Unit::Cell(cell))
            }
            "lsoa" => (0..g.lsoas.len())
                .find(|&i| g.lsoas.codes[i].eq_ignore_ascii_case(id))
                .and_then(|i| u16::try_from(i).ok())
                .map(Unit::Lsoa)
                .ok_or_else(|| bad(format!("parameter 'id': unknown LSOA '{id}'"))),
            "district" => g
                .district_index(id)
                .map(Unit::District)
                .ok_or_else(|| bad(format!("parameter 'id': unknown district '{id}'"))),
            _ => Err(bad(format!(
                "parameter 'kind': '{kind}' is not one of cell, lsoa, district"
            ))),
        }
    }
}

/// The details document.
/// Disclosure control of a details document below analyst: a unit whose total is from 1
/// to k - 1 keeps only its name and trend direction; otherwise the counts by type and the
/// monthly series each have their small values withheld (null) with secondary suppression
/// against the published total, and z and p (which could be solved back to counts) are
/// withheld everywhere, the Gi* bin and the trend and emerging categories kept.
pub fn withhold(doc: &mut Value, k: u64) {
    let total = doc["total"].as_u64().unwrap_or(0);
    let hide_all = crate::serve::disclosure::primary(total, k);
    if hide_all {
        doc["total"] = Value::Null;
    }
    doc["suppressed"] = Value::Bool(hide_all);
    // Counts by type: one group (their sum is the published total).
    if let Some(types) = doc["by_type"].as_array_mut() {
        let counts: Vec<u64> = types
            .iter()
            .map(|t| t["count"].as_u64().unwrap_or(0))
            .collect();
        let mask = crate::serve::disclosure::suppress(&counts, &[(0..counts.len()).collect()], k);
        for (t, m) in types.iter_mut().zip(mask) {
            if m || hide_all {
                t["count"] = Value::Null;
            }
        }
    }
    if let Some(series) = doc["series"].as_array_mut() {
        let counts: Vec<u64> = series.iter().map(|v| v.as_u64().unwrap_or(0)).collect();
        let mask = crate::serve::disclosure::suppress(&counts, &[(0..counts.len()).collect()], k);
        for (v, m) in series.iter_mut().zip(mask) {
            if m || hide_all {
                *v = Value::Null;
            }
        }
    }
    for (key, field) in [("gi", "z"), ("gi", "p"), ("trend", "z"), ("trend", "p")] {
        if let Some(o) = doc.get_mut(key).and_then(Value::as_object_mut) {
            o.insert(field.to_owned(), Value::Null);
        }
    }
}

pub fn details(store: &Arc<AnalysisStore>, unit: Unit, filter: &Filter, fdr: bool) -> Value {
    let member = membership(store, unit);
    let Some((lo, hi)) = month_span(store, filter) else {
        // No month of data in the filter's period: the same document, empty.
        return json!({
            "kind": kind(unit), "id": id(store, unit), "name": name(store, unit),
            "total": 0, "by_type": [], "months": [], "series": [], "gi": null,
            "trend": { "direction": "no data", "z": null, "p": null }, "category": null,
        });
    };
    let inc = &store.incidents;
    let mut by_type = [0u64; CrimeType::COUNT];
    let mut road = [0u64; Severity::ALL.len()];
    let mut series = vec![0u64; usize::from(hi - lo) + 1];
    for k in 0..inc.len() {
        let (l, m) = (inc.loc[k] as usize, inc.month[k]);
        if m < lo || m > hi || !member.get(l).copied().unwrap_or(false) {
            continue;
        }
        let in_districts = filter.districts.as_ref().is_none_or(|ds| {
            store
                .locations
                .district
                .get(l)
                .is_some_and(|d| ds.contains(d))
        });
        if !in_districts {
            continue;
        }
        let (c, v) = (inc.ctype[k], inc.severity[k]);
        if let Some(n) = by_type.get_mut(usize::from(c)) {
            *n += 1;
        }
        if c == CrimeType::RoadCollision as u8 {
            road[Severity::from_code(v) as usize] += 1;
        }
        if filter.keeps(c, v) {
            series[usize::from(m - lo)] += 1;
        }
    }
    // Every type with incidents; a chosen type with none too (a chosen zero says
    // something), but not each of the 18 when the filter is "all".
    let chosen = |t: CrimeType| filter.types != TypeSet::all() && filter.types.contains(t);
    let mut types: Vec<Value> = Vec::new();
    for &t in CrimeType::ALL {
        if t == CrimeType::RoadCollision {
            // One row per severity (their sum is the type's count, so the rows still add
            // up to every incident in the unit, as the disclosure rule assumes).
            for s in Severity::ALL {
                let n = road[s as usize];
                let selected = filter.keeps(t as u8, s as u8);
                if n > 0 || (selected && (chosen(t) || filter.by_severity())) {
                    types.push(json!({
                        "type": t.slug(), "severity": s.slug(),
                        "label": format!("{} · {}", t.label(), s.slug()),
                        "count": n, "selected": selected,
                    }));
                }
            }
        } else if by_type[t as usize] > 0 || chosen(t) {
            types.push(json!({
                "type": t.slug(), "label": t.label(),
                "count": by_type[t as usize], "selected": filter.types.contains(t),
            }));
        }
    }
    let ys: Vec<f64> = series.iter().map(|&v| v as f64).collect();
    let mk = mann_kendall(&ys);
    let direction = match mk.direction(0.05) {
        Some(true) => "increasing",
        Some(false) => "decreasing",
        None => "no significant trend",
    };
    let (gi, category) = statistics(store, unit, filter, fdr);
    json!({
        "kind": kind(unit),
        "id": id(store, unit),
        "name": name(store, unit),
        "total": series.iter().sum::<u64>(),
        "by_type": types,
        "months": (lo..=hi).map(|m| Month::from_index(m).to_string()).collect::<Vec<_>>(),
        "series": series,
        "gi": gi,
        "trend": { "direction": direction, "z": round(mk.z, 4), "p": round(mk.p, 6) },
        "category": category,
    })
}

fn round(v: f64, places: i32) -> Value {
    let f = 10f64.powi(places);
    if v.is_finite() {
        json!((v * f).round() / f)
    } else {
        Value::Null
    }
}

/// Whether each location belongs to the unit.
fn membership(store: &AnalysisStore, unit: Unit) -> Vec<bool> {
    let loc = &store.locations;
    (0..loc.len())
        .map(|i| match unit {
            Unit::Cell(c) => loc.cell(i, c.resolution()) == Some(c),
            Unit::Lsoa(l) => loc.lsoa[i] == l,
            Unit::District(d) => loc.district[i] == d,
        })
        .collect()
}

/// The filter's months, or the data's where it leaves them open.
fn month_span(store: &AnalysisStore, filter: &Filter) -> Option<(u16, u16)> {
    let (a, b) = store.month_range()?;
    let lo = filter.from.unwrap_or(a).index();
    let hi = filter.to.unwrap_or(b).index();
    (lo <= hi).then_some((lo, hi))
}

fn kind(unit: Unit) -> &'static str {
    match unit {
        Unit::Cell(_) => "cell",
        Unit::Lsoa(_) => "lsoa",
        Unit::District(_) => "district",
    }
}

fn id(store: &AnalysisStore, unit: Unit) -> String {
    let g = &store.geography;
    match unit {
        Unit::Cell(c) => c.to_string(),
        Unit::Lsoa(l) => g.lsoas.codes[usize::from(l)].clone(),
        Unit::District(d) => g.districts.codes[usize::from(d)].clone(),
    }
}

fn name(store: &AnalysisStore, unit: Unit) -> String {
    let g = &store.geography;
    match unit {
        Unit::Cell(c) => format!("H3 cell {c} (resolution {})", u8::from(c.resolution())),
        Unit::Lsoa(l) => g.lsoas.names[usize::from(l)].clone(),
        Unit::District(d) => g.districts.names[usize::from(d)].clone(),
    }
}

/// Gi* of the unit (`{z, p, bin}` or null) and its emerging category (cells at 7 to 9).
fn statistics(
    store: &Arc<AnalysisStore>,
    unit: Unit,
    filter: &Filter,
    fdr: bool,
) -> (Value, Value) {
    let (study, index) = match unit {
        Unit::Cell(c) => {
            let s = Study::new(store.clone(), Units::H3(c.resolution()), filter);
            let i = s.cells.iter().position(|x| *x == c);
            (s, i)
        }
        Unit::Lsoa(l) => {
            let s = Study::new(store.clone(), Units::Lsoa, filter);
            let i = s.lsoas.iter().position(|x| *x == u32::from(l));
            (s, i)
        }
        Unit::District(_) => return (Value::Null, Value::Null),
    };
    // A unit outside the study area (another district, or off the county) has no statistic.
    let Some(i) = index else {
        return (Value::Null, Value::Null);
    };
    let w = study.weights(1, Contiguity::Queen, true);
    let g = gi_star(&study.counts, &w, fdr);
    let gi = json!({ "z": round(g.z[i], 4), "p": round(g.p[i], 6), "bin": g.bin[i] });
    let category = match unit {
        Unit::Cell(c) if (7..=9).contains(&u8::from(c.resolution())) => {
            categories(&study, &w, filter, fdr)
                .and_then(|c| c.get(i).map(|x| Value::from(x.label())))
                .unwrap_or(Value::Null)
        }
        _ => Value::Null,
    };
    (gi, category)
}
