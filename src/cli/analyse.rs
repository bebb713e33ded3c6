//! `hotspot analyse`: hotspot statistics over a study area, as CSV or GeoJSON, with the
//! parameters recorded in the output (provenance).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use super::DataDir;
use super::aggregate::{FilterArgs, OutFormat, filter, load};
use crate::analysis::{Unit, UnitKey, output};
use crate::spatial::geojson_out::{push_multipolygon, push_num, push_str_lit};
use crate::stats::gi_star::gi_star;
use crate::stats::local_moran::local_moran;
use crate::stats::study::{Contiguity, Study, Units};
use crate::stats::{emerging, kde};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Method {
    /// Getis-Ord Gi* (z, p, confidence bin).
    Gistar,
    /// Local Moran's I with conditional permutations.
    Lisa,
    /// Kernel density (quartic, metres) at each unit's centre, incidents per km2.
    Kde,
    /// Emerging hot spots: space-time Gi* by month, Mann-Kendall trend, 17 categories.
    Emerging,
}

#[derive(Debug, Args)]
pub struct AnalyseArgs {
    #[command(flatten)]
    pub data: DataDir,
    #[arg(long, value_enum, default_value = "gistar")]
    pub method: Method,
    /// Units: h3:5 .. h3:11 (the grid covering the study area) or lsoa.
    #[arg(long, default_value = "h3:9")]
    pub unit: String,
    /// H3 neighbourhood: rings around each cell.
    #[arg(long, default_value_t = 1)]
    pub k: u32,
    /// LSOA neighbours by centroid distance in metres instead of queen contiguity.
    #[arg(long, value_name = "METRES")]
    pub distance_band: Option<f64>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Benjamini-Hochberg false discovery rate control (on by default, as ArcGIS).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub fdr: bool,
    /// Permutations for local Moran.
    #[arg(long, default_value_t = 999)]
    pub permutations: usize,
    /// Seed for the permutations.
    #[arg(long, default_value_t = 12345)]
    pub seed: u64,
    /// Gi*: conditional permutations for pseudo p-values (`gi_p_sim`, as PySAL's
    /// `G_Local(permutations=...)`); 0 (the default) gives the normal p only.
    #[arg(long, default_value_t = 0)]
    pub gi_permutations: usize,
    /// Emerging: months in the time window (the month and the one before: Esri's default).
    #[arg(long, default_value_t = crate::stats::emerging::ESRI_DEFAULT_WINDOW)]
    pub time_window: usize,
    /// Kernel density search radius in metres (default: ArcGIS's rule from the data).
    #[arg(long, value_name = "METRES")]
    pub bandwidth: Option<f64>,
    /// Population denominators: CSV with unit code and population.
    #[arg(long, value_name = "CSV")]
    pub population: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: OutFormat,
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// With `--format csv`: where the provenance (method, filter, parameters) goes, as
    /// JSON; default beside `--out` as `OUT.json`, none on standard output. The CSV
    /// itself is plain: a header row first.
    #[arg(long, value_name = "FILE")]
    pub provenance: Option<PathBuf>,
}

/// Named per-unit columns of a result.
struct Table {
    names: Vec<&'static str>,
    columns: Vec<Vec<String>>,
}

pub fn run(a: &AnalyseArgs) -> anyhow::Result<()> {
    let store = Arc::new(load(&a.data)?);
    let f = filter(&store, &a.filter)?;
    let units = match Unit::parse_for(&a.unit, &store).map_err(anyhow::Error::msg)? {
        Unit::H3(r) => Units::H3(r),
        Unit::Lsoa(v) => Units::Lsoa(v),
        _ => anyhow::bail!(
            "--unit must be h3:5 .. h3:11, lsoa11, lsoa21 or lsoa (the data's vintage) for analyse"
        ),
    };
    anyhow::ensure!((1..=10).contains(&a.k), "--k must be from 1 to 10");
    let study = Study::new(store.clone(), units, &f);
    anyhow::ensure!(study.len() >= 3, "the study area has fewer than 3 units");
    let contiguity = a
        .distance_band
        .map_or(Contiguity::Queen, Contiguity::DistanceBand);
    let density = study.density();
    let population = match &a.population {
        Some(p) => Some(read_population(p, &study.codes)?),
        None => None,
    };
    let mut t = Table {
        names: vec!["count", "per_km2"],
        columns: vec![fmt(&study.counts), fmt(&density)],
    };
    if let Some(pop) = &population {
        let rate: Vec<f64> = study
            .counts
            .iter()
            .zip(pop)
            .map(|(c, p)| if *p > 0.0 { 1000.0 * c / p } else { 0.0 })
            .collect();
        t.names.push("per_1000_population");
        t.columns.push(fmt(&rate));
    }
    match a.method {
        Method::Kde => {}
        Method::Emerging => {
            anyhow::ensure!(!study.cells.is_empty(), "--method emerging needs H3 units");
            let monthly = study.monthly(&f);
            anyhow::ensure!(
                monthly.observed_len() >= 3,
                "emerging hot spots need at least 3 months with data (missing months, with no file published, do not count)"
            );
            let w = study.weights(a.k, contiguity, true);
            let e = emerging::emerging_hot_spots_observed(
                &monthly.values,
                &monthly.observed,
                &w,
                a.time_window,
                a.fdr,
                emerging::DEFAULT_TREND_ALPHA,
            )?;
            // The last month with data (a missing final month has no z).
            let last =
                e.z.iter()
                    .zip(&e.observed)
                    .rev()
                    .find(|(_, o)| **o)
                    .map(|(z, _)| z.clone())
                    .unwrap_or_default();
            t.names.extend([
                "category",
                "category_code",
                "trend_z",
                "trend_p",
                "last_month_z",
            ]);
            t.columns.extend([
                e.category.iter().map(|c| c.label().to_owned()).collect(),
                e.category.iter().map(|c| c.code().to_string()).collect(),
                fmt(&e.trend.iter().map(|m| m.z).collect::<Vec<_>>()),
                fmt(&e.trend.iter().map(|m| m.p).collect::<Vec<_>>()),
                fmt(&last),
            ]);
        }
        Method::Gistar => {
            let w = study.weights(a.k, contiguity, true);
            let r = gi_star(&study.counts, &w, a.fdr);
            t.names.extend(["gi_z", "gi_p", "gi_bin"]);
            t.columns.extend([
                fmt(&r.z),
                fmt(&r.p),
                r.bin.iter().map(ToString::to_string).collect(),
            ]);
            if a.gi_permutations > 0 {
                let p = crate::stats::gi_star::p_sim(&study.counts, &w, a.gi_permutations, a.seed);
                t.names.push("gi_p_sim");
                t.columns.push(fmt(&p));
            }
        }
        Method::Lisa => {
            let w = study.weights(a.k, contiguity, false);
            let r = local_moran(&study.counts, &w, a.permutations, a.seed, 0.05, a.fdr);
            t.names
                .extend(["lisa_i", "lisa_p", "lisa_quadrant", "lisa_significant"]);
            t.columns.extend([
                fmt(&r.i),
                fmt(&r.p_sim),
                r.quadrant.iter().map(|q| q.label().to_owned()).collect(),
                r.significant.iter().map(ToString::to_string).collect(),
            ]);
        }
    }
    let mut provenance = provenance(a, &study);
    if matches!(a.method, Method::Emerging) {
        let missing: Vec<String> = study
            .store
            .missing_months(&f)
            .iter()
            .map(ToString::to_string)
            .collect();
        provenance.push((
            "missing_months",
            if missing.is_empty() {
                "none".into()
            } else {
                missing.join(";")
            },
        ));
    }
    if matches!(a.method, Method::Gistar | Method::Lisa | Method::Emerging) {
        let nonzero = study.counts.iter().filter(|c| **c > 0.0).count();
        if let Some(w) = crate::stats::patrol::sparse_warning(nonzero) {
            eprintln!("hotspot: warning: {w}");
            provenance.push(("warning", w));
        }
    }
    if let Method::Kde = a.method {
        let (values, bandwidth) = kde_at_units(&study, &f, a.bandwidth)?;
        t.names.push("kde_per_km2");
        t.columns.push(fmt(&values));
        provenance.push(("bandwidth_m", format!("{bandwidth:.1}")));
    }
    match a.format {
        OutFormat::Csv => super::emit_csv(
            &to_csv(&study, &t),
            &provenance,
            a.out.as_deref(),
            a.provenance.as_deref(),
        ),
        OutFormat::Geojson => super::emit(&to_geojson(&study, &t, &provenance), a.out.as_deref()),
    }
}

/// Kernel density at each unit's centre (H3 cell centre or polygon centroid), per km2.
fn kde_at_units(
    s: &Study,
    f: &crate::analysis::Filter,
    bandwidth: Option<f64>,
) -> anyhow::Result<(Vec<f64>, f64)> {
    use geo::Centroid;
    let points = kde::points_from_store(&s.store, f);
    let r = match bandwidth {
        Some(b) => b,
        None => kde::default_bandwidth(&points).context(
            "too few or too concentrated incidents for the default bandwidth: give --bandwidth",
        )?,
    };
    let surface = kde::KernelDensity::new(points, r)?;
    let centres: Vec<(f64, f64)> = match s.units {
        Units::H3(_) => s
            .cells
            .iter()
            .map(|c| {
                let ll = h3o::LatLng::from(*c);
                (ll.lng(), ll.lat())
            })
            .collect(),
        Units::Lsoa(v) => s
            .lsoas
            .iter()
            .map(|&i| {
                s.store.geography.lsoa_set(v).polygons[i as usize]
                    .centroid()
                    .map_or((f64::NAN, f64::NAN), |p| (p.x(), p.y()))
            })
            .collect(),
    };
    let values = centres
        .iter()
        .map(|&(lon, lat)| {
            crate::spatial::bng::wgs84_to_bng(lon, lat)
                .map_or(0.0, |(x, y)| kde::per_km2(surface.density_at(x, y)))
        })
        .collect();
    Ok((values, r))
}

fn fmt(v: &[f64]) -> Vec<String> {
    v.iter()
        .map(|x| {
            let mut s = String::new();
            push_num(&mut s, *x, 10);
            s
        })
        .collect()
}

fn read_population(path: &std::path::Path, codes: &[String]) -> anyhow::Result<Vec<f64>> {
    let mut rdr =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let mut map = std::collections::HashMap::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: line {}", path.display(), i + 2))?;
        let (code, pop) = (rec.get(0).unwrap_or(""), rec.get(1).unwrap_or(""));
        let v: f64 = pop
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .with_context(|| {
                format!(
                    "{}: line {}: field population: '{pop}' is not a non-negative number",
                    path.display(),
                    i + 2
                )
            })?;
        map.insert(code.trim().to_owned(), v);
    }
    Ok(codes
        .iter()
        .map(|c| map.get(c).copied().unwrap_or(0.0))
        .collect())
}

fn provenance(a: &AnalyseArgs, s: &Study) -> Vec<(&'static str, String)> {
    let types: Vec<&str> = if a.filter.types.is_empty() {
        vec!["all"]
    } else {
        a.filter.types.iter().map(|t| t.slug()).collect()
    };
    let (from, to) = s
        .store
        .month_range()
        .map_or((String::new(), String::new()), |(f, t)| {
            (f.to_string(), t.to_string())
        });
    let mut p = vec![
        ("method", format!("{:?}", a.method).to_lowercase()),
        ("unit", a.unit.clone()),
        ("k", a.k.to_string()),
        (
            "weights",
            if s.cells.is_empty() {
                a.distance_band
                    .map_or("queen".into(), |m| format!("distance band {m} m"))
            } else {
                format!("H3 grid disk k={}", a.k)
            },
        ),
        ("from", a.filter.from.map_or(from, |m| m.to_string())),
        ("to", a.filter.to.map_or(to, |m| m.to_string())),
        ("types", types.join(";")),
        (
            "districts",
            if a.filter.district.is_empty() {
                "all".into()
            } else {
                a.filter.district.join(";")
            },
        ),
        ("fdr", a.fdr.to_string()),
        ("n", s.len().to_string()),
        ("incidents", s.counts.iter().sum::<f64>().to_string()),
    ];
    if matches!(a.method, Method::Emerging) {
        p.push(("time_window", a.time_window.to_string()));
        p.push((
            "trend_alpha",
            crate::stats::emerging::DEFAULT_TREND_ALPHA.to_string(),
        ));
    }
    if matches!(a.method, Method::Lisa) {
        p.push(("permutations", a.permutations.to_string()));
        p.push(("seed", a.seed.to_string()));
    }
    p
}

fn to_csv(s: &Study, t: &Table) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "unit,{}", t.names.join(","));
    for i in 0..s.len() {
        out.push_str(&s.codes[i]);
        for c in &t.columns {
            out.push(',');
            out.push_str(&c[i]);
        }
        out.push('\n');
    }
    out
}

fn to_geojson(s: &Study, t: &Table, prov: &[(&str, String)]) -> String {
    let mut out = String::from(r#"{"type":"FeatureCollection","provenance":{"#);
    for (i, (k, v)) in prov.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "\"{k}\":");
        push_str_lit(&mut out, v);
    }
    out.push_str(r#"},"features":["#);
    for i in 0..s.len() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("\n{\"type\":\"Feature\",\"properties\":{\"unit\":");
        push_str_lit(&mut out, &s.codes[i]);
        for (name, col) in t.names.iter().zip(&t.columns) {
            let v = &col[i];
            let quoted = v.parse::<f64>().is_err() && v != "true" && v != "false";
            let _ = if quoted {
                write!(out, ",\"{name}\":\"{v}\"")
            } else {
                write!(out, ",\"{name}\":{v}")
            };
        }
        out.push_str("},\"geometry\":");
        let (unit, key) = match s.units {
            Units::H3(r) => (Unit::H3(r), UnitKey::Cell(s.cells[i])),
            Units::Lsoa(v) => (Unit::Lsoa(v), UnitKey::Index(s.lsoas[i])),
        };
        push_multipolygon(&mut out, &output::unit_geometry(&s.store, &unit, key));
        out.push('}');
    }
    out.push_str("\n]}\n");
    out
}
