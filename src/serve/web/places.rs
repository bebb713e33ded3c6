//! `/map/api/places?q=&limit=`: the map's search box. The bundled gazetteer
//! (`crate::spatial::gazetteer`: districts, LSOAs, towns, postcodes) plus the streets of
//! the data's snap points (`streets.rs`). Below analyst a street is offered only under the
//! k rule (at least k incidents outside the sensitive categories at its snap points over
//! the whole data), and its point and extent come from the snap points with such
//! incidents only, so a suggestion never tells the public that a rare or sensitive crime
//! happened in a street (police.uk itself publishes every snap point's street for its
//! map).

use std::sync::Arc;

use serde_json::{Value, json};

use super::streets::StreetIndex;
use crate::analysis::AnalysisStore;
use crate::model::TypeSet;
use crate::spatial::gazetteer;

/// The largest `limit`.
pub const MAX_LIMIT: usize = 25;

/// The search: `k` below analyst (`None` above); `sensitive` the categories the k rule
/// leaves out.
pub fn places(
    store: &Arc<AnalysisStore>,
    query: &str,
    limit: usize,
    k: Option<u64>,
    sensitive: TypeSet,
) -> Value {
    let q = gazetteer::normalise(query);
    let index = StreetIndex::of(store, sensitive);
    // Streets from two characters on (one matches half the county).
    let streets = (q.chars().count() >= 2)
        .then(|| (0..index.streets.len() as u32).filter_map(|s| index.place(s, k)))
        .into_iter()
        .flatten();
    let hits = gazetteer::search(
        gazetteer::fixed(&store.geography).iter().chain(streets),
        query,
        limit,
    );
    json!({ "query": query, "places": hits })
}
