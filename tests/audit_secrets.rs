//! No secret reaches the log or the audit file: keys in the query string (by a
//! parameter's name, or as the value of any parameter when it is a key), wrong keys in
//! `Authorization` and `X-API-Key`, a key pasted into the path. The trace spans are
//! captured in-process at TRACE; the audit file is read back. And the audit file rotates
//! by size, keeping the configured number of old files. Its own binary: the tracing
//! subscriber and the audit file handle are per process.

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use hotspot::serve::audit::{FILE_NAME, Rotation, append};
use hotspot::serve::auth::{ApiKey, Role, hash_key};
use hotspot::serve::{AppState, Settings, load, router};
use serde_json::{Value, json};
use tower::ServiceExt as _;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

const ANALYST: &str = "analyst-secret-key-0001";

async fn send(state: &AppState, uri: &str, headers: &[(&str, &str)]) -> StatusCode {
    let mut req = Request::builder().uri(uri).header(header::HOST, "a.test");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = router(state.clone())
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let s = resp.status();
    let _ = to_bytes(resp.into_body(), usize::MAX).await;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_sent_anywhere_never_reach_the_log_or_the_audit_file() {
    let logs = Captured::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .init();
    let dir = tempfile::tempdir().expect("temp dir").keep();
    let store = load(&dir, None).expect("an empty store");
    let state = AppState::new(
        store,
        Settings {
            data: dir.clone(),
            keys: vec![ApiKey {
                name: "analysts".into(),
                role: Role::Analyst,
                sha256: hash_key(ANALYST),
            }],
            ..Settings::default()
        },
    );
    let bearer = format!("Bearer {ANALYST}");
    let signed_in = [("authorization", bearer.as_str())];
    // A signed-in caller with keys in the query string, under secret names.
    let s = send(
        &state,
        "/collections?key=q-secret-1&api_key=q-secret-2&access_token=q-secret-3&Password=q-secret-4&token=q-secret-5",
        &signed_in,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "unknown parameters");
    // Its own key under an innocent name, on its own, and in the path.
    let uri = format!("/collections?f=json&q={ANALYST}&{ANALYST}");
    send(&state, &uri, &signed_in).await;
    let uri = format!("/collections/{ANALYST}/items");
    send(&state, &uri, &signed_in).await;
    // Wrong keys, anonymous: in each header, and in the query string too.
    let s = send(
        &state,
        "/collections?key=q-secret-6",
        &[("authorization", "Bearer wrong-secret-7")],
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let s = send(&state, "/health", &[("x-api-key", "wrong-secret-8")]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    send(&state, "/collections?access_token=q-secret-9", &[]).await;

    let audit = std::fs::read_to_string(dir.join(FILE_NAME)).expect("the audit file");
    let logged = String::from_utf8(logs.0.lock().expect("logs").clone()).expect("utf-8 logs");
    let secrets = [
        ANALYST,
        "q-secret-1",
        "q-secret-2",
        "q-secret-3",
        "q-secret-4",
        "q-secret-5",
        "q-secret-6",
        "wrong-secret-7",
        "wrong-secret-8",
        "q-secret-9",
    ];
    for secret in secrets {
        assert!(
            !audit.contains(secret),
            "{secret} in the audit file:\n{audit}"
        );
        assert!(!logged.contains(secret), "{secret} in the log:\n{logged}");
    }
    // The requests were logged and audited, with the secrets redacted.
    assert!(
        logged.contains("uri=/collections?key=REDACTED&api_key=REDACTED"),
        "{logged}"
    );
    assert!(
        logged.contains("uri=/collections/REDACTED/items"),
        "{logged}"
    );
    let lines: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let access: Vec<&Value> = lines.iter().filter(|l| l["event"] == "access").collect();
    assert!(access.len() >= 3, "{audit}");
    assert_eq!(
        access[0]["target"],
        "/collections?key=REDACTED&api_key=REDACTED&access_token=REDACTED&Password=REDACTED&token=REDACTED"
    );
    assert_eq!(
        access[1]["target"],
        "/collections?f=json&q=REDACTED&REDACTED"
    );
    let denied: Vec<&Value> = lines.iter().filter(|l| l["event"] == "denied").collect();
    assert_eq!(denied.len(), 2, "{audit}");
    for line in audit.lines() {
        assert!(line.len() < 512, "a long audit line: {line}");
    }
}

#[test]
fn the_audit_file_rotates_by_size_and_keeps_n_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rotation = Rotation {
        max_bytes: 4096,
        keep: 2,
    };
    let pad = "x".repeat(150);
    for i in 0..200 {
        append(
            dir.path(),
            rotation,
            json!({ "event": "test", "i": i, "pad": pad }),
            false,
        )
        .expect("append");
    }
    let file = |n: Option<u32>| {
        let name = n.map_or_else(|| FILE_NAME.to_owned(), |n| format!("{FILE_NAME}.{n}"));
        dir.path().join(name)
    };
    let mut seen = Vec::new();
    for n in [Some(2), Some(1), None] {
        let text = std::fs::read_to_string(file(n)).expect("a kept audit file");
        assert!(text.len() <= 4096, "{n:?}: {} bytes", text.len());
        if n.is_some() {
            assert!(
                text.len() > 3000,
                "{n:?}: {} bytes, rotated early",
                text.len()
            );
        }
        for l in text.lines() {
            let v: Value = serde_json::from_str(l).expect("whole JSON lines");
            seen.push(v["i"].as_u64().expect("i"));
        }
    }
    assert!(!file(Some(3)).exists(), "only two old files kept");
    // The kept files hold the newest lines, in order, none lost between them.
    assert_eq!(seen.last(), Some(&199));
    assert!(seen.windows(2).all(|w| w[1] == w[0] + 1), "{seen:?}");
    let _ = std::io::stdout().flush();
}
