//! The bundled Lancashire geography: 941 LSOAs inside 14 districts, and the county
//! outline, compiled into the binary from `boundaries/` so the engine runs anywhere.

use std::path::Path;

use geo::MultiPolygon;

use super::boundaries::{BoundaryError, BoundarySet};

/// The bundled LSOA GeoJSON text (also the generator's default).
pub const LSOA_GEOJSON: &str = include_str!("../../boundaries/lsoa.geojson");
const DISTRICTS: &str = include_str!("../../boundaries/districts.geojson");
const COUNTY: &str = include_str!("../../boundaries/county.geojson");

/// Marker for "no unit" in compact per-location columns.
pub const NO_LSOA: u16 = u16::MAX;
pub const NO_DISTRICT: u8 = u8::MAX;

/// LSOAs, the district each belongs to, district polygons and the county outline.
#[derive(Debug)]
pub struct Geography {
    pub lsoas: BoundarySet,
    pub districts: BoundarySet,
    /// District index of each LSOA.
    pub lsoa_district: Vec<u8>,
    pub county: MultiPolygon<f64>,
}

impl Geography {
    /// The Lancashire boundaries bundled in the binary.
    ///
    /// # Errors
    /// Only if the bundled files are corrupt (a build problem).
    pub fn bundled() -> Result<Self, BoundaryError> {
        Self::from_strs(LSOA_GEOJSON, DISTRICTS, COUNTY, Path::new("boundaries"))
    }

    /// Loads `lsoa.geojson`, `districts.geojson` and `county.geojson` from a directory in
    /// the layout `hotspot boundaries` writes.
    ///
    /// # Errors
    /// When a file is missing or malformed, or an LSOA names an unknown district.
    pub fn load(dir: &Path) -> Result<Self, BoundaryError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| BoundaryError::Io { path, source })
        };
        Self::from_strs(
            &read("lsoa.geojson")?,
            &read("districts.geojson")?,
            &read("county.geojson")?,
            dir,
        )
    }

    fn from_strs(
        lsoa: &str,
        districts: &str,
        county: &str,
        dir: &Path,
    ) -> Result<Self, BoundaryError> {
        let lsoas =
            BoundarySet::from_geojson_str(lsoa, &dir.join("lsoa.geojson"), "code", Some("name"))?;
        let districts = BoundarySet::from_geojson_str(
            districts,
            &dir.join("districts.geojson"),
            "code",
            Some("name"),
        )?;
        let county_path = dir.join("county.geojson");
        let county_set = BoundarySet::from_geojson_str(county, &county_path, "code", Some("name"))?;
        if districts.len() >= usize::from(NO_DISTRICT) || lsoas.len() >= usize::from(NO_LSOA) {
            return Err(BoundaryError::Invalid {
                path: dir.to_owned(),
                reason: "too many units for the compact store".into(),
            });
        }
        let lsoa_district = (0..lsoas.len())
            .map(|i| {
                let dc = lsoas.properties[i]
                    .get("district_code")
                    .and_then(|v| v.as_str());
                dc.and_then(|dc| districts.index_of(dc))
                    .map(|d| d as u8)
                    .ok_or_else(|| BoundaryError::Feature {
                        path: dir.join("lsoa.geojson"),
                        index: i,
                        reason: "district_code names no district".into(),
                    })
            })
            .collect::<Result<_, _>>()?;
        let county = county_set
            .polygons
            .into_iter()
            .next()
            .unwrap_or(MultiPolygon(vec![]));
        Ok(Geography {
            lsoas,
            districts,
            lsoa_district,
            county,
        })
    }

    /// LSOA and district of a point (nearest within a short distance for coastal points).
    pub fn locate(&self, lon: f64, lat: f64) -> (u16, u8) {
        match self.lsoas.locate_or_nearest(lon, lat) {
            Some(i) => (i as u16, self.lsoa_district[i as usize]),
            None => (NO_LSOA, NO_DISTRICT),
        }
    }

    /// District index by code or name (case-insensitive).
    pub fn district_index(&self, key: &str) -> Option<u8> {
        (0..self.districts.len())
            .find(|&i| {
                self.districts.codes[i].eq_ignore_ascii_case(key)
                    || self.districts.names[i].eq_ignore_ascii_case(key)
            })
            .map(|i| i as u8)
    }
}
