//! `hotspot near-repeat`: the Knox test over dated records (`stats::near_repeat`), as
//! Ratcliffe's Near Repeat Calculator reports it. police.uk gives months only, so its
//! records cannot take part: the command says so rather than computing a day-level
//! answer from month-level data.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::DataDir;
use super::aggregate::{FilterArgs, filter_in};
use crate::model::{CrimeType, civil_from_days, days_from_civil};
use crate::spatial::Geography;
use crate::spatial::bng::{bng_to_wgs84, wgs84_to_bng};
use crate::stats::near_repeat::{DatedPoint, Knox, KnoxOptions, knox};
use crate::stats::risk_zones::{self, RiskWindow, Zone};
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
    /// Live risk zones on this date (YYYY-MM-DD): the incidents dated within the risk
    /// window's days before it. Default: the latest date under the filter.
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub as_of: Option<i32>,
    /// Write the live risk zones as a GeoJSON layer (a circle of the window's distance
    /// around each incident, with its dates) to this file.
    #[arg(long, value_name = "FILE")]
    pub zones: Option<PathBuf>,
    /// Level at which a band counts as raised for the risk window.
    #[arg(long, default_value_t = 0.05, value_parser = parse_alpha)]
    pub alpha: f64,
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
    let store = Store::open_read_only_at(&a.data.at()?)?;
    let (lo, hi) = (
        f.from.map_or(0, |m| m.index()),
        f.to.map_or(u16::MAX, |m| m.index()),
    );
    let mut points = Vec::new();
    let mut types = Vec::new();
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
            (Some(day), Ok((x, y))) => {
                points.push(DatedPoint { x, y, day });
                types.push(ctype);
            }
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
    let as_of = a
        .as_of
        .unwrap_or_else(|| points.iter().map(|p| p.day).max().unwrap_or(0));
    let w = risk_zones::window(&k, a.alpha);
    let zones = w.map_or_else(Vec::new, |w| risk_zones::live(&points, w, as_of));
    let live = Live {
        window: w,
        zones,
        as_of,
        alpha: a.alpha,
        points: &points,
        types: &types,
    };
    if let Some(path) = &a.zones {
        let doc = zones_geojson(&live)?;
        std::fs::write(path, doc)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    match a.format {
        NearRepeatFormat::Csv => super::emit_csv(
            &csv(&k),
            &provenance(&k, undated, &live),
            a.out.as_deref(),
            a.provenance.as_deref(),
        ),
        NearRepeatFormat::Table => {
            let mut out = table(&k, undated);
            out.push_str(&zones_table(&live));
            super::emit(&out, a.out.as_deref())
        }
    }
}

/// A date as YYYY-MM-DD, to days since 1970-01-01.
fn parse_date(s: &str) -> Result<i32, String> {
    let bad = || format!("expected a date as YYYY-MM-DD, got {s:?}");
    let mut it = s.splitn(3, '-');
    let mut part = |len: usize| {
        it.next()
            .filter(|p| p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<u32>().ok())
            .ok_or_else(bad)
    };
    let (y, m, d) = (part(4)?, part(2)?, part(2)?);
    let day = days_from_civil(y as i32, m, d);
    // A day that does not exist (2021-02-30) does not come back the same.
    (civil_from_days(day) == (y as i32, m, d))
        .then_some(day)
        .ok_or_else(bad)
}

fn parse_alpha(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|a| *a > 0.0 && *a <= 1.0)
        .ok_or_else(|| format!("expected a level above 0 and at most 1, got {s:?}"))
}

fn date(day: i32) -> String {
    // Far enough from i32's ends that the civil arithmetic cannot overflow (a --days
    // band of billions of days would otherwise reach them).
    let (y, m, d) = civil_from_days(day.clamp(-2_000_000_000, 2_000_000_000));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The risk window and the zones live on `as_of`.
struct Live<'a> {
    window: Option<RiskWindow>,
    zones: Vec<Zone>,
    as_of: i32,
    alpha: f64,
    points: &'a [DatedPoint],
    types: &'a [u8],
}

impl Live<'_> {
    fn type_label(&self, z: &Zone) -> &'static str {
        self.types
            .get(z.point)
            .and_then(|c| CrimeType::from_code(*c))
            .map_or("", CrimeType::label)
    }

    fn lon_lat(&self, z: &Zone) -> Option<(f64, f64)> {
        let p = self.points.get(z.point)?;
        bng_to_wgs84(p.x, p.y).ok()
    }
}

fn zones_table(l: &Live) -> String {
    let mut out = String::new();
    let Some(w) = l.window else {
        let _ = writeln!(
            out,
            "\nLive risk zones: none. The nearest bands are not raised at p <= {}, so the data show no near repeat to draw zones from.",
            l.alpha
        );
        return out;
    };
    let _ = writeln!(
        out,
        "\nRisk window: raised within {} m and {} days of an incident (the runs of bands at p <= {} from the nearest).\n\
         Live risk zones on {}: {} incidents dated {} to {}",
        w.distance_m,
        w.days,
        l.alpha,
        date(l.as_of),
        l.zones.len(),
        date(
            l.as_of
                .saturating_sub(i32::try_from(w.days).unwrap_or(i32::MAX))
        ),
        date(l.as_of),
    );
    if l.zones.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "{:<10}  {:<10}  {:>10}  {:>10}  type",
        "date", "until", "longitude", "latitude"
    );
    for z in &l.zones {
        let (lon, lat) = l.lon_lat(z).unwrap_or((f64::NAN, f64::NAN));
        let _ = writeln!(
            out,
            "{:<10}  {:<10}  {:>10.5}  {:>10.5}  {}",
            date(z.day),
            date(z.until),
            lon,
            lat,
            l.type_label(z)
        );
    }
    out
}

/// The zones as a GeoJSON FeatureCollection of circles (64 vertices, drawn on the BNG
/// and taken to WGS84), with the window in a foreign member.
fn zones_geojson(l: &Live) -> anyhow::Result<String> {
    let mut features = Vec::new();
    if let Some(w) = l.window {
        for z in &l.zones {
            let p = l.points[z.point];
            let ring: Vec<[f64; 2]> = risk_zones::circle(p.x, p.y, w.distance_m, 64)
                .into_iter()
                .map(|(x, y)| {
                    bng_to_wgs84(x, y)
                        .map(|(lon, lat)| [round7(lon), round7(lat)])
                        .map_err(|e| anyhow::anyhow!("a zone left the British National Grid: {e}"))
                })
                .collect::<anyhow::Result<_>>()?;
            let (lon, lat) = l.lon_lat(z).unwrap_or((f64::NAN, f64::NAN));
            features.push(serde_json::json!({
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {
                    "date": date(z.day),
                    "until": date(z.until),
                    "radius_m": w.distance_m,
                    "days": w.days,
                    "type": l.type_label(z),
                    "incident_lon": round7(lon),
                    "incident_lat": round7(lat),
                },
            }));
        }
    }
    let doc = serde_json::json!({
        "type": "FeatureCollection",
        "as_of": date(l.as_of),
        "window": l.window.map(|w| serde_json::json!({"distance_m": w.distance_m, "days": w.days, "alpha": l.alpha})),
        "features": features,
    });
    Ok(serde_json::to_string(&doc)?)
}

fn round7(v: f64) -> f64 {
    (v * 1e7).round() / 1e7
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
fn provenance(k: &Knox, undated: u64, l: &Live) -> Vec<(&'static str, String)> {
    vec![
        ("as_of", date(l.as_of)),
        (
            "risk_window",
            l.window.map_or_else(
                || "none".into(),
                |w| format!("{} m, {} days", w.distance_m, w.days),
            ),
        ),
        ("live_zones", l.zones.len().to_string()),
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
