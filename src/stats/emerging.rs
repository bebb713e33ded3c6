//! Emerging hot spot analysis, as Esri documents it ("How Emerging Hot Spot Analysis
//! works", ArcGIS Pro, Space Time Pattern Mining toolbox): a space-time Gi* for every bin
//! of a cube of counts, the Mann-Kendall trend test (`mann_kendall`) on each location's
//! series of Gi* z-scores, and one of 17 categories per location from the two.
//!
//! # Space-time Gi*
//!
//! The cube holds `values[t][i]`, T time steps by n units, N = nT bins. The neighbourhood
//! of bin (t, i) is every bin (s, j) with j a spatial neighbour of i (binary weights,
//! i itself included: the star) and s in the time window `max(0, t - tw + 1) ..= t`: the
//! current step and the `tw - 1` before it. Esri's "Neighborhood Time Step" N counts the
//! previous steps only ("all of their associated bins for the previous N time-step
//! intervals"), so Esri's N is `tw = N + 1` here, and Esri's default of 1 is `tw = 2`.
//! Near the start of the cube the window is shorter and W_ti smaller; nothing wraps.
//!
//! The Gi* of Ord and Getis (1995) over all N bins, as DOMAIN.md and `gi_star` state it,
//! with the mean and standard deviation of the whole cube (Esri's default global window,
//! "Entire cube"):
//!
//! ```text
//! z_ti = (sum_{(s,j) in nbhd(t,i)} x_sj - xbar W_ti) / (S sqrt((N W_ti - W_ti^2) / (N - 1)))
//! xbar = sum x / N,   S = sqrt(sum x^2 / N - xbar^2),   W_ti = |nbhd(t, i)|
//! ```
//!
//! A constant cube (S = 0) has no hot spots: every z is 0, as in `gi_star`.
//!
//! # Per-step states
//!
//! A bin is hot (+1) when z > 0 and its two-sided p < 0.10 (90% confidence, Esri's lowest
//! hot spot bin), cold (-1) when z < 0 likewise, else 0. [`step_states`] computes this with
//! or without Benjamini-Hochberg control applied to each time step's n tests (`fdr`);
//! callers wanting another rule pass their own states to [`categorize`], which reads only
//! the sign of each state (Gi* bins -3..3 work as they are).
//!
//! # Categories
//!
//! Esri's definitions (ArcGIS Pro wording), with H the number of hot steps of T:
//!
//! | category | Esri | rule here |
//! |---|---|---|
//! | New | "hot spot for the final time step and has never been a statistically significant hot spot before" | final hot, H = 1 |
//! | Consecutive | "a single uninterrupted run of at least two statistically significant hot spot bins in the final time-step intervals", never hot before the run, under 90% hot | final run of hot steps of length H >= 2, H < 90% |
//! | Intensifying | hot for 90% of the steps "including the final time step", clustering intensity "increasing overall", significant | H >= 90%, final hot, significant upward trend |
//! | Persistent | hot for 90% of the steps "with no discernible trend" | H >= 90%, final hot, no significant trend |
//! | Diminishing | as intensifying, intensity "decreasing overall", significant | H >= 90%, final hot, significant downward trend |
//! | Sporadic | hot "for the final time-step interval with a history of also being an on-again and off-again hot spot", under 90% hot, never cold | final hot, hot before the final run, H < 90%, never cold |
//! | Oscillating | hot "for the final time-step interval that has a history of also being a statistically significant cold spot during a prior time step", under 90% hot | final hot, cold at some step, H < 90%, neither new nor consecutive |
//! | Historical | "the most recent time period is not hot, but at least 90 percent of the time-step intervals have been statistically significant hot spots" | H >= 90%, final not hot |
//!
//! Cold spots mirror every rule with hot and cold swapped and the trend reversed: an
//! intensifying cold spot's z-scores fall significantly. Anything else is No Pattern
//! Detected. "At least 90%" is `10 H >= 9 T` in integers, so 9 of 10 steps qualifies and
//! 8 of 9 does not.
//!
//! The trend is significant when the Mann-Kendall p < `trend_alpha`. Esri's page and
//! DOMAIN.md do not state the level; [`DEFAULT_TREND_ALPHA`] is 0.05, pymannkendall's
//! default, and callers can choose.
//!
//! ## Precedence
//!
//! The definitions overlap; [`categorize`] resolves them in this order, so every series
//! maps to exactly one category:
//!
//! 1. **A 90% history decides first.** If hot (or cold) steps make up at least 90% of a
//!    series of two or more steps, the category is that side's intensifying,
//!    diminishing or persistent (final step on that side) or historical (final step not
//!    on that side, whatever it is). At most one side can reach 90%. This puts, for
//!    example, nine hot steps then one cold step in Historical Hot rather than New Cold
//!    or Oscillating Cold: the long history is the stronger statement, and ordering by
//!    history rather than by "hot before cold" keeps the hot and cold rules exact
//!    mirrors of each other.
//! 2. **Otherwise the final step decides.** If it is not significant the category is
//!    No Pattern. If it is hot: New if it is the only hot step; else Consecutive if the
//!    final run holds every hot step; else Oscillating if any step was cold; else
//!    Sporadic. Cold mirrors this.
//!
//! # Missing months
//!
//! A time step can be *missing*: a month some force did not publish (`crate::coverage`).
//! It is not a zero. [`emerging_hot_spots_observed`] takes which steps are observed and
//! treats the others as absent from the cube:
//!
//! - The global mean and S are over the observed bins only (N = n T_obs).
//! - The time window counts observed steps: the current step and the `tw - 1` observed
//!   steps before it, so the month after a gap looks back to the last published month
//!   (the cube holds the published months in order; a window over calendar months would
//!   halve W right after every gap and weaken exactly the steps beside it). A missing
//!   step has no z (NaN) and no state (0 in `states`, `observed` false).
//! - Mann-Kendall runs over the observed z only (`mann_kendall` skips NaN).
//! - The categories are judged over the observed steps: T, H, "the final step", a "run"
//!   and "consecutive" all count observed steps, so a run is not broken by a month with
//!   no data and a hot spot hot in every published month is persistent. (ArcGIS fills
//!   empty bins of a space-time cube by estimation before the analysis; leaving them out
//!   instead asserts nothing about the month.)
//!
//! With every step observed this is exactly the analysis above.
//!
//! Choices the Esri wording leaves open, made here:
//!
//! - Persistent requires the final step hot, like intensifying and diminishing. Read
//!   literally Esri's persistent would also take every historical hot spot with no
//!   trend, leaving Historical almost unreachable.
//! - New and Consecutive take precedence over Oscillating: a series cold earlier and then
//!   hot only in the final step (or only in a final run) is New (Consecutive), since
//!   both definitions speak only of earlier hot steps and the categories come before
//!   Oscillating in Esri's table. (sfdep ranks this Oscillating; xarray-spatial ranks it
//!   New.)
//! - Sporadic requires the final step hot, as the ArcGIS Pro wording does (ArcMap 10.x
//!   said only "on-again then off-again"). A series hot only in the past, under 90%, is
//!   No Pattern.
//! - A one-step series that is hot is New: 90% of one step is not a history, so rule 1
//!   needs at least two steps on its side.

use rayon::prelude::*;
use thiserror::Error;

use super::Weights;
use super::fdr;
use super::mann_kendall::{MannKendall, mann_kendall};

/// Mann-Kendall level for intensifying and diminishing when the caller has no other.
pub const DEFAULT_TREND_ALPHA: f64 = 0.05;

/// Esri's default "Neighborhood Time Step" of 1 as a window: the step and the one before.
pub const ESRI_DEFAULT_WINDOW: usize = 2;

/// Why a space-time cube could not be analysed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EmergingError {
    #[error("the time window must cover at least the current step (tw >= 1)")]
    ZeroWindow,
    #[error("time step {step} has {len} values, expected {expected} (one per unit)")]
    RaggedCube {
        step: usize,
        len: usize,
        expected: usize,
    },
    #[error("the weights cover {weights} units but the cube has {units}")]
    WeightsMismatch { weights: usize, units: usize },
    #[error("unit {unit} lists neighbour {neighbour}, outside the cube's {units} units")]
    NeighbourOutOfRange {
        unit: usize,
        neighbour: u32,
        units: usize,
    },
    #[error("the value at time step {step}, unit {unit} is not finite ({value})")]
    NonFinite {
        step: usize,
        unit: usize,
        value: f64,
    },
}

/// The 17 emerging hot spot categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    NewHot,
    ConsecutiveHot,
    IntensifyingHot,
    PersistentHot,
    DiminishingHot,
    SporadicHot,
    OscillatingHot,
    HistoricalHot,
    NewCold,
    ConsecutiveCold,
    IntensifyingCold,
    PersistentCold,
    DiminishingCold,
    SporadicCold,
    OscillatingCold,
    HistoricalCold,
    NoPattern,
}

impl Category {
    /// Every category, hot in Esri's table order, then cold, then no pattern.
    pub const ALL: [Category; 17] = [
        Category::NewHot,
        Category::ConsecutiveHot,
        Category::IntensifyingHot,
        Category::PersistentHot,
        Category::DiminishingHot,
        Category::SporadicHot,
        Category::OscillatingHot,
        Category::HistoricalHot,
        Category::NewCold,
        Category::ConsecutiveCold,
        Category::IntensifyingCold,
        Category::PersistentCold,
        Category::DiminishingCold,
        Category::SporadicCold,
        Category::OscillatingCold,
        Category::HistoricalCold,
        Category::NoPattern,
    ];

    /// Esri's pattern name.
    pub fn label(self) -> &'static str {
        use Category::*;
        match self {
            NewHot => "New Hot Spot",
            ConsecutiveHot => "Consecutive Hot Spot",
            IntensifyingHot => "Intensifying Hot Spot",
            PersistentHot => "Persistent Hot Spot",
            DiminishingHot => "Diminishing Hot Spot",
            SporadicHot => "Sporadic Hot Spot",
            OscillatingHot => "Oscillating Hot Spot",
            HistoricalHot => "Historical Hot Spot",
            NewCold => "New Cold Spot",
            ConsecutiveCold => "Consecutive Cold Spot",
            IntensifyingCold => "Intensifying Cold Spot",
            PersistentCold => "Persistent Cold Spot",
            DiminishingCold => "Diminishing Cold Spot",
            SporadicCold => "Sporadic Cold Spot",
            OscillatingCold => "Oscillating Cold Spot",
            HistoricalCold => "Historical Cold Spot",
            NoPattern => "No Pattern Detected",
        }
    }

    /// 1..8 for the hot patterns in Esri's table order (new .. historical), -1..-8 for
    /// their cold mirrors, 0 for no pattern.
    pub fn code(self) -> i8 {
        match Category::ALL.iter().position(|c| *c == self) {
            Some(k @ 0..8) => k as i8 + 1,
            Some(k @ 8..16) => -(k as i8 - 7),
            _ => 0,
        }
    }

    /// The category with this code, if any.
    pub fn from_code(code: i8) -> Option<Category> {
        Category::ALL.iter().copied().find(|c| c.code() == code)
    }
}

/// The six side-dependent patterns, resolved to a category by `side` (+1 hot, -1 cold).
#[derive(Clone, Copy)]
enum Pattern {
    New,
    Consecutive,
    Intensifying,
    Persistent,
    Diminishing,
    Sporadic,
    Oscillating,
    Historical,
}

fn on_side(pattern: Pattern, side: i8) -> Category {
    let k = pattern as usize;
    if side > 0 {
        Category::ALL[k]
    } else {
        Category::ALL[k + 8]
    }
}

/// The category of one location from its per-step states in time order (read by sign:
/// positive hot, negative cold, 0 not significant) and the Mann-Kendall test of its Gi*
/// z series.
/// The trend is significant when `trend.p < trend_alpha`. See the module doc for the
/// rules and their precedence.
pub fn categorize(states: &[i8], trend: &MannKendall, trend_alpha: f64) -> Category {
    let Some(&last) = states.last() else {
        return Category::NoPattern;
    };
    let t = states.len();
    for side in [1i8, -1] {
        let on = states.iter().filter(|s| s.signum() == side).count();
        if on >= 2 && 10 * on >= 9 * t {
            return history(side, last.signum() == side, trend, trend_alpha);
        }
    }
    match last.signum() {
        0 => Category::NoPattern,
        side => recent(states, side),
    }
}

/// Rule 1: at least 90% of the steps on `side`.
fn history(side: i8, final_on_side: bool, trend: &MannKendall, alpha: f64) -> Category {
    let pattern = if !final_on_side {
        Pattern::Historical
    } else {
        match trend.direction(alpha) {
            Some(up) if up == (side > 0) => Pattern::Intensifying,
            Some(_) => Pattern::Diminishing,
            None => Pattern::Persistent,
        }
    };
    on_side(pattern, side)
}

/// Rule 2: under 90% on either side, final step on `side`.
fn recent(states: &[i8], side: i8) -> Category {
    let on = states.iter().filter(|s| s.signum() == side).count();
    let run = states
        .iter()
        .rev()
        .take_while(|s| s.signum() == side)
        .count();
    let pattern = if on == 1 {
        Pattern::New
    } else if run == on {
        Pattern::Consecutive
    } else if states.iter().any(|s| s.signum() == -side) {
        Pattern::Oscillating
    } else {
        Pattern::Sporadic
    };
    on_side(pattern, side)
}

/// Checks the cube against the weights and returns n, the number of units.
fn validate(values: &[Vec<f64>], w: &Weights, tw: usize) -> Result<usize, EmergingError> {
    if tw == 0 {
        return Err(EmergingError::ZeroWindow);
    }
    let n = values.first().map_or(w.n(), Vec::len);
    if w.n() != n {
        return Err(EmergingError::WeightsMismatch {
            weights: w.n(),
            units: n,
        });
    }
    for (step, row) in values.iter().enumerate() {
        if row.len() != n {
            return Err(EmergingError::RaggedCube {
                step,
                len: row.len(),
                expected: n,
            });
        }
        if let Some((unit, &value)) = row.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(EmergingError::NonFinite { step, unit, value });
        }
    }
    for unit in 0..n {
        if let Some(&neighbour) = w.row(unit).iter().find(|&&j| j as usize >= n) {
            return Err(EmergingError::NeighbourOutOfRange {
                unit,
                neighbour,
                units: n,
            });
        }
    }
    Ok(n)
}

/// Space-time Gi* z-scores `[t][i]` of a cube `values[t][i]` (T steps by n units) with
/// binary spatial weights `w` that include each unit itself, over the time window of
/// the current step and the `tw - 1` before it (Esri's Neighborhood Time Step + 1).
pub fn space_time_gi_star(
    values: &[Vec<f64>],
    w: &Weights,
    tw: usize,
) -> Result<Vec<Vec<f64>>, EmergingError> {
    space_time_gi_star_observed(values, &vec![true; values.len()], w, tw)
}

/// As [`space_time_gi_star`] with only the steps where `observed[t]` is true in the cube
/// (see "Missing months" in the module doc): missing steps get NaN and add nothing to
/// the moments; windows reach back over observed steps. `observed` shorter than the
/// cube reads as observed.
pub fn space_time_gi_star_observed(
    values: &[Vec<f64>],
    observed: &[bool],
    w: &Weights,
    tw: usize,
) -> Result<Vec<Vec<f64>>, EmergingError> {
    let n = validate(values, w, tw)?;
    let seen = |t: usize| observed.get(t).copied().unwrap_or(true);
    let steps = (0..values.len()).filter(|&t| seen(t)).count();
    let big_n = (n * steps) as f64;
    let kept = || {
        values
            .iter()
            .enumerate()
            .filter(|(t, _)| seen(*t))
            .flat_map(|(_, r)| r)
    };
    let mean = kept().sum::<f64>() / big_n;
    let s = (kept().map(|v| v * v).sum::<f64>() / big_n - mean * mean)
        .max(0.0)
        .sqrt();
    let missing = |t: usize, v: f64| if seen(t) { v } else { f64::NAN };
    if big_n < 2.0 || s == 0.0 || !s.is_finite() {
        return Ok((0..values.len())
            .map(|t| vec![missing(t, 0.0); n])
            .collect());
    }
    // Spatial lag of every step; each bin's sum is then the lag summed over its window.
    let tok = crate::cancel::current();
    let lag: Vec<Vec<f64>> = values
        .par_iter()
        .map(|x| {
            crate::cancel::check(&tok);
            (0..n)
                .map(|i| w.row(i).iter().map(|&j| x[j as usize]).sum())
                .collect()
        })
        .collect();
    // Position of each step among the observed ones.
    let kept_steps: Vec<usize> = (0..values.len()).filter(|&t| seen(t)).collect();
    let mut rank = vec![usize::MAX; values.len()];
    for (p, &t) in kept_steps.iter().enumerate() {
        rank[t] = p;
    }
    let tok = crate::cancel::current();
    let z = (0..values.len())
        .into_par_iter()
        .map(|t| {
            crate::cancel::check(&tok);
            if !seen(t) {
                return vec![f64::NAN; n];
            }
            let p = rank[t];
            let window: Vec<&Vec<f64>> = kept_steps[(p + 1).saturating_sub(tw)..=p]
                .iter()
                .map(|&u| &lag[u])
                .collect();
            (0..n)
                .map(|i| {
                    let wi = (w.row(i).len() * window.len()) as f64;
                    let sum: f64 = window.iter().map(|l| l[i]).sum();
                    let den = s * ((big_n * wi - wi * wi) / (big_n - 1.0)).sqrt();
                    if den > 0.0 {
                        (sum - mean * wi) / den
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    Ok(z)
}

/// Per-step states `[t][i]` from z-scores: +1 hot, -1 cold at 90% confidence (two-sided
/// normal p < 0.10), 0 otherwise; with `fdr`, Benjamini-Hochberg control at 10% over the
/// n units of each time step (`fdr::bins`).
pub fn step_states(z: &[Vec<f64>], fdr: bool) -> Vec<Vec<i8>> {
    z.par_iter()
        .map(|zt| {
            // A missing step (every z NaN) has no state.
            if zt.iter().all(|v| v.is_nan()) && !zt.is_empty() {
                return vec![0; zt.len()];
            }
            let p: Vec<f64> = zt.iter().map(|v| fdr::two_sided_p(*v)).collect();
            fdr::bins(zt, &p, fdr).into_iter().map(i8::signum).collect()
        })
        .collect()
}

/// Column `i` of a `[t][i]` matrix: one unit's series in time order.
fn series<T: Copy>(m: &[Vec<T>], i: usize) -> Vec<T> {
    m.iter().map(|row| row[i]).collect()
}

/// Everything an emerging hot spot analysis produces.
#[derive(Debug, Clone)]
pub struct Emerging {
    /// Space-time Gi* z-scores `[t][i]`.
    pub z: Vec<Vec<f64>>,
    /// Per-step states `[t][i]`: +1 hot, -1 cold, 0 not significant.
    pub states: Vec<Vec<i8>>,
    /// Mann-Kendall test of each unit's z series.
    pub trend: Vec<MannKendall>,
    /// Category of each unit.
    pub category: Vec<Category>,
    /// Whether each step was observed (false: a missing month, no z and no state).
    pub observed: Vec<bool>,
}

/// The whole analysis: space-time Gi* ([`space_time_gi_star`]), states at 90% with or
/// without per-step FDR ([`step_states`]), Mann-Kendall per unit and [`categorize`].
pub fn emerging_hot_spots(
    values: &[Vec<f64>],
    w: &Weights,
    tw: usize,
    fdr: bool,
    trend_alpha: f64,
) -> Result<Emerging, EmergingError> {
    emerging_hot_spots_observed(values, &vec![true; values.len()], w, tw, fdr, trend_alpha)
}

/// As [`emerging_hot_spots`] over the steps where `observed[t]` is true only (see
/// "Missing months" in the module doc): what every caller with monthly data from the
/// store uses, with `observed` from `AnalysisStore::observed_months`.
pub fn emerging_hot_spots_observed(
    values: &[Vec<f64>],
    observed: &[bool],
    w: &Weights,
    tw: usize,
    fdr: bool,
    trend_alpha: f64,
) -> Result<Emerging, EmergingError> {
    let z = space_time_gi_star_observed(values, observed, w, tw)?;
    let states = step_states(&z, fdr);
    let observed: Vec<bool> = (0..values.len())
        .map(|t| observed.get(t).copied().unwrap_or(true))
        .collect();
    let tok = crate::cancel::current();
    let (trend, category) = (0..w.n())
        .into_par_iter()
        .map(|i| {
            crate::cancel::check(&tok);
            let trend = mann_kendall(&series(&z, i));
            let seen: Vec<i8> = series(&states, i)
                .into_iter()
                .zip(&observed)
                .filter(|(_, o)| **o)
                .map(|(s, _)| s)
                .collect();
            (trend, categorize(&seen, &trend, trend_alpha))
        })
        .unzip();
    Ok(Emerging {
        z,
        states,
        trend,
        category,
        observed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_TREND: MannKendall = MannKendall {
        s: 0.0,
        var_s: 0.0,
        z: 0.0,
        p: 1.0,
        tau: 0.0,
    };
    const UP: MannKendall = MannKendall {
        s: 30.0,
        var_s: 125.0,
        z: 2.6,
        p: 0.009,
        tau: 0.7,
    };
    const DOWN: MannKendall = MannKendall {
        s: -30.0,
        var_s: 125.0,
        z: -2.6,
        p: 0.009,
        tau: -0.7,
    };
    /// Upward but only at the 10% level.
    const WEAK_UP: MannKendall = MannKendall {
        s: 14.0,
        var_s: 125.0,
        z: 1.7,
        p: 0.089,
        tau: 0.3,
    };

    /// States from a string: `H` hot, `C` cold, `.` not significant.
    fn st(s: &str) -> Vec<i8> {
        s.chars()
            .map(|c| match c {
                'H' => 1,
                'C' => -1,
                _ => 0,
            })
            .collect()
    }

    /// The cold mirror of a string of states.
    fn mirror(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                'H' => 'C',
                'C' => 'H',
                o => o,
            })
            .collect()
    }

    fn cat(s: &str, trend: &MannKendall) -> Category {
        categorize(&st(s), trend, DEFAULT_TREND_ALPHA)
    }

    fn neg(m: &MannKendall) -> MannKendall {
        MannKendall {
            s: -m.s,
            z: -m.z,
            tau: -m.tau,
            ..*m
        }
    }

    /// One series per category (hot side; the cold side is checked by mirroring).
    const HOT_CASES: &[(&str, Category, &MannKendall)] = &[
        ("..........H", Category::NewHot, &NO_TREND),
        ("........HHH", Category::ConsecutiveHot, &NO_TREND),
        ("HHHHHHHHHHH", Category::IntensifyingHot, &UP),
        ("HHHHHHHHHHH", Category::PersistentHot, &NO_TREND),
        ("HHHHHHHHHHH", Category::DiminishingHot, &DOWN),
        ("..H..H...HH", Category::SporadicHot, &NO_TREND),
        ("CC.H....H.H", Category::OscillatingHot, &NO_TREND),
        ("HHHHHHHHHH.", Category::HistoricalHot, &NO_TREND),
        ("HH.H....H..", Category::NoPattern, &NO_TREND),
    ];

    #[test]
    fn every_category_from_a_constructed_series() {
        let mut seen = Vec::new();
        for &(s, want, trend) in HOT_CASES {
            assert_eq!(cat(s, trend), want, "{s}");
            let cold = cat(&mirror(s), &neg(trend));
            assert_eq!(cold.code(), -want.code(), "mirror of {s}: {cold:?}");
            seen.extend([want, cold]);
        }
        for c in Category::ALL {
            assert!(seen.contains(&c), "{c:?} never produced");
        }
    }

    #[test]
    fn ninety_percent_boundary() {
        // 9 of 10 hot is at least 90%; 8 of 9 (88.9%) is not.
        assert_eq!(cat(".HHHHHHHHH", &NO_TREND), Category::PersistentHot);
        assert_eq!(cat(".HHHHHHHH", &NO_TREND), Category::ConsecutiveHot);
        assert_eq!(cat("HHHH.HHHHH", &UP), Category::IntensifyingHot);
        assert_eq!(cat("HHHH.HHHH", &UP), Category::SporadicHot);
        // 18 of 20: exactly 90%, final not hot.
        assert_eq!(
            cat("HHHHHHHHHHHHHHHHHH..", &NO_TREND),
            Category::HistoricalHot
        );
        assert_eq!(cat("HHHHHHHHHHHHHHHHH...", &NO_TREND), Category::NoPattern);
        // Short series: 90% means every step.
        assert_eq!(cat("HHHH", &NO_TREND), Category::PersistentHot);
        assert_eq!(cat(".HHH", &NO_TREND), Category::ConsecutiveHot);
    }

    #[test]
    fn new_versus_consecutive() {
        // A final run of one step is New; of two, Consecutive.
        assert_eq!(cat(".....H", &NO_TREND), Category::NewHot);
        assert_eq!(cat("....HH", &NO_TREND), Category::ConsecutiveHot);
        // Hot before the final run: neither, however long the run.
        assert_eq!(cat("H....H", &NO_TREND), Category::SporadicHot);
        assert_eq!(cat("H...HHH", &NO_TREND), Category::SporadicHot);
        // A one-step series that is hot is New, not Persistent.
        assert_eq!(cat("H", &NO_TREND), Category::NewHot);
        assert_eq!(cat("C", &NO_TREND), Category::NewCold);
        assert_eq!(cat("HH", &NO_TREND), Category::PersistentHot);
    }

    #[test]
    fn oscillating_needs_an_earlier_cold_step() {
        assert_eq!(cat("H.H.H.H..H", &NO_TREND), Category::SporadicHot);
        assert_eq!(cat("H.H.C.H..H", &NO_TREND), Category::OscillatingHot);
        // New and Consecutive come before Oscillating.
        assert_eq!(cat("CCC.....H", &NO_TREND), Category::NewHot);
        assert_eq!(cat("CCC....HH", &NO_TREND), Category::ConsecutiveHot);
        // Cold only in the final step is not an oscillating hot spot.
        assert_eq!(cat("H.H.H.H..C", &NO_TREND), Category::NewCold);
    }

    #[test]
    fn history_takes_precedence_over_the_final_step() {
        // 9 of 10 hot then cold: Historical Hot, not New or Oscillating Cold; and mirrored.
        assert_eq!(cat("HHHHHHHHHC", &NO_TREND), Category::HistoricalHot);
        assert_eq!(cat("CCCCCCCCCH", &NO_TREND), Category::HistoricalCold);
        // 18 of 20 hot then two cold: Historical Hot, not Consecutive Cold.
        assert_eq!(cat("HHHHHHHHHHHHHHHHHHCC", &DOWN), Category::HistoricalHot);
        // A trend does not rescue a series whose final step is not hot.
        assert_eq!(cat("HHHHHHHHH.", &UP), Category::HistoricalHot);
        // Trend only matters at 90%: an upward trend on a consecutive run changes nothing.
        assert_eq!(cat("......HHH", &UP), Category::ConsecutiveHot);
    }

    #[test]
    fn trend_direction_and_level() {
        let hot = "HHHHHHHHHH";
        assert_eq!(cat(hot, &WEAK_UP), Category::PersistentHot);
        assert_eq!(
            categorize(&st(hot), &WEAK_UP, 0.10),
            Category::IntensifyingHot
        );
        // Cold spots intensify as z falls.
        let cold = mirror(hot);
        assert_eq!(cat(&cold, &DOWN), Category::IntensifyingCold);
        assert_eq!(cat(&cold, &UP), Category::DiminishingCold);
        assert_eq!(cat(&cold, &NO_TREND), Category::PersistentCold);
        // p exactly at alpha is not significant.
        let edge = MannKendall {
            p: DEFAULT_TREND_ALPHA,
            ..UP
        };
        assert_eq!(cat(hot, &edge), Category::PersistentHot);
    }

    #[test]
    fn states_are_read_by_sign_and_empty_is_no_pattern() {
        assert_eq!(categorize(&[0, 0, 3], &NO_TREND, 0.05), Category::NewHot);
        assert_eq!(
            categorize(&[0, -2, -3], &NO_TREND, 0.05),
            Category::ConsecutiveCold
        );
        assert_eq!(categorize(&[], &UP, 0.05), Category::NoPattern);
        assert_eq!(categorize(&[0, 0, 0], &UP, 0.05), Category::NoPattern);
    }

    #[test]
    fn labels_and_codes() {
        assert_eq!(Category::NewHot.label(), "New Hot Spot");
        assert_eq!(Category::HistoricalCold.label(), "Historical Cold Spot");
        assert_eq!(Category::NoPattern.label(), "No Pattern Detected");
        assert_eq!(Category::IntensifyingHot.code(), 3);
        assert_eq!(Category::OscillatingCold.code(), -7);
        let mut codes: Vec<i8> = Category::ALL.iter().map(|c| c.code()).collect();
        codes.sort_unstable();
        assert_eq!(codes, (-8..=8).collect::<Vec<i8>>());
        for c in Category::ALL {
            assert_eq!(Category::from_code(c.code()), Some(c));
        }
        assert_eq!(Category::from_code(9), None);
    }

    /// A path of 3 units (0-1-2), self included.
    fn path3() -> Weights {
        Weights::from_lists(vec![vec![0, 1], vec![0, 1, 2], vec![1, 2]])
    }

    /// 4 steps by 3 units of counts.
    fn cube() -> Vec<Vec<f64>> {
        vec![
            vec![0.0, 2.0, 5.0],
            vec![1.0, 3.0, 9.0],
            vec![0.0, 0.0, 4.0],
            vec![7.0, 1.0, 2.0],
        ]
    }

    /// Straight from the formula: explicit weights w((t,i),(s,j)) over every bin, the
    /// general sum of squared weights, global moments by definition.
    fn brute(values: &[Vec<f64>], w: &Weights, tw: usize) -> Vec<Vec<f64>> {
        let (tt, n) = (values.len(), values[0].len());
        let bins: Vec<(usize, usize, f64)> = (0..tt)
            .flat_map(|s| (0..n).map(move |j| (s, j, values[s][j])))
            .collect();
        let nn = bins.len() as f64;
        let mean = bins.iter().map(|b| b.2).sum::<f64>() / nn;
        let var = bins.iter().map(|b| (b.2 - mean).powi(2)).sum::<f64>() / nn;
        let weight = |t: usize, i: usize, s: usize, j: usize| {
            let in_time = s <= t && t - s < tw;
            if in_time && w.row(i).contains(&(j as u32)) {
                1.0
            } else {
                0.0
            }
        };
        (0..tt)
            .map(|t| {
                (0..n)
                    .map(|i| {
                        let ws: Vec<f64> = bins.iter().map(|b| weight(t, i, b.0, b.1)).collect();
                        let wi: f64 = ws.iter().sum();
                        let w2: f64 = ws.iter().map(|v| v * v).sum();
                        let lag: f64 = ws.iter().zip(&bins).map(|(a, b)| a * b.2).sum();
                        let den = var.sqrt() * ((nn * w2 - wi * wi) / (nn - 1.0)).sqrt();
                        // A neighbourhood of the whole cube has no variance: z = 0 by convention.
                        if den > 0.0 {
                            (lag - mean * wi) / den
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn space_time_gi_star_equals_brute_force() {
        let (x, w) = (cube(), path3());
        for tw in 1..=5 {
            let got = space_time_gi_star(&x, &w, tw).expect("valid cube");
            let want = brute(&x, &w, tw);
            // Units 0 and 2 never see the whole cube: their z are real comparisons.
            assert!(want.iter().all(|r| r[0] != 0.0 && r[2] != 0.0), "{want:?}");
            for (t, (g, b)) in got.iter().zip(&want).enumerate() {
                for (i, (a, b)) in g.iter().zip(b).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                        "tw {tw} [{t}][{i}]: {a} vs {b}"
                    );
                }
            }
        }
    }

    /// The brute force with missing steps: their bins are not in the cube at all.
    fn brute_observed(
        values: &[Vec<f64>],
        observed: &[bool],
        w: &Weights,
        tw: usize,
    ) -> Vec<Vec<f64>> {
        let kept: Vec<usize> = (0..values.len()).filter(|&t| observed[t]).collect();
        // Position among the observed steps (the window counts those).
        let pos = |t: usize| kept.iter().position(|&k| k == t).unwrap_or(usize::MAX);
        let n = values[0].len();
        let bins: Vec<(usize, usize, f64)> = kept
            .iter()
            .flat_map(|&s| (0..n).map(move |j| (s, j, values[s][j])))
            .collect();
        let nn = bins.len() as f64;
        let mean = bins.iter().map(|b| b.2).sum::<f64>() / nn;
        let var = bins.iter().map(|b| (b.2 - mean).powi(2)).sum::<f64>() / nn;
        (0..values.len())
            .map(|t| {
                (0..n)
                    .map(|i| {
                        if !observed[t] {
                            return f64::NAN;
                        }
                        let ws: Vec<f64> = bins
                            .iter()
                            .map(|b| {
                                let (pb, pt) = (pos(b.0), pos(t));
                                let in_time = pb <= pt && pt - pb < tw;
                                f64::from(u8::from(in_time && w.row(i).contains(&(b.1 as u32))))
                            })
                            .collect();
                        let wi: f64 = ws.iter().sum();
                        let lag: f64 = ws.iter().zip(&bins).map(|(a, b)| a * b.2).sum();
                        let den = var.sqrt() * ((nn * wi - wi * wi) / (nn - 1.0)).sqrt();
                        if den > 0.0 {
                            (lag - mean * wi) / den
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn space_time_gi_star_with_missing_steps_equals_brute_force() {
        let (w, mut x) = (path3(), cube());
        x.push(vec![3.0, 8.0, 1.0]);
        x.push(vec![2.0, 2.0, 6.0]);
        for observed in [
            vec![true, false, true, true, true, true],
            vec![true, true, true, false, false, true],
            vec![false, true, true, true, true, false],
        ] {
            // What sits in a missing step does not matter.
            let mut junk = x.clone();
            for (t, o) in observed.iter().enumerate() {
                if !o {
                    junk[t] = vec![99.0, 0.0, 42.0];
                }
            }
            for tw in 1..=4 {
                let got = space_time_gi_star_observed(&junk, &observed, &w, tw).expect("valid");
                let want = brute_observed(&x, &observed, &w, tw);
                for (t, (g, b)) in got.iter().zip(&want).enumerate() {
                    for (a, b) in g.iter().zip(b) {
                        assert!(
                            (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                            "{observed:?} tw {tw} step {t}: {a} vs {b}"
                        );
                    }
                }
            }
        }
        // Every step observed is the plain analysis.
        let all = vec![true; x.len()];
        assert_eq!(
            space_time_gi_star_observed(&x, &all, &w, 2),
            space_time_gi_star(&x, &w, 2)
        );
    }

    /// A line of 9 units over 12 steps with units 3 to 5 steadily high: a persistent hot
    /// spot. Step `gap` is emptied, as a month a force did not publish reads as zeros.
    fn steady_line(gap: usize) -> (Vec<Vec<f64>>, Weights) {
        let n = 9;
        let w = Weights::from_lists(
            (0..n as u32)
                .map(|i| (i.saturating_sub(1)..=(i + 1).min(8)).collect())
                .collect(),
        );
        let values = (0..12)
            .map(|t| {
                (0..n)
                    .map(|i| {
                        if t == gap {
                            0.0
                        } else if (3..=5).contains(&i) {
                            9.0 + (t % 3) as f64
                        } else {
                            1.0 + ((i + t) % 2) as f64
                        }
                    })
                    .collect()
            })
            .collect();
        (values, w)
    }

    #[test]
    fn a_missing_month_is_neither_hot_nor_a_break_in_the_run() {
        let (full, w) = steady_line(usize::MAX);
        let e = emerging_hot_spots(&full, &w, 2, false, DEFAULT_TREND_ALPHA).expect("valid");
        assert_eq!(
            e.category[4],
            Category::PersistentHot,
            "{:?}",
            series(&e.states, 4)
        );
        let (gap, _) = steady_line(6);
        // Read as zero crime, the empty month breaks the hot run.
        let zero = emerging_hot_spots(&gap, &w, 2, false, DEFAULT_TREND_ALPHA).expect("valid");
        assert_ne!(
            zero.category[4],
            Category::PersistentHot,
            "{:?}",
            series(&zero.states, 4)
        );
        // Read as missing, the hot spot is what it is in every published month.
        let mut observed = vec![true; 12];
        observed[6] = false;
        let m = emerging_hot_spots_observed(&gap, &observed, &w, 2, false, DEFAULT_TREND_ALPHA)
            .expect("valid");
        assert_eq!(m.category, e.category);
        assert!(m.z[6].iter().all(|z| z.is_nan()));
        assert_eq!(m.states[6], vec![0; 9]);
        assert_eq!(m.observed, observed);
        for i in 0..9 {
            assert_eq!(m.trend[i].z.signum(), e.trend[i].z.signum(), "unit {i}");
        }
        // A gap in the final month: judged on the last published month.
        let (end_gap, _) = steady_line(11);
        let mut observed = vec![true; 12];
        observed[11] = false;
        let m = emerging_hot_spots_observed(&end_gap, &observed, &w, 2, false, DEFAULT_TREND_ALPHA)
            .expect("valid");
        assert_eq!(m.category[4], Category::PersistentHot);
    }

    #[test]
    fn space_time_gi_star_pinned_values() {
        // Independent of the brute force above, by hand for bin (t = 1, i = 2), tw = 2:
        // N = 12, sum = 34, sum sq = 190, xbar = 17/6, S^2 = 190/12 - (17/6)^2 = 281/36.
        // Neighbourhood: units {1, 2} at steps {0, 1}: 2 + 5 + 3 + 9 = 19, W = 4.
        // z = (19 - 4 * 17/6) / (sqrt(281)/6 * sqrt((48 - 16) / 11)).
        let z = space_time_gi_star(&cube(), &path3(), 2).expect("valid cube");
        let want = (19.0 - 4.0 * 17.0 / 6.0) / (281f64.sqrt() / 6.0 * (32.0f64 / 11.0).sqrt());
        assert!((z[1][2] - want).abs() < 1e-13, "{} vs {want}", z[1][2]);
        // tw = 1 at t = 0, i = 0: units {0, 1} at step 0: 0 + 2 = 2, W = 2, N W - W^2 = 20.
        let z1 = space_time_gi_star(&cube(), &path3(), 1).expect("valid cube");
        let want = (2.0 - 2.0 * 17.0 / 6.0) / (281f64.sqrt() / 6.0 * (20.0f64 / 11.0).sqrt());
        assert!((z1[0][0] - want).abs() < 1e-13, "{} vs {want}", z1[0][0]);
    }

    #[test]
    fn constant_and_empty_cubes() {
        let w = path3();
        let flat = vec![vec![2.0; 3]; 4];
        assert_eq!(space_time_gi_star(&flat, &w, 2), Ok(vec![vec![0.0; 3]; 4]));
        assert_eq!(space_time_gi_star(&[], &w, 2), Ok(vec![]));
        let e = emerging_hot_spots(&flat, &w, 2, false, DEFAULT_TREND_ALPHA).expect("valid cube");
        assert_eq!(e.category, vec![Category::NoPattern; 3]);
    }

    #[test]
    fn bad_cubes_are_errors() {
        let w = path3();
        assert_eq!(
            space_time_gi_star(&cube(), &w, 0),
            Err(EmergingError::ZeroWindow)
        );
        let mut ragged = cube();
        ragged[2].pop();
        assert_eq!(
            space_time_gi_star(&ragged, &w, 2),
            Err(EmergingError::RaggedCube {
                step: 2,
                len: 2,
                expected: 3
            })
        );
        let two = vec![vec![1.0, 2.0]; 3];
        assert_eq!(
            space_time_gi_star(&two, &w, 2),
            Err(EmergingError::WeightsMismatch {
                weights: 3,
                units: 2
            })
        );
        let mut nan = cube();
        nan[1][1] = f64::NAN;
        assert!(matches!(
            space_time_gi_star(&nan, &w, 2),
            Err(EmergingError::NonFinite {
                step: 1,
                unit: 1,
                ..
            })
        ));
        let far = Weights::from_lists(vec![vec![0], vec![1, 7], vec![2]]);
        assert_eq!(
            space_time_gi_star(&cube(), &far, 2),
            Err(EmergingError::NeighbourOutOfRange {
                unit: 1,
                neighbour: 7,
                units: 3
            })
        );
    }

    #[test]
    fn step_states_at_ninety_percent() {
        // |z| = 1.6449 is p ~ 0.09995 (significant), 1.64 is p ~ 0.101 (not).
        let z = vec![vec![1.6449, -1.6449, 1.64, -1.64, 0.0, 3.0]];
        assert_eq!(step_states(&z, false), vec![vec![1, -1, 0, 0, 0, 1]]);
        // FDR over the 6 tests of the step: 0.1 k / 6 leaves only z = 3 (p = .0027).
        assert_eq!(step_states(&z, true), vec![vec![0, 0, 0, 0, 0, 1]]);
    }

    #[test]
    fn end_to_end_finds_a_growing_hot_spot() {
        // A line of 9 units over 12 steps: unit 4 and its neighbours grow from the
        // middle of the period; the rest stay low.
        let n = 9;
        let w = Weights::from_lists(
            (0..n as u32)
                .map(|i| (i.saturating_sub(1)..=(i + 1).min(8)).collect())
                .collect(),
        );
        let values: Vec<Vec<f64>> = (0..12)
            .map(|t| {
                (0..n)
                    .map(|i| {
                        if (3..=5).contains(&i) && t >= 6 {
                            4.0 * (t - 4) as f64
                        } else {
                            1.0
                        }
                    })
                    .collect()
            })
            .collect();
        let e = emerging_hot_spots(&values, &w, 2, false, DEFAULT_TREND_ALPHA).expect("valid cube");
        assert_eq!(e.z.len(), 12);
        assert!(
            e.trend[4].z > 0.0 && e.trend[4].p < 0.05,
            "{:?}",
            e.trend[4]
        );
        assert_eq!(e.states[11][4], 1);
        assert_eq!(e.states[5][4], 0);
        assert_eq!(
            e.category[4],
            Category::ConsecutiveHot,
            "{:?}",
            series(&e.states, 4)
        );
        assert_eq!(
            e.category[0],
            Category::NoPattern,
            "{:?}",
            series(&e.states, 0)
        );
    }
}
