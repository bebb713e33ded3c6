//! Mapbox Vector Tiles (MVT 2.1, extent 4096, `application/vnd.mapbox-vector-tile`) and
//! their TileJSON 3.0.0 documents, so a web map (MapLibre, OpenLayers) or a desktop GIS
//! (QGIS, GDAL) can draw hotspots and boundaries client-side and style them freely.
//!
//! | path | what |
//! |---|---|
//! | `/tiles/cells/{z}/{x}/{y}.mvt?types=&from=&to=&district=&res=` | layer `cells`: H3 cells with `cell`, `count`, `per_km2`, `gi_z`, `gi_bin`, `category` (below analyst: no `gi_z`, and `suppressed`, with no `count` or `per_km2` where it is true) |
//! | `/tiles/boundaries/{z}/{x}/{y}.mvt` | layers `districts` (`code`, `name`) and, from z 10, `lsoas` (`code`, `name`, `district`) |
//! | `/tiles/cells.json?types=&from=&to=&district=` | TileJSON for the cells, the filter carried into its `tiles` URL |
//! | `/tiles/boundaries.json` | TileJSON for the boundaries |
//!
//! The cell resolution follows the zoom (`mvt_cells::resolution`): z <= 8 resolution 6,
//! z 9-10 resolution 7, z 11 resolution 8, z 12-13 resolution 9, z >= 14 resolution 10,
//! so a cell stays roughly 10 to 60 pixels across; `res=7..10` fixes it instead (from
//! [`res_min_zoom`]), which is what each `h3-N` collection's OGC API - Tiles tileset
//! asks for. Gi* (k = 1 ring, binary weights,
//! Benjamini-Hochberg FDR, as the OGC `hotspots` collection) is computed over the whole
//! study area at that resolution; `category` (Esri's emerging hot spot pattern) only at
//! resolutions 7 to 9 (z 9 to 13): see `mvt_cells::has_category`.
//!
//! Encoding uses the `mvt` crate (protobuf and geometry commands); clipping, snapping and
//! ring orientation are done here (`mvt_geom`) because that crate leaves them to the
//! caller. A tile with nothing in it is zero bytes, which MVT allows. Compression is the
//! server's layer; ETag and 304 come from `cached`. Bad coordinates and unknown query
//! parameters are 400, another extension is 404.

#[path = "mvt_bounds.rs"]
mod bounds;
#[path = "mvt_cells.rs"]
mod cells;
#[path = "mvt_geom.rs"]
mod geom;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;
use geo::BoundingRect;
use h3o::Resolution;
use serde_json::{Value, json};

pub use bounds::LSOA_MIN_ZOOM;
pub use cells::resolution;
pub use geom::{BUFFER, EXTENT};

use super::{base_url, encode_component};
use crate::serve::auth::{Access, Principal, Role, Routes, principal_of};
use crate::serve::disclosure;
use crate::serve::params::{self, FILTER_PARAMS};
use crate::serve::tile::TileCoord;
use crate::serve::{AppError, AppState, cached, compute};

/// The MVT media type.
pub const CONTENT_TYPE: &str = "application/vnd.mapbox-vector-tile";

/// Seconds clients may reuse a tile or TileJSON without revalidating (the data changes
/// only on ingest; the ETag then changes with it).
const MAX_AGE: u32 = 300;

/// Zooms advertised in the TileJSON documents (tiles are served at every zoom).
pub const MIN_ZOOM: u8 = 6;
pub const CELLS_MAX_ZOOM: u8 = 16;
pub const BOUNDARIES_MAX_ZOOM: u8 = 14;

/// The boundary tiles' layers, each alone with `layer=` (GDAL's OGC API - Tiles reader
/// takes only a tile's first layer, so the `lsoas` tileset asks for that layer alone).
pub const BOUNDARY_LAYERS: [&str; 2] = ["districts", "lsoas"];

const ATTRIBUTION: &str = "Incidents: police.uk and DfT STATS19, Open Government Licence v3.0. \
    Boundaries: Source: Office for National Statistics licensed under the Open Government \
    Licence v3.0. Contains OS data \u{a9} Crown copyright and database right 2011.";

/// This module's routes: public (disclosure-controlled below analyst).
pub fn routes() -> Routes {
    let public = Access::Role(Role::Public);
    Routes::new()
        .route("/tiles/cells/{z}/{x}/{y}", public, get(cells_tile))
        .route(
            "/tiles/boundaries/{z}/{x}/{y}",
            public,
            get(boundaries_tile),
        )
        .route("/tiles/cells.json", public, get(cells_tilejson))
        .route("/tiles/boundaries.json", public, get(boundaries_tilejson))
}

/// The cell tiles' parameters: the incident filter and `res`.
const CELL_PARAMS: [&str; 6] = [
    FILTER_PARAMS[0],
    FILTER_PARAMS[1],
    FILTER_PARAMS[2],
    FILTER_PARAMS[3],
    FILTER_PARAMS[4],
    "res",
];

/// The first zoom a tile of H3 resolution `res` (7 to 10) may be asked at with `res=`
/// (below it a tile would hold tens of thousands of cells too small to see); resolution 6
/// at every zoom.
pub fn res_min_zoom(res: Resolution) -> u8 {
    match res {
        Resolution::Seven => 7,
        Resolution::Eight => 8,
        Resolution::Nine => 10,
        Resolution::Ten => 11,
        _ => 0,
    }
}

/// The resolution of a cell tile at zoom `z`: `res` when given (6 to 10, from its
/// [`res_min_zoom`]), else the zoom's own ([`resolution`]).
///
/// # Errors
/// 400 for a `res` that is no whole number from 6 to 10, or asked below its first zoom.
fn cell_resolution(params: &params::Params, z: u8) -> Result<Resolution, AppError> {
    let Some(v) = params.get("res") else {
        return Ok(cells::resolution(z));
    };
    let res = v
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|r| (6..=10).contains(r))
        .and_then(|r| Resolution::try_from(r).ok())
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "parameter 'res': '{v}' is not an H3 resolution from 6 to 10"
            ))
        })?;
    if z < res_min_zoom(res) {
        return Err(AppError::BadRequest(format!(
            "parameter 'res': resolution {res} tiles start at zoom {} (asked {z})",
            res_min_zoom(res)
        )));
    }
    Ok(res)
}

fn join_error(e: tokio::task::JoinError) -> AppError {
    AppError::Internal(format!("vector tile task: {e}"))
}

async fn cells_tile(
    State(state): State<AppState>,
    Path((z, x, y)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let t = TileCoord::from_path(&z, &x, &y, "mvt")?;
    let params = params::parse(query.as_deref(), &CELL_PARAMS)?;
    let res = cell_resolution(&params, t.z)?;
    let store = state.store();
    let filter = params::filter(&params, &store)?;
    let controlled = principal_of(principal).role.disclosure_controlled();
    let d = &state.settings().disclosure;
    let k = d.k;
    let ckp_seed = d.ckp_seed;
    let filter = if controlled {
        disclosure::without_sensitive(&filter, d.sensitive_types(), params.contains_key("types"))
            .map_err(AppError::Forbidden)?
    } else {
        filter
    };
    // Every record from a dataset marked already public: exact, as the analyst's tile.
    let controlled = controlled && !d.exempt(&store, filter.types);
    let generation = state.generation();
    let kind = ("tiles/cells", u8::from(res));
    let size = compute::filter_size(&store.geography, &filter);
    let body = state
        .compute()
        .run(kind, size, move || {
            // Far from the study area: the empty tile, without computing anything.
            let shapes = bounds::shapes(&store.geography);
            if !geom::Frame::new(t).touches(&shapes.extent()) {
                return Ok(Vec::new());
            }
            cells::layer(&store, generation, res, &filter, (k, ckp_seed), controlled).tile(t)
        })
        .await??;
    Ok(cached(&headers, body, CONTENT_TYPE, false, MAX_AGE))
}

async fn boundaries_tile(
    State(state): State<AppState>,
    Path((z, x, y)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let t = TileCoord::from_path(&z, &x, &y, "mvt")?;
    let params = params::parse(query.as_deref(), &["layer"])?;
    let only = match params.get("layer") {
        None => None,
        Some(l) if BOUNDARY_LAYERS.contains(&l.as_str()) => Some(l.clone()),
        Some(l) => {
            return Err(AppError::BadRequest(format!(
                "parameter 'layer': '{l}' is not one of {}",
                BOUNDARY_LAYERS.join(", ")
            )));
        }
    };
    let g = state.store().geography.clone();
    let body = tokio::task::spawn_blocking(move || {
        bounds::tile(&g, &bounds::shapes(&g), t, only.as_deref())
    })
    .await
    .map_err(join_error)??;
    Ok(cached(&headers, body, CONTENT_TYPE, false, MAX_AGE))
}

async fn cells_tilejson(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let suffix = cells_query(&state, query.as_deref())?;
    // With `res`, the tiles start at that resolution's first zoom.
    let parsed = params::parse(query.as_deref(), &CELL_PARAMS)?;
    let min_zoom = if parsed.contains_key("res") {
        res_min_zoom(cell_resolution(&parsed, CELLS_MAX_ZOOM)?).max(MIN_ZOOM)
    } else {
        MIN_ZOOM
    };
    let fields = json!({
        "cell": "String", "count": "Number", "per_km2": "Number",
        "gi_z": "Number", "gi_bin": "Number", "category": "String",
        "suppressed": "Boolean",
    });
    let layers = json!([{
        "id": cells::LAYER,
        "description": "H3 cells with incidents or a significant Gi* bin. Resolution by zoom: \
            6 to z8, 7 at z9-10, 8 at z11, 9 at z12-13, 10 from z14. count: incidents; \
            per_km2: incidents per km2; gi_z: Getis-Ord Gi* z (k = 1 ring); gi_bin: -3..3 \
            for 99/95/90% cold/hot with FDR control; category: emerging hot spot pattern \
            (resolutions 7-9 only, z9-13). Below the analyst role: no gi_z, and suppressed \
            (true: count and per_km2 withheld under disclosure control).",
        "fields": fields,
        "minzoom": min_zoom,
        "maxzoom": CELLS_MAX_ZOOM,
    }]);
    let doc = Doc {
        name: "hotspot cells",
        path: "/tiles/cells/{z}/{x}/{y}.mvt",
        query: &suffix,
        min_zoom,
        max_zoom: CELLS_MAX_ZOOM,
        layers,
    };
    json_response(&doc.render(&state, &uri, &headers), &headers)
}

async fn boundaries_tilejson(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    params::parse(query.as_deref(), &[])?;
    let layers = json!([
        {
            "id": "districts",
            "description": "The 14 districts (Lancashire's twelve, Blackburn with Darwen, Blackpool).",
            "fields": { "code": "String", "name": "String" },
            "minzoom": MIN_ZOOM,
            "maxzoom": BOUNDARIES_MAX_ZOOM,
        },
        {
            "id": "lsoas",
            "description": "Lower Layer Super Output Areas (December 2011); district is its district's name.",
            "fields": { "code": "String", "name": "String", "district": "String" },
            "minzoom": LSOA_MIN_ZOOM,
            "maxzoom": BOUNDARIES_MAX_ZOOM,
        },
    ]);
    let doc = Doc {
        name: "hotspot boundaries",
        path: "/tiles/boundaries/{z}/{x}/{y}.mvt",
        query: "",
        min_zoom: MIN_ZOOM,
        max_zoom: BOUNDARIES_MAX_ZOOM,
        layers,
    };
    json_response(&doc.render(&state, &uri, &headers), &headers)
}

/// The cell tiles' query (the filter and `res`) in `query`, checked as the tiles check
/// it, as the query string to carry into a tile URL (empty for none).
///
/// # Errors
/// 400 for an unknown parameter or a bad value.
pub fn cells_query(state: &AppState, query: Option<&str>) -> Result<String, AppError> {
    checked_query(state, query, &CELL_PARAMS)
}

/// As [`cells_query`] without `res` (a tileset fixes its own).
///
/// # Errors
/// 400 for an unknown parameter (`res` among them) or a bad filter.
pub fn cells_filter_query(state: &AppState, query: Option<&str>) -> Result<String, AppError> {
    checked_query(state, query, &FILTER_PARAMS)
}

fn checked_query(
    state: &AppState,
    query: Option<&str>,
    allowed: &[&str],
) -> Result<String, AppError> {
    let params = params::parse(query, allowed)?;
    cell_resolution(&params, CELLS_MAX_ZOOM)?;
    params::filter(&params, &state.store())?;
    Ok(params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_component(v)))
        .collect::<Vec<_>>()
        .join("&"))
}

fn json_response(doc: &Value, headers: &HeaderMap) -> Result<Response, AppError> {
    let body =
        serde_json::to_vec_pretty(doc).map_err(|e| AppError::Internal(format!("TileJSON: {e}")))?;
    Ok(cached(headers, body, "application/json", false, MAX_AGE))
}

/// What differs between the two TileJSON documents.
struct Doc<'a> {
    name: &'static str,
    path: &'static str,
    query: &'a str,
    min_zoom: u8,
    max_zoom: u8,
    layers: Value,
}

impl Doc<'_> {
    fn render(self, state: &AppState, uri: &Uri, headers: &HeaderMap) -> Value {
        let store = state.store();
        let b = store
            .geography
            .county
            .bounding_rect()
            .map_or([-180.0, -85.0, 180.0, 85.0], |r| {
                [r.min().x, r.min().y, r.max().x, r.max().y]
            });
        let round = |v: f64| (v * 1e6).round() / 1e6;
        let sep = if self.query.is_empty() { "" } else { "?" };
        let url = format!(
            "{}{}{sep}{}",
            base_url(state, uri, headers),
            self.path,
            self.query
        );
        json!({
            "tilejson": "3.0.0",
            "name": self.name,
            "version": "1.0.0",
            "scheme": "xyz",
            "tiles": [url],
            "minzoom": self.min_zoom,
            "maxzoom": self.max_zoom,
            "bounds": b.map(round),
            "center": [round((b[0] + b[2]) / 2.0), round((b[1] + b[3]) / 2.0), 9],
            "attribution": ATTRIBUTION,
            "vector_layers": self.layers,
        })
    }
}
