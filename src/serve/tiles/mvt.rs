//! Mapbox Vector Tiles (MVT 2.1, extent 4096, `application/vnd.mapbox-vector-tile`) and
//! their TileJSON 3.0.0 documents, so a web map (MapLibre, OpenLayers) or a desktop GIS
//! (QGIS, GDAL) can draw hotspots and boundaries client-side and style them freely.
//!
//! | path | what |
//! |---|---|
//! | `/tiles/cells/{z}/{x}/{y}.mvt?types=&from=&to=&district=` | layer `cells`: H3 cells with `cell`, `count`, `per_km2`, `gi_z`, `gi_bin`, `category` (below analyst: no `gi_z`, and `suppressed`, with no `count` or `per_km2` where it is true) |
//! | `/tiles/boundaries/{z}/{x}/{y}.mvt` | layers `districts` (`code`, `name`) and, from z 10, `lsoas` (`code`, `name`, `district`) |
//! | `/tiles/cells.json?types=&from=&to=&district=` | TileJSON for the cells, the filter carried into its `tiles` URL |
//! | `/tiles/boundaries.json` | TileJSON for the boundaries |
//!
//! The cell resolution follows the zoom (`mvt_cells::resolution`): z <= 8 resolution 6,
//! z 9-10 resolution 7, z 11 resolution 8, z 12-13 resolution 9, z >= 14 resolution 10,
//! so a cell stays roughly 10 to 60 pixels across. Gi* (k = 1 ring, binary weights,
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
const MIN_ZOOM: u8 = 6;
const CELLS_MAX_ZOOM: u8 = 16;
const BOUNDARIES_MAX_ZOOM: u8 = 14;

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
    let params = params::parse(query.as_deref(), &FILTER_PARAMS)?;
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
    let kind = ("tiles/cells", u8::from(cells::resolution(t.z)));
    let size = compute::filter_size(&store.geography, &filter);
    let body = state
        .compute()
        .run(kind, size, move || {
            // Far from the study area: the empty tile, without computing anything.
            let shapes = bounds::shapes(&store.geography);
            if !geom::Frame::new(t).touches(&shapes.extent()) {
                return Ok(Vec::new());
            }
            cells::layer(
                &store,
                generation,
                cells::resolution(t.z),
                &filter,
                (k, ckp_seed),
                controlled,
            )
            .tile(t)
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
    params::parse(query.as_deref(), &[])?;
    let g = state.store().geography.clone();
    let body = tokio::task::spawn_blocking(move || bounds::tile(&g, &bounds::shapes(&g), t))
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
    let params = params::parse(query.as_deref(), &FILTER_PARAMS)?;
    params::filter(&params, &state.store())?;
    let suffix: String = params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_component(v)))
        .collect::<Vec<_>>()
        .join("&");
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
        "minzoom": MIN_ZOOM,
        "maxzoom": CELLS_MAX_ZOOM,
    }]);
    let doc = Doc {
        name: "hotspot cells",
        path: "/tiles/cells/{z}/{x}/{y}.mvt",
        query: &suffix,
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
        max_zoom: BOUNDARIES_MAX_ZOOM,
        layers,
    };
    json_response(&doc.render(&state, &uri, &headers), &headers)
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
            "minzoom": MIN_ZOOM,
            "maxzoom": self.max_zoom,
            "bounds": b.map(round),
            "center": [round((b[0] + b[2]) / 2.0), round((b[1] + b[3]) / 2.0), 9],
            "attribution": ATTRIBUTION,
            "vector_layers": self.layers,
        })
    }
}
