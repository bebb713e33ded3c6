//! Which force-months each dataset covers, and so which months are *missing*.
//!
//! A month a force did not publish is not a month without crime: counted as zero it
//! drags every place's series down at once, and a steady hot spot reads as sporadic.
//! The store records, in the same transaction as each file, what the file covers:
//!
//! - **police.uk street files** (dataset `police.uk`): each (force, month) their rows
//!   name (`Reported by`, else `Falls within`, and `Month`). A file without rows names
//!   none and covers nothing. Replacing a force-month keeps it covered.
//! - **STATS19 collision files** (`stats19`) and **generic CSVs and GeoJSON points**
//!   (`generic`): every calendar month from the file's earliest to its latest record,
//!   under the force `""` (the file is taken to speak for the whole area it was cut
//!   for). A month inside that span without a row is covered (zero collisions is a real
//!   zero); months beyond it are not.
//! - Outcomes, stop-and-search and casualty files cover nothing: they add no incidents
//!   of their own (casualties are counted at their collisions' months).
//!
//! # Missing months
//!
//! A dataset speaks for the types it carries ([`Dataset::types`]): police.uk for the 14
//! street-crime categories, STATS19 for road collisions and casualties; generic files for
//! none (a user's CSV may carry any type, so its coverage is listed but never makes a
//! month missing). For a filter's months, a month is missing when some dataset relevant
//! to the filter's types has a force that does not cover it ([`Coverage::observed`]); a
//! dataset's forces are those its coverage names. Without any coverage (an analysis
//! store read straight from files of other formats) no month is missing, as before.
//!
//! Combining datasets of disjoint years (police.uk for 2021, STATS19 for 2024) under one
//! filter leaves no month observed by both: every month is then missing for that filter,
//! which is the honest answer; filter by type family instead.

use std::collections::{BTreeMap, BTreeSet};

use crate::ingest::Format;
use crate::model::{CrimeType, Month, TypeSet};

/// A source of incidents whose coverage is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dataset {
    PoliceUk,
    Stats19,
    Generic,
}

impl Dataset {
    pub const ALL: [Dataset; 3] = [Dataset::PoliceUk, Dataset::Stats19, Dataset::Generic];

    /// The name stored and printed.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::PoliceUk => "police.uk",
            Dataset::Stats19 => "stats19",
            Dataset::Generic => "generic",
        }
    }

    pub fn parse(s: &str) -> Option<Dataset> {
        Dataset::ALL.into_iter().find(|d| d.name() == s)
    }

    /// The dataset a file format's incidents belong to (None: the format adds none).
    pub fn of_format(f: Format) -> Option<Dataset> {
        match f {
            Format::PoliceUk => Some(Dataset::PoliceUk),
            Format::Stats19 => Some(Dataset::Stats19),
            Format::Generic | Format::GeoJson => Some(Dataset::Generic),
            Format::PoliceOutcomes | Format::PoliceStopSearch | Format::Stats19Casualty => None,
        }
    }

    /// The types whose monthly counts this dataset's coverage speaks for.
    pub fn types(self) -> TypeSet {
        match self {
            Dataset::PoliceUk => CrimeType::police_uk().iter().copied().collect(),
            Dataset::Stats19 => TypeSet::road_safety(),
            Dataset::Generic => TypeSet::empty(),
        }
    }
}

/// One (dataset, force) with the months it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub dataset: Dataset,
    pub force: &'a str,
    /// Month indices ([`Month::index`]), ascending.
    pub months: &'a BTreeSet<u16>,
}

/// The months one (dataset, force) lacks inside its dataset's span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub dataset: Dataset,
    pub force: String,
    pub missing: Vec<Month>,
}

/// Covered months per (dataset, force).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    covered: BTreeMap<(Dataset, Box<str>), BTreeSet<u16>>,
}

impl Coverage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `dataset` has `force`'s month `month`.
    pub fn add(&mut self, dataset: Dataset, force: &str, month: u16) {
        if let Some(m) = self.covered.get_mut(&(dataset, force.into())) {
            m.insert(month);
        } else {
            self.covered
                .insert((dataset, force.into()), BTreeSet::from([month]));
        }
    }

    /// Records every month from `first` to `last`.
    pub fn add_span(&mut self, dataset: Dataset, force: &str, first: u16, last: u16) {
        for m in first..=last {
            self.add(dataset, force, m);
        }
    }

    pub fn merge(&mut self, other: Coverage) {
        for (k, months) in other.covered {
            self.covered.entry(k).or_default().extend(months);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.covered.is_empty()
    }

    /// Every (dataset, force), in dataset then force order.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'_>> {
        self.covered.iter().map(|((d, f), m)| Entry {
            dataset: *d,
            force: f,
            months: m,
        })
    }

    /// The first and last month any force of `dataset` covers.
    pub fn dataset_span(&self, dataset: Dataset) -> Option<(u16, u16)> {
        let mut it = self.entries().filter(|e| e.dataset == dataset);
        let first = it.next()?;
        let init = (*first.months.first()?, *first.months.last()?);
        Some(it.fold(init, |(lo, hi), e| {
            (
                lo.min(e.months.first().copied().unwrap_or(lo)),
                hi.max(e.months.last().copied().unwrap_or(hi)),
            )
        }))
    }

    /// Per (dataset, force), the months inside the dataset's span it does not cover;
    /// only those with any.
    pub fn gaps(&self) -> Vec<Gap> {
        self.entries()
            .filter_map(|e| {
                let (lo, hi) = self.dataset_span(e.dataset)?;
                let missing: Vec<Month> = (lo..=hi)
                    .filter(|m| !e.months.contains(m))
                    .map(Month::from_index)
                    .collect();
                (!missing.is_empty()).then(|| Gap {
                    dataset: e.dataset,
                    force: e.force.to_owned(),
                    missing,
                })
            })
            .collect()
    }

    /// For each of `months`, whether it is observed for a filter of `types`: every force
    /// of every dataset relevant to `types` covers it. See the module doc.
    pub fn observed(&self, types: TypeSet, months: &[Month]) -> Vec<bool> {
        let relevant: Vec<&BTreeSet<u16>> = self
            .covered
            .iter()
            .filter(|((d, _), _)| d.types().bits() & types.bits() != 0)
            .map(|(_, m)| m)
            .collect();
        months
            .iter()
            .map(|m| relevant.iter().all(|c| c.contains(&m.index())))
            .collect()
    }
}

/// The months of `months` that `observed` marks missing.
pub fn missing_of(months: &[Month], observed: &[bool]) -> Vec<Month> {
    months
        .iter()
        .zip(observed)
        .filter(|(_, o)| !**o)
        .map(|(m, _)| *m)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Month {
        s.parse().expect("month")
    }

    #[test]
    fn a_force_without_a_month_makes_it_missing_for_its_types_only() {
        let mut c = Coverage::new();
        for mo in ["2022-01", "2022-02", "2022-04"] {
            c.add(Dataset::PoliceUk, "Lancashire Constabulary", m(mo).index());
        }
        c.add_span(
            Dataset::Stats19,
            "",
            m("2022-01").index(),
            m("2022-04").index(),
        );
        let months: Vec<Month> = ["2022-01", "2022-02", "2022-03", "2022-04", "2022-05"]
            .iter()
            .map(|s| m(s))
            .collect();
        let crime: TypeSet = [CrimeType::Burglary].into_iter().collect();
        assert_eq!(
            c.observed(crime, &months),
            vec![true, true, false, true, false]
        );
        let road = TypeSet::road_safety();
        assert_eq!(
            c.observed(road, &months),
            vec![true, true, true, true, false]
        );
        // Both families: missing where either lacks it.
        assert_eq!(
            c.observed(TypeSet::incidents(), &months),
            vec![true, true, false, true, false]
        );
        // A type no dataset speaks for: nothing missing.
        let sensitive: TypeSet = [CrimeType::DomesticAbuse].into_iter().collect();
        assert_eq!(c.observed(sensitive, &months), vec![true; 5]);
        assert_eq!(
            c.gaps(),
            vec![Gap {
                dataset: Dataset::PoliceUk,
                force: "Lancashire Constabulary".into(),
                missing: vec![m("2022-03")]
            }]
        );
    }

    #[test]
    fn a_second_force_is_judged_against_the_dataset_span() {
        let mut c = Coverage::new();
        c.add_span(Dataset::PoliceUk, "A", 10, 14);
        c.add_span(Dataset::PoliceUk, "B", 12, 14);
        assert_eq!(c.dataset_span(Dataset::PoliceUk), Some((10, 14)));
        let gaps = c.gaps();
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].force, "B");
        assert_eq!(
            gaps[0].missing,
            vec![Month::from_index(10), Month::from_index(11)]
        );
        let months: Vec<Month> = (10..=14).map(Month::from_index).collect();
        let obs = c.observed(TypeSet::incidents(), &months);
        assert_eq!(obs, vec![false, false, true, true, true]);
        assert_eq!(
            missing_of(&months, &obs),
            vec![Month::from_index(10), Month::from_index(11)]
        );
        assert!(
            Coverage::new()
                .observed(TypeSet::all(), &months)
                .iter()
                .all(|o| *o)
        );
    }
}
