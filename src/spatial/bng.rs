//! British National Grid (EPSG:27700, OSGB36) <-> WGS84 through OSTN15.
//!
//! OSTN15 is Ordnance Survey's definitive transformation (sub-metre, 0.1 m against its
//! published test points); a plain Helmert shift is only good to about 3.5 m. We use the
//! pure-Rust `lonlat_bng` implementation of OSTN15 and treat ETRS89 as WGS84, as OS does
//! for mapping purposes. The check against OS's published test points lives in
//! `tests/ostn15.rs`.

use thiserror::Error;

/// A coordinate outside the OSTN15 grid (or not finite).
#[derive(Debug, Clone, PartialEq, Error)]
#[error("easting {easting}, northing {northing} is outside the OSTN15 grid of Great Britain")]
pub struct BngError {
    pub easting: f64,
    pub northing: f64,
}

/// British National Grid easting/northing (metres) to WGS84 (longitude, latitude).
///
/// # Errors
/// When the point is not finite or lies outside the OSTN15 transformation grid.
pub fn bng_to_wgs84(easting: f64, northing: f64) -> Result<(f64, f64), BngError> {
    let err = || BngError { easting, northing };
    if !easting.is_finite() || !northing.is_finite() {
        return Err(err());
    }
    let (lon, lat) = lonlat_bng::convert_osgb36_to_ll(easting, northing).map_err(|_| err())?;
    if lon.is_finite() && lat.is_finite() {
        Ok((lon, lat))
    } else {
        Err(err())
    }
}

/// WGS84 (longitude, latitude) to British National Grid easting/northing (metres).
///
/// # Errors
/// When the point is outside the OSTN15 grid.
pub fn wgs84_to_bng(lon: f64, lat: f64) -> Result<(f64, f64), BngError> {
    lonlat_bng::convert_osgb36(lon, lat).map_err(|_| BngError {
        easting: lon,
        northing: lat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_lancashire_is_millimetric() {
        let (lon, lat) = (-2.7006, 53.7590);
        let (e, n) = wgs84_to_bng(lon, lat).unwrap();
        assert!((350_000.0..360_000.0).contains(&e), "{e}");
        let (lon2, lat2) = bng_to_wgs84(e, n).unwrap();
        assert!((lon - lon2).abs() < 1e-7 && (lat - lat2).abs() < 1e-7);
    }

    #[test]
    fn outside_grid_and_nan_are_errors() {
        assert!(bng_to_wgs84(f64::NAN, 1.0).is_err());
        assert!(bng_to_wgs84(-5.0e6, 1.0e7).is_err());
    }
}
