//! Arbitrary bytes through every file parser (format detection, police.uk, STATS19,
//! generic CSV, GeoJSON points), as `hotspot ingest` reads a file: no input may panic,
//! and the parser's counts must agree with what it handed over.
#![no_main]

use hotspot::ingest::{Format, Record, parse_bytes};
use libfuzzer_sys::fuzz_target;

const FORMATS: [Option<Format>; 5] = [
    None,
    Some(Format::PoliceUk),
    Some(Format::Stats19),
    Some(Format::Generic),
    Some(Format::GeoJson),
];

fuzz_target!(|data: &[u8]| {
    // The first byte picks the file name, so detection by extension is exercised too.
    let (name, bytes) = match data.split_first() {
        Some((b, rest)) if b % 2 == 0 => ("2023-01-lancashire-street.csv", rest),
        Some((_, rest)) => ("upload.geojson", rest),
        None => ("empty.csv", data),
    };
    for format in FORMATS {
        let mut handed = 0u64;
        let mut sink = |_: &Record<'_>| handed += 1;
        if let Ok(stats) = parse_bytes(name, bytes, format, &mut sink) {
            assert_eq!(stats.records, handed);
            assert_eq!(stats.rows_read, stats.records + stats.rejected);
        }
    }
});
