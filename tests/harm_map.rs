//! The map's harm measure (`serve --harm FILE`, `/map/api/cells?measure=harm`) through
//! the router: each cell's harm against a brute-force sum of its incidents' weights, Gi*
//! of harm against a brute-force Gi* over the same cells, the counts unchanged; refused
//! below analyst, without weights, and for weights that miss a category of the filter.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use h3o::{CellIndex, Resolution};
use hotspot::analysis::Filter;
use hotspot::model::CrimeType;
use hotspot::serve::{AppState, Settings, load_or_seed, router};
use hotspot::stats::harm::HarmWeights;
use hotspot::stats::study::{Study, Units};
use serde_json::Value;
use tower::ServiceExt as _;

mod common;
use common::{ANALYST_KEY, analyst_settings};

/// Category `t`'s weight in the test file: its code plus one.
fn weight(t: u8) -> f64 {
    f64::from(t) + 1.0
}

fn weights(file: &str, only: Option<&[CrimeType]>) -> HarmWeights {
    let mut text = String::from("category,weight,source\n");
    for t in CrimeType::ALL {
        if only.is_none_or(|o| o.contains(t)) {
            text.push_str(&format!(
                "{},{},test weights\n",
                t.label(),
                weight(*t as u8)
            ));
        }
    }
    HarmWeights::parse(file, &text).expect("weights")
}

fn state(harm: Option<HarmWeights>) -> AppState {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = load_or_seed(dir.path()).expect("the bundled fixtures load");
    let settings = Settings {
        request_timeout_secs: 900.0,
        ..analyst_settings(dir.keep())
    };
    let s = AppState::new(store, settings);
    match harm {
        Some(h) => s.with_harm(h),
        None => s,
    }
}

static WITH: LazyLock<AppState> =
    LazyLock::new(|| state(Some(weights("/somewhere/harm.csv", None))));

async fn get(state: &AppState, uri: &str, key: bool) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .uri(uri)
        .header(header::HOST, "harm.test");
    if key {
        req = req.header(header::AUTHORIZATION, format!("Bearer {ANALYST_KEY}"));
    }
    let res = router(state.clone())
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let status = res.status();
    let body = to_bytes(res.into_body(), usize::MAX).await.expect("body");
    (status, serde_json::from_slice(&body).expect("JSON"))
}

async fn ok(uri: &str) -> Value {
    let (status, v) = get(&WITH, uri, true).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {v}");
    v
}

/// Each feature's properties by cell.
fn by_cell(fc: &Value) -> HashMap<String, Value> {
    fc["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| {
            let p = f["properties"].clone();
            (p["cell"].as_str().expect("cell").to_owned(), p)
        })
        .collect()
}

const R8: Resolution = Resolution::Eight;

/// Harm per resolution 8 cell by brute force over the store's incidents of `types`.
fn brute_harm(types: &[CrimeType]) -> HashMap<CellIndex, f64> {
    let store = WITH.store();
    let (inc, l) = (&store.incidents, &store.locations);
    let mut out = HashMap::new();
    for i in 0..inc.len() {
        let t = inc.ctype[i];
        if !types.iter().any(|x| *x as u8 == t) {
            continue;
        }
        if let Some(c) = l.cell(inc.loc[i] as usize, R8) {
            *out.entry(c).or_insert(0.0) += weight(t);
        }
    }
    out
}

#[tokio::test]
async fn cells_by_harm_sum_their_weights_and_gi_star_is_of_harm() {
    let all: Vec<CrimeType> = Filter::default().types.iter().collect();
    let harm = ok("/map/api/cells?res=8&method=counts&measure=harm").await;
    let counts = ok("/map/api/cells?res=8&method=counts").await;
    let want = brute_harm(&all);
    let (h, c) = (by_cell(&harm), by_cell(&counts));
    assert_eq!(h.len(), c.len());
    assert!(h.len() > 100);
    for (cell, p) in &h {
        let cell_ix: CellIndex = cell.parse().expect("a cell");
        let brute = want.get(&cell_ix).copied().unwrap_or(0.0);
        let got = p["harm"].as_f64().expect("harm");
        assert!((got - brute).abs() < 1e-3, "{cell}: {got} vs {brute}");
        assert_eq!(p["value"].as_f64(), Some(got), "counts' value is the harm");
        assert_eq!(p["count"], c[cell]["count"], "{cell}: count unchanged");
        assert!(
            c[cell].get("harm").is_none(),
            "no harm without measure=harm"
        );
    }
    // Weights change which cells lead.
    let top = |m: &HashMap<String, Value>, key: &str| {
        let mut v: Vec<(&String, f64)> = m
            .iter()
            .map(|(k, p)| (k, p[key].as_f64().unwrap_or(0.0)))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        v.into_iter()
            .take(20)
            .map(|x| x.0.clone())
            .collect::<Vec<_>>()
    };
    assert_ne!(top(&h, "harm"), top(&c, "count"));

    // Gi* (binary weights, the cell and its ring, no FDR) of the brute-force harm over
    // the study's cells, by hand.
    let gi = by_cell(&ok("/map/api/cells?res=8&method=gistar&fdr=false&measure=harm").await);
    let study = Study::new(WITH.store(), Units::H3(R8), &Filter::default());
    let n = study.len() as f64;
    let x: Vec<f64> = study
        .cells
        .iter()
        .map(|c| want.get(c).copied().unwrap_or(0.0))
        .collect();
    let mean = x.iter().sum::<f64>() / n;
    let sd = (x.iter().map(|v| v * v).sum::<f64>() / n - mean * mean).sqrt();
    let index: HashMap<CellIndex, usize> = study
        .cells
        .iter()
        .enumerate()
        .map(|(i, c)| (*c, i))
        .collect();
    let mut checked = 0;
    for (i, cell) in study.cells.iter().enumerate() {
        let Some(p) = gi.get(&cell.to_string()) else {
            continue;
        };
        let ring: Vec<usize> = cell
            .grid_disk::<Vec<_>>(1)
            .iter()
            .filter_map(|c| index.get(c).copied())
            .collect();
        let w = ring.len() as f64;
        let sum: f64 = ring.iter().map(|&j| x[j]).sum();
        let z = (sum - mean * w) / (sd * ((n * w - w * w) / (n - 1.0)).sqrt());
        let got = p["value"].as_f64().expect("z");
        assert!(
            (got - z).abs() < 1e-3,
            "{cell}: z {got} vs {z} (harm {})",
            x[i]
        );
        checked += 1;
    }
    assert!(checked > 100, "{checked}");
}

#[tokio::test]
async fn harm_is_refused_below_analyst_without_weights_and_for_missing_categories() {
    // The public: 403, whatever the weights.
    let (status, v) = get(&WITH, "/map/api/cells?res=8&measure=harm", false).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(v.to_string().contains("for analysts"), "{v}");
    // The public's counts carry no harm.
    let (status, v) = get(&WITH, "/map/api/cells?res=8&method=counts", false).await;
    assert_eq!(status, StatusCode::OK);
    assert!(v["features"][0]["properties"].get("harm").is_none());
    let (status, v) = get(&WITH, "/map/api/cells?res=8&measure=weight", true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");

    // No weights configured: 400 saying how to give them; meta says none.
    let without = state(None);
    let (status, v) = get(&without, "/map/api/cells?res=8&measure=harm", true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v.to_string().contains("--harm"), "{v}");
    let (_, meta) = get(&without, "/map/api/meta", false).await;
    assert!(meta["harm"].is_null());

    // Weights for burglary only: burglary by harm is fine, all types name what is missing.
    let partial = state(Some(weights(
        "burglary-only.csv",
        Some(&[CrimeType::Burglary]),
    )));
    let (status, v) = get(
        &partial,
        "/map/api/cells?res=8&method=counts&measure=harm&types=burglary",
        true,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = get(&partial, "/map/api/cells?res=8&measure=harm", true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let text = v.to_string();
    assert!(
        text.contains("burglary-only.csv: no weight for Anti-social behaviour"),
        "{text}"
    );

    // Meta describes the weights by file name only (not the server's directories).
    let meta = ok("/map/api/meta").await;
    assert_eq!(meta["harm"]["file"], "harm.csv");
    assert_eq!(meta["harm"]["sources"][0], "test weights");
    let cats = meta["harm"]["categories"].as_array().expect("categories");
    assert_eq!(cats.len(), CrimeType::ALL.len());
    assert!(!meta.to_string().contains("/somewhere"));
}
