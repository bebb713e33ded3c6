//! Local Moran's I (Anselin 1995, "Local indicators of spatial association - LISA",
//! Geographical Analysis 27(2)) with conditional permutation inference, as PySAL computes
//! it (`esda.Moran_Local(y, w, transformation='r', permutations=999)`).
//!
//! With z = y - ybar and row-standardised weights (w_ij = 1 / k_i over the k_i
//! neighbours, the unit itself excluded):
//!
//! ```text
//! I_i = (n - 1) z_i sum_j w_ij z_j / sum_k z_k^2
//! ```
//!
//! which is PySAL's form (Anselin's m2 with n - 1). Inference holds z_i fixed and draws
//! its k_i neighbours' values at random, without replacement, from the other n - 1
//! units, `permutations` times; the pseudo p-value is (extreme + 1) / (P + 1), where
//! extreme counts the permuted I_i at least as far out as the observed one on its side
//! (PySAL's folded rule: the smaller of the counts above and below). The comparison is
//! made on sums of the raw values, where it is exact for counts (see `local_moran`).
//!
//! As in esda's `crand`, one seeded table of P draws of k_max distinct ids from 0..n-1
//! serves every unit (id j stands for unit j, or j + 1 when j >= i, so unit i is never
//! its own neighbour): the draws are made once, not n times, and the result does not
//! depend on the thread count.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::Weights;
use super::fdr;

/// Quadrant of a unit in the Moran scatterplot, numbered as PySAL's `q`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Quadrant {
    HighHigh = 1,
    LowHigh = 2,
    LowLow = 3,
    HighLow = 4,
}

impl Quadrant {
    pub fn label(self) -> &'static str {
        match self {
            Quadrant::HighHigh => "HH",
            Quadrant::LowHigh => "LH",
            Quadrant::LowLow => "LL",
            Quadrant::HighLow => "HL",
        }
    }
}

/// Local Moran results per unit.
#[derive(Debug, Clone)]
pub struct LocalMoran {
    pub i: Vec<f64>,
    pub quadrant: Vec<Quadrant>,
    /// Pseudo p-values from the permutations.
    pub p_sim: Vec<f64>,
    /// Significant at `alpha` (after FDR when asked).
    pub significant: Vec<bool>,
}

/// `permutations` rows of `k` distinct ids from 0..m (partial Fisher-Yates), row-major.
pub(crate) fn random_ids(m: usize, k: usize, permutations: usize, seed: u64) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pool: Vec<u32> = (0..m as u32).collect();
    let mut out = Vec::with_capacity(permutations * k);
    for _ in 0..permutations {
        for t in 0..k {
            let r = rng.random_range(t..m);
            pool.swap(t, r);
        }
        out.extend_from_slice(&pool[..k]);
    }
    out
}

/// How many draws of `rids` (rows of `k_max` ids; id j stands for unit j, or j + 1 when
/// j >= i) give unit i's `k` drawn neighbours a sum s with `sign * (s - observed) >= 0`.
pub(crate) fn draws_at_least(
    y: &[f64],
    rids: &[u32],
    k_max: usize,
    (i, k): (usize, usize),
    observed: f64,
    sign: f64,
) -> usize {
    rids.chunks_exact(k_max)
        .filter(|ids| {
            let s: f64 = ids[..k]
                .iter()
                .map(|&j| y[j as usize + usize::from(j as usize >= i)])
                .sum();
            sign * (s - observed) >= 0.0
        })
        .count()
}

/// esda's folded pseudo p-value: (min(larger, P - larger) + 1) / (P + 1).
pub(crate) fn folded_p(larger: usize, permutations: usize) -> f64 {
    let extreme = larger.min(permutations - larger);
    (extreme as f64 + 1.0) / (permutations as f64 + 1.0)
}

/// Local I values alone (no inference), PySAL's `Is`.
pub fn local_i(y: &[f64], w: &Weights) -> (Vec<f64>, Vec<f64>) {
    let n = y.len();
    let mean = y.iter().sum::<f64>() / n.max(1) as f64;
    let z: Vec<f64> = y.iter().map(|v| v - mean).collect();
    let den: f64 = z.iter().map(|v| v * v).sum();
    let tok = crate::cancel::current();
    let lag: Vec<f64> = (0..n)
        .into_par_iter()
        .with_min_len(1024)
        .map(|i| {
            crate::cancel::check(&tok);
            let row = w.row(i);
            if row.is_empty() {
                0.0
            } else {
                row.iter().map(|&j| z[j as usize]).sum::<f64>() / row.len() as f64
            }
        })
        .collect();
    let scale = if den > 0.0 {
        (n as f64 - 1.0) / den
    } else {
        0.0
    };
    let i = z.iter().zip(&lag).map(|(a, l)| scale * a * l).collect();
    (i, lag)
}

/// Local Moran's I with `permutations` conditional permutations from `seed`; units are
/// significant when p_sim < alpha (Benjamini-Hochberg at alpha when `fdr`).
pub fn local_moran(
    y: &[f64],
    w: &Weights,
    permutations: usize,
    seed: u64,
    alpha: f64,
    fdr: bool,
) -> LocalMoran {
    let n = y.len();
    let (i_obs, lag) = local_i(y, w);
    let mean = y.iter().sum::<f64>() / n.max(1) as f64;
    let z: Vec<f64> = y.iter().map(|v| v - mean).collect();
    let k_max = (0..n)
        .map(|i| w.row(i).len())
        .max()
        .unwrap_or(0)
        .min(n.saturating_sub(1));
    let rids = random_ids(n.saturating_sub(1), k_max, permutations, seed);
    let tok = crate::cancel::current();
    let p_sim: Vec<f64> = (0..n)
        .into_par_iter()
        .with_min_len(64)
        .map(|i| {
            crate::cancel::check(&tok);
            let k = w.row(i).len();
            if k == 0 || k > k_max || permutations == 0 {
                return 1.0;
            }
            // I_perm >= I_obs  <=>  z_i (sum of the drawn y - sum of the neighbours' y) >= 0:
            // the mean cancels between the two sums of k values, so for counts the test is
            // exact integer arithmetic and ties count as "as extreme" however the sums are
            // ordered (comparing two floating I values would decide ties by rounding).
            let sign = z[i].signum() * f64::from(u8::from(z[i] != 0.0));
            let observed: f64 = w.row(i).iter().map(|&j| y[j as usize]).sum();
            folded_p(
                draws_at_least(y, &rids, k_max, (i, k), observed, sign),
                permutations,
            )
        })
        .collect();
    let quadrant = z
        .iter()
        .zip(&lag)
        .map(|(&a, &l)| match (a > 0.0, l > 0.0) {
            (true, true) => Quadrant::HighHigh,
            (false, true) => Quadrant::LowHigh,
            (false, false) => Quadrant::LowLow,
            (true, false) => Quadrant::HighLow,
        })
        .collect();
    let cut = if fdr {
        fdr::bh_threshold(&p_sim, alpha).unwrap_or(-1.0)
    } else {
        alpha
    };
    let significant = p_sim
        .iter()
        .map(|p| if fdr { *p <= cut } else { *p < cut })
        .collect();
    LocalMoran {
        i: i_obs,
        quadrant,
        p_sim,
        significant,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: u32) -> Weights {
        Weights::from_lists(
            (0..n)
                .map(|i| {
                    [i.wrapping_sub(1), i + 1]
                        .into_iter()
                        .filter(|&j| j < n)
                        .collect()
                })
                .collect(),
        )
    }

    #[test]
    fn local_i_matches_the_formula_by_hand() {
        let y = [1.0, 2.0, 6.0, 7.0];
        let (i, lag) = local_i(&y, &line(4));
        // mean 4, z = -3 -2 2 3, sum z^2 = 26, n - 1 = 3.
        let want_lag = [-2.0, (-3.0 + 2.0) / 2.0, (-2.0 + 3.0) / 2.0, 2.0];
        let want: Vec<f64> = [-3.0, -2.0, 2.0, 3.0]
            .iter()
            .zip(want_lag)
            .map(|(z, l)| 3.0 * z * l / 26.0)
            .collect();
        for k in 0..4 {
            assert!((lag[k] - want_lag[k]).abs() < 1e-12);
            assert!((i[k] - want[k]).abs() < 1e-12, "{k}");
        }
    }

    #[test]
    fn a_strong_cluster_is_significant_and_results_are_seeded() {
        // 60 units on a line; a block of high values in the middle.
        let y: Vec<f64> = (0..60)
            .map(|i| {
                if (25..35).contains(&i) {
                    50.0
                } else {
                    (i % 3) as f64
                }
            })
            .collect();
        let w = line(60);
        let a = local_moran(&y, &w, 999, 7, 0.05, false);
        let b = local_moran(&y, &w, 999, 7, 0.05, false);
        assert_eq!(a.p_sim, b.p_sim);
        assert!(a.significant[29] && a.quadrant[29] == Quadrant::HighHigh);
        assert!(a.p_sim.iter().all(|p| (0.001..=1.0).contains(p)));
        // Unit 29's two neighbours are both high; a permutation is as extreme only when it
        // draws two of the other 9 highs from the 59 others: P = 9*8/(59*58) = 0.021, so
        // p_sim ~ (0.021*999 + 1)/1000 = 0.022, within Monte Carlo error (sd ~ 0.0045).
        assert!((a.p_sim[29] - 0.022).abs() < 0.015, "{}", a.p_sim[29]);
    }
}
