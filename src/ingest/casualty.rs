//! DfT STATS19 casualty CSV: one row per casualty, joined to its collision (already in
//! the store) on `collision_index` (`accident_index` in older files), found by column
//! name in every vintage.
//!
//! Road safety partnerships count casualties, not collisions: KSI (killed or seriously
//! injured) and adjusted KSI (fatal + the sum of `casualty_adjusted_severity_serious`,
//! in files from 2023 on), by road user. A casualty is stored as an incident of its
//! road-user group's type ([`CrimeType::road_casualties`]) at its collision's location
//! and date, with the casualty severity; the codes, age and adjusted probabilities go to
//! the store of record's `casualties` table. A casualty whose collision is not stored is
//! rejected, naming the file, line and index.

use crate::model::{CrimeType, Severity};

use super::detect::header_fields;
use super::fields::{is_missing, number, show, text};
use super::scan::{Row, Scanner};
use super::{Casualty, FileStats, IngestError, Joined, Reject, Sink, Text};

const NOT_KEPT: &str = "STATS19 casualties join collisions in the store of record; ingest them with `hotspot ingest` after the collision file";

struct Columns {
    index_name: String,
    index: usize,
    vehicle: usize,
    casualty: usize,
    class: Option<usize>,
    severity: usize,
    ctype: usize,
    age: Option<usize>,
    age_band: Option<usize>,
    adjusted_serious: Option<usize>,
    adjusted_slight: Option<usize>,
    width: usize,
}

fn columns(file: &str, header: &[String]) -> Result<Columns, IngestError> {
    let find = |names: &[&str]| header.iter().position(|h| names.contains(&h.as_str()));
    let need = |names: &[&str]| {
        find(names).ok_or_else(|| IngestError::Header {
            file: file.to_owned(),
            line: 1,
            reason: format!("STATS19 casualty header lacks a {} column", names.join("/")),
        })
    };
    let index = need(&["collision_index", "accident_index"])?;
    Ok(Columns {
        index_name: header[index].clone(),
        index,
        vehicle: need(&["vehicle_reference"])?,
        casualty: need(&["casualty_reference"])?,
        class: find(&["casualty_class"]),
        severity: need(&["casualty_severity"])?,
        ctype: need(&["casualty_type"])?,
        age: find(&["age_of_casualty"]),
        age_band: find(&["age_band_of_casualty"]),
        adjusted_serious: find(&[
            "casualty_adjusted_severity_serious",
            "adjusted_severity_serious",
        ]),
        adjusted_slight: find(&[
            "casualty_adjusted_severity_slight",
            "adjusted_severity_slight",
        ]),
        width: header.len(),
    })
}

/// The road-user group of a STATS19 `casualty_type` code: pedestrian (0), cyclist (1),
/// motorcyclist (2-5: up to 50cc, 125cc, 500cc, over 500cc; 23: electric motorcycle;
/// 97: unknown cc), car occupant (9), every other code (and unknown) other.
pub fn road_user_group(casualty_type: Option<i64>) -> CrimeType {
    match casualty_type {
        Some(0) => CrimeType::RoadCasualtyPedestrian,
        Some(1) => CrimeType::RoadCasualtyCyclist,
        Some(2..=5 | 23 | 97) => CrimeType::RoadCasualtyMotorcyclist,
        Some(9) => CrimeType::RoadCasualtyCarOccupant,
        _ => CrimeType::RoadCasualtyOther,
    }
}

/// Under 16 from the age in years, else from DfT's age band (1: 0-5, 2: 6-10, 3: 11-15,
/// 4 and up: 16 and over); `None` when neither is known.
pub fn is_child(age: Option<i64>, age_band: Option<i64>) -> Option<bool> {
    match (age, age_band) {
        (Some(a), _) if a >= 0 => Some(a < 16),
        (_, Some(b)) if b >= 1 => Some(b <= 3),
        _ => None,
    }
}

pub(super) fn parse(
    file: &str,
    bytes: &[u8],
    sink: &mut dyn Sink,
) -> Result<FileStats, IngestError> {
    let header = header_fields(bytes);
    let c = columns(file, &header)?;
    let mut scan = Scanner::new(bytes);
    let _header = scan.next_row();
    let mut stats = FileStats::default();
    while let Some((line, rec)) = scan.next_row() {
        stats.rows_read += 1;
        let result = match row(&c, &rec) {
            Ok(cas) => match sink.casualty(&cas)? {
                Joined::Stored { located } => {
                    stats.records += 1;
                    stats.casualties += 1;
                    stats.unlocated += u64::from(!located);
                    Ok(())
                }
                Joined::UnknownCollision => Err((
                    c.index_name.clone(),
                    "unknown collision: no collision with this index is in the store (ingest its collision file first)".to_owned(),
                    cas.collision_index.to_string(),
                )),
                Joined::NotKept => {
                    stats.skip(NOT_KEPT);
                    Ok(())
                }
            },
            Err(e) => Err(e),
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
    Ok(stats)
}

type RowError = (String, String, String);

fn row<'r>(c: &Columns, rec: &Row<'r>) -> Result<Casualty<'r>, RowError> {
    let err = |f: &str, r: &str, v: &[u8]| (f.to_owned(), r.to_owned(), show(v));
    if rec.len() != c.width {
        let f = text(rec.get(c.index));
        if f.eq_ignore_ascii_case(&c.index_name) {
            return Err(err("*", "repeated header", b""));
        }
        return Err((
            "*".to_owned(),
            format!(
                "wrong number of fields: expected {}, found {} (truncated or malformed row)",
                c.width,
                rec.len()
            ),
            show(&rec.raw()),
        ));
    }
    let index_b = rec.get(c.index).trim_ascii();
    if index_b.is_empty() {
        return Err(err(&c.index_name, "missing collision index", b""));
    }
    if text(index_b).eq_ignore_ascii_case(&c.index_name) {
        return Err(err("*", "repeated header", b""));
    }
    // An integer code; `None` for the missing spellings (-1, empty, NULL).
    let code = |i: usize, name: &str| -> Result<Option<i64>, RowError> {
        let b = rec.get(i);
        if is_missing(b) {
            return Ok(None);
        }
        text(b)
            .parse::<i64>()
            .map(Some)
            .map_err(|_| err(name, "not a whole number", b))
    };
    let required = |i: usize, name: &str| -> Result<i64, RowError> {
        code(i, name)?.ok_or_else(|| err(name, "missing", rec.get(i)))
    };
    let vehicle_reference = required(c.vehicle, "vehicle_reference")?;
    let casualty_reference = required(c.casualty, "casualty_reference")?;
    let severity = match rec.get(c.severity).trim_ascii() {
        b"1" => Severity::Fatal,
        b"2" => Severity::Serious,
        b"3" => Severity::Slight,
        b"-1" | b"9" | b"" | b"NULL" | b"null" => Severity::None,
        other => return Err(err("casualty_severity", "not 1, 2, 3, 9 or -1", other)),
    };
    let casualty_type = code(c.ctype, "casualty_type")?;
    let age = c
        .age
        .map(|i| code(i, "age_of_casualty"))
        .transpose()?
        .flatten();
    let age_band = c
        .age_band
        .map(|i| code(i, "age_band_of_casualty"))
        .transpose()?
        .flatten();
    let class = c
        .class
        .map(|i| code(i, "casualty_class"))
        .transpose()?
        .flatten();
    let probability = |i: Option<usize>, name: &str| -> Result<Option<f64>, RowError> {
        let Some(i) = i else { return Ok(None) };
        let b = rec.get(i);
        if b.trim_ascii().is_empty() || b.trim_ascii().eq_ignore_ascii_case(b"NULL") {
            return Ok(None);
        }
        match number(b) {
            Some(p) if (0.0..=1.0).contains(&p) => Ok(Some(p)),
            // -1: not applicable (no adjustment for this casualty).
            Some(-1.0) => Ok(None),
            _ => Err(err(name, "not a probability between 0 and 1", b)),
        }
    };
    let adjusted_serious = probability(c.adjusted_serious, "casualty_adjusted_severity_serious")?;
    let adjusted_slight = probability(c.adjusted_slight, "casualty_adjusted_severity_slight")?;
    Ok(Casualty {
        collision_index: Text::raw(index_b),
        vehicle_reference,
        casualty_reference,
        casualty_class: class,
        severity,
        casualty_type,
        age,
        age_band,
        adjusted_serious,
        adjusted_slight,
        group: road_user_group(casualty_type),
        child: is_child(age, age_band),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn road_user_groups_and_children() {
        let g = |t| road_user_group(Some(t));
        assert_eq!(g(0), CrimeType::RoadCasualtyPedestrian);
        assert_eq!(g(1), CrimeType::RoadCasualtyCyclist);
        for t in [2, 3, 4, 5, 23, 97] {
            assert_eq!(g(t), CrimeType::RoadCasualtyMotorcyclist, "{t}");
        }
        assert_eq!(g(9), CrimeType::RoadCasualtyCarOccupant);
        for t in [8, 10, 11, 19, 90, 98] {
            assert_eq!(g(t), CrimeType::RoadCasualtyOther, "{t}");
        }
        assert_eq!(road_user_group(None), CrimeType::RoadCasualtyOther);
        assert_eq!(is_child(Some(15), Some(4)), Some(true));
        assert_eq!(is_child(Some(16), None), Some(false));
        assert_eq!(is_child(Some(-1), Some(3)), Some(true));
        assert_eq!(is_child(None, Some(4)), Some(false));
        assert_eq!(is_child(None, Some(-1)), None);
    }
}
