//! ETag and Cache-Control: a strong ETag from the body's hash, 304 when the client's
//! If-None-Match matches; `private` on anything behind authentication.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use sha2::{Digest, Sha256};

/// A 200 with ETag and Cache-Control, or a 304 when `If-None-Match` has the same tag.
pub fn cached(
    req: &HeaderMap,
    body: Vec<u8>,
    content_type: &'static str,
    private: bool,
    max_age: u32,
) -> Response {
    let digest = Sha256::digest(&body);
    let tag: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    let etag = format!("\"{tag}\"");
    let matches = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let control = format!(
        "{}, max-age={max_age}",
        if private { "private" } else { "public" }
    );
    let mut builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, control);
    if matches {
        builder = builder.status(StatusCode::NOT_MODIFIED);
        return builder.body(Body::empty()).unwrap_or_default();
    }
    builder
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, HeaderValue::from_static(content_type))
        .body(Body::from(body))
        .unwrap_or_default()
}
