//! `POST /admin/ingest?name=<file name>` (admin): a police.uk CSV or zip, a STATS19 CSV,
//! or any file `hotspot ingest` takes, as the raw request body.
//!
//! The upload is written to `uploads/` in the data directory and synced, then goes
//! through the CLI's path (`ingest::discover`, then `Store::ingest_bytes` per file or
//! archive entry): one transaction a file, so a crash at any point leaves every file
//! either wholly in or wholly out, and the same bytes again change nothing (checksum
//! skip; police.uk force-months are replaced, not doubled). Then the analysis store is
//! rebuilt from the store of record and swapped in (`AppState::replace_store`, which
//! bumps the generation every cache key carries). One ingest runs at a time; a leftover
//! upload from a crash is removed by the next ingest.
//!
//! A zip is first inflated once without being kept, its bytes counted as they come out
//! (never the sizes its headers declare), under the `[limits]` `zip_*` settings: entry
//! count, each entry's size and compression ratio, the total. One over a limit (a zip
//! bomb) is refused whole with 422 and a reason, before anything is ingested; memory
//! stays bounded by the entry limit.
//!
//! The response is the ingest summary per file, the errors of files that could not be
//! ingested (422 if any) and the rejected rows (the first [`MAX_REJECTS_SHOWN`]). Every
//! ingest is written to the audit log, durably, before the response.

use std::path::{Path, PathBuf};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::auth::{Access, Principal, Role, Routes, principal_of};
use super::{AppError, AppState, audit, params};
use crate::ingest::{IngestError, discover};
use crate::store::{IngestSummary, Store};

/// Rejected rows listed in a response (all are counted).
pub const MAX_REJECTS_SHOWN: usize = 1000;

/// Longest accepted file name.
const MAX_NAME: usize = 200;

/// One ingest at a time.
static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// This module's routes. The body limit is the server's (`body_limit_bytes`), not
/// axum's 2 MB default for `Bytes`.
pub fn routes() -> Routes {
    Routes::new().route(
        "/admin/ingest",
        Access::Role(Role::Admin),
        post(upload).layer(DefaultBodyLimit::disable()),
    )
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
    let _one_at_a_time = LOCK.lock().await;
    let st = state.clone();
    let (status, doc) = tokio::task::spawn_blocking(move || run(&st, &who, &name, &body))
        .await
        .map_err(|e| AppError::Internal(format!("ingest task: {e}")))??;
    Ok((status, Json(doc)).into_response())
}

/// Writes the upload, ingests it, swaps the analysis store, audits. Blocking.
fn run(
    state: &AppState,
    who: &Principal,
    name: &str,
    body: &[u8],
) -> Result<(StatusCode, Value), AppError> {
    let dir = state.settings().data.clone();
    let uploads = dir.join("uploads");
    clear_leftovers(&uploads);
    let temp = write_synced(&uploads, name, body)
        .map_err(|e| AppError::Internal(format!("writing the upload: {e}")))?;
    // A zip is inflated once, counting bytes, before any of it is ingested: over a
    // limit it is refused whole (422) and the store is untouched.
    let limits = state.settings().limits.zip();
    if name.to_ascii_lowercase().ends_with(".zip")
        && let Err(e) = crate::ingest::check_zip(&temp, name, &limits)
    {
        let _ = std::fs::remove_file(&temp);
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
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, doc));
    }
    let outcome = ingest_file(&dir, &temp, name, &limits);
    let _ = std::fs::remove_file(&temp);
    let (summaries, errors) = outcome?;
    let changed = summaries.iter().any(|s| !s.unchanged);
    if changed {
        let geography = state.store().geography.clone();
        let fresh = crate::analysis::from_store(&dir, geography)
            .map_err(|e| AppError::Internal(format!("reloading the analysis store: {e}")))?;
        state.replace_store(fresh);
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
    audit::ingest(state, (&who.name, who.role.name()), name, audit_summary)
        .map_err(|e| AppError::Internal(format!("writing the audit log: {e}")))?;
    if errors.is_empty() {
        return Ok((StatusCode::OK, doc));
    }
    let mut doc = doc;
    doc["code"] = json!("IngestFailed");
    doc["description"] = json!("some files could not be ingested (see errors)");
    Ok((StatusCode::UNPROCESSABLE_ENTITY, doc))
}

/// Uploads left by a crashed ingest (none is running: the caller holds the lock).
fn clear_leftovers(uploads: &Path) {
    if let Ok(entries) = std::fs::read_dir(uploads) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn write_synced(uploads: &Path, name: &str, body: &[u8]) -> std::io::Result<PathBuf> {
    use std::io::Write as _;
    std::fs::create_dir_all(uploads)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let path = uploads.join(format!("{nanos}-{name}"));
    let mut f = std::fs::File::create(&path)?;
    f.write_all(body)?;
    f.sync_all()?;
    Ok(path)
}

/// Ingests the file (or each entry of the archive) as the CLI does, named after the
/// upload rather than the temporary path.
fn ingest_file(
    dir: &Path,
    temp: &Path,
    name: &str,
    limits: &crate::ingest::ZipLimits,
) -> Result<(Vec<IngestSummary>, Vec<String>), AppError> {
    let temp_text = temp.display().to_string();
    let public = |msg: String| msg.replace(&temp_text, name);
    let sources = match discover(&[temp.to_path_buf()]) {
        Ok(s) => s,
        Err(e) => return Ok((Vec::new(), vec![public(e.to_string())])),
    };
    let mut store =
        Store::open(dir).map_err(|e| AppError::Internal(format!("opening the store: {e}")))?;
    let mut summaries = Vec::new();
    let mut errors = Vec::new();
    for src in &sources {
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
    if sources.is_empty() {
        errors.push(format!("{name}: no incident files in it"));
    }
    Ok((summaries, errors))
}

fn summary_json(s: &IngestSummary) -> Value {
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
