//! Hotspot statistics, one per file, each with its formula and citation: Gi* (`gi_star`),
//! false discovery rate control (`fdr`), local Moran's I (`local_moran`), kernel density
//! (`kde`), the Mann-Kendall trend test (`mann_kendall`) and emerging hot spot
//! categories (`emerging`); forecasting methods scored by `backtest` (`etas`: a
//! self-exciting point process). `grid` builds study-area H3 grids and `weights` the spatial
//! weights they all share. Plain synchronous Rust with rayon inside.

pub mod backtest;
pub mod change;
pub mod emerging;
pub mod etas;
pub mod fdr;
pub mod gi_star;
pub mod grid;
pub mod harm;
pub mod kde;
pub mod local_moran;
pub mod mann_kendall;
pub mod near_repeat;
pub mod pai;
pub mod patrol;
pub mod risk_zones;
pub mod study;
pub mod weights;

pub use weights::Weights;
