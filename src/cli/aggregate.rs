//! `hotspot aggregate` and `hotspot summary`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use super::DataDir;
use crate::analysis::aggregate::aggregate_exact;
use crate::analysis::{self, AnalysisStore, Filter, Query, TimeBin, Unit, UserBoundary, output};
use crate::model::{CrimeType, Month, Severity, SeveritySet, TypeSet};
use crate::spatial::{BoundarySet, Geography};

#[derive(Debug, Clone, Args)]
pub struct FilterArgs {
    /// Crime types, comma-separated (slugs or police.uk labels); default all.
    #[arg(long, value_delimiter = ',')]
    pub types: Vec<CrimeType>,
    /// First month (YYYY-MM), inclusive.
    #[arg(long)]
    pub from: Option<Month>,
    /// Last month (YYYY-MM), inclusive.
    #[arg(long)]
    pub to: Option<Month>,
    /// Districts to keep (code or name), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub district: Vec<String>,
    /// Road collisions of these severities only (fatal, serious, slight, unknown),
    /// comma-separated; other types are not affected. Default all.
    #[arg(long, value_delimiter = ',')]
    pub severity: Vec<Severity>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutFormat {
    Csv,
    Geojson,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum By {
    Month,
    All,
}

#[derive(Debug, Args)]
pub struct AggregateArgs {
    #[command(flatten)]
    pub data: DataDir,
    /// Unit: h3:5 .. h3:11, lsoa, district, or boundary (with --boundary).
    #[arg(long, default_value = "h3:9")]
    pub unit: String,
    /// A boundary GeoJSON of your own (beats, wards) for --unit boundary.
    #[arg(long, value_name = "GEOJSON")]
    pub boundary: Option<PathBuf>,
    /// The property holding each boundary's code.
    #[arg(long, default_value = "code")]
    pub boundary_id: String,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Time bins.
    #[arg(long, value_enum, default_value = "month")]
    pub by: By,
    /// Split counts by crime type.
    #[arg(long)]
    pub by_type: bool,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: OutFormat,
    /// Write to a file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    #[command(flatten)]
    pub data: DataDir,
    #[command(flatten)]
    pub filter: FilterArgs,
}

pub(super) fn load(data: &DataDir) -> anyhow::Result<AnalysisStore> {
    let geography = Arc::new(Geography::bundled()?);
    let store = analysis::from_store_at(&data.at()?, geography)?;
    anyhow::ensure!(
        !store.incidents.is_empty() || store.unlocated > 0,
        "the store {} holds no incidents: run `hotspot ingest` first",
        data.at()?.describe()
    );
    Ok(store)
}

pub(super) fn filter(store: &AnalysisStore, f: &FilterArgs) -> anyhow::Result<Filter> {
    filter_in(&store.geography, f)
}

/// The filter of `f`, its districts named in `g`.
pub(super) fn filter_in(g: &Geography, f: &FilterArgs) -> anyhow::Result<Filter> {
    let types = if f.types.is_empty() {
        TypeSet::incidents()
    } else {
        f.types.iter().copied().collect()
    };
    let districts = if f.district.is_empty() {
        None
    } else {
        Some(
            f.district
                .iter()
                .map(|d| {
                    g.district_index(d).with_context(|| {
                        format!(
                            "unknown district '{d}' (known: {})",
                            g.districts.names.join(", ")
                        )
                    })
                })
                .collect::<anyhow::Result<Vec<u8>>>()?,
        )
    };
    if let (Some(a), Some(b)) = (f.from, f.to) {
        anyhow::ensure!(a <= b, "--from {a} is after --to {b}");
    }
    let severities = if f.severity.is_empty() {
        SeveritySet::all()
    } else {
        f.severity.iter().copied().collect()
    };
    Ok(Filter {
        types,
        severities,
        from: f.from,
        to: f.to,
        districts,
    })
}

pub fn run(a: &AggregateArgs) -> anyhow::Result<()> {
    let store = load(&a.data)?;
    let unit = if a.unit.eq_ignore_ascii_case("boundary") {
        let path = a
            .boundary
            .as_ref()
            .context("--unit boundary needs --boundary FILE")?;
        let set = BoundarySet::from_geojson_file(path, &a.boundary_id, Some("name"))?;
        Unit::Boundary(Arc::new(UserBoundary::new(set, &store)))
    } else {
        anyhow::ensure!(a.boundary.is_none(), "--boundary goes with --unit boundary");
        a.unit.parse::<Unit>().map_err(anyhow::Error::msg)?
    };
    let q = Query {
        unit,
        time: match a.by {
            By::Month => TimeBin::Month,
            By::All => TimeBin::All,
        },
        by_type: a.by_type,
        filter: filter(&store, &a.filter)?,
    };
    let agg = aggregate_exact(&store, &q);
    let text = match a.format {
        OutFormat::Csv => output::to_csv(&store, &agg),
        OutFormat::Geojson => output::to_geojson(&store, &agg),
    };
    super::emit(&text, a.out.as_deref())
}

pub fn summary(a: &SummaryArgs) -> anyhow::Result<()> {
    let store = load(&a.data)?;
    let q = Query {
        unit: Unit::District,
        time: TimeBin::All,
        by_type: true,
        filter: filter(&store, &a.filter)?,
    };
    super::emit(
        &output::summary_table(&store, &aggregate_exact(&store, &q)),
        None,
    )
}
