//! The other two files of a police.uk download: `YYYY-MM-<force>-outcomes.csv` (the latest
//! outcome of crimes published in earlier street files, by Crime ID) and
//! `YYYY-MM-<force>-stop-and-search.csv` (stop and search records: a dataset of their
//! own, not incidents).
//!
//! Outcomes update the stored crimes they name; a crime not in the store (a month not
//! ingested) is counted as unmatched, not rejected. Searches are handed to the sink; a
//! sink that keeps neither (the in-memory analysis store) makes the file count as
//! skipped, with the reason.

use crate::model::{Month, parse_when};

use super::detect::{
    OUTCOMES_HEADER, STOP_SEARCH_HEADER, header_fields, header_is, is_stop_search_header,
};
use super::fields::{check_lonlat, number, show, text};
use super::scan::{Row, Scanner};
use super::{FileStats, IngestError, Outcome, OutcomeMatch, Reject, Sink, StopSearch, Text};

const NOT_KEPT_OUTCOMES: &str =
    "police.uk outcomes update crimes in the store of record; ingest them with `hotspot ingest`";
const NOT_KEPT_SEARCHES: &str = "stop-and-search records are kept in the store of record only (not incidents); ingest them with `hotspot ingest`";

/// Reads the header (`want`, as `ok` checks it) and returns the scanner positioned after it.
fn open<'b>(
    file: &str,
    bytes: &'b [u8],
    want: &[&str],
    ok: fn(&[String]) -> bool,
) -> Result<Scanner<'b>, IngestError> {
    let header = header_fields(bytes);
    if !ok(&header) {
        return Err(IngestError::Header {
            file: file.to_owned(),
            line: 1,
            reason: format!("expected the police.uk header {}", want.join(",")),
        });
    }
    let mut scan = Scanner::new(bytes);
    let _header = scan.next_row();
    Ok(scan)
}

/// The loop both parsers share: `row` handles a row of the right width and says whether
/// the sink kept it; a wrong width or a repeated header is a reject.
fn each_row(
    file: &str,
    scan: &mut Scanner<'_>,
    width: usize,
    first: &str,
    stats: &mut FileStats,
    mut row: impl FnMut(
        &Row<'_>,
        &mut FileStats,
    ) -> Result<Result<(), (String, String, String)>, IngestError>,
) -> Result<(), IngestError> {
    while let Some((line, rec)) = scan.next_row() {
        stats.rows_read += 1;
        let result = if rec.len() != width {
            Err((
                "*".to_owned(),
                format!(
                    "wrong number of fields: expected {width}, found {} (truncated or malformed row)",
                    rec.len()
                ),
                show(&rec.raw()),
            ))
        } else if text(rec.get(0)).eq_ignore_ascii_case(first) {
            Err(("*".to_owned(), "repeated header".to_owned(), String::new()))
        } else {
            row(&rec, stats)?
        };
        if let Err((field, reason, value)) = result {
            stats.reject(Reject {
                file: file.to_owned(),
                line,
                field,
                reason,
                value,
            });
        }
    }
    Ok(())
}

pub(super) fn parse_outcomes(
    file: &str,
    bytes: &[u8],
    sink: &mut dyn Sink,
) -> Result<FileStats, IngestError> {
    let mut scan = open(file, bytes, &OUTCOMES_HEADER, |h| {
        header_is(h, &OUTCOMES_HEADER)
    })?;
    let mut stats = FileStats::default();
    each_row(
        file,
        &mut scan,
        OUTCOMES_HEADER.len(),
        OUTCOMES_HEADER[0],
        &mut stats,
        |rec, stats| {
            let id = rec.get(0).trim_ascii();
            if id.is_empty() {
                return Ok(Err((
                    "Crime ID".into(),
                    "missing Crime ID: an outcome must name its crime".into(),
                    String::new(),
                )));
            }
            let month_b = rec.get(1).trim_ascii();
            let month = match Month::parse_bytes(month_b) {
                Ok(m) => m,
                Err(e) => return Ok(Err(("Month".into(), e.to_string(), show(month_b)))),
            };
            let outcome = rec.get(9);
            if outcome.trim_ascii().is_empty() {
                return Ok(Err((
                    "Outcome type".into(),
                    "missing outcome".into(),
                    String::new(),
                )));
            }
            let o = Outcome {
                crime_id: Text::raw(id),
                month,
                outcome: Text::raw(outcome),
            };
            match sink.outcome(&o)? {
                OutcomeMatch::Updated => stats.outcomes_updated += 1,
                OutcomeMatch::Older => stats.outcomes_older += 1,
                OutcomeMatch::Unmatched => stats.outcomes_unmatched += 1,
                OutcomeMatch::NotKept => stats.skip(NOT_KEPT_OUTCOMES),
            }
            Ok(Ok(()))
        },
    )?;
    Ok(stats)
}

/// The force-month a police.uk file covers, from its name: `2021-01-lancashire` of
/// `.../2021-01/2021-01-lancashire-stop-and-search.csv`.
fn batch_of(file: &str) -> String {
    let base = file.rsplit(['/', '\\', '!']).next().unwrap_or(file);
    let lower = base.to_ascii_lowercase();
    let cut = lower
        .strip_suffix("-stop-and-search.csv")
        .map_or(base.len(), str::len);
    base[..cut].to_owned()
}

pub(super) fn parse_stop_search(
    file: &str,
    bytes: &[u8],
    sink: &mut dyn Sink,
) -> Result<FileStats, IngestError> {
    let mut scan = open(file, bytes, &STOP_SEARCH_HEADER, is_stop_search_header)?;
    let mut stats = FileStats::default();
    let batch = batch_of(file);
    each_row(
        file,
        &mut scan,
        STOP_SEARCH_HEADER.len(),
        STOP_SEARCH_HEADER[0],
        &mut stats,
        |rec, stats| {
            let date = text(rec.get(1));
            let when = match parse_when(&date) {
                Ok(w) => w,
                Err(e) => return Ok(Err(("Date".into(), e.to_string(), show(rec.get(1))))),
            };
            let point = match search_point(rec.get(5), rec.get(4)) {
                Ok(p) => p,
                Err(e) => return Ok(Err(e)),
            };
            let s = StopSearch {
                when,
                point,
                kind: Text::raw(rec.get(0)),
                object: Text::raw(rec.get(11)),
                outcome: Text::raw(rec.get(12)),
                legislation: Text::raw(rec.get(10)),
                batch: batch.clone(),
            };
            if sink.stop_search(&s)? {
                stats.searches += 1;
                stats.unlocated += u64::from(point.is_none());
            } else {
                stats.skip(NOT_KEPT_SEARCHES);
            }
            Ok(Ok(()))
        },
    )?;
    Ok(stats)
}

fn search_point(
    lon_b: &[u8],
    lat_b: &[u8],
) -> Result<Option<(f64, f64)>, (String, String, String)> {
    let (lon_e, lat_e) = (lon_b.trim_ascii().is_empty(), lat_b.trim_ascii().is_empty());
    if lon_e && lat_e {
        return Ok(None);
    }
    let field = |f: &str, r: &str, v: &[u8]| (f.to_owned(), r.to_owned(), show(v));
    let lon = number(lon_b).ok_or_else(|| field("Longitude", "not a number", lon_b))?;
    let lat = number(lat_b).ok_or_else(|| field("Latitude", "not a number", lat_b))?;
    check_lonlat(lon, lat).map_err(|(f, r)| (f.to_owned(), r, format!("{lon},{lat}")))?;
    Ok(Some((lon, lat)))
}

#[cfg(test)]
mod tests {
    use super::batch_of;

    #[test]
    fn a_search_file_names_its_force_month() {
        assert_eq!(
            batch_of("x.zip!2021-01/2021-01-lancashire-stop-and-search.csv"),
            "2021-01-lancashire"
        );
        assert_eq!(batch_of("searches.csv"), "searches.csv");
    }
}
