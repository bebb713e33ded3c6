//! (in progress)

use axum::Router;

use crate::serve::AppState;

/// This module's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
