//! Server settings from a TOML config file, environment variables and flags; flags win
//! over the environment (clap reads both), which wins over the file, which wins over the
//! defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use super::limits::{LimitArgs, LimitSettings};

/// `hotspot serve` flags (each also from its environment variable).
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "HOTSPOT_BIND")]
    pub bind: Option<SocketAddr>,
    /// Data directory holding the store (created when missing).
    #[arg(long, env = "HOTSPOT_DATA")]
    pub data: Option<PathBuf>,
    /// The store of record in PostgreSQL (`postgresql://user:password@host/db`) instead
    /// of the data directory's SQLite file; the server then follows other processes'
    /// ingests (LISTEN/NOTIFY), so any number of servers can share one database.
    #[arg(long, env = "HOTSPOT_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// Fill a new data directory with bundled data first: `real` (the police.uk
    /// Lancashire year 2021, the default) or `sample` (the synthetic test fixtures).
    #[arg(long, env = "HOTSPOT_DEMO", value_name = "DATA", num_args = 0..=1, default_missing_value = "real")]
    pub demo: Option<super::state::Demo>,
    /// A TOML config file (keys: bind, data, store, cors_origins, request_timeout_secs, body_limit_bytes, header_read_timeout_secs, max_connections, max_connections_per_client, audit_max_bytes, audit_keep, compute_slots, compute_queue, basemap, harm; [[keys]] and [disclosure] for access control; [limits]).
    #[arg(long, env = "HOTSPOT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Origins allowed by CORS, comma-separated.
    #[arg(long, env = "HOTSPOT_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Option<Vec<String>>,
    /// Request timeout in seconds (a decimal is allowed: 0.5).
    #[arg(long, env = "HOTSPOT_REQUEST_TIMEOUT")]
    pub request_timeout_secs: Option<f64>,
    /// Largest request body in bytes.
    #[arg(long, env = "HOTSPOT_BODY_LIMIT")]
    pub body_limit_bytes: Option<usize>,
    /// Seconds a connection has to send a whole request head (also the keep-alive idle
    /// timeout).
    #[arg(long, env = "HOTSPOT_HEADER_READ_TIMEOUT")]
    pub header_read_timeout_secs: Option<u64>,
    /// Most open connections in all (more are closed at once).
    #[arg(long, env = "HOTSPOT_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Most open connections per client address, IPv6 by /64 (more are closed at once).
    #[arg(long, env = "HOTSPOT_MAX_CONNECTIONS_PER_CLIENT")]
    pub max_connections_per_client: Option<usize>,
    /// Size at which the audit file (audit.jsonl) is rotated, in bytes (0: never).
    #[arg(long, env = "HOTSPOT_AUDIT_MAX_BYTES")]
    pub audit_max_bytes: Option<u64>,
    /// Rotated audit files kept (audit.jsonl.1 the newest; 0: none kept).
    #[arg(long, env = "HOTSPOT_AUDIT_KEEP")]
    pub audit_keep: Option<u32>,
    /// Expensive layers computed at once (0: one per core).
    #[arg(long, env = "HOTSPOT_COMPUTE_SLOTS")]
    pub compute_slots: Option<usize>,
    /// Expensive layers that may wait for a slot; one more is refused with 503.
    #[arg(long, env = "HOTSPOT_COMPUTE_QUEUE")]
    pub compute_queue: Option<usize>,
    /// A raster MBTiles file (png, jpg or webp tiles) drawn under the map, for sites with
    /// their own OpenStreetMap extract (served at /basemap.json and /basemap/...).
    #[arg(long, env = "HOTSPOT_BASEMAP", value_name = "FILE.mbtiles")]
    pub basemap: Option<PathBuf>,
    /// Harm weights by category (a CSV of `category,weight[,source]`, as `backtest
    /// --harm`): analysts can then colour the map's cells by harm beside count.
    #[arg(long, env = "HOTSPOT_HARM", value_name = "FILE.csv")]
    pub harm: Option<PathBuf>,
    /// Rate limits and caps (`[limits]` in the config file).
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Resolved settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub bind: SocketAddr,
    pub data: PathBuf,
    /// The PostgreSQL store of record, when not the data directory's SQLite file.
    pub store: Option<String>,
    pub cors_origins: Vec<String>,
    /// Seconds (a decimal is allowed).
    pub request_timeout_secs: f64,
    pub body_limit_bytes: usize,
    /// A connection that has not sent a whole request head within this many seconds
    /// (a new one, or a keep-alive one waiting for its next request) is closed.
    pub header_read_timeout_secs: u64,
    /// Most open connections in all; one more is closed at once.
    pub max_connections: usize,
    /// Most open connections per client address (IPv6 by /64); one more is closed at
    /// once.
    pub max_connections_per_client: usize,
    /// The audit file is rotated when a line would take it past this many bytes
    /// (`audit.jsonl` -> `audit.jsonl.1` -> ...); 0 never rotates.
    pub audit_max_bytes: u64,
    /// Rotated audit files kept; older ones are deleted.
    pub audit_keep: u32,
    /// Expensive layers computed at once (`serve::compute`); 0: one per core.
    pub compute_slots: usize,
    /// Expensive layers that may wait for a slot; one more is refused (503,
    /// `Retry-After`).
    pub compute_queue: usize,
    // Access and disclosure control (`auth.rs`, `disclosure.rs`).
    /// `[[keys]]`: API keys by name, role and SHA-256.
    pub keys: Vec<super::auth::ApiKey>,
    /// `[disclosure]`: k, sensitive categories, the heatmap's smallest bandwidth.
    pub disclosure: super::disclosure::DisclosureSettings,
    /// Rate limits and caps: the `[limits]` table.
    pub limits: LimitSettings,
    /// A raster MBTiles basemap (`tiles/basemap.rs`).
    pub basemap: Option<PathBuf>,
    /// Harm weights by category (`stats::harm`), for the map's harm measure.
    pub harm: Option<PathBuf>,
}

impl Settings {
    /// Where the store of record is.
    ///
    /// # Errors
    /// When `store` is not a `postgresql://` URL.
    pub fn store_at(&self) -> Result<crate::store::StoreAt, crate::store::StoreError> {
        crate::store::StoreAt::new(&self.data, self.store.as_deref())
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data: PathBuf::from("hotspot-data"),
            store: None,
            cors_origins: Vec::new(),
            request_timeout_secs: 30.0,
            body_limit_bytes: 64 << 20,
            header_read_timeout_secs: 20,
            max_connections: 10_000,
            max_connections_per_client: 1_000,
            audit_max_bytes: 10 << 20,
            audit_keep: 5,
            compute_slots: 0,
            compute_queue: 16,
            keys: Vec::new(),
            disclosure: super::disclosure::DisclosureSettings::default(),
            limits: LimitSettings::default(),
            basemap: None,
            harm: None,
        }
    }
}

impl Settings {
    /// [`Settings::request_timeout_secs`] as a duration (validated finite and positive).
    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::try_from_secs_f64(self.request_timeout_secs)
            .unwrap_or(std::time::Duration::from_secs(30))
    }

    /// Defaults, then the config file, then flags and environment.
    ///
    /// # Errors
    /// When the config file cannot be read or has unknown or ill-typed keys.
    pub fn resolve(a: &ServeArgs) -> anyhow::Result<Self> {
        let mut s = match &a.config {
            Some(p) => Self::from_file(p)?,
            None => Settings::default(),
        };
        if let Some(v) = a.bind {
            s.bind = v;
        }
        if let Some(v) = &a.data {
            s.data.clone_from(v);
        }
        if let Some(v) = &a.store {
            s.store = Some(v.clone());
        }
        if let Some(v) = &a.cors_origins {
            s.cors_origins.clone_from(v);
        }
        if let Some(v) = a.request_timeout_secs {
            s.request_timeout_secs = v;
        }
        if let Some(v) = a.body_limit_bytes {
            s.body_limit_bytes = v;
        }
        if let Some(v) = a.header_read_timeout_secs {
            s.header_read_timeout_secs = v;
        }
        if let Some(v) = a.max_connections {
            s.max_connections = v;
        }
        if let Some(v) = a.max_connections_per_client {
            s.max_connections_per_client = v;
        }
        anyhow::ensure!(
            s.header_read_timeout_secs > 0,
            "header_read_timeout_secs must be positive"
        );
        anyhow::ensure!(
            s.max_connections > 0 && s.max_connections_per_client > 0,
            "max_connections and max_connections_per_client must be positive"
        );
        if let Some(v) = a.audit_max_bytes {
            s.audit_max_bytes = v;
        }
        if let Some(v) = a.audit_keep {
            s.audit_keep = v;
        }
        if let Some(v) = a.compute_slots {
            s.compute_slots = v;
        }
        if let Some(v) = a.compute_queue {
            s.compute_queue = v;
        }
        if let Some(v) = &a.basemap {
            s.basemap = Some(v.clone());
        }
        if let Some(v) = &a.harm {
            s.harm = Some(v.clone());
        }
        s.limits.apply(&a.limits)?;
        anyhow::ensure!(
            s.audit_max_bytes == 0 || s.audit_max_bytes >= 4096,
            "audit_max_bytes must be 0 (never rotate) or at least 4096"
        );
        anyhow::ensure!(s.audit_keep <= 1000, "audit_keep must be at most 1000");
        anyhow::ensure!(
            s.request_timeout_secs.is_finite()
                && (0.001..=86_400.0).contains(&s.request_timeout_secs),
            "request_timeout_secs must be from 0.001 to 86400 seconds"
        );
        super::auth::validate_keys(&s.keys).map_err(anyhow::Error::msg)?;
        s.disclosure.validate().map_err(anyhow::Error::msg)?;
        Ok(s)
    }

    fn from_file(p: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {}", p.display(), e.message()))
    }
}

#[cfg(test)]
mod example_tests {
    use super::Settings;

    /// The example config in the repository root parses, and says what the defaults are.
    #[test]
    fn the_example_config_is_valid_and_shows_the_defaults() {
        let text = include_str!("../../hotspot.example.toml");
        let s: Settings = toml::from_str(text).expect("hotspot.example.toml parses");
        let d = Settings::default();
        assert_eq!(s.bind, d.bind);
        assert_eq!(s.data, d.data);
        assert_eq!(s.request_timeout_secs, d.request_timeout_secs);
        assert_eq!(s.body_limit_bytes, d.body_limit_bytes);
        assert_eq!(s.audit_max_bytes, d.audit_max_bytes);
        assert_eq!(s.header_read_timeout_secs, d.header_read_timeout_secs);
        assert_eq!(s.max_connections, d.max_connections);
        assert_eq!(s.max_connections_per_client, d.max_connections_per_client);
        assert_eq!(s.audit_keep, d.audit_keep);
        assert_eq!(s.compute_slots, d.compute_slots);
        assert_eq!(s.compute_queue, d.compute_queue);
        assert_eq!(s.disclosure.k, d.disclosure.k);
        assert_eq!(s.disclosure.sensitive, d.disclosure.sensitive);
        assert_eq!(s.limits.ip_rps, d.limits.ip_rps);
        assert_eq!(s.limits.ip_burst, d.limits.ip_burst);
        assert_eq!(s.limits.key_burst, d.limits.key_burst);
        assert_eq!(s.limits.zip(), d.limits.zip());
        s.disclosure.validate().expect("valid disclosure settings");
    }
}
