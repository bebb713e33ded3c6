//! Tile layers: heatmap PNG rasters (`heatmap.rs`), Mapbox Vector Tiles (`mvt.rs`), a
//! self-hosted raster basemap (`basemap.rs`), and
//! the links their TileJSON documents share (`base_url`, `encode_component`).

pub mod basemap;
pub mod heatmap;
pub mod mvt;

use axum::http::{HeaderMap, Uri, header};

use crate::serve::AppState;

/// `scheme://host` of the request: the Host header (or the URI's authority), else the
/// bound address; https only when a proxy says so with `X-Forwarded-Proto`.
pub(crate) fn base_url(state: &AppState, uri: &Uri, headers: &HeaderMap) -> String {
    let valid = |h: &str| {
        !h.is_empty()
            && h.len() <= 255
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:[]_".contains(c))
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(ToString::to_string))
        .filter(|h| valid(h))
        .unwrap_or_else(|| {
            let bind = state.settings().bind;
            if bind.ip().is_unspecified() {
                format!("localhost:{}", bind.port())
            } else {
                bind.to_string()
            }
        });
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// Percent-encodes a query value (unreserved characters and commas stay).
pub(crate) fn encode_component(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b',' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode_component("Violence and sexual offences,drugs"),
            "Violence%20and%20sexual%20offences,drugs"
        );
        assert_eq!(encode_component("a&b=c"), "a%26b%3Dc");
    }
}
