//! The audit log: who read analyst-only data, who was refused it, and every ingest.
//!
//! An append-only JSON Lines file, `audit.jsonl` in the data directory, one object a
//! line: `time` (RFC 3339 UTC), `event` (`access`, `denied`, `ingest`), `who` (the key's
//! name, never the key), `role`, `method`, `target` (path and query) and `status`;
//! ingest lines add `file` and the summary. A line is one `write` on a file opened for
//! appending, so concurrent writers never interleave inside a line; ingest lines are
//! flushed to disk (`sync_data`) before the response, access lines are left to the OS.
//! Why a file rather than a table in the store: the store is replaced wholesale by
//! ingest and read by other tools; an append-only file is simple to ship to a SIEM and
//! to rotate (move it away; the next line reopens it).

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Value, json};

use super::AppState;
use super::auth::Principal;

/// The audit file's name in the data directory.
pub const FILE_NAME: &str = "audit.jsonl";

static OPEN: Mutex<Option<(PathBuf, File)>> = Mutex::new(None);

/// Appends one line to the audit log of data directory `dir`.
///
/// # Errors
/// When the file cannot be opened or written.
pub fn append(dir: &Path, mut line: Value, durable: bool) -> std::io::Result<()> {
    if let Value::Object(m) = &mut line {
        m.insert("time".into(), Value::String(super::ogc::now_rfc3339()));
    }
    let mut text = line.to_string();
    text.push('\n');
    let path = dir.join(FILE_NAME);
    let mut guard = match OPEN.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    // Reopen when the directory changed or the file was moved away (rotation).
    let stale = guard
        .as_ref()
        .is_none_or(|(p, _)| *p != path || !p.exists());
    if stale {
        std::fs::create_dir_all(dir)?;
        let f = OpenOptions::new().create(true).append(true).open(&path)?;
        *guard = Some((path, f));
    }
    let Some((_, f)) = guard.as_mut() else {
        return Err(std::io::Error::other("audit log not open"));
    };
    f.write_all(text.as_bytes())?;
    if durable {
        f.sync_data()?;
    }
    Ok(())
}

fn log(state: &AppState, line: Value) {
    if let Err(e) = append(&state.settings().data, line, false) {
        tracing::error!(error = %e, "cannot write the audit log");
    }
}

/// A served request to analyst-only data, or by an analyst or admin.
pub fn access(state: &AppState, p: &Principal, method: &str, target: &str, status: u16) {
    log(
        state,
        json!({ "event": "access", "who": p.name, "role": p.role.name(),
                "method": method, "target": target, "status": status }),
    );
}

/// A refused request (wrong key anywhere, or too low a role for analyst-only data).
pub fn denied(state: &AppState, p: Option<&Principal>, method: &str, target: &str, status: u16) {
    let (who, role) = p.map_or(("(invalid key)", "none"), |p| {
        (p.name.as_str(), p.role.name())
    });
    log(
        state,
        json!({ "event": "denied", "who": who, "role": role,
                "method": method, "target": target, "status": status }),
    );
}

/// An ingest, written durably before its response is sent.
///
/// # Errors
/// When the line cannot be written and synced.
pub fn ingest(dir: &Path, p: &Principal, file: &str, summary: Value) -> std::io::Result<()> {
    append(
        dir,
        json!({ "event": "ingest", "who": p.name, "role": p.role.name(),
                "method": "POST", "target": "/admin/ingest", "file": file,
                "summary": summary }),
        true,
    )
}
