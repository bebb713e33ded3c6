//! OGC API - Features Part 1 (Core, GeoJSON, OpenAPI 3.0): the landing page, conformance,
//! the OpenAPI document, the collections and their items, so GDAL (`OAPIF:`), QGIS and
//! ArcGIS read the hotspot layers directly.
//!
//! - `landing.rs`: `/` and `/conformance`; `openapi.rs`: `/api`.
//! - `catalog.rs`: which collections exist, their titles and extents.
//! - `collections.rs`: `/collections` and `/collections/{id}`.
//! - `tilesets.rs`: OGC API - Tiles: `/tileMatrixSets[/{id}]` and
//!   `/collections/{id}[/map]/tiles[/{tms}]`, tileset metadata over `serve::tiles`.
//! - `items.rs`: `/collections/{id}/items[/{fid}]`, with `query.rs` (limit, offset, bbox,
//!   datetime via `datetime.rs`, the incident filter, `f`), `build.rs` (the features of a
//!   collection under a filter, computed from the store), `encode.rs` (GeoJSON and CSV)
//!   and `cache.rs` (computed collections shared by the pages of one result set).
//!   The H3 covers of study areas, which cost far more than the counts, are cached by
//!   `stats::grid::cached_cover` under `Study::new`.
//!
//! Links are absolute, built from the request's `Host` (and `X-Forwarded-Proto`), because
//! clients follow `next` as given.

mod build;
mod cache;
mod catalog;
mod collections;
pub mod datetime;
mod disclose;
mod encode;
mod items;
mod landing;
mod openapi;
pub mod query;
mod tilesets;

pub(crate) use build::PATROL_OPTIONS;
pub use catalog::CollectionId;
pub(crate) use catalog::HOTSPOT_RES;

use axum::http::{HeaderMap, Uri, header};
use axum::response::Response;
use axum::routing::get;

use crate::analysis::AnalysisStore;
use crate::serve::auth::{Access, Role, Routes};
use crate::serve::{AppError, cached};

/// `application/json`.
pub const JSON: &str = "application/json";
/// `application/geo+json`.
pub const GEOJSON: &str = "application/geo+json";
/// OpenAPI 3.0 as JSON.
pub const OPENAPI: &str = "application/vnd.oai.openapi+json;version=3.0";
/// CSV tables.
pub const CSV: &str = "text/csv; charset=utf-8";
/// A JSON Schema document (queryables).
pub const SCHEMA_JSON: &str = "application/schema+json";
/// WGS84 longitude, latitude.
pub const CRS84: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";

/// Seconds clients may reuse a response (data change only on ingest; ETags revalidate).
const MAX_AGE: u32 = 60;

/// This module's routes and who may use them: the documents are public; a collection's
/// metadata, items and CSV need the collection's role ([`CollectionId::role`]), decided
/// on the decoded `{id}` with the handlers' own parse.
pub fn routes() -> Routes {
    let public = Access::Role(Role::Public);
    let collection = Access::Resource {
        base: Role::Public,
        param: "id",
        role_of: catalog::role_of,
    };
    Routes::new()
        .route("/", public, get(landing::landing))
        .route("/conformance", public, get(landing::conformance))
        .route("/api", public, get(openapi::api))
        .route("/collections", public, get(collections::list))
        .route("/collections/{id}", collection, get(collections::one))
        .route("/collections/{id}/items", collection, get(items::items))
        .route(
            "/collections/{id}/queryables",
            collection,
            get(items::queryables),
        )
        .route(
            "/collections/{id}/items/{fid}",
            collection,
            get(items::item),
        )
        // OGC API - Tiles: the tiling scheme and the tilesets of the collections that
        // have tiles (`tilesets.rs`); the tiles themselves are `serve::tiles`'.
        .route("/tileMatrixSets", public, get(tilesets::matrix_sets))
        .route("/tileMatrixSets/{tms}", public, get(tilesets::matrix_set))
        .route(
            "/collections/{id}/tiles",
            collection,
            get(tilesets::vector_list),
        )
        .route(
            "/collections/{id}/tiles/{tms}",
            collection,
            get(tilesets::vector_one),
        )
        .route(
            "/collections/{id}/map/tiles",
            collection,
            get(tilesets::map_list),
        )
        .route(
            "/collections/{id}/map/tiles/{tms}",
            collection,
            get(tilesets::map_one),
        )
}

/// Whether feature `fid` of collection `cid` is withheld (`suppressed`) in what a caller
/// below analyst gets under `filter`: the same cached, disclosure-controlled collection,
/// so other outputs withhold a unit exactly when the collection does.
///
/// # Errors
/// 403 for a sensitive category named below district level; internal errors.
pub(crate) fn withheld(
    cid: CollectionId,
    store: &std::sync::Arc<crate::analysis::AnalysisStore>,
    generation: u64,
    filter: &crate::analysis::Filter,
    settings: &crate::serve::disclosure::DisclosureSettings,
    fid: &str,
) -> Result<bool, AppError> {
    let c = disclose::Controls::new(settings);
    let f = c.restrict(cid, filter, false)?;
    let items = disclose::disclosed(cid, store, generation, &f, &c)?;
    Ok(items.find(fid).is_some_and(|row| items.suppressed(row)))
}

/// Scheme and authority of this service as the client addressed it, without a trailing
/// slash (`http://localhost` when the request names no valid host).
pub fn base_url(headers: &HeaderMap, uri: &Uri) -> String {
    let host = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .filter(|h| valid_host(h))
        .unwrap_or_else(|| "localhost".to_owned());
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let scheme = match (uri.scheme_str(), proto) {
        (Some("https"), _) | (_, Some("https")) => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b))
}

/// A JSON document as a cached response.
fn json_response(headers: &HeaderMap, doc: &serde_json::Value, ctype: &'static str) -> Response {
    let body = serde_json::to_vec(doc).unwrap_or_default();
    cached(headers, body, ctype, false, MAX_AGE)
}

/// Only `f=json` (or no `f`) on the JSON-only resources, and the incident filter
/// (`datetime`, `types`, `severity`, `district`), checked as on items and returned as a
/// query string to carry into the answer's links (GDAL and QGIS send a filter put in an
/// `OAPIF:` URL on every request, the landing page and the collections included).
/// Anything else is a 400.
fn json_only(raw: Option<&str>, store: &AnalysisStore) -> Result<String, AppError> {
    carried_filter(raw, store, &["json"])
}

/// As [`json_only`], with `f` one of `formats`.
fn carried_filter(
    raw: Option<&str>,
    store: &AnalysisStore,
    formats: &[&str],
) -> Result<String, AppError> {
    // `f` is checked here (the items' parse knows only the items' formats), the rest as
    // on items; a repeated `f` goes to the parse, which refuses repeats.
    let (fs, rest): (Vec<&str>, Vec<&str>) = raw
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .partition(|kv| kv.split('=').next() == Some("f"));
    if let [f] = fs.as_slice() {
        let v = crate::serve::params::decode(f.split_once('=').map_or("", |(_, v)| v))?;
        if !formats.contains(&v.as_str()) {
            return Err(AppError::BadRequest(format!(
                "parameter 'f': '{v}' is not offered here (only {})",
                formats.join(", ")
            )));
        }
    }
    let rest = if fs.len() > 1 {
        raw.unwrap_or("").to_owned()
    } else {
        rest.join("&")
    };
    let q = query::parse(
        Some(rest.as_str()).filter(|s| !s.is_empty()),
        &query::ITEM_PARAMS,
        store,
    )?;
    let mut carried = q.params;
    carried.remove("f");
    Ok(query::with_offset(&carried, 0))
}

/// The pages for people (`f=html`, or a browser's `Accept`).
const HTML: &str = "text/html; charset=utf-8";

/// An answer that depends on `Accept` too (HTML for a browser): caches must key on it.
fn vary(mut res: Response) -> Response {
    res.headers_mut().insert(
        axum::http::header::VARY,
        axum::http::HeaderValue::from_static("Accept"),
    );
    res
}

/// A page for people as the answer (cached like every answer, varying by `Accept`).
fn html_response(headers: &HeaderMap, body: String) -> Response {
    vary(cached(headers, body.into_bytes(), HTML, false, MAX_AGE))
}

/// Text for HTML: `& < > " '` escaped.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The head of a page for people, titled `title`, with the items pages' style.
fn html_head(title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>body{{font-family:sans-serif;margin:1.5rem;color:#1a1a1a}}\
         table{{border-collapse:collapse}}th,td{{border:1px solid #bbb;padding:.25rem .5rem;text-align:left}}\
         th{{background:#eef0f2}}nav a{{margin-right:1rem}}</style></head><body>\n\
         <h1>{t}</h1>\n",
        t = esc(title),
    )
}

/// `href` with the carried filter `qs` appended (`?` or `&` as needed).
fn with_query(href: &str, qs: &str) -> String {
    if qs.is_empty() {
        href.to_owned()
    } else if href.contains('?') {
        format!("{href}&{qs}")
    } else {
        format!("{href}?{qs}")
    }
}

/// A link object.
fn link(href: String, rel: &str, ctype: &str, title: &str) -> serde_json::Value {
    serde_json::json!({ "href": href, "rel": rel, "type": ctype, "title": title })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_from_host_and_proto() {
        let mut h = HeaderMap::new();
        let uri: Uri = "/collections".parse().unwrap();
        assert_eq!(base_url(&h, &uri), "http://localhost");
        h.insert(header::HOST, "example.org:8080".parse().unwrap());
        assert_eq!(base_url(&h, &uri), "http://example.org:8080");
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        assert_eq!(base_url(&h, &uri), "https://example.org:8080");
        h.insert(header::HOST, "evil\"host".parse().unwrap());
        assert_eq!(base_url(&h, &uri), "https://localhost");
    }
}
