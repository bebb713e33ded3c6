//! Writes the inputs of the PySAL reference script (`tests/reference/make_reference.py`)
//! from the committed fixtures: the county H3 grid at resolution 8 with counts (zero cells
//! included) and the counts of the 941 LSOAs, all months and types.
//!
//! `cargo run --release --example reference_inputs` (writes tests/reference/inputs/).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use h3o::Resolution;
use hotspot::analysis::aggregate::aggregate;
use hotspot::analysis::{Filter, Query, TimeBin, Unit, UnitKey};
use hotspot::stats::grid::Grid;

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let geography = Arc::new(hotspot::spatial::Geography::bundled()?);
    let (store, _) =
        hotspot::analysis::from_csv_paths(&[root.join("fixtures/sample")], geography.clone())?;
    let out = root.join("tests/reference/inputs");
    std::fs::create_dir_all(&out)?;
    let query = |unit| Query {
        unit,
        time: TimeBin::All,
        by_type: false,
        filter: Filter::default(),
    };

    let agg = aggregate(&store, &query(Unit::H3(Resolution::Eight)));
    let grid = Grid::new(&geography.county, Resolution::Eight, &agg.counts);
    let mut text = String::from("cell,count\n");
    for (c, v) in grid.cells.iter().zip(&grid.counts) {
        writeln!(text, "{c},{v}")?;
    }
    std::fs::write(out.join("h3_r8_counts.csv"), text)?;

    let agg = aggregate(
        &store,
        &query(Unit::Lsoa(hotspot::spatial::geography::Vintage::V2011)),
    );
    let mut counts = vec![0u64; geography.lsoas.len()];
    for c in &agg.counts {
        if let UnitKey::Index(i) = c.unit {
            counts[i as usize] += c.count;
        }
    }
    let mut text = String::from("code,count\n");
    for (code, v) in geography.lsoas.codes.iter().zip(&counts) {
        writeln!(text, "{code},{v}")?;
    }
    std::fs::write(out.join("lsoa_counts.csv"), text)?;
    println!(
        "wrote {} cells and {} LSOAs to {}",
        grid.len(),
        counts.len(),
        out.display()
    );
    Ok(())
}
