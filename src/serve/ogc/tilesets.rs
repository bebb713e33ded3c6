//! OGC API - Tiles (Part 1: Core, TileSet, TileSets list, GeoData TileSets, MVT, PNG,
//! OpenAPI 3.0) over the tiles `serve::tiles` already serves, so a client that speaks the
//! standard (GDAL's `OGCAPI:` driver, QGIS through it, ArcGIS) finds them from a
//! collection instead of from a TileJSON URL passed by hand.
//!
//! | path | what |
//! |---|---|
//! | `/tileMatrixSets` | the tiling schemes: only `WebMercatorQuad` (the XYZ grid) |
//! | `/tileMatrixSets/WebMercatorQuad` | its definition (OGC 17-083r4, TMS 2.0 JSON) |
//! | `/collections/{id}/tiles` | the vector tilesets of `districts`, `lsoas` and `h3-7` to `h3-10` |
//! | `/collections/{id}/tiles/WebMercatorQuad` | one vector tileset: limits, layers, links |
//! | `/collections/{id}/map/tiles[/WebMercatorQuad]` | the map tileset of `hotspots`: the heatmap |
//!
//! Each `h3-N` collection's tiles are the cell tiles at its resolution (`res=N`: counts,
//! Gi* bins, categories), from the zoom where its cells are a few pixels across. No
//! collection has both kinds: GDAL 3.6 opens a collection with map and vector tilesets
//! as neither (it replaces the map result with the vector one), so the heatmap lives on
//! `hotspots` alone.
//!
//! A tileset's `item` link is a URL template (`{tileMatrix}/{tileCol}/{tileRow}`) onto
//! the XYZ tiles themselves (`/tiles/boundaries`, `/tiles/cells`, `/tiles/heatmap`), so
//! each tile has one address, one ETag and one disclosure control whichever way a client
//! found it. The cells and heatmap tilesets take the tiles' own query (the incident
//! filter with `from`/`to`; the heatmap's `bandwidth`, `ramp`, `max`), checked as the
//! tiles check it and carried into every link. `tileMatrixSetLimits` list, per zoom
//! advertised, the tiles that touch the county, which GDAL reads as the levels to offer.
//!
//! The tile matrix set document carries each matrix's origin as TMS 2.0's
//! `pointOfOrigin` and also as `topLeftCorner` (the 1.0 name), which is what GDAL 3.6
//! (Debian 12) reads; `tests/gdal_ogc.rs` checks GDAL's read against our own tiles.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use geo::BoundingRect;
use h3o::Resolution;
use serde_json::{Value, json};

use super::catalog::CollectionId;
use super::{CRS84, JSON, base_url, json_response, link};
use crate::serve::auth::{Principal, principal_of};
use crate::serve::tile::TileCoord;
use crate::serve::tiles::{heatmap, mvt};
use crate::serve::{AppError, AppState};

/// The one tiling scheme offered.
pub const TMS_ID: &str = "WebMercatorQuad";
/// Its registered URI.
pub const TMS_URI: &str = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad";
/// Its CRS.
const WEB_MERCATOR: &str = "http://www.opengis.net/def/crs/EPSG/0/3857";
/// Deepest tile matrix in the definition (WebMercatorQuad's own 0 to 24).
const TMS_MAX_ZOOM: u8 = 24;
/// Half the Web Mercator world, in metres.
const HALF: f64 = 20_037_508.342_789_244;

/// `rel` of a link to a tiling scheme.
const REL_TILING_SCHEME: &str = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme";
/// `rel` of a link from a collection to its vector tilesets.
pub const REL_TILESETS_VECTOR: &str = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector";
/// `rel` of a link from a collection to its map tilesets.
pub const REL_TILESETS_MAP: &str = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-map";
/// `rel` of the landing page's link to the tiling schemes.
pub const REL_TILING_SCHEMES: &str = "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes";

/// What a tileset is a view of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The boundary tiles with only this layer (`districts` or `lsoas`).
    Boundaries(&'static str),
    /// The H3 cell tiles at one resolution (counts, Gi* bins, categories).
    Cells(Resolution),
    /// The heatmap PNGs.
    Heatmap,
}

impl Source {
    fn min_zoom(self) -> u8 {
        match self {
            Source::Boundaries("lsoas") => mvt::LSOA_MIN_ZOOM,
            Source::Boundaries(_) => mvt::MIN_ZOOM,
            Source::Cells(res) => mvt::res_min_zoom(res).max(mvt::MIN_ZOOM),
            Source::Heatmap => heatmap::MIN_ZOOM,
        }
    }

    fn max_zoom(self) -> u8 {
        match self {
            Source::Boundaries(_) => mvt::BOUNDARIES_MAX_ZOOM,
            Source::Cells(_) => mvt::CELLS_MAX_ZOOM,
            Source::Heatmap => heatmap::MAX_ZOOM,
        }
    }

    fn is_map(self) -> bool {
        self == Source::Heatmap
    }

    fn media_type(self) -> &'static str {
        if self.is_map() {
            heatmap::CONTENT_TYPE
        } else {
            mvt::CONTENT_TYPE
        }
    }

    fn title(self) -> String {
        match self {
            Source::Boundaries("lsoas") => "LSOA boundaries (vector tiles)".to_owned(),
            Source::Boundaries(_) => "District boundaries (vector tiles)".to_owned(),
            Source::Cells(res) => {
                format!("H3 resolution {res} cells with counts and Gi* hot spots (vector tiles)")
            }
            Source::Heatmap => "Incident density heatmap (PNG map tiles)".to_owned(),
        }
    }

    /// The XYZ template of the tiles, as an OGC URI template.
    fn template(self, base: &str, qs: &str) -> String {
        let (path, q) = match self {
            Source::Boundaries(layer) => ("boundaries", format!("layer={layer}")),
            Source::Cells(res) => {
                let r = format!("res={res}");
                (
                    "cells",
                    if qs.is_empty() {
                        r
                    } else {
                        format!("{qs}&{r}")
                    },
                )
            }
            Source::Heatmap => ("heatmap", qs.to_owned()),
        };
        let ext = if self.is_map() { "png" } else { "mvt" };
        let sep = if q.is_empty() { "" } else { "?" };
        format!("{base}/tiles/{path}/{{tileMatrix}}/{{tileCol}}/{{tileRow}}.{ext}{sep}{q}")
    }

    /// The tileset's layers (OGC 17-083r4 `geospatialData`), with the fields each holds.
    fn layers(self) -> Value {
        let field = |t: &str, d: &str| json!({ "type": t, "description": d });
        match self {
            Source::Boundaries(layer) => {
                let mut props = json!({
                    "code": field("string", "ONS code"),
                    "name": field("string", "name"),
                });
                if layer == "lsoas" {
                    props["district"] = field("string", "the LSOA's district");
                }
                json!([{
                    "id": layer,
                    "dataType": "vector",
                    "geometryDimension": 2,
                    "minTileMatrix": self.min_zoom().to_string(),
                    "maxTileMatrix": self.max_zoom().to_string(),
                    "propertiesSchema": { "type": "object", "properties": props },
                }])
            }
            Source::Cells(res) => json!([{
                "id": "cells",
                "dataType": "vector",
                "geometryDimension": 2,
                "description": format!("H3 cells at resolution {res}, Gi* (k = 1 ring, FDR) over the study area at that resolution. Below analyst: no gi_z, and suppressed (true: count and per_km2 withheld)."),
                "minTileMatrix": self.min_zoom().to_string(),
                "maxTileMatrix": self.max_zoom().to_string(),
                "propertiesSchema": { "type": "object", "properties": {
                    "cell": field("string", "H3 index"),
                    "count": field("integer", "incidents (perturbed below analyst)"),
                    "per_km2": field("number", "incidents per km2"),
                    "gi_z": field("number", "Getis-Ord Gi* z (analyst only)"),
                    "gi_bin": field("integer", "-3..3: 99/95/90% cold/hot, FDR-controlled"),
                    "category": field("string", "emerging hot spot pattern (z9-13)"),
                    "suppressed": field("boolean", "count withheld under disclosure control"),
                } },
            }]),
            Source::Heatmap => json!([{
                "id": "heatmap",
                "dataType": "map",
                "description": "Quartic kernel density of incidents (below analyst, of perturbed counts on a fixed grid), colour on a fixed scale per filter; the legend is at /tiles/heatmap/legend.",
                "minTileMatrix": self.min_zoom().to_string(),
                "maxTileMatrix": self.max_zoom().to_string(),
            }]),
        }
    }
}

/// The vector tileset of collection `c`, if it has one.
fn vector_of(c: CollectionId) -> Option<Source> {
    match c {
        CollectionId::Districts => Some(Source::Boundaries("districts")),
        CollectionId::Lsoas => Some(Source::Boundaries("lsoas")),
        CollectionId::H3(res) => Some(Source::Cells(res)),
        _ => None,
    }
}

/// The map tileset of collection `c`, if it has one.
fn map_of(c: CollectionId) -> Option<Source> {
    (c == CollectionId::Hotspots).then_some(Source::Heatmap)
}

/// The tileset links a collection's description carries (`tilesets-vector`,
/// `tilesets-map`), for [`super::collections`].
pub(super) fn collection_links(c: CollectionId, base: &str) -> Vec<Value> {
    let href = format!("{base}/collections/{}", c.id());
    let mut v = Vec::new();
    if vector_of(c).is_some() {
        v.push(link(
            format!("{href}/tiles"),
            REL_TILESETS_VECTOR,
            JSON,
            "vector tilesets (OGC API - Tiles)",
        ));
    }
    if map_of(c).is_some() {
        v.push(link(
            format!("{href}/map/tiles"),
            REL_TILESETS_MAP,
            JSON,
            "map tilesets (OGC API - Tiles)",
        ));
    }
    v
}

/// The tile matrix of zoom `z` (TMS 2.0 members, plus 1.0's `topLeftCorner`).
fn tile_matrix(z: u8) -> Value {
    let n = 1u64 << z;
    let cell = 2.0 * HALF / 256.0 / n as f64;
    json!({
        "id": z.to_string(),
        "scaleDenominator": cell / 0.000_28,
        "cellSize": cell,
        "cornerOfOrigin": "topLeft",
        "pointOfOrigin": [-HALF, HALF],
        "topLeftCorner": [-HALF, HALF],
        "tileWidth": 256,
        "tileHeight": 256,
        "matrixWidth": n,
        "matrixHeight": n,
    })
}

/// The tile matrix of zoom `z` as TMS 1.0 writes it.
fn tile_matrix_v1(z: u8) -> Value {
    let n = 1u64 << z;
    let cell = 2.0 * HALF / 256.0 / n as f64;
    json!({
        "type": "TileMatrixType",
        "identifier": z.to_string(),
        "scaleDenominator": cell / 0.000_28,
        "topLeftCorner": [-HALF, HALF],
        "tileWidth": 256,
        "tileHeight": 256,
        "matrixWidth": n,
        "matrixHeight": n,
    })
}

/// The WebMercatorQuad definition.
fn tile_matrix_set(base: &str) -> Value {
    json!({
        "id": TMS_ID,
        "title": "Google Maps Compatible for the World",
        "uri": TMS_URI,
        "crs": WEB_MERCATOR,
        "orderedAxes": ["E", "N"],
        "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
        "boundingBox": {
            "crs": WEB_MERCATOR,
            "lowerLeft": [-HALF, -HALF],
            "upperRight": [HALF, HALF],
        },
        "tileMatrices": (0..=TMS_MAX_ZOOM).map(tile_matrix).collect::<Vec<_>>(),
        // TMS 1.0's names for the same, which GDAL 3.6 looks for.
        "type": "TileMatrixSetType",
        "identifier": TMS_ID,
        "supportedCRS": WEB_MERCATOR,
        "tileMatrix": (0..=TMS_MAX_ZOOM).map(tile_matrix_v1).collect::<Vec<_>>(),
        "links": [link(format!("{base}/tileMatrixSets/{TMS_ID}"), "self", JSON, "this tile matrix set")],
    })
}

/// 404 unless `id` is the one tiling scheme.
fn check_tms(id: &str) -> Result<(), AppError> {
    if id == TMS_ID {
        Ok(())
    } else {
        Err(AppError::NotFound(format!(
            "no tile matrix set '{id}' (only {TMS_ID})"
        )))
    }
}

/// `GET /tileMatrixSets`.
pub async fn matrix_sets(
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    only_f_json(query.as_deref())?;
    let base = base_url(&headers, &uri);
    let href = format!("{base}/tileMatrixSets/{TMS_ID}");
    let doc = json!({
        "links": [link(format!("{base}/tileMatrixSets"), "self", JSON, "the tiling schemes")],
        "tileMatrixSets": [{
            "id": TMS_ID,
            "title": "Google Maps Compatible for the World",
            "uri": TMS_URI,
            "crs": WEB_MERCATOR,
            "links": [link(href, "self", JSON, "its definition")],
        }],
    });
    Ok(json_response(&headers, &doc, JSON))
}

/// `GET /tileMatrixSets/{tileMatrixSetId}`.
pub async fn matrix_set(
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    check_tms(&id)?;
    only_f_json(query.as_deref())?;
    let doc = tile_matrix_set(&base_url(&headers, &uri));
    Ok(json_response(&headers, &doc, JSON))
}

/// Only `f=json` or nothing.
fn only_f_json(query: Option<&str>) -> Result<(), AppError> {
    let p = crate::serve::params::parse(query, &["f"])?;
    match p.get("f").map(String::as_str) {
        None | Some("json") => Ok(()),
        Some(f) => Err(AppError::BadRequest(format!(
            "parameter 'f': '{f}' is not offered here (only json)"
        ))),
    }
}

/// The collection and its tileset of the kind asked (`map`), or 404.
fn source(id: &str, map: bool) -> Result<(CollectionId, Source), AppError> {
    let c = CollectionId::parse(id)
        .ok_or_else(|| AppError::NotFound(format!("no collection '{id}'")))?;
    let s = if map { map_of(c) } else { vector_of(c) };
    s.map(|s| (c, s)).ok_or_else(|| {
        AppError::NotFound(format!(
            "collection '{id}' has no {} tiles",
            if map { "map" } else { "vector" }
        ))
    })
}

/// The query a tileset of `s` carries: the tiles' own, checked as they check it.
fn carried(
    state: &AppState,
    s: Source,
    query: Option<&str>,
    p: &Principal,
) -> Result<String, AppError> {
    match s {
        Source::Boundaries(_) => {
            crate::serve::params::parse(query, &[])?;
            Ok(String::new())
        }
        Source::Cells(_) => mvt::cells_filter_query(state, query),
        Source::Heatmap => heatmap::carried_query(state, query, p),
    }
}

fn with_qs(href: String, qs: &str) -> String {
    if qs.is_empty() {
        href
    } else {
        format!("{href}?{qs}")
    }
}

/// The path of `c`'s tilesets of kind `s` (`/collections/{id}[/map]/tiles`).
fn tilesets_path(base: &str, c: CollectionId, s: Source) -> String {
    let map = if s.is_map() { "/map" } else { "" };
    format!("{base}/collections/{}{map}/tiles", c.id())
}

/// The county's extent in CRS84 (the world when there is none).
fn extent(state: &AppState) -> [f64; 4] {
    state
        .store()
        .geography
        .county
        .bounding_rect()
        .map_or([-180.0, -85.0, 180.0, 85.0], |r| {
            [r.min().x, r.min().y, r.max().x, r.max().y]
        })
}

/// Per zoom from `s`'s first to its last, the range of tiles that touch `b`.
fn limits(s: Source, b: [f64; 4]) -> Vec<Value> {
    (s.min_zoom()..=s.max_zoom())
        .filter_map(|z| {
            let nw = TileCoord::containing(b[0], b[3], z)?;
            let se = TileCoord::containing(b[2], b[1], z)?;
            Some(json!({
                "tileMatrix": z.to_string(),
                "minTileRow": nw.y, "maxTileRow": se.y,
                "minTileCol": nw.x, "maxTileCol": se.x,
            }))
        })
        .collect()
}

/// `GET /collections/{id}/tiles` and `/collections/{id}/map/tiles`.
async fn list(
    state: AppState,
    id: String,
    map: bool,
    query: Option<String>,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    let (c, s) = source(&id, map)?;
    let qs = carried(&state, s, query.as_deref(), &principal_of(principal))?;
    let base = base_url(&headers, &uri);
    let here = tilesets_path(&base, c, s);
    let doc = json!({
        "links": [link(with_qs(here.clone(), &qs), "self", JSON, "these tilesets")],
        "tilesets": [{
            "title": s.title(),
            "dataType": if s.is_map() { "map" } else { "vector" },
            "crs": WEB_MERCATOR,
            "tileMatrixSetURI": TMS_URI,
            "links": [
                link(with_qs(format!("{here}/{TMS_ID}"), &qs), "self", JSON, "the tileset"),
                link(format!("{base}/tileMatrixSets/{TMS_ID}"), REL_TILING_SCHEME, JSON, "its tiling scheme"),
            ],
        }],
    });
    Ok(json_response(&headers, &doc, JSON))
}

/// `GET /collections/{id}/tiles/{tms}` and `/collections/{id}/map/tiles/{tms}`.
#[allow(clippy::too_many_arguments)]
async fn one(
    state: AppState,
    id: String,
    tms: &str,
    map: bool,
    query: Option<String>,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    let (c, s) = source(&id, map)?;
    check_tms(tms)?;
    let qs = carried(&state, s, query.as_deref(), &principal_of(principal))?;
    let base = base_url(&headers, &uri);
    let here = format!("{}/{TMS_ID}", tilesets_path(&base, c, s));
    let b = extent(&state);
    let round = |v: f64| (v * 1e6).round() / 1e6;
    let mut item = link(s.template(&base, &qs), "item", s.media_type(), "a tile");
    item["templated"] = Value::Bool(true);
    let tilejson = match s {
        Source::Boundaries(_) => format!("{base}/tiles/boundaries.json"),
        Source::Cells(res) => {
            let r = format!("res={res}");
            let q = if qs.is_empty() {
                r
            } else {
                format!("{qs}&{r}")
            };
            with_qs(format!("{base}/tiles/cells.json"), &q)
        }
        Source::Heatmap => with_qs(format!("{base}/tiles/heatmap.json"), &qs),
    };
    let doc = json!({
        "title": s.title(),
        "dataType": if s.is_map() { "map" } else { "vector" },
        "crs": WEB_MERCATOR,
        "tileMatrixSetURI": TMS_URI,
        "tileMatrixSetLimits": limits(s, b),
        "boundingBox": {
            "crs": CRS84,
            "lowerLeft": [round(b[0]), round(b[1])],
            "upperRight": [round(b[2]), round(b[3])],
        },
        "centerPoint": {
            "coordinates": [round((b[0] + b[2]) / 2.0), round((b[1] + b[3]) / 2.0)],
            "crs": CRS84,
            "tileMatrix": "9",
        },
        "layers": s.layers(),
        "links": [
            link(with_qs(here, &qs), "self", JSON, "this tileset"),
            link(format!("{base}/tileMatrixSets/{TMS_ID}"), REL_TILING_SCHEME, JSON, "its tiling scheme"),
            link(format!("{base}/collections/{}", c.id()), "http://www.opengis.net/def/rel/ogc/1.0/geodata", JSON, "the collection"),
            link(tilejson, "alternate", JSON, "the same tiles as TileJSON 3.0.0"),
            item,
        ],
    });
    Ok(json_response(&headers, &doc, JSON))
}

/// `GET /collections/{id}/tiles`.
pub async fn vector_list(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    list(state, id, false, query, principal, headers, uri).await
}

/// `GET /collections/{id}/map/tiles`.
pub async fn map_list(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    list(state, id, true, query, principal, headers, uri).await
}

/// `GET /collections/{id}/tiles/{tileMatrixSetId}`.
pub async fn vector_one(
    State(state): State<AppState>,
    Path((id, tms)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    one(state, id, &tms, false, query, principal, headers, uri).await
}

/// `GET /collections/{id}/map/tiles/{tileMatrixSetId}`.
pub async fn map_one(
    State(state): State<AppState>,
    Path((id, tms)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    principal: Option<axum::Extension<Principal>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    one(state, id, &tms, true, query, principal, headers, uri).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_matrices_halve_and_match_the_xyz_grid() {
        let d = tile_matrix_set("http://x");
        let m = d["tileMatrices"].as_array().unwrap();
        assert_eq!(m.len(), 25);
        // WebMercatorQuad's published zoom 0 scale denominator (OGC 17-083r4 Annex D).
        let s0 = m[0]["scaleDenominator"].as_f64().unwrap();
        assert!((s0 - 559_082_264.028_717_8).abs() < 1e-3, "{s0}");
        for w in m.windows(2) {
            let (a, b) = (
                w[0]["cellSize"].as_f64().unwrap(),
                w[1]["cellSize"].as_f64().unwrap(),
            );
            assert!((a / b - 2.0).abs() < 1e-12);
        }
        // Zoom 9's matrix is the XYZ grid: a tile's top-left from the matrix equals the
        // tile address's own Mercator bounds.
        let t = TileCoord::new(9, 252, 165).unwrap();
        let (minx, _, _, maxy) = t.mercator_bounds();
        let cell = m[9]["cellSize"].as_f64().unwrap();
        assert!((-HALF + 252.0 * 256.0 * cell - minx).abs() < 1e-6);
        assert!((HALF - 165.0 * 256.0 * cell - maxy).abs() < 1e-6);
    }

    #[test]
    fn limits_hold_every_tile_of_the_extent() {
        let b = [-3.1, 53.4, -2.0, 54.3];
        for l in limits(Source::Cells(Resolution::Nine), b) {
            let z: u8 = l["tileMatrix"].as_str().unwrap().parse().unwrap();
            for (lon, lat) in [(b[0], b[1]), (b[2], b[3]), (-2.5, 53.8)] {
                let t = TileCoord::containing(lon, lat, z).unwrap();
                let col = u64::from(t.x);
                let row = u64::from(t.y);
                assert!(
                    l["minTileCol"].as_u64().unwrap() <= col
                        && col <= l["maxTileCol"].as_u64().unwrap()
                );
                assert!(
                    l["minTileRow"].as_u64().unwrap() <= row
                        && row <= l["maxTileRow"].as_u64().unwrap()
                );
            }
        }
        assert_eq!(limits(Source::Boundaries("lsoas"), b).len(), 5);
    }
}
