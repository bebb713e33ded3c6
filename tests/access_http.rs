//! Access and disclosure control through the router, without a socket: every endpoint
//! family against every kind of caller (no key, a public key, partner, analyst, admin, a
//! wrong key); a partner asking for incident points; sensitive categories below district
//! level; and a public caller trying to difference suppressed LSOAs out of district
//! totals, checked against the true counts computed from the store.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode, header};
use hotspot::model::CrimeType;
use hotspot::serve::auth::{ApiKey, Role, hash_key};
use hotspot::serve::{AppState, Settings, load_or_seed, router};
use serde_json::Value;
use tower::ServiceExt as _;

#[allow(dead_code)]
mod common;

const K: u64 = 5;
/// The largest noise of cell-key perturbation (`disclosure::ckp`).
const PERTURBATION: u64 = 2;

static STATE: LazyLock<AppState> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temp dir").keep();
    let store = load_or_seed(&dir).expect("the bundled fixtures load");
    let key = |name: &str, role| ApiKey {
        name: name.into(),
        role,
        sha256: hash_key(&format!("{name}-key")),
    };
    let settings = Settings {
        data: dir,
        request_timeout_secs: 900.0,
        keys: vec![
            key("kiosk", Role::Public),
            key("council", Role::Partner),
            key("analyst", Role::Analyst),
            key("ops", Role::Admin),
        ],
        ..Settings::default()
    };
    let basemap = common::tiny_basemap(&settings.data);
    AppState::new(store, settings).with_basemap(basemap)
});

/// Callers: none, a key per role, a wrong key.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    None,
    Public,
    Partner,
    Analyst,
    Admin,
    Wrong,
}

const EVERYONE: [Who; 6] = [
    Who::None,
    Who::Public,
    Who::Partner,
    Who::Analyst,
    Who::Admin,
    Who::Wrong,
];

fn auth_header(who: Who) -> Option<(&'static str, String)> {
    match who {
        Who::None => None,
        Who::Public => Some(("x-api-key", "kiosk-key".into())),
        Who::Partner => Some(("authorization", "Bearer council-key".into())),
        Who::Analyst => Some(("authorization", "Bearer analyst-key".into())),
        Who::Admin => Some(("x-api-key", "ops-key".into())),
        Who::Wrong => Some(("authorization", "Bearer not-a-key".into())),
    }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

async fn send(method: Method, uri: &str, who: Who, body: Vec<u8>) -> Reply {
    send_with(method, uri, auth_header(who), body).await
}

/// `send` with any credentials header (or none).
async fn send_with(
    method: Method,
    uri: &str,
    auth: Option<(&'static str, String)>,
    body: Vec<u8>,
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "access.test");
    if let Some((h, v)) = auth {
        req = req.header(h, v);
    }
    let resp = router(STATE.clone())
        .oneshot(req.body(Body::from(body)).expect("request"))
        .await
        .expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body")
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

async fn get(uri: &str, who: Who) -> Reply {
    send(Method::GET, uri, who, Vec::new()).await
}

async fn json(uri: &str, who: Who) -> Value {
    let r = get(uri, who).await;
    assert_eq!(r.status, StatusCode::OK, "{uri} as {who:?}");
    serde_json::from_slice(&r.body).expect("JSON")
}

/// One endpoint family: its route (as in `serve::policy()`), an example request, and the
/// lowest role that may use it.
struct Case {
    route: &'static str,
    method: Method,
    uri: &'static str,
    needs: Role,
}

fn cases() -> Vec<Case> {
    let c = |route, uri, needs| Case {
        route,
        method: Method::GET,
        uri,
        needs,
    };
    vec![
        c("/health", "/health", Role::Public),
        c("/", "/", Role::Public),
        c("/conformance", "/conformance", Role::Public),
        c("/api", "/api", Role::Public),
        c("/collections", "/collections", Role::Public),
        c("/collections/{id}", "/collections/districts", Role::Public),
        c("/collections/{id}", "/collections/patrol", Role::Partner),
        c("/collections/{id}", "/collections/incidents", Role::Analyst),
        c(
            "/collections/{id}/items",
            "/collections/districts/items",
            Role::Public,
        ),
        c(
            "/collections/{id}/items",
            "/collections/lsoas/items?f=csv&limit=5",
            Role::Public,
        ),
        c(
            "/collections/{id}/items",
            "/collections/h3-7/items?limit=5",
            Role::Public,
        ),
        c(
            "/collections/{id}/items",
            "/collections/hotspots/items?limit=5",
            Role::Public,
        ),
        c(
            "/collections/{id}/items",
            "/collections/emerging/items?limit=5",
            Role::Partner,
        ),
        c(
            "/collections/{id}/items",
            "/collections/patrol/items?f=csv",
            Role::Partner,
        ),
        c(
            "/collections/{id}/items",
            "/collections/incidents/items?limit=1",
            Role::Analyst,
        ),
        c(
            "/collections/{id}/items",
            "/collections/incidents/items?f=csv&limit=3",
            Role::Analyst,
        ),
        c(
            "/collections/{id}/items/{fid}",
            "/collections/incidents/items/0",
            Role::Analyst,
        ),
        c(
            "/collections/{id}/items/{fid}",
            "/collections/districts/items/E07000117",
            Role::Public,
        ),
        c(
            "/collections/{id}/queryables",
            "/collections/h3-8/queryables",
            Role::Public,
        ),
        c(
            "/collections/{id}/queryables",
            "/collections/patrol/queryables",
            Role::Partner,
        ),
        c(
            "/collections/{id}/queryables",
            "/collections/incidents/queryables",
            Role::Analyst,
        ),
        c(
            "/tiles/heatmap/{z}/{x}/{y}",
            "/tiles/heatmap/9/252/165.png",
            Role::Public,
        ),
        c(
            "/tiles/heatmap/legend",
            "/tiles/heatmap/legend",
            Role::Public,
        ),
        c("/tiles/heatmap.json", "/tiles/heatmap.json", Role::Public),
        c(
            "/tiles/cells/{z}/{x}/{y}",
            "/tiles/cells/9/252/165.mvt",
            Role::Public,
        ),
        c("/tiles/cells.json", "/tiles/cells.json", Role::Public),
        c(
            "/tiles/boundaries/{z}/{x}/{y}",
            "/tiles/boundaries/9/252/165.mvt",
            Role::Public,
        ),
        c(
            "/tiles/boundaries.json",
            "/tiles/boundaries.json",
            Role::Public,
        ),
        // OGC API - Tiles: the tiling scheme is everyone's; a collection's tilesets need
        // the collection's role (the partner-only ones have none, 404 once allowed).
        c("/tileMatrixSets", "/tileMatrixSets", Role::Public),
        c(
            "/tileMatrixSets/{tms}",
            "/tileMatrixSets/WebMercatorQuad",
            Role::Public,
        ),
        c(
            "/collections/{id}/tiles",
            "/collections/districts/tiles",
            Role::Public,
        ),
        c(
            "/collections/{id}/tiles/{tms}",
            "/collections/h3-8/tiles/WebMercatorQuad?types=burglary",
            Role::Public,
        ),
        c(
            "/collections/{id}/map/tiles",
            "/collections/hotspots/map/tiles",
            Role::Public,
        ),
        c(
            "/collections/{id}/map/tiles/{tms}",
            "/collections/hotspots/map/tiles/WebMercatorQuad",
            Role::Public,
        ),
        // The self-hosted basemap: no incident data, everyone's.
        c(
            "/basemap/{z}/{x}/{y}",
            "/basemap/9/252/165.png",
            Role::Public,
        ),
        c("/basemap.json", "/basemap.json", Role::Public),
        // The web map (issue 5): its files and endpoints are public (and disclosure-
        // controlled below analyst); `/map` redirects to `/map/`.
        c("/map", "/map", Role::Public),
        c("/map/", "/map/", Role::Public),
        c("/map/{*path}", "/map/src/app.js", Role::Public),
        c("/map/api/meta", "/map/api/meta", Role::Public),
        c("/map/api/cells", "/map/api/cells?res=8", Role::Public),
        c(
            "/map/api/details",
            "/map/api/details?kind=district&id=Preston",
            Role::Public,
        ),
        c("/map/api/places", "/map/api/places?q=church", Role::Public),
        c(
            "/map/api/labels",
            "/map/api/labels?bbox=-2.8,53.7,-2.6,53.8&zoom=15",
            Role::Public,
        ),
        c(
            "/map/api/types",
            "/map/api/types?district=Preston&from=2024-01&to=2024-03",
            Role::Public,
        ),
        c(
            "/map/api/change",
            "/map/api/change?res=7&from=2024-01&to=2024-03",
            Role::Public,
        ),
        Case {
            route: "/admin/ingest",
            method: Method::POST,
            uri: "/admin/ingest?name=not-incidents.csv",
            needs: Role::Admin,
        },
        c(
            "/admin/ingest/{id}",
            "/admin/ingest/00000000000000000001",
            Role::Admin,
        ),
        c("/admin/ingest", "/admin/ingest?limit=5", Role::Admin),
    ]
}

/// What a caller should get from an endpoint needing `needs`.
fn expected(who: Who, needs: Role) -> StatusCode {
    let role = match who {
        Who::Wrong => return StatusCode::FORBIDDEN,
        Who::None | Who::Public => Role::Public,
        Who::Partner => Role::Partner,
        Who::Analyst => Role::Analyst,
        Who::Admin => Role::Admin,
    };
    if role >= needs {
        StatusCode::OK
    } else if who == Who::None {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::FORBIDDEN
    }
}

/// `Authorization: Basic` with `user:password` (RFC 7617), as QGIS's and ArcGIS's
/// "Basic" authentication send it.
fn basic(user: &str, password: &str) -> Option<(&'static str, String)> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    Some(("authorization", format!("Basic {b64}")))
}

/// HTTP Basic with the key as the password gets the key's role on every endpoint, under
/// any user name (none, another key's name, another key itself); a wrong password is
/// treated exactly as a wrong bearer key (same status, same body), and so are Basic
/// credentials that do not decode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_with_the_key_as_password() {
    let right = [
        (Who::Public, "kiosk-key"),
        (Who::Partner, "council-key"),
        (Who::Analyst, "analyst-key"),
        (Who::Admin, "ops-key"),
    ];
    let mut failures = Vec::new();
    for c in cases() {
        let body = || b"not,a,known,header\n1,2,3,4\n".to_vec();
        for (who, key) in right {
            let bearer = send(c.method.clone(), c.uri, who, body()).await;
            for user in ["qgis", "", "ops", "kiosk-key", "someone with spaces"] {
                let r = send_with(c.method.clone(), c.uri, basic(user, key), body()).await;
                if r.status != bearer.status {
                    failures.push(format!(
                        "{} {} Basic {user}:{key}: {} (bearer: {})",
                        c.method, c.uri, r.status, bearer.status
                    ));
                }
            }
        }
        let wrong = send(c.method.clone(), c.uri, Who::Wrong, body()).await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", c.uri);
        for auth in [
            basic("qgis", "not-a-key"),
            basic("analyst-key", "x"),
            basic("qgis", ""),
            basic("qgis", "analyst-key2"),
            Some(("authorization", "Basic !!!".to_owned())),
            Some(("authorization", "Basic YW5hbHlzdC1rZXk=".to_owned())), // no colon
        ] {
            let shown = auth.as_ref().map(|a| a.1.clone()).unwrap_or_default();
            let r = send_with(c.method.clone(), c.uri, auth, body()).await;
            if r.status != wrong.status || r.body != wrong.body {
                failures.push(format!(
                    "{} {} {shown}: {} {} (wrong bearer: {})",
                    c.method,
                    c.uri,
                    r.status,
                    String::from_utf8_lossy(&r.body),
                    wrong.status
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The role is really the key's: analyst gets incident points with Basic, partner not.
    let points = "/collections/incidents/items?limit=1";
    let r = send_with(
        Method::GET,
        points,
        basic("qgis", "analyst-key"),
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send_with(
        Method::GET,
        points,
        basic("qgis", "council-key"),
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_against_every_endpoint() {
    let cases = cases();
    for (route, _) in hotspot::serve::policy().entries() {
        assert!(
            cases.iter().any(|c| c.route == *route),
            "no case exercises {route}"
        );
    }
    let mut failures = Vec::new();
    for c in &cases {
        for who in EVERYONE {
            // An upload that is not an incident file: admin gets it queued as a job
            // (202; the job's 422 is the ingest's business); everyone else must not get
            // that far. No job has id 1: admin gets 404 for it, the others no answer.
            let body = b"not,a,known,header\n1,2,3,4\n".to_vec();
            let r = send(c.method.clone(), c.uri, who, body).await;
            let mut want = expected(who, c.needs);
            if c.route == "/admin/ingest" && c.method == Method::POST && want == StatusCode::OK {
                want = StatusCode::ACCEPTED;
            }
            if c.route == "/admin/ingest/{id}" && want == StatusCode::OK {
                want = StatusCode::NOT_FOUND;
            }
            if c.route == "/map" && want == StatusCode::OK {
                want = StatusCode::PERMANENT_REDIRECT;
            }
            if r.status != want {
                failures.push(format!(
                    "{} {} as {who:?}: {} (expected {want})",
                    c.method, c.uri, r.status
                ));
            }
            if r.status == StatusCode::UNAUTHORIZED {
                assert!(r.headers.contains_key(header::WWW_AUTHENTICATE));
            }
            if r.status.is_client_error() {
                let v: Value = serde_json::from_slice(&r.body).expect("JSON error body");
                assert!(v["description"].is_string(), "{}", c.uri);
            }
            if r.status == StatusCode::OK && who != Who::None {
                let cc = r
                    .headers
                    .get(header::CACHE_CONTROL)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                assert!(cc.contains("private"), "{}: {cc}", c.uri);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partners_get_no_points_and_public_lists_hide_them() {
    for uri in [
        "/collections/incidents/items",
        "/collections/incidents/items?f=csv",
        "/collections/incidents/items?f=csv&limit=10000&types=burglary",
        "/collections/incidents/items/1?f=csv",
    ] {
        assert_eq!(get(uri, Who::Partner).await.status, StatusCode::FORBIDDEN);
        assert_eq!(get(uri, Who::None).await.status, StatusCode::UNAUTHORIZED);
    }
    let ids = |v: &Value| -> Vec<String> {
        v["collections"]
            .as_array()
            .expect("collections")
            .iter()
            .map(|c| c["id"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let public = ids(&json("/collections", Who::None).await);
    assert!(!public.contains(&"incidents".into()) && !public.contains(&"patrol".into()));
    assert!(public.contains(&"lsoas".into()));
    let analyst = ids(&json("/collections", Who::Analyst).await);
    assert!(analyst.contains(&"incidents".into()));
    // A partner's CSV of an aggregate has no exact Gi* and withholds small counts.
    let r = get("/collections/patrol/items?f=csv", Who::Partner).await;
    let text = String::from_utf8(r.body).expect("UTF-8");
    let header_row = text.lines().next().unwrap_or("");
    assert!(header_row.contains("suppressed"), "{header_row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_categories_are_district_level_below_analyst() {
    let ty = CrimeType::DomesticAbuse.slug();
    let fine = format!("/collections/lsoas/items?types={ty}");
    assert_eq!(get(&fine, Who::Partner).await.status, StatusCode::FORBIDDEN);
    assert_eq!(get(&fine, Who::Analyst).await.status, StatusCode::OK);
    let tile = format!("/tiles/heatmap/9/252/165.png?types={ty}");
    assert_eq!(get(&tile, Who::None).await.status, StatusCode::FORBIDDEN);
    let cells = format!("/tiles/cells/9/252/165.mvt?types=burglary,{ty}");
    assert_eq!(get(&cells, Who::None).await.status, StatusCode::FORBIDDEN);
    let coarse = format!("/collections/districts/items?types={ty}");
    assert_eq!(get(&coarse, Who::None).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heatmap_and_cells_differ_below_analyst() {
    let legend = json("/tiles/heatmap/legend?bandwidth=100", Who::None).await;
    assert!(legend["bandwidth_m"].as_f64().unwrap_or(0.0) >= 1000.0);
    // Drawn from the perturbed grid, withheld below k per cell.
    assert_eq!(
        legend["disclosure"]["grid"]["min_count_per_cell"].as_u64(),
        Some(K)
    );
    assert_eq!(legend["disclosure"]["grid"]["cell_m"].as_f64(), Some(500.0));
    assert_eq!(legend["disclosure"]["control"]["perturbed"], true);
    let analyst = json("/tiles/heatmap/legend?bandwidth=100", Who::Analyst).await;
    assert_eq!(analyst["bandwidth_m"].as_f64(), Some(100.0));
    assert!(analyst["disclosure"].is_null());
    // A zoomed-in tile of one month: the public tile (from the grid) is not the
    // analyst's (from the points).
    let month = first_month().await;
    let uri = format!("/tiles/heatmap/13/4034/2648.png?from={month}&to={month}&bandwidth=1000");
    let public = get(&uri, Who::None).await;
    let full = get(&uri, Who::Analyst).await;
    assert_eq!(public.status, StatusCode::OK);
    assert_eq!(full.status, StatusCode::OK);
    let opaque = |png: &[u8]| -> usize {
        let img = image::load_from_memory(png).expect("PNG").to_rgba8();
        img.pixels().filter(|p| p.0[3] > 0).count()
    };
    assert!(opaque(&full.body) > 0, "the analyst's tile draws");
    assert_ne!(
        public.body, full.body,
        "the public tile is not drawn from the points"
    );
    let pub_cells = get("/tiles/cells/11/1008/662.mvt", Who::None).await;
    let an_cells = get("/tiles/cells/11/1008/662.mvt", Who::Analyst).await;
    assert_eq!(pub_cells.status, StatusCode::OK);
    assert_ne!(pub_cells.body, an_cells.body, "public cells carry no gi_z");
}

async fn first_month() -> String {
    let c = json("/collections/districts", Who::None).await;
    let start = c["extent"]["temporal"]["interval"][0][0]
        .as_str()
        .expect("start");
    start[..7].to_owned()
}

/// True counts of one month and type per LSOA code and per district code, from the store.
fn true_counts(month: &str, ty: CrimeType) -> (HashMap<String, u64>, HashMap<String, u64>) {
    let store = STATE.store();
    let g = &store.geography;
    let m: hotspot::model::Month = month.parse().expect("month");
    let (mut lsoa, mut district) = (HashMap::new(), HashMap::new());
    let inc = &store.incidents;
    for i in 0..inc.len() {
        if inc.month[i] != m.index() || inc.ctype[i] != ty as u8 {
            continue;
        }
        let l = inc.loc[i] as usize;
        if let Some(code) = g.lsoas.codes.get(usize::from(store.locations.lsoa[l])) {
            *lsoa.entry(code.clone()).or_insert(0) += 1;
        }
        if let Some(code) = g
            .districts
            .codes
            .get(usize::from(store.locations.district[l]))
        {
            *district.entry(code.clone()).or_insert(0) += 1;
        }
    }
    (lsoa, district)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppressed_lsoas_cannot_be_differenced_out_of_district_totals() {
    let month = first_month().await;
    let ty = CrimeType::Burglary;
    let (true_lsoa, true_district) = true_counts(&month, ty);
    let filter = format!("datetime={month}&types={}", ty.slug());
    let districts = json(
        &format!("/collections/districts/items?{filter}&limit=100"),
        Who::None,
    )
    .await;
    let mut checked = 0;
    let mut suppressed_seen = 0;
    for d in districts["features"].as_array().expect("features") {
        let code = d["id"].as_str().expect("id");
        let truth = true_district.get(code).copied().unwrap_or(0);
        match d["properties"]["count"].as_u64() {
            // Perturbed (cell-key perturbation): within +-2 of the truth, no longer equal.
            Some(c) => assert!(c.abs_diff(truth) <= PERTURBATION, "district {code}"),
            None => {
                assert!(truth < K || d["properties"]["suppressed"] == true);
                continue;
            }
        }
        let lsoas = json(
            &format!("/collections/lsoas/items?{filter}&district={code}&limit=10000"),
            Who::None,
        )
        .await;
        let mut visible = 0u64;
        let mut withheld: Vec<u64> = Vec::new();
        for f in lsoas["features"].as_array().expect("features") {
            let lsoa = f["id"].as_str().expect("id");
            let real = true_lsoa.get(lsoa).copied().unwrap_or(0);
            let p = &f["properties"];
            assert!(p["per_km2"].is_null() == p["count"].is_null() || real == 0);
            match p["count"].as_u64() {
                Some(c) => {
                    assert!(c.abs_diff(real) <= PERTURBATION, "LSOA {lsoa}");
                    assert!(!(1..K).contains(&c), "LSOA {lsoa}: {c} shown");
                    visible += c;
                }
                None => withheld.push(real),
            }
        }
        // The published total and the visible LSOAs are each perturbed from their own
        // records, so total - visible is the withheld LSOAs' sum plus the noise of every
        // term: it can equal a withheld count only by the p-table's chance (the rate is
        // tested in `tests/adversarial.rs`). Secondary suppression still withholds at
        // least two non-zero LSOAs in a district with one withheld.
        let _ = visible;
        if !withheld.is_empty() {
            suppressed_seen += 1;
            assert!(
                withheld.iter().filter(|&&c| c > 0).count() >= 2,
                "district {code}: one non-zero LSOA withheld: {withheld:?}"
            );
        }
        checked += 1;
    }
    assert!(checked > 0, "no district total visible");
    assert!(
        suppressed_seen > 0,
        "no suppression happened: the test proves nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_cells_withhold_small_counts_with_their_parents() {
    let month = first_month().await;
    let filter = format!("datetime={month}&types=burglary&limit=10000");
    let fine = json(&format!("/collections/h3-8/items?{filter}"), Who::None).await;
    let coarse = json(&format!("/collections/h3-7/items?{filter}"), Who::None).await;
    let truth = json(&format!("/collections/h3-8/items?{filter}"), Who::Analyst).await;
    let real: HashMap<String, u64> = truth["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap_or("").to_owned(),
                f["properties"]["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let parents: HashMap<String, Option<u64>> = coarse["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap_or("").to_owned(),
                f["properties"]["count"].as_u64(),
            )
        })
        .collect();
    // Children by parent: visible sum and withheld true values.
    let mut by_parent: HashMap<String, (u64, Vec<u64>)> = HashMap::new();
    let mut any_withheld = false;
    for f in fine["features"].as_array().expect("features") {
        let id = f["id"].as_str().expect("id");
        assert!(f["properties"]["gi_z"].is_null(), "public gi_z for {id}");
        let cell: h3o::CellIndex = id.parse().expect("cell");
        let parent = cell
            .parent(h3o::Resolution::Seven)
            .expect("parent")
            .to_string();
        let e = by_parent.entry(parent).or_default();
        match f["properties"]["count"].as_u64() {
            Some(c) => {
                assert!(!(1..K).contains(&c));
                e.0 += c;
            }
            None => {
                any_withheld = true;
                e.1.push(real[id]);
            }
        }
    }
    assert!(any_withheld, "no cell withheld: the test proves nothing");
    for (p, (visible, withheld)) in by_parent {
        let Some(Some(total)) = parents.get(&p) else {
            continue;
        };
        if withheld.is_empty() {
            continue;
        }
        // Parent and children are perturbed from their own records (and H3 children do
        // not nest exactly), so total - visible is the withheld sum plus noise, not a
        // withheld count but by the p-table's chance (tested in `tests/adversarial.rs`).
        // A parent whose only non-zero withheld child is published beside it is such a
        // case: its published total is that child's count perturbed twice over.
        let _ = (total, visible);
        assert!(
            withheld.iter().any(|&c| c > 0) || withheld.is_empty(),
            "{p}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_map_cells_and_details_are_disclosure_controlled_below_analyst() {
    let uri = "/map/api/cells?res=9&types=burglary&from=2023-01&to=2023-03";
    let features = |v: &Value| v["features"].as_array().cloned().unwrap_or_default();
    let public: Value = serde_json::from_slice(&get(uri, Who::None).await.body).expect("JSON");
    let analyst: Value = serde_json::from_slice(&get(uri, Who::Analyst).await.body).expect("JSON");
    let true_counts: std::collections::HashMap<String, u64> = features(&analyst)
        .iter()
        .map(|f| {
            let p = &f["properties"];
            (
                p["cell"].as_str().unwrap_or("").to_owned(),
                p["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert!(
        true_counts.values().any(|&c| c > 0 && c < 5),
        "no small counts to withhold"
    );
    let mut withheld = 0;
    for f in features(&public) {
        let p = &f["properties"];
        let cell = p["cell"].as_str().unwrap_or("");
        assert!(
            p["value"].is_null(),
            "public statistic published exactly: {p}"
        );
        match p["count"].as_u64() {
            Some(c) => {
                assert!(c == 0 || c >= 5, "{cell}: small count {c} published");
                // Perturbed: within +-2 of the truth (a cell the analyst's answer leaves
                // out is empty: the public bins, of perturbed counts, may draw it).
                let truth = true_counts.get(cell).copied().unwrap_or(0);
                assert!(truth.abs_diff(c) <= PERTURBATION, "{cell}: {c} for {truth}");
                assert_eq!(truth == 0, c == 0, "{cell}: zeros stay zero");
            }
            None => {
                assert_eq!(p["suppressed"], Value::Bool(true));
                withheld += 1;
            }
        }
    }
    // Every cell below k - 2 (perturbed, still below k) is withheld, and more beside them.
    let primary = true_counts.values().filter(|&&c| c > 0 && c < 3).count();
    assert!(withheld > primary, "withheld {withheld}, primary {primary}");
    assert!(
        features(&analyst)
            .iter()
            .all(|f| f["properties"]["suppressed"].is_null())
    );

    // Details of a cell with a small count: nothing below k, no z or p.
    let (small, _) = true_counts
        .iter()
        .find(|(_, c)| **c > 0 && **c < 5)
        .expect("a small cell");
    let d = format!("/map/api/details?kind=cell&id={small}&types=burglary&from=2023-01&to=2023-03");
    let v: Value = serde_json::from_slice(&get(&d, Who::None).await.body).expect("JSON");
    assert!(
        v["total"].is_null() && v["suppressed"] == Value::Bool(true),
        "{v}"
    );
    for s in v["series"].as_array().expect("series") {
        assert!(s.is_null(), "{v}");
    }
    assert!(v["trend"]["z"].is_null());
    let v: Value = serde_json::from_slice(&get(&d, Who::Analyst).await.body).expect("JSON");
    assert!(v["total"].as_u64().is_some_and(|t| t > 0 && t < 5), "{v}");
}

/// Below analyst the `h3-9` grid's `gi_bin` is of its perturbed counts, and `hotspots`
/// lists exactly its hot cells: which cells are hot follows from the published counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_hot_spots_are_the_hot_cells_of_the_published_grid() {
    let q = "types=burglary&district=Preston&limit=10000";
    let rows = |v: &Value| -> HashMap<String, i64> {
        v["features"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|f| {
                let p = &f["properties"];
                (
                    p["cell"].as_str().unwrap_or("").to_owned(),
                    p["gi_bin"].as_i64().unwrap_or(0),
                )
            })
            .collect()
    };
    let public_grid = rows(&json(&format!("/collections/h3-9/items?{q}"), Who::None).await);
    let analyst_grid = rows(&json(&format!("/collections/h3-9/items?{q}"), Who::Analyst).await);
    let public_hot = rows(&json(&format!("/collections/hotspots/items?{q}"), Who::None).await);
    let hot_in_grid: HashSet<&String> = public_grid
        .iter()
        .filter(|(_, b)| **b > 0)
        .map(|(c, _)| c)
        .collect();
    let listed: HashSet<&String> = public_hot.keys().collect();
    assert!(!listed.is_empty(), "no public hot spots");
    assert_eq!(
        listed, hot_in_grid,
        "hotspots are not the published grid's hot cells"
    );
    // The bins are not the analyst's (true counts) everywhere: perturbation moved some.
    let differ = public_grid
        .iter()
        .filter(|(c, b)| analyst_grid.get(*c).is_some_and(|a| a != *b))
        .count();
    assert!(
        differ > 0,
        "public bins equal the true counts' bins in every cell"
    );
}

/// `GET /admin/ingest` lists the jobs newest first, by state and up to a limit, each as
/// its own URL gives it; only admin may (the route list above checks the roles).
#[tokio::test]
async fn the_job_list_gives_the_newest_jobs_first() {
    let mut ids = Vec::new();
    for name in ["first.csv", "second.csv"] {
        let r = send(
            Method::POST,
            &format!("/admin/ingest?name={name}"),
            Who::Admin,
            b"not,a,known,header\n1,2,3,4\n".to_vec(),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let v: Value = serde_json::from_slice(&r.body).expect("job");
        ids.push(v["id"].as_str().expect("id").to_owned());
    }
    // Wait for both to run (each is refused by the ingest: an unknown header).
    let started = std::time::Instant::now();
    loop {
        let done = json("/admin/ingest?state=done&limit=1000", Who::Admin).await;
        let got: Vec<&str> = done["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .filter_map(|j| j["id"].as_str())
            .collect();
        if ids.iter().all(|i| got.contains(&i.as_str())) {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 300,
            "jobs did not finish: {done}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let all = json("/admin/ingest?limit=1000", Who::Admin).await;
    let listed: Vec<&str> = all["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|j| j["id"].as_str())
        .collect();
    let (a, b) = (
        listed
            .iter()
            .position(|i| *i == ids[0])
            .expect("first listed"),
        listed
            .iter()
            .position(|i| *i == ids[1])
            .expect("second listed"),
    );
    assert!(b < a, "newest first: {listed:?}");
    // Each entry is what the job's own URL gives.
    let own = json(&format!("/admin/ingest/{}", ids[1]), Who::Admin).await;
    assert_eq!(all["jobs"][b], own);
    let one = json("/admin/ingest?limit=1", Who::Admin).await;
    assert_eq!(one["numberReturned"], 1);
    assert_eq!(one["jobs"][0]["id"], listed[0]);
    let queued = json("/admin/ingest?state=queued", Who::Admin).await;
    assert!(
        queued["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .all(|j| j["state"] == "queued"),
        "{queued}"
    );
    for bad in [
        "/admin/ingest?state=lost",
        "/admin/ingest?limit=0",
        "/admin/ingest?limit=1001",
        "/admin/ingest?page=2",
    ] {
        assert_eq!(
            get(bad, Who::Admin).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
}
