//! Ingesting into the SQLite store of record: idempotency (a repeated file changes
//! nothing), police.uk force-month replacement, keyed upserts (STATS19 collision index,
//! generic id), the ingest log, and zip archives.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use hotspot::ingest::{Source, discover};
use hotspot::store::{IngestSummary, Store};
use rusqlite::Connection;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

const POLICE_HEADER: &str = "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,Crime type,Last outcome category,Context";
const LANCS: &str = "Lancashire Constabulary";
const CUMBRIA: &str = "Cumbria Constabulary";

/// A police.uk street CSV of one force and month; rows are (crime id, crime type,
/// outcome), placed on distinct points near Preston.
fn police_csv(force: &str, month: &str, rows: &[(&str, &str, &str)]) -> Vec<u8> {
    let mut s = format!("{POLICE_HEADER}\n");
    for (i, (id, ctype, outcome)) in rows.iter().enumerate() {
        let lon = -2.70 - 0.001 * i as f64;
        let lat = 53.76 + 0.001 * i as f64;
        s.push_str(&format!(
            "{id},{month},{force},{force},{lon:.6},{lat:.6},On or near Street {i},E01025290,Preston 014A,{ctype},{outcome},\n"
        ));
    }
    s.into_bytes()
}

struct Fixture {
    dir: TempDir,
    store: Store,
    db: Connection,
}

fn fresh() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open store");
    let db = Connection::open(dir.path().join("hotspot.sqlite")).expect("open db");
    Fixture { dir, store, db }
}

impl Fixture {
    fn ingest(&mut self, name: &str, bytes: &[u8]) -> IngestSummary {
        self.store
            .ingest_bytes(name, bytes, None)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn count(&self, sql: &str) -> i64 {
        self.db
            .query_row(sql, [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn incidents(&self) -> u64 {
        let n = self.store.incident_count().unwrap();
        assert_eq!(n as i64, self.count("SELECT count(*) FROM incidents"));
        n
    }

    /// (crime id, outcome) of the incidents whose crime id starts with `prefix`, sorted.
    fn rows_like(&self, prefix: &str) -> Vec<(String, String)> {
        let mut q = self
            .db
            .prepare(
                "SELECT crime_id, outcome FROM incidents WHERE crime_id LIKE ?1 || '%' ORDER BY crime_id, outcome",
            )
            .unwrap();
        q.query_map([prefix], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Idempotency.

#[test]
fn same_file_twice_is_unchanged() {
    let mut f = fresh();
    let police = police_csv(
        LANCS,
        "2023-01",
        &[
            ("L1-1", "Burglary", "Under investigation"),
            ("", "Anti-social behaviour", ""),
            ("L1-3", "Drugs", "Local resolution"),
        ],
    );
    let generic_no_id = b"date,category,longitude,latitude\n\
        2023-01-05,Burglary,-2.7,53.76\n\
        2023-01-06,Drugs,-2.71,53.77\n";
    let stats19 = b"collision_index,longitude,latitude,collision_severity,date\n\
        2023040000001,-2.7,53.76,3,05/01/2023\n";
    for (name, bytes, rows) in [
        ("2023-01-lancashire-street.csv", &police[..], 3),
        ("extract.csv", &generic_no_id[..], 2),
        ("collisions.csv", &stats19[..], 1),
    ] {
        let before = f.incidents();
        let first = f.ingest(name, bytes);
        assert!(!first.unchanged, "{name}");
        assert_eq!(first.stored, rows, "{name}");
        assert_eq!(f.incidents(), before + rows, "{name}");
        let log_rows = f.count("SELECT count(*) FROM ingest_log");

        let second = f.ingest(name, bytes);
        assert!(second.unchanged, "{name}: second ingest is unchanged");
        assert_eq!(second.sha256, first.sha256);
        assert_eq!(
            (second.stored, second.replaced, second.rows_read),
            (0, 0, 0),
            "{name}"
        );
        assert_eq!(f.incidents(), before + rows, "{name}: count unchanged");
        assert_eq!(
            f.count("SELECT count(*) FROM ingest_log"),
            log_rows,
            "{name}: a repeat is not logged"
        );
        // The same bytes under another name are the same file.
        assert!(f.ingest(&format!("copy-of-{name}"), bytes).unchanged);
        assert_eq!(f.incidents(), before + rows);
    }
    assert_eq!(f.count("SELECT count(*) FROM ingest_log"), 3);
}

// ---------------------------------------------------------------------------------------
// police.uk (force, month) replacement.

#[test]
fn reissued_police_month_replaces_the_earlier_rows_as_a_whole() {
    let mut f = fresh();
    let jan_v1 = police_csv(
        LANCS,
        "2023-01",
        &[
            ("L1-1", "Burglary", "Under investigation"),
            ("L1-2", "Burglary", "Under investigation"),
            ("L1-3", "Vehicle crime", "Under investigation"),
            ("L1-4", "Drugs", "Under investigation"),
            ("L1-5", "Robbery", "Under investigation"),
        ],
    );
    let feb = police_csv(
        LANCS,
        "2023-02",
        &[
            ("L2-1", "Burglary", "Under investigation"),
            ("L2-2", "Shoplifting", "Awaiting court outcome"),
            ("L2-3", "Drugs", "Under investigation"),
        ],
    );
    let cumbria_jan = police_csv(
        CUMBRIA,
        "2023-01",
        &[
            ("C1-1", "Burglary", "Under investigation"),
            ("C1-2", "Public order", "Under investigation"),
        ],
    );
    assert_eq!(f.ingest("2023-01-lancashire-street.csv", &jan_v1).stored, 5);
    assert_eq!(f.ingest("2023-02-lancashire-street.csv", &feb).stored, 3);
    assert_eq!(
        f.ingest("2023-01-cumbria-street.csv", &cumbria_jan).stored,
        2
    );
    assert_eq!(f.incidents(), 10);
    let feb_before = f.rows_like("L2-");
    let cumbria_before = f.rows_like("C1-");

    // police.uk re-issues January: fewer rows, outcomes moved on.
    let jan_v2 = police_csv(
        LANCS,
        "2023-01",
        &[
            ("L1-1", "Burglary", "Offender given a caution"),
            (
                "L1-2",
                "Burglary",
                "Investigation complete; no suspect identified",
            ),
            ("L1-4", "Drugs", "Local resolution"),
        ],
    );
    let s = f.ingest("2023-01-lancashire-street.csv", &jan_v2);
    assert!(!s.unchanged);
    assert_eq!(s.stored, 3);
    assert_eq!(s.replaced, 5, "the replaced figure is the old row count");
    assert_eq!(f.incidents(), 3 + 3 + 2);
    assert_eq!(
        f.rows_like("L1-"),
        [
            ("L1-1".to_owned(), "Offender given a caution".to_owned()),
            (
                "L1-2".to_owned(),
                "Investigation complete; no suspect identified".to_owned()
            ),
            ("L1-4".to_owned(), "Local resolution".to_owned()),
        ]
    );
    assert_eq!(
        f.count("SELECT count(*) FROM incidents WHERE outcome = 'Under investigation' AND crime_id LIKE 'L1-%'"),
        0,
        "no January row keeps its old outcome"
    );
    assert_eq!(f.rows_like("L2-"), feb_before, "another month is untouched");
    assert_eq!(
        f.rows_like("C1-"),
        cumbria_before,
        "the same month of another force is untouched"
    );
    let replaced: i64 =
        f.db.query_row(
            "SELECT replaced FROM ingest_log WHERE sha256 = ?1",
            [sha256_hex(&jan_v2)],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(replaced, 5);
    assert_eq!(f.count("SELECT count(*) FROM batches"), 3);
    assert_eq!(
        f.count("SELECT rows FROM batches WHERE key = 'police|Lancashire Constabulary|636'"),
        3
    );

    // A third issue replaces the second, again as a whole.
    let jan_v3 = police_csv(
        LANCS,
        "2023-01",
        &[("L1-1", "Burglary", "Court result unavailable")],
    );
    let s = f.ingest("2023-01-lancashire-street.csv", &jan_v3);
    assert_eq!((s.stored, s.replaced), (1, 3));
    assert_eq!(f.incidents(), 1 + 3 + 2);
    assert_eq!(f.rows_like("L2-"), feb_before);
    assert_eq!(f.rows_like("C1-"), cumbria_before);
    assert_eq!(f.store.integrity_check().unwrap(), "ok");
}

#[test]
fn police_rows_with_empty_reported_by_fall_back_to_falls_within() {
    let mut f = fresh();
    let v1 = police_csv(
        LANCS,
        "2023-03",
        &[("L3-1", "Burglary", "Under investigation")],
    );
    f.ingest("a.csv", &v1);
    // Same force-month, "Reported by" left empty: replaces by "Falls within".
    let v2 = format!(
        "{POLICE_HEADER}\nL3-1,2023-03,,{LANCS},-2.7,53.76,On or near X,E01025290,Preston 014A,Burglary,Local resolution,\n"
    );
    let s = f.ingest("b.csv", v2.as_bytes());
    assert_eq!((s.stored, s.replaced), (1, 1));
    assert_eq!(
        f.rows_like("L3-"),
        [("L3-1".to_owned(), "Local resolution".to_owned())]
    );
}

// ---------------------------------------------------------------------------------------
// Keyed upserts.

#[test]
fn stats19_rows_upsert_by_collision_index_across_files_and_vintages() {
    let mut f = fresh();
    // Old vintage (accident_*).
    let a = b"accident_index,location_easting_osgr,location_northing_osgr,longitude,latitude,accident_severity,date\n\
        2022040000001,NULL,NULL,-2.700000,53.760000,3,05/01/2022\n\
        2022040000002,NULL,NULL,-2.710000,53.770000,3,06/01/2022\n\
        2022040000003,NULL,NULL,-2.720000,53.780000,3,07/01/2022\n";
    // New vintage (collision_*): index 3 again, now serious and moved; index 4 new.
    let b = b"collision_index,location_easting_osgr,location_northing_osgr,longitude,latitude,collision_severity,date\n\
        2022040000003,-1,-1,-2.725000,53.785000,2,07/01/2022\n\
        2022040000004,-1,-1,-2.730000,53.790000,1,08/01/2022\n";
    assert_eq!(f.ingest("dft-2022-provisional.csv", a).stored, 3);
    let s = f.ingest("dft-2022-final.csv", b);
    assert_eq!((s.stored, s.replaced), (2, 0));
    assert_eq!(f.incidents(), 4, "index 3 is updated, not duplicated");
    assert_eq!(
        f.count(
            "SELECT count(*) FROM incidents WHERE source = 'stats19' AND ext_key = '2022040000003'"
        ),
        1
    );
    let (sev, lon, lat): (i64, i64, i64) = f
        .db
        .query_row(
            "SELECT i.severity, l.lon_e7, l.lat_e7 FROM incidents i JOIN locations l ON l.id = i.loc
             WHERE i.ext_key = '2022040000003'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(sev, 2, "the new severity (Serious)");
    assert_eq!((lon, lat), (-27_250_000, 537_850_000), "the new location");
    assert_eq!(
        f.count("SELECT severity FROM incidents WHERE ext_key = '2022040000001'"),
        3,
        "rows not in the second file are untouched"
    );
    assert_eq!(
        f.count("SELECT severity FROM incidents WHERE ext_key = '2022040000004'"),
        1
    );
}

#[test]
fn generic_csv_with_id_upserts_and_without_id_adds() {
    let mut f = fresh();
    let with_id_v1 = b"id,date,category,longitude,latitude,location\n\
        A-1,2023-01-05,Burglary,-2.700,53.760,Fishergate\n\
        A-2,2023-01-06,Drugs,-2.710,53.770,Friargate\n\
        A-3,2023-01-07,Robbery,-2.720,53.780,Church Street\n";
    let with_id_v2 = b"id,date,category,longitude,latitude,location\n\
        A-2,2023-01-06,Possession of weapons,-2.710,53.770,Friargate\n\
        A-4,2023-01-08,Shoplifting,-2.730,53.790,Market Street\n";
    assert_eq!(f.ingest("force-extract-v1.csv", with_id_v1).stored, 3);
    assert_eq!(f.ingest("force-extract-v2.csv", with_id_v2).stored, 2);
    assert_eq!(f.incidents(), 4, "A-2 is updated in place");
    assert_eq!(
        f.count("SELECT count(*) FROM incidents WHERE source = 'generic' AND ext_key = 'A-2'"),
        1
    );
    assert_eq!(
        f.count("SELECT ctype FROM incidents WHERE ext_key = 'A-2'"),
        6,
        "Possession of weapons"
    );
    assert_eq!(
        f.count("SELECT ctype FROM incidents WHERE ext_key = 'A-1'"),
        2,
        "Burglary, untouched"
    );

    // Without an id the checksum is the only guard: a changed file adds all its rows.
    let no_id_v1 = b"date,category,longitude,latitude\n\
        2023-02-01,Burglary,-2.700,53.760\n\
        2023-02-02,Drugs,-2.710,53.770\n\
        2023-02-03,Robbery,-2.720,53.780\n";
    let no_id_v2 = b"date,category,longitude,latitude\n\
        2023-02-01,Burglary,-2.700,53.760\n\
        2023-02-02,Drugs,-2.710,53.770\n\
        2023-02-03,Robbery,-2.720,53.780\n\
        2023-02-04,Shoplifting,-2.730,53.790\n";
    assert_eq!(f.ingest("council.csv", no_id_v1).stored, 3);
    assert_eq!(f.incidents(), 4 + 3);
    let s = f.ingest("council.csv", no_id_v2);
    assert!(!s.unchanged);
    assert_eq!((s.stored, s.replaced), (4, 0));
    assert_eq!(f.incidents(), 4 + 3 + 4, "unkeyed rows are added again");
    assert_eq!(
        f.count("SELECT count(*) FROM incidents WHERE ext_key IS NULL"),
        7
    );
    assert_eq!(f.store.integrity_check().unwrap(), "ok");
}

// ---------------------------------------------------------------------------------------
// The ingest log.

#[test]
fn ingest_log_has_one_row_per_ingested_file() {
    let mut f = fresh();
    let police = police_csv(
        LANCS,
        "2023-01",
        &[
            ("L1-1", "Burglary", "Under investigation"),
            ("L1-2", "Drugs", "Under investigation"),
        ],
    );
    let mut police_with_bad = police.clone();
    police_with_bad.extend_from_slice(
        format!("L1-9,2023-13,{LANCS},{LANCS},-2.7,53.76,On or near X,E01,P,Burglary,,\n")
            .as_bytes(),
    );
    // One row with no coordinates (police.uk's "No Location" rows).
    let police_unlocated =
        String::from_utf8(police_csv(CUMBRIA, "2023-01", &[("C1-1", "Drugs", "")]))
            .unwrap()
            .replace("-2.700000,53.760000", ",");
    let stats19 = b"collision_index,longitude,latitude,collision_severity,date\n\
        2023040000001,-2.7,53.76,3,05/01/2023\n\
        2023040000002,,,2,06/01/2023\n";
    let files: [(&str, &[u8], &str, [i64; 5]); 3] = [
        // (file, bytes, format, [rows_read, stored, replaced, unlocated, rejected])
        ("lancs.csv", &police_with_bad, "PoliceUk", [3, 2, 0, 0, 1]),
        (
            "cumbria.csv",
            police_unlocated.as_bytes(),
            "PoliceUk",
            [1, 1, 0, 1, 0],
        ),
        ("dft.csv", stats19, "Stats19", [2, 2, 0, 1, 0]),
    ];
    for (name, bytes, _, _) in &files {
        f.ingest(name, bytes);
        assert!(f.ingest(name, bytes).unchanged);
    }
    // A refused file leaves no row.
    assert!(
        f.store
            .ingest_bytes("notes.csv", b"hello,world\n1,2\n", None)
            .is_err()
    );
    assert_eq!(f.count("SELECT count(*) FROM ingest_log"), 3);
    for (name, bytes, format, counts) in &files {
        let row: (String, String, i64, i64, i64, i64, i64) =
            f.db.query_row(
                "SELECT sha256, format, rows_read, stored, replaced, unlocated, rejected
                 FROM ingest_log WHERE file = ?1",
                [name],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                },
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(row.0, sha256_hex(bytes), "{name}: sha256");
        assert_eq!(row.1, *format, "{name}: format");
        assert_eq!(
            [row.2, row.3, row.4, row.5, row.6],
            *counts,
            "{name}: counts"
        );
    }
    assert_eq!(
        f.count(
            "SELECT count(*) FROM ingest_log WHERE started <= finished AND length(sha256) = 64"
        ),
        3
    );
    assert_eq!(f.incidents(), 2 + 1 + 2);
}

// ---------------------------------------------------------------------------------------
// Zip archives.

fn write_zip(path: &Path, entries: &[(&str, &[u8])]) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        zip.start_file(*name, opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn zip_archive_entries_are_discovered_and_ingested() {
    let mut f = fresh();
    let jan = police_csv(
        LANCS,
        "2023-01",
        &[
            ("L1-1", "Burglary", "Under investigation"),
            ("L1-2", "Drugs", "Under investigation"),
            ("", "Anti-social behaviour", ""),
        ],
    );
    let feb = police_csv(
        LANCS,
        "2023-02",
        &[("L2-1", "Shoplifting", "Under investigation")],
    );
    let in_dir = f.dir.path().join("downloads");
    std::fs::create_dir(&in_dir).unwrap();
    let archive = in_dir.join("archive.zip");
    write_zip(
        &archive,
        &[
            ("2023-02/2023-02-lancashire-street.csv", &feb),
            ("2023-01/2023-01-lancashire-street.csv", &jan),
            ("README.txt", b"not data"),
        ],
    );

    let sources = discover(std::slice::from_ref(&archive)).unwrap();
    let entries = [
        "2023-01/2023-01-lancashire-street.csv",
        "2023-02/2023-02-lancashire-street.csv",
    ];
    assert_eq!(
        sources,
        entries.map(|e| Source::ZipEntry {
            archive: archive.clone(),
            entry: e.to_owned(),
        }),
        "csv entries only, sorted"
    );
    for (src, entry) in sources.iter().zip(entries) {
        let name = src.name();
        assert!(
            name.ends_with(&format!("archive.zip!{entry}")),
            "{name}: named archive.zip!entry"
        );
        assert_eq!(name, format!("{}!{entry}", archive.display()));
    }
    assert_eq!(sources[0].read().unwrap(), jan);
    assert_eq!(sources[1].read().unwrap(), feb);
    // Discovering the directory finds the archive's entries too.
    assert_eq!(discover(std::slice::from_ref(&in_dir)).unwrap(), sources);

    let stored: Vec<u64> = sources
        .iter()
        .map(|s| f.store.ingest_source(s, None).unwrap().stored)
        .collect();
    assert_eq!(stored, [3, 1]);
    assert_eq!(f.incidents(), 4);
    let logged: Vec<String> =
        f.db.prepare("SELECT file FROM ingest_log ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    assert_eq!(logged, sources.iter().map(Source::name).collect::<Vec<_>>());

    // Re-running the archive, or the same month as a plain file, changes nothing.
    for s in &sources {
        assert!(f.store.ingest_source(s, None).unwrap().unchanged);
    }
    let plain = f.dir.path().join("2023-01-lancashire-street.csv");
    std::fs::write(&plain, &jan).unwrap();
    assert!(
        f.store
            .ingest_source(&Source::File(plain), None)
            .unwrap()
            .unchanged
    );
    assert_eq!(f.incidents(), 4);
    assert_eq!(f.count("SELECT count(*) FROM ingest_log"), 2);
}

#[test]
fn discover_reports_missing_paths_and_bad_archives() {
    let dir = tempfile::tempdir().unwrap();
    let missing: PathBuf = dir.path().join("nope.zip");
    let err = discover(std::slice::from_ref(&missing)).unwrap_err();
    assert!(err.to_string().contains("nope.zip"), "{err}");
    let bad = dir.path().join("broken.zip");
    std::fs::write(&bad, b"PK\x03\x04 this is not a zip").unwrap();
    let err = discover(std::slice::from_ref(&bad)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("broken.zip") && msg.contains("unreadable zip archive"),
        "{msg}"
    );
}

const OUTCOMES_HEADER: &str = "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,Outcome type";
/// police.uk's CSV spells the last column this way; the data guide says "Removal of more
/// specific clothing". Both are read.
const SEARCH_HEADER: &str = "Type,Date,Part of a policing operation,Policing operation,Latitude,Longitude,Gender,Age range,Self-defined ethnicity,Officer-defined ethnicity,Legislation,Object of search,Outcome,Outcome linked to object of search,Removal of more than just outer clothing";

fn outcomes_csv(month: &str, rows: &[(&str, &str)]) -> Vec<u8> {
    let mut s = format!("{OUTCOMES_HEADER}\n");
    for (id, outcome) in rows {
        s.push_str(&format!(
            "{id},{month},{LANCS},{LANCS},-2.700000,53.760000,On or near Street 0,E01025290,Preston 014A,{outcome}\n"
        ));
    }
    s.into_bytes()
}

/// A police.uk download holds `-outcomes.csv` and `-stop-and-search.csv` files beside the
/// street files: outcomes set the outcome of the crimes they name (the latest month
/// wins), searches are stored as their own dataset, and neither is read as incidents.
#[test]
fn police_uk_archive_with_street_outcomes_and_stop_and_search() {
    let mut f = fresh();
    let jan = police_csv(
        LANCS,
        "2023-01",
        &[
            ("L1-1", "Burglary", "Under investigation"),
            ("L1-2", "Drugs", "Under investigation"),
            ("", "Anti-social behaviour", ""),
        ],
    );
    let feb = police_csv(
        LANCS,
        "2023-02",
        &[("L2-1", "Shoplifting", "Under investigation")],
    );
    let jan_outcomes = outcomes_csv("2023-01", &[("L1-2", "Local resolution")]);
    let feb_outcomes = outcomes_csv(
        "2023-02",
        &[
            ("L1-1", "Unable to prosecute suspect"),
            ("L9-9", "Offender fined"),
        ],
    );
    let searches = format!(
        "{SEARCH_HEADER}\n\
         Person search,2023-01-03T10:15:00+00:00,False,,53.76,-2.70,Male,18-24,White - English/Welsh/Scottish/Northern Irish/British,White,Misuse of Drugs Act 1971 (section 23),Controlled drugs,A no further action disposal,False,False\n\
         Person and Vehicle search,2023-01-04T23:05:00+00:00,False,,,,Female,25-34,,,Police and Criminal Evidence Act 1984 (section 1),Stolen goods,Arrest,True,False\n"
    );
    let archive = f.dir.path().join("police-uk.zip");
    write_zip(
        &archive,
        &[
            ("2023-01/2023-01-lancashire-outcomes.csv", &jan_outcomes),
            (
                "2023-01/2023-01-lancashire-stop-and-search.csv",
                searches.as_bytes(),
            ),
            ("2023-01/2023-01-lancashire-street.csv", &jan),
            ("2023-02/2023-02-lancashire-outcomes.csv", &feb_outcomes),
            ("2023-02/2023-02-lancashire-street.csv", &feb),
        ],
    );
    let sources = discover(std::slice::from_ref(&archive)).unwrap();
    let names: Vec<String> = sources
        .iter()
        .map(|s| s.name().rsplit('/').next().unwrap().to_owned())
        .collect();
    // Outcomes come after every street file, whatever the names sort as.
    assert_eq!(
        names,
        [
            "2023-01-lancashire-stop-and-search.csv",
            "2023-01-lancashire-street.csv",
            "2023-02-lancashire-street.csv",
            "2023-01-lancashire-outcomes.csv",
            "2023-02-lancashire-outcomes.csv",
        ]
    );
    let summaries: Vec<IngestSummary> = sources
        .iter()
        .map(|s| {
            f.store
                .ingest_source(s, None)
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let formats: Vec<&str> = summaries.iter().map(|s| s.format.as_str()).collect();
    assert_eq!(
        formats,
        [
            "PoliceStopSearch",
            "PoliceUk",
            "PoliceUk",
            "PoliceOutcomes",
            "PoliceOutcomes"
        ]
    );
    assert!(
        summaries.iter().all(|s| s.rejected == 0 && s.skipped == 0),
        "{summaries:#?}"
    );
    assert_eq!(summaries[0].searches, 2);
    assert_eq!(summaries[0].stored, 0, "searches are not incidents");
    assert_eq!(summaries[0].unlocated, 1);
    let updated: Vec<(u64, u64, u64)> = summaries[3..]
        .iter()
        .map(|s| (s.outcomes_updated, s.outcomes_older, s.outcomes_unmatched))
        .collect();
    assert_eq!(updated, [(1, 0, 0), (1, 0, 1)]);
    assert_eq!(f.incidents(), 4);
    assert_eq!(
        f.rows_like("L"),
        [
            ("L1-1".to_owned(), "Unable to prosecute suspect".to_owned()),
            ("L1-2".to_owned(), "Local resolution".to_owned()),
            ("L2-1".to_owned(), "Under investigation".to_owned()),
        ]
    );
    // An outcome of an earlier month than the stored one is counted, not applied.
    let late = outcomes_csv("2023-01", &[("L1-1", "Offender given a caution")]);
    let s = f.ingest("2023-01-lancashire-outcomes-reissued.csv", &late);
    assert_eq!(
        (s.outcomes_updated, s.outcomes_older, s.outcomes_unmatched),
        (0, 1, 0)
    );
    assert_eq!(f.rows_like("L1-1")[0].1, "Unable to prosecute suspect");
    // The searches, with their date, time, place, object and outcome.
    // month, day, minute, longitude (1e-7 degree), object, outcome.
    type Search = (i64, Option<i64>, Option<i64>, Option<i64>, String, String);
    let rows: Vec<Search> =
        f.db.prepare(
            "SELECT month, day, minute, lon_e7, object, outcome FROM stop_searches ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let jan_2023 = i64::from(hotspot::model::Month::new(2023, 1).unwrap().index());
    let day3 = i64::from(hotspot::model::days_from_civil(2023, 1, 3));
    assert_eq!(
        rows,
        [
            (
                jan_2023,
                Some(day3),
                Some(615),
                Some(-27_000_000),
                "Controlled drugs".into(),
                "A no further action disposal".into()
            ),
            (
                jan_2023,
                Some(day3 + 1),
                Some(23 * 60 + 5),
                None,
                "Stolen goods".into(),
                "Arrest".into()
            ),
        ]
    );
    // A reissued search file replaces its force-month's searches.
    let reissued = format!(
        "{searches}Vehicle search,2023-01-09T12:00:00+00:00,False,,,,Male,over 34,,,Misuse of Drugs Act 1971 (section 23),Controlled drugs,Arrest,True,False\n"
    );
    let s = f.ingest(
        "2023-01/2023-01-lancashire-stop-and-search.csv",
        reissued.as_bytes(),
    );
    assert_eq!((s.searches, s.replaced), (3, 2));
    assert_eq!(f.count("SELECT count(*) FROM stop_searches"), 3);
    assert_eq!(f.count("SELECT count(*) FROM ingest_log"), 7);
}

/// A stop-and-search or outcomes file given alone is detected by its header, whatever its
/// name, and never read as a generic CSV; one with a damaged header is refused, naming
/// what differs.
#[test]
fn stop_and_search_and_outcomes_files_alone_are_never_generic() {
    use hotspot::ingest::{Format, detect_format};
    let search = format!(
        "{SEARCH_HEADER}\nPerson search,2023-01-03T10:15:00+00:00,False,,53.76,-2.70,Male,18-24,,,x,Controlled drugs,Arrest,False,False\n"
    );
    assert_eq!(
        detect_format("s.csv", search.as_bytes()).unwrap(),
        Format::PoliceStopSearch
    );
    let guide = search.replace(
        "Removal of more than just outer clothing",
        "Removal of more specific clothing",
    );
    assert_eq!(
        detect_format("s.csv", guide.as_bytes()).unwrap(),
        Format::PoliceStopSearch
    );
    let outcomes = outcomes_csv("2023-01", &[("L1-1", "Local resolution")]);
    assert_eq!(
        detect_format("o.csv", &outcomes).unwrap(),
        Format::PoliceOutcomes
    );
    let damaged = search.replace("Object of search", "Object");
    let err =
        detect_format("2023-01-lancashire-stop-and-search.csv", damaged.as_bytes()).unwrap_err();
    assert!(
        err.to_string()
            .contains("looks like a police.uk stop-and-search file")
            && err.to_string().contains("Object of search"),
        "{err}"
    );
    let mut f = fresh();
    let s = f.ingest("searches.csv", search.as_bytes());
    assert_eq!(
        (s.format.as_str(), s.searches, s.stored, s.rejected),
        ("PoliceStopSearch", 1, 0, 0)
    );
    // Outcomes for crimes not in the store are counted as such, and rows without a
    // Crime ID are rejected with the file, line and field.
    let bad = format!(
        "{}\n,2023-01,{LANCS},{LANCS},,,No Location,,,Local resolution\n",
        String::from_utf8(outcomes).unwrap().trim_end()
    );
    let s = f.ingest("o.csv", bad.as_bytes());
    assert_eq!((s.outcomes_unmatched, s.rejected), (1, 1));
    assert_eq!(
        (s.rejects[0].line, s.rejects[0].field.as_str()),
        (3, "Crime ID")
    );
}

/// Outcomes and searches parsed straight into the in-memory analysis store (no store of
/// record) are counted as skipped, with the reason, not dropped silently.
#[test]
fn outcomes_and_searches_without_a_store_are_reported_as_skipped() {
    let outcomes = outcomes_csv(
        "2023-01",
        &[("L1-1", "Local resolution"), ("L1-2", "Local resolution")],
    );
    let mut sink = |_: &hotspot::ingest::Record<'_>| {};
    let stats = hotspot::ingest::parse_bytes("o.csv", &outcomes, None, &mut sink).unwrap();
    assert_eq!((stats.records, stats.skipped), (0, 2));
    assert!(stats.skipped_reason.unwrap().contains("store of record"));
}

/// police.uk's "On or near " with nothing after it is no street.
#[test]
fn blank_on_or_near_is_no_street() {
    let mut f = fresh();
    let csv = format!(
        "{POLICE_HEADER}\n\
         B1,2023-01,{LANCS},{LANCS},-2.700000,53.760000,On or near ,E01025290,Preston 014A,Burglary,,\n\
         B2,2023-01,{LANCS},{LANCS},-2.710000,53.770000,On or near Fishergate,E01025290,Preston 014A,Burglary,,\n"
    );
    f.ingest("2023-01-lancashire-street.csv", csv.as_bytes());
    let street = |id: &str| -> String {
        f.db.query_row(
            "SELECT l.street FROM incidents i JOIN locations l ON l.id = i.loc WHERE i.crime_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(street("B1"), "");
    assert_eq!(street("B2"), "On or near Fishergate");
}

// ---------------------------------------------------------------------------------------
// Dates and STATS19 casualties.

/// STATS19 and generic CSV dates keep their day (days since 1970-01-01) and time
/// (minute of the day) in the store of record; police.uk months have neither.
#[test]
fn day_and_time_are_kept_where_the_source_gives_them() {
    use hotspot::model::days_from_civil;
    let mut f = fresh();
    let stats19 = b"collision_index,longitude,latitude,collision_severity,date,time\n\
        D1,-2.70,53.76,3,4/1/2015,08:15\n\
        D2,-2.71,53.77,2,2015-01-05,\n\
        D3,-2.72,53.78,1,06/01/2015,23:59\n";
    let s = f.ingest("dft.csv", stats19);
    assert_eq!((s.stored, s.rejected), (3, 0));
    let generic = b"id,date,category,longitude,latitude\nG1,2015-01-07 14:30,Burglary,-2.7,53.76\nG2,2015-01,Drugs,-2.7,53.76\n";
    f.ingest("force.csv", generic);
    f.ingest(
        "2015-01-lancashire-street.csv",
        &police_csv(LANCS, "2015-01", &[("P1", "Burglary", "")]),
    );
    let when = |id: &str| -> (Option<i32>, Option<i64>) {
        f.db.query_row(
            "SELECT day, minute FROM incidents WHERE crime_id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    assert_eq!(when("D1"), (Some(days_from_civil(2015, 1, 4)), Some(495)));
    assert_eq!(when("D2"), (Some(days_from_civil(2015, 1, 5)), None));
    assert_eq!(when("D3"), (Some(days_from_civil(2015, 1, 6)), Some(1439)));
    assert_eq!(when("G1"), (Some(days_from_civil(2015, 1, 7)), Some(870)));
    assert_eq!(when("G2"), (None, None));
    assert_eq!(when("P1"), (None, None));
}

const CASUALTY_HEADER: &str = "collision_index,vehicle_reference,casualty_reference,casualty_class,casualty_severity,casualty_type,age_of_casualty,age_band_of_casualty,casualty_adjusted_severity_serious,casualty_adjusted_severity_slight";

/// Casualties join their collisions: each is stored at its collision's location, month
/// and day as an incident of its road-user group, and KSI and adjusted KSI by group come
/// out as counted by hand below.
#[test]
fn stats19_casualties_join_collisions_and_count_ksi_by_road_user() {
    use hotspot::model::{CrimeType, days_from_civil};
    use hotspot::store::CasualtyCounts;
    let mut f = fresh();
    let in_dir = f.dir.path().join("dft");
    std::fs::create_dir(&in_dir).unwrap();
    std::fs::write(
        in_dir.join("dft-road-casualty-statistics-collision-2024.csv"),
        "collision_index,longitude,latitude,collision_severity,date,time\n\
         C1,-2.70,53.76,2,4/1/2024,08:15\n\
         C2,-2.71,53.77,1,05/01/2024,17:40\n\
         C3,,,3,2024-01-06,\n",
    )
    .unwrap();
    // line: 2 pedestrian child serious (adjusted 1); 3 car slight (0.3); 4 cyclist
    // serious (0.9); 5 motorcyclist fatal; 6 car slight, adult by band (0.25);
    // 7 pedestrian serious (1); 8 van (other) slight (0.1), collision unlocated;
    // 9 unknown collision; 10 severity 7.
    std::fs::write(
        in_dir.join("dft-road-casualty-statistics-casualty-2024.csv"),
        format!(
            "{CASUALTY_HEADER}\n\
             C1,1,1,3,2,0,12,3,1,0\n\
             C1,1,2,1,3,9,40,7,0.3,0.7\n\
             C1,2,3,1,2,1,30,6,0.9,0.1\n\
             C2,1,1,1,1,3,25,5,0,0\n\
             C2,1,2,2,3,9,-1,4,0.25,0.75\n\
             C2,2,3,3,2,0,70,10,1,0\n\
             C3,1,1,1,3,19,50,8,0.1,0.9\n\
             C9,1,1,1,2,9,30,6,1,0\n\
             C1,1,4,1,7,9,30,6,0,1\n"
        ),
    )
    .unwrap();
    // The casualty file sorts first by name but is read after the collisions.
    let sources = discover(std::slice::from_ref(&in_dir)).unwrap();
    assert!(
        sources[0].name().ends_with("collision-2024.csv"),
        "{sources:?}"
    );
    let s: Vec<IngestSummary> = sources
        .iter()
        .map(|s| f.store.ingest_source(s, None).unwrap())
        .collect();
    let cas = &s[1];
    assert_eq!(cas.format, "Stats19Casualty");
    assert_eq!(
        (
            cas.rows_read,
            cas.stored,
            cas.casualties,
            cas.unlocated,
            cas.rejected
        ),
        (9, 7, 7, 1, 2)
    );
    let r = &cas.rejects;
    assert!(r[0].file.ends_with("casualty-2024.csv"));
    assert_eq!(
        (r[0].line, r[0].field.as_str(), r[0].value.as_str()),
        (9, "collision_index", "C9")
    );
    assert!(r[0].reason.contains("unknown collision"), "{}", r[0].reason);
    assert_eq!((r[1].line, r[1].field.as_str()), (10, "casualty_severity"));

    let counts = f.store.casualty_counts().unwrap();
    let row = |group, casualties, ksi, adjusted_ksi: f64, children| CasualtyCounts {
        group,
        casualties,
        ksi,
        adjusted_ksi,
        children,
    };
    let want = [
        row(CrimeType::RoadCasualtyPedestrian, 2, 2, 2.0, 1),
        row(CrimeType::RoadCasualtyCyclist, 1, 1, 0.9, 0),
        row(CrimeType::RoadCasualtyMotorcyclist, 1, 1, 1.0, 0),
        row(CrimeType::RoadCasualtyCarOccupant, 2, 0, 0.55, 0),
        row(CrimeType::RoadCasualtyOther, 1, 0, 0.1, 0),
    ];
    assert_eq!(counts.len(), want.len());
    for (g, w) in counts.iter().zip(&want) {
        assert_eq!(
            (g.group, g.casualties, g.ksi, g.children),
            (w.group, w.casualties, w.ksi, w.children)
        );
        assert!((g.adjusted_ksi - w.adjusted_ksi).abs() < 1e-9, "{g:?}");
    }
    assert_eq!(counts.iter().map(|c| c.ksi).sum::<u64>(), 4);
    // As incidents: the casualty severity, at the collision's location and date.
    let pedestrians = f.count(&format!(
        "SELECT count(*) FROM incidents i JOIN incidents c ON c.source = 'stats19' AND c.ext_key = 'C1'
         WHERE i.ctype = {} AND i.severity = 2 AND i.loc = c.loc AND i.month = c.month AND i.day = {} AND i.minute = 495",
        CrimeType::RoadCasualtyPedestrian as u8,
        days_from_civil(2024, 1, 4)
    ));
    assert_eq!(pedestrians, 1);
    assert_eq!(
        f.count("SELECT count(*) FROM incidents WHERE source = 'stats19-casualty'"),
        7
    );
    // Re-ingesting a corrected casualty file updates, never duplicates.
    let fixed = format!("{CASUALTY_HEADER}\nC1,1,2,1,2,9,40,7,1,0\n");
    let again = f.ingest(
        "dft-road-casualty-statistics-casualty-2024-v2.csv",
        fixed.as_bytes(),
    );
    assert_eq!((again.stored, again.rejected), (1, 0));
    assert_eq!(f.count("SELECT count(*) FROM casualties"), 7);
    let car = f
        .store
        .casualty_counts()
        .unwrap()
        .into_iter()
        .find(|c| c.group == CrimeType::RoadCasualtyCarOccupant)
        .unwrap();
    assert_eq!(car.ksi, 1);
    assert!((car.adjusted_ksi - 1.25).abs() < 1e-9, "{car:?}");
}

/// A casualty file read before its collisions rejects every row (naming the index);
/// read again once the collisions are stored, the same bytes are joined, not skipped as
/// unchanged.
#[test]
fn a_casualty_file_read_before_its_collisions_joins_when_read_again() {
    let mut f = fresh();
    let casualties = format!("{CASUALTY_HEADER}\nK1,1,1,3,2,0,12,3,1,0\n");
    let first = f.ingest("cas.csv", casualties.as_bytes());
    assert_eq!((first.stored, first.rejected), (0, 1));
    assert!(first.rejects[0].reason.contains("unknown collision"));
    f.ingest(
        "col.csv",
        b"collision_index,longitude,latitude,collision_severity,date\nK1,-2.7,53.76,2,01/02/2024\n",
    );
    let again = f.ingest("cas.csv", casualties.as_bytes());
    assert!(!again.unchanged);
    assert_eq!((again.stored, again.rejected), (1, 0));
    let third = f.ingest("cas.csv", casualties.as_bytes());
    assert_eq!((third.stored, third.rejected), (1, 0));
    assert_eq!(f.count("SELECT count(*) FROM casualties"), 1);
    assert_eq!(
        f.count("SELECT count(*) FROM incidents WHERE source = 'stats19-casualty'"),
        1
    );
}
