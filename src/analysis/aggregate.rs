//! Counts by unit (H3 resolution 5-11, LSOA, district, or a user boundary) x time (month
//! or the whole period) x crime type, with filters on types, month range and district.
//!
//! # Algorithm
//! Units are resolved per distinct location first (an H3 parent, an LSOA, a district, or
//! a precomputed point-in-polygon for user boundaries) into a dense unit id. The incident
//! columns are then scanned in one chunk per thread; each thread counts into a dense array
//! `unit x time x type` when that fits (the common case) or a hash map otherwise, and the
//! per-thread counts are summed. Each slot holds the count in its low 32 bits and the sum
//! of the records' keys (wrapping, so exact mod 256) in its high 32 bits, so one add of
//! `key << 32 | 1` per incident gives cell-key perturbation its key sum at no second
//! pass (`Count::key_sum`). H3 units are parents of the base-resolution cell, as H3
//! defines hierarchy, so counts at every resolution nest exactly.

use std::str::FromStr;
use std::sync::Arc;

use h3o::{CellIndex, Resolution};
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::AnalysisStore;
use crate::model::{CrimeType, Month, SeveritySet, TypeSet};
use crate::spatial::BoundarySet;
use crate::spatial::geography::{NO_DISTRICT, NO_LSOA, Vintage};

/// A spatial unit of aggregation.
#[derive(Debug, Clone)]
pub enum Unit {
    /// H3 cells: an incident's cell is `latLngToCell(point, r)`.
    H3(Resolution),
    /// LSOAs of a vintage (`lsoa11`, `lsoa21`; `lsoa` is the vintage of the data's codes).
    Lsoa(Vintage),
    District,
    Boundary(Arc<UserBoundary>),
}

impl FromStr for Unit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "lsoa" | "lsoa11" => return Ok(Unit::Lsoa(Vintage::V2011)),
            "lsoa21" => return Ok(Unit::Lsoa(Vintage::V2021)),
            "district" => return Ok(Unit::District),
            _ => {}
        }
        let res = t.strip_prefix("h3:").ok_or_else(|| {
            format!("unknown unit '{s}': expected h3:5 .. h3:11, lsoa, lsoa11, lsoa21 or district")
        })?;
        let r: u8 = res
            .parse()
            .map_err(|_| format!("'{s}': the H3 resolution must be a number from 5 to 11"))?;
        if !(5..=11).contains(&r) {
            return Err(format!("'{s}': the H3 resolution must be from 5 to 11"));
        }
        Resolution::try_from(r)
            .map(Unit::H3)
            .map_err(|e| e.to_string())
    }
}

impl Unit {
    /// Parses a unit for a store: `lsoa` is the LSOA vintage of the store's own codes.
    ///
    /// # Errors
    /// As [`FromStr`].
    pub fn parse_for(s: &str, store: &AnalysisStore) -> Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("lsoa") {
            return Ok(Unit::Lsoa(store.lsoa_vintage));
        }
        s.parse()
    }
}

/// A user's boundary file with each store location already placed in it.
#[derive(Debug)]
pub struct UserBoundary {
    pub set: BoundarySet,
    /// Unit index per location of the store it was built for (`u32::MAX`: outside).
    pub loc_unit: Vec<u32>,
}

impl UserBoundary {
    /// Places every location of `store` in `set` (once, in parallel), by the same rule as
    /// the built-in LSOAs: inside, else the nearest unit within the snap tolerance.
    pub fn new(set: BoundarySet, store: &AnalysisStore) -> Self {
        let l = &store.locations;
        let loc_unit = (0..l.len())
            .into_par_iter()
            .map(|i| {
                set.locate_or_nearest(l.lon(i), l.lat(i))
                    .unwrap_or(u32::MAX)
            })
            .collect();
        UserBoundary { set, loc_unit }
    }
}

/// Time binning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBin {
    All,
    Month,
}

/// Which incidents count.
#[derive(Debug, Clone)]
pub struct Filter {
    pub types: TypeSet,
    /// Road collisions of these severities only (other types have none and always pass).
    pub severities: SeveritySet,
    pub from: Option<Month>,
    pub to: Option<Month>,
    /// District indices to keep (None: all).
    pub districts: Option<Vec<u8>>,
}

/// The types a severity filter narrows: road collisions (collision severity) and road
/// casualties (casualty severity), so `--severity fatal,serious` on casualties is KSI.
pub const SEVERITY_TYPES: TypeSet = TypeSet::road_safety();

impl Default for Filter {
    fn default() -> Self {
        Filter {
            // Casualties are people hurt in collisions, not incidents of their own: an
            // "all types" count would add them on top of their collisions, so they are
            // counted only when asked for.
            types: TypeSet::incidents(),
            severities: SeveritySet::all(),
            from: None,
            to: None,
            districts: None,
        }
    }
}

impl Filter {
    /// Whether the severities can drop anything: some are left out and road collisions
    /// are asked for. Scans read the severity column only then.
    pub fn by_severity(&self) -> bool {
        !self.severities.is_all() && self.types.bits() & SEVERITY_TYPES.bits() != 0
    }

    /// The types kept for an incident of each severity code 0..=3 (codes above 3 read as
    /// unknown, 0).
    pub fn types_by_severity(&self) -> [TypeSet; 4] {
        let without_road = TypeSet::from_bits(self.types.bits() & !SEVERITY_TYPES.bits());
        std::array::from_fn(|code| {
            if self.severities.contains_code(code as u8) {
                self.types
            } else {
                without_road
            }
        })
    }

    /// Whether an incident of type code `ctype` and severity code `sev` passes the type
    /// and severity parts of the filter (months and districts are the caller's).
    #[inline]
    pub fn keeps(&self, ctype: u8, sev: u8) -> bool {
        self.types.contains_code(ctype)
            && (!SEVERITY_TYPES.contains_code(ctype) || self.severities.contains_code(sev))
    }

    /// A canonical spelling (districts sorted and unique): the cache key of everything
    /// computed from a filter, so two spellings of one filter share an entry and a new
    /// field can never be left out of a key.
    pub fn key(&self) -> String {
        let mut ds = self.districts.clone();
        if let Some(d) = ds.as_mut() {
            d.sort_unstable();
            d.dedup();
        }
        format!(
            "{:x}|{:x}|{:?}|{:?}|{ds:?}",
            self.types.bits(),
            self.severities.bits(),
            self.from.map(Month::index),
            self.to.map(Month::index)
        )
    }
}

/// An aggregation request.
#[derive(Debug, Clone)]
pub struct Query {
    pub unit: Unit,
    pub time: TimeBin,
    pub by_type: bool,
    pub filter: Filter,
}

/// The key of a unit in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UnitKey {
    Cell(CellIndex),
    /// Index into the LSOAs, districts or user boundary set.
    Index(u32),
}

/// One non-zero count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Count {
    pub unit: UnitKey,
    /// The month, or None when time is not binned.
    pub month: Option<Month>,
    /// The type, or None when types are not split.
    pub ctype: Option<CrimeType>,
    pub count: u64,
    /// The sum of the counted records' keys, wrapping (exact mod 256): the cell key of
    /// cell-key perturbation (`serve::disclosure::ckp`).
    pub key_sum: u32,
}

/// The result: non-zero counts sorted by unit, month, type.
#[derive(Debug, Clone)]
pub struct Aggregation {
    pub unit: Unit,
    pub counts: Vec<Count>,
    /// The month range actually covered.
    pub from: Option<Month>,
    pub to: Option<Month>,
    /// Whether the counts carry their key sums ([`aggregate`]) or not
    /// ([`aggregate_exact`]): only a keyed aggregation may be perturbed.
    pub keyed: bool,
}

impl Aggregation {
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.count).sum()
    }
}

/// Largest dense counting array per thread (entries).
const DENSE_MAX: usize = 1 << 22;

/// Resolves every location to a dense unit id; returns the ids and the unit keys.
fn units_of_locations(
    store: &AnalysisStore,
    unit: &Unit,
    filter: &Filter,
) -> (Vec<u32>, Vec<UnitKey>) {
    let l = &store.locations;
    let keep = |i: usize| match &filter.districts {
        None => true,
        Some(d) => d.contains(&l.district[i]),
    };
    match unit {
        Unit::H3(res) => {
            // Dense ids in cell order, so the counts come out sorted without a sort.
            let all = l.cells(*res);
            let parents: Vec<Option<CellIndex>> = (0..l.len())
                .into_par_iter()
                .map(|i| CellIndex::try_from(all[i]).ok().filter(|_| keep(i)))
                .collect();
            let mut cells: Vec<CellIndex> = parents.iter().flatten().copied().collect();
            cells.sort_unstable();
            cells.dedup();
            let dense: FxHashMap<CellIndex, u32> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| (*c, i as u32))
                .collect();
            let ids = parents
                .iter()
                .map(|p| p.map_or(u32::MAX, |p| dense[&p]))
                .collect();
            (ids, cells.into_iter().map(UnitKey::Cell).collect())
        }
        Unit::Lsoa(_) | Unit::District | Unit::Boundary(_) => {
            let n = match unit {
                Unit::Lsoa(v) => store.geography.lsoa_set(*v).len(),
                Unit::District => store.geography.districts.len(),
                Unit::Boundary(b) => b.set.len(),
                Unit::H3(_) => 0,
            };
            let keys = (0..n as u32).map(UnitKey::Index).collect();
            let ids = (0..l.len())
                .map(|i| {
                    let id = match unit {
                        Unit::Lsoa(v) if l.lsoa_of(*v)[i] != NO_LSOA => u32::from(l.lsoa_of(*v)[i]),
                        Unit::District if l.district[i] != NO_DISTRICT => u32::from(l.district[i]),
                        Unit::Boundary(b) => b.loc_unit[i],
                        _ => u32::MAX,
                    };
                    if keep(i) { id } else { u32::MAX }
                })
                .collect();
            (ids, keys)
        }
    }
}

/// The inner loop over a range of incidents, handing each counted incident's slot and
/// `key << 32 | 1` to `add`.
struct Scan<'a> {
    inc: &'a super::Incidents,
    /// The store's record keys; `None` for exact counts only (key sums of zero).
    keys: Option<&'a [u8]>,
    base: &'a [usize],
    lo: u16,
    span: u16,
    types: TypeSet,
    /// With a severity filter: the types kept per severity code (`Filter::types_by_severity`).
    by_severity: Option<[TypeSet; 4]>,
    t_mul: usize,
    y_mul: usize,
}

impl Scan<'_> {
    #[inline]
    fn run(&self, s: usize, e: usize, add: impl FnMut(usize, u64)) {
        match self.keys {
            Some(keys) => self.run_with(s, e, keys[s..e].iter().copied(), add),
            None => self.run_with(s, e, std::iter::repeat(0), add),
        }
    }

    #[inline(always)]
    fn run_with(
        &self,
        s: usize,
        e: usize,
        keys: impl Iterator<Item = u8>,
        mut add: impl FnMut(usize, u64),
    ) {
        let inc = self.inc;
        let cols = inc.loc[s..e]
            .iter()
            .zip(&inc.month[s..e])
            .zip(&inc.ctype[s..e])
            .zip(keys);
        let one = |key: u8| (u64::from(key) << 32) | 1;
        let slot = |b: usize, dm: u16, c: u8| {
            b + usize::from(dm) * self.t_mul + usize::from(c) * self.y_mul
        };
        match &self.by_severity {
            // The usual case reads four columns, not five.
            None => {
                for (((&l, &m), &c), key) in cols {
                    let b = self.base[l as usize];
                    let dm = m.wrapping_sub(self.lo);
                    if b != usize::MAX && dm <= self.span && self.types.contains_code(c) {
                        add(slot(b, dm, c), one(key));
                    }
                }
            }
            Some(types) => {
                for ((((&l, &m), &c), key), &v) in cols.zip(&inc.severity[s..e]) {
                    let b = self.base[l as usize];
                    let dm = m.wrapping_sub(self.lo);
                    // Codes above 3 read as unknown (0), as `Severity::from_code` has it.
                    let v = if v > 3 { 0 } else { usize::from(v) };
                    if b != usize::MAX && dm <= self.span && types[v].contains_code(c) {
                        add(slot(b, dm, c), one(key));
                    }
                }
            }
        }
    }
}

/// Runs an aggregation, with each count's key sum for cell-key perturbation (the
/// store's record keys are computed on first use).
pub fn aggregate(store: &AnalysisStore, q: &Query) -> Aggregation {
    run(store, q, true)
}

/// Runs an aggregation for exact answers only: the record keys are neither computed nor
/// read, every `key_sum` is 0 and `keyed` is false. For callers that never perturb
/// (`hotspot aggregate` and `summary`, an analyst's exact counts): they need not wait for
/// the keys of a store just loaded.
pub fn aggregate_exact(store: &AnalysisStore, q: &Query) -> Aggregation {
    run(store, q, false)
}

fn run(store: &AnalysisStore, q: &Query, keyed: bool) -> Aggregation {
    let (loc_unit, keys) = units_of_locations(store, &q.unit, &q.filter);
    let inc = &store.incidents;
    let data_range = store.month_range();
    let from = q.filter.from.or(data_range.map(|r| r.0));
    let to = q.filter.to.or(data_range.map(|r| r.1));
    let (Some(from), Some(to)) = (from, to) else {
        return Aggregation {
            unit: q.unit.clone(),
            counts: vec![],
            from,
            to,
            keyed,
        };
    };
    if from > to || keys.is_empty() {
        return Aggregation {
            unit: q.unit.clone(),
            counts: vec![],
            from: Some(from),
            to: Some(to),
            keyed,
        };
    }
    let (lo, hi) = (from.index(), to.index());
    let n_t = if q.time == TimeBin::Month {
        usize::from(hi - lo) + 1
    } else {
        1
    };
    let n_y = if q.by_type { CrimeType::COUNT } else { 1 };
    let size = keys.len() * n_t * n_y;
    let types = q.filter.types;
    // Per location: the first slot of its unit (or MAX), so the scan does one lookup.
    let stride = n_t * n_y;
    let base: Vec<usize> = loc_unit
        .iter()
        .map(|&u| {
            if u == u32::MAX {
                usize::MAX
            } else {
                u as usize * stride
            }
        })
        .collect();
    let span = hi - lo;
    let (t_mul, y_mul) = (usize::from(n_t > 1) * n_y, usize::from(n_y > 1));
    let scan = Scan {
        inc,
        keys: keyed.then(|| store.record_keys()),
        base: &base,
        lo,
        span,
        types,
        by_severity: q.filter.by_severity().then(|| q.filter.types_by_severity()),
        t_mul,
        y_mul,
    };
    let threads = rayon::current_num_threads().max(1);
    let chunk = inc.len().div_ceil(threads).max(1);
    let ranges: Vec<(usize, usize)> = (0..inc.len())
        .step_by(chunk)
        .map(|s| (s, (s + chunk).min(inc.len())))
        .collect();
    // Each slot: key sum (wrapping) << 32 | count.
    let pairs: Vec<(usize, u64)> = if size <= DENSE_MAX {
        let tok = crate::cancel::current();
        let dense = ranges
            .par_iter()
            .map(|&(s, e)| {
                crate::cancel::check(&tok);
                let mut acc = vec![0u64; size];
                scan.run(s, e, |k, v| acc[k] = acc[k].wrapping_add(v));
                acc
            })
            .reduce(
                || vec![0u64; size],
                |mut a, b| {
                    a.iter_mut()
                        .zip(&b)
                        .for_each(|(x, y)| *x = x.wrapping_add(*y));
                    a
                },
            );
        dense
            .iter()
            .enumerate()
            .filter(|(_, c)| **c as u32 > 0)
            .map(|(k, c)| (k, *c))
            .collect()
    } else {
        let tok = crate::cancel::current();
        let map = ranges
            .par_iter()
            .map(|&(s, e)| {
                crate::cancel::check(&tok);
                let mut acc: FxHashMap<usize, u64> = FxHashMap::default();
                scan.run(s, e, |k, v| {
                    let a = acc.entry(k).or_default();
                    *a = a.wrapping_add(v);
                });
                acc
            })
            .reduce(FxHashMap::default, |mut a, b| {
                for (k, v) in b {
                    let x = a.entry(k).or_default();
                    *x = x.wrapping_add(v);
                }
                a
            });
        let mut v: Vec<(usize, u64)> = map.into_iter().collect();
        v.sort_unstable();
        v
    };
    let mut counts: Vec<Count> = pairs
        .into_iter()
        .map(|(k, packed)| {
            let y = k % n_y;
            let t = (k / n_y) % n_t;
            let u = k / n_y / n_t;
            Count {
                unit: keys[u],
                month: (q.time == TimeBin::Month).then(|| Month::from_index(lo + t as u16)),
                ctype: if q.by_type {
                    CrimeType::from_code(y as u8)
                } else {
                    None
                },
                count: u64::from(packed as u32),
                key_sum: (packed >> 32) as u32,
            }
        })
        .collect();
    // Dense ids follow unit order, so this is already sorted for H3, LSOA and districts.
    if !counts.is_sorted() {
        counts.sort_unstable();
    }
    Aggregation {
        unit: q.unit.clone(),
        counts,
        from: Some(from),
        to: Some(to),
        keyed,
    }
}

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;
