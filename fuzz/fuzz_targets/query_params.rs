//! Arbitrary query strings through the strict query parser and the OGC items query (limit,
//! offset, bbox, datetime, types, district, f), and arbitrary values through the bbox and
//! datetime parsers: errors are fine, panics are not.
#![no_main]

use std::sync::{Arc, LazyLock};

use hotspot::analysis::{AnalysisStore, Builder};
use hotspot::serve::ogc::datetime::parse_datetime;
use hotspot::serve::ogc::query::{ITEM_PARAMS, ITEMS_PARAMS, parse, parse_bbox};
use hotspot::serve::params;
use hotspot::spatial::geography::Geography;
use libfuzzer_sys::fuzz_target;

static STORE: LazyLock<AnalysisStore> = LazyLock::new(|| {
    let geography = Geography::bundled().expect("the bundled geography loads");
    Builder::new().finish(Arc::new(geography))
});

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = params::parse(Some(s), &ITEMS_PARAMS);
    if let Ok(p) = params::parse(Some(s), &params::FILTER_PARAMS) {
        let _ = params::filter(&p, &STORE);
    }
    let _ = parse(Some(s), &ITEMS_PARAMS, &STORE);
    let _ = parse(Some(s), &ITEM_PARAMS, &STORE);
    if let Ok(b) = parse_bbox(s) {
        assert!(b.west <= b.east && b.south <= b.north);
        assert!(b.west.is_finite() && b.north.is_finite());
    }
    if let Ok((Some(a), Some(b))) = parse_datetime(s) {
        assert!(a <= b);
    }
});
