//! British National Grid conversion against Ordnance Survey's published OSTN15 test
//! points (tests/data/ostn15): both directions must agree to 0.1 m.

use std::collections::HashMap;

use hotspot::spatial::bng::{bng_to_wgs84, wgs84_to_bng};

const INPUT: &str = include_str!("data/ostn15/OSTN15_OSGM15_TestInput_ETRStoOSGB.csv");
const OUTPUT: &str = include_str!("data/ostn15/OSTN15_OSGM15_TestOutput_ETRStoOSGB.csv");

fn rows(text: &str) -> Vec<Vec<String>> {
    text.trim_start_matches('\u{feff}')
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(|f| f.trim().to_owned()).collect())
        .collect()
}

/// A test point: id, ETRS89 (lat, lon), OSGB36 (easting, northing).
type TestPoint = (String, (f64, f64), (f64, f64));

fn points() -> Vec<TestPoint> {
    let input: HashMap<String, (f64, f64)> = rows(INPUT)
        .into_iter()
        .map(|r| (r[0].clone(), (r[1].parse().unwrap(), r[2].parse().unwrap())))
        .collect();
    rows(OUTPUT)
        .into_iter()
        .filter(|r| r[4] != "0")
        .map(|r| {
            let ll = input[&r[0]];
            (
                r[0].clone(),
                ll,
                (r[1].parse().unwrap(), r[2].parse().unwrap()),
            )
        })
        .collect()
}

fn metres(lat: f64, dlat: f64, dlon: f64) -> f64 {
    let dy = dlat * 111_132.954;
    let dx = dlon * 111_319.49 * lat.to_radians().cos();
    dx.hypot(dy)
}

#[test]
fn bng_to_wgs84_matches_os_test_points_to_a_decimetre() {
    let pts = points();
    assert!(
        pts.len() >= 35,
        "expected the OS test points, got {}",
        pts.len()
    );
    for (id, (lat, lon), (e, n)) in pts {
        let (lon2, lat2) = bng_to_wgs84(e, n).unwrap_or_else(|err| panic!("{id}: {err}"));
        let d = metres(lat, lat2 - lat, lon2 - lon);
        assert!(d < 0.1, "{id}: {d:.3} m off");
    }
}

#[test]
fn wgs84_to_bng_matches_os_test_points_to_a_decimetre() {
    for (id, (lat, lon), (e, n)) in points() {
        let (e2, n2) = wgs84_to_bng(lon, lat).unwrap_or_else(|err| panic!("{id}: {err}"));
        let d = (e2 - e).hypot(n2 - n);
        assert!(d < 0.1, "{id}: {d:.3} m off");
    }
}
