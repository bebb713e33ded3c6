//! Near repeat (Knox test) on seeded dated burglaries: 10,000 incidents (and 2,500 and
//! 40,000) over 30 km x 30 km and a year, clustered around 40 centres, with 999 runs,
//! against the named peer measured in the same run (benches/peers/knox.py: numpy and
//! scipy's cKDTree, vectorised runs). The peer must give the same observed counts.
//!
//! Run: `cargo bench --bench near_repeat -- [--sizes 2500,10000,40000] [--no-peer]`

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use hotspot::stats::near_repeat::{DatedPoint, KnoxOptions, knox};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `n` burglaries: 60% around 40 centres (sd 400 m), 40% anywhere; 10% of them a repeat
/// within 150 m and 10 days of an earlier one.
fn burglaries(n: usize, seed: u64) -> Vec<DatedPoint> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<(f64, f64)> = (0..40)
        .map(|_| {
            (
                rng.random_range(0.0..30_000.0),
                rng.random_range(0.0..30_000.0),
            )
        })
        .collect();
    let mut pts: Vec<DatedPoint> = Vec::with_capacity(n);
    while pts.len() < n {
        let day = rng.random_range(0..365);
        let p = if !pts.is_empty() && rng.random_bool(0.1) {
            let q = pts[rng.random_range(0..pts.len())];
            DatedPoint {
                x: q.x + rng.random_range(-150.0..150.0),
                y: q.y + rng.random_range(-150.0..150.0),
                day: q.day + rng.random_range(0..10),
            }
        } else if rng.random_bool(0.6) {
            let (cx, cy) = centres[rng.random_range(0..centres.len())];
            // Box-Muller.
            let (u, v): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random_range(0.0..1.0));
            let r = 400.0 * (-2.0 * u.ln()).sqrt();
            let a = std::f64::consts::TAU * v;
            DatedPoint {
                x: cx + r * a.cos(),
                y: cy + r * a.sin(),
                day,
            }
        } else {
            DatedPoint {
                x: rng.random_range(0.0..30_000.0),
                y: rng.random_range(0.0..30_000.0),
                day,
            }
        };
        pts.push(p);
    }
    pts
}

fn main() {
    let mut sizes = vec![2_500, 10_000, 40_000];
    let mut peer = true;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sizes" => {
                sizes = args
                    .next()
                    .expect("--sizes N,N")
                    .split(',')
                    .map(|s| s.parse().expect("a size"))
                    .collect();
            }
            "--no-peer" => peer = false,
            _ => {}
        }
    }
    let o = KnoxOptions {
        distances: vec![100.0, 200.0, 300.0, 400.0],
        days: vec![7, 14, 21, 28],
        permutations: 999,
        seed: 1,
    };
    println!("threads: {}\n", rayon::current_num_threads());
    println!("| incidents | close pairs | hotspot near-repeat (999 runs) | peer | ratio |");
    println!("|---|---|---|---|---|");
    let dir = root().join("target/bench-data");
    std::fs::create_dir_all(&dir).expect("bench-data");
    for n in sizes {
        let pts = burglaries(n, 42);
        let mut best = f64::INFINITY;
        let mut last = None;
        for _ in 0..3 {
            let t = Instant::now();
            let k = knox(&pts, &o).expect("knox");
            best = best.min(t.elapsed().as_secs_f64());
            last = Some(k);
        }
        let k = last.expect("a run");
        let (peer_name, ratio) = if peer {
            let csv = dir.join(format!("knox-{n}.csv"));
            let mut text = String::from("x,y,day\n");
            for p in &pts {
                text.push_str(&format!("{},{},{}\n", p.x, p.y, p.day));
            }
            std::fs::write(&csv, text).expect("points CSV");
            let peers = root().join("benches/peers");
            let ok = Command::new("bash")
                .arg(peers.join("setup.sh"))
                .status()
                .is_ok_and(|s| s.success());
            let out = ok
                .then(|| {
                    Command::new(peers.join(".venv/bin/python"))
                        .arg(peers.join("knox.py"))
                        .arg(&csv)
                        .output()
                        .ok()
                })
                .flatten();
            match out.and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok()) {
                Some(v) => {
                    let observed: Vec<u64> = v["observed"]
                        .as_array()
                        .expect("observed")
                        .iter()
                        .map(|x| x.as_u64().expect("count"))
                        .collect();
                    let ours: Vec<u64> = k.cells.iter().map(|c| c.observed).collect();
                    assert_eq!(
                        observed, ours,
                        "the peer and hotspot disagree on the observed pairs"
                    );
                    let secs = v["seconds"].as_f64().expect("seconds");
                    (
                        format!("{} {secs:.2} s", v["peer"].as_str().unwrap_or("peer")),
                        format!("{:.1}x", secs / best),
                    )
                }
                None => ("peer unavailable".into(), "-".into()),
            }
        } else {
            ("-".into(), "-".into())
        };
        println!(
            "| {n} | {} | {best:.3} s | {peer_name} | {ratio} |",
            k.close_pairs
        );
    }
}
