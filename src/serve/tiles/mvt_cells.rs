//! The `cells` layer: H3 cells with their counts, rates, Gi* and emerging category.
//!
//! The statistics are global (Gi* needs every unit of the study area, not one tile's), so
//! they are computed once per store, generation, filter and resolution and kept in a
//! small LRU (`mvt_cache`); each tile is then only a cut of the cached cells, found
//! through an R-tree of their extents. Work runs on tokio's blocking pool.
//!
//! Below analyst (`layer(.., controlled = true)`, a layer of its own) a tile carries the
//! disclosure-controlled view (`serve::disclosure`): counts perturbed, a withheld cell has
//! no `count` or `per_km2` and `suppressed = true`, no cell has `gi_z`, and `gi_bin` and
//! `category` are computed from the perturbed counts and cell-months
//! (`disclosure::basis`), as `/map/api/cells` and the OGC collections compute them. The
//! mask is computed once per layer over the whole study grid (as the OGC grid collections
//! compute it), so all agree.
//!
//! Only cells with incidents, a significant Gi* bin or an emerging pattern are kept: the
//! zero-count, not-significant rest of the study grid is most of it and says nothing.

use std::sync::Arc;

use ::mvt::Tile;
use h3o::{CellIndex, Resolution};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};

use super::geom::{self, EXTENT, Frame, Polygon};
use crate::analysis::{AnalysisStore, Filter};
use crate::lru::Lru;
use crate::serve::disclosure::basis::Basis;
use crate::serve::tile::TileCoord;
use crate::serve::{AppError, disclosure};
use crate::stats::emerging::Category;
use crate::stats::gi_star::gi_star;
use crate::stats::study::{Contiguity, Study, Units};

/// Layer name.
pub const LAYER: &str = "cells";

/// Entries kept (each is one filter at one resolution: a few MB at most).
const CAPACITY: usize = 16;

/// The H3 resolution drawn at zoom `z`: cells of a few to a few dozen pixels across.
pub fn resolution(z: u8) -> Resolution {
    match z {
        0..=8 => Resolution::Six,
        9..=10 => Resolution::Seven,
        11 => Resolution::Eight,
        12..=13 => Resolution::Nine,
        _ => Resolution::Ten,
    }
}

/// Whether the emerging hot spot category is computed at `res`: from 7 to 9. At 6 a cell
/// (36 km2) is a whole town and its trend says little; at 10 most cells have a handful of
/// incidents over the whole period, too sparse for a monthly trend, and the space-time
/// cube (about 200,000 cells by every month) is too costly to build per filter.
pub fn has_category(res: Resolution) -> bool {
    (Resolution::Seven..=Resolution::Nine).contains(&res)
}

/// One kept cell, as the layer's view publishes it.
struct Row {
    cell: CellIndex,
    /// The count and density shown: exact, or perturbed in the controlled view.
    count: u64,
    per_km2: f64,
    /// Gi* z (exact view only: a z of perturbed counts is not published either).
    gi_z: f64,
    /// The Gi* bin of the view's counts.
    gi_bin: i8,
    /// The emerging category of the view's monthly cube.
    category: Option<Category>,
    /// Withheld below analyst.
    suppressed: bool,
    outline: Polygon,
}

/// The cells of one filter at one resolution, as one view (analyst or below) sees them,
/// indexed by their extent in metres.
pub struct CellLayer {
    rows: Vec<Row>,
    index: RTree<GeomWithData<Rectangle<[f64; 2]>, usize>>,
    controlled: bool,
}

/// Rounds to 4 decimals (ample for a map; shorter tiles).
fn r4(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

impl CellLayer {
    /// The layer of one view: `controlled` publishes perturbed counts, suppresses on
    /// them, and computes Gi* and the emerging categories from the perturbed counts and
    /// cell-months (`disclosure::basis`), so no bin or category says what the
    /// perturbation hides.
    fn compute(
        store: Arc<AnalysisStore>,
        res: Resolution,
        filter: &Filter,
        k: u64,
        ckp_seed: u64,
        controlled: bool,
    ) -> Self {
        let study = Study::new(store.clone(), Units::H3(res), filter);
        let w = study.weights(1, Contiguity::Queen, true);
        let basis = Basis::of(controlled, ckp_seed);
        let counts = basis.study(&study);
        let gi = gi_star(&counts, &w, true);
        let cells: Vec<Option<CellIndex>> = study.cells.iter().copied().map(Some).collect();
        let mask = if controlled {
            let published: Vec<u64> = counts.iter().map(|&c| c.max(0.0) as u64).collect();
            disclosure::suppress(&published, &disclosure::cell_groups(&cells), k)
        } else {
            vec![false; study.len()]
        };
        let categories = if has_category(res) {
            categories(&study, &w, filter, &basis)
        } else {
            None
        };
        let density = study.density();
        let table = disclosure::ckp::PTable::new(ckp_seed);
        let rows: Vec<Row> = (0..study.len())
            .filter_map(|i| {
                let category = categories.as_ref().map(|c| c[i]);
                let patterned = category.is_some_and(|c| c != Category::NoPattern);
                // An empty cell is kept when significant or patterned (of this view's
                // counts), and when withheld: its absence would say it is empty,
                // undoing the withheld zero.
                if study.counts[i] <= 0.0 && !patterned && gi.bin[i] == 0 && !mask[i] {
                    return None;
                }
                let cell = study.cells[i];
                let outline =
                    geom::ring_to_mercator(cell.boundary().iter().map(|ll| (ll.lng(), ll.lat())));
                let exact = study.counts[i].max(0.0) as u64;
                Some(Row {
                    cell,
                    count: counts[i].max(0.0) as u64,
                    per_km2: r4(if controlled {
                        table.scale(density[i], exact, study.keys[i])
                    } else {
                        density[i]
                    }),
                    gi_z: r4(gi.z[i]),
                    gi_bin: gi.bin[i],
                    category,
                    suppressed: mask[i],
                    outline: vec![outline],
                })
            })
            .collect();
        let boxes = rows
            .iter()
            .enumerate()
            .map(|(k, r)| {
                let b = geom::bbox(&r.outline);
                GeomWithData::new(Rectangle::from_corners([b[0], b[1]], [b[2], b[3]]), k)
            })
            .collect();
        CellLayer {
            rows,
            index: RTree::bulk_load(boxes),
            controlled,
        }
    }

    /// The encoded tile (zero bytes when no cell touches it), in the layer's view.
    ///
    /// # Errors
    /// Internal only: the encoder refusing what this module built.
    pub fn tile(&self, t: TileCoord) -> Result<Vec<u8>, AppError> {
        let controlled = self.controlled;
        let frame = Frame::new(t);
        let q = frame.query;
        let mut hits: Vec<usize> = self
            .index
            .locate_in_envelope_intersecting(&AABB::from_corners([q[0], q[1]], [q[2], q[3]]))
            .map(|g| g.data)
            .collect();
        // Stable order, so the same tile is the same bytes (and the same ETag).
        hits.sort_unstable();
        let mut tile = Tile::new(EXTENT);
        let mut layer = tile.create_layer(LAYER);
        for k in hits {
            let row = &self.rows[k];
            let rings = frame.rings(&row.outline, 0.0);
            if rings.is_empty() {
                continue;
            }
            let Some(geom) = geom::encode(&[rings]).map_err(internal)? else {
                continue;
            };
            let mut f = layer.into_feature(geom);
            f.set_id(u64::from(row.cell));
            f.add_tag_string("cell", &row.cell.to_string());
            if !row.suppressed {
                f.add_tag_uint("count", row.count);
                f.add_tag_double("per_km2", row.per_km2);
            }
            if controlled {
                f.add_tag_bool("suppressed", row.suppressed);
            } else {
                f.add_tag_double("gi_z", row.gi_z);
            }
            f.add_tag_sint("gi_bin", i64::from(row.gi_bin));
            if let Some(c) = row.category {
                f.add_tag_string("category", c.label());
            }
            layer = f.into_layer();
        }
        if layer.num_features() == 0 {
            return Ok(Vec::new());
        }
        tile.add_layer(layer).map_err(internal)?;
        tile.to_bytes().map_err(internal)
    }
}

fn internal(e: ::mvt::Error) -> AppError {
    AppError::Internal(format!("vector tile encoding: {e}"))
}

/// Emerging hot spot categories of the study's cells, as the map's cells and the OGC
/// `emerging` collection compute them (k = 1, Esri's default time window, FDR), of the
/// monthly cube on `basis`; None with under three months or units, or on an
/// inconsistent cube (logged).
fn categories(
    study: &Study,
    w: &crate::stats::Weights,
    filter: &Filter,
    basis: &Basis,
) -> Option<Vec<Category>> {
    crate::serve::web::cells::categories(study, w, filter, true, basis)
}

/// Computed layers by store, keyed by generation, filter, resolution, k, seed and view.
static LAYERS: Lru<AnalysisStore, (u64, String, Resolution, u64, u64, bool), CellLayer> =
    Lru::new(CAPACITY);

/// The cells of `filter` at `res` as the view `controlled` (below analyst: threshold `k`,
/// perturbation seed `ckp_seed`) publishes them, computed now unless cached. Blocking:
/// call it from the blocking pool.
pub fn layer(
    store: &Arc<AnalysisStore>,
    generation: u64,
    res: Resolution,
    filter: &Filter,
    (k, ckp_seed): (u64, u64),
    controlled: bool,
) -> Arc<CellLayer> {
    let key = (generation, filter.key(), res, k, ckp_seed, controlled);
    LAYERS.get(store, key, || {
        CellLayer::compute(store.clone(), res, filter, k, ckp_seed, controlled)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions_get_finer_with_zoom_and_keys_are_canonical() {
        let res: Vec<u8> = (0..=22).map(|z| u8::from(resolution(z))).collect();
        assert!(res.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(
            (res[8], res[9], res[11], res[12], res[14]),
            (6, 7, 8, 9, 10)
        );
        let a = Filter {
            districts: Some(vec![3, 1, 3]),
            ..Filter::default()
        };
        let b = Filter {
            districts: Some(vec![1, 3]),
            ..Filter::default()
        };
        assert_eq!(a.key(), b.key());
        assert_ne!(a.key(), Filter::default().key());
        let fatal = Filter {
            severities: crate::model::SeveritySet::empty().with(crate::model::Severity::Fatal),
            ..Filter::default()
        };
        assert_ne!(fatal.key(), Filter::default().key());
        assert!(has_category(Resolution::Eight) && !has_category(Resolution::Ten));
    }
}
