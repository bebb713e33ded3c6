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
}

impl AppState {
    pub fn new(store: AnalysisStore, settings: Settings) -> Self {
        AppState {
            inner: Arc::new(Inner {
                store: RwLock::new(Arc::new(store)),
                generation: AtomicU64::new(1),
                settings,
            }),
        }
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

/// Opens the store in `dir`; when it holds no incidents, ingests the bundled Lancashire
/// fixtures into it first (durably, like any ingest); then loads the analysis store.
///
/// # Errors
/// When the store cannot be opened or read.
pub fn load_or_seed(dir: &Path) -> anyhow::Result<AnalysisStore> {
    let mut store = Store::open(dir)?;
    if store.incident_count()? == 0 {
        tracing::info!(dir = %dir.display(), "empty data directory: loading the bundled Lancashire fixtures");
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(SAMPLE_ZIP))?;
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i)?;
            let name = format!("police-lancashire.zip!{}", entry.name());
            if !name.ends_with(".csv") {
                continue;
            }
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            drop(entry);
            store.ingest_bytes(&name, &bytes, None)?;
        }
        for (name, bytes) in SAMPLE_STATS19 {
            store.ingest_bytes(name, bytes, None)?;
        }
    }
    drop(store);
    Ok(analysis::from_store(dir, Arc::new(Geography::bundled()?))?)
}
