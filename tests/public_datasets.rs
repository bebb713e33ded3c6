//! A dataset already public at street level (`disclosure.public_datasets`): an answer
//! below analyst every record of which comes from it is published exactly, and says so;
//! every other answer stays perturbed and suppressed, and with the setting empty (the
//! default) nothing is exempt.
//!
//! The store is the bundled sample (police.uk street files and a STATS19 extract) plus a
//! partner's extract (a generic CSV) holding burglaries: so robbery is police.uk's only,
//! burglary is police.uk's and the partner's, road collisions are STATS19's.

use std::sync::{Arc, LazyLock};

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use hotspot::analysis::AnalysisStore;
use hotspot::coverage::Dataset;
use hotspot::model::CrimeType;
use hotspot::serve::auth::{ApiKey, Role, hash_key};
use hotspot::serve::disclosure::DisclosureSettings;
use hotspot::serve::{AppState, Settings, load_or_seed, router};
use serde_json::Value;
use tower::ServiceExt as _;

/// Burglaries of a partner's extract, in the sample's months and area.
const PARTNER: &str = "Month,Crime type,Lon,Lat,Location\n\
    2021-03,Burglary,-2.700000,53.760000,Fishergate\n\
    2021-03,Burglary,-2.701000,53.761000,Friargate\n\
    2021-04,Burglary,-2.480000,53.748000,High Street\n";

static STORE: LazyLock<(std::path::PathBuf, Arc<AnalysisStore>)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temp dir").keep();
    drop(load_or_seed(&dir).expect("the bundled sample loads"));
    let mut store = hotspot::store::Store::open(&dir).expect("store");
    store
        .ingest_bytes("partner-burglary.csv", PARTNER.as_bytes(), None)
        .expect("the partner's extract goes in");
    drop(store);
    let geography = Arc::new(hotspot::spatial::Geography::bundled().expect("geography"));
    let analysis = hotspot::analysis::from_store(&dir, geography).expect("reload");
    (dir, Arc::new(analysis))
});

/// The bundled sample alone: police.uk's and STATS19's records, no partner's.
static SAMPLE: LazyLock<(std::path::PathBuf, Arc<AnalysisStore>)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temp dir").keep();
    drop(load_or_seed(&dir).expect("the bundled sample loads"));
    let geography = Arc::new(hotspot::spatial::Geography::bundled().expect("geography"));
    let analysis = hotspot::analysis::from_store(&dir, geography).expect("reload");
    (dir, Arc::new(analysis))
});

fn state(public: &[&str]) -> AppState {
    state_of(&STORE, public)
}

fn state_of((dir, store): &(std::path::PathBuf, Arc<AnalysisStore>), public: &[&str]) -> AppState {
    let key = |name: &str, role| ApiKey {
        name: name.into(),
        role,
        sha256: hash_key(&format!("{name}-key")),
    };
    let settings = Settings {
        data: dir.clone(),
        request_timeout_secs: 900.0,
        keys: vec![key("kiosk", Role::Public), key("analyst", Role::Analyst)],
        disclosure: DisclosureSettings {
            public_datasets: public.iter().map(|s| (*s).to_owned()).collect(),
            ..DisclosureSettings::default()
        },
        ..Settings::default()
    };
    settings.disclosure.validate().expect("valid settings");
    AppState::new((**store).clone(), settings)
}

static POLICE_PUBLIC: LazyLock<AppState> = LazyLock::new(|| state(&["police.uk"]));
static NONE_PUBLIC: LazyLock<AppState> = LazyLock::new(|| state(&[]));

/// The body of a GET that must answer 200.
async fn bytes(state: &AppState, uri: &str, key: Option<&str>) -> Vec<u8> {
    let mut req = Request::builder()
        .uri(uri)
        .header(header::HOST, "public.test");
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    let resp = router(state.clone())
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = resp.status();
    let body = to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    assert_eq!(
        status,
        StatusCode::OK,
        "{uri}: {}",
        String::from_utf8_lossy(&body)
    );
    body.to_vec()
}

async fn json(state: &AppState, uri: &str, key: Option<&str>) -> Value {
    serde_json::from_slice(&bytes(state, uri, key).await).expect("JSON")
}

/// (id, count) of every feature, sorted; a withheld count is None.
fn counts(fc: &Value) -> Vec<(String, Option<u64>)> {
    let mut v: Vec<(String, Option<u64>)> = fc["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| {
            let id = f["id"]
                .as_str()
                .map_or_else(|| f["id"].to_string(), str::to_owned);
            (id, f["properties"]["count"].as_u64())
        })
        .collect();
    v.sort();
    v
}

fn small(c: &[(String, Option<u64>)]) -> usize {
    c.iter().filter(|(_, n)| matches!(n, Some(1..=4))).count()
}

#[test]
fn the_store_knows_which_datasets_each_type_comes_from() {
    let store = &STORE.1;
    let only_police = store.types_only_from(&[Dataset::PoliceUk]);
    assert!(only_police.contains(CrimeType::Robbery));
    assert!(
        !only_police.contains(CrimeType::Burglary),
        "the partner has burglaries"
    );
    assert!(
        !only_police.contains(CrimeType::RoadCollision),
        "collisions are STATS19's"
    );
    let both = store.types_only_from(&[Dataset::PoliceUk, Dataset::Stats19]);
    assert!(both.contains(CrimeType::RoadCollision));
    assert!(!both.contains(CrimeType::Burglary));
    assert!(!store.types_only_from(&[]).contains(CrimeType::Robbery));
}

#[test]
fn only_police_uk_and_stats19_can_be_marked_public() {
    let with = |names: &[&str]| DisclosureSettings {
        public_datasets: names.iter().map(|s| (*s).to_owned()).collect(),
        ..DisclosureSettings::default()
    };
    assert!(with(&["police.uk", "stats19"]).validate().is_ok());
    let e = with(&["generic"]).validate().expect_err("generic refused");
    assert!(e.contains("partner"), "{e}");
    let e = with(&["police"]).validate().expect_err("unknown refused");
    assert!(e.contains("unknown dataset 'police'"), "{e}");
}

#[tokio::test]
async fn a_public_datasets_counts_are_published_exactly_and_the_answer_says_so() {
    for uri in [
        "/map/api/cells?res=9&method=counts&types=robbery",
        "/collections/h3-9/items?types=robbery&limit=10000",
        "/collections/lsoas/items?types=robbery&limit=10000",
    ] {
        let public = json(&POLICE_PUBLIC, uri, None).await;
        let analyst = json(&POLICE_PUBLIC, uri, Some("analyst-key")).await;
        let (p, a) = (counts(&public), counts(&analyst));
        assert_eq!(p, a, "{uri}: the public answer is not the exact one");
        assert!(
            small(&p) > 0,
            "{uri}: no small count to show nothing is withheld"
        );
        assert_eq!(
            public["disclosure"]["exact"], true,
            "{uri}: {}",
            public["disclosure"]
        );
        assert_eq!(public["disclosure"]["public_datasets"][0], "police.uk");
        // The default settings protect the same answer.
        let protected = json(&NONE_PUBLIC, uri, None).await;
        assert_eq!(protected["disclosure"]["perturbed"], true, "{uri}");
        assert_eq!(
            small(&counts(&protected)),
            0,
            "{uri}: a small count published"
        );
        assert_ne!(counts(&protected), a, "{uri}");
    }
}

#[tokio::test]
async fn an_answer_with_any_record_of_a_protected_dataset_stays_perturbed() {
    // Burglary: police.uk's and the partner's; road collisions: STATS19's (not marked);
    // no type filter: every type, road collisions among them.
    for uri in [
        "/map/api/cells?res=9&method=counts&types=burglary",
        "/map/api/cells?res=9&method=counts&types=robbery,burglary",
        "/map/api/cells?res=9&method=counts&types=road-collision",
        "/map/api/cells?res=9&method=counts",
        "/collections/h3-9/items?types=burglary&limit=10000",
    ] {
        let public = json(&POLICE_PUBLIC, uri, None).await;
        let analyst = json(&POLICE_PUBLIC, uri, Some("analyst-key")).await;
        assert_eq!(public["disclosure"]["perturbed"], true, "{uri}");
        assert_ne!(public["disclosure"]["exact"], true, "{uri}");
        let p = counts(&public);
        assert_eq!(small(&p), 0, "{uri}: a small count published");
        assert_ne!(
            p,
            counts(&analyst),
            "{uri}: the exact counts were published"
        );
    }
}

/// The heatmap of a marked dataset's records alone is the analyst's, tile for tile, and
/// its legend says it is exact (with the incident count, public anyway); one record of a
/// protected dataset, or the default settings, keep it drawn from the perturbed grid.
#[tokio::test]
async fn a_public_datasets_heatmap_is_the_exact_one() {
    // Preston at z12, where the bandwidths and the grid differ visibly, and at z9.
    let tiles = [
        "/tiles/heatmap/12/2017/1322.png",
        "/tiles/heatmap/9/252/165.png",
    ];
    for t in tiles {
        let uri = format!("{t}?types=robbery");
        let public = bytes(&POLICE_PUBLIC, &uri, None).await;
        let analyst = bytes(&POLICE_PUBLIC, &uri, Some("analyst-key")).await;
        assert_eq!(
            public, analyst,
            "{uri}: the public tile is not the exact one"
        );
        let protected = bytes(&NONE_PUBLIC, &uri, None).await;
        assert_ne!(
            protected, analyst,
            "{uri}: the default settings drew the exact tile"
        );
        let uri = format!("{t}?types=burglary");
        let public = bytes(&POLICE_PUBLIC, &uri, None).await;
        let analyst = bytes(&POLICE_PUBLIC, &uri, Some("analyst-key")).await;
        assert_ne!(
            public, analyst,
            "{uri}: a partner's burglaries drawn exactly"
        );
    }
    let legend = json(&POLICE_PUBLIC, "/tiles/heatmap/legend?types=robbery", None).await;
    assert_eq!(legend["disclosure"]["exact"], true, "{legend}");
    let exact = json(
        &POLICE_PUBLIC,
        "/tiles/heatmap/legend?types=robbery",
        Some("analyst-key"),
    )
    .await;
    assert_eq!(legend["incidents"], exact["incidents"]);
    assert!(
        legend["incidents"].as_u64().is_some_and(|n| n > 0),
        "{legend}"
    );
    let legend = json(&POLICE_PUBLIC, "/tiles/heatmap/legend?types=burglary", None).await;
    assert!(legend["incidents"].is_null(), "{legend}");
    assert_ne!(legend["disclosure"]["exact"], true, "{legend}");
}

/// `/map/api/types` lists every type of the data, so it is exact only when every record
/// of the store is from a marked dataset: the sample with police.uk and STATS19 marked
/// gives the public the analyst's counts and says so; with STATS19 unmarked, or with a
/// partner's burglaries in the store, it stays perturbed.
#[tokio::test]
async fn the_type_counts_are_exact_only_when_every_record_is_public() {
    let uri = "/map/api/types?district=Preston";
    let both = state_of(&SAMPLE, &["police.uk", "stats19"]);
    let public = json(&both, uri, None).await;
    let analyst = json(&both, uri, Some("analyst-key")).await;
    assert_eq!(public["types"], analyst["types"]);
    assert_eq!(public["severities"], analyst["severities"]);
    assert_eq!(
        public["disclosure"]["exact"], true,
        "{}",
        public["disclosure"]
    );
    assert!(public["types"].as_array().is_some_and(|t| t.len() > 5));
    // The same counts over the whole county, where the small ones would be withheld.
    let uri = "/map/api/types";
    assert_eq!(
        json(&both, uri, None).await["types"],
        json(&both, uri, Some("analyst-key")).await["types"]
    );
    for (st, why) in [
        (state_of(&SAMPLE, &["police.uk"]), "STATS19 unmarked"),
        (state(&["police.uk", "stats19"]), "a partner's burglaries"),
    ] {
        let public = json(&st, "/map/api/types?district=Preston", None).await;
        let analyst = json(&st, "/map/api/types?district=Preston", Some("analyst-key")).await;
        assert_eq!(public["disclosure"]["perturbed"], true, "{why}");
        assert_ne!(
            public["types"], analyst["types"],
            "{why}: perturbed counts differ"
        );
    }
}

/// Street suggestions and labels: below analyst the k rule leaves out streets with fewer
/// than k incidents, unless every record of the store is from a marked dataset (police.uk
/// names every snap point's street on its own map), when the public gets the analyst's
/// streets; one unmarked dataset or a partner's records keep the rule.
#[tokio::test]
async fn streets_follow_the_k_rule_unless_every_record_is_public() {
    // Suggestions for a common street word, and labels over central Preston at zoom 16.
    let places = "/map/api/places?q=street&limit=25";
    let labels = "/map/api/labels?bbox=-2.72,53.75,-2.68,53.77&zoom=16";
    let names = |doc: &Value, key: &str| -> Vec<String> {
        doc[key]
            .as_array()
            .expect("a list")
            .iter()
            .filter(|p| p["kind"] == "street")
            .map(|p| p["name"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let both = state_of(&SAMPLE, &["police.uk", "stats19"]);
    let analyst_labels = names(&json(&both, labels, Some("analyst-key")).await, "labels");
    assert!(!analyst_labels.is_empty());
    assert_eq!(
        names(&json(&both, labels, None).await, "labels"),
        analyst_labels
    );
    assert_eq!(
        names(&json(&both, places, None).await, "places"),
        names(&json(&both, places, Some("analyst-key")).await, "places")
    );
    let unmarked = state_of(&SAMPLE, &["police.uk"]);
    let public = names(&json(&unmarked, labels, None).await, "labels");
    let analyst = names(
        &json(&unmarked, labels, Some("analyst-key")).await,
        "labels",
    );
    assert!(
        public.len() < analyst.len(),
        "STATS19 unmarked: {} public streets of {}",
        public.len(),
        analyst.len()
    );
}
