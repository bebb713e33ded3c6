//! Helpers shared by the HTTP test files (each includes this with `mod common;`).

use hotspot::serve::Settings;
use hotspot::serve::auth::{ApiKey, Role, hash_key};

/// The analyst key the HTTP tests send: they check the full (not disclosure-controlled)
/// outputs; `access_http.rs` checks what other roles see.
pub const ANALYST_KEY: &str = "test-analyst-key";

/// Default settings with [`ANALYST_KEY`] as the one analyst key.
pub fn analyst_settings(data: std::path::PathBuf) -> Settings {
    Settings {
        data,
        keys: vec![ApiKey {
            name: "tests".into(),
            role: Role::Analyst,
            sha256: hash_key(ANALYST_KEY),
        }],
        ..Settings::default()
    }
}
