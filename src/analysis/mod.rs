//! The in-memory analysis store and aggregation.
//!
//! The store is columnar and compact: 9 bytes per incident (location id, month, type,
//! severity, record key) plus one entry per distinct location (a coordinate with the record's LSOA
//! code), which carries its LSOA of each vintage and its district, and, once asked for,
//! its H3 cell at each resolution: `latLngToCell(point, r)`, as h3-py, polars-h3, DuckDB
//! and ArcGIS compute it (H3 children do not tile their parent, so counts at two
//! resolutions do not nest exactly). Snap points repeat, so H3 and point-in-polygon run
//! once per distinct location, not once per incident.
//!
//! Only incidents inside the study area are held: a record whose LSOA code the geography
//! does not know, or whose point (without a code) lies in no LSOA, is counted per type in
//! `outside`, like records without a location in `unlocated`, and left out of every
//! analytical output alike.
//!
//! The store also carries the data's coverage (`crate::coverage`): which force-months
//! each dataset covers. [`AnalysisStore::series_months`] and
//! [`AnalysisStore::observed_months`] are the one place every monthly series (the
//! statistics' cubes, the map's details, patrol and backtest windows) gets its months
//! and learns which of them are missing (no file published: never zero).

pub mod aggregate;
pub mod build;
mod load;
pub mod output;

pub use aggregate::{Aggregation, Filter, Query, TimeBin, Unit, UnitKey, UserBoundary};
pub use build::Builder;
pub use load::{LoadError, from_csv_paths, from_store, from_store_at};

use std::sync::{Arc, OnceLock};

use h3o::{LatLng, Resolution};
use rayon::prelude::*;

use crate::model::{CrimeType, TypeSet};
use crate::spatial::{Geography, geography::Vintage};

/// Counts per crime type code (indexed by `CrimeType as u8`).
pub type TypeCounts = Vec<u64>;

/// One column per attribute of a distinct location.
#[derive(Debug, Default, Clone)]
pub struct Locations {
    pub lon_e7: Vec<i32>,
    pub lat_e7: Vec<i32>,
    /// H3 cells per resolution (index = resolution), computed on first use.
    pub cells: [OnceLock<Vec<u64>>; 16],
    /// LSOA 2011 index in the geography (`lsoas`).
    pub lsoa: Vec<u16>,
    /// LSOA 2021 index in the geography (`lsoas21`).
    pub lsoa21: Vec<u16>,
    /// District index, or `NO_DISTRICT`.
    pub district: Vec<u8>,
    /// police.uk location text ("On or near ...").
    pub street: Vec<Box<str>>,
}

impl Locations {
    pub fn len(&self) -> usize {
        self.lon_e7.len()
    }
    pub fn is_empty(&self) -> bool {
        self.lon_e7.is_empty()
    }
    pub fn lon(&self, i: usize) -> f64 {
        f64::from(self.lon_e7[i]) / 1e7
    }
    pub fn lat(&self, i: usize) -> f64 {
        f64::from(self.lat_e7[i]) / 1e7
    }

    /// Each location's H3 cell at `res` (`latLngToCell`; 0 if the point has none),
    /// computed in parallel on first use and kept.
    pub fn cells(&self, res: Resolution) -> &[u64] {
        self.cells[usize::from(u8::from(res))].get_or_init(|| {
            self.lon_e7
                .par_iter()
                .zip(self.lat_e7.par_iter())
                .map(|(&x, &y)| {
                    LatLng::new(f64::from(y) / 1e7, f64::from(x) / 1e7)
                        .map_or(0, |ll| u64::from(ll.to_cell(res)))
                })
                .collect()
        })
    }

    /// The H3 cell of location `i` at `res`.
    pub fn cell(&self, i: usize, res: Resolution) -> Option<h3o::CellIndex> {
        h3o::CellIndex::try_from(self.cells(res)[i]).ok()
    }

    /// LSOA index column of a vintage.
    pub fn lsoa_of(&self, v: Vintage) -> &[u16] {
        match v {
            Vintage::V2011 => &self.lsoa,
            Vintage::V2021 => &self.lsoa21,
        }
    }
}

/// One column per attribute of a located incident (9 bytes each).
#[derive(Debug, Default, Clone)]
pub struct Incidents {
    pub loc: Vec<u32>,
    pub month: Vec<u16>,
    pub ctype: Vec<u8>,
    pub severity: Vec<u8>,
    /// The record keys (0..256) of cell-key perturbation ([`build::record_keys`]),
    /// computed on first use: read them with [`AnalysisStore::record_keys`]. Exact
    /// answers never need them, so a load does not wait for them.
    pub key: OnceLock<Vec<u8>>,
}

impl Incidents {
    pub fn len(&self) -> usize {
        self.loc.len()
    }
    pub fn is_empty(&self) -> bool {
        self.loc.is_empty()
    }
}

/// Everything the statistics and the server read.
#[derive(Debug, Clone)]
pub struct AnalysisStore {
    pub geography: Arc<Geography>,
    pub locations: Locations,
    pub incidents: Incidents,
    /// Incidents stored without a location (counted, not mapped).
    pub unlocated: u64,
    /// The same per crime type code.
    pub unlocated_by_type: TypeCounts,
    /// Located incidents outside the study area (counted, never analysed), per type code.
    pub outside_by_type: TypeCounts,
    /// The same per month index.
    pub outside_by_month: std::collections::BTreeMap<u16, u64>,
    /// The LSOA vintage of the data's own codes (`lsoa` means this vintage).
    pub lsoa_vintage: Vintage,
    /// Which force-months each dataset covers.
    pub coverage: crate::coverage::Coverage,
    /// Per crime type code, one bit per dataset (`1 << i` for `coverage::Dataset::ALL[i]`)
    /// with located records of that type: read from the store (`from_store`), `None`
    /// where not known (analyses read from files), and then no type counts as coming
    /// only from public datasets ([`AnalysisStore::types_only_from`]).
    pub datasets_by_type: Option<Vec<u8>>,
    /// The store of record's version when read from one (its last ingest id, the same in
    /// every process that read it; 0 for files read directly).
    pub version: u64,
}

impl AnalysisStore {
    /// The types every located record of which comes from one of `public` (a type with
    /// no records counts: nothing of it is protected); empty when the store does not
    /// know its records' datasets.
    pub fn types_only_from(&self, public: &[crate::coverage::Dataset]) -> TypeSet {
        let Some(by_type) = &self.datasets_by_type else {
            return TypeSet::empty();
        };
        let allowed: u8 = crate::coverage::Dataset::ALL
            .iter()
            .enumerate()
            .filter(|(_, d)| public.contains(d))
            .fold(0, |m, (i, _)| m | (1 << i));
        crate::model::CrimeType::ALL
            .iter()
            .copied()
            .filter(|&t| by_type.get(t as usize).is_none_or(|&m| m & !allowed == 0))
            .collect()
    }

    /// Bytes held by the incident and location columns (not the geography).
    pub fn heap_bytes(&self) -> usize {
        let l = &self.locations;
        let i = &self.incidents;
        l.lon_e7.capacity() * 4
            + l.lat_e7.capacity() * 4
            + l.cells
                .iter()
                .filter_map(OnceLock::get)
                .map(|c| c.capacity() * 8)
                .sum::<usize>()
            + l.lsoa.capacity() * 2
            + l.lsoa21.capacity() * 2
            + l.district.capacity()
            + l.street.capacity() * std::mem::size_of::<Box<str>>()
            + l.street.iter().map(|s| s.len()).sum::<usize>()
            + i.loc.capacity() * 4
            + i.month.capacity() * 2
            + i.ctype.capacity()
            + i.severity.capacity()
            // The record keys, whether or not computed yet (a server computes them).
            + i.key.get().map_or(i.loc.len(), Vec::capacity)
    }

    /// Each incident's record key for cell-key perturbation ([`build::record_keys`]),
    /// computed in parallel on first use and kept.
    pub fn record_keys(&self) -> &[u8] {
        self.incidents.key.get_or_init(|| {
            build::record_keys(
                &self.locations.lon_e7,
                &self.locations.lat_e7,
                &self.incidents,
            )
        })
    }

    /// Located incidents outside the study area.
    pub fn outside(&self) -> u64 {
        self.outside_by_type.iter().sum()
    }

    /// Unlocated incidents of one type.
    pub fn unlocated_of(&self, t: CrimeType) -> u64 {
        self.unlocated_by_type.get(t as usize).copied().unwrap_or(0)
    }

    /// Outside-the-study-area incidents of one type.
    pub fn outside_of(&self, t: CrimeType) -> u64 {
        self.outside_by_type.get(t as usize).copied().unwrap_or(0)
    }

    /// The first and last month with incidents.
    pub fn month_range(&self) -> Option<(crate::model::Month, crate::model::Month)> {
        use crate::model::Month;
        let m = &self.incidents.month;
        let lo = m.iter().min()?;
        let hi = m.iter().max()?;
        Some((Month::from_index(*lo), Month::from_index(*hi)))
    }

    /// The months of a filter's monthly series: its `from` and `to`, or the data's first
    /// and last month where it leaves them open (empty without data or when from > to).
    pub fn series_months(&self, filter: &Filter) -> Vec<crate::model::Month> {
        use crate::model::Month;
        let range = self.month_range();
        let from = filter.from.or(range.map(|r| r.0));
        let to = filter.to.or(range.map(|r| r.1));
        match (from, to) {
            (Some(f), Some(t)) if f <= t => {
                (f.index()..=t.index()).map(Month::from_index).collect()
            }
            _ => vec![],
        }
    }

    /// For each of `months`, whether it is observed under `filter` (false: missing,
    /// a month some force of a dataset the filter's types come from did not publish;
    /// `crate::coverage::Coverage::observed`).
    pub fn observed_months(&self, filter: &Filter, months: &[crate::model::Month]) -> Vec<bool> {
        self.coverage.observed(filter.types, months)
    }

    /// The missing months of the filter's series.
    pub fn missing_months(&self, filter: &Filter) -> Vec<crate::model::Month> {
        let months = self.series_months(filter);
        let observed = self.observed_months(filter, &months);
        crate::coverage::missing_of(&months, &observed)
    }
}
