//! `/map/api/meta`: what the map's controls offer, from the data: the crime types present
//! (with counts), the months covered, the districts and the study area's bounds.

use geo::BoundingRect;
use serde_json::{Value, json};

use crate::analysis::AnalysisStore;
use crate::model::CrimeType;

/// The metadata document.
pub fn meta(store: &AnalysisStore) -> Value {
    let mut counts = [0u64; CrimeType::COUNT];
    for &t in &store.incidents.ctype {
        if let Some(c) = counts.get_mut(usize::from(t)) {
            *c += 1;
        }
    }
    let types: Vec<Value> = CrimeType::ALL
        .iter()
        .filter(|t| counts[**t as usize] > 0)
        .map(|t| json!({ "slug": t.slug(), "label": t.label(), "count": counts[*t as usize] }))
        .collect();
    let g = &store.geography;
    let districts: Vec<Value> = (0..g.districts.len())
        .map(|i| json!({ "code": g.districts.codes[i], "name": g.districts.names[i] }))
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
        "types": types,
        "months": months,
        "districts": districts,
        "bounds": bounds,
        "resolutions": super::cells::RESOLUTIONS.collect::<Vec<u8>>(),
        "methods": ["counts", "gistar", "moran", "kde"],
    })
}
