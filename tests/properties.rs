//! Property tests: aggregation equals a brute-force count for random data, filters and
//! units; point-in-polygon through the R-tree agrees with testing every polygon.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use geo::{Distance, Euclidean, Intersects, Point};
use h3o::{LatLng, Resolution};
use hotspot::analysis::aggregate::aggregate;
use hotspot::analysis::{AnalysisStore, Builder, Filter, Query, TimeBin, Unit, UnitKey};
use hotspot::model::{CrimeType, Month, Severity, SeveritySet, TypeSet};
use hotspot::spatial::Geography;
use hotspot::spatial::boundaries::SNAP_TOLERANCE_DEG;
use proptest::prelude::*;

static GEO: LazyLock<Arc<Geography>> = LazyLock::new(|| Arc::new(Geography::bundled().unwrap()));

/// Lancashire's bounding box, a little enlarged so some points fall outside.
const LON: (f64, f64) = (-3.15, -2.0);
const LAT: (f64, f64) = (53.45, 54.3);

#[derive(Debug, Clone)]
struct Case {
    locations: Vec<(i32, i32)>,
    /// (location, month, type code, severity code); severity codes 4 and 5 are out of
    /// range on purpose (they read as unknown).
    incidents: Vec<(usize, u16, u8, u8)>,
}

fn case() -> impl Strategy<Value = Case> {
    let loc = (
        (LON.0 * 1e7) as i32..(LON.1 * 1e7) as i32,
        (LAT.0 * 1e7) as i32..(LAT.1 * 1e7) as i32,
    );
    prop::collection::vec(loc, 1..40).prop_flat_map(|locations| {
        let n = locations.len();
        let base = Month::new(2021, 1).unwrap().index();
        // Road collisions (code 14) often, so the severity filter has work to do.
        let ctype = prop_oneof![
            0u8..CrimeType::COUNT as u8,
            Just(CrimeType::RoadCollision as u8)
        ];
        let inc = (0..n, base..base + 36, ctype, 0u8..6);
        prop::collection::vec(inc, 0..400).prop_map(move |incidents| Case {
            locations: locations.clone(),
            incidents,
        })
    })
}

fn build(c: &Case) -> AnalysisStore {
    let mut b = Builder::new();
    let ids: Vec<u32> = c
        .locations
        .iter()
        .map(|&(x, y)| b.location(x, y, "", ""))
        .collect();
    for &(l, m, t, s) in &c.incidents {
        b.incident(ids[l], m, t, s);
    }
    b.finish(GEO.clone())
}

/// In `set`, the unit containing the point by testing every polygon, then the nearest
/// within the snap tolerance.
fn unit_brute(set: &hotspot::spatial::BoundarySet, lon: f64, lat: f64) -> Option<u32> {
    set.locate_brute_force(lon, lat).or_else(|| {
        let p = Point::new(lon, lat);
        (0..set.len() as u32)
            .map(|i| (Euclidean.distance(&p, &set.polygons[i as usize]), i))
            .filter(|(d, _)| *d <= SNAP_TOLERANCE_DEG)
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
            .map(|(_, i)| i)
    })
}

/// The 2011 LSOA of a point as `Geography::place` documents it, by brute force: a 2011
/// polygon (or the nearest within the tolerance); else a 2021 one, then of the 2011 LSOAs
/// the ONS lookup links to it the one containing the point, else the nearest. The 2021
/// fallback matters where the two generalised coastlines differ.
fn lsoa_brute(lon: f64, lat: f64) -> Option<u32> {
    unit_brute(&GEO.lsoas, lon, lat).or_else(|| {
        let b = unit_brute(&GEO.lsoas21, lon, lat)?;
        let candidates = &GEO.to11[b as usize];
        let p = Point::new(lon, lat);
        let poly = |c: u16| &GEO.lsoas.polygons[usize::from(c)];
        candidates
            .iter()
            .copied()
            .find(|&c| poly(c).intersects(&p))
            .or_else(|| {
                candidates
                    .iter()
                    .copied()
                    .map(|c| (Euclidean.distance(&p, poly(c)), c))
                    .min_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)))
                    .map(|(_, c)| c)
            })
            .or(candidates.first().copied())
            .map(u32::from)
    })
}

type Key = (UnitKey, Option<Month>, Option<CrimeType>);

fn brute(c: &Case, q: &Query, lo: u16, hi: u16) -> BTreeMap<Key, u64> {
    let mut out = BTreeMap::new();
    for &(l, m, t, s) in &c.incidents {
        let (x, y) = c.locations[l];
        let (lon, lat) = (f64::from(x) / 1e7, f64::from(y) / 1e7);
        let lsoa = lsoa_brute(lon, lat);
        // Outside the study area: counted apart, in no unit of any kind.
        if lsoa.is_none() {
            continue;
        }
        let district = lsoa.map(|i| GEO.lsoa_district[i as usize]);
        if let Some(ds) = &q.filter.districts
            && !district.is_some_and(|d| ds.contains(&d))
        {
            continue;
        }
        if m < lo || m > hi || !q.filter.types.contains_code(t) {
            continue;
        }
        // Unknown severity codes are "unknown".
        let severity = if s <= 3 {
            Severity::from_code(s)
        } else {
            Severity::None
        };
        // Severity narrows road collisions and road casualties (KSI) only.
        let road_safety = CrimeType::from_code(t)
            .is_some_and(|c| c == CrimeType::RoadCollision || c.is_road_casualty());
        if road_safety && !q.filter.severities.contains(severity) {
            continue;
        }
        let unit = match q.unit {
            // h3's latLngToCell at the unit's own resolution, as h3-py and DuckDB count.
            Unit::H3(r) => UnitKey::Cell(LatLng::new(lat, lon).unwrap().to_cell(r)),
            Unit::Lsoa(_) => match lsoa {
                Some(i) => UnitKey::Index(i),
                None => continue,
            },
            Unit::District => match district {
                Some(d) => UnitKey::Index(u32::from(d)),
                None => continue,
            },
            Unit::Boundary(_) => unreachable!(),
        };
        let month = (q.time == TimeBin::Month).then(|| Month::from_index(m));
        let ctype = if q.by_type {
            CrimeType::from_code(t)
        } else {
            None
        };
        *out.entry((unit, month, ctype)).or_default() += 1;
    }
    out
}

fn query() -> impl Strategy<Value = Query> {
    let unit = prop_oneof![
        (5u8..=11).prop_map(|r| Unit::H3(Resolution::try_from(r).unwrap())),
        Just(Unit::Lsoa(hotspot::spatial::geography::Vintage::V2011)),
        Just(Unit::District),
    ];
    let base = Month::new(2021, 1).unwrap().index();
    let range = prop_oneof![
        Just((None, None)),
        (0u16..40, 0u16..40).prop_map(move |(a, b)| (
            Some(Month::from_index(base + a.min(b))),
            Some(Month::from_index(base + a.max(b)))
        )),
    ];
    let types = prop::collection::vec(0u8..CrimeType::COUNT as u8, 0..5).prop_map(|v| {
        if v.is_empty() {
            TypeSet::all()
        } else {
            v.into_iter().filter_map(CrimeType::from_code).collect()
        }
    });
    let districts = prop_oneof![
        Just(None),
        prop::collection::vec(0u8..14, 1..4).prop_map(Some)
    ];
    let severities = prop_oneof![
        Just(SeveritySet::all()),
        prop::collection::vec(0u8..4, 0..3)
            .prop_map(|v| v.into_iter().map(Severity::from_code).collect()),
    ];
    (
        unit,
        any::<bool>(),
        any::<bool>(),
        range,
        types,
        districts,
        severities,
    )
        .prop_map(
            |(unit, monthly, by_type, (from, to), types, districts, severities)| Query {
                unit,
                time: if monthly {
                    TimeBin::Month
                } else {
                    TimeBin::All
                },
                by_type,
                filter: Filter {
                    types,
                    severities,
                    from,
                    to,
                    districts,
                },
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn aggregation_equals_brute_force(c in case(), q in query()) {
        let store = build(&c);
        let agg = aggregate(&store, &q);
        let (lo, hi) = match (agg.from, agg.to) {
            (Some(a), Some(b)) => (a.index(), b.index()),
            _ => (1, 0),
        };
        if let Some(f) = q.filter.from { prop_assert_eq!(f.index(), lo); }
        let got: BTreeMap<Key, u64> = agg.counts.iter().map(|c| ((c.unit, c.month, c.ctype), c.count)).collect();
        prop_assert_eq!(got.len(), agg.counts.len(), "duplicate keys in the aggregation");
        prop_assert_eq!(got, brute(&c, &q, lo, hi));
    }

    #[test]
    fn point_in_polygon_agrees_with_testing_every_polygon(x in LON.0..LON.1, y in LAT.0..LAT.1) {
        prop_assert_eq!(GEO.lsoas.locate(x, y), GEO.lsoas.locate_brute_force(x, y));
        let (lsoa, _) = GEO.locate(x, y);
        let want = lsoa_brute(x, y).map_or(u16::MAX, |i| i as u16);
        prop_assert_eq!(lsoa, want);
    }

    #[test]
    fn vertices_on_shared_edges_go_to_one_lsoa_consistently(i in 0usize..941, k in 0usize..1000) {
        let poly = &GEO.lsoas.polygons[i].0[0];
        let ring = &poly.exterior().0;
        let c = ring[k % ring.len()];
        prop_assert_eq!(GEO.lsoas.locate(c.x, c.y), GEO.lsoas.locate_brute_force(c.x, c.y));
        prop_assert!(GEO.lsoas.locate(c.x, c.y).is_some());
    }
}
