//! The in-memory analysis store and aggregation.
//!
//! The store is columnar and compact: 8 bytes per incident (location id, month, type,
//! severity) plus one entry per distinct location, which carries the H3 cell at the base
//! resolution, the LSOA and the district. Snap points repeat, so H3 and point-in-polygon
//! run once per distinct coordinate, not once per incident.

pub mod aggregate;
mod build;
mod load;
pub mod output;

pub use aggregate::{Aggregation, Filter, Query, TimeBin, Unit, UnitKey, UserBoundary};
pub use build::{BASE_RESOLUTION, Builder};
pub use load::{LoadError, from_csv_paths, from_store};

use std::sync::Arc;

use crate::spatial::Geography;

/// One column per attribute of a distinct location.
#[derive(Debug, Default, Clone)]
pub struct Locations {
    pub lon_e7: Vec<i32>,
    pub lat_e7: Vec<i32>,
    /// H3 cell at [`BASE_RESOLUTION`] (0 if the point has none).
    pub cell: Vec<u64>,
    /// LSOA index in the geography, or `NO_LSOA`.
    pub lsoa: Vec<u16>,
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
}

/// One column per attribute of a located incident (8 bytes each).
#[derive(Debug, Default, Clone)]
pub struct Incidents {
    pub loc: Vec<u32>,
    pub month: Vec<u16>,
    pub ctype: Vec<u8>,
    pub severity: Vec<u8>,
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
}

impl AnalysisStore {
    /// Bytes held by the incident and location columns (not the geography).
    pub fn heap_bytes(&self) -> usize {
        let l = &self.locations;
        let i = &self.incidents;
        l.lon_e7.capacity() * 4
            + l.lat_e7.capacity() * 4
            + l.cell.capacity() * 8
            + l.lsoa.capacity() * 2
            + l.district.capacity()
            + l.street.capacity() * std::mem::size_of::<Box<str>>()
            + l.street.iter().map(|s| s.len()).sum::<usize>()
            + i.loc.capacity() * 4
            + i.month.capacity() * 2
            + i.ctype.capacity()
            + i.severity.capacity()
    }

    /// The first and last month with incidents.
    pub fn month_range(&self) -> Option<(crate::model::Month, crate::model::Month)> {
        use crate::model::Month;
        let m = &self.incidents.month;
        let lo = m.iter().min()?;
        let hi = m.iter().max()?;
        Some((Month::from_index(*lo), Month::from_index(*hi)))
    }
}
