//! The heatmap tiles through the router, without a socket: pixels decoded from the PNG
//! against a brute-force quartic kernel density over every filtered incident (pixel
//! centre to WGS84 to BNG exactly, no lattice), mapped through the documented ramp;
//! brighter is denser; the filter changes the picture; an empty sea tile is the
//! precomputed transparent PNG; 400/404 and never 500; TileJSON; the legend; ETag/304.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request, StatusCode, header};
use hotspot::model::CrimeType;
use hotspot::serve::tile::{TileCoord, mercator_to_lonlat};
use hotspot::serve::tiles::heatmap::{Ramp, empty_png};
use hotspot::serve::{AppState, Settings, load_or_seed, router};
use hotspot::spatial::bng::wgs84_to_bng;
use serde_json::Value;
use tower::ServiceExt as _;

const HOST: &str = "heat.test:8080";

mod common;
use common::{ANALYST_KEY, analyst_settings};

static STATE: LazyLock<(tempfile::TempDir, AppState)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = load_or_seed(dir.path()).expect("the bundled fixtures load");
    let settings = Settings {
        request_timeout_secs: 900.0,
        ..analyst_settings(dir.path().to_path_buf())
    };
    (dir, AppState::new(store, settings))
});

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

async fn get_with(uri: &str, extra: &[(header::HeaderName, &str)]) -> Reply {
    let mut req = Request::get(uri)
        .header(header::HOST, HOST)
        .header(header::AUTHORIZATION, format!("Bearer {ANALYST_KEY}"));
    for (k, v) in extra {
        req = req.header(k, *v);
    }
    let res = router(STATE.1.clone())
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let (parts, body) = res.into_parts();
    let body = to_bytes(body, usize::MAX).await.expect("body").to_vec();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

async fn get(uri: &str) -> Reply {
    get_with(uri, &[]).await
}

async fn get_json(uri: &str) -> Value {
    let r = get(uri).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{uri}: {}",
        String::from_utf8_lossy(&r.body)
    );
    serde_json::from_slice(&r.body).expect("JSON")
}

fn tile_at(lon: f64, lat: f64, z: u8) -> TileCoord {
    TileCoord::containing(lon, lat, z).expect("in range")
}

fn url(t: TileCoord, query: &str) -> String {
    format!("/tiles/heatmap/{}/{}/{}.png{query}", t.z, t.x, t.y)
}

fn decode(png: &[u8]) -> image::RgbaImage {
    image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .expect("a PNG")
        .to_rgba8()
}

/// Every incident of the store whose type is in `types` (all when empty), summed per
/// location and projected to BNG exactly: the brute-force side of the comparison.
fn points(types: &[CrimeType]) -> Vec<(f64, f64, f64)> {
    let store = STATE.1.store();
    let mut per_loc: HashMap<u32, f64> = HashMap::new();
    for (&loc, &ctype) in store.incidents.loc.iter().zip(&store.incidents.ctype) {
        if types.is_empty() || types.iter().any(|t| *t as u8 == ctype) {
            *per_loc.entry(loc).or_default() += 1.0;
        }
    }
    per_loc
        .into_iter()
        .filter_map(|(loc, w)| {
            let i = loc as usize;
            let (x, y) = wgs84_to_bng(store.locations.lon(i), store.locations.lat(i)).ok()?;
            Some((x, y, w))
        })
        .collect()
}

/// Quartic kernel density (per m²) at BNG (x, y), over every point.
fn brute_density(points: &[(f64, f64, f64)], r: f64, x: f64, y: f64) -> f64 {
    let norm = 3.0 / (std::f64::consts::PI * r * r);
    points
        .iter()
        .map(|&(px, py, w)| {
            let d2 = (px - x).powi(2) + (py - y).powi(2);
            if d2 < r * r {
                w * norm * (1.0 - d2 / (r * r)).powi(2)
            } else {
                0.0
            }
        })
        .sum()
}

/// The exact BNG position of pixel (px, py)'s centre.
fn pixel_centre_bng(t: TileCoord, px: u32, py: u32) -> (f64, f64) {
    let (x0, _, x1, y1) = t.mercator_bounds();
    let k = (x1 - x0) / 256.0;
    let (lon, lat) = mercator_to_lonlat(
        x0 + (f64::from(px) + 0.5) * k,
        y1 - (f64::from(py) + 0.5) * k,
    );
    wgs84_to_bng(lon, lat).expect("inside OSTN15")
}

/// Position along the ramp of an RGBA pixel: the nearest table colour, or None if clear.
fn ramp_index(ramp: Ramp, p: [u8; 4]) -> Option<usize> {
    if p[3] == 0 {
        return None;
    }
    let d = |c: &[u8; 3]| -> i32 {
        (0..3)
            .map(|k| (i32::from(c[k]) - i32::from(p[k])).pow(2))
            .sum()
    };
    (0..256).min_by_key(|&i| d(&ramp.table()[i]))
}

struct Sample {
    density: f64,
    index: Option<usize>,
    luminance: f64,
}

/// Checks ~50 pixels of tile `t` against the brute force; returns the samples.
async fn check_pixels(t: TileCoord, query: &str, types: &[CrimeType], ramp: Ramp) -> Vec<Sample> {
    let legend = get_json(&format!("/tiles/heatmap/legend{query}")).await;
    let r = legend["bandwidth_m"].as_f64().expect("bandwidth");
    let max = legend["max_per_km2"].as_f64().expect("max") / 1e6;
    let reply = get(&url(t, query)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let img = decode(&reply.body);
    let pts = points(types);
    let (mut worst_index, mut worst_alpha, mut samples) = (0usize, 0i32, Vec::new());
    for k in 0..49u32 {
        let (px, py) = (18 + (k % 7) * 37, 18 + (k / 7) * 37);
        let (x, y) = pixel_centre_bng(t, px, py);
        let density = brute_density(&pts, r, x, y);
        let want = ramp.rgba(density / max);
        let got = img.get_pixel(px, py).0;
        let dalpha = (i32::from(got[3]) - i32::from(want[3])).abs();
        worst_alpha = worst_alpha.max(dalpha);
        assert!(dalpha <= 2, "{t:?} ({px}, {py}): alpha {got:?} vs {want:?}");
        let index = ramp_index(ramp, got);
        if let (Some(g), Some(w)) = (index, ramp_index(ramp, want)) {
            worst_index = worst_index.max(g.abs_diff(w));
            assert!(
                g.abs_diff(w) <= 1,
                "{t:?} ({px}, {py}): {got:?} vs {want:?}"
            );
        }
        let luminance =
            0.2126 * f64::from(got[0]) + 0.7152 * f64::from(got[1]) + 0.0722 * f64::from(got[2]);
        samples.push(Sample {
            density,
            index,
            luminance,
        });
    }
    eprintln!("{t:?}: worst ramp index difference {worst_index}, alpha {worst_alpha}");
    samples
}

/// Brighter (further along the ramp, lighter) pixels are denser.
fn assert_monotone(samples: &[Sample]) {
    for a in samples {
        for b in samples {
            if let (Some(ia), Some(ib)) = (a.index, b.index)
                && ia > ib + 1
            {
                assert!(
                    a.density > b.density,
                    "index {ia} > {ib} but {} <= {}",
                    a.density,
                    b.density
                );
                assert!(a.luminance > b.luminance, "viridis lightens along the ramp");
            }
        }
    }
}

#[tokio::test]
async fn pixels_match_a_brute_force_kernel_density() {
    // Preston at z 13 and z 12, Blackpool at z 14 (default filter, default scale).
    let cases = [
        (tile_at(-2.7006, 53.7590, 13), ""),
        (tile_at(-2.7006, 53.7590, 12), ""),
        (tile_at(-3.0500, 53.8175, 14), "?bandwidth=400"),
    ];
    for (t, query) in cases {
        let samples = check_pixels(t, query, &[], Ramp::Viridis).await;
        let shown = samples.iter().filter(|s| s.index.is_some()).count();
        assert!(shown >= 25, "{t:?}: only {shown} coloured samples");
        let distinct: std::collections::BTreeSet<usize> =
            samples.iter().filter_map(|s| s.index).collect();
        assert!(distinct.len() >= 10, "{t:?}: a flat picture {distinct:?}");
        assert_monotone(&samples);
    }
}

#[tokio::test]
async fn a_filter_a_ramp_and_a_fixed_top_are_drawn_as_documented() {
    let t = tile_at(-2.7006, 53.7590, 13);
    let q = "?types=burglary&ramp=magma&max=40";
    let samples = check_pixels(t, q, &[CrimeType::Burglary], Ramp::Magma).await;
    assert!(samples.iter().any(|s| s.index.is_some()));
    let all = get(&url(t, "")).await.body;
    let burglary = get(&url(t, "?types=burglary")).await.body;
    assert_ne!(all, burglary, "changing types changes the picture");
    assert_ne!(burglary, empty_png());
}

#[tokio::test]
async fn tiles_far_from_incidents_are_the_transparent_png() {
    // The Irish Sea west of Blackpool, and the middle of the Atlantic at z 6.
    for t in [
        tile_at(-3.30, 53.82, 12),
        tile_at(-30.0, 50.0, 6),
        TileCoord::new(0, 0, 0).expect("z0"),
    ] {
        let r = get(&url(t, "")).await;
        assert_eq!(r.status, StatusCode::OK);
        if t.z == 0 {
            // The world tile reaches Lancashire (and leaves the OSTN15 grid): a PNG.
            assert_eq!(decode(&r.body).dimensions(), (256, 256));
            continue;
        }
        assert_eq!(r.body, empty_png(), "{t:?}");
        assert!(decode(&r.body).pixels().all(|p| p.0 == [0, 0, 0, 0]));
    }
}

#[tokio::test]
async fn bad_requests_are_4xx_never_500() {
    let busy = url(tile_at(-2.7006, 53.7590, 13), "");
    let cases = [
        ("/tiles/heatmap/13/8192/0.png", StatusCode::BAD_REQUEST),
        ("/tiles/heatmap/13/0/8192.png", StatusCode::BAD_REQUEST),
        ("/tiles/heatmap/23/0/0.png", StatusCode::BAD_REQUEST),
        ("/tiles/heatmap/a/0/0.png", StatusCode::BAD_REQUEST),
        ("/tiles/heatmap/1/-1/0.png", StatusCode::BAD_REQUEST),
        ("/tiles/heatmap/1/0/0.jpg", StatusCode::NOT_FOUND),
        ("/tiles/heatmap/1/0/0.mvt", StatusCode::NOT_FOUND),
        ("/tiles/heatmap/1/0/0", StatusCode::NOT_FOUND),
        ("/tiles/heatmap/1/0.png", StatusCode::NOT_FOUND),
        ("/tiles/heatmap.png", StatusCode::NOT_FOUND),
    ];
    for (uri, want) in cases {
        assert_eq!(get(uri).await.status, want, "{uri}");
    }
    for q in [
        "?foo=1",
        "?from=2023-13",
        "?to=2023-1x",
        "?from=2024-05&to=2023-01",
        "?types=unicorns",
        "?district=Atlantis",
        "?bandwidth=49.9",
        "?bandwidth=20001",
        "?bandwidth=abc",
        "?bandwidth=NaN",
        "?bandwidth=inf",
        "?ramp=jet",
        "?max=0",
        "?max=-3",
        "?max=1e300",
        "?bandwidth=500&bandwidth=600",
    ] {
        for path in [
            busy.clone(),
            "/tiles/heatmap.json".into(),
            "/tiles/heatmap/legend".into(),
        ] {
            let r = get(&format!("{path}{q}")).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}{q}");
            let body: Value = serde_json::from_slice(&r.body).expect("JSON error");
            assert!(body["description"].as_str().is_some_and(|d| !d.is_empty()));
        }
    }
    for ok in [
        "?bandwidth=50",
        "?bandwidth=20000",
        "?ramp=CIVIDIS",
        "?max=0.5",
    ] {
        assert_eq!(
            get(&format!("{busy}{ok}")).await.status,
            StatusCode::OK,
            "{ok}"
        );
    }
}

#[tokio::test]
async fn tilejson_describes_the_layer_and_carries_the_query() {
    let doc = get_json("/tiles/heatmap.json?types=burglary,drugs&bandwidth=500").await;
    assert_eq!(doc["tilejson"], "3.0.0");
    let broken = common::tilejson_3_violations(&doc);
    assert!(broken.is_empty(), "not TileJSON 3.0.0: {broken:?}");
    // The legend is text to show beside the map (it names where the colour stops are).
    let legend = doc["legend"].as_str().expect("legend text");
    assert!(
        legend.contains("per km2") && legend.contains("/tiles/heatmap/legend"),
        "{legend}"
    );
    assert_eq!(
        doc["tiles"][0],
        format!(
            "http://{HOST}/tiles/heatmap/{{z}}/{{x}}/{{y}}.png?bandwidth=500&types=burglary,drugs"
        )
    );
    assert_eq!(
        (doc["minzoom"].as_u64(), doc["maxzoom"].as_u64()),
        (Some(6), Some(18))
    );
    let b: Vec<f64> = doc["bounds"]
        .as_array()
        .expect("bounds")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert_eq!(b.len(), 4);
    assert!(
        b[0] > -3.3 && b[0] < -2.5 && b[2] > -2.5 && b[2] < -1.9,
        "{b:?}"
    );
    assert!(
        b[1] > 53.3 && b[1] < 53.8 && b[3] > 54.0 && b[3] < 54.5,
        "{b:?}"
    );
    let attribution = doc["attribution"].as_str().expect("attribution");
    for must in [
        "Office for National Statistics",
        "OS data",
        "police.uk",
        "Open Government Licence",
    ] {
        assert!(attribution.contains(must), "{must}");
    }
    assert!(doc["name"].is_string() && doc["description"].is_string());
    let plain = get_with(
        "/tiles/heatmap.json",
        &[(
            header::HeaderName::from_static("x-forwarded-proto"),
            "https",
        )],
    )
    .await;
    let plain: Value = serde_json::from_slice(&plain.body).expect("JSON");
    assert_eq!(
        plain["tiles"][0],
        format!("https://{HOST}/tiles/heatmap/{{z}}/{{x}}/{{y}}.png")
    );
}

#[tokio::test]
async fn legend_values_increase_along_the_ramp() {
    for q in ["", "?types=burglary&ramp=cividis", "?bandwidth=800&max=25"] {
        let doc = get_json(&format!("/tiles/heatmap/legend{q}")).await;
        assert_eq!(doc["method"], "quartic kernel density, bandwidth in metres");
        let r = doc["bandwidth_m"].as_f64().expect("bandwidth");
        assert!((50.0..=20_000.0).contains(&r), "{r}");
        let stops = doc["stops"].as_array().expect("stops");
        assert!(stops.len() >= 5);
        let values: Vec<f64> = stops.iter().filter_map(|s| s["per_km2"].as_f64()).collect();
        assert_eq!(values.len(), stops.len());
        assert_eq!(values[0], 0.0);
        assert!(values.windows(2).all(|w| w[1] > w[0]), "{q}: {values:?}");
        let alphas: Vec<u8> = stops
            .iter()
            .map(|s| {
                let c = s["colour"].as_str().expect("colour");
                assert!(c.len() == 9 && c.starts_with('#'), "{c}");
                u8::from_str_radix(&c[7..9], 16).expect("hex alpha")
            })
            .collect();
        assert_eq!(alphas[0], 0, "zero density is transparent");
        assert!(alphas.windows(2).all(|w| w[1] >= w[0]) && alphas[alphas.len() - 1] == 255);
        assert_eq!(doc["max_per_km2"].as_f64(), values.last().copied());
    }
    let fixed = get_json("/tiles/heatmap/legend?bandwidth=800&max=25").await;
    assert_eq!(fixed["bandwidth_m"].as_f64(), Some(800.0));
    assert_eq!(fixed["max_per_km2"].as_f64(), Some(25.0));
}

#[tokio::test]
async fn etag_gives_304_and_tiles_are_public_pngs() {
    let uri = url(tile_at(-2.7006, 53.7590, 12), "?types=drugs");
    let first = get(&uri).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.headers[header::CONTENT_TYPE], "image/png");
    let control = first.headers[header::CACHE_CONTROL]
        .to_str()
        .expect("ascii");
    // These tests send a key, so the answer is for that caller only.
    assert!(
        control.contains("private") && control.contains("max-age="),
        "{control}"
    );
    // Without a key the same tile is public and shared caches may keep it.
    let anonymous = router(STATE.1.clone())
        .oneshot(
            Request::get(uri.as_str())
                .header(header::HOST, HOST)
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(anonymous.status(), StatusCode::OK);
    let control = anonymous.headers()[header::CACHE_CONTROL]
        .to_str()
        .expect("ascii");
    assert!(control.contains("public"), "{control}");
    let etag = first.headers[header::ETAG]
        .to_str()
        .expect("ascii")
        .to_owned();
    let again = get_with(&uri, &[(header::IF_NONE_MATCH, etag.as_str())]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    let other = get_with(&uri, &[(header::IF_NONE_MATCH, "\"nope\"")]).await;
    assert_eq!((other.status, other.body), (StatusCode::OK, first.body));
}

#[tokio::test]
async fn an_ingest_that_replaces_the_store_is_never_served_stale_tiles() {
    let full = (*STATE.1.store()).clone();
    let state = AppState::new(full.clone(), analyst_settings(STATE.0.path().to_path_buf()));
    let fetch = |state: AppState, uri: String| async move {
        let req = Request::get(uri)
            .header(header::AUTHORIZATION, format!("Bearer {ANALYST_KEY}"))
            .body(Body::empty())
            .expect("request");
        let res = router(state).oneshot(req).await.expect("infallible");
        to_bytes(res.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec()
    };
    let uri = url(tile_at(-2.7006, 53.7590, 12), "?bandwidth=1000&max=100");
    let before = fetch(state.clone(), uri.clone()).await;
    // The same data less every other incident, as if re-ingested.
    let mut half = full;
    let keep: Vec<usize> = (0..half.incidents.len()).step_by(2).collect();
    let i = &half.incidents;
    half.incidents = hotspot::analysis::Incidents {
        loc: keep.iter().map(|&k| i.loc[k]).collect(),
        month: keep.iter().map(|&k| i.month[k]).collect(),
        ctype: keep.iter().map(|&k| i.ctype[k]).collect(),
        severity: keep.iter().map(|&k| i.severity[k]).collect(),
        key: Default::default(),
    };
    state.replace_store(half);
    let after = fetch(state.clone(), uri.clone()).await;
    assert_ne!(before, after, "the cached tile of the old store was served");
    assert_eq!(fetch(state, uri).await, after);
}
