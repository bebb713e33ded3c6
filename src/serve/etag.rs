//! ETag and Cache-Control: a strong ETag from the body's hash, 304 when the client's
//! If-None-Match matches it by the weak comparison RFC 9110 (13.1.2) prescribes for
//! If-None-Match (`W/"x"` matches `"x"`: a cache or proxy that weakened our tag when it
//! compressed the body still revalidates); `private` on anything behind authentication.

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
        .is_some_and(|v| v.split(',').any(|t| weak_eq(t.trim(), &etag)));
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

/// RFC 9110 weak comparison: the opaque tags are equal, whether either is weak; `*`
/// matches any.
fn weak_eq(candidate: &str, etag: &str) -> bool {
    let strip = |t: &str| t.strip_prefix("W/").unwrap_or(t).to_owned();
    candidate == "*" || strip(candidate) == strip(etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(if_none_match: &str) -> StatusCode {
        let body = b"hello".to_vec();
        let first = cached(&HeaderMap::new(), body.clone(), "text/plain", false, 0);
        let tag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
        let mut h = HeaderMap::new();
        let v = if_none_match.replace("TAG", &tag);
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&v).unwrap());
        cached(&h, body, "text/plain", false, 0).status()
    }

    #[test]
    fn if_none_match_compares_weakly() {
        assert_eq!(status("TAG"), StatusCode::NOT_MODIFIED);
        assert_eq!(status("W/TAG"), StatusCode::NOT_MODIFIED);
        assert_eq!(status("\"other\", W/TAG"), StatusCode::NOT_MODIFIED);
        assert_eq!(status("*"), StatusCode::NOT_MODIFIED);
        assert_eq!(status("W/\"other\""), StatusCode::OK);
        assert_eq!(status("\"other\""), StatusCode::OK);
    }
}
