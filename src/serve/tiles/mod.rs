//! Tile layers: heatmap PNG rasters (`heatmap.rs`) and Mapbox Vector Tiles (`mvt.rs`).

pub mod heatmap;
pub mod mvt;
