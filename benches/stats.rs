//! Statistics benchmark on a seeded synthetic H3 grid of about 100k cells (a disk of
//! radius 182 at resolution 9 around Preston), with the esda peer measured in the same
//! run (`benches/peers/esda_stats.py`):
//!
//! * Gi* for k = 1, 2, 3 (weights built beforehand, as for esda), median ms;
//! * local Moran's I with 999 permutations, k = 1;
//! * emerging hot spots (space-time Gi* + Mann-Kendall + categories) for 30k cells x 36
//!   months;
//! * the cost of publishing statistics of perturbed counts below analyst
//!   (`disclosure::basis`): perturbing the 100k unit counts and the 30k x 36 cube, beside
//!   the statistic computed on them (the view's second Gi* or emerging run).
//!
//! Run: `cargo bench --bench stats -- [--no-peer]`

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use h3o::{CellIndex, LatLng, Resolution};
use hotspot::serve::disclosure::DisclosureSettings;
use hotspot::serve::disclosure::basis::Basis;
use hotspot::stats::Weights;
use hotspot::stats::emerging::{DEFAULT_TREND_ALPHA, ESRI_DEFAULT_WINDOW, emerging_hot_spots};
use hotspot::stats::gi_star::gi_star;
use hotspot::stats::local_moran::local_moran;
use hotspot::stats::study::Monthly;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn grid(radius: u32) -> (Vec<CellIndex>, Vec<f64>) {
    let centre = LatLng::new(53.7590, -2.7006)
        .expect("valid")
        .to_cell(Resolution::Nine);
    let mut cells: Vec<CellIndex> = centre.grid_disk(radius);
    cells.sort_unstable();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let hot: Vec<CellIndex> = (0..40)
        .map(|_| cells[rng.random_range(0..cells.len())])
        .collect();
    let counts = cells
        .iter()
        .map(|c| {
            let base = f64::from(rng.random_range(0u32..4));
            let near = hot
                .iter()
                .any(|h| h.grid_distance(*c).is_ok_and(|d| d <= 3));
            base + if near {
                f64::from(rng.random_range(5u32..20))
            } else {
                0.0
            }
        })
        .collect();
    (cells, counts)
}

fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn peer(csv: &PathBuf) -> Option<serde_json::Value> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let peers = root.join("benches/peers");
    if !Command::new("bash")
        .arg(peers.join("setup.sh"))
        .status()
        .ok()?
        .success()
    {
        return None;
    }
    let out = Command::new(peers.join(".venv/bin/python"))
        .arg(peers.join("esda_stats.py"))
        .arg(csv)
        .arg("--json")
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

fn main() {
    let with_peer = !std::env::args().any(|a| a == "--no-peer");
    let (cells, counts) = grid(182);
    let n = cells.len();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let csv = root.join("target/bench-data/stats-grid.csv");
    let _ = std::fs::create_dir_all(csv.parent().expect("parent"));
    let mut text = String::from("cell,count\n");
    for (c, v) in cells.iter().zip(&counts) {
        let _ = writeln!(text, "{c},{v}");
    }
    std::fs::write(&csv, text).expect("write grid");
    let peer = if with_peer { peer(&csv) } else { None };
    let peer_s = |key: &str| peer.as_ref().and_then(|p| p[key].as_f64());

    let mut rows = vec![
        format!("threads: {}, cells: {n}", rayon::current_num_threads()),
        String::new(),
        "| statistic | weights build | hotspot | esda | ratio |".into(),
        "|---|---|---|---|---|".into(),
    ];
    for k in 1..=3 {
        let t = Instant::now();
        let w = Weights::h3_disk(&cells, k);
        let build = t.elapsed().as_secs_f64() * 1e3;
        let ms = median_ms(15, || {
            std::hint::black_box(gi_star(&counts, &w, true));
        });
        let (e, r) = match peer_s(&format!("gistar_k{k}")) {
            Some(s) => (
                format!("{:.0} ms", s * 1e3),
                format!("{:.0}x", s * 1e3 / ms),
            ),
            None => ("-".into(), "-".into()),
        };
        rows.push(format!(
            "| Gi* k={k} (with FDR) | {build:.0} ms | {ms:.1} ms | {e} | {r} |"
        ));
    }
    let w1 = Weights::h3_disk(&cells, 1).with_self(false);
    let ms = median_ms(3, || {
        std::hint::black_box(local_moran(&counts, &w1, 999, 1, 0.05, true));
    });
    let (e, r) = match peer_s("local_moran_999") {
        Some(s) => (format!("{s:.2} s"), format!("{:.1}x", s * 1e3 / ms)),
        None => ("-".into(), "-".into()),
    };
    rows.push(format!(
        "| local Moran, 999 permutations, k=1 | - | {:.2} s | {e} | {r} |",
        ms / 1e3
    ));
    // Emerging hot spots: about 30k cells x 36 months.
    let (cells30, base) = grid(100);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let values: Vec<Vec<f64>> = (0..36)
        .map(|t| {
            base.iter()
                .map(|b| {
                    (b * (0.5 + t as f64 / 36.0) + f64::from(rng.random_range(0u32..2))).round()
                })
                .collect()
        })
        .collect();
    let w = Weights::h3_disk(&cells30, 1);
    let ms = median_ms(5, || {
        std::hint::black_box(
            emerging_hot_spots(&values, &w, ESRI_DEFAULT_WINDOW, true, DEFAULT_TREND_ALPHA)
                .expect("valid cube"),
        );
    });
    rows.push(format!(
        "| emerging hot spots, {} cells x 36 months (space-time Gi* + Mann-Kendall + categories, FDR) | - | {:.0} ms | no esda equivalent | - |",
        cells30.len(),
        ms
    ));
    // Below analyst the statistics are of perturbed counts: one table look-up per unit
    // and per unit-month, then the statistic once more for that view.
    let keys: Vec<u32> = (0..n).map(|_| rng.random_range(0u32..256)).collect();
    let basis = Basis::perturbed(DisclosureSettings::default().ckp_seed);
    let units_ms = median_ms(15, || {
        std::hint::black_box(basis.counts(&counts, &keys));
    });
    let cube = Monthly {
        months: vec![],
        keys: values
            .iter()
            .map(|row| row.iter().map(|_| rng.random_range(0u32..256)).collect())
            .collect(),
        observed: vec![true; values.len()],
        values,
    };
    let cube_ms = median_ms(5, || {
        std::hint::black_box(basis.monthly(&cube));
    });
    rows.push(format!(
        "| perturbing the counts below analyst: {n} unit counts / {} x 36 cell-months | - | {units_ms:.2} ms / {cube_ms:.1} ms | - | - |",
        cells30.len()
    ));
    let text = rows.join("\n");
    println!("{text}");
    let _ = std::fs::write(root.join("target/bench-stats.md"), format!("{text}\n"));
}
