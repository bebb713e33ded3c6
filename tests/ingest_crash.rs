//! The real server killed (SIGKILL) in the middle of an HTTP ingest job: on restart the
//! store is consistent (the file is wholly in or wholly out, SQLite's integrity check
//! passes) and serves, and the interrupted job is run again to the end (`resumed`);
//! ingesting the file again changes nothing. Uploads are answered 202 at once, with the
//! job to poll. The CLI's `ingest` runs through the same queue: it waits for the worker
//! lock, is listed as a job, and the server reloads what it ingested.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const KEY: &str = "crash-test-admin-key";

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &Path) -> Server {
    let config = data.join("hotspot.toml");
    std::fs::write(
        &config,
        format!(
            "[[keys]]\nname = \"crash-test\"\nrole = \"admin\"\nsha256 = \"{}\"\n",
            hotspot::serve::auth::hash_key(KEY)
        ),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hotspot"))
        .args([
            "serve",
            "--demo",
            "sample",
            "--bind",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&config)
        .env("HOTSPOT_DATA", data)
        .env("HOTSPOT_REQUEST_TIMEOUT", "900")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the hotspot binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("hotspot is serving at http://") {
                let _ = tx.send(rest.split('/').next().unwrap_or_default().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(600))
        .expect("the server printed its address");
    Server { child, addr }
}

fn dechunk(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = body;
    while let Some(pos) = s.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&s[..pos])
            .ok()
            .and_then(|h| usize::from_str_radix(h.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let rest = &s[pos + 2..];
        out.extend_from_slice(&rest[..size.min(rest.len())]);
        s = rest.get(size + 2..).unwrap_or(&[]);
    }
    out
}

/// Writes a request (headers and body) without reading the answer.
fn send(addr: &str, method: &str, path: &str, body: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(900)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .expect("write");
    s.write_all(body).expect("body");
    s
}

fn answer(mut s: TcpStream) -> (u16, Value) {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status: u16 = head[9..12].parse().expect("status");
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn located(server: &Server) -> u64 {
    let (status, v) = answer(send(
        &server.addr,
        "GET",
        "/collections/incidents/items?limit=1",
        b"",
    ));
    assert_eq!(status, 200);
    v["numberMatched"].as_u64().expect("numberMatched")
}

/// A police.uk month outside the fixtures' months, so it adds rather than replaces.
fn police_file(dir: &Path) -> PathBuf {
    let out = dir.join("generated");
    let status = Command::new(env!("CARGO_BIN_EXE_hotspot"))
        .args([
            "generate",
            "--rows",
            "120000",
            "--stats19-rows",
            "0",
            "--months",
            "1",
            "--start",
            "2031-01",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .expect("generate runs");
    assert!(status.success());
    let file = out.join("police/2031-01/2031-01-lancashire-street.csv");
    assert!(file.exists(), "{}", file.display());
    file
}

/// Uploads `name`'s bytes: 202 and the job's id.
fn submit(server: &Server, name: &str, bytes: &[u8]) -> String {
    let started = Instant::now();
    let (status, job) = answer(send(&server.addr, "POST", name, bytes));
    assert_eq!(status, 202, "{job}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the upload is answered at once, not after the ingest: {:?}",
        started.elapsed()
    );
    assert_eq!(job["state"], "queued", "{job}");
    job["id"].as_str().expect("a job id").to_owned()
}

fn job(server: &Server, id: &str) -> Value {
    let (status, v) = answer(send(
        &server.addr,
        "GET",
        &format!("/admin/ingest/{id}"),
        b"",
    ));
    assert_eq!(status, 200, "{v}");
    v
}

/// Polls the job until it has run; its final state.
fn finished(server: &Server, id: &str) -> Value {
    let t0 = Instant::now();
    loop {
        let v = job(server, id);
        if v["state"] == "done" || v["state"] == "failed" {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "job never ran: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn killed_mid_ingest_restarts_consistent_and_reingest_is_idempotent() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let file = police_file(tmp.path());
    let bytes = std::fs::read(&file).expect("read");
    let name = "/admin/ingest?name=2031-01-lancashire-street.csv";

    let mut server = start(&data);
    let before = located(&server);
    assert!(before > 0);

    // Upload, then kill the server once the job is running.
    let id = submit(&server, name, &bytes);
    let t0 = Instant::now();
    while job(&server, &id)["state"] != "running" {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the job never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(150));
    server.child.kill().expect("SIGKILL");
    let _ = server.child.wait();
    drop(server);

    let store = hotspot::store::Store::open(&data).expect("the store opens");
    assert_eq!(store.integrity_check().expect("integrity check"), "ok");
    drop(store);

    // Restarted: serves, with the file wholly in or wholly out, and the interrupted job
    // is run again to the end.
    let server = start(&data);
    let after_crash = located(&server);
    let first = finished(&server, &id);
    assert_eq!(first["resumed"], true, "{first}");
    assert_eq!(first["state"], "done", "{first}");
    assert_eq!(first["status"], 200, "{first}");
    assert_eq!(first["files_done"], first["files_total"], "{first}");
    let first = first["result"].clone();
    let full = located(&server);
    eprintln!("located: {before} before, {after_crash} after the crash, {full} complete");
    assert!(full > before, "the file added incidents");
    assert!(
        after_crash == before || after_crash == full,
        "partial ingest after the crash: {before} before, {after_crash} after, {full} complete"
    );
    assert_eq!(first["file"], "2031-01-lancashire-street.csv");
    assert!(first["files"][0]["rows_read"].as_u64().unwrap_or(0) > 0);
    // The job's upload is gone once it has run; its state stays to be read.
    let left: Vec<String> = std::fs::read_dir(data.join("jobs"))
        .expect("jobs dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "worker.lock")
        .collect();
    assert_eq!(left, [format!("{id}.json")], "{left:?}");

    // The same file again: nothing changes.
    let again = finished(&server, &submit(&server, name, &bytes));
    assert_eq!(again["resumed"], false, "{again}");
    let again = again["result"].clone();
    assert_eq!(again["files"][0]["unchanged"], true, "{again}");
    assert_eq!(located(&server), full);
    assert_eq!(again["incidents_loaded"], first["incidents_loaded"]);

    // Two uploads racing: both are queued at once and run one after the other, each to
    // its end; neither touches the other's file.
    let tiny = |month: &str| {
        format!(
            "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,\
             LSOA name,Crime type,Last outcome category,Context\n\
             ,{month},Lancashire Constabulary,Lancashire Constabulary,-2.4820,53.7480,\
             On or near High Street,,,Burglary,,\n"
        )
        .into_bytes()
    };
    let (a, b) = std::thread::scope(|sc| {
        let a = sc.spawn(|| {
            submit(
                &server,
                "/admin/ingest?name=2031-02-lancashire-street.csv",
                &tiny("2031-02"),
            )
        });
        let b = sc.spawn(|| {
            submit(
                &server,
                "/admin/ingest?name=2031-03-lancashire-street.csv",
                &tiny("2031-03"),
            )
        });
        (a.join().expect("a"), b.join().expect("b"))
    });
    assert_ne!(a, b);
    for id in [&a, &b] {
        let j = finished(&server, id);
        assert_eq!(j["status"], 200, "{j}");
        assert_eq!(j["result"]["files"][0]["stored"], 1, "{j}");
    }
    assert_eq!(located(&server), full + 2);
    // The answer says what no analysis counts, as /health does.
    let health = answer(send(&server.addr, "GET", "/health", b"")).1;
    assert!(first["unlocated"].as_u64().unwrap_or(0) > 0, "{first}");
    assert_eq!(
        first["outside_study_area"], health["outside_study_area"],
        "{first}"
    );

    // Both ingests are in the audit log, with who did them.
    let audit = std::fs::read_to_string(data.join("audit.jsonl")).expect("audit log");
    let ingests: Vec<Value> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "ingest")
        .collect();
    assert!(ingests.len() >= 2);
    assert!(ingests.iter().all(|v| v["who"] == "crash-test"));
    assert!(!audit.contains(KEY), "the audit log holds the key");
}

/// One burglary of `month` as a police.uk street file.
fn one_crime(month: &str) -> String {
    format!(
        "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,\
         LSOA name,Crime type,Last outcome category,Context\n\
         ,{month},Lancashire Constabulary,Lancashire Constabulary,-2.4820,53.7480,\
         On or near High Street,,,Burglary,,\n"
    )
}

#[test]
fn the_cli_ingest_runs_through_the_servers_queue_and_the_server_serves_what_it_ingested() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let server = start(&data);
    let before = located(&server);
    let file = tmp.path().join("2032-01-lancashire-street.csv");
    std::fs::write(&file, one_crime("2032-01")).expect("write");

    // Another runner holds the worker lock (as the server's worker does during a job):
    // the CLI waits for it, and says so, rather than ingesting beside it.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data.join("jobs/worker.lock"))
        .expect("the jobs directory and its lock file exist once the server runs");
    lock.lock().expect("lock");
    let mut cli = Command::new(env!("CARGO_BIN_EXE_hotspot"))
        .arg("ingest")
        .arg("--data")
        .arg(&data)
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the CLI starts");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        cli.try_wait().expect("try_wait").is_none(),
        "the CLI ingested while another runner held the lock"
    );
    assert_eq!(located(&server), before);
    lock.unlock().expect("unlock");
    let out = cli.wait_with_output().expect("the CLI ends");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("waiting for it"), "{stderr}");
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("recorded as ingest job "))
        .unwrap_or_else(|| panic!("no job id in: {stdout}"))
        .trim()
        .to_owned();

    // The server lists the CLI's run as a job, with its summary, and reloads the store.
    let j = job(&server, &id);
    assert_eq!(j["state"], "done", "{j}");
    assert_eq!(j["role"], "cli", "{j}");
    assert_eq!(j["status"], 200, "{j}");
    assert_eq!(j["file"], "2032-01-lancashire-street.csv", "{j}");
    assert_eq!(j["result"]["files"][0]["stored"], 1, "{j}");
    let (status, list) = answer(send(&server.addr, "GET", "/admin/ingest?limit=5", b""));
    assert_eq!(status, 200, "{list}");
    assert!(list.to_string().contains(&id), "{list}");
    let t0 = Instant::now();
    while located(&server) != before + 1 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the server never served the CLI's ingest: {} located, {before} before",
            located(&server)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A CLI run that stopped mid-way (its state file says running, no process holds the
    // lock) is marked failed with the reason, not left running nor run again.
    let stale = "00000000000000000007";
    std::fs::write(
        data.join(format!("jobs/{stale}.json")),
        serde_json::json!({
            "id": stale, "file": "x.csv", "state": "running", "by": "someone",
            "role": "cli", "submitted": "2032-01-01T00:00:00Z", "files_done": 1,
            "files_total": 3
        })
        .to_string(),
    )
    .expect("write");
    let t0 = Instant::now();
    let stopped = loop {
        let j = job(&server, stale);
        if j["state"] != "running" {
            break j;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "still running: {j}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(stopped["state"], "failed", "{stopped}");
    assert!(
        stopped["result"]["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("run it again")),
        "{stopped}"
    );
}
