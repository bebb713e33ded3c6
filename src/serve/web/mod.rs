//! The web map (`web/`): its files and the small JSON/GeoJSON endpoints only it needs.
//!
//! | path | what |
//! |---|---|
//! | `/map/` | the app (`web/index.html`), its modules under `/map/src/`, MapLibre under `/map/vendor/` (`assets.rs`) |
//! | `/map/api/meta` | crime types present, months, districts, bounds (`meta.rs`) |
//! | `/map/api/cells?types=&from=&to=&district=&res=&method=&fdr=` | GeoJSON H3 cells at resolution `res` (6-10) with `method` counts, gistar or moran (`cells.rs`) |
//! | `/map/api/details?kind=&id=&types=&from=&to=&district=&fdr=` | one cell, LSOA or district: counts by type, monthly series, Gi* z and p, trend, its name and place (`details.rs`) |
//! | `/map/api/places?q=&limit=` | the search box: districts, LSOAs, towns, postcodes and the data's streets (`places.rs`) |
//! | `/map/api/labels?bbox=&zoom=` | the names the map draws: districts, towns, and from zoom 15 streets (`labels.rs`) |
//! | `/map/api/change?types=&from=&to=&district=&res=&against=&fdr=` | GeoJSON H3 cells: this period against the one before (`against=previous`) or a year before (`year`), exact test with FDR (`change.rs`) |
//! | `/map/api/types?from=&to=&district=` | counts per crime type and road collision severity beside the type checkboxes, for the period and districts (`types.rs`) |
//!
//! Everything else the map draws comes from the shared endpoints: heatmap raster tiles,
//! boundary vector tiles and the OGC collections (districts, LSOAs, patrol). `/` is the
//! OGC landing page for GDAL's `OAPIF:` and other clients and a 303 to `/map/` for a
//! browser (`serve::ogc::landing`); `hotspot serve` prints both URLs.
//! Bad parameters are 400 (unknown ones too), as everywhere in the server.

mod assets;
pub(crate) mod cells;
mod change;
mod details;
mod labels;
mod meta;
mod places;
mod streets;
mod types;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{Redirect, Response};
use axum::routing::get;

use crate::serve::auth::{Access, Principal, Role, Routes, principal_of};
use crate::serve::disclosure;
use crate::serve::disclosure::basis::Basis;
use crate::serve::params::{self, FILTER_PARAMS};
use crate::serve::{AppError, AppState, cached, compute};

pub use assets::{Availability, availability, embed, web_dir};
pub use cells::{CellQuery, Method};

/// Seconds a computed answer may be reused (ETags revalidate after).
const MAX_AGE: u32 = 60;

/// This module's routes.
/// Public: its files, and its endpoints (disclosure-controlled below analyst, as every
/// other output).
pub fn routes() -> Routes {
    let public = Access::Role(Role::Public);
    Routes::new()
        .route(
            "/map",
            public,
            get(|| async { Redirect::permanent("/map/") }),
        )
        .route("/map/", public, get(|headers| assets::file(None, headers)))
        .route("/map/{*path}", public, get(assets::file_at))
        .route("/map/api/meta", public, get(meta_json))
        .route("/map/api/cells", public, get(cells_geojson))
        .route("/map/api/details", public, get(details_json))
        .route("/map/api/places", public, get(places_json))
        .route("/map/api/labels", public, get(labels_json))
        .route("/map/api/types", public, get(types_json))
        .route("/map/api/change", public, get(change_geojson))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Internal(format!("web map task: {e}")))
}

fn json_body(v: &serde_json::Value, headers: &HeaderMap) -> Result<Response, AppError> {
    let body = serde_json::to_vec(v).map_err(|e| AppError::Internal(format!("json: {e}")))?;
    Ok(cached(headers, body, "application/json", false, MAX_AGE))
}

fn with_filter<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    FILTER_PARAMS
        .iter()
        .copied()
        .chain(extra.iter().copied())
        .collect()
}

async fn meta_json(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    params::parse(query.as_deref(), &[])?;
    let store = state.store();
    let mut doc = blocking(move || meta::meta(&store)).await?;
    if let Some(o) = doc.as_object_mut() {
        o.insert(
            "basemap".into(),
            state
                .basemap()
                .map_or(serde_json::Value::Null, |b| b.describe()),
        );
        // The weights the analyst's harm measure uses (analysts only: `api/cells`).
        o.insert(
            "harm".into(),
            state
                .harm()
                .map_or(serde_json::Value::Null, |h| h.describe()),
        );
    }
    json_body(&doc, &headers)
}

/// Below analyst: the filter without the sensitive categories (403 if the request named
/// one) and the threshold k; `None` for analysts and admins, and below analyst for an
/// answer every record of which is from a dataset marked already public
/// (`disclosure.public_datasets`), which the third value says (it is stated in the
/// answer).
fn controls(
    state: &AppState,
    principal: Option<axum::Extension<Principal>>,
    p: &std::collections::BTreeMap<String, String>,
    filter: crate::analysis::Filter,
    district_level: bool,
) -> Result<(crate::analysis::Filter, Option<u64>, bool), AppError> {
    if !principal_of(principal).role.disclosure_controlled() {
        return Ok((filter, None, false));
    }
    let d = &state.settings().disclosure;
    let filter = if district_level {
        filter
    } else {
        disclosure::without_sensitive(&filter, d.sensitive_types(), p.contains_key("types"))
            .map_err(AppError::Forbidden)?
    };
    if d.exempt(&state.store(), filter.types) {
        return Ok((filter, None, true));
    }
    Ok((filter, Some(d.k), false))
}

async fn cells_geojson(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let p = params::parse(
        query.as_deref(),
        &with_filter(&["res", "method", "fdr", "measure"]),
    )?;
    let store = state.store();
    let filter = params::filter(&p, &store)?;
    let analyst = !principal_of(principal.clone()).role.disclosure_controlled();
    let (filter, k, exact) = controls(&state, principal, &p, filter, false)?;
    let bad = |name: &str, e: String| AppError::BadRequest(format!("parameter '{name}': {e}"));
    let harm = match p.get("measure").map(String::as_str) {
        None | Some("count") => None,
        Some("harm") if !analyst => {
            return Err(AppError::Forbidden(
                "measure=harm is for analysts: harm weighs each category's exact count, \
                 which below analyst is disclosure-controlled"
                    .into(),
            ));
        }
        Some("harm") => Some(state.harm().ok_or_else(|| {
            bad(
                "measure",
                "no harm weights here (the server starts with --harm FILE.csv to offer them)"
                    .into(),
            )
        })?),
        Some(o) => return Err(bad("measure", format!("'{o}' is not one of count, harm"))),
    };
    let q = CellQuery {
        res: cells::parse_res(p.get("res")).map_err(|e| bad("res", e))?,
        method: p
            .get("method")
            .map_or(Ok(Method::GiStar), |m| m.parse())
            .map_err(|e| bad("method", e))?,
        fdr: cells::parse_flag(p.get("fdr"), true).map_err(|e| bad("fdr", e))?,
        withhold_below: k,
        ckp_seed: state.settings().disclosure.ckp_seed,
    };
    let generation = state.generation();
    let kind = (
        match q.method {
            Method::Counts => "map/cells/counts",
            Method::GiStar => "map/cells/gi",
            Method::Moran => "map/cells/moran",
        },
        u8::from(q.res),
    );
    let size = compute::filter_size(&store.geography, &filter);
    let body = state
        .compute()
        .run(kind, size, move || {
            cells::geojson(&store, generation, &filter, q, harm.as_deref())
        })
        .await?;
    let body = body
        .as_ref()
        .as_ref()
        .map_err(|e| bad("measure", e.clone()))?;
    let body = if exact {
        disclosure::with_exact_member(body, &state.settings().disclosure)
    } else {
        body.clone()
    };
    Ok(cached(
        &headers,
        body.into_bytes(),
        "application/geo+json",
        false,
        MAX_AGE,
    ))
}

async fn details_json(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let p = params::parse(query.as_deref(), &with_filter(&["kind", "id", "fdr"]))?;
    let store = state.store();
    let filter = params::filter(&p, &store)?;
    let need = |k: &str| {
        p.get(k)
            .ok_or_else(|| AppError::BadRequest(format!("parameter '{k}' is required")))
    };
    let unit = details::Unit::parse(need("kind")?, need("id")?, &store)?;
    let fdr = cells::parse_flag(p.get("fdr"), true)
        .map_err(|e| AppError::BadRequest(format!("parameter 'fdr': {e}")))?;
    let district_level = matches!(unit, details::Unit::District(_));
    let (filter, k, exact) = controls(&state, principal, &p, filter, district_level)?;
    let generation = state.generation();
    let settings = state.settings().disclosure.clone();
    let names = (k, settings.sensitive_types());
    let size = compute::filter_size(&store.geography, &filter);
    let doc = state
        .compute()
        .run(
            ("map/details", 0),
            size,
            move || -> Result<serde_json::Value, AppError> {
                let basis = Basis::of(k.is_some(), settings.ckp_seed);
                let mut doc = details::details(&store, unit, &filter, fdr, names, &basis);
                if let Some(k) = k {
                    let grid =
                        details::withheld_in_grid(&store, generation, unit, &filter, &settings)?;
                    details::withhold(&mut doc, k, grid, &settings.ptable());
                }
                details::without_keys(&mut doc);
                Ok(doc)
            },
        )
        .await??;
    let mut doc = doc;
    if exact {
        doc["disclosure"] = disclosure::exact_metadata(&state.settings().disclosure);
    }
    json_body(&doc, &headers)
}

/// The streets' k rule of the caller (`streets.rs`): k below analyst (`None` above), and
/// the sensitive categories its counts leave out.
///
/// No rule when every record of the store is from a dataset marked already public
/// (`disclosure.public_datasets`): police.uk publishes every snap point's street itself,
/// and the streets are counted over every type.
fn street_rule(
    state: &AppState,
    principal: Option<axum::Extension<Principal>>,
) -> (Option<u64>, crate::model::TypeSet) {
    let d = &state.settings().disclosure;
    let controlled = principal_of(principal).role.disclosure_controlled();
    let exempt = controlled && d.exempt(&state.store(), crate::model::TypeSet::all());
    let k = (controlled && !exempt).then_some(d.k);
    (k, d.sensitive_types())
}

async fn places_json(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let p = params::parse(query.as_deref(), &["q", "limit"])?;
    let q = p.get("q").cloned().unwrap_or_default();
    if q.chars().count() > 100 {
        return Err(AppError::BadRequest(
            "parameter 'q': at most 100 characters".into(),
        ));
    }
    let limit = match p.get("limit") {
        None => 8,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=places::MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                AppError::BadRequest(format!(
                    "parameter 'limit': a whole number from 1 to {}",
                    places::MAX_LIMIT
                ))
            })?,
    };
    let (k, sensitive) = street_rule(&state, principal);
    let store = state.store();
    let doc = blocking(move || places::places(&store, &q, limit, k, sensitive)).await?;
    json_body(&doc, &headers)
}

async fn labels_json(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let p = params::parse(query.as_deref(), &["bbox", "zoom"])?;
    let need = |name: &str| {
        p.get(name)
            .ok_or_else(|| AppError::BadRequest(format!("parameter '{name}' is required")))
    };
    let bad = |name: &str, e: String| AppError::BadRequest(format!("parameter '{name}': {e}"));
    let bbox = labels::parse_bbox(need("bbox")?).map_err(|e| bad("bbox", e))?;
    let zoom = labels::parse_zoom(need("zoom")?).map_err(|e| bad("zoom", e))?;
    let (k, sensitive) = street_rule(&state, principal);
    let store = state.store();
    let doc = blocking(move || labels::labels(&store, bbox, zoom, k, sensitive)).await?;
    json_body(&doc, &headers)
}

async fn change_geojson(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let p = params::parse(query.as_deref(), &with_filter(&["res", "against", "fdr"]))?;
    let store = state.store();
    let filter = params::filter(&p, &store)?;
    // The same restriction as the cells (sensitive categories left out below district level).
    let (filter, k, exact) = controls(&state, principal, &p, filter, false)?;
    let bad = |name: &str, e: String| AppError::BadRequest(format!("parameter '{name}': {e}"));
    let q = change::ChangeQuery {
        res: cells::parse_res(p.get("res")).map_err(|e| bad("res", e))?,
        against: p
            .get("against")
            .map_or(Ok(change::Against::Previous), |m| m.parse())
            .map_err(|e| bad("against", e))?,
        fdr: cells::parse_flag(p.get("fdr"), true).map_err(|e| bad("fdr", e))?,
        withhold_below: k,
        ckp_seed: state.settings().disclosure.ckp_seed,
    };
    let generation = state.generation();
    let kind = ("map/change", u8::from(q.res));
    let size = compute::filter_size(&store.geography, &filter);
    let body = state
        .compute()
        .run(kind, size, move || {
            change::geojson(&store, generation, &filter, q)
        })
        .await?;
    match body.as_ref() {
        Ok(text) => Ok(cached(
            &headers,
            if exact {
                disclosure::with_exact_member(text, &state.settings().disclosure).into_bytes()
            } else {
                text.as_bytes().to_vec()
            },
            "application/geo+json",
            false,
            MAX_AGE,
        )),
        Err(e) => Err(AppError::BadRequest(e.clone())),
    }
}

async fn types_json(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    // The whole filter is accepted (the map sends it), but only its period and districts
    // count: every type and severity is listed.
    let p = params::parse(query.as_deref(), &FILTER_PARAMS)?;
    let store = state.store();
    let filter = params::filter(&p, &store)?;
    let d = state.settings().disclosure.clone();
    let controlled = principal_of(principal).role.disclosure_controlled();
    // Every type of the data is listed, so the answer is exact only when every record of
    // the store is from a dataset marked already public.
    let exempt = controlled && d.exempt(&store, crate::model::TypeSet::all());
    let public = (controlled && !exempt).then(|| d.clone());
    let generation = state.generation();
    let mut doc =
        blocking(move || types::types(&store, generation, &filter, public.as_ref())).await??;
    if exempt {
        doc["disclosure"] = disclosure::exact_metadata(&d);
    }
    json_body(&doc, &headers)
}
