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
//!
//! **One queue for the server and the CLI.** Jobs run only while their runner holds the
//! data directory's worker lock (`jobs/worker.lock`, an exclusive OS file lock, freed by
//! the OS when its process dies), so a server's worker and any number of `hotspot
//! ingest` commands on the same data directory run one ingest at a time, in the order
//! they take the lock. The CLI records its run as a job of its own ([`CliJob`], role
//! `cli`, listed by `GET /admin/ingest` with its summary), running from the moment it
//! holds the lock; a server on that directory sees the finished job and reloads its
//! analysis store, so what the CLI ingested is served without a restart. A job found
//! `running` by a runner that holds the lock was interrupted (no one else can be running
//! it): a server's upload is queued again (`resumed`); a CLI run, whose files are not in
//! the queue, is marked failed with the reason (its files went in or not, each whole).

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
    jobs_dir(&state.settings().data)
}

/// The jobs directory of a data directory.
pub fn jobs_dir(data: &Path) -> PathBuf {
    data.join("jobs")
}

/// The role a CLI run's job is recorded with.
pub const CLI_ROLE: &str = "cli";

/// The data directory's worker lock, held while a job runs (see the module doc).
#[derive(Debug)]
pub struct WorkerLock(std::fs::File);

impl WorkerLock {
    fn file(dir: &Path) -> std::io::Result<std::fs::File> {
        std::fs::create_dir_all(dir)?;
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("worker.lock"))
    }

    /// Takes the lock of the jobs directory `dir`, waiting while another runner (this
    /// server's worker, another process's) holds it.
    ///
    /// # Errors
    /// When the lock file cannot be opened or locked.
    pub fn acquire(dir: &Path) -> std::io::Result<Self> {
        let f = Self::file(dir)?;
        f.lock()?;
        Ok(WorkerLock(f))
    }

    /// Takes the lock if no one holds it; `None` when someone does.
    ///
    /// # Errors
    /// When the lock file cannot be opened or locked for another reason.
    pub fn try_acquire(dir: &Path) -> std::io::Result<Option<Self>> {
        let f = Self::file(dir)?;
        match f.try_lock() {
            Ok(()) => Ok(Some(WorkerLock(f))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

impl Drop for WorkerLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Jobs left `running` when the caller holds the worker lock were interrupted: a
/// server's upload is queued again (`resumed`), a CLI run is marked failed.
fn recover(dir: &Path, _held: &WorkerLock) {
    for mut job in all(dir) {
        if job.state != JobState::Running {
            continue;
        }
        if job.role == CLI_ROLE {
            tracing::warn!(job = %job.id, file = %job.file, "a hotspot ingest command stopped during its run");
            job.state = JobState::Failed;
            job.status = Some(500);
            job.finished = Some(super::clock::now_rfc3339());
            job.result = Some(serde_json::json!({ "errors": [
                "the ingest command stopped before it finished: the files it had finished are in \
                 the store, each whole, and the rest are not; run it again to add them"
            ] }));
        } else {
            tracing::warn!(job = %job.id, file = %job.file, "ingest job interrupted by a stop; running it again");
            job.state = JobState::Queued;
            job.resumed = true;
            job.files_done = 0;
        }
        if let Err(e) = save(dir, &job) {
            tracing::error!(job = %job.id, error = %e, "cannot write an interrupted ingest job's state");
        }
    }
}

/// The newest finished CLI job that changed the store, if newer than `seen`.
fn newer_cli_change(dir: &Path, seen: Option<&str>) -> Option<String> {
    let newer = |id: &str| seen.is_none_or(|s| (id.len(), id) > (s.len(), s));
    ids(dir)
        .iter()
        .rev()
        .take_while(|id| newer(id))
        .filter_map(|id| load(dir, id))
        .find(|j| {
            j.role == CLI_ROLE
                && j.state == JobState::Done
                && j.result.as_ref().is_some_and(|r| r["changed"] == true)
        })
        .map(|j| j.id)
}

/// A CLI ingest recorded as a job in the data directory's queue (see the module doc):
/// made `running` once its runner holds the worker lock, kept current file by file.
#[derive(Debug)]
pub struct CliJob {
    dir: PathBuf,
    job: Job,
}

impl CliJob {
    /// Records a run of `files_total` files named `name`, by `who`, as running; the
    /// caller holds the lock of `jobs_dir(data)`.
    ///
    /// # Errors
    /// When the state file cannot be written.
    pub fn start(
        data: &Path,
        _held: &WorkerLock,
        name: &str,
        who: &str,
        files_total: usize,
    ) -> std::io::Result<Self> {
        let dir = jobs_dir(data);
        let now = super::clock::now_rfc3339();
        let mut job = Job::queued(
            Jobs::default().next_id(),
            name,
            (who, CLI_ROLE),
            now.clone(),
        );
        job.state = JobState::Running;
        job.started = Some(now);
        job.files_total = Some(files_total);
        save(&dir, &job)?;
        Ok(CliJob { dir, job })
    }

    /// The job's id.
    pub fn id(&self) -> &str {
        &self.job.id
    }

    /// `done` files finished.
    pub fn progress(&mut self, done: usize) {
        self.job.files_done = done;
        let _ = save(&self.dir, &self.job);
    }

    /// The run ended: `status` 200 when every file went in, else 422; `result` its
    /// summary (with `changed`, whether the store changed, which a server watches for).
    ///
    /// # Errors
    /// When the state file cannot be written.
    pub fn finish(mut self, status: u16, result: Value) -> std::io::Result<()> {
        self.job.state = JobState::Done;
        self.job.status = Some(status);
        self.job.result = Some(result);
        self.job.finished = Some(super::clock::now_rfc3339());
        save(&self.dir, &self.job)?;
        prune(&self.dir);
        Ok(())
    }
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

/// Starts the server's worker unless it runs already: it runs the queue, each job under
/// the worker lock, first marking jobs left `running` by a stopped runner ([`recover`]),
/// and reloads the analysis store when a CLI run changed it.
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
    let state = state.clone();
    let spawned = std::thread::Builder::new()
        .name("hotspot-ingest".into())
        .spawn(move || {
            // What the store already holds: CLI runs finished before this server loaded it.
            let mut seen = newer_cli_change(&dir, None);
            loop {
                // The lock first: a CLI ingest may be running (this waits for it).
                let held = match WorkerLock::acquire(&dir) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot take the ingest worker lock");
                        state.jobs().wait(Duration::from_secs(5));
                        continue;
                    }
                };
                recover(&dir, &held);
                if let Some(id) = newer_cli_change(&dir, seen.as_deref()) {
                    tracing::info!(job = %id, "the store was changed by a hotspot ingest command; reloading it");
                    if let Err(e) = super::upload::reload(&state) {
                        tracing::error!(error = ?e, "cannot reload the analysis store");
                    }
                    seen = Some(id);
                }
                match all(&dir).into_iter().find(|j| j.state == JobState::Queued) {
                    Some(job) => run(&state, &dir, job),
                    None => {
                        drop(held);
                        state.jobs().wait(Duration::from_secs(2));
                    }
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
