//! `hotspot near-repeat`: the Knox test over dated records (`stats::near_repeat`), as
//! Ratcliffe's Near Repeat Calculator reports it. police.uk gives months only, so its
//! records cannot take part: the command says so rather than computing a day-level
//! answer from month-level data.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::DataDir;
use super::aggregate::{FilterArgs, filter_in};
use crate::spatial::Geography;
use crate::spatial::bng::wgs84_to_bng;
use crate::stats::near_repeat::{DatedPoint, Knox, KnoxOptions, knox};
use crate::store::Store;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NearRepeatFormat {
    Table,
    Csv,
}

#[derive(Debug, Args)]
pub struct NearRepeatArgs {
    #[command(flatten)]
    pub data: DataDir,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Upper bounds of the distance bands, metres on the British National Grid
    /// (inclusive; the first band starts at 0 and holds same-place pairs).
    #[arg(long, value_delimiter = ',', default_value = "100,200,300,400")]
    pub distance: Vec<f64>,
    /// Upper bounds of the time bands, whole days apart (inclusive; the first band starts
    /// at 0 and holds same-day pairs).
    #[arg(long, value_delimiter = ',', default_value = "7,14,21,28")]
    pub days: Vec<u32>,
    /// Monte Carlo runs, dates shuffled among the incidents (19, 99 or 999 as in the
    /// Calculator).
    #[arg(long, default_value_t = 999, value_parser = clap::value_parser!(u32).range(1..=9999))]
    pub permutations: u32,
    /// Seed of the runs (the same seed gives the same answer on any machine).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, value_enum, default_value = "table")]
    pub format: NearRepeatFormat,
    /// Write to a file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// With `--format csv`: where the provenance (method, filter, parameters) goes, as
    /// JSON; default beside `--out` as `OUT.json`, none on standard output. The CSV
    /// itself is plain: a header row first.
    #[arg(long, value_name = "FILE")]
    pub provenance: Option<PathBuf>,
}

pub fn run(a: &NearRepeatArgs) -> anyhow::Result<()> {
    // Only the districts' names and polygons are needed, not the analysis store.
    let g = Geography::bundled()?;
    let f = filter_in(&g, &a.filter)?;
    let store = Store::open_read_only(&a.data.dir)?;
    let (lo, hi) = (
        f.from.map_or(0, |m| m.index()),
        f.to.map_or(u16::MAX, |m| m.index()),
    );
    let mut points = Vec::new();
    let mut undated = 0u64;
    store.for_each_located(|ctype, sev, month, day, lon_e7, lat_e7| {
        if month < lo || month > hi || !f.keeps(ctype, sev) {
            return;
        }
        let (lon, lat) = (f64::from(lon_e7) / 1e7, f64::from(lat_e7) / 1e7);
        if let Some(ds) = &f.districts {
            let (_, d) = g.locate(lon, lat);
            if !ds.contains(&d) {
                return;
            }
        }
        match (day, wgs84_to_bng(lon, lat)) {
            (Some(day), Ok((x, y))) => points.push(DatedPoint { x, y, day }),
            (None, _) => undated += 1,
            (Some(_), Err(_)) => {}
        }
    })?;
    drop(store);
    if points.is_empty() {
        anyhow::bail!(
            "near repeat needs the day of each incident, and none of the {undated} records under this filter has one: \
             police.uk publishes the month only, so a day-level near-repeat test cannot be computed from it. \
             Use dated records (STATS19 collisions, or a force or partner extract with dates)"
        );
    }
    let o = KnoxOptions {
        distances: a.distance.clone(),
        days: a.days.clone(),
        permutations: a.permutations as usize,
        seed: a.seed,
    };
    let k = knox(&points, &o)?;
    match a.format {
        NearRepeatFormat::Csv => super::emit_csv(
            &csv(&k),
            &provenance(&k, undated),
            a.out.as_deref(),
            a.provenance.as_deref(),
        ),
        NearRepeatFormat::Table => super::emit(&table(&k, undated), a.out.as_deref()),
    }
}

fn distance_label(c: &crate::stats::near_repeat::KnoxCell) -> String {
    format!("{}-{}", c.distance.0, c.distance.1)
}

fn days_label(c: &crate::stats::near_repeat::KnoxCell, first: bool) -> String {
    match first {
        true => format!("0-{}", c.days.1),
        false => format!("{}-{}", c.days.0 + 1, c.days.1),
    }
}

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(String::new, |r| format!("{r:.3}"))
}

/// The test's provenance (the CSV's sidecar).
fn provenance(k: &Knox, undated: u64) -> Vec<(&'static str, String)> {
    vec![
        ("method", "knox".into()),
        ("dated_incidents", k.points.to_string()),
        ("undated_left_out", undated.to_string()),
        ("close_pairs", k.close_pairs.to_string()),
        ("permutations", k.permutations.to_string()),
        (
            "bands",
            "distance bands are (lower, upper] metres, the first [0, upper]; time bands \
             are whole days, inclusive"
                .into(),
        ),
    ]
}

/// `distance_band,time_band,observed,expected,ratio,p`, a header row first.
fn csv(k: &Knox) -> String {
    let mut out = String::from("distance_band,time_band,observed,expected,ratio,p\n");
    for c in &k.cells {
        let _ = writeln!(
            out,
            "{},{},{},{:.3},{},{:.4}",
            distance_label(c),
            days_label(c, c.days.0 == 0 && c.days.1 == k.cells[0].days.1),
            c.observed,
            c.expected,
            ratio(c.ratio),
            c.p
        );
    }
    out
}

fn table(k: &Knox, undated: u64) -> String {
    let mut out = format!(
        "Near repeat (Knox test): {} dated incidents, {} pairs within the largest distance band, {} runs with dates shuffled\n",
        k.points, k.close_pairs, k.permutations
    );
    if undated > 0 {
        let _ = writeln!(
            out,
            "{undated} records with a month but no day (police.uk) are left out"
        );
    }
    let _ = writeln!(
        out,
        "ratio = observed / expected pairs; p = (1 + runs at or above the observed) / (1 + runs)\n"
    );
    let _ = writeln!(
        out,
        "{:<12} {:<10} {:>9} {:>10} {:>7} {:>7}",
        "distance m", "days", "observed", "expected", "ratio", "p"
    );
    let first_days = k.cells.first().map_or(0, |c| c.days.1);
    for c in &k.cells {
        let flag = match (c.ratio, c.p) {
            (Some(r), p) if r > 1.0 && p <= 0.05 => "  *",
            _ => "",
        };
        let _ = writeln!(
            out,
            "{:<12} {:<10} {:>9} {:>10.2} {:>7} {:>7.3}{flag}",
            distance_label(c),
            days_label(c, c.days.0 == 0 && c.days.1 == first_days),
            c.observed,
            c.expected,
            ratio(c.ratio),
            c.p
        );
    }
    out.push_str("\n* more pairs than chance at p <= 0.05: a near-repeat pattern\n");
    out
}
