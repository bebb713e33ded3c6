//! End-to-end pipeline benchmark on generated police.uk data (seeded), at several sizes:
//!
//! * CSV -> analysis store (parse, validate, H3 + LSOA + district), rows/s;
//! * store write (CSV -> SQLite, one transaction per file), rows/s;
//! * start-up: SQLite store -> analysis store, seconds;
//! * aggregation to H3 res 9 x month, median ms once the cells are known (warm);
//! * end to end: CSV -> store plus the first, cold aggregation (H3 cells computed), on
//!   the exact path `hotspot aggregate` runs (no record keys), and on the keyed path a
//!   perturbed answer needs (the record keys computed too);
//! * memory per incident in the analysis store;
//! * the named peer (benches/peers: polars + polars-h3) doing CSV -> H3 res 9 x month
//!   counts on the same files in the same run, and the ratio.
//!
//! Run: `cargo bench --bench pipeline -- [--sizes 1000000,10000000] [--no-peer] [--no-store]`
//! Data is generated once into target/bench-data/.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use h3o::Resolution;
use hotspot::analysis::aggregate::{aggregate, aggregate_exact};
use hotspot::analysis::{self, Filter, Query, TimeBin, Unit};
use hotspot::generate::{GenerateOptions, generate};
use hotspot::model::Month;
use hotspot::spatial::Geography;
use hotspot::store::Store;

struct Opts {
    sizes: Vec<u64>,
    peer: bool,
    store: bool,
}

fn opts() -> Opts {
    let args: Vec<String> = std::env::args().collect();
    let mut o = Opts {
        sizes: vec![1_000_000, 10_000_000],
        peer: true,
        store: true,
    };
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--sizes" => {
                i += 1;
                o.sizes = args[i]
                    .split(',')
                    .map(|s| s.parse().expect("--sizes takes numbers"))
                    .collect();
            }
            "--no-peer" => o.peer = false,
            "--no-store" => o.store = false,
            _ => {}
        }
        i += 1;
    }
    o
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn dataset(rows: u64) -> PathBuf {
    let dir = root()
        .join("target/bench-data")
        .join(format!("police-{rows}"));
    if !dir.join("done").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let t = Instant::now();
        generate(&GenerateOptions {
            out: dir.clone(),
            lsoa_geojson: None,
            police_rows: rows,
            stats19_rows: 0,
            months: 36,
            start: Month::new(2022, 1).unwrap(),
            seed: 7,
            zip: false,
        })
        .expect("generate");
        std::fs::write(dir.join("done"), "").unwrap();
        eprintln!(
            "generated {rows} rows in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    dir.join("police")
}

fn best<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed().as_secs_f64());
        last = Some(v);
    }
    (best, last.expect("runs >= 1"))
}

fn peer(dir: &Path) -> Option<(String, f64, u64)> {
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
        .arg(peers.join("h3_month_counts.py"))
        .arg(dir)
        .args(["--json", "--repeat", "3"])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((
        v["peer"].as_str()?.to_owned(),
        v["seconds"].as_f64()?,
        v["rows"].as_u64()?,
    ))
}

fn main() {
    let o = opts();
    let geography = Arc::new(Geography::bundled().expect("bundled boundaries"));
    let threads = rayon::current_num_threads();
    let mut report = vec![format!("threads: {threads}"), String::new()];
    report.push("| rows | CSV->analysis store | store write | start-up from store | aggregate h3:9 x month (warm) | bytes/incident | end-to-end CSV->h3:9 counts | peer | ratio | end-to-end with record keys | ratio |".into());
    report.push("|---|---|---|---|---|---|---|---|---|---|---|".into());
    for &n in &o.sizes {
        let dir = dataset(n);
        let q = Query {
            unit: Unit::H3(Resolution::Nine),
            time: TimeBin::Month,
            by_type: false,
            filter: Filter::default(),
        };
        // End to end: the CSV load and the first (cold) aggregation, which computes the
        // H3 cell of every distinct location; the peer's time includes its H3 step too.
        // Exact (as `hotspot aggregate`), then keyed (the record keys computed as well).
        let runs = if n > 2_000_000 { 2 } else { 3 };
        let mut t_csv = f64::INFINITY;
        let mut end_to_end = f64::INFINITY;
        let mut keyed = f64::INFINITY;
        let mut kept = None;
        for _ in 0..runs {
            for with_keys in [false, true] {
                let t = Instant::now();
                let (store, _) =
                    analysis::from_csv_paths(std::slice::from_ref(&dir), geography.clone())
                        .expect("csv");
                let loaded = t.elapsed().as_secs_f64();
                if with_keys {
                    std::hint::black_box(aggregate(&store, &q));
                    keyed = keyed.min(t.elapsed().as_secs_f64());
                } else {
                    std::hint::black_box(aggregate_exact(&store, &q));
                    end_to_end = end_to_end.min(t.elapsed().as_secs_f64());
                }
                t_csv = t_csv.min(loaded);
                kept = Some(store);
            }
        }
        let store = kept.expect("runs >= 1");
        let rows = store.incidents.len() as f64 + store.unlocated as f64;
        let mut times: Vec<f64> = (0..15)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(aggregate(&store, &q));
                t.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let t_agg = times[times.len() / 2];
        let agg = aggregate(&store, &q);
        let bytes = store.heap_bytes() as f64 / store.incidents.len().max(1) as f64;
        drop(store);

        let (store_write, startup) = if o.store {
            let data = root().join("target/bench-data").join(format!("store-{n}"));
            let _ = std::fs::remove_dir_all(&data);
            let sources = hotspot::ingest::discover(std::slice::from_ref(&dir)).expect("discover");
            let t = Instant::now();
            let mut s = Store::open(&data).expect("store");
            let mut stored = 0;
            s.ingest_sources(&sources, None, |_, r| stored += r.expect("ingest").stored);
            drop(s);
            let w = stored as f64 / t.elapsed().as_secs_f64();
            let (t_start, st) = best(2, || {
                analysis::from_store(&data, geography.clone()).expect("load")
            });
            assert_eq!(st.incidents.len() as u64 + st.unlocated, stored);
            (format!("{:.0}k rows/s", w / 1e3), format!("{t_start:.2} s"))
        } else {
            ("-".into(), "-".into())
        };

        let (peer_name, ratio, ratio_keyed) = match o.peer.then(|| peer(&dir)).flatten() {
            Some((name, secs, peer_rows)) => {
                assert_eq!(
                    peer_rows,
                    agg.total(),
                    "peer and hotspot disagree on located rows"
                );
                (
                    format!("{name} {secs:.3} s"),
                    format!("{:.2}x", secs / end_to_end),
                    format!("{:.2}x", secs / keyed),
                )
            }
            None => ("-".into(), "-".into(), "-".into()),
        };
        report.push(format!(
            "| {n} | {:.2} s ({:.2}M rows/s) | {store_write} | {startup} | {:.1} ms | {bytes:.1} | {end_to_end:.3} s | {peer_name} | {ratio} | {keyed:.3} s | {ratio_keyed} |",
            t_csv,
            rows / t_csv / 1e6,
            t_agg * 1e3,
        ));
        eprintln!("{}", report.last().unwrap());
    }
    let text = report.join("\n");
    println!("{text}");
    let _ = std::fs::write(root().join("target/bench-results.md"), format!("{text}\n"));
}
