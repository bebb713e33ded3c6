//! Kernel density heatmap tiles (PNG), their TileJSON and a legend.
//!
//! Why a server-side kernel density rather than a client heatmap layer: a screen-space
//! heatmap (MapLibre's `heatmap` layer, Leaflet.heat) blurs points by a radius in pixels,
//! so the hotspot grows, shrinks and moves as the analyst zooms, and its colours mean
//! nothing in particular. Here every pixel is the quartic kernel density of the filtered
//! incidents at that place, with the bandwidth in metres on the British National Grid, as
//! ArcGIS Pro's Kernel Density tool computes it (`stats::kde`); the colour scale is fixed
//! per filter, so a colour is the same density in incidents per km² at every zoom and on
//! every tile, and the legend can say which.
//!
//! | path | what |
//! |---|---|
//! | `/tiles/heatmap/{z}/{x}/{y}.png?types=&from=&to=&district=&bandwidth=&ramp=&max=` | 256 px RGBA PNG, Web Mercator XYZ |
//! | `/tiles/heatmap.json?...` | TileJSON 3.0.0, the query carried into its `tiles` URL |
//! | `/tiles/heatmap/legend?...` | JSON: ramp stops (`#rrggbbaa`) and the density each means, per km² |
//!
//! Parameters, besides the incident filter (`params::filter`):
//! - `bandwidth`: search radius in metres, 50 to 20000. Default: ArcGIS's rule on the
//!   filtered incidents (`surface`), computed once per filter.
//! - `ramp`: `viridis` (default), `cividis` or `magma` (`ramp`).
//! - `max`: the density (incidents per km²) at the top of the ramp; denser is drawn in the
//!   top colour. Default: the 99.5th percentile of the density at the incident locations
//!   (below analyst: at the published grid cells, to two significant digits), fixed per
//!   filter and bandwidth.
//!
//! Bad coordinates, an unknown parameter or a bad value are 400, another extension 404.
//!
//! Below analyst (`serve::disclosure`) the map is not drawn from incident points at all
//! (`public`): it is the kernel density of the perturbed, suppressed counts of a fixed
//! 500 m British National Grid lattice, each at its cell's centre, precomputed once per
//! filter and bandwidth as a raster that tiles resample. The bandwidth is at least
//! `disclosure.heatmap_min_bandwidth_m` and two grid cells (1000 m; a smaller `bandwidth`
//! is raised to it), the default bandwidth and top of the ramp come from the published
//! cells, sensitive categories are left out, and the legend states the scale (never a
//! count) and the grid. The analyst's path (exact points, below) is unchanged. A filter
//! every record of which is from a dataset marked already public (`public_datasets`:
//! police.uk publishes each of its points) gets the analyst's exact surface, and its
//! legend the exact `incidents` and a `disclosure` member saying why.
//!
//! Caching: surfaces in small bounded caches (`surface`, `public`); rendered PNGs in one of about
//! 64 MB keyed by surface, ramp, top of the ramp and tile (`quick_cache`: LRU-like
//! eviction, and concurrent misses on one key wait for a single computation). Both keys carry the store's
//! generation, so an ingest (which replaces the store) is never served stale tiles.
//! Responses have an ETag (304 on `If-None-Match`) and `Cache-Control: public,
//! max-age=300`. Rendering runs on tokio's blocking pool.

#[path = "heatmap_public.rs"]
pub mod public;
#[path = "heatmap_ramp.rs"]
pub mod ramp;
#[path = "heatmap_render.rs"]
pub mod render;
#[path = "heatmap_surface.rs"]
pub mod surface;

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;
use geo::BoundingRect;
use quick_cache::sync::Cache;
use serde_json::{Value, json};

pub use public::PublicSurface;
pub use ramp::Ramp;
pub use render::{empty_png, render as render_tile};
pub use surface::{BANDWIDTH_RANGE_M, Surface};

use super::{base_url, encode_component};
use crate::analysis::Filter;
use crate::serve::auth::{Access, Principal, Role, Routes, principal_of};
use crate::serve::disclosure;
use crate::serve::params::{self, FILTER_PARAMS};
use crate::serve::tile::TileCoord;
use crate::serve::{AppError, AppState, cached};
use crate::stats::kde::M2_PER_KM2;

/// The PNG media type.
pub const CONTENT_TYPE: &str = "image/png";

/// Seconds clients may reuse a tile without revalidating.
const MAX_AGE: u32 = 300;

/// Zooms advertised in the TileJSON (tiles are served at every zoom).
pub const MIN_ZOOM: u8 = 6;
pub const MAX_ZOOM: u8 = 18;

/// Bytes of rendered PNGs kept.
const TILE_CACHE_BYTES: u64 = 64 << 20;

/// Largest `max` accepted (incidents per km²).
const MAX_MAX_PER_KM2: f64 = 1.0e9;

/// Every parameter the heatmap endpoints accept.
const PARAMS: [&str; 8] = [
    FILTER_PARAMS[0],
    FILTER_PARAMS[1],
    FILTER_PARAMS[2],
    FILTER_PARAMS[3],
    FILTER_PARAMS[4],
    "bandwidth",
    "ramp",
    "max",
];

const ATTRIBUTION: &str = "Incidents: police.uk and DfT STATS19, Open Government Licence v3.0. \
    Boundaries: Source: Office for National Statistics licensed under the Open Government \
    Licence v3.0. Contains OS data \u{a9} Crown copyright and database right 2011.";

const METHOD: &str = "quartic kernel density, bandwidth in metres";

#[derive(Clone)]
struct PngWeighter;

impl quick_cache::Weighter<TileKey, Arc<[u8]>> for PngWeighter {
    fn weight(&self, _key: &TileKey, png: &Arc<[u8]>) -> u64 {
        png.len() as u64 + 64
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TileKey {
    surface: u64,
    ramp: Ramp,
    max_bits: u64,
    tile: TileCoord,
}

static TILES: LazyLock<Cache<TileKey, Arc<[u8]>, PngWeighter>> =
    LazyLock::new(|| Cache::with_weighter(4096, TILE_CACHE_BYTES, PngWeighter));

/// This module's routes: public (disclosure-controlled below analyst).
pub fn routes() -> Routes {
    let public = Access::Role(Role::Public);
    Routes::new()
        .route("/tiles/heatmap/{z}/{x}/{y}", public, get(tile))
        .route("/tiles/heatmap/legend", public, get(legend))
        .route("/tiles/heatmap.json", public, get(tilejson))
}

/// The parsed heatmap parameters.
struct Request {
    params: BTreeMap<String, String>,
    filter: Filter,
    bandwidth: Option<f64>,
    ramp: Ramp,
    /// Requested top of the ramp, per km².
    max: Option<f64>,
    /// Disclosure control (None from analyst up): the public grid's threshold k and
    /// perturbation seed.
    public: Option<(u64, u64)>,
    /// Smallest bandwidth (0 from analyst up).
    min_bandwidth: f64,
    /// Below analyst, when every record of the filter is from a dataset marked already
    /// public: the `disclosure` member saying the surface is the exact one.
    exempt: Option<Value>,
}

/// The surface a request draws: the analyst's exact one, or the public grid's.
enum Drawn {
    Exact(Arc<Surface>),
    Public(Arc<PublicSurface>),
}

impl Drawn {
    fn id(&self) -> u64 {
        match self {
            Drawn::Exact(s) => s.id(),
            Drawn::Public(s) => s.id(),
        }
    }

    fn bandwidth(&self) -> f64 {
        match self {
            Drawn::Exact(s) => s.bandwidth(),
            Drawn::Public(s) => s.bandwidth(),
        }
    }

    fn bandwidth_is_default(&self) -> bool {
        match self {
            Drawn::Exact(s) => s.bandwidth_is_default(),
            Drawn::Public(s) => s.bandwidth_is_default(),
        }
    }

    fn default_max_per_km2(&self) -> f64 {
        match self {
            Drawn::Exact(s) => s.default_max_per_km2(),
            Drawn::Public(s) => s.default_max_per_km2(),
        }
    }

    /// The tile's PNG, `max` per m².
    fn render(&self, t: TileCoord, ramp: Ramp, max: f64) -> Vec<u8> {
        match self {
            Drawn::Exact(s) => render::render(s, t, ramp, max, 0.0),
            Drawn::Public(s) => public::render(s, t, ramp, max),
        }
    }
}

/// The heatmap's query (filter, bandwidth, ramp, max) checked as the tiles check it for
/// this caller, as the query string to carry into a tile URL (empty for none).
///
/// # Errors
/// 400 for an unknown parameter or a bad value; 403 for a sensitive category below
/// analyst.
pub fn carried_query(
    state: &AppState,
    query: Option<&str>,
    p: &Principal,
) -> Result<String, AppError> {
    Ok(Request::parse(state, query, p)?.carried())
}

impl Request {
    /// The parameters as a query string.
    fn carried(&self) -> String {
        self.params
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_component(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    fn parse(state: &AppState, query: Option<&str>, p: &Principal) -> Result<Self, AppError> {
        let params = params::parse(query, &PARAMS)?;
        let filter = params::filter(&params, &state.store())?;
        let d = &state.settings().disclosure;
        let controlled = p.role.disclosure_controlled();
        let filter = if controlled {
            disclosure::without_sensitive(
                &filter,
                d.sensitive_types(),
                params.contains_key("types"),
            )
            .map_err(AppError::Forbidden)?
        } else {
            filter
        };
        // Every record from a dataset marked already public (police.uk's street-level
        // points): the analyst's exact surface, and the legend says so.
        let exempt = (controlled && d.exempt(&state.store(), filter.types))
            .then(|| disclosure::exact_metadata(d));
        let (min_bandwidth, public) = if controlled && exempt.is_none() {
            (
                d.heatmap_min_bandwidth_m.max(public::MIN_BANDWIDTH_M),
                Some((d.k, d.ckp_seed)),
            )
        } else {
            (0.0, None)
        };
        let number = |name: &str| -> Result<Option<f64>, AppError> {
            params
                .get(name)
                .map(|v| {
                    v.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite())
                        .ok_or_else(|| {
                            AppError::BadRequest(format!(
                                "parameter '{name}': '{v}' is not a number"
                            ))
                        })
                })
                .transpose()
        };
        let (lo, hi) = BANDWIDTH_RANGE_M;
        let bandwidth = number("bandwidth")?;
        if let Some(b) = bandwidth
            && !(lo..=hi).contains(&b)
        {
            return Err(AppError::BadRequest(format!(
                "parameter 'bandwidth': {b} m is outside {lo} to {hi} m"
            )));
        }
        let max = number("max")?;
        if let Some(m) = max
            && !(m > 0.0 && m <= MAX_MAX_PER_KM2)
        {
            return Err(AppError::BadRequest(format!(
                "parameter 'max': {m} is not a density above 0 and at most {MAX_MAX_PER_KM2} per km2"
            )));
        }
        let ramp = match params.get("ramp") {
            None => Ramp::default(),
            Some(name) => Ramp::parse(name).ok_or_else(|| {
                let names: Vec<&str> = Ramp::ALL.iter().map(|r| r.name()).collect();
                AppError::BadRequest(format!(
                    "parameter 'ramp': unknown ramp '{name}' (known: {})",
                    names.join(", ")
                ))
            })?,
        };
        Ok(Request {
            params,
            filter,
            bandwidth,
            ramp,
            max,
            public,
            min_bandwidth,
            exempt,
        })
    }

    /// The cached surface (blocking): below analyst the public grid's, never the
    /// incidents'.
    fn surface(&self, state: &AppState) -> Result<Drawn, AppError> {
        let store = state.store();
        match self.public {
            Some((k, seed)) => public::surface(
                &store,
                state.generation(),
                &self.filter,
                self.bandwidth,
                self.min_bandwidth,
                k,
                seed,
            )
            .map(Drawn::Public),
            None => surface::surface(
                &store,
                state.generation(),
                &self.filter,
                self.bandwidth,
                self.min_bandwidth,
            )
            .map(Drawn::Exact),
        }
    }

    /// The bounded pool's layer kind (the analyst's or the public surface) and size of
    /// this request's surface.
    fn cost(&self, state: &AppState) -> (crate::serve::compute::Kind, f64) {
        let kind = ("tiles/heatmap", u8::from(self.public.is_some()));
        let size = crate::serve::compute::filter_size(&state.store().geography, &self.filter);
        (kind, size)
    }

    /// The top of the ramp in incidents per km².
    fn max_per_km2(&self, s: &Drawn) -> f64 {
        match self.max {
            Some(m) => m,
            // Below analyst the scale, not the data: two significant digits (tiles and
            // legend alike).
            None if self.public.is_some() => two_significant(s.default_max_per_km2()),
            None => s.default_max_per_km2(),
        }
    }
}

async fn tile(
    State(state): State<AppState>,
    Path((z, x, y)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let t = TileCoord::from_path(&z, &x, &y, "png")?;
    let req = Request::parse(&state, query.as_deref(), &principal_of(principal))?;
    // A surface that misses its cache takes a slot of the bounded pool (a hit, and the
    // tile's own render, none).
    let (kind, size) = req.cost(&state);
    let pool = state.compute().clone();
    let png = pool
        .run(kind, size, move || -> Result<Arc<[u8]>, AppError> {
            let s = req.surface(&state)?;
            let max = req.max_per_km2(&s) / M2_PER_KM2;
            let key = TileKey {
                surface: s.id(),
                ramp: req.ramp,
                max_bits: max.to_bits(),
                tile: t,
            };
            TILES.get_or_insert_with(&key, || {
                Ok::<_, AppError>(Arc::from(s.render(t, req.ramp, max)))
            })
        })
        .await??;
    Ok(cached(&headers, png.to_vec(), CONTENT_TYPE, false, MAX_AGE))
}

async fn legend(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let req = Request::parse(&state, query.as_deref(), &principal_of(principal))?;
    let (kind, size) = req.cost(&state);
    let pool = state.compute().clone();
    let doc = pool
        .run(kind, size, move || -> Result<Value, AppError> {
            let s = req.surface(&state)?;
            Ok(legend_doc(&req, &s))
        })
        .await??;
    json_response(&doc, &headers)
}

fn legend_doc(req: &Request, s: &Drawn) -> Value {
    let max = req.max_per_km2(s);
    let stops: Vec<Value> = ramp::LEGEND_STOPS
        .iter()
        .map(|&t| json!({ "t": t, "colour": req.ramp.hex(t), "per_km2": t * max }))
        .collect();
    let requested = |yes: bool, default: &'static str| if yes { "requested" } else { default };
    let (drawn_from, bandwidth_source, max_source, incidents, disclosure) = match s {
        Drawn::Exact(e) => (
            "the filtered incidents' locations",
            requested(
                !e.bandwidth_is_default(),
                "default: ArcGIS rule 0.9 min(SD, sqrt(1/ln 2) Dm) n^-0.2 on the filtered incidents",
            ),
            requested(
                req.max.is_some(),
                "99.5th percentile of the density at the incident locations (weighted by incidents)",
            ),
            json!(e.incidents().round() as u64),
            req.exempt.clone().unwrap_or(Value::Null),
        ),
        // The number of incidents under the filter is an exact count: analysts only
        // (below analyst it gave back every withheld district x type x month count).
        Drawn::Public(_) => {
            let k = req.public.map_or(0, |p| p.0);
            (
                "the perturbed, suppressed counts of a fixed 500 m British National Grid \
                 lattice, each at its cell's centre",
                requested(
                    !s.bandwidth_is_default(),
                    "default: ArcGIS rule 0.9 min(SD, sqrt(1/ln 2) Dm) n^-0.2 on the published \
                     grid cells (centres weighted by published counts)",
                ),
                requested(
                    req.max.is_some(),
                    "99.5th percentile of the density at the published grid cells (weighted \
                     by published counts), to two significant digits",
                ),
                Value::Null,
                json!({
                    "min_bandwidth_m": req.min_bandwidth,
                    "grid": grid_metadata(k),
                    "note": format!("drawn from a grid of {} m squares on the British National \
                        Grid (EPSG:27700): each cell's count is perturbed (cell-key \
                        perturbation) and withheld from 1 to {}, then smoothed from the cell's \
                        centre; no incident location is used, so the map cannot say where in \
                        a cell an incident lies, and cells with fewer than {k} incidents are \
                        not drawn at all; sensitive categories are left out; the legend states \
                        the colour scale, not counts (incidents is null)",
                        public::GRID_M, k.saturating_sub(1)),
                    "control": control_metadata(k),
                }),
            )
        }
    };
    json!({
        "method": METHOD,
        "kernel": "quartic (biweight), Silverman 1986 eq. 4.5, as ArcGIS Kernel Density",
        "units": "incidents per km2",
        "drawn_from": drawn_from,
        "bandwidth_m": s.bandwidth(),
        "bandwidth_source": bandwidth_source,
        "incidents": incidents,
        "ramp": req.ramp.name(),
        "scale": "linear: colour index round(255 density / max); alpha rises from 0 at zero \
            density to opaque at 0.1 max; above max the top colour",
        "max_per_km2": max,
        "max_source": max_source,
        "stops": stops,
        "disclosure": disclosure,
    })
}

/// The public grid, as the legend states it.
fn grid_metadata(k: u64) -> Value {
    json!({
        "cell_m": public::GRID_M,
        "crs": "EPSG:27700",
        "origin": "cells are [500 i, 500 (i + 1)) x [500 j, 500 (j + 1)) metres",
        "min_count_per_cell": k,
        "position": "each published cell counts at its centre",
    })
}

/// `v` to two significant digits (0 stays 0).
fn two_significant(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return v;
    }
    let scale = 10f64.powf(v.log10().floor() - 1.0);
    (v / scale).round() * scale
}

async fn tilejson(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    principal: Option<axum::Extension<Principal>>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let req = Request::parse(&state, query.as_deref(), &principal_of(principal))?;
    let suffix = req.carried();
    let sep = if suffix.is_empty() { "" } else { "?" };
    let base = base_url(&state, &uri, &headers);
    let store = state.store();
    let b = store
        .geography
        .county
        .bounding_rect()
        .map_or([-180.0, -85.0, 180.0, 85.0], |r| {
            [r.min().x, r.min().y, r.max().x, r.max().y]
        });
    let round = |v: f64| (v * 1e6).round() / 1e6;
    let description = if req.public.is_some() {
        format!(
            "Kernel density (quartic kernel, bandwidth in metres on the British National \
             Grid) of the perturbed, suppressed incident counts of a fixed grid of {} m \
             squares, each at its cell's centre (not of incident locations), coloured on a \
             fixed scale per filter; see the legend URL for what each colour means in \
             incidents per km2.",
            public::GRID_M
        )
    } else {
        "Kernel density of incidents (quartic kernel, bandwidth in metres on the British \
         National Grid, as ArcGIS Kernel Density), coloured on a fixed scale per filter; see \
         the legend URL for what each colour means in incidents per km2."
            .to_owned()
    };
    let doc = json!({
        "tilejson": "3.0.0",
        "name": "hotspot heatmap",
        "description": description,
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [format!("{base}/tiles/heatmap/{{z}}/{{x}}/{{y}}.png{sep}{suffix}")],
        // TileJSON 3.0.0: `legend` is text (or HTML) to show beside the map, and
        // `vector_layers` is required by its schema even for raster tiles (none here).
        "legend": format!(
            "Incidents per km2 on a fixed scale per filter ({} ramp, transparent at 0); the \
             colour stops, scale and disclosure control: {base}/tiles/heatmap/legend{sep}{suffix}",
            req.ramp.name()
        ),
        "legend_url": format!("{base}/tiles/heatmap/legend{sep}{suffix}"),
        "vector_layers": [],
        "format": "png",
        "minzoom": MIN_ZOOM,
        "maxzoom": MAX_ZOOM,
        "bounds": b.map(round),
        "center": [round((b[0] + b[2]) / 2.0), round((b[1] + b[3]) / 2.0), 9],
        "attribution": ATTRIBUTION,
    });
    json_response(&doc, &headers)
}

fn json_response(doc: &Value, headers: &HeaderMap) -> Result<Response, AppError> {
    let body =
        serde_json::to_vec_pretty(doc).map_err(|e| AppError::Internal(format!("JSON: {e}")))?;
    Ok(cached(headers, body, "application/json", false, MAX_AGE))
}

/// The disclosure metadata of the legend: the grid's counts are perturbed (the standard
/// text), and the heatmap shows them only as a smoothed density.
fn control_metadata(k: u64) -> Value {
    let mut m = disclosure::metadata(k);
    m["counts"] = Value::String(format!(
        "no counts are published; grid cells whose perturbed count is from 1 to {} are \
         left out of the density",
        k.saturating_sub(1)
    ));
    m
}
