//! XYZ tile coordinates (Web Mercator, EPSG:3857, 256 px) parsed once from the path.

use std::str::FromStr;

use super::AppError;

/// Deepest zoom served.
pub const MAX_ZOOM: u8 = 22;

/// A validated tile address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileCoord {
    pub z: u8,
    pub x: u32,
    pub y: u32,
}

impl TileCoord {
    /// Checks z <= MAX_ZOOM and x, y < 2^z.
    ///
    /// # Errors
    /// 400 naming the coordinate out of range.
    pub fn new(z: u32, x: u32, y: u32) -> Result<Self, AppError> {
        if z > u32::from(MAX_ZOOM) {
            return Err(AppError::BadRequest(format!(
                "zoom {z} is above the maximum {MAX_ZOOM}"
            )));
        }
        let n = 1u64 << z;
        if u64::from(x) >= n || u64::from(y) >= n {
            return Err(AppError::BadRequest(format!(
                "tile {z}/{x}/{y} is outside the {n}x{n} grid of zoom {z}"
            )));
        }
        Ok(TileCoord { z: z as u8, x, y })
    }

    /// The tile of zoom `z` holding (`lon`, `lat`), or None off the Web Mercator grid
    /// (or above [`MAX_ZOOM`]).
    pub fn containing(lon: f64, lat: f64, z: u8) -> Option<Self> {
        const HALF: f64 = 20_037_508.342_789_244;
        let (mx, my) = lonlat_to_mercator(lon, lat);
        let n = f64::from(1u32 << z.min(31));
        let (x, y) = (
            (mx + HALF) / (2.0 * HALF) * n,
            (HALF - my) / (2.0 * HALF) * n,
        );
        if !(x >= 0.0 && y >= 0.0 && x < n && y < n) {
            return None;
        }
        Self::new(u32::from(z), x as u32, y as u32).ok()
    }

    /// Parses `y` with its extension (`"12.png"`) against the expected extension.
    ///
    /// # Errors
    /// 400 for a non-number or another extension; out-of-range as [`TileCoord::new`].
    pub fn from_path(z: &str, x: &str, y_ext: &str, ext: &str) -> Result<Self, AppError> {
        let y = y_ext
            .strip_suffix(ext)
            .and_then(|y| y.strip_suffix('.'))
            .ok_or_else(|| AppError::NotFound(format!("tiles here end in .{ext}")))?;
        let num = |s: &str, what: &str| {
            u32::from_str(s).map_err(|_| {
                AppError::BadRequest(format!("tile {what} '{s}' is not a whole number"))
            })
        };
        Self::new(num(z, "z")?, num(x, "x")?, num(y, "y")?)
    }

    /// Web Mercator bounds in metres: (min x, min y, max x, max y).
    pub fn mercator_bounds(self) -> (f64, f64, f64, f64) {
        const HALF: f64 = 20_037_508.342_789_244;
        let size = 2.0 * HALF / (1u64 << self.z) as f64;
        let min_x = -HALF + f64::from(self.x) * size;
        let max_y = HALF - f64::from(self.y) * size;
        (min_x, max_y - size, min_x + size, max_y)
    }

    /// WGS84 bounds: (west, south, east, north).
    pub fn lonlat_bounds(self) -> (f64, f64, f64, f64) {
        let (x0, y0, x1, y1) = self.mercator_bounds();
        let (w, s) = mercator_to_lonlat(x0, y0);
        let (e, n) = mercator_to_lonlat(x1, y1);
        (w, s, e, n)
    }
}

/// Web Mercator metres to WGS84 degrees.
pub fn mercator_to_lonlat(x: f64, y: f64) -> (f64, f64) {
    const R: f64 = 6_378_137.0;
    let lon = (x / R).to_degrees();
    let lat = (2.0 * (y / R).exp().atan() - std::f64::consts::FRAC_PI_2).to_degrees();
    (lon, lat)
}

/// WGS84 degrees to Web Mercator metres.
pub fn lonlat_to_mercator(lon: f64, lat: f64) -> (f64, f64) {
    const R: f64 = 6_378_137.0;
    let lat = lat.clamp(-85.051_128_78, 85.051_128_78);
    (
        R * lon.to_radians(),
        R * (std::f64::consts::FRAC_PI_4 + lat.to_radians() / 2.0)
            .tan()
            .ln(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_and_range_checks() {
        assert_eq!(
            TileCoord::from_path("3", "4", "5.png", "png").unwrap(),
            TileCoord { z: 3, x: 4, y: 5 }
        );
        for (z, x, y) in [
            ("3", "8", "0.png"),
            ("3", "0", "8.png"),
            ("23", "0", "0.png"),
            ("a", "0", "0.png"),
            ("1", "-1", "0.png"),
        ] {
            assert!(TileCoord::from_path(z, x, y, "png").is_err(), "{z}/{x}/{y}");
        }
        assert!(matches!(
            TileCoord::from_path("1", "0", "0.jpg", "png"),
            Err(AppError::NotFound(_))
        ));
    }

    #[test]
    fn bounds_round_trip() {
        let t = TileCoord::new(10, 504, 331).unwrap();
        let (w, s, e, n) = t.lonlat_bounds();
        assert!(
            w < -2.7 && e > -3.0 && s < 54.0 && n > 53.0,
            "{w} {s} {e} {n}"
        );
        let (x, y) = lonlat_to_mercator(w, n);
        let (x0, _, _, y1) = t.mercator_bounds();
        assert!((x - x0).abs() < 1e-6 && (y - y1).abs() < 1e-6);
        let world = TileCoord::new(0, 0, 0).unwrap().lonlat_bounds();
        assert!((world.0 + 180.0).abs() < 1e-9 && (world.3 - 85.051_128_78).abs() < 1e-6);
    }
}
