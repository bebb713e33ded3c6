//! `/map/api/meta`: what the map's controls offer, from the data: the crime types present
//! (with counts, and per type the records without a location or outside the study area
//! that no layer maps), road collisions by STATS19 severity, the months covered, the
//! districts (with their extents, for the district control's zoom) and the study area's bounds. `missing` lists the months inside that span some
//! force did not publish for the default (all incidents) filter (`crate::coverage`): no
//! data, never zero.

use geo::BoundingRect;
use serde_json::{Value, json};

use crate::analysis::AnalysisStore;
use crate::model::{CrimeType, Severity};

/// Incidents per type and road collisions per severity (indexed by code) over the
/// whole store.
pub fn counts(store: &AnalysisStore) -> ([u64; CrimeType::COUNT], [u64; Severity::ALL.len()]) {
    let mut counts = [0u64; CrimeType::COUNT];
    let mut road = [0u64; Severity::ALL.len()];
    let inc = &store.incidents;
    for (&t, &v) in inc.ctype.iter().zip(&inc.severity) {
        if let Some(c) = counts.get_mut(usize::from(t)) {
            *c += 1;
        }
        if t == CrimeType::RoadCollision as u8 {
            road[Severity::from_code(v) as usize] += 1;
        }
    }
    (counts, road)
}

/// The order the controls list severities in: fatal, serious, slight, then collisions
/// without one.
pub fn severity_order() -> impl Iterator<Item = Severity> {
    Severity::ALL[1..]
        .iter()
        .chain(&Severity::ALL[..1])
        .copied()
}

/// The metadata document.
pub fn meta(store: &AnalysisStore) -> Value {
    let (counts, road) = counts(store);
    // Fatal, serious, slight, then collisions without one (if any).
    let severities: Vec<Value> = severity_order()
        .filter(|s| road[*s as usize] > 0)
        .map(|s| {
            let label = if s == Severity::None {
                "Unknown"
            } else {
                s.label()
            };
            json!({ "slug": s.slug(), "label": label, "count": road[s as usize] })
        })
        .collect();
    // Per type, beside the mapped count: records without a location (police.uk publishes
    // them with none) and records located outside the study area, which no map layer
    // counts. County totals over the whole data: no small area, no filter to difference.
    let outside_of = |t: CrimeType| store.outside_by_type.get(t as usize).copied().unwrap_or(0);
    let types: Vec<Value> = CrimeType::ALL
        .iter()
        .filter(|t| counts[**t as usize] > 0)
        .map(|&t| {
            json!({
                "slug": t.slug(),
                "label": t.label(),
                "count": counts[t as usize],
                "unlocated": store.unlocated_of(t),
                "outside": outside_of(t),
            })
        })
        .collect();
    let g = &store.geography;
    let districts: Vec<Value> = (0..g.districts.len())
        .map(|i| {
            let bbox = crate::spatial::gazetteer::bbox_of(&g.districts.polygons[i]);
            json!({ "code": g.districts.codes[i], "name": g.districts.names[i], "bbox": bbox })
        })
        .collect();
    let bounds = g
        .county
        .bounding_rect()
        .map(|r| json!([r.min().x, r.min().y, r.max().x, r.max().y]));
    let months = store
        .month_range()
        .map(|(a, b)| json!({ "first": a.to_string(), "last": b.to_string() }));
    json!({
        "incidents": store.incidents.len(),
        "unlocated": store.unlocated,
        "outside": store.outside(),
        "types": types,
        "severities": severities,
        "months": months,
        "missing": store
            .missing_months(&crate::analysis::Filter::default())
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        "districts": districts,
        "bounds": bounds,
        "resolutions": super::cells::RESOLUTIONS.collect::<Vec<u8>>(),
        "methods": ["counts", "gistar", "moran", "kde"],
    })
}
