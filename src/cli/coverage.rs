//! `hotspot coverage`: which force-months each dataset covers (`crate::coverage`), the
//! months missing inside each dataset's span, and per month the shares of incidents
//! stored without a location and outside the study area.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;

use clap::Args;

use super::DataDir;
use crate::coverage::{Coverage, Dataset, Gap};
use crate::model::Month;
use crate::spatial::Geography;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct CoverageArgs {
    #[command(flatten)]
    pub data: DataDir,
}

pub fn run(a: &CoverageArgs) -> anyhow::Result<()> {
    // Opening writable brings an older store's coverage up to date (schema 3).
    let store = Store::open_at(&a.data.at()?)?;
    let coverage = store.coverage()?;
    let totals = store.monthly_totals()?;
    drop(store);
    let outside = if totals.is_empty() {
        Default::default()
    } else {
        let g = Arc::new(Geography::bundled()?);
        crate::analysis::from_store_at(&a.data.at()?, g)?.outside_by_month
    };
    let text = report(&coverage, &totals, &outside);
    super::emit(&text, None)
}

fn force_label(d: Dataset, force: &str) -> String {
    match (d, force.is_empty()) {
        (Dataset::PoliceUk, _) | (_, false) => force.to_owned(),
        _ => "(each file's span)".to_owned(),
    }
}

/// The report: the datasets table, then one line per month.
pub fn report(
    c: &Coverage,
    totals: &[(u16, u64, u64)],
    outside: &std::collections::BTreeMap<u16, u64>,
) -> String {
    let mut out = String::new();
    if c.is_empty() {
        out.push_str(
            "no coverage recorded: ingest police.uk street files, STATS19 collisions or generic CSVs first\n",
        );
        return out;
    }
    let gaps = c.gaps();
    let rows: Vec<[String; 6]> = c
        .entries()
        .map(|e| {
            let first = e
                .months
                .first()
                .map_or(String::new(), |m| Month::from_index(*m).to_string());
            let last = e
                .months
                .last()
                .map_or(String::new(), |m| Month::from_index(*m).to_string());
            let missing = gaps
                .iter()
                .find(|g| g.dataset == e.dataset && g.force == e.force)
                .map_or_else(|| "none".to_owned(), |g| months_text(&g.missing));
            [
                e.dataset.name().to_owned(),
                force_label(e.dataset, e.force),
                first,
                last,
                e.months.len().to_string(),
                missing,
            ]
        })
        .collect();
    let head = ["dataset", "force", "first", "last", "months", "missing"];
    let width = |k: usize| {
        rows.iter()
            .map(|r| r[k].len())
            .chain([head[k].len()])
            .max()
            .unwrap_or(0)
    };
    let w: Vec<usize> = (0..6).map(width).collect();
    let line = |cells: [&str; 6]| {
        format!(
            "{:<a$}  {:<b$}  {:<c$}  {:<d$}  {:>e$}  {}\n",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            cells[5],
            a = w[0],
            b = w[1],
            c = w[2],
            d = w[3],
            e = w[4]
        )
    };
    out.push_str(&line(head));
    for r in &rows {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]));
    }
    let _ = writeln!(
        out,
        "\nmissing: a month inside its dataset's span with no file for that force; the statistics, \
         trends, backtests and the map leave it out (never zero)\n"
    );
    // Per month over every dataset's span and every month with incidents.
    let mut months: BTreeSet<u16> = totals.iter().map(|t| t.0).collect();
    for d in Dataset::ALL {
        if let Some((lo, hi)) = c.dataset_span(d) {
            months.extend(lo..=hi);
        }
    }
    let _ = writeln!(
        out,
        "{:<7}  {:>9}  {:>9}  {:>7}  no file from",
        "month", "incidents", "unlocated", "outside"
    );
    for m in months {
        let (n, unloc) = totals
            .iter()
            .find(|t| t.0 == m)
            .map_or((0, 0), |t| (t.1, t.2));
        let outside = outside.get(&m).copied().unwrap_or(0);
        let share = |k: u64| {
            if n == 0 {
                "-".to_owned()
            } else {
                format!("{:.1}%", 100.0 * k as f64 / n as f64)
            }
        };
        let lacking: Vec<String> = gaps
            .iter()
            .filter(|g| g.missing.iter().any(|x| x.index() == m))
            .map(|g| format!("{} {}", g.dataset.name(), force_label(g.dataset, &g.force)))
            .collect();
        let row = format!(
            "{:<7}  {:>9}  {:>9}  {:>7}  {}",
            Month::from_index(m).to_string(),
            n,
            share(unloc),
            share(outside),
            lacking.join(", ")
        );
        let _ = writeln!(out, "{}", row.trim_end());
    }
    out
}

fn months_text(m: &[Month]) -> String {
    m.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Warning lines for the gaps an ingest created and the ones it filled (`before` and
/// `after` are the store's gaps around it).
pub fn gap_changes(before: &[Gap], after: &[Gap]) -> Vec<String> {
    let set = |g: &[Gap]| -> BTreeSet<(Dataset, String, Month)> {
        g.iter()
            .flat_map(|x| x.missing.iter().map(|m| (x.dataset, x.force.clone(), *m)))
            .collect()
    };
    let (b, a) = (set(before), set(after));
    let mut out = Vec::new();
    for (d, f, m) in a.difference(&b) {
        out.push(format!(
            "warning: gap: {} {} has no file for {m}, inside the data's span; that month is \
             missing (never zero) in every statistic (see `hotspot coverage`)",
            d.name(),
            force_label(*d, f)
        ));
    }
    for (d, f, m) in b.difference(&a) {
        out.push(format!(
            "gap filled: {} {} now has {m}",
            d.name(),
            force_label(*d, f)
        ));
    }
    out
}
