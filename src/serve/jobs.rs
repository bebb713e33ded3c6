//! Ingest jobs: `POST /admin/ingest` stores the upload durably and answers 202 with a job
//! id at once; `GET /admin/ingest/{id}` gives the job's state, progress and, once it has
//! run, the summary with the rejected rows (`upload::ingest_upload`, the CLI's path: one
//! transaction a file).
//!
//! A job is two files in `jobs/` of the data directory: the upload (`<id>-<name>`) and
//! its state (`<id>.json`), each written to a temporary name, synced and renamed, so a
//! crash leaves a job either whole or absent. One worker thread per server runs the
//! queued jobs one at a time in id order (ids grow with the submission time), so a job
//! is never cut short by its request's timeout and the next upload never touches a
//! running one's file. A job found `running` when the server starts was interrupted by a
//! stop or crash: it is run again (`"resumed": true`). That is safe because each file is
//! all-or-nothing and the same bytes again change nothing (checksum skip), so the files
//! already in are `unchanged` in the new summary and the rest go in.
//!
//! Finished jobs keep their state file (the upload is deleted); the newest
//! [`KEEP_FINISHED`] are kept.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AppError, AppState};

/// Finished jobs whose state is kept.
pub const KEEP_FINISHED: usize = 200;

/// Longest job id (a nanosecond count).
const MAX_ID: usize = 24;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    /// Ran; `status` says whether every file went in (200) or some could not (422).
    Done,
    /// Could not run (the store could not be opened, the upload was lost): `result`
    /// says why.
    Failed,
}

/// A job's state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    /// The uploaded file's name.
    pub file: String,
    pub state: JobState,
    /// Who submitted it: key name and role.
    pub by: String,
    pub role: String,
    pub submitted: String,
    #[serde(default)]
    pub started: Option<String>,
    #[serde(default)]
    pub finished: Option<String>,
    /// Files (or archive entries) ingested so far, of `files_total` (known once the
    /// job has looked inside the upload).
    #[serde(default)]
    pub files_done: usize,
    #[serde(default)]
    pub files_total: Option<usize>,
    /// Run again after the server stopped during it.
    #[serde(default)]
    pub resumed: bool,
    /// The HTTP status the ingest would have answered (200, or 422 when some file
    /// could not be ingested).
    #[serde(default)]
    pub status: Option<u16>,
    /// The ingest summary: files, errors, rejected rows.
    #[serde(default)]
    pub result: Option<Value>,
}

impl Job {
    /// A new job for the upload `file`, submitted by `who` (key name, role).
    fn queued(id: String, file: &str, who: (&str, &str), submitted: String) -> Self {
        Job {
            id,
            file: file.to_owned(),
            state: JobState::Queued,
            by: who.0.to_owned(),
            role: who.1.to_owned(),
            submitted,
            started: None,
            finished: None,
            files_done: 0,
            files_total: None,
            resumed: false,
            status: None,
            result: None,
        }
    }

    /// The job as the API shows it, with where to ask about it.
    pub fn doc(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        v["href"] = Value::String(format!("/admin/ingest/{}", self.id));
        v
    }
}

/// The worker of one server.
#[derive(Debug, Default)]
pub struct Jobs {
    /// Whether the worker runs; held while it is started, so that no upload is staged
    /// while a start clears what a stopped server left.
    started: Mutex<bool>,
    /// Set when a job is submitted; the worker waits on it.
    wake: (Mutex<bool>, Condvar),
    last_id: AtomicU64,
}

fn dir(state: &AppState) -> PathBuf {
    state.settings().data.join("jobs")
}

fn state_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.json"))
}

fn upload_path(dir: &Path, job: &Job) -> PathBuf {
    dir.join(format!("{}-{}", job.id, job.file))
}

/// Writes `bytes` to `path` durably: a temporary file, synced, renamed over it, and the
/// directory synced.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let tmp = path.with_extension("partial");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn save(dir: &Path, job: &Job) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(job).map_err(std::io::Error::other)?;
    write_durably(&state_path(dir, &job.id), &text)
}

fn load(dir: &Path, id: &str) -> Option<Job> {
    let text = std::fs::read(state_path(dir, id)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Every job id in `dir`, oldest first.
fn ids(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let id = name.strip_suffix(".json")?;
            valid_id(id).then(|| id.to_owned())
        })
        .collect();
    // Same-length digit strings: text order is numeric order.
    ids.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    ids
}

/// Every job, oldest first.
fn all(dir: &Path) -> Vec<Job> {
    ids(dir).iter().filter_map(|id| load(dir, id)).collect()
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID && id.bytes().all(|b| b.is_ascii_digit())
}

impl Jobs {
    /// A new id: the submission time in nanoseconds, strictly growing.
    fn next_id(&self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut prev = self.last_id.load(Ordering::SeqCst);
        loop {
            let id = now.max(prev + 1);
            match self
                .last_id
                .compare_exchange(prev, id, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return format!("{id:020}"),
                Err(p) => prev = p,
            }
        }
    }

    fn notify(&self) {
        let (m, c) = &self.wake;
        *lock(m) = true;
        c.notify_one();
    }

    fn wait(&self, timeout: Duration) {
        let (m, c) = &self.wake;
        let mut woken = lock(m);
        if !*woken {
            woken = match c.wait_timeout(woken, timeout) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        *woken = false;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Starts the server's worker unless it runs already: first it marks jobs left
/// `running` by a stopped server as queued again (`resumed`), then it runs the queue.
pub fn start(state: &AppState) {
    let jobs = state.jobs();
    let mut started = lock(&jobs.started);
    if *started {
        return;
    }
    let dir = dir(state);
    // Uploads staged, or state files half-written, when a server stopped: never jobs.
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("staging-") || name.ends_with(".partial") {
            let _ = std::fs::remove_file(e.path());
        }
    }
    for mut job in all(&dir) {
        if job.state == JobState::Running {
            tracing::warn!(job = %job.id, file = %job.file, "ingest job interrupted by a stop; running it again");
            job.state = JobState::Queued;
            job.resumed = true;
            job.files_done = 0;
            if let Err(e) = save(&dir, &job) {
                tracing::error!(job = %job.id, error = %e, "cannot requeue an interrupted ingest job");
            }
        }
    }
    let state = state.clone();
    let spawned = std::thread::Builder::new()
        .name("hotspot-ingest".into())
        .spawn(move || {
            loop {
                match all(&dir).into_iter().find(|j| j.state == JobState::Queued) {
                    Some(job) => run(&state, &dir, job),
                    None => state.jobs().wait(Duration::from_secs(5)),
                }
            }
        });
    match spawned {
        Ok(_) => *started = true,
        Err(e) => tracing::error!(error = %e, "cannot start the ingest worker"),
    }
}

/// Runs one job to its end, keeping its state file current.
fn run(state: &AppState, dir: &Path, mut job: Job) {
    job.state = JobState::Running;
    job.started = Some(super::clock::now_rfc3339());
    if let Err(e) = save(dir, &job) {
        tracing::error!(job = %job.id, error = %e, "cannot write an ingest job's state");
    }
    let upload = upload_path(dir, &job);
    let progress = {
        let job = Mutex::new(job.clone());
        move |done: usize, total: usize| {
            let mut j = lock(&job);
            j.files_done = done;
            j.files_total = Some(total);
            let _ = save(dir, &j);
        }
    };
    let outcome = if upload.exists() {
        super::upload::ingest_upload(state, (&job.by, &job.role), &job.file, &upload, &progress)
    } else {
        Err(AppError::Internal("the uploaded file is missing".into()))
    };
    if let Some(j) = load(dir, &job.id) {
        job.files_done = j.files_done;
        job.files_total = j.files_total;
    }
    match outcome {
        Ok((status, doc)) => {
            job.state = JobState::Done;
            job.status = Some(status.as_u16());
            job.result = Some(doc);
        }
        Err(e) => {
            let reason = match &e {
                AppError::Internal(m) => {
                    tracing::error!(job = %job.id, error = %m, "ingest job failed");
                    "the ingest could not run (see the server log)".to_owned()
                }
                AppError::BadRequest(m) | AppError::NotFound(m) | AppError::Forbidden(m) => {
                    m.clone()
                }
                AppError::Busy { reason, .. } => reason.clone(),
            };
            job.state = JobState::Failed;
            job.status = Some(500);
            job.result = Some(serde_json::json!({ "errors": [reason] }));
        }
    }
    job.finished = Some(super::clock::now_rfc3339());
    if let Err(e) = save(dir, &job) {
        tracing::error!(job = %job.id, error = %e, "cannot write an ingest job's state");
    }
    let _ = std::fs::remove_file(&upload);
    prune(dir);
}

/// Keeps the newest [`KEEP_FINISHED`] finished jobs.
fn prune(dir: &Path) {
    let finished: Vec<Job> = all(dir)
        .into_iter()
        .filter(|j| matches!(j.state, JobState::Done | JobState::Failed))
        .collect();
    let extra = finished.len().saturating_sub(KEEP_FINISHED);
    for j in &finished[..extra] {
        let _ = std::fs::remove_file(state_path(dir, &j.id));
        let _ = std::fs::remove_file(upload_path(dir, j));
    }
}

/// Stores an upload staged by [`stage`] (which started the worker) as a queued job
/// (durably) and wakes the worker. The caller has checked the name and any zip limits.
///
/// # Errors
/// When the files cannot be written.
pub fn submit(
    state: &AppState,
    who: (&str, &str),
    name: &str,
    staged: &Path,
) -> Result<(Job, usize), AppError> {
    let dir = dir(state);
    let job = Job::queued(
        state.jobs().next_id(),
        name,
        who,
        super::clock::now_rfc3339(),
    );
    let io = |e: std::io::Error| AppError::Internal(format!("storing the upload: {e}"));
    std::fs::create_dir_all(&dir).map_err(io)?;
    std::fs::rename(staged, upload_path(&dir, &job)).map_err(io)?;
    save(&dir, &job).map_err(io)?;
    let ahead = all(&dir)
        .iter()
        .filter(|j| j.id < job.id && matches!(j.state, JobState::Queued | JobState::Running))
        .count();
    state.jobs().notify();
    Ok((job, ahead))
}

/// A staging file for an upload in `jobs/` (so the rename into the job is on one file
/// system), written and synced.
///
/// # Errors
/// When it cannot be written.
pub fn stage(state: &AppState, name: &str, body: &[u8]) -> Result<PathBuf, AppError> {
    start(state);
    let dir = dir(state);
    let path = dir.join(format!("staging-{}-{name}", state.jobs().next_id()));
    write_durably(&path, body)
        .map_err(|e| AppError::Internal(format!("storing the upload: {e}")))?;
    Ok(path)
}

/// The job with this id.
///
/// # Errors
/// 404 when there is none (or the id is not one).
/// The newest jobs first, at most `limit`, only those in `only` when given (the list
/// reads the job files from the newest back and stops at `limit`).
pub fn list(state: &AppState, limit: usize, only: Option<JobState>) -> Vec<Job> {
    let d = dir(state);
    ids(&d)
        .iter()
        .rev()
        .filter_map(|id| load(&d, id))
        .filter(|j| only.is_none_or(|s| j.state == s))
        .take(limit)
        .collect()
}

pub fn get(state: &AppState, id: &str) -> Result<Job, AppError> {
    if !valid_id(id) {
        return Err(AppError::NotFound("no such ingest job".into()));
    }
    load(&dir(state), id).ok_or_else(|| AppError::NotFound("no such ingest job".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_grow_and_only_digit_ids_are_looked_up() {
        let jobs = Jobs::default();
        let a = jobs.next_id();
        let b = jobs.next_id();
        assert!(b > a && a.len() == b.len(), "{a} {b}");
        assert!(valid_id(&a));
        for bad in ["", "../x", "12a", "1/2", &"9".repeat(MAX_ID + 1)] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn a_job_round_trips_and_lists_oldest_first() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let job = |id: &str| Job::queued(id.into(), "x.csv", ("a", "admin"), "t".into());
        save(tmp.path(), &job("00000000000000000002")).expect("save");
        save(tmp.path(), &job("00000000000000000001")).expect("save");
        let ids: Vec<String> = all(tmp.path()).into_iter().map(|j| j.id).collect();
        assert_eq!(ids, ["00000000000000000001", "00000000000000000002"]);
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(tmp.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| n.ends_with(".json")), "{names:?}");
    }
}
