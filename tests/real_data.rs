//! The bundled real police.uk year (Lancashire Constabulary, 2021, `fixtures/police-uk/`)
//! counted as its publisher counts it. The expected values come from reading the zip
//! with the `csv` crate and h3o's `latLngToCell`, independently of the product's own
//! parsers: every LSOA and district count equals the count of the file's own `LSOA code`,
//! every H3 count at resolutions 7-10 equals `latLngToCell` of the row's coordinates, and
//! the out-of-area and unlocated counts equal the file's.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use h3o::{CellIndex, LatLng, Resolution};
use hotspot::analysis::{
    AnalysisStore, Filter, Query, TimeBin, Unit, UnitKey, aggregate::aggregate,
    aggregate::aggregate_exact, from_csv_paths,
};
use hotspot::spatial::Geography;
use hotspot::spatial::geography::Vintage;

fn zip_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/police-uk/lancashire-2021-street.zip")
}

/// One row of the file as the csv crate reads it.
struct Row {
    lsoa: String,
    point: Option<(f64, f64)>,
}

static ROWS: LazyLock<Vec<Row>> = LazyLock::new(|| {
    let file = std::fs::File::open(zip_path()).expect("the bundled zip");
    let mut zip = zip::ZipArchive::new(file).expect("a zip");
    let mut rows = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).expect("entry");
        if !entry.name().ends_with("-street.csv") {
            continue;
        }
        let mut text = String::new();
        entry.read_to_string(&mut text).expect("UTF-8");
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let h = r.headers().expect("header").clone();
        let col = |n: &str| h.iter().position(|x| x == n).expect(n);
        let (lon, lat, lsoa) = (col("Longitude"), col("Latitude"), col("LSOA code"));
        for rec in r.records() {
            let rec = rec.expect("a CSV record");
            let point = match (rec[lon].parse::<f64>(), rec[lat].parse::<f64>()) {
                (Ok(x), Ok(y)) => Some((x, y)),
                _ => None,
            };
            rows.push(Row {
                lsoa: rec[lsoa].trim().to_owned(),
                point,
            });
        }
    }
    rows
});

static GEO: LazyLock<Arc<Geography>> =
    LazyLock::new(|| Arc::new(Geography::bundled().expect("bundled geography")));

static STORE: LazyLock<AnalysisStore> = LazyLock::new(|| {
    let (store, _) = from_csv_paths(&[zip_path()], GEO.clone()).expect("the real year loads");
    store
});

fn counts(unit: Unit) -> HashMap<UnitKey, u64> {
    let q = Query {
        unit,
        time: TimeBin::All,
        by_type: false,
        filter: Filter::default(),
    };
    aggregate(&STORE, &q)
        .counts
        .iter()
        .map(|c| (c.unit, c.count))
        .collect()
}

/// Rows located inside the study area: a coordinate and a code the geography knows.
fn inside() -> impl Iterator<Item = &'static Row> {
    ROWS.iter()
        .filter(|r| r.point.is_some() && GEO.code(&r.lsoa).is_some())
}

#[test]
fn the_bundled_year_is_the_real_one() {
    assert_eq!(ROWS.len(), 217_257);
    assert_eq!(STORE.lsoa_vintage, Vintage::V2011);
}

#[test]
fn unlocated_and_outside_counts_equal_the_files() {
    let unlocated = ROWS.iter().filter(|r| r.point.is_none()).count() as u64;
    let outside = ROWS
        .iter()
        .filter(|r| r.point.is_some() && GEO.code(&r.lsoa).is_none())
        .count() as u64;
    println!(
        "rows {}, unlocated {unlocated}, outside the 14 districts {outside}",
        ROWS.len()
    );
    assert!(outside > 0, "the real year has out-of-area rows");
    assert_eq!(STORE.unlocated, unlocated);
    assert_eq!(STORE.outside(), outside);
    assert_eq!(
        STORE.incidents.len() as u64 + unlocated + outside,
        ROWS.len() as u64
    );
}

#[test]
fn every_lsoa_and_district_count_equals_the_files_own_codes() {
    let mut by_lsoa: HashMap<&str, u64> = HashMap::new();
    let mut by_district: HashMap<String, u64> = HashMap::new();
    for r in inside() {
        *by_lsoa.entry(r.lsoa.as_str()).or_default() += 1;
        let (a, _) = GEO.code(&r.lsoa).expect("known");
        let d = GEO.lsoa_district[usize::from(a)];
        *by_district
            .entry(GEO.districts.codes[usize::from(d)].clone())
            .or_default() += 1;
    }
    let ours = counts(Unit::Lsoa(Vintage::V2011));
    for (i, code) in GEO.lsoas.codes.iter().enumerate() {
        let want = by_lsoa.get(code.as_str()).copied().unwrap_or(0);
        let got = ours.get(&UnitKey::Index(i as u32)).copied().unwrap_or(0);
        assert_eq!(got, want, "LSOA {code}");
    }
    let ours = counts(Unit::District);
    for (i, code) in GEO.districts.codes.iter().enumerate() {
        let want = by_district.get(code).copied().unwrap_or(0);
        let got = ours.get(&UnitKey::Index(i as u32)).copied().unwrap_or(0);
        assert_eq!(got, want, "district {code}");
    }
    // Blackburn with Darwen 006D, which point-in-polygon on BSC shapes got wrong (273/389).
    assert_eq!(by_lsoa.get("E01012650").copied(), ours_lsoa("E01012650"));
}

fn ours_lsoa(code: &str) -> Option<u64> {
    let i = GEO.lsoas.index_of(code)?;
    counts(Unit::Lsoa(Vintage::V2011))
        .get(&UnitKey::Index(i as u32))
        .copied()
}

#[test]
fn lsoa21_counts_follow_the_ons_lookup() {
    // Each 2011 LSOA's rows go to its 2021 LSOA; a split one's rows are shared among its
    // children, so the children's sum equals the parent's count.
    let ours11 = counts(Unit::Lsoa(Vintage::V2011));
    let ours21 = counts(Unit::Lsoa(Vintage::V2021));
    let total21: u64 = ours21.values().sum();
    assert_eq!(total21, STORE.incidents.len() as u64);
    for (a, children) in GEO.to21.iter().enumerate() {
        let parents_of_children: std::collections::BTreeSet<u16> = children
            .iter()
            .flat_map(|&c| GEO.to11[usize::from(c)].iter().copied())
            .collect();
        let sum11: u64 = parents_of_children
            .iter()
            .map(|&p| {
                ours11
                    .get(&UnitKey::Index(u32::from(p)))
                    .copied()
                    .unwrap_or(0)
            })
            .sum();
        let sum21: u64 = children
            .iter()
            .map(|&c| {
                ours21
                    .get(&UnitKey::Index(u32::from(c)))
                    .copied()
                    .unwrap_or(0)
            })
            .sum();
        assert_eq!(sum21, sum11, "2011 LSOA {}", GEO.lsoas.codes[a]);
    }
}

#[test]
fn h3_counts_equal_lat_lng_to_cell_at_every_resolution() {
    for r in 7..=10u8 {
        let res = Resolution::try_from(r).expect("resolution");
        let mut want: HashMap<CellIndex, u64> = HashMap::new();
        for row in inside() {
            let (lon, lat) = row.point.expect("located");
            let cell = LatLng::new(lat, lon).expect("valid").to_cell(res);
            *want.entry(cell).or_default() += 1;
        }
        let got: HashMap<CellIndex, u64> = counts(Unit::H3(res))
            .into_iter()
            .filter_map(|(k, v)| match k {
                UnitKey::Cell(c) => Some((c, v)),
                UnitKey::Index(_) => None,
            })
            .collect();
        let differing = want.iter().filter(|(c, n)| got.get(c) != Some(n)).count()
            + got.keys().filter(|c| !want.contains_key(c)).count();
        assert_eq!(differing, 0, "resolution {r}: {differing} cells differ");
    }
}

/// Through the store of record and the CLI, as a user would: `hotspot ingest` of the
/// download zip, then `hotspot summary`, whose rows for records without a location and
/// outside the study area total what the files hold.
#[test]
fn the_summary_reports_unlocated_and_outside_rows_of_the_real_year() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hotspot"))
            .args(args)
            .env("HOTSPOT_DATA", dir.path())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("hotspot runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["ingest", "fixtures/police-uk/lancashire-2021-street.zip"]);
    let summary = run(&["summary"]);
    let total_of = |label: &str| -> u64 {
        let line = summary
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no '{label}' row in\n{summary}"));
        line.split_whitespace()
            .last()
            .and_then(|v| v.parse().ok())
            .expect("a total")
    };
    let unlocated = ROWS.iter().filter(|r| r.point.is_none()).count() as u64;
    let outside = ROWS
        .iter()
        .filter(|r| r.point.is_some() && GEO.code(&r.lsoa).is_none())
        .count() as u64;
    assert_eq!(total_of("No location"), unlocated, "{summary}");
    assert_eq!(total_of("Outside area"), outside, "{summary}");
    assert_eq!(total_of("Total"), inside().count() as u64, "{summary}");
}

/// The exact path (`hotspot aggregate`) gives the keyed path's counts, marked as not
/// keyed, without computing the record keys of a store just loaded.
#[test]
fn exact_aggregation_counts_as_the_keyed_one_without_the_keys() {
    let (fresh, _) = from_csv_paths(&[zip_path()], GEO.clone()).expect("the real year loads");
    for (i, unit) in [Unit::H3(Resolution::Nine), Unit::District]
        .into_iter()
        .enumerate()
    {
        let q = Query {
            unit,
            time: TimeBin::Month,
            by_type: true,
            filter: Filter::default(),
        };
        let exact = aggregate_exact(&fresh, &q);
        assert!(!exact.keyed);
        if i == 0 {
            assert!(
                fresh.incidents.key.get().is_none(),
                "the exact path computed the record keys"
            );
        }
        assert!(exact.counts.iter().all(|c| c.key_sum == 0));
        let keyed = aggregate(&fresh, &q);
        assert!(keyed.keyed);
        assert!(keyed.counts.iter().any(|c| c.key_sum != 0));
        let strip = |a: &hotspot::analysis::aggregate::Aggregation| -> Vec<_> {
            a.counts
                .iter()
                .map(|c| (c.unit, c.month, c.ctype, c.count))
                .collect()
        };
        assert_eq!(strip(&exact), strip(&keyed));
        assert!(!exact.counts.is_empty());
        // Keys computed by the keyed run stay unused by the exact one.
        assert!(
            aggregate_exact(&fresh, &q)
                .counts
                .iter()
                .all(|c| c.key_sum == 0)
        );
    }
}
