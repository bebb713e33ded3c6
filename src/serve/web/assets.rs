//! The web map's files: `web/index.html`, `web/src/*.{js,css}`, and MapLibre GL JS from
//! `web/node_modules/maplibre-gl/dist/` (installed by `npm ci` in `web/`, never a CDN).
//!
//! Two sources, tried in this order for each file:
//! 1. a folder on disk, read on each request (so a front-end edit needs no rebuild):
//!    `HOTSPOT_WEB` when set (and only it), else `web/` under the working directory, else
//!    the `web/` folder of the source tree this binary was built from, whichever holds
//!    `index.html`;
//! 2. the copy embedded in the `hotspot` binary at build time (`src/main.rs` calls
//!    [`embed`]), so a binary copied to another machine serves the map on its own.
//!
//! MapLibre is embedded only when `npm ci` had run in `web/` before the build (see
//! `build.rs`). When neither source has it, `hotspot serve` says so at start-up and the
//! map's page is a short explanation instead of a blank map ([`Availability`]); the API
//! and the tiles never need npm.
//!
//! Only the names above are served: anything else, `..` included, is a 404.

use std::path::PathBuf;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::serve::{AppError, cached};

/// Where MapLibre's two files live under `web/`.
const MAPLIBRE: [&str; 2] = [
    "node_modules/maplibre-gl/dist/maplibre-gl.js",
    "node_modules/maplibre-gl/dist/maplibre-gl.css",
];

static EMBEDDED: OnceLock<&'static [(&'static str, &'static [u8])]> = OnceLock::new();

/// Registers the files embedded in the binary: `(path under web/, bytes)`. The first call
/// wins; a library user that never calls it serves from disk only.
pub fn embed(files: &'static [(&'static str, &'static [u8])]) {
    let _ = EMBEDDED.set(files);
}

fn embedded(rel: &str) -> Option<&'static [u8]> {
    EMBEDDED
        .get()?
        .iter()
        .find(|(p, _)| *p == rel)
        .map(|(_, b)| *b)
}

/// The folder on disk the map's files are read from, if any holds `index.html`.
/// `HOTSPOT_WEB`, when set, is the only folder looked at.
pub fn web_dir() -> Option<PathBuf> {
    let has_index = |d: &PathBuf| d.join("index.html").is_file();
    if let Some(d) = std::env::var_os("HOTSPOT_WEB") {
        return Some(PathBuf::from(d)).filter(has_index);
    }
    [
        PathBuf::from("web"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web"),
    ]
    .into_iter()
    .find(has_index)
}

/// Whether the map can be served, and from where (said once at start-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// The files on disk, in this folder.
    Disk(PathBuf),
    /// The copy in the binary.
    Embedded,
    /// No MapLibre anywhere: the page explains.
    NoMapLibre,
}

impl Availability {
    /// What `hotspot serve` prints about the map.
    pub fn describe(&self) -> String {
        match self {
            Availability::Disk(d) => format!("web map files from {}", d.display()),
            Availability::Embedded => "web map files embedded in this binary".to_string(),
            Availability::NoMapLibre => NO_MAPLIBRE.to_string(),
        }
    }
}

const NO_MAPLIBRE: &str = "the web map cannot load: MapLibre GL JS is not installed \
(run `npm ci` in web/ and rebuild, or set HOTSPOT_WEB to a web/ folder that has it); \
the API and the tiles work without it";

/// Where the map's files come from now.
pub fn availability() -> Availability {
    let dir = web_dir();
    let on_disk = |rel: &str| dir.as_ref().is_some_and(|d| d.join(rel).is_file());
    let maplibre = MAPLIBRE.iter().all(|f| on_disk(f) || embedded(f).is_some());
    match dir {
        _ if !maplibre => Availability::NoMapLibre,
        Some(d) => Availability::Disk(d),
        None if embedded("index.html").is_some() => Availability::Embedded,
        None => Availability::NoMapLibre,
    }
}

/// The file behind a request path under `/map/` (its path under `web/`), with its media
/// type, or None.
pub fn resolve(path: &str) -> Option<(String, &'static str)> {
    let ok_name = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    let media = |s: &str| match s.rsplit_once('.').map(|(_, e)| e) {
        Some("js") => Some("text/javascript; charset=utf-8"),
        Some("css") => Some("text/css; charset=utf-8"),
        Some("html") => Some("text/html; charset=utf-8"),
        Some("svg") => Some("image/svg+xml"),
        _ => None,
    };
    match path.split('/').collect::<Vec<_>>().as_slice() {
        [""] | ["index.html"] => Some(("index.html".to_string(), "text/html; charset=utf-8")),
        ["src", f] if ok_name(f) => media(f).map(|m| (format!("src/{f}"), m)),
        ["vendor", f @ ("maplibre-gl.js" | "maplibre-gl.css")] => {
            media(f).map(|m| (format!("node_modules/maplibre-gl/dist/{f}"), m))
        }
        _ => None,
    }
}

/// `GET /map/{*path}`.
pub async fn file_at(Path(path): Path<String>, headers: HeaderMap) -> Result<Response, AppError> {
    file(Some(path), headers).await
}

/// The page shown instead of the map when MapLibre is missing: says why, plainly.
fn no_maplibre_page() -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>hotspot · map unavailable</title></head><body>\
         <h1>The map cannot load here</h1><p>{NO_MAPLIBRE}.</p>\
         <p>The data are at <a href=\"/collections\">/collections</a> \
         (OGC API - Features) and the tiles at <a href=\"/tiles/heatmap.json\">/tiles/heatmap.json</a>.</p>\
         </body></html>"
    );
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// The file at `path` under `/map/` (None: the app's page): from disk when the folder has
/// it, else the embedded copy.
pub async fn file(path: Option<String>, headers: HeaderMap) -> Result<Response, AppError> {
    let path = path.unwrap_or_default();
    let (rel, media) =
        resolve(&path).ok_or_else(|| AppError::NotFound(format!("no map file '{path}'")))?;
    if rel == "index.html" && availability() == Availability::NoMapLibre {
        return Ok(no_maplibre_page());
    }
    let disk = web_dir().map(|d| d.join(&rel)).filter(|f| f.is_file());
    let body = match disk {
        Some(full) => tokio::task::spawn_blocking(move || std::fs::read(full))
            .await
            .map_err(|e| AppError::Internal(format!("web map file task: {e}")))?
            .ok(),
        None => None,
    };
    let body = body
        .or_else(|| embedded(&rel).map(<[u8]>::to_vec))
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "map file '{path}' is not installed (run `npm ci` in web/)"
            ))
        })?;
    // Revalidate every time (the ETag makes that a 304): files change without a restart.
    Ok(cached(&headers, body, media, false, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_names_resolve() {
        assert!(resolve("").is_some());
        assert!(resolve("src/app.js").is_some());
        assert!(resolve("vendor/maplibre-gl.js").is_some());
        for bad in [
            "../Cargo.toml",
            "src/../../Cargo.toml",
            "src/.hidden.js",
            "src/a.rs",
            "vendor/other.js",
            "node_modules/maplibre-gl/package.json",
            "src/a/b.js",
            "tests/browser.test.mjs",
        ] {
            assert!(resolve(bad).is_none(), "{bad}");
        }
    }
}
