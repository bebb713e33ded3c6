//! `GET /collections` and `GET /collections/{id}`: what each collection holds, its
//! extent in space (CRS84) and time (the data's months), and links to its items. A
//! browser (`Accept` naming `text/html` and no JSON type, or `f=html`) gets the same as a
//! page: a table of the collections with links to their items as a table, GeoJSON and
//! CSV; GDAL's, OWSLib's and `*/*` Accepts get JSON.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::catalog::{CollectionId, spatial_extent, temporal_extent};
use super::query::Crs;
use super::{
    CRS84, CSV, GEOJSON, JSON, base_url, carried_filter, esc, html_head, html_response,
    json_response, link, vary, with_query,
};
use crate::analysis::AnalysisStore;
use crate::serve::auth::{Principal, principal_of};
use crate::serve::{AppError, AppState};

/// The description of one collection; `qs` is the caller's filter, carried into its links.
/// Its tilesets' links (OGC API - Tiles) do not carry `qs`: the tiles take their own
/// filter (`from`/`to` for `datetime`), given on the tileset URL.
fn describe(c: CollectionId, store: &AnalysisStore, base: &str, qs: &str) -> Value {
    let href = format!("{base}/collections/{}", c.id());
    let carry = |h: String| with_query(&h, qs);
    let mut links = vec![
        link(carry(href.clone()), "self", JSON, "this collection"),
        link(
            carry(format!("{href}/items")),
            "items",
            GEOJSON,
            "the features",
        ),
        link(
            carry(format!("{href}/items?f=csv")),
            "items",
            CSV,
            "the features as CSV",
        ),
        link(
            carry(format!("{href}/queryables")),
            "http://www.opengis.net/def/rel/ogc/1.0/queryables",
            super::SCHEMA_JSON,
            "the properties to filter and sort by",
        ),
    ];
    links.extend(super::tilesets::collection_links(c, base));
    json!({
        "id": c.id(),
        "title": c.title(),
        "description": c.description(),
        "links": links,
        "extent": {
            "spatial": { "bbox": [spatial_extent(c, store)], "crs": CRS84 },
            "temporal": {
                "interval": [temporal_extent(store)],
                "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
            },
        },
        "itemType": "feature",
        // OGC API - Features Part 2: the CRSs `crs` and `bbox-crs` take, and the one
        // the data is held in (the geometries are kept in WGS84).
        "crs": Crs::ALL.map(Crs::uri),
        "storageCrs": CRS84,
    })
}

/// `GET /collections`.
pub async fn list(
    State(state): State<AppState>,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    let store = state.store();
    let qs = carried_filter(uri.query(), &store, &["json", "html"])?;
    let base = base_url(&headers, &uri);
    // Only the collections this caller may read.
    let role = principal_of(principal).role;
    let collections: Vec<Value> = CollectionId::ALL
        .iter()
        .filter(|c| c.role() <= role)
        .map(|c| describe(*c, &store, &base, &qs))
        .collect();
    let doc = json!({
        "links": [link(
            with_query(&format!("{base}/collections"), &qs),
            "self",
            JSON,
            "the collections",
        )],
        "collections": collections,
    });
    if super::landing::wants_html(&headers, uri.query()) {
        return Ok(html_response(
            &headers,
            page("Collections", &collections, &qs),
        ));
    }
    Ok(vary(json_response(&headers, &doc, JSON)))
}

/// The page for people of `collections` (their JSON descriptions): one row each, with
/// its description, extent and links to its items as a table, GeoJSON and CSV.
fn page(title: &str, collections: &[Value], qs: &str) -> String {
    use std::fmt::Write as _;
    let mut s = html_head(title);
    s.push_str(
        "<table><tr><th>Collection</th><th>Description</th><th>Extent</th><th>Features</th></tr>\n",
    );
    for c in collections {
        let text = |k: &str| esc(c[k].as_str().unwrap_or(""));
        let id = c["id"].as_str().unwrap_or("");
        let items = with_query(&format!("/collections/{id}/items?f=html"), qs);
        let bbox: Vec<String> = c["extent"]["spatial"]["bbox"][0]
            .as_array()
            .map(|b| {
                b.iter()
                    .map(|v| format!("{:.3}", v.as_f64().unwrap_or(0.0)))
                    .collect()
            })
            .unwrap_or_default();
        let months: Vec<&str> = c["extent"]["temporal"]["interval"][0]
            .as_array()
            .map(|i| i.iter().map(|v| v.as_str().unwrap_or("..")).collect())
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "<tr><td><a href=\"{}\">{}</a> ({})</td><td>{}</td><td>{} (lon, lat)<br>{}</td>\
             <td><a href=\"{}\">table</a> <a href=\"{}\">GeoJSON</a> <a href=\"{}\">CSV</a></td></tr>",
            esc(&with_query(&format!("/collections/{id}?f=html"), qs)),
            text("title"),
            esc(id),
            text("description"),
            esc(&bbox.join(", ")),
            esc(&months.join(" to ")),
            esc(&items),
            esc(&with_query(&format!("/collections/{id}/items?f=json"), qs)),
            esc(&with_query(&format!("/collections/{id}/items?f=csv"), qs)),
        );
    }
    s.push_str("</table>\n<p><a href=\"/map/\">The web map</a> · <a href=\"/api\">API definition</a></p>\n</body></html>\n");
    s
}

/// `GET /collections/{id}`.
pub async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    let c = CollectionId::parse(&id)
        .ok_or_else(|| AppError::NotFound(format!("no collection '{id}'")))?;
    let store = state.store();
    let qs = carried_filter(uri.query(), &store, &["json", "html"])?;
    let base = base_url(&headers, &uri);
    let doc = describe(c, &store, &base, &qs);
    if super::landing::wants_html(&headers, uri.query()) {
        let body = page(&c.title(), std::slice::from_ref(&doc), &qs);
        return Ok(html_response(&headers, body));
    }
    Ok(vary(json_response(&headers, &doc, JSON)))
}
