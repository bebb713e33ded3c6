//! Seeded, realistic fixture data: police.uk street-level crime and DfT STATS19 collisions
//! for Lancashire, with known ("planted") hotspots.
//!
//! Why generate rather than ship real extracts: tests and benchmarks need data at any size
//! (10 rows or 10 million), byte-identical from run to run, and with hotspots whose
//! position, timing and kind we know, so the analysis can be checked against ground truth.
//! Real data has the quirks ingest must survive, so the fixtures copy them: incidents snap to
//! a fixed set of anonymisation points (many rows share identical coordinates), about 1% of
//! rows have no location, anti-social behaviour has no crime ID or outcome, police.uk ships
//! one CSV per month (optionally in one zip), and STATS19 changed its column names
//! ("accident" to "collision") in 2023 and writes missing coordinates several ways.
//!
//! Determinism: every random stream is a ChaCha8 generator seeded from `seed` and given its
//! own stream number (layout, each month, each year), so months can be generated in
//! parallel and the output does not depend on thread scheduling. Nothing is iterated in
//! hash order.

mod hotspots;
mod layout;
mod police;
mod stats19;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

use crate::model::{CrimeType, Month};

pub use hotspots::{HotspotKind, PlantedHotspot, planted_hotspots};

/// What to generate and where.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Output directory (created).
    pub out: PathBuf,
    /// LSOA polygons (WGS84 GeoJSON with `LSOA11CD`, `LSOA11NM`, `LAD_NAME`, `LAD_CODE`).
    pub lsoa_geojson: Option<PathBuf>,
    /// Total police.uk rows over all months.
    pub police_rows: u64,
    /// Total STATS19 collisions over all years.
    pub stats19_rows: u64,
    /// Number of months, from `start`.
    pub months: u32,
    /// First month.
    pub start: Month,
    pub seed: u64,
    /// Pack the police months into one zip archive, as police.uk ships them.
    pub zip: bool,
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateSummary {
    pub police_rows: u64,
    /// Police rows written with `No Location` (included in `police_rows`).
    pub unlocated_rows: u64,
    pub stats19_rows: u64,
    /// Every file written, police first (in month order), then STATS19 (in year order).
    pub files: Vec<PathBuf>,
}

/// Why generation failed.
#[derive(Debug, Error)]
pub enum GenerateError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: unusable LSOA GeoJSON: {reason}", path.display())]
    Geojson { path: PathBuf, reason: String },
    #[error("{}: zip archive: {source}", path.display())]
    Zip {
        path: PathBuf,
        source: zip::result::ZipError,
    },
    #[error("invalid generate options: {0}")]
    Options(String),
}

impl GenerateError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> GenerateError + '_ {
        move |source| GenerateError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Stream numbers of the independent random streams (see the module docs).
const STREAM_LAYOUT: u64 = 1;
const STREAM_MONTH_SIZES: u64 = 2;
const STREAM_POLICE_MONTH: u64 = 1 << 32;
const STREAM_STATS19_YEAR: u64 = 2 << 32;
const STREAM_STATS19_CASUALTIES: u64 = 3 << 32;

/// The random stream `stream` of seed `seed`.
fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Writes the police.uk months and the STATS19 years described by `opts`.
///
/// # Errors
/// When the options are inconsistent, the LSOA file cannot be read or has no usable
/// polygons, or an output file cannot be written.
pub fn generate(opts: &GenerateOptions) -> Result<GenerateSummary, GenerateError> {
    // Index of 2199-12, the last month `Month` can hold.
    const LAST_MONTH_INDEX: u64 = (2199 - 1970) * 12 + 11;
    let last = u64::from(opts.start.index()) + u64::from(opts.months);
    if opts.months == 0 || last - 1 > LAST_MONTH_INDEX {
        return Err(GenerateError::Options(format!(
            "months must be at least 1 and end by 2199-12 (got {} from {})",
            opts.months, opts.start
        )));
    }
    std::fs::create_dir_all(&opts.out).map_err(GenerateError::io(&opts.out))?;
    let layout = layout::Layout::build(opts.lsoa_geojson.as_deref(), opts.seed)?;

    let mut summary = GenerateSummary::default();
    let police = police::write(opts, &layout)?;
    summary.police_rows = police.rows;
    summary.unlocated_rows = police.unlocated;
    summary.files.extend(police.files);
    let (rows, files) = stats19::write(opts, &layout)?;
    summary.stats19_rows = rows;
    summary.files.extend(files);
    Ok(summary)
}

/// Writes the STATS19 casualty file of every year of `opts` into `opts.out/stats19/`,
/// for the collisions [`generate`] writes with the same options (the same seed, layout
/// and row counts). Returns the casualties written and the files.
///
/// # Errors
/// As [`generate`].
pub fn generate_casualties(opts: &GenerateOptions) -> Result<(u64, Vec<PathBuf>), GenerateError> {
    let layout = layout::Layout::build(opts.lsoa_geojson.as_deref(), opts.seed)?;
    stats19::write_casualties(opts, &layout)
}

/// The `i`-th month of the run.
fn month_at(opts: &GenerateOptions, i: u32) -> Month {
    // `generate` checked that every month of the run fits in a u16 index.
    Month::from_index(opts.start.index() + i as u16)
}

/// Splits `total` in proportion to `weights` with the largest-remainder method, so the
/// parts add up exactly and ties go to the earlier part.
fn apportion(total: u64, weights: &[f64]) -> Vec<u64> {
    let sum: f64 = weights.iter().sum();
    if weights.is_empty() || sum <= 0.0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<f64> = weights.iter().map(|w| total as f64 * w / sum).collect();
    let mut parts: Vec<u64> = exact.iter().map(|e| e.floor() as u64).collect();
    let given: u64 = parts.iter().sum();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        let fa = exact[a] - exact[a].floor();
        let fb = exact[b] - exact[b].floor();
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    for &i in order
        .iter()
        .cycle()
        .take(total.saturating_sub(given) as usize)
    {
        parts[i] += 1;
    }
    parts
}

/// Samples an index with probability proportional to its weight (cumulative table and a
/// binary search: no error path for tables we build ourselves).
#[derive(Debug, Clone)]
struct Weighted {
    cumulative: Vec<f64>,
}

impl Weighted {
    fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut acc = 0.0;
        let cumulative = weights
            .into_iter()
            .map(|w| {
                acc += if w.is_finite() && w > 0.0 { w } else { 0.0 };
                acc
            })
            .collect();
        Weighted { cumulative }
    }

    fn sample<R: Rng>(&self, rng: &mut R) -> usize {
        let n = self.cumulative.len();
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        if n == 0 {
            return 0;
        }
        if total <= 0.0 {
            return rng.random_range(0..n);
        }
        let x = rng.random::<f64>() * total;
        self.cumulative.partition_point(|&c| c <= x).min(n - 1)
    }
}

/// Appends `s` as one CSV field, quoted when it holds a comma, quote or line break.
fn push_csv_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// Metres per degree of latitude and (at `lat`) of longitude: good to well under 1% over a
/// few kilometres, which is all the generator needs.
fn metres_per_degree(lat: f64) -> (f64, f64) {
    (111_320.0 * lat.to_radians().cos(), 110_574.0)
}

/// Distance in metres between two nearby WGS84 points (equirectangular).
fn distance_m(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (mx, my) = metres_per_degree((lat1 + lat2) / 2.0);
    ((lon2 - lon1) * mx).hypot((lat2 - lat1) * my)
}

/// A uniformly random point within `radius_m` of (`lon`, `lat`).
fn point_in_disc<R: Rng>(rng: &mut R, lon: f64, lat: f64, radius_m: f64) -> (f64, f64) {
    let r = radius_m * rng.random::<f64>().sqrt();
    let theta = rng.random::<f64>() * std::f64::consts::TAU;
    let (mx, my) = metres_per_degree(lat);
    (lon + r * theta.cos() / mx, lat + r * theta.sin() / my)
}

/// Share of police.uk rows per crime type, roughly Lancashire's.
const TYPE_SHARES: [(CrimeType, f64); 14] = [
    (CrimeType::ViolenceAndSexualOffences, 33.0),
    (CrimeType::AntiSocialBehaviour, 22.0),
    (CrimeType::CriminalDamageArson, 9.0),
    (CrimeType::PublicOrder, 9.0),
    (CrimeType::Shoplifting, 6.0),
    (CrimeType::OtherTheft, 5.0),
    (CrimeType::VehicleCrime, 4.0),
    (CrimeType::Burglary, 4.0),
    (CrimeType::Drugs, 2.0),
    (CrimeType::OtherCrime, 1.5),
    (CrimeType::PossessionOfWeapons, 1.0),
    (CrimeType::Robbery, 0.6),
    (CrimeType::BicycleTheft, 0.6),
    (CrimeType::TheftFromThePerson, 0.6),
];
