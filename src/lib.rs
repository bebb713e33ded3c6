//! hotspot: geospatial hotspot analysis for community safety partnerships.
//!
//! Data flows one way: `ingest` (parse files) -> `store` (SQLite store of record) ->
//! `analysis` (in-memory columnar store, aggregation); `coverage` records which force-months
//! each dataset covers, so a month a force did not publish is missing, never zero. `spatial` holds the coordinate
//! transforms and boundaries every stage shares; `generate` writes realistic fixtures.

pub mod analysis;
pub mod cancel;
pub mod cli;
pub mod coverage;
pub mod generate;
pub mod ingest;
pub mod lru;
pub mod model;
pub mod serve;
pub mod spatial;
pub mod stats;
pub mod store;
