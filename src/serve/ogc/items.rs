//! `GET /collections/{id}/items` (a page of a collection's features under the filter,
//! bbox and paging) and `GET /collections/{id}/items/{fid}` (one feature).
//!
//! The statistics run in a blocking task; the computed collection is shared by the pages
//! of one result set (`cache.rs`), so following `next` costs little after the first page.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;

use super::build::Column;
use super::build::Items;
use super::catalog::{Bounds, CollectionId, spatial_extent};
use super::disclose::{self, Controls};
use super::encode::{Page, csv, feature_collection, intersects, push_feature, value_text};
use super::query::{self, Format, ITEM_PARAMS, ITEMS_PARAMS, ItemsQuery, QUERYABLES_PARAMS};
use super::{
    CSV, GEOJSON, JSON, MAX_AGE, SCHEMA_JSON, base_url, cache, esc, html_head, html_response, link,
    vary,
};
use crate::analysis::AnalysisStore;
use crate::serve::auth::{Principal, principal_of};
use crate::serve::{AppError, AppState, cached, compute, limits};

fn collection(id: &str) -> Result<CollectionId, AppError> {
    CollectionId::parse(id).ok_or_else(|| AppError::NotFound(format!("no collection '{id}'")))
}

/// The collection's features under the query's filter (from the cache when fresh), as
/// the caller may see them: disclosure-controlled below analyst.
fn computed(
    cid: CollectionId,
    store: &Arc<AnalysisStore>,
    generation: u64,
    q: &ItemsQuery,
    controls: Option<&Controls>,
) -> Result<Arc<Items>, AppError> {
    match controls {
        None => disclose::raw(cid, store, generation, &q.filter),
        Some(c) => {
            let f = c.restrict(cid, &q.filter, q.params.contains_key("types"))?;
            disclose::disclosed(cid, store, generation, &f, c)
        }
    }
}

/// Disclosure controls for this caller (none from analyst up).
fn controls_for(state: &AppState, p: &Principal) -> Option<Controls> {
    p.role
        .disclosure_controlled()
        .then(|| Controls::new(&state.settings().disclosure))
}

/// Below analyst, an answer every record of which is from a dataset marked already public
/// (`disclosure.public_datasets`) is published exactly: the controls are dropped, the
/// filter keeps their restriction (sensitive categories), and `true` says to state it.
///
/// # Errors
/// 403 for a sensitive category asked for below district level.
fn settle(
    state: &AppState,
    controls: Option<Controls>,
    cid: CollectionId,
    q: &mut ItemsQuery,
    store: &AnalysisStore,
) -> Result<(Option<Controls>, bool), AppError> {
    let Some(c) = controls else {
        return Ok((None, false));
    };
    let f = c.restrict(cid, &q.filter, q.params.contains_key("types"))?;
    if state.settings().disclosure.exempt(store, f.types) {
        q.filter = f;
        return Ok((None, true));
    }
    Ok((Some(c), false))
}

/// Everything one request needs, moved into the blocking task.
struct Request {
    cid: CollectionId,
    store: Arc<AnalysisStore>,
    generation: u64,
    q: ItemsQuery,
    base: String,
    headers: HeaderMap,
    controls: Option<Controls>,
    /// Below analyst but published exactly ([`settle`]): the settings, to say so.
    exact: Option<crate::serve::disclosure::DisclosureSettings>,
}

/// `GET /collections/{id}/items`.
pub async fn items(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    let controls = controls_for(&state, &principal_of(principal));
    let cid = collection(&id)?;
    let store = state.store();
    let mut q = query::parse(uri.query(), &ITEMS_PARAMS, &store)?;
    let (controls, exact) = settle(&state, controls, cid, &mut q, &store)?;
    let exact = exact.then(|| state.settings().disclosure.clone());
    // A browser (an Accept naming text/html and no JSON type) gets the page for people.
    if !q.params.contains_key("f") && super::landing::wants_html(&headers, None) {
        q.format = Format::Html;
    }
    // A box larger than the cap (QGIS zoomed right out sends near-world ones) is clamped
    // to the data's extent (the collection's advertised `extent.spatial`), as pygeoapi
    // does, not refused: what lies outside has no data. The cap is there for cost (the
    // work grows with the area asked for), and a clamped box is no larger than the data's
    // extent, so the cost stays bounded; the clamped box is still checked against the cap.
    // A box in British National Grid is checked by its WGS84 envelope.
    if let Some(b) = q.bbox.as_mut() {
        let max = state.settings().limits.max_bbox_area_deg2;
        if limits::check_bbox_area(&b.envelope, max).is_err() {
            match clamp_to_extent(b.envelope, spatial_extent(cid, &store)) {
                Some(c) => {
                    limits::check_bbox_area(&c, max)?;
                    q.notes
                        .push("bbox clamped to the extent of the data".into());
                    b.envelope = c;
                }
                // Disjoint from the data: kept as asked, so nothing intersects it and
                // the answer is an empty collection (costing no more than any bbox).
                None => q.notes.push("bbox outside the extent of the data".into()),
            }
        }
    }
    let r = Request {
        cid,
        store,
        generation: state.generation(),
        q,
        base: base_url(&headers, &uri),
        headers,
        controls,
        exact,
    };
    let kind = (r.cid.id(), 0);
    let size = compute::filter_size(&r.store.geography, &r.q.filter);
    state.compute().run(kind, size, move || page(&r)).await?
}

/// The part of `b` inside the data's extent `[west, south, east, north]`, or None when
/// they do not meet (a degenerate box on the extent's edge would still touch the
/// features along that edge).
fn clamp_to_extent(b: query::Bbox, r: Bounds) -> Option<query::Bbox> {
    let c = query::Bbox {
        west: b.west.max(r[0]),
        south: b.south.max(r[1]),
        east: b.east.min(r[2]),
        north: b.north.min(r[3]),
    };
    (c.west <= c.east && c.south <= c.north).then_some(c)
}

fn page(r: &Request) -> Result<Response, AppError> {
    let items = computed(r.cid, &r.store, r.generation, &r.q, r.controls.as_ref())?;
    // Property filters, sortby and properties name properties of what the caller gets
    // (the disclosure-controlled collection below analyst: a withheld count is null and
    // matches no filter, so a filter cannot find what the collection withholds).
    let column = |name: &str, what: &str| {
        items
            .columns
            .iter()
            .position(|(n, _)| *n == name)
            .ok_or_else(|| {
                AppError::BadRequest(format!(
                    "{what} '{name}' is no property of collection '{}' (its queryables: /collections/{}/queryables)",
                    r.cid.id(),
                    r.cid.id()
                ))
            })
    };
    let filters: Vec<(usize, &str)> =
        r.q.props
            .iter()
            .map(|(k, v)| Ok((column(k, "unknown query parameter: property")?, v.trim())))
            .collect::<Result<_, AppError>>()?;
    let sort: Vec<(usize, bool)> =
        r.q.sortby
            .iter()
            .map(|(k, desc)| Ok((column(k, "sortby: property")?, *desc)))
            .collect::<Result<_, AppError>>()?;
    let keep: Option<Vec<usize>> =
        r.q.properties
            .as_ref()
            .map(|ps| {
                ps.iter()
                    .map(|k| column(k, "properties: property"))
                    .collect()
            })
            .transpose()?;
    let mut matched: Vec<usize> = (0..items.len())
        .filter(|&i| {
            r.q.bbox
                .as_ref()
                .is_none_or(|b| intersects(&r.store, items.geoms[i], b))
        })
        .filter(|&i| {
            filters
                .iter()
                .all(|&(c, v)| value_text(&items.columns[c].1, i).is_some_and(|t| t == v))
        })
        .collect();
    if !sort.is_empty() {
        // Stable: ties keep the collection's own order. Nulls last either way.
        matched.sort_by(|&a, &b| {
            sort.iter()
                .map(|&(c, desc)| {
                    let col = &items.columns[c].1;
                    let o = compare(col, a, b);
                    let o = if desc {
                        o.map(std::cmp::Ordering::reverse)
                    } else {
                        o
                    };
                    o.unwrap_or_else(|| nulls_last(col, a, b))
                })
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    }
    let start = r.q.offset.min(matched.len());
    let end = start.saturating_add(r.q.limit).min(matched.len());
    // The page alone, with only the properties asked for.
    let page_items = Items {
        ids: matched[start..end]
            .iter()
            .map(|&i| items.ids[i].clone())
            .collect(),
        geoms: matched[start..end]
            .iter()
            .map(|&i| items.geoms[i])
            .collect(),
        columns: match &keep {
            None => items
                .columns
                .iter()
                .map(|(n, c)| (*n, c.take(&matched[start..end])))
                .collect(),
            Some(ks) => ks
                .iter()
                .map(|&k| {
                    (
                        items.columns[k].0,
                        items.columns[k].1.take(&matched[start..end]),
                    )
                })
                .collect(),
        },
        keys: Vec::new(),
    };
    let rows: Vec<usize> = (0..end - start).collect();
    let rows = &rows[..];
    let items = page_items;
    if r.q.format == Format::Csv {
        let body = csv(&r.store, &items, rows, r.q.crs).into_bytes();
        return Ok(content_crs(
            vary(cached(&r.headers, body, CSV, false, MAX_AGE)),
            r.q.crs,
        ));
    }
    if r.q.format == Format::Html {
        let body = html_page(r, &items, start, end, matched.len());
        return Ok(html_response(&r.headers, body));
    }
    let links = page_links(r, start, end, matched.len());
    let stamp = cache::time_stamp(&r.store, r.generation);
    let disclosure = match (&r.controls, &r.exact) {
        (Some(c), _) => Some(crate::serve::disclosure::metadata(c.k).to_string()),
        (None, Some(s)) => Some(crate::serve::disclosure::exact_metadata(s).to_string()),
        (None, None) => None,
    };
    let body = feature_collection(
        &r.store,
        &items,
        &Page {
            matched: matched.len(),
            rows,
            time_stamp: &stamp,
            links: &links,
            notes: &r.q.notes,
            disclosure: disclosure.as_deref(),
            skip_geometry: r.q.skip_geometry,
            crs: r.q.crs,
        },
    );
    Ok(content_crs(
        vary(cached(
            &r.headers,
            body.into_bytes(),
            GEOJSON,
            false,
            MAX_AGE,
        )),
        r.q.crs,
    ))
}

/// `Content-Crs: <uri>` (OGC API - Features Part 2): the CRS of the geometries.
fn content_crs(mut res: Response, crs: query::Crs) -> Response {
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("<{}>", crs.uri())) {
        res.headers_mut().insert("content-crs", v);
    }
    res
}

/// The page of items as an HTML table for people: what the collection is, how many
/// features match, previous / next pages, the same page as GeoJSON and CSV, and one row
/// per feature (its id and properties; null as a dash). Below analyst it says what
/// disclosure control withheld.
/// What a page for people says of its disclosure control (nothing from analyst up).
fn disclosure_note(r: &Request) -> String {
    match (&r.controls, &r.exact) {
        (Some(c), _) => format!(
            "<p>Disclosure control: counts below {} are withheld (shown as a dash) and published counts are perturbed.</p>\n",
            c.k
        ),
        (None, Some(_)) => "<p>Published exactly: every record counted is from a dataset already public at street level.</p>\n".into(),
        (None, None) => String::new(),
    }
}

fn html_page(r: &Request, items: &Items, start: usize, end: usize, matched: usize) -> String {
    use std::fmt::Write as _;
    let href = |offset: usize, f: &str| {
        let mut p = r.q.params.clone();
        p.insert("f".into(), f.into());
        format!(
            "{}/collections/{}/items?{}",
            r.base,
            r.cid.id(),
            query::with_offset(&p, offset)
        )
    };
    let title = format!("{} ({})", r.cid.title(), r.cid.id());
    let mut s = html_head(&title);
    let _ = writeln!(s, "<p>{}</p>", esc(&r.cid.description()));
    let _ = writeln!(
        s,
        "<p>Features {} to {} of {matched}.</p>",
        if end > start { start + 1 } else { 0 },
        end
    );
    s.push_str(&disclosure_note(r));
    s.push_str("<nav>");
    if start > 0 {
        let _ = write!(
            s,
            "<a rel=\"prev\" href=\"{}\">Previous page</a>",
            esc(&href(start.saturating_sub(r.q.limit), "html"))
        );
    }
    if end < matched {
        let _ = write!(
            s,
            "<a rel=\"next\" href=\"{}\">Next page</a>",
            esc(&href(end, "html"))
        );
    }
    let _ = writeln!(
        s,
        "<a href=\"{}\">GeoJSON</a><a href=\"{}\">CSV</a><a href=\"{}/map/\">Web map</a></nav>",
        esc(&href(start, "json")),
        esc(&href(start, "csv")),
        r.base
    );
    s.push_str(
        "<table>\n<caption>Features of this page</caption>\n<thead><tr><th scope=\"col\">id</th>",
    );
    for (name, _) in &items.columns {
        let _ = write!(s, "<th scope=\"col\">{}</th>", esc(name));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for row in 0..items.len() {
        let _ = write!(s, "<tr><td>{}</td>", esc(&items.ids[row].as_text()));
        for (_, c) in &items.columns {
            let v = value_text(c, row).unwrap_or_else(|| "-".into());
            let _ = write!(s, "<td>{}</td>", esc(&v));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table>\n</body></html>\n");
    s
}

/// `GET /collections/{id}/queryables`: a JSON Schema of the properties the caller's
/// items carry (below analyst, the disclosure-controlled ones), each usable as a filter
/// (`?name=Preston`) and in `sortby`.
pub async fn queryables(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    let controls = controls_for(&state, &principal_of(principal));
    let cid = collection(&id)?;
    let store = state.store();
    let mut q = query::parse(uri.query(), &QUERYABLES_PARAMS, &store)?;
    let (controls, _) = settle(&state, controls, cid, &mut q, &store)?;
    if let Some(f) = q.params.get("f").filter(|f| f.as_str() != "json") {
        return Err(AppError::BadRequest(format!(
            "parameter 'f': '{f}' is not offered here (only json)"
        )));
    }
    let base = base_url(&headers, &uri);
    let generation = state.generation();
    let kind = (cid.id(), 1);
    let size = compute::filter_size(&store.geography, &q.filter);
    state
        .compute()
        .run(kind, size, move || {
            let items = computed(cid, &store, generation, &q, controls.as_ref())?;
            let properties: serde_json::Map<String, serde_json::Value> = items
                .columns
                .iter()
                .map(|(name, c)| {
                    let schema = match c {
                        Column::Int(_) | Column::OptInt(_) => serde_json::json!({ "type": "integer" }),
                        Column::Num(..) => serde_json::json!({ "type": "number" }),
                        Column::Bool(_) => serde_json::json!({ "type": "boolean" }),
                        Column::Text(_) => serde_json::json!({ "type": "string" }),
                        Column::Month(_) => serde_json::json!({ "type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$" }),
                    };
                    let mut schema = schema;
                    schema["title"] = serde_json::Value::from(*name);
                    ((*name).to_owned(), schema)
                })
                .collect();
            let doc = serde_json::json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$id": format!("{base}/collections/{}/queryables", cid.id()),
                "type": "object",
                "title": cid.id(),
                "properties": properties,
                "additionalProperties": false,
            });
            let body = serde_json::to_vec(&doc)
                .map_err(|e| AppError::Internal(format!("queryables: {e}")))?;
            Ok(cached(&headers, body, SCHEMA_JSON, false, MAX_AGE))
        })
        .await?
}

/// Two rows of a column in order, None when either is null (or not comparable).
fn compare(c: &Column, a: usize, b: usize) -> Option<std::cmp::Ordering> {
    match c {
        Column::Int(v) => Some(v[a].cmp(&v[b])),
        Column::OptInt(v) => Some(v[a]?.cmp(&v[b]?)),
        Column::Num(v, _) => v[a].partial_cmp(&v[b]),
        Column::Bool(v) => Some(v[a].cmp(&v[b])),
        Column::Text(v) => Some(v[a].as_deref()?.cmp(v[b].as_deref()?)),
        Column::Month(v) => Some(v[a].cmp(&v[b])),
    }
}

/// Where nulls go: after every value, whatever the direction.
fn nulls_last(c: &Column, a: usize, b: usize) -> std::cmp::Ordering {
    let null =
        |r: usize| value_text(c, r).is_none() || matches!(c, Column::Num(v, _) if v[r].is_nan());
    null(a).cmp(&null(b))
}

/// self, alternate (CSV), collection, and next / prev when there are more.
fn page_links(r: &Request, start: usize, end: usize, matched: usize) -> String {
    let href = |offset: usize, csv: bool| {
        let mut p = r.q.params.clone();
        if csv {
            p.insert("f".into(), "csv".into());
        }
        let qs = query::with_offset(&p, offset);
        let sep = if qs.is_empty() { "" } else { "?" };
        format!("{}/collections/{}/items{sep}{qs}", r.base, r.cid.id())
    };
    let mut links = vec![
        link(href(start, false), "self", GEOJSON, "this page"),
        link(href(start, true), "alternate", CSV, "this page as CSV"),
        link(
            format!("{}/collections/{}", r.base, r.cid.id()),
            "collection",
            JSON,
            "the collection",
        ),
    ];
    if end < matched {
        links.push(link(href(end, false), "next", GEOJSON, "next page"));
    }
    if start > 0 {
        let prev = start.saturating_sub(r.q.limit);
        links.push(link(href(prev, false), "prev", GEOJSON, "previous page"));
    }
    serde_json::Value::Array(links).to_string()
}

/// `GET /collections/{id}/items/{fid}`.
pub async fn item(
    State(state): State<AppState>,
    Path((id, fid)): Path<(String, String)>,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    let controls = controls_for(&state, &principal_of(principal));
    let cid = collection(&id)?;
    let store = state.store();
    let mut q = query::parse(uri.query(), &ITEM_PARAMS, &store)?;
    // A browser gets the feature as a page, as it gets the items.
    if !q.params.contains_key("f") && super::landing::wants_html(&headers, None) {
        q.format = Format::Html;
    }
    let (controls, exact) = settle(&state, controls, cid, &mut q, &store)?;
    let exact = exact.then(|| state.settings().disclosure.clone());
    let r = Request {
        cid,
        store,
        generation: state.generation(),
        q,
        base: base_url(&headers, &uri),
        headers,
        controls,
        exact,
    };
    let kind = (r.cid.id(), 0);
    let size = compute::filter_size(&r.store.geography, &r.q.filter);
    state
        .compute()
        .run(kind, size, move || one(&r, &fid))
        .await?
}

fn one(r: &Request, fid: &str) -> Result<Response, AppError> {
    let items = computed(r.cid, &r.store, r.generation, &r.q, r.controls.as_ref())?;
    let row = items.find(fid).ok_or_else(|| {
        AppError::NotFound(format!("no feature '{fid}' in collection '{}'", r.cid.id()))
    })?;
    if r.q.format == Format::Csv {
        let body = csv(&r.store, &items, &[row], r.q.crs).into_bytes();
        return Ok(content_crs(
            vary(cached(&r.headers, body, CSV, false, MAX_AGE)),
            r.q.crs,
        ));
    }
    if r.q.format == Format::Html {
        return Ok(html_response(&r.headers, feature_page(r, &items, row, fid)));
    }
    let qs = query::with_offset(&r.q.params, 0);
    let sep = if qs.is_empty() { "" } else { "?" };
    let collection = format!("{}/collections/{}", r.base, r.cid.id());
    let links = serde_json::json!([
        link(
            format!("{collection}/items/{}{sep}{qs}", query::encode(fid)),
            "self",
            GEOJSON,
            "this feature"
        ),
        link(collection, "collection", JSON, "the collection"),
    ])
    .to_string();
    let mut body = String::new();
    push_feature(&mut body, &r.store, &items, row, Some(&links), r.q.crs);
    body.push('\n');
    Ok(content_crs(
        vary(cached(
            &r.headers,
            body.into_bytes(),
            GEOJSON,
            false,
            MAX_AGE,
        )),
        r.q.crs,
    ))
}

/// One feature for people: its properties as a two-column table (a withheld value as a
/// dash), with links to it as GeoJSON and CSV, its collection's items and the map.
fn feature_page(r: &Request, items: &Items, row: usize, fid: &str) -> String {
    use std::fmt::Write as _;
    let mut p = r.q.params.clone();
    let href = |p: &mut std::collections::BTreeMap<String, String>, f: &str, path: &str| {
        p.insert("f".into(), f.into());
        format!("{}{path}?{}", r.base, query::with_offset(p, 0))
    };
    let collection = format!("/collections/{}", r.cid.id());
    let me = format!("{collection}/items/{}", query::encode(fid));
    let mut s = html_head(&format!(
        "{} in {}",
        items.ids[row].as_text(),
        r.cid.title()
    ));
    s.push_str(&disclosure_note(r));
    let _ = writeln!(
        s,
        "<nav><a href=\"{}\">GeoJSON</a><a href=\"{}\">CSV</a><a href=\"{}\">All features</a><a href=\"{}/map/\">Web map</a></nav>",
        esc(&href(&mut p, "json", &me)),
        esc(&href(&mut p, "csv", &me)),
        esc(&href(&mut p, "html", &format!("{collection}/items"))),
        r.base
    );
    s.push_str("<table>\n<thead><tr><th scope=\"col\">property</th><th scope=\"col\">value</th></tr></thead>\n<tbody>\n");
    let _ = writeln!(
        s,
        "<tr><th scope=\"row\">id</th><td>{}</td></tr>",
        esc(&items.ids[row].as_text())
    );
    for (name, c) in &items.columns {
        let v = value_text(c, row).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            s,
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            esc(name),
            esc(&v)
        );
    }
    s.push_str("</tbody></table>\n</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bbox(west: f64, south: f64, east: f64, north: f64) -> query::Bbox {
        query::Bbox {
            west,
            south,
            east,
            north,
        }
    }

    #[test]
    fn clamped_to_the_extent_or_none_when_disjoint() {
        let extent = [-3.0, 53.5, -2.0, 54.5];
        assert_eq!(
            clamp_to_extent(bbox(-180.0, -85.0, 180.0, 85.0), extent),
            Some(bbox(-3.0, 53.5, -2.0, 54.5))
        );
        assert_eq!(
            clamp_to_extent(bbox(-2.5, 0.0, 10.0, 54.0), extent),
            Some(bbox(-2.5, 53.5, -2.0, 54.0))
        );
        // Wholly west, east, south or north of the data: nothing, not the extent's edge.
        for b in [
            bbox(-180.0, -85.0, -10.0, 85.0),
            bbox(10.0, -85.0, 180.0, 85.0),
            bbox(-180.0, -85.0, 180.0, 0.0),
            bbox(-180.0, 60.0, 180.0, 85.0),
        ] {
            assert_eq!(clamp_to_extent(b, extent), None, "{b:?}");
        }
    }
}
