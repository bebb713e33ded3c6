use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use super::*;

/// The bundled LSOAs (the product carries what its generator needs).
fn lsoa_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/boundaries/lsoa11.geojson"
    ))
}

const ROWS: u64 = 120_000;
const MONTHS: u32 = 24;

fn options(out: &Path, seed: u64, zip: bool) -> GenerateOptions {
    GenerateOptions {
        out: out.to_path_buf(),
        lsoa_geojson: Some(lsoa_path()),
        police_rows: ROWS,
        stats19_rows: 3_000,
        months: MONTHS,
        start: Month::new(2022, 1).unwrap(),
        seed,
        zip,
    }
}

/// Every file under `dir` as (relative path, bytes), sorted by path.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The police rows of a directory-mode run, month by month, checking each header.
fn police_records(out: &Path, opts: &GenerateOptions) -> Vec<Vec<csv::StringRecord>> {
    (0..opts.months)
        .map(|i| {
            let m = month_at(opts, i);
            let path = out.join(format!("police/{m}/{m}-lancashire-street.csv"));
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.starts_with(police::HEADER), "{}", path.display());
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
            for r in &rows {
                assert_eq!(r.len(), 12, "{r:?}");
                assert_eq!(&r[1], m.to_string());
            }
            rows
        })
        .collect()
}

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_differs() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let sa = generate(&options(a.path(), 7, false)).unwrap();
    let sb = generate(&options(b.path(), 7, false)).unwrap();
    let sc = generate(&options(c.path(), 8, false)).unwrap();
    let (ta, tb, tc) = (tree(a.path()), tree(b.path()), tree(c.path()));
    assert_eq!(ta.len(), MONTHS as usize + 2);
    assert!(ta == tb, "same seed, different output");
    assert_eq!(
        (sa.police_rows, sa.unlocated_rows),
        (sb.police_rows, sb.unlocated_rows)
    );
    let same_files = ta.iter().zip(&tc).filter(|(x, y)| x.1 == y.1).count();
    assert_eq!(same_files, 0, "another seed should change every file");
    assert_eq!(sc.police_rows, ROWS);
}

#[test]
fn police_rows_look_like_police_uk() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), 1, false);
    let summary = generate(&opts).unwrap();
    assert_eq!(summary.police_rows, ROWS);
    let months = police_records(dir.path(), &opts);
    let rows: Vec<&csv::StringRecord> = months.iter().flatten().collect();
    assert_eq!(rows.len() as u64, ROWS);

    let mut unlocated = 0;
    let mut types: HashMap<String, u64> = HashMap::new();
    let mut coords: HashMap<(String, String), u64> = HashMap::new();
    for r in &rows {
        assert_eq!(
            (&r[2], &r[3]),
            ("Lancashire Constabulary", "Lancashire Constabulary")
        );
        assert_eq!(&r[11], "");
        *types.entry(r[9].to_owned()).or_default() += 1;
        assert!(
            CrimeType::police_uk().iter().any(|t| t.label() == &r[9]),
            "{r:?}"
        );
        if &r[9] == "Anti-social behaviour" {
            assert_eq!((&r[0], &r[10]), ("", ""), "{r:?}");
        } else {
            assert_eq!(r[0].len(), 64, "{r:?}");
            assert!(
                r[0].bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
            assert!(!r[10].is_empty(), "{r:?}");
        }
        if &r[6] == "No Location" {
            unlocated += 1;
            assert!(
                (4..=8).filter(|&i| i != 6).all(|i| r[i].is_empty()),
                "{r:?}"
            );
        } else {
            assert!(r[6].starts_with("On or near "), "{r:?}");
            let lon: f64 = r[4].parse().unwrap();
            let lat: f64 = r[5].parse().unwrap();
            assert!(
                (-3.2..-2.0).contains(&lon) && (53.4..54.3).contains(&lat),
                "{r:?}"
            );
            assert_eq!(r[4].split('.').nth(1).map(str::len), Some(6), "{r:?}");
            assert!(r[7].starts_with("E010") && !r[8].is_empty(), "{r:?}");
            *coords
                .entry((r[4].to_owned(), r[5].to_owned()))
                .or_default() += 1;
        }
    }
    assert_eq!(unlocated, summary.unlocated_rows);
    let share = unlocated as f64 / ROWS as f64;
    assert!((0.006..0.014).contains(&share), "unlocated share {share}");
    // Snap points: far fewer distinct coordinates than rows.
    assert!(
        coords.len() * 3 < rows.len(),
        "{} distinct coordinates",
        coords.len()
    );
    let share_of = |label: &str| types.get(label).copied().unwrap_or(0) as f64 / ROWS as f64;
    assert!((0.28..0.40).contains(&share_of("Violence and sexual offences")));
    assert!((0.17..0.27).contains(&share_of("Anti-social behaviour")));
    assert!(share_of("Robbery") > 0.0 && share_of("Robbery") < 0.02);
    // Seasonality: July busier than January.
    let (jan, jul) = (months[0].len(), months[6].len());
    assert!(jul as f64 > jan as f64 * 1.08, "jan {jan} jul {jul}");
}

/// Incidents per month within a planted hotspot's radius, of its types.
fn hotspot_counts(months: &[Vec<csv::StringRecord>], h: &PlantedHotspot) -> Vec<u64> {
    months
        .iter()
        .map(|rows| {
            rows.iter()
                .filter(|r| {
                    let (Ok(lon), Ok(lat)) = (r[4].parse::<f64>(), r[5].parse::<f64>()) else {
                        return false;
                    };
                    h.types.iter().any(|t| t.label() == &r[9])
                        && distance_m(h.lon, h.lat, lon, lat) <= h.radius_m
                })
                .count() as u64
        })
        .collect()
}

#[test]
fn planted_hotspots_stand_out_and_follow_their_kind() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), 3, false);
    generate(&opts).unwrap();
    let months = police_records(dir.path(), &opts);

    // Persistent: the radius holds far more incidents per snap point than average.
    let blackpool = &planted_hotspots()[0];
    assert_eq!(blackpool.kind, HotspotKind::Persistent);
    let mut per_point: HashMap<(String, String), (u64, bool)> = HashMap::new();
    for r in months.iter().flatten().filter(|r| !r[4].is_empty()) {
        let inside = distance_m(
            blackpool.lon,
            blackpool.lat,
            r[4].parse().unwrap(),
            r[5].parse().unwrap(),
        ) <= blackpool.radius_m;
        per_point
            .entry((r[4].to_owned(), r[5].to_owned()))
            .or_insert((0, inside))
            .0 += 1;
    }
    let mean = |inside: bool| {
        let v: Vec<u64> = per_point
            .values()
            .filter(|p| p.1 == inside)
            .map(|p| p.0)
            .collect();
        v.iter().sum::<u64>() as f64 / v.len().max(1) as f64
    };
    let (inside, outside) = (mean(true), mean(false));
    assert!(
        inside > 5.0 * outside,
        "inside {inside:.1} per point, outside {outside:.1}"
    );
    let c = hotspot_counts(&months, blackpool);
    assert!(
        c.iter()
            .all(|&n| n as f64 > 0.02 * ROWS as f64 / f64::from(MONTHS)),
        "{c:?}"
    );

    let split = |c: &[u64], at: usize| {
        let avg = |s: &[u64]| s.iter().sum::<u64>() as f64 / s.len() as f64;
        (avg(&c[..at]), avg(&c[at..]))
    };
    for h in planted_hotspots() {
        let c = hotspot_counts(&months, h);
        match h.kind {
            HotspotKind::Persistent => {}
            HotspotKind::Emerging => {
                let (before, after) = split(&c, (MONTHS - MONTHS / 3) as usize);
                assert!(after > 4.0 * before.max(1.0), "{}: {c:?}", h.name);
                assert!(
                    c[MONTHS as usize - 1] > c[(MONTHS - MONTHS / 3) as usize],
                    "{}: {c:?}",
                    h.name
                );
            }
            HotspotKind::Fading => {
                let (before, after) = split(&c, (MONTHS / 2) as usize);
                assert!(before > 4.0 * after.max(1.0), "{}: {c:?}", h.name);
            }
        }
    }
}

#[test]
fn stats19_years_use_their_vintage() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(&options(dir.path(), 5, false)).unwrap();
    assert_eq!(summary.stats19_rows, 3_000);
    let mut total = 0;
    let mut missing = 0;
    let mut fatal = 0;
    for (year, kind) in [(2022, "accident"), (2023, "collision")] {
        let path = dir.path().join(format!(
            "stats19/dft-road-casualty-statistics-{kind}-{year}.csv"
        ));
        assert!(summary.files.contains(&path));
        let text = std::fs::read_to_string(&path).unwrap();
        let header = text.lines().next().unwrap();
        assert!(header.starts_with(&format!("{kind}_index,{kind}_year,")));
        let columns: Vec<&str> = header.split(',').collect();
        if year < 2023 {
            assert_eq!(columns.len(), 36);
            assert_eq!(columns[2], "accident_reference");
            assert_eq!(columns[8], "accident_severity");
            assert_eq!(columns[35], "lsoa_of_accident_location");
        } else {
            assert_eq!(columns.len(), 37);
            assert_eq!(columns[2], "collision_ref_no");
            assert_eq!(columns[8], "collision_severity");
            assert_eq!(columns[36], "enhanced_severity_collision");
        }
        for line in text.lines().skip(1) {
            total += 1;
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), columns.len(), "{line}");
            assert!(
                f[0].starts_with(&format!("{year}04")) && f[0].len() == 13,
                "{line}"
            );
            assert_eq!((f[1], f[7]), (year.to_string().as_str(), "4"));
            assert!(
                f[11].ends_with(&format!("/{year}")) && f[11].len() == 10,
                "{line}"
            );
            assert!(f[13].len() == 5 && f[13].as_bytes()[2] == b':', "{line}");
            fatal += u64::from(f[8] == "1");
            match f[3] {
                "" | "-1" | "NULL" => missing += 1,
                e => {
                    let (e, n): (f64, f64) = (e.parse().unwrap(), f[4].parse().unwrap());
                    assert!(
                        (320_000.0..410_000.0).contains(&e) && (400_000.0..480_000.0).contains(&n),
                        "{line}"
                    );
                }
            }
        }
    }
    assert_eq!(total, 3_000);
    assert!((1..60).contains(&missing), "{missing} missing coordinates");
    assert!((10..120).contains(&fatal), "{fatal} fatal");
}

#[test]
fn zip_holds_the_same_months_under_police_uk_names() {
    let (d, z) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut opts = options(d.path(), 11, false);
    opts.police_rows = 5_000;
    generate(&opts).unwrap();
    opts.out = z.path().to_path_buf();
    opts.zip = true;
    let summary = generate(&opts).unwrap();
    let zip_path = z.path().join("police-lancashire.zip");
    assert_eq!(summary.files[0], zip_path);
    assert!(!z.path().join("police").exists());
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    assert_eq!(archive.len(), MONTHS as usize);
    for i in 0..MONTHS {
        let m = month_at(&opts, i);
        let name = format!("{m}/{m}-lancashire-street.csv");
        let mut entry = archive.by_index(i as usize).unwrap();
        assert_eq!(entry.name(), name);
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        assert!(
            bytes == std::fs::read(d.path().join("police").join(&name)).unwrap(),
            "{name}"
        );
    }
    // Same seed, same archive bytes.
    let again = tempfile::tempdir().unwrap();
    opts.out = again.path().to_path_buf();
    generate(&opts).unwrap();
    assert!(
        std::fs::read(&zip_path).unwrap()
            == std::fs::read(again.path().join("police-lancashire.zip")).unwrap()
    );
}

#[test]
fn bad_inputs_are_reported_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), 1, false);
    opts.months = 0;
    assert!(matches!(generate(&opts), Err(GenerateError::Options(_))));
    opts.months = 1;
    opts.lsoa_geojson = Some(dir.path().join("missing.geojson"));
    let err = generate(&opts).unwrap_err();
    assert!(matches!(err, GenerateError::Io { .. }) && err.to_string().contains("missing.geojson"));
    std::fs::write(
        opts.lsoa_geojson.as_ref().unwrap(),
        "{\"type\": \"FeatureCollection\", \"features\": []}",
    )
    .unwrap();
    assert!(matches!(
        generate(&opts),
        Err(GenerateError::Geojson { .. })
    ));
    std::fs::write(opts.lsoa_geojson.as_ref().unwrap(), "not json").unwrap();
    assert!(matches!(
        generate(&opts),
        Err(GenerateError::Geojson { .. })
    ));
}

#[test]
fn snap_points_lie_in_their_lsoa_and_every_hotspot_has_some() {
    use geo::Contains;
    let layout = layout::Layout::build(Some(&lsoa_path()), 9).unwrap();
    assert_eq!(layout.lsoas.len(), 941);
    assert!(
        (24 * 941..=36 * 941).contains(&layout.lsoa_points.iter().map(|r| r.len()).sum::<usize>())
    );
    for (i, range) in layout.lsoa_points.iter().enumerate() {
        for p in &layout.points[range.start as usize..range.end as usize] {
            assert_eq!(p.lsoa as usize, i);
            let inside = layout.lsoas[i]
                .polygon
                .contains(&geo::Point::new(p.lon, p.lat));
            assert!(
                inside,
                "{} {} outside {}",
                p.lon, p.lat, layout.lsoas[i].code
            );
        }
    }
    for (h, spots) in planted_hotspots().iter().zip(&layout.hotspots) {
        assert!(spots.points.len() >= 5, "{}", h.name);
        for &p in &spots.points {
            let p = &layout.points[p as usize];
            assert!(
                distance_m(h.lon, h.lat, p.lon, p.lat) <= h.radius_m + 1e-6,
                "{}",
                h.name
            );
        }
    }
}

#[test]
fn helpers_do_what_they_say() {
    assert_eq!(apportion(10, &[1.0, 1.0, 1.0]), vec![4, 3, 3]);
    assert_eq!(apportion(7, &[0.0, 2.0]), vec![0, 7]);
    assert_eq!(apportion(5, &[]), Vec::<u64>::new());
    let mut s = String::new();
    push_csv_field(&mut s, "plain");
    push_csv_field(&mut s, "a, \"b\"");
    assert_eq!(s, "plain\"a, \"\"b\"\"\"");
    // 2024-01-01 was a Monday, 2023-07-09 a Sunday, 2022-12-31 a Saturday.
    assert_eq!(stats19::day_of_week(2024, 1, 1), 2);
    assert_eq!(stats19::day_of_week(2023, 7, 9), 1);
    assert_eq!(stats19::day_of_week(2022, 12, 31), 7);
    for h in planted_hotspots() {
        let total: f64 = (0..36).map(|i| h.monthly_share(i, 36)).sum();
        assert!(total > 0.0, "{}", h.name);
    }
}

/// Timing and inspection run: `HOTSPOT_GEN_OUT=/tmp/x HOTSPOT_GEN_ROWS=1000000 cargo test
/// --release --lib generate::tests::timing -- --ignored --nocapture`.
#[test]
#[ignore = "writes a large fixture; run by hand"]
fn timing() {
    let out = PathBuf::from(std::env::var("HOTSPOT_GEN_OUT").unwrap_or("/tmp/hotspot-gen".into()));
    let rows = std::env::var("HOTSPOT_GEN_ROWS").map_or(1_000_000, |r| r.parse().unwrap());
    for zip in [false, true] {
        let mut opts = options(&out, 42, zip);
        (opts.police_rows, opts.stats19_rows, opts.months) = (rows, rows / 100, 36);
        opts.start = Month::new(2021, 1).unwrap();
        let t = std::time::Instant::now();
        let s = generate(&opts).unwrap();
        println!(
            "zip={zip}: {} police + {} stats19 rows in {:.2?}",
            s.police_rows,
            s.stats19_rows,
            t.elapsed()
        );
    }
}
