//! Heatmap tile benchmark on generated police.uk data (seeded), with the datashader peer
//! measured in the same run (`benches/peers/datashader_tile.py`):
//!
//! * surface build (filter scan, OSTN15 projection, bucketing, default bandwidth and
//!   scale) for the whole data set, once per filter: median of 3;
//! * uncached tile render (lattice, kernel density at 65,536 pixels, ramp, PNG), p50 and
//!   p99 per zoom from 8 to 16, over the 3 x 3 tiles around five Lancashire towns at each
//!   zoom (a few hundred tiles), surface already built: the analyst's (exact kernel
//!   density of the incidents) and the public one (below analyst: a bilinear resample of
//!   the density raster of the perturbed 500 m grid, `heatmap::public`);
//! * the public surface's build, in parts: grid counts (filter scan, OSTN15, cells), the
//!   perturbation (`PTable::publish` per cell: the only perturbation cost, paid once per
//!   filter and bandwidth, never per tile) and the raster;
//! * cached tiles through the router (`oneshot`, ETag hashing included, no key: public
//!   tiles): p50 and p99;
//! * OGC API items: pages of 1000 H3 cells (resolutions 8-10) through the router, each
//!   page of the result in turn after the first (which computes the collection);
//! * the peer: the same tiles from the same points (one row per location with its
//!   incident count, in Web Mercator) by datashader's aggregation (a weighted sum per
//!   pixel: binning, no kernel) and `shade`, PNG by Pillow.
//!
//! Data: `target/bench-data/police-10000000/police` when `cargo bench --bench pipeline`
//! has generated it, else 1M rows generated here into `target/bench-data/police-1000000`.
//!
//! Run: `cargo bench --bench tiles -- [--no-peer]`

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use hotspot::analysis::{AnalysisStore, Filter, from_csv_paths};
use hotspot::generate::{GenerateOptions, generate};
use hotspot::model::Month;
use hotspot::serve::disclosure::{self, DisclosureSettings};
use hotspot::serve::tile::{TileCoord, lonlat_to_mercator};
use hotspot::serve::tiles::heatmap::public::{self, PublicSurface};
use hotspot::serve::tiles::heatmap::{Ramp, Surface, empty_png, render_tile};
use hotspot::serve::{AppState, Settings, router};
use hotspot::spatial::Geography;
use tower::ServiceExt as _;

const TOWNS: [(&str, f64, f64); 5] = [
    ("Preston", -2.7006, 53.7590),
    ("Blackpool", -3.0357, 53.8175),
    ("Blackburn", -2.4849, 53.7480),
    ("Lancaster", -2.8007, 54.0466),
    ("Burnley", -2.2430, 53.7893),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The police CSV directory: the pipeline's 10M rows if there, else 1M generated here.
fn dataset() -> PathBuf {
    let big = root().join("target/bench-data/police-10000000");
    if big.join("done").exists() {
        return big.join("police");
    }
    let dir = root().join("target/bench-data/police-1000000");
    if !dir.join("done").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        generate(&GenerateOptions {
            out: dir.clone(),
            lsoa_geojson: None,
            police_rows: 1_000_000,
            stats19_rows: 0,
            months: 36,
            start: Month::new(2022, 1).expect("valid month"),
            seed: 7,
            zip: false,
        })
        .expect("generate");
        std::fs::write(dir.join("done"), "").expect("write marker");
    }
    dir.join("police")
}

/// The 3 x 3 tiles around each town at zooms 8 to 16, without repeats.
fn tiles() -> Vec<TileCoord> {
    const HALF: f64 = 20_037_508.342_789_244;
    let mut out: Vec<TileCoord> = Vec::new();
    for z in 8..=16u32 {
        let n = f64::from(1u32 << z);
        for (_, lon, lat) in TOWNS {
            let (mx, my) = lonlat_to_mercator(lon, lat);
            let x = ((mx + HALF) / (2.0 * HALF) * n) as u32;
            let y = ((HALF - my) / (2.0 * HALF) * n) as u32;
            for (dx, dy) in (0..9).map(|k| (k % 3, k / 3)) {
                let t = TileCoord::new(z, x + dx - 1, y + dy - 1).expect("in range");
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let k = ((sorted.len() as f64 - 1.0) * p / 100.0).round() as usize;
    sorted.get(k).copied().unwrap_or(f64::NAN)
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// One row per location with incidents (Web Mercator x, y, count), the tile list (CSV)
/// and the viridis table, for the peer.
fn export(store: &AnalysisStore, tiles: &[TileCoord], dir: &Path) -> (PathBuf, PathBuf) {
    let mut counts = vec![0u32; store.locations.len()];
    for &loc in &store.incidents.loc {
        counts[loc as usize] += 1;
    }
    let mut text = String::from("x,y,w\n");
    for (i, &c) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
        let (x, y) = lonlat_to_mercator(store.locations.lon(i), store.locations.lat(i));
        let _ = writeln!(text, "{x:.3},{y:.3},{c}");
    }
    let points = dir.join("heatmap-points.csv");
    std::fs::write(&points, text).expect("write points");
    let mut text = String::from("z,x,y\n");
    for t in tiles {
        let _ = writeln!(text, "{},{},{}", t.z, t.x, t.y);
    }
    let list = dir.join("heatmap-tiles.csv");
    std::fs::write(&list, text).expect("write tiles");
    let ramp: String = Ramp::Viridis
        .table()
        .iter()
        .map(|[r, g, b]| format!("#{r:02x}{g:02x}{b:02x}\n"))
        .collect();
    std::fs::write(dir.join("heatmap-ramp.txt"), ramp).expect("write ramp");
    (points, list)
}

fn peer(points: &Path, tiles: &Path) -> Option<serde_json::Value> {
    let peers = root().join("benches/peers");
    let ok = Command::new("bash")
        .arg(peers.join("setup.sh"))
        .status()
        .ok()?
        .success();
    if !ok {
        eprintln!("peer setup failed; skipping the peer");
        return None;
    }
    let out = Command::new(peers.join(".venv/bin/python"))
        .arg(peers.join("datashader_tile.py"))
        .args([points, tiles])
        .arg("--ramp")
        .arg(points.with_file_name("heatmap-ramp.txt"))
        .arg("--json")
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("peer failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// One uncached render.
struct Timing {
    tile: TileCoord,
    ms: f64,
    empty: bool,
}

/// Uncached renders of every tile, surface already built.
fn render_all(surface: &Surface, tiles: &[TileCoord], max: f64) -> Vec<Timing> {
    tiles
        .iter()
        .map(|&tile| {
            let s = Instant::now();
            let png = render_tile(surface, tile, Ramp::Viridis, max, 0.0);
            let ms = s.elapsed().as_secs_f64() * 1e3;
            Timing {
                tile,
                ms,
                empty: png == empty_png(),
            }
        })
        .collect()
}

/// Uncached public renders of every tile, public surface already built.
fn render_public(surface: &PublicSurface, tiles: &[TileCoord], max: f64) -> Vec<Timing> {
    tiles
        .iter()
        .map(|&tile| {
            let s = Instant::now();
            let png = public::render(surface, tile, Ramp::Viridis, max);
            let ms = s.elapsed().as_secs_f64() * 1e3;
            Timing {
                tile,
                ms,
                empty: png == empty_png(),
            }
        })
        .collect()
}

/// The public surface of the default public filter at the default bandwidth, its parts
/// timed (median of 3 each): (grid counts ms, perturbation ms, raster ms, surface).
fn build_public(store: &Arc<AnalysisStore>) -> (f64, f64, f64, PublicSurface) {
    let d = DisclosureSettings::default();
    let filter = disclosure::without_sensitive(&Filter::default(), d.sensitive_types(), false)
        .expect("the default filter");
    let t = d.ptable();
    let (mut counts_ms, mut publish_ms, mut raster_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut surface = None;
    for _ in 0..3 {
        let s = Instant::now();
        let counts = public::grid_counts(store, &filter);
        counts_ms.push(s.elapsed().as_secs_f64() * 1e3);
        let s = Instant::now();
        std::hint::black_box(public::publish(&counts, &t, d.k));
        publish_ms.push(s.elapsed().as_secs_f64() * 1e3);
        let s = Instant::now();
        surface = Some(PublicSurface::from_counts(
            store,
            &counts,
            None,
            d.heatmap_min_bandwidth_m,
            &t,
            d.k,
        ));
        // from_counts publishes again: the raster is the rest.
        raster_ms.push(s.elapsed().as_secs_f64() * 1e3 - publish_ms[publish_ms.len() - 1]);
    }
    (
        sorted(counts_ms)[1],
        sorted(publish_ms)[1],
        sorted(raster_ms)[1],
        surface.expect("built"),
    )
}

/// Two significant digits, as the server rounds the public default top of the ramp.
fn two_significant(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return v;
    }
    let scale = 10f64.powf(v.log10().floor() - 1.0);
    (v / scale).round() * scale
}

/// Cached tile latency through the router: every tile once to fill the cache, then each
/// again, timed.
fn cached_ms(store: AnalysisStore, tiles: &[TileCoord]) -> Vec<f64> {
    let state = AppState::new(store, Settings::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let fetch = |t: &TileCoord| {
        let uri = format!("/tiles/heatmap/{}/{}/{}.png", t.z, t.x, t.y);
        rt.block_on(async {
            let req = Request::get(uri).body(Body::empty()).expect("request");
            let res = router(state.clone())
                .oneshot(req)
                .await
                .expect("infallible");
            assert_eq!(res.status(), StatusCode::OK);
            to_bytes(res.into_body(), usize::MAX)
                .await
                .expect("body")
                .len()
        })
    };
    for t in tiles {
        fetch(t);
    }
    tiles
        .iter()
        .map(|t| {
            let s = Instant::now();
            std::hint::black_box(fetch(t));
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect()
}

/// Pages of 1000 features from the H3 collections through the router: the first page
/// (which computes the collection: cover, counts, Gi*) and then every page of the result
/// in turn, as a client follows `next` links. Per collection: (first ms, page times ms,
/// features matched).
fn items_ms(store: AnalysisStore) -> Vec<(String, f64, Vec<f64>, u64)> {
    let state = AppState::new(store, Settings::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let fetch = |uri: String| {
        rt.block_on(async {
            let req = Request::get(uri)
                .header("host", "localhost")
                .body(Body::empty())
                .expect("request");
            let res = router(state.clone())
                .oneshot(req)
                .await
                .expect("infallible");
            assert_eq!(res.status(), StatusCode::OK);
            to_bytes(res.into_body(), usize::MAX).await.expect("body")
        })
    };
    let mut out = Vec::new();
    for id in ["h3-8", "h3-9", "h3-10"] {
        let s = Instant::now();
        let first = fetch(format!("/collections/{id}/items?limit=1000"));
        let first_ms = s.elapsed().as_secs_f64() * 1e3;
        let doc: serde_json::Value = serde_json::from_slice(&first).expect("JSON");
        let matched = doc["numberMatched"].as_u64().unwrap_or(0);
        let mut pages = Vec::new();
        for offset in (0..matched).step_by(1000).take(200) {
            let s = Instant::now();
            std::hint::black_box(fetch(format!(
                "/collections/{id}/items?limit=1000&offset={offset}"
            )));
            pages.push(s.elapsed().as_secs_f64() * 1e3);
        }
        out.push((id.to_owned(), first_ms, sorted(pages), matched));
    }
    out
}

/// Surface build time (median of 3) and the surface.
fn build_surface(store: &Arc<AnalysisStore>) -> (f64, Surface) {
    let mut times = Vec::new();
    let mut surface = None;
    for _ in 0..3 {
        let s = Instant::now();
        surface = Some(Surface::build(store, &Filter::default(), None, 0.0).expect("surface"));
        times.push(s.elapsed().as_secs_f64() * 1e3);
    }
    (sorted(times)[1], surface.expect("built"))
}

/// The peer's milliseconds per tile.
fn peer_times(peer: Option<&serde_json::Value>) -> HashMap<TileCoord, f64> {
    let rows = peer
        .and_then(|p| p["tiles"].as_array())
        .cloned()
        .unwrap_or_default();
    rows.iter()
        .filter_map(|r| {
            let n = |k: &str| r[k].as_u64().and_then(|v| u32::try_from(v).ok());
            let t = TileCoord::new(n("z")?, n("x")?, n("y")?).ok()?;
            Some((t, r["seconds"].as_f64()? * 1e3))
        })
        .collect()
}

/// One table row over `renders` (analyst) and `public` (the same tiles, public), with
/// the peer's times for the same tiles.
fn row(
    label: &str,
    renders: &[&Timing],
    public: &[&Timing],
    peer: &HashMap<TileCoord, f64>,
) -> String {
    let empty = renders.iter().filter(|r| r.empty).count();
    let ms = sorted(renders.iter().map(|r| r.ms).collect());
    let (p50, p99) = (percentile(&ms, 50.0), percentile(&ms, 99.0));
    let pms = sorted(public.iter().map(|r| r.ms).collect());
    let (q50, q99) = (percentile(&pms, 50.0), percentile(&pms, 99.0));
    let pempty = public.iter().filter(|r| r.empty).count();
    let theirs = sorted(
        renders
            .iter()
            .filter_map(|r| peer.get(&r.tile).copied())
            .collect(),
    );
    let (peer50, peer99, ratio, pratio) = if theirs.is_empty() {
        ("-".into(), "-".into(), "-".into(), "-".into())
    } else {
        let (a, b) = (percentile(&theirs, 50.0), percentile(&theirs, 99.0));
        (
            format!("{a:.1} ms"),
            format!("{b:.1} ms"),
            format!("{:.2}x", a / p50),
            format!("{:.1}x / {:.1}x", a / q50, b / q99),
        )
    };
    format!(
        "| {label} | {} ({empty}, {pempty}) | {p50:.1} ms | {p99:.1} ms | {q50:.2} ms | {q99:.2} ms \
         | {peer50} | {peer99} | {ratio} | {pratio} |",
        ms.len()
    )
}

fn main() {
    let with_peer = !std::env::args().any(|a| a == "--no-peer");
    let t = Instant::now();
    let geography = Arc::new(Geography::bundled().expect("bundled geography"));
    let (store, _) = from_csv_paths(&[dataset()], geography).expect("load the data");
    let store = Arc::new(store);
    let load_s = t.elapsed().as_secs_f64();
    eprintln!(
        "loaded {} incidents in {load_s:.1} s",
        store.incidents.len()
    );
    let (build_ms, surface) = build_surface(&store);
    let max = surface.default_max_per_km2() / 1e6;
    let tiles = tiles();
    let _ = render_all(&surface, &tiles[..20.min(tiles.len())], max); // warm-up
    let renders = render_all(&surface, &tiles, max);
    let (counts_ms, publish_ms, raster_ms, public_surface) = build_public(&store);
    let public_max = two_significant(public_surface.default_max_per_km2()) / 1e6;
    let _ = render_public(&public_surface, &tiles[..20.min(tiles.len())], public_max);
    let public_renders = render_public(&public_surface, &tiles, public_max);
    let (points, list) = export(&store, &tiles, &root().join("target/bench-data"));
    let peer = if with_peer {
        peer(&points, &list)
    } else {
        None
    };
    let peer_name = peer
        .as_ref()
        .and_then(|p| p["peer"].as_str().map(str::to_owned));
    let peer_ms = peer_times(peer.as_ref());
    let cached = sorted(cached_ms((*store).clone(), &tiles));
    let items = items_ms((*store).clone());

    let mut rows = vec![
        format!(
            "threads: {}, incidents: {}, locations with incidents: {}, default bandwidth {:.0} m, \
             top of ramp {:.0} per km2, peer: {}",
            rayon::current_num_threads(),
            store.incidents.len(),
            surface_points(&store),
            surface.bandwidth(),
            surface.default_max_per_km2(),
            peer_name.as_deref().unwrap_or("not run"),
        ),
        format!("surface build (all incidents, once per filter): {build_ms:.0} ms (median of 3)"),
        format!(
            "public surface build (once per filter and bandwidth; medians of 3): grid counts \
             {counts_ms:.1} ms, perturbation {publish_ms:.3} ms ({} cells published, {} \
             withheld), raster {raster_ms:.1} ms ({} x {} nodes, {:.1} m apart; bandwidth \
             {:.0} m, top of ramp {:.1} per km2); per tile request the perturbation costs \
             nothing (it is in the cached surface)",
            public_surface.cells().0,
            public_surface.cells().1,
            public_surface.raster().nodes().0,
            public_surface.raster().nodes().1,
            public_surface.raster().step(),
            public_surface.bandwidth(),
            public_max * 1e6,
        ),
        String::new(),
        "| zoom | tiles (empty: analyst, public) | analyst p50 | analyst p99 | public p50 | public p99 | datashader p50 | datashader p99 | analyst ratio p50 | public ratio p50 / p99 |".into(),
        "|---|---|---|---|---|---|---|---|---|---|".into(),
    ];
    for z in 8..=16u8 {
        let sel: Vec<&Timing> = renders.iter().filter(|r| r.tile.z == z).collect();
        let pub_sel: Vec<&Timing> = public_renders.iter().filter(|r| r.tile.z == z).collect();
        rows.push(row(&z.to_string(), &sel, &pub_sel, &peer_ms));
    }
    let all: Vec<&Timing> = renders.iter().collect();
    let pub_all: Vec<&Timing> = public_renders.iter().collect();
    rows.push(row("all 8-16", &all, &pub_all, &peer_ms));
    let full: Vec<&Timing> = renders.iter().filter(|r| !r.empty).collect();
    // The same tiles (those the analyst draws), public.
    let pub_full: Vec<&Timing> = public_renders
        .iter()
        .zip(&renders)
        .filter(|(_, a)| !a.empty)
        .map(|(p, _)| p)
        .collect();
    rows.push(row("all 8-16, non-empty only", &full, &pub_full, &peer_ms));
    rows.push(String::new());
    rows.push(format!(
        "cached public tile through the router (ETag included): p50 {:.3} ms, p99 {:.3} ms over {} tiles",
        percentile(&cached, 50.0),
        percentile(&cached, 99.0),
        cached.len()
    ));
    for (id, first, pages, matched) in &items {
        rows.push(format!(
            "items page of 1000 from {id} ({matched} cells): p50 {:.2} ms, p99 {:.2} ms over {} \
             pages; first page (computes the collection) {first:.0} ms",
            percentile(pages, 50.0),
            percentile(pages, 99.0),
            pages.len()
        ));
    }
    rows.push(
        "ratio = datashader / hotspot (above 1: hotspot faster). datashader bins points per \
         pixel (a weighted sum, no kernel); the analyst's tile evaluates a quartic kernel density \
         in metres at every pixel; the public tile resamples the public grid's precomputed \
         density raster (the ratio compares the same tiles, not the same picture)."
            .into(),
    );
    let text = rows.join("\n");
    println!("{text}");
    let _ = std::fs::write(root().join("target/bench-tiles.md"), format!("{text}\n"));
}

/// Locations with at least one incident.
fn surface_points(store: &AnalysisStore) -> usize {
    let mut seen = vec![false; store.locations.len()];
    for &loc in &store.incidents.loc {
        seen[loc as usize] = true;
    }
    seen.iter().filter(|s| **s).count()
}
