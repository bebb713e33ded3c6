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
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "police" | "police-uk" | "policeuk" => Ok(Format::PoliceUk),
            "stats19" => Ok(Format::Stats19),
            "generic" | "csv" => Ok(Format::Generic),
            "geojson" => Ok(Format::GeoJson),
            _ => Err(format!(
                "unknown format '{s}' (police, stats19, generic, geojson)"
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
    if header.len() == POLICE_HEADER.len()
        && header
            .iter()
            .zip(POLICE_HEADER)
            .all(|(h, p)| h.eq_ignore_ascii_case(p))
    {
        return Ok(Format::PoliceUk);
    }
    // police.uk's own columns with a header that is not exactly police.uk's: a renamed
    // or missing column would silently lose outcomes and force-month replacement if read
    // as a generic CSV, so refuse it and name what differs.
    let has = |name: &str| header.iter().any(|h| h == name);
    if has("reported by") && has("falls within") {
        let missing: Vec<&str> = POLICE_HEADER
            .iter()
            .filter(|p| !header.iter().any(|h| h.eq_ignore_ascii_case(p)))
            .copied()
            .collect();
        let missing = if missing.is_empty() {
            "nothing, but the columns are out of order or extra".to_owned()
        } else {
            missing.join(", ")
        };
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
