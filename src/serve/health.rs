//! `GET /health`: liveness plus what is loaded.

use axum::Json;
use axum::extract::State;

use super::AppState;

pub async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    let store = state.store();
    Json(serde_json::json!({
        "status": "ok",
        "incidents": store.incidents.len(),
        "unlocated": store.unlocated,
        "outside_study_area": store.outside(),
        "generation": state.generation(),
        "store_version": store.version,
    }))
}
