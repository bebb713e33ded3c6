//! The command line: thin wrappers that parse flags into library types, call the library,
//! and print. Every failure becomes a one-line reason and a non-zero exit in `main`.

mod aggregate;
mod analyse;
mod coverage;
mod ingest;
mod near_repeat;
mod patrol;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::model::Month;

/// Geospatial hotspot analysis for community safety partnerships.
#[derive(Debug, Parser)]
#[command(name = "hotspot", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where the store lives.
#[derive(Debug, Clone, Args)]
pub struct DataDir {
    /// Data directory holding the store (hotspot.sqlite).
    #[arg(
        long = "data",
        env = "HOTSPOT_DATA",
        default_value = "hotspot-data",
        value_name = "DIR"
    )]
    pub dir: PathBuf,
    /// The store of record in PostgreSQL instead of the data directory's SQLite file:
    /// `postgresql://user:password@host:port/database` (the data directory still holds
    /// the ingest queue and its lock).
    #[arg(long = "store", env = "HOTSPOT_STORE", value_name = "URL")]
    pub store: Option<String>,
}

impl DataDir {
    /// Where the store of record is.
    ///
    /// # Errors
    /// When `--store` is not a `postgresql://` URL.
    pub fn at(&self) -> Result<crate::store::StoreAt, crate::store::StoreError> {
        crate::store::StoreAt::new(&self.dir, self.store.as_deref())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest police.uk CSVs or zips, STATS19 collision CSVs, generic CSVs or GeoJSON points.
    Ingest(ingest::IngestArgs),
    /// Count incidents by unit x month x type, as CSV or GeoJSON.
    Aggregate(aggregate::AggregateArgs),
    /// Serve heatmap tiles, vector tiles, GeoJSON and OGC API - Features over HTTP.
    Serve(crate::serve::ServeArgs),
    /// Hotspot statistics (Gi*, local Moran) over a study area, with provenance.
    Analyse(analyse::AnalyseArgs),
    /// A table of incidents by district and crime type.
    Summary(aggregate::SummaryArgs),
    /// The N places to patrol: Gi* hot spots with trend, street and the share they capture.
    Patrol(patrol::PatrolArgs),
    /// Which hotspot method would have predicted the next month best (hit rate, PAI, PEI).
    Backtest(patrol::BacktestArgs),
    /// Near repeat (Knox test, as Ratcliffe's Near Repeat Calculator) over dated records.
    NearRepeat(near_repeat::NearRepeatArgs),
    /// Which force-months each dataset covers, the months missing, and per month the
    /// shares of incidents unlocated and outside the study area.
    Coverage(coverage::CoverageArgs),
    /// Write seeded synthetic police.uk and STATS19 files for Lancashire.
    Generate(GenerateArgs),
    /// Derive boundaries/ (LSOAs 2011 and 2021, lookup, districts, county) from the ONS files.
    Boundaries(BoundariesArgs),
    /// Print the SHA-256 of an API key read from standard input, for `[[keys]]` in the
    /// server's config file (or, with --new, make a random key and print both).
    HashKey(HashKeyArgs),
}

#[derive(Debug, Args)]
pub struct HashKeyArgs {
    /// Make a new random key (256 bits, hex) instead of reading one.
    #[arg(long)]
    pub new: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// police.uk rows over all months.
    #[arg(long, default_value_t = 60_000)]
    pub rows: u64,
    /// STATS19 collisions over all years.
    #[arg(long, default_value_t = 3_000)]
    pub stats19_rows: u64,
    /// Number of months.
    #[arg(long, default_value_t = 36)]
    pub months: u32,
    /// First month (YYYY-MM).
    #[arg(long, default_value = "2022-01")]
    pub start: Month,
    /// Random seed: the same seed gives the same files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Pack the police.uk months in one zip archive, as police.uk ships them.
    #[arg(long)]
    pub zip: bool,
    /// LSOA polygons to place snap points in (default: the bundled Lancashire LSOAs).
    #[arg(long, value_name = "GEOJSON")]
    pub lsoas: Option<PathBuf>,
    /// Also write each year's STATS19 casualty file (joined to its collisions).
    #[arg(long)]
    pub casualties: bool,
}

#[derive(Debug, Args)]
pub struct BoundariesArgs {
    /// The ONS LSOA 2011 GeoJSON (properties LSOA11CD, LSOA11NM).
    #[arg(long, value_name = "GEOJSON")]
    pub lsoa11: PathBuf,
    /// The ONS LSOA 2021 GeoJSON (properties LSOA21CD, LSOA21NM).
    #[arg(long, value_name = "GEOJSON")]
    pub lsoa21: PathBuf,
    /// The ONS exact-fit lookup LSOA 2011 -> 2021 -> LAD 2022 (CSV: LSOA11CD, CHGIND,
    /// LSOA21CD, LAD22CD, LAD22NM, ...).
    #[arg(long, value_name = "CSV")]
    pub lookup: PathBuf,
    /// Output directory.
    #[arg(long, default_value = "boundaries", value_name = "DIR")]
    pub out: PathBuf,
}

/// Runs the parsed command.
///
/// # Errors
/// Any failure, with a one-line reason.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Ingest(a) => ingest::run(&a),
        Command::Aggregate(a) => aggregate::run(&a),
        Command::Summary(a) => aggregate::summary(&a),
        Command::Analyse(a) => analyse::run(&a),
        Command::Serve(a) => serve(&a),
        Command::Patrol(a) => patrol::run(&a),
        Command::Backtest(a) => patrol::backtest(&a),
        Command::NearRepeat(a) => near_repeat::run(&a),
        Command::Coverage(a) => coverage::run(&a),
        Command::Generate(a) => generate(&a),
        Command::Boundaries(a) => boundaries(&a),
        Command::HashKey(a) => hash_key(&a),
    }
}

/// The key is read from standard input rather than the command line, so it stays out of
/// shell history and process lists.
fn hash_key(a: &HashKeyArgs) -> anyhow::Result<()> {
    let key = if a.new {
        use rand::RngCore as _;
        let mut bytes = [0u8; 32];
        // ThreadRng: a CSPRNG seeded from the operating system.
        rand::rng().fill_bytes(&mut bytes);
        let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        println!("key = \"{key}\"   # give this to the key holder; it is not stored");
        key
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        let key = line.trim().to_owned();
        anyhow::ensure!(!key.is_empty(), "no key on standard input");
        key
    };
    println!("sha256 = \"{}\"", crate::serve::auth::hash_key(&key));
    Ok(())
}

fn serve(a: &crate::serve::ServeArgs) -> anyhow::Result<()> {
    let settings = crate::serve::Settings::resolve(a)?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("HOTSPOT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .json()
        .try_init();
    let store = crate::serve::load_at(&settings.store_at()?, a.demo)?;
    if store.incidents.is_empty() {
        tracing::warn!(data = %settings.data.display(), "the store holds no incidents: ingest files (hotspot ingest) or start with --demo");
    }
    // Opened before the store is served, so a bad file stops the start with its reason.
    let basemap = settings
        .basemap
        .as_deref()
        .map(crate::serve::tiles::basemap::Basemap::open)
        .transpose()?;
    let harm = patrol::read_harm(settings.harm.as_deref())?;
    let mut state = crate::serve::AppState::new(store, settings);
    if let Some(h) = harm {
        println!("harm weights: {} ({} categories)", h.file, h.len());
        state = state.with_harm(h);
    }
    if let Some(b) = basemap {
        println!(
            "basemap: {} ({}, zoom {} to {})",
            b.path.display(),
            b.format.ext(),
            b.minzoom,
            b.maxzoom
        );
        state = state.with_basemap(b);
    }
    if let crate::store::StoreAt::Postgres(url) = state.settings().store_at()? {
        println!(
            "store: {} (following its ingests)",
            crate::store::pg::redact(&url)
        );
        crate::serve::follow::start(state.clone(), url)?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(crate::serve::run(state))
}

/// Writes command output to a file or standard output; a closed pipe (`| head`) is not
/// an error.
/// A CSV answer and its provenance. The CSV is plain (a header row first: what
/// spreadsheets, QGIS and CSV readers expect, where `#` lines broke them); the provenance
/// is a JSON object of its key-value pairs, written to `provenance` when given, else beside
/// `out` as `OUT.json` (`hotspots.csv` -> `hotspots.csv.json`), and not at all when the
/// CSV goes to standard output without `--provenance`. Written before the CSV.
pub(crate) fn emit_csv(
    csv: &str,
    prov: &[(&str, String)],
    out: Option<&std::path::Path>,
    provenance: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let sidecar = provenance.map(std::path::Path::to_path_buf).or_else(|| {
        out.map(|o| {
            let mut s = o.as_os_str().to_owned();
            s.push(".json");
            PathBuf::from(s)
        })
    });
    if let Some(p) = sidecar {
        let doc: serde_json::Map<String, serde_json::Value> = prov
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
            .collect();
        let text = serde_json::to_string_pretty(&doc)? + "\n";
        std::fs::write(&p, text).map_err(|e| anyhow::anyhow!("writing {}: {e}", p.display()))?;
    }
    emit(csv, out)
}

pub(crate) fn emit(text: &str, out: Option<&std::path::Path>) -> anyhow::Result<()> {
    use std::io::Write as _;
    if let Some(p) = out {
        return std::fs::write(p, text)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", p.display()));
    }
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn generate(a: &GenerateArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let opts = crate::generate::GenerateOptions {
        out: a.out.clone(),
        lsoa_geojson: a.lsoas.clone(),
        police_rows: a.rows,
        stats19_rows: a.stats19_rows,
        months: a.months,
        start: a.start,
        seed: a.seed,
        zip: a.zip,
    };
    let s = crate::generate::generate(&opts)?;
    println!(
        "wrote {} police.uk rows ({} without location) and {} STATS19 collisions in {} files under {} ({:.1} s)",
        s.police_rows,
        s.unlocated_rows,
        s.stats19_rows,
        s.files.len(),
        a.out.display(),
        started.elapsed().as_secs_f64()
    );
    if a.casualties {
        let (n, files) = crate::generate::generate_casualties(&opts)?;
        println!(
            "wrote {n} STATS19 casualties in {} files under {}",
            files.len(),
            a.out.join("stats19").display()
        );
    }
    Ok(())
}

fn boundaries(a: &BoundariesArgs) -> anyhow::Result<()> {
    let reports =
        crate::spatial::derive::derive_boundaries(&a.lsoa11, &a.lsoa21, &a.lookup, &a.out)?;
    println!(
        "{:<22} {:>6} {:>12} {:>14} {:>6}",
        "district", "LSOAs", "area km2", "LSOA sum km2", "parts"
    );
    for r in &reports {
        println!(
            "{:<22} {:>6} {:>12.3} {:>14.3} {:>6}",
            r.name, r.lsoas, r.area_km2, r.lsoa_area_sum_km2, r.parts
        );
    }
    println!(
        "wrote lsoa11.geojson, lsoa21.geojson, {}, districts.geojson, county.geojson to {}",
        crate::spatial::derive::LOOKUP_FILE,
        a.out.display()
    );
    Ok(())
}
