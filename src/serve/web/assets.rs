//! The web map's files, read from disk on each request (so a front-end edit needs no
//! rebuild): `web/index.html`, `web/src/*.{js,css}`, and MapLibre GL JS from
//! `web/node_modules/maplibre-gl/dist/` (installed by `npm ci` in `web/`, never a CDN).
//!
//! The folder is `HOTSPOT_WEB` when set, else `web/` under the working directory when it
//! holds `index.html`, else the `web/` folder of the source tree this binary was built
//! from. Only the names above are served: anything else, `..` included, is a 404.

use std::path::PathBuf;

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::serve::{AppError, cached};

/// Where the web files are.
pub fn web_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HOTSPOT_WEB") {
        return PathBuf::from(d);
    }
    let local = PathBuf::from("web");
    if local.join("index.html").is_file() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web")
}

/// The file behind a request path under `/map/`, with its media type, or None.
pub fn resolve(path: &str) -> Option<(PathBuf, &'static str)> {
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
        [""] | ["index.html"] => Some((PathBuf::from("index.html"), "text/html; charset=utf-8")),
        ["src", f] if ok_name(f) => media(f).map(|m| (PathBuf::from("src").join(f), m)),
        ["vendor", f @ ("maplibre-gl.js" | "maplibre-gl.css")] => {
            media(f).map(|m| (PathBuf::from("node_modules/maplibre-gl/dist").join(f), m))
        }
        _ => None,
    }
}

/// `GET /map/{*path}`.
pub async fn file_at(Path(path): Path<String>, headers: HeaderMap) -> Result<Response, AppError> {
    file(Some(path), headers).await
}

/// The file at `path` under `/map/` (None: the app's page).
pub async fn file(path: Option<String>, headers: HeaderMap) -> Result<Response, AppError> {
    let path = path.unwrap_or_default();
    let (rel, media) =
        resolve(&path).ok_or_else(|| AppError::NotFound(format!("no map file '{path}'")))?;
    let full = web_dir().join(&rel);
    let read = full.clone();
    let body = tokio::task::spawn_blocking(move || std::fs::read(read))
        .await
        .map_err(|e| AppError::Internal(format!("web map file task: {e}")))?
        .map_err(|e| {
            tracing::warn!(file = %full.display(), error = %e, "web map file missing");
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
