//! Below analyst every statistic is of the published (cell-key perturbed) counts, never of
//! the exact ones (`serve::disclosure::basis`): a Gi* bin or an emerging category of the
//! exact counts says what the perturbation hides (a cell published as 6 whose exact count
//! is 4, say, shows in a bin its published neighbours cannot explain).
//!
//! Each test computes the reference here, from the store: the perturbed counts with the
//! p-table directly (`PTable::perturb`, each cell and each cell-month from its own key
//! sum), then Gi* (one ring, binary weights with self, FDR) and the emerging hot spot
//! analysis (Esri's default window, FDR) of them; and the same on the exact counts for the
//! analyst. Every public answer must equal the perturbed reference, every analyst answer
//! the exact one, and the two references must differ on the cells checked (else the test
//! could not tell which counts the server used: it fails if they do not).
//!
//! - `map_cells_are_of_the_published_counts`: `/map/api/cells` at resolution 8 (bins and
//!   categories, and that no cell with a published bin or pattern is left out).
//! - `tiles_details_and_collections_agree_with_the_published_counts`: the cell tiles, the
//!   details panel (bin, category, trend direction), the OGC `h3-8`, `emerging` and
//!   `patrol` collections.
//! - `measure` (ignored; `cargo test --test disclosure_stats measure -- --ignored
//!   --nocapture`): how many bins and categories change at resolutions 7 to 9.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use h3o::{CellIndex, Resolution};
use hotspot::analysis::{AnalysisStore, Filter};
use hotspot::serve::auth::{ApiKey, Role, hash_key};
use hotspot::serve::disclosure::ckp::PTable;
use hotspot::serve::disclosure::without_sensitive;
use hotspot::serve::{AppState, Settings, load_or_seed, router};
use hotspot::stats::emerging::{self, Category};
use hotspot::stats::gi_star::gi_star;
use hotspot::stats::mann_kendall::mann_kendall;
use hotspot::stats::study::{Contiguity, Study, Units};
use serde_json::Value;
use tower::ServiceExt as _;

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
        ],
        ..Settings::default()
    };
    AppState::new(store, settings)
});

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Public,
    /// The operational collections (`emerging`, `patrol`), disclosure-controlled as public.
    Partner,
    Analyst,
}

async fn json(uri: &str, who: Who) -> Value {
    let r = get(uri, who).await;
    assert_eq!(
        r.0,
        StatusCode::OK,
        "{uri} as {who:?}: {}",
        String::from_utf8_lossy(&r.1)
    );
    serde_json::from_slice(&r.1).expect("JSON")
}

async fn get(uri: &str, who: Who) -> (StatusCode, Vec<u8>) {
    let key = match who {
        Who::Public => "kiosk-key",
        Who::Partner => "council-key",
        Who::Analyst => "analyst-key",
    };
    let req = Request::builder()
        .uri(uri)
        .header(header::HOST, "stats.test")
        .header("x-api-key", key)
        .body(Body::empty())
        .expect("request");
    let resp = router(STATE.clone())
        .oneshot(req)
        .await
        .expect("infallible");
    let status = resp.status();
    let body = to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    (status, body.to_vec())
}

fn store() -> Arc<AnalysisStore> {
    STATE.store()
}

/// The filter every public answer here is computed under: all months, every type the
/// public may see below district level.
fn public_filter() -> Filter {
    let d = &STATE.settings().disclosure;
    without_sensitive(&Filter::default(), d.sensitive_types(), false).expect("no type named")
}

/// The statistics of one study, computed here.
struct Reference {
    cells: Vec<CellIndex>,
    index: HashMap<CellIndex, usize>,
    bins: Vec<i8>,
    categories: Option<Vec<Category>>,
    /// Per cell, the monthly series (NaN for a missing month), for the trend.
    series: Vec<Vec<f64>>,
}

impl Reference {
    fn new(res: Resolution, filter: &Filter, perturbed: bool) -> Self {
        let study = Study::new(store(), Units::H3(res), filter);
        let table = PTable::new(STATE.settings().disclosure.ckp_seed);
        let view = |n: f64, key: u32| {
            if perturbed {
                table.perturb(n as u64, key) as f64
            } else {
                n
            }
        };
        let counts: Vec<f64> = (0..study.len())
            .map(|i| view(study.counts[i], study.keys[i]))
            .collect();
        let w = study.weights(1, Contiguity::Queen, true);
        let bins = gi_star(&counts, &w, true).bin;
        let m = study.monthly(filter);
        let values: Vec<Vec<f64>> = m
            .values
            .iter()
            .zip(&m.keys)
            .map(|(row, keys)| row.iter().zip(keys).map(|(&n, &k)| view(n, k)).collect())
            .collect();
        let categories = (m.observed_len() >= 3).then(|| {
            emerging::emerging_hot_spots_observed(
                &values,
                &m.observed,
                &w,
                emerging::ESRI_DEFAULT_WINDOW,
                true,
                emerging::DEFAULT_TREND_ALPHA,
            )
            .expect("emerging")
            .category
        });
        let series = (0..study.len())
            .map(|i| {
                (0..values.len())
                    .map(|t| {
                        if m.observed[t] {
                            values[t][i]
                        } else {
                            f64::NAN
                        }
                    })
                    .collect()
            })
            .collect();
        Reference {
            index: study
                .cells
                .iter()
                .enumerate()
                .map(|(i, c)| (*c, i))
                .collect(),
            cells: study.cells.clone(),
            bins,
            categories,
            series,
        }
    }

    fn category(&self, i: usize) -> Category {
        self.categories
            .as_ref()
            .map_or(Category::NoPattern, |c| c[i])
    }

    fn direction(&self, i: usize) -> &'static str {
        match mann_kendall(&self.series[i]).direction(0.05) {
            Some(true) => "increasing",
            Some(false) => "decreasing",
            None => "no significant trend",
        }
    }
}

/// Exact and perturbed references of the public filter at one resolution, computed once.
fn references(res: Resolution) -> &'static (Reference, Reference) {
    static R8: LazyLock<(Reference, Reference)> = LazyLock::new(|| both(Resolution::Eight));
    static R9: LazyLock<(Reference, Reference)> = LazyLock::new(|| both(Resolution::Nine));
    fn both(res: Resolution) -> (Reference, Reference) {
        let f = public_filter();
        (
            Reference::new(res, &f, false),
            Reference::new(res, &f, true),
        )
    }
    match res {
        Resolution::Eight => &R8,
        Resolution::Nine => &R9,
        _ => unreachable!("only 8 and 9 are used"),
    }
}

/// The cells whose exact and perturbed categories differ (the cells that tell which
/// counts an answer used).
fn telling(exact: &Reference, published: &Reference) -> Vec<usize> {
    (0..exact.cells.len())
        .filter(|&i| {
            exact.category(i) != published.category(i) || exact.bins[i] != published.bins[i]
        })
        .collect()
}

fn category_of(label: Option<&str>) -> Category {
    let Some(label) = label else {
        return Category::NoPattern;
    };
    Category::ALL
        .into_iter()
        .find(|c| c.label() == label)
        .unwrap_or_else(|| panic!("unknown category {label}"))
}

/// `cell -> (bin, category)` of a `/map/api/cells` answer.
fn map_cells(doc: &Value) -> HashMap<String, (i8, Category)> {
    doc["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| {
            let p = &f["properties"];
            (
                p["cell"].as_str().expect("cell").to_owned(),
                (
                    p["bin"].as_i64().expect("bin") as i8,
                    category_of(p["category"].as_str()),
                ),
            )
        })
        .collect()
}

/// Checks an answer's `cell -> (bin, category)` against a reference: every cell it has
/// agrees, and every cell with a bin or a pattern in the reference is in it.
fn agrees(
    what: &str,
    got: &HashMap<String, (i8, Option<Category>)>,
    r: &Reference,
    must_list: impl Fn(usize) -> bool,
) {
    let mut wrong = vec![];
    for (cell, (bin, cat)) in got {
        let i = r.index[&cell.parse::<CellIndex>().expect("cell")];
        if *bin != r.bins[i] || cat.is_some_and(|c| c != r.category(i)) {
            wrong.push(format!(
                "{cell}: {bin}/{cat:?}, reference {}/{:?}",
                r.bins[i],
                r.category(i)
            ));
        }
    }
    let missing: Vec<String> = (0..r.cells.len())
        .filter(|&i| must_list(i) && !got.contains_key(&r.cells[i].to_string()))
        .map(|i| r.cells[i].to_string())
        .collect();
    assert!(
        wrong.is_empty() && missing.is_empty(),
        "{what}: {} of {} differ from the reference (first {:?}); {} left out (first {:?})",
        wrong.len(),
        got.len(),
        wrong.first(),
        missing.len(),
        missing.first()
    );
}

fn with_cat(m: HashMap<String, (i8, Category)>) -> HashMap<String, (i8, Option<Category>)> {
    m.into_iter().map(|(k, (b, c))| (k, (b, Some(c)))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_cells_are_of_the_published_counts() {
    let (exact, published) = references(Resolution::Eight);
    let differ = telling(exact, published);
    assert!(
        differ.len() >= 5,
        "only {} cells tell exact from perturbed: the test could not fail",
        differ.len()
    );
    let uri = "/map/api/cells?res=8&method=gistar";
    let public_doc = json(uri, Who::Public).await;
    let analyst_doc = json(uri, Who::Analyst).await;
    assert!(
        public_doc["disclosure"]["statistics"]
            .as_str()
            .is_some_and(|s| s.contains("perturbed")),
        "the public answer says what its bins are of"
    );
    assert!(analyst_doc["disclosure"].is_null());
    let public = with_cat(map_cells(&public_doc));
    let analyst = with_cat(map_cells(&analyst_doc));
    let shown = |r: &'static Reference| {
        move |i: usize| r.bins[i] != 0 || r.category(i) != Category::NoPattern
    };
    agrees("public map cells", &public, published, shown(published));
    agrees("analyst map cells", &analyst, exact, shown(exact));
    // The telling cells, as each caller sees them.
    let told = differ
        .iter()
        .filter(|&&i| public.contains_key(&published.cells[i].to_string()))
        .count();
    assert!(told >= 5, "{told} telling cells in the public answer");
}

/// `cell -> (gi_bin, category)` of an MVT tile's `cells` layer (a minimal reader).
fn tile_cells(tile: &[u8]) -> HashMap<String, (i8, Category)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (byte, rest) = b.split_first().expect("varint");
            *b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        v
    }
    /// (field, varint, bytes)
    fn fields(mut b: &[u8]) -> Vec<(u64, u64, &[u8])> {
        let mut out = vec![];
        while !b.is_empty() {
            let key = varint(&mut b);
            match key & 7 {
                0 => out.push((key >> 3, varint(&mut b), &b[..0])),
                2 => {
                    let n = varint(&mut b) as usize;
                    let (v, rest) = b.split_at(n);
                    b = rest;
                    out.push((key >> 3, 0, v));
                }
                1 => b = &b[8..],
                5 => b = &b[4..],
                w => panic!("wire type {w}"),
            }
        }
        out
    }
    #[derive(Clone)]
    enum Val {
        Str(String),
        Int(i64),
        Other,
    }
    let mut out = HashMap::new();
    for (_, _, layer) in fields(tile).into_iter().filter(|f| f.0 == 3) {
        let lf = fields(layer);
        let keys: Vec<String> = lf
            .iter()
            .filter(|f| f.0 == 3)
            .map(|f| String::from_utf8(f.2.to_vec()).expect("utf-8"))
            .collect();
        let values: Vec<Val> = lf
            .iter()
            .filter(|f| f.0 == 4)
            .map(|f| match fields(f.2).first() {
                Some((1, _, s)) => Val::Str(String::from_utf8(s.to_vec()).expect("utf-8")),
                Some((6, v, _)) => Val::Int((*v >> 1) as i64 ^ -((*v & 1) as i64)),
                Some((4 | 5, v, _)) => Val::Int(*v as i64),
                _ => Val::Other,
            })
            .collect();
        for (_, _, feat) in lf.iter().filter(|f| f.0 == 2) {
            let mut tags: HashMap<String, Val> = HashMap::new();
            for (f, _, t) in fields(feat) {
                if f == 2 {
                    let mut t = t;
                    let mut ids = vec![];
                    while !t.is_empty() {
                        ids.push(varint(&mut t) as usize);
                    }
                    for kv in ids.chunks(2) {
                        tags.insert(keys[kv[0]].clone(), values[kv[1]].clone());
                    }
                }
            }
            let (Some(Val::Str(cell)), Some(Val::Int(bin))) =
                (tags.get("cell"), tags.get("gi_bin"))
            else {
                panic!("a cell feature without cell or gi_bin");
            };
            let cat = match tags.get("category") {
                Some(Val::Str(s)) => category_of(Some(s)),
                _ => Category::NoPattern,
            };
            out.insert(cell.clone(), (*bin as i8, cat));
        }
    }
    out
}

fn tile_of(cell: CellIndex, z: u8) -> (u32, u32) {
    let ll = h3o::LatLng::from(cell);
    let n = f64::from(1u32 << z);
    let x = ((ll.lng() + 180.0) / 360.0 * n).floor() as u32;
    let lat = ll.lat().to_radians();
    let y = ((1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor()
        as u32;
    (x, y)
}

/// `code -> properties` of every feature of a collection (one page: they are all small).
async fn collection(id: &str, who: Who) -> HashMap<String, Value> {
    let doc = json(&format!("/collections/{id}/items?limit=10000"), who).await;
    assert!(
        doc["links"]
            .as_array()
            .is_none_or(|l| l.iter().all(|l| l["rel"] != "next")),
        "{id}: more than one page"
    );
    // Below analyst the answer says its statistics are of the perturbed counts.
    let says = doc["disclosure"]["statistics"].as_str().unwrap_or("");
    assert_eq!(
        says.contains("perturbed"),
        who != Who::Analyst,
        "{id} as {who:?}: disclosure member {:?}",
        doc["disclosure"]
    );
    doc["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| {
            (
                f["properties"]["cell"].as_str().expect("cell").to_owned(),
                f["properties"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_details_and_collections_agree_with_the_published_counts() {
    let (exact, published) = references(Resolution::Eight);
    let differ = telling(exact, published);

    // Cell tiles at zoom 11 (resolution 8) over the telling cells.
    let mut tiles: Vec<(u32, u32)> = differ
        .iter()
        .map(|&i| tile_of(published.cells[i], 11))
        .collect();
    tiles.sort_unstable();
    tiles.dedup();
    tiles.truncate(12);
    for (who, r) in [(Who::Public, published), (Who::Analyst, exact)] {
        let mut got = HashMap::new();
        for &(x, y) in &tiles {
            let (status, body) = get(&format!("/tiles/cells/11/{x}/{y}.mvt"), who).await;
            assert_eq!(status, StatusCode::OK);
            got.extend(tile_cells(&body));
        }
        let got = with_cat(got);
        assert!(
            got.len() > 10,
            "{} cells in {} tiles",
            got.len(),
            tiles.len()
        );
        let hits = differ
            .iter()
            .filter(|&&i| got.contains_key(&r.cells[i].to_string()))
            .count();
        assert!(hits >= 5, "{hits} telling cells in the tiles");
        agrees(&format!("{who:?} cell tiles"), &got, r, |_| false);
    }

    // The details panel of telling cells: bin, category and the trend of the series it
    // publishes.
    // Cells whose Mann-Kendall direction tells exact from perturbed months too.
    let trend_tells: Vec<usize> = (0..exact.cells.len())
        .filter(|&i| exact.direction(i) != published.direction(i))
        .take(4)
        .collect();
    assert!(
        !trend_tells.is_empty(),
        "no cell's trend tells exact from perturbed"
    );
    for &i in differ.iter().take(8).chain(&trend_tells) {
        let cell = published.cells[i];
        for (who, r) in [(Who::Public, published), (Who::Analyst, exact)] {
            let d = json(&format!("/map/api/details?kind=cell&id={cell}"), who).await;
            let bin = d["gi"]["bin"].as_i64().expect("bin") as i8;
            let cat = category_of(d["category"].as_str());
            assert_eq!(
                (bin, cat),
                (r.bins[i], r.category(i)),
                "details of {cell} as {who:?}"
            );
            assert_eq!(
                d["trend"]["direction"],
                r.direction(i),
                "trend of {cell} as {who:?}"
            );
        }
    }

    // OGC: the h3-8 grid's bins and the emerging collection's categories.
    for (who, r) in [(Who::Public, published), (Who::Analyst, exact)] {
        let grid = collection("h3-8", who).await;
        let got: HashMap<String, (i8, Option<Category>)> = grid
            .iter()
            .map(|(c, p)| {
                (
                    c.clone(),
                    (p["gi_bin"].as_i64().expect("gi_bin") as i8, None),
                )
            })
            .collect();
        agrees(&format!("{who:?} h3-8"), &got, r, |_| true);
        let op = if who == Who::Public {
            Who::Partner
        } else {
            who
        };
        let em = collection("emerging", op).await;
        let got: HashMap<String, (i8, Option<Category>)> = em
            .iter()
            .map(|(c, p)| {
                let i = r.index[&c.parse::<CellIndex>().expect("cell")];
                (
                    c.clone(),
                    (r.bins[i], Some(category_of(p["category"].as_str()))),
                )
            })
            .collect();
        agrees(&format!("{who:?} emerging"), &got, r, |i| {
            r.category(i) != Category::NoPattern
        });
    }

    // The patrol list (resolution 9): each place's bin, significance and trend.
    let (exact9, published9) = references(Resolution::Nine);
    for (who, r) in [(Who::Partner, published9), (Who::Analyst, exact9)] {
        let rows = collection("patrol", who).await;
        assert!(rows.len() >= 10, "{} patrol rows", rows.len());
        for (cell, p) in &rows {
            let i = r.index[&cell.parse::<CellIndex>().expect("cell")];
            let bin = p["gi_bin"].as_i64().expect("gi_bin") as i8;
            assert_eq!(bin, r.bins[i], "patrol {cell} as {who:?}");
            assert_eq!(p["significant"].as_bool(), Some(r.bins[i] > 0));
            assert_eq!(
                category_of(p["trend"].as_str()),
                r.category(i),
                "trend of {cell}"
            );
        }
    }
    let patrol_differs = {
        let rows = collection("patrol", Who::Partner).await;
        rows.keys()
            .filter(|c| {
                let i = exact9.index[&c.parse::<CellIndex>().expect("cell")];
                exact9.bins[i] != published9.bins[i] || exact9.category(i) != published9.category(i)
            })
            .count()
    };
    println!("patrol rows whose bin or trend differs exact vs perturbed: {patrol_differs}");
}

#[test]
#[ignore = "a measurement: cargo test --test disclosure_stats measure -- --ignored --nocapture"]
fn measure() {
    let f = public_filter();
    println!(
        "| Resolution | Gi* bins changed (of significant when exact) | Emerging categories changed (of patterned when exact) |"
    );
    println!("|---|---|---|");
    for res in [Resolution::Seven, Resolution::Eight, Resolution::Nine] {
        let e = Reference::new(res, &f, false);
        let p = Reference::new(res, &f, true);
        let n = e.cells.len();
        let sig = (0..n).filter(|&i| e.bins[i] != 0).count();
        let bins = (0..n).filter(|&i| e.bins[i] != p.bins[i]).count();
        let pat = (0..n)
            .filter(|&i| e.category(i) != Category::NoPattern)
            .count();
        let cats = (0..n).filter(|&i| e.category(i) != p.category(i)).count();
        println!("| {} | {bins} of {sig} | {cats} of {pat} |", u8::from(res));
    }
}
