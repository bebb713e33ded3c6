//! `POST /admin/ingest?name=<file name>` (admin): a police.uk CSV or zip, a STATS19 CSV,
//! or any file `hotspot ingest` takes, as the raw request body; `GET
//! /admin/ingest/{id}`: the job it made.
//!
//! The upload is written to `jobs/` in the data directory and synced. A zip is first
//! inflated once without being kept, its bytes counted as they come out (never the
//! sizes its headers declare), under the `[limits]` `zip_*` settings: entry count, each
//! entry's size and compression ratio, the total. One over a limit (a zip bomb) is
//! refused whole with 422 and a reason at once, and nothing is queued; memory stays
//! bounded by the entry limit. Otherwise the upload becomes an ingest job (`jobs.rs`)
//! and the answer is 202 with the job's id and `Location`, at once: the ingest runs on
//! the server's one ingest worker, not in the request, so no timeout cuts it short.
//!
//! The job goes through the CLI's path (`ingest::discover`, then `Store::ingest_bytes`
//! per file or archive entry): one transaction a file, so a crash at any point leaves
//! every file either wholly in or wholly out, and the same bytes again change nothing
//! (checksum skip; police.uk force-months are replaced, not doubled). Then the analysis
//! store is rebuilt from the store of record and swapped in (`AppState::replace_store`,
//! which bumps the generation every cache key carries).
//!
//! The job's result is the ingest summary per file, the errors of files that could not
//! be ingested (status 422 if any) and the rejected rows (the first
//! [`MAX_REJECTS_SHOWN`]). Every ingest is written to the audit log, durably, before the
//! job is marked done.

use std::path::Path;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::auth::{Access, Principal, Role, Routes, principal_of};
use super::{AppError, AppState, audit, jobs, params};
use crate::ingest::{IngestError, discover};
use crate::store::{IngestSummary, Store};

/// Rejected rows listed in a response (all are counted).
pub const MAX_REJECTS_SHOWN: usize = 1000;

/// Longest accepted file name.
const MAX_NAME: usize = 200;

/// This module's routes. The body limit is the server's (`body_limit_bytes`), not
/// axum's 2 MB default for `Bytes`.
pub fn routes() -> Routes {
    Routes::new()
        .route(
            "/admin/ingest",
            Access::Role(Role::Admin),
            post(upload)
                .layer(DefaultBodyLimit::disable())
                .get(list_jobs),
        )
        .route("/admin/ingest/{id}", Access::Role(Role::Admin), get(job))
}

/// Most jobs a list gives.
const MAX_LIST: usize = 1000;

/// `GET /admin/ingest[?state=queued|running|done|failed][&limit=N]`: the ingest jobs,
/// newest first (default 50, at most 1000), each as `GET /admin/ingest/{id}` gives it.
async fn list_jobs(State(state): State<AppState>, uri: Uri) -> Result<Response, AppError> {
    let p = params::parse(uri.query(), &["state", "limit"])?;
    let only = match p.get("state").map(|s| s.trim()) {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<jobs::JobState>(serde_json::Value::String(s.to_owned()))
                .map_err(|_| {
                    AppError::BadRequest(format!(
                        "parameter 'state': '{s}' is none of queued, running, done, failed"
                    ))
                })?,
        ),
    };
    let limit = match p.get("limit") {
        None => 50,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIST).contains(n))
            .ok_or_else(|| {
                AppError::BadRequest(format!(
                    "parameter 'limit': '{v}' is not a whole number from 1 to {MAX_LIST}"
                ))
            })?,
    };
    let list = tokio::task::spawn_blocking(move || jobs::list(&state, limit, only))
        .await
        .map_err(|e| AppError::Internal(format!("job task: {e}")))?;
    let doc = serde_json::json!({
        "jobs": list.iter().map(jobs::Job::doc).collect::<Vec<_>>(),
        "numberReturned": list.len(),
    });
    Ok(([(header::CACHE_CONTROL, "private, no-store")], Json(doc)).into_response())
}

async fn job(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, AppError> {
    let job = tokio::task::spawn_blocking(move || jobs::get(&state, &id))
        .await
        .map_err(|e| AppError::Internal(format!("job task: {e}")))??;
    Ok((
        [(header::CACHE_CONTROL, "private, no-store")],
        Json(job.doc()),
    )
        .into_response())
}

/// The file name: a plain name with a known extension, so it cannot name a path.
fn checked_name(raw: Option<&str>) -> Result<String, AppError> {
    let params = params::parse(raw, &["name"])?;
    let name = params
        .get("name")
        .map(|n| n.trim().to_owned())
        .ok_or_else(|| {
            AppError::BadRequest("parameter 'name' (the file name) is required".into())
        })?;
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_. ".contains(c));
    let lower = name.to_ascii_lowercase();
    let ok_ext = [".csv", ".zip", ".geojson", ".json"]
        .iter()
        .any(|e| lower.ends_with(e));
    if name.is_empty() || name.len() > MAX_NAME || !ok_chars || name.starts_with('.') || !ok_ext {
        return Err(AppError::BadRequest(
            "parameter 'name': a plain file name (letters, digits, - _ . and space) ending \
             .csv, .zip, .geojson or .json"
                .into(),
        ));
    }
    Ok(name)
}

async fn upload(
    State(state): State<AppState>,
    principal: Option<axum::Extension<Principal>>,
    uri: Uri,
    body: Bytes,
) -> Result<Response, AppError> {
    let who = principal_of(principal);
    let name = checked_name(uri.query())?;
    if body.is_empty() {
        return Err(AppError::BadRequest(
            "the request body (the file) is empty".into(),
        ));
    }
    let st = state.clone();
    let (status, doc, location) =
        tokio::task::spawn_blocking(move || submit(&st, &who, &name, &body))
            .await
            .map_err(|e| AppError::Internal(format!("ingest task: {e}")))??;
    let mut resp = (status, Json(doc)).into_response();
    if let Some(l) = location.and_then(|l| axum::http::HeaderValue::from_str(&l).ok()) {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

/// Stores the upload, refuses a zip over the limits (422, audited), queues the rest as
/// a job (202). Blocking.
fn submit(
    state: &AppState,
    who: &Principal,
    name: &str,
    body: &[u8],
) -> Result<(StatusCode, Value, Option<String>), AppError> {
    let staged = jobs::stage(state, name, body)?;
    // A zip is inflated once, counting bytes, before any of it is queued: over a limit
    // it is refused whole (422) and the store is untouched.
    let limits = state.settings().limits.zip();
    if name.to_ascii_lowercase().ends_with(".zip")
        && let Err(e) = crate::ingest::check_zip(&staged, name, &limits)
    {
        let _ = std::fs::remove_file(&staged);
        let reason = e.to_string();
        tracing::warn!(file = %name, %reason, "upload refused");
        let doc = json!({
            "code": "ArchiveRefused",
            "description": reason,
            "file": name,
            "files": [],
            "errors": [reason],
        });
        audit::ingest(
            state,
            (&who.name, who.role.name()),
            name,
            json!({ "files": [], "errors": doc["errors"] }),
        )
        .map_err(|e| AppError::Internal(format!("writing the audit log: {e}")))?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, doc, None));
    }
    let (job, ahead) = match jobs::submit(state, (&who.name, who.role.name()), name, &staged) {
        Ok(j) => j,
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            return Err(e);
        }
    };
    let mut doc = job.doc();
    doc["queued_ahead"] = json!(ahead);
    let href = format!("/admin/ingest/{}", job.id);
    Ok((StatusCode::ACCEPTED, doc, Some(href)))
}

/// Runs an ingest job: ingests the stored upload, swaps the analysis store, audits.
/// Blocking; `progress(done, total)` after each file.
///
/// # Errors
/// When the store cannot be opened or reloaded, or the audit log cannot be written.
pub fn ingest_upload(
    state: &AppState,
    who: (&str, &str),
    name: &str,
    path: &Path,
    progress: &dyn Fn(usize, usize),
) -> Result<(StatusCode, Value), AppError> {
    let at = state
        .settings()
        .store_at()
        .map_err(|e| AppError::Internal(format!("the store: {e}")))?;
    let limits = state.settings().limits.zip();
    let (summaries, errors) = ingest_file(&at, path, name, &limits, progress)?;
    let changed = summaries.iter().any(|s| !s.unchanged);
    if changed {
        reload(state)?;
    }
    let files: Vec<Value> = summaries.iter().map(summary_json).collect();
    let rejects: Vec<Value> = summaries
        .iter()
        .flat_map(|s| &s.rejects)
        .take(MAX_REJECTS_SHOWN)
        .map(|r| {
            json!({ "file": r.file, "line": r.line, "field": r.field,
                    "reason": r.reason, "value": r.value })
        })
        .collect();
    let rejected: u64 = summaries.iter().map(|s| s.rejected).sum();
    let doc = json!({
        "file": name,
        "changed": changed,
        "files": files,
        "errors": errors,
        "rejected": rejected,
        "rejects": rejects,
        "incidents_loaded": state.store().incidents.len(),
        // Of the whole store after this ingest: records with no location, and located
        // records outside the study area (stored, counted, in no analysis).
        "unlocated": state.store().unlocated,
        "outside_study_area": state.store().outside(),
    });
    let audit_summary = json!({ "files": doc["files"], "errors": doc["errors"] });
    audit::ingest(state, who, name, audit_summary)
        .map_err(|e| AppError::Internal(format!("writing the audit log: {e}")))?;
    if errors.is_empty() {
        return Ok((StatusCode::OK, doc));
    }
    let mut doc = doc;
    doc["code"] = json!("IngestFailed");
    doc["description"] = json!("some files could not be ingested (see errors)");
    Ok((StatusCode::UNPROCESSABLE_ENTITY, doc))
}

/// Ingests the file (or each entry of the archive) as the CLI does, named after the
/// upload rather than the temporary path.
fn ingest_file(
    at: &crate::store::StoreAt,
    temp: &Path,
    name: &str,
    limits: &crate::ingest::ZipLimits,
    progress: &dyn Fn(usize, usize),
) -> Result<(Vec<IngestSummary>, Vec<String>), AppError> {
    let temp_text = temp.display().to_string();
    let public = |msg: String| msg.replace(&temp_text, name);
    let sources = match discover(&[temp.to_path_buf()]) {
        Ok(s) => s,
        Err(e) => return Ok((Vec::new(), vec![public(e.to_string())])),
    };
    let mut store =
        Store::open_at(at).map_err(|e| AppError::Internal(format!("opening the store: {e}")))?;
    let mut summaries = Vec::new();
    let mut errors = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        progress(i, sources.len());
        let shown = match src {
            crate::ingest::Source::ZipEntry { entry, .. } => format!("{name}!{entry}"),
            crate::ingest::Source::File(_) => name.to_owned(),
        };
        let result = src
            .read_limited(limits)
            .and_then(|bytes| store.ingest_bytes(&shown, &bytes, None));
        match result {
            Ok(s) => summaries.push(s),
            Err(IngestError::Store { reason, .. }) => {
                tracing::error!(file = %shown, %reason, "ingest: store failure");
                errors.push(format!("{shown}: not stored (database error)"));
            }
            Err(e) => errors.push(public(e.to_string())),
        }
    }
    store.settle();
    progress(sources.len(), sources.len());
    if sources.is_empty() {
        errors.push(format!("{name}: no incident files in it"));
    }
    Ok((summaries, errors))
}

/// Reloads the server's analysis store from the store on disk (after an ingest, the
/// server's own or a CLI run's).
///
/// # Errors
/// When the store cannot be read.
pub fn reload(state: &AppState) -> Result<(), AppError> {
    let geography = state.store().geography.clone();
    let at = state
        .settings()
        .store_at()
        .map_err(|e| AppError::Internal(format!("the store: {e}")))?;
    let fresh = crate::analysis::from_store_at(&at, geography)
        .map_err(|e| AppError::Internal(format!("reloading the analysis store: {e}")))?;
    state.replace_store(fresh);
    Ok(())
}

/// One file's summary as the ingest answers and jobs give it.
pub(crate) fn summary_json(s: &IngestSummary) -> Value {
    json!({
        "file": s.file,
        "format": s.format,
        "sha256": s.sha256,
        "unchanged": s.unchanged,
        "rows_read": s.rows_read,
        "stored": s.stored,
        "replaced": s.replaced,
        "unlocated": s.unlocated,
        "rejected": s.rejected,
        "rejected_by_reason": s.rejected_by_reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_be_paths() {
        assert_eq!(
            checked_name(Some("name=2024-01-lancashire-street.csv")).unwrap(),
            "2024-01-lancashire-street.csv"
        );
        assert!(checked_name(Some("name=police.zip")).is_ok());
        for bad in [
            "",
            "name=",
            "name=..%2Fstore.db",
            "name=a/b.csv",
            "name=.hidden.csv",
            "name=x.exe",
            "name=x.csv&other=1",
        ] {
            assert!(checked_name(Some(bad)).is_err(), "{bad}");
        }
    }
}
