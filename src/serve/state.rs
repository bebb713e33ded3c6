//! What every request reads: the analysis store behind a swappable handle (ingest
//! replaces it and bumps the generation, which invalidates cached tiles), and settings.

use std::io::Read as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::Settings;
use crate::analysis::{self, AnalysisStore};
use crate::spatial::Geography;
use crate::store::Store;

/// Shared server state (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: RwLock<Arc<AnalysisStore>>,
    generation: AtomicU64,
    settings: Settings,
    /// Keeps keys out of the log and the audit file (built from the configured keys).
    redactor: Arc<super::redact::Redactor>,
    /// The bounded pool for expensive layers (`compute.rs`).
    compute: Arc<super::compute::Pool>,
    /// The ingest worker (`jobs.rs`).
    jobs: super::jobs::Jobs,
    /// The self-hosted basemap (`tiles/basemap.rs`), when configured.
    basemap: Option<Arc<super::tiles::basemap::Basemap>>,
    /// Harm weights by category (`stats::harm`), when configured.
    harm: Option<Arc<crate::stats::harm::HarmWeights>>,
}

impl AppState {
    pub fn new(store: AnalysisStore, settings: Settings) -> Self {
        AppState {
            inner: Arc::new(Inner {
                store: RwLock::new(Arc::new(store)),
                generation: AtomicU64::new(1),
                redactor: Arc::new(super::redact::Redactor::new(&settings.keys)),
                compute: Arc::new(super::compute::Pool::new(
                    match settings.compute_slots {
                        0 => std::thread::available_parallelism().map_or(2, usize::from),
                        n => n,
                    },
                    settings.compute_queue,
                    settings.request_timeout(),
                )),
                jobs: super::jobs::Jobs::default(),
                basemap: None,
                harm: None,
                settings,
            }),
        }
    }

    /// This state with a basemap (before it is shared: call on a new state).
    #[must_use]
    pub fn with_basemap(mut self, b: super::tiles::basemap::Basemap) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.basemap = Some(Arc::new(b));
        }
        self
    }

    /// This state with harm weights (before it is shared: call on a new state).
    #[must_use]
    pub fn with_harm(mut self, h: crate::stats::harm::HarmWeights) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.harm = Some(Arc::new(h));
        }
        self
    }

    /// The harm weights, when configured.
    pub fn harm(&self) -> Option<Arc<crate::stats::harm::HarmWeights>> {
        self.inner.harm.clone()
    }

    /// The self-hosted basemap, when configured.
    pub fn basemap(&self) -> Option<Arc<super::tiles::basemap::Basemap>> {
        self.inner.basemap.clone()
    }

    /// The current store (a cheap handle; a concurrent replace does not affect it).
    pub fn store(&self) -> Arc<AnalysisStore> {
        match self.inner.store.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Swaps in a new store and bumps the generation.
    pub fn replace_store(&self, store: AnalysisStore) {
        let mut g = match self.inner.store.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *g = Arc::new(store);
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Changes whenever the data changes (cache keys include it).
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::SeqCst)
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The server's ingest worker.
    pub fn jobs(&self) -> &super::jobs::Jobs {
        &self.inner.jobs
    }

    /// The bounded pool expensive layers run on.
    pub fn compute(&self) -> &Arc<super::compute::Pool> {
        &self.inner.compute
    }

    /// Redacts secrets from request targets before they are logged or audited.
    pub fn redactor(&self) -> &Arc<super::redact::Redactor> {
        &self.inner.redactor
    }
}

const SAMPLE_ZIP: &[u8] = include_bytes!("../../fixtures/sample/police-lancashire.zip");
const SAMPLE_STATS19: [(&str, &[u8]); 3] = [
    (
        "dft-road-casualty-statistics-accident-2022.csv",
        include_bytes!(
            "../../fixtures/sample/stats19/dft-road-casualty-statistics-accident-2022.csv"
        ),
    ),
    (
        "dft-road-casualty-statistics-collision-2023.csv",
        include_bytes!(
            "../../fixtures/sample/stats19/dft-road-casualty-statistics-collision-2023.csv"
        ),
    ),
    (
        "dft-road-casualty-statistics-collision-2024.csv",
        include_bytes!(
            "../../fixtures/sample/stats19/dft-road-casualty-statistics-collision-2024.csv"
        ),
    ),
];

/// The data a demo fills an empty data directory with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Demo {
    /// The real police.uk download bundled in `fixtures/police-uk/`: Lancashire
    /// Constabulary street-level crime, all of 2021 (Open Government Licence).
    #[default]
    Real,
    /// The synthetic fixtures with planted hotspots (`fixtures/sample/`), as the tests use.
    Sample,
}

/// The real police.uk year (Lancashire, 2021), as police.uk's archive ships it.
const REAL_ZIP: &[u8] = include_bytes!("../../fixtures/police-uk/lancashire-2021-street.zip");

/// Opens the store in `dir`; when it holds no incidents, ingests the bundled synthetic
/// fixtures into it first (durably, like any ingest); then loads the analysis store.
/// What the tests use; `hotspot serve` fills a directory only when asked (`--demo`).
///
/// # Errors
/// When the store cannot be opened or read.
pub fn load_or_seed(dir: &Path) -> anyhow::Result<AnalysisStore> {
    load(dir, Some(Demo::Sample))
}

/// Opens (creating if needed) the store in `dir`; with `demo`, fills it first when the
/// directory had no store (a fresh data directory); then loads the analysis store. An
/// existing store, even an empty one (a failed first ingest), is never filled with demo
/// data; a store file that is present but is not a sound hotspot store (zero-length,
/// truncated, not SQLite, another program's database) is refused, naming the file, and
/// left as it is (`Store::open`, `store::check_file`).
///
/// # Errors
/// When the store cannot be opened or read, or is refused.
pub fn load(dir: &Path, demo: Option<Demo>) -> anyhow::Result<AnalysisStore> {
    load_at(&crate::store::StoreAt::Dir(dir.to_owned()), demo)
}

/// [`load`] from the store `at` names: a PostgreSQL store is new (and filled with the
/// demo data when asked) while nothing was ever ingested into it.
///
/// # Errors
/// As [`load`].
pub fn load_at(at: &crate::store::StoreAt, demo: Option<Demo>) -> anyhow::Result<AnalysisStore> {
    let fresh = match at {
        crate::store::StoreAt::Dir(dir) => !dir.join(crate::store::DB_FILE).exists(),
        crate::store::StoreAt::Postgres(_) => false,
    };
    let mut store = Store::open_at(at)?;
    let fresh =
        fresh || (matches!(at, crate::store::StoreAt::Postgres(_)) && store.version()? == 0);
    if let Some(demo) = demo
        && fresh
    {
        tracing::info!(store = %at.describe(), ?demo, "new store: loading the bundled demo data");
        let (zip_name, zip_bytes) = match demo {
            Demo::Real => ("lancashire-2021-street.zip", REAL_ZIP),
            Demo::Sample => ("police-lancashire.zip", SAMPLE_ZIP),
        };
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes))?;
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i)?;
            let name = format!("{zip_name}!{}", entry.name());
            if !name.ends_with("-street.csv") {
                continue;
            }
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            drop(entry);
            store.ingest_bytes(&name, &bytes, None)?;
        }
        if demo == Demo::Sample {
            for (name, bytes) in SAMPLE_STATS19 {
                store.ingest_bytes(name, bytes, None)?;
            }
        }
    }
    store.settle();
    drop(store);
    Ok(analysis::from_store_at(
        at,
        Arc::new(Geography::bundled()?),
    )?)
}
