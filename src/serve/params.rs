//! Query parameters shared by every endpoint: strict parsing (an unknown parameter is a
//! 400, as OGC API - Features requires), and the incident filter (`types`, `severity`,
//! `from`, `to`, `district`), parsed once into library types.

use std::collections::BTreeMap;

use super::AppError;
use crate::analysis::{AnalysisStore, Filter};
use crate::model::{CrimeType, Month, Severity, SeveritySet, TypeSet};

/// The filter's parameter names.
pub const FILTER_PARAMS: [&str; 5] = ["types", "severity", "from", "to", "district"];

/// Longest query string accepted.
pub const MAX_QUERY_LEN: usize = 4096;

/// Parses a raw query string, refusing parameters not in `allowed` and repeats.
///
/// # Errors
/// 400 for an unknown or repeated parameter, bad percent-encoding, or a query too long.
pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<BTreeMap<String, String>, AppError> {
    let (known, others) = split(raw, allowed)?;
    if let Some(k) = others.keys().next() {
        return Err(AppError::BadRequest(format!(
            "unknown query parameter '{k}' (allowed: {})",
            allowed.join(", ")
        )));
    }
    Ok(known)
}

/// Decoded query parameters by name.
pub type Params = BTreeMap<String, String>;

/// As [`parse`], but the parameters not in `allowed` come back apart instead of being
/// refused (the OGC items' property filters, checked against the collection later).
///
/// # Errors
/// 400 for a repeated parameter, bad percent-encoding, or a query too long.
pub fn split(raw: Option<&str>, allowed: &[&str]) -> Result<(Params, Params), AppError> {
    let raw = raw.unwrap_or("");
    if raw.len() > MAX_QUERY_LEN {
        return Err(AppError::BadRequest(format!(
            "query string longer than {MAX_QUERY_LEN} bytes"
        )));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded_pairs(raw)?;
    let (mut known, mut others) = (BTreeMap::new(), BTreeMap::new());
    for (k, v) in pairs {
        let into = if allowed.contains(&k.as_str()) {
            &mut known
        } else {
            &mut others
        };
        if into.insert(k.clone(), v).is_some() {
            return Err(AppError::BadRequest(format!(
                "query parameter '{k}' given twice"
            )));
        }
    }
    Ok((known, others))
}

fn serde_urlencoded_pairs(raw: &str) -> Result<Vec<(String, String)>, AppError> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

pub(crate) fn decode(s: &str) -> Result<String, AppError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                let v = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
                out.push(v.ok_or_else(|| {
                    AppError::BadRequest("bad percent-encoding in the query".into())
                })?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| AppError::BadRequest("the query is not UTF-8".into()))
}

/// The incident filter from `types` (comma-separated slugs or labels), `from` and `to`
/// (YYYY-MM) and `district` (comma-separated codes or names).
///
/// # Errors
/// 400 naming the parameter and the bad value.
pub fn filter(
    params: &BTreeMap<String, String>,
    store: &AnalysisStore,
) -> Result<Filter, AppError> {
    let bad = |p: &str, e: String| AppError::BadRequest(format!("parameter '{p}': {e}"));
    let types = match params.get("types") {
        None => TypeSet::incidents(),
        Some(v) => v
            .split(',')
            .filter(|t| !t.trim().is_empty())
            .map(|t| t.parse::<CrimeType>().map_err(|e| bad("types", e)))
            .collect::<Result<TypeSet, _>>()?,
    };
    // Road collisions by STATS19 severity; other types have none and are not affected.
    let severities = match params.get("severity") {
        None => SeveritySet::all(),
        Some(v) => v
            .split(',')
            .filter(|t| !t.trim().is_empty())
            .map(|t| t.parse::<Severity>().map_err(|e| bad("severity", e)))
            .collect::<Result<SeveritySet, _>>()?,
    };
    let month = |p: &str| -> Result<Option<Month>, AppError> {
        params
            .get(p)
            .map(|v| v.parse::<Month>().map_err(|e| bad(p, e.to_string())))
            .transpose()
    };
    let (from, to) = (month("from")?, month("to")?);
    if let (Some(a), Some(b)) = (from, to)
        && a > b
    {
        return Err(AppError::BadRequest(format!(
            "'from' ({a}) is after 'to' ({b})"
        )));
    }
    let districts = match params.get("district") {
        None => None,
        Some(v) => Some(
            v.split(',')
                .map(|d| {
                    store
                        .geography
                        .district_index(d.trim())
                        .ok_or_else(|| bad("district", format!("unknown district '{d}'")))
                })
                .collect::<Result<Vec<u8>, _>>()?,
        ),
    };
    Ok(Filter {
        types,
        severities,
        from,
        to,
        districts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_repeated_and_badly_encoded_parameters_are_refused() {
        let allowed = ["limit", "bbox"];
        assert_eq!(
            parse(Some("limit=5&bbox=1%2C2"), &allowed).unwrap()["bbox"],
            "1,2"
        );
        for bad in ["foo=1", "limit=1&limit=2", "limit=%zz", "limit=%ff"] {
            assert!(parse(Some(bad), &allowed).is_err(), "{bad}");
        }
        assert!(parse(Some(&"a".repeat(MAX_QUERY_LEN + 1)), &allowed).is_err());
        assert!(parse(None, &allowed).unwrap().is_empty());
    }
}
