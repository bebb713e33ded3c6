//! The counts a statistic is computed on: exact from analyst up, the published
//! (cell-key perturbed) counts below analyst.
//!
//! A Gi* bin, an emerging hot spot category or a trend published beside perturbed counts
//! must follow from those counts: one computed from the exact counts can tell what the
//! perturbation hides (a cell whose public count could be 4 to 8 is hot only if its exact
//! count is 8, say; an emerging category says which months were busier than the published
//! series shows). So every output below analyst computes its statistics from a
//! [`Basis::Perturbed`] view of the study:
//!
//! - **Units** ([`Basis::counts`]): each unit's count over the period is
//!   `PTable::perturb(count, key sum)`, the count the same output publishes for it (the
//!   same records, so the same noise). Gi* z, p and bin (`/map/api/cells`, the cell
//!   tiles, the OGC `h3-*` and `hotspots` collections, the patrol list's `gi_bin` and
//!   `significant`, the details panel's bin) are of these.
//! - **Unit-months** ([`Basis::monthly`]): each unit-month of the space-time cube is
//!   perturbed from its own records' key sum (`Monthly::keys`), as the details panel
//!   publishes a cell's month; the emerging category and Mann-Kendall trend of a unit
//!   (the map's cells and details, the cell tiles, the OGC `emerging` and `patrol`
//!   collections) are of these.
//! - Zeros stay zero (an empty unit has no records and no key), so the study grid and
//!   its weights are the same in both views; observed and missing months too.
//! - The values perturbed are the counts *before* suppression: a withheld unit still
//!   enters its neighbours' Gi* with its perturbed count (never its exact one), as a
//!   count of unknown value published as withheld; what a bin says about it is bounded
//!   by the perturbation as its published neighbours are.
//!
//! Every perturbed count is off its exact count by noise of variance 1.1875 (`ckp`), so a
//! statistic of the perturbed counts is a slightly noisier estimate of the exact one:
//! bins near a threshold can move by one class, and sparse monthly series (counts of 1
//! or 2 a month) move most. `tests/disclosure_stats.rs` (`measure`) counts how many bins
//! and categories change on the bundled data.
//!
//! Cost: one table look-up per unit and per unit-month (the cube is already built with
//! its key sums in the same aggregation pass), plus the statistic itself once per view:
//! an output cached for both roles computes Gi* or the emerging cube twice, once on each
//! basis, and its cache keys say which ([`Basis::key`]) so the views never mix.

use std::borrow::Cow;

use super::ckp::PTable;
use crate::stats::study::{Monthly, Study};

/// What the statistics of one answer are computed on.
#[derive(Debug, Clone)]
pub enum Basis {
    /// The exact counts (analyst and admin).
    Exact,
    /// The counts as published below analyst: cell-key perturbed with the table of
    /// `seed` (kept for cache keys).
    Perturbed { table: Box<PTable>, seed: u64 },
}

impl Basis {
    /// The perturbed basis of the table of `seed` (`disclosure.ckp_seed`).
    pub fn perturbed(seed: u64) -> Self {
        Basis::Perturbed {
            table: Box::new(PTable::new(seed)),
            seed,
        }
    }

    /// The basis of a caller: perturbed with the table of `seed` (`disclosure.ckp_seed`)
    /// when `controlled` (below analyst), else exact.
    pub fn of(controlled: bool, seed: u64) -> Self {
        if controlled {
            Basis::perturbed(seed)
        } else {
            Basis::Exact
        }
    }

    /// Whether this is the perturbed (below analyst) view.
    pub fn is_perturbed(&self) -> bool {
        matches!(self, Basis::Perturbed { .. })
    }

    /// A short text naming the view, for cache keys (the seed only ever in memory).
    pub fn key(&self) -> String {
        match self {
            Basis::Exact => "exact".into(),
            Basis::Perturbed { seed, .. } => format!("ckp{seed:x}"),
        }
    }

    /// One count of `key_sum` on this basis.
    pub fn count(&self, count: f64, key_sum: u32) -> f64 {
        match self {
            Basis::Exact => count,
            Basis::Perturbed { table, .. } => table.perturb(count.max(0.0) as u64, key_sum) as f64,
        }
    }

    /// Counts with their key sums (`keys[i]` beside `counts[i]`; a missing key is 0) on
    /// this basis: borrowed unchanged when exact.
    pub fn counts<'a>(&self, counts: &'a [f64], keys: &[u32]) -> Cow<'a, [f64]> {
        match self {
            Basis::Exact => Cow::Borrowed(counts),
            Basis::Perturbed { .. } => Cow::Owned(
                counts
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| self.count(c, keys.get(i).copied().unwrap_or(0)))
                    .collect(),
            ),
        }
    }

    /// The study's unit counts on this basis.
    pub fn study<'a>(&self, study: &'a Study) -> Cow<'a, [f64]> {
        self.counts(&study.counts, &study.keys)
    }

    /// The monthly cube's values (`[t][i]`) on this basis: every unit-month perturbed from
    /// its own key sum (`Monthly::keys`).
    pub fn monthly<'a>(&self, m: &'a Monthly) -> Cow<'a, [Vec<f64>]> {
        match self {
            Basis::Exact => Cow::Borrowed(&m.values),
            Basis::Perturbed { .. } => Cow::Owned(
                m.values
                    .iter()
                    .enumerate()
                    .map(|(t, row)| {
                        let keys = m.keys.get(t).map_or(&[][..], Vec::as_slice);
                        self.counts(row, keys).into_owned()
                    })
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_is_unchanged_and_perturbed_is_the_published_count() {
        let counts = [0.0, 1.0, 2.0, 7.0, 30.0, 0.0];
        let keys = [0, 17, 200, 3, 99, 0];
        let exact = Basis::Exact.counts(&counts, &keys);
        assert!(matches!(exact, Cow::Borrowed(_)));
        assert_eq!(&*exact, &counts[..]);
        let seed = 42;
        let b = Basis::perturbed(seed);
        let t = PTable::new(seed);
        let p = b.counts(&counts, &keys);
        for i in 0..counts.len() {
            assert_eq!(p[i], t.perturb(counts[i] as u64, keys[i]) as f64);
        }
        assert_eq!((p[0], p[5]), (0.0, 0.0), "zeros stay zero");
        assert!(p.iter().skip(1).take(4).all(|&v| v >= 1.0));
        // Some count moves (else the test below would show nothing).
        let moved = (0..256u32).filter(|&k| b.count(9.0, k) != 9.0).count();
        assert!(moved > 100, "{moved}");
        assert!(b.is_perturbed() && !Basis::Exact.is_perturbed());
        assert_ne!(b.key(), Basis::Exact.key());
        assert_ne!(b.key(), Basis::perturbed(seed + 1).key());
    }

    #[test]
    fn every_unit_month_is_perturbed_from_its_own_key() {
        let m = Monthly {
            months: vec![],
            values: vec![vec![0.0, 3.0, 5.0], vec![4.0, 0.0, 1.0]],
            keys: vec![vec![0, 10, 20], vec![30, 0, 40]],
            observed: vec![true, true],
        };
        assert_eq!(&*Basis::Exact.monthly(&m), &m.values[..]);
        let b = Basis::perturbed(7);
        let t = PTable::new(7);
        let p = b.monthly(&m);
        for (tt, row) in m.values.iter().enumerate() {
            for (i, &v) in row.iter().enumerate() {
                assert_eq!(p[tt][i], t.perturb(v as u64, m.keys[tt][i]) as f64);
            }
        }
        assert_eq!(p[0][0], 0.0);
        assert_eq!(p[1][1], 0.0);
    }
}
