//! No input from a file makes a parser panic: arbitrary bytes, and valid files of each
//! format with random bytes changed, cut or inserted, through every parser.

use hotspot::ingest::{Format, Record, parse_bytes};
use proptest::prelude::*;

const POLICE: &str = "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,Crime type,Last outcome category,Context\n\
abc,2023-01,Lancashire Constabulary,Lancashire Constabulary,-2.700000,53.750000,On or near High Street,E01012345,Preston 001A,Burglary,Under investigation,\n\
,2023-01,Lancashire Constabulary,Lancashire Constabulary,-2.710000,53.760000,\"On or near Church St, Preston\",E01012345,Preston 001A,Anti-social behaviour,,\n";
const STATS19: &str = "collision_index,collision_year,collision_ref_no,location_easting_osgr,location_northing_osgr,longitude,latitude,police_force,collision_severity,date,time\n\
2023040000001,2023,40000001,353000,429000,-2.7,53.75,4,3,05/03/2023,17:30\n\
2023040000002,2023,40000002,NULL,NULL,NULL,NULL,4,9,06/03/2023,08:10\n";
const GENERIC: &str =
    "id,easting,northing,date,category,location\nA1,353000,429000,2023-02-01,Burglary,Somewhere\n";
const GEOJSON: &str = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"month":"2023-01","category":"Drugs","id":7},"geometry":{"type":"Point","coordinates":[-2.7,53.75]}}]}"#;

const FORMATS: [Option<Format>; 5] = [
    None,
    Some(Format::PoliceUk),
    Some(Format::Stats19),
    Some(Format::Generic),
    Some(Format::GeoJson),
];

fn parse_all(name: &str, bytes: &[u8]) {
    for f in FORMATS {
        let mut n = 0u64;
        let mut sink = |_: &Record<'_>| n += 1;
        if let Ok(stats) = parse_bytes(name, bytes, f, &mut sink) {
            assert_eq!(stats.records, n, "records counted = records handed over");
            assert_eq!(stats.rows_read, stats.records + stats.rejected);
        }
    }
}

fn mutate(base: &str) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    let edits = prop::collection::vec((0..len, any::<u8>(), 0u8..3), 1..8);
    (edits, 0..=len).prop_map(move |(edits, cut)| {
        let mut b = base.as_bytes().to_vec();
        for (at, byte, kind) in edits {
            let at = at.min(b.len().saturating_sub(1));
            match kind {
                0 if !b.is_empty() => b[at] = byte,
                1 => b.insert(at, byte),
                _ if !b.is_empty() => {
                    b.remove(at);
                }
                _ => {}
            }
        }
        b.truncate(cut.max(1).min(b.len()));
        b
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        parse_all("x.csv", &bytes);
        parse_all("x.geojson", &bytes);
    }

    #[test]
    fn mutated_police(bytes in mutate(POLICE)) { parse_all("p.csv", &bytes); }

    #[test]
    fn mutated_stats19(bytes in mutate(STATS19)) { parse_all("s.csv", &bytes); }

    #[test]
    fn mutated_generic(bytes in mutate(GENERIC)) { parse_all("g.csv", &bytes); }

    #[test]
    fn mutated_geojson(bytes in mutate(GEOJSON)) { parse_all("g.geojson", &bytes); }
}

#[test]
fn the_unmutated_inputs_parse_as_expected() {
    for (name, text, want) in [
        ("p.csv", POLICE, 2),
        ("s.csv", STATS19, 2),
        ("g.csv", GENERIC, 1),
        ("g.geojson", GEOJSON, 1),
    ] {
        let mut n = 0;
        let stats = parse_bytes(name, text.as_bytes(), None, &mut |_: &Record<'_>| n += 1).unwrap();
        assert_eq!(
            (stats.records, stats.rejected, n),
            (want, 0, want),
            "{name}"
        );
    }
}
