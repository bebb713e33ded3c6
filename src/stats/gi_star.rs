//! Getis-Ord Gi* (Ord and Getis 1995, "Local spatial autocorrelation statistics:
//! distributional issues and an application", Geographical Analysis 27(4)), as Esri
//! documents it ("How Hot Spot Analysis (Getis-Ord Gi*) works") and PySAL computes it
//! (`esda.G_Local(y, w, transform='B', star=True).Zs`).
//!
//! Over all n units, the unit itself included in its neighbourhood:
//!
//! ```text
//! z_i = (sum_j w_ij x_j - xbar W_i) / (S sqrt((n sum_j w_ij^2 - W_i^2) / (n - 1)))
//! xbar = sum x / n,   S = sqrt(sum x^2 / n - xbar^2),   W_i = sum_j w_ij
//! ```
//!
//! With binary weights sum_j w_ij^2 = W_i, so each z needs only the neighbourhood sum:
//! one pass over the sparse rows, parallel over units.
//!
//! # Permutation inference
//! On sparse counts the normal approximation misleads (3 incidents can give p = 1e-83),
//! so [`p_sim`] gives PySAL's conditional-permutation pseudo p-values
//! (`G_Local(y, w, transform='B', star=True, permutations=999).p_sim`): unit i keeps its
//! own value and its other W_i - 1 neighbours' values are drawn without replacement from
//! the other n - 1 units; with `larger` the draws whose G*_i is at least the observed,
//! p = (min(larger, P - larger) + 1) / (P + 1), esda's folded rule. G*_i's denominator
//! (the sum of all values) is the same in every draw, so the comparison is made on
//! neighbourhood sums, exact for counts. One seeded table of draws serves every unit, as
//! in esda's `crand` and our local Moran's I.

use rayon::prelude::*;

use super::Weights;
use super::{fdr, local_moran};

/// Gi* z-scores, p-values and confidence bins of every unit.
#[derive(Debug, Clone)]
pub struct GiStar {
    pub z: Vec<f64>,
    /// Two-sided normal p-values.
    pub p: Vec<f64>,
    /// -3..3 for 99/95/90% cold/hot, 0 not significant (with or without FDR).
    pub bin: Vec<i8>,
}

/// Gi* z-scores with binary weights `w` (each row must include the unit itself for the
/// star statistic). A constant variable (S = 0) has no hotspots: every z is 0.
pub fn z_scores(x: &[f64], w: &Weights) -> Vec<f64> {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let s = (x.iter().map(|v| v * v).sum::<f64>() / n - mean * mean)
        .max(0.0)
        .sqrt();
    if x.len() < 2 || s == 0.0 || !s.is_finite() {
        return vec![0.0; x.len()];
    }
    let tok = crate::cancel::current();
    (0..x.len())
        .into_par_iter()
        .with_min_len(1024)
        .map(|i| {
            crate::cancel::check(&tok);
            let row = w.row(i);
            let wi = row.len() as f64;
            let lag: f64 = row.iter().map(|&j| x[j as usize]).sum();
            let den = s * ((n * wi - wi * wi) / (n - 1.0)).sqrt();
            if den > 0.0 {
                (lag - mean * wi) / den
            } else {
                0.0
            }
        })
        .collect()
}

/// Gi* with p-values and bins; `fdr` applies Benjamini-Hochberg control.
pub fn gi_star(x: &[f64], w: &Weights, fdr: bool) -> GiStar {
    let z = z_scores(x, w);
    let p: Vec<f64> = z.iter().map(|z| fdr::two_sided_p(*z)).collect();
    let bin = fdr::bins(&z, &p, fdr);
    GiStar { z, p, bin }
}

/// Conditional-permutation pseudo p-values of Gi* (see the module docs); `w` as for
/// [`z_scores`] (each row includes the unit itself). A unit with no other neighbour
/// gets 1.
pub fn p_sim(x: &[f64], w: &Weights, permutations: usize, seed: u64) -> Vec<f64> {
    let n = x.len();
    let others = |i: usize| w.row(i).iter().filter(|&&j| j as usize != i).count();
    let k_max = (0..n)
        .map(others)
        .max()
        .unwrap_or(0)
        .min(n.saturating_sub(1));
    if permutations == 0 || k_max == 0 {
        return vec![1.0; n];
    }
    let rids = local_moran::random_ids(n - 1, k_max, permutations, seed);
    let tok = crate::cancel::current();
    (0..n)
        .into_par_iter()
        .with_min_len(64)
        .map(|i| {
            crate::cancel::check(&tok);
            let k = others(i);
            if k == 0 {
                return 1.0;
            }
            let observed: f64 = w
                .row(i)
                .iter()
                .filter(|&&j| j as usize != i)
                .map(|&j| x[j as usize])
                .sum();
            let larger = local_moran::draws_at_least(x, &rids, k_max, (i, k), observed, 1.0);
            local_moran::folded_p(larger, permutations)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force with a dense weights matrix, straight from the formula.
    fn dense(x: &[f64], w: &[Vec<f64>]) -> Vec<f64> {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let s = (x.iter().map(|v| v * v).sum::<f64>() / n - mean * mean).sqrt();
        (0..x.len())
            .map(|i| {
                let wi: f64 = w[i].iter().sum();
                let w2: f64 = w[i].iter().map(|v| v * v).sum();
                let lag: f64 = w[i].iter().zip(x).map(|(a, b)| a * b).sum();
                (lag - mean * wi) / (s * ((n * w2 - wi * wi) / (n - 1.0)).sqrt())
            })
            .collect()
    }

    #[test]
    fn sparse_equals_dense_formula() {
        // A path of 6 units, neighbours within 1 step, self included.
        let lists: Vec<Vec<u32>> = (0..6u32)
            .map(|i| (i.saturating_sub(1)..=(i + 1).min(5)).collect())
            .collect();
        let w = Weights::from_lists(lists.clone());
        let mut d = vec![vec![0.0; 6]; 6];
        for (i, l) in lists.iter().enumerate() {
            for &j in l {
                d[i][j as usize] = 1.0;
            }
        }
        let x = [0.0, 1.0, 7.0, 9.0, 2.0, 0.0];
        let got = z_scores(&x, &w);
        for (a, b) in got.iter().zip(dense(&x, &d)) {
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
        }
        assert!(got[2] > 0.0 && got[0] < 0.0);
    }

    #[test]
    fn constant_input_has_no_hotspots() {
        let w = Weights::from_lists(vec![vec![0, 1], vec![0, 1], vec![2]]);
        assert_eq!(z_scores(&[4.0, 4.0, 4.0], &w), vec![0.0; 3]);
        assert_eq!(
            z_scores(&[], &Weights::from_lists(vec![])),
            Vec::<f64>::new()
        );
    }
}
