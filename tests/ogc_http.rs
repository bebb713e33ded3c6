//! OGC API - Features through the router, without a socket: every endpoint's status,
//! media type and required members; paging by `next` links; bbox and datetime filters;
//! 404s and 400s; ETag revalidation; RFC 7946 geometry (counter-clockwise exteriors, at
//! most 7 decimals). The store is the bundled Lancashire fixtures, seeded once.

use std::collections::HashSet;
use std::sync::LazyLock;

use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request, StatusCode, header};
use geo::{Intersects, LineString, MultiPolygon, Point, Polygon, Rect, coord};
use hotspot::serve::{AppState, Settings, load_or_seed, router};
use serde_json::Value;
use tower::ServiceExt as _;

const HOST: &str = "ogc.test:8080";
const BASE: &str = "http://ogc.test:8080";

const CORE: &str = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core";
const GEOJSON_CONF: &str = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson";
const OAS30: &str = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30";
const CRS84: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";

const COLLECTIONS: [&str; 10] = [
    "districts",
    "lsoas",
    "h3-7",
    "h3-8",
    "h3-9",
    "h3-10",
    "hotspots",
    "emerging",
    "patrol",
    "incidents",
];

mod common;
use common::{ANALYST_KEY, analyst_settings};

static STATE: LazyLock<AppState> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = load_or_seed(dir.path()).expect("the bundled fixtures load");
    // Kept for the server's audit log, which the analyst requests write to.
    let dir = dir.keep();
    // Debug builds tile the resolution-10 grid slowly: no 503 from the timeout here.
    let settings = Settings {
        request_timeout_secs: 900.0,
        ..analyst_settings(dir)
    };
    AppState::new(store, settings)
});

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn ctype(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            )
        })
    }
}

async fn get_with(uri: &str, extra: &[(header::HeaderName, &str)]) -> Reply {
    let path = uri.strip_prefix(BASE).unwrap_or(uri);
    let mut req = Request::get(path)
        .header(header::HOST, HOST)
        .header(header::AUTHORIZATION, format!("Bearer {ANALYST_KEY}"));
    for (k, v) in extra {
        req = req.header(k, *v);
    }
    let res = router(STATE.clone())
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let body = to_bytes(res.into_body(), usize::MAX)
        .await
        .expect("body")
        .to_vec();
    assert!(
        !status.is_server_error(),
        "{uri}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    Reply {
        status,
        headers,
        body,
    }
}

async fn get(uri: &str) -> Reply {
    get_with(uri, &[]).await
}

/// GET that must succeed with this media type; the JSON body.
async fn ok_json(uri: &str, ctype: &str) -> Value {
    let r = get(uri).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{uri}: {}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(r.ctype().starts_with(ctype), "{uri}: {}", r.ctype());
    r.json()
}

/// The sum of the features' `count` properties.
fn count_total(doc: &Value) -> u64 {
    doc["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter_map(|f| f["properties"]["count"].as_u64())
        .sum()
}

fn link<'a>(doc: &'a Value, rel: &str) -> Option<&'a Value> {
    doc["links"]
        .as_array()?
        .iter()
        .find(|l| l["rel"] == rel && l["type"] != "text/csv")
}

fn href(doc: &Value, rel: &str) -> Option<String> {
    link(doc, rel).and_then(|l| l["href"].as_str().map(str::to_owned))
}

fn coords(v: &Value) -> Vec<(f64, f64)> {
    v.as_array()
        .expect("ring")
        .iter()
        .map(|c| (c[0].as_f64().expect("x"), c[1].as_f64().expect("y")))
        .collect()
}

fn ring_area(r: &[(f64, f64)]) -> f64 {
    r.windows(2)
        .map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1)
        .sum::<f64>()
        / 2.0
}

fn decimals_ok(x: f64) -> bool {
    format!("{x}")
        .split('.')
        .nth(1)
        .is_none_or(|d| d.len() <= 7)
}

/// Checks RFC 7946 rules and returns the geometry for intersection tests.
fn geometry(g: &Value) -> geo::Geometry<f64> {
    let rings = |poly: &Value| -> Polygon<f64> {
        let rs: Vec<Vec<(f64, f64)>> = poly.as_array().expect("rings").iter().map(coords).collect();
        for (k, r) in rs.iter().enumerate() {
            assert!(r.len() >= 4 && r.first() == r.last(), "ring not closed");
            assert!(r.iter().all(|(x, y)| decimals_ok(*x) && decimals_ok(*y)));
            let a = ring_area(r);
            assert!(
                if k == 0 { a > 0.0 } else { a < 0.0 },
                "winding of ring {k}: {a}"
            );
        }
        let mut it = rs.into_iter().map(LineString::from);
        let ext = it.next().expect("exterior");
        Polygon::new(ext, it.collect())
    };
    match g["type"].as_str() {
        Some("Point") => {
            let (x, y) = (
                g["coordinates"][0].as_f64().expect("x"),
                g["coordinates"][1].as_f64().expect("y"),
            );
            assert!(decimals_ok(x) && decimals_ok(y), "{x} {y}");
            assert!((-180.0..=180.0).contains(&x) && (-90.0..=90.0).contains(&y));
            Point::new(x, y).into()
        }
        Some("Polygon") => rings(&g["coordinates"]).into(),
        Some("MultiPolygon") => MultiPolygon(
            g["coordinates"]
                .as_array()
                .expect("polygons")
                .iter()
                .map(rings)
                .collect(),
        )
        .into(),
        other => panic!("unexpected geometry {other:?}"),
    }
}

/// The members a FeatureCollection must have; its features' ids.
fn check_collection(doc: &Value) -> Vec<String> {
    assert_eq!(doc["type"], "FeatureCollection");
    assert!(doc.get("crs").is_none(), "RFC 7946 has no crs member");
    let matched = doc["numberMatched"].as_u64().expect("numberMatched");
    let returned = doc["numberReturned"].as_u64().expect("numberReturned");
    let ts = doc["timeStamp"].as_str().expect("timeStamp");
    assert!(
        ts.len() == 20 && ts.ends_with('Z') && &ts[10..11] == "T",
        "{ts}"
    );
    assert!(href(doc, "self").is_some(), "self link");
    let features = doc["features"].as_array().expect("features");
    assert_eq!(features.len() as u64, returned);
    assert!(returned <= matched);
    features
        .iter()
        .map(|f| {
            assert_eq!(f["type"], "Feature");
            assert!(f["properties"].is_object());
            geometry(&f["geometry"]);
            match &f["id"] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => panic!("bad id {other}"),
            }
        })
        .collect()
}

/// The data's first and last months, from the incidents' temporal extent.
async fn data_months() -> (String, String) {
    let c = ok_json("/collections/incidents", "application/json").await;
    let i = &c["extent"]["temporal"]["interval"][0];
    let m = |v: &Value| v.as_str().expect("month")[..7].to_owned();
    (m(&i[0]), m(&i[1]))
}

#[tokio::test]
async fn landing_conformance_and_api() {
    let l = ok_json("/", "application/json").await;
    for rel in ["self", "service-desc", "conformance", "data"] {
        assert!(href(&l, rel).is_some_and(|h| h.starts_with(BASE)), "{rel}");
    }
    assert_eq!(
        link(&l, "service-desc").expect("service-desc")["type"],
        "application/vnd.oai.openapi+json;version=3.0"
    );
    assert_eq!(
        href(&l, "data").as_deref(),
        Some(&*format!("{BASE}/collections"))
    );

    let c = ok_json("/conformance", "application/json").await;
    let classes: Vec<&str> = c["conformsTo"]
        .as_array()
        .expect("conformsTo")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for uri in [CORE, GEOJSON_CONF, OAS30] {
        assert!(classes.contains(&uri), "{uri}");
    }

    let api = ok_json("/api", "application/vnd.oai.openapi+json").await;
    assert!(
        api["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.0."))
    );
    assert!(api["info"]["title"].is_string() && api["info"]["version"].is_string());
    for p in [
        "/",
        "/conformance",
        "/api",
        "/collections",
        "/collections/{collectionId}",
        "/collections/{collectionId}/items",
        "/collections/{collectionId}/items/{featureId}",
    ] {
        assert!(
            api["paths"][p]["get"]["responses"]["200"].is_object(),
            "{p}"
        );
    }
    let items = api["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]
        .as_array()
        .expect("parameters");
    let names: Vec<&str> = items
        .iter()
        .filter_map(|p| p["$ref"].as_str())
        .filter_map(|r| api.pointer(r.trim_start_matches('#')))
        .filter_map(|p| p["name"].as_str())
        .collect();
    for n in [
        "collectionId",
        "limit",
        "offset",
        "bbox",
        "datetime",
        "types",
        "district",
        "f",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    let limit = api
        .pointer("/components/parameters/limit/schema")
        .expect("limit");
    assert_eq!(
        (limit["maximum"].as_u64(), limit["default"].as_u64()),
        (Some(10_000), Some(10))
    );
}

#[tokio::test]
async fn collections_describe_themselves() {
    let all = ok_json("/collections", "application/json").await;
    assert!(href(&all, "self").is_some());
    let listed: Vec<&str> = all["collections"]
        .as_array()
        .expect("collections")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(listed, COLLECTIONS);
    let (first, last) = data_months().await;
    assert!(first <= last);
    for id in COLLECTIONS {
        let c = ok_json(&format!("/collections/{id}"), "application/json").await;
        assert_eq!(c["id"], id);
        assert_eq!(c["itemType"], "feature");
        assert_eq!(c["crs"][0], CRS84);
        assert!(c["title"].is_string() && c["description"].is_string());
        let b: Vec<f64> = c["extent"]["spatial"]["bbox"][0]
            .as_array()
            .expect("bbox")
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        assert_eq!(b.len(), 4, "{id}");
        assert!(
            b[0] < b[2] && b[1] < b[3] && b[0] > -4.0 && b[2] < -1.5 && b[1] > 53.0 && b[3] < 55.0,
            "{id}: {b:?}"
        );
        let i = &c["extent"]["temporal"]["interval"][0];
        assert!(i[0].as_str().is_some_and(|s| s.starts_with(&first)), "{id}");
        assert!(i[1].as_str().is_some_and(|s| s.starts_with(&last)), "{id}");
        let items = link(&c, "items").expect("items link");
        assert_eq!(items["type"], "application/geo+json");
        assert_eq!(items["href"], format!("{BASE}/collections/{id}/items"));
    }
}

#[tokio::test]
async fn every_collection_serves_features() {
    for id in COLLECTIONS {
        let doc = ok_json(
            &format!("/collections/{id}/items?limit=3"),
            "application/geo+json",
        )
        .await;
        let ids = check_collection(&doc);
        let matched = doc["numberMatched"].as_u64().expect("matched");
        assert!(matched > 0, "{id} is empty");
        assert_eq!(ids.len() as u64, matched.min(3), "{id}");
        assert_eq!(href(&doc, "next").is_some(), matched > 3, "{id}");
        let props = &doc["features"][0]["properties"];
        let want: &[&str] = match id {
            "districts" | "lsoas" => &["count", "per_km2"],
            "emerging" => &["category", "category_code", "trend_z", "trend_p"],
            "incidents" => &["month", "type"],
            "patrol" => &["rank", "count", "gi_z"],
            _ => &["count", "per_km2", "gi_z", "gi_p", "gi_bin"],
        };
        for p in want {
            assert!(props.get(*p).is_some(), "{id} lacks {p}: {props}");
        }
        if id == "hotspots" {
            assert!(
                doc["features"]
                    .as_array()
                    .expect("f")
                    .iter()
                    .all(|f| f["properties"]["gi_bin"].as_i64() > Some(0))
            );
        }
        if id == "emerging" {
            assert!(props["category"] != "No Pattern Detected");
        }
        if id == "incidents" {
            let p = props.as_object().expect("props");
            assert!(
                p.keys()
                    .all(|k| ["month", "type", "severity"].contains(&k.as_str())),
                "{p:?}"
            );
        }
        // One feature by id, the same as in the page.
        let fid = &ids[0];
        let one = ok_json(
            &format!("/collections/{id}/items/{fid}"),
            "application/geo+json",
        )
        .await;
        assert_eq!(one["type"], "Feature");
        assert_eq!(one["properties"], doc["features"][0]["properties"]);
        assert!(href(&one, "collection").is_some());
        geometry(&one["geometry"]);
    }
}

#[tokio::test]
async fn h3_grids_include_empty_cells_and_nest() {
    let total = |doc: &Value| doc["numberMatched"].as_u64().expect("matched");
    let h7 = ok_json(
        "/collections/h3-7/items?limit=10000",
        "application/geo+json",
    )
    .await;
    let h8 = ok_json("/collections/h3-8/items?limit=1", "application/geo+json").await;
    assert!(total(&h8) > 5 * total(&h7), "finer grids have more cells");
    let feats = h7["features"].as_array().expect("features");
    assert_eq!(feats.len() as u64, total(&h7));
    assert!(
        feats.iter().any(|f| f["properties"]["count"] == 0),
        "zero cells are part of the grid"
    );
    let sum7: u64 = feats
        .iter()
        .filter_map(|f| f["properties"]["count"].as_u64())
        .sum();
    let d = ok_json(
        "/collections/districts/items?limit=100",
        "application/geo+json",
    )
    .await;
    let sum_d: u64 = d["features"]
        .as_array()
        .expect("f")
        .iter()
        .filter_map(|f| f["properties"]["count"].as_u64())
        .sum();
    let inc = ok_json(
        "/collections/incidents/items?limit=1",
        "application/geo+json",
    )
    .await;
    assert_eq!(sum7, total(&inc), "every located incident is in one cell");
    assert!(
        sum_d <= sum7 && sum_d * 100 >= sum7 * 99,
        "districts {sum_d} vs cells {sum7}"
    );
}

#[tokio::test]
async fn paging_by_next_links_visits_everything_once() {
    let mut url = "/collections/h3-7/items?limit=5".to_owned();
    let mut seen = HashSet::new();
    let mut matched = None;
    let mut pages = 0;
    loop {
        let doc = ok_json(&url, "application/geo+json").await;
        let ids = check_collection(&doc);
        assert!(ids.len() <= 5);
        let m = doc["numberMatched"].as_u64().expect("matched");
        assert_eq!(*matched.get_or_insert(m), m, "numberMatched is stable");
        if pages > 0 {
            assert!(href(&doc, "prev").is_some(), "prev on page {pages}");
        } else {
            assert!(href(&doc, "prev").is_none());
        }
        for id in ids {
            assert!(seen.insert(id.clone()), "{id} twice");
        }
        pages += 1;
        match href(&doc, "next") {
            Some(next) => {
                assert!(next.starts_with(BASE), "{next}");
                url = next;
            }
            None => break,
        }
        assert!(pages < 1000, "runaway paging");
    }
    assert_eq!(Some(seen.len() as u64), matched);
    assert!(pages > 100);
    // Past the end: nothing, no next.
    let doc = ok_json(
        "/collections/districts/items?offset=500",
        "application/geo+json",
    )
    .await;
    assert_eq!(doc["numberReturned"], 0);
    assert!(href(&doc, "next").is_none());
}

/// Every feature of a query, following `next` links; with the first page.
async fn all_features(url: &str) -> (Value, Vec<Value>) {
    let first = ok_json(url, "application/geo+json").await;
    let mut features: Vec<Value> = first["features"].as_array().expect("features").clone();
    let mut next = href(&first, "next");
    while let Some(u) = next {
        let doc = ok_json(&u, "application/geo+json").await;
        features.extend(
            doc["features"]
                .as_array()
                .expect("features")
                .iter()
                .cloned(),
        );
        next = href(&doc, "next");
    }
    assert_eq!(
        first["numberMatched"].as_u64(),
        Some(features.len() as u64),
        "{url}"
    );
    (first, features)
}

#[tokio::test]
async fn bbox_keeps_exactly_the_intersecting_features() {
    let (w, s, e, n) = (-2.75, 53.74, -2.65, 53.79);
    let rect = Rect::new(coord! { x: w, y: s }, coord! { x: e, y: n });
    let bbox = format!("{w},{s},{e},{n}");
    for id in ["h3-7", "districts", "incidents"] {
        let (_, all) = all_features(&format!("/collections/{id}/items?limit=10000")).await;
        let inside: HashSet<String> = all
            .iter()
            .filter(|f| geometry(&f["geometry"]).intersects(&rect))
            .map(|f| f["id"].to_string())
            .collect();
        let (doc, got) =
            all_features(&format!("/collections/{id}/items?limit=10000&bbox={bbox}")).await;
        check_collection(&doc);
        let got: HashSet<String> = got.iter().map(|f| f["id"].to_string()).collect();
        assert!(!got.is_empty(), "{id}");
        let extra: Vec<&String> = got.difference(&inside).take(5).collect();
        let missing: Vec<&String> = inside.difference(&got).take(5).collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "{id}: extra {extra:?}, missing {missing:?}"
        );
        assert!(got.len() < all.len(), "{id}");
        assert!(href(&doc, "self").is_some_and(|h| h.contains("bbox=")));
    }
}

#[tokio::test]
async fn datetime_filters_months() {
    let (first, last) = data_months().await;
    let total = count_total;
    let all = ok_json(
        "/collections/districts/items?limit=100",
        "application/geo+json",
    )
    .await;
    let one = ok_json(
        &format!("/collections/districts/items?limit=100&datetime={first}"),
        "application/geo+json",
    )
    .await;
    assert!(
        total(&one) > 0 && total(&one) < total(&all),
        "{} vs {}",
        total(&one),
        total(&all)
    );
    let as_date = ok_json(
        &format!("/collections/districts/items?limit=100&datetime={first}-15T12:00:00Z"),
        "application/geo+json",
    )
    .await;
    assert_eq!(total(&as_date), total(&one));
    let open = ok_json(
        &format!("/collections/districts/items?limit=100&datetime=../{last}"),
        "application/geo+json",
    )
    .await;
    assert_eq!(total(&open), total(&all));
    let span = ok_json(
        &format!("/collections/districts/items?limit=100&datetime={first}/{last}"),
        "application/geo+json",
    )
    .await;
    assert_eq!(total(&span), total(&all));
    // The incidents of that month are the month's count, and all carry it.
    let inc = ok_json(
        &format!("/collections/incidents/items?limit=10000&datetime={first}"),
        "application/geo+json",
    )
    .await;
    assert_eq!(inc["numberMatched"].as_u64(), Some(total(&one)));
    assert!(
        inc["features"]
            .as_array()
            .expect("f")
            .iter()
            .all(|f| f["properties"]["month"] == first.as_str())
    );
    assert!(href(&inc, "self").is_some_and(|h| h.contains("datetime=")));
    // A month without data: no incidents, zero counts.
    let none = ok_json(
        "/collections/incidents/items?datetime=1999-01",
        "application/geo+json",
    )
    .await;
    assert_eq!(none["numberMatched"], 0);
    assert_eq!(none["features"].as_array().map(Vec::len), Some(0));
    // types and district narrow too.
    let burg = ok_json(
        "/collections/incidents/items?types=burglary&district=Preston&limit=50",
        "application/geo+json",
    )
    .await;
    assert!(burg["numberMatched"].as_u64() > Some(0));
    assert!(
        burg["features"]
            .as_array()
            .expect("f")
            .iter()
            .all(|f| f["properties"]["type"] == "Burglary")
    );
}

/// Road collisions by STATS19 severity: `severity` keeps the collisions of those
/// severities, leaves every other type alone, and the collections' counts agree with the
/// incidents themselves.
#[tokio::test]
async fn severity_narrows_road_collisions_only() {
    let total = count_total;
    let roads = ok_json(
        "/collections/incidents/items?types=road-collision&limit=10000",
        "application/geo+json",
    )
    .await;
    let mut by: std::collections::BTreeMap<String, u64> = Default::default();
    for f in roads["features"].as_array().expect("f") {
        *by.entry(
            f["properties"]["severity"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        )
        .or_default() += 1;
    }
    let n = |s: &str| by.get(s).copied().unwrap_or(0);
    assert!(
        n("Fatal") > 0 && n("Serious") > 0 && n("Slight") > 0,
        "the fixtures have every severity: {by:?}"
    );
    let some = ok_json(
        "/collections/incidents/items?types=road-collision&severity=fatal,serious&limit=10000",
        "application/geo+json",
    )
    .await;
    assert_eq!(
        some["numberMatched"].as_u64(),
        Some(n("Fatal") + n("Serious"))
    );
    assert!(
        some["features"]
            .as_array()
            .expect("f")
            .iter()
            .all(|f| matches!(
                f["properties"]["severity"].as_str(),
                Some("Fatal" | "Serious")
            ))
    );
    assert!(href(&some, "next").is_none_or(|h| h.contains("severity=")));
    // Areas count the same incidents.
    let slight = ok_json(
        "/collections/districts/items?types=road-collision&severity=Slight&limit=100",
        "application/geo+json",
    )
    .await;
    assert_eq!(total(&slight), n("Slight"));
    // Other types have no severity and are never dropped by one.
    let burglary = ok_json(
        "/collections/districts/items?types=burglary&limit=100",
        "application/geo+json",
    )
    .await;
    let burglary_fatal = ok_json(
        "/collections/districts/items?types=burglary&severity=fatal&limit=100",
        "application/geo+json",
    )
    .await;
    assert!(total(&burglary) > 0);
    assert_eq!(total(&burglary_fatal), total(&burglary));
    let both = ok_json(
        "/collections/districts/items?types=burglary,road-collision&severity=fatal&limit=100",
        "application/geo+json",
    )
    .await;
    assert_eq!(total(&both), total(&burglary) + n("Fatal"));
}

#[tokio::test]
async fn csv_tables() {
    let r = get("/collections/districts/items?f=csv&limit=3").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.ctype().starts_with("text/csv"));
    let text = String::from_utf8(r.body).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "id,lon,lat,code,name,count,per_km2");
    assert_eq!(lines.len(), 4);
    let r = get("/collections/incidents/items?f=csv&limit=2").await;
    assert!(String::from_utf8_lossy(&r.body).starts_with("id,lon,lat,month,type,severity\n"));
}

#[tokio::test]
async fn unknown_things_are_404() {
    for uri in [
        "/collections/nope",
        "/collections/nope/items",
        "/collections/nope/items/1",
        "/collections/h3-11/items",
        "/collections/districts/items/NOPE",
        "/collections/incidents/items/99999999",
        "/collections/incidents/items/007",
        "/collections/incidents/items/-1",
        "/collections/h3-7/items/8f2830828052d25",
        "/nowhere",
    ] {
        let r = get(uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        if uri != "/nowhere" {
            assert_eq!(r.json()["code"], "NotFound", "{uri}");
        }
    }
}

#[tokio::test]
async fn bad_parameters_are_400() {
    for q in [
        "limit=0",
        "limit=-5",
        "limit=abc",
        "limit=1.5",
        "offset=-1",
        "offset=x",
        "bbox=1,2,3",
        "bbox=a,b,c,d",
        "bbox=-2,53,-3,54",
        "bbox=-3,54,-2,53",
        "bbox=-3,95,-2,96",
        "bbox=-200,53,-2,54",
        "bbox=1,2,3,4,5",
        "bbox=",
        "foo=bar",
        "from=2023-01",
        "limit=5&limit=6",
        "datetime=2023-13",
        "datetime=2023-02-30",
        "datetime=yesterday",
        "datetime=2023-06/2023-01",
        "datetime=2023-01/2023-02/2023-03",
        "datetime=..",
        "datetime=2023-05-17T25:00:00Z",
        "types=dragons",
        "severity=catastrophic",
        "severity=fatal,,x",
        "district=Atlantis",
        "f=xml",
        "limit=%zz",
    ] {
        let r = get(&format!("/collections/districts/items?{q}")).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{q}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["code"], "InvalidParameterValue", "{q}");
    }
    for uri in [
        "/?foo=1",
        "/conformance?f=xml",
        "/api?x=1",
        "/collections?limit=5",
        "/collections/districts?bbox=1,2,3,4",
        "/collections/districts/items/E06000008?limit=5",
        "/collections/districts/items/E06000008?datetime=2023-13",
    ] {
        assert_eq!(get(uri).await.status, StatusCode::BAD_REQUEST, "{uri}");
    }
}

#[tokio::test]
async fn etags_revalidate_to_304() {
    for uri in [
        "/",
        "/conformance",
        "/api",
        "/collections",
        "/collections/h3-8",
        "/collections/h3-8/items?limit=7",
        "/collections/districts/items/E06000008",
    ] {
        let a = get(uri).await;
        assert_eq!(a.status, StatusCode::OK, "{uri}");
        let tag = a
            .headers
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .expect("ETag")
            .to_owned();
        assert!(a.headers.get(header::CACHE_CONTROL).is_some(), "{uri}");
        let b = get_with(uri, &[(header::IF_NONE_MATCH, &tag)]).await;
        assert_eq!(b.status, StatusCode::NOT_MODIFIED, "{uri}");
        assert!(b.body.is_empty());
        let c = get_with(uri, &[(header::IF_NONE_MATCH, "\"other\"")]).await;
        assert_eq!(c.status, StatusCode::OK, "{uri}");
        // RFC 9110 weak comparison for If-None-Match: a weakened tag (what a proxy that
        // compressed the body sends back), a list holding the tag, and `*` all match.
        let weak = format!("W/{tag}");
        let list = format!("\"other\", W/\"x\",{weak}");
        for matching in [weak.as_str(), list.as_str(), "*"] {
            let r = get_with(uri, &[(header::IF_NONE_MATCH, matching)]).await;
            assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{uri}: {matching}");
            assert!(r.body.is_empty());
        }
        for other in ["W/\"other\"", "\"other\", W/\"x\""] {
            let r = get_with(uri, &[(header::IF_NONE_MATCH, other)]).await;
            assert_eq!(r.status, StatusCode::OK, "{uri}: {other}");
        }
    }
}

/// The ids of every feature of a collection under a query (all pages).
async fn ids(id: &str, query: &str) -> (Value, Vec<String>) {
    let (first, features) = all_features(&format!("/collections/{id}/items?{query}")).await;
    let mut ids: Vec<String> = features.iter().map(|f| f["id"].to_string()).collect();
    ids.sort();
    (first, ids)
}

fn notes(doc: &Value) -> String {
    doc["notes"].to_string()
}

/// QGIS zoomed right out sends a near-world bbox, far over the area cap: it is clamped to
/// the data's extent, so it gives what the collection's own extent (and no bbox) gives,
/// and says so; a box off the data is an empty collection; six numbers (with heights)
/// are the four-number box.
#[tokio::test]
async fn bboxes_over_the_cap_are_clamped_to_the_data() {
    for id in ["districts", "h3-7", "incidents"] {
        let desc = ok_json(&format!("/collections/{id}"), "application/json").await;
        let extent: Vec<String> = desc["extent"]["spatial"]["bbox"][0]
            .as_array()
            .expect("extent bbox")
            .iter()
            .map(|v| v.as_f64().expect("number").to_string())
            .collect();
        let (_, all) = ids(id, "limit=10000").await;
        let (_, in_extent) = ids(id, &format!("limit=10000&bbox={}", extent.join(","))).await;
        let (doc, world) = ids(id, "limit=10000&bbox=-180,-85,180,85").await;
        assert!(!all.is_empty(), "{id}");
        assert_eq!(world, in_extent, "{id}");
        assert_eq!(world, all, "{id}");
        assert!(
            notes(&doc).contains("bbox clamped"),
            "{id}: {}",
            notes(&doc)
        );
        check_collection(&doc);
        let (_, world6) = ids(id, "limit=10000&bbox=-180,-85,-100,180,85,9000").await;
        assert_eq!(world6, world, "{id}");
        let small = "-2.75,53.74,-2.65,53.79";
        let (_, four) = ids(id, &format!("limit=10000&bbox={small}")).await;
        let (_, six) = ids(id, "limit=10000&bbox=-2.75,53.74,0,-2.65,53.79,250").await;
        assert_eq!(six, four, "{id}");
        assert!(!four.is_empty() && four.len() < all.len(), "{id}");
        // Off the data, large (west of it) or small: 200 and nothing.
        for off in ["-180,-85,-10,85", "100,-40,160,40", "100,0,101,1"] {
            let r = get(&format!("/collections/{id}/items?bbox={off}")).await;
            assert_eq!(r.status, StatusCode::OK, "{id} {off}");
            let doc = r.json();
            assert_eq!(doc["numberMatched"], 0, "{id} {off}");
            assert_eq!(doc["features"].as_array().map(Vec::len), Some(0));
        }
    }
}

/// A `limit` over the maximum is capped at it and the answer says so; 0, negative and
/// non-numbers stay 400s.
#[tokio::test]
async fn limits_over_the_maximum_are_capped_and_said() {
    const MAX: usize = 10_000;
    let mut capped_somewhere = false;
    for id in ["h3-10", "incidents", "districts"] {
        let doc = ok_json(
            &format!("/collections/{id}/items?limit=100000"),
            "application/geo+json",
        )
        .await;
        let matched = doc["numberMatched"].as_u64().expect("numberMatched") as usize;
        let returned = doc["features"].as_array().expect("features").len();
        assert_eq!(returned, matched.min(MAX), "{id}");
        assert_eq!(doc["numberReturned"].as_u64(), Some(returned as u64));
        assert!(
            notes(&doc).contains("limit 100000 capped to 10000"),
            "{id}: {}",
            notes(&doc)
        );
        assert_eq!(href(&doc, "next").is_some(), matched > MAX, "{id}");
        capped_somewhere |= matched > MAX;
        let exact = ok_json(
            &format!("/collections/{id}/items?limit={MAX}"),
            "application/geo+json",
        )
        .await;
        assert_eq!(exact["features"], doc["features"], "{id}");
        assert!(exact.get("notes").is_none(), "{id}");
    }
    assert!(
        capped_somewhere,
        "no collection has more than {MAX} features"
    );
    for bad in ["0", "-1", "abc", "1e3"] {
        let r = get(&format!("/collections/districts/items?limit={bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

/// GDAL and QGIS send a filter put in an `OAPIF:` URL on every request, the landing
/// page, conformance and the collections included: those accept the incident filter
/// (checked as on items) and carry it into their links, so the items they lead to are
/// filtered; anything else is still a 400.
#[tokio::test]
async fn the_filter_is_accepted_and_carried_everywhere() {
    let q = "types=burglary&datetime=2023-06";
    for uri in [
        "/",
        "/conformance",
        "/api",
        "/collections",
        "/collections/districts",
    ] {
        let r = get(&format!("{uri}?{q}")).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{uri}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let landing = get(&format!("/?{q}")).await.json();
    let data = landing["links"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["rel"] == "data")
        .and_then(|l| l["href"].as_str())
        .expect("data link")
        .to_owned();
    assert!(
        data.contains("types=burglary") && data.contains("datetime=2023-06"),
        "{data}"
    );
    let list = get(&format!("/collections?{q}")).await.json();
    let items = list["collections"]
        .as_array()
        .expect("collections")
        .iter()
        .find(|c| c["id"] == "districts")
        .and_then(|c| c["links"].as_array())
        .and_then(|l| {
            l.iter()
                .find(|l| l["rel"] == "items" && l["type"] == "application/geo+json")
        })
        .and_then(|l| l["href"].as_str())
        .expect("items link")
        .to_owned();
    // Followed, the link gives what the filter on items gives, and less than no filter.
    let path = &items[items.find("/collections").expect("path")..];
    let total = |v: &Value| -> u64 {
        v["features"]
            .as_array()
            .expect("features")
            .iter()
            .filter_map(|f| f["properties"]["count"].as_u64())
            .sum()
    };
    let via_link = get(path).await.json();
    let direct = get(&format!("/collections/districts/items?{q}"))
        .await
        .json();
    let all = get("/collections/districts/items").await.json();
    assert_eq!(total(&via_link), total(&direct), "{path}");
    assert!(total(&via_link) < total(&all));
    // `/collections/{id}` carries it into its items links too.
    let one = get(&format!("/collections/districts?{q}")).await.json();
    let links: Vec<&str> = one["links"]
        .as_array()
        .expect("links")
        .iter()
        .filter(|l| l["rel"] == "items")
        .filter_map(|l| l["href"].as_str())
        .collect();
    assert_eq!(links.len(), 2, "{links:?}");
    for l in links {
        assert!(
            l.contains("types=burglary") && l.contains("datetime=2023-06"),
            "{l}"
        );
    }
    for ok in [
        "/conformance?types=burglary",
        "/?severity=fatal,serious",
        "/collections?district=Preston",
    ] {
        let r = get(ok).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{ok}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    for bad in [
        "/?types=dragons",
        "/collections?district=Atlantis",
        "/collections/districts?datetime=2023-13",
        "/conformance?severity=catastrophic",
        "/conformance?limit=5",
    ] {
        assert_eq!(get(bad).await.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    // A parameter in no definition is a 400 that names it.
    for uri in [
        "/conformance",
        "/",
        "/collections",
        "/collections/districts",
    ] {
        let r = get(&format!("{uri}?nonsense=1")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        let d = r.json()["description"].as_str().unwrap_or("").to_owned();
        assert!(
            d.contains("unknown query parameter 'nonsense'"),
            "{uri}: {d}"
        );
    }
}

/// `/` is the map for a browser and the OGC landing page for everything else: Chromium's
/// and Firefox's navigation `Accept` get 303 to `/map/`; GDAL's (`application/json`),
/// curl's (`*/*`), none, and `f=json` get the JSON, `f=html` the map.
#[tokio::test]
async fn the_root_is_the_map_for_browsers_and_json_for_clients() {
    let chromium = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8";
    let firefox = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    for accept in [chromium, firefox] {
        let r = get_with("/", &[(header::ACCEPT, accept)]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{accept}");
        assert_eq!(r.headers[header::LOCATION], "/map/");
        assert!(r.headers[header::VARY].to_str().unwrap().contains("Accept"));
    }
    for accept in [
        "application/json",
        "*/*",
        "application/geo+json, text/html;q=0.5",
    ] {
        let r = get_with("/", &[(header::ACCEPT, accept)]).await;
        assert_eq!(r.status, StatusCode::OK, "{accept}");
        assert!(r.ctype().starts_with("application/json"), "{accept}");
        let vary: Vec<&str> = r
            .headers
            .get_all(header::VARY)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert!(vary.iter().any(|v| v.contains("Accept")), "{vary:?}");
    }
    let r = get_with("/?f=json", &[(header::ACCEPT, chromium)]).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = get("/?f=html").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        href(&get("/").await.json(), "alternate").as_deref(),
        Some(&*format!("{BASE}/map/"))
    );
}

/// Queryables, property filters (`name=Preston`), `sortby`, `properties` and
/// `skipGeometry`, as pygeoapi offers them and QGIS's filter builder uses them.
#[tokio::test]
async fn queryables_property_filters_sortby_and_properties() {
    // The collection links its queryables; they are a JSON Schema of its properties.
    let c = ok_json("/collections/districts", "application/json").await;
    let q_href = href(&c, "http://www.opengis.net/def/rel/ogc/1.0/queryables").expect("link");
    let q = ok_json(&q_href, "application/schema+json").await;
    assert_eq!(q["type"], "object");
    assert_eq!(q["properties"]["name"]["type"], "string");
    assert_eq!(q["properties"]["count"]["type"], "integer");
    let h3q = ok_json("/collections/h3-8/queryables", "application/schema+json").await;
    assert_eq!(h3q["properties"]["gi_z"]["type"], "number");

    // The API definition declares filter properties per collection (what GDAL reads to
    // send a -where to the server): each is a queryable of that type.
    let api = ok_json("/api", "application/vnd.oai.openapi+json").await;
    for id in COLLECTIONS {
        let op = &api["paths"][format!("/collections/{id}/items")]["get"];
        let declared: Vec<(&str, &str)> = op["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("no /collections/{id}/items"))
            .iter()
            .filter(|p| p.get("$ref").is_none())
            .map(|p| {
                (
                    p["name"].as_str().unwrap(),
                    p["schema"]["type"].as_str().unwrap(),
                )
            })
            .collect();
        assert!(!declared.is_empty(), "{id}");
        let q = ok_json(
            &format!("/collections/{id}/queryables"),
            "application/schema+json",
        )
        .await;
        for (name, kind) in declared {
            assert_eq!(q["properties"][name]["type"], kind, "{id}: {name}");
        }
    }

    // Equality on a property; every other feature is left out.
    let one = ok_json(
        "/collections/districts/items?name=Preston",
        "application/geo+json",
    )
    .await;
    assert_eq!(one["numberMatched"], 1);
    assert_eq!(one["features"][0]["properties"]["name"], "Preston");
    let (_, all) = all_features("/collections/h3-8/items?limit=10000").await;
    let hot = all
        .iter()
        .filter(|f| f["properties"]["gi_bin"] == 3)
        .count();
    assert!(hot > 0, "no hot cells to filter");
    // Paging through a filtered result keeps the filter in the next links.
    let (_, filtered) = all_features("/collections/h3-8/items?gi_bin=3&limit=7").await;
    assert_eq!(filtered.len(), hot);
    assert!(filtered.iter().all(|f| f["properties"]["gi_bin"] == 3));

    // sortby: descending counts, then names ascending.
    let (_, by_count) = all_features("/collections/districts/items?sortby=-count&limit=100").await;
    let counts: Vec<i64> = by_count
        .iter()
        .map(|f| f["properties"]["count"].as_i64().expect("count"))
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    let (_, by_name) = all_features("/collections/districts/items?sortby=name&limit=100").await;
    let names: Vec<&str> = by_name
        .iter()
        .map(|f| f["properties"]["name"].as_str().expect("name"))
        .collect();
    assert!(names.windows(2).all(|w| w[0] <= w[1]), "{names:?}");
    assert_eq!(names.len(), 14);

    // properties: only those, in that order; skipGeometry: no geometry.
    let slim = ok_json(
        "/collections/districts/items?properties=name,count&skipGeometry=true&limit=3",
        "application/geo+json",
    )
    .await;
    for f in slim["features"].as_array().expect("features") {
        // (serde_json's map sorts keys: the order is checked on the raw text below.)
        let keys: Vec<&String> = f["properties"].as_object().expect("props").keys().collect();
        assert_eq!(keys, ["count", "name"]);
        assert!(f["geometry"].is_null());
    }

    let raw = get("/collections/districts/items?properties=name,count&limit=1").await;
    let text = String::from_utf8_lossy(&raw.body);
    assert!(text.contains(r#""properties":{"name":"#), "{text:.300}");

    // A name that is no property, parameter or definition: 400 naming it.
    for (uri, name) in [
        ("/collections/districts/items?nonsense=1", "nonsense"),
        ("/collections/districts/items?sortby=-nonsense", "nonsense"),
        (
            "/collections/districts/items?properties=name,nonsense",
            "nonsense",
        ),
        (
            "/collections/districts/items?skipGeometry=maybe",
            "skipGeometry",
        ),
        (
            "/collections/districts/items/E07000123?name=Preston",
            "name",
        ),
    ] {
        let r = get(uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(String::from_utf8_lossy(&r.body).contains(name), "{uri}");
    }
}

/// The answer is a 200 page for people, varying by `Accept`.
fn assert_is_a_page(r: &Reply) {
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.ctype().starts_with("text/html"), "{}", r.ctype());
    assert_eq!(
        r.headers.get(header::VARY).and_then(|v| v.to_str().ok()),
        Some("Accept")
    );
}

/// A browser gets items as an HTML table (its `Accept`, or `f=html`); GDAL's and OWSLib's
/// `Accept` still get GeoJSON; the answer varies by `Accept`; the page's next link keeps
/// the filter and stays HTML; text is escaped.
#[tokio::test]
async fn items_are_a_table_for_a_browser() {
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let r = get_with(
        "/collections/districts/items?limit=5&sortby=name",
        &[(header::ACCEPT, browser)],
    )
    .await;
    assert_is_a_page(&r);
    let page = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(page.matches("<tr><td>").count(), 5, "{page:.500}");
    assert!(page.contains("<th scope=\"col\">name</th>"), "{page:.800}");
    let names: Vec<String> = ok_json(
        "/collections/districts/items?limit=5&sortby=name",
        "application/geo+json",
    )
    .await["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| f["properties"]["name"].as_str().expect("name").to_owned())
        .collect();
    for n in &names {
        assert!(page.contains(&format!("<td>{n}</td>")), "{n}");
    }
    let next = page
        .split("rel=\"next\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a next link")
        .replace("&amp;", "&");
    assert!(
        next.contains("f=html") && next.contains("sortby=name") && next.contains("offset=5"),
        "{next}"
    );
    let r2 = get(&next).await;
    assert!(r2.ctype().starts_with("text/html"));
    // Clients that ask for JSON get JSON, as before.
    for accept in [
        "application/geo+json, application/json",
        "application/json",
        "*/*",
    ] {
        let r = get_with(
            "/collections/districts/items?limit=2",
            &[(header::ACCEPT, accept)],
        )
        .await;
        assert!(
            r.ctype().starts_with("application/geo+json"),
            "{accept}: {}",
            r.ctype()
        );
    }
    let f = get("/collections/h3-8/items?f=html&limit=3").await;
    assert!(f.ctype().starts_with("text/html"));
    assert!(String::from_utf8_lossy(&f.body).contains("<th scope=\"col\">gi_z</th>"));
}

/// A browser gets `/collections` and `/collections/{id}` as pages: a row per collection
/// the caller may read (as many as its JSON lists), linking its items as a table, GeoJSON and CSV with the filter
/// carried; JSON clients still get JSON; the answers vary by `Accept`.
#[tokio::test]
async fn collections_are_a_page_for_a_browser() {
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let r = get_with("/collections?types=burglary", &[(header::ACCEPT, browser)]).await;
    assert_is_a_page(&r);
    let page = String::from_utf8_lossy(&r.body).into_owned();
    let listed = ok_json("/collections", "application/json").await["collections"]
        .as_array()
        .expect("collections")
        .len();
    assert_eq!(page.matches("<tr><td>").count(), listed, "{page:.800}");
    assert!(
        page.contains("href=\"/collections/districts/items?f=html&amp;types=burglary\""),
        "{page:.1500}"
    );
    let one = get("/collections/lsoas?f=html").await;
    assert_eq!(one.status, StatusCode::OK);
    assert!(one.ctype().starts_with("text/html"));
    let one = String::from_utf8_lossy(&one.body).into_owned();
    assert_eq!(one.matches("<tr><td>").count(), 1, "{one}");
    assert!(one.contains("/collections/lsoas/items?f=csv"), "{one}");
    for accept in ["application/json", "*/*"] {
        let r = get_with("/collections", &[(header::ACCEPT, accept)]).await;
        assert!(
            r.ctype().starts_with("application/json"),
            "{accept}: {}",
            r.ctype()
        );
    }
    // Another format is still a 400 naming what is offered.
    let r = get("/collections?f=csv").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&r.body).contains("only json, html"));
}

/// A browser gets one feature as a page: every property of its JSON, with its value, in
/// a two-column table; GeoJSON clients still get GeoJSON.
#[tokio::test]
async fn a_feature_is_a_page_for_a_browser() {
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let fc = ok_json(
        "/collections/districts/items?limit=1",
        "application/geo+json",
    )
    .await;
    let f = &fc["features"][0];
    let id = f["id"].as_str().expect("an id").to_owned();
    let path = format!("/collections/districts/items/{id}");
    let r = get_with(&path, &[(header::ACCEPT, browser)]).await;
    assert_is_a_page(&r);
    let page = String::from_utf8_lossy(&r.body).into_owned();
    let props = f["properties"].as_object().expect("properties");
    // One row per property, and the id's.
    assert_eq!(
        page.matches("<tr><th scope=\"row\">").count(),
        props.len() + 1,
        "{page}"
    );
    for (name, v) in props {
        let shown = match v {
            Value::String(s) => s.clone(),
            Value::Null => "-".into(),
            other => other.to_string(),
        };
        assert!(
            page.contains(&format!("<th scope=\"row\">{name}</th><td>{shown}</td>")),
            "{name} = {shown} not in {page}"
        );
    }
    assert_eq!(get(&format!("{path}?f=html")).await.body, r.body);
    let r = get_with(&path, &[(header::ACCEPT, "application/geo+json")]).await;
    assert!(
        r.ctype().starts_with("application/geo+json"),
        "{}",
        r.ctype()
    );
}

const BNG: &str = "http://www.opengis.net/def/crs/EPSG/0/27700";
const EPSG4326: &str = "http://www.opengis.net/def/crs/EPSG/0/4326";

fn content_crs(r: &Reply) -> &str {
    r.headers
        .get("content-crs")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Every vertex of a GeoJSON geometry, in order.
fn vertices(g: &Value, out: &mut Vec<(f64, f64)>) {
    match g {
        Value::Array(a) if a.len() >= 2 && a[0].is_number() => {
            out.push((a[0].as_f64().expect("x"), a[1].as_f64().expect("y")));
        }
        Value::Array(a) => a.iter().for_each(|v| vertices(v, out)),
        Value::Object(o) => {
            if let Some(c) = o.get("coordinates") {
                vertices(c, out);
            }
        }
        _ => {}
    }
}

/// OGC API - Features Part 2: `crs` picks the output CRS (said in `Content-Crs`), EPSG:4326
/// is latitude first, British National Grid is metres that convert back onto the CRS84
/// answer; `bbox-crs` reads a box in any of the three, and a BNG box keeps exactly the
/// features whose BNG geometry meets it.
#[tokio::test]
async fn output_and_box_crs() {
    let url = "/collections/districts/items?limit=100";
    let plain = get(url).await;
    assert_eq!(content_crs(&plain), format!("<{CRS84}>"));
    let plain = plain.json();

    let lat_first = get(&format!("{url}&crs={EPSG4326}")).await;
    assert_eq!(content_crs(&lat_first), format!("<{EPSG4326}>"));
    let bng = get(&format!("{url}&crs={BNG}")).await;
    assert_eq!(bng.status, StatusCode::OK);
    assert_eq!(content_crs(&bng), format!("<{BNG}>"));
    assert!(href(&bng.json(), "next").is_none_or(|h| h.contains("crs=")));
    let (lat_first, bng) = (lat_first.json(), bng.json());

    let features = |d: &Value| d["features"].as_array().expect("features").clone();
    let (a, b, c) = (features(&plain), features(&lat_first), features(&bng));
    assert!(a.len() >= 14 && a.len() == b.len() && a.len() == c.len());
    let mut far = 0.0f64;
    for ((fa, fb), fc) in a.iter().zip(&b).zip(&c) {
        assert_eq!(fa["id"], fb["id"]);
        assert_eq!(fa["id"], fc["id"]);
        let (mut va, mut vb, mut vc) = (vec![], vec![], vec![]);
        vertices(&fa["geometry"], &mut va);
        vertices(&fb["geometry"], &mut vb);
        vertices(&fc["geometry"], &mut vc);
        assert_eq!(va.len(), vb.len());
        assert_eq!(va.len(), vc.len());
        for ((&(lon, lat), &(y, x)), &(e, n)) in va.iter().zip(&vb).zip(&vc) {
            assert_eq!((lon, lat), (x, y), "4326 swaps the axes");
            assert!(
                (300_000.0..420_000.0).contains(&e) && (380_000.0..500_000.0).contains(&n),
                "{e},{n}"
            );
            let (lon2, lat2) = lonlat_bng::convert_osgb36_to_ll(e, n).expect("in the grid");
            let (dx, dy) = (
                (lon2 - lon) * 111_320.0 * lat.to_radians().cos(),
                (lat2 - lat) * 110_574.0,
            );
            far = far.max(dx.hypot(dy));
        }
    }
    // OSTN15 both ways and 2-decimal metres: centimetres apart.
    assert!(far < 0.1, "a vertex {far:.3} m from its CRS84 place");

    // One box, three ways: lon-first CRS84, lat-first 4326, and in BNG metres.
    let (w, s, e, n) = (-2.75, 53.74, -2.65, 53.79);
    for id in ["lsoas", "h3-8"] {
        let base = format!("/collections/{id}/items?limit=10000");
        let (_, by_crs84) = all_features(&format!("{base}&bbox={w},{s},{e},{n}")).await;
        let (_, by_4326) =
            all_features(&format!("{base}&bbox={s},{w},{n},{e}&bbox-crs={EPSG4326}")).await;
        let got =
            |f: &[Value]| -> HashSet<String> { f.iter().map(|f| f["id"].to_string()).collect() };
        assert!(!by_crs84.is_empty());
        assert_eq!(got(&by_crs84), got(&by_4326), "{id}");

        // A BNG box: the brute-force answer is every feature whose BNG geometry meets it.
        let (x0, y0, x1, y1) = (352_000.0, 425_000.0, 358_000.0, 431_000.0);
        let rect = Rect::new(coord! { x: x0, y: y0 }, coord! { x: x1, y: y1 });
        let (_, every) = all_features(&format!("{base}&crs={BNG}")).await;
        let inside: HashSet<String> = every
            .iter()
            .filter(|f| geometry(&f["geometry"]).intersects(&rect))
            .map(|f| f["id"].to_string())
            .collect();
        let (doc, by_bng) =
            all_features(&format!("{base}&bbox={x0},{y0},{x1},{y1}&bbox-crs={BNG}")).await;
        check_collection(&doc);
        let by_bng = got(&by_bng);
        let extra: Vec<&String> = by_bng.difference(&inside).take(5).collect();
        let missing: Vec<&String> = inside.difference(&by_bng).take(5).collect();
        assert!(
            extra.is_empty() && missing.is_empty() && !by_bng.is_empty(),
            "{id}: extra {extra:?}, missing {missing:?}"
        );
    }

    for bad in [
        "crs=EPSG:3857",
        "crs=http://www.opengis.net/def/crs/EPSG/0/3857",
        "bbox=1,2,3&bbox-crs=EPSG:27700",
        "bbox=-3,53,-2,54&bbox-crs=http://example.com/crs",
    ] {
        let r = get(&format!("/collections/districts/items?{bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

/// The first link of `doc` with `rel` (and `ctype`, when given).
fn link_of<'a>(doc: &'a Value, rel: &str, ctype: Option<&str>) -> &'a Value {
    doc["links"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["rel"] == rel && ctype.is_none_or(|t| l["type"] == t))
        .unwrap_or_else(|| panic!("no {rel} link in {doc}"))
}

/// OGC API - Tiles, followed link by link as a client does: the landing page names the
/// tiling schemes, WebMercatorQuad's matrices are the XYZ grid, each collection with
/// tiles links its tilesets, a tileset's limits hold every tile its collection's features
/// touch and nothing beyond the county, and its templated item link, filled in, answers
/// the very bytes of the XYZ tile it stands for (with the filter carried). Collections
/// without tiles, another tiling scheme and a bad `res` are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_are_found_from_the_collections() {
    let landing = ok_json("/", "application/json").await;
    let schemes = link_of(
        &landing,
        "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
        None,
    );
    let list = ok_json(schemes["href"].as_str().expect("href"), "application/json").await;
    let tms_href = list["tileMatrixSets"][0]["links"][0]["href"]
        .as_str()
        .expect("href")
        .to_owned();
    let tms = ok_json(&tms_href, "application/json").await;
    assert_eq!(tms["crs"], "http://www.opengis.net/def/crs/EPSG/0/3857");
    let matrices = tms["tileMatrices"].as_array().expect("tileMatrices");
    for (z, m) in matrices.iter().enumerate() {
        assert_eq!(m["id"], z.to_string());
        assert_eq!(m["matrixWidth"].as_u64(), Some(1 << z));
        // A tile of zoom z spans cellSize * 256 m: the whole world over 2^z tiles.
        let cell = m["cellSize"].as_f64().expect("cellSize");
        assert!((cell * 256.0 * (1u64 << z) as f64 - 40_075_016.685_578_5).abs() < 1e-3);
    }

    let conf = ok_json("/conformance", "application/json").await;
    for c in [
        "core",
        "tileset",
        "tilesets-list",
        "geodata-tilesets",
        "mvt",
        "png",
    ] {
        let uri = format!("http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/{c}");
        assert!(
            conf["conformsTo"]
                .as_array()
                .expect("conformsTo")
                .contains(&Value::String(uri.clone())),
            "{uri}"
        );
    }

    let vector_rel = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector";
    let map_rel = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-map";
    for (id, rel, ctype) in [
        (
            "districts",
            vector_rel,
            "application/vnd.mapbox-vector-tile",
        ),
        ("lsoas", vector_rel, "application/vnd.mapbox-vector-tile"),
        ("h3-7", vector_rel, "application/vnd.mapbox-vector-tile"),
        ("h3-10", vector_rel, "application/vnd.mapbox-vector-tile"),
        ("hotspots", map_rel, "image/png"),
    ] {
        let c = ok_json(&format!("/collections/{id}"), "application/json").await;
        // One kind of tileset per collection (GDAL 3.6 opens one with both as neither).
        let kinds = [vector_rel, map_rel]
            .iter()
            .filter(|r| {
                c["links"]
                    .as_array()
                    .expect("links")
                    .iter()
                    .any(|l| l["rel"] == **r)
            })
            .count();
        assert_eq!(kinds, 1, "{id}");
        let sets = ok_json(
            link_of(&c, rel, None)["href"].as_str().expect("href"),
            "application/json",
        )
        .await;
        let set_link = link_of(&sets["tilesets"][0], "self", Some("application/json"));
        let set = ok_json(set_link["href"].as_str().expect("href"), "application/json").await;
        assert_eq!(set["crs"], "http://www.opengis.net/def/crs/EPSG/0/3857");
        assert_eq!(
            link_of(
                &set,
                "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                None
            )["href"],
            tms_href.as_str()
        );
        let item = link_of(&set, "item", Some(ctype));
        assert_eq!(item["templated"], true);
        let template = item["href"].as_str().expect("href").to_owned();

        // Every tile the collection's features touch, at the tileset's first zoom, is
        // within the limits; the limits stop at the county's tiles.
        let limits = set["tileMatrixSetLimits"].as_array().expect("limits");
        let first = &limits[0];
        let z: u8 = first["tileMatrix"]
            .as_str()
            .expect("id")
            .parse()
            .expect("zoom");
        let items = ok_json(
            &format!("/collections/{id}/items?limit=2000"),
            "application/geo+json",
        )
        .await;
        let (mut min_col, mut max_col) = (u64::MAX, 0);
        for f in items["features"].as_array().expect("features") {
            let mut pts = Vec::new();
            collect_points(&f["geometry"]["coordinates"], &mut pts);
            for (lon, lat) in pts {
                let t = hotspot::serve::tile::TileCoord::containing(lon, lat, z).expect("tile");
                let (col, row) = (u64::from(t.x), u64::from(t.y));
                assert!(
                    first["minTileCol"].as_u64() <= Some(col)
                        && Some(col) <= first["maxTileCol"].as_u64(),
                    "{id} z{z}: column {col} outside {first}"
                );
                assert!(
                    first["minTileRow"].as_u64() <= Some(row)
                        && Some(row) <= first["maxTileRow"].as_u64(),
                    "{id} z{z}: row {row} outside {first}"
                );
                min_col = min_col.min(col);
                max_col = max_col.max(col);
            }
        }
        if id == "districts" {
            let width = first["maxTileCol"].as_u64().expect("max")
                - first["minTileCol"].as_u64().expect("min");
            assert!(
                width <= max_col - min_col + 1,
                "{id}: limits wider than the county"
            );
        }

        // The template filled in is the XYZ tile itself.
        let t = hotspot::serve::tile::TileCoord::containing(-2.7, 53.76, 12).expect("Preston");
        let filled = template
            .replace("{tileMatrix}", "12")
            .replace("{tileRow}", &t.y.to_string())
            .replace("{tileCol}", &t.x.to_string());
        let via = get(&filled).await;
        assert_eq!(via.status, StatusCode::OK, "{filled}");
        assert!(!via.body.is_empty(), "{filled}: empty tile over Preston");
        let (kind, query) = match id {
            "districts" => ("boundaries", "?layer=districts".to_owned()),
            "lsoas" => ("boundaries", "?layer=lsoas".to_owned()),
            "hotspots" => ("heatmap", String::new()),
            h3 => ("cells", format!("?res={}", &h3[3..])),
        };
        let ext = if kind == "heatmap" { "png" } else { "mvt" };
        let direct = get(&format!("/tiles/{kind}/12/{}/{}.{ext}{query}", t.x, t.y)).await;
        assert_eq!(via.body, direct.body, "{filled}");
    }

    // A filter on the tileset is carried into its tiles.
    let set = ok_json(
        "/collections/h3-8/tiles/WebMercatorQuad?types=burglary&from=2024-01",
        "application/json",
    )
    .await;
    let item = link_of(&set, "item", None)["href"]
        .as_str()
        .expect("href")
        .to_owned();
    assert!(
        item.contains("types=burglary") && item.contains("from=2024-01") && item.contains("res=8"),
        "{item}"
    );

    for (uri, status) in [
        ("/collections/emerging/tiles", StatusCode::NOT_FOUND),
        ("/collections/districts/map/tiles", StatusCode::NOT_FOUND),
        ("/collections/hotspots/tiles", StatusCode::NOT_FOUND),
        (
            "/collections/districts/tiles/WorldCRS84Quad",
            StatusCode::NOT_FOUND,
        ),
        ("/tileMatrixSets/WorldCRS84Quad", StatusCode::NOT_FOUND),
        (
            "/collections/h3-8/tiles/WebMercatorQuad?res=9",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/collections/districts/tiles/WebMercatorQuad?types=burglary",
            StatusCode::BAD_REQUEST,
        ),
        ("/tiles/cells/9/252/165.mvt?res=10", StatusCode::BAD_REQUEST),
        (
            "/tiles/cells/12/2020/1320.mvt?res=11",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/tiles/boundaries/9/252/165.mvt?layer=roads",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(get(uri).await.status, status, "{uri}");
    }
}

/// Every (lon, lat) of GeoJSON coordinates.
fn collect_points(v: &Value, out: &mut Vec<(f64, f64)>) {
    match v.as_array() {
        Some(a) if a.len() >= 2 && a.iter().all(Value::is_number) => {
            out.push((a[0].as_f64().unwrap_or(0.0), a[1].as_f64().unwrap_or(0.0)));
        }
        Some(a) => a.iter().for_each(|x| collect_points(x, out)),
        None => {}
    }
}
