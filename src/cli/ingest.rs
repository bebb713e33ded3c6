//! `hotspot ingest`: files, directories and zips into the store, one transaction a file.
//!
//! It runs through the data directory's ingest queue (`serve::jobs`): it waits for the
//! worker lock while a server's ingest job (or another `hotspot ingest`) runs, and
//! records its run as a job (role `cli`), which a server on the same directory lists
//! and, once done, reloads its analysis store for.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::DataDir;
use crate::ingest::{Format, Reject, discover};
use crate::serve::{jobs, upload};
use crate::store::{IngestSummary, Store};

#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub data: DataDir,
    /// Files, directories or zip archives.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Force a format instead of detecting it from the header: police, stats19, generic, geojson.
    #[arg(long)]
    pub format: Option<Format>,
    /// Where to write the rejected rows (default: DATA/rejects/ingest-<time>.csv).
    #[arg(long, value_name = "CSV")]
    pub rejects: Option<PathBuf>,
}

pub fn run(a: &IngestArgs) -> anyhow::Result<()> {
    let sources = discover(&a.paths)?;
    let jobs_dir = jobs::jobs_dir(&a.data.dir);
    let lock_err = |e: std::io::Error| {
        anyhow::anyhow!(
            "{}: cannot take the ingest lock: {e}",
            jobs_dir.join("worker.lock").display()
        )
    };
    let held = match jobs::WorkerLock::try_acquire(&jobs_dir).map_err(lock_err)? {
        Some(l) => l,
        None => {
            eprintln!(
                "hotspot: another ingest is running on this data directory (a server's ingest job or another hotspot ingest); waiting for it"
            );
            jobs::WorkerLock::acquire(&jobs_dir).map_err(lock_err)?
        }
    };
    let mut store = Store::open_at(&a.data.at()?)?;
    let who = std::env::var("USER").unwrap_or_else(|_| "local".into());
    let mut job = jobs::CliJob::start(&a.data.dir, &held, &job_name(&a.paths), &who, sources.len())
        .map_err(|e| anyhow::anyhow!("{}: recording the ingest job: {e}", jobs_dir.display()))?;
    let gaps_before = store.coverage()?.gaps();
    let bar = ProgressBar::new(sources.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let mut summaries: Vec<IngestSummary> = Vec::new();
    let mut failures = Vec::new();
    let mut done = 0;
    store.ingest_sources(&sources, a.format, |src, result| {
        bar.set_message(src.name());
        match result {
            Ok(s) => summaries.push(s),
            Err(e) => {
                // Shown even when the bar is hidden (not a terminal).
                bar.suspend(|| {
                    eprintln!(
                        "hotspot: error: {e} (file not ingested; the store is unchanged for it)"
                    )
                });
                failures.push(e);
            }
        }
        bar.inc(1);
        done += 1;
        job.progress(done);
    });
    store.settle();
    bar.finish_and_clear();
    let errors: Vec<String> = failures.iter().map(ToString::to_string).collect();
    let result = serde_json::json!({
        "changed": summaries.iter().any(|s| !s.unchanged),
        "files": summaries.iter().map(upload::summary_json).collect::<Vec<_>>(),
        "errors": errors,
        "rejected": summaries.iter().map(|s| s.rejected).sum::<u64>(),
    });
    let status = if failures.is_empty() { 200 } else { 422 };
    let id = job.id().to_owned();
    job.finish(status, result)
        .map_err(|e| anyhow::anyhow!("{}: recording the ingest job: {e}", jobs_dir.display()))?;
    drop(held);
    print_summary(&summaries, started.elapsed().as_secs_f64());
    println!("recorded as ingest job {id}");
    for line in super::coverage::gap_changes(&gaps_before, &store.coverage()?.gaps()) {
        println!("{line}");
    }
    let rejects: Vec<&Reject> = summaries.iter().flat_map(|s| &s.rejects).collect();
    if !rejects.is_empty() {
        let path = match &a.rejects {
            Some(p) => p.clone(),
            None => {
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                a.data
                    .dir
                    .join("rejects")
                    .join(format!("ingest-{secs}.csv"))
            }
        };
        write_rejects(&path, &rejects)
            .with_context(|| format!("writing rejects to {}", path.display()))?;
        println!("rejected rows written to {}", path.display());
    }
    match failures.len() {
        0 => Ok(()),
        n => anyhow::bail!(
            "{n} of {} files could not be ingested (see errors above)",
            sources.len()
        ),
    }
}

/// The job's name: the file names given (never their directories), shortened.
fn job_name(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths
        .iter()
        .map(|p| {
            p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        })
        .collect();
    let mut name = names.join(", ");
    if name.len() > 200 {
        name.truncate(name.floor_char_boundary(200));
        name.push('…');
    }
    name
}

fn print_summary(s: &[IngestSummary], secs: f64) {
    let sum = |f: fn(&IngestSummary) -> u64| s.iter().map(f).sum::<u64>();
    let unchanged = s.iter().filter(|x| x.unchanged).count();
    println!(
        "{} files ({} unchanged, skipped): {} rows read, {} stored, {} replaced, {} unlocated, {} rejected in {:.1} s",
        s.len(),
        unchanged,
        sum(|x| x.rows_read),
        sum(|x| x.stored),
        sum(|x| x.replaced),
        sum(|x| x.unlocated),
        sum(|x| x.rejected),
        secs
    );
    let mut reasons: std::collections::BTreeMap<&str, u64> = Default::default();
    for x in s {
        for (r, n) in &x.rejected_by_reason {
            *reasons.entry(r).or_default() += n;
        }
    }
    for (r, n) in reasons {
        println!("  rejected {n:>8}  {r}");
    }
    for line in extra_lines(s) {
        println!("{line}");
    }
}

/// The summary lines for what is not an incident: outcomes, stop and search, casualties,
/// and anything read but not kept (each with its reason). None when there were none.
pub(crate) fn extra_lines(s: &[IngestSummary]) -> Vec<String> {
    let sum = |f: fn(&IngestSummary) -> u64| s.iter().map(f).sum::<u64>();
    let mut out = Vec::new();
    let outcome_files = s.iter().filter(|x| x.format == "PoliceOutcomes").count();
    if outcome_files > 0 {
        out.push(format!(
            "  outcomes: {outcome_files} files, {} crimes updated, {} kept a later outcome, {} not in the store",
            sum(|x| x.outcomes_updated),
            sum(|x| x.outcomes_older),
            sum(|x| x.outcomes_unmatched)
        ));
    }
    let search_files = s.iter().filter(|x| x.format == "PoliceStopSearch").count();
    if search_files > 0 {
        out.push(format!(
            "  stop and search: {search_files} files, {} searches stored (their own dataset, not incidents)",
            sum(|x| x.searches)
        ));
    }
    let casualty_files = s.iter().filter(|x| x.format == "Stats19Casualty").count();
    if casualty_files > 0 {
        out.push(format!(
            "  casualties: {casualty_files} files, {} casualties stored at their collisions",
            sum(|x| x.casualties)
        ));
    }
    for x in s.iter().filter(|x| x.skipped > 0) {
        out.push(format!(
            "  skipped {:>8}  {}: {}",
            x.skipped,
            x.file,
            x.skipped_reason.as_deref().unwrap_or("not kept")
        ));
    }
    out
}

fn write_rejects(path: &std::path::Path, rejects: &[&Reject]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(["file", "line", "field", "reason", "value"])?;
    for r in rejects {
        w.write_record([
            r.file.as_str(),
            &r.line.to_string(),
            &r.field,
            &r.reason,
            &r.value,
        ])?;
    }
    w.flush()?;
    std::io::stdout().flush()?;
    Ok(())
}
