//! Loads CSV files straight into the analysis store and aggregates to H3 res 9 x month:
//! `cargo run --release --example csv_load -- DIR` (for profiling the ingest path).

use std::sync::Arc;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let dirs: Vec<std::path::PathBuf> = std::env::args().skip(1).map(Into::into).collect();
    let geography = Arc::new(hotspot::spatial::Geography::bundled()?);
    let t = Instant::now();
    let (store, _) = hotspot::analysis::from_csv_paths(&dirs, geography)?;
    let t_load = t.elapsed().as_secs_f64();
    let q = hotspot::analysis::Query {
        unit: hotspot::analysis::Unit::H3(h3o::Resolution::Nine),
        time: hotspot::analysis::TimeBin::Month,
        by_type: false,
        filter: hotspot::analysis::Filter::default(),
    };
    let t = Instant::now();
    let agg = hotspot::analysis::aggregate::aggregate(&store, &q);
    println!(
        "{} incidents loaded in {t_load:.3} s; {} counts in {:.1} ms",
        store.incidents.len(),
        agg.counts.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
