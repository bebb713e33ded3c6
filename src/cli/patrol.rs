//! `hotspot patrol` (the N places to patrol, as a table, CSV or GeoJSON) and
//! `hotspot backtest` (which method would have predicted the next month best).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use super::DataDir;
use super::aggregate::{FilterArgs, filter, load};
use crate::analysis::{AnalysisStore, Filter, Unit, UnitKey, output};
use crate::model::{Month, TypeSet};
use crate::spatial::Geography;
use crate::spatial::geojson_out::push_multipolygon;
use crate::stats::backtest::{self, BacktestOptions, MeanSd};
use crate::stats::patrol::{self, PatrolList, PatrolOptions, Place};
use crate::stats::study::Units;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PatrolFormat {
    Table,
    Csv,
    Geojson,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BacktestFormat {
    Table,
    Csv,
}

#[derive(Debug, Args)]
pub struct PatrolArgs {
    #[command(flatten)]
    pub data: DataDir,
    /// Places in the list.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub top: u32,
    /// Units: h3:5 .. h3:11 (the grid covering the study area) or lsoa.
    #[arg(long, default_value = "h3:9")]
    pub unit: String,
    /// H3 neighbourhood for Gi*: rings around each cell (LSOAs: queen contiguity).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub k: u32,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Benjamini-Hochberg false discovery rate control (on by default, as ArcGIS).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub fdr: bool,
    /// Ranking: auto (the method that backtests best for this filter and geography),
    /// naive (count), recent (risk-weighted recent counts), naive-last (last month),
    /// gistar, prospective, kde or etas (a self-exciting point process).
    #[arg(long, default_value = "auto")]
    pub method: String,
    #[arg(long, value_enum, default_value = "table")]
    pub format: PatrolFormat,
    /// Write to a file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// With `--format csv`: where the provenance (method, filter, parameters) goes, as
    /// JSON; default beside `--out` as `OUT.json`, none on standard output. The CSV
    /// itself is plain: a header row first.
    #[arg(long, value_name = "FILE")]
    pub provenance: Option<PathBuf>,
    /// Rank by harm instead of counts: a CSV of `category,weight[,source]` as for
    /// `backtest --harm`. The method is chosen by the harm it would have captured, and
    /// the list gains a harm column beside the count.
    #[arg(long, value_name = "FILE.csv")]
    pub harm: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BacktestArgs {
    #[command(flatten)]
    pub data: DataDir,
    /// Units: h3:5 .. h3:11 or lsoa.
    #[arg(long, default_value = "h3:9")]
    pub unit: String,
    /// Share of the study area each method may choose (0.02 = 2%).
    #[arg(long, default_value_t = 0.02)]
    pub coverage: f64,
    /// Training months per fold.
    #[arg(long, default_value_t = 12)]
    pub train: usize,
    /// Test months per fold (the months right after the training window).
    #[arg(long, default_value_t = 1)]
    pub test: usize,
    /// H3 neighbourhood for Gi*: rings around each cell.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub k: u32,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[arg(long, value_enum, default_value = "table")]
    pub format: BacktestFormat,
    /// Write to a file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// With `--format csv`: where the provenance (method, filter, parameters) goes, as
    /// JSON; default beside `--out` as `OUT.json`, none on standard output. The CSV
    /// itself is plain: a header row first.
    #[arg(long, value_name = "FILE")]
    pub provenance: Option<PathBuf>,
    /// Also draw the PAI curves (mean PAI per method at 0.5% to 10% of the area) as an
    /// SVG image to this file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Score harm instead of counts: a CSV of `category,weight[,source]` (police.uk's
    /// label or the short name; a weight above 0 for every category under the filter).
    /// Each incident counts as its category's weight, in the rankings and the scores.
    #[arg(long, value_name = "FILE.csv")]
    pub harm: Option<PathBuf>,
}

fn study_units(unit: &str, store: &AnalysisStore) -> anyhow::Result<Units> {
    match Unit::parse_for(unit, store).map_err(anyhow::Error::msg)? {
        Unit::H3(r) => Ok(Units::H3(r)),
        Unit::Lsoa(v) => Ok(Units::Lsoa(v)),
        _ => anyhow::bail!(
            "--unit must be h3:5 .. h3:11, lsoa11, lsoa21 or lsoa (the data's vintage)"
        ),
    }
}

/// The parsed filter as provenance entries: months, types, districts (canonical names),
/// and the months with no data published (left out of the trends and folds).
fn filter_provenance(
    g: &Geography,
    f: &Filter,
    months: &[Month],
    missing: &[Month],
) -> Vec<(&'static str, String)> {
    let month = |m: Option<&Month>| m.map_or_else(String::new, ToString::to_string);
    let types = if f.types == TypeSet::incidents() {
        "all".to_owned()
    } else {
        f.types
            .iter()
            .map(|t| t.slug())
            .collect::<Vec<_>>()
            .join(";")
    };
    let districts = f.districts.as_ref().map_or_else(
        || "all".to_owned(),
        |ds| {
            let names: Vec<&str> = ds
                .iter()
                .map(|&d| g.districts.names[usize::from(d)].as_str())
                .collect();
            names.join(";")
        },
    );
    vec![
        ("from", month(months.first())),
        ("to", month(months.last())),
        ("types", types),
        ("districts", districts),
        ("missing_months", month_list(missing)),
    ]
}

/// Months as `YYYY-MM;...`, or `none`.
fn month_list(m: &[Month]) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(";")
}

/// The table's note on missing months (empty without any).
fn missing_note(prov: &[(&str, String)]) -> String {
    match prov.iter().find(|p| p.0 == "missing_months") {
        Some((_, v)) if v != "none" => format!(
            "missing months (no data published; left out, not counted as zero): {}\n",
            v.replace(';', ", ")
        ),
        _ => String::new(),
    }
}

pub fn run(a: &PatrolArgs) -> anyhow::Result<()> {
    let store = Arc::new(load(&a.data)?);
    let f = filter(&store, &a.filter)?;
    let method = match a.method.as_str() {
        "auto" => None,
        m => Some(backtest::Method::parse(m).ok_or_else(|| {
            anyhow::anyhow!(
                "--method must be auto, naive, recent, naive-last, gistar, prospective, kde or etas, got {m:?}"
            )
        })?),
    };
    let opts = PatrolOptions {
        top: a.top as usize,
        k: a.k,
        fdr: a.fdr,
        method,
    };
    let missing = store.missing_months(&f);
    let units = study_units(&a.unit, &store)?;
    let harm = read_harm(a.harm.as_deref())?;
    let list = patrol::patrol_weighted(store, units, &f, opts, harm.as_ref())?;
    let mut prov = vec![("method", "patrol".to_owned()), ("unit", a.unit.clone())];
    prov.push(("measure", measure(harm.as_ref())));
    prov.push(("ranking", list.choice.method.label().to_owned()));
    prov.push(("ranking_chosen_by", chosen_by(&list)));
    prov.push(("k", a.k.to_string()));
    prov.extend(filter_provenance(
        &list.study.store.geography,
        &f,
        &list.months,
        &missing,
    ));
    prov.extend([
        ("fdr", a.fdr.to_string()),
        ("top", a.top.to_string()),
        ("n", list.study.len().to_string()),
        (
            "incidents",
            list.study.counts.iter().sum::<f64>().to_string(),
        ),
        (
            "time_window",
            crate::stats::emerging::ESRI_DEFAULT_WINDOW.to_string(),
        ),
        (
            "units_with_incidents",
            list.units_with_incidents.to_string(),
        ),
    ]);
    if let Some(h) = list.harm {
        prov.push(("harm", fixed(Some(h), 2)));
    }
    if let Some(w) = &list.sparse {
        prov.push(("warning", w.clone()));
    }
    let text = match a.format {
        PatrolFormat::Table => patrol_table(&list, &prov),
        PatrolFormat::Csv => {
            return super::emit_csv(
                &patrol_csv(&list)?,
                &prov,
                a.out.as_deref(),
                a.provenance.as_deref(),
            );
        }
        PatrolFormat::Geojson => patrol_geojson(&list, &prov),
    };
    super::emit(&text, a.out.as_deref())
}

/// How the ranking method was chosen, in one line.
fn chosen_by(list: &PatrolList) -> String {
    let c = &list.choice;
    match (&c.backtest, &c.note) {
        (_, Some(note)) => note.clone(),
        (Some(b), None) => {
            let folds = b.folds.len();
            let scores: Vec<String> = backtest::Method::RANKING
                .iter()
                .filter_map(|m| b.summary.iter().find(|s| s.method == *m))
                .map(|s| match s.pei.mean.is_finite() {
                    true => format!("{} {:.3}", s.method.label(), s.pei.mean),
                    false => format!("{} n/a", s.method.label()),
                })
                .collect();
            format!(
                "backtest: best mean PEI over {folds} folds of {} training month(s) and 1 test \
                 month at {:.3}% of the area (the list's share): {}",
                c.train,
                100.0 * c.coverage,
                scores.join(", ")
            )
        }
        (None, None) => "--method".to_owned(),
    }
}

fn trend_label(p: &Place) -> &'static str {
    p.trend.map_or("", |c| c.label())
}

fn fixed(v: Option<f64>, decimals: usize) -> String {
    v.filter(|x| x.is_finite())
        .map_or_else(String::new, |x| format!("{x:.decimals$}"))
}

const CSV_HEADER: [&str; 16] = [
    "rank",
    "unit",
    "district",
    "lsoa",
    "lsoa_name",
    "location",
    "count",
    "harm",
    "gi_z",
    "gi_p",
    "gi_bin",
    "significant",
    "trend",
    "area_km2",
    "captured_share",
    "cumulative_pai",
];

fn patrol_csv(list: &PatrolList) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    for p in &list.places {
        w.write_record([
            p.rank.to_string(),
            p.code.clone(),
            p.district.clone(),
            p.lsoa_code.clone(),
            p.lsoa_name.clone(),
            p.location.clone(),
            p.count.to_string(),
            fixed(p.harm, 4),
            fixed(Some(p.z), 4),
            format!("{:.3e}", p.p),
            p.bin.to_string(),
            p.significant.to_string(),
            trend_label(p).to_owned(),
            fixed(Some(p.area_km2), 4),
            fixed(Some(p.share), 6),
            fixed(p.pai, 4),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

const TABLE_HEAD: [&str; 11] = [
    "rank", "unit", "district", "LSOA", "location", "count", "z", "bin", "trend", "captured", "PAI",
];

/// The table's rows; with harm weights a harm column after the count (index 6).
fn table_rows(list: &PatrolList) -> Vec<Vec<String>> {
    list.places
        .iter()
        .map(|p| {
            let mut row = vec![
                format!("{}{}", p.rank, if p.significant { "" } else { "*" }),
                p.code.clone(),
                p.district.clone(),
                p.lsoa_name.clone(),
                p.location.clone(),
                p.count.to_string(),
                fixed(Some(p.z), 2),
                p.bin.to_string(),
                trend_label(p).to_owned(),
                format!("{:.1}%", 100.0 * p.share),
                fixed(p.pai, 1),
            ];
            if list.harm.is_some() {
                row.insert(6, fixed(p.harm, 1));
            }
            row
        })
        .collect()
}

/// Columns padded to their widest cell, right-aligned where `numeric` says.
fn fixed_width(head: &[&str], rows: &[Vec<String>], numeric: &[usize]) -> String {
    let widths: Vec<usize> = (0..head.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([head[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| -> String {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(c, s)| match numeric.contains(&c) {
                true => format!("{s:>w$}", w = widths[c]),
                false => format!("{s:<w$}", w = widths[c]),
            })
            .collect();
        format!("{}\n", parts.join("  ").trim_end())
    };
    let mut out = line(head.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

fn patrol_table(list: &PatrolList, prov: &[(&str, String)]) -> String {
    let get = |k: &str| prov.iter().find(|p| p.0 == k).map_or("", |p| p.1.as_str());
    let area: f64 = list.study.area_km2.iter().sum();
    let mut out = format!(
        "Top {} places to patrol: {} units, types {}, districts {}, {} to {}\n\
         {} incidents in {} units ({} with incidents) covering {area:.1} km2\n\
         ranked by {} ({})\n",
        list.places.len(),
        get("unit"),
        get("types"),
        get("districts"),
        get("from"),
        get("to"),
        get("incidents"),
        get("n"),
        get("units_with_incidents"),
        get("ranking"),
        get("ranking_chosen_by"),
    );
    if let Some(w) = &list.sparse {
        let _ = writeln!(out, "warning: {w}");
    }
    out.push('\n');
    let (head, numeric) = match list.harm {
        Some(_) => {
            let mut head = TABLE_HEAD.to_vec();
            head.insert(6, "harm");
            (head, vec![0, 5, 6, 7, 8, 10, 11])
        }
        None => (TABLE_HEAD.to_vec(), vec![0, 5, 6, 7, 9, 10]),
    };
    out.push_str(&fixed_width(&head, &table_rows(list), &numeric));
    if list.places.iter().any(|p| !p.significant) {
        out.push_str("\n* not a significant Gi* hot spot\n");
    }
    out.push_str(&missing_note(prov));
    match list.harm {
        Some(h) => {
            let _ = writeln!(
                out,
                "measure: {}\nharm: the place's incidents weighted by category, {h:.1} in all; \
                 ranked, z, trend and captured are of harm\n\
                 captured: share of all harm in places 1..rank; PAI: that share over their \
                 share of the area (1 = no better than chance)",
                get("measure")
            );
        }
        None => {
            let _ = writeln!(
                out,
                "captured: share of all incidents in places 1..rank; PAI: that share over \
                 their share of the area (1 = no better than chance)"
            );
        }
    }
    out
}

fn patrol_geojson(list: &PatrolList, prov: &[(&str, String)]) -> String {
    let provenance: serde_json::Map<String, Value> = prov
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
        .collect();
    let mut out = format!(
        "{{\"type\":\"FeatureCollection\",\"provenance\":{},\"features\":[",
        Value::Object(provenance)
    );
    let s = &list.study;
    for (n, p) in list.places.iter().enumerate() {
        let props: [Value; 16] = [
            json!(p.rank),
            json!(p.code),
            json!(p.district),
            json!(p.lsoa_code),
            json!(p.lsoa_name),
            json!(p.location),
            json!(p.count.round() as u64),
            json!(p.harm),
            json!(p.z),
            json!(p.p),
            json!(p.bin),
            json!(p.significant),
            json!(p.trend.map(|c| c.label())),
            json!(p.area_km2),
            json!(p.share),
            json!(p.pai),
        ];
        let (unit, key) = match s.units {
            Units::H3(r) => (Unit::H3(r), UnitKey::Cell(s.cells[p.unit])),
            Units::Lsoa(v) => (Unit::Lsoa(v), UnitKey::Index(s.lsoas[p.unit])),
        };
        out.push_str(if n > 0 { ",\n" } else { "\n" });
        out.push_str(r#"{"type":"Feature","properties":{"#);
        for (k, (name, v)) in CSV_HEADER.iter().zip(&props).enumerate() {
            let sep = if k > 0 { "," } else { "" };
            let _ = write!(out, "{sep}\"{name}\":{v}");
        }
        out.push_str(r#"},"geometry":"#);
        push_multipolygon(&mut out, &output::unit_geometry(&s.store, &unit, key));
        out.push('}');
    }
    out.push_str("\n]}\n");
    out
}

pub fn backtest(a: &BacktestArgs) -> anyhow::Result<()> {
    let store = Arc::new(load(&a.data)?);
    let f = filter(&store, &a.filter)?;
    let opts = BacktestOptions {
        coverage: a.coverage,
        train: a.train,
        test: a.test,
        k: a.k,
    };
    let g = store.geography.clone();
    let missing = store.missing_months(&f);
    let units = study_units(&a.unit, &store)?;
    let harm = read_harm(a.harm.as_deref())?;
    let b = backtest::backtest_weighted(store, units, &f, opts, harm.as_ref())?;
    let mut prov = vec![("method", "backtest".to_owned()), ("unit", a.unit.clone())];
    prov.push(("measure", measure(harm.as_ref())));
    prov.extend(filter_provenance(&g, &f, &b.months, &missing));
    prov.extend([
        ("coverage", a.coverage.to_string()),
        ("train_months", a.train.to_string()),
        ("test_months", a.test.to_string()),
        ("k", a.k.to_string()),
        ("folds", b.folds.len().to_string()),
        ("skipped_folds", month_list(&b.skipped)),
        ("n", b.units.to_string()),
    ]);
    if let Some(p) = &a.plot {
        std::fs::write(p, pai_curve_svg(&b, &a.unit))
            .map_err(|e| anyhow::anyhow!("cannot write the plot {}: {e}", p.display()))?;
    }
    match a.format {
        BacktestFormat::Table => super::emit(&backtest_table(&b, a, &prov), a.out.as_deref()),
        BacktestFormat::Csv => super::emit_csv(
            &backtest_csv(&b),
            &prov,
            a.out.as_deref(),
            a.provenance.as_deref(),
        ),
    }
}

/// The PAI curves as an SVG line chart: coverage (0-10% of the area) across, mean PAI
/// up, one line per method in a colour-blind-safe palette (Okabe-Ito) with a marker per
/// coverage, the random expectation (PAI 1) dashed.
fn pai_curve_svg(b: &backtest::Backtest, unit: &str) -> String {
    const W: f64 = 720.0;
    const H: f64 = 440.0;
    const L: f64 = 64.0;
    const R: f64 = 150.0;
    const T: f64 = 40.0;
    const B: f64 = 56.0;
    const COLOURS: [&str; 7] = [
        "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000",
    ];
    let max_c = backtest::CURVE[backtest::CURVE.len() - 1];
    let top = b
        .summary
        .iter()
        .flat_map(|s| s.curve.iter().map(|m| m.mean))
        .filter(|v| v.is_finite())
        .fold(1.0f64, f64::max);
    // A round top for the PAI axis.
    let step = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0]
        .into_iter()
        .find(|s| top / s <= 6.0)
        .unwrap_or(1000.0);
    let y_top = (top / step).ceil() * step;
    let x = |c: f64| L + (W - L - R) * c / max_c;
    let y = |p: f64| H - B - (H - T - B) * p / y_top;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <title>PAI curves, {unit}, {} folds</title>\n<rect width=\"{W}\" height=\"{H}\" fill=\"#ffffff\"/>\n\
         <text x=\"{L}\" y=\"24\" font-size=\"14\">Predictive accuracy index by share of the area ({unit}, {} folds)</text>\n",
        b.folds.len(),
        b.folds.len()
    );
    // Axes, grid and labels.
    let mut k = 0.0;
    while k <= y_top + 1e-9 {
        let _ = writeln!(
            s,
            "<line x1=\"{L}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#dddddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{k}</text>",
            W - R,
            y(k),
            y(k),
            L - 6.0,
            y(k) + 4.0
        );
        k += step;
    }
    for c in [0.0, 0.02, 0.04, 0.06, 0.08, 0.10] {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}%</text>",
            x(c),
            H - B + 18.0,
            (100.0 * c).round()
        );
    }
    let _ = writeln!(
        s,
        "<line x1=\"{L}\" x2=\"{L}\" y1=\"{T}\" y2=\"{:.1}\" stroke=\"#333333\"/><line x1=\"{L}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#333333\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">share of the study area chosen</text>\n\
         <text transform=\"translate(18 {:.1}) rotate(-90)\" text-anchor=\"middle\">PAI (hit rate / area share)</text>",
        H - B,
        W - R,
        H - B,
        H - B,
        (L + W - R) / 2.0,
        H - 12.0,
        (T + H - B) / 2.0
    );
    let mut colour = 0;
    for (row, sm) in b.summary.iter().enumerate() {
        let legend_y = T + 10.0 + 18.0 * row as f64;
        if sm.method == backtest::Method::Random {
            let _ = writeln!(
                s,
                "<line class=\"random\" x1=\"{L}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#777777\" stroke-dasharray=\"6 4\"/>\n\
                 <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{legend_y:.1}\" y2=\"{legend_y:.1}\" stroke=\"#777777\" stroke-dasharray=\"6 4\"/><text x=\"{:.1}\" y=\"{:.1}\">random (1)</text>",
                W - R,
                y(1.0),
                y(1.0),
                W - R + 12.0,
                W - R + 36.0,
                W - R + 42.0,
                legend_y + 4.0
            );
            continue;
        }
        let c = COLOURS[colour % COLOURS.len()];
        colour += 1;
        let pts: Vec<(f64, f64)> = backtest::CURVE
            .iter()
            .zip(&sm.curve)
            .filter(|(_, m)| m.mean.is_finite())
            .map(|(&cv, m)| (x(cv), y(m.mean)))
            .collect();
        let points: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        let _ = writeln!(
            s,
            "<polyline class=\"method\" data-method=\"{}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>",
            sm.method.label(),
            points.join(" ")
        );
        for (a, bb) in &pts {
            let _ = writeln!(
                s,
                "<circle cx=\"{a:.1}\" cy=\"{bb:.1}\" r=\"3\" fill=\"{c}\"/>"
            );
        }
        let _ = writeln!(
            s,
            "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{legend_y:.1}\" y2=\"{legend_y:.1}\" stroke=\"{c}\" stroke-width=\"2\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            W - R + 12.0,
            W - R + 36.0,
            W - R + 42.0,
            legend_y + 4.0,
            sm.method.label()
        );
    }
    s.push_str("</svg>\n");
    s
}

fn backtest_csv(b: &backtest::Backtest) -> String {
    let mut out = String::from(
        "method,folds,hit_rate_mean,hit_rate_sd,pai_mean,pai_sd,pei_mean,pei_sd,area_share_mean,rri_mean,rri_sd\n",
    );
    for s in &b.summary {
        let ms =
            |m: MeanSd, d: usize| format!("{},{}", fixed(Some(m.mean), d), fixed(Some(m.sd), d));
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{}",
            s.method.label(),
            s.folds,
            ms(s.hit_rate, 6),
            ms(s.pai, 4),
            ms(s.pei, 6),
            fixed(Some(s.area_share.mean), 6),
            ms(s.rri, 4),
        );
    }
    out
}

/// The `--harm` file, read and checked, when given.
pub(crate) fn read_harm(
    path: Option<&std::path::Path>,
) -> Result<Option<crate::stats::harm::HarmWeights>, crate::stats::harm::HarmError> {
    path.map(crate::stats::harm::HarmWeights::read).transpose()
}

/// What the backtest counts: incidents, or their harm with the file and its sources.
fn measure(harm: Option<&crate::stats::harm::HarmWeights>) -> String {
    harm.map_or_else(
        || "count".to_owned(),
        |h| {
            let source = match h.sources.as_slice() {
                [] => "no source given".to_owned(),
                s => format!("source: {}", s.join("; ")),
            };
            format!(
                "harm (weights of {} categories from {}; {source})",
                h.len(),
                h.file
            )
        },
    )
}

fn backtest_table(b: &backtest::Backtest, a: &BacktestArgs, prov: &[(&str, String)]) -> String {
    let tested = match (b.folds.first(), b.folds.last()) {
        (Some(first), Some(last)) => format!("{} to {}", first.test.0, last.test.1),
        _ => String::new(),
    };
    let mut out = format!(
        "Backtest: {} units ({}), {} folds of {} training and {} test month(s), tested {}\n\
         each method chooses up to {:.1}% of {:.1} km2; scored on the test window\n\
         measure: {}\n\n",
        a.unit,
        b.units,
        b.folds.len(),
        a.train,
        a.test,
        tested,
        100.0 * a.coverage,
        b.study_area_km2,
        prov.iter()
            .find(|p| p.0 == "measure")
            .map_or("count", |p| p.1.as_str()),
    );
    if !b.skipped.is_empty() {
        let _ = writeln!(
            out,
            "{}skipped {} fold(s) whose windows hold a missing month (origins {})\n",
            missing_note(prov),
            b.skipped.len(),
            month_list(&b.skipped).replace(';', ", ")
        );
    }
    let _ = writeln!(
        out,
        "{:<12} {:>5}  {:>16}  {:>15}  {:>16}  {:>6}  {:>13}",
        "method", "folds", "hit rate (sd)", "PAI (sd)", "PEI (sd)", "area", "RRI (sd)"
    );
    for s in &b.summary {
        let ms = |m: MeanSd, d: usize| match m.mean.is_finite() {
            true => format!("{} ({})", fixed(Some(m.mean), d), fixed(Some(m.sd), d)),
            false => "n/a".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:<12} {:>5}  {:>16}  {:>15}  {:>16}  {:>5.2}%  {:>13}",
            s.method.label(),
            s.folds,
            ms(s.hit_rate, 3),
            ms(s.pai, 2),
            ms(s.pei, 3),
            100.0 * s.area_share.mean,
            ms(s.rri, 2),
        );
    }
    // The PAI curve: each method's ranking cut at each coverage (mean over the folds).
    let _ = write!(
        out,
        "\nPAI curve (mean over folds) by share of the area:\n{:<12}",
        "method"
    );
    for c in backtest::CURVE {
        let _ = write!(out, " {:>6}", format!("{:.1}%", 100.0 * c));
    }
    out.push('\n');
    for s in &b.summary {
        let _ = write!(out, "{:<12}", s.method.label());
        for m in &s.curve {
            let _ = write!(
                out,
                " {:>6}",
                if m.mean.is_finite() {
                    format!("{:.2}", m.mean)
                } else {
                    "n/a".into()
                }
            );
        }
        out.push('\n');
    }
    let radii = b.folds.iter().map(|f| f.bandwidth_m);
    let (lo, hi) = radii.fold((f64::INFINITY, 0.0f64), |(l, h), r| (l.min(r), h.max(r)));
    let range = |v: Vec<f64>| {
        let (l, h) = v
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| {
                (l.min(*x), h.max(*x))
            });
        if l.is_finite() {
            format!("{l:.4} to {h:.4}")
        } else {
            "n/a".into()
        }
    };
    let fits: Vec<(f64, f64)> = b.folds.iter().filter_map(|f| f.etas).collect();
    let etas_line = format!(
        "\nETAS fit per fold: theta (incidents each incident triggers) {}, beta (risk left \
         after a further month) {}.",
        range(fits.iter().map(|f| f.0).collect()),
        range(fits.iter().map(|f| f.1).collect()),
    );
    let _ = writeln!(
        out,
        "\nrandom: the expected score of places chosen at random for the same area.\n\
         PAI = hit rate / area share (1 = chance); PEI = hits / most hits possible in that \
         area (1 = perfect); RRI = the places' test / training incidents over the whole \
         area's (Levine 2008; 1 = they kept their share).\nKDE radius {lo:.0} to {hi:.0} m (ArcGIS default per fold, {} m \
         where undefined).{etas_line}",
        backtest::KDE_FALLBACK_M
    );
    out
}
