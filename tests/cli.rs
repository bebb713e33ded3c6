//! The command line end to end on the committed fixtures: ingest, summary, aggregate
//! (including a user boundary file), and one-line errors with a non-zero exit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::LazyLock;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn hotspot(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotspot"))
        .args(args)
        .env("HOTSPOT_DATA", data)
        .current_dir(root())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// One store of the sample fixtures shared by the tests (ingested once).
static SAMPLE: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let out = hotspot(dir.path(), &["ingest", "fixtures/sample"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
});

fn counts_by_code(csv: &str) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_owned(), f[f.len() - 1].parse().unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn ingesting_the_sample_stores_every_row_and_a_second_run_nothing() {
    let data = SAMPLE.path();
    let again = hotspot(data, &["ingest", "fixtures/sample"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let t = text(&again);
    assert!(t.contains("0 rows read, 0 stored"), "{t}");
    let conn = rusqlite::Connection::open(data.join("hotspot.sqlite")).unwrap();
    let q = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(q("SELECT count(*) FROM incidents"), 63_000);
    assert_eq!(q("SELECT count(*) FROM incidents WHERE ctype = 14"), 3_000);
    assert_eq!(
        q("SELECT count(DISTINCT severity) FROM incidents WHERE ctype = 14"),
        3
    );
    assert_eq!(q("SELECT count(*) FROM ingest_log WHERE rejected > 0"), 0);
    assert_eq!(q("SELECT count(*) FROM ingest_log"), 39);
}

#[test]
fn a_user_boundary_file_of_the_districts_agrees_with_the_built_in_districts() {
    let data = SAMPLE.path();
    let builtin = hotspot(data, &["aggregate", "--unit", "district", "--by", "all"]);
    let user = hotspot(
        data,
        &[
            "aggregate",
            "--unit",
            "boundary",
            "--boundary",
            "boundaries/districts.geojson",
            "--by",
            "all",
        ],
    );
    assert!(builtin.status.success() && user.status.success());
    let (b, u) = (
        counts_by_code(&text(&builtin)),
        counts_by_code(&text(&user)),
    );
    assert_eq!(b.len(), 14);
    // Built-in districts follow each record's own LSOA code; a user's boundary file is
    // point-in-polygon on its own shapes. On the same district shapes the two agree but
    // for points within metres of a district edge (under 0.5%).
    assert_eq!(u.len(), 14);
    for ((bc, bn), (uc, un)) in b.iter().zip(&u) {
        assert_eq!(bc, uc);
        assert!(
            bn.abs_diff(*un) * 200 <= *bn,
            "{bc}: {bn} built-in, {un} user file"
        );
    }
}

#[test]
fn summary_total_equals_the_located_incidents_and_filters_narrow_it() {
    let data = SAMPLE.path();
    let all = text(&hotspot(data, &["summary"]));
    assert!(
        all.contains("Blackburn with Darwen") && all.contains("Wyre"),
        "{all}"
    );
    let total_line = all.lines().find(|l| l.starts_with("Total")).unwrap();
    let total: u64 = total_line
        .split_whitespace()
        .last()
        .unwrap()
        .parse()
        .unwrap();
    let conn = rusqlite::Connection::open(data.join("hotspot.sqlite")).unwrap();
    let located: i64 = conn
        .query_row(
            "SELECT count(*) FROM incidents WHERE loc IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(total, located as u64);

    let agg = hotspot(
        data,
        &[
            "aggregate",
            "--unit",
            "h3:8",
            "--types",
            "burglary",
            "--from",
            "2023-01",
            "--to",
            "2023-03",
            "--district",
            "Preston",
        ],
    );
    let rows = text(&agg);
    let months: std::collections::BTreeSet<&str> = rows
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap())
        .collect();
    assert!(
        !months.is_empty() && months.iter().all(|m| ("2023-01"..="2023-03").contains(m)),
        "{months:?}"
    );
    let n: u64 = counts_by_code(&rows).iter().map(|c| c.1).sum();
    let want: i64 = conn
        .query_row(
            "SELECT count(*) FROM incidents WHERE ctype = 2 AND month BETWEEN (2023-1970)*12 AND (2023-1970)*12+2 AND loc IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        n > 0 && n < want as u64,
        "Preston's burglaries ({n}) are some of Lancashire's ({want})"
    );
}

#[test]
fn severity_narrows_road_collisions_to_the_store_counts() {
    let data = SAMPLE.path();
    let conn = rusqlite::Connection::open(data.join("hotspot.sqlite")).unwrap();
    let n = |sql: &str| -> u64 { conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64 };
    let total = |args: &[&str]| -> u64 {
        let mut a = vec!["aggregate", "--unit", "district", "--by", "all"];
        a.extend_from_slice(args);
        let out = hotspot(data, &a);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        counts_by_code(&text(&out)).iter().map(|c| c.1).sum()
    };
    let ksi = total(&["--types", "road-collision", "--severity", "fatal,serious"]);
    assert_eq!(
        ksi,
        n(
            "SELECT count(*) FROM incidents WHERE ctype = 14 AND severity IN (1, 2) AND loc IS NOT NULL"
        )
    );
    assert!(ksi > 0);
    // Other types are not narrowed.
    assert_eq!(
        total(&["--types", "drugs", "--severity", "fatal"]),
        total(&["--types", "drugs"])
    );
    let bad = hotspot(
        data,
        &["aggregate", "--unit", "district", "--severity", "awful"],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("severity"));
}

#[test]
fn geojson_output_is_rfc7946() {
    let out = hotspot(
        SAMPLE.path(),
        &[
            "aggregate",
            "--unit",
            "lsoa",
            "--by",
            "all",
            "--format",
            "geojson",
            "--types",
            "drugs",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let features = v["features"].as_array().unwrap();
    assert!(!features.is_empty());
    assert!(v.get("crs").is_none());
    for f in features {
        assert!(f["properties"]["unit"].as_str().unwrap().starts_with("E01"));
        assert!(f["properties"]["count"].as_u64().unwrap() > 0);
        let t = f["geometry"]["type"].as_str().unwrap();
        assert!(t == "Polygon" || t == "MultiPolygon");
    }
}

#[test]
fn failures_exit_non_zero_with_one_line() {
    let empty = tempfile::tempdir().unwrap();
    let cases: [&[&str]; 6] = [
        &["summary"],
        &["aggregate", "--unit", "h3:12"],
        &["aggregate", "--unit", "district", "--district", "Atlantis"],
        &["ingest", "no/such/file.csv"],
        &["aggregate", "--unit", "boundary"],
        &["ingest", "tests/bad_input/police_wrong_header.csv"],
    ];
    let data = SAMPLE.path();
    for (i, args) in cases.iter().enumerate() {
        let dir = if i == 0 { empty.path() } else { data };
        let out = hotspot(dir, args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("hotspot: error:"))
            .collect();
        // One prefix for every error line (a file's own error, then the command's).
        assert!(!lines.is_empty(), "{args:?}: {err}");
        assert!(
            err.lines().all(|l| !l.starts_with("error")),
            "{args:?}: {err}"
        );
        // The OS's words once, not once per layer of context.
        for l in &lines {
            assert!(l.matches("(os error").count() <= 1, "{args:?}: {l}");
        }
    }
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["ingest", "aggregate", "summary", "generate", "boundaries"] {
        let out = hotspot(Path::new("unused"), &[sub, "--help"]);
        assert!(out.status.success(), "{sub}");
        assert!(text(&out).contains("Usage:"), "{sub}");
    }
}

/// The committed STATS19 years (2022 `accident_*`, 2023 `collision_*`, 2024 in the
/// 44-column layout) and the generated 2024 casualty file: every collision with
/// coordinates stored with its day and time, every casualty joined, and the summary says
/// how many casualties were stored. KSI counts are those of the CSV itself (265 of 1,348
/// casualties; pedestrians 27 of 181), counted independently of the engine.
#[test]
fn stats19_years_and_casualties_ingest_with_a_casualty_summary() {
    let dir = tempfile::tempdir().unwrap();
    let header = std::fs::read_to_string(
        root().join("fixtures/sample/stats19/dft-road-casualty-statistics-collision-2024.csv"),
    )
    .unwrap();
    let header: Vec<&str> = header.lines().next().unwrap().split(',').collect();
    assert_eq!(header.len(), 44);
    for c in [
        "junction_detail_historic",
        "local_authority_highway_current",
        "collision_injury_based",
        "collision_adjusted_severity_serious",
        "collision_adjusted_severity_slight",
    ] {
        assert!(header.contains(&c), "{c}");
    }
    let out = hotspot(
        dir.path(),
        &[
            "ingest",
            "fixtures/stats19-casualties",
            "fixtures/sample/stats19",
        ],
    );
    let t = text(&out);
    assert!(
        out.status.success(),
        "{t}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(t.contains("4 files (0 unchanged, skipped)"), "{t}");
    assert!(t.contains(" 0 rejected"), "{t}");
    // The expected counts come from the casualty CSV itself (the csv crate).
    let mut rdr = csv::Reader::from_path(
        "fixtures/stats19-casualties/dft-road-casualty-statistics-casualty-2024.csv",
    )
    .unwrap();
    let h = rdr.headers().unwrap().clone();
    let col = |n: &str| h.iter().position(|x| x == n).unwrap();
    let (sev, kind) = (col("casualty_severity"), col("casualty_type"));
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    let all = rows.len() as i64;
    let ksi = rows.iter().filter(|r| matches!(&r[sev], "1" | "2")).count() as i64;
    let ped = rows.iter().filter(|r| &r[kind] == "0").count() as i64;
    let ped_ksi = rows
        .iter()
        .filter(|r| &r[kind] == "0" && matches!(&r[sev], "1" | "2"))
        .count() as i64;
    assert!(
        all > 1000 && ksi > 100 && ped_ksi > 5,
        "{all} {ksi} {ped_ksi}"
    );
    assert!(
        t.contains(&format!(
            "casualties: 1 files, {all} casualties stored at their collisions"
        )),
        "{t}"
    );
    let conn = rusqlite::Connection::open(dir.path().join("hotspot.sqlite")).unwrap();
    let q = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(q("SELECT count(*) FROM incidents WHERE ctype = 14"), 3_000);
    assert_eq!(
        q("SELECT count(*) FROM incidents WHERE ctype = 14 AND (day IS NULL OR minute IS NULL)"),
        0
    );
    assert_eq!(q("SELECT count(*) FROM casualties"), all);
    assert_eq!(
        q("SELECT count(*) FROM casualties WHERE casualty_severity IN (1, 2)"),
        ksi
    );
    assert_eq!(
        q("SELECT count(*) FROM casualties WHERE road_user = 18 AND casualty_severity IN (1, 2)"),
        ped_ksi
    );
    assert_eq!(
        q("SELECT count(*) FROM casualties WHERE road_user = 18"),
        ped
    );
}

/// A stop-and-search file given alone is its own dataset, said so in the summary: not a
/// generic CSV with every row rejected.
#[test]
fn a_stop_and_search_file_alone_is_stored_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("2023-01-lancashire-stop-and-search.csv");
    std::fs::write(
        &file,
        "Type,Date,Part of a policing operation,Policing operation,Latitude,Longitude,Gender,Age range,Self-defined ethnicity,Officer-defined ethnicity,Legislation,Object of search,Outcome,Outcome linked to object of search,Removal of more than just outer clothing\n\
         Person search,2023-01-03T10:15:00+00:00,False,,53.76,-2.70,Male,18-24,,,Misuse of Drugs Act 1971 (section 23),Controlled drugs,Arrest,True,False\n",
    )
    .unwrap();
    let out = hotspot(dir.path(), &["ingest", file.to_str().unwrap()]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("0 rejected"), "{t}");
    assert!(
        t.contains("stop and search: 1 files, 1 searches stored"),
        "{t}"
    );
}

/// `analyse --unit lsoa21` studies the 945 LSOAs of 2021 (not the 941 of 2011), each
/// counted as `aggregate --unit lsoa21` counts it; `lsoa` is the data's own vintage.
#[test]
fn analyse_on_lsoa_2021_counts_as_aggregate_does() {
    let data = SAMPLE.path();
    let rows = |args: &[&str]| -> Vec<(String, u64)> {
        let out = hotspot(data, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut v: Vec<(String, u64)> = text(&out)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].to_owned(), f[1].parse().expect("count"))
            })
            .collect();
        v.sort();
        v
    };
    let study = rows(&["analyse", "--unit", "lsoa21", "--method", "gistar"]);
    assert_eq!(study.len(), 945, "LSOA 2021 units");
    let agg: std::collections::HashMap<String, u64> = counts_by_code(&text(&hotspot(
        data,
        &["aggregate", "--unit", "lsoa21", "--by", "all"],
    )))
    .into_iter()
    .collect();
    for (code, n) in &study {
        assert_eq!(agg.get(code).copied().unwrap_or(0), *n, "{code}");
    }
    assert!(study.iter().map(|r| r.1).sum::<u64>() > 0);
    // `lsoa` is the vintage of the data's own codes (police.uk 2011 codes here).
    let own = rows(&["analyse", "--unit", "lsoa", "--method", "gistar"]);
    assert_eq!(own.len(), 941);
}

/// `backtest --plot` writes the PAI curves as an SVG that an XML parser reads: one line
/// per method with a point per coverage, and random's dashed line; the table has the curve.
#[test]
fn backtest_plots_the_pai_curves() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("pai.svg");
    let svg_s = svg.to_string_lossy().into_owned();
    let out = hotspot(
        SAMPLE.path(),
        &[
            "backtest", "--unit", "h3:8", "--train", "12", "--plot", &svg_s,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = text(&out);
    assert!(table.contains("PAI curve"), "{table}");
    assert!(table.contains("0.5%") && table.contains("10.0%"), "{table}");
    assert!(table.contains("\netas "), "{table}");
    assert!(table.contains("ETAS fit per fold: theta"), "{table}");
    let check = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E\n\
             r = E.parse(sys.argv[1]).getroot()\n\
             ns = '{http://www.w3.org/2000/svg}'\n\
             lines = [p for p in r.iter(ns + 'polyline') if p.get('class') == 'method']\n\
             print(len(lines), sorted({len(p.get('points').split()) for p in lines}), \
             sum(1 for l in r.iter(ns + 'line') if l.get('class') == 'random'))",
            &svg_s,
        ])
        .output()
        .expect("python3 runs");
    let got = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // Seven methods besides random, 11 coverages each, one random line.
    assert_eq!(got.trim(), "7 [11] 1");
}
