//! Token buckets keyed by client: one table for client addresses, one for API keys.
//!
//! A bucket holds up to `burst` tokens and refills at `rps` per second; a request takes
//! one token. Past the burst a request may take a token not yet refilled, and waits for
//! it (nginx's `limit_req` with a delay): up to `max_delay` ahead, so a client that pages
//! one request after another (GDAL walking `next` links at 10 features a page) is slowed
//! to the sustained rate, never refused; past that it is refused with the time until it
//! would be let in. The table is bounded: when it is
//! full, buckets that have refilled (idle clients, indistinguishable from new ones) are
//! dropped; if that frees too little (a flood of distinct clients), the table is cleared,
//! which costs the flood nothing it did not already have and keeps memory fixed.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Who a bucket belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    /// An IPv4 address, or the /64 network of an IPv6 one (one host usually holds a whole
    /// /64, so per-address buckets would be free to multiply).
    Addr(IpAddr),
    /// The first 16 bytes of the SHA-256 of the key as sent: the key itself is never kept.
    Key([u8; 16]),
}

impl Client {
    /// The bucket of a peer address.
    pub fn addr(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Client::Addr(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client::Addr(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    Client::Addr(IpAddr::V6(Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
        }
    }

    /// The bucket of an API key.
    pub fn key(raw: &[u8]) -> Self {
        let digest = Sha256::digest(raw);
        let mut k = [0u8; 16];
        k.copy_from_slice(&digest[..16]);
        Client::Key(k)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A bounded table of token buckets sharing one rate.
#[derive(Debug)]
pub struct Buckets {
    rps: f64,
    burst: f64,
    /// How far ahead of the refill a request may take a token (and wait for it).
    max_delay: f64,
    max_clients: usize,
    table: Mutex<HashMap<Client, Bucket>>,
}

impl Buckets {
    /// `rps` 0 lets everything through; `max_delay` 0 refuses as soon as the burst is
    /// spent.
    pub fn new(rps: u32, burst: u32, max_delay: Duration, max_clients: usize) -> Self {
        Buckets {
            rps: f64::from(rps),
            burst: f64::from(burst.max(1)),
            max_delay: max_delay.as_secs_f64(),
            max_clients: max_clients.max(1),
            table: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `client` at `now`: the time the request must wait for it (zero
    /// inside the burst).
    ///
    /// # Errors
    /// The wait until a request would be let in, when its token is further ahead than
    /// `max_delay`.
    pub fn take(&self, client: Client, now: Instant) -> Result<Duration, Duration> {
        if self.rps <= 0.0 {
            return Ok(Duration::ZERO);
        }
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if table.len() >= self.max_clients && !table.contains_key(&client) {
            self.make_room(&mut table, now);
        }
        let b = table.entry(client).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rps).min(self.burst);
        b.at = now;
        // Until this request's token has refilled (0 when one is there).
        let wait = ((1.0 - b.tokens) / self.rps).max(0.0);
        if wait <= self.max_delay {
            b.tokens -= 1.0;
            Ok(Duration::from_secs_f64(wait))
        } else {
            Err(Duration::from_secs_f64(wait - self.max_delay))
        }
    }

    /// Clients tracked now.
    pub fn len(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no client is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops refilled buckets; clears the table if it stays over three quarters full, so
    /// the next full scan is at least a quarter of `max_clients` new clients away.
    fn make_room(&self, table: &mut HashMap<Client, Bucket>, now: Instant) {
        table.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * self.rps < self.burst
        });
        if table.len() > self.max_clients / 4 * 3 {
            tracing::warn!(
                clients = table.len(),
                "rate-limit table full of active clients: cleared"
            );
            table.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Client {
        Client::addr(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let b = Buckets::new(10, 5, Duration::ZERO, 100);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(b.take(ip(1), t0).is_ok());
        }
        let wait = b.take(ip(1), t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        // Another client has its own bucket.
        assert!(b.take(ip(2), t0).is_ok());
        // A tenth of a second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(100);
        assert!(b.take(ip(1), t1).is_ok());
        assert!(b.take(ip(1), t1).is_err());
    }

    #[test]
    fn past_the_burst_a_request_waits_up_to_max_delay() {
        let b = Buckets::new(100, 2, Duration::from_millis(50), 100);
        let t0 = Instant::now();
        for _ in 0..2 {
            assert_eq!(b.take(ip(1), t0), Ok(Duration::ZERO));
        }
        // The next five take the tokens of the next 50 ms, and wait for them.
        for k in 1..=5 {
            let w = b.take(ip(1), t0).expect("inside the delay");
            assert!(
                (w.as_secs_f64() - 0.01 * f64::from(k)).abs() < 1e-9,
                "{k}: {w:?}"
            );
        }
        // The sixth would wait 60 ms: refused, 10 ms before it would be let in.
        let e = b.take(ip(1), t0).expect_err("past the delay");
        assert!((e.as_secs_f64() - 0.01).abs() < 1e-9, "{e:?}");
        // A client that sends its next request when the last is answered (GDAL paging) is
        // slowed to the sustained rate and never refused.
        let mut t = t0;
        for _ in 0..1000 {
            let w = b
                .take(ip(3), t)
                .expect("a sequential client is never refused");
            t += w.max(Duration::from_micros(100));
        }
        let took = (t - t0).as_secs_f64();
        assert!((9.9..10.2).contains(&took), "{took} s for 1000 at 100/s");
    }

    #[test]
    fn zero_rate_is_no_limit() {
        let b = Buckets::new(0, 0, Duration::ZERO, 1);
        let t0 = Instant::now();
        assert!((0..1000).all(|i| b.take(ip(i as u8), t0).is_ok()));
        assert!(b.is_empty());
    }

    #[test]
    fn the_table_is_bounded() {
        let b = Buckets::new(1, 2, Duration::ZERO, 64);
        let t0 = Instant::now();
        let client = |i: u32| Client::addr(IpAddr::from(i.to_be_bytes()));
        for i in 0..10_000u32 {
            let _ = b.take(client(i), t0);
            assert!(b.len() <= 64);
        }
        // A table full of active clients is cleared for a new one.
        let b = Buckets::new(1, 2, Duration::ZERO, 64);
        (0..64).for_each(|i| assert!(b.take(client(i), t0).is_ok()));
        assert_eq!(b.len(), 64);
        assert!(b.take(client(64), t0).is_ok());
        assert_eq!(b.len(), 1);
        // Idle clients (refilled buckets) are dropped first, active ones kept.
        (100..163).for_each(|i| assert!(b.take(client(i), t0).is_ok()));
        let later = t0 + Duration::from_secs(10);
        assert!(b.take(client(100), later).is_ok());
        assert_eq!(b.len(), 64);
        assert!(b.take(client(500), later).is_ok());
        assert_eq!(b.len(), 2, "client 100 is active again, 500 is new");
    }

    #[test]
    fn ipv6_hosts_share_their_64_and_keys_are_hashed() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Client::addr(a), Client::addr(b));
        assert_ne!(Client::addr(a), Client::addr(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(Client::addr(mapped), ip(1));
        assert_eq!(Client::key(b"abc"), Client::key(b"abc"));
        assert_ne!(Client::key(b"abc"), Client::key(b"abd"));
    }
}
