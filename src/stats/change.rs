//! Change between two periods in one unit: did the rate of incidents go up or down more
//! than chance would make it?
//!
//! The test is the exact conditional (binomial) test for two Poisson counts (Przyborowski
//! and Wilenski 1940; the C-test of Krishnamoorthy and Thomson 2004): with `a` incidents in
//! the period of interest (exposure `ta` months) and `b` in the comparison period (`tb`),
//! under "the same monthly rate" `a` given `n = a + b` is Binomial(n, ta / (ta + tb)). The
//! two-sided p-value is that of `scipy.stats.binomtest(a, n, p0)`: the probability of
//! every outcome no more likely than the one observed (with scipy's relative tolerance
//! 1e-7 for ties). Across units, Benjamini-Hochberg false discovery rate control
//! (`stats::fdr`) at 5 % decides which changes are called significant.
//!
//! Reference values: `tests/reference/make_change_reference.py` (scipy) writes
//! `tests/reference/expected/change_binomtest.json`, which `tests/statistics.rs` checks.

/// The two-sided exact binomial p-value of `k` successes in `n` trials with success
/// probability `p` (as `scipy.stats.binomtest(k, n, p).pvalue`). `k > n`, `n = 0` or a
/// `p` outside (0, 1) give 1 (nothing to test).
pub fn binom_two_sided(k: u64, n: u64, p: f64) -> f64 {
    if n == 0 || k > n || !(p > 0.0 && p < 1.0) {
        return 1.0;
    }
    let ln_pmf = ln_pmf_fn(n, p);
    let d = ln_pmf(k);
    // scipy: outcomes with pmf <= d * (1 + 1e-7) count as at least as extreme.
    let bound = d + (1e-7f64).ln_1p();
    if (k as f64 - p * n as f64).abs() < f64::EPSILON * n as f64 {
        return 1.0;
    }
    // Sum from the mode outwards would lose nothing, but a plain pass over 0..=n is exact
    // enough (terms below 1e-300 vanish) and n is a unit's incidents in two periods.
    let mut total = 0.0f64;
    for i in 0..=n {
        let l = ln_pmf(i);
        if l <= bound {
            total += l.exp();
        }
    }
    total.min(1.0)
}

/// `ln P(X = i)` for X ~ Binomial(n, p).
fn ln_pmf_fn(n: u64, p: f64) -> impl Fn(u64) -> f64 {
    let (lp, lq) = (p.ln(), (-p).ln_1p());
    let ln_n = libm::lgamma(n as f64 + 1.0);
    move |i: u64| {
        let (i, m) = (i as f64, (n - i.min(n)) as f64);
        ln_n - libm::lgamma(i + 1.0) - libm::lgamma(m + 1.0) + i * lp + m * lq
    }
}

/// The direction of a unit's change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Increase,
    Decrease,
    NoChange,
}

impl Direction {
    /// The signed bin the map colours: 1 increase, -1 decrease, 0 neither.
    pub fn bin(self) -> i8 {
        match self {
            Direction::Increase => 1,
            Direction::Decrease => -1,
            Direction::NoChange => 0,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Direction::Increase => "significant increase",
            Direction::Decrease => "significant decrease",
            Direction::NoChange => "no significant change",
        }
    }
}

/// The test in every unit: counts `now` (exposure `t_now`) against `before` (`t_before`),
/// significance at `alpha` with Benjamini-Hochberg control across the units tested (those
/// with any incident) when `fdr`. Returns each unit's p-value (1 where nothing was tested)
/// and direction.
pub fn changes(
    now: &[u64],
    before: &[u64],
    t_now: f64,
    t_before: f64,
    alpha: f64,
    fdr: bool,
) -> (Vec<f64>, Vec<Direction>) {
    let p0 = t_now / (t_now + t_before);
    let p: Vec<f64> = now
        .iter()
        .zip(before)
        .map(|(&a, &b)| binom_two_sided(a, a + b, p0))
        .collect();
    let tested: Vec<f64> = now
        .iter()
        .zip(before)
        .zip(&p)
        .filter(|((a, b), _)| **a + **b > 0)
        .map(|(_, &p)| p)
        .collect();
    let critical = if fdr {
        super::fdr::bh_threshold(&tested, alpha)
    } else {
        Some(alpha).filter(|_| !tested.is_empty())
    };
    let dir = now
        .iter()
        .zip(before)
        .zip(&p)
        .map(|((&a, &b), &pv)| {
            let significant =
                a + b > 0 && critical.is_some_and(|c| if fdr { pv <= c } else { pv < c });
            if !significant {
                Direction::NoChange
            } else if a as f64 * t_before > b as f64 * t_now {
                Direction::Increase
            } else {
                Direction::Decrease
            }
        })
        .collect();
    (p, dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force from exact rationals for small n: the pmf by Pascal's triangle.
    fn brute(k: u64, n: u64, p: f64) -> f64 {
        let mut row = vec![1.0f64];
        for _ in 0..n {
            let mut next = vec![1.0f64; row.len() + 1];
            for j in 1..row.len() {
                next[j] = row[j - 1] + row[j];
            }
            row = next;
        }
        let pmf: Vec<f64> = (0..=n)
            .map(|i| row[i as usize] * p.powi(i as i32) * (1.0 - p).powi((n - i) as i32))
            .collect();
        let d = pmf[k as usize] * (1.0 + 1e-7);
        pmf.iter().filter(|&&x| x <= d).sum::<f64>().min(1.0)
    }

    #[test]
    fn matches_brute_force_for_small_counts() {
        for n in 1..=30u64 {
            for k in 0..=n {
                for p in [0.1, 0.25, 0.5, 0.6, 0.9] {
                    let got = binom_two_sided(k, n, p);
                    let want = brute(k, n, p);
                    assert!(
                        (got - want).abs() <= 1e-9 * want.max(1e-12) + 1e-15,
                        "k {k} n {n} p {p}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn degenerate_inputs_test_nothing() {
        assert_eq!(binom_two_sided(0, 0, 0.5), 1.0);
        assert_eq!(binom_two_sided(3, 2, 0.5), 1.0);
        assert_eq!(binom_two_sided(1, 2, 0.0), 1.0);
        assert_eq!(binom_two_sided(5, 10, 0.5), 1.0);
    }

    #[test]
    fn a_doubling_on_many_incidents_is_an_increase_and_noise_is_not() {
        // 12 months each: 200 against 100 is far beyond chance; 11 against 9 is not.
        let (p, d) = changes(&[200, 11, 0, 40], &[100, 9, 0, 90], 12.0, 12.0, 0.05, true);
        assert_eq!(d[0], Direction::Increase);
        assert_eq!(d[1], Direction::NoChange);
        assert_eq!(d[2], Direction::NoChange);
        assert_eq!(d[3], Direction::Decrease);
        assert!(p[0] < 1e-8 && p[1] > 0.5 && p[2] == 1.0);
        // Exposure matters: 200 in 24 months against 100 in 12 is the same rate.
        let (_, d) = changes(&[200], &[100], 24.0, 12.0, 0.05, true);
        assert_eq!(d[0], Direction::NoChange);
    }
}
