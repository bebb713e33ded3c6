//! Building the analysis store: incidents are pushed with raw coordinates and the
//! record's LSOA code; distinct (coordinate, code) pairs get dense location ids; `finish`
//! places each distinct location (by its code, else by point-in-polygon) in parallel and
//! drops the incidents outside the study area, counting them per type.
//!
//! # Record keys
//! Every incident has a record key (0..256), the fixed random number
//! cell-key perturbation sums per published cell (`serve::disclosure::ckp`; the ONS 2021
//! Census and ABS TableBuilder method). The store keeps no record id, and a location id
//! or a row's position depends on the order files were loaded in, so the key is a hash of
//! what the record *is*: [`RECORD_KEY_SEED`], its coordinates (1e-7 degrees), month, type
//! code, severity code, and its ordinal among the records identical in all of those.
//! Records identical in every stored attribute cannot be told apart by any filter (a
//! filter selects by type, severity, month and place), so giving them ordinals 0, 1, 2...
//! in whatever order they arrived gives the same *set* of keys to the same records
//! whatever the load order, and every cell's key sum is the same on every load. Adding a
//! record changes no other record's key (unless it is an exact duplicate, which gets the
//! next ordinal). The hash is SplitMix64's finaliser, whose low byte is close to uniform;
//! what keeps the noise unpredictable to a public caller is the secret permutation of the
//! perturbation table (`disclosure.ckp_seed`), not these keys.
//!
//! Cost: a counting sort of the incidents by location (one chunk of rows per thread),
//! then a small sort per location in parallel, O(n) plus 8 bytes of scratch per incident,
//! once per load: about 15 ms at 1M incidents and 170 ms at 10M on 2 cores.

use std::sync::Arc;

use rayon::prelude::*;
use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap;

use super::{AnalysisStore, Incidents, Locations, TypeCounts};
use crate::ingest::{IngestError, Record, Sink, Text};
use crate::model::to_e7;
use crate::spatial::Geography;
use crate::spatial::geography::{PlacedBy, Vintage};

/// No LSOA code on the record.
const NO_CODE: u16 = u16::MAX;
/// Slots of the per-type counters (type codes are a byte).
const TYPE_SLOTS: usize = 256;

/// Collects incidents before their locations are resolved.
#[derive(Debug)]
pub struct Builder {
    /// The first location at each coordinate, with its code's [`code_number`]: most
    /// coordinates carry one LSOA code, so a row usually finds its location with one
    /// integer lookup and one integer comparison, without interning or reading its code.
    by_point: FxHashMap<u64, (u32, u32)>,
    /// The further locations at a coordinate already in `by_point`, by (coordinate,
    /// code id): the rare coordinates that carry two codes.
    others: FxHashMap<(u64, u16), u32>,
    lon_e7: Vec<i32>,
    lat_e7: Vec<i32>,
    code: Vec<u16>,
    street: Streets,
    codes: Codes,
    incidents: Incidents,
    unlocated: TypeCounts,
    coverage: crate::coverage::Coverage,
    /// police.uk: the last (force, month) recorded in `coverage` (rows come in runs).
    last_batch: Option<(Box<[u8]>, u16)>,
    /// Other records: their first and last month (this builder is one file's when read
    /// from files; see `crate::coverage`).
    span: Option<(u16, u16)>,
    /// The dataset of the records without a police.uk batch.
    dataset: Option<crate::coverage::Dataset>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            by_point: FxHashMap::default(),
            others: FxHashMap::default(),
            lon_e7: Vec::new(),
            lat_e7: Vec::new(),
            code: Vec::new(),
            street: Streets::default(),
            codes: Codes::default(),
            incidents: Incidents::default(),
            unlocated: vec![0; TYPE_SLOTS],
            coverage: crate::coverage::Coverage::new(),
            last_batch: None,
            span: None,
            dataset: None,
        }
    }
}

fn pack(lon_e7: i32, lat_e7: i32) -> u64 {
    (u64::from(lon_e7 as u32) << 32) | u64::from(lat_e7 as u32)
}

impl Builder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder with room for `incidents` incidents (and, as in a police.uk month file,
    /// about half as many distinct locations, up to 16,384: a larger table misses the
    /// cache on every row; more grow as needed).
    pub fn with_capacity(incidents: usize) -> Self {
        let mut b = Self::default();
        b.incidents.loc.reserve(incidents);
        b.incidents.month.reserve(incidents);
        b.incidents.ctype.reserve(incidents);
        b.incidents.severity.reserve(incidents);
        let locations = (incidents / 2).min(1 << 14);
        b.by_point.reserve(locations);
        b.lon_e7.reserve(locations);
        b.lat_e7.reserve(locations);
        b.code.reserve(locations);
        b
    }

    /// The id of the location at `p` with code id `code`, adding it (with the street
    /// `street` gives) when new.
    fn location_id<'s>(
        &mut self,
        p: u64,
        code: u16,
        street: impl FnOnce() -> std::borrow::Cow<'s, str>,
    ) -> u32 {
        let next = self.lon_e7.len() as u32;
        let id = match self.by_point.entry(p) {
            Entry::Occupied(e) => {
                let first = e.get().0;
                if self.code[first as usize] == code {
                    return first;
                }
                *self.others.entry((p, code)).or_insert(next)
            }
            Entry::Vacant(e) => {
                e.insert((next, code_number(self.codes.text(code).as_bytes())));
                next
            }
        };
        if id == next {
            self.lon_e7.push((p >> 32) as u32 as i32);
            self.lat_e7.push(p as u32 as i32);
            self.code.push(code);
            self.street.push(&street());
        }
        id
    }

    /// Adds a location (deduplicated by coordinate and LSOA code) and returns its id.
    pub fn location(&mut self, lon_e7: i32, lat_e7: i32, lsoa_code: &str, street: &str) -> u32 {
        let code = self.codes.intern(lsoa_code.as_bytes());
        self.location_id(pack(lon_e7, lat_e7), code, || street.into())
    }

    /// As [`Builder::location`], decoding the street text only for a new location.
    #[inline]
    pub fn location_text(
        &mut self,
        lon_e7: i32,
        lat_e7: i32,
        lsoa_code: &Text<'_>,
        street: &Text<'_>,
    ) -> u32 {
        let p = pack(lon_e7, lat_e7);
        let code_bytes = lsoa_code.as_bytes().trim_ascii();
        if let Some(&(id, number)) = self.by_point.get(&p) {
            let same = match code_number(code_bytes) {
                // Another form: compare the text.
                NOT_A_NUMBER => self.codes.text(self.code[id as usize]).as_bytes() == code_bytes,
                n => n == number,
            };
            if same {
                return id;
            }
        }
        let code = self.codes.intern(code_bytes);
        self.location_id(p, code, || street.decode())
    }

    /// Adds an incident at a location id from [`Builder::location`].
    #[inline]
    pub fn incident(&mut self, loc: u32, month: u16, ctype: u8, severity: u8) {
        self.incidents.loc.push(loc);
        self.incidents.month.push(month);
        self.incidents.ctype.push(ctype);
        self.incidents.severity.push(severity);
    }

    /// Sets the coverage (read from the store).
    pub fn set_coverage(&mut self, c: crate::coverage::Coverage) {
        self.coverage = c;
    }

    /// Starts reading the next file, of dataset `d`: the span of the last file's
    /// unbatched records goes into the coverage first.
    pub fn start_file(&mut self, d: Option<crate::coverage::Dataset>) {
        self.fold_span();
        self.dataset = d;
    }

    /// Folds the span of the current file's unbatched records into the coverage.
    fn fold_span(&mut self) {
        use crate::coverage::Dataset;
        if let (Some(d @ (Dataset::Stats19 | Dataset::Generic)), Some((lo, hi))) =
            (self.dataset, self.span.take())
        {
            self.coverage.add_span(d, "", lo, hi);
        }
    }

    /// The coverage gathered, with the span of unbatched records folded in.
    fn take_coverage(&mut self) -> crate::coverage::Coverage {
        self.fold_span();
        std::mem::take(&mut self.coverage)
    }

    /// Counts `n` incidents of type code `ctype` without a location.
    pub fn unlocated(&mut self, ctype: u8, n: u64) {
        self.unlocated[usize::from(ctype)] += n;
    }

    /// Appends another builder, remapping its location ids.
    pub fn merge(&mut self, mut other: Builder) {
        let c = other.take_coverage();
        self.coverage.merge(c);
        // Codes are interned once per file, not once per location.
        let codes: Vec<u16> = other
            .codes
            .text
            .iter()
            .map(|c| self.codes.intern(c.as_bytes()))
            .collect();
        let remap: Vec<u32> = (0..other.lon_e7.len())
            .map(|i| {
                let code = match other.code[i] {
                    NO_CODE => NO_CODE,
                    c => codes[usize::from(c)],
                };
                self.location_id(pack(other.lon_e7[i], other.lat_e7[i]), code, || {
                    other.street.get(i).into()
                })
            })
            .collect();
        let inc = other.incidents;
        let n = inc.loc.len();
        self.incidents.loc.reserve(n);
        self.incidents.month.reserve(n);
        self.incidents.ctype.reserve(n);
        self.incidents.severity.reserve(n);
        self.incidents
            .loc
            .extend(inc.loc.iter().map(|&l| remap[l as usize]));
        self.incidents.month.extend_from_slice(&inc.month);
        self.incidents.ctype.extend_from_slice(&inc.ctype);
        self.incidents.severity.extend_from_slice(&inc.severity);
        self.add_unlocated(&other.unlocated);
    }

    fn add_unlocated(&mut self, other: &[u64]) {
        for (a, b) in self.unlocated.iter_mut().zip(other) {
            *a += b;
        }
    }

    /// Appends the incidents of a builder that used this builder's location ids.
    pub fn append_incidents(&mut self, other: Builder) {
        let inc = other.incidents;
        self.incidents.loc.extend_from_slice(&inc.loc);
        self.incidents.month.extend_from_slice(&inc.month);
        self.incidents.ctype.extend_from_slice(&inc.ctype);
        self.incidents.severity.extend_from_slice(&inc.severity);
        self.add_unlocated(&other.unlocated);
    }

    /// Places locations, drops (and counts) what lies outside the study area, and
    /// freezes the store.
    pub fn finish(mut self, geography: Arc<Geography>) -> AnalysisStore {
        let coverage = self.take_coverage();
        let placed: Vec<_> = (0..self.lon_e7.len())
            .into_par_iter()
            .map(|i| {
                let (lon, lat) = (
                    f64::from(self.lon_e7[i]) / 1e7,
                    f64::from(self.lat_e7[i]) / 1e7,
                );
                geography.place(Some(self.codes.text(self.code[i])), lon, lat)
            })
            .collect();
        let only = |by: PlacedBy| placed.iter().filter(|p| p.by == by).count();
        let lsoa_vintage = if only(PlacedBy::Code2021) > only(PlacedBy::Code2011) {
            Vintage::V2021
        } else {
            Vintage::V2011
        };
        let mut incidents = self.incidents;
        let mut outside_by_type = vec![0u64; TYPE_SLOTS];
        let mut outside_by_month = std::collections::BTreeMap::<u16, u64>::new();
        let (mut lon_e7, mut lat_e7) = (self.lon_e7, self.lat_e7);
        let mut street = self.street.into_boxes();
        let mut placed = placed;
        if placed.iter().any(|p| p.is_outside()) {
            // New dense ids for the locations inside; u32::MAX for those outside.
            let mut next = 0u32;
            let new_id: Vec<u32> = placed
                .iter()
                .map(|p| {
                    if p.is_outside() {
                        u32::MAX
                    } else {
                        next += 1;
                        next - 1
                    }
                })
                .collect();
            let mut w = 0;
            for r in 0..incidents.loc.len() {
                let id = new_id[incidents.loc[r] as usize];
                if id == u32::MAX {
                    outside_by_type[usize::from(incidents.ctype[r])] += 1;
                    *outside_by_month.entry(incidents.month[r]).or_default() += 1;
                    continue;
                }
                incidents.loc[w] = id;
                incidents.month[w] = incidents.month[r];
                incidents.ctype[w] = incidents.ctype[r];
                incidents.severity[w] = incidents.severity[r];
                w += 1;
            }
            incidents.loc.truncate(w);
            incidents.month.truncate(w);
            incidents.ctype.truncate(w);
            incidents.severity.truncate(w);
            let keep: Vec<bool> = placed.iter().map(|p| !p.is_outside()).collect();
            let mut k = keep.iter();
            lon_e7.retain(|_| *k.next().unwrap_or(&false));
            let mut k = keep.iter();
            lat_e7.retain(|_| *k.next().unwrap_or(&false));
            let mut k = keep.iter();
            street.retain(|_| *k.next().unwrap_or(&false));
            placed.retain(|p| !p.is_outside());
        }
        incidents.loc.shrink_to_fit();
        incidents.month.shrink_to_fit();
        incidents.ctype.shrink_to_fit();
        incidents.severity.shrink_to_fit();
        let unlocated = self.unlocated.iter().sum();
        AnalysisStore {
            geography,
            locations: Locations {
                lon_e7,
                lat_e7,
                cells: Default::default(),
                lsoa: placed.iter().map(|p| p.lsoa11).collect(),
                lsoa21: placed.iter().map(|p| p.lsoa21).collect(),
                district: placed.iter().map(|p| p.district).collect(),
                street,
            },
            incidents,
            unlocated,
            unlocated_by_type: self.unlocated,
            outside_by_type,
            outside_by_month,
            lsoa_vintage,
            coverage,
            datasets_by_type: None,
            version: 0,
        }
    }
}

/// [`code_number`] of a code that is not a letter and eight digits.
const NOT_A_NUMBER: u32 = u32::MAX;
/// [`code_number`] of no code.
const BLANK_CODE: u32 = u32::MAX - 1;

/// An LSOA code of the ONS form (a capital letter and eight digits: `E01012345`) as a
/// number, one to one: the letter's place times 10^8 plus the digits (under 2.6 * 10^9).
/// Blank is [`BLANK_CODE`], any other form [`NOT_A_NUMBER`] (its text must be compared).
#[inline]
fn code_number(code: &[u8]) -> u32 {
    match code {
        [] => BLANK_CODE,
        [letter @ b'A'..=b'Z', digits @ ..] if digits.len() == 8 => {
            let mut n = 0u32;
            for &c in digits {
                let d = c.wrapping_sub(b'0');
                if d > 9 {
                    return NOT_A_NUMBER;
                }
                n = n * 10 + u32::from(d);
            }
            u32::from(letter - b'A') * 100_000_000 + n
        }
        _ => NOT_A_NUMBER,
    }
}

/// LSOA codes, interned: a location keeps a code id.
#[derive(Debug, Default)]
struct Codes {
    ids: FxHashMap<Box<[u8]>, u16>,
    text: Vec<Box<str>>,
}

impl Codes {
    /// The id of an LSOA code (trimmed; blank is no code).
    fn intern(&mut self, code: &[u8]) -> u16 {
        let code = code.trim_ascii();
        if code.is_empty() {
            return NO_CODE;
        }
        if let Some(&id) = self.ids.get(code) {
            return id;
        }
        let id = self.text.len().min(usize::from(NO_CODE) - 1) as u16;
        if usize::from(id) == self.text.len() {
            self.text
                .push(String::from_utf8_lossy(code).into_owned().into_boxed_str());
            self.ids.insert(code.into(), id);
        }
        id
    }

    fn text(&self, id: u16) -> &str {
        if id == NO_CODE {
            ""
        } else {
            &self.text[usize::from(id)]
        }
    }
}

/// Street texts, one buffer for all: a file's builder meets most of its locations for
/// the first time, and one allocation per location cost more than the rest of the row.
#[derive(Debug, Default)]
struct Streets {
    text: String,
    ends: Vec<usize>,
}

impl Streets {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }

    fn get(&self, i: usize) -> &str {
        let a = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[a..self.ends[i]]
    }

    fn into_boxes(self) -> Vec<Box<str>> {
        (0..self.ends.len()).map(|i| self.get(i).into()).collect()
    }
}

/// The fixed seed of the record keys (public: see the module docs).
pub const RECORD_KEY_SEED: u64 = 0x6863_6b70_2d6b_6579;

/// SplitMix64's finaliser.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The record key of one record: its coordinates, month, type, severity and ordinal
/// among identical records.
#[inline]
pub fn record_key(
    lon_e7: i32,
    lat_e7: i32,
    month: u16,
    ctype: u8,
    severity: u8,
    ordinal: u32,
) -> u8 {
    let h = mix(RECORD_KEY_SEED ^ pack(lon_e7, lat_e7));
    let attrs = (u64::from(month) << 48)
        | (u64::from(ctype) << 40)
        | (u64::from(severity) << 32)
        | u64::from(ordinal);
    (mix(h ^ mix(attrs)) >> 56) as u8
}

/// Every incident's record key (see the module docs), in store order.
pub fn record_keys(lon_e7: &[i32], lat_e7: &[i32], inc: &Incidents) -> Vec<u8> {
    use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
    let n = inc.loc.len();
    let n_loc = lon_e7.len();
    // Counting sort of the incidents by location, each as (month, type, severity, row)
    // packed in a u64: the attributes travel with the row, so no location reads the
    // incident columns at random afterwards. One chunk of rows per thread: each counts
    // its chunk, then writes it from its own offsets (the stores never meet), so every
    // location's rows stay in store order.
    let chunk = n.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let counts: Vec<Vec<u32>> = inc
        .loc
        .par_chunks(chunk)
        .map(|locs| {
            let mut c = vec![0u32; n_loc];
            for &l in locs {
                c[l as usize] += 1;
            }
            c
        })
        .collect();
    let mut start = vec![0u32; n_loc + 1];
    for l in 0..n_loc {
        start[l + 1] = start[l] + counts.iter().map(|c| c[l]).sum::<u32>();
    }
    // Where each chunk writes its first row of each location.
    let mut offsets = Vec::with_capacity(counts.len());
    let mut at = start[..n_loc].to_vec();
    for c in &counts {
        offsets.push(at.clone());
        for (a, k) in at.iter_mut().zip(c) {
            *a += k;
        }
    }
    drop(counts);
    let packed: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
    offsets
        .into_par_iter()
        .enumerate()
        .for_each(|(t, mut next)| {
            for r in t * chunk..((t + 1) * chunk).min(n) {
                let l = inc.loc[r] as usize;
                let attrs = (u64::from(inc.month[r]) << 16)
                    | (u64::from(inc.ctype[r]) << 8)
                    | u64::from(inc.severity[r]);
                packed[next[l] as usize].store((attrs << 32) | r as u64, Ordering::Relaxed);
                next[l] += 1;
            }
        });
    let mut packed: Vec<u64> = packed.into_iter().map(AtomicU64::into_inner).collect();
    // One slice per location, sorted in parallel: identical records end up side by side
    // (in store order), numbered 0, 1, 2... Each key goes straight to its row (rows are
    // distinct, so the relaxed stores never meet).
    let keys: Vec<AtomicU8> = (0..n).map(|_| AtomicU8::new(0)).collect();
    let mut slices: Vec<(usize, &mut [u64])> = Vec::with_capacity(n_loc);
    let mut rest: &mut [u64] = &mut packed;
    for l in 0..n_loc {
        let len = (start[l + 1] - start[l]) as usize;
        let (head, tail) = rest.split_at_mut(len);
        slices.push((l, head));
        rest = tail;
    }
    slices.into_par_iter().for_each(|(l, rows)| {
        rows.sort_unstable();
        let mut ordinal = 0u32;
        let mut prev = None;
        for &o in rows.iter() {
            let a = o >> 32;
            ordinal = if prev == Some(a) { ordinal + 1 } else { 0 };
            prev = Some(a);
            let (month, ctype, severity) = ((a >> 16) as u16, (a >> 8) as u8, a as u8);
            let key = record_key(lon_e7[l], lat_e7[l], month, ctype, severity, ordinal);
            keys[(o & 0xffff_ffff) as usize].store(key, Ordering::Relaxed);
        }
    });
    keys.into_iter().map(AtomicU8::into_inner).collect()
}

impl Sink for Builder {
    fn record(&mut self, rec: &Record<'_>) -> Result<(), IngestError> {
        let m = rec.month.index();
        match &rec.identity {
            crate::ingest::Identity::Batch { force, month } => {
                let f = force.as_bytes();
                let same = self
                    .last_batch
                    .as_ref()
                    .is_some_and(|(lf, lm)| *lm == month.index() && lf.as_ref() == f);
                if !same {
                    self.coverage.add(
                        crate::coverage::Dataset::PoliceUk,
                        &force.decode(),
                        month.index(),
                    );
                    self.last_batch = Some((f.into(), month.index()));
                }
            }
            _ => {
                self.span = Some(self.span.map_or((m, m), |(lo, hi)| (lo.min(m), hi.max(m))));
            }
        }
        match rec.point {
            Some((lon, lat)) => {
                let loc = self.location_text(to_e7(lon), to_e7(lat), &rec.lsoa_code, &rec.location);
                self.incident(loc, rec.month.index(), rec.ctype as u8, rec.severity as u8);
            }
            None => self.unlocated(rec.ctype as u8, 1),
        }
        Ok(())
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;

    /// Against the definition, brute force: a record's ordinal is the number of identical
    /// records before it in store order. Enough rows that each thread gets a chunk.
    #[test]
    fn record_keys_follow_their_definition() {
        let mut b = Builder::new();
        for i in 0..5000u32 {
            let loc = b.location((i % 13) as i32, (i % 7) as i32, "", "");
            b.incident(loc, (i % 5) as u16, (i % 3) as u8, (i % 2) as u8);
        }
        let inc = &b.incidents;
        let keys = record_keys(&b.lon_e7, &b.lat_e7, inc);
        let mut seen = std::collections::HashMap::new();
        for (r, &key) in keys.iter().enumerate() {
            let l = inc.loc[r] as usize;
            let id = (l, inc.month[r], inc.ctype[r], inc.severity[r]);
            let ordinal = seen.entry(id).or_insert(0u32);
            let want = record_key(b.lon_e7[l], b.lat_e7[l], id.1, id.2, id.3, *ordinal);
            assert_eq!(key, want, "row {r}");
            *ordinal += 1;
        }
        assert_eq!(keys.len(), inc.len());
    }

    /// The same records loaded in two orders: each record (with its duplicates) gets the
    /// same keys, so every key sum is the same.
    #[test]
    fn record_keys_do_not_depend_on_load_order() {
        let recs: Vec<(i32, i32, u16, u8)> = (0..400)
            .map(|i| (i % 7, i % 5, (i % 3) as u16, (i % 2) as u8))
            .collect();
        let keyed = |order: &[usize]| {
            let mut b = Builder::new();
            for &i in order {
                let (x, y, m, t) = recs[i];
                let loc = b.location(x, y, "", "");
                b.incident(loc, m, t, 0);
            }
            let inc = &b.incidents;
            let mut out: Vec<((i32, i32, u16, u8), u8)> = record_keys(&b.lon_e7, &b.lat_e7, inc)
                .into_iter()
                .enumerate()
                .map(|(r, k)| {
                    let l = inc.loc[r] as usize;
                    ((b.lon_e7[l], b.lat_e7[l], inc.month[r], inc.ctype[r]), k)
                })
                .collect();
            out.sort_unstable();
            out
        };
        let forward: Vec<usize> = (0..recs.len()).collect();
        let backward: Vec<usize> = (0..recs.len()).rev().collect();
        let a = keyed(&forward);
        assert_eq!(a, keyed(&backward));
        // Duplicates get different keys (their ordinals differ), most of the time.
        let distinct: std::collections::HashSet<u8> = a.iter().map(|x| x.1).collect();
        assert!(distinct.len() > 100, "{} distinct keys", distinct.len());
    }
}

#[cfg(test)]
mod location_tests {
    use super::*;

    #[test]
    fn code_numbers_are_one_to_one_on_the_ons_form() {
        let codes = [
            "E01012345",
            "E01012346",
            "W01000001",
            "E02000001",
            "Z99999999",
            "A00000000",
        ];
        let numbers: std::collections::HashSet<u32> =
            codes.iter().map(|c| code_number(c.as_bytes())).collect();
        assert_eq!(numbers.len(), codes.len());
        assert!(numbers.iter().all(|&n| n < BLANK_CODE));
        assert_eq!(code_number(b""), BLANK_CODE);
        for other in [
            "e01012345",
            "E0101234",
            "E010123456",
            "E0101234x",
            "EE1012345",
            "-",
        ] {
            assert_eq!(code_number(other.as_bytes()), NOT_A_NUMBER, "{other}");
        }
    }

    /// One coordinate with several codes, of the ONS form, another form and blank: a
    /// location each, found again by any row that carries the same code.
    #[test]
    fn a_coordinate_keeps_a_location_per_code() {
        let mut b = Builder::new();
        let text = |s: &'static str| Text::raw(s.as_bytes());
        let codes = ["E01012345", "odd code", "", "E01012346", "odd code 2"];
        let ids: Vec<u32> = codes
            .iter()
            .map(|c| b.location_text(1, 2, &text(c), &text("street")))
            .collect();
        let distinct: std::collections::HashSet<u32> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), codes.len(), "{ids:?}");
        for (c, id) in codes.iter().zip(&ids) {
            let padded = format!(" {c} ");
            let again = b.location_text(1, 2, &Text::raw(padded.as_bytes()), &text("x"));
            assert_eq!(again, *id, "{c:?}");
            assert_eq!(b.location(1, 2, c, "y"), *id, "{c:?}");
        }
        assert_eq!(b.lon_e7.len(), codes.len());
    }
}
