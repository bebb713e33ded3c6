//! The Mann-Kendall trend test (Mann 1945, "Nonparametric tests against trend",
//! Econometrica 13(3); Kendall 1975, "Rank Correlation Methods", 4th ed., Griffin), as
//! ArcGIS Emerging Hot Spot Analysis applies it to each location's series of Gi* z-scores
//! and as `pymannkendall.original_test` computes it (Hussain and Mahmud 2019, JOSS 4(39)).
//!
//! For a series x_1..x_n in time order:
//!
//! ```text
//! S      = sum_{i<j} sign(x_j - x_i)
//! Var(S) = [n(n-1)(2n+5) - sum_g t_g(t_g-1)(2t_g+5)] / 18     (t_g: size of tie group g)
//! z      = (S - 1) / sqrt(Var(S))  if S > 0
//!          (S + 1) / sqrt(Var(S))  if S < 0
//!          0                       if S = 0
//! p      = 2 (1 - Phi(|z|)) = erfc(|z| / sqrt 2)                 (two-sided)
//! tau    = S / (n(n-1)/2)                                        (Kendall's tau-a)
//! ```
//!
//! The +-1 is the continuity correction: S moves in steps of 2, so the normal
//! approximation is evaluated half a step nearer zero. Ties are groups of exactly equal
//! values (`-0.0` equals `0.0`), as `numpy.unique` finds them.
//!
//! Choices where pymannkendall has none or differs:
//!
//! - NaN values are skipped, as pymannkendall's `method='skip'` does; n counts the rest.
//!   This is how a missing month enters (`crate::coverage`: a month a force did not
//!   publish is NaN, never 0): S sums sign(x_j - x_i) over the pairs of observed values
//!   only, in time order, and Var(S) and tau use the observed n. That is the standard
//!   treatment of gaps (Gilbert 1987, "Statistical Methods for Environmental Pollution
//!   Monitoring", Van Nostrand Reinhold, section 16.4: "missing values are allowed", n
//!   being the number of data; Hirsch, Slack and Smith 1982, Water Resources Research
//!   18(1), likewise compare only the pairs present). The test keeps its meaning because
//!   under no trend any subsequence of an exchangeable series is exchangeable.
//! - With fewer than 3 values there is no trend to test: z = 0 and p = 1 (for n = 2 that
//!   is also what the formulas give). With fewer than 2, S, Var(S) and tau are 0
//!   (pymannkendall divides by zero for tau).
//! - p comes from [`fdr::two_sided_p`], i.e. erfc from the `libm` crate, a port of
//!   musl's (Sun's fdlibm `s_erf.c`: rational approximations on five intervals,
//!   under 1 ulp). pymannkendall evaluates `2 * (1 - norm.cdf(|z|))`, which loses
//!   relative accuracy in the tail through cancellation; the two agree to ~1e-13
//!   relative for |z| below 4, and erfc stays accurate where the subtraction does not.
//!
//! S is summed exactly in integers and Var(S) in 128-bit integers before the single
//! division by 18, so both are exact for any series that fits in memory.

use super::fdr;

/// The result of a Mann-Kendall test, named as `pymannkendall.original_test` names it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannKendall {
    /// Mann-Kendall score: concordant minus discordant pairs.
    pub s: f64,
    /// Variance of S under the null hypothesis, corrected for ties.
    pub var_s: f64,
    /// Continuity-corrected normal score.
    pub z: f64,
    /// Two-sided p-value of `z`.
    pub p: f64,
    /// Kendall's tau-a, S over the number of pairs.
    pub tau: f64,
}

impl MannKendall {
    /// A significant upward (`Some(true)`) or downward (`Some(false)`) trend at level
    /// `alpha` (two-sided), or `None`.
    pub fn direction(&self, alpha: f64) -> Option<bool> {
        (self.p < alpha && self.z != 0.0).then_some(self.z > 0.0)
    }
}

/// S = sum_{i<j} sign(x_j - x_i); Var(S) = [n(n-1)(2n+5) - sum_t t(t-1)(2t+5)]/18 (ties);
/// z = (S-1)/sqrt(Var) if S>0, (S+1)/sqrt(Var) if S<0, else 0; p two-sided normal.
/// NaN values are skipped; fewer than 3 values give z = 0, p = 1.
pub fn mann_kendall(x: &[f64]) -> MannKendall {
    let x: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
    let n = x.len();
    let s = score(&x);
    let var_s = variance(&x);
    let pairs = n as f64 * (n as f64 - 1.0) / 2.0;
    let tau = if n >= 2 { s as f64 / pairs } else { 0.0 };
    let z = if n < 3 || var_s <= 0.0 {
        0.0
    } else {
        match s.signum() {
            1 => (s - 1) as f64 / var_s.sqrt(),
            -1 => (s + 1) as f64 / var_s.sqrt(),
            _ => 0.0,
        }
    };
    MannKendall {
        s: s as f64,
        var_s,
        z,
        p: fdr::two_sided_p(z),
        tau,
    }
}

/// S: later values above earlier ones minus later values below them. Comparisons, not
/// subtraction, so equal infinities count as ties as in pymannkendall.
fn score(x: &[f64]) -> i64 {
    let mut s = 0i64;
    for (k, &a) in x.iter().enumerate() {
        for &b in &x[k + 1..] {
            s += i64::from(b > a) - i64::from(b < a);
        }
    }
    s
}

/// Var(S) with the tie correction, exact in integers up to the division by 18.
fn variance(x: &[f64]) -> f64 {
    let term = |t: usize| {
        let t = t as i128;
        t * (t - 1) * (2 * t + 5)
    };
    let mut sorted = x.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let ties: i128 = sorted.chunk_by(|a, b| a == b).map(|g| term(g.len())).sum();
    (term(x.len()) - ties) as f64 / 18.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative closeness, with an absolute floor for values at or near zero.
    fn close(got: f64, want: f64, rel: f64) -> bool {
        (got - want).abs() <= rel * want.abs().max(1e-300) || got == want
    }

    /// Reference values printed by pymannkendall 1.4.3 (`original_test`) with scipy
    /// 1.17.1; `p_sf` is `2 * scipy.stats.norm.sf(|z|)`, the tail computed without
    /// cancellation, which erfc should match more tightly than pymannkendall's `p`.
    struct Case {
        x: &'static [f64],
        s: f64,
        var_s: f64,
        z: f64,
        p: f64,
        p_sf: f64,
        tau: f64,
    }

    const CASES: &[Case] = &[
        Case {
            x: &[1.0, 2.0, 3.0, 4.0, 5.0],
            s: 10.0,
            var_s: 16.666666666666668,
            z: 2.2045407685048604,
            p: 0.0274863361115103,
            p_sf: 0.02748633611151033,
            tau: 1.0,
        },
        Case {
            x: &[1.0, 2.0, 2.0, 3.0, 1.0, 4.0, 4.0, 4.0, 5.0],
            s: 25.0,
            var_s: 86.33333333333333,
            z: 2.5829856120030312,
            p: 0.009794940774536798,
            p_sf: 0.009794940774536859,
            tau: 0.6944444444444444,
        },
        Case {
            x: &[
                2.1, 1.8, 2.4, 1.2, 0.9, 1.5, 0.3, -0.2, 0.4, -0.8, -1.1, -0.5,
            ],
            s: -50.0,
            var_s: 212.66666666666666,
            z: -3.360054858486334,
            p: 0.0007792699724176178,
            p_sf: 0.0007792699724176704,
            tau: -0.7575757575757576,
        },
        Case {
            x: &[1.0, f64::NAN, 3.0, 2.0, 5.0],
            s: 4.0,
            var_s: 8.666666666666666,
            z: 1.0190493307301363,
            p: 0.3081795474670539,
            p_sf: 0.308179547467054,
            tau: 0.6666666666666666,
        },
        Case {
            x: &[0.0, -0.0, 1.0, -1.0, 0.0, 2.0],
            s: 4.0,
            var_s: 24.666666666666668,
            z: 0.6040404496926219,
            p: 0.5458167496705262,
            p_sf: 0.5458167496705262,
            tau: 0.26666666666666666,
        },
        // round(3 sin(1.7 k) + 0.1 k) for k = 0..35: many ties, upward drift.
        Case {
            x: &[
                0.0, 3.0, -1.0, -2.0, 2.0, 3.0, -1.0, -1.0, 3.0, 2.0, -2.0, 1.0, 4.0, 1.0, -2.0,
                3.0, 4.0, 0.0, 0.0, 4.0, 4.0, -1.0, 1.0, 5.0, 3.0, 0.0, 3.0, 6.0, 1.0, 0.0, 5.0,
                5.0, 1.0, 2.0, 6.0, 4.0,
            ],
            s: 191.0,
            var_s: 5291.0,
            z: 2.6120694521598815,
            p: 0.008999596935135301,
            p_sf: 0.00899959693513538,
            tau: 0.30317460317460315,
        },
    ];

    #[test]
    fn matches_pymannkendall_original_test() {
        for c in CASES {
            let r = mann_kendall(c.x);
            assert_eq!(r.s, c.s, "S of {:?}", c.x);
            assert!(
                close(r.var_s, c.var_s, 1e-15),
                "Var(S) {} vs {}",
                r.var_s,
                c.var_s
            );
            assert!(close(r.z, c.z, 1e-14), "z {} vs {}", r.z, c.z);
            assert!(close(r.tau, c.tau, 1e-15), "tau {} vs {}", r.tau, c.tau);
            assert!(close(r.p, c.p, 1e-12), "p {} vs pymannkendall {}", r.p, c.p);
            assert!(close(r.p, c.p_sf, 1e-14), "p {} vs norm.sf {}", r.p, c.p_sf);
        }
    }

    #[test]
    fn monotone_increasing_five_by_hand() {
        // 10 pairs, all concordant; no ties: Var = 5*4*15/18 = 300/18.
        let r = mann_kendall(&[10.0, 20.0, 30.0, 40.0, 50.0]);
        assert_eq!(r.s, 10.0);
        assert_eq!(r.var_s, 300.0 / 18.0);
        assert_eq!(r.z, 9.0 / (300.0f64 / 18.0).sqrt());
        assert_eq!(r.tau, 1.0);
        // Decreasing mirrors it exactly.
        let d = mann_kendall(&[5.0, 4.0, 3.0, 2.0, 1.0]);
        assert_eq!((d.s, d.z, d.p, d.tau), (-10.0, -r.z, r.p, -1.0));
        assert_eq!(d.direction(0.05), Some(false));
        assert_eq!(r.direction(0.05), Some(true));
        assert_eq!(r.direction(0.01), None);
    }

    #[test]
    fn ties_by_hand() {
        // [1, 2, 2, 3]: pairs (1,2)+ (1,2)+ (1,3)+ (2,2)0 (2,3)+ (2,3)+ -> S = 5.
        // One tie group of 2: Var = (4*3*13 - 2*1*9) / 18 = (156 - 18) / 18.
        let r = mann_kendall(&[1.0, 2.0, 2.0, 3.0]);
        assert_eq!(r.s, 5.0);
        assert_eq!(r.var_s, 138.0 / 18.0);
        assert_eq!(r.z, 4.0 / (138.0f64 / 18.0).sqrt());
        assert_eq!(r.tau, 5.0 / 6.0);
    }

    #[test]
    fn constant_series_has_no_trend() {
        let r = mann_kendall(&[3.0; 7]);
        assert_eq!(
            r,
            MannKendall {
                s: 0.0,
                var_s: 0.0,
                z: 0.0,
                p: 1.0,
                tau: 0.0
            }
        );
        assert_eq!(r.direction(0.5), None);
    }

    #[test]
    fn short_series_are_defined_and_nan_free() {
        let none = MannKendall {
            s: 0.0,
            var_s: 0.0,
            z: 0.0,
            p: 1.0,
            tau: 0.0,
        };
        assert_eq!(mann_kendall(&[]), none);
        assert_eq!(mann_kendall(&[4.0]), none);
        assert_eq!(mann_kendall(&[f64::NAN, f64::NAN]), none);
        // n = 2: S and Var(S) as the formulas give, but no test.
        let two = mann_kendall(&[1.0, 2.0]);
        assert_eq!(
            two,
            MannKendall {
                s: 1.0,
                var_s: 1.0,
                z: 0.0,
                p: 1.0,
                tau: 1.0
            }
        );
        for x in [
            &[f64::INFINITY, f64::INFINITY, 1.0][..],
            &[f64::NEG_INFINITY, 0.0, f64::INFINITY],
        ] {
            let r = mann_kendall(x);
            assert!(
                [r.s, r.var_s, r.z, r.p, r.tau]
                    .iter()
                    .all(|v| v.is_finite()),
                "{r:?}"
            );
        }
    }

    /// S over the observed pairs and Var(S) from the observed n, straight from the
    /// definitions on the full series with gaps (no compaction), ties counted by value.
    fn brute_with_gaps(x: &[f64]) -> (f64, f64, f64) {
        let mut s = 0i64;
        for i in 0..x.len() {
            for j in i + 1..x.len() {
                if x[i].is_nan() || x[j].is_nan() {
                    continue;
                }
                s += if x[j] > x[i] {
                    1
                } else if x[j] < x[i] {
                    -1
                } else {
                    0
                };
            }
        }
        let obs: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
        let n = obs.len() as f64;
        let mut ties = 0.0;
        let mut done: Vec<f64> = Vec::new();
        for &v in &obs {
            if done.contains(&v) {
                continue;
            }
            done.push(v);
            let t = obs.iter().filter(|&&u| u == v).count() as f64;
            ties += t * (t - 1.0) * (2.0 * t + 5.0);
        }
        let var = (n * (n - 1.0) * (2.0 * n + 5.0) - ties) / 18.0;
        (s as f64, var, s as f64 / (n * (n - 1.0) / 2.0))
    }

    #[test]
    fn missing_months_use_only_the_observed_pairs() {
        // A monthly series with two months not published (NaN), ties, and a rise.
        let x = [
            3.0,
            4.0,
            f64::NAN,
            4.0,
            6.0,
            5.0,
            f64::NAN,
            7.0,
            7.0,
            9.0,
            8.0,
            10.0,
        ];
        let (s, var, tau) = brute_with_gaps(&x);
        let r = mann_kendall(&x);
        assert_eq!(r.s, s);
        assert!((r.var_s - var).abs() < 1e-12, "{} vs {var}", r.var_s);
        assert!((r.tau - tau).abs() < 1e-15);
        assert_eq!(r.z, (s - 1.0) / var.sqrt());
        // By hand: 10 observed values, tie groups {4, 4} and {7, 7}:
        // Var = (10*9*25 - 2*(2*1*9)) / 18 = (2250 - 36) / 18 = 123.
        assert_eq!(r.var_s, 123.0);
        // Zero instead of missing is another series (12 values, 66 pairs).
        let zeros: Vec<f64> = x
            .iter()
            .map(|v| if v.is_nan() { 0.0 } else { *v })
            .collect();
        assert_ne!(mann_kendall(&zeros), r);
        // Pseudo-random series with gaps against the brute force.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200 {
            let len = 3 + (seed % 30) as usize;
            let x: Vec<f64> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    if seed.is_multiple_of(5) {
                        f64::NAN
                    } else {
                        (seed % 7) as f64
                    }
                })
                .collect();
            let (s, var, _) = brute_with_gaps(&x);
            let r = mann_kendall(&x);
            assert_eq!(r.s, s, "{x:?}");
            assert!((r.var_s - var).abs() < 1e-9, "{x:?}");
        }
    }

    #[test]
    fn large_series_is_exact_and_tail_p_is_accurate() {
        // n = 200 strictly increasing: S = 19900, Var = 200*199*405/18 = 895500.
        let x: Vec<f64> = (0..200).map(f64::from).collect();
        let r = mann_kendall(&x);
        assert_eq!(r.s, 19_900.0);
        assert_eq!(r.var_s, 895_500.0);
        // z = 19899 / sqrt(895500) ~ 21.03: p ~ 3e-98, far below what 1 - cdf resolves.
        assert!(r.p > 0.0 && r.p < 1e-90, "{}", r.p);
    }
}
