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
//! - A month some force did not publish (`crate::coverage`) is null in `series` and
//!   listed in `missing`: no data, never zero; the trend leaves it out.
//! - `name` says where the unit is and `place` holds its parts (`{street, lsoa,
//!   lsoa_name, district, town}`): a cell is "Near <street>, <LSOA>, <district>" (its
//!   code in `cell`), the street only one that passes the k rule below analyst
//!   (`streets.rs`); an LSOA or district keeps its own name.

use std::sync::Arc;

use h3o::CellIndex;
use serde_json::{Value, json};

use super::cells::categories;
use crate::analysis::{AnalysisStore, Filter};
use crate::model::{CrimeType, Month, Severity, TypeSet};
use crate::serve::AppError;
use crate::serve::disclosure::basis::Basis;
use crate::stats::gi_star::gi_star;
use crate::stats::mann_kendall::mann_kendall;
use crate::stats::study::{Contiguity, Study, Units};

/// The unit asked about, resolved against the geography.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Cell(CellIndex),
    Lsoa(u16),
    District(u8),
    /// The whole study area (or the filter's districts): not asked for by `kind`, only
    /// used by `/map/api/types` (`types.rs`).
    Area,
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

/// Disclosure control of a details document below analyst (`serve::disclosure`):
///
/// - Only the filter's types are listed (their counts add up to the total, which is what
///   the secondary suppression below assumes); the filter has the sensitive categories
///   left out below district level, so a cell or LSOA never lists them.
/// - The unit keeps only its name and place, trend direction, bin and category (every
///   count null, `suppressed: true`) when its total is from 1 to k - 1, when the unit is withheld in
///   the grid the map and the collections publish (`withheld_in_grid`: a secondarily
///   suppressed cell must not have its total given here), or when the counts by type or
///   the monthly series are ones only with nothing left to withhold beside them (their
///   total would say each is 1: `disclosure::exposed_groups`).
/// - Otherwise the counts by type and the monthly series each have their small values
///   withheld (null) with secondary suppression against the published total.
/// - z and p (which could be solved back to counts) are withheld everywhere.
/// - Every count shown (total, by type, per month) is perturbed from its own records' key
///   sum (`disclosure::ckp`), and suppression runs on the perturbed values; a cell's total
///   is the count its grid publishes (the same records, so the same noise).
pub fn withhold(
    doc: &mut Value,
    k: u64,
    withheld_in_grid: bool,
    table: &crate::serve::disclosure::ckp::PTable,
) {
    use crate::serve::disclosure::{exposed_groups, suppress};
    let keys = doc["keys"].take();
    let key_list = |v: &Value| -> Vec<u32> {
        v.as_array()
            .map(|a| a.iter().map(|x| x.as_u64().unwrap_or(0) as u32).collect())
            .unwrap_or_default()
    };
    let (mut type_keys, series_keys) = (key_list(&keys["by_type"]), key_list(&keys["series"]));
    let total_key = keys["total"].as_u64().unwrap_or(0) as u32;
    if let Some(types) = doc["by_type"].as_array_mut() {
        let selected: Vec<bool> = types
            .iter()
            .map(|t| t["selected"] == Value::Bool(true))
            .collect();
        let mut it = selected.iter();
        types.retain(|_| *it.next().unwrap_or(&false));
        let mut it = selected.iter();
        type_keys.retain(|_| *it.next().unwrap_or(&false));
    }
    // Every count is published perturbed from its own records' key sum (`disclosure::ckp`),
    // the total too (never summed from its parts); suppression runs on the perturbed values.
    let perturbed = |counts: Vec<u64>, keys: &[u32]| -> Vec<u64> {
        counts
            .iter()
            .enumerate()
            .map(|(i, &n)| table.perturb(n, keys.get(i).copied().unwrap_or(0)))
            .collect()
    };
    let counts_of = |v: &[Value], get: fn(&Value) -> Option<u64>| -> Vec<u64> {
        v.iter().map(|x| get(x).unwrap_or(0)).collect()
    };
    let type_counts = doc["by_type"]
        .as_array()
        .map(|t| counts_of(t, |x| x["count"].as_u64()))
        .unwrap_or_default();
    let type_counts = perturbed(type_counts, &type_keys);
    let series_counts = doc["series"]
        .as_array()
        .map(|s| counts_of(s, Value::as_u64))
        .unwrap_or_default();
    let series_counts = perturbed(series_counts, &series_keys);
    let whole = |n: usize| vec![(0..n).collect::<Vec<usize>>()];
    let type_mask = suppress(&type_counts, &whole(type_counts.len()), k);
    let series_mask = suppress(&series_counts, &whole(series_counts.len()), k);
    let exposed = !exposed_groups(&type_counts, &whole(type_counts.len()), &type_mask).is_empty()
        || !exposed_groups(&series_counts, &whole(series_counts.len()), &series_mask).is_empty();
    let total = table.perturb(doc["total"].as_u64().unwrap_or(0), total_key);
    let hide_all = crate::serve::disclosure::primary(total, k) || withheld_in_grid || exposed;
    doc["total"] = if hide_all {
        Value::Null
    } else {
        Value::from(total)
    };
    doc["suppressed"] = Value::Bool(hide_all);
    if let Some(types) = doc["by_type"].as_array_mut() {
        for ((t, m), n) in types.iter_mut().zip(type_mask).zip(&type_counts) {
            t["count"] = if m || hide_all {
                Value::Null
            } else {
                Value::from(*n)
            };
        }
    }
    if let Some(series) = doc["series"].as_array_mut() {
        for ((v, m), n) in series.iter_mut().zip(series_mask).zip(&series_counts) {
            // A month with no value (not published) stays so.
            if v.is_null() {
                continue;
            }
            *v = if m || hide_all {
                Value::Null
            } else {
                Value::from(*n)
            };
        }
    }
    for (key, field) in [("gi", "z"), ("gi", "p"), ("trend", "z"), ("trend", "p")] {
        if let Some(o) = doc.get_mut(key).and_then(Value::as_object_mut) {
            o.insert(field.to_owned(), Value::Null);
        }
    }
    let mut meta = crate::serve::disclosure::metadata(k);
    meta["perturbed"] = Value::Bool(true);
    meta["perturbation"] = Value::String(
        "cell-key perturbation: the total, every count by type and every month are the true \
         count plus noise in -2..+2 fixed by their records' keys (the same records always \
         give the same value; parts need not add up to the total); small ones withheld"
            .into(),
    );
    doc["disclosure"] = meta;
}

/// Whether the unit is withheld below analyst in the grid that publishes it under
/// `filter` (already restricted): a cell in the study grid at its resolution (grouped by
/// parent, as `/map/api/cells`, the vector tiles and the `h3-*` collections withhold it),
/// an LSOA or a district as the `lsoas` and `districts` collections withhold it.
///
/// # Errors
/// Internal errors of the collections' computation.
pub fn withheld_in_grid(
    store: &Arc<AnalysisStore>,
    generation: u64,
    unit: Unit,
    filter: &Filter,
    settings: &crate::serve::disclosure::DisclosureSettings,
) -> Result<bool, AppError> {
    use crate::serve::disclosure::{cell_groups, suppress};
    match unit {
        Unit::Cell(c) => {
            let study = Study::new(store.clone(), Units::H3(c.resolution()), filter);
            let Some(i) = study.cells.iter().position(|x| *x == c) else {
                return Ok(false);
            };
            // The grid's mask is computed on its perturbed counts (`disclosure::ckp`).
            let table = settings.ptable();
            let counts: Vec<u64> = (0..study.len())
                .map(|j| table.perturb(study.counts[j].max(0.0) as u64, study.keys[j]))
                .collect();
            let cells: Vec<Option<CellIndex>> = study.cells.iter().copied().map(Some).collect();
            Ok(suppress(&counts, &cell_groups(&cells), settings.k)[i])
        }
        // The whole area's total is published by no grid (and is suppressed on its own).
        Unit::Area => Ok(false),
        Unit::Lsoa(_) | Unit::District(_) => {
            let cid = match unit {
                Unit::Lsoa(_) => crate::serve::ogc::CollectionId::Lsoas,
                _ => crate::serve::ogc::CollectionId::Districts,
            };
            crate::serve::ogc::withheld(cid, store, generation, filter, settings, &id(store, unit))
        }
    }
}

/// The details document of `unit` under `filter`; `k` below analyst (`None` above) and
/// `sensitive` decide which street may name a cell (the k rule of `streets.rs`).
pub fn details(
    store: &Arc<AnalysisStore>,
    unit: Unit,
    filter: &Filter,
    fdr: bool,
    (k, sensitive): (Option<u64>, TypeSet),
    basis: &Basis,
) -> Value {
    let member = membership(store, unit);
    let (name, place) = place(store, unit, &member, k, sensitive);
    let Some((lo, hi)) = month_span(store, filter) else {
        // No month of data in the filter's period: the same document, empty.
        let mut doc = json!({
            "kind": kind(unit), "id": id(store, unit), "name": name, "place": place,
            "total": 0, "by_type": [], "months": [], "series": [], "missing": [], "gi": null,
            "trend": { "direction": "no data", "z": null, "p": null }, "category": null,
        });
        with_cell(&mut doc, unit);
        return doc;
    };
    let inc = &store.incidents;
    let record_keys = store.record_keys();
    let mut by_type = [0u64; CrimeType::COUNT];
    let mut road = [0u64; Severity::ALL.len()];
    let mut series = vec![0u64; usize::from(hi - lo) + 1];
    // The record keys summed beside each count (cell-key perturbation below analyst).
    let mut type_keys = [0u32; CrimeType::COUNT];
    let mut road_keys = [0u32; Severity::ALL.len()];
    let mut series_keys = vec![0u32; series.len()];
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
        let key = u32::from(record_keys.get(k).copied().unwrap_or(0));
        if let Some(n) = by_type.get_mut(usize::from(c)) {
            *n += 1;
            type_keys[usize::from(c)] = type_keys[usize::from(c)].wrapping_add(key);
        }
        if c == CrimeType::RoadCollision as u8 {
            let s = Severity::from_code(v) as usize;
            road[s] += 1;
            road_keys[s] = road_keys[s].wrapping_add(key);
        }
        if filter.keeps(c, v) {
            let i = usize::from(m - lo);
            series[i] += 1;
            series_keys[i] = series_keys[i].wrapping_add(key);
        }
    }
    // Every type with incidents; a chosen type with none too (a chosen zero says
    // something), but not each of the 18 when the filter is "all".
    let chosen = |t: CrimeType| filter.types != TypeSet::incidents() && filter.types.contains(t);
    let mut types: Vec<Value> = Vec::new();
    let mut keys_by_type: Vec<u32> = Vec::new();
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
                    keys_by_type.push(road_keys[s as usize]);
                }
            }
        } else if by_type[t as usize] > 0 || chosen(t) {
            types.push(json!({
                "type": t.slug(), "label": t.label(),
                "count": by_type[t as usize], "selected": filter.types.contains(t),
            }));
            keys_by_type.push(type_keys[t as usize]);
        }
    }
    let months: Vec<Month> = (lo..=hi).map(Month::from_index).collect();
    let observed = store.observed_months(filter, &months);
    // The trend of the series as this caller sees it: below analyst each month is the
    // perturbed count the panel publishes for it (`disclosure::basis`).
    let ys: Vec<f64> = series
        .iter()
        .zip(&observed)
        .zip(&series_keys)
        .map(|((&v, &o), &key)| {
            if o {
                basis.count(v as f64, key)
            } else {
                f64::NAN
            }
        })
        .collect();
    let mk = mann_kendall(&ys);
    let series_json: Vec<Value> = series
        .iter()
        .zip(&observed)
        .map(|(&v, &o)| if o { Value::from(v) } else { Value::Null })
        .collect();
    let missing: Vec<String> = crate::coverage::missing_of(&months, &observed)
        .iter()
        .map(ToString::to_string)
        .collect();
    let direction = match mk.direction(0.05) {
        Some(true) => "increasing",
        Some(false) => "decreasing",
        None => "no significant trend",
    };
    let (gi, category) = statistics(store, unit, filter, fdr, basis);
    let mut doc = json!({
        "kind": kind(unit),
        "id": id(store, unit),
        "name": name,
        "place": place,
        "total": series.iter().sum::<u64>(),
        "by_type": types,
        "months": months.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "series": series_json,
        "missing": missing,
        "gi": gi,
        "trend": { "direction": direction, "z": round(mk.z, 4), "p": round(mk.p, 6) },
        "category": category,
        // The key sums behind `total`, `by_type` and `series`, for `withhold`; removed
        // from every answer (`without_keys`).
        "keys": {
            "total": series_keys.iter().fold(0u32, |a, &k| a.wrapping_add(k)),
            "by_type": keys_by_type,
            "series": series_keys,
        },
    });
    with_cell(&mut doc, unit);
    doc
}

/// A cell's H3 code as text ("H3 cell 89... (resolution 9)"), beside its place name.
fn with_cell(doc: &mut Value, unit: Unit) {
    if let Unit::Cell(c) = unit {
        doc["cell"] = Value::from(format!(
            "H3 cell {c} (resolution {})",
            u8::from(c.resolution())
        ));
    }
}

/// How far a town may be to name a cell.
const TOWN_KM: f64 = 5.0;

/// The unit's name and `place` (`{street, lsoa, lsoa_name, district, town}`, null where
/// none). A cell is named by where it is: "Near Fishergate, Preston 014A, Preston": its
/// incidents' most common street (over the whole data; below analyst by public incidents
/// among the streets that pass the k rule only, else none), the LSOA (2011) and district
/// holding its centre, and the nearest bundled town within 5 km. LSOAs and districts keep
/// their names, with their district in `place`.
fn place(
    store: &Arc<AnalysisStore>,
    unit: Unit,
    member: &[bool],
    k: Option<u64>,
    sensitive: TypeSet,
) -> (String, Value) {
    use crate::spatial::geography::{NO_DISTRICT, NO_LSOA};
    let g = &store.geography;
    let district_name = |d: u8| g.districts.names.get(usize::from(d)).cloned();
    let lsoa = |l: u16| {
        (l != NO_LSOA)
            .then(|| {
                g.lsoas
                    .codes
                    .get(usize::from(l))
                    .zip(g.lsoas.names.get(usize::from(l)))
            })
            .flatten()
    };
    let doc = |street: Option<&str>, l: u16, d: u8, town: Option<&str>| {
        let l = lsoa(l);
        json!({
            "street": street,
            "lsoa": l.map(|x| x.0),
            "lsoa_name": l.map(|x| x.1),
            "district": (d != NO_DISTRICT).then(|| district_name(d)).flatten(),
            "town": town,
        })
    };
    match unit {
        Unit::Cell(c) => {
            let centre = h3o::LatLng::from(c);
            let (lon, lat) = (centre.lng(), centre.lat());
            let (l, d) = g.locate(lon, lat);
            let index = super::streets::StreetIndex::of(store, sensitive);
            let street = index
                .most_common((0..member.len()).filter(|&i| member[i]), k)
                .map(|s| s.name.to_string());
            let town = crate::spatial::gazetteer::nearest_town(g, lon, lat, TOWN_KM)
                .map(|(t, _)| t.name.clone());
            let place = doc(street.as_deref(), l, d, town.as_deref());
            let mut parts: Vec<String> = Vec::new();
            if let Some(s) = &street {
                parts.push(format!("Near {s}"));
            }
            for key in ["lsoa_name", "district"] {
                if let Some(v) = place[key].as_str() {
                    parts.push(v.to_owned());
                }
            }
            let name = if !parts.is_empty() {
                parts.join(", ")
            } else if let Some(t) = &town {
                format!("Near {t}")
            } else {
                format!("H3 cell {c} (resolution {})", u8::from(c.resolution()))
            };
            (name, place)
        }
        Unit::Lsoa(l) => {
            let d = g.lsoa_district.get(usize::from(l)).copied();
            (
                name(store, unit),
                doc(None, l, d.unwrap_or(NO_DISTRICT), None),
            )
        }
        Unit::District(d) => (name(store, unit), doc(None, NO_LSOA, d, None)),
        Unit::Area => (name(store, unit), doc(None, NO_LSOA, NO_DISTRICT, None)),
    }
}

/// Removes the key sums `details` leaves for `withhold` (every role's answer goes
/// through it).
pub fn without_keys(doc: &mut Value) {
    if let Some(o) = doc.as_object_mut() {
        o.remove("keys");
    }
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
            Unit::Area => true,
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
        Unit::Area => "area",
    }
}

fn id(store: &AnalysisStore, unit: Unit) -> String {
    let g = &store.geography;
    match unit {
        Unit::Cell(c) => c.to_string(),
        Unit::Lsoa(l) => g.lsoas.codes[usize::from(l)].clone(),
        Unit::District(d) => g.districts.codes[usize::from(d)].clone(),
        Unit::Area => "area".into(),
    }
}

fn name(store: &AnalysisStore, unit: Unit) -> String {
    let g = &store.geography;
    match unit {
        Unit::Cell(c) => format!("H3 cell {c} (resolution {})", u8::from(c.resolution())),
        Unit::Lsoa(l) => g.lsoas.names[usize::from(l)].clone(),
        Unit::District(d) => g.districts.names[usize::from(d)].clone(),
        Unit::Area => "Study area".into(),
    }
}

/// Gi* of the unit (`{z, p, bin}` or null) and its emerging category (cells at 7 to 9),
/// of the counts on `basis` (below analyst those the grids publish, so the panel's bin and
/// category are the map's).
fn statistics(
    store: &Arc<AnalysisStore>,
    unit: Unit,
    filter: &Filter,
    fdr: bool,
    basis: &Basis,
) -> (Value, Value) {
    let (study, index) = match unit {
        Unit::Cell(c) => {
            let s = Study::new(store.clone(), Units::H3(c.resolution()), filter);
            let i = s.cells.iter().position(|x| *x == c);
            (s, i)
        }
        Unit::Lsoa(l) => {
            let s = Study::new(
                store.clone(),
                Units::Lsoa(crate::spatial::geography::Vintage::V2011),
                filter,
            );
            let i = s.lsoas.iter().position(|x| *x == u32::from(l));
            (s, i)
        }
        Unit::District(_) | Unit::Area => return (Value::Null, Value::Null),
    };
    // A unit outside the study area (another district, or off the county) has no statistic.
    let Some(i) = index else {
        return (Value::Null, Value::Null);
    };
    let w = study.weights(1, Contiguity::Queen, true);
    let g = gi_star(&basis.study(&study), &w, fdr);
    let gi = json!({ "z": round(g.z[i], 4), "p": round(g.p[i], 6), "bin": g.bin[i] });
    let category = match unit {
        Unit::Cell(c) if (7..=9).contains(&u8::from(c.resolution())) => {
            categories(&study, &w, filter, fdr, basis)
                .and_then(|c| c.get(i).map(|x| Value::from(x.label())))
                .unwrap_or(Value::Null)
        }
        _ => Value::Null,
    };
    (gi, category)
}
