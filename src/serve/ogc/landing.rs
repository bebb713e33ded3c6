//! `GET /` (the landing page) and `GET /conformance`.

use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde_json::json;

use super::{JSON, OPENAPI, base_url, json_only, json_response, link};
use crate::serve::AppError;

/// The conformance classes implemented.
pub const CONFORMS_TO: [&str; 3] = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
];

/// `GET /`.
pub async fn landing(headers: HeaderMap, uri: Uri) -> Result<Response, AppError> {
    json_only(uri.query())?;
    let base = base_url(&headers, &uri);
    let doc = json!({
        "title": "hotspot",
        "description": "Crime and road collision hot spots for community safety analysts: \
                        boundaries with counts, H3 grids with Getis-Ord Gi*, emerging hot \
                        spots and incidents, as OGC API - Features.",
        "links": [
            link(format!("{base}/"), "self", JSON, "this document"),
            link(format!("{base}/api"), "service-desc", OPENAPI, "the API definition"),
            link(format!("{base}/conformance"), "conformance", JSON, "conformance classes"),
            link(format!("{base}/collections"), "data", JSON, "the collections"),
        ],
    });
    Ok(json_response(&headers, &doc, JSON))
}

/// `GET /conformance`.
pub async fn conformance(headers: HeaderMap, uri: Uri) -> Result<Response, AppError> {
    json_only(uri.query())?;
    Ok(json_response(
        &headers,
        &json!({ "conformsTo": CONFORMS_TO }),
        JSON,
    ))
}
