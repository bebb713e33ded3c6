//! Building the analysis store: incidents are pushed with raw coordinates; distinct
//! coordinates get dense location ids; `finish` resolves each distinct location to its H3
//! cell, LSOA and district in parallel.

use std::sync::Arc;

use h3o::{LatLng, Resolution};
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::{AnalysisStore, Incidents, Locations};
use crate::ingest::{IngestError, Record, Sink, Text};
use crate::model::to_e7;
use crate::spatial::Geography;

/// H3 resolution stored per location; coarser units are its parents.
pub const BASE_RESOLUTION: Resolution = Resolution::Eleven;

/// Collects incidents before their locations are resolved.
#[derive(Debug, Default)]
pub struct Builder {
    index: FxHashMap<u64, u32>,
    lon_e7: Vec<i32>,
    lat_e7: Vec<i32>,
    street: Vec<Box<str>>,
    incidents: Incidents,
    unlocated: u64,
}

fn pack(lon_e7: i32, lat_e7: i32) -> u64 {
    (u64::from(lon_e7 as u32) << 32) | u64::from(lat_e7 as u32)
}

impl Builder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder with room for `incidents` incidents.
    pub fn with_capacity(incidents: usize) -> Self {
        let mut b = Self::default();
        b.incidents.loc.reserve(incidents);
        b.incidents.month.reserve(incidents);
        b.incidents.ctype.reserve(incidents);
        b.incidents.severity.reserve(incidents);
        b
    }

    /// Adds a location (deduplicated by coordinate) and returns its id.
    pub fn location(&mut self, lon_e7: i32, lat_e7: i32, street: &str) -> u32 {
        let next = self.lon_e7.len() as u32;
        *self.index.entry(pack(lon_e7, lat_e7)).or_insert_with(|| {
            self.lon_e7.push(lon_e7);
            self.lat_e7.push(lat_e7);
            self.street.push(street.into());
            next
        })
    }

    /// As [`Builder::location`], decoding the street text only for a new location.
    #[inline]
    pub fn location_text(&mut self, lon_e7: i32, lat_e7: i32, street: &Text<'_>) -> u32 {
        let next = self.lon_e7.len() as u32;
        *self.index.entry(pack(lon_e7, lat_e7)).or_insert_with(|| {
            self.lon_e7.push(lon_e7);
            self.lat_e7.push(lat_e7);
            self.street.push(street.decode().into());
            next
        })
    }

    /// Adds an incident at a location id from [`Builder::location`].
    #[inline]
    pub fn incident(&mut self, loc: u32, month: u16, ctype: u8, severity: u8) {
        self.incidents.loc.push(loc);
        self.incidents.month.push(month);
        self.incidents.ctype.push(ctype);
        self.incidents.severity.push(severity);
    }

    /// Counts an incident without a location.
    pub fn unlocated(&mut self, n: u64) {
        self.unlocated += n;
    }

    /// Appends another builder, remapping its location ids.
    pub fn merge(&mut self, other: Builder) {
        let remap: Vec<u32> = (0..other.lon_e7.len())
            .map(|i| self.location(other.lon_e7[i], other.lat_e7[i], &other.street[i]))
            .collect();
        let inc = other.incidents;
        self.incidents
            .loc
            .extend(inc.loc.iter().map(|&l| remap[l as usize]));
        self.incidents.month.extend_from_slice(&inc.month);
        self.incidents.ctype.extend_from_slice(&inc.ctype);
        self.incidents.severity.extend_from_slice(&inc.severity);
        self.unlocated += other.unlocated;
    }

    /// Appends the incidents of a builder that used this builder's location ids.
    pub fn append_incidents(&mut self, other: Builder) {
        let inc = other.incidents;
        self.incidents.loc.extend_from_slice(&inc.loc);
        self.incidents.month.extend_from_slice(&inc.month);
        self.incidents.ctype.extend_from_slice(&inc.ctype);
        self.incidents.severity.extend_from_slice(&inc.severity);
        self.unlocated += other.unlocated;
    }

    /// Resolves locations and freezes the store.
    pub fn finish(self, geography: Arc<Geography>) -> AnalysisStore {
        let resolved: Vec<(u64, u16, u8)> = self
            .lon_e7
            .par_iter()
            .zip(self.lat_e7.par_iter())
            .map(|(&x, &y)| {
                let (lon, lat) = (f64::from(x) / 1e7, f64::from(y) / 1e7);
                let cell =
                    LatLng::new(lat, lon).map_or(0, |ll| u64::from(ll.to_cell(BASE_RESOLUTION)));
                let (lsoa, district) = geography.locate(lon, lat);
                (cell, lsoa, district)
            })
            .collect();
        let mut incidents = self.incidents;
        incidents.loc.shrink_to_fit();
        incidents.month.shrink_to_fit();
        incidents.ctype.shrink_to_fit();
        incidents.severity.shrink_to_fit();
        AnalysisStore {
            geography,
            locations: Locations {
                lon_e7: self.lon_e7,
                lat_e7: self.lat_e7,
                cell: resolved.iter().map(|r| r.0).collect(),
                lsoa: resolved.iter().map(|r| r.1).collect(),
                district: resolved.iter().map(|r| r.2).collect(),
                street: self.street,
            },
            incidents,
            unlocated: self.unlocated,
        }
    }
}

impl Sink for Builder {
    fn record(&mut self, rec: &Record<'_>) -> Result<(), IngestError> {
        match rec.point {
            Some((lon, lat)) => {
                let loc = self.location_text(to_e7(lon), to_e7(lat), &rec.location);
                self.incident(loc, rec.month.index(), rec.ctype as u8, rec.severity as u8);
            }
            None => self.unlocated += 1,
        }
        Ok(())
    }
}
