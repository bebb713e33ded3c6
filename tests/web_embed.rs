//! A copied binary serves the web map on its own: the front end is embedded at build time
//! (`src/main.rs`, `serve::web::assets`). The binary is copied to an empty folder and run
//! from there with `HOTSPOT_WEB` naming a folder without the map, so neither the working
//! directory nor the source tree can supply a file; every file the map loads must come
//! back byte for byte as it is in `web/`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Server {
    child: Child,
    addr: String,
    first_lines: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_copied() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = dir.path().join("hotspot");
    std::fs::copy(env!("CARGO_BIN_EXE_hotspot"), &bin).expect("copy the binary");
    let empty_web = dir.path().join("no-web");
    std::fs::create_dir(&empty_web).expect("empty web dir");
    let mut child = Command::new(&bin)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("HOTSPOT_DATA", dir.path().join("data"))
        .env("HOTSPOT_WEB", &empty_web)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the copied binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut first_lines = Vec::new();
    let mut addr = String::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(120)) {
        if let Some(rest) = line.strip_prefix("hotspot is serving at http://") {
            addr = rest.split('/').next().unwrap_or_default().to_owned();
        }
        let done = line.starts_with("web map:");
        first_lines.push(line);
        if done {
            break;
        }
    }
    assert!(!addr.is_empty(), "no address printed: {first_lines:?}");
    Server {
        child,
        addr,
        first_lines,
        _dir: dir,
    }
}

/// A plain GET: (status line, body bytes).
fn get(addr: &str, path: &str) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let body = raw[split + 4..].to_vec();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{path}: expected a sized body"
    );
    (head.lines().next().unwrap_or_default().to_string(), body)
}

fn web_file(rel: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("web")
            .join(rel),
    )
    .expect("web file")
}

#[test]
fn a_copied_binary_serves_every_map_file_from_itself() {
    let s = start_copied();
    let own: Vec<String> =
        std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web/src"))
            .expect("web/src")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
    assert!(own.len() >= 5, "{own:?}");
    for f in &own {
        let (status, body) = get(&s.addr, &format!("/map/src/{f}"));
        assert!(
            status.contains(" 200"),
            "/map/src/{f}: {status} (not embedded?)"
        );
        assert_eq!(
            body,
            web_file(&format!("src/{f}")),
            "/map/src/{f} differs from web/"
        );
    }
    let (status, api) = get(&s.addr, "/map/api/meta");
    assert!(status.contains(" 200"), "meta: {status}");
    assert!(!api.is_empty());

    #[cfg(hotspot_maplibre)]
    {
        assert!(
            s.first_lines
                .iter()
                .any(|l| l.contains("embedded in this binary")),
            "{:?}",
            s.first_lines
        );
        let (status, page) = get(&s.addr, "/map/");
        assert!(status.contains(" 200"), "/map/: {status}");
        assert_eq!(page, web_file("index.html"));
        for f in ["maplibre-gl.js", "maplibre-gl.css"] {
            let (status, body) = get(&s.addr, &format!("/map/vendor/{f}"));
            assert!(status.contains(" 200"), "{f}: {status}");
            assert_eq!(
                body,
                web_file(&format!("node_modules/maplibre-gl/dist/{f}"))
            );
        }
    }
    // Built without `npm ci`: the start-up line and the page say why the map cannot load.
    #[cfg(not(hotspot_maplibre))]
    {
        assert!(
            s.first_lines.iter().any(|l| l.contains("npm ci")),
            "{:?}",
            s.first_lines
        );
        let (status, page) = get(&s.addr, "/map/");
        assert!(status.contains(" 503"), "/map/: {status}");
        assert!(String::from_utf8_lossy(&page).contains("npm ci"));
    }
}
