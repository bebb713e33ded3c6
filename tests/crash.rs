//! A killed ingest leaves the store consistent (the file wholly in or wholly out, and what
//! was there before untouched), and a re-run completes it.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HEADER: &str = "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,Crime type,Last outcome category,Context\n";

fn write_month(path: &Path, month: &str, rows: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(HEADER.as_bytes()).unwrap();
    for i in 0..rows {
        let lon = -2.70 + (i % 997) as f64 * 1e-4;
        let lat = 53.75 + (i % 991) as f64 * 1e-4;
        writeln!(
            f,
            "{i:064x},{month},Lancashire Constabulary,Lancashire Constabulary,{lon:.6},{lat:.6},On or near Test Street,E01000001,Preston 001A,Burglary,Under investigation,"
        )
        .unwrap();
    }
}

fn hotspot(data: &Path, file: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hotspot"));
    c.arg("ingest")
        .arg("--data")
        .arg(data)
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

fn counts(data: &Path) -> (String, i64, i64, i64) {
    let conn = rusqlite::Connection::open(data.join("hotspot.sqlite")).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    let q = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    (
        ok,
        q("SELECT count(*) FROM incidents WHERE month = (2023 - 1970) * 12 + 0"),
        q("SELECT count(*) FROM incidents WHERE month = (2023 - 1970) * 12 + 1"),
        q("SELECT count(*) FROM ingest_log"),
    )
}

#[test]
fn killed_ingest_leaves_the_store_consistent_and_a_rerun_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (jan, feb) = (
        dir.path().join("2023-01-lancashire-street.csv"),
        dir.path().join("2023-02-lancashire-street.csv"),
    );
    write_month(&jan, "2023-01", 2_000);
    let big = 600_000;
    write_month(&feb, "2023-02", big);
    assert!(hotspot(&data, &jan).status().unwrap().success());

    let mut killed_mid_ingest = 0;
    for delay_ms in [100u64, 250, 500] {
        let mut child = hotspot(&data, &feb).spawn().unwrap();
        let start = Instant::now();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok();
        child.wait().unwrap();
        let (ok, jan_rows, feb_rows, log) = counts(&data);
        assert_eq!(ok, "ok", "integrity after a kill at {delay_ms} ms");
        assert_eq!(jan_rows, 2_000, "earlier data untouched");
        assert!(
            feb_rows == 0 || feb_rows == big as i64,
            "file half-written: {feb_rows} rows"
        );
        assert_eq!(
            log,
            1 + i64::from(feb_rows > 0),
            "ingest log agrees with the data"
        );
        if !finished && feb_rows == 0 {
            killed_mid_ingest += 1;
        }
        if feb_rows > 0 {
            break;
        }
        let _ = start;
    }
    assert!(
        killed_mid_ingest > 0,
        "the ingest was never interrupted: make the file larger"
    );

    assert!(hotspot(&data, &feb).status().unwrap().success());
    let (ok, jan_rows, feb_rows, log) = counts(&data);
    assert_eq!(
        (ok.as_str(), jan_rows, feb_rows, log),
        ("ok", 2_000, big as i64, 2)
    );
    // And again: nothing new.
    assert!(hotspot(&data, &feb).status().unwrap().success());
    assert_eq!(counts(&data).2, big as i64);
    assert_eq!(counts(&data).3, 2);
}
