//! Limits and hardening: what keeps one client, or one request, from taking the server.
//!
//! - `rate.rs`: token buckets per client address and per API key, in bounded tables.
//! - `guard.rs`: the middleware (429 with `Retry-After`, 414 for long URIs), JSON bodies
//!   for the errors layers make, and the panic handler (a generic 500).
//! - `settings.rs`: the `[limits]` config table and its flags.
//!
//! The other caps live where their values are parsed: `limit` (1..=10000) and `bbox`
//! (four finite numbers in range, min <= max) in `ogc/query.rs`, the bbox area here
//! ([`check_bbox_area`], applied by the items handler), the zoom (0..=22) in `tile.rs`,
//! the body size and the request time in `serve/mod.rs` (tower-http layers).

mod guard;
pub(crate) mod rate;
mod settings;

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use tower_http::catch_panic::CatchPanicLayer;

pub use guard::{MAX_PATH_BYTES, api_key};
pub use rate::{Buckets, Client};
pub use settings::{LimitArgs, LimitSettings};

use super::AppError;
use super::ogc::query::Bbox;

/// Wraps a router (with its timeout and body limit already applied) in the panic catcher,
/// the URI caps and rate limits, and the JSON error bodies, outermost last.
pub fn wrap<S>(app: Router<S>, s: &LimitSettings) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let guard = Arc::new(guard::Guard::new(s));
    app.layer(CatchPanicLayer::custom(guard::panic_response))
        .layer(middleware::from_fn_with_state(guard, guard::check))
        .layer(middleware::map_response(guard::json_errors))
}

/// Refuses a bbox covering more than `max_deg2` square degrees.
///
/// # Errors
/// 400 naming the area and the cap.
pub fn check_bbox_area(b: &Bbox, max_deg2: f64) -> Result<(), AppError> {
    let area = (b.east - b.west) * (b.north - b.south);
    if area > max_deg2 {
        return Err(AppError::BadRequest(format!(
            "parameter 'bbox': it covers {area:.0} square degrees; the most is {max_deg2}"
        )));
    }
    Ok(())
}
