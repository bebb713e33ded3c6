//! Coordinates and boundaries shared by every stage: OSTN15 British National Grid
//! transforms, boundary sets with a point-in-polygon index, the Lancashire geography
//! (LSOAs inside districts), the derivation of `boundaries/` from the ONS source, and
//! RFC 7946 GeoJSON writing.

pub mod bng;
pub mod boundaries;
pub mod derive;
pub mod gazetteer;
pub mod geography;
pub mod geojson_out;

pub use boundaries::{BoundaryError, BoundarySet};
pub use geography::Geography;
