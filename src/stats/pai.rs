//! How well a set of predicted places captures later incidents: hit rate, the Predictive
//! Accuracy Index (PAI) and the Predictive Efficiency Index (PEI).
//!
//! For a selection of units covering area `a` of a study area `A`, holding `n` of the `N`
//! test incidents:
//!
//! ```text
//! hit rate = n / N
//! PAI      = (n / N) / (a / A)                      (Chainey, Tompson and Uhlig 2008)
//! PEI      = PAI / PAI*  =  n / n*                  (Hunt 2016)
//! ```
//!
//! `PAI*` is the best PAI any selection of the same area could reach, `n*` the most test
//! incidents that area could hold. A PAI of 1 is what a random choice of places earns on
//! average; a PEI of 1 means no selection of that size would have done better.
//!
//! # Algorithm
//! `n*` is the fractional-knapsack bound: units in descending order of test incidents per
//! km2, taken whole while they fit in `a`, and the next one in proportion to the area left.
//! For units of equal area (an H3 grid at one resolution, up to its small area variation)
//! this is exactly the top cells by count, the selection Hunt describes. For units of
//! unequal area (LSOAs) choosing the best whole units is a knapsack problem; the bound is
//! never below any whole-unit selection, so PEI stays within [0, 1] and errs, if at all,
//! on the modest side.
//!
//! # References
//! - Chainey, S., Tompson, L. and Uhlig, S. (2008). "The utility of hotspot mapping for
//!   predicting spatial patterns of crime". *Security Journal* 21, 4-28.
//! - Hunt, J. M. (2016). "Do crime hot spots move? Exploring the effects of the modifiable
//!   areal unit problem and modifiable temporal unit problem on crime hot spot stability".
//!   PhD thesis, American University, Washington DC (the Predictive Efficiency Index).

/// The accuracy of one selection against one set of test counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accuracy {
    /// n / N.
    pub hit_rate: f64,
    /// (n / N) / (a / A).
    pub pai: f64,
    /// n / n*, the share of the best possible capture for the same area.
    pub pei: f64,
    /// a / A.
    pub area_share: f64,
}

fn sum_at(v: &[f64], selected: &[usize]) -> f64 {
    selected.iter().filter_map(|&i| v.get(i)).sum()
}

/// The share of all test incidents that fall in the selected units, n / N; `None` when
/// there are no test incidents.
pub fn hit_rate(test: &[f64], selected: &[usize]) -> Option<f64> {
    let total: f64 = test.iter().sum();
    (total > 0.0).then(|| sum_at(test, selected) / total)
}

/// PAI = (n / N) / (a / A); `None` when there are no test incidents or the selection (or
/// the study area) has no area.
pub fn pai(test: &[f64], area: &[f64], selected: &[usize]) -> Option<f64> {
    let share = area_share(area, selected)?;
    Some(hit_rate(test, selected)? / share)
}

/// a / A; `None` when either area is zero.
pub fn area_share(area: &[f64], selected: &[usize]) -> Option<f64> {
    let a = sum_at(area, selected);
    let total: f64 = area.iter().sum();
    (a > 0.0 && total > 0.0).then(|| a / total)
}

/// The most test incidents units of total area `budget` can hold (the fractional bound
/// described in the module docs).
pub fn best_capture(test: &[f64], area: &[f64], budget: f64) -> f64 {
    let mut order: Vec<usize> = (0..test.len().min(area.len()))
        .filter(|&i| test[i] > 0.0)
        .collect();
    let density = |i: usize| {
        if area[i] > 0.0 {
            test[i] / area[i]
        } else {
            f64::INFINITY
        }
    };
    order.sort_by(|&a, &b| density(b).total_cmp(&density(a)).then(a.cmp(&b)));
    let (mut left, mut n) = (budget.max(0.0), 0.0);
    for i in order {
        if area[i] <= left {
            left -= area[i];
            n += test[i];
        } else {
            n += test[i] * left / area[i];
            break;
        }
    }
    n
}

/// PEI = n / n*, with n* the best capture for the selection's area; `None` when nothing
/// could have been captured.
pub fn pei(test: &[f64], area: &[f64], selected: &[usize]) -> Option<f64> {
    let best = best_capture(test, area, sum_at(area, selected));
    // The bound is never below n; the min absorbs rounding in the sums.
    (best > 0.0).then(|| (sum_at(test, selected) / best).min(1.0))
}

/// Hit rate, PAI, PEI and area share together; `None` when there are no test incidents
/// or the selection has no area.
pub fn accuracy(test: &[f64], area: &[f64], selected: &[usize]) -> Option<Accuracy> {
    Some(Accuracy {
        hit_rate: hit_rate(test, selected)?,
        pai: pai(test, area, selected)?,
        pei: pei(test, area, selected)?,
        area_share: area_share(area, selected)?,
    })
}

/// For a ranked list of units: after each place, the cumulative share of incidents
/// captured and the PAI of the list so far (`None` where undefined).
pub fn cumulative(counts: &[f64], area: &[f64], ranked: &[usize]) -> Vec<(f64, Option<f64>)> {
    let total_n: f64 = counts.iter().sum();
    let total_a: f64 = area.iter().sum();
    let (mut n, mut a) = (0.0, 0.0);
    ranked
        .iter()
        .map(|&i| {
            n += counts.get(i).copied().unwrap_or(0.0);
            a += area.get(i).copied().unwrap_or(0.0);
            let share = if total_n > 0.0 { n / total_n } else { 0.0 };
            let pai = (total_n > 0.0 && a > 0.0 && total_a > 0.0).then(|| share / (a / total_a));
            (share, pai)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AREA: [f64; 4] = [1.0, 1.0, 1.0, 1.0];
    const TEST: [f64; 4] = [6.0, 2.0, 2.0, 0.0];

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn by_hand_on_four_equal_cells() {
        // Unit 1: 2 of 10 incidents in 1 of 4 km2.
        close(hit_rate(&TEST, &[1]).unwrap(), 0.2);
        close(pai(&TEST, &AREA, &[1]).unwrap(), 0.2 / 0.25);
        // The best single cell holds 6: PEI = 2 / 6.
        close(pei(&TEST, &AREA, &[1]).unwrap(), 2.0 / 6.0);
        // Units 1 and 3: 2 of 10 in half the area; the best two cells hold 8.
        let acc = accuracy(&TEST, &AREA, &[1, 3]).unwrap();
        close(acc.hit_rate, 0.2);
        close(acc.pai, 0.4);
        close(acc.pei, 0.25);
        close(acc.area_share, 0.5);
    }

    #[test]
    fn the_perfect_selection_has_pei_one_and_everything_pai_one() {
        close(pei(&TEST, &AREA, &[0]).unwrap(), 1.0);
        close(pei(&TEST, &AREA, &[0, 2]).unwrap(), 1.0);
        close(pai(&TEST, &AREA, &[0]).unwrap(), 0.6 / 0.25);
        let all = [0, 1, 2, 3];
        close(pai(&TEST, &AREA, &all).unwrap(), 1.0);
        close(hit_rate(&TEST, &all).unwrap(), 1.0);
        close(pei(&TEST, &AREA, &all).unwrap(), 1.0);
    }

    #[test]
    fn unequal_areas_use_the_density_bound() {
        // A 2 km2 unit with 6 and two 1 km2 units with 4 and 1: for 2 km2 the bound takes
        // the 4 (density 4), then half of the 6 (density 3): n* = 7.
        let test = [6.0, 4.0, 1.0];
        let area = [2.0, 1.0, 1.0];
        close(best_capture(&test, &area, 2.0), 7.0);
        close(pei(&test, &area, &[0]).unwrap(), 6.0 / 7.0);
        close(pei(&test, &area, &[1, 2]).unwrap(), 5.0 / 7.0);
        close(pai(&test, &area, &[0]).unwrap(), (6.0 / 11.0) / 0.5);
    }

    #[test]
    fn undefined_cases_are_none() {
        assert_eq!(hit_rate(&[0.0, 0.0], &[0]), None);
        assert_eq!(pai(&TEST, &AREA, &[]), None);
        assert_eq!(pei(&[0.0; 4], &AREA, &[0]), None);
        assert_eq!(accuracy(&TEST, &[0.0; 4], &[0]), None);
        close(best_capture(&TEST, &AREA, 0.0), 0.0);
    }

    #[test]
    fn cumulative_shares_rise_to_one_and_pai_falls_to_one() {
        let c = cumulative(&TEST, &AREA, &[0, 1, 2, 3]);
        let shares: Vec<f64> = c.iter().map(|x| x.0).collect();
        assert_eq!(shares, vec![0.6, 0.8, 1.0, 1.0]);
        close(c[0].1.unwrap(), 2.4);
        close(c[3].1.unwrap(), 1.0);
        assert_eq!(cumulative(&[0.0; 2], &[1.0; 2], &[0])[0], (0.0, None));
    }
}
