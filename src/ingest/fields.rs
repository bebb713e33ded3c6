//! Field-level helpers shared by the parsers: text decoding (UTF-8, else Latin-1),
//! coordinate parsing and the plausibility checks that catch swapped axes.

use std::borrow::Cow;

/// WGS84 extent accepted for incidents: the UK and its waters.
pub const LON_RANGE: (f64, f64) = (-8.7, 1.9);
pub const LAT_RANGE: (f64, f64) = (49.8, 60.9);
/// British National Grid extent (metres).
pub const EASTING_RANGE: (f64, f64) = (0.0, 700_000.0);
pub const NORTHING_RANGE: (f64, f64) = (0.0, 1_250_000.0);

/// Decodes a field as UTF-8, or as Latin-1 when it is not valid UTF-8 (older force
/// extracts), trimming surrounding space.
pub fn text(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s.trim()),
        Err(_) => Cow::Owned(
            b.iter()
                .map(|&c| c as char)
                .collect::<String>()
                .trim()
                .to_owned(),
        ),
    }
}

/// True for the spellings sources use for "no value".
pub fn is_missing(b: &[u8]) -> bool {
    let t = b.trim_ascii();
    t.is_empty() || t == b"-1" || t.eq_ignore_ascii_case(b"NULL") || t.eq_ignore_ascii_case(b"NA")
}

/// Parses a finite number. Plain decimals of up to 15 digits (every coordinate in these
/// files) take an exact fast path: the digits as an integer divided by a power of ten,
/// both exact in f64, so the one correctly rounded division gives the same value as the
/// standard parser; anything else goes to the standard parser.
#[inline]
pub fn number(b: &[u8]) -> Option<f64> {
    let t = b.trim_ascii();
    fast_decimal(t).or_else(|| {
        let v: f64 = std::str::from_utf8(t).ok()?.parse().ok()?;
        v.is_finite().then_some(v)
    })
}

const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

#[inline]
fn fast_decimal(t: &[u8]) -> Option<f64> {
    let (neg, digits) = match t {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, t),
    };
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    // The integer digits, then (after one '.') the fraction's: two tight loops.
    let mut mantissa = 0u64;
    let mut i = 0;
    while i < digits.len() {
        let d = digits[i].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        mantissa = mantissa * 10 + u64::from(d);
        i += 1;
    }
    let mut scale = 0;
    if i < digits.len() {
        if digits[i] != b'.' {
            return None;
        }
        for &c in &digits[i + 1..] {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            mantissa = mantissa * 10 + u64::from(d);
        }
        scale = digits.len() - i - 1;
    }
    let count = i + scale;
    if count == 0 || count > 15 {
        return None;
    }
    let v = mantissa as f64 / POW10[scale];
    Some(if neg { -v } else { v })
}

/// Why a lon/lat pair is unusable, with the field to blame.
pub fn check_lonlat(lon: f64, lat: f64) -> Result<(), (&'static str, String)> {
    let in_lon = |v: f64| (LON_RANGE.0..=LON_RANGE.1).contains(&v);
    let in_lat = |v: f64| (LAT_RANGE.0..=LAT_RANGE.1).contains(&v);
    if in_lon(lon) && in_lat(lat) {
        return Ok(());
    }
    if in_lon(lat) && in_lat(lon) {
        return Err(("Longitude", "latitude and longitude look swapped".into()));
    }
    if !in_lon(lon) {
        return Err((
            "Longitude",
            format!(
                "out of range: {lon} is outside {}..{}",
                LON_RANGE.0, LON_RANGE.1
            ),
        ));
    }
    Err((
        "Latitude",
        format!(
            "out of range: {lat} is outside {}..{}",
            LAT_RANGE.0, LAT_RANGE.1
        ),
    ))
}

/// Why an easting/northing pair is unusable.
pub fn check_bng(e: f64, n: f64) -> Result<(), (&'static str, String)> {
    if !(EASTING_RANGE.0..=EASTING_RANGE.1).contains(&e) {
        return Err((
            "easting",
            format!("out of range: {e} is outside the British National Grid"),
        ));
    }
    if !(NORTHING_RANGE.0..=NORTHING_RANGE.1).contains(&n) {
        return Err((
            "northing",
            format!("out of range: {n} is outside the British National Grid"),
        ));
    }
    Ok(())
}

/// Strips a UTF-8 byte order mark.
pub fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b)
}

/// A short printable copy of a raw value for reject reports.
pub fn show(b: &[u8]) -> String {
    let t = text(b);
    t.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_decimals_equal_the_standard_parser() {
        for s in [
            "-2.704521",
            "53.758123",
            "0",
            "-0.5",
            "12",
            "1.",
            ".5",
            "123456789.012345",
            "+3.25",
            "-0.0000001",
        ] {
            let want: f64 = s.parse().unwrap();
            assert_eq!(
                number(s.as_bytes()).map(f64::to_bits),
                Some(want.to_bits()),
                "{s}"
            );
        }
        for s in ["", "-", ".", "1.2.3", "1e5x", "nan", "inf", "--1", "1,5"] {
            assert!(number(s.as_bytes()).is_none(), "{s}");
        }
        assert_eq!(number(b"1e3"), Some(1000.0));
        assert_eq!(number(b" 7.25 "), Some(7.25));
    }
}
