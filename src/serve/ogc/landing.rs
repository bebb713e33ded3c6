//! `GET /` (the landing page) and `GET /conformance`.
//!
//! A browser asking for `/` (an `Accept` that names `text/html` and no JSON type, or
//! `f=html`) is sent to the web map (303 See Other, `Vary: Accept`); every other client,
//! GDAL's `OAPIF:` driver, OWSLib and curl among them, gets the JSON landing page.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{JSON, OPENAPI, base_url, json_only, json_response, link, with_query};
use crate::serve::{AppError, AppState};

/// The conformance classes implemented.
pub const CONFORMS_TO: [&str; 11] = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/png",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
];

/// Whether the caller wants a page for people: `f=html`, or an `Accept` naming
/// `text/html` and no JSON type (browsers send `text/html,...,*/*;q=0.8`).
pub(super) fn wants_html(headers: &HeaderMap, query: Option<&str>) -> bool {
    let f = query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("f="));
    if let Some(f) = f {
        return f == "html";
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    accept.contains("text/html") && !accept.contains("json")
}

/// `GET /`.
pub async fn landing(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    if wants_html(&headers, uri.query()) {
        let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, "/map/")]).into_response();
        res.headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Accept"));
        return Ok(res);
    }
    let qs = json_only(uri.query(), &state.store())?;
    let base = base_url(&headers, &uri);
    let href = |path: &str| with_query(&format!("{base}{path}"), &qs);
    let doc = json!({
        "title": "hotspot",
        "description": "Crime and road collision hot spots for community safety analysts: \
                        boundaries with counts, H3 grids with Getis-Ord Gi*, emerging hot \
                        spots and incidents, as OGC API - Features, and their tiles as \
                        OGC API - Tiles.",
        "links": [
            link(href("/"), "self", JSON, "this document"),
            link(href("/api"), "service-desc", OPENAPI, "the API definition"),
            link(href("/conformance"), "conformance", JSON, "conformance classes"),
            link(href("/collections"), "data", JSON, "the collections"),
            link(
                format!("{base}/tileMatrixSets"),
                super::tilesets::REL_TILING_SCHEMES,
                JSON,
                "the tiling schemes of the tiles (OGC API - Tiles)",
            ),
            link(format!("{base}/map/"), "alternate", "text/html", "the web map"),
        ],
    });
    let mut res = json_response(&headers, &doc, JSON);
    res.headers_mut()
        .append(header::VARY, HeaderValue::from_static("Accept"));
    Ok(res)
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
