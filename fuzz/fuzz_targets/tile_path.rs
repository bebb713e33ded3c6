//! Arbitrary request paths split as the router splits `/tiles/{layer}/{z}/{x}/{y}.{ext}`,
//! through `TileCoord::from_path`: anything accepted is in range and has finite bounds.
#![no_main]

use hotspot::serve::tile::{MAX_ZOOM, TileCoord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = s.splitn(3, '/');
    let (Some(z), Some(x), Some(y)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    for ext in ["png", "mvt", "pbf"] {
        if let Ok(t) = TileCoord::from_path(z, x, y, ext) {
            assert!(t.z <= MAX_ZOOM);
            let n = 1u64 << t.z;
            assert!(u64::from(t.x) < n && u64::from(t.y) < n);
            let (w, so, e, no) = t.lonlat_bounds();
            assert!(w < e && so < no && w.is_finite() && no.is_finite());
        }
    }
});
