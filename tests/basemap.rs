//! The self-hosted basemap (`serve --basemap FILE.mbtiles`) on an MBTiles file written by
//! GDAL (`gdal_create`, `gdal_translate -of MBTILES`, `gdaladdo`), as a site would make
//! one from its own raster: every tile in the file is served byte for byte at its XYZ
//! address (MBTiles rows count from the south), tiles the file lacks are transparent,
//! zooms outside its range are 404, the TileJSON is TileJSON 3.0.0 with the file's zooms
//! and bounds, the public may read it, and files that are not raster MBTiles are refused
//! with the file and the reason. Needs GDAL (fails without it unless `HOTSPOT_SKIP_GDAL=1`).

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use hotspot::serve::tile::TileCoord;
use hotspot::serve::tiles::basemap::Basemap;
use hotspot::serve::{AppState, load_or_seed, router};
use rusqlite::Connection;
use serde_json::Value;
use tower::ServiceExt as _;

mod common;
use common::{analyst_settings, tilejson_3_violations};

const HOST: &str = "basemap.test:8080";

fn gdal(dir: &Path, args: &[&str]) -> bool {
    match Command::new(args[0])
        .args(&args[1..])
        .current_dir(dir)
        .output()
    {
        Ok(o) => {
            assert!(
                o.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            true
        }
        Err(_) => false,
    }
}

/// A magenta raster over most of the county, as GDAL writes it to MBTiles, zooms 7-10.
fn gdal_mbtiles(dir: &Path) -> Option<PathBuf> {
    let made = gdal(
        dir,
        &[
            "gdal_create",
            "-of",
            "GTiff",
            "-outsize",
            "512",
            "512",
            "-bands",
            "3",
            "-burn",
            "255",
            "-burn",
            "0",
            "-burn",
            "255",
            "-a_srs",
            "EPSG:4326",
            "-a_ullr",
            "-3.2",
            "54.3",
            "-2.0",
            "53.4",
            "in.tif",
        ],
    ) && gdal(
        dir,
        &[
            "gdal_translate",
            "-q",
            "-of",
            "MBTILES",
            "-co",
            "ZOOM_LEVEL_STRATEGY=UPPER",
            "in.tif",
            "map.mbtiles",
        ],
    ) && gdal(
        dir,
        &[
            "gdaladdo",
            "-q",
            "-r",
            "nearest",
            "map.mbtiles",
            "2",
            "4",
            "8",
        ],
    );
    if made {
        return Some(dir.join("map.mbtiles"));
    }
    if std::env::var("HOTSPOT_SKIP_GDAL").as_deref() == Ok("1") {
        eprintln!("GDAL not found: basemap test skipped because HOTSPOT_SKIP_GDAL=1");
        return None;
    }
    panic!(
        "GDAL (gdal_create, gdal_translate, gdaladdo) is not installed: install gdal-bin \
         (apt-get install -y gdal-bin) or set HOTSPOT_SKIP_GDAL=1 to skip this test"
    );
}

async fn get(state: &AppState, uri: &str) -> (StatusCode, Option<String>, Vec<u8>) {
    // No key: the public reads the basemap.
    let req = Request::get(uri)
        .header(header::HOST, HOST)
        .body(Body::empty())
        .expect("request");
    let res = router(state.clone())
        .oneshot(req)
        .await
        .expect("infallible");
    let status = res.status();
    let ct = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = to_bytes(res.into_body(), usize::MAX)
        .await
        .expect("body")
        .to_vec();
    (status, ct, body)
}

#[tokio::test]
async fn serves_a_gdal_mbtiles_file_tile_for_tile() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(file) = gdal_mbtiles(dir.path()) else {
        return;
    };
    let data = dir.path().join("data");
    let store = load_or_seed(&data).expect("the bundled fixtures load");
    let b = Basemap::open(&file).expect("GDAL's MBTiles opens");
    assert_eq!((b.minzoom, b.maxzoom, b.format.ext()), (7, 10, "png"));
    let state = AppState::new(store, analyst_settings(data)).with_basemap(b);

    // Every tile of the file, at its XYZ address.
    let conn = Connection::open(&file).expect("sqlite");
    let tiles: Vec<(u8, u32, u32, Vec<u8>)> = conn
        .prepare("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect()
        })
        .expect("tiles");
    assert!(tiles.len() > 30, "{} tiles", tiles.len());
    let mut magenta = 0;
    for (z, x, row, bytes) in &tiles {
        let y = (1u32 << z) - 1 - row;
        let (status, ct, body) = get(&state, &format!("/basemap/{z}/{x}/{y}.png")).await;
        assert_eq!(status, StatusCode::OK, "{z}/{x}/{y}");
        assert_eq!(ct.as_deref(), Some("image/png"));
        assert_eq!(
            &body, bytes,
            "tile {z}/{x}/{y} (row {row}) is not the file's"
        );
        let img = image::load_from_memory(&body).expect("a PNG").to_rgba8();
        magenta += img.pixels().filter(|p| p.0 == [255, 0, 255, 255]).count();
    }
    assert!(magenta > 100_000, "{magenta} magenta pixels");

    // Preston (-2.70, 53.76) at z10 is inside the raster: a magenta tile; the same tile
    // with rows not flipped is outside (GDAL wrote no such row): transparent.
    let t = TileCoord::containing(-2.70, 53.76, 10).expect("on the grid");
    let (x, y) = (t.x, t.y);
    let (_, _, body) = get(&state, &format!("/basemap/10/{x}/{y}.png")).await;
    let img = image::load_from_memory(&body).expect("PNG").to_rgba8();
    assert_eq!(
        img.get_pixel(128, 128).0,
        [255, 0, 255, 255],
        "Preston's tile"
    );
    let (status, ct, body) = get(&state, &format!("/basemap/10/{x}/{}.png", 1023 - y)).await;
    assert_eq!((status, ct.as_deref()), (StatusCode::OK, Some("image/png")));
    let img = image::load_from_memory(&body).expect("PNG").to_rgba8();
    assert!(
        img.pixels().all(|p| p.0[3] == 0),
        "a missing tile is transparent"
    );

    // Outside the zoom range, a wrong extension, a bad coordinate, a stray parameter.
    for uri in [
        "/basemap/6/31/20.png",
        "/basemap/11/1000/600.png",
        &format!("/basemap/10/{x}/{y}.mvt"),
    ] {
        assert_eq!(get(&state, uri).await.0, StatusCode::NOT_FOUND, "{uri}");
    }
    for uri in [
        "/basemap/10/5000/1.png",
        "/basemap/10/x/1.png",
        "/basemap/10/1/1.png?z=1",
    ] {
        assert_eq!(get(&state, uri).await.0, StatusCode::BAD_REQUEST, "{uri}");
    }

    // TileJSON 3.0.0 with the file's zooms and bounds, linking the tiles above.
    let (status, _, body) = get(&state, "/basemap.json").await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_slice(&body).expect("json");
    assert!(
        tilejson_3_violations(&doc).is_empty(),
        "{:?}",
        tilejson_3_violations(&doc)
    );
    assert_eq!(
        doc["tiles"][0],
        format!("http://{HOST}/basemap/{{z}}/{{x}}/{{y}}.png")
    );
    assert_eq!(
        (doc["minzoom"].as_u64(), doc["maxzoom"].as_u64()),
        (Some(7), Some(10))
    );
    let bounds: Vec<f64> = doc["bounds"]
        .as_array()
        .expect("bounds")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert!(
        (bounds[0] + 3.2).abs() < 1e-6 && (bounds[3] - 54.3).abs() < 1e-6,
        "{bounds:?}"
    );

    // The map is told.
    let (_, _, body) = get(&state, "/map/api/meta").await;
    let meta: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(meta["basemap"]["tilejson"], "/basemap.json");
}

#[tokio::test]
async fn without_a_basemap_its_routes_say_how_to_get_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = load_or_seed(dir.path()).expect("fixtures");
    let state = AppState::new(store, analyst_settings(dir.path().to_path_buf()));
    for uri in ["/basemap.json", "/basemap/8/125/82.png"] {
        let (status, _, body) = get(&state, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(
            String::from_utf8_lossy(&body).contains("--basemap"),
            "{uri}"
        );
    }
    let (_, _, body) = get(&state, "/map/api/meta").await;
    let meta: Value = serde_json::from_slice(&body).expect("json");
    assert!(meta["basemap"].is_null());
}

/// An MBTiles file made by hand: `format` in its metadata (none when `None`) and one tile.
fn hand_made(path: &Path, format: Option<&str>, tile: &[u8]) {
    let c = Connection::open(path).expect("sqlite");
    c.execute_batch(
        "CREATE TABLE metadata (name text, value text);
         CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob);",
    )
    .expect("schema");
    if let Some(f) = format {
        c.execute("INSERT INTO metadata VALUES ('format', ?1)", [f])
            .expect("meta");
    }
    c.execute("INSERT INTO tiles VALUES (8, 125, 173, ?1)", [tile])
        .expect("tile");
}

#[test]
fn files_that_are_not_raster_mbtiles_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = |n: &str| dir.path().join(n);
    let gz = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0];
    hand_made(&p("vector.mbtiles"), Some("pbf"), &gz);
    hand_made(&p("unlabelled-vector.mbtiles"), None, &gz);
    hand_made(&p("tiff.mbtiles"), Some("tiff"), b"II*\0");
    let c = Connection::open(p("empty.mbtiles")).expect("sqlite");
    c.execute_batch("CREATE TABLE metadata (name text, value text); CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob);")
        .expect("schema");
    drop(c);
    Connection::open(p("other.sqlite"))
        .and_then(|c| c.execute_batch("CREATE TABLE t (a)"))
        .expect("sqlite");
    std::fs::write(p("crimes.csv"), "Crime ID,Month\n").expect("csv");
    std::fs::write(p("map.pmtiles"), b"PMTiles\x03rest").expect("pmtiles");
    for (file, reason) in [
        ("vector.mbtiles", "vector tileset"),
        ("unlabelled-vector.mbtiles", "not PNG, JPEG or WebP"),
        ("tiff.mbtiles", "none of png, jpg, webp"),
        ("empty.mbtiles", "tiles table is empty"),
        ("other.sqlite", "not an MBTiles file"),
        ("crimes.csv", "not an MBTiles file"),
        ("map.pmtiles", "PMTiles is not read yet"),
        ("missing.mbtiles", "cannot read it"),
    ] {
        let e = Basemap::open(&p(file)).expect_err(file).to_string();
        assert!(e.contains(file) && e.contains(reason), "{file}: {e}");
    }
    // A PNG tile without a format in the metadata is sniffed.
    let png = {
        let mut out = std::io::Cursor::new(Vec::new());
        image::RgbaImage::new(4, 4)
            .write_to(&mut out, image::ImageFormat::Png)
            .expect("png");
        out.into_inner()
    };
    hand_made(&p("plain.mbtiles"), None, &png);
    let b = Basemap::open(&p("plain.mbtiles")).expect("sniffed");
    assert_eq!((b.format.ext(), b.minzoom, b.maxzoom), ("png", 8, 8));
}
