//! The map server: axum + tokio. This is the only layer that knows about HTTP; it reads
//! the analysis store (plain synchronous Rust) behind a shared, swappable handle.
//!
//! `router(state)` builds the whole service, so tests call `router(state).oneshot(req)`
//! without a socket; `run` binds it and serves it through `conn.rs` (header-read timeout,
//! connection caps), with graceful shutdown on SIGTERM or Ctrl-C.

pub mod audit;
pub mod auth;
mod clock;
pub mod compute;
mod conn;
pub mod disclosure;
mod error;
mod etag;
pub mod follow;
mod health;
pub(crate) mod jobs;
pub mod limits;
pub mod ogc;
pub mod params;
pub mod redact;
mod settings;
mod state;
pub mod tile;
pub mod tiles;
pub(crate) mod upload;
// The web map (issue 5): its files under /map/ and the endpoints only it uses.
pub mod web;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::AppError;
pub use etag::cached;
pub use settings::{ServeArgs, Settings};
pub use state::{AppState, Demo, load, load_at, load_or_seed};

/// Every route with its declared access (before the layers).
fn routes() -> auth::Routes {
    auth::Routes::new()
        .route(
            "/health",
            auth::Access::Role(auth::Role::Public),
            get(health::health),
        )
        .merge(ogc::routes())
        .merge(tiles::heatmap::routes())
        .merge(tiles::mvt::routes())
        .merge(tiles::basemap::routes())
        .merge(upload::routes())
        // The web map (issue 5).
        .merge(web::routes())
}

/// The access policy every route declared, by route template.
pub fn policy() -> auth::Policy {
    routes().into_parts().1
}

/// The whole HTTP service.
pub fn router(state: AppState) -> Router {
    let s = state.settings();
    let cors = if s.cors_origins.is_empty() {
        CorsLayer::new()
    } else {
        let origins: Vec<axum::http::HeaderValue> = s
            .cors_origins
            .iter()
            .filter_map(|o| o.parse().ok())
            .collect();
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([axum::http::Method::GET])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::HeaderName::from_static("x-api-key"),
            ])
    };
    let (app, policy) = routes().into_parts();
    let gate = auth::Gate {
        state: state.clone(),
        policy: std::sync::Arc::new(policy),
    };
    let app = app
        // Access control (auth.rs): after every route, so each is covered; each route
        // declared its access where it was built, and one without is admin-only.
        .route_layer(axum::middleware::from_fn_with_state(gate, auth::middleware))
        .fallback(|| async { AppError::NotFound("no such resource".into()) })
        .layer(CompressionLayer::new().gzip(true).br(true))
        .layer(RequestBodyLimitLayer::new(s.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            s.request_timeout(),
        ));
    // Limits and hardening (src/serve/limits): panics, rate limits, URI caps, error bodies.
    // CORS outside them, so a browser map can read a 429 (and preflights cost no tokens).
    let app = limits::wrap(app, &s.limits);
    // The span names the target with its secrets redacted (`redact.rs`): tower-http's
    // default span writes the URI as sent, `?key=...` and all. No headers are recorded.
    let redactor = state.redactor().clone();
    let trace = TraceLayer::new_for_http().make_span_with(
        move |req: &axum::http::Request<axum::body::Body>| {
            let presented = limits::api_key(req.headers()).and_then(|k| std::str::from_utf8(k).ok());
            let uri = redactor.target(req.uri().path(), req.uri().query(), presented);
            tracing::debug_span!("request", method = %req.method(), uri = %uri, version = ?req.version())
        },
    );
    app.layer(cors).layer(trace).with_state(state)
}

/// Serves until SIGTERM or Ctrl-C, finishing requests in flight.
///
/// # Errors
/// When the address cannot be bound.
pub async fn run(state: AppState) -> anyhow::Result<()> {
    let addr = state.settings().bind;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    tracing::info!(%local, "listening");
    println!("hotspot is serving at http://{local}/ (health: http://{local}/health)");
    // The web map (issue 5): the URL a person opens.
    match web::availability() {
        web::Availability::NoMapLibre => {
            println!("web map: {}", web::Availability::NoMapLibre.describe());
        }
        a => println!("web map: http://{local}/map/ ({})", a.describe()),
    }
    warm_covers(&state);
    // The ingest worker: resumes a job a stopped server left running, then the queue.
    jobs::start(&state);
    let s = state.settings();
    let limits = conn::ConnLimits {
        header_read_timeout: Duration::from_secs(s.header_read_timeout_secs),
        max_connections: s.max_connections,
        max_per_client: s.max_connections_per_client,
    };
    // Our own accept loop (conn.rs): header-read timeout and connection caps, which
    // axum::serve does not have; each request carries the peer address (ConnectInfo)
    // for the per-address rate limit, as into_make_service_with_connect_info did.
    conn::serve(listener, router(state), limits, shutdown()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Covers the county with H3 cells at every resolution the tiles and collections use,
/// computes the record keys and backtests the default patrol list, in the background, so
/// the first map view does not wait for h3o's tiler (about a second at resolution 10) or
/// the backtest.
fn warm_covers(state: &AppState) {
    let store = state.store();
    let sensitive = state.settings().disclosure.sensitive_types();
    let geography = store.geography.clone();
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        // The record keys of perturbed answers, so the first public request does not
        // wait for them either (tens of ms per million incidents).
        store.record_keys();
        for res in [6u8, 7, 8, 9, 10] {
            if let Ok(res) = h3o::Resolution::try_from(res) {
                crate::stats::grid::cached_cover(&geography, None, res);
            }
        }
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis(),
            "H3 covers ready"
        );
        // The default patrol list's method-choosing backtest (cached per store), which
        // was most of the first map view's wait for its patrol list (1.2 s on the real
        // year).
        let started = std::time::Instant::now();
        let opts = ogc::PATROL_OPTIONS;
        let units = crate::stats::study::Units::H3(ogc::HOTSPOT_RES);
        // As analysts ask it, and as partners do (the sensitive categories left out).
        let all = crate::analysis::Filter::default();
        let partner = disclosure::without_sensitive(&all, sensitive, false).ok();
        for filter in std::iter::once(all).chain(partner) {
            if crate::stats::patrol::patrol(store.clone(), units, &filter, opts).is_err() {
                return;
            }
        }
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis(),
            "default patrol lists ready"
        );
    });
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
