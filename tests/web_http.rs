//! The web map's endpoints through the router, without a socket: its files (and nothing
//! else under `/map/`), the metadata, the cells under each method, the details of a cell,
//! an LSOA and a district (checked against the cells' own counts), and bad input as 4xx.
//! The store is the bundled Lancashire fixtures, seeded once.

use std::sync::LazyLock;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use hotspot::serve::{AppState, Settings, load_or_seed, router};
use serde_json::Value;
use tower::ServiceExt as _;

mod common;
use common::{ANALYST_KEY, analyst_settings};

static STATE: LazyLock<AppState> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = load_or_seed(dir.path()).expect("the bundled fixtures load");
    // Kept for the audit log, which analyst requests write to.
    let dir = dir.keep();
    let settings = Settings {
        request_timeout_secs: 900.0,
        ..analyst_settings(dir)
    };
    AppState::new(store, settings)
});

async fn get(uri: &str) -> (StatusCode, String, Vec<u8>) {
    let req = Request::builder()
        .uri(uri)
        .header(header::HOST, "web.test")
        .header(header::AUTHORIZATION, format!("Bearer {ANALYST_KEY}"))
        .body(Body::empty())
        .expect("request");
    let res = router(STATE.clone()).oneshot(req).await.expect("response");
    let status = res.status();
    let ctype = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = to_bytes(res.into_body(), usize::MAX)
        .await
        .expect("body")
        .to_vec();
    (status, ctype, body)
}

async fn json(uri: &str) -> Value {
    let (status, ctype, body) = get(uri).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{uri}: {}",
        String::from_utf8_lossy(&body)
    );
    assert!(ctype.contains("json"), "{uri}: {ctype}");
    serde_json::from_slice(&body).expect("JSON")
}

#[tokio::test]
async fn the_app_and_maplibre_are_served_and_nothing_else() {
    let (status, ctype, body) = get("/map/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("text/html"));
    let html = String::from_utf8_lossy(&body);
    assert!(html.contains("vendor/maplibre-gl.js") && html.contains("src/app.js"));
    let (status, ctype, _) = get("/map/src/app.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("text/javascript"));
    let (status, _, _) = get("/map").await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    for bad in [
        "/map/../Cargo.toml",
        "/map/src/../../Cargo.toml",
        "/map/src/%2e%2e/%2e%2e/Cargo.toml",
        "/map/package.json",
        "/map/tests/browser.test.mjs",
        "/map/vendor/other.js",
    ] {
        let (status, _, _) = get(bad).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
    }
    // The OGC landing page keeps `/`.
    let landing = json("/").await;
    assert!(landing["links"].is_array());
}

#[tokio::test]
async fn meta_lists_types_months_and_districts() {
    let m = json("/map/api/meta").await;
    let types = m["types"].as_array().expect("types");
    assert!(types.len() >= 5);
    let total: u64 = types.iter().filter_map(|t| t["count"].as_u64()).sum();
    assert_eq!(Some(total), m["incidents"].as_u64());
    // What no layer maps, per type and in all: the sample has records without a location.
    let unlocated: u64 = types.iter().filter_map(|t| t["unlocated"].as_u64()).sum();
    assert!(unlocated > 0, "{m}");
    assert!(unlocated <= m["unlocated"].as_u64().unwrap_or(0));
    assert!(types.iter().all(|t| t["outside"].is_u64()));
    assert_eq!(m["districts"].as_array().map(Vec::len), Some(14));
    assert!(m["months"]["first"].as_str() <= m["months"]["last"].as_str());
}

fn features(fc: &Value) -> &Vec<Value> {
    fc["features"].as_array().expect("features")
}

/// The sum of the features' `count` (withheld counts are null and add nothing).
fn feature_total(fc: &Value) -> u64 {
    features(fc)
        .iter()
        .filter_map(|f| f["properties"]["count"].as_u64())
        .sum()
}

/// The sum of a details document's counts by type.
fn by_type_total(d: &Value) -> u64 {
    d["by_type"]
        .as_array()
        .expect("by_type")
        .iter()
        .filter_map(|t| t["count"].as_u64())
        .sum()
}

#[tokio::test]
async fn cells_under_each_method() {
    let counts = json("/map/api/cells?res=8&method=counts").await;
    let gi = json("/map/api/cells?res=8&method=gistar&fdr=true").await;
    let moran = json("/map/api/cells?res=8&method=moran&fdr=false").await;
    let total = feature_total;
    let m = json("/map/api/meta").await;
    assert_eq!(Some(total(&counts)), m["incidents"].as_u64());
    assert_eq!(total(&counts), total(&gi));
    // Gi* finds hot spots in the planted fixtures, and its z orders with its bins.
    let hot: Vec<&Value> = features(&gi)
        .iter()
        .filter(|f| f["properties"]["bin"].as_i64() == Some(3))
        .collect();
    assert!(!hot.is_empty());
    for f in &hot {
        assert!(f["properties"]["value"].as_f64() > Some(2.5));
        assert!(f["properties"]["p"].as_f64() < Some(0.01));
    }
    assert!(
        features(&moran)
            .iter()
            .any(|f| f["properties"]["bin"].as_i64() == Some(2)),
        "a high-high cluster"
    );
    // No incidents: no clusters either (all counts equal).
    let empty = json("/map/api/cells?res=7&method=moran&from=2030-01").await;
    assert!(features(&empty).is_empty());
    let empty = json("/map/api/cells?res=7&method=gistar&types=").await;
    assert!(features(&empty).is_empty());
    // Categories at 7 to 9 only.
    assert!(
        features(&gi)
            .iter()
            .any(|f| f["properties"]["category"].is_string())
    );
    let coarse = json("/map/api/cells?res=6&method=gistar").await;
    assert!(
        features(&coarse)
            .iter()
            .all(|f| f["properties"].get("category").is_none())
    );
    // A narrower filter has fewer incidents.
    let burglary = json("/map/api/cells?res=8&method=counts&types=burglary").await;
    assert!(total(&burglary) > 0 && total(&burglary) < total(&counts));
    let f = &features(&gi)[0];
    let ring = f["geometry"]["coordinates"][0].as_array().expect("ring");
    assert_eq!(ring.first(), ring.last());
}

/// Local Moran on sparse data at a fine resolution: an empty cell among empty neighbours
/// is never drawn as a low-low cluster (esda's folded p-value reads such runs as
/// significant), so a sparse type's answer stays small; genuine clusters remain.
#[tokio::test]
async fn moran_does_not_call_empty_countryside_a_cluster() {
    let fc = json("/map/api/cells?res=10&method=moran&fdr=false&types=bicycle-theft").await;
    let feats = features(&fc);
    let count: std::collections::HashMap<&str, u64> = feats
        .iter()
        .map(|f| {
            (
                f["properties"]["cell"].as_str().expect("cell"),
                f["properties"]["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let mut low_low_empty = 0;
    for f in feats {
        let p = &f["properties"];
        if p["bin"].as_i64() == Some(-2) && p["count"].as_u64() == Some(0) {
            low_low_empty += 1;
            let cell: h3o::CellIndex = p["cell"].as_str().expect("cell").parse().expect("h3");
            assert!(
                cell.grid_disk::<Vec<_>>(1).iter().any(|n| count
                    .get(n.to_string().as_str())
                    .copied()
                    .unwrap_or(0)
                    > 0),
                "{cell}: an empty low-low cell with no incident around it"
            );
        }
    }
    let occupied = feats
        .iter()
        .filter(|f| f["properties"]["count"].as_u64() > Some(0))
        .count();
    assert!(
        feats.len() < occupied * 10 + 1000,
        "{} features for {occupied} occupied cells ({low_low_empty} empty low-low)",
        feats.len()
    );
    assert!(
        feats
            .iter()
            .any(|f| f["properties"]["bin"].as_i64() == Some(2)),
        "high-high remains"
    );
}

/// Road collisions by severity, as the map's "Road collisions by severity" group asks:
/// meta lists the severities with counts; cells, details and the heatmap follow
/// `severity`, which narrows road collisions and nothing else.
#[tokio::test]
async fn road_collisions_by_severity() {
    let m = json("/map/api/meta").await;
    let sev = m["severities"].as_array().expect("severities");
    let count = |slug: &str| -> u64 {
        sev.iter()
            .find(|s| s["slug"] == slug)
            .and_then(|s| s["count"].as_u64())
            .unwrap_or(0)
    };
    let road = m["types"]
        .as_array()
        .expect("types")
        .iter()
        .find(|t| t["slug"] == "road-collision")
        .and_then(|t| t["count"].as_u64())
        .expect("road collisions in the fixtures");
    let sum: u64 = sev.iter().filter_map(|s| s["count"].as_u64()).sum();
    assert_eq!(
        sum, road,
        "severities add up to the road collisions: {sev:?}"
    );
    assert!(count("fatal") > 0 && count("serious") > 0 && count("slight") > count("fatal"));
    assert_eq!(sev[0]["slug"], "fatal", "most severe first");

    let total = feature_total;
    let ksi =
        json("/map/api/cells?res=8&method=counts&types=road-collision&severity=fatal,serious")
            .await;
    assert_eq!(total(&ksi), count("fatal") + count("serious"));
    let slight =
        json("/map/api/cells?res=8&method=gistar&types=road-collision&severity=slight").await;
    assert_eq!(total(&slight), count("slight"));
    // Other types are not narrowed by a severity.
    let burglary = json("/map/api/cells?res=8&method=counts&types=burglary").await;
    let burglary_fatal =
        json("/map/api/cells?res=8&method=counts&types=burglary&severity=fatal").await;
    assert_eq!(total(&burglary), total(&burglary_fatal));

    // Details: road collisions one row per severity, the chosen ones selected, the
    // series only the chosen.
    let top = features(&slight)
        .iter()
        .max_by_key(|f| f["properties"]["count"].as_u64())
        .expect("a cell with slight collisions");
    let cell = top["properties"]["cell"].as_str().expect("cell");
    let d = json(&format!(
        "/map/api/details?kind=cell&id={cell}&types=road-collision&severity=slight"
    ))
    .await;
    assert_eq!(d["total"], top["properties"]["count"]);
    let rows: Vec<&Value> = d["by_type"]
        .as_array()
        .expect("by_type")
        .iter()
        .filter(|t| t["type"] == "road-collision")
        .collect();
    assert!(!rows.is_empty());
    for r in &rows {
        assert_eq!(r["selected"], r["severity"] == "slight", "{r}");
        assert!(
            r["label"]
                .as_str()
                .is_some_and(|l| l.starts_with("Road collision"))
        );
    }
    let slight_row = rows
        .iter()
        .find(|r| r["severity"] == "slight")
        .expect("slight row");
    assert_eq!(slight_row["count"], d["total"]);
    let by_type = by_type_total(&d);
    let all = json(&format!("/map/api/details?kind=cell&id={cell}")).await;
    assert_eq!(
        Some(by_type),
        all["total"].as_u64(),
        "rows still add up to every incident"
    );

    // The heatmap's surface is built from the same incidents.
    let legend = json("/tiles/heatmap/legend?types=road-collision&severity=fatal,serious").await;
    assert_eq!(
        legend["incidents"].as_u64(),
        Some(count("fatal") + count("serious"))
    );
    let r = get("/map/api/cells?severity=catastrophic").await;
    assert_eq!(r.0, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&r.2).contains("severity"));
}

#[tokio::test]
async fn details_agree_with_the_cells() {
    let gi = json("/map/api/cells?res=8&method=gistar").await;
    let top = features(&gi)
        .iter()
        .max_by_key(|f| f["properties"]["count"].as_u64())
        .expect("a cell");
    let cell = top["properties"]["cell"].as_str().expect("cell");
    let d = json(&format!("/map/api/details?kind=cell&id={cell}")).await;
    assert_eq!(d["total"], top["properties"]["count"]);
    let series: u64 = d["series"]
        .as_array()
        .expect("series")
        .iter()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(Some(series), d["total"].as_u64());
    assert_eq!(
        d["months"].as_array().map(Vec::len),
        d["series"].as_array().map(Vec::len)
    );
    let by_type = by_type_total(&d);
    assert_eq!(Some(by_type), d["total"].as_u64());
    assert_eq!(d["gi"]["bin"], top["properties"]["bin"]);
    let dz = d["gi"]["z"].as_f64().expect("z");
    let cz = top["properties"]["value"].as_f64().expect("value");
    assert!((dz - cz).abs() < 1e-3, "{dz} vs {cz}");
    assert!(d["category"].is_string());
    assert!(d["trend"]["direction"].is_string());

    // With a type filter: by_type still lists every type, the series only the filter's.
    let d = json(&format!(
        "/map/api/details?kind=cell&id={cell}&types=burglary"
    ))
    .await;
    let burglary = d["by_type"]
        .as_array()
        .expect("by_type")
        .iter()
        .find(|t| t["type"] == "burglary")
        .expect("burglary");
    assert_eq!(burglary["selected"], true);
    assert_eq!(d["total"], burglary["count"]);

    // A period without data: the same document, empty.
    let d = json(&format!(
        "/map/api/details?kind=cell&id={cell}&from=2030-01"
    ))
    .await;
    assert_eq!(d["total"], 0);
    assert_eq!(d["id"], cell);
    assert!(d["months"].as_array().is_some_and(Vec::is_empty));

    let districts = json("/collections/districts/items?limit=100").await;
    let first = &features(&districts)[0]["properties"];
    let code = first["code"].as_str().expect("code");
    let d = json(&format!("/map/api/details?kind=district&id={code}")).await;
    assert_eq!(d["total"], first["count"]);
    assert!(d["gi"].is_null());

    let lsoas = json("/collections/lsoas/items?limit=1").await;
    let first = &features(&lsoas)[0]["properties"];
    let code = first["code"].as_str().expect("code");
    let d = json(&format!("/map/api/details?kind=lsoa&id={code}")).await;
    assert_eq!(d["total"], first["count"]);
    assert!(d["gi"]["z"].is_number());
}

#[tokio::test]
async fn bad_input_is_4xx_never_500() {
    for uri in [
        "/map/api/cells?res=11",
        "/map/api/cells?res=5",
        "/map/api/cells?res=eight",
        "/map/api/cells?method=kde",
        "/map/api/cells?fdr=maybe",
        "/map/api/cells?types=nonsense",
        "/map/api/cells?from=2024-13",
        "/map/api/cells?from=2024-06&to=2024-01",
        "/map/api/cells?bogus=1",
        "/map/api/cells?res=8&res=9",
        "/map/api/meta?x=1",
        "/map/api/details",
        "/map/api/details?kind=cell",
        "/map/api/details?kind=cell&id=zzz",
        "/map/api/details?kind=cell&id=8029fffffffffff",
        "/map/api/details?kind=planet&id=1",
        "/map/api/details?kind=lsoa&id=E99999999",
        "/map/api/details?kind=district&id=Atlantis",
        "/map/api/details?kind=district&id=%ff",
        "/map/api/nothing",
    ] {
        let (status, _, body) = get(uri).await;
        assert!(
            status.is_client_error(),
            "{uri}: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
}

async fn public_json(uri: &str) -> Value {
    let req = Request::builder()
        .uri(uri)
        .header(header::HOST, "web.test")
        .body(Body::empty())
        .expect("request");
    let res = router(STATE.clone()).oneshot(req).await.expect("response");
    assert_eq!(res.status(), StatusCode::OK, "{uri}");
    let body = to_bytes(res.into_body(), usize::MAX).await.expect("body");
    serde_json::from_slice(&body).expect("JSON")
}

fn places_of(doc: &Value) -> &Vec<Value> {
    doc["places"].as_array().expect("places")
}

#[tokio::test]
async fn place_search_finds_postcodes_towns_and_districts() {
    let d = json("/map/api/places?q=bb11ae").await;
    let p = &places_of(&d)[0];
    assert_eq!(
        (p["name"].as_str(), p["kind"].as_str()),
        (Some("BB1 1AE"), Some("postcode"))
    );
    // OS Code-Point Open's BB1 1AE (369997, 427645) through OSTN15: in Blackburn with
    // Darwen's polygon, within 2 km of GeoNames' point for Blackburn.
    let (lon, lat) = (p["lon"].as_f64().unwrap(), p["lat"].as_f64().unwrap());
    let g = &STATE.store().geography;
    let (_, d) = g.locate(lon, lat);
    assert_eq!(g.districts.names[usize::from(d)], "Blackburn with Darwen");
    let town = json("/map/api/places?q=Blackburn").await;
    let town = places_of(&town)
        .iter()
        .find(|p| p["kind"] == "town")
        .expect("Blackburn");
    let km = |a: f64, b: f64| {
        let dx = (a - town["lon"].as_f64().unwrap()) * 111.32 * lat.to_radians().cos();
        let dy = (b - town["lat"].as_f64().unwrap()) * 110.57;
        dx.hypot(dy)
    };
    assert!(km(lon, lat) < 2.0, "{lon} {lat}: {} km", km(lon, lat));
    let d = json("/map/api/places?q=Lancaster").await;
    let kinds: Vec<&str> = places_of(&d)
        .iter()
        .take(2)
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["district", "town"]);
    assert!(
        places_of(&d)[0]["bbox"]
            .as_array()
            .is_some_and(|b| b.len() == 4)
    );
    let d = json("/map/api/places?q=Garstang").await;
    assert_eq!(places_of(&d)[0]["district"], "Wyre");
    assert!(places_of(&json("/map/api/places?q=").await).is_empty());
    for bad in ["limit=0", "limit=26", "limit=x", "q=a&zoom=3"] {
        let (status, _, _) = get(&format!("/map/api/places?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let long = "x".repeat(101);
    assert_eq!(
        get(&format!("/map/api/places?q={long}")).await.0,
        StatusCode::BAD_REQUEST
    );
}

/// Streets come from the data's snap points; the public is offered a street only when
/// its snap points hold at least k incidents outside the sensitive categories, checked
/// against a brute-force count over the store for every street name in the data.
#[tokio::test]
async fn public_street_suggestions_never_reveal_a_street_with_fewer_than_k_incidents() {
    use std::collections::{BTreeMap, BTreeSet};
    let store = STATE.store();
    let d = &STATE.settings().disclosure;
    let (k, sensitive) = (d.k, d.sensitive_types());
    let locs = &store.locations;
    let name_of = |i: usize| {
        let t = locs.street[i].trim();
        t.strip_prefix("On or near ")
            .unwrap_or(t)
            .trim()
            .to_string()
    };
    let district_of = |i: usize| {
        store
            .geography
            .districts
            .names
            .get(usize::from(locs.district[i]))
            .cloned()
    };
    let mut all: BTreeMap<(String, Option<String>), (u64, u64)> = BTreeMap::new();
    for i in 0..locs.len() {
        if !name_of(i).is_empty() {
            all.entry((name_of(i), district_of(i))).or_default();
        }
    }
    for (&l, &t) in store.incidents.loc.iter().zip(&store.incidents.ctype) {
        let key = (name_of(l as usize), district_of(l as usize));
        if let Some(c) = all.get_mut(&key) {
            c.0 += 1;
            if !sensitive.contains_code(t) {
                c.1 += 1;
            }
        }
    }
    let names: BTreeSet<&String> = all.keys().map(|(n, _)| n).collect();
    assert!(names.len() > 50, "{} street names", names.len());
    let (mut hidden, mut shown) = (0, 0);
    for name in names.iter().step_by((names.len() / 60).max(1)) {
        let q = name
            .replace(' ', "%20")
            .replace('&', "%26")
            .replace('\'', "%27");
        let uri = format!("/map/api/places?q={q}&limit=25");
        let streets = |doc: &Value| -> BTreeSet<(String, Option<String>)> {
            places_of(doc)
                .iter()
                .filter(|p| p["kind"] == "street" && p["name"] == name.as_str())
                .map(|p| (name.to_string(), p["district"].as_str().map(str::to_string)))
                .collect()
        };
        let analyst = json(&uri).await;
        if places_of(&analyst).len() == 25 {
            continue; // truncated: the set is not the whole answer
        }
        let a = streets(&analyst);
        let expected_all: BTreeSet<_> = all.keys().filter(|(n, _)| n == *name).cloned().collect();
        assert_eq!(a, expected_all, "analyst, {name}");
        let p = streets(&public_json(&uri).await);
        let expected: BTreeSet<_> = a.iter().filter(|key| all[*key].1 >= k).cloned().collect();
        assert_eq!(p, expected, "public, {name}");
        hidden += a.len() - p.len();
        shown += p.len();
    }
    assert!(hidden > 0 && shown > 0, "hidden {hidden}, shown {shown}");
}

/// A GET as the public (no key): status and JSON body (or null).
async fn public_get(uri: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .uri(uri)
        .header(header::HOST, "web.test")
        .body(Body::empty())
        .expect("request");
    let res = router(STATE.clone()).oneshot(req).await.expect("response");
    let status = res.status();
    let body = to_bytes(res.into_body(), usize::MAX).await.expect("body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn labels_of(doc: &Value) -> &Vec<Value> {
    doc["labels"].as_array().expect("labels")
}

fn lon_lat(v: &Value) -> (f64, f64) {
    (
        v["lon"].as_f64().expect("lon"),
        v["lat"].as_f64().expect("lat"),
    )
}

/// The bundled GeoNames towns and villages: (name, lon, lat), read from the file the
/// server compiles in.
fn geonames() -> Vec<(String, f64, f64)> {
    include_str!("../boundaries/places/geonames.csv")
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((
                f.first()?.to_string(),
                f.get(1)?.parse().ok()?,
                f.get(2)?.parse().ok()?,
            ))
        })
        .collect()
}

/// "On or near X" -> "X", as police.uk names its snap points.
fn street_of(text: &str) -> String {
    let t = text.trim();
    t.strip_prefix("On or near ")
        .unwrap_or(t)
        .trim()
        .to_string()
}

fn inside(b: [f64; 4], (lon, lat): (f64, f64)) -> bool {
    (b[0]..=b[2]).contains(&lon) && (b[1]..=b[3]).contains(&lat)
}

/// Districts once each inside their own polygon, every bundled town inside the box and
/// nothing outside it; streets only from zoom 15, inside the box, at most 400.
#[tokio::test]
async fn labels_name_districts_and_towns_inside_the_box_and_streets_from_zoom_15() {
    use geo::{Contains, Point};
    let g = &STATE.store().geography;
    let m = json("/map/api/meta").await;
    let bbox_of = |name: &str| -> [f64; 4] {
        let d = m["districts"]
            .as_array()
            .expect("districts")
            .iter()
            .find(|d| d["name"] == name)
            .expect(name);
        let b: Vec<f64> = d["bbox"]
            .as_array()
            .expect("bbox")
            .iter()
            .map(|v| v.as_f64().expect("number"))
            .collect();
        [b[0], b[1], b[2], b[3]]
    };
    let (p, b) = (bbox_of("Preston"), bbox_of("Blackpool"));
    let bbox = [
        p[0].min(b[0]),
        p[1].min(b[1]),
        p[2].max(b[2]),
        p[3].max(b[3]),
    ];
    let q = |b: [f64; 4], zoom: f64| {
        format!(
            "/map/api/labels?bbox={},{},{},{}&zoom={zoom}",
            b[0], b[1], b[2], b[3]
        )
    };
    let doc = json(&q(bbox, 10.0)).await;
    let labels = labels_of(&doc);
    for l in labels {
        assert!(inside(bbox, lon_lat(l)), "outside the box: {l}");
        assert_ne!(l["kind"], "street", "no street below zoom 15: {l}");
        assert!(l["rank"].is_u64(), "{l}");
    }
    let districts: Vec<&str> = labels
        .iter()
        .filter(|l| l["kind"] == "district")
        .map(|l| l["name"].as_str().expect("name"))
        .collect();
    assert!(
        districts.contains(&"Preston") && districts.contains(&"Blackpool"),
        "{districts:?}"
    );
    // Every bundled town in the box, and no other.
    let mut expected: Vec<String> = geonames()
        .into_iter()
        .filter(|(_, lon, lat)| inside(bbox, (*lon, *lat)))
        .map(|(n, _, _)| n)
        .collect();
    expected.sort();
    let mut towns: Vec<String> = labels
        .iter()
        .filter(|l| l["kind"] == "town")
        .map(|l| l["name"].as_str().expect("name").to_string())
        .collect();
    towns.sort();
    assert!(towns.contains(&"Preston".to_string()) && towns.contains(&"Blackpool".to_string()));
    assert_eq!(towns, expected);
    // Larger ranks first: districts, then towns by population, then streets.
    let label = |kind: &str, name: &str| {
        labels
            .iter()
            .find(|l| l["kind"] == kind && l["name"] == name)
            .expect(name)
    };
    let rank = |kind: &str, name: &str| label(kind, name)["rank"].as_u64().expect("rank");
    assert!(rank("district", "Blackpool") > rank("town", "Preston"));
    let pop = |name: &str| {
        label("town", name)["population"]
            .as_u64()
            .expect("population")
    };
    assert!(pop("Preston") > pop("Blackpool"));
    assert!(rank("town", "Preston") > rank("town", "Blackpool"));

    // The whole county: each of the 14 districts once, inside its own polygon.
    let county = json("/map/api/labels?bbox=-3.3,53.4,-1.9,54.3&zoom=8").await;
    let ds: Vec<&Value> = labels_of(&county)
        .iter()
        .filter(|l| l["kind"] == "district")
        .collect();
    assert_eq!(ds.len(), 14);
    for d in ds {
        let i = g
            .districts
            .names
            .iter()
            .position(|n| d["name"] == n.as_str())
            .expect("a district");
        let (lon, lat) = lon_lat(d);
        assert!(
            g.districts.polygons[i].contains(&Point::new(lon, lat)),
            "{d}"
        );
    }
    // Nowhere near: nothing.
    assert!(labels_of(&json("/map/api/labels?bbox=10,10,11,11&zoom=16").await).is_empty());

    // Streets: a box around the busiest snap point, at zoom 14.9 none, at 16 some.
    let store = STATE.store();
    let mut per_loc = vec![0u64; store.locations.len()];
    for &l in &store.incidents.loc {
        per_loc[l as usize] += 1;
    }
    let busiest = (0..per_loc.len())
        .max_by_key(|&i| per_loc[i])
        .expect("a location");
    let (x, y) = (store.locations.lon(busiest), store.locations.lat(busiest));
    let small = [x - 0.01, y - 0.006, x + 0.01, y + 0.006];
    let d = json(&q(small, 14.9)).await;
    assert!(labels_of(&d).iter().all(|l| l["kind"] != "street"));
    let d = json(&q(small, 16.0)).await;
    let streets: Vec<&Value> = labels_of(&d)
        .iter()
        .filter(|l| l["kind"] == "street")
        .collect();
    assert!(
        !streets.is_empty() && streets.len() <= 400,
        "{}",
        streets.len()
    );
    // Streets rank below every town (the county's towns, from the county answer).
    let lowest_town = labels_of(&county)
        .iter()
        .filter(|l| l["kind"] == "town")
        .filter_map(|l| l["rank"].as_u64())
        .min()
        .expect("towns");
    for s in &streets {
        let r = s["rank"].as_u64().expect("rank");
        assert!(r >= 1 && r < lowest_town, "{s}");
    }
    // Every street label is a snap point of that street, in the box.
    for s in &streets {
        let (lon, lat) = lon_lat(s);
        assert!(inside(small, (lon, lat)), "{s}");
        let at = (0..store.locations.len()).any(|i| {
            (store.locations.lon(i) - lon).abs() < 1e-9
                && (store.locations.lat(i) - lat).abs() < 1e-9
                && s["name"] == street_of(&store.locations.street[i]).as_str()
        });
        assert!(at, "not at a snap point of its street: {s}");
    }
    // A wide box at street zoom is capped.
    let wide = json("/map/api/labels?bbox=-3.3,53.4,-1.9,54.3&zoom=15").await;
    let n = labels_of(&wide)
        .iter()
        .filter(|l| l["kind"] == "street")
        .count();
    assert!(n > 0 && n <= 400, "{n}");

    for (bad, param) in [
        ("zoom=10", "bbox"),
        ("bbox=-3,53,-2,54", "zoom"),
        ("bbox=-3,53,-2&zoom=10", "bbox"),
        ("bbox=-3,53,-2,54,1&zoom=10", "bbox"),
        ("bbox=-2,53,-3,54&zoom=10", "bbox"),
        ("bbox=-3,54,-2,54&zoom=10", "bbox"),
        ("bbox=-3,53,-2,NaN&zoom=10", "bbox"),
        ("bbox=-3,53,-2,inf&zoom=10", "bbox"),
        ("bbox=-190,53,-2,54&zoom=10", "bbox"),
        ("bbox=-3,-95,-2,54&zoom=10", "bbox"),
        ("bbox=-3,53,-2,54&zoom=25", "zoom"),
        ("bbox=-3,53,-2,54&zoom=-1", "zoom"),
        ("bbox=-3,53,-2,54&zoom=x", "zoom"),
        ("bbox=-3,53,-2,54&zoom=10&q=a", "q"),
    ] {
        let (status, _, body) = get(&format!("/map/api/labels?{bad}")).await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body.contains(param), "{bad}: {body}");
    }
}

/// Public street labels: every one is a street with at least k incidents outside the
/// sensitive categories at its snap points (a brute-force count over the store), at a snap
/// point holding such an incident; some streets the analyst sees are hidden.
#[tokio::test]
async fn public_street_labels_never_show_a_street_with_fewer_than_k_incidents() {
    use std::collections::BTreeMap;
    let store = STATE.store();
    let d = &STATE.settings().disclosure;
    let (k, sensitive) = (d.k, d.sensitive_types());
    let locs = &store.locations;
    let mut public: BTreeMap<(String, u8), u64> = BTreeMap::new();
    let mut at_loc = vec![(0u64, 0u64); locs.len()];
    for (&l, &t) in store.incidents.loc.iter().zip(&store.incidents.ctype) {
        let l = l as usize;
        at_loc[l].0 += 1;
        if !sensitive.contains_code(t) {
            at_loc[l].1 += 1;
            *public
                .entry((street_of(&locs.street[l]), locs.district[l]))
                .or_default() += 1;
        }
    }
    // The (street, district) a label stands for: a snap point of that name at its point.
    let key_at = |name: &str, (lon, lat): (f64, f64)| -> Vec<(String, u8, usize)> {
        (0..locs.len())
            .filter(|&j| {
                (locs.lon(j) - lon).abs() < 1e-9
                    && (locs.lat(j) - lat).abs() < 1e-9
                    && street_of(&locs.street[j]) == name
            })
            .map(|j| (name.to_string(), locs.district[j], j))
            .collect()
    };
    let passes = |name: &str, d: u8| public.get(&(name.to_string(), d)).copied().unwrap_or(0) >= k;
    // Boxes around the ten busiest snap points, and ten spread over the rest.
    let mut order: Vec<usize> = (0..locs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(at_loc[i].0));
    let step = (order.len() / 10).max(1);
    let centres: Vec<usize> = order
        .iter()
        .take(10)
        .chain(order.iter().step_by(step))
        .copied()
        .collect();
    let (mut shown, mut hidden) = (0, 0);
    for &i in &centres {
        let (x, y) = (locs.lon(i), locs.lat(i));
        let uri = format!(
            "/map/api/labels?bbox={},{},{},{}&zoom=16",
            x - 0.012,
            y - 0.008,
            x + 0.012,
            y + 0.008
        );
        let streets = |doc: &Value| -> Vec<(String, (f64, f64))> {
            labels_of(doc)
                .iter()
                .filter(|l| l["kind"] == "street")
                .map(|l| (l["name"].as_str().expect("name").to_string(), lon_lat(l)))
                .collect()
        };
        let analyst = streets(&json(&uri).await);
        let (status, doc) = public_get(&uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        let public_labels = streets(&doc);
        for (name, at) in &public_labels {
            // A snap point of that name at the label's point whose (street, district)
            // passes the rule, holding a public incident.
            let here = key_at(name, *at);
            assert!(!here.is_empty(), "{name} is at no snap point of its own");
            assert!(
                here.iter()
                    .any(|(n, d, j)| at_loc[*j].1 > 0 && passes(n, *d)),
                "public label {name}: fewer than {k} public incidents, or a point without one"
            );
        }
        // The analyst's streets that fail the rule are missing for the public (a label
        // of the same name then belongs to another district that passes).
        for (name, at) in &analyst {
            let here = key_at(name, *at);
            assert!(!here.is_empty(), "{name} is at no snap point of its own");
            if here.iter().all(|(n, d, _)| !passes(n, *d)) {
                hidden += 1;
                let districts: Vec<u8> = here.iter().map(|x| x.1).collect();
                assert!(
                    public_labels.iter().all(|(n, pat)| n != name
                        || key_at(n, *pat).iter().all(|x| !districts.contains(&x.1))),
                    "{name} shown to the public"
                );
            }
        }
        shown += public_labels.len();
    }
    assert!(shown > 0 && hidden > 0, "shown {shown}, hidden {hidden}");
}

/// Brute-force counts per type slug and per road collision severity slug over the store,
/// for a district (or all) and a period.
fn brute_types(
    district: Option<u8>,
    from: u16,
    to: u16,
) -> (
    std::collections::BTreeMap<String, u64>,
    std::collections::BTreeMap<String, u64>,
) {
    use hotspot::model::{CrimeType, Severity};
    let store = STATE.store();
    let inc = &store.incidents;
    let (mut types, mut sev) = (
        std::collections::BTreeMap::new(),
        std::collections::BTreeMap::new(),
    );
    for i in 0..inc.len() {
        let l = inc.loc[i] as usize;
        if district.is_some_and(|d| store.locations.district[l] != d)
            || inc.month[i] < from
            || inc.month[i] > to
        {
            continue;
        }
        let t = CrimeType::ALL[usize::from(inc.ctype[i])];
        *types.entry(t.slug().to_string()).or_insert(0) += 1;
        if t == CrimeType::RoadCollision {
            let s = Severity::from_code(inc.severity[i]);
            *sev.entry(s.slug().to_string()).or_insert(0) += 1;
        }
    }
    (types, sev)
}

fn slug_counts(doc: &Value, key: &str) -> Vec<(String, Value)> {
    doc[key]
        .as_array()
        .expect(key)
        .iter()
        .map(|t| {
            (
                t["slug"].as_str().expect("slug").to_string(),
                t["count"].clone(),
            )
        })
        .collect()
}

/// The type counts follow the period and district, not the type filter: for the analyst
/// they equal a brute-force count over the store; for the public each is withheld (null)
/// or within ±2 of the truth and at least k, never 1 to k - 1, and equal to what the
/// public details of that district publish.
#[tokio::test]
async fn type_counts_follow_period_and_district_and_are_disclosure_controlled() {
    use hotspot::model::{CrimeType, Month};
    let store = STATE.store();
    let k = STATE.settings().disclosure.k;
    let (first, last) = store.month_range().expect("months");
    let (from, to) = (
        (first.index() + 1).min(last.index()),
        (first.index() + 3).min(last.index()),
    );
    let (fm, tm) = (Month::from_index(from), Month::from_index(to));
    let g = &store.geography;
    let preston = g.district_index("Preston").expect("Preston");
    let meta = json("/map/api/meta").await;
    let listed: Vec<String> = slug_counts(&meta, "types")
        .into_iter()
        .map(|t| t.0)
        .collect();
    let listed_sev: Vec<String> = slug_counts(&meta, "severities")
        .into_iter()
        .map(|t| t.0)
        .collect();
    let (mut withheld, mut visible) = (0, 0);
    for (district, q) in [
        (
            Some(preston),
            format!("district=Preston&from={fm}&to={tm}&types=burglary"),
        ),
        (None, format!("from={fm}&to={tm}&severity=fatal")),
        (Some(preston), "district=Preston".to_string()),
    ] {
        let (lo, hi) = if q.contains("from") {
            (from, to)
        } else {
            (first.index(), last.index())
        };
        let (truth, truth_sev) = brute_types(district, lo, hi);
        let uri = format!("/map/api/types?{q}");
        let a = json(&uri).await;
        assert!(a["disclosure"].is_null());
        let types = slug_counts(&a, "types");
        // Every type of the data, whatever `types` says.
        assert_eq!(
            types.iter().map(|t| t.0.clone()).collect::<Vec<_>>(),
            listed,
            "{uri}"
        );
        for (slug, c) in &types {
            assert_eq!(
                c.as_u64(),
                Some(truth.get(slug).copied().unwrap_or(0)),
                "analyst {uri} {slug}"
            );
        }
        let sev = slug_counts(&a, "severities");
        assert_eq!(
            sev.iter().map(|t| t.0.clone()).collect::<Vec<_>>(),
            listed_sev
        );
        for (slug, c) in &sev {
            assert_eq!(
                c.as_u64(),
                Some(truth_sev.get(slug).copied().unwrap_or(0)),
                "analyst {uri} {slug}"
            );
        }
        let (status, p) = public_get(&uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(p["disclosure"]["k"].as_u64(), Some(k));
        let check = |slug: &str, c: &Value, truth: u64| {
            match c.as_u64() {
                None => assert!(c.is_null(), "{uri} {slug}: {c}"),
                Some(n) => {
                    assert!(
                        n == 0 || n >= k,
                        "public {uri} {slug}: {n} is from 1 to k - 1"
                    );
                    assert!(
                        n.abs_diff(truth) <= 2,
                        "public {uri} {slug}: {n} vs {truth}"
                    );
                    assert_eq!(n == 0, truth == 0, "zeros stay zero: {uri} {slug}");
                }
            }
            c.is_null()
        };
        for (slug, c) in slug_counts(&p, "types") {
            let t = truth.get(&slug).copied().unwrap_or(0);
            if check(&slug, &c, t) {
                withheld += 1;
            } else {
                visible += 1;
            }
        }
        for (slug, c) in slug_counts(&p, "severities") {
            check(&slug, &c, truth_sev.get(&slug).copied().unwrap_or(0));
        }
        // The same numbers as the public details of the district under every type.
        if district.is_some() {
            let every: Vec<&str> = CrimeType::ALL.iter().map(|t| t.slug()).collect();
            let period = if q.contains("from") {
                format!("&from={fm}&to={tm}")
            } else {
                String::new()
            };
            let (status, d) = public_get(&format!(
                "/map/api/details?kind=district&id=Preston&types={}{period}",
                every.join(",")
            ))
            .await;
            assert_eq!(status, StatusCode::OK);
            for t in d["by_type"].as_array().expect("by_type") {
                let (slug, count) = match t["severity"].as_str() {
                    Some(s) => (s, &t["count"]),
                    None => (t["type"].as_str().expect("type"), &t["count"]),
                };
                let key = if t["severity"].is_string() {
                    "severities"
                } else {
                    "types"
                };
                if let Some((_, c)) = slug_counts(&p, key).into_iter().find(|x| x.0 == slug) {
                    assert_eq!(&c, count, "details and types disagree on {slug}");
                }
            }
        }
    }
    assert!(
        visible > 0 && withheld > 0,
        "visible {visible}, withheld {withheld}"
    );
    for (bad, param) in [
        ("district=Atlantis", "district"),
        ("from=2024-13", "from"),
        ("types=nonsense", "types"),
        ("zoom=3", "zoom"),
    ] {
        let (status, _, body) = get(&format!("/map/api/types?{bad}")).await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body.contains(param), "{bad}: {body}");
    }
}

/// A cell's details name where it is: the LSOA and district holding its centre (a
/// brute-force point-in-polygon over the 2011 LSOAs), its incidents' most common street,
/// the nearest bundled town within 5 km; below analyst the street only under the k rule,
/// also when the cell itself is withheld.
#[tokio::test]
async fn details_name_a_cell_by_street_lsoa_and_district() {
    use geo::{Contains, Point};
    use std::collections::BTreeMap;
    let store = STATE.store();
    let g = &store.geography;
    let d = &STATE.settings().disclosure;
    let (k, sensitive) = (d.k, d.sensitive_types());
    let locs = &store.locations;
    let res = h3o::Resolution::Nine;
    // Incidents per (street, district) and per location: all and public.
    let mut public: BTreeMap<(String, u8), u64> = BTreeMap::new();
    let mut at_loc = vec![(0u64, 0u64); locs.len()];
    for (&l, &t) in store.incidents.loc.iter().zip(&store.incidents.ctype) {
        let l = l as usize;
        at_loc[l].0 += 1;
        if !sensitive.contains_code(t) {
            at_loc[l].1 += 1;
            *public
                .entry((street_of(&locs.street[l]), locs.district[l]))
                .or_default() += 1;
        }
    }
    let cells = json("/map/api/cells?res=9&method=counts").await;
    let mut feats: Vec<&Value> = features(&cells).iter().collect();
    feats.sort_by_key(|f| std::cmp::Reverse(f["properties"]["count"].as_u64()));
    // The busiest cells, and some with fewer than k incidents (withheld for the public).
    let small: Vec<&Value> = feats
        .iter()
        .copied()
        .filter(|f| {
            f["properties"]["count"]
                .as_u64()
                .is_some_and(|c| c > 0 && c < k)
        })
        .take(8)
        .collect();
    assert!(!small.is_empty());
    let towns = geonames();
    let (mut checked, mut withheld_named) = (0, 0);
    for f in feats.iter().take(12).chain(&small) {
        let id = f["properties"]["cell"].as_str().expect("cell");
        let cell: h3o::CellIndex = id.parse().expect("h3");
        let a = json(&format!("/map/api/details?kind=cell&id={id}")).await;
        assert_eq!(a["id"], id);
        assert_eq!(a["cell"], format!("H3 cell {id} (resolution 9)"));
        let c = h3o::LatLng::from(cell);
        let pt = Point::new(c.lng(), c.lat());
        let hits: Vec<usize> = (0..g.lsoas.len())
            .filter(|&i| g.lsoas.polygons[i].contains(&pt))
            .collect();
        let place = &a["place"];
        let name = a["name"].as_str().expect("name");
        if let [i] = hits[..] {
            let district = &g.districts.names[usize::from(g.lsoa_district[i])];
            assert_eq!(place["lsoa"], g.lsoas.codes[i].as_str(), "{id}");
            assert_eq!(place["lsoa_name"], g.lsoas.names[i].as_str(), "{id}");
            assert_eq!(place["district"], district.as_str(), "{id}");
            assert!(
                name.ends_with(&format!("{}, {district}", g.lsoas.names[i])),
                "{id}: {name}"
            );
            checked += 1;
        }
        // The street: one with the most incidents among the cell's snap points.
        let mut per: BTreeMap<(String, u8), u64> = BTreeMap::new();
        for (i, &(all, _)) in at_loc.iter().enumerate() {
            let s = street_of(&locs.street[i]);
            if locs.cell(i, res) == Some(cell) && !s.is_empty() {
                *per.entry((s, locs.district[i])).or_default() += all;
            }
        }
        let top = per.values().copied().max();
        match place["street"].as_str() {
            Some(s) => {
                assert!(name.starts_with(&format!("Near {s}, ")), "{name}");
                let n = per
                    .iter()
                    .filter(|(key, _)| key.0 == s)
                    .map(|(_, &n)| n)
                    .max();
                assert_eq!(n, top, "{id}: {s} is not the most common street");
            }
            None => assert!(top.is_none(), "{id}: a street was expected"),
        }
        // The nearest bundled town within 5 km.
        let km = |lon: f64, lat: f64| {
            let dx = (lon - c.lng()) * 111.32 * c.lat().to_radians().cos();
            let dy = (lat - c.lat()) * 110.57;
            dx.hypot(dy)
        };
        let near = towns
            .iter()
            .map(|(n, lon, lat)| (n, km(*lon, *lat)))
            .min_by(|x, y| x.1.total_cmp(&y.1));
        match (place["town"].as_str(), near) {
            (Some(t), Some((n, dist))) => {
                assert!(dist < 5.05, "{id}: {t} at {dist} km");
                let t_dist = towns
                    .iter()
                    .find(|x| x.0 == t)
                    .map(|x| km(x.1, x.2))
                    .expect("a bundled town");
                assert!(
                    t_dist <= dist + 0.05,
                    "{id}: {t} ({t_dist} km) but {n} ({dist} km)"
                );
            }
            (None, Some((_, dist))) => assert!(dist > 4.95, "{id}: a town {dist} km away"),
            (t, None) => assert!(t.is_none()),
        }

        // The public: the same place, the street only under the k rule.
        let (status, p) = public_get(&format!("/map/api/details?kind=cell&id={id}")).await;
        assert_eq!(status, StatusCode::OK);
        for key in ["lsoa", "lsoa_name", "district", "town"] {
            assert_eq!(p["place"][key], place[key], "{id} {key}");
        }
        assert_eq!(p["cell"], a["cell"]);
        if let Some(s) = p["place"]["street"].as_str() {
            let passes = (0..locs.len()).any(|i| {
                locs.cell(i, res) == Some(cell)
                    && street_of(&locs.street[i]) == s
                    && public
                        .get(&(s.to_string(), locs.district[i]))
                        .copied()
                        .unwrap_or(0)
                        >= k
            });
            assert!(
                passes,
                "{id}: public street {s} has fewer than {k} public incidents"
            );
            assert!(
                p["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(&format!("Near {s}, ")))
            );
        } else if p["place"]["lsoa_name"].is_string() {
            assert!(
                !p["name"].as_str().unwrap_or("").starts_with("Near "),
                "{p}"
            );
        }
        if p["suppressed"] == true {
            assert!(
                p["name"].is_string() && p["place"]["district"].is_string(),
                "{p}"
            );
            withheld_named += 1;
        }
    }
    assert!(checked >= 10, "{checked} cells checked against the LSOAs");
    assert!(withheld_named > 0);

    // LSOAs and districts: their district in `place`.
    let lsoas = json("/collections/lsoas/items?limit=1").await;
    let code = features(&lsoas)[0]["properties"]["code"]
        .as_str()
        .expect("code")
        .to_string();
    let i = g.lsoas.codes.iter().position(|c| *c == code).expect("lsoa");
    let d = json(&format!("/map/api/details?kind=lsoa&id={code}")).await;
    assert_eq!(d["place"]["lsoa"], code.as_str());
    assert_eq!(
        d["place"]["district"],
        g.districts.names[usize::from(g.lsoa_district[i])].as_str()
    );
    let d = json("/map/api/details?kind=district&id=Preston").await;
    assert_eq!(d["place"]["district"], "Preston");
    assert_eq!(d["name"], "Preston");
}

/// Cell -> count of a `/map/api/cells?method=counts` answer (null: withheld).
fn cell_counts(fc: &Value) -> std::collections::HashMap<String, Option<u64>> {
    features(fc)
        .iter()
        .map(|f| {
            let p = &f["properties"];
            (p["cell"].as_str().unwrap().to_owned(), p["count"].as_u64())
        })
        .collect()
}

#[tokio::test]
async fn change_map_compares_periods_with_the_exact_test_and_publishes_no_more_than_the_cells() {
    use hotspot::stats::change::binom_two_sided;
    let now_q = "res=7&from=2024-01&to=2024-06";
    // Analyst: the counts are the cells' counts of each period; p is the exact test with
    // exposure the months of each period (6 and 6); bins follow p and the direction.
    let doc = json(&format!("/map/api/change?{now_q}&against=year&fdr=false")).await;
    assert_eq!(doc["periods"]["now"]["from"], "2024-01");
    assert_eq!(doc["periods"]["before"]["from"], "2023-01");
    assert_eq!(doc["periods"]["before"]["to"], "2023-06");
    let t_now = doc["periods"]["now"]["months_with_data"].as_f64().unwrap();
    let t_before = doc["periods"]["before"]["months_with_data"]
        .as_f64()
        .unwrap();
    let now = cell_counts(&json(&format!("/map/api/cells?method=counts&{now_q}")).await);
    let before =
        cell_counts(&json("/map/api/cells?method=counts&res=7&from=2023-01&to=2023-06").await);
    let mut significant = 0;
    for f in features(&doc) {
        let p = &f["properties"];
        let cell = p["cell"].as_str().unwrap();
        let (a, b) = (p["now"].as_u64().unwrap(), p["before"].as_u64().unwrap());
        assert_eq!(
            a,
            now.get(cell).copied().flatten().unwrap_or(0),
            "{cell} now"
        );
        assert_eq!(
            b,
            before.get(cell).copied().flatten().unwrap_or(0),
            "{cell} before"
        );
        let want = binom_two_sided(a, a + b, t_now / (t_now + t_before));
        let got = p["p"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-7, "{cell}: p {got} vs {want}");
        let bin = p["bin"].as_i64().unwrap();
        let expect = if want < 0.05 {
            if a as f64 * t_before > b as f64 * t_now {
                1
            } else {
                -1
            }
        } else {
            0
        };
        assert_eq!(bin, expect, "{cell}: a {a} b {b} p {want}");
        significant += usize::from(bin != 0);
    }
    assert!(significant > 0, "some cell changed");
    // Every cell with incidents in either period is there.
    let listed = features(&doc).len();
    // (The cells list also carries empty cells with an emerging pattern.)
    let with_any = now
        .iter()
        .chain(before.iter())
        .filter(|(_, n)| n.is_some_and(|n| n > 0))
        .map(|(c, _)| c)
        .collect::<std::collections::HashSet<_>>()
        .len();
    assert_eq!(listed, with_any);
    // FDR calls no more cells significant than the plain 5 % test.
    let fdr = json(&format!("/map/api/change?{now_q}&against=year")).await;
    let sig = |d: &Value| {
        features(d)
            .iter()
            .filter(|f| f["properties"]["bin"].as_i64() != Some(0))
            .count()
    };
    assert!(sig(&fdr) <= significant);
    // Public: the counts the public cells of each period publish, bins only.
    let public = public_json(&format!("/map/api/change?{now_q}&against=year")).await;
    let pub_now = cell_counts(&public_json(&format!("/map/api/cells?method=counts&{now_q}")).await);
    let pub_before = cell_counts(
        &public_json("/map/api/cells?method=counts&res=7&from=2023-01&to=2023-06").await,
    );
    let mut withheld = 0;
    for f in features(&public) {
        let p = &f["properties"];
        let cell = p["cell"].as_str().unwrap();
        assert!(
            p["p"].is_null() && p["ratio"].is_null(),
            "{cell}: exact values to the public"
        );
        for (field, published) in [("now", &pub_now), ("before", &pub_before)] {
            let shown = p[field].as_u64();
            let expected = published.get(cell).copied().flatten();
            if published.contains_key(cell) {
                assert_eq!(shown, expected, "{cell} {field}");
            }
            if let Some(n) = shown {
                assert!(n == 0 || n >= 5, "{cell} {field}: {n} published");
            }
        }
        if p["bin"].is_null() {
            withheld += 1;
            assert_eq!(p["class"], "withheld");
            assert!(p["now"].is_null() || p["before"].is_null());
        }
    }
    assert!(
        withheld > 0,
        "small counts withheld in the public change map"
    );
    // Nothing to compare with: 400 naming the parameter.
    let (status, body) = public_get("/map/api/change?res=7&to=2022-03&against=year").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("against"), "{body}");
    let (status, _) = public_get("/map/api/change?res=7&against=last-week").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
