//! A server on a PostgreSQL store follows the ingests of every process that writes to
//! it (another replica's admin ingest, a `hotspot ingest --store` run anywhere): each
//! commit notifies `store::pg::CHANNEL`; this thread, LISTENing on its own connection,
//! then reloads the analysis store off the request path and swaps it in, so requests
//! are answered from the old store until the new one is whole. It also compares the
//! store's version every [`POLL`] (and on every reconnect), so a notification lost
//! while the connection was down is caught up.

use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator as _;

use super::AppState;
use crate::store::pg;

/// Longest wait between version checks when no notification comes.
const POLL: Duration = Duration::from_secs(30);

/// Starts following `url` for `state`, on a thread of its own.
///
/// # Errors
/// When the thread cannot be started.
pub fn start(state: AppState, url: String) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("hotspot-follow".into())
        .spawn(move || {
            let mut backoff = Duration::from_millis(200);
            loop {
                if let Err(e) = listen(&state, &url, &mut backoff) {
                    tracing::warn!(store = %pg::redact(&url), error = %format!("{e:#}"), retry_in_ms = backoff.as_millis() as u64,
                        "following the store's ingests: connection lost");
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        })
        .map(|_| ())
}

fn listen(state: &AppState, url: &str, backoff: &mut Duration) -> anyhow::Result<()> {
    let mut client = pg::connect_raw(url)?;
    client.batch_execute(&format!("LISTEN {}", pg::CHANNEL))?;
    *backoff = Duration::from_millis(200);
    loop {
        // Listening before the first check: a commit after it is notified, one before
        // it is seen by it.
        let version = u64::try_from(pg::version(&mut client)?).unwrap_or(0);
        if version != state.store().version {
            let started = std::time::Instant::now();
            if let Err(e) = super::upload::reload(state) {
                tracing::error!(error = ?e, "following the store's ingests: reload failed");
            } else {
                tracing::info!(
                    version = state.store().version,
                    ms = started.elapsed().as_millis() as u64,
                    "store reloaded after an ingest"
                );
            }
        }
        let mut notes = client.notifications();
        if notes.timeout_iter(POLL).next()?.is_some() {
            // Several commits in a row make one reload.
            while notes.iter().next()?.is_some() {}
        }
    }
}
