//! The `datetime` parameter of OGC API - Features, mapped onto whole months (the store's
//! time resolution): an instant or an interval `start/end`, each end a month `YYYY-MM`,
//! an RFC 3339 date `YYYY-MM-DD` or date-time `YYYY-MM-DDTHH:MM:SS[.f](Z|+HH:MM)`, and an
//! interval end may be open (`..` or empty). A date-time keeps the month of its own date
//! (its offset is checked, not applied; an unencoded `+` that a query string turned into
//! a space is taken as `+`). Anything else is refused.

use crate::model::Month;

/// Months from `datetime`: (from, to), None for an open end.
///
/// # Errors
/// A message naming the bad part: malformed text, an impossible date, a start after the
/// end, or more than one `/`.
pub fn parse_datetime(s: &str) -> Result<(Option<Month>, Option<Month>), String> {
    let s = s.trim();
    let parts: Vec<&str> = s.split('/').collect();
    match parts.as_slice() {
        [one] => {
            let m = instant(one)?;
            Ok((Some(m), Some(m)))
        }
        [a, b] => {
            let (from, to) = (bound(a)?, bound(b)?);
            if let (Some(f), Some(t)) = (from, to)
                && f > t
            {
                return Err(format!("datetime '{s}': the start is after the end"));
            }
            Ok((from, to))
        }
        _ => Err(format!(
            "datetime '{s}': expected an instant or one interval start/end"
        )),
    }
}

fn bound(s: &str) -> Result<Option<Month>, String> {
    match s.trim() {
        "" | ".." => Ok(None),
        t => instant(t).map(Some),
    }
}

/// One instant: `YYYY-MM`, `YYYY-MM-DD` or an RFC 3339 date-time.
fn instant(s: &str) -> Result<Month, String> {
    let bad = || format!("datetime '{s}': expected YYYY-MM, YYYY-MM-DD or an RFC 3339 date-time");
    let b = s.as_bytes();
    if b.len() == 7 {
        return s.parse::<Month>().map_err(|e| e.to_string());
    }
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let year = digits(&b[0..4]).ok_or_else(bad)?;
    let month = digits(&b[5..7]).ok_or_else(bad)?;
    let day = digits(&b[8..10]).ok_or_else(bad)?;
    let m = Month::new(year, month).map_err(|e| e.to_string())?;
    if day == 0 || day > days_in_month(year, month) {
        return Err(format!("datetime '{s}': day {day} is not in {m}"));
    }
    if b.len() > 10 && (!matches!(b[10], b'T' | b't' | b' ') || !time_ok(&b[11..])) {
        return Err(bad());
    }
    Ok(m)
}

/// `HH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`.
fn time_ok(b: &[u8]) -> bool {
    if b.len() < 9 || b[2] != b':' || b[5] != b':' {
        return false;
    }
    let (Some(h), Some(mi), Some(sec)) = (digits(&b[0..2]), digits(&b[3..5]), digits(&b[6..8]))
    else {
        return false;
    };
    // 60 for a leap second.
    if h > 23 || mi > 59 || sec > 60 {
        return false;
    }
    let mut rest = &b[8..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        // A space is a '+' that came through a query string unencoded.
        [b'+' | b'-' | b' ', oh @ ..] if oh.len() == 5 && oh[2] == b':' => {
            matches!((digits(&oh[0..2]), digits(&oh[3..5])), (Some(h), Some(m)) if h <= 23 && m <= 59)
        }
        _ => false,
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// Days in a month of the proleptic Gregorian calendar.
pub fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Option<Month> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn instants_and_intervals() {
        assert_eq!(
            parse_datetime("2023-05").unwrap(),
            (m("2023-05"), m("2023-05"))
        );
        assert_eq!(
            parse_datetime("2023-05-17").unwrap(),
            (m("2023-05"), m("2023-05"))
        );
        assert_eq!(
            parse_datetime("2023-05-17T10:20:30Z").unwrap(),
            (m("2023-05"), m("2023-05"))
        );
        assert_eq!(
            parse_datetime("2023-01/2023-06").unwrap(),
            (m("2023-01"), m("2023-06"))
        );
        assert_eq!(parse_datetime("../2023-06").unwrap(), (None, m("2023-06")));
        assert_eq!(parse_datetime("2023-06/..").unwrap(), (m("2023-06"), None));
        assert_eq!(parse_datetime("2023-06/").unwrap(), (m("2023-06"), None));
        assert_eq!(
            parse_datetime("2023-01-01T00:00:00.5+01:00/2023-02-28T23:59:59-05:30").unwrap(),
            (m("2023-01"), m("2023-02"))
        );
        assert_eq!(
            parse_datetime("2023-03-01T00:00:00 01:00").unwrap(),
            (m("2023-03"), m("2023-03"))
        );
        assert_eq!(
            parse_datetime("2024-02-29").unwrap(),
            (m("2024-02"), m("2024-02"))
        );
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in [
            "",
            "..",
            "2023-13",
            "2023-00",
            "2023-1",
            "23-01",
            "2023-02-30",
            "2023-02-29",
            "2023-04-31",
            "2023-05-17T25:00:00Z",
            "2023-05-17T10:00:00",
            "2023-05-17T10:00Z",
            "2023-05-17T10:00:00.Z",
            "2023-05-17T10:00:00+1:00",
            "2023-05-17X10:00:00Z",
            "2023-06/2023-01",
            "2023-01/2023-02/2023-03",
            "yesterday",
            "1969-12",
            "2023-05-1é",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad}");
        }
    }
}
