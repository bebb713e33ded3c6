//! `GET /collections` and `GET /collections/{id}`: what each collection holds, its
//! extent in space (CRS84) and time (the data's months), and links to its items.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::catalog::{CollectionId, spatial_extent, temporal_extent};
use super::{CRS84, CSV, GEOJSON, JSON, base_url, json_only, json_response, link, with_query};
use crate::analysis::AnalysisStore;
use crate::serve::auth::{Principal, principal_of};
use crate::serve::{AppError, AppState};

/// The description of one collection; `qs` is the caller's filter, carried into its links.
fn describe(c: CollectionId, store: &AnalysisStore, base: &str, qs: &str) -> Value {
    let href = format!("{base}/collections/{}", c.id());
    let carry = |h: String| with_query(&h, qs);
    json!({
        "id": c.id(),
        "title": c.title(),
        "description": c.description(),
        "links": [
            link(carry(href.clone()), "self", JSON, "this collection"),
            link(carry(format!("{href}/items")), "items", GEOJSON, "the features"),
            link(carry(format!("{href}/items?f=csv")), "items", CSV, "the features as CSV"),
            link(
                carry(format!("{href}/queryables")),
                "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                super::SCHEMA_JSON,
                "the properties to filter and sort by",
            ),
        ],
        "extent": {
            "spatial": { "bbox": [spatial_extent(c, store)], "crs": CRS84 },
            "temporal": {
                "interval": [temporal_extent(store)],
                "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
            },
        },
        "itemType": "feature",
        "crs": [CRS84],
    })
}

/// `GET /collections`.
pub async fn list(
    State(state): State<AppState>,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    let store = state.store();
    let qs = json_only(uri.query(), &store)?;
    let base = base_url(&headers, &uri);
    // Only the collections this caller may read.
    let role = principal_of(principal).role;
    let collections: Vec<Value> = CollectionId::ALL
        .iter()
        .filter(|c| c.role() <= role)
        .map(|c| describe(*c, &store, &base, &qs))
        .collect();
    let doc = json!({
        "links": [link(
            with_query(&format!("{base}/collections"), &qs),
            "self",
            JSON,
            "the collections",
        )],
        "collections": collections,
    });
    Ok(json_response(&headers, &doc, JSON))
}

/// `GET /collections/{id}`.
pub async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    let c = CollectionId::parse(&id)
        .ok_or_else(|| AppError::NotFound(format!("no collection '{id}'")))?;
    let store = state.store();
    let qs = json_only(uri.query(), &store)?;
    let base = base_url(&headers, &uri);
    let doc = describe(c, &store, &base, &qs);
    Ok(json_response(&headers, &doc, JSON))
}
