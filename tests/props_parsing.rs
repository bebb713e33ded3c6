//! Property tests for the two parsers every map request goes through: tile addresses
//! (`{z}/{x}/{y}.{ext}`) and `bbox`. Valid input round-trips, invalid input is refused with
//! a 400 (or a 404 for another extension), and nothing panics.

use hotspot::serve::AppError;
use hotspot::serve::ogc::query::{Bbox, parse_bbox};
use hotspot::serve::tile::{MAX_ZOOM, TileCoord};
use proptest::prelude::*;

/// A tile address in range: zoom 0..=22, x and y below 2^z.
fn valid_tile() -> impl Strategy<Value = (u32, u32, u32)> {
    (0..=u32::from(MAX_ZOOM)).prop_flat_map(|z| {
        let n = 1u64 << z;
        let max = (n - 1) as u32;
        (Just(z), 0..=max, 0..=max)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn tiles_in_range_round_trip((z, x, y) in valid_tile()) {
        let t = TileCoord::from_path(&z.to_string(), &x.to_string(), &format!("{y}.png"), "png")
            .expect("a tile in range parses");
        prop_assert_eq!((u32::from(t.z), t.x, t.y), (z, x, y));
        prop_assert_eq!(TileCoord::new(z, x, y).ok(), Some(t));
        let (w, s, e, n) = t.lonlat_bounds();
        prop_assert!(w < e && s < n);
        // Within the world, give or take the rounding of metres to degrees.
        let lon = -180.000_000_001..=180.000_000_001;
        prop_assert!(lon.contains(&w) && lon.contains(&e));
        prop_assert!((-85.06..=85.06).contains(&s) && (-85.06..=85.06).contains(&n));
    }

    #[test]
    fn x_or_y_outside_the_grid_is_a_400((z, x, y) in valid_tile(), over in 0u64..1 << 32, which in 0..2u8) {
        let n = 1u64 << z;
        let Ok(bad) = u32::try_from(n + over % (u64::from(u32::MAX) + 1 - n)) else {
            return Ok(());
        };
        let (x, y) = if which == 0 { (bad, y) } else { (x, bad) };
        let r = TileCoord::from_path(&z.to_string(), &x.to_string(), &format!("{y}.mvt"), "mvt");
        prop_assert!(matches!(r, Err(AppError::BadRequest(_))), "{}/{}/{}", z, x, y);
    }

    #[test]
    fn zoom_above_the_maximum_is_a_400(z in u32::from(MAX_ZOOM) + 1.., x: u32, y: u32) {
        let r = TileCoord::from_path(&z.to_string(), &x.to_string(), &format!("{y}.png"), "png");
        match r {
            Err(AppError::BadRequest(m)) => prop_assert!(m.contains("maximum"), "{}", m),
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn another_extension_is_a_404((z, x, y) in valid_tile(), ext in "[a-z]{1,4}") {
        prop_assume!(ext != "png");
        let r = TileCoord::from_path(&z.to_string(), &x.to_string(), &format!("{y}.{ext}"), "png");
        prop_assert!(matches!(r, Err(AppError::NotFound(_))));
    }

    #[test]
    fn arbitrary_tile_text_never_panics(z in ".{0,12}", x in ".{0,12}", y in ".{0,16}") {
        if let Ok(t) = TileCoord::from_path(&z, &x, &y, "png") {
            prop_assert!(t.z <= MAX_ZOOM && u64::from(t.x) < 1 << t.z && u64::from(t.y) < 1 << t.z);
        }
    }

    #[test]
    fn valid_bboxes_round_trip(
        lon in (-180.0f64..=180.0, -180.0f64..=180.0),
        lat in (-90.0f64..=90.0, -90.0f64..=90.0),
        spaces in 0usize..3,
    ) {
        let (west, east) = (lon.0.min(lon.1), lon.0.max(lon.1));
        let (south, north) = (lat.0.min(lat.1), lat.0.max(lat.1));
        let pad = " ".repeat(spaces);
        let text = format!("{west},{pad}{south},{east}{pad},{north}");
        prop_assert_eq!(parse_bbox(&text), Ok(Bbox { west, south, east, north }));
    }

    #[test]
    fn min_above_max_is_refused(a in -180.0f64..=180.0, b in -180.0f64..=180.0, c in -90.0f64..=90.0, d in -90.0f64..=90.0) {
        prop_assume!(a != b && c != d);
        let (lo_x, hi_x) = (a.min(b), a.max(b));
        let (lo_y, hi_y) = (c.min(d), c.max(d));
        // West above east would cross the antimeridian (OGC API - Features allows it);
        // this server's data are all in Lancashire, so it refuses such boxes instead.
        let west_above_east = format!("{hi_x},{lo_y},{lo_x},{hi_y}");
        let south_above_north = format!("{lo_x},{hi_y},{hi_x},{lo_y}");
        prop_assert!(parse_bbox(&west_above_east).is_err(), "{}", west_above_east);
        prop_assert!(parse_bbox(&south_above_north).is_err(), "{}", south_above_north);
    }

    #[test]
    fn out_of_range_coordinates_are_refused(over in 1e-6f64..1e300, slot in 0usize..4, negative: bool) {
        let mut v = [-3.0, 53.5, -2.0, 54.0];
        let limit = if slot % 2 == 0 { 180.0 } else { 90.0 };
        v[slot] = if negative { -limit - over } else { limit + over };
        let text = format!("{},{},{},{}", v[0], v[1], v[2], v[3]);
        prop_assert!(parse_bbox(&text).is_err(), "{}", text);
    }

    #[test]
    fn non_finite_text_is_refused(slot in 0usize..4, word in prop::sample::select(
        vec!["NaN", "nan", "inf", "-inf", "+infinity", "Infinity", "1e999", "-1e999", "", " ", "0x10", "1,5"]
    )) {
        let mut v: Vec<String> = ["-3", "53.5", "-2", "54"].iter().map(|s| s.to_string()).collect();
        v[slot] = word.to_owned();
        let text = v.join(",");
        prop_assert!(parse_bbox(&text).is_err(), "{}", text);
    }

    #[test]
    fn arbitrary_bbox_text_never_panics(text in ".{0,64}") {
        if let Ok(b) = parse_bbox(&text) {
            prop_assert!(b.west <= b.east && b.south <= b.north);
            prop_assert!(b.west >= -180.0 && b.east <= 180.0 && b.south >= -90.0 && b.north <= 90.0);
        }
    }
}
