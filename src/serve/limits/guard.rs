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
    trusted_proxies: Vec<std::net::IpAddr>,
}

impl Guard {
    pub fn new(s: &LimitSettings) -> Self {
        Guard {
            by_addr: Buckets::new(s.ip_rps, s.ip_burst, s.max_delay(), s.max_clients),
            by_key: Buckets::new(s.key_rps, s.key_burst, s.max_delay(), s.max_clients),
            max_query_bytes: s.max_query_bytes,
            trusted_proxies: s.trusted_proxies.clone(),
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
pub async fn check(State(g): State<Arc<Guard>>, mut req: Request, next: Next) -> Response {
    forwarded_client(&g.trusted_proxies, &mut req);
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

/// Behind a trusted proxy, the request's peer address (`ConnectInfo`, which the rate
/// limits and the audit read) becomes the client the proxy names: the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy (entries to its left were
/// written by the client and prove nothing). From any other peer the header is ignored.
fn forwarded_client(trusted: &[std::net::IpAddr], req: &mut Request) {
    let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() else {
        return;
    };
    if !trusted.contains(&peer.ip()) {
        return;
    }
    let header: Vec<String> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let header = header.join(",");
    // From the right: the proxy appended the address it saw last; a malformed entry
    // before any client ends the walk (the proxy's address stands).
    for entry in header.rsplit(',') {
        match entry.trim().parse::<std::net::IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => {}
            Ok(ip) => {
                req.extensions_mut()
                    .insert(ConnectInfo(SocketAddr::new(ip, peer.port())));
                return;
            }
            Err(_) => return,
        }
    }
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

    /// The address the limits and the audit count a request against, after
    /// `forwarded_client`: from `peer`, with these `X-Forwarded-For` lines.
    fn counted(trusted: &[&str], peer: &str, lines: &[&str]) -> String {
        let trusted: Vec<std::net::IpAddr> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        let mut b = Request::builder().uri("/");
        for l in lines {
            b = b.header("x-forwarded-for", *l);
        }
        let mut req = b.body(axum::body::Body::empty()).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 5000)));
        forwarded_client(&trusted, &mut req);
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .unwrap()
            .0
            .ip()
            .to_string()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy_and_only_its_own_entry() {
        // No proxy trusted, or the peer is not one: the header is the client's own text.
        assert_eq!(counted(&[], "127.0.0.1", &["203.0.113.9"]), "127.0.0.1");
        assert_eq!(
            counted(&["10.0.0.1"], "198.51.100.7", &["203.0.113.9"]),
            "198.51.100.7"
        );
        // Behind nginx: the address nginx appended.
        assert_eq!(
            counted(&["127.0.0.1"], "127.0.0.1", &["203.0.113.9"]),
            "203.0.113.9"
        );
        // A client forging entries to its left changes nothing: it stays in its own bucket.
        assert_eq!(
            counted(
                &["127.0.0.1"],
                "127.0.0.1",
                &["1.1.1.1, 2.2.2.2, 203.0.113.9"]
            ),
            "203.0.113.9"
        );
        assert_eq!(
            counted(&["127.0.0.1"], "127.0.0.1", &["1.1.1.1", "203.0.113.9"]),
            "203.0.113.9"
        );
        // Junk to the left cannot push the request into the proxy's shared bucket either.
        assert_eq!(
            counted(&["127.0.0.1"], "127.0.0.1", &["not-an-ip, 203.0.113.9"]),
            "203.0.113.9"
        );
        // Two proxies in a row: past both.
        assert_eq!(
            counted(
                &["127.0.0.1", "10.0.0.2"],
                "127.0.0.1",
                &["203.0.113.9, 10.0.0.2"]
            ),
            "203.0.113.9"
        );
        assert_eq!(
            counted(&["127.0.0.1"], "127.0.0.1", &["2001:db8::5"]),
            "2001:db8::5"
        );
        // No header, or one nginx did not write whole: the proxy's address stands.
        assert_eq!(counted(&["127.0.0.1"], "127.0.0.1", &[]), "127.0.0.1");
        assert_eq!(
            counted(&["127.0.0.1"], "127.0.0.1", &["203.0.113.9, junk"]),
            "127.0.0.1"
        );
    }

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
