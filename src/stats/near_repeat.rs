//! Near repeat: the Knox test as Ratcliffe's Near Repeat Calculator runs it.
//!
//! Every pair of dated incidents is counted in the distance band and the time band it
//! falls in: distance in metres on the British National Grid, time as whole days apart.
//! Bands are inclusive of their upper bound and the first of each starts at 0, so the
//! first distance band holds same-place pairs and the first time band same-day pairs
//! (`--distance 100,200,300` gives 0-100, 101-200, 201-300 m; `--days 7,14,21` gives 0-7,
//! 8-14, 15-21 days). Pairs farther apart than the last band in either dimension are
//! not counted.
//!
//! The expected count of a cell is the mean over Monte Carlo runs in which the dates are
//! shuffled among the incidents (the places stay, so the spatial pattern is kept and only
//! the space-time link is broken); the Knox ratio is observed / expected and the pseudo
//! p-value `(1 + runs with a count >= observed) / (1 + runs)`, as in the Calculator.
//!
//! # Cost
//! Only pairs within the largest distance band can ever count, whatever the dates, so
//! they are found once on a grid of that band's size (each point against its own and
//! the 8 neighbouring cells), and each run re-reads only those pairs' dates: O(n + P x
//! runs) for P close pairs, never the n^2 of all pairs. Runs go in parallel, each with
//! its own generator seeded from (seed, run), so the answer does not depend on the
//! number of threads.
//!
//! The exact expectation under the shuffle is known too ([`exact_expected`]): a pair's
//! shuffled dates are a random ordered pair of distinct dates, so a cell expects its
//! distance band's close pairs times the share of date pairs in its time band. The
//! tests check the Monte Carlo mean against it.
//!
//! Reference: Ratcliffe, J. H. (2009) Near Repeat Calculator (version 1.3), Temple
//! University; Knox, E. G. (1964) "The detection of space-time interactions", *Applied
//! Statistics* 13, 25-29; Johnson et al. (2007) *Journal of Quantitative Criminology*
//! 23, 201-219.

use rand::{SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use thiserror::Error;

/// One dated incident: BNG metres and days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DatedPoint {
    pub x: f64,
    pub y: f64,
    pub day: i32,
}

/// The bands and runs.
#[derive(Debug, Clone)]
pub struct KnoxOptions {
    /// Upper bounds of the distance bands, metres, increasing.
    pub distances: Vec<f64>,
    /// Upper bounds of the time bands, days, increasing.
    pub days: Vec<u32>,
    /// Monte Carlo runs (the Calculator offers 19, 99 and 999).
    pub permutations: usize,
    pub seed: u64,
}

/// Why the test could not run.
#[derive(Debug, Error, PartialEq)]
pub enum NearRepeatError {
    #[error("--distance needs at least one band, each above the last and not negative (got {0})")]
    Distances(String),
    #[error("--days needs at least one band, each above the last (got {0})")]
    Days(String),
    #[error("--permutations must be at least 1")]
    Permutations,
    #[error("{0} dated incidents: the Knox test needs at least 2")]
    TooFew(usize),
}

/// One distance band x time band cell.
#[derive(Debug, Clone, PartialEq)]
pub struct KnoxCell {
    /// Band bounds: (previous upper bound, this upper bound]; the first starts at 0
    /// inclusive.
    pub distance: (f64, f64),
    pub days: (u32, u32),
    pub observed: u64,
    /// Monte Carlo mean.
    pub expected: f64,
    /// observed / expected (None when nothing is expected).
    pub ratio: Option<f64>,
    /// Pseudo p-value, (1 + runs >= observed) / (1 + runs).
    pub p: f64,
}

/// The whole table, distance-major.
#[derive(Debug, Clone)]
pub struct Knox {
    pub points: usize,
    /// Pairs within the largest distance band.
    pub close_pairs: usize,
    pub permutations: usize,
    pub cells: Vec<KnoxCell>,
}

fn check(o: &KnoxOptions) -> Result<(), NearRepeatError> {
    let d = &o.distances;
    if d.is_empty()
        || d.iter().any(|x| !x.is_finite() || *x < 0.0)
        || d.windows(2).any(|w| w[1] <= w[0])
    {
        return Err(NearRepeatError::Distances(format!("{d:?}")));
    }
    let t = &o.days;
    if t.is_empty() || t.windows(2).any(|w| w[1] <= w[0]) {
        return Err(NearRepeatError::Days(format!("{t:?}")));
    }
    if o.permutations == 0 {
        return Err(NearRepeatError::Permutations);
    }
    Ok(())
}

/// The band of `v` among increasing upper bounds (inclusive), or None past the last.
#[inline]
fn band<T: PartialOrd + Copy>(bounds: &[T], v: T) -> Option<usize> {
    bounds.iter().position(|&b| v <= b)
}

/// The time band of two days.
#[inline]
fn time_band(days: &[u32], a: i32, b: i32) -> Option<usize> {
    band(days, a.abs_diff(b))
}

/// Every pair (i < j) within the largest distance band, with its distance band.
pub fn close_pairs(points: &[DatedPoint], distances: &[f64]) -> Vec<(u32, u32, u8)> {
    let Some(&max) = distances.last() else {
        return Vec::new();
    };
    let size = max.max(1.0);
    let cell = |p: &DatedPoint| ((p.x / size).floor() as i64, (p.y / size).floor() as i64);
    let mut grid: FxHashMap<(i64, i64), Vec<u32>> = FxHashMap::default();
    for (i, p) in points.iter().enumerate() {
        grid.entry(cell(p)).or_default().push(i as u32);
    }
    (0..points.len())
        .into_par_iter()
        .with_min_len(256)
        .fold(Vec::new, |mut out, i| {
            let p = points[i];
            let (cx, cy) = cell(&p);
            for dx in -1..=1 {
                for dy in -1..=1 {
                    let Some(js) = grid.get(&(cx + dx, cy + dy)) else {
                        continue;
                    };
                    for &j in js {
                        if (j as usize) <= i {
                            continue;
                        }
                        let q = points[j as usize];
                        let d = (p.x - q.x).hypot(p.y - q.y);
                        if let Some(b) = band(distances, d) {
                            out.push((i as u32, j, b as u8));
                        }
                    }
                }
            }
            out
        })
        .reduce(Vec::new, |mut a, mut b| {
            a.append(&mut b);
            a
        })
}

/// Counts per cell (distance-major) of the close pairs under the dates `day`.
fn tally(pairs: &[(u32, u32, u8)], day: &[i32], days: &[u32], nt: usize, out: &mut [u64]) {
    out.iter_mut().for_each(|c| *c = 0);
    for &(i, j, b) in pairs {
        if let Some(t) = time_band(days, day[i as usize], day[j as usize]) {
            out[usize::from(b) * nt + t] += 1;
        }
    }
}

/// The Knox test over `points`.
///
/// # Errors
/// [`NearRepeatError`] for bad bands, no runs or fewer than 2 points.
pub fn knox(points: &[DatedPoint], o: &KnoxOptions) -> Result<Knox, NearRepeatError> {
    check(o)?;
    if points.len() < 2 {
        return Err(NearRepeatError::TooFew(points.len()));
    }
    let (nd, nt) = (o.distances.len(), o.days.len());
    let pairs = close_pairs(points, &o.distances);
    let day: Vec<i32> = points.iter().map(|p| p.day).collect();
    let mut observed = vec![0u64; nd * nt];
    tally(&pairs, &day, &o.days, nt, &mut observed);
    // Per run: the shuffled dates' counts; summed, and compared with the observed.
    let (sum, ge) = (0..o.permutations)
        .into_par_iter()
        .fold(
            || {
                (
                    vec![0u64; nd * nt],
                    vec![0u64; nd * nt],
                    day.clone(),
                    vec![0u64; nd * nt],
                )
            },
            |(mut sum, mut ge, mut shuffled, mut counts), run| {
                let mut rng = ChaCha8Rng::seed_from_u64(
                    o.seed ^ (run as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                );
                shuffled.copy_from_slice(&day);
                shuffled.shuffle(&mut rng);
                tally(&pairs, &shuffled, &o.days, nt, &mut counts);
                for k in 0..counts.len() {
                    sum[k] += counts[k];
                    ge[k] += u64::from(counts[k] >= observed[k]);
                }
                (sum, ge, shuffled, counts)
            },
        )
        .map(|(s, g, _, _)| (s, g))
        .reduce(
            || (vec![0u64; nd * nt], vec![0u64; nd * nt]),
            |(mut s1, mut g1), (s2, g2)| {
                for k in 0..s1.len() {
                    s1[k] += s2[k];
                    g1[k] += g2[k];
                }
                (s1, g1)
            },
        );
    let runs = o.permutations as f64;
    let mut cells = Vec::with_capacity(nd * nt);
    for b in 0..nd {
        for t in 0..nt {
            let k = b * nt + t;
            let expected = sum[k] as f64 / runs;
            cells.push(KnoxCell {
                distance: (
                    if b == 0 { 0.0 } else { o.distances[b - 1] },
                    o.distances[b],
                ),
                days: (if t == 0 { 0 } else { o.days[t - 1] }, o.days[t]),
                observed: observed[k],
                expected,
                ratio: (expected > 0.0).then(|| observed[k] as f64 / expected),
                p: (1.0 + ge[k] as f64) / (1.0 + runs),
            });
        }
    }
    Ok(Knox {
        points: points.len(),
        close_pairs: pairs.len(),
        permutations: o.permutations,
        cells,
    })
}

/// The exact expected counts under the shuffle, distance-major: each distance band's
/// close pairs times the share of ordered pairs of distinct incidents whose dates fall
/// in each time band (from a histogram of the dates, O(distinct days^2)).
pub fn exact_expected(points: &[DatedPoint], distances: &[f64], days: &[u32]) -> Vec<f64> {
    let (nd, nt) = (distances.len(), days.len());
    let mut per_band = vec![0u64; nd];
    for &(_, _, b) in &close_pairs(points, distances) {
        per_band[usize::from(b)] += 1;
    }
    let mut hist: FxHashMap<i32, u64> = FxHashMap::default();
    for p in points {
        *hist.entry(p.day).or_default() += 1;
    }
    let hist: Vec<(i32, u64)> = hist.into_iter().collect();
    let mut share = vec![0.0; nt];
    let n = points.len() as f64;
    for &(a, ca) in &hist {
        for &(b, cb) in &hist {
            let pairs = if a == b { ca * (ca - 1) } else { ca * cb };
            if let Some(t) = time_band(days, a, b) {
                share[t] += pairs as f64;
            }
        }
    }
    for s in &mut share {
        *s /= n * (n - 1.0);
    }
    (0..nd * nt)
        .map(|k| per_band[k / nt] as f64 * share[k % nt])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn random_points(n: usize, seed: u64) -> Vec<DatedPoint> {
        random_points_in(n, seed, 3000.0)
    }

    fn random_points_in(n: usize, seed: u64, extent: f64) -> Vec<DatedPoint> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                // Snapped to 10 m so that same-place pairs and pairs exactly on a band's
                // bound occur.
                let x = (rng.random_range(0.0..extent) / 10.0).round() * 10.0;
                let y = (rng.random_range(0.0..extent) / 10.0).round() * 10.0;
                DatedPoint {
                    x,
                    y,
                    day: rng.random_range(0..120),
                }
            })
            .collect()
    }

    fn opts(perms: usize) -> KnoxOptions {
        KnoxOptions {
            distances: vec![0.0, 100.0, 200.0, 300.0],
            days: vec![0, 7, 14, 21],
            permutations: perms,
            seed: 7,
        }
    }

    /// Every pair, directly.
    fn brute(points: &[DatedPoint], o: &KnoxOptions) -> Vec<u64> {
        let nt = o.days.len();
        let mut out = vec![0u64; o.distances.len() * nt];
        for i in 0..points.len() {
            for j in i + 1..points.len() {
                let (p, q) = (points[i], points[j]);
                let d = ((p.x - q.x).powi(2) + (p.y - q.y).powi(2)).sqrt();
                let dt = (i64::from(p.day) - i64::from(q.day)).unsigned_abs();
                let b = o.distances.iter().position(|&u| d <= u);
                let t = o.days.iter().position(|&u| dt <= u64::from(u));
                if let (Some(b), Some(t)) = (b, t) {
                    out[b * nt + t] += 1;
                }
            }
        }
        out
    }

    #[test]
    fn observed_counts_equal_a_brute_force_pair_count() {
        for seed in 0..5 {
            let pts = random_points(1500, seed);
            let k = knox(&pts, &opts(1)).expect("knox");
            let got: Vec<u64> = k.cells.iter().map(|c| c.observed).collect();
            assert_eq!(got, brute(&pts, &opts(1)), "seed {seed}");
            let nt = opts(1).days.len();
            assert!(got[..nt].iter().sum::<u64>() > 0, "same-place pairs exist");
        }
    }

    #[test]
    fn bands_are_inclusive_of_their_upper_bound() {
        let p = |x: f64, day: i32| DatedPoint { x, y: 0.0, day };
        let pts = [p(0.0, 0), p(100.0, 7), p(300.0, 8)];
        let o = KnoxOptions {
            distances: vec![100.0, 200.0],
            days: vec![7, 14],
            permutations: 1,
            seed: 1,
        };
        let k = knox(&pts, &o).expect("knox");
        let obs: Vec<u64> = k.cells.iter().map(|c| c.observed).collect();
        // (0,1): 100 m, 7 days -> first bands; (1,2): 200 m, 1 day -> second distance,
        // first time; (0,2): 300 m -> beyond.
        assert_eq!(obs, vec![1, 0, 1, 0]);
        assert_eq!(k.cells[1].days, (7, 14));
        assert_eq!(k.cells[2].distance, (100.0, 200.0));
    }

    #[test]
    fn the_monte_carlo_mean_is_within_its_error_of_the_exact_expectation() {
        let pts = random_points(2000, 11);
        let o = opts(999);
        let k = knox(&pts, &o).expect("knox");
        let exact = exact_expected(&pts, &o.distances, &o.days);
        for (c, e) in k.cells.iter().zip(&exact) {
            // A cell's count over runs is close to binomial with mean e: the mean of 999
            // runs has sd about sqrt(e / 999); allow 5 sd (and a little for e near 0).
            let tol = 5.0 * (e / 999.0).sqrt() + 0.05;
            assert!((c.expected - e).abs() <= tol, "{c:?} exact {e}");
        }
        assert!(exact.iter().sum::<f64>() > 100.0);
    }

    #[test]
    fn a_planted_near_repeat_is_found_and_noise_is_not() {
        // 1,500 incidents over 10 km x 10 km and 120 days.
        let mut pts = random_points_in(1500, 3, 10_000.0);
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        // 150 repeats: a second incident within 50 m and 3 days of an earlier one.
        for i in 0..150 {
            let p = pts[i];
            pts.push(DatedPoint {
                x: p.x + rng.random_range(-35.0..35.0),
                y: p.y + rng.random_range(-35.0..35.0),
                day: p.day + rng.random_range(0..4),
            });
        }
        let o = KnoxOptions {
            distances: vec![100.0, 200.0, 300.0],
            days: vec![7, 14, 21],
            permutations: 99,
            seed: 5,
        };
        let k = knox(&pts, &o).expect("knox");
        let first = &k.cells[0];
        assert!(first.ratio.expect("expected > 0") > 2.0, "{first:?}");
        assert!(first.p <= 0.01 + 1e-12, "{first:?}");
        // Far in space and time: no excess.
        let last = k.cells.last().expect("cells");
        assert!(last.ratio.expect("expected > 0") < 1.5, "{last:?}");
    }

    #[test]
    fn answers_do_not_depend_on_the_thread_count() {
        let pts = random_points(800, 4);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("pool");
        let a = one.install(|| knox(&pts, &opts(49))).expect("knox");
        let b = knox(&pts, &opts(49)).expect("knox");
        assert_eq!(a.cells, b.cells);
    }

    #[test]
    fn bad_options_are_errors() {
        let pts = random_points(10, 1);
        let mut o = opts(9);
        o.distances = vec![200.0, 100.0];
        assert!(matches!(knox(&pts, &o), Err(NearRepeatError::Distances(_))));
        let mut o = opts(9);
        o.days = vec![];
        assert!(matches!(knox(&pts, &o), Err(NearRepeatError::Days(_))));
        assert_eq!(
            knox(&pts, &opts(0)).unwrap_err(),
            NearRepeatError::Permutations
        );
        assert_eq!(
            knox(&pts[..1], &opts(9)).unwrap_err(),
            NearRepeatError::TooFew(1)
        );
    }
}
