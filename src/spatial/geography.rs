//! The bundled Lancashire geography: the LSOAs of both vintages (941 of 2011, 945 of 2021)
//! inside 14 districts, the ONS exact-fit lookup between the vintages, and the county
//! outline, compiled into the binary from `boundaries/` so the engine runs anywhere.
//!
//! Area attribution follows the publisher: a record that carries an LSOA code the
//! geography knows (police.uk `LSOA code`, STATS19 `lsoa_of_accident_location`) is in that
//! LSOA and its district, whatever the generalised polygons say; a record coded in one
//! vintage is mapped to the other through the lookup (a split 2011 LSOA or a merged 2021
//! one by point-in-polygon among its candidates). A record with a code the geography does
//! not know (police.uk files carry crimes in Wigan, Kent, London) is outside the study area.
//! Only records without a code are placed by point-in-polygon on the 2011 boundaries
//! (nearest LSOA within [`SNAP_TOLERANCE_DEG`] for points the generalised coast cuts off).

use geo::{Distance, Euclidean, Intersects, MultiPolygon, Point};
use rustc_hash::FxHashMap;

pub use super::boundaries::SNAP_TOLERANCE_DEG;
use super::boundaries::{BoundaryError, BoundarySet};
use super::derive::parse_lookup;

/// The bundled LSOA 2011 GeoJSON text (also the generator's default).
pub const LSOA_GEOJSON: &str = include_str!("../../boundaries/lsoa11.geojson");
const LSOA21_GEOJSON: &str = include_str!("../../boundaries/lsoa21.geojson");
const LOOKUP_CSV: &str = include_str!("../../boundaries/lsoa11_lsoa21_lad22.csv");
const DISTRICTS: &str = include_str!("../../boundaries/districts.geojson");
const COUNTY: &str = include_str!("../../boundaries/county.geojson");

/// Marker for "no unit" in compact per-location columns.
pub const NO_LSOA: u16 = u16::MAX;
pub const NO_DISTRICT: u8 = u8::MAX;

/// An LSOA vintage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Vintage {
    V2011,
    V2021,
}

impl Vintage {
    pub fn unit_name(self) -> &'static str {
        match self {
            Vintage::V2011 => "lsoa11",
            Vintage::V2021 => "lsoa21",
        }
    }
}

/// Where a location is: its LSOA in each vintage and its district; all `NO_*` when it is
/// outside the study area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub lsoa11: u16,
    pub lsoa21: u16,
    pub district: u8,
    /// How the LSOA was decided.
    pub by: PlacedBy,
}

/// How a location was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacedBy {
    /// The record's own 2011 code.
    Code2011,
    /// The record's own 2021 code.
    Code2021,
    /// A code that names both vintages (an unchanged LSOA).
    CodeBoth,
    /// Point-in-polygon (no code on the record).
    Point,
    /// Outside: a code the geography does not know, or a point in no LSOA.
    Outside,
}

impl Placed {
    pub const OUTSIDE: Placed = Placed {
        lsoa11: NO_LSOA,
        lsoa21: NO_LSOA,
        district: NO_DISTRICT,
        by: PlacedBy::Outside,
    };
    pub fn is_outside(&self) -> bool {
        self.district == NO_DISTRICT
    }
}

/// LSOAs of both vintages, the district each belongs to, district polygons and the
/// county outline.
#[derive(Debug)]
pub struct Geography {
    /// LSOAs of 2011 (unit `lsoa11`).
    pub lsoas: BoundarySet,
    /// LSOAs of 2021 (unit `lsoa21`).
    pub lsoas21: BoundarySet,
    pub districts: BoundarySet,
    /// District index of each 2011 LSOA.
    pub lsoa_district: Vec<u8>,
    /// District index of each 2021 LSOA.
    pub lsoa21_district: Vec<u8>,
    /// The 2021 LSOAs of each 2011 LSOA (one unless it was split).
    pub to21: Vec<Vec<u16>>,
    /// The 2011 LSOAs of each 2021 LSOA (one unless they were merged).
    pub to11: Vec<Vec<u16>>,
    pub county: MultiPolygon<f64>,
    /// Code -> (2011 index, 2021 index), `NO_LSOA` where the code is not of that vintage.
    codes: FxHashMap<Box<str>, (u16, u16)>,
    /// The gazetteer's places of this geography, built on the first search
    /// (`gazetteer::fixed`).
    pub(crate) places: std::sync::OnceLock<Vec<super::gazetteer::Place>>,
    /// The map's labels of this geography (districts, towns), built on the first request
    /// (`gazetteer::fixed_labels`).
    pub(crate) labels: std::sync::OnceLock<Vec<super::gazetteer::Label>>,
    /// Each district's share of the districts' total area, on first use
    /// ([`Geography::district_shares`]).
    district_shares: std::sync::OnceLock<Vec<f64>>,
}

impl Geography {
    /// The Lancashire boundaries bundled in the binary.
    ///
    /// # Errors
    /// Only if the bundled files are corrupt (a build problem).
    pub fn bundled() -> Result<Self, BoundaryError> {
        let dir = std::path::Path::new("boundaries");
        let set = |text: &str, file: &str| {
            BoundarySet::from_geojson_str(text, &dir.join(file), "code", Some("name"))
        };
        let lsoas = set(LSOA_GEOJSON, "lsoa11.geojson")?;
        let lsoas21 = set(LSOA21_GEOJSON, "lsoa21.geojson")?;
        let districts = set(DISTRICTS, "districts.geojson")?;
        let county = set(COUNTY, "county.geojson")?
            .polygons
            .into_iter()
            .next()
            .unwrap_or(MultiPolygon(vec![]));
        let lookup = parse_lookup(LOOKUP_CSV, &dir.join("lsoa11_lsoa21_lad22.csv"))?;
        Self::assemble(lsoas, lsoas21, districts, county, &lookup, dir)
    }

    fn assemble(
        lsoas: BoundarySet,
        lsoas21: BoundarySet,
        districts: BoundarySet,
        county: MultiPolygon<f64>,
        lookup: &[super::derive::LookupRow],
        dir: &std::path::Path,
    ) -> Result<Self, BoundaryError> {
        if districts.len() >= usize::from(NO_DISTRICT)
            || lsoas.len() >= usize::from(NO_LSOA)
            || lsoas21.len() >= usize::from(NO_LSOA)
        {
            return Err(BoundaryError::Invalid {
                path: dir.to_owned(),
                reason: "too many units for the compact store".into(),
            });
        }
        let district_of = |set: &BoundarySet, file: &str| -> Result<Vec<u8>, BoundaryError> {
            (0..set.len())
                .map(|i| {
                    set.properties[i]
                        .get("district_code")
                        .and_then(|v| v.as_str())
                        .and_then(|dc| districts.index_of(dc))
                        .map(|d| d as u8)
                        .ok_or_else(|| BoundaryError::Feature {
                            path: dir.join(file),
                            index: i,
                            reason: "district_code names no district".into(),
                        })
                })
                .collect()
        };
        let lsoa_district = district_of(&lsoas, "lsoa11.geojson")?;
        let lsoa21_district = district_of(&lsoas21, "lsoa21.geojson")?;
        let mut codes: FxHashMap<Box<str>, (u16, u16)> = FxHashMap::default();
        for (i, c) in lsoas.codes.iter().enumerate() {
            codes
                .entry(c.as_str().into())
                .or_insert((NO_LSOA, NO_LSOA))
                .0 = i as u16;
        }
        for (i, c) in lsoas21.codes.iter().enumerate() {
            codes
                .entry(c.as_str().into())
                .or_insert((NO_LSOA, NO_LSOA))
                .1 = i as u16;
        }
        let mut to21 = vec![Vec::new(); lsoas.len()];
        let mut to11 = vec![Vec::new(); lsoas21.len()];
        let bad = |reason: String| BoundaryError::Invalid {
            path: dir.join("lsoa11_lsoa21_lad22.csv"),
            reason,
        };
        for r in lookup {
            let a = lsoas
                .index_of(&r.lsoa11)
                .ok_or_else(|| bad(format!("{} is not a 2011 LSOA", r.lsoa11)))?;
            let b = lsoas21
                .index_of(&r.lsoa21)
                .ok_or_else(|| bad(format!("{} is not a 2021 LSOA", r.lsoa21)))?;
            to21[a].push(b as u16);
            to11[b].push(a as u16);
        }
        if let Some(i) = to21.iter().position(Vec::is_empty) {
            return Err(bad(format!(
                "2011 LSOA {} has no 2021 LSOA",
                lsoas.codes[i]
            )));
        }
        if let Some(i) = to11.iter().position(Vec::is_empty) {
            return Err(bad(format!(
                "2021 LSOA {} has no 2011 LSOA",
                lsoas21.codes[i]
            )));
        }
        Ok(Geography {
            lsoas,
            lsoas21,
            districts,
            lsoa_district,
            lsoa21_district,
            to21,
            to11,
            county,
            codes,
            places: std::sync::OnceLock::new(),
            labels: std::sync::OnceLock::new(),
            district_shares: std::sync::OnceLock::new(),
        })
    }

    /// A geography with no units (for tests of code that needs none).
    pub fn empty() -> Self {
        let empty = || BoundarySet::new(vec![], vec![], vec![], vec![]);
        Geography {
            lsoas: empty(),
            lsoas21: empty(),
            districts: empty(),
            lsoa_district: vec![],
            lsoa21_district: vec![],
            to21: vec![],
            to11: vec![],
            county: MultiPolygon(vec![]),
            codes: FxHashMap::default(),
            places: std::sync::OnceLock::new(),
            labels: std::sync::OnceLock::new(),
            district_shares: std::sync::OnceLock::new(),
        }
    }

    /// Each district's share of the districts' total area (planar, in degrees squared
    /// scaled by the cosine of the latitude: a share, not an area), summing to 1 (empty
    /// when there are no districts).
    pub fn district_shares(&self) -> &[f64] {
        self.district_shares.get_or_init(|| {
            use geo::{Area as _, BoundingRect as _};
            let areas: Vec<f64> = self
                .districts
                .polygons
                .iter()
                .map(|p| {
                    let lat = p.bounding_rect().map_or(0.0, |r| r.center().y);
                    p.unsigned_area() * lat.to_radians().cos()
                })
                .collect();
            let total: f64 = areas.iter().sum();
            if total > 0.0 {
                areas.iter().map(|a| a / total).collect()
            } else {
                vec![0.0; areas.len()]
            }
        })
    }

    /// The share of the districts' area that `districts` cover (1 for `None`, all).
    pub fn area_share(&self, districts: Option<&[u8]>) -> f64 {
        let shares = self.district_shares();
        match districts {
            None => 1.0,
            Some(ds) => {
                let mut seen = [false; 256];
                ds.iter()
                    .filter(|&&d| !std::mem::replace(&mut seen[usize::from(d)], true))
                    .filter_map(|&d| shares.get(usize::from(d)))
                    .sum::<f64>()
                    .min(1.0)
            }
        }
    }

    /// The (2011, 2021) indices of an LSOA code, `NO_LSOA` where it is not of that
    /// vintage; `None` when the geography does not know the code.
    pub fn code(&self, code: &str) -> Option<(u16, u16)> {
        self.codes.get(code.trim()).copied()
    }

    /// Places a location: by its record's LSOA code when it has one (the publisher's
    /// attribution), else by point-in-polygon.
    pub fn place(&self, code: Option<&str>, lon: f64, lat: f64) -> Placed {
        let code = code.map(str::trim).filter(|c| !c.is_empty());
        let (a, b, by) = match code {
            Some(c) => match self.code(c) {
                None => return Placed::OUTSIDE,
                Some((a, b)) if a != NO_LSOA && b != NO_LSOA => (a, b, PlacedBy::CodeBoth),
                Some((a, _)) if a != NO_LSOA => (a, NO_LSOA, PlacedBy::Code2011),
                Some((_, b)) => (NO_LSOA, b, PlacedBy::Code2021),
            },
            None => match self.lsoas.locate_or_nearest(lon, lat) {
                Some(a) => (a as u16, NO_LSOA, PlacedBy::Point),
                None => match self.lsoas21.locate_or_nearest(lon, lat) {
                    Some(b) => (NO_LSOA, b as u16, PlacedBy::Point),
                    None => return Placed::OUTSIDE,
                },
            },
        };
        let a = if a == NO_LSOA {
            pick(&self.lsoas, &self.to11[usize::from(b)], lon, lat)
        } else {
            a
        };
        let b = if b == NO_LSOA {
            pick(&self.lsoas21, &self.to21[usize::from(a)], lon, lat)
        } else {
            b
        };
        Placed {
            lsoa11: a,
            lsoa21: b,
            district: self.lsoa_district[usize::from(a)],
            by,
        }
    }

    /// LSOA (2011) and district of a point by point-in-polygon alone (nearest within
    /// [`SNAP_TOLERANCE_DEG`] for coastal points); for records without a code.
    pub fn locate(&self, lon: f64, lat: f64) -> (u16, u8) {
        let p = self.place(None, lon, lat);
        (p.lsoa11, p.district)
    }

    /// The LSOA set of a vintage.
    pub fn lsoa_set(&self, v: Vintage) -> &BoundarySet {
        match v {
            Vintage::V2011 => &self.lsoas,
            Vintage::V2021 => &self.lsoas21,
        }
    }

    /// District index of each LSOA of a vintage.
    pub fn lsoa_districts(&self, v: Vintage) -> &[u8] {
        match v {
            Vintage::V2011 => &self.lsoa_district,
            Vintage::V2021 => &self.lsoa21_district,
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

/// The candidate whose polygon holds the point, else the nearest candidate.
fn pick(set: &BoundarySet, candidates: &[u16], lon: f64, lat: f64) -> u16 {
    if let [only] = candidates {
        return *only;
    }
    let p = Point::new(lon, lat);
    candidates
        .iter()
        .copied()
        .find(|&c| set.polygons[usize::from(c)].intersects(&p))
        .or_else(|| {
            candidates
                .iter()
                .copied()
                .map(|c| (Euclidean.distance(&p, &set.polygons[usize::from(c)]), c))
                .min_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)))
                .map(|(_, c)| c)
        })
        .unwrap_or(candidates[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g() -> Geography {
        Geography::bundled().expect("bundled geography")
    }

    #[test]
    fn district_area_shares_sum_to_one_and_follow_the_districts_size() {
        let g = g();
        let s = g.district_shares();
        assert_eq!(s.len(), 14);
        assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let d = |name: &str| g.district_index(name).expect(name);
        // Blackpool (35 km2) is the smallest district, Lancaster (576 km2) the largest;
        // the county's 14 districts are 3,075 km2 in all.
        let (blackpool, lancaster) = (d("Blackpool"), d("Lancaster"));
        assert!(
            (s[usize::from(blackpool)] - 35.0 / 3075.0).abs() < 0.004,
            "{s:?}"
        );
        assert!(
            (s[usize::from(lancaster)] - 576.0 / 3075.0).abs() < 0.02,
            "{s:?}"
        );
        assert_eq!(g.area_share(None), 1.0);
        let both = g.area_share(Some(&[blackpool, lancaster, blackpool]));
        assert!((both - s[usize::from(blackpool)] - s[usize::from(lancaster)]).abs() < 1e-12);
    }

    #[test]
    fn both_vintages_and_the_lookup_are_bundled() {
        let g = g();
        assert_eq!(g.lsoas.len(), 941);
        assert_eq!(g.lsoas21.len(), 945);
        assert_eq!(g.districts.len(), 14);
        // 924 unchanged, 7 split into 16, 10 merged into 5 (ONS CHGIND).
        let split = g.to21.iter().filter(|v| v.len() > 1).count();
        let merged = g.to11.iter().filter(|v| v.len() > 1).count();
        assert_eq!(split, 7);
        assert_eq!(
            g.to21
                .iter()
                .filter(|v| v.len() > 1)
                .map(Vec::len)
                .sum::<usize>(),
            16
        );
        assert_eq!(merged, 5);
        assert_eq!(
            g.to11
                .iter()
                .filter(|v| v.len() > 1)
                .map(Vec::len)
                .sum::<usize>(),
            10
        );
    }

    #[test]
    fn a_split_2011_lsoa_maps_to_the_2021_child_holding_the_point() {
        let g = g();
        // Chorley 008A (E01024919) was split into E01034340..E01034343.
        let (a, b) = g.code("E01024919").unwrap();
        assert_eq!(b, NO_LSOA);
        let children = &g.to21[usize::from(a)];
        assert_eq!(children.len(), 4);
        for &c in children {
            let p =
                geo::InteriorPoint::interior_point(&g.lsoas21.polygons[usize::from(c)]).unwrap();
            let placed = g.place(Some("E01024919"), p.x(), p.y());
            assert_eq!(placed.lsoa11, a);
            assert_eq!(
                placed.lsoa21,
                c,
                "child {}",
                g.lsoas21.codes[usize::from(c)]
            );
            assert_eq!(placed.by, PlacedBy::Code2011);
            assert_eq!(g.districts.codes[usize::from(placed.district)], "E07000118");
        }
    }

    #[test]
    fn a_merged_2021_lsoa_maps_back_to_the_2011_parent_holding_the_point() {
        let g = g();
        // Chorley 006A and 006D (E01024929, E01024932) were merged into E01034339.
        let (a, b) = g.code("E01034339").unwrap();
        assert_eq!(a, NO_LSOA);
        let parents = &g.to11[usize::from(b)];
        assert_eq!(parents.len(), 2);
        for &p11 in parents {
            let p =
                geo::InteriorPoint::interior_point(&g.lsoas.polygons[usize::from(p11)]).unwrap();
            let placed = g.place(Some("E01034339"), p.x(), p.y());
            assert_eq!(placed.lsoa21, b);
            assert_eq!(placed.lsoa11, p11);
        }
        // And the 2011 codes of the merged LSOAs map forward to the one 2021 LSOA.
        for code in ["E01024929", "E01024932"] {
            let placed = g.place(Some(code), 0.0, 0.0);
            assert_eq!(placed.lsoa21, b, "{code}");
        }
    }

    #[test]
    fn the_code_decides_and_unknown_codes_are_outside() {
        let g = g();
        // A point in Blackpool coded with a Preston LSOA is in Preston (the publisher's
        // attribution), and a Wigan code is outside the study area wherever the point is.
        let (preston, _) = g.code("E01025280").unwrap();
        let placed = g.place(Some("E01025280"), -3.05, 53.82);
        assert_eq!(placed.lsoa11, preston);
        assert_eq!(g.districts.names[usize::from(placed.district)], "Preston");
        assert!(g.place(Some("E01006230"), -2.7, 53.76).is_outside());
        // No code: point-in-polygon; far away: outside.
        assert!(!g.place(None, -2.7, 53.76).is_outside());
        assert!(g.place(None, -0.1, 51.5).is_outside());
    }
}
