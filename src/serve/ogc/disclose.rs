//! The collections as a caller below analyst sees them (`serve::disclosure` says why):
//! counts from 1 to k - 1 withheld with secondary suppression over every published
//! total, derived numbers withheld with them, exact Gi* z and p withheld, and sensitive
//! categories at district level only.
//!
//! Masks are computed on the unit set a total covers, not on the page or the district
//! subset asked for, so the same unit is withheld the same way in every response about
//! the same data: districts over all districts; LSOAs over all LSOAs, grouped by their
//! district; H3 cells over the study grid of the filter, grouped by parent cell one
//! resolution up. The hot-spot, emerging and patrol collections take the mask of their
//! grid; the patrol list below analyst is ranks and places with (suppressed) counts,
//! without its cumulative `share` and `pai`.
//!
//! Every count is published perturbed (`disclosure::ckp`, from the row's own key sum), and
//! suppression runs on the perturbed counts; `per_km2` is scaled by the same ratio, so it
//! gives back only the perturbed count. The hot-spot, emerging and patrol rows are cells of
//! their grid, counted from the same records, so they publish the grid's perturbed count.
//! Every statistic published is computed from those perturbed counts
//! (`disclosure::basis`, [`on_published`]): the `h3-*` grids' `gi_bin`, the `emerging`
//! categories (of the perturbed cell-months), the patrol rows' `gi_bin`, `significant` and
//! `trend`; the `hotspots` rows are the cells of the published resolution-9 grid whose bin
//! is hot. So none says more than the perturbed counts do. The patrol order is of the
//! exact data (`build::patrol_places` says why); only ranks are published.

use std::collections::HashSet;
use std::sync::Arc;

use super::build::{Column, FeatureId, Geom, Items, build};
use super::cache;
use super::catalog::{CollectionId, EMERGING_RES, HOTSPOT_RES};
use crate::analysis::{AnalysisStore, Filter};
use crate::serve::AppError;
use crate::serve::disclosure::basis::Basis;
use crate::serve::disclosure::ckp::PTable;
use crate::serve::disclosure::{
    DisclosureSettings, cell_groups, groups_by, suppress, without_sensitive,
};

/// Disclosure settings in force for a caller below analyst.
#[derive(Debug, Clone)]
pub struct Controls {
    pub k: u64,
    pub sensitive: crate::model::TypeSet,
    pub ptable: Arc<PTable>,
    /// The perturbation seed, for cache keys only.
    seed: u64,
}

impl Controls {
    pub fn new(s: &DisclosureSettings) -> Self {
        Controls {
            k: s.k,
            sensitive: s.sensitive_types(),
            ptable: Arc::new(s.ptable()),
            seed: s.ckp_seed,
        }
    }

    /// The filter a collection is computed under: sensitive categories left out below
    /// district level (403 when the request names one).
    ///
    /// # Errors
    /// 403 for a sensitive category asked for at a finer level than districts.
    pub fn restrict(
        &self,
        cid: CollectionId,
        filter: &Filter,
        types_given: bool,
    ) -> Result<Filter, AppError> {
        if cid == CollectionId::Districts {
            return Ok(filter.clone());
        }
        without_sensitive(filter, self.sensitive, types_given).map_err(AppError::Forbidden)
    }
}

/// The raw (analyst) items of a collection, cached.
pub fn raw(
    cid: CollectionId,
    store: &Arc<AnalysisStore>,
    generation: u64,
    filter: &Filter,
) -> Result<Arc<Items>, AppError> {
    built(cid, store, generation, filter, &Basis::Exact)
}

/// The items of a collection with their statistics computed on the published (perturbed)
/// counts (`disclosure::basis`), cached; counts still exact (`apply` perturbs them).
fn on_published(
    cid: CollectionId,
    store: &Arc<AnalysisStore>,
    generation: u64,
    filter: &Filter,
    c: &Controls,
) -> Result<Arc<Items>, AppError> {
    built(cid, store, generation, filter, &Basis::perturbed(c.seed))
}

/// The items of a collection with their statistics on `basis`, cached per basis.
fn built(
    cid: CollectionId,
    store: &Arc<AnalysisStore>,
    generation: u64,
    filter: &Filter,
    basis: &Basis,
) -> Result<Arc<Items>, AppError> {
    let key = format!("{}|{}|{}", cid.id(), filter.key(), basis.key());
    cache::items(store, generation, &key, || {
        build(cid, store.clone(), filter, basis)
    })
}

/// The items of a collection under disclosure control, cached (`filter` already
/// restricted by [`Controls::restrict`]).
///
/// # Errors
/// 403 for the incident points; internal errors of the computation.
pub fn disclosed(
    cid: CollectionId,
    store: &Arc<AnalysisStore>,
    generation: u64,
    filter: &Filter,
    c: &Controls,
) -> Result<Arc<Items>, AppError> {
    let key = format!("{}|{}|k{}|p{:x}", cid.id(), filter.key(), c.k, c.seed);
    cache::items(store, generation, &key, || {
        compute(cid, store, generation, filter, c)
    })
}

fn compute(
    cid: CollectionId,
    store: &Arc<AnalysisStore>,
    generation: u64,
    filter: &Filter,
    c: &Controls,
) -> Result<Items, AppError> {
    let g = &store.geography;
    let all_districts = Filter {
        districts: None,
        ..filter.clone()
    };
    let wanted_district = |d: u8| filter.districts.as_ref().is_none_or(|ds| ds.contains(&d));
    match cid {
        CollectionId::Districts => {
            let full = raw(cid, store, generation, &all_districts)?;
            let mask = suppress(&perturbed(&full, c), &[(0..full.len()).collect()], c.k);
            let rows: Vec<usize> = (0..full.len())
                .filter(|&i| match full.geoms[i] {
                    Geom::District(d) => u8::try_from(d).is_ok_and(wanted_district),
                    _ => false,
                })
                .collect();
            Ok(apply(&full, &mask, &rows, c))
        }
        CollectionId::Lsoas => {
            let full = raw(cid, store, generation, &all_districts)?;
            let district = |i: usize| match full.geoms[i] {
                Geom::Lsoa(l) => g.lsoa_district.get(l as usize).copied(),
                _ => None,
            };
            let mut groups = groups_by((0..full.len()).map(district));
            groups.push((0..full.len()).collect());
            let mask = suppress(&perturbed(&full, c), &groups, c.k);
            let rows: Vec<usize> = (0..full.len())
                .filter(|&i| district(i).is_some_and(wanted_district))
                .collect();
            Ok(apply(&full, &mask, &rows, c))
        }
        // Bins of the published (perturbed) counts, not of the true ones.
        CollectionId::H3(_) => {
            let full = on_published(cid, store, generation, filter, c)?;
            let mask = cell_mask(&full, c);
            Ok(apply(&full, &mask, &(0..full.len()).collect::<Vec<_>>(), c))
        }
        // The hot cells of the published grid: chosen by its bins, so which cells are hot
        // follows from the perturbed counts alone.
        CollectionId::Hotspots => {
            let grid = disclosed(CollectionId::H3(HOTSPOT_RES), store, generation, filter, c)?;
            let hot: Vec<usize> = match grid.columns.iter().find(|(n, _)| *n == "gi_bin") {
                Some((_, Column::Int(b))) => (0..grid.len()).filter(|&i| b[i] > 0).collect(),
                _ => vec![],
            };
            Ok(Items {
                ids: hot.iter().map(|&i| grid.ids[i].clone()).collect(),
                geoms: hot.iter().map(|&i| grid.geoms[i]).collect(),
                columns: grid
                    .columns
                    .iter()
                    .map(|(n, col)| (*n, col.take(&hot)))
                    .collect(),
                keys: vec![],
            })
        }
        CollectionId::Patrol | CollectionId::Emerging => {
            let res = if cid == CollectionId::Emerging {
                EMERGING_RES
            } else {
                HOTSPOT_RES
            };
            let grid = disclosed(CollectionId::H3(res), store, generation, filter, c)?;
            let withheld = withheld_ids(&grid);
            // Categories, trends, bins of the published counts and cell-months.
            let full = on_published(cid, store, generation, filter, c)?;
            let mask: Vec<bool> = full.ids.iter().map(|id| withheld.contains(id)).collect();
            let mut items = apply(&full, &mask, &(0..full.len()).collect::<Vec<_>>(), c);
            if cid == CollectionId::Patrol {
                // Ranks and places only: a cumulative share (or PAI) on a visible row,
                // with the study's total, gives back the withheld rows above it.
                items
                    .columns
                    .retain(|(n, _)| !PATROL_CUMULATIVE.contains(n));
            }
            Ok(items)
        }
        CollectionId::Incidents => Err(AppError::Forbidden(
            "incident points need the analyst role".into(),
        )),
    }
}

/// The `count` column as whole numbers (0 where missing).
fn counts(items: &Items) -> Vec<u64> {
    items
        .columns
        .iter()
        .find(|(n, _)| *n == "count")
        .map(|(_, col)| match col {
            Column::Int(v) => v.iter().map(|&x| x.max(0) as u64).collect(),
            Column::OptInt(v) => v.iter().map(|x| x.unwrap_or(0).max(0) as u64).collect(),
            _ => vec![0; items.len()],
        })
        .unwrap_or_else(|| vec![0; items.len()])
}

/// The perturbed `count` column (`disclosure::ckp`; true counts where a collection has
/// no key sums).
fn perturbed(items: &Items, c: &Controls) -> Vec<u64> {
    let n = counts(items);
    if items.keys.len() != n.len() {
        return n;
    }
    n.iter()
        .zip(&items.keys)
        .map(|(&n, &ks)| c.ptable.perturb(n, ks))
        .collect()
}

/// The mask of a study grid: groups by parent cell one resolution up, and the whole.
fn cell_mask(full: &Items, c: &Controls) -> Vec<bool> {
    let cells: Vec<Option<h3o::CellIndex>> = full
        .geoms
        .iter()
        .map(|g| match g {
            Geom::Cell(c) => Some(*c),
            _ => None,
        })
        .collect();
    suppress(&perturbed(full, c), &cell_groups(&cells), c.k)
}

fn withheld_ids(items: &Items) -> HashSet<FeatureId> {
    let Some((_, Column::Bool(s))) = items.columns.iter().find(|(n, _)| *n == "suppressed") else {
        return HashSet::new();
    };
    items
        .ids
        .iter()
        .zip(s)
        .filter(|(_, w)| **w)
        .map(|(id, _)| id.clone())
        .collect()
}

/// Patrol columns left out below analyst (cumulative over the ranks, so differences of
/// them solve for withheld rows).
const PATROL_CUMULATIVE: [&str; 2] = ["share", "pai"];

/// Columns withheld for suppressed rows (they would give the count back).
const DERIVED: [&str; 3] = ["per_km2", "share", "pai"];
/// Columns withheld for every row below analyst (exact statistics solve for counts).
const EXACT: [&str; 4] = ["gi_z", "gi_p", "trend_z", "trend_p"];

/// The rows `rows` of `full` with the mask applied and counts perturbed (derived numbers
/// scaled with them), plus a `suppressed` column.
fn apply(full: &Items, mask: &[bool], rows: &[usize], c: &Controls) -> Items {
    let masked = |i: usize| mask.get(i).copied().unwrap_or(true);
    let true_counts = counts(full);
    let published = perturbed(full, c);
    let scale = |i: usize, v: f64| {
        if true_counts[i] == 0 {
            v
        } else {
            v * published[i] as f64 / true_counts[i] as f64
        }
    };
    let mut columns: Vec<(&'static str, Column)> = full
        .columns
        .iter()
        .map(|(name, col)| {
            let out = match col {
                Column::Int(_) if *name == "count" => Column::OptInt(
                    rows.iter()
                        .map(|&i| (!masked(i)).then_some(published[i] as i64))
                        .collect(),
                ),
                Column::Num(v, style) if DERIVED.contains(name) || EXACT.contains(name) => {
                    let all = EXACT.contains(name);
                    Column::Num(
                        rows.iter()
                            .map(|&i| {
                                if all || masked(i) {
                                    f64::NAN
                                } else {
                                    scale(i, v[i])
                                }
                            })
                            .collect(),
                        *style,
                    )
                }
                other => other.take(rows),
            };
            (*name, out)
        })
        .collect();
    columns.push((
        "suppressed",
        Column::Bool(rows.iter().map(|&i| masked(i)).collect()),
    ));
    Items {
        ids: rows.iter().map(|&i| full.ids[i].clone()).collect(),
        geoms: rows.iter().map(|&i| full.geoms[i]).collect(),
        columns,
        // Published: no key sums (they are not needed past this point).
        keys: vec![],
    }
}
