//! Statistics against PySAL reference values (tests/reference: the inputs are written by
//! `cargo run --example reference_inputs`, the expected values by
//! `tests/reference/make_reference.py` with esda/libpysal/pymannkendall), and the
//! planted hotspots of the fixtures coming out as they were planted.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use h3o::CellIndex;
use hotspot::stats::Weights;
use hotspot::stats::gi_star::z_scores;
use hotspot::stats::local_moran::{local_i, local_moran};
use serde_json::Value;

fn path(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn json(name: &str) -> Value {
    let text = std::fs::read_to_string(path(&format!("tests/reference/expected/{name}"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn read_counts(name: &str) -> (Vec<String>, Vec<f64>) {
    let text = std::fs::read_to_string(path(&format!("tests/reference/inputs/{name}"))).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let (a, b) = l.split_once(',').unwrap();
            (a.to_owned(), b.parse::<f64>().unwrap())
        })
        .unzip()
}

fn h3_grid() -> (Vec<CellIndex>, Vec<f64>) {
    let (codes, counts) = read_counts("h3_r8_counts.csv");
    (
        codes
            .iter()
            .map(|c| CellIndex::from_str(c).unwrap())
            .collect(),
        counts,
    )
}

/// |a - b| <= tol * max(|b|, 1): relative, with an absolute floor for values near zero.
fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= tol * b.abs().max(1.0),
            "{what}[{i}]: {a} vs PySAL {b}"
        );
    }
}

#[test]
fn gi_star_on_the_h3_grid_matches_esda_for_k_1_2_3() {
    let (cells, counts) = h3_grid();
    for k in 1..=3 {
        let r = json(&format!("gistar_h3_r8_k{k}.json"));
        let want_cells: Vec<&str> = r["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(
            want_cells,
            cells.iter().map(ToString::to_string).collect::<Vec<_>>()
        );
        let w = Weights::h3_disk(&cells, k);
        assert_close(
            &z_scores(&counts, &w),
            &floats(&r["z"]),
            1e-9,
            &format!("Gi* k={k}"),
        );
    }
}

fn lsoa_weights() -> (Weights, Value) {
    let g = hotspot::spatial::Geography::bundled().unwrap();
    let r = json("gistar_lsoa_queen.json");
    let want_codes: Vec<&str> = r["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        want_codes,
        g.lsoas.codes.iter().map(String::as_str).collect::<Vec<_>>()
    );
    (Weights::queen(&g.lsoas.polygons), r)
}

#[test]
fn queen_contiguity_equals_libpysal() {
    let (w, r) = lsoa_weights();
    for (i, want) in r["neighbours"].as_array().unwrap().iter().enumerate() {
        let mut want: Vec<u32> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j.as_u64().unwrap() as u32)
            .collect();
        want.sort_unstable();
        assert_eq!(w.row(i), want.as_slice(), "LSOA {i}");
    }
}

#[test]
fn gi_star_on_lsoa_queen_contiguity_matches_esda() {
    let (w, r) = lsoa_weights();
    let (_, counts) = read_counts("lsoa_counts.csv");
    assert_close(
        &z_scores(&counts, &w.with_self(true)),
        &floats(&r["z"]),
        1e-9,
        "Gi* LSOA",
    );
}

/// Local Moran I values to 1e-9; quadrants exactly; permutation p-values within Monte
/// Carlo error of PySAL's. The two use different random draws, so p_sim can only agree
/// in distribution: with P = 999 a p-value's standard error is sqrt(p (1 - p) / P), at
/// most 0.016, and we allow 5 of them. Many units tie with their permutations (zero
/// counts), where whether a tie counts as "as extreme" depends on floating-point order;
/// the reference records the p-value both ways (p_sim_lo .. p_sim_hi) and the check is
/// against that interval.
fn check_local_moran(file: &str, y: &[f64], w: &Weights) {
    let r = json(file);
    let (i, _) = local_i(y, w);
    assert_close(&i, &floats(&r["Is"]), 1e-9, file);
    let ours = local_moran(y, w, 999, 2024, 0.05, false);
    let q: Vec<u64> = r["q"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let (lo, hi) = (floats(&r["p_sim_lo"]), floats(&r["p_sim_hi"]));
    let mut outside = 0;
    for k in 0..y.len() {
        if i[k] != 0.0 {
            assert_eq!(
                ours.quadrant[k] as u64, q[k],
                "{file}: quadrant of unit {k}"
            );
        }
        let p = ours.p_sim[k];
        let se = |v: f64| (v * (1.0 - v) / 999.0).sqrt();
        if p < lo[k] - 5.0 * se(lo[k]) - 1e-9 || p > hi[k] + 5.0 * se(hi[k]) + 1e-9 {
            outside += 1;
        }
    }
    // At 5 standard errors, essentially none may fall outside.
    assert!(
        outside <= y.len() / 1000,
        "{file}: {outside} p-values outside Monte Carlo error"
    );
}

#[test]
fn local_moran_on_the_h3_grid_matches_esda() {
    let (cells, counts) = h3_grid();
    check_local_moran(
        "local_moran_h3_r8_k1.json",
        &counts,
        &Weights::h3_disk(&cells, 1).with_self(false),
    );
}

#[test]
fn local_moran_on_lsoas_matches_esda() {
    let (w, _) = lsoa_weights();
    let (_, counts) = read_counts("lsoa_counts.csv");
    check_local_moran("local_moran_lsoa_queen.json", &counts, &w);
}

#[test]
fn planted_persistent_hotspots_are_significant_hot_cells() {
    use hotspot::analysis::Filter;
    use hotspot::stats::study::{Contiguity, Study, Units};
    let g = Arc::new(hotspot::spatial::Geography::bundled().unwrap());
    let (store, _) = hotspot::analysis::from_csv_paths(&[path("fixtures/sample")], g).unwrap();
    let study = Study::new(
        Arc::new(store),
        Units::H3(h3o::Resolution::Eight),
        &Filter::default(),
    );
    let gi = hotspot::stats::gi_star::gi_star(
        &study.counts,
        &study.weights(1, Contiguity::Queen, true),
        true,
    );
    for h in hotspot::generate::planted_hotspots() {
        if !matches!(h.kind, hotspot::generate::HotspotKind::Persistent) {
            continue;
        }
        let cell = h3o::LatLng::new(h.lat, h.lon)
            .unwrap()
            .to_cell(h3o::Resolution::Eight);
        let i = study.cells.binary_search(&cell).unwrap();
        assert_eq!(gi.bin[i], 3, "{}: z = {}", h.name, gi.z[i]);
    }
    // And a cell far from every planted hotspot is not hot.
    let quiet = h3o::LatLng::new(53.95, -2.35)
        .unwrap()
        .to_cell(h3o::Resolution::Eight);
    if let Ok(i) = study.cells.binary_search(&quiet) {
        assert!(gi.bin[i] <= 0, "a moorland cell is hot: z = {}", gi.z[i]);
    }
}

#[test]
fn mann_kendall_matches_pymannkendall() {
    let r = json("mann_kendall.json");
    for s in r["series"].as_array().unwrap() {
        let x = floats(&s["x"]);
        let m = hotspot::stats::mann_kendall::mann_kendall(&x);
        let name = s["name"].as_str().unwrap();
        assert_close(
            &[m.s, m.var_s, m.z, m.tau],
            &[
                s["s"].as_f64().unwrap(),
                s["var_s"].as_f64().unwrap(),
                s["z"].as_f64().unwrap(),
                s["Tau"].as_f64().unwrap(),
            ],
            1e-12,
            name,
        );
        let p = s["p"].as_f64().unwrap();
        assert!(
            (m.p - p).abs() <= 1e-9 * p.max(1e-300),
            "{name}: p {} vs {p}",
            m.p
        );
    }
}

#[test]
fn planted_emerging_and_fading_hotspots_get_matching_categories() {
    use hotspot::analysis::Filter;
    use hotspot::generate::HotspotKind;
    use hotspot::stats::emerging::{Category, ESRI_DEFAULT_WINDOW, emerging_hot_spots};
    use hotspot::stats::study::{Contiguity, Study, Units};
    let g = Arc::new(hotspot::spatial::Geography::bundled().unwrap());
    let (store, _) = hotspot::analysis::from_csv_paths(&[path("fixtures/sample")], g).unwrap();
    // All crime types, the analyst's default view: the planted extras ride on the town
    // centres' background, so an emerging one intensifies and a fading one diminishes.
    // (On its own sparse types alone, one stray early incident is enough for Esri's rules
    // to call an emerging hotspot sporadic, and a series that stops half way is "no
    // pattern": both correct by the rules, and why the test looks at the whole picture.)
    let filter = Filter::default();
    let study = Study::new(Arc::new(store), Units::H3(h3o::Resolution::Eight), &filter);
    let values = study.monthly(&filter).values;
    let w = study.weights(1, Contiguity::Queen, true);
    let e = emerging_hot_spots(&values, &w, ESRI_DEFAULT_WINDOW, true, 0.05).unwrap();
    for h in hotspot::generate::planted_hotspots() {
        let cell = h3o::LatLng::new(h.lat, h.lon)
            .unwrap()
            .to_cell(h3o::Resolution::Eight);
        let c = e.category[study.cells.binary_search(&cell).unwrap()];
        let ok = match h.kind {
            HotspotKind::Persistent => c == Category::PersistentHot,
            HotspotKind::Emerging => matches!(
                c,
                Category::NewHot | Category::ConsecutiveHot | Category::IntensifyingHot
            ),
            HotspotKind::Fading => matches!(c, Category::DiminishingHot | Category::HistoricalHot),
        };
        assert!(ok, "{} ({:?}) came out as {}", h.name, h.kind, c.label());
    }
}

#[test]
fn the_study_grid_covers_every_incident_including_coast_and_district_edges() {
    use hotspot::analysis::Filter;
    use hotspot::stats::grid::cover;
    use hotspot::stats::study::{Study, Units};
    let g = Arc::new(hotspot::spatial::Geography::bundled().unwrap());
    let (store, _) =
        hotspot::analysis::from_csv_paths(&[path("fixtures/sample")], g.clone()).unwrap();
    let store = Arc::new(store);
    let located = store.incidents.len() as f64;
    for res in [h3o::Resolution::Seven, h3o::Resolution::Eight] {
        let study = Study::new(store.clone(), Units::H3(res), &Filter::default());
        assert_eq!(study.counts.iter().sum::<f64>(), located, "{res:?}");
        // Zero cells are part of the grid, and the polygon cover alone (no added cells)
        // already holds nearly every incident's cell.
        assert!(study.counts.iter().filter(|c| **c == 0.0).count() > study.len() / 4);
        let covered = cover(&g.county, res);
        let inside: f64 = study
            .cells
            .iter()
            .zip(&study.counts)
            .filter(|(c, _)| covered.binary_search(c).is_ok())
            .map(|(_, v)| v)
            .sum();
        assert!(
            inside >= 0.995 * located,
            "{res:?}: cover holds {inside} of {located}"
        );
    }
    // A district's grid holds exactly that district's incidents.
    let blackpool = g.district_index("Blackpool").unwrap();
    let filter = Filter {
        districts: Some(vec![blackpool]),
        ..Filter::default()
    };
    let study = Study::new(store.clone(), Units::H3(h3o::Resolution::Eight), &filter);
    let n_blackpool = store
        .incidents
        .loc
        .iter()
        .filter(|&&l| store.locations.district[l as usize] == blackpool)
        .count();
    assert_eq!(study.counts.iter().sum::<f64>(), n_blackpool as f64);
}

/// Gi*'s conditional-permutation p-values within Monte Carlo error of esda's
/// (`G_Local(star=True, permutations=999).p_sim`): different random draws, so they agree
/// in distribution only; ties are exact (integer neighbourhood sums), so no tie bounds are
/// needed. 5 standard errors of each p, essentially none outside.
fn check_gi_p_sim(file: &str, y: &[f64], w: &Weights) {
    let r = json(file);
    let want = floats(&r["p_sim"]);
    assert_eq!(want.len(), y.len());
    let ours = hotspot::stats::gi_star::p_sim(y, w, 999, 77);
    let se = |v: f64| (v * (1.0 - v) / 999.0).sqrt();
    let outside = (0..y.len())
        .filter(|&k| (ours[k] - want[k]).abs() > 5.0 * se(want[k]).max(se(ours[k])) + 2.0 / 1000.0)
        .count();
    assert!(
        outside <= y.len() / 1000,
        "{file}: {outside} p_sim outside Monte Carlo error"
    );
    // And they are not the normal p-values: on these sparse counts the two differ.
    let normal = hotspot::stats::gi_star::gi_star(y, w, false).p;
    let differ = (0..y.len())
        .filter(|&k| (normal[k] - want[k]).abs() > 0.1)
        .count();
    assert!(
        differ > 0,
        "{file}: the permutation and normal p-values never differ"
    );
    // Significant cells by permutation are those esda finds (at 0.01, within error).
    let sig = |p: &[f64]| p.iter().filter(|v| **v <= 0.01).count() as f64;
    assert!(
        (sig(&ours) - sig(&want)).abs() <= 0.1 * sig(&want).max(10.0),
        "{file}"
    );
}

#[test]
fn gi_star_permutation_p_values_match_esda_on_the_h3_grid() {
    let (cells, counts) = h3_grid();
    check_gi_p_sim(
        "gistar_psim_h3_r8_k1.json",
        &counts,
        &Weights::h3_disk(&cells, 1).with_self(true),
    );
}

#[test]
fn gi_star_permutation_p_values_match_esda_on_lsoas() {
    let (w, _) = lsoa_weights();
    let (_, counts) = read_counts("lsoa_counts.csv");
    check_gi_p_sim("gistar_psim_lsoa_queen.json", &counts, &w.with_self(true));
}

/// The change map's exact test against scipy.stats.binomtest, and its FDR decisions
/// against scipy.stats.false_discovery_control
/// (`tests/reference/make_change_reference.py`).
#[test]
fn change_test_matches_scipy_binomtest_and_fdr() {
    use hotspot::stats::change::{Direction, binom_two_sided, changes};
    let r = json("change_binomtest.json");
    let cases = r["binomtest"].as_array().unwrap();
    assert!(cases.len() > 500);
    let mut worst = 0.0f64;
    for c in cases {
        let c = c.as_array().unwrap();
        let (k, n, p, want) = (
            c[0].as_u64().unwrap(),
            c[1].as_u64().unwrap(),
            c[2].as_f64().unwrap(),
            c[3].as_f64().unwrap(),
        );
        let got = binom_two_sided(k, n, p);
        let err = (got - want).abs() / want.max(1e-300);
        // Relative error, where the value is large enough to matter.
        if want > 1e-250 {
            assert!(
                err < 1e-8,
                "binomtest({k}, {n}, {p}): {got} vs scipy {want}"
            );
            worst = worst.max(err);
        }
    }
    let f = &r["fdr"];
    let ints = |v: &Value| -> Vec<u64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect()
    };
    let (now, before) = (ints(&f["now"]), ints(&f["before"]));
    let (p, dir) = changes(
        &now,
        &before,
        f["t_now"].as_f64().unwrap(),
        f["t_before"].as_f64().unwrap(),
        0.05,
        true,
    );
    for (i, want) in floats(&f["p"]).iter().enumerate() {
        assert!(
            (p[i] - want).abs() <= 1e-8 * want.max(1e-300),
            "cell {i}: p {} vs {want}",
            p[i]
        );
    }
    let significant: Vec<bool> = dir.iter().map(|d| *d != Direction::NoChange).collect();
    let want: Vec<bool> = f["significant"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_bool().unwrap())
        .collect();
    assert_eq!(significant, want);
    assert!(
        want.iter().filter(|&&s| s).count() >= 10,
        "the reference has changes to find"
    );
    // Direction: up where the rate went up.
    for i in 0..now.len() {
        match dir[i] {
            Direction::Increase => assert!(now[i] > before[i]),
            Direction::Decrease => assert!(now[i] < before[i]),
            Direction::NoChange => {}
        }
    }
    eprintln!("change test: worst relative error against scipy {worst:.2e}");
}
