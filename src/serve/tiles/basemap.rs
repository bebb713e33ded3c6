//! A self-hosted raster basemap (`hotspot serve --basemap FILE.mbtiles`, or `basemap` in
//! the config file), for sites with their own OpenStreetMap extract and no route to
//! tile.openstreetmap.org: an MBTiles file of PNG, JPEG or WebP tiles, as QGIS's "Generate
//! XYZ tiles (MBTiles)" or `gdal_translate -of MBTILES` write them.
//!
//! Tiles are served as stored at `/basemap/{z}/{x}/{y}.{ext}` (MBTiles rows count from the
//! south, as TMS: row = 2^z - 1 - y), with a TileJSON 3.0.0 document at `/basemap.json`
//! that carries the file's zoom range, bounds and attribution. A tile the file lacks,
//! inside its zoom range, is a transparent PNG (a sparse extract is normal; a 404 would be
//! an error in every map client's console); outside the range it is 404.
//!
//! Refused when the server starts, with the reason: a vector MBTiles (`format = pbf`),
//! because a vector basemap needs a style written for its schema (OpenMapTiles,
//! Shortbread, Protomaps), which hotspot does not ship; and PMTiles, not read yet.
//! Basemap tiles hold no incident data: every role may read them.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::get;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::{Value, json};

use super::base_url;
use crate::serve::auth::{Access, Role, Routes};
use crate::serve::params;
use crate::serve::tile::TileCoord;
use crate::serve::{AppError, AppState, cached};

/// Basemap tiles change only when the file does (a restart): a day in caches.
const MAX_AGE: u32 = 86_400;

/// The image format of the tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
    Webp,
}

impl Format {
    pub fn ext(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpeg => "jpg",
            Format::Webp => "webp",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Jpeg => "image/jpeg",
            Format::Webp => "image/webp",
        }
    }

    /// From the tile bytes' signature.
    fn sniff(b: &[u8]) -> Option<Self> {
        if b.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Format::Png)
        } else if b.starts_with(&[0xff, 0xd8, 0xff]) {
            Some(Format::Jpeg)
        } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
            Some(Format::Webp)
        } else {
            None
        }
    }
}

/// An open MBTiles basemap.
#[derive(Debug)]
pub struct Basemap {
    /// The file as given (for messages).
    pub path: PathBuf,
    pub name: String,
    pub format: Format,
    pub minzoom: u8,
    pub maxzoom: u8,
    /// West, south, east, north (WGS84), when the file says.
    pub bounds: Option<[f64; 4]>,
    pub attribution: Option<String>,
    conn: Mutex<Connection>,
}

impl Basemap {
    /// Opens and checks an MBTiles file (read-only).
    ///
    /// # Errors
    /// Naming the file and what is wrong: missing or unreadable, not MBTiles, PMTiles, a
    /// vector (`pbf`) tileset, no tiles, tiles in no image format.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let shown = path.display();
        let head = std::fs::read(path)
            .map(|b| b.into_iter().take(16).collect::<Vec<u8>>())
            .map_err(|e| anyhow::anyhow!("basemap {shown}: cannot read it: {e}"))?;
        anyhow::ensure!(
            !head.starts_with(b"PMTiles"),
            "basemap {shown}: PMTiles is not read yet; give an MBTiles file of raster tiles (png, jpg or webp)"
        );
        anyhow::ensure!(
            head.starts_with(b"SQLite format 3\0"),
            "basemap {shown}: not an MBTiles file (MBTiles is SQLite; this file is not)"
        );
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| anyhow::anyhow!("basemap {shown}: cannot open it: {e}"))?;
        let meta: Vec<(String, String)> = conn
            .prepare("SELECT name, value FROM metadata")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                    .collect()
            })
            .map_err(|e| {
                anyhow::anyhow!(
                    "basemap {shown}: not an MBTiles file (no readable metadata table: {e})"
                )
            })?;
        let get = |k: &str| {
            meta.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.trim().to_owned())
        };
        let first: Option<Vec<u8>> = conn
            .query_row("SELECT tile_data FROM tiles LIMIT 1", [], |r| r.get(0))
            .optional()
            .map_err(|e| {
                anyhow::anyhow!(
                    "basemap {shown}: not an MBTiles file (no readable tiles table: {e})"
                )
            })?;
        let first =
            first.ok_or_else(|| anyhow::anyhow!("basemap {shown}: the tiles table is empty"))?;
        let declared = get("format").map(|f| f.to_ascii_lowercase());
        let format = match declared.as_deref() {
            Some("pbf" | "mvt") => anyhow::bail!(
                "basemap {shown}: a vector tileset (format {}); a vector basemap needs a style for its schema, which hotspot does not ship: give raster tiles (png, jpg or webp), e.g. QGIS's \"Generate XYZ tiles (MBTiles)\"",
                declared.as_deref().unwrap_or_default()
            ),
            Some("png") => Format::Png,
            Some("jpg" | "jpeg") => Format::Jpeg,
            Some("webp") => Format::Webp,
            Some(other) => anyhow::bail!(
                "basemap {shown}: metadata format '{other}' is none of png, jpg, webp"
            ),
            None => Format::sniff(&first).ok_or_else(|| {
                anyhow::anyhow!("basemap {shown}: no metadata format, and its tiles are not PNG, JPEG or WebP (gzip-compressed vector tiles?)")
            })?,
        };
        let (lo, hi): (Option<i64>, Option<i64>) = conn
            .query_row(
                "SELECT min(zoom_level), max(zoom_level) FROM tiles",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| anyhow::anyhow!("basemap {shown}: cannot read its zoom levels: {e}"))?;
        let zoom = |v: Option<String>, fallback: Option<i64>| -> anyhow::Result<u8> {
            let z = match v {
                Some(s) => s.parse::<i64>().map_err(|_| {
                    anyhow::anyhow!("basemap {shown}: metadata zoom '{s}' is not a whole number")
                })?,
                None => fallback.unwrap_or(0),
            };
            u8::try_from(z)
                .ok()
                .filter(|z| *z <= 24)
                .ok_or_else(|| anyhow::anyhow!("basemap {shown}: zoom {z} is outside 0..24"))
        };
        let minzoom = zoom(get("minzoom"), lo)?;
        let maxzoom = zoom(get("maxzoom"), hi)?;
        anyhow::ensure!(
            minzoom <= maxzoom,
            "basemap {shown}: minzoom {minzoom} is above maxzoom {maxzoom}"
        );
        let bounds = match get("bounds") {
            None => None,
            Some(b) => Some(parse_bounds(&b).ok_or_else(|| {
                anyhow::anyhow!(
                    "basemap {shown}: metadata bounds '{b}' is not west,south,east,north in degrees"
                )
            })?),
        };
        let name = get("name")
            .filter(|n| !n.is_empty())
            .or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "basemap".into());
        Ok(Basemap {
            path: path.to_path_buf(),
            name,
            format,
            minzoom,
            maxzoom,
            bounds,
            attribution: get("attribution").filter(|a| !a.is_empty()),
            conn: Mutex::new(conn),
        })
    }

    /// The stored bytes of XYZ tile `t`, if the file has it.
    ///
    /// # Errors
    /// When SQLite cannot read the file.
    pub fn tile(&self, t: TileCoord) -> Result<Option<Vec<u8>>, String> {
        let row = (1u64 << t.z) - 1 - u64::from(t.y);
        let conn = match self.conn.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        conn.prepare_cached(
            "SELECT tile_data FROM tiles WHERE zoom_level = ?1 AND tile_column = ?2 AND tile_row = ?3",
        )
        .and_then(|mut s| {
            s.query_row((t.z, t.x, row as i64), |r| r.get::<_, Vec<u8>>(0))
                .optional()
        })
        .map_err(|e| format!("basemap {}: {e}", self.path.display()))
    }

    /// What the web map needs to know (`/map/api/meta`).
    pub fn describe(&self) -> Value {
        json!({
            "name": self.name,
            "tilejson": "/basemap.json",
            "attribution": self.attribution,
        })
    }
}

fn parse_bounds(s: &str) -> Option<[f64; 4]> {
    let v: Vec<f64> = s
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .ok()?;
    let b: [f64; 4] = v.try_into().ok()?;
    let ok = b.iter().all(|x| x.is_finite())
        && (-180.0..=180.0).contains(&b[0])
        && (-180.0..=180.0).contains(&b[2])
        && (-90.0..=90.0).contains(&b[1])
        && (-90.0..=90.0).contains(&b[3])
        && b[0] < b[2]
        && b[1] < b[3];
    ok.then_some(b)
}

/// A fully transparent 256 x 256 PNG: the answer for a tile the file lacks.
fn empty_png() -> &'static [u8] {
    static PNG: OnceLock<Vec<u8>> = OnceLock::new();
    PNG.get_or_init(|| {
        let img = image::RgbaImage::new(256, 256);
        let mut out = std::io::Cursor::new(Vec::new());
        // Encoding a blank in-memory image cannot fail; an empty body would only show
        // as a missing tile.
        let _ = img.write_to(&mut out, image::ImageFormat::Png);
        out.into_inner()
    })
}

pub fn routes() -> Routes {
    let public = Access::Role(Role::Public);
    Routes::new()
        .route("/basemap/{z}/{x}/{y}", public, get(tile))
        .route("/basemap.json", public, get(tilejson))
}

fn configured(state: &AppState) -> Result<std::sync::Arc<Basemap>, AppError> {
    state.basemap().ok_or_else(|| {
        AppError::NotFound(
            "no basemap: start the server with --basemap FILE.mbtiles (raster tiles)".into(),
        )
    })
}

async fn tile(
    State(state): State<AppState>,
    UrlPath((z, x, y)): UrlPath<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    params::parse(query.as_deref(), &[])?;
    let b = configured(&state)?;
    let t = TileCoord::from_path(&z, &x, &y, b.format.ext())?;
    if t.z < b.minzoom || t.z > b.maxzoom {
        return Err(AppError::NotFound(format!(
            "the basemap has zoom levels {} to {}",
            b.minzoom, b.maxzoom
        )));
    }
    let b2 = b.clone();
    let found = tokio::task::spawn_blocking(move || b2.tile(t))
        .await
        .map_err(|e| AppError::Internal(format!("basemap task: {e}")))?
        .map_err(AppError::Internal)?;
    Ok(match found {
        Some(bytes) => cached(&headers, bytes, b.format.content_type(), false, MAX_AGE),
        None => cached(&headers, empty_png().to_vec(), "image/png", false, MAX_AGE),
    })
}

async fn tilejson(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    params::parse(query.as_deref(), &[])?;
    let b = configured(&state)?;
    let bounds = b
        .bounds
        .unwrap_or([-180.0, -85.051_128_779_806_6, 180.0, 85.051_128_779_806_6]);
    let centre_zoom = b.minzoom.max(b.maxzoom.min(10));
    let doc = json!({
        "tilejson": "3.0.0",
        "name": b.name,
        "scheme": "xyz",
        "tiles": [format!("{}/basemap/{{z}}/{{x}}/{{y}}.{}", base_url(&state, &uri, &headers), b.format.ext())],
        "minzoom": b.minzoom,
        "maxzoom": b.maxzoom,
        "bounds": bounds,
        "center": [(bounds[0] + bounds[2]) / 2.0, (bounds[1] + bounds[3]) / 2.0, centre_zoom],
        "attribution": b.attribution.clone().unwrap_or_default(),
        "format": b.format.ext(),
        // Required by TileJSON 3.0.0 even for raster tiles (as the heatmap's).
        "vector_layers": [],
    });
    let body = serde_json::to_vec_pretty(&doc)
        .map_err(|e| AppError::Internal(format!("TileJSON: {e}")))?;
    Ok(cached(&headers, body, "application/json", false, 300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        assert_eq!(
            parse_bounds("-3.2, 53.4,-2.0,54.3"),
            Some([-3.2, 53.4, -2.0, 54.3])
        );
        for bad in ["", "1,2,3", "1,2,3,4,5", "a,b,c,d", "10,0,5,1", "0,95,1,96"] {
            assert_eq!(parse_bounds(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_are_sniffed() {
        assert_eq!(Format::sniff(empty_png()), Some(Format::Png));
        assert_eq!(Format::sniff(&[0xff, 0xd8, 0xff, 0xe0]), Some(Format::Jpeg));
        assert_eq!(Format::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Format::Webp));
        assert_eq!(Format::sniff(&[0x1f, 0x8b, 8, 0]), None);
    }
}
