//! The `[limits]` table of the config file and its flags: request rates per client address
//! and per API key, and the caps on what one request may ask for.

use clap::Args;
use serde::Deserialize;

/// `hotspot serve` limit flags (each also from its environment variable).
#[derive(Debug, Clone, Default, Args)]
pub struct LimitArgs {
    /// Sustained requests per second per client address (0: no limit).
    #[arg(long, env = "HOTSPOT_IP_RPS")]
    pub ip_rps: Option<u32>,
    /// Sustained requests per second per API key (0: no limit).
    #[arg(long, env = "HOTSPOT_KEY_RPS")]
    pub key_rps: Option<u32>,
    /// Largest `bbox` on items, in square degrees.
    #[arg(long, env = "HOTSPOT_MAX_BBOX_AREA")]
    pub max_bbox_area: Option<f64>,
    /// Addresses of reverse proxies (nginx) whose `X-Forwarded-For` names the client,
    /// comma-separated: rate limits and the audit count that client, not the proxy.
    #[arg(
        long = "trusted-proxy",
        env = "HOTSPOT_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<std::net::IpAddr>>,
}

/// Resolved limits. The defaults leave a web map alone (a view fetches 20-40 tiles at
/// once, well inside a burst) and GDAL walking a whole collection by `next` links at
/// the default 10 features a page (400 requests for h3-8, as fast as it can), and stop a
/// flood from one client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Sustained requests per second per client address; 0 turns the limit off.
    pub ip_rps: u32,
    /// Requests a client address may make at once before the sustained rate applies.
    pub ip_burst: u32,
    /// Sustained requests per second per API key (`Authorization: Bearer` or
    /// `X-API-Key`); 0 turns the limit off.
    pub key_rps: u32,
    /// Requests a key may make at once.
    pub key_burst: u32,
    /// Past its burst, how long a request may be held for its client's next token
    /// instead of refused (nginx's `limit_req` delay): a client paging one request after
    /// another is slowed to the sustained rate, never refused; a flood of parallel ones
    /// past this queue gets 429. 0 refuses as soon as the burst is spent.
    pub max_delay_ms: u32,
    /// Clients tracked at once per limiter (addresses or keys); idle ones are dropped
    /// first when it is reached, so the table cannot grow without bound.
    pub max_clients: usize,
    /// Longest query string, in bytes (longer: 414).
    pub max_query_bytes: usize,
    /// Largest `bbox` on `/collections/{id}/items`, in square degrees (larger: 400).
    pub max_bbox_area_deg2: f64,
    /// An uploaded zip: largest uncompressed entry, counted as it inflates (never the
    /// size its header declares); over it the upload is refused (422) and nothing of it
    /// is ingested.
    pub zip_max_entry_bytes: u64,
    /// An uploaded zip: largest uncompressed total of its data entries.
    pub zip_max_total_bytes: u64,
    /// An uploaded zip: most entries.
    pub zip_max_entries: usize,
    /// An uploaded zip: largest uncompressed / compressed size of an entry (checked past
    /// 1 MiB of output).
    pub zip_max_ratio: u64,
    /// Reverse proxies whose `X-Forwarded-For` is believed: a request from one of these
    /// addresses counts as from the right-most address in that header that is not itself
    /// a listed proxy. Empty (the default): the header is ignored, as anyone can send it.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            ip_rps: 500,
            ip_burst: 2000,
            key_rps: 500,
            key_burst: 2000,
            max_delay_ms: 500,
            max_clients: 100_000,
            max_query_bytes: 4096,
            max_bbox_area_deg2: 2500.0,
            zip_max_entry_bytes: 512 << 20,
            zip_max_total_bytes: 2 << 30,
            zip_max_entries: 10_000,
            zip_max_ratio: 200,
            trusted_proxies: Vec::new(),
        }
    }
}

impl LimitSettings {
    /// [`LimitSettings::max_delay_ms`] as a duration.
    pub fn max_delay(&self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::from(self.max_delay_ms))
    }

    /// The limits an uploaded zip is read under.
    pub fn zip(&self) -> crate::ingest::ZipLimits {
        crate::ingest::ZipLimits {
            max_entry_bytes: self.zip_max_entry_bytes,
            max_total_bytes: self.zip_max_total_bytes,
            max_entries: self.zip_max_entries,
            max_ratio: self.zip_max_ratio,
        }
    }

    /// Applies flags over the file's values and checks the result.
    ///
    /// # Errors
    /// A zero burst for a rate that is on, a non-positive bbox area, no client room, or a
    /// query cap under 256 bytes.
    pub fn apply(&mut self, a: &LimitArgs) -> anyhow::Result<()> {
        if let Some(v) = a.ip_rps {
            self.ip_rps = v;
        }
        if let Some(v) = a.key_rps {
            self.key_rps = v;
        }
        if let Some(v) = a.max_bbox_area {
            self.max_bbox_area_deg2 = v;
        }
        if let Some(v) = &a.trusted_proxies {
            self.trusted_proxies.clone_from(v);
        }
        anyhow::ensure!(
            self.ip_rps == 0 || self.ip_burst > 0,
            "limits.ip_burst must be positive"
        );
        anyhow::ensure!(
            self.key_rps == 0 || self.key_burst > 0,
            "limits.key_burst must be positive"
        );
        anyhow::ensure!(
            self.max_bbox_area_deg2.is_finite() && self.max_bbox_area_deg2 > 0.0,
            "limits.max_bbox_area_deg2 must be a positive number"
        );
        anyhow::ensure!(self.max_clients > 0, "limits.max_clients must be positive");
        anyhow::ensure!(
            self.zip_max_entry_bytes > 0
                && self.zip_max_total_bytes > 0
                && self.zip_max_entries > 0
                && self.zip_max_ratio > 0,
            "limits.zip_max_entry_bytes, zip_max_total_bytes, zip_max_entries and zip_max_ratio must be positive"
        );
        anyhow::ensure!(
            self.max_query_bytes >= 256,
            "limits.max_query_bytes must be at least 256"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::Settings;

    #[test]
    fn the_limits_table_parses_and_flags_win() {
        let mut s: Settings = toml::from_str(
            "request_timeout_secs = 10\n[limits]\nip_rps = 5\nip_burst = 20\nmax_bbox_area_deg2 = 4.5\n",
        )
        .expect("a valid config");
        assert_eq!((s.limits.ip_rps, s.limits.ip_burst), (5, 20));
        assert_eq!(s.limits.key_rps, LimitSettings::default().key_rps);
        let flags = LimitArgs {
            ip_rps: Some(0),
            max_bbox_area: Some(9.0),
            ..LimitArgs::default()
        };
        s.limits.apply(&flags).expect("valid limits");
        assert_eq!(s.limits.ip_rps, 0);
        assert_eq!(s.limits.max_bbox_area_deg2, 9.0);
        assert!(toml::from_str::<Settings>("[limits]\nip_rpm = 5\n").is_err());
    }

    #[test]
    fn nonsense_limits_are_refused() {
        let none = LimitArgs::default();
        for bad in [
            LimitSettings {
                ip_burst: 0,
                ..LimitSettings::default()
            },
            LimitSettings {
                max_bbox_area_deg2: f64::NAN,
                ..LimitSettings::default()
            },
            LimitSettings {
                max_bbox_area_deg2: 0.0,
                ..LimitSettings::default()
            },
            LimitSettings {
                max_query_bytes: 10,
                ..LimitSettings::default()
            },
            LimitSettings {
                max_clients: 0,
                ..LimitSettings::default()
            },
        ] {
            let mut s = bad.clone();
            assert!(s.apply(&none).is_err(), "{bad:?}");
        }
        let mut off = LimitSettings {
            ip_rps: 0,
            ip_burst: 0,
            ..LimitSettings::default()
        };
        assert!(
            off.apply(&none).is_ok(),
            "a limit that is off needs no burst"
        );
    }
}
