//! `GET /` (the landing page) and `GET /conformance`.

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde_json::json;

use super::{JSON, OPENAPI, base_url, json_only, json_response, link, with_query};
use crate::serve::{AppError, AppState};

/// The conformance classes implemented.
pub const CONFORMS_TO: [&str; 3] = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
];

/// `GET /`.
pub async fn landing(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    let qs = json_only(uri.query(), &state.store())?;
    let base = base_url(&headers, &uri);
    let href = |path: &str| with_query(&format!("{base}{path}"), &qs);
    let doc = json!({
        "title": "hotspot",
        "description": "Crime and road collision hot spots for community safety analysts: \
                        boundaries with counts, H3 grids with Getis-Ord Gi*, emerging hot \
                        spots and incidents, as OGC API - Features.",
        "links": [
            link(href("/"), "self", JSON, "this document"),
            link(href("/api"), "service-desc", OPENAPI, "the API definition"),
            link(href("/conformance"), "conformance", JSON, "conformance classes"),
            link(href("/collections"), "data", JSON, "the collections"),
        ],
    });
    Ok(json_response(&headers, &doc, JSON))
}

/// `GET /conformance`.
pub async fn conformance(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    json_only(uri.query(), &state.store())?;
    Ok(json_response(
        &headers,
        &json!({ "conformsTo": CONFORMS_TO }),
        JSON,
    ))
}
