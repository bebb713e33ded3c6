//! The patrol list and the backtest on the committed fixtures, through the library and
//! the binary: the planted persistent hotspots lead the list, the shares and scores stay
//! in range, and the methods beat chance on data with strong persistent hotspots.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, LazyLock};

use h3o::{CellIndex, LatLng, Resolution};
use hotspot::analysis::{AnalysisStore, Filter};
use hotspot::generate::{HotspotKind, planted_hotspots};
use hotspot::spatial::Geography;
use hotspot::stats::backtest::{self, Backtest, BacktestOptions, Method};
use hotspot::stats::patrol::{self, PatrolList, PatrolOptions, UnitIncidents};
use hotspot::stats::study::{Study, Units};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

static STORE: LazyLock<Arc<AnalysisStore>> = LazyLock::new(|| {
    let g = Arc::new(Geography::bundled().expect("bundled geography"));
    let (store, _) = hotspot::analysis::from_csv_paths(&[root().join("fixtures/sample")], g)
        .expect("the sample fixtures load");
    Arc::new(store)
});

const R8: Resolution = Resolution::Eight;

static TOP10: LazyLock<PatrolList> = LazyLock::new(|| {
    let opts = PatrolOptions {
        top: 10,
        k: 1,
        fdr: true,
        method: None,
    };
    patrol::patrol(STORE.clone(), Units::H3(R8), &Filter::default(), opts).expect("patrol")
});

fn persistent_cells() -> Vec<CellIndex> {
    planted_hotspots()
        .iter()
        .filter(|h| h.kind == HotspotKind::Persistent)
        .map(|h| LatLng::new(h.lat, h.lon).expect("valid").to_cell(R8))
        .collect()
}

#[test]
fn the_planted_persistent_hotspots_lead_the_patrol_list() {
    let list = &*TOP10;
    assert_eq!(list.places.len(), 10);
    let cells: Vec<CellIndex> = list
        .places
        .iter()
        .map(|p| list.study.cells[p.unit])
        .collect();
    let persistent = persistent_cells();
    assert_eq!(persistent.len(), 2);
    for c in &persistent {
        assert!(cells.contains(c), "{c} not in {cells:?}");
    }
    // Every place is a significant hot spot here, ranked by z.
    assert!(list.places.iter().all(|p| p.count > 0.0));
    // The backtest chose the method, and it is the one with the best mean PEI.
    let b = list
        .choice
        .backtest
        .as_ref()
        .expect("a backtest chose the method");
    let pei = |m: Method| {
        b.summary
            .iter()
            .find(|s| s.method == m)
            .expect("scored")
            .pei
            .mean
    };
    let best = pei(list.choice.method);
    for m in Method::RANKING {
        assert!(
            pei(m).is_nan() || pei(m) <= best,
            "{m:?} beat {:?}",
            list.choice.method
        );
    }
    let ranks: Vec<usize> = list.places.iter().map(|p| p.rank).collect();
    assert_eq!(ranks, (1..=10).collect::<Vec<_>>());
}

#[test]
fn captured_shares_rise_and_pai_matches_them() {
    let list = &*TOP10;
    let s = &list.study;
    let (total_n, total_a) = (s.counts.iter().sum::<f64>(), s.area_km2.iter().sum::<f64>());
    let (mut n, mut a) = (0.0, 0.0);
    let mut last = 0.0;
    for p in &list.places {
        n += p.count;
        a += p.area_km2;
        assert!(p.share > last && p.share <= 1.0, "{} after {last}", p.share);
        last = p.share;
        assert!((p.share - n / total_n).abs() < 1e-12);
        let pai = p.pai.expect("defined");
        assert!((pai - (n / total_n) / (a / total_a)).abs() < 1e-9);
        assert!(pai > 1.0, "the top places beat chance");
    }
}

/// Incidents per police.uk location text in `cell` (all types, all months).
fn streets_in(cell: CellIndex) -> HashMap<String, u32> {
    let l = &STORE.locations;
    let mut out = HashMap::new();
    for &loc in &STORE.incidents.loc {
        let i = loc as usize;
        if l.cell(i, R8) == Some(cell) && !l.street[i].is_empty() {
            *out.entry(l.street[i].to_string()).or_default() += 1;
        }
    }
    out
}

#[test]
fn each_place_names_the_commonest_street_of_its_own_cell() {
    let list = &*TOP10;
    let g = &STORE.geography;
    for p in &list.places {
        let streets = streets_in(list.study.cells[p.unit]);
        let most = streets.values().copied().max().unwrap_or(0);
        assert!(p.location.starts_with("On or near "), "{}", p.location);
        assert_eq!(streets.get(&p.location), Some(&most), "{}", p.location);
        assert!(g.lsoas.names.contains(&p.lsoa_name), "{}", p.lsoa_name);
        assert!(g.districts.names.contains(&p.district), "{}", p.district);
        assert!(p.trend.is_some());
    }
    let blackpool = list.places.iter().find(|p| p.district == "Blackpool");
    assert!(
        blackpool.is_some(),
        "the Blackpool planted hotspot is listed"
    );
}

#[test]
fn unit_incidents_agree_with_the_study_counts() {
    let f = Filter {
        from: Some("2023-03".parse().expect("month")),
        districts: Some(vec![
            STORE.geography.district_index("Preston").expect("Preston"),
        ]),
        ..Filter::default()
    };
    let study = Study::new(STORE.clone(), Units::H3(Resolution::Nine), &f);
    let inc = UnitIncidents::new(&study, &f);
    let hotspot::stats::study::Monthly { months, values, .. } = study.monthly(&f);
    assert_eq!(inc.months, months);
    assert_eq!(inc.monthly(), values);
    assert_eq!(inc.unit_counts(0..months.len()), study.counts);
    let lsoa = Study::new(
        STORE.clone(),
        Units::Lsoa(hotspot::spatial::geography::Vintage::V2011),
        &f,
    );
    let inc = UnitIncidents::new(&lsoa, &f);
    assert_eq!(inc.unit_counts(0..inc.months.len()), lsoa.counts);
    assert!(lsoa.counts.iter().sum::<f64>() > 1000.0);
}

/// The backtest's filter: 18 months, 2023-07 to 2024-12.
fn backtest_filter() -> Filter {
    Filter {
        from: Some("2023-07".parse().expect("month")),
        ..Filter::default()
    }
}

/// The backtest at h3:8, with harm weights when given: 6 folds of 12 training months and
/// 1 test.
fn run_backtest(
    harm: Option<&hotspot::stats::harm::HarmWeights>,
) -> Result<Backtest, backtest::BacktestError> {
    let opts = BacktestOptions {
        coverage: 0.02,
        train: 12,
        test: 1,
        k: 1,
    };
    backtest::backtest_weighted(STORE.clone(), Units::H3(R8), &backtest_filter(), opts, harm)
}

static BACKTEST: LazyLock<Backtest> = LazyLock::new(|| run_backtest(None).expect("backtest"));

/// Harm weights for every category of the sample: `scale` times each category's code
/// plus one when `varied`, else `scale` alike.
fn harm_file(scale: f64, varied: bool) -> hotspot::stats::harm::HarmWeights {
    use hotspot::model::CrimeType;
    let mut text = String::from("category,weight,source\n");
    for t in CrimeType::ALL {
        let w = if varied {
            scale * (*t as u8 as f64 + 1.0)
        } else {
            scale
        };
        text.push_str(&format!("{},{w},test\n", t.label()));
    }
    hotspot::stats::harm::HarmWeights::parse("weights.csv", &text).expect("weights")
}

/// Harm: the weighted test window is the brute-force sum of the weights of its
/// incidents; the same weight for every category scores as the counts do (every method
/// is scale-free but KDE, whose default radius, as ArcGIS's with a population field,
/// takes the weights' sum as its n); a category the file misses is refused by name.
#[test]
fn harm_weights_are_what_the_backtest_ranks_and_scores() {
    let f = backtest_filter();
    let varied = harm_file(1.0, true);
    let b = run_backtest(Some(&varied)).expect("harm backtest");
    let study = Study::new(STORE.clone(), Units::H3(R8), &f);
    let loc_unit = patrol::location_units(&study, &f);
    let inc = &STORE.incidents;
    for fold in &b.folds {
        let (lo, hi) = (fold.test.0.index(), fold.test.1.index());
        let want: f64 = (0..inc.len())
            .filter(|&i| {
                (lo..=hi).contains(&inc.month[i])
                    && f.keeps(inc.ctype[i], inc.severity[i])
                    && loc_unit[inc.loc[i] as usize] != patrol::NO_UNIT
            })
            .map(|i| f64::from(inc.ctype[i]) + 1.0)
            .sum();
        assert!(
            (fold.test_incidents - want).abs() < 1e-6 * want,
            "{} vs {want}",
            fold.test_incidents
        );
    }
    assert_ne!(b.folds[0].test_incidents, BACKTEST.folds[0].test_incidents);
    let same = run_backtest(Some(&harm_file(2.5, false))).expect("scaled backtest");
    for (s, c) in same.summary.iter().zip(&BACKTEST.summary) {
        assert_eq!(s.method, c.method);
        if s.method == Method::Kde {
            continue;
        }
        for (x, y, what) in [
            (s.hit_rate.mean, c.hit_rate.mean, "hit rate"),
            (s.pai.mean, c.pai.mean, "PAI"),
            (s.pei.mean, c.pei.mean, "PEI"),
        ] {
            assert!((x - y).abs() < 1e-9, "{:?} {what}: {x} vs {y}", s.method);
        }
    }
    let partial =
        hotspot::stats::harm::HarmWeights::parse("few.csv", "category,weight\nBurglary,40\n")
            .expect("weights");
    let err = run_backtest(Some(&partial))
        .expect_err("refused")
        .to_string();
    assert!(
        err.starts_with("few.csv: no weight for Anti-social behaviour"),
        "{err}"
    );
    assert!(!err.contains("Burglary"), "{err}");
}

/// The harm of every study unit under `f` by brute force over the store's incidents:
/// each incident in the filter's months and types adds its category's weight in `harm`.
fn brute_harm(study: &Study, f: &Filter, weight: impl Fn(u8) -> f64) -> Vec<f64> {
    let loc_unit = patrol::location_units(study, f);
    let inc = &STORE.incidents;
    let lo = f.from.map_or(0, |m| m.index());
    let hi = f.to.map_or(u16::MAX, |m| m.index());
    let mut out = vec![0.0; study.len()];
    for i in 0..inc.len() {
        let u = loc_unit[inc.loc[i] as usize];
        if u != patrol::NO_UNIT
            && (lo..=hi).contains(&inc.month[i])
            && f.keeps(inc.ctype[i], inc.severity[i])
        {
            out[u as usize] += weight(inc.ctype[i]);
        }
    }
    out
}

/// The patrol list by harm. One weight for every category gives the count list (order,
/// shares, z), each harm the weight times the count. Varied weights: each place's harm
/// is the brute-force sum of its incidents' weights, the count ranking orders by harm
/// (ties by last month's harm), shares are of harm, and the order is not the counts';
/// the method is chosen by a backtest of harm (its folds' test harm by brute force), not
/// the cached backtest of counts; a category the file misses is refused by name.
#[test]
fn patrol_by_harm_ranks_and_shares_harm() {
    let f = backtest_filter();
    let run = |harm: Option<&hotspot::stats::harm::HarmWeights>, method| {
        let opts = PatrolOptions {
            top: 15,
            k: 1,
            fdr: true,
            method,
        };
        patrol::patrol_weighted(STORE.clone(), Units::H3(R8), &f, opts, harm)
    };
    let flat = harm_file(2.5, false);
    for method in [
        Method::Naive,
        Method::Gistar,
        Method::Recent,
        Method::NaiveLast,
    ] {
        let counts = run(None, Some(method)).expect("patrol");
        let same = run(Some(&flat), Some(method)).expect("flat harm");
        assert_eq!(counts.harm, None);
        let codes = |l: &PatrolList| l.places.iter().map(|p| p.code.clone()).collect::<Vec<_>>();
        assert_eq!(codes(&counts), codes(&same), "{method:?}");
        for (c, s) in counts.places.iter().zip(&same.places) {
            assert_eq!(c.harm, None);
            assert_eq!(s.harm, Some(2.5 * c.count));
            assert!((c.share - s.share).abs() < 1e-12 && (c.z - s.z).abs() < 1e-9);
            assert_eq!(c.location, s.location);
        }
    }
    let varied = harm_file(1.0, true);
    let list = run(Some(&varied), Some(Method::Naive)).expect("varied harm");
    let want = brute_harm(&list.study, &f, |t| f64::from(t) + 1.0);
    let total: f64 = want.iter().sum();
    assert!((list.harm.expect("harm") - total).abs() < 1e-6 * total);
    let mut captured = 0.0;
    for p in &list.places {
        let h = p.harm.expect("harm");
        assert!(
            (h - want[p.unit]).abs() < 1e-9 * want[p.unit],
            "{} vs {}",
            h,
            want[p.unit]
        );
        assert_eq!(p.count, list.study.counts[p.unit]);
        captured += h;
        assert!((p.share - captured / total).abs() < 1e-9);
    }
    for w in list.places.windows(2) {
        let (a, b) = (w[0].harm.expect("harm"), w[1].harm.expect("harm"));
        assert!(
            a > b || (a == b && w[0].recent >= w[1].recent),
            "{a} before {b}"
        );
    }
    let by_count = run(None, Some(Method::Naive)).expect("patrol");
    let order = |l: &PatrolList| l.places.iter().map(|p| p.unit).collect::<Vec<_>>();
    assert_ne!(
        order(&list),
        order(&by_count),
        "the weights changed nothing"
    );

    // The auto choice: count first (so a cache keyed without the weights would hand the
    // harm list the counts' backtest), then harm.
    let counted = run(None, None).expect("auto");
    let weighed = run(Some(&varied), None).expect("auto harm");
    let (cb, wb) = (
        counted.choice.backtest.as_ref().expect("backtest"),
        weighed.choice.backtest.as_ref().expect("harm backtest"),
    );
    assert_eq!(cb.folds.len(), wb.folds.len());
    let all = Filter::default();
    let study = Study::new(STORE.clone(), Units::H3(R8), &all);
    for fold in &wb.folds {
        let month = Filter {
            from: Some(fold.test.0),
            to: Some(fold.test.1),
            ..Filter::default()
        };
        let want: f64 = brute_harm(&study, &month, |t| f64::from(t) + 1.0)
            .iter()
            .sum();
        assert!(
            (fold.test_incidents - want).abs() < 1e-6 * want,
            "{} vs {want}",
            fold.test_incidents
        );
    }
    assert_ne!(cb.folds[0].test_incidents, wb.folds[0].test_incidents);

    let partial =
        hotspot::stats::harm::HarmWeights::parse("few.csv", "category,weight\nBurglary,40\n")
            .expect("weights");
    let err = run(Some(&partial), None).expect_err("refused").to_string();
    assert!(err.starts_with("few.csv: no weight for"), "{err}");
}

#[test]
fn backtest_folds_roll_one_month_at_a_time() {
    let b = &*BACKTEST;
    assert_eq!(b.months.len(), 18);
    assert_eq!(b.folds.len(), 6);
    for (k, f) in b.folds.iter().enumerate() {
        assert_eq!(f.train.0, b.months[k]);
        assert_eq!(f.train.1, b.months[k + 11]);
        assert_eq!(f.test, (b.months[k + 12], b.months[k + 12]));
        assert!(f.test_incidents > 1000.0);
        assert_eq!(f.scores.len(), Method::ALL.len());
        // The recapture rate index: random keeps its share (1); places chosen by counts
        // on persistent hotspots keep theirs too, within a factor of 2.
        for (m, r) in &f.rri {
            let r = r.unwrap_or_else(|| panic!("{m:?}: RRI undefined"));
            assert!(r.is_finite() && r > 0.0, "{m:?} RRI {r}");
            if *m == Method::Random {
                assert_eq!(r, 1.0);
            }
            if *m == Method::Naive {
                assert!((0.5..2.0).contains(&r), "naive RRI {r}");
            }
        }
    }
    let naive = b
        .summary
        .iter()
        .find(|s| s.method == Method::Naive)
        .expect("naive");
    assert!(naive.rri.mean.is_finite());
}

#[test]
fn backtest_scores_are_in_range_for_every_fold_and_method() {
    for f in &BACKTEST.folds {
        for (m, acc) in &f.scores {
            let a = acc.unwrap_or_else(|| panic!("{m:?} unscored"));
            assert!((0.0..=1.0).contains(&a.hit_rate), "{m:?} {a:?}");
            assert!((0.0..=1.0).contains(&a.pei), "{m:?} {a:?}");
            assert!(
                a.area_share > 0.0 && a.area_share <= 0.02 + 1e-12,
                "{m:?} {a:?}"
            );
            assert!(
                (a.pai - a.hit_rate / a.area_share).abs() < 1e-9,
                "{m:?} {a:?}"
            );
        }
    }
}

#[test]
fn gistar_and_naive_beat_a_random_choice_of_places() {
    let b = &*BACKTEST;
    let get = |m: Method| b.summary.iter().find(|s| s.method == m).expect("method");
    let random = get(Method::Random);
    assert!((random.pai.mean - 1.0).abs() < 1e-12);
    for m in [
        Method::Gistar,
        Method::Naive,
        Method::NaiveLast,
        Method::Prospective,
    ] {
        let s = get(m);
        assert_eq!(s.folds, 6);
        assert!(s.pai.mean > 2.0, "{m:?} PAI {:?}", s.pai);
        assert!(s.hit_rate.mean > random.hit_rate.mean, "{m:?}");
        assert!(s.pei.mean > random.pei.mean, "{m:?}");
    }
    assert!(get(Method::Kde).pai.mean > 1.0);
}

#[test]
fn prospective_weights_by_distance_and_age_by_hand() {
    // Two units one cell apart; 2 incidents in unit 0 in month 0, 1 in unit 1 in
    // month 1. At the end of month 1 they are 1.5 and 0.5 months old.
    let near = vec![vec![(0, 0), (1, 1)], vec![(1, 0), (0, 1)]];
    let months = vec![vec![(0, 2.0)], vec![(1, 1.0)]];
    let (old, new) = (
        1.0 + 1.5 * backtest::WEEKS_PER_MONTH,
        1.0 + 0.5 * backtest::WEEKS_PER_MONTH,
    );
    let s = backtest::prospective(&months, &near, 0..2);
    assert!(
        (s[0] - (2.0 / old + 1.0 / (2.0 * new))).abs() < 1e-12,
        "{s:?}"
    );
    assert!(
        (s[1] - (2.0 / (2.0 * old) + 1.0 / new)).abs() < 1e-12,
        "{s:?}"
    );
    // Training on month 0 alone: that month is half a month old.
    let s = backtest::prospective(&months, &near, 0..1);
    assert!((s[1] - 1.0 / new).abs() < 1e-12, "{s:?}");
    assert_eq!(backtest::prospective(&months, &near, 0..0), vec![0.0, 0.0]);
}

#[test]
fn bad_backtest_options_are_errors() {
    let f = Filter::default();
    let opts = |coverage, train, test| BacktestOptions {
        coverage,
        train,
        test,
        k: 1,
    };
    let run = |o| backtest::backtest(STORE.clone(), Units::H3(Resolution::Six), &f, o);
    assert!(run(opts(0.0, 12, 1)).is_err());
    assert!(run(opts(1.5, 12, 1)).is_err());
    assert!(run(opts(0.02, 0, 1)).is_err());
    assert!(run(opts(0.02, 36, 1)).is_err());
}

// The binary, end to end.

fn hotspot(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotspot"))
        .args(args)
        .env("HOTSPOT_DATA", data)
        .current_dir(root())
        .output()
        .expect("the binary runs")
}

fn stdout_of(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

static DATA: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temp dir");
    stdout_of(&hotspot(dir.path(), &["ingest", "fixtures/sample"]));
    dir
});

#[test]
fn patrol_csv_and_geojson_from_the_binary_parse() {
    let args = ["patrol", "--top", "10", "--unit", "h3:8"];
    let csv_text = stdout_of(&hotspot(
        DATA.path(),
        &[&args[..], &["--format", "csv"]].concat(),
    ));
    // Plain CSV, a header row first (no `#` lines a spreadsheet or QGIS would misread).
    assert!(csv_text.starts_with("rank,"), "{csv_text}");
    let mut rdr = csv::ReaderBuilder::new().from_reader(csv_text.as_bytes());
    let header = rdr.headers().expect("header").clone();
    assert_eq!(&header[0], "rank");
    assert_eq!(&header[5], "location");
    let rows: Vec<csv::StringRecord> = rdr.records().collect::<Result<_, _>>().expect("rows");
    assert_eq!(rows.len(), 10);
    let codes: Vec<String> = rows.iter().map(|r| r[1].to_owned()).collect();
    for c in persistent_cells() {
        assert!(codes.contains(&c.to_string()), "{c} not in {codes:?}");
    }
    assert_eq!((&header[7], &header[14]), ("harm", "captured_share"));
    let shares: Vec<f64> = rows.iter().map(|r| r[14].parse().expect("share")).collect();
    assert!(
        rows.iter().all(|r| r[7].is_empty()),
        "no harm without weights"
    );
    assert!(shares.windows(2).all(|w| w[0] < w[1]) && shares[9] <= 1.0);
    // With --out, the provenance goes beside it as OUT.json; --provenance names the file.
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("patrol.csv");
    let out_s = out.to_string_lossy().into_owned();
    stdout_of(&hotspot(
        DATA.path(),
        &[&args[..], &["--format", "csv", "--out", &out_s]].concat(),
    ));
    assert_eq!(std::fs::read_to_string(&out).expect("the CSV"), csv_text);
    let prov: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("patrol.csv.json")).expect("the sidecar"),
    )
    .expect("JSON");
    assert_eq!(
        (&prov["method"], &prov["unit"]),
        (&"patrol".into(), &"h3:8".into())
    );
    let named = dir.path().join("named.json");
    let named_s = named.to_string_lossy().into_owned();
    let again = stdout_of(&hotspot(
        DATA.path(),
        &[&args[..], &["--format", "csv", "--provenance", &named_s]].concat(),
    ));
    assert_eq!(again, csv_text);
    let named: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(named).expect("named sidecar"))
            .expect("JSON");
    assert_eq!(named, prov);

    let gj = stdout_of(&hotspot(
        DATA.path(),
        &[&args[..], &["--format", "geojson"]].concat(),
    ));
    let v: serde_json::Value = serde_json::from_str(&gj).expect("GeoJSON parses");
    assert_eq!(v["type"], "FeatureCollection");
    assert_eq!(v["provenance"]["method"], "patrol");
    let features = v["features"].as_array().expect("features");
    assert_eq!(features.len(), 10);
    assert_eq!(features[0]["properties"]["rank"], 1);
    assert_eq!(features[0]["properties"]["unit"], codes[0].as_str());
    assert_eq!(features[0]["geometry"]["type"], "Polygon");
}

#[test]
fn patrol_table_and_backtest_from_the_binary() {
    let table = stdout_of(&hotspot(
        DATA.path(),
        &["patrol", "--top", "3", "--unit", "h3:7"],
    ));
    assert!(table.starts_with("Top 3 places to patrol"), "{table}");
    assert!(table.contains("On or near "), "{table}");
    let out = stdout_of(&hotspot(
        DATA.path(),
        &[
            "backtest", "--unit", "h3:7", "--from", "2024-01", "--train", "6",
        ],
    ));
    for m in Method::ALL {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("{} ", m.label()))),
            "{m:?} missing:\n{out}"
        );
    }
    assert!(out.contains(" 6 folds of 6 training"), "{out}");
    let csv_out = stdout_of(&hotspot(
        DATA.path(),
        &[
            "backtest", "--unit", "lsoa", "--from", "2024-01", "--train", "10", "--format", "csv",
        ],
    ));
    let rows: Vec<&str> = csv_out.lines().collect();
    assert!(
        rows[0].starts_with("method,folds,hit_rate_mean") && rows[0].ends_with(",rri_mean,rri_sd"),
        "{csv_out}"
    );
    assert_eq!(rows.len(), 1 + Method::ALL.len());
    let bad = hotspot(DATA.path(), &["backtest", "--train", "40"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("months"));
}

// Patrol invariants on random filters.

fn districts_of(g: &Geography, names: &[usize]) -> Vec<u8> {
    let mut v: Vec<u8> = names
        .iter()
        .map(|&i| (i % g.districts.names.len()) as u8)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 24, ..Default::default() })]

    /// Never an empty place while a place with incidents is left out; every place with
    /// incidents lies in the district filter; `--top` is honoured when there are enough
    /// places with incidents; under the count ranking, equal counts are ordered by last
    /// month's count (with harm weights, by harm and last month's harm).
    #[test]
    fn patrol_invariants_hold_on_random_filters(
        types in proptest::collection::vec(0usize..14, 1..4),
        districts in proptest::option::of(proptest::collection::vec(0usize..14, 1..3)),
        from in 0u16..18,
        len in 1u16..18,
        top in 1usize..25,
        lsoa in proptest::bool::ANY,
        method in proptest::sample::select(vec![None, Some(Method::Naive), Some(Method::Gistar), Some(Method::Kde), Some(Method::Prospective), Some(Method::Recent)]),
        harm in proptest::bool::ANY,
    ) {
        let store = STORE.clone();
        let g = store.geography.clone();
        let police = hotspot::model::CrimeType::police_uk();
        let months = store.series_months(&Filter::default());
        let lo = usize::from(from).min(months.len() - 1);
        let hi = (lo + usize::from(len) - 1).min(months.len() - 1);
        let f = Filter {
            types: types.iter().fold(hotspot::model::TypeSet::empty(), |s, &t| s.with(police[t % police.len()])),
            districts: districts.map(|d| districts_of(&g, &d)),
            from: Some(months[lo]),
            to: Some(months[hi]),
            ..Filter::default()
        };
        let units = if lsoa { Units::Lsoa(store.lsoa_vintage) } else { Units::H3(R8) };
        let opts = PatrolOptions { top, k: 1, fdr: true, method };
        let weights = harm.then(|| harm_file(1.0, true));
        let list = match patrol::patrol_weighted(store.clone(), units, &f, opts, weights.as_ref()) {
            Ok(l) => l,
            Err(patrol::PatrolError::TooFewUnits(_)) => return Ok(()),
            Err(e) => panic!("{e}"),
        };
        let with: usize = list.study.counts.iter().filter(|c| **c > 0.0).count();
        let listed_with = list.places.iter().filter(|p| p.count > 0.0).count();
        // Places with incidents first, and all of them before any empty place.
        let first_empty = list.places.iter().position(|p| p.count == 0.0);
        if let Some(k) = first_empty {
            proptest::prop_assert!(list.places[k..].iter().all(|p| p.count == 0.0));
            proptest::prop_assert_eq!(listed_with, with, "an empty place while places with incidents are left out");
        }
        proptest::prop_assert_eq!(listed_with, with.min(top));
        proptest::prop_assert_eq!(list.sparse.is_some(), with < patrol::SPARSE_UNITS);
        proptest::prop_assert_eq!(list.units_with_incidents, with);
        proptest::prop_assert!(list.places.len() <= top);
        let ranks: Vec<usize> = list.places.iter().map(|p| p.rank).collect();
        proptest::prop_assert_eq!(ranks, (1..=list.places.len()).collect::<Vec<_>>());
        if let Some(ds) = &f.districts {
            let names: Vec<&str> = ds.iter().map(|&d| g.districts.names[usize::from(d)].as_str()).collect();
            for p in list.places.iter().filter(|p| p.count > 0.0) {
                proptest::prop_assert!(names.contains(&p.district.as_str()), "{} outside {:?}", p.district, names);
            }
        }
        for p in &list.places {
            proptest::prop_assert_eq!(p.count, list.study.counts[p.unit]);
        }
        if list.choice.method == Method::Naive {
            // By count, or with weights by harm.
            let m = |p: &patrol::Place| p.harm.unwrap_or(p.count);
            for w in list.places.windows(2).filter(|w| w[1].count > 0.0) {
                proptest::prop_assert!(m(&w[0]) > m(&w[1]) || (m(&w[0]) == m(&w[1]) && w[0].recent >= w[1].recent));
            }
        }
        proptest::prop_assert_eq!(list.harm.is_some(), harm);
        if method.is_some() {
            proptest::prop_assert_eq!(Some(list.choice.method), method);
        }
    }
}

// Near repeat from the binary.

#[test]
fn near_repeat_refuses_month_only_records_and_tables_dated_ones() {
    let police = hotspot(DATA.path(), &["near-repeat", "--types", "burglary"]);
    assert!(!police.status.success());
    let err = String::from_utf8_lossy(&police.stderr);
    assert!(err.contains("publishes the month only"), "{err}");
    const DATED: [&str; 11] = [
        "near-repeat",
        "--types",
        "road-collision",
        "--distance",
        "100,200,300",
        "--days",
        "7,14,21",
        "--permutations",
        "99",
        "--format",
        "csv",
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let prov_path = dir.path().join("knox.json");
    let prov_s = prov_path.to_string_lossy().into_owned();
    let out = stdout_of(&hotspot(
        DATA.path(),
        &[&DATED[..], &["--provenance", &prov_s]].concat(),
    ));
    let prov: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&prov_path).expect("sidecar")).expect("JSON");
    let mut rdr = csv::ReaderBuilder::new().from_reader(out.as_bytes());
    let header = rdr.headers().expect("header").clone();
    assert_eq!(
        header.iter().collect::<Vec<_>>(),
        [
            "distance_band",
            "time_band",
            "observed",
            "expected",
            "ratio",
            "p"
        ]
    );
    let rows: Vec<csv::StringRecord> = rdr.records().collect::<Result<_, _>>().expect("rows");
    assert_eq!(rows.len(), 9, "3 distance x 3 time bands");
    assert_eq!((&rows[0][0], &rows[0][1]), ("0-100", "0-7"));
    assert_eq!((&rows[4][0], &rows[4][1]), ("100-200", "8-14"));
    let close: u64 = prov["close_pairs"]
        .as_str()
        .expect("close pairs")
        .parse()
        .expect("a number");
    let observed: u64 = rows
        .iter()
        .map(|r| r[2].parse::<u64>().expect("observed"))
        .sum();
    let expected: f64 = rows
        .iter()
        .map(|r| r[3].parse::<f64>().expect("expected"))
        .sum();
    assert!(observed <= close && observed > 0, "{observed} of {close}");
    assert!(expected > 0.0 && expected <= close as f64 + 1e-9);
    for r in &rows {
        let p: f64 = r[5].parse().expect("p");
        assert!((0.01 - 1e-9..=1.0).contains(&p), "p = (1 + k) / 100: {p}");
    }
    // The same seed gives the same answer.
    let again = stdout_of(&hotspot(DATA.path(), &DATED));
    assert_eq!(out, again);
}

/// `backtest --harm FILE` and `patrol --harm FILE` from the binary: the table names the
/// measure, the file and its source, the patrol CSV has its harm column and provenance;
/// a bad row is refused with the file, line and field.
#[test]
fn backtest_harm_from_the_binary_names_its_weights() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("harm.csv");
    let mut text = String::from("category,weight,source\n");
    for t in hotspot::model::CrimeType::ALL {
        text.push_str(&format!("{},{},local mix\n", t.slug(), *t as u8 + 1));
    }
    std::fs::write(&good, text).expect("write");
    let args = ["backtest", "--unit", "h3:8", "--train", "30", "--harm"];
    let table = stdout_of(&hotspot(
        DATA.path(),
        &[&args[..], &[&good.to_string_lossy()]].concat(),
    ));
    assert!(
        table.contains(&format!(
            "measure: harm (weights of {} categories from {}; source: local mix)",
            hotspot::model::CrimeType::ALL.len(),
            good.display()
        )),
        "{table}"
    );
    // The patrol list with the same file: a harm column, the measure in the provenance.
    let out = dir.path().join("patrol.csv");
    let patrol = [
        "patrol",
        "--unit",
        "h3:8",
        "--format",
        "csv",
        "--out",
        &out.to_string_lossy(),
        "--harm",
        &good.to_string_lossy(),
    ];
    stdout_of(&hotspot(DATA.path(), &patrol));
    let text = std::fs::read_to_string(&out).expect("the CSV");
    let mut rdr = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    assert_eq!(&rdr.headers().expect("header")[7], "harm");
    let rows: Vec<csv::StringRecord> = rdr.records().collect::<Result<_, _>>().expect("rows");
    assert_eq!(rows.len(), 10);
    for r in &rows {
        let (count, harm): (f64, f64) = (r[6].parse().expect("count"), r[7].parse().expect("harm"));
        // Weights 1..=codes: at least the count, at most the largest weight per incident.
        assert!(harm >= count && harm <= count * hotspot::model::CrimeType::ALL.len() as f64 + 1.0);
    }
    let prov: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("patrol.csv.json")).expect("the sidecar"),
    )
    .expect("JSON");
    let measure = prov["measure"].as_str().expect("measure");
    assert!(measure.starts_with("harm (weights of"), "{measure}");
    assert!(
        prov["harm"]
            .as_str()
            .expect("harm")
            .parse::<f64>()
            .expect("a number")
            > 0.0
    );

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "category,weight\nburglary,-3\n").expect("write");
    let out = hotspot(
        DATA.path(),
        &[&args[..], &[&bad.to_string_lossy()]].concat(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{} line 2, field weight: \"-3\" is not a number above 0",
            bad.display()
        )),
        "{err}"
    );
}

/// Live risk zones from the binary: a partner extract with dated burglaries, a fifth of
/// them repeated within 60 m and 5 days, gives the nearest bands' window (100 m, 7 days);
/// the zones on the as-of date are the incidents of its last 7 days (by brute force over
/// the file written), each a circle of 100 m around its incident with its dates.
#[test]
fn near_repeat_draws_live_risk_zones_around_the_latest_incidents() {
    use hotspot::model::{civil_from_days, days_from_civil};
    use hotspot::spatial::bng::wgs84_to_bng;
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
    let start = days_from_civil(2022, 1, 1);
    // Around Preston, inside the county.
    let mut rows: Vec<(f64, f64, i32)> = (0..1500)
        .map(|_| {
            (
                350_000.0 + rng.random::<f64>() * 10_000.0,
                425_000.0 + rng.random::<f64>() * 10_000.0,
                start + rng.random_range(0..365),
            )
        })
        .collect();
    for i in 0..300 {
        let (x, y, d) = rows[i];
        let a = rng.random::<f64>() * std::f64::consts::TAU;
        let r = rng.random::<f64>() * 60.0;
        rows.push((
            x + r * a.cos(),
            y + r * a.sin(),
            (d + rng.random_range(0..=5)).min(start + 364),
        ));
    }
    let date = |d: i32| {
        let (y, m, dd) = civil_from_days(d);
        format!("{y:04}-{m:02}-{dd:02}")
    };
    let mut csv_text = String::from("id,easting,northing,date,category\n");
    for (i, (x, y, d)) in rows.iter().enumerate() {
        csv_text.push_str(&format!("b{i},{x:.1},{y:.1},{},Burglary\n", date(*d)));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("extract.csv");
    std::fs::write(&file, csv_text).expect("write");
    let data = dir.path().join("data");
    stdout_of(&hotspot(&data, &["ingest", &file.to_string_lossy()]));
    let as_of = start + 200;
    let zones = dir.path().join("zones.geojson");
    let args = [
        "near-repeat",
        "--types",
        "burglary",
        "--distance",
        "100,200,300",
        "--days",
        "7,14,21",
        "--permutations",
        "199",
        "--as-of",
        &date(as_of),
        "--zones",
        &zones.to_string_lossy(),
    ];
    let table = stdout_of(&hotspot(&data, &args));
    assert!(
        table.contains("Risk window: raised within 100 m and 7 days"),
        "{table}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&zones).expect("zones written"))
            .expect("JSON");
    assert_eq!(doc["as_of"], date(as_of));
    assert_eq!(doc["window"]["distance_m"], 100.0);
    let features = doc["features"].as_array().expect("features");
    // Brute force over the rows: dated from as_of - 7 to as_of.
    let mut want: Vec<String> = rows
        .iter()
        .filter(|r| (as_of - 7..=as_of).contains(&r.2))
        .map(|r| date(r.2))
        .collect();
    let mut got: Vec<String> = features
        .iter()
        .map(|f| f["properties"]["date"].as_str().expect("date").to_owned())
        .collect();
    want.sort();
    got.sort();
    assert!(!want.is_empty());
    assert_eq!(got, want);
    assert!(
        table.contains(&format!(
            "Live risk zones on {}: {} incidents",
            date(as_of),
            want.len()
        )),
        "{table}"
    );
    for f in features {
        let p = &f["properties"];
        let (d, until) = (p["date"].as_str().unwrap(), p["until"].as_str().unwrap());
        assert!(d <= date(as_of).as_str() && date(as_of).as_str() <= until);
        let centre = wgs84_to_bng(
            p["incident_lon"].as_f64().unwrap(),
            p["incident_lat"].as_f64().unwrap(),
        )
        .expect("in the grid");
        let ring = f["geometry"]["coordinates"][0].as_array().expect("ring");
        assert_eq!(ring.first(), ring.last());
        for v in ring {
            let (x, y) =
                wgs84_to_bng(v[0].as_f64().unwrap(), v[1].as_f64().unwrap()).expect("in the grid");
            let r = (x - centre.0).hypot(y - centre.1);
            assert!((r - 100.0).abs() < 0.5, "vertex {r} m from its incident");
        }
    }
    // A date that does not exist is refused, naming the form it takes.
    let bad = hotspot(
        &data,
        &[
            "near-repeat",
            "--types",
            "burglary",
            "--as-of",
            "2022-02-30",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("YYYY-MM-DD"));
}

/// The PAI curve cuts each method's ranking at 0.5% to 10% of the area: at 2% it is the
/// backtest's own PAI at `coverage = 0.02` (the same ranking, the same cut), random's is
/// its expectation (1), and every point is a PAI (hit rate / area share, so at most
/// 1 / coverage).
#[test]
fn the_pai_curve_agrees_with_the_backtest_at_its_coverage() {
    let two = backtest::CURVE
        .iter()
        .position(|&c| (c - 0.02).abs() < 1e-12)
        .expect("2% on the curve");
    for f in &BACKTEST.folds {
        for ((m, acc), (m2, curve)) in f.scores.iter().zip(&f.curve) {
            assert_eq!(m, m2);
            assert_eq!(curve.len(), backtest::CURVE.len());
            let pai = acc.expect("scored").pai;
            let at_two = curve[two].expect("curve point");
            assert!(
                (at_two - pai).abs() < 1e-9,
                "{m:?}: curve {at_two} vs PAI {pai}"
            );
            for (&c, p) in backtest::CURVE.iter().zip(curve) {
                let p = p.expect("curve point");
                if *m == Method::Random {
                    assert_eq!(p, 1.0);
                }
                assert!(p >= 0.0 && p <= 1.0 / c + 1e-6, "{m:?} at {c}: {p}");
            }
        }
    }
    for s in &BACKTEST.summary {
        assert_eq!(s.curve.len(), backtest::CURVE.len());
        assert!(
            (s.curve[two].mean - s.pai.mean).abs() < 1e-9,
            "{:?}",
            s.method
        );
    }
    // Planted persistent hot spots concentrate crime: naive counts beat chance everywhere.
    let naive = BACKTEST
        .summary
        .iter()
        .find(|s| s.method == Method::Naive)
        .expect("naive");
    assert!(
        naive.curve.iter().all(|m| m.mean > 1.5),
        "{:?}",
        naive.curve
    );
}
