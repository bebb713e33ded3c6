//! Uploads that cannot hurt: a zip is inflated with its bytes counted (never the sizes
//! its headers declare) under the `[limits]` `zip_*` settings, and one over a limit is
//! refused whole (422, a reason naming the limit) before anything is ingested, with
//! memory bounded. The zips are built here: a zip bomb (200 MB of zeros, about 200 KB
//! compressed), an entry too big, too much in all, too many entries, a header that lies
//! about the size. The command line reads zips under generous limits that still stop
//! the bomb.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use hotspot::serve::auth::{ApiKey, Role, hash_key};
use hotspot::serve::limits::LimitSettings;
use hotspot::serve::{AppState, Settings, load, router};
use serde_json::Value;
use tower::ServiceExt as _;
use zip::write::SimpleFileOptions;

const ADMIN: &str = "zip-test-admin-key";

/// Where an entry's bytes go, chunk by chunk.
type Out<'a> = &'a mut dyn FnMut(&[u8]);
/// Writes an entry's bytes.
type Fill<'a> = &'a dyn Fn(Out<'_>);

/// A zip of `(name, fill)` entries, each written by its `fill` in chunks.
fn zip_of(entries: &[(&str, Fill<'_>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, fill) in entries {
        w.start_file(*name, opts).expect("start entry");
        fill(&mut |b: &[u8]| w.write_all(b).expect("write entry"));
    }
    w.finish().expect("finish zip").into_inner()
}

fn zeros(n: usize) -> impl Fn(Out<'_>) {
    move |out: Out<'_>| {
        let chunk = vec![0u8; 1 << 20];
        let mut left = n;
        while left > 0 {
            let k = left.min(chunk.len());
            out(&chunk[..k]);
            left -= k;
        }
    }
}

/// Text that compresses about 2:1 (pseudo-random hex digits).
fn noise(n: usize) -> impl Fn(Out<'_>) {
    move |out: Out<'_>| {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let bytes: Vec<u8> = (0..n)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                b"0123456789abcdef"[(x >> 60) as usize]
            })
            .collect();
        out(&bytes);
    }
}

fn state(dir: &Path, limits: LimitSettings) -> AppState {
    let store = load(dir, None).expect("an empty store");
    AppState::new(
        store,
        Settings {
            data: dir.to_owned(),
            request_timeout_secs: 300.0,
            keys: vec![ApiKey {
                name: "ops".into(),
                role: Role::Admin,
                sha256: hash_key(ADMIN),
            }],
            limits,
            ..Settings::default()
        },
    )
}

async fn upload(state: &AppState, name: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let req = Request::post(format!("/admin/ingest?name={name}"))
        .header(header::HOST, "zip.test")
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::from(body))
        .expect("request");
    let resp = router(state.clone())
        .oneshot(req)
        .await
        .expect("infallible");
    let status = resp.status();
    let bytes = to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    (status, serde_json::from_slice(&bytes).expect("a JSON body"))
}

/// The process's peak resident memory, in bytes.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn refused(state: &AppState, what: &str, got: &(StatusCode, Value), limit: &str) {
    let (status, doc) = got;
    assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {doc}");
    assert_eq!(doc["code"], "ArchiveRefused", "{what}: {doc}");
    let why = doc["description"].as_str().unwrap_or_default();
    assert!(why.contains(limit), "{what}: {why}");
    assert!(
        !why.contains("jobs/") && !why.contains("staging-"),
        "{what}: the temporary path shown: {why}"
    );
    assert!(
        state.store().incidents.is_empty(),
        "{what}: something was ingested"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_bomb_is_refused_quickly_with_memory_bounded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let st = state(dir.path(), LimitSettings::default());
    let bomb = zip_of(&[("2024-01/2024-01-lancashire-street.csv", &zeros(200 << 20))]);
    assert!(bomb.len() < 1 << 20, "{} bytes compressed", bomb.len());
    let before = peak_rss();
    let started = Instant::now();
    let got = upload(&st, "bomb.zip", bomb.clone()).await;
    refused(&st, "bomb", &got, "zip_max_ratio");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let grew = peak_rss().saturating_sub(before);
    assert!(grew < 100 << 20, "peak memory grew by {grew} bytes");
    // Nothing left behind in jobs/ (no job, no staged upload; the worker's lock file is
    // not a job), and the refusal is audited.
    let left = std::fs::read_dir(dir.path().join("jobs"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name() != "worker.lock")
                .count()
        })
        .unwrap_or(0);
    assert_eq!(left, 0);
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).expect("audit");
    assert!(audit.contains("zip_max_ratio"), "{audit}");

    // The command line reads zips under generous limits, which still stop the bomb.
    let path = dir.path().join("bomb.zip");
    std::fs::write(&path, &bomb).expect("write");
    let cli_data = tempfile::tempdir().expect("temp dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotspot"))
        .args(["ingest", "--data"])
        .arg(cli_data.path())
        .arg(&path)
        .output()
        .expect("run hotspot");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("refused") && err.contains("times its compressed size"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_size_total_and_entry_count_limits_hold() {
    let tight = LimitSettings {
        zip_max_entry_bytes: 1 << 20,
        zip_max_total_bytes: 3 << 19,
        zip_max_entries: 10,
        ..LimitSettings::default()
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let st = state(dir.path(), tight);

    let big = zip_of(&[("big.csv", &noise(2 << 20))]);
    refused(
        &st,
        "entry",
        &upload(&st, "big.zip", big).await,
        "zip_max_entry_bytes",
    );

    let parts = noise(600 << 10);
    let total = zip_of(&[("a.csv", &parts), ("b.csv", &parts), ("c.csv", &parts)]);
    refused(
        &st,
        "total",
        &upload(&st, "total.zip", total).await,
        "zip_max_total_bytes",
    );

    let tiny = |out: Out<'_>| out(b"x\n");
    let names: Vec<String> = (0..20).map(|i| format!("f{i}.txt")).collect();
    let many: Vec<(&str, Fill<'_>)> = names.iter().map(|n| (n.as_str(), &tiny as _)).collect();
    refused(
        &st,
        "count",
        &upload(&st, "many.zip", zip_of(&many)).await,
        "zip_max_entries",
    );
}

/// Sets the uncompressed size in every local and central header to `size`.
fn lie_about_size(zip: &mut [u8], size: u32) {
    let mut i = 0;
    while i + 46 <= zip.len() {
        match &zip[i..i + 4] {
            b"PK\x03\x04" => {
                zip[i + 22..i + 26].copy_from_slice(&size.to_le_bytes());
                i += 30;
            }
            b"PK\x01\x02" => {
                zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
                i += 46;
            }
            _ => i += 1,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_that_lies_about_the_size_is_not_believed() {
    let tight = LimitSettings {
        zip_max_entry_bytes: 4 << 20,
        zip_max_ratio: 10_000,
        ..LimitSettings::default()
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let st = state(dir.path(), tight);
    let mut lying = zip_of(&[("2024-01/2024-01-lancashire-street.csv", &zeros(64 << 20))]);
    lie_about_size(&mut lying, 100);
    let (status, doc) = upload(&st, "lying.zip", lying).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{doc}");
    assert!(st.store().incidents.is_empty());
    let why = doc["description"].as_str().unwrap_or_default();
    // Counted, not believed: refused on the size (or the zip reader's own check).
    assert!(
        why.contains("zip_max_entry_bytes") || why.contains("unreadable zip"),
        "{why}"
    );
}
