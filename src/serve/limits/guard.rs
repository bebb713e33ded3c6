//! The middleware: rate limits (429 with `Retry-After`), the URI caps (414), and error
//! bodies that never carry internals.
//!
//! Error responses made below the handlers (axum's 405, the body limit's 413, the
//! timeout's 503, extractor rejections in plain text) are replaced by the same JSON shape
//! as [`AppError`](crate::serve::AppError), naming only the status; a panic becomes a
//! generic 500 (the panic itself goes to the log, never to the client).

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::LimitSettings;
use super::rate::{Buckets, Client};

/// Longest request path: no route has one anywhere near this.
pub const MAX_PATH_BYTES: usize = 1024;

/// Paths never rate limited (liveness probes).
const UNLIMITED: [&str; 1] = ["/health"];

/// The limiters and caps one router shares.
#[derive(Debug)]
pub struct Guard {
    by_addr: Buckets,
    by_key: Buckets,
    max_query_bytes: usize,
}

impl Guard {
    pub fn new(s: &LimitSettings) -> Self {
        Guard {
            by_addr: Buckets::new(s.ip_rps, s.ip_burst, s.max_delay(), s.max_clients),
            by_key: Buckets::new(s.key_rps, s.key_burst, s.max_delay(), s.max_clients),
            max_query_bytes: s.max_query_bytes,
        }
    }

    /// The wait before this request may be served (zero inside the burst).
    ///
    /// # Errors
    /// The time until it would be let in, when that is past the delay allowed.
    fn rate(&self, req: &Request, now: Instant) -> Result<Duration, Duration> {
        if UNLIMITED.contains(&req.uri().path()) {
            return Ok(Duration::ZERO);
        }
        let mut wait = Duration::ZERO;
        // Router tests (`oneshot`) have no peer address: only the key limit applies.
        if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
            wait = wait.max(self.by_addr.take(Client::addr(peer.ip()), now)?);
        }
        if let Some(key) = api_key(req.headers()) {
            wait = wait.max(self.by_key.take(Client::key(key), now)?);
        }
        Ok(wait)
    }
}

/// The key a client presents, as sent: `Authorization: Bearer <key>` or `X-API-Key`.
/// Whether it is valid is the access layer's business; a client inventing keys still
/// meets its address's limit.
pub fn api_key(h: &HeaderMap) -> Option<&[u8]> {
    let bearer = h.get(header::AUTHORIZATION).and_then(|v| {
        let v = v.as_bytes();
        let (scheme, rest) = v.split_at_checked(7)?;
        scheme
            .eq_ignore_ascii_case(b"bearer ")
            .then(|| rest.trim_ascii())
    });
    bearer
        .or_else(|| h.get("x-api-key").map(|v| v.as_bytes().trim_ascii()))
        .filter(|k| !k.is_empty())
}

/// Checks the URI caps and the rate limits before anything else runs.
pub async fn check(State(g): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let query = req.uri().query().map_or(0, str::len);
    if query > g.max_query_bytes {
        return error(
            StatusCode::URI_TOO_LONG,
            &format!(
                "the query string is longer than {} bytes",
                g.max_query_bytes
            ),
        );
    }
    if req.uri().path().len() > MAX_PATH_BYTES {
        return error(
            StatusCode::URI_TOO_LONG,
            &format!("the path is longer than {MAX_PATH_BYTES} bytes"),
        );
    }
    let wait = match g.rate(&req, Instant::now()) {
        Ok(wait) => wait,
        Err(wait) => {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut res = error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("too many requests: retry after {secs} s"),
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return res;
        }
    };
    // Past the burst: held until its token refills (at most `max_delay_ms`), so a client
    // paging one request after another runs at the sustained rate instead of failing.
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    next.run(req).await
}

/// Gives error responses without a JSON body one that names only the status.
pub async fn json_errors(res: Response) -> Response {
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (mut parts, _) = res.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    let reason = status.canonical_reason().unwrap_or("error");
    let fresh = error(status, &reason.to_ascii_lowercase());
    let (fresh_parts, body) = fresh.into_parts();
    parts.headers.extend(fresh_parts.headers);
    Response::from_parts(parts, body)
}

/// A panic in a handler: a generic 500.
pub fn panic_response(_panic: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

/// The JSON error body every failure shares: `{"code", "description"}`.
pub fn error(status: StatusCode, description: &str) -> Response {
    let code = match status {
        StatusCode::INTERNAL_SERVER_ERROR => "ServerError".to_owned(),
        s => s
            .canonical_reason()
            .unwrap_or("Error")
            .replace([' ', '-'], ""),
    };
    (
        status,
        Json(serde_json::json!({ "code": code, "description": description })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_either_header() {
        let mut h = HeaderMap::new();
        assert_eq!(api_key(&h), None);
        h.insert("x-api-key", HeaderValue::from_static(" k1 "));
        assert_eq!(api_key(&h), Some(&b"k1"[..]));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer k2"));
        assert_eq!(api_key(&h), Some(&b"k2"[..]));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic a2V5"),
        );
        assert_eq!(api_key(&h), Some(&b"k1"[..]));
        h.remove("x-api-key");
        assert_eq!(api_key(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer  "));
        assert_eq!(api_key(&h), None);
    }
}
