//! Cell-key perturbation: the published count of a cell is its true count plus a small
//! noise that the same records always get, so two overlapping queries no longer
//! difference to the truth.
//!
//! This is the method of the ONS for the 2021 Census outputs (ONS, "Protecting personal
//! data in Census 2021 results", 2021; the cell-key method of Fraser and Wooton, 2005)
//! and of the ABS TableBuilder (ABS, "TableBuilder: perturbation", the "cell key"
//! method; Thompson, Broadfoot and Elazar, 2013):
//!
//! - every record has a fixed random **record key** in 0..256 (`analysis::build`: a hash
//!   of the record's own attributes and its ordinal among identical records, so the same
//!   on every load, whatever the load order);
//! - a cell's **cell key** is the sum of its records' keys mod 256 (the aggregation
//!   carries it beside every count: `analysis::aggregate::Count::key_sum`);
//! - the noise is read from the **perturbation table** (p-table) at (cell key, true count
//!   capped at 2): the same records give the same cell key, so the same noise, in every
//!   answer; a different set of records gives an unrelated cell key.
//!
//! # The p-table
//! Noise in -2..=+2, probabilities in 256ths (so 256 cell keys realise them exactly):
//!
//! | true count | -2 | -1 | 0 | +1 | +2 | mean | variance |
//! |---|---|---|---|---|---|---|---|
//! | 1 | 0 | 128 | 24 | 80 | 24 | 0 | 304/256 = 1.1875 |
//! | 2 or more | 24 | 56 | 96 | 56 | 24 | 0 | 304/256 = 1.1875 |
//!
//! Each row has zero mean and the same variance, 1.1875 (standard deviation 1.09), so a
//! published count is unbiased and a sum of m independently perturbed cells is off by a
//! variance of 1.1875 m. The row for 1 has no -2, so no noise takes a count below 0. A
//! true zero is published as zero (an empty cell has no records and no key). A non-empty
//! cell is published as at least 1 (its noise may take it to 0 or below, but an empty cell
//! is not claimed for it), so a published 0 always means empty and a suppressed cell is
//! never empty. Then, as before, a perturbed count from 1 to k - 1 is withheld.
//!
//! Which cell keys get which noise is a permutation of 0..256 drawn from the setting
//! `disclosure.ckp_seed` (SplitMix64 + Fisher-Yates): the table's probabilities are
//! published (above), the permutation is not, so a caller who could compute record keys
//! still cannot tell a cell's noise. The ONS keeps its record keys secret instead; here
//! the keys are a public hash and the permutation is the secret.
//!
//! # What it guarantees, and what it does not
//! - **Consistency**: the same records always give the same published count (the same
//!   URL, or two filters that select the same records of a cell).
//! - **Differencing**: two overlapping filters A and B whose difference in a cell is a
//!   small count d (suppressed where asked for alone) publish `nA + eA` and `nB + eB`;
//!   their difference is d exactly only when eA = eB. The two cell keys differ by the
//!   key sum of the d records, which is near uniform mod 256, so that happens with the
//!   table's own chance rate: sum over the noise values of p(e)^2 =
//!   (24^2 + 56^2 + 96^2 + 56^2 + 24^2) / 256^2 = 16640/65536 = 0.254 ([`CHANCE_EQUAL`]),
//!   and the caller cannot tell which of the differences are the exact ones (the others
//!   are off by 1 to 4). Without perturbation it was 1.
//! - **Averaging**: the noise of one set of records is fixed, so repeating a query does
//!   not average it away; but many *different* record sets that each differ from a cell
//!   by known records could (each a fresh draw). That is the method's documented limit
//!   (ONS and ABS alike); it costs the caller one query per draw and is bounded by the
//!   rate limits, not by this module.
//! - Totals are perturbed from their own records' key sum, never summed from perturbed
//!   or true parts, so a total minus the visible parts is the withheld parts plus the
//!   noise of every term.
//! - Not a formal (differential privacy) guarantee: the noise is bounded (|e| <= 2), so a
//!   published count of c says the truth is within c - 2..c + 2.
//!
//! Counts published below analyst are perturbed: the OGC `districts`, `lsoas`, `h3-*`,
//! `hotspots`, `emerging` and `patrol` counts (and their `per_km2`, scaled by the same
//! ratio), the map's cells (`/map/api/cells`), the cell tiles' `count`, the details
//! panel (`/map/api/details`: total, by type, per month), and the 500 m grid cells the
//! public heatmap is drawn from (`tiles::heatmap::public`, shown only as a density). The
//! map's cells, the cell tiles and the OGC `h3-*` and `hotspots` collections bin Gi* (and
//! the map local Moran) on the perturbed counts; the emerging categories are still of
//! exact counts (published as categories only). Analysts see exact values.

/// The noise values of the table, lowest first.
pub const NOISE: [i8; 5] = [-2, -1, 0, 1, 2];

/// The p-table's rows, in 256ths per noise value of [`NOISE`]: true count 1, and 2 or more.
pub const TABLE: [[u16; 5]; 2] = [[0, 128, 24, 80, 24], [24, 56, 96, 56, 24]];

/// The variance every row adds, 304/256.
pub const VARIANCE: f64 = 304.0 / 256.0;

/// The chance that two cells with independent cell keys, in the row for 2 or more, get
/// the same noise: sum of p^2 = 16640/65536.
pub const CHANCE_EQUAL: f64 = 16_640.0 / 65_536.0;

/// The p-table expanded to one noise per (row, permuted cell key).
#[derive(Debug, Clone)]
pub struct PTable {
    rows: [[i8; 256]; 2],
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl PTable {
    /// The table with the cell-key permutation of `seed`.
    pub fn new(seed: u64) -> Self {
        let mut perm: [u8; 256] = std::array::from_fn(|i| i as u8);
        let mut st = seed;
        for i in (1..256usize).rev() {
            let j = (splitmix(&mut st) % (i as u64 + 1)) as usize;
            perm.swap(i, j);
        }
        let rows = std::array::from_fn(|r| {
            let mut plain = [0i8; 256];
            let mut at = 0usize;
            for (v, &p) in NOISE.iter().zip(&TABLE[r]) {
                for slot in &mut plain[at..at + usize::from(p)] {
                    *slot = *v;
                }
                at += usize::from(p);
            }
            debug_assert_eq!(at, 256);
            std::array::from_fn(|ck| plain[usize::from(perm[ck])])
        });
        PTable { rows }
    }

    /// The noise of a cell of `count` records (not 0) with key sum `key_sum`.
    pub fn noise(&self, count: u64, key_sum: u32) -> i64 {
        let row = usize::from(count >= 2);
        i64::from(self.rows[row][(key_sum & 0xff) as usize])
    }

    /// The perturbed count: 0 for 0, else the count plus its noise, at least 1.
    pub fn perturb(&self, count: u64, key_sum: u32) -> u64 {
        if count == 0 {
            return 0;
        }
        (count as i64 + self.noise(count, key_sum)).max(1) as u64
    }

    /// The published count under threshold `k`: None (withheld) when the perturbed count
    /// is from 1 to k - 1.
    pub fn publish(&self, count: u64, key_sum: u32, k: u64) -> Option<u64> {
        let p = self.perturb(count, key_sum);
        (!super::primary(p, k)).then_some(p)
    }

    /// A derived number (a rate, a density) of a count, scaled as the count is perturbed.
    pub fn scale(&self, value: f64, count: u64, key_sum: u32) -> f64 {
        if count == 0 {
            return value;
        }
        value * self.perturb(count, key_sum) as f64 / count as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_sums_to_256_has_zero_mean_and_the_stated_variance() {
        for row in TABLE {
            let p: Vec<f64> = row.iter().map(|&x| f64::from(x) / 256.0).collect();
            assert_eq!(row.iter().sum::<u16>(), 256);
            let mean: f64 = NOISE.iter().zip(&p).map(|(&v, p)| f64::from(v) * p).sum();
            let var: f64 = NOISE
                .iter()
                .zip(&p)
                .map(|(&v, p)| f64::from(v).powi(2) * p)
                .sum();
            assert!(mean.abs() < 1e-12, "mean {mean}");
            assert!((var - VARIANCE).abs() < 1e-12, "variance {var}");
        }
        let chance: f64 = TABLE[1]
            .iter()
            .map(|&x| (f64::from(x) / 256.0).powi(2))
            .sum();
        assert!((chance - CHANCE_EQUAL).abs() < 1e-12);
    }

    #[test]
    fn the_expanded_table_realises_the_probabilities_exactly_for_any_seed() {
        for seed in [0, 1, 42, u64::MAX] {
            let t = PTable::new(seed);
            for (row, probs) in [(1u64, TABLE[0]), (7, TABLE[1])] {
                let mut seen = [0u16; 5];
                for ck in 0..256u32 {
                    let e = t.noise(row, ck);
                    seen[(e + 2) as usize] += 1;
                }
                assert_eq!(seen, probs, "seed {seed}, count {row}");
            }
        }
        // Different seeds give different permutations.
        let (a, b) = (PTable::new(1), PTable::new(2));
        assert!((0..256).any(|ck| a.noise(9, ck) != b.noise(9, ck)));
    }

    #[test]
    fn zero_stays_zero_nothing_goes_below_one_and_answers_repeat() {
        let t = PTable::new(7);
        for ck in 0..1024u32 {
            assert_eq!(t.perturb(0, ck), 0);
            assert_eq!(t.publish(0, ck, 5), Some(0));
            assert!(t.perturb(1, ck) >= 1);
            assert!(t.perturb(2, ck) >= 1);
            for n in 1..40u64 {
                let p = t.perturb(n, ck);
                assert!(p.abs_diff(n) <= 2 || (n == 1 && p == 1));
                // Deterministic: the same cell, the same answer; only the key mod 256 counts.
                assert_eq!(p, t.perturb(n, ck));
                assert_eq!(p, PTable::new(7).perturb(n, ck + 256));
                assert_eq!(t.scale(3.0 * n as f64, n, ck), 3.0 * p as f64);
            }
            // Small counts stay withheld, whatever the noise: 1 + 2 < 5.
            assert_eq!(t.publish(1, ck, 5), None);
            assert_eq!(t.publish(2, ck, 5), None);
        }
    }

    #[test]
    fn the_empirical_mean_and_variance_over_random_cells_match() {
        // Cells of 10 records with random keys: the noise averages to 0, variance 1.1875.
        let t = PTable::new(123);
        let mut st = 99u64;
        let n = 200_000;
        let (mut s, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let ck: u32 = (0..10).map(|_| (splitmix(&mut st) & 0xff) as u32).sum();
            let e = t.noise(10, ck) as f64;
            s += e;
            s2 += e * e;
        }
        let mean = s / f64::from(n);
        let var = s2 / f64::from(n) - mean * mean;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - VARIANCE).abs() < 0.02, "variance {var}");
    }
}
