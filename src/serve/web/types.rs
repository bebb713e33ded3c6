//! `/map/api/types?from=&to=&district=`: the counts beside the map's crime-type
//! checkboxes, following the period and the district filter but not the type or
//! severity filter (every type of the data is listed, as `/map/api/meta` lists them, and
//! every road collision severity).
//!
//! The counts are the details document (`details.rs`) of the district (one named), or of
//! the whole study area (none, or several, restricted to them), under every type: so
//! below analyst they are exactly what the details panel publishes for that area: each
//! count perturbed from its own records' keys (`disclosure::ckp`), small ones withheld
//! (null) with secondary suppression against the area's total, and all of them withheld
//! when the area is withheld (its total small, or withheld in the `districts` grid).
//! Sensitive categories are listed: a district or the county is district level, where
//! they are published.
//!
//! When every record of the store is from a dataset marked already public
//! (`disclosure.public_datasets`), the route serves the analyst's exact document with
//! `disclosure::exact_metadata`.
//!
//! Road collisions are rows per severity there; their type's count (the sum) is published
//! below analyst perturbed from its own records and only when it gives back no withheld
//! severity (and, with the other types, no withheld type): `disclosure::total_discloses`.

use std::sync::Arc;

use serde_json::{Value, json};

use super::details::{self, Unit};
use crate::analysis::{AnalysisStore, Filter};
use crate::model::{CrimeType, Severity, SeveritySet, TypeSet};
use crate::serve::AppError;
use crate::serve::disclosure::basis::Basis;
use crate::serve::disclosure::{DisclosureSettings, primary, total_discloses};

/// One row of the details' counts by type, before and after disclosure control.
struct Row {
    ctype: Option<CrimeType>,
    severity: Option<Severity>,
    count: u64,
    key: u32,
}

/// The document; `public` holds the disclosure settings below analyst (`None` above).
///
/// # Errors
/// Internal errors of the districts grid (below analyst).
pub fn types(
    store: &Arc<AnalysisStore>,
    generation: u64,
    filter: &Filter,
    public: Option<&DisclosureSettings>,
) -> Result<Value, AppError> {
    let every = Filter {
        types: TypeSet::all(),
        severities: SeveritySet::all(),
        ..filter.clone()
    };
    let (unit, f) = match filter.districts.as_deref() {
        Some([d]) => (
            Unit::District(*d),
            Filter {
                districts: None,
                ..every
            },
        ),
        _ => (Unit::Area, every),
    };
    let rule = (
        public.map(|d| d.k),
        public.map_or(TypeSet::empty(), |d| d.sensitive_types()),
    );
    let basis = Basis::of(public.is_some(), public.map_or(0, |d| d.ckp_seed));
    let mut doc = details::details(store, unit, &f, false, rule, &basis);
    let rows = rows(&doc);
    if let Some(settings) = public {
        // The area is withheld where the districts grid withholds it (or any of them).
        let grid = match (unit, &f.districts) {
            (Unit::District(_), _) => {
                details::withheld_in_grid(store, generation, unit, &f, settings)?
            }
            (_, Some(ds)) => {
                let all = Filter {
                    districts: None,
                    ..f.clone()
                };
                let mut any = false;
                for &d in ds {
                    any |= details::withheld_in_grid(
                        store,
                        generation,
                        Unit::District(d),
                        &all,
                        settings,
                    )?;
                }
                any
            }
            _ => false,
        };
        details::withhold(&mut doc, settings.k, grid, &settings.ptable());
    }
    // What is published of each row (a number, or null where withheld), by its row.
    let published: Vec<Value> = rows
        .iter()
        .map(|r| {
            doc["by_type"]
                .as_array()
                .and_then(|a| a.iter().find(|t| key_of(t) == (r.ctype, r.severity)))
                .map_or(Value::Null, |t| t["count"].clone())
        })
        .collect();
    let count_of = |t: CrimeType, s: Option<Severity>| -> Value {
        rows.iter()
            .zip(&published)
            .find(|(r, _)| (r.ctype, r.severity) == (Some(t), s))
            .map_or(Value::from(0), |(_, v)| v.clone())
    };
    let road = road_total(&rows, &published, &doc, public);
    let (present, by_severity) = super::meta::counts(store);
    let types: Vec<Value> = CrimeType::ALL
        .iter()
        .filter(|t| present[**t as usize] > 0)
        .map(|&t| {
            let count = if t == CrimeType::RoadCollision {
                road.clone()
            } else {
                count_of(t, None)
            };
            json!({ "slug": t.slug(), "count": count })
        })
        .collect();
    let severities: Vec<Value> = super::meta::severity_order()
        .filter(|s| by_severity[*s as usize] > 0)
        .map(|s| json!({ "slug": s.slug(), "count": count_of(CrimeType::RoadCollision, Some(s)) }))
        .collect();
    Ok(json!({
        "types": types,
        "severities": severities,
        "disclosure": if public.is_some() { doc["disclosure"].clone() } else { Value::Null },
    }))
}

/// The type and severity of a row of `by_type`.
fn key_of(t: &Value) -> (Option<CrimeType>, Option<Severity>) {
    (
        t["type"].as_str().and_then(|s| s.parse().ok()),
        t["severity"].as_str().and_then(|s| s.parse().ok()),
    )
}

/// The rows of `details` by type (with their key sums), in its order.
fn rows(doc: &Value) -> Vec<Row> {
    let keys = doc["keys"]["by_type"].as_array();
    doc["by_type"]
        .as_array()
        .map(|a| {
            a.iter()
                .enumerate()
                .map(|(i, t)| Row {
                    ctype: key_of(t).0,
                    severity: key_of(t).1,
                    count: t["count"].as_u64().unwrap_or(0),
                    key: keys
                        .and_then(|k| k.get(i))
                        .and_then(Value::as_u64)
                        .unwrap_or(0) as u32,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Road collisions in all: the sum of the severity rows; below analyst perturbed from its
/// own records' keys and withheld when small, when the area is withheld, or when beside
/// the published rows it would give back a withheld one.
fn road_total(
    rows: &[Row],
    published: &[Value],
    doc: &Value,
    public: Option<&DisclosureSettings>,
) -> Value {
    let is_road = |r: &Row| r.ctype == Some(CrimeType::RoadCollision);
    let count: u64 = rows.iter().filter(|r| is_road(r)).map(|r| r.count).sum();
    let Some(settings) = public else {
        return Value::from(count);
    };
    if doc["suppressed"] == Value::Bool(true) {
        return Value::Null;
    }
    let table = settings.ptable();
    let key = rows
        .iter()
        .filter(|r| is_road(r))
        .fold(0u32, |a, r| a.wrapping_add(r.key));
    let total = table.perturb(count, key);
    if primary(total, settings.k) {
        return Value::Null;
    }
    // The published (perturbed) rows and which are withheld, as `withhold` decided.
    let perturbed: Vec<u64> = rows.iter().map(|r| table.perturb(r.count, r.key)).collect();
    let withheld: Vec<bool> = published.iter().map(Value::is_null).collect();
    let road: Vec<usize> = (0..rows.len()).filter(|&i| is_road(&rows[i])).collect();
    // Against its severities, and as one row among the other types under the area's total.
    let mut coarse: Vec<u64> = Vec::new();
    let mut coarse_mask: Vec<bool> = Vec::new();
    for i in (0..rows.len()).filter(|&i| !is_road(&rows[i])) {
        coarse.push(perturbed[i]);
        coarse_mask.push(withheld[i]);
    }
    coarse.push(total);
    coarse_mask.push(false);
    let everything: Vec<usize> = (0..coarse.len()).collect();
    if total_discloses(&perturbed, &withheld, &road)
        || total_discloses(&coarse, &coarse_mask, &everything)
    {
        return Value::Null;
    }
    Value::from(total)
}
