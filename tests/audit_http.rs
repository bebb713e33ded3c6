//! Refusals in the audit log, through the router without a socket: every 401 and 403
//! (the access middleware's and a handler's) leaves one small line naming no key, and a
//! flood of wrong keys adds a bounded number of lines. One test, in its own binary: the
//! refusal budget is per process.

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use hotspot::serve::audit::{DENIED_PER_CLIENT, FILE_NAME, MAX_TARGET};
use hotspot::serve::auth::{ApiKey, Role, hash_key};
use hotspot::serve::{AppState, Settings, load_or_seed, router};
use serde_json::Value;
use tower::ServiceExt as _;

async fn status(state: &AppState, uri: &str, key: Option<&str>) -> StatusCode {
    status_with(state, uri, key.map(|k| format!("Bearer {k}"))).await
}

/// `Authorization: Basic` of `user:password`.
fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {b64}")
}

async fn status_with(state: &AppState, uri: &str, authorization: Option<String>) -> StatusCode {
    let mut req = Request::builder()
        .uri(uri)
        .header(header::HOST, "audit.test");
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    let resp = router(state.clone())
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let s = resp.status();
    let _ = to_bytes(resp.into_body(), usize::MAX).await;
    s
}

fn lines(state: &AppState) -> Vec<Value> {
    let path = state.settings().data.join(FILE_NAME);
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_audited_and_floods_are_bounded() {
    let dir = tempfile::tempdir().expect("temp dir").keep();
    let store = load_or_seed(&dir).expect("fixtures");
    let state = AppState::new(
        store,
        Settings {
            data: dir,
            request_timeout_secs: 900.0,
            keys: vec![ApiKey {
                name: "council".into(),
                role: Role::Partner,
                sha256: hash_key("council-key"),
            }],
            ..Settings::default()
        },
    );
    let denied = |state: &AppState| -> Vec<Value> {
        lines(state)
            .into_iter()
            .filter(|l| l["event"] == "denied")
            .collect()
    };
    // A partner refused incident points by an encoded path.
    let s = status(
        &state,
        "/collections/%69ncidents/items",
        Some("council-key"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let d = denied(&state);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0]["who"], "council");
    assert_eq!(d[0]["status"], 403);
    // The public refused the patrol list (partner only).
    let s = status(&state, "/collections/%70atrol/items", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(denied(&state).len(), 2);
    // A handler's refusal: a sensitive category below district level.
    let s = status(
        &state,
        "/collections/lsoas/items?types=domestic-abuse",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(denied(&state).len(), 3);
    // A wrong key: its line names no key, and a long path is cut.
    let long = format!("/collections/{}", "x".repeat(900));
    let secret = "a-presented-secret-key";
    let s = status(&state, &long, Some(secret)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let d = denied(&state);
    assert_eq!(d.len(), 4);
    let text = std::fs::read_to_string(state.settings().data.join(FILE_NAME)).expect("log");
    assert!(!text.contains(secret), "a presented key in the audit log");
    assert!(!text.contains("council-key"));
    assert!(
        d[3]["target"]
            .as_str()
            .is_some_and(|t| t.len() <= MAX_TARGET)
    );
    assert!(text.lines().all(|l| l.len() < 1024), "a long audit line");
    // HTTP Basic with the key as the password is audited as the bearer key is: the
    // partner refused incident points by name, a wrong password as a wrong key.
    let s = status_with(
        &state,
        "/collections/%69ncidents/items",
        Some(basic("qgis", "council-key")),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let d = denied(&state);
    assert_eq!(d.len(), 5, "{d:?}");
    assert_eq!(d[4]["who"], d[0]["who"]);
    assert_eq!(d[4]["status"], 403);
    let basic_secret = "a-presented-basic-password";
    let s = status_with(&state, &long, Some(basic("qgis", basic_secret))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let d = denied(&state);
    assert_eq!(d.len(), 6, "{d:?}");
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.retain(|k, _| k != "time" && k != "ts" && k != "at");
        }
        v
    };
    assert_eq!(
        strip(&d[5]),
        strip(&d[3]),
        "a wrong Basic password audited unlike a wrong key"
    );
    let text = std::fs::read_to_string(state.settings().data.join(FILE_NAME)).expect("log");
    assert!(
        !text.contains(basic_secret),
        "a presented password in the audit log"
    );
    assert!(!text.contains(&basic("qgis", basic_secret)[6..]));
    // A flood of wrong keys from one client: a bounded number of lines.
    let before = lines(&state).len();
    for i in 0..500 {
        let s = status(&state, "/collections", Some(&format!("guess-{i}"))).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let grown = lines(&state).len() - before;
    assert!(
        grown <= DENIED_PER_CLIENT as usize,
        "500 refusals wrote {grown} lines"
    );
}
