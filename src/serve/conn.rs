//! Connections: the accept loop `run` serves through, instead of `axum::serve`, which
//! sets no timer and so no header-read timeout, and caps nothing (issue 13: ~20,000
//! idle partial-header connections from one address used up the file descriptors and
//! `/health` timed out).
//!
//! - A connection must send a whole request head within `header_read_timeout_secs`
//!   (hyper's `header_read_timeout`); the same timer runs while a keep-alive connection
//!   waits for its next request, so it is the idle timeout too. Either way it is closed.
//! - At most `max_connections` open connections in all and `max_connections_per_client`
//!   per client address (an IPv6 address by its /64, as the rate limits count); one over
//!   a cap is closed at once, before anything is read, so refused connections cost a
//!   file descriptor for an instant and never starve the listener.
//! - A failed `accept` (out of file descriptors) is logged and retried after a pause
//!   rather than spun on.
//! - Each request carries `ConnectInfo<SocketAddr>` (the peer), as
//!   `into_make_service_with_connect_info` gave it, for the rate limits and the audit.
//! - Graceful shutdown as before: stop accepting, let every connection finish the
//!   request in flight, close idle ones.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use super::limits::Client;

/// The connection limits (from `Settings`).
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub max_per_client: usize,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// One admitted connection's place in the counts, given back when it is dropped.
struct Slot {
    counts: Arc<Mutex<Counts>>,
    client: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = lock(&self.counts);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_client.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_client.remove(&self.client);
            }
        }
    }
}

fn lock(m: &Mutex<Counts>) -> std::sync::MutexGuard<'_, Counts> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// A slot for a connection from `client`, or `None` when a cap is reached.
fn admit(counts: &Arc<Mutex<Counts>>, client: IpAddr, l: &ConnLimits) -> Option<Slot> {
    let mut c = lock(counts);
    let mine = c.per_client.get(&client).copied().unwrap_or(0);
    if c.total >= l.max_connections || mine >= l.max_per_client {
        return None;
    }
    c.total += 1;
    c.per_client.insert(client, mine + 1);
    Some(Slot {
        counts: counts.clone(),
        client,
    })
}

/// The address a connection is counted against.
fn client_of(peer: SocketAddr) -> IpAddr {
    match Client::addr(peer.ip()) {
        Client::Addr(ip) => ip,
        Client::Key(_) => peer.ip(),
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then finishes the requests in
/// flight.
///
/// # Errors
/// None at present (accept failures are logged and retried); kept for the caller's `?`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let counts = Arc::new(Mutex::new(Counts::default()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Every connection task holds a sender; when all are gone, `recv` returns `None`.
    let (alive_tx, mut alive_rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut refused: u64 = 0;
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept a connection; retrying shortly");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = admit(&counts, client_of(peer), &limits) else {
            // Over a cap: closed at once (dropping the stream closes it).
            drop(stream);
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(%peer, refused, "connection cap reached: connections closed");
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut stop = stop_rx.clone();
        let alive = alive_tx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _alive = alive;
            let svc = tower::ServiceExt::map_request(
                app,
                move |mut req: axum::http::Request<Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req
                },
            );
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .keep_alive(true);
            let conn =
                builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection closed");
                    }
                    return;
                }
                _ = stop.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
            }
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(alive_tx);
    let _ = alive_rx.recv().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_and_slots_come_back() {
        let counts = Arc::new(Mutex::new(Counts::default()));
        let l = ConnLimits {
            header_read_timeout: Duration::from_secs(1),
            max_connections: 3,
            max_per_client: 2,
        };
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let s1 = admit(&counts, a, &l).expect("first");
        let _s2 = admit(&counts, a, &l).expect("second");
        assert!(admit(&counts, a, &l).is_none(), "per client");
        let _s3 = admit(&counts, b, &l).expect("another client");
        assert!(admit(&counts, b, &l).is_none(), "in all");
        drop(s1);
        assert!(admit(&counts, a, &l).is_some(), "a slot came back");
    }
}
