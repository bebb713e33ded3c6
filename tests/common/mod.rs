//! Helpers shared by the HTTP test files (each includes this with `mod common;`).

use hotspot::serve::Settings;
use hotspot::serve::auth::{ApiKey, Role, hash_key};

/// The analyst key the HTTP tests send: they check the full (not disclosure-controlled)
/// outputs; `access_http.rs` checks what other roles see.
pub const ANALYST_KEY: &str = "test-analyst-key";

/// Default settings with [`ANALYST_KEY`] as the one analyst key.
pub fn analyst_settings(data: std::path::PathBuf) -> Settings {
    Settings {
        data,
        keys: vec![ApiKey {
            name: "tests".into(),
            role: Role::Analyst,
            sha256: hash_key(ANALYST_KEY),
        }],
        ..Settings::default()
    }
}

/// What a TileJSON document breaks of TileJSON 3.0.0 (the spec's `schema.json` types and
/// required members, and the MUSTs of its text): empty when it conforms. Checked by hand
/// here (no schema validator among the dependencies), member by member as the spec
/// lists them.
#[allow(dead_code)]
pub fn tilejson_3_violations(doc: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    let mut v = Vec::new();
    let Some(o) = doc.as_object() else {
        return vec!["not an object".into()];
    };
    let version = |s: &str| {
        let mut parts = s.splitn(3, '.');
        let num = |p: Option<&str>| {
            p.is_some_and(|p| p.chars().take_while(char::is_ascii_digit).count() > 0)
        };
        num(parts.next()) && num(parts.next()) && num(parts.next())
    };
    for k in ["tilejson", "tiles", "vector_layers"] {
        if !o.contains_key(k) {
            v.push(format!("required member {k} missing"));
        }
    }
    if !o
        .get("tilejson")
        .and_then(Value::as_str)
        .is_some_and(version)
    {
        v.push("tilejson is not a version string".into());
    }
    match o.get("tiles").and_then(Value::as_array) {
        Some(t) if !t.is_empty() => {
            for u in t {
                let ok = u
                    .as_str()
                    .is_some_and(|u| u.starts_with("http://") || u.starts_with("https://"));
                if !ok {
                    v.push(format!("tiles entry {u} is not an absolute URL"));
                }
            }
        }
        _ => v.push("tiles is not a non-empty array".into()),
    }
    if let Some(layers) = o.get("vector_layers") {
        match layers.as_array() {
            None => v.push("vector_layers is not an array".into()),
            Some(ls) => {
                for l in ls {
                    let id = l["id"].is_string();
                    let fields = l["fields"]
                        .as_object()
                        .is_some_and(|f| f.values().all(Value::is_string));
                    if !(id && fields) {
                        v.push(format!(
                            "vector layer {l} lacks a string id or string fields"
                        ));
                    }
                    for z in ["minzoom", "maxzoom"] {
                        if l.get(z).is_some_and(|x| !x.is_u64()) {
                            v.push(format!("vector layer {z} is not an integer"));
                        }
                    }
                }
            }
        }
    }
    for k in [
        "attribution",
        "description",
        "legend",
        "name",
        "scheme",
        "template",
    ] {
        if o.get(k).is_some_and(|x| !x.is_string()) {
            v.push(format!("{k} is not a string"));
        }
    }
    if o.get("version")
        .is_some_and(|x| !x.as_str().is_some_and(version))
    {
        v.push("version is not a version string".into());
    }
    let zoom = |k: &str| -> Option<u64> { o.get(k).and_then(Value::as_u64) };
    for k in ["minzoom", "maxzoom", "fillzoom"] {
        if o.get(k).is_some() && zoom(k).is_none_or(|z| z > 30) {
            v.push(format!("{k} is not an integer from 0 to 30"));
        }
    }
    let (min, max) = (zoom("minzoom").unwrap_or(0), zoom("maxzoom").unwrap_or(30));
    if min > max {
        v.push("minzoom above maxzoom".into());
    }
    let nums =
        |k: &str| -> Option<Vec<f64>> { o.get(k)?.as_array()?.iter().map(Value::as_f64).collect() };
    let bounds = nums("bounds");
    if o.contains_key("bounds")
        && !bounds
            .as_ref()
            .is_some_and(|b| b.len() == 4 && b[0] <= b[2] && b[1] <= b[3])
    {
        v.push("bounds is not [west, south, east, north]".into());
    }
    if o.contains_key("center") {
        match (nums("center"), &bounds) {
            (Some(c), Some(b)) if c.len() == 3 => {
                if !(b[0] <= c[0] && c[0] <= b[2] && b[1] <= c[1] && c[1] <= b[3]) {
                    v.push("center outside bounds".into());
                }
                if c[2].fract() != 0.0 || c[2] < min as f64 || c[2] > max as f64 {
                    v.push("center zoom not an integer between minzoom and maxzoom".into());
                }
            }
            (Some(c), None) if c.len() == 3 => {}
            _ => v.push("center is not [lon, lat, zoom]".into()),
        }
    }
    if o.get("scheme").is_some_and(|s| s != "xyz" && s != "tms") {
        v.push("scheme is not xyz or tms".into());
    }
    for k in ["data", "grids"] {
        if o.get(k)
            .is_some_and(|x| !x.as_array().is_some_and(|a| a.iter().all(Value::is_string)))
        {
            v.push(format!("{k} is not an array of strings"));
        }
    }
    v
}

/// A raster MBTiles basemap of one blank PNG tile (XYZ 9/252/165, the county's middle),
/// written by hand into `dir`, opened as `serve --basemap` opens it.
#[allow(dead_code)]
pub fn tiny_basemap(dir: &std::path::Path) -> hotspot::serve::tiles::basemap::Basemap {
    let path = dir.join("tiny-basemap.mbtiles");
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbaImage::new(4, 4)
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("png");
    let c = rusqlite::Connection::open(&path).expect("sqlite");
    c.execute_batch(
        "CREATE TABLE metadata (name text, value text);
         CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob);
         INSERT INTO metadata VALUES ('format', 'png'), ('minzoom', '6'), ('maxzoom', '12');",
    )
    .expect("schema");
    // MBTiles rows count from the south: row = 2^9 - 1 - 165.
    c.execute(
        "INSERT INTO tiles VALUES (9, 252, 346, ?1)",
        [png.into_inner()],
    )
    .expect("tile");
    drop(c);
    hotspot::serve::tiles::basemap::Basemap::open(&path).expect("the tiny basemap opens")
}
