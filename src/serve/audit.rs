//! The audit log: who read analyst-only data, every refusal, and every ingest.
//!
//! An append-only JSON Lines file, `audit.jsonl` in the data directory, one object a
//! line: `time` (RFC 3339 UTC), `event` (`access`, `denied`, `ingest`), `who` (the key's
//! name, never the key), `role`, `method`, `target` (path and query) and `status`;
//! ingest lines add `file` and the summary. A line is one `write` on a file opened for
//! appending, so concurrent writers never interleave inside a line; ingest lines are
//! flushed to disk (`sync_data`) before the response, access lines are left to the OS.
//! Why a file rather than a table in the store: the store is replaced wholesale by
//! ingest and read by other tools; an append-only file is simple to ship to a SIEM and
//! to rotate. It rotates itself by size: when a line would take it past
//! `audit_max_bytes` (10 MiB by default) it becomes `audit.jsonl.1` (the older ones move
//! up, the oldest beyond `audit_keep`, 5 by default, is deleted) and a new file starts;
//! moving it away by hand works too (the next line reopens it).
//!
//! No secret is written: the key's name stands for the caller, and access targets are
//! redacted (`serve::redact`: secret-named query parameters, and any value or path
//! segment that is a key) before they get here.
//!
//! Refusals (401 and 403) are lines too, kept small (the path cut to
//! [`MAX_TARGET`] bytes, no query, never a presented key), and bounded so a flood of
//! wrong keys cannot grow the file without bound: at most [`DENIED_PER_CLIENT`] lines per
//! client (peer address) and [`DENIED_PER_WINDOW`] in all per minute; the rest are
//! counted, and the next refusal after the minute writes one `denied_dropped` line with
//! how many were left out. The log thus grows by at most about 600 refusal lines a
//! minute, whatever the flood.
//!
//! This module imports nothing of the server's other modules: callers pass names.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::AppState;

/// The audit file's name in the data directory.
pub const FILE_NAME: &str = "audit.jsonl";

/// When the audit file is rotated (`audit_max_bytes`, `audit_keep` in the settings).
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    /// Rotate when a line would take the file past this size; 0 never rotates.
    pub max_bytes: u64,
    /// Rotated files kept (`audit.jsonl.1` the newest).
    pub keep: u32,
}

impl Rotation {
    /// The rotation the settings ask for.
    pub fn of(s: &super::Settings) -> Self {
        Rotation {
            max_bytes: s.audit_max_bytes,
            keep: s.audit_keep,
        }
    }
}

struct OpenFile {
    path: PathBuf,
    file: File,
    len: u64,
}

static OPEN: Mutex<Option<OpenFile>> = Mutex::new(None);

/// `audit.jsonl.N`.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".{n}"));
    PathBuf::from(p)
}

/// Moves `audit.jsonl` to `audit.jsonl.1` (and `.1` to `.2`, ...), deleting the oldest
/// beyond `keep`.
fn rotate(path: &Path, keep: u32) -> std::io::Result<()> {
    let gone_ok = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    if keep == 0 {
        return gone_ok(std::fs::remove_file(path));
    }
    gone_ok(std::fs::remove_file(numbered(path, keep)))?;
    for n in (1..keep).rev() {
        gone_ok(std::fs::rename(numbered(path, n), numbered(path, n + 1)))?;
    }
    gone_ok(std::fs::rename(path, numbered(path, 1)))
}

fn open(path: PathBuf) -> std::io::Result<OpenFile> {
    let file = OpenOptions::new().create(true).append(true).open(&path)?;
    let len = file.metadata()?.len();
    Ok(OpenFile { path, file, len })
}

/// Appends one line to the audit log of data directory `dir`, rotating the file first
/// when the line would take it past `rotation.max_bytes`.
///
/// # Errors
/// When the file cannot be opened, rotated or written.
pub fn append(
    dir: &Path,
    rotation: Rotation,
    mut line: Value,
    durable: bool,
) -> std::io::Result<()> {
    if let Value::Object(m) = &mut line {
        m.insert("time".into(), Value::String(super::clock::now_rfc3339()));
    }
    let mut text = line.to_string();
    text.push('\n');
    let path = dir.join(FILE_NAME);
    let mut guard = match OPEN.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    // Reopen when the directory changed or the file was moved away (rotation by hand).
    let stale = guard
        .as_ref()
        .is_none_or(|o| o.path != path || !o.path.exists());
    if stale {
        std::fs::create_dir_all(dir)?;
        *guard = Some(open(path.clone())?);
    }
    let full = guard.as_ref().is_some_and(|o| {
        rotation.max_bytes > 0 && o.len > 0 && o.len + text.len() as u64 > rotation.max_bytes
    });
    if full {
        *guard = None;
        rotate(&path, rotation.keep)?;
        *guard = Some(open(path)?);
    }
    let Some(o) = guard.as_mut() else {
        return Err(std::io::Error::other("audit log not open"));
    };
    o.file.write_all(text.as_bytes())?;
    o.len += text.len() as u64;
    if durable {
        o.file.sync_data()?;
    }
    Ok(())
}

fn log(state: &AppState, line: Value) {
    let s = state.settings();
    if let Err(e) = append(&s.data, Rotation::of(s), line, false) {
        tracing::error!(error = %e, "cannot write the audit log");
    }
}

/// A served request to analyst-only data, or by an analyst or admin; `who` is the key's
/// name and role; `target` the path and query, already redacted (`serve::redact`), cut
/// to [`MAX_ACCESS_TARGET`] bytes.
pub fn access(state: &AppState, who: (&str, &str), method: &str, target: &str, status: u16) {
    log(
        state,
        json!({ "event": "access", "who": cut(who.0, 64), "role": who.1,
                "method": cut(method, 16), "target": cut(target, MAX_ACCESS_TARGET),
                "status": status }),
    );
}

/// Longest target written in an access line (the query caps keep real ones shorter).
pub const MAX_ACCESS_TARGET: usize = 8192;

/// Longest path written in a refusal line (bytes, cut at a character boundary).
pub const MAX_TARGET: usize = 256;
/// Refusal lines per client per window.
pub const DENIED_PER_CLIENT: u32 = 20;
/// Refusal lines in all per window.
pub const DENIED_PER_WINDOW: u32 = 600;
/// The counting window.
const WINDOW: Duration = Duration::from_secs(60);
/// Clients counted per window (further clients share the overall budget's remainder:
/// their lines are dropped and counted).
const MAX_CLIENTS: usize = 4096;

struct Refusals {
    since: Option<Instant>,
    per_client: BTreeMap<String, u32>,
    written: u32,
    dropped: u64,
}

static REFUSALS: Mutex<Refusals> = Mutex::new(Refusals {
    since: None,
    per_client: BTreeMap::new(),
    written: 0,
    dropped: 0,
});

/// Whether a refusal by `client` at `now` is written, and the count of refusals left out
/// in the window just ended (to write first), if any.
fn admit(client: &str, now: Instant) -> (bool, Option<u64>) {
    let mut r = match REFUSALS.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let mut ended = None;
    if r.since.is_none_or(|t| now.duration_since(t) >= WINDOW) {
        if r.dropped > 0 {
            ended = Some(r.dropped);
        }
        r.since = Some(now);
        r.per_client.clear();
        r.written = 0;
        r.dropped = 0;
    }
    let known = r.per_client.contains_key(client);
    let room = known || r.per_client.len() < MAX_CLIENTS;
    let n = r.per_client.get(client).copied().unwrap_or(0);
    let ok = room && n < DENIED_PER_CLIENT && r.written < DENIED_PER_WINDOW;
    if ok {
        r.per_client.insert(client.to_owned(), n + 1);
        r.written += 1;
    } else {
        r.dropped += 1;
    }
    (ok, ended)
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A refused request (401 or 403): `who` is the key's name and role, `None` for
/// credentials that match no key; `client` the peer it is counted against.
pub fn denied(
    state: &AppState,
    client: &str,
    who: Option<(&str, &str)>,
    method: &str,
    path: &str,
    status: u16,
) {
    let (write, ended) = admit(client, Instant::now());
    if let Some(n) = ended {
        log(
            state,
            json!({ "event": "denied_dropped", "count": n, "window_secs": WINDOW.as_secs() }),
        );
    }
    if !write {
        return;
    }
    let (who, role) = who.unwrap_or(("(invalid key)", "none"));
    log(
        state,
        json!({ "event": "denied", "who": cut(who, 64), "role": role, "client": cut(client, 64),
                "method": cut(method, 16), "target": cut(path, MAX_TARGET),
                "status": status }),
    );
}

/// An ingest, written durably before its response is sent.
///
/// # Errors
/// When the line cannot be written and synced.
pub fn ingest(
    state: &AppState,
    who: (&str, &str),
    file: &str,
    summary: Value,
) -> std::io::Result<()> {
    let s = state.settings();
    append(
        &s.data,
        Rotation::of(s),
        json!({ "event": "ingest", "who": who.0, "role": who.1,
                "method": "POST", "target": "/admin/ingest", "file": file,
                "summary": summary }),
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_capped_per_client_and_counted_when_dropped() {
        let t0 = Instant::now();
        let mut written = 0;
        for _ in 0..(DENIED_PER_CLIENT + 30) {
            if admit("flood-test-client", t0).0 {
                written += 1;
            }
        }
        assert!(
            written <= DENIED_PER_CLIENT,
            "{written} lines for one client"
        );
        // Another client still gets a line in the same window.
        assert!(admit("flood-test-other", t0).0);
        // After the window, the dropped count comes back once.
        let (ok, ended) = admit("flood-test-client", t0 + WINDOW + Duration::from_secs(1));
        assert!(ok);
        assert!(ended.is_some_and(|n| n >= 30), "{ended:?}");
        assert_eq!(cut("aé", 2), "a");
    }
}
