//! Coverage and missing months (`hotspot::coverage`): a month a force did not publish is
//! missing, never zero. The sample police.uk months with one removed keep their emerging
//! categories and trends; the store records and back-fills coverage; `hotspot coverage`
//! lists the gap.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hotspot::analysis::{AnalysisStore, Filter};
use hotspot::coverage::{Dataset, Gap};
use hotspot::model::Month;
use hotspot::stats::emerging::{
    Category, DEFAULT_TREND_ALPHA, ESRI_DEFAULT_WINDOW, emerging_hot_spots,
    emerging_hot_spots_observed,
};
use hotspot::stats::study::{Contiguity, Study, Units};
use hotspot::store::Store;

const GAP: &str = "2023-06";
const FORCE: &str = "Lancashire Constabulary";

fn root(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// The sample police.uk months as loose files in `dir`, leaving out `skip`.
fn unzip_sample(dir: &Path, skip: Option<&str>) {
    let f = std::fs::File::open(root("fixtures/sample/police-lancashire.zip")).expect("zip");
    let mut z = zip::ZipArchive::new(f).expect("zip archive");
    for i in 0..z.len() {
        let mut e = z.by_index(i).expect("entry");
        let name = e.name().rsplit('/').next().unwrap_or("").to_owned();
        if !name.ends_with(".csv") || skip.is_some_and(|s| name.starts_with(s)) {
            continue;
        }
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).expect("read entry");
        std::fs::write(dir.join(name), bytes).expect("write");
    }
}

fn load(skip: Option<&str>) -> Arc<AnalysisStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    unzip_sample(dir.path(), skip);
    let g = Arc::new(hotspot::spatial::Geography::bundled().expect("geography"));
    let (store, _) = hotspot::analysis::from_csv_paths(&[dir.path().to_owned()], g).expect("load");
    Arc::new(store)
}

#[test]
fn a_gap_month_keeps_every_category_and_trend_direction() {
    let full = load(None);
    let gap = load(Some(GAP));
    // One year around the gap, as a team reviewing the last twelve months would.
    let filter = Filter {
        from: Some("2023-01".parse().expect("month")),
        to: Some("2023-12".parse().expect("month")),
        ..Filter::default()
    };
    assert!(full.missing_months(&filter).is_empty());
    let gap_month: Month = GAP.parse().expect("month");
    assert_eq!(gap.missing_months(&filter), vec![gap_month]);
    // Road collisions come from STATS19, which is not loaded here: nothing speaks for
    // them, so nothing is missing for them.
    let road = Filter {
        types: hotspot::model::TypeSet::road_safety(),
        ..Filter::default()
    };
    assert!(gap.missing_months(&road).is_empty());

    let res = Units::H3(h3o::Resolution::Eight);
    let (a, b) = (
        Study::new(full, res, &filter),
        Study::new(gap, res, &filter),
    );
    assert_eq!(a.cells, b.cells);
    let w = a.weights(1, Contiguity::Queen, true);
    let (ma, mb) = (a.monthly(&filter), b.monthly(&filter));
    assert_eq!(ma.months, mb.months);
    assert!(ma.observed.iter().all(|o| *o));
    let t = mb
        .months
        .iter()
        .position(|m| *m == gap_month)
        .expect("gap in span");
    assert!(!mb.observed[t] && mb.observed_len() == mb.months.len() - 1);
    assert!(mb.values[t].iter().all(|v| *v == 0.0));

    let ea = emerging_hot_spots_observed(
        &ma.values,
        &ma.observed,
        &w,
        ESRI_DEFAULT_WINDOW,
        true,
        DEFAULT_TREND_ALPHA,
    )
    .expect("full");
    let eb = emerging_hot_spots_observed(
        &mb.values,
        &mb.observed,
        &w,
        ESRI_DEFAULT_WINDOW,
        true,
        DEFAULT_TREND_ALPHA,
    )
    .expect("gap");
    let persistent: Vec<usize> = (0..a.len())
        .filter(|&i| ea.category[i] == Category::PersistentHot)
        .collect();
    assert!(
        persistent.len() >= 50,
        "{} persistent cells",
        persistent.len()
    );
    let kept = |e: &hotspot::stats::emerging::Emerging| {
        persistent
            .iter()
            .filter(|&&i| e.category[i] == Category::PersistentHot)
            .count()
    };
    // The month read as zero crime, as before coverage: many persistent places turn
    // sporadic (the symptom).
    let zero = emerging_hot_spots(
        &mb.values,
        &w,
        ESRI_DEFAULT_WINDOW,
        true,
        DEFAULT_TREND_ALPHA,
    )
    .expect("zero");
    assert!(
        kept(&zero) * 4 <= persistent.len() * 3,
        "reading the gap as zero kept {} of {} persistent",
        kept(&zero),
        persistent.len()
    );
    // Read as missing: nearly all stay persistent...
    assert!(
        kept(&eb) * 20 >= persistent.len() * 19,
        "the gap kept only {} of {} persistent",
        kept(&eb),
        persistent.len()
    );
    // ...and a place hot in every month of the year is hot in every published month:
    // never sporadic, always one of the 90% categories.
    let hot_steps = |e: &hotspot::stats::emerging::Emerging, i: usize| {
        e.states
            .iter()
            .zip(&e.observed)
            .filter(|(s, o)| **o && s[i] > 0)
            .count()
    };
    for &i in &persistent {
        if hot_steps(&ea, i) == 12 {
            assert_eq!(hot_steps(&eb, i), 11, "cell {}", a.codes[i]);
            assert!(
                matches!(
                    eb.category[i],
                    Category::PersistentHot | Category::IntensifyingHot | Category::DiminishingHot
                ),
                "cell {}: {:?}",
                a.codes[i],
                eb.category[i]
            );
        }
    }
    // Every hot category of the full data survives the gap for nearly every cell, and
    // trends keep their sign where they were significant.
    let hot: Vec<usize> = (0..a.len())
        .filter(|&i| ea.category[i].code() > 0)
        .collect();
    let same = hot
        .iter()
        .filter(|&&i| ea.category[i] == eb.category[i])
        .count();
    assert!(
        same * 10 >= hot.len() * 9,
        "{same} of {} hot cells kept",
        hot.len()
    );
    for &i in &hot {
        if ea.trend[i].p < 0.05 {
            assert_eq!(
                eb.trend[i].z.signum(),
                ea.trend[i].z.signum(),
                "cell {}",
                a.codes[i]
            );
        }
    }
}

#[test]
fn the_store_records_coverage_and_back_fills_an_older_store() {
    let files = tempfile::tempdir().expect("temp dir");
    unzip_sample(files.path(), Some(GAP));
    let data = tempfile::tempdir().expect("temp dir");
    let mut store = Store::open(data.path()).expect("store");
    let mut sources = hotspot::ingest::discover(&[files.path().to_owned()]).expect("discover");
    sources.sort_by_key(|s| s.name());
    sources.truncate(20);
    sources.push(
        hotspot::ingest::discover(&[root(
            "fixtures/sample/stats19/dft-road-casualty-statistics-collision-2023.csv",
        )])
        .expect("stats19")
        .remove(0),
    );
    store.ingest_sources(&sources, None, |_, r| {
        r.expect("ingested");
    });
    let c = store.coverage().expect("coverage");
    let gap_month: Month = GAP.parse().expect("month");
    assert_eq!(
        c.gaps(),
        vec![Gap {
            dataset: Dataset::PoliceUk,
            force: FORCE.into(),
            missing: vec![gap_month]
        }]
    );
    let police = c.dataset_span(Dataset::PoliceUk).expect("police");
    assert_eq!(Month::from_index(police.0).to_string(), "2022-01");
    let road = c.dataset_span(Dataset::Stats19).expect("stats19");
    assert_eq!(Month::from_index(road.0).to_string(), "2023-01");
    assert_eq!(Month::from_index(road.1).to_string(), "2023-12");

    // Filling the gap; replacing a month keeps it covered.
    let fill = tempfile::tempdir().expect("temp dir");
    unzip_sample(fill.path(), None);
    let month_file = |m: &str| fill.path().join(format!("{m}-lancashire-street.csv"));
    store
        .ingest_bytes(
            "gap.csv",
            &std::fs::read(month_file(GAP)).expect("read"),
            None,
        )
        .expect("fill");
    let mut changed = std::fs::read(month_file("2022-03")).expect("read");
    changed.extend_from_slice(b"\n");
    let s = store
        .ingest_bytes("again.csv", &changed, None)
        .expect("replace");
    assert!(s.replaced > 0);
    let after = store.coverage().expect("coverage");
    assert!(after.gaps().is_empty(), "{:?}", after.gaps());

    // A store of schema 2 (no coverage table) gets the same coverage back on opening.
    drop(store);
    {
        let db = rusqlite::Connection::open(data.path().join("hotspot.sqlite")).expect("db");
        db.execute_batch("DROP TABLE coverage; PRAGMA user_version = 2;")
            .expect("downgrade");
    }
    let ro = Store::open_read_only(data.path()).expect("read only");
    assert!(ro.coverage().expect("none yet").is_empty());
    drop(ro);
    let store = Store::open(data.path()).expect("migrate");
    assert_eq!(store.coverage().expect("coverage"), after);
    let db = rusqlite::Connection::open(data.path().join("hotspot.sqlite")).expect("db");
    let v: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(v, 3);
}

#[test]
fn coverage_command_lists_the_gap_and_ingest_warns_of_it() {
    let files = tempfile::tempdir().expect("temp dir");
    unzip_sample(files.path(), Some(GAP));
    let data = tempfile::tempdir().expect("temp dir");
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_hotspot"))
            .arg(args[0])
            .arg("--data")
            .arg(data.path())
            .args(&args[1..])
            .output()
            .expect("run hotspot");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).expect("utf-8")
    };
    let dir = files.path().to_str().expect("path");
    let ingest = run(&["ingest", dir]);
    assert!(
        ingest.contains(&format!(
            "warning: gap: police.uk {FORCE} has no file for {GAP}"
        )),
        "{ingest}"
    );
    let report = run(&["coverage"]);
    let police = report
        .lines()
        .find(|l| l.starts_with("police.uk"))
        .expect("police.uk row");
    let cols: Vec<&str> = police
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cols,
        ["police.uk", FORCE, "2022-01", "2024-12", "35", GAP],
        "{report}"
    );
    let june = report
        .lines()
        .find(|l| l.starts_with(GAP))
        .expect("month row");
    assert!(june.ends_with(&format!("police.uk {FORCE}")), "{june}");
    let jan = report
        .lines()
        .find(|l| l.starts_with("2022-01"))
        .expect("2022-01");
    // 2022-01: incidents, a share unlocated and a share outside, and no missing file.
    let f: Vec<&str> = jan.split_whitespace().collect();
    assert_eq!(f.len(), 4, "{jan}");
    assert!(f[1].parse::<u64>().expect("count") > 1000);
    assert!(f[2].ends_with('%') && f[3].ends_with('%'), "{jan}");
    // Filling the gap says so, and the report has none left.
    let fill = tempfile::tempdir().expect("temp dir");
    unzip_sample(fill.path(), None);
    let month = fill.path().join(format!("{GAP}-lancashire-street.csv"));
    let ingest = run(&["ingest", month.to_str().expect("path")]);
    assert!(
        ingest.contains(&format!("gap filled: police.uk {FORCE} now has {GAP}")),
        "{ingest}"
    );
    let report = run(&["coverage"]);
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("police.uk") && l.ends_with("none")),
        "{report}"
    );
}
