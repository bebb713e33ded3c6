//! `GET /api`: the OpenAPI 3.0 definition of this service (the `oas30` conformance
//! class), written by hand: the paths (OGC API - Features and the tiles), their
//! parameters, their responses and the schemas of those responses (OGC API - Features
//! Part 1's landing page, conformance, collections, GeoJSON feature collection and
//! feature, exception; JSON Schema queryables; TileJSON 3.0.0; OGC API - Tiles' tile
//! matrix sets and tilesets). `web/tests/openapi.test.mjs`
//! validates the document with a real OpenAPI validator and every answer of the server
//! it lists against its declared schema.

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::catalog::CollectionId;
use super::query::{Crs, DEFAULT_LIMIT, MAX_LIMIT};
use super::{
    CRS84, CSV, GEOJSON, HTML, JSON, OPENAPI, SCHEMA_JSON, base_url, json_only, json_response,
};
use crate::serve::{AppError, AppState};

/// `GET /api`.
pub async fn api(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AppError> {
    json_only(uri.query(), &state.store())?;
    let doc = document(&base_url(&headers, &uri));
    Ok(json_response(&headers, &doc, OPENAPI))
}

fn param(name: &str) -> Value {
    json!({ "$ref": format!("#/components/parameters/{name}") })
}

/// The schema of `name` in `components/schemas`.
fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A text body (CSV, HTML).
fn text() -> Value {
    json!({ "type": "string" })
}

/// A binary body (PNG, MVT).
fn binary() -> Value {
    json!({ "type": "string", "format": "binary" })
}

/// A GET operation answering `ok` with the given media types and their schemas, plus the
/// error responses.
fn get(id: &str, summary: &str, params: &[&str], ok: &str, types: &[(&str, Value)]) -> Value {
    let content: serde_json::Map<String, Value> = types
        .iter()
        .map(|(t, s)| ((*t).to_owned(), json!({ "schema": s })))
        .collect();
    json!({
        "get": {
            "operationId": id,
            "summary": summary,
            "parameters": params.iter().map(|p| param(p)).collect::<Vec<_>>(),
            "responses": {
                "200": { "description": ok, "content": content },
                "304": { "description": "Not modified (the ETag in If-None-Match matches)." },
                "400": { "$ref": "#/components/responses/BadRequest" },
                "401": { "$ref": "#/components/responses/Unauthorized" },
                "403": { "$ref": "#/components/responses/Forbidden" },
                "404": { "$ref": "#/components/responses/NotFound" },
                "414": { "$ref": "#/components/responses/UriTooLong" },
                "429": { "$ref": "#/components/responses/TooManyRequests" },
                "500": { "$ref": "#/components/responses/ServerError" },
                "503": { "$ref": "#/components/responses/Unavailable" },
            },
        }
    })
}

/// The operation's 200 answer with its `Content-Crs` header (OGC API - Features Part 2).
fn with_content_crs(mut op: Value) -> Value {
    op["get"]["responses"]["200"]["headers"] = json!({
        "Content-Crs": {
            "description": "The CRS of the geometries, as a URI in angle brackets.",
            "schema": { "type": "string" },
        },
    });
    op
}

/// An error response that says when to try again (`Retry-After`, whole seconds).
fn retry_later(description: &str) -> Value {
    let mut r = exception(description);
    r["headers"] = json!({
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "schema": { "type": "integer", "minimum": 1 },
        },
    });
    r
}

/// `/collections/{id}/items` for one collection, with its filter properties declared
/// as query parameters (`CollectionId::filter_properties`).
fn items_of(c: CollectionId) -> Value {
    let mut op = get(
        &format!("getFeatures-{}", c.id()),
        &format!("A page of the {} collection's features", c.id()),
        &[
            "limit",
            "offset",
            "bbox",
            "bbox-crs",
            "crs",
            "datetime",
            "types",
            "severity",
            "district",
            "sortby",
            "properties",
            "skipGeometry",
            "itemsFormat",
        ],
        "A FeatureCollection (or a CSV table with f=csv, an HTML table with f=html or a browser's Accept). A property parameter keeps the features whose property equals its value.",
        &[
            (GEOJSON, schema("featureCollectionGeoJSON")),
            (CSV, text()),
            (HTML, text()),
        ],
    );
    op = with_content_crs(op);
    if let Some(ps) = op["get"]["parameters"].as_array_mut() {
        for (name, kind) in c.filter_properties() {
            ps.push(json!({
                "name": name, "in": "query", "required": false, "style": "form", "explode": false,
                "description": format!("Features whose {name} equals this value."),
                "schema": { "type": kind },
            }));
        }
    }
    op
}

fn paths() -> Value {
    let mut p = fixed_paths();
    if let Some(o) = p.as_object_mut() {
        for c in CollectionId::ALL {
            o.insert(format!("/collections/{}/items", c.id()), items_of(c));
        }
        if let Some(t) = tile_paths().as_object() {
            o.extend(t.clone());
        }
    }
    p
}

/// The tiles: the heatmap (PNG), the H3 cells and the boundaries (Mapbox Vector Tiles),
/// each with its TileJSON, and the heatmap's legend.
fn tile_paths() -> Value {
    const FILTER: [&str; 5] = ["types", "severity", "from", "to", "district"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = extra.to_vec();
        v.extend(FILTER);
        v
    };
    let heat = with(&["z", "x", "y", "bandwidth", "ramp", "max"]);
    let heat_doc = with(&["bandwidth", "ramp", "max"]);
    let cells = with(&["z", "x", "y", "res"]);
    let cells_doc = with(&["res"]);
    json!({
        "/tiles/heatmap/{z}/{x}/{y}.png": get("getHeatmapTile", "A heatmap tile", &heat,
            "A 256 px RGBA PNG in Web Mercator (XYZ): the kernel density of the filter's incidents (below analyst, of the perturbed counts of a 500 m grid).",
            &[("image/png", binary())]),
        "/tiles/heatmap.json": get("getHeatmapTileJSON", "The heatmap's TileJSON", &heat_doc,
            "TileJSON 3.0.0, the query carried into its tiles URL.", &[(JSON, schema("tileJSON"))]),
        "/tiles/heatmap/legend": get("getHeatmapLegend", "The heatmap's colour scale", &heat_doc,
            "The ramp's stops and the density (per km2) each means.", &[(JSON, json!({ "type": "object" }))]),
        "/tiles/cells/{z}/{x}/{y}.mvt": get("getCellTile", "An H3 cell tile", &cells,
            "A Mapbox Vector Tile (layer `cells`: count, Gi* bin, emerging category) at the H3 resolution of the zoom, or at `res`.",
            &[("application/vnd.mapbox-vector-tile", binary())]),
        "/tiles/cells.json": get("getCellTileJSON", "The cell tiles' TileJSON", &cells_doc,
            "TileJSON 3.0.0 with the vector layer's fields.", &[(JSON, schema("tileJSON"))]),
        "/tiles/boundaries/{z}/{x}/{y}.mvt": get("getBoundaryTile", "A boundary tile", &["z", "x", "y", "layer"],
            "A Mapbox Vector Tile of the districts and (from z10) the LSOAs, or of the one layer asked.",
            &[("application/vnd.mapbox-vector-tile", binary())]),
        "/tiles/boundaries.json": get("getBoundaryTileJSON", "The boundary tiles' TileJSON", &[],
            "TileJSON 3.0.0 with the vector layers' fields.", &[(JSON, schema("tileJSON"))]),
        // OGC API - Tiles: the tiling scheme and the tilesets over the tiles above.
        "/tileMatrixSets": get("getTileMatrixSetsList", "The tiling schemes", &["f"],
            "The tile matrix sets of the tiles (only WebMercatorQuad).", &[(JSON, schema("tileMatrixSets"))]),
        "/tileMatrixSets/{tileMatrixSetId}": get("getTileMatrixSet", "A tiling scheme", &["tileMatrixSetId", "f"],
            "Its definition (OGC 17-083r4 TMS 2.0 JSON).", &[(JSON, schema("tileMatrixSet"))]),
        "/collections/{collectionId}/tiles": get("getCollectionVectorTileSetsList", "A collection's vector tilesets", &with(&["collectionId"]),
            "The vector tilesets of districts, lsoas and hotspots (the filter applies to hotspots' cells; 404 for a collection without tiles).", &[(JSON, schema("tileSets"))]),
        "/collections/{collectionId}/tiles/{tileMatrixSetId}": get("getCollectionVectorTileSet", "A collection's vector tileset", &with(&["collectionId", "tileMatrixSetId"]),
            "The tileset: its limits per zoom, layers and the templated item link onto the MVT tiles, the filter carried into it.", &[(JSON, schema("tileSet"))]),
        "/collections/{collectionId}/map/tiles": get("getCollectionMapTileSetsList", "A collection's map tilesets", &with(&["collectionId", "bandwidth", "ramp", "max"]),
            "The map tileset of hotspots: the heatmap (404 for another collection).", &[(JSON, schema("tileSets"))]),
        "/collections/{collectionId}/map/tiles/{tileMatrixSetId}": get("getCollectionMapTileSet", "A collection's map tileset", &with(&["collectionId", "tileMatrixSetId", "bandwidth", "ramp", "max"]),
            "The heatmap tileset: limits per zoom and the templated item link onto the PNG tiles, the query carried into it.", &[(JSON, schema("tileSet"))]),
    })
}

/// The response schemas: OGC API - Features Part 1 (`landingPage`, `confClasses`,
/// `collections`, `collection`, `link`, `extent`, `featureCollectionGeoJSON`,
/// `featureGeoJSON`, `geometryGeoJSON`, `exception`), queryables and TileJSON.
fn schemas() -> Value {
    let mut all = feature_schemas();
    if let (Some(a), Value::Object(t)) = (all.as_object_mut(), tile_schemas()) {
        a.extend(t);
    }
    all
}

fn feature_schemas() -> Value {
    let links = json!({ "type": "array", "items": schema("link") });
    json!({
        "exception": {
            "type": "object",
            "required": ["code"],
            "properties": {
                "code": { "type": "string" },
                "description": { "type": "string" },
            },
        },
        "link": {
            "type": "object",
            "required": ["href", "rel"],
            "properties": {
                "href": { "type": "string" },
                "rel": { "type": "string" },
                "type": { "type": "string" },
                "title": { "type": "string" },
                "hreflang": { "type": "string" },
                "templated": { "type": "boolean" },
            },
        },
        "landingPage": {
            "type": "object",
            "required": ["links"],
            "properties": {
                "title": { "type": "string" },
                "description": { "type": "string" },
                "links": links,
            },
        },
        "confClasses": {
            "type": "object",
            "required": ["conformsTo"],
            "properties": {
                "conformsTo": { "type": "array", "items": { "type": "string" } },
            },
        },
        "extent": {
            "type": "object",
            "properties": {
                "spatial": {
                    "type": "object",
                    "properties": {
                        "bbox": {
                            "type": "array", "minItems": 1,
                            "items": { "type": "array", "minItems": 4, "maxItems": 6, "items": { "type": "number" } },
                        },
                        "crs": { "type": "string" },
                    },
                },
                "temporal": {
                    "type": "object",
                    "properties": {
                        "interval": {
                            "type": "array", "minItems": 1,
                            "items": {
                                "type": "array", "minItems": 2, "maxItems": 2,
                                "items": { "type": "string", "format": "date-time", "nullable": true },
                            },
                        },
                        "trs": { "type": "string" },
                    },
                },
            },
        },
        "collection": {
            "type": "object",
            "required": ["id", "links"],
            "properties": {
                "id": { "type": "string" },
                "title": { "type": "string" },
                "description": { "type": "string" },
                "links": links,
                "extent": schema("extent"),
                "itemType": { "type": "string" },
                "crs": { "type": "array", "items": { "type": "string" } },
                "storageCrs": { "type": "string" },
            },
        },
        "collections": {
            "type": "object",
            "required": ["links", "collections"],
            "properties": {
                "links": links,
                "collections": { "type": "array", "items": schema("collection") },
            },
        },
        "geometryGeoJSON": {
            "type": "object",
            "nullable": true,
            "required": ["type", "coordinates"],
            "properties": {
                "type": { "type": "string", "enum": ["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"] },
                "coordinates": { "type": "array", "minItems": 1 },
            },
        },
        "featureGeoJSON": {
            "type": "object",
            "required": ["type", "geometry", "properties"],
            "properties": {
                "type": { "type": "string", "enum": ["Feature"] },
                "geometry": schema("geometryGeoJSON"),
                "properties": { "type": "object", "nullable": true },
                "id": { "oneOf": [{ "type": "string" }, { "type": "integer" }] },
                "links": links,
            },
        },
        "featureCollectionGeoJSON": {
            "type": "object",
            "required": ["type", "features"],
            "properties": {
                "type": { "type": "string", "enum": ["FeatureCollection"] },
                "features": { "type": "array", "items": schema("featureGeoJSON") },
                "links": links,
                "timeStamp": { "type": "string", "format": "date-time" },
                "numberMatched": { "type": "integer", "minimum": 0 },
                "numberReturned": { "type": "integer", "minimum": 0 },
                "disclosure": {
                    "type": "object",
                    "description": "Below the analyst role: what was withheld and perturbed (or why the counts are exact).",
                },
            },
        },
        "queryables": {
            "type": "object",
            "required": ["type", "properties"],
            "properties": {
                "$schema": { "type": "string" },
                "$id": { "type": "string" },
                "title": { "type": "string" },
                "type": { "type": "string", "enum": ["object"] },
                "properties": { "type": "object", "additionalProperties": { "type": "object" } },
            },
        },
        "tileJSON": {
            "type": "object",
            "required": ["tilejson", "tiles"],
            "properties": {
                "tilejson": { "type": "string", "enum": ["3.0.0"] },
                "tiles": { "type": "array", "minItems": 1, "items": { "type": "string" } },
                "name": { "type": "string" },
                "attribution": { "type": "string" },
                "minzoom": { "type": "integer", "minimum": 0, "maximum": 30 },
                "maxzoom": { "type": "integer", "minimum": 0, "maximum": 30 },
                "bounds": { "type": "array", "minItems": 4, "maxItems": 4, "items": { "type": "number" } },
                "center": { "type": "array", "minItems": 2, "maxItems": 3, "items": { "type": "number" } },
                "vector_layers": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "fields"],
                        "properties": {
                            "id": { "type": "string" },
                            "fields": { "type": "object", "additionalProperties": { "type": "string" } },
                        },
                    },
                },
            },
        },
    })
}

/// OGC API - Tiles 1.0 (20-057) and TMS 2.0 (17-083r4): the parts of their schemas these
/// answers use, with what each requires.
fn tile_schemas() -> Value {
    let links = json!({ "type": "array", "items": schema("link") });
    json!({
        "tileMatrixSets": {
            "type": "object",
            "required": ["tileMatrixSets"],
            "properties": {
                "links": links,
                "tileMatrixSets": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["links"],
                        "properties": {
                            "id": { "type": "string" },
                            "title": { "type": "string" },
                            "uri": { "type": "string", "format": "uri" },
                            "crs": { "type": "string" },
                            "links": { "type": "array", "minItems": 1, "items": schema("link") },
                        },
                    },
                },
            },
        },
        "tileMatrixSet": {
            "type": "object",
            "required": ["crs", "tileMatrices"],
            "properties": {
                "id": { "type": "string" },
                "title": { "type": "string" },
                "uri": { "type": "string", "format": "uri" },
                "crs": { "type": "string" },
                "orderedAxes": { "type": "array", "minItems": 1, "items": { "type": "string" } },
                "wellKnownScaleSet": { "type": "string", "format": "uri" },
                "tileMatrices": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["id", "scaleDenominator", "cellSize", "pointOfOrigin", "tileWidth", "tileHeight", "matrixWidth", "matrixHeight"],
                        "properties": {
                            "id": { "type": "string" },
                            "scaleDenominator": { "type": "number" },
                            "cellSize": { "type": "number" },
                            "cornerOfOrigin": { "type": "string", "enum": ["topLeft", "bottomLeft"] },
                            "pointOfOrigin": { "type": "array", "minItems": 2, "maxItems": 2, "items": { "type": "number" } },
                            "tileWidth": { "type": "integer", "minimum": 1 },
                            "tileHeight": { "type": "integer", "minimum": 1 },
                            "matrixWidth": { "type": "integer", "minimum": 1 },
                            "matrixHeight": { "type": "integer", "minimum": 1 },
                        },
                    },
                },
            },
        },
        "tileSets": {
            "type": "object",
            "required": ["tilesets"],
            "properties": {
                "links": links,
                "tilesets": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["dataType", "crs", "links"],
                        "properties": {
                            "title": { "type": "string" },
                            "dataType": { "type": "string", "enum": ["map", "vector", "coverage"] },
                            "crs": { "type": "string" },
                            "tileMatrixSetURI": { "type": "string", "format": "uri" },
                            "links": { "type": "array", "minItems": 1, "items": schema("link") },
                        },
                    },
                },
            },
        },
        "tileSet": {
            "type": "object",
            "required": ["dataType", "crs", "links"],
            "properties": {
                "title": { "type": "string" },
                "dataType": { "type": "string", "enum": ["map", "vector", "coverage"] },
                "crs": { "type": "string" },
                "tileMatrixSetURI": { "type": "string", "format": "uri" },
                "tileMatrixSetLimits": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["tileMatrix", "minTileRow", "maxTileRow", "minTileCol", "maxTileCol"],
                        "properties": {
                            "tileMatrix": { "type": "string" },
                            "minTileRow": { "type": "integer", "minimum": 0 },
                            "maxTileRow": { "type": "integer", "minimum": 0 },
                            "minTileCol": { "type": "integer", "minimum": 0 },
                            "maxTileCol": { "type": "integer", "minimum": 0 },
                        },
                    },
                },
                "layers": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "dataType"],
                        "properties": {
                            "id": { "type": "string" },
                            "dataType": { "type": "string", "enum": ["map", "vector", "coverage"] },
                            "geometryDimension": { "type": "integer", "minimum": 0, "maximum": 3 },
                        },
                    },
                },
                "links": { "type": "array", "minItems": 1, "items": schema("link") },
            },
        },
    })
}

fn fixed_paths() -> Value {
    json!({
        "/": get("getLandingPage", "Landing page", &["datetime", "types", "severity", "district", "f"], "Links to the API, conformance and data.", &[(JSON, schema("landingPage"))]),
        "/conformance": get("getConformanceDeclaration", "Conformance classes", &["datetime", "types", "severity", "district", "f"], "The conformance classes implemented.", &[(JSON, schema("confClasses"))]),
        "/api": get("getAPI", "This API definition", &["datetime", "types", "severity", "district", "f"], "The OpenAPI 3.0 document.", &[(OPENAPI, json!({ "type": "object" }))]),
        "/collections": get("getCollections", "The collections", &["datetime", "types", "severity", "district", "htmlFormat"], "Every collection with its extent and links (a table with f=html or a browser's Accept).", &[(JSON, schema("collections")), (HTML, text())]),
        "/collections/{collectionId}": get("describeCollection", "One collection", &["collectionId", "datetime", "types", "severity", "district", "htmlFormat"], "The collection's description (a page with f=html or a browser's Accept).", &[(JSON, schema("collection")), (HTML, text())]),
        "/collections/{collectionId}/items": with_content_crs(get(
            "getFeatures",
            "A page of a collection's features",
            &["collectionId", "limit", "offset", "bbox", "bbox-crs", "crs", "datetime", "types", "severity", "district", "sortby", "properties", "skipGeometry", "pageFormat"],
            "A FeatureCollection (or a CSV table with f=csv), with numberMatched, numberReturned, timeStamp and next/prev links. Any other parameter named after a property of the collection (its queryables) keeps the features whose property equals the value (name=Preston); a name that is no property is a 400.",
            &[(GEOJSON, schema("featureCollectionGeoJSON")), (CSV, text()), (HTML, text())],
        )),
        "/collections/{collectionId}/queryables": get(
            "getQueryables",
            "The properties items can be filtered and sorted by",
            &["collectionId", "datetime", "types", "severity", "district", "f"],
            "A JSON Schema (2020-12) of the collection's properties as the caller gets them.",
            &[(SCHEMA_JSON, schema("queryables"))],
        ),
        "/collections/{collectionId}/items/{featureId}": with_content_crs(get(
            "getFeature",
            "One feature",
            &["collectionId", "featureId", "crs", "datetime", "types", "severity", "district", "itemsFormat"],
            "The feature (or a one-row CSV table with f=csv, a page for people with f=html or a browser's Accept).",
            &[(GEOJSON, schema("featureGeoJSON")), (CSV, text()), (HTML, text())],
        )),
    })
}

fn parameters() -> Value {
    let ids: Vec<&str> = CollectionId::ALL.iter().map(|c| c.id()).collect();
    let crs_uris = Crs::ALL.map(Crs::uri);
    json!({
        "collectionId": {
            "name": "collectionId", "in": "path", "required": true,
            "description": "The collection.",
            "schema": { "type": "string", "enum": ids },
        },
        "featureId": {
            "name": "featureId", "in": "path", "required": true,
            "description": "The feature's id: a code, an H3 cell, or an incident number.",
            "schema": { "type": "string" },
        },
        "limit": {
            "name": "limit", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "Features per page.",
            "schema": { "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT },
        },
        "offset": {
            "name": "offset", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "Features to skip (the next links carry it).",
            "schema": { "type": "integer", "minimum": 0, "default": 0 },
        },
        "bbox": {
            "name": "bbox", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "minLon,minLat,maxLon,maxLat in WGS84 degrees (CRS84), or in the CRS bbox-crs names (EPSG:4326: minLat,minLon,maxLat,maxLon; EPSG:27700: minEasting,minNorthing,maxEasting,maxNorthing in metres); six numbers with heights are taken, the heights ignored: features whose geometry intersects the box.",
            "schema": { "type": "array", "minItems": 4, "maxItems": 6, "items": { "type": "number" } },
        },
        "bbox-crs": {
            "name": "bbox-crs", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "The CRS of bbox (OGC API - Features Part 2).",
            "schema": { "type": "string", "format": "uri", "enum": crs_uris, "default": CRS84 },
        },
        "crs": {
            "name": "crs", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "The CRS of the geometries (OGC API - Features Part 2; the answer's Content-Crs header names it): CRS84 (longitude, latitude), EPSG:4326 (latitude, longitude) or British National Grid EPSG:27700 (easting, northing in metres, through OSTN15). CSV names its coordinate columns after the axes.",
            "schema": { "type": "string", "format": "uri", "enum": crs_uris, "default": CRS84 },
        },
        "datetime": {
            "name": "datetime", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "A month (YYYY-MM), an RFC 3339 date or date-time, or an interval start/end with '..' or nothing for an open end; counted by whole months.",
            "schema": { "type": "string" },
        },
        "types": {
            "name": "types", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "Incident types, comma-separated (labels or slugs, e.g. burglary,road-collision).",
            "schema": { "type": "string" },
        },
        "severity": {
            "name": "severity", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "Road collisions of these STATS19 severities only, comma-separated (fatal, serious, slight, unknown); other types are not affected.",
            "schema": { "type": "string" },
        },
        "district": {
            "name": "district", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "Districts, comma-separated (codes or names); the study area becomes those districts.",
            "schema": { "type": "string" },
        },
        "tileMatrixSetId": {
            "name": "tileMatrixSetId", "in": "path", "required": true,
            "description": "The tiling scheme.",
            "schema": { "type": "string", "enum": ["WebMercatorQuad"] },
        },
        "res": {
            "name": "res", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "The H3 resolution of the cells instead of the zoom's own (7 from z7, 8 from z8, 9 from z10, 10 from z11; 6 at every zoom).",
            "schema": { "type": "integer", "minimum": 6, "maximum": 10 },
        },
        "layer": {
            "name": "layer", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "Only this layer.",
            "schema": { "type": "string", "enum": ["districts", "lsoas"] },
        },
        "z": {
            "name": "z", "in": "path", "required": true,
            "description": "The tile's zoom level.",
            "schema": { "type": "integer", "minimum": 0, "maximum": 22 },
        },
        "x": {
            "name": "x", "in": "path", "required": true,
            "description": "The tile's column (XYZ).",
            "schema": { "type": "integer", "minimum": 0 },
        },
        "y": {
            "name": "y", "in": "path", "required": true,
            "description": "The tile's row (XYZ: 0 at the north).",
            "schema": { "type": "integer", "minimum": 0 },
        },
        "from": {
            "name": "from", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "The first month (YYYY-MM).",
            "schema": { "type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$" },
        },
        "to": {
            "name": "to", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "The last month (YYYY-MM).",
            "schema": { "type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$" },
        },
        "bandwidth": {
            "name": "bandwidth", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "The kernel's search radius in metres (below analyst at least the disclosure minimum).",
            "schema": { "type": "number", "minimum": 50, "maximum": 20000 },
        },
        "ramp": {
            "name": "ramp", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "The colour ramp.",
            "schema": { "type": "string", "enum": ["viridis", "cividis", "magma"], "default": "viridis" },
        },
        "max": {
            "name": "max", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "The density (incidents per km2) at the top of the ramp.",
            "schema": { "type": "number", "minimum": 0 },
        },
        "sortby": {
            "name": "sortby", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "Properties to order by, comma-separated, '-' before one for descending (sortby=-count,name); nulls last; ties keep the collection's order.",
            "schema": { "type": "string" },
        },
        "properties": {
            "name": "properties", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "Only these properties, comma-separated, in this order.",
            "schema": { "type": "string" },
        },
        "skipGeometry": {
            "name": "skipGeometry", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "true: features without their geometry (null).",
            "schema": { "type": "boolean", "default": false },
        },
        "f": {
            "name": "f", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "Output format.",
            "schema": { "type": "string", "enum": ["json"], "default": "json" },
        },
        "pageFormat": {
            "name": "f", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "Output format: GeoJSON, a CSV table (id, lon, lat, properties), or an HTML table for people (also what a browser's Accept gets).",
            "schema": { "type": "string", "enum": ["json", "csv", "html"], "default": "json" },
        },
        "htmlFormat": {
            "name": "f", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "Output format: JSON, or a page for people (also what a browser's Accept gets).",
            "schema": { "type": "string", "enum": ["json", "html"], "default": "json" },
        },
        "itemsFormat": {
            "name": "f", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "Output format: GeoJSON, a CSV table (id, lon, lat, properties), or a page for people (also what a browser's Accept gets).",
            "schema": { "type": "string", "enum": ["json", "csv", "html"], "default": "json" },
        },
    })
}

fn exception(description: &str) -> Value {
    json!({
        "description": description,
        "content": { JSON: { "schema": { "$ref": "#/components/schemas/exception" } } },
    })
}

/// The whole document, with `base` as the server URL.
pub fn document(base: &str) -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "hotspot",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "OGC API - Features (Part 1: Core, GeoJSON, OpenAPI 3.0; Part 2: CRS) and OGC API - Tiles (vector and map tilesets) for crime and road collision hot spots.",
            "license": { "name": "MIT OR Apache-2.0" },
        },
        "servers": [{ "url": base }],
        "paths": paths(),
        "components": {
            "parameters": parameters(),
            "schemas": schemas(),
            "responses": {
                "BadRequest": exception("A parameter is unknown, repeated or has a bad value."),
                "Unauthorized": exception("A key is needed: send it as `Authorization: Bearer <key>`, `X-API-Key: <key>`, or HTTP Basic with the key as the password."),
                "Forbidden": exception("The key sent matches no key, or its role may not see this resource (incident points and the operational collections need analyst or partner), or a sensitive category was asked for below district level."),
                "NotFound": exception("No such collection or feature."),
                "UriTooLong": exception("The query string or path is longer than the server accepts."),
                "TooManyRequests": retry_later("Over the rate limit of the client's address or key (a request past its burst is first held up to the server's delay, then refused)."),
                "ServerError": exception("A server error."),
                "Unavailable": retry_later("The request timed out, or the server is computing as much as it will at once; try again after Retry-After."),
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` points at something that exists.
    fn refs(v: &Value, root: &Value) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    let ptr = r.strip_prefix('#').unwrap();
                    assert!(root.pointer(ptr).is_some(), "dangling {r}");
                }
                m.values().for_each(|x| refs(x, root));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, root)),
            _ => {}
        }
    }

    #[test]
    fn references_resolve_and_path_parameters_are_declared() {
        let doc = document("http://localhost");
        refs(&doc, &doc);
        // Every status the server can answer an operation with is declared on it.
        for (path, item) in doc["paths"].as_object().unwrap() {
            for code in [
                "200", "304", "400", "401", "403", "404", "414", "429", "500", "503",
            ] {
                assert!(
                    item["get"]["responses"].get(code).is_some(),
                    "{path} lacks {code}"
                );
            }
        }
        for (path, item) in doc["paths"].as_object().unwrap() {
            let params = item["get"]["parameters"].as_array().unwrap();
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                let name = seg[1..].split('}').next().unwrap();
                assert!(
                    params
                        .iter()
                        .any(|p| p["$ref"].as_str().unwrap().ends_with(name)),
                    "{path} lacks {name}"
                );
            }
        }
    }
}
