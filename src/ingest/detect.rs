//! Which parser a file needs, from its name and header.

use super::IngestError;
use super::generic::GenericColumns;
use super::scan::Scanner;

/// The input formats the engine reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    PoliceUk,
    Stats19,
    Generic,
    GeoJson,
    /// police.uk `-outcomes.csv`: outcomes of crimes already stored, by Crime ID.
    PoliceOutcomes,
    /// police.uk `-stop-and-search.csv`: searches, a dataset of their own.
    PoliceStopSearch,
    /// STATS19 casualty file, joined to stored collisions on the collision index.
    Stats19Casualty,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "police" | "police-uk" | "policeuk" => Ok(Format::PoliceUk),
            "stats19" => Ok(Format::Stats19),
            "generic" | "csv" => Ok(Format::Generic),
            "geojson" => Ok(Format::GeoJson),
            "outcomes" | "police-outcomes" => Ok(Format::PoliceOutcomes),
            "stop-and-search" | "stop-search" | "police-stop-and-search" => {
                Ok(Format::PoliceStopSearch)
            }
            "casualty" | "casualties" | "stats19-casualty" => Ok(Format::Stats19Casualty),
            _ => Err(format!(
                "unknown format '{s}' (police, stats19, generic, geojson, outcomes, stop-and-search, casualty)"
            )),
        }
    }
}

pub(crate) const POLICE_HEADER: [&str; 12] = [
    "Crime ID",
    "Month",
    "Reported by",
    "Falls within",
    "Longitude",
    "Latitude",
    "Location",
    "LSOA code",
    "LSOA name",
    "Crime type",
    "Last outcome category",
    "Context",
];

/// police.uk `-outcomes.csv` header.
pub(crate) const OUTCOMES_HEADER: [&str; 10] = [
    "Crime ID",
    "Month",
    "Reported by",
    "Falls within",
    "Longitude",
    "Latitude",
    "Location",
    "LSOA code",
    "LSOA name",
    "Outcome type",
];

/// police.uk `-stop-and-search.csv` header.
pub(crate) const STOP_SEARCH_HEADER: [&str; 15] = [
    "Type",
    "Date",
    "Part of a policing operation",
    "Policing operation",
    "Latitude",
    "Longitude",
    "Gender",
    "Age range",
    "Self-defined ethnicity",
    "Officer-defined ethnicity",
    "Legislation",
    "Object of search",
    "Outcome",
    "Outcome linked to object of search",
    "Removal of more specific clothing",
];

/// The last stop-and-search column as police.uk's CSV spells it (the data guide says
/// "Removal of more specific clothing"): either is accepted.
pub(crate) const STOP_SEARCH_LAST_ALT: &str = "Removal of more than just outer clothing";

/// True when `header` is a police.uk stop-and-search header (either spelling of its last
/// column).
pub(crate) fn is_stop_search_header(header: &[String]) -> bool {
    header.len() == STOP_SEARCH_HEADER.len()
        && header_is(&header[..14], &STOP_SEARCH_HEADER[..14])
        && (header[14].eq_ignore_ascii_case(STOP_SEARCH_HEADER[14])
            || header[14].eq_ignore_ascii_case(STOP_SEARCH_LAST_ALT))
}

/// True when `header` (trimmed, lower-cased) is exactly `want`.
pub(crate) fn header_is(header: &[String], want: &[&str]) -> bool {
    header.len() == want.len()
        && header
            .iter()
            .zip(want)
            .all(|(h, p)| h.eq_ignore_ascii_case(p))
}

/// The police.uk columns of `want` that `header` lacks, for a refusal message.
fn missing_of(header: &[String], want: &[&str]) -> String {
    let missing: Vec<&str> = want
        .iter()
        .filter(|p| !header.iter().any(|h| h.eq_ignore_ascii_case(p)))
        .copied()
        .collect();
    if missing.is_empty() {
        "nothing, but the columns are out of order or extra".to_owned()
    } else {
        missing.join(", ")
    }
}

/// The header fields of the first line, trimmed and lower-cased.
pub(crate) fn header_fields(bytes: &[u8]) -> Vec<String> {
    match Scanner::new(bytes).next_row() {
        Some((_, rec)) => rec
            .iter()
            .map(|f| String::from_utf8_lossy(f).trim().to_ascii_lowercase())
            .collect(),
        None => Vec::new(),
    }
}

/// Detects the format from the file name and the first line.
///
/// # Errors
/// When the file is empty or its header matches no known format.
pub fn detect_format(file: &str, bytes: &[u8]) -> Result<Format, IngestError> {
    let lower = file.to_ascii_lowercase();
    if lower.ends_with(".geojson") || lower.ends_with(".json") {
        return Ok(Format::GeoJson);
    }
    let header = header_fields(bytes);
    if header.is_empty() || header.iter().all(String::is_empty) {
        return Err(IngestError::Header {
            file: file.to_owned(),
            line: 1,
            reason: "the file is empty: no header line".into(),
        });
    }
    if header_is(&header, &POLICE_HEADER) {
        return Ok(Format::PoliceUk);
    }
    if header_is(&header, &OUTCOMES_HEADER) {
        return Ok(Format::PoliceOutcomes);
    }
    if is_stop_search_header(&header) {
        return Ok(Format::PoliceStopSearch);
    }
    let has = |name: &str| header.iter().any(|h| h == name);
    // A police.uk outcomes or stop-and-search file whose header differs: refused with
    // what differs, never read as a generic CSV (which would reject every row as an
    // unknown category, or worse, keep some).
    let differs = |want: &[&str], what: &str| IngestError::Header {
        file: file.to_owned(),
        line: 1,
        reason: format!(
            "looks like a police.uk {what} file but the header differs (missing or renamed: {}); expected exactly {}",
            missing_of(&header, want),
            want.join(",")
        ),
    };
    if has("outcome type") && has("crime id") || lower.ends_with("-outcomes.csv") {
        return Err(differs(&OUTCOMES_HEADER, "outcomes"));
    }
    if has("object of search") || lower.ends_with("-stop-and-search.csv") {
        return Err(differs(&STOP_SEARCH_HEADER, "stop-and-search"));
    }
    // police.uk's own columns with a header that is not exactly police.uk's: a renamed
    // or missing column would silently lose outcomes and force-month replacement if read
    // as a generic CSV, so refuse it and name what differs.
    if has("reported by") && has("falls within") {
        let missing = missing_of(&header, &POLICE_HEADER);
        return Err(IngestError::Header {
            file: file.to_owned(),
            line: 1,
            reason: format!(
                "looks like a police.uk file but the header differs (missing or renamed: {missing}); expected exactly {}",
                POLICE_HEADER.join(",")
            ),
        });
    }
    if header
        .iter()
        .any(|h| h == "accident_index" || h == "collision_index")
    {
        if has("casualty_reference") {
            return Ok(Format::Stats19Casualty);
        }
        return Ok(Format::Stats19);
    }
    match GenericColumns::from_header(&header) {
        Ok(_) => Ok(Format::Generic),
        Err(missing) => Err(IngestError::Header {
            file: file.to_owned(),
            line: 1,
            reason: format!(
                "header matches no known format: not the police.uk street header ({}), no accident_index/collision_index column for STATS19, and as a generic CSV it lacks {missing}",
                POLICE_HEADER.join(",")
            ),
        }),
    }
}
