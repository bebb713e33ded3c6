//! The bad-input corpus in `tests/bad_input/`: every file is parsed with `parse_bytes`
//! and ingested into a fresh store, and the outcome must be exactly the one documented in
//! `tests/bad_input/EXPECTED.md`: records, unlocated rows, each reject's line, field and
//! reason, or the whole file refused with nothing written.
//!
//! Tests marked `#[ignore = "bug: ..."]` state the correct behaviour for a defect found in
//! the ingest code; they fail until it is fixed.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use hotspot::ingest::{FileStats, Format, IngestError, Record, Reject, detect_format, parse_bytes};
use hotspot::model::{CrimeType, Severity};
use hotspot::store::{IngestSummary, Store};
use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bad_input");

/// Every data file of the corpus; each has a row in EXPECTED.md and a test below.
const CASES: &[&str] = &[
    "binary_garbage.csv",
    "empty.csv",
    "generic_easting_northing.csv",
    "generic_lonlat.csv",
    "geojson_points.geojson",
    "police_bad_month.csv",
    "police_bom.csv",
    "police_crlf.csv",
    "police_empty_coords.csv",
    "police_header_only.csv",
    "police_latin1.csv",
    "police_near_header.csv",
    "police_non_police_category.csv",
    "police_nonnumeric_coord.csv",
    "police_nul_byte.csv",
    "police_one_coord.csv",
    "police_out_of_range.csv",
    "police_quoted_commas.csv",
    "police_repeated_header.csv",
    "police_swapped.csv",
    "police_truncated.csv",
    "police_unknown_crime_type.csv",
    "police_wrong_header.csv",
    "stats19_accident_old.csv",
    "stats19_collision_new.csv",
    "stats19_date_multibyte.csv",
    "stats19_spreadsheet_dates.csv",
];

const ALL_FORMATS: [Format; 7] = [
    Format::PoliceUk,
    Format::Stats19,
    Format::Generic,
    Format::GeoJson,
    Format::PoliceOutcomes,
    Format::PoliceStopSearch,
    Format::Stats19Casualty,
];

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap_or_else(|e| panic!("{DIR}/{name}: {e}"))
}

/// An owned copy of a parsed record.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    month: String,
    ctype: CrimeType,
    severity: Severity,
    point: Option<(f64, f64)>,
    crime_id: String,
    location: String,
    outcome: String,
    day: Option<i32>,
    minute: Option<u16>,
}

impl Row {
    fn of(r: &Record<'_>) -> Self {
        Row {
            month: r.month.to_string(),
            ctype: r.ctype,
            severity: r.severity,
            point: r.point,
            crime_id: r.crime_id.to_string(),
            location: r.location.to_string(),
            outcome: r.outcome.to_string(),
            day: r.day,
            minute: r.minute,
        }
    }
}

fn parse_as(
    name: &str,
    bytes: &[u8],
    format: Option<Format>,
) -> Result<(FileStats, Vec<Row>), IngestError> {
    let mut rows = Vec::new();
    let stats = {
        let mut sink = |r: &Record<'_>| rows.push(Row::of(r));
        parse_bytes(name, bytes, format, &mut sink)?
    };
    Ok((stats, rows))
}

fn parse(name: &str) -> Result<(FileStats, Vec<Row>), IngestError> {
    parse_as(name, &fixture(name), None)
}

/// A fresh store in a temp dir with one file ingested, and a connection to check it.
struct Ingested {
    _dir: TempDir,
    store: Store,
    db: Connection,
    result: Result<IngestSummary, IngestError>,
}

fn ingest(name: &str) -> Ingested {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = Store::open(dir.path()).expect("open store");
    let result = store.ingest_bytes(name, &fixture(name), None);
    let db = Connection::open(dir.path().join("hotspot.sqlite")).expect("open db");
    Ingested {
        _dir: dir,
        store,
        db,
        result,
    }
}

fn count(db: &Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The street stored for the incident with this crime id (None: no row or no location).
fn street_of(db: &Connection, crime_id: &str) -> Option<String> {
    db.query_row(
        "SELECT l.street FROM incidents i JOIN locations l ON l.id = i.loc WHERE i.crime_id = ?1",
        [crime_id],
        |r| r.get(0),
    )
    .optional()
    .expect("street query")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An expected reject: line (0: not checked here), field ("": not checked here), and a
/// substring of the reason. Unchecked parts are covered by an ignored bug test.
type Rej = (u64, &'static str, &'static str);

struct Expect {
    format: Format,
    stored: u64,
    unlocated: u64,
    rejects: &'static [Rej],
}

struct Accepted {
    stats: FileStats,
    rows: Vec<Row>,
    ing: Ingested,
}

fn assert_rejects(name: &str, got: &[Reject], want: &[Rej]) {
    assert_eq!(
        got.len(),
        want.len(),
        "{name}: rejects {got:#?}, expected {want:?}"
    );
    for (g, &(line, field, reason)) in got.iter().zip(want) {
        assert_eq!(g.file, name, "{name}: reject names its file: {g:?}");
        if line != 0 {
            assert_eq!(g.line, line, "{name}: reject line: {g:?}");
        }
        if !field.is_empty() {
            assert_eq!(g.field, field, "{name}: reject field: {g:?}");
        }
        assert!(
            g.reason.contains(reason),
            "{name}: reject reason {:?} should contain {reason:?}",
            g.reason
        );
    }
}

/// Parses and ingests `name` and checks the documented outcome of an accepted file.
fn check_accepted(name: &str, exp: &Expect) -> Accepted {
    let bytes = fixture(name);
    assert_eq!(
        detect_format(name, &bytes).expect("format detected"),
        exp.format,
        "{name}: detected format"
    );
    let (stats, rows) = parse(name).unwrap_or_else(|e| panic!("{name}: refused: {e}"));
    let rejected = exp.rejects.len() as u64;
    assert_eq!(stats.records, exp.stored, "{name}: records");
    assert_eq!(
        rows.len() as u64,
        exp.stored,
        "{name}: records handed to the sink"
    );
    assert_eq!(stats.unlocated, exp.unlocated, "{name}: unlocated");
    assert_eq!(
        rows.iter().filter(|r| r.point.is_none()).count() as u64,
        exp.unlocated,
        "{name}: records without a point"
    );
    assert_eq!(stats.rejected, rejected, "{name}: rejected");
    assert_eq!(stats.rows_read, exp.stored + rejected, "{name}: rows read");
    assert_eq!(
        stats.rejected_by_reason.values().sum::<u64>(),
        rejected,
        "{name}: rejects by reason {:?}",
        stats.rejected_by_reason
    );
    assert_rejects(name, &stats.rejects, exp.rejects);

    let ing = ingest(name);
    let s = match &ing.result {
        Ok(s) => s.clone(),
        Err(e) => panic!("{name}: ingest refused: {e}"),
    };
    assert!(!s.unchanged, "{name}: first ingest is not 'unchanged'");
    assert_eq!(s.file, name);
    assert_eq!(s.format, format!("{:?}", exp.format));
    assert_eq!(s.sha256, sha256_hex(&bytes));
    assert_eq!(
        (s.rows_read, s.stored, s.unlocated, s.rejected, s.replaced),
        (stats.rows_read, exp.stored, exp.unlocated, rejected, 0),
        "{name}: ingest summary (read, stored, unlocated, rejected, replaced)"
    );
    assert_eq!(
        s.rejects, stats.rejects,
        "{name}: same rejects via the store"
    );
    assert_eq!(s.rejected_by_reason, stats.rejected_by_reason);

    assert_eq!(ing.store.incident_count().unwrap(), exp.stored, "{name}");
    assert_eq!(
        count(&ing.db, "SELECT count(*) FROM incidents WHERE loc IS NULL") as u64,
        exp.unlocated,
        "{name}: unlocated rows in the store"
    );
    let log: (String, String, String, i64, i64, i64, i64, i64) = ing
        .db
        .query_row(
            "SELECT file, sha256, format, rows_read, stored, replaced, unlocated, rejected FROM ingest_log",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            },
        )
        .expect("exactly one ingest_log row");
    assert_eq!(
        log,
        (
            name.to_owned(),
            sha256_hex(&bytes),
            format!("{:?}", exp.format),
            stats.rows_read as i64,
            exp.stored as i64,
            0,
            exp.unlocated as i64,
            rejected as i64,
        ),
        "{name}: ingest_log row"
    );
    assert_eq!(count(&ing.db, "SELECT count(*) FROM ingest_log"), 1);
    assert_eq!(ing.store.integrity_check().unwrap(), "ok");
    Accepted { stats, rows, ing }
}

/// Parses and ingests `name` and checks it is refused as a whole at line 1 with a header
/// error naming the file, leaving the store empty.
fn check_refused(name: &str, reason: &str) {
    for err in [
        parse(name).expect_err("parse_bytes refuses the file"),
        ingest(name).result.expect_err("ingest refuses the file"),
    ] {
        let msg = err.to_string();
        match &err {
            IngestError::Header {
                file,
                line,
                reason: r,
            } => {
                assert_eq!(file, name, "{msg}");
                assert_eq!(*line, 1, "{msg}");
                assert!(
                    r.contains(reason),
                    "{name}: {r:?} should contain {reason:?}"
                );
            }
            other => panic!("{name}: expected IngestError::Header, got {other:?}"),
        }
        assert!(
            msg.starts_with(&format!("{name}: line 1: ")),
            "{name}: message names file and line: {msg}"
        );
    }
    let ing = ingest(name);
    assert!(ing.result.is_err());
    assert_eq!(ing.store.incident_count().unwrap(), 0, "{name}");
    for table in ["incidents", "ingest_log", "batches", "locations"] {
        assert_eq!(
            count(&ing.db, &format!("SELECT count(*) FROM {table}")),
            0,
            "{name}: {table} must be empty after a refused file"
        );
    }
    assert_eq!(ing.store.integrity_check().unwrap(), "ok");
}

fn lancs_point(rows: &[Row], crime_id: &str) -> Option<(f64, f64)> {
    rows.iter()
        .find(|r| r.crime_id == crime_id)
        .unwrap_or_else(|| panic!("no record {crime_id}"))
        .point
}

// ---------------------------------------------------------------------------------------
// The corpus itself.

#[test]
fn corpus_files_expected_md_and_cases_agree() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(DIR)
        .expect("corpus dir")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "EXPECTED.md")
        .collect();
    let cases: BTreeSet<String> = CASES.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(
        on_disk, cases,
        "every corpus file has a case and vice versa"
    );
    let md = std::fs::read_to_string(format!("{DIR}/EXPECTED.md")).unwrap();
    let documented: BTreeSet<String> = md
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect();
    assert_eq!(
        documented, cases,
        "every corpus file has an EXPECTED.md row"
    );
}

#[test]
fn corpus_special_bytes_survived_checkout() {
    let bom = fixture("police_bom.csv");
    assert!(bom.starts_with(b"\xEF\xBB\xBFCrime ID,"));
    let crlf = fixture("police_crlf.csv");
    assert_eq!(crlf.windows(2).filter(|w| w == b"\r\n").count(), 5);
    assert_eq!(
        crlf.iter().filter(|&&b| b == b'\n').count(),
        5,
        "no bare LF"
    );
    for name in [
        "police_latin1.csv",
        "binary_garbage.csv",
        "stats19_date_multibyte.csv",
    ] {
        assert!(
            std::str::from_utf8(&fixture(name)).is_err(),
            "{name} must stay invalid UTF-8"
        );
    }
    assert!(
        fixture("police_latin1.csv")
            .windows(4)
            .any(|w| w == b"Caf\xE9")
    );
    assert_eq!(
        fixture("police_nul_byte.csv")
            .iter()
            .filter(|&&b| b == 0)
            .count(),
        2
    );
    assert!(!fixture("police_truncated.csv").ends_with(b"\n"));
    assert!(fixture("empty.csv").is_empty());
    assert_eq!(fixture("binary_garbage.csv").len(), 512);
}

#[test]
fn nothing_panics_whatever_the_format() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    for &name in CASES {
        let bytes = fixture(name);
        let formats = std::iter::once(None).chain(ALL_FORMATS.map(Some));
        for format in formats {
            let res = catch_unwind(|| parse_as(name, &bytes, format))
                .unwrap_or_else(|_| panic!("{name} as {format:?}: parse_bytes panicked"));
            match res {
                Ok((stats, _)) => {
                    for r in &stats.rejects {
                        assert_eq!(r.file, name, "{name} as {format:?}: {r:?}");
                        assert!(r.line >= 1, "{name} as {format:?}: {r:?}");
                    }
                }
                Err(e) => assert!(
                    e.to_string().starts_with(&format!("{name}: ")),
                    "{name} as {format:?}: error names the file: {e}"
                ),
            }
        }
        // All files into one store: a refused file must not disturb the others; an
        // accepted one adds its rows less those it replaces (every key here is unique).
        let before = store.incident_count().unwrap();
        let res = catch_unwind(AssertUnwindSafe(|| store.ingest_bytes(name, &bytes, None)))
            .unwrap_or_else(|_| panic!("{name}: ingest panicked"));
        let after = store.incident_count().unwrap();
        match res {
            // police.uk files of the same force-month replace one another.
            Ok(s) => assert_eq!(after + s.replaced, before + s.stored, "{name}: {s:?}"),
            Err(_) => assert_eq!(after, before, "{name}: refused file changed the store"),
        }
    }
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

// ---------------------------------------------------------------------------------------
// police.uk street CSVs.

#[test]
fn police_bom() {
    let a = check_accepted(
        "police_bom.csv",
        &Expect {
            format: Format::PoliceUk,
            stored: 3,
            unlocated: 0,
            rejects: &[],
        },
    );
    let ids: Vec<&str> = a.rows.iter().map(|r| r.crime_id.as_str()).collect();
    assert_eq!(ids, ["c0000001", "", "c0000003"]);
    assert_eq!(a.rows[1].ctype, CrimeType::AntiSocialBehaviour);
    assert!(a.rows.iter().all(|r| r.month == "2023-01"));
    assert_eq!(a.rows[0].outcome, "Under investigation");
}

#[test]
fn police_crlf() {
    let a = check_accepted(
        "police_crlf.csv",
        &Expect {
            format: Format::PoliceUk,
            stored: 3,
            unlocated: 0,
            rejects: &[(4, "Month", "not a month: '2023-13'")],
        },
    );
    assert_eq!(a.stats.rejects[0].value, "2023-13");
    for r in &a.rows {
        assert!(
            !r.outcome.contains('\r') && !r.location.contains('\r'),
            "{r:?}"
        );
    }
    assert_eq!(a.rows[2].ctype, CrimeType::AntiSocialBehaviour);
    assert_eq!(a.rows[2].outcome, "");
}

/// CRLF must not shift line numbers (the csv crate's `Position::line` lags one line per
/// CRLF record, rust-csv#395): every CSV fixture with rejects reports the same lines, the
/// same fields and the same values with CRLF as with LF, quoted fields included.
#[test]
fn crlf_and_lf_report_the_same_rejects() {
    for name in [
        "police_bad_month.csv",
        "police_truncated.csv",
        "police_quoted_commas.csv",
        "police_out_of_range.csv",
        "police_repeated_header.csv",
        "stats19_collision_new.csv",
        "stats19_accident_old.csv",
        "generic_lonlat.csv",
        "generic_easting_northing.csv",
    ] {
        let lf = fixture(name);
        assert!(!lf.contains(&b'\r'), "{name}");
        let mut crlf = Vec::new();
        for &b in &lf {
            if b == b'\n' {
                crlf.push(b'\r');
            }
            crlf.push(b);
        }
        let (lf_stats, lf_rows) = parse_as(name, &lf, None).unwrap();
        let (crlf_stats, crlf_rows) = parse_as(name, &crlf, None).unwrap();
        assert!(!lf_stats.rejects.is_empty(), "{name}");
        assert_eq!(crlf_stats, lf_stats, "{name}");
        assert_eq!(crlf_rows, lf_rows, "{name}");
    }
}

#[test]
fn police_quoted_commas() {
    let a = check_accepted(
        "police_quoted_commas.csv",
        &Expect {
            format: Format::PoliceUk,
            stored: 3,
            unlocated: 0,
            rejects: &[(5, "*", "wrong number of fields: expected 12, found 13")],
        },
    );
    assert_eq!(a.rows[1].location, "On or near Church Street, Preston");
    assert_eq!(a.rows[2].location, "On or near \"The Mall\", Preston");
    assert_eq!(
        lancs_point(&a.rows, "c_quoted"),
        Some((-2.711111, 53.771111))
    );
    assert_eq!(
        street_of(&a.ing.db, "c_quoted").as_deref(),
        Some("On or near Church Street, Preston")
    );
    assert_eq!(
        street_of(&a.ing.db, "c_escaped").as_deref(),
        Some("On or near \"The Mall\", Preston")
    );
    assert_eq!(street_of(&a.ing.db, "c_unquoted"), None);
}

#[test]
fn police_empty_coords() {
    let a = check_accepted(
        "police_empty_coords.csv",
        &Expect {
            format: Format::PoliceUk,
            stored: 4,
            unlocated: 2,
            rejects: &[],
        },
    );
    assert_eq!(lancs_point(&a.rows, "c_noloc1"), None);
    assert_eq!(lancs_point(&a.rows, "c_noloc2"), None);
    assert_eq!(a.rows[1].location, "No Location");
    assert_eq!(a.rows[1].ctype, CrimeType::OtherCrime);
    let unlocated: Vec<String> = a
        .ing
        .db
        .prepare("SELECT crime_id FROM incidents WHERE loc IS NULL ORDER BY crime_id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(unlocated, ["c_noloc1", "c_noloc2"]);
    let outcome: String = a
        .ing
        .db
        .query_row(
            "SELECT outcome FROM incidents WHERE crime_id = 'c_noloc1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(outcome, "Status update unavailable");
}

#[test]
fn police_nonnumeric_coord() {
    let a = check_accepted(
        "police_nonnumeric_coord.csv",
        &Expect {
            format: Format::PoliceUk,
            stored: 2,
            unlocated: 0,
            rejects: &[
                (3, "Longitude", "not a number"),
                (4, "Latitude", "not a number"),
            ],
        },
    );
    assert_eq!(a.stats.rejects[0].value, "abc");
    assert_eq!(a.stats.rejects[1].value, "NaN");
    assert_eq!(a.stats.rejected_by_reason.get("not a number"), Some(&2));
}

#[test]
fn police_one_coord() {
    check_accepted(
        "police_one_coord.csv",
        &Expect {
            format: Format::PoliceUk,
            stored: 2,
            unlocated: 0,
            rejects: &[
                (3, "Longitude", "missing while Latitude is given"),
                (4, "Latitude", "missing while Longitude is given"),
            ],
        },
    );
}

#[test]
fn police_swapped() {
    let a = check_accepted(
        "police_swapped.csv",
        &Expect {
            format: Format::PoliceUk,
            stored: 2,
            unlocated: 0,
            rejects: &[(3, "Longitude", "latitude and longitude look swapped")],
        },
    );
    assert_eq!(a.stats.rejects[0].value, "53.76,-2.7");
    assert!(a.rows.iter().all(|r| r.crime_id != "c_swapped"));
}

#[test]
fn police_out_of_range() {
    let a = check_accepted(
        "police_out_of_range.csv",
        &Expect {
            format: Format::PoliceUk,
            stored: 2,
            unlocated: 0,
            rejects: &[
                (3, "Longitude", "out of range: 12.5 is outside"),
                (4, "Latitude", "out of range: 62 is outside"),
                (5, "Latitude", "out of range: 0 is outside"),
                (6, "Longitude", "out of range: 200 is outside"),
            ],
        },
    );
    assert_eq!(a.stats.rejected_by_reason.get("out of range"), Some(&4));
}

#[test]
fn police_latin1() {
    let a = check_accepted(
        "police_latin1.csv",
        &Expect {
            format: Format::PoliceUk,
            stored: 3,
            unlocated: 0,
            rejects: &[],
        },
    );
    assert_eq!(a.rows[1].location, "On or near Café Row");
    assert_eq!(
        street_of(&a.ing.db, "c_latin1").as_deref(),
        Some("On or near Café Row")
    );
}

#[test]
fn police_truncated() {
    let a = check_accepted(
        "police_truncated.csv",
        &Expect {
            format: Format::PoliceUk,
            stored: 2,
            unlocated: 0,
            rejects: &[(4, "*", "wrong number of fields: expected 12, found 6")],
        },
    );
    // The reject shows the row as written, separators included.
    assert_eq!(
        a.stats.rejects[0].value,
        "c_trunc,2023-01,Lancashire Constabulary,Lancashire Constabulary,-2.70,53.7"
    );
}

#[test]
fn police_repeated_header() {
    let a = check_accepted(
        "police_repeated_header.csv",
        &Expect {
            format: Format::PoliceUk,
            stored: 4,
            unlocated: 0,
            rejects: &[(4, "*", "repeated header")],
        },
    );
    let ids: Vec<&str> = a.rows.iter().map(|r| r.crime_id.as_str()).collect();
    assert_eq!(ids, ["c0000001", "c0000002", "c0000004", ""]);
}

#[test]
fn police_wrong_header() {
    check_refused("police_wrong_header.csv", "header matches no known format");
    // Forced to police.uk the header is refused too, naming the expected header.
    let bytes = fixture("police_wrong_header.csv");
    match parse_as("police_wrong_header.csv", &bytes, Some(Format::PoliceUk)) {
        Err(IngestError::Header {
            line: 1, reason, ..
        }) => {
            assert!(reason.contains("Last outcome category"), "{reason}");
        }
        other => panic!("expected a header error at line 1, got {other:?}"),
    }
}

#[test]
fn near_police_header_is_refused_not_read_as_generic() {
    match parse("police_near_header.csv") {
        Err(IngestError::Header {
            line: 1, reason, ..
        }) => {
            assert!(reason.contains("Last outcome category"), "{reason}");
        }
        other => panic!("expected a header error at line 1, got {other:?}"),
    }
    let ing = ingest("police_near_header.csv");
    assert!(ing.result.is_err());
    assert_eq!(ing.store.incident_count().unwrap(), 0);
}

#[test]
fn empty_file() {
    check_refused("empty.csv", "the file is empty");
    for format in [Format::Stats19, Format::Generic] {
        match parse_as("empty.csv", b"", Some(format)) {
            Err(IngestError::Header { line: 1, .. }) => {}
            other => panic!("{format:?}: expected a header error, got {other:?}"),
        }
    }
    assert!(matches!(
        parse_as("empty.csv", b"", Some(Format::GeoJson)),
        Err(IngestError::Format { .. })
    ));
}

#[test]
fn empty_file_is_refused_even_with_the_format_forced() {
    match parse_as("empty.csv", b"", Some(Format::PoliceUk)) {
        Err(IngestError::Header { line: 1, .. }) => {}
        other => panic!("expected a header error at line 1, got {other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    assert!(
        store
            .ingest_bytes("empty.csv", b"", Some(Format::PoliceUk))
            .is_err()
    );
}

#[test]
fn police_header_only() {
    let a = check_accepted(
        "police_header_only.csv",
        &Expect {
            format: Format::PoliceUk,
            stored: 0,
            unlocated: 0,
            rejects: &[],
        },
    );
    assert_eq!(a.stats, FileStats::default());
    assert_eq!(count(&a.ing.db, "SELECT count(*) FROM batches"), 0);
}

#[test]
fn police_unknown_crime_type() {
    let a = check_accepted(
        "police_unknown_crime_type.csv",
        &Expect {
            format: Format::PoliceUk,
            stored: 2,
            unlocated: 0,
            rejects: &[
                (3, "Crime type", "unknown crime type"),
                (4, "Crime type", "unknown crime type"),
            ],
        },
    );
    assert_eq!(a.stats.rejects[0].value, "Cybercrime");
    assert_eq!(a.stats.rejects[1].value, "burglary");
    assert_eq!(a.rows[1].ctype, CrimeType::Shoplifting);
}

#[test]
fn police_file_rejects_categories_police_uk_never_writes() {
    let (stats, rows) = parse("police_non_police_category.csv").unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_rejects(
        "police_non_police_category.csv",
        &stats.rejects,
        &[
            (3, "Crime type", "not one of the 14 police.uk categories"),
            (4, "Crime type", "not one of the 14 police.uk categories"),
        ],
    );
}

#[test]
fn police_bad_month() {
    let a = check_accepted(
        "police_bad_month.csv",
        &Expect {
            format: Format::PoliceUk,
            stored: 2,
            unlocated: 0,
            rejects: &[
                (3, "Month", "not a month: '2023-13'"),
                (4, "Month", "not a month: '23-01'"),
            ],
        },
    );
    assert_eq!(a.stats.rejects[0].value, "2023-13");
    assert_eq!(a.stats.rejects[1].value, "23-01");
}

#[test]
fn bad_months_fall_in_one_summary_class() {
    let (stats, _) = parse("police_bad_month.csv").unwrap();
    assert_eq!(
        stats.rejected_by_reason.len(),
        1,
        "{:?}",
        stats.rejected_by_reason
    );
    assert_eq!(stats.rejected_by_reason.values().sum::<u64>(), 2);
}

#[test]
fn binary_garbage() {
    check_refused("binary_garbage.csv", "header matches no known format");
    let bytes = fixture("binary_garbage.csv");
    for format in [Format::PoliceUk, Format::Stats19, Format::Generic] {
        match parse_as("binary_garbage.csv", &bytes, Some(format)) {
            Err(IngestError::Header { line: 1, file, .. }) => {
                assert_eq!(file, "binary_garbage.csv");
            }
            other => panic!("{format:?}: expected a header error at line 1, got {other:?}"),
        }
    }
    match parse_as("binary_garbage.csv", &bytes, Some(Format::GeoJson)) {
        Err(IngestError::Format { file, reason }) => {
            assert_eq!(file, "binary_garbage.csv");
            assert!(reason.contains("not valid JSON"), "{reason}");
        }
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn police_nul_byte() {
    let a = check_accepted(
        "police_nul_byte.csv",
        &Expect {
            format: Format::PoliceUk,
            stored: 3,
            unlocated: 0,
            rejects: &[(4, "Latitude", "not a number")],
        },
    );
    assert_eq!(a.stats.rejects[0].value, "53.76\0");
    assert_eq!(a.rows[1].location, "On or near \0Fishergate");
    assert_eq!(
        street_of(&a.ing.db, "c_nul_loc").as_deref(),
        Some("On or near \0Fishergate")
    );
}

// ---------------------------------------------------------------------------------------
// STATS19.

fn severity_in_db(db: &Connection, index: &str) -> i64 {
    db.query_row(
        "SELECT severity FROM incidents WHERE source = 'stats19' AND ext_key = ?1",
        [index],
        |r| r.get(0),
    )
    .unwrap_or_else(|e| panic!("{index}: {e}"))
}

#[test]
fn stats19_accident_old() {
    let a = check_accepted(
        "stats19_accident_old.csv",
        &Expect {
            format: Format::Stats19,
            stored: 5,
            unlocated: 3,
            rejects: &[
                // The field is checked by `stats19_old_vintage_rejects_name_the_files_own_columns` (bug).
                (7, "", "not 1, 2, 3, 9 or -1"),
                (
                    8,
                    "date",
                    "not a date: '32/01/2019' (expected YYYY-MM-DD, DD/MM/YYYY or D/M/YYYY",
                ),
                (9, "location_easting_osgr", "out of range: 999999"),
            ],
        },
    );
    let sev: Vec<Severity> = a.rows.iter().map(|r| r.severity).collect();
    assert_eq!(
        sev,
        [
            Severity::Slight,
            Severity::Serious,
            Severity::Fatal,
            Severity::None,
            Severity::None
        ]
    );
    assert!(a.rows.iter().all(|r| r.ctype == CrimeType::RoadCollision));
    assert!(a.rows.iter().all(|r| r.month == "2019-01"));
    // Easting/northing wins over the lon/lat columns (OSTN15), within a few metres.
    let (lon, lat) = a.rows[0].point.expect("located");
    assert!(
        (lon + 2.6991).abs() < 1e-3 && (lat - 53.7553).abs() < 1e-3,
        "{lon},{lat}"
    );
    // NULL easting/northing falls back to longitude/latitude.
    assert_eq!(a.rows[1].point, Some((-2.71, 53.75)));
    assert!(a.rows[2..].iter().all(|r| r.point.is_none()));
    assert_eq!(severity_in_db(&a.ing.db, "2019040000001"), 3);
    assert_eq!(severity_in_db(&a.ing.db, "2019040000003"), 1);
    assert_eq!(severity_in_db(&a.ing.db, "2019040000004"), 0);
    assert_eq!(severity_in_db(&a.ing.db, "2019040000005"), 0);
    let loc: (i64, i64) = a
        .ing
        .db
        .query_row(
            "SELECT l.lon_e7, l.lat_e7 FROM incidents i JOIN locations l ON l.id = i.loc WHERE i.ext_key = '2019040000002'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(loc, (-27_100_000, 537_500_000));
}

#[test]
fn stats19_old_vintage_rejects_name_the_files_own_columns() {
    let (stats, _) = parse("stats19_accident_old.csv").unwrap();
    assert_eq!(stats.rejects[0].line, 7);
    assert_eq!(stats.rejects[0].field, "accident_severity");
}

#[test]
fn stats19_collision_new() {
    let a = check_accepted(
        "stats19_collision_new.csv",
        &Expect {
            format: Format::Stats19,
            stored: 5,
            unlocated: 3,
            rejects: &[
                (7, "collision_index", "missing collision index"),
                (8, "location_northing_osgr", "not a number"),
                (9, "*", "wrong number of fields: expected 14, found 12"),
            ],
        },
    );
    assert_eq!(a.stats.rejects[1].value, "abc");
    let by_id = |id: &str| a.rows.iter().find(|r| r.crime_id == id).unwrap().clone();
    assert_eq!(by_id("2023040000002").severity, Severity::None);
    assert_eq!(by_id("2023040000002").point, None);
    assert_eq!(by_id("2023040000003").severity, Severity::None);
    assert_eq!(by_id("2023040000003").point, None);
    assert_eq!(by_id("2023040000004").severity, Severity::Fatal);
    assert_eq!(by_id("2023040000004").point, None);
    assert_eq!(by_id("2023040000005").severity, Severity::Serious);
    assert_eq!(by_id("2023040000005").point, Some((-2.72, 53.74)));
    assert!(a.rows.iter().all(|r| r.month == "2023-01"));
    assert_eq!(
        count(
            &a.ing.db,
            "SELECT count(*) FROM incidents WHERE source = 'stats19' AND ext_key = crime_id"
        ),
        5
    );
    assert_eq!(severity_in_db(&a.ing.db, "2023040000005"), 2);
}

/// A Latin-1 byte straight after the day digit once made `Month::parse_date` slice inside
/// a multi-byte character and panic.
#[test]
fn stats19_date_multibyte() {
    let a = check_accepted(
        "stats19_date_multibyte.csv",
        &Expect {
            format: Format::Stats19,
            stored: 2,
            unlocated: 0,
            rejects: &[(3, "date", "not a date")],
        },
    );
    // Decoded as Latin-1 for the report.
    assert_eq!(a.stats.rejects[0].value, "2023-01-1é");
    // The same text through the generic and GeoJSON parsers.
    let generic = "id,date,category,longitude,latitude\nA,2023-01-1é,Burglary,-2.7,53.76\n";
    let (stats, _) = parse_as("g.csv", generic.as_bytes(), None).unwrap();
    assert_rejects("g.csv", &stats.rejects, &[(2, "date", "not a date")]);
    let geojson = r#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":null,"properties":{"month":"2023-01-1é","category":"Drugs"}}]}"#;
    let (stats, _) = parse_as("g.geojson", geojson.as_bytes(), None).unwrap();
    assert_rejects("g.geojson", &stats.rejects, &[(1, "month", "not a date")]);
}

/// A STATS19 file saved through a spreadsheet writes `D/M/YYYY` (4 January 2015 as
/// `4/1/2015`): read as day first, kept to the day, and a bad date names the formats
/// expected rather than "expected YYYY-MM".
#[test]
fn stats19_spreadsheet_dates() {
    let a = check_accepted(
        "stats19_spreadsheet_dates.csv",
        &Expect {
            format: Format::Stats19,
            stored: 4,
            unlocated: 0,
            rejects: &[
                (
                    6,
                    "date",
                    "not a date: '29/2/2015' (expected YYYY-MM-DD, DD/MM/YYYY or D/M/YYYY",
                ),
                (7, "date", "not a date: '4/13/2015'"),
                (8, "time", "not a time: expected HH:MM"),
            ],
        },
    );
    for r in &a.stats.rejects {
        assert!(!r.reason.contains("expected YYYY-MM)"), "{r:?}");
    }
    let months: Vec<&str> = a.rows.iter().map(|r| r.month.as_str()).collect();
    assert_eq!(months, ["2015-01", "2015-01", "2015-01", "2015-12"]);
    let jan4 = hotspot::model::days_from_civil(2015, 1, 4);
    let days: Vec<Option<i32>> = a.rows.iter().map(|r| r.day).collect();
    assert_eq!(days, [Some(jan4), Some(jan4), Some(jan4), Some(jan4 + 361)]);
    let minutes: Vec<Option<u16>> = a.rows.iter().map(|r| r.minute).collect();
    assert_eq!(
        minutes,
        [Some(8 * 60 + 5), Some(17 * 60 + 30), None, Some(0)]
    );
    let stored: (i64, i64) = a
        .ing
        .db
        .query_row(
            "SELECT day, minute FROM incidents WHERE ext_key = '2015040000001'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(stored, (i64::from(jan4), 485));
}

// ---------------------------------------------------------------------------------------
// Generic CSV and GeoJSON.

#[test]
fn generic_easting_northing() {
    let a = check_accepted(
        "generic_easting_northing.csv",
        &Expect {
            format: Format::Generic,
            stored: 5,
            unlocated: 2,
            rejects: &[
                (6, "easting", "out of range: 800000"),
                (7, "northing", "not a number"),
            ],
        },
    );
    let ids: Vec<&str> = a.rows.iter().map(|r| r.crime_id.as_str()).collect();
    assert_eq!(ids, ["INC-001", "INC-002", "INC-003", "INC-004", "INC-007"]);
    assert_eq!(a.rows[1].ctype, CrimeType::CriminalDamageArson);
    let (lon, lat) = a.rows[0].point.expect("located");
    assert!(
        (lon + 2.6991).abs() < 1e-3 && (lat - 53.7553).abs() < 1e-3,
        "{lon},{lat}"
    );
    assert_eq!(a.rows[4].location, "Fishergate, Preston");
    assert_eq!(
        count(
            &a.ing.db,
            "SELECT count(*) FROM incidents WHERE source = 'generic' AND ext_key LIKE 'INC-%'"
        ),
        5
    );
}

#[test]
fn generic_lonlat() {
    let a = check_accepted(
        "generic_lonlat.csv",
        &Expect {
            format: Format::Generic,
            stored: 3,
            unlocated: 1,
            rejects: &[
                (4, "crime type", "unknown category"),
                (5, "lon", "latitude and longitude look swapped"),
                (7, "month", "not a date: '2023-14'"),
            ],
        },
    );
    let types: Vec<CrimeType> = a.rows.iter().map(|r| r.ctype).collect();
    assert_eq!(
        types,
        [
            CrimeType::AntiSocialBehaviour,
            CrimeType::ViolenceAndSexualOffences,
            CrimeType::VehicleCrime
        ]
    );
    assert_eq!(a.rows[0].point, Some((-2.7, 53.76)));
    assert!(
        a.rows
            .iter()
            .all(|r| r.month == "2023-02" && r.crime_id.is_empty())
    );
    assert_eq!(
        count(
            &a.ing.db,
            "SELECT count(*) FROM incidents WHERE ext_key IS NULL"
        ),
        3
    );
}

#[test]
fn geojson_points() {
    let a = check_accepted(
        "geojson_points.geojson",
        &Expect {
            format: Format::GeoJson,
            stored: 4,
            unlocated: 1,
            rejects: &[(3, "geometry", "not a Point")],
        },
    );
    let ids: Vec<&str> = a.rows.iter().map(|r| r.crime_id.as_str()).collect();
    assert_eq!(ids, ["g1", "g2", "g4", "g5"]);
    assert_eq!(a.rows[2].point, None);
    assert_eq!(a.rows[1].ctype, CrimeType::AntiSocialBehaviour);
    assert_eq!(
        count(
            &a.ing.db,
            "SELECT count(*) FROM incidents WHERE source = 'geojson'"
        ),
        4
    );
}
