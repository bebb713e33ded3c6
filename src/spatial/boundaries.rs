//! A set of boundary polygons (LSOAs, districts, or a user's beats and wards) with an
//! R-tree over their bounding boxes for point-in-polygon lookup.
//!
//! Lookup is done once per distinct coordinate (snap points repeat), so an exact
//! `Intersects` test on the few R-tree candidates is cheap enough. A point on a shared
//! edge belongs to the lowest-numbered unit, so every point has exactly one owner.
//! Generalised (BSC) boundaries cut corners off the coast; points within a short distance
//! outside every polygon go to the nearest one rather than being dropped.

use std::path::{Path, PathBuf};

use geo::{BoundingRect, Distance, Euclidean, Intersects, MultiPolygon, Point};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};
use thiserror::Error;

/// Largest distance (degrees, about 300 m) at which a point outside every polygon is
/// assigned to the nearest one.
pub const SNAP_TOLERANCE_DEG: f64 = 0.003;

/// A boundary file that cannot be used.
#[derive(Debug, Error)]
pub enum BoundaryError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not GeoJSON: {reason}")]
    Json { path: PathBuf, reason: String },
    #[error("{path}: feature {index}: {reason}")]
    Feature {
        path: PathBuf,
        index: usize,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

type Entry = GeomWithData<Rectangle<[f64; 2]>, u32>;

/// Named polygons with a spatial index.
#[derive(Debug)]
pub struct BoundarySet {
    pub codes: Vec<String>,
    pub names: Vec<String>,
    /// The remaining properties of each feature, as read.
    pub properties: Vec<serde_json::Map<String, serde_json::Value>>,
    pub polygons: Vec<MultiPolygon<f64>>,
    tree: RTree<Entry>,
}

impl BoundarySet {
    /// Builds the set and its index.
    pub fn new(
        codes: Vec<String>,
        names: Vec<String>,
        properties: Vec<serde_json::Map<String, serde_json::Value>>,
        polygons: Vec<MultiPolygon<f64>>,
    ) -> Self {
        let entries: Vec<Entry> = polygons
            .iter()
            .enumerate()
            .filter_map(|(i, mp)| {
                let r = mp.bounding_rect()?;
                Some(GeomWithData::new(
                    Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]),
                    i as u32,
                ))
            })
            .collect();
        BoundarySet {
            codes,
            names,
            properties,
            polygons,
            tree: RTree::bulk_load(entries),
        }
    }

    /// Reads polygons from a GeoJSON FeatureCollection; `id_prop` names the property
    /// holding each unit's code (falls back to the feature `id`), `name_prop` its name.
    ///
    /// # Errors
    /// When the file cannot be read, is not a FeatureCollection, or a feature lacks a
    /// polygon geometry or its code.
    pub fn from_geojson_file(
        path: &Path,
        id_prop: &str,
        name_prop: Option<&str>,
    ) -> Result<Self, BoundaryError> {
        let text = std::fs::read_to_string(path).map_err(|source| BoundaryError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_geojson_str(&text, path, id_prop, name_prop)
    }

    /// As [`BoundarySet::from_geojson_file`], from text; `path` names it in errors.
    ///
    /// # Errors
    /// As [`BoundarySet::from_geojson_file`].
    pub fn from_geojson_str(
        text: &str,
        path: &Path,
        id_prop: &str,
        name_prop: Option<&str>,
    ) -> Result<Self, BoundaryError> {
        let fc: geojson::FeatureCollection = text
            .parse::<geojson::GeoJson>()
            .map_err(|e| BoundaryError::Json {
                path: path.to_owned(),
                reason: e.to_string(),
            })
            .and_then(|g| {
                geojson::FeatureCollection::try_from(g).map_err(|e| BoundaryError::Json {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })
            })?;
        let (mut codes, mut names, mut props, mut polys) = (vec![], vec![], vec![], vec![]);
        for (index, f) in fc.features.into_iter().enumerate() {
            let fail = |reason: String| BoundaryError::Feature {
                path: path.to_owned(),
                index,
                reason,
            };
            let properties = f.properties.clone().unwrap_or_default();
            let code = match properties.get(id_prop) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => match &f.id {
                    Some(geojson::feature::Id::String(s)) => s.clone(),
                    Some(geojson::feature::Id::Number(n)) => n.to_string(),
                    None => return Err(fail(format!("no property '{id_prop}' and no id"))),
                },
            };
            let name = name_prop
                .and_then(|p| properties.get(p))
                .and_then(|v| v.as_str())
                .unwrap_or(&code)
                .to_owned();
            let geom = f.geometry.ok_or_else(|| fail("no geometry".into()))?;
            let g: geo::Geometry<f64> = geom
                .try_into()
                .map_err(|e: geojson::Error| fail(e.to_string()))?;
            let mp = match g {
                geo::Geometry::Polygon(p) => MultiPolygon(vec![p]),
                geo::Geometry::MultiPolygon(mp) => mp,
                other => {
                    return Err(fail(format!(
                        "geometry is {}, not a polygon",
                        geometry_name(&other)
                    )));
                }
            };
            codes.push(code);
            names.push(name);
            props.push(properties);
            polys.push(mp);
        }
        if polys.is_empty() {
            return Err(BoundaryError::Invalid {
                path: path.to_owned(),
                reason: "no polygon features".into(),
            });
        }
        Ok(Self::new(codes, names, props, polys))
    }

    pub fn len(&self) -> usize {
        self.polygons.len()
    }

    pub fn is_empty(&self) -> bool {
        self.polygons.is_empty()
    }

    /// The unit containing the point (edges included; lowest index wins on shared edges).
    pub fn locate(&self, lon: f64, lat: f64) -> Option<u32> {
        let p = Point::new(lon, lat);
        self.tree
            .locate_all_at_point(&[lon, lat])
            .map(|e| e.data)
            .filter(|&i| self.polygons[i as usize].intersects(&p))
            .min()
    }

    /// [`BoundarySet::locate`], else the nearest unit within [`SNAP_TOLERANCE_DEG`].
    pub fn locate_or_nearest(&self, lon: f64, lat: f64) -> Option<u32> {
        if let Some(i) = self.locate(lon, lat) {
            return Some(i);
        }
        let t = SNAP_TOLERANCE_DEG;
        let env = AABB::from_corners([lon - t, lat - t], [lon + t, lat + t]);
        let p = Point::new(lon, lat);
        self.tree
            .locate_in_envelope_intersecting(&env)
            .map(|e| {
                (
                    Euclidean.distance(&p, &self.polygons[e.data as usize]),
                    e.data,
                )
            })
            .filter(|(d, _)| *d <= t)
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
            .map(|(_, i)| i)
    }

    /// Reference implementation of [`BoundarySet::locate`]: tests every polygon.
    pub fn locate_brute_force(&self, lon: f64, lat: f64) -> Option<u32> {
        let p = Point::new(lon, lat);
        (0..self.polygons.len() as u32).find(|&i| self.polygons[i as usize].intersects(&p))
    }

    /// Index of the unit with this code.
    pub fn index_of(&self, code: &str) -> Option<usize> {
        self.codes.iter().position(|c| c == code)
    }
}

fn geometry_name(g: &geo::Geometry<f64>) -> &'static str {
    match g {
        geo::Geometry::Point(_) => "Point",
        geo::Geometry::MultiPoint(_) => "MultiPoint",
        geo::Geometry::LineString(_) | geo::Geometry::Line(_) => "LineString",
        geo::Geometry::MultiLineString(_) => "MultiLineString",
        geo::Geometry::GeometryCollection(_) => "GeometryCollection",
        _ => "another geometry",
    }
}

/// A polygon's area in square metres on the WGS84 ellipsoid. Rings are oriented first:
/// the geodesic area of a clockwise exterior is the rest of the globe.
pub fn area_m2(mp: &MultiPolygon<f64>) -> f64 {
    use geo::GeodesicArea;
    use geo::orient::{Direction, Orient};
    mp.0.iter()
        .map(|p| p.orient(Direction::Default).geodesic_area_unsigned())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;

    fn squares() -> BoundarySet {
        let a = polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 1.0), (x: 0.0, y: 1.0)];
        let b = polygon![(x: 1.0, y: 0.0), (x: 2.0, y: 0.0), (x: 2.0, y: 1.0), (x: 1.0, y: 1.0)];
        BoundarySet::new(
            vec!["a".into(), "b".into()],
            vec!["A".into(), "B".into()],
            vec![Default::default(); 2],
            vec![MultiPolygon(vec![a]), MultiPolygon(vec![b])],
        )
    }

    #[test]
    fn shared_edge_goes_to_lowest_index_and_outside_is_none() {
        let s = squares();
        assert_eq!(s.locate(0.5, 0.5), Some(0));
        assert_eq!(s.locate(1.5, 0.5), Some(1));
        assert_eq!(s.locate(1.0, 0.5), Some(0));
        assert_eq!(s.locate(3.0, 0.5), None);
        assert_eq!(s.locate_or_nearest(2.001, 0.5), Some(1));
        assert_eq!(s.locate_or_nearest(2.1, 0.5), None);
    }

    #[test]
    fn geojson_without_polygons_is_an_error_naming_the_feature() {
        let text = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"id":"x"},"geometry":{"type":"Point","coordinates":[0,0]}}]}"#;
        let e = BoundarySet::from_geojson_str(text, Path::new("beats.geojson"), "id", None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("beats.geojson") && e.contains("feature 0"),
            "{e}"
        );
    }
}
