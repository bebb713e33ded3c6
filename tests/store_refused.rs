//! A store file that is present but is not a sound hotspot store (zero-length, cut short,
//! not SQLite at all, another program's SQLite database) is refused with an error naming
//! the file, through the server's start-up (`serve::load`, with `--demo`) and the command
//! line, and the file is left exactly as it was: never replaced, never filled with demo
//! data. A missing store is still created.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hotspot::serve::{Demo, load};
use hotspot::store::{DB_FILE, Store};

/// The bytes of a sound, new store (schema only).
fn sound_store() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(Store::open(dir.path()).expect("a new store"));
    assert!(
        !dir.path().join(format!("{DB_FILE}-wal")).exists(),
        "closing checkpoints the log"
    );
    std::fs::read(dir.path().join(DB_FILE)).expect("store bytes")
}

fn other_programs_database() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path().join("other.db");
    let c = rusqlite::Connection::open(&p).expect("open");
    c.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT); INSERT INTO notes (text) VALUES ('mine');")
        .expect("a table");
    drop(c);
    std::fs::read(p).expect("bytes")
}

/// (what it is, its bytes, a word the refusal must contain)
fn bad_stores() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let sound = sound_store();
    assert!(sound.len() >= 3 * 4096, "{} bytes", sound.len());
    let mut garbage = b"PK\x03\x04 this is a zip, not a database".to_vec();
    garbage.resize(8192, b'x');
    vec![
        ("zero-length", Vec::new(), "empty"),
        (
            "truncated mid-page",
            sound[..sound.len() - 1000].to_vec(),
            "truncated",
        ),
        (
            "truncated by whole pages",
            sound[..sound.len() - 4096].to_vec(),
            "truncated",
        ),
        ("header only", sound[..100].to_vec(), "truncated"),
        ("not SQLite", garbage, "not a SQLite database"),
        (
            "another program's database",
            other_programs_database(),
            "not a hotspot store",
        ),
    ]
}

fn put(dir: &Path, bytes: &[u8]) -> PathBuf {
    let p = dir.join(DB_FILE);
    std::fs::write(&p, bytes).expect("write the store file");
    p
}

#[test]
fn bad_store_files_are_refused_by_start_up_and_left_alone() {
    for (what, bytes, word) in bad_stores() {
        for demo in [Some(Demo::Sample), None] {
            let dir = tempfile::tempdir().expect("temp dir");
            let p = put(dir.path(), &bytes);
            let err = match load(dir.path(), demo) {
                Ok(s) => panic!("{what}: loaded {} incidents", s.incidents.len()),
                Err(e) => format!("{e:#}"),
            };
            assert!(err.contains(DB_FILE), "{what}: {err}");
            assert!(err.contains(word), "{what}: {err}");
            assert!(err.contains("will not replace"), "{what}: {err}");
            assert_eq!(
                std::fs::read(&p).expect("still there"),
                bytes,
                "{what}: the file was changed"
            );
        }
    }
}

#[test]
fn a_missing_store_is_created_and_a_sound_one_opens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = load(dir.path(), None).expect("a new, empty store");
    assert!(s.incidents.is_empty());
    assert!(dir.path().join(DB_FILE).exists());
    // Reopened: sound, still empty, no demo data added to an existing store.
    let s = load(dir.path(), Some(Demo::Sample)).expect("reopens");
    assert!(s.incidents.is_empty());
}

fn hotspot(dir: &Path, args: &[&str]) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hotspot"))
        .args(args)
        .env("HOTSPOT_DATA", dir)
        .env_remove("HOTSPOT_CONFIG")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hotspot");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read as _;
                let _ = e.read_to_string(&mut err);
            }
            return (status.success(), err);
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hotspot {args:?} did not stop: it started on a bad store");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bad_store_files_are_refused_by_the_command_line() {
    let csv = "fixtures/sample/stats19/dft-road-casualty-statistics-collision-2024.csv";
    for (what, bytes, word) in bad_stores() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = put(dir.path(), &bytes);
        for args in [
            &["serve", "--demo", "sample", "--bind", "127.0.0.1:0"][..],
            &["ingest", csv][..],
        ] {
            let (ok, err) = hotspot(dir.path(), args);
            assert!(!ok, "{what}: {args:?} succeeded");
            assert!(
                err.starts_with("hotspot: error: ") && err.contains(DB_FILE) && err.contains(word),
                "{what}: {args:?}: {err}"
            );
            assert_eq!(err.trim_end().lines().count(), 1, "{what}: {err}");
            assert_eq!(std::fs::read(&p).expect("still there"), bytes, "{what}");
        }
    }
}
