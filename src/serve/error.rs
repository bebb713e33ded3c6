//! One place where failures become HTTP responses: 4xx with a clear message for bad
//! input, a generic 500 (and a log line) for the rest, never internals (paths, SQL).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A request that cannot be answered.
#[derive(Debug)]
pub enum AppError {
    BadRequest(String),
    NotFound(String),
    /// The caller may not have this (their role is too low for it).
    Forbidden(String),
    /// The server cannot take this work now (the compute pool is full, or the work
    /// would not finish in time): 503 with `Retry-After`.
    Busy {
        retry_after_secs: u64,
        reason: String,
    },
    Internal(String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code, description) = match self {
            AppError::Busy {
                retry_after_secs,
                reason,
            } => {
                let mut r = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(
                        serde_json::json!({ "code": "ServiceUnavailable", "description": reason }),
                    ),
                )
                    .into_response();
                r.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(retry_after_secs),
                );
                return r;
            }
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, "InvalidParameterValue", m),
            AppError::NotFound(m) => (StatusCode::NOT_FOUND, "NotFound", m),
            AppError::Forbidden(m) => (StatusCode::FORBIDDEN, "Forbidden", m),
            AppError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "ServerError",
                    "internal error".to_owned(),
                )
            }
        };
        (
            status,
            Json(serde_json::json!({ "code": code, "description": description })),
        )
            .into_response()
    }
}
