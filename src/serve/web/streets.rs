//! The data's streets, shared by the search (`places.rs`), the street labels
//! (`labels.rs`) and the details' place names (`details.rs`): police.uk names each snap
//! point ("On or near X"), and a street is a name within a district. Built once per store
//! (and set of sensitive categories) and cached.
//!
//! **The k rule** below analyst: a street is shown (suggested, labelled, named) only when
//! its snap points hold at least k incidents outside the sensitive categories over the
//! whole data, so naming it never tells the public that a rare or sensitive crime
//! happened there; and its point and extent are then taken from the snap points that hold
//! such incidents only (a snap point with nothing but a sensitive incident is never
//! shown). police.uk itself publishes every snap point's street for its map.

use std::collections::HashMap;
use std::sync::Arc;

use crate::analysis::AnalysisStore;
use crate::lru::Lru;
use crate::model::TypeSet;
use crate::spatial::gazetteer::{self, Place};

/// A location without a named street.
pub const NONE: u32 = u32::MAX;

/// One street: a name in a district.
pub struct Street {
    pub name: Box<str>,
    pub district: u8,
    /// Incidents outside the sensitive categories at its snap points (the k rule).
    pub public: u64,
    /// As the search gives it: over every snap point (analysts), and over the snap points
    /// with incidents outside the sensitive categories (`None` when there is none).
    pub place: Place,
    pub public_place: Option<Place>,
}

/// The streets of a store and each location's street.
pub struct StreetIndex {
    /// Street of each location ([`NONE`] when its snap point has no name).
    pub of_loc: Vec<u32>,
    pub streets: Vec<Street>,
    /// Incidents at each location: all, and outside the sensitive categories.
    pub all: Vec<u32>,
    pub public: Vec<u32>,
}

/// "On or near X" -> "X".
pub fn street_name(text: &str) -> &str {
    let t = text.trim();
    t.strip_prefix("On or near ").unwrap_or(t).trim()
}

static CACHE: Lru<AnalysisStore, u32, StreetIndex> = Lru::new(4);

impl StreetIndex {
    /// The index of `store` with public counts outside `sensitive` (cached).
    pub fn of(store: &Arc<AnalysisStore>, sensitive: TypeSet) -> Arc<StreetIndex> {
        CACHE.get(store, sensitive.bits(), || Self::build(store, sensitive))
    }

    fn build(store: &AnalysisStore, sensitive: TypeSet) -> StreetIndex {
        let locs = &store.locations;
        let mut ids: HashMap<(&str, u8), u32> = HashMap::new();
        let mut keys: Vec<(&str, u8)> = Vec::new();
        let of_loc: Vec<u32> = (0..locs.len())
            .map(|i| {
                let name = street_name(&locs.street[i]);
                if name.is_empty() {
                    return NONE;
                }
                let key = (name, locs.district[i]);
                *ids.entry(key).or_insert_with(|| {
                    keys.push(key);
                    (keys.len() - 1) as u32
                })
            })
            .collect();
        let mut all = vec![0u32; locs.len()];
        let mut public = vec![0u32; locs.len()];
        for (&l, &t) in store.incidents.loc.iter().zip(&store.incidents.ctype) {
            let l = l as usize;
            if let Some(a) = all.get_mut(l) {
                *a = a.saturating_add(1);
                if !sensitive.contains_code(t) {
                    public[l] = public[l].saturating_add(1);
                }
            }
        }
        let mut points: Vec<Vec<usize>> = vec![Vec::new(); keys.len()];
        for (i, &s) in of_loc.iter().enumerate() {
            if s != NONE {
                points[s as usize].push(i);
            }
        }
        let g = &store.geography;
        let streets = keys
            .iter()
            .zip(&points)
            .filter_map(|(&(name, district), pts)| {
                let dname = g.districts.names.get(usize::from(district)).cloned();
                let at = |i: &usize| (locs.lon(*i), locs.lat(*i));
                let place = gazetteer::street(name, dname.clone(), pts.iter().map(at))?;
                let public_place =
                    gazetteer::street(name, dname, pts.iter().filter(|&&i| public[i] > 0).map(at));
                Some(Street {
                    name: name.into(),
                    district,
                    public: pts.iter().map(|&i| u64::from(public[i])).sum(),
                    place,
                    public_place,
                })
            })
            .collect();
        StreetIndex {
            of_loc,
            streets,
            all,
            public,
        }
    }

    /// Whether street `s` may be shown: always to analysts (`k` None), below analyst
    /// when it holds at least k public incidents.
    pub fn shown(&self, s: u32, k: Option<u64>) -> bool {
        self.streets
            .get(s as usize)
            .is_some_and(|st| k.is_none_or(|k| st.public >= k && st.public_place.is_some()))
    }

    /// Street `s` as the search gives it to the role, if it may be shown.
    pub fn place(&self, s: u32, k: Option<u64>) -> Option<&Place> {
        if !self.shown(s, k) {
            return None;
        }
        let st = self.streets.get(s as usize)?;
        match k {
            None => Some(&st.place),
            Some(_) => st.public_place.as_ref(),
        }
    }

    /// Whether location `i` may be shown as a point of its street: analysts every one,
    /// below analyst those with an incident outside the sensitive categories.
    pub fn point_shown(&self, i: usize, k: Option<u64>) -> bool {
        k.is_none() || self.public.get(i).is_some_and(|&n| n > 0)
    }

    /// The most common street among `locations` by their incidents (public incidents
    /// below analyst), among the streets the role may be shown; ties by name.
    pub fn most_common(
        &self,
        locations: impl Iterator<Item = usize>,
        k: Option<u64>,
    ) -> Option<&Street> {
        let mut count: HashMap<u32, u64> = HashMap::new();
        for i in locations {
            let Some(&s) = self.of_loc.get(i) else {
                continue;
            };
            if s == NONE || !self.shown(s, k) {
                continue;
            }
            let n = if k.is_some() {
                self.public[i]
            } else {
                self.all[i]
            };
            if n > 0 {
                *count.entry(s).or_default() += u64::from(n);
            }
        }
        count
            .into_iter()
            .map(|(s, n)| (n, &self.streets[s as usize]))
            .max_by(|(na, a), (nb, b)| {
                na.cmp(nb)
                    .then(b.name.cmp(&a.name))
                    .then(b.district.cmp(&a.district))
            })
            .map(|(_, s)| s)
    }
}
