//! The offline gazetteer the web map searches: districts and LSOAs (from the bundled
//! boundaries), towns and villages (GeoNames, `boundaries/places/geonames.csv`), postcodes
//! (OS Code-Point Open, `boundaries/places/postcodes.csv`, BNG converted through OSTN15) and
//! the street names police.uk gives its snap points ("On or near ..."), which the caller
//! supplies from the data.
//!
//! Matching is case- and space-insensitive: a name matches when it equals the query, starts
//! with it, or has a word that starts with it; a postcode when its compact form starts with
//! the query's. Results are ordered by how well they match, then by kind (district, town
//! by population, postcode, LSOA, street), then by name.

use geo::BoundingRect;
use serde::Serialize;

use super::{Geography, bng};

const POSTCODES: &str = include_str!("../../boundaries/places/postcodes.csv");
const GEONAMES: &str = include_str!("../../boundaries/places/geonames.csv");

/// What a place is (the order is the tie-break order of results).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    District,
    Town,
    Postcode,
    Lsoa,
    Street,
}

/// One searchable place.
#[derive(Debug, Clone, Serialize)]
pub struct Place {
    pub name: String,
    pub kind: Kind,
    /// The district it is in, where known.
    pub district: Option<String>,
    pub lon: f64,
    pub lat: f64,
    /// `[west, south, east, north]` for areas and streets; points have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bbox: Option<[f64; 4]>,
    /// Towns: GeoNames population (orders towns, sizes labels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub population: Option<u64>,
    /// What a query is matched against, made once: the normalised name, or a postcode's
    /// compact form.
    #[serde(skip)]
    key: String,
}

impl Place {
    /// A place with its search key.
    fn new(
        name: String,
        kind: Kind,
        district: Option<String>,
        (lon, lat): (f64, f64),
        bbox: Option<[f64; 4]>,
        population: Option<u64>,
    ) -> Self {
        let key = if kind == Kind::Postcode {
            compact(&name)
        } else {
            normalise(&name)
        };
        Place {
            name,
            kind,
            district,
            lon,
            lat,
            bbox,
            population,
            key,
        }
    }
}

/// Lower case, single spaces, trimmed.
pub fn normalise(s: &str) -> String {
    s.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

fn compact(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

/// How well the normalised name `n` matches the normalised query: 0 exact, 1 prefix,
/// 2 a word's prefix.
pub(crate) fn name_match(n: &str, q: &str) -> Option<u8> {
    if n == q {
        Some(0)
    } else if n.starts_with(q) {
        Some(1)
    } else if n
        .match_indices(q)
        .any(|(i, _)| n[..i].ends_with([' ', '-', '(', '\'']))
    {
        Some(2)
    } else {
        None
    }
}

/// The places that do not depend on the data, built once per geography.
pub fn fixed(geo: &Geography) -> &[Place] {
    geo.places.get_or_init(|| build_fixed(geo))
}

/// `[west, south, east, north]` of a multipolygon.
pub fn bbox_of(mp: &geo::MultiPolygon<f64>) -> Option<[f64; 4]> {
    mp.bounding_rect()
        .map(|r| [r.min().x, r.min().y, r.max().x, r.max().y])
}

fn area_places(
    set: &super::BoundarySet,
    kind: Kind,
    district: impl Fn(usize) -> Option<String>,
) -> Vec<Place> {
    (0..set.len())
        .filter_map(|i| {
            let b = bbox_of(&set.polygons[i])?;
            Some(Place::new(
                set.names[i].clone(),
                kind,
                district(i),
                ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0),
                Some(b),
                None,
            ))
        })
        .collect()
}

fn build_fixed(geo: &Geography) -> Vec<Place> {
    let dname = |d: u8| geo.districts.names.get(usize::from(d)).cloned();
    let mut out = area_places(&geo.districts, Kind::District, |_| None);
    out.extend(area_places(&geo.lsoas21, Kind::Lsoa, |i| {
        geo.lsoa21_district.get(i).and_then(|&d| dname(d))
    }));
    // Towns: name,lon,lat,population,geonameid,in_lancashire_14,district
    for line in GEONAMES.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(name), Some(lon), Some(lat), Some(pop)) = (
            f.first(),
            f.get(1).and_then(|v| v.parse().ok()),
            f.get(2).and_then(|v| v.parse().ok()),
            f.get(3).and_then(|v| v.parse().ok()),
        ) else {
            continue;
        };
        let district = f.get(6).filter(|d| !d.is_empty()).map(|d| d.to_string());
        out.push(Place::new(
            name.to_string(),
            Kind::Town,
            district,
            (lon, lat),
            None,
            Some(pop),
        ));
    }
    // Postcodes: postcode,easting,northing,positional_quality,lad_code,district
    for line in POSTCODES.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(pc), Some(e), Some(n)) = (
            f.first(),
            f.get(1).and_then(|v| v.parse::<f64>().ok()),
            f.get(2).and_then(|v| v.parse::<f64>().ok()),
        ) else {
            continue;
        };
        let Ok((lon, lat)) = bng::bng_to_wgs84(e, n) else {
            continue;
        };
        out.push(Place::new(
            pc.to_string(),
            Kind::Postcode,
            f.get(5).map(|d| d.to_string()),
            (lon, lat),
            None,
            None,
        ));
    }
    out
}

/// The streets of a data set: one place per (street name, district), at the snap point
/// nearest the mean of its snap points, with their extent.
pub struct StreetPoint<'a> {
    pub name: &'a str,
    pub district: Option<String>,
    pub lon: f64,
    pub lat: f64,
}

/// Groups snap points into streets.
pub fn streets(points: &[StreetPoint<'_>]) -> Vec<Place> {
    let mut by: std::collections::BTreeMap<(&str, Option<&str>), Vec<usize>> =
        std::collections::BTreeMap::new();
    for (i, p) in points.iter().enumerate() {
        by.entry((p.name, p.district.as_deref()))
            .or_default()
            .push(i);
    }
    by.into_iter()
        .filter_map(|((name, district), ids)| {
            street(
                name,
                district.map(str::to_string),
                ids.iter().map(|&i| (points[i].lon, points[i].lat)),
            )
        })
        .collect()
}

/// One street (a name in a district) from its snap points: at the snap point nearest
/// their mean, with their extent; `None` without a point.
pub fn street(
    name: &str,
    district: Option<String>,
    points: impl Iterator<Item = (f64, f64)> + Clone,
) -> Option<Place> {
    let (mut n, mut sx, mut sy) = (0usize, 0.0, 0.0);
    let mut bbox = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for (x, y) in points.clone() {
        n += 1;
        sx += x;
        sy += y;
        bbox = [
            bbox[0].min(x),
            bbox[1].min(y),
            bbox[2].max(x),
            bbox[3].max(y),
        ];
    }
    if n == 0 {
        return None;
    }
    let (mx, my) = (sx / n as f64, sy / n as f64);
    let d2 = |(x, y): (f64, f64)| (x - mx).powi(2) + (y - my).powi(2);
    // The first of equally near points, so the choice does not depend on float ties.
    let best = points.fold(None, |b: Option<(f64, f64)>, p| match b {
        Some(q) if d2(q) <= d2(p) => Some(q),
        _ => Some(p),
    })?;
    Some(Place::new(
        name.to_string(),
        Kind::Street,
        district,
        best,
        Some(bbox),
        None,
    ))
}

/// A name the map draws itself (`/map/api/labels`): districts and towns here, streets
/// from the data by the caller. `rank`: larger is more important (placed first, kept on
/// collision): every district above every town, every town above every street
/// (`1..=STREET_RANKS`).
#[derive(Debug, Clone, Serialize)]
pub struct Label {
    pub name: String,
    pub kind: Kind,
    pub lon: f64,
    pub lat: f64,
    pub rank: u32,
    /// Towns: GeoNames population (the map shows small places only zoomed in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub population: Option<u64>,
}

/// The ranks left below the towns for street labels.
pub const STREET_RANKS: u32 = 400;

/// The labels that do not depend on the data, built once per geography: each district at
/// a point inside its polygon (geo's `InteriorPoint`: the bounding box's centre can lie
/// outside a district), above every town; then every bundled town and village, ranked by
/// population (the most populous highest, ties by name), above every street.
pub fn fixed_labels(geo: &Geography) -> &[Label] {
    geo.labels.get_or_init(|| {
        use geo::InteriorPoint;
        let mut towns: Vec<&Place> = fixed(geo).iter().filter(|p| p.kind == Kind::Town).collect();
        towns.sort_by(|a, b| b.population.cmp(&a.population).then(a.name.cmp(&b.name)));
        let n = u32::try_from(towns.len()).unwrap_or(u32::MAX / 2);
        let mut out: Vec<Label> = (0..geo.districts.len())
            .filter_map(|i| {
                let p = geo.districts.polygons[i].interior_point()?;
                Some(Label {
                    name: geo.districts.names[i].clone(),
                    kind: Kind::District,
                    lon: p.x(),
                    lat: p.y(),
                    rank: STREET_RANKS + n + 1,
                    population: None,
                })
            })
            .collect();
        out.extend(towns.iter().zip(0u32..).map(|(t, i)| Label {
            name: t.name.clone(),
            kind: Kind::Town,
            lon: t.lon,
            lat: t.lat,
            rank: STREET_RANKS + n.saturating_sub(i),
            population: t.population,
        }));
        out
    })
}

/// The nearest bundled town or village to a point within `max_km`, with its distance.
pub fn nearest_town(geo: &Geography, lon: f64, lat: f64, max_km: f64) -> Option<(&Place, f64)> {
    fixed(geo)
        .iter()
        .filter(|p| p.kind == Kind::Town)
        .map(|p| (p, km(lon, lat, p.lon, p.lat)))
        .filter(|(_, d)| *d <= max_km)
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// Great-circle distance in km (haversine, mean Earth radius).
pub fn km(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0088 * a.sqrt().min(1.0).asin()
}

/// The best `limit` matches of `query` among `places` (an empty query matches nothing).
pub fn search<'a>(
    places: impl IntoIterator<Item = &'a Place>,
    query: &str,
    limit: usize,
) -> Vec<&'a Place> {
    let q = normalise(query);
    if q.is_empty() {
        return Vec::new();
    }
    let qc = compact(query);
    let mut hits: Vec<(u8, &Place)> = places
        .into_iter()
        .filter_map(|p| {
            let m = if p.kind == Kind::Postcode {
                if p.key == qc {
                    Some(0)
                } else if qc.len() >= 2 && p.key.starts_with(&qc) {
                    Some(1)
                } else {
                    None
                }
            } else {
                name_match(&p.key, &q)
            };
            m.map(|m| (m, p))
        })
        .collect();
    hits.sort_by(|(ma, a), (mb, b)| {
        ma.cmp(mb)
            .then(a.kind.cmp(&b.kind))
            .then(b.population.cmp(&a.population))
            .then(a.name.cmp(&b.name))
            .then(a.district.cmp(&b.district))
    });
    hits.into_iter().take(limit).map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::OnceLock;

    fn geo() -> &'static Geography {
        static G: OnceLock<Geography> = OnceLock::new();
        G.get_or_init(|| Geography::bundled().expect("bundled"))
    }

    #[test]
    fn a_postcode_is_found_with_or_without_its_space_and_lies_in_its_district() {
        let g = geo();
        for q in ["PR1 2HE", "pr12he", " pr1  2he "] {
            let hits = search(fixed(g), q, 5);
            let p = hits.first().expect("a hit");
            assert_eq!(p.name, "PR1 2HE", "{q}");
            assert_eq!(p.kind, Kind::Postcode);
            // OSTN15 puts it inside Preston's polygon (the file's own district).
            let (_, d) = g.locate(p.lon, p.lat);
            assert_eq!(g.districts.names[usize::from(d)], "Preston");
        }
    }

    #[test]
    fn every_bundled_postcode_converts_and_most_lie_in_their_own_district() {
        let g = geo();
        let pcs: Vec<&Place> = fixed(g)
            .iter()
            .filter(|p| p.kind == Kind::Postcode)
            .collect();
        assert_eq!(pcs.len(), POSTCODES.lines().count() - 1);
        let agree = pcs
            .iter()
            .filter(|p| {
                let (_, d) = g.locate(p.lon, p.lat);
                g.districts.names.get(usize::from(d)) == p.district.as_ref()
            })
            .count();
        // Code-Point Open's district is its own; generalised boundaries move a few.
        assert!(agree * 100 >= pcs.len() * 98, "{agree} of {}", pcs.len());
    }

    #[test]
    fn towns_rank_by_match_then_population() {
        let hits = search(fixed(geo()), "pres", 3);
        assert_eq!(hits[0].name, "Preston");
        assert_eq!(hits[0].kind, Kind::District);
        assert_eq!(hits[1].name, "Preston");
        assert_eq!(hits[1].kind, Kind::Town);
        let hits = search(fixed(geo()), "Black", 4);
        let names: Vec<&str> = hits.iter().map(|p| p.name.as_str()).collect();
        assert!(names.contains(&"Blackpool"), "{names:?}");
        assert!(search(fixed(geo()), "   ", 5).is_empty());
        assert!(search(fixed(geo()), "zzzzqqq", 5).is_empty());
    }

    #[test]
    fn streets_are_one_place_per_name_and_district_at_one_of_their_snap_points() {
        let pts = [
            StreetPoint {
                name: "High Street",
                district: Some("A".into()),
                lon: 0.0,
                lat: 0.0,
            },
            StreetPoint {
                name: "High Street",
                district: Some("A".into()),
                lon: 0.002,
                lat: 0.0,
            },
            StreetPoint {
                name: "High Street",
                district: Some("A".into()),
                lon: 0.0011,
                lat: 0.0,
            },
            StreetPoint {
                name: "High Street",
                district: Some("B".into()),
                lon: 5.0,
                lat: 5.0,
            },
        ];
        let s = streets(&pts);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].lon, s[0].lat), (0.0011, 0.0));
        assert_eq!(s[0].bbox, Some([0.0, 0.0, 0.002, 0.0]));
        let hits = search(&s, "high st", 5);
        assert_eq!(hits.len(), 2);
        assert_eq!(search(&s, "street", 5).len(), 2);
        assert!(search(&s, "igh", 5).is_empty());
    }
}
