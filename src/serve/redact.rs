//! Secrets kept out of the log and the audit file.
//!
//! A request target is written in two places: the tracing span of every request (the
//! `TraceLayer` in `serve/mod.rs`) and the audit file's `access` lines. Callers do send
//! keys where they should not (`?key=...`, `?access_token=...`, a key pasted into a
//! path), so before a target is written:
//!
//! - the value of every query parameter whose name says it is a secret (it contains
//!   `key`, `token`, `secret`, `pass`, `pwd`, `auth`, `credential`, `session`, `sig`,
//!   `jwt` or `cookie`, in any case, `-` or `_`) is replaced by [`REDACTED`];
//! - any query value or path segment that is the key the request presents (in
//!   `Authorization` or `X-API-Key`) or that hashes to a configured key is replaced too,
//!   whatever its name.
//!
//! Headers are never written (the trace span names the method, the target and the
//! version only), so `Authorization` and `X-API-Key` never reach either.

use sha2::{Digest as _, Sha256};

use super::auth::ApiKey;

/// What a secret is replaced with.
pub const REDACTED: &str = "REDACTED";

/// Parts of a parameter name that mark its value as a secret.
const SECRET_WORDS: [&str; 11] = [
    "key",
    "token",
    "secret",
    "pass",
    "pwd",
    "auth",
    "credential",
    "session",
    "sig",
    "jwt",
    "cookie",
];

/// Redacts targets for one set of configured keys.
#[derive(Debug, Default)]
pub struct Redactor {
    hashes: Vec<[u8; 32]>,
}

impl Redactor {
    pub fn new(keys: &[ApiKey]) -> Self {
        let hashes = keys
            .iter()
            .filter_map(|k| {
                let s = k.sha256.trim();
                if s.len() != 64 {
                    return None;
                }
                let mut out = [0u8; 32];
                for (i, o) in out.iter_mut().enumerate() {
                    *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
                }
                Some(out)
            })
            .collect();
        Redactor { hashes }
    }

    /// Whether `text` (decoded) is the presented key or a configured one.
    fn is_key(&self, text: &str, presented: Option<&str>) -> bool {
        let t = text.trim();
        if t.is_empty() {
            return false;
        }
        if presented.is_some_and(|p| !p.is_empty() && p == t) {
            return true;
        }
        if self.hashes.is_empty() {
            return false;
        }
        let digest: [u8; 32] = Sha256::digest(t.as_bytes()).into();
        self.hashes.contains(&digest)
    }

    /// `path?query` with every secret replaced; `presented` is the key the request sent
    /// in a header, if any.
    pub fn target(&self, path: &str, query: Option<&str>, presented: Option<&str>) -> String {
        let mut out = String::with_capacity(path.len() + query.map_or(0, str::len) + 1);
        for (i, seg) in path.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            if self.is_key(&decode(seg), presented) {
                out.push_str(REDACTED);
            } else {
                out.push_str(seg);
            }
        }
        if let Some(q) = query {
            out.push('?');
            out.push_str(&self.query(q, presented));
        }
        out
    }

    /// The query string with every secret value replaced.
    pub fn query(&self, q: &str, presented: Option<&str>) -> String {
        let mut out = String::with_capacity(q.len());
        for (i, pair) in q.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((name, value)) => {
                    out.push_str(name);
                    out.push('=');
                    if secret_name(&decode(name)) || self.is_key(&decode(value), presented) {
                        out.push_str(REDACTED);
                    } else {
                        out.push_str(value);
                    }
                }
                // A bare word: a key pasted on its own, or a flag.
                None if self.is_key(&decode(pair), presented) => out.push_str(REDACTED),
                None => out.push_str(pair),
            }
        }
        out
    }
}

/// Whether a parameter name marks a secret.
pub fn secret_name(name: &str) -> bool {
    let n: String = name
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_WORDS.iter().any(|w| n.contains(w))
}

/// Percent-decoding (and `+` as space) that never fails: bad escapes stay as they are.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let pair = b
                    .get(i + 1)
                    .copied()
                    .and_then(hex)
                    .zip(b.get(i + 2).copied().and_then(hex));
                if let Some((hi, lo)) = pair {
                    out.push((hi * 16 + lo) as u8);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::auth::{Role, hash_key};

    #[test]
    fn secrets_are_redacted_by_name_and_by_value() {
        let r = Redactor::new(&[ApiKey {
            name: "ops".into(),
            role: Role::Admin,
            sha256: hash_key("configured-secret"),
        }]);
        assert_eq!(
            r.target(
                "/a",
                Some("key=s1&API_KEY=s2&access_token=s3&Pass%77ord=s4&f=json"),
                None
            ),
            "/a?key=REDACTED&API_KEY=REDACTED&access_token=REDACTED&Pass%77ord=REDACTED&f=json"
        );
        assert_eq!(
            r.target(
                "/x/configured%2Dsecret/y",
                Some("q=configured-secret&sent&z=1"),
                Some("sent")
            ),
            "/x/REDACTED/y?q=REDACTED&REDACTED&z=1"
        );
        assert_eq!(r.target("/health", None, None), "/health");
        assert_eq!(decode("%zz%4"), "%zz%4");
    }
}
