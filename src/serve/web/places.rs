//! `/map/api/places?q=&limit=`: the map's search box. The bundled gazetteer
//! (`crate::spatial::gazetteer`: districts, LSOAs, towns, postcodes) plus the streets of
//! the data's snap points. Below analyst a street is offered only when its snap points
//! hold at least k incidents outside the sensitive categories over the whole data, so a
//! suggestion never tells the public that a rare or sensitive crime happened in a street
//! (police.uk itself publishes every snap point's street for its map).

use serde_json::{Value, json};

use crate::analysis::AnalysisStore;
use crate::model::TypeSet;
use crate::spatial::gazetteer::{self, Place, StreetPoint};

/// The largest `limit`.
pub const MAX_LIMIT: usize = 25;

/// The search: `k` (with the sensitive categories) below analyst, `None` above.
pub fn places(
    store: &AnalysisStore,
    query: &str,
    limit: usize,
    k: Option<(u64, TypeSet)>,
) -> Value {
    let q = gazetteer::normalise(query);
    let streets = matching_streets(store, &q, k);
    let hits = gazetteer::search(
        gazetteer::fixed(&store.geography).iter().chain(&streets),
        query,
        limit,
    );
    json!({ "query": query, "places": hits })
}

fn street_name(text: &str) -> &str {
    let t = text.trim();
    t.strip_prefix("On or near ").unwrap_or(t).trim()
}

fn matching_streets(store: &AnalysisStore, q: &str, k: Option<(u64, TypeSet)>) -> Vec<Place> {
    if q.chars().count() < 2 {
        return Vec::new();
    }
    let locs = &store.locations;
    let hit: Vec<bool> = locs
        .street
        .iter()
        .map(|s| {
            let n = street_name(s);
            !n.is_empty() && gazetteer::name_match(&gazetteer::normalise(n), q).is_some()
        })
        .collect();
    if !hit.iter().any(|&h| h) {
        return Vec::new();
    }
    let g = &store.geography;
    let district = |i: usize| {
        g.districts
            .names
            .get(usize::from(locs.district[i]))
            .cloned()
    };
    let ids: Vec<usize> = (0..locs.len()).filter(|&i| hit[i]).collect();
    let points: Vec<StreetPoint<'_>> = ids
        .iter()
        .map(|&i| StreetPoint {
            name: street_name(&locs.street[i]),
            district: district(i),
            lon: locs.lon(i),
            lat: locs.lat(i),
        })
        .collect();
    let mut out = gazetteer::streets(&points);
    if let Some((k, sensitive)) = k {
        // Public incidents per matching location, then per (street, district).
        let mut per_loc = vec![0u64; locs.len()];
        for (&l, &t) in store.incidents.loc.iter().zip(&store.incidents.ctype) {
            let l = l as usize;
            if hit.get(l) == Some(&true) && !sensitive.contains_code(t) {
                per_loc[l] += 1;
            }
        }
        let mut counts: std::collections::HashMap<(&str, Option<&str>), u64> =
            std::collections::HashMap::new();
        for (p, &l) in points.iter().zip(&ids) {
            *counts.entry((p.name, p.district.as_deref())).or_default() += per_loc[l];
        }
        out.retain(|p| {
            counts
                .get(&(p.name.as_str(), p.district.as_deref()))
                .is_some_and(|&n| n >= k)
        });
    }
    out
}
