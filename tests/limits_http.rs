//! Limits and hardening through the router, without a socket: rate limits per client
//! address and per API key (429 with `Retry-After`), the caps (query and path length, bbox
//! area, `limit`, zoom, body size, request time), and error bodies that never show
//! internals (filesystem paths, SQL, panics, source files), a panicking handler included.

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use hotspot::analysis::{AnalysisStore, Builder};
use hotspot::serve::limits::{self, LimitSettings};
use hotspot::serve::{AppState, Settings, router};
use hotspot::spatial::geography::Geography;
use serde_json::Value;
use tower::ServiceExt as _;
use tower_http::timeout::TimeoutLayer;

/// An empty store: every request here fails or is answered before any statistics run.
fn store() -> AnalysisStore {
    static GEO: LazyLock<Arc<Geography>> =
        LazyLock::new(|| Arc::new(Geography::bundled().expect("the bundled geography")));
    Builder::new().finish(GEO.clone())
}

fn app(limits: LimitSettings) -> Router {
    router(AppState::new(
        store(),
        Settings {
            limits,
            body_limit_bytes: 1 << 20,
            // Two public keys for the per-key limits (an unknown key is refused with 403
            // by access control before any handler).
            keys: ["key-one", "key-two"]
                .iter()
                .map(|k| hotspot::serve::auth::ApiKey {
                    name: (*k).to_owned(),
                    role: hotspot::serve::auth::Role::Public,
                    sha256: hotspot::serve::auth::hash_key(k),
                })
                .collect(),
            ..Settings::default()
        },
    ))
}

struct Reply {
    status: StatusCode,
    retry_after: Option<String>,
    ctype: String,
    body: String,
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let res = app.clone().oneshot(req).await.expect("the router answers");
    let header = |h| {
        res.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (retry_after, ctype) = (header(header::RETRY_AFTER), header(header::CONTENT_TYPE));
    let status = res.status();
    let body = to_bytes(res.into_body(), 1 << 24).await.expect("a body");
    Reply {
        status,
        retry_after,
        ctype: ctype.unwrap_or_default(),
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn get_from(uri: &str, peer: Option<[u8; 4]>, key: Option<&str>) -> Request<Body> {
    let mut req = Request::get(uri);
    if let Some(k) = key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
    }
    let mut req = req.body(Body::empty()).expect("a request");
    if let Some(ip) = peer {
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((ip, 40000))));
    }
    req
}

/// What an error body must never contain.
const INTERNALS: [&str; 14] = [
    "sqlite",
    "panicked",
    "backtrace",
    "thread '",
    ".rs",
    "src/",
    "/home",
    "/root",
    "/tmp",
    "/var",
    "/usr",
    "registry",
    "rusqlite",
    "called `",
];

/// A JSON `{code, description}` body with nothing internal in it.
fn assert_clean(what: &str, r: &Reply) {
    assert!(r.status.as_u16() >= 400, "{what}: {}", r.status);
    assert!(
        r.ctype.contains("json"),
        "{what}: content type '{}'",
        r.ctype
    );
    let v: Value = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        v["code"].is_string() && v["description"].is_string(),
        "{what}: {v}"
    );
    let lower = r.body.to_ascii_lowercase();
    for bad in INTERNALS {
        assert!(
            !lower.contains(bad),
            "{what}: body shows '{bad}': {}",
            r.body
        );
    }
    let manifest = env!("CARGO_MANIFEST_DIR").to_ascii_lowercase();
    assert!(!lower.contains(&manifest), "{what}: {}", r.body);
}

#[tokio::test]
async fn errors_never_reveal_internals() {
    let app = app(LimitSettings::default());
    let long_query = format!("/collections?f={}", "a".repeat(5000));
    let long_path = format!("/collections/{}", "p".repeat(2000));
    let cases: Vec<(&str, StatusCode)> = vec![
        ("/no/such/thing", StatusCode::NOT_FOUND),
        ("/../../etc/passwd", StatusCode::NOT_FOUND),
        ("/collections/%2e%2e%2fetc", StatusCode::NOT_FOUND),
        ("/collections/nope/items", StatusCode::NOT_FOUND),
        ("/collections?foo=1", StatusCode::BAD_REQUEST),
        (
            "/collections/districts/items?limit=0",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/collections/districts/items?limit=%zz",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/collections/districts/items?limit=%ff%fe",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/collections/districts/items?bbox=-3,53,-2,NaN",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/collections/districts/items?bbox=-2,53,-3,54",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/collections/districts/items?datetime=yesterday",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/collections/districts/items?types=%27;DROP%20TABLE",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/collections/districts/items?district=..%2F..%2F",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/collections/districts/items?offset=-1",
            StatusCode::BAD_REQUEST,
        ),
        ("/tiles/heatmap/23/0/0.png", StatusCode::BAD_REQUEST),
        ("/tiles/cells/1/5/0.mvt", StatusCode::BAD_REQUEST),
        ("/tiles/boundaries/a/b/c.mvt", StatusCode::BAD_REQUEST),
        ("/tiles/heatmap/1/0/0.jpg", StatusCode::NOT_FOUND),
        (
            "/tiles/heatmap/99999999999999999999/0/0.png",
            StatusCode::BAD_REQUEST,
        ),
        (&long_query, StatusCode::URI_TOO_LONG),
        (&long_path, StatusCode::URI_TOO_LONG),
    ];
    for (uri, want) in cases {
        let r = send(&app, get_from(uri, None, None)).await;
        assert_eq!(r.status, want, "{uri}: {}", r.body);
        assert_clean(uri, &r);
    }
    // Methods the routes do not have, and a body over the limit.
    let post = Request::post("/collections")
        .header(header::CONTENT_LENGTH, (2u64 << 20).to_string())
        .body(Body::from(vec![b'x'; 2 << 20]))
        .expect("a request");
    let r = send(&app, post).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_clean("oversized body", &r);
    let delete = Request::delete("/collections")
        .body(Body::empty())
        .expect("a request");
    let r = send(&app, delete).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_clean("DELETE", &r);
}

#[tokio::test]
async fn the_caps_say_what_is_wrong() {
    let app = app(LimitSettings {
        max_bbox_area_deg2: 4.0,
        ..LimitSettings::default()
    });
    let r = send(&app, get_from("/tiles/heatmap/23/0/0.png", None, None)).await;
    assert!(r.body.contains("maximum 22"), "{}", r.body);
    // A limit over the maximum is capped, and the answer says so (as pygeoapi caps it).
    let r = send(
        &app,
        get_from("/collections/districts/items?limit=10001", None, None),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("limit 10001 capped to 10000"), "{}", r.body);
    // A box over the area cap (QGIS zoomed out sends near-world ones) is clamped to the
    // data's extent: the same features as the county's own box, and a note.
    let count = |body: &str| -> u64 {
        serde_json::from_str::<serde_json::Value>(body).expect("JSON")["numberMatched"]
            .as_u64()
            .expect("numberMatched")
    };
    for wide in [
        "/collections/districts/items?bbox=-4,53,-1,55",
        "/collections/districts/items?bbox=-180,-90,180,90",
        "/collections/districts/items?bbox=-180,-90,0,180,90,0",
    ] {
        let r = send(&app, get_from(wide, None, None)).await;
        assert_eq!(r.status, StatusCode::OK, "{wide}: {}", r.body);
        assert!(r.body.contains("bbox clamped"), "{}", r.body);
        assert_eq!(count(&r.body), 14, "{wide}");
    }
    // Clamped to nothing: a box far from Lancashire has no features, not an error.
    let far = "/collections/districts/items?bbox=100,-40,160,40";
    let r = send(&app, get_from(far, None, None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(count(&r.body), 0);
    let r = send(
        &app,
        get_from(&format!("/?{}", "x".repeat(4097)), None, None),
    )
    .await;
    assert_eq!(r.status, StatusCode::URI_TOO_LONG, "{}", r.body);
    let r = send(
        &app,
        get_from(&format!("/conformance?{}", "x=1&".repeat(8)), None, None),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "a short query goes on to the handler"
    );
}

#[tokio::test]
async fn rate_limits_per_address_and_per_key() {
    let app = app(LimitSettings {
        ip_rps: 1,
        ip_burst: 3,
        key_rps: 1,
        key_burst: 2,
        ..LimitSettings::default()
    });
    let a = Some([192, 0, 2, 1]);
    for _ in 0..3 {
        let r = send(&app, get_from("/conformance", a, None)).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = send(&app, get_from("/conformance", a, None)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.retry_after.as_deref(), Some("1"));
    assert_clean("429", &r);
    // Health probes are never limited; another address has its own bucket.
    let r = send(&app, get_from("/health", a, None)).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(&app, get_from("/conformance", Some([192, 0, 2, 2]), None)).await;
    assert_eq!(r.status, StatusCode::OK);

    // Without a peer address (as in these tests) only the key limit applies.
    for _ in 0..2 {
        let r = send(&app, get_from("/conformance", None, Some("key-one"))).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = send(&app, get_from("/conformance", None, Some("key-one"))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.retry_after.is_some());
    let r = send(&app, get_from("/conformance", None, Some("key-two"))).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(&app, get_from("/conformance", None, None)).await;
    assert_eq!(r.status, StatusCode::OK);
    // A client inventing keys still meets its address's limit.
    let b = Some([192, 0, 2, 3]);
    let mut refused = 0;
    for i in 0..6 {
        let r = send(&app, get_from("/conformance", b, Some(&format!("k{i}")))).await;
        refused += usize::from(r.status == StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(refused, 3);
}

#[tokio::test]
async fn a_browser_map_can_read_a_429() {
    let app = router(AppState::new(
        store(),
        Settings {
            cors_origins: vec!["https://map.example".into()],
            limits: LimitSettings {
                ip_rps: 1,
                ip_burst: 1,
                ..LimitSettings::default()
            },
            ..Settings::default()
        },
    ));
    let mut last = None;
    for _ in 0..2 {
        let mut req = get_from("/conformance", Some([203, 0, 113, 5]), None);
        req.headers_mut().insert(
            header::ORIGIN,
            header::HeaderValue::from_static("https://map.example"),
        );
        last = Some(app.clone().oneshot(req).await.expect("the router answers"));
    }
    let res = last.expect("two replies");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        res.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .and_then(|v| v.to_str().ok()),
        Some("https://map.example")
    );
}

#[tokio::test]
async fn the_default_limits_let_a_map_view_through() {
    let app = app(LimitSettings::default());
    let peer = Some([198, 51, 100, 7]);
    // A 4x4 view of boundary tiles at zoom 9 around Preston and a burst of collection
    // requests, twice (a pan back): 112 requests at once from one address.
    for _ in 0..2 {
        for x in 250..254 {
            for y in 164..168 {
                let uri = format!("/tiles/boundaries/9/{x}/{y}.mvt");
                let r = send(&app, get_from(&uri, peer, None)).await;
                assert!(r.status.is_success(), "{uri}: {}", r.status);
            }
        }
        for _ in 0..40 {
            let r = send(&app, get_from("/collections", peer, None)).await;
            assert!(r.status.is_success(), "{}", r.status);
        }
    }
}

async fn boom() -> &'static str {
    panic!("secret at /home/analyst/src/serve/x.rs: sqlite said no")
}

#[tokio::test]
async fn a_panic_is_a_generic_500_and_a_timeout_a_clean_503() {
    let app: Router = Router::new()
        .route("/boom", get(boom))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_millis(20),
        ));
    let app = limits::wrap(app, &LimitSettings::default());
    let r = send(&app, get_from("/boom", None, None)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_clean("panic", &r);
    assert!(!r.body.contains("secret"), "{}", r.body);
    let r = send(&app, get_from("/slow", None, None)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_clean("timeout", &r);
}
