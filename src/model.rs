//! Types that carry meaning at the edges: parsed once, never re-validated deep inside.
//!
//! `Month` is a calendar month stored as months since January 1970 so that ranges and
//! differences are plain integer arithmetic; `CrimeType` is the police.uk category list plus
//! the categories force extracts and STATS19 add; `Severity` is the STATS19 collision
//! severity.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Degrees to whole 1e-7 degrees (about 1 cm), rounding half away from zero: the
/// coordinate key every stage uses for a location. Written out rather than `f64::round`
/// (a libm call on baseline x86_64) because it runs once per ingested row.
#[inline]
pub fn to_e7(deg: f64) -> i32 {
    let x = deg * 1e7;
    (x + 0.5f64.copysign(x)) as i32
}

/// A calendar month (`YYYY-MM`), stored as months since 1970-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month(u16);

/// Why a month string was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("not a month: '{0}' (expected YYYY-MM between 1970-01 and 2199-12)")]
pub struct MonthError(pub String);

impl Month {
    /// Builds a month from a year and a month number (1-12).
    ///
    /// # Errors
    /// When the year is outside 1970..=2199 or the month outside 1..=12.
    pub fn new(year: u32, month: u32) -> Result<Self, MonthError> {
        if !(1970..=2199).contains(&year) || !(1..=12).contains(&month) {
            return Err(MonthError(format!("{year:04}-{month:02}")));
        }
        Ok(Month(((year - 1970) * 12 + (month - 1)) as u16))
    }

    /// The month from its index (months since 1970-01).
    pub fn from_index(index: u16) -> Self {
        Month(index)
    }

    /// Months since 1970-01.
    pub fn index(self) -> u16 {
        self.0
    }

    pub fn year(self) -> u32 {
        1970 + u32::from(self.0) / 12
    }

    pub fn month(self) -> u32 {
        u32::from(self.0) % 12 + 1
    }

    /// The month after this one.
    pub fn succ(self) -> Self {
        Month(self.0.saturating_add(1))
    }

    /// Parses `YYYY-MM` from bytes without allocating (hot path of CSV ingest).
    ///
    /// # Errors
    /// When the bytes are not exactly `YYYY-MM` with a valid month.
    pub fn parse_bytes(b: &[u8]) -> Result<Self, MonthError> {
        let bad = || MonthError(String::from_utf8_lossy(b).into_owned());
        if b.len() != 7 || b[4] != b'-' {
            return Err(bad());
        }
        let digit = |i: usize| -> Result<u32, MonthError> {
            let c = b[i];
            if c.is_ascii_digit() {
                Ok(u32::from(c - b'0'))
            } else {
                Err(bad())
            }
        };
        let year = digit(0)? * 1000 + digit(1)? * 100 + digit(2)? * 10 + digit(3)?;
        let month = digit(5)? * 10 + digit(6)?;
        Month::new(year, month).map_err(|_| bad())
    }

    /// Parses a date (see [`parse_when`]) and keeps its month.
    ///
    /// # Errors
    /// When the text is none of the forms `parse_when` reads.
    pub fn parse_date(s: &str) -> Result<Self, DateError> {
        parse_when(s).map(|w| w.month)
    }
}

/// Why a date field was refused: it names every form a date may take.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "not a date: '{0}' (expected YYYY-MM-DD, DD/MM/YYYY or D/M/YYYY between 1970 and 2199, optionally followed by a time HH:MM, or a month YYYY-MM)"
)]
pub struct DateError(pub String);

/// When an incident happened, as precisely as its source says: always the month, the day
/// where the source gives a date (days since 1970-01-01), the minute of the day where it
/// gives a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct When {
    pub month: Month,
    pub day: Option<i32>,
    pub minute: Option<u16>,
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian; Howard Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let y = year - i32::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day number (days since 1970-01-01).
pub fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i32::from(m <= 2), m, d)
}

/// Days in a month of a year.
pub fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses a time of day `HH:MM` or `HH:MM:SS` (seconds dropped) into minutes since
/// midnight; `None` when it is not one.
pub fn parse_time(s: &str) -> Option<u16> {
    let b = s.trim().as_bytes();
    let two = |i: usize| -> Option<u16> {
        let (a, c) = (*b.get(i)?, *b.get(i + 1)?);
        (a.is_ascii_digit() && c.is_ascii_digit())
            .then(|| u16::from(a - b'0') * 10 + u16::from(c - b'0'))
    };
    // One-digit hours too ("8:05"), as spreadsheets write them.
    let (h, rest) = match b {
        [d, b':', ..] if d.is_ascii_digit() => (u16::from(d - b'0'), 2),
        _ => (two(0)?, 3),
    };
    if b.get(rest - 1) != Some(&b':') {
        return None;
    }
    let m = two(rest)?;
    let end = rest + 2;
    let ok_tail = match &b[end..] {
        [] => true,
        [b':', s1, s2, tail @ ..] => {
            s1.is_ascii_digit() && s2.is_ascii_digit() && (tail.is_empty() || tail[0] == b'.')
        }
        _ => false,
    };
    (h < 24 && m < 60 && ok_tail).then_some(h * 60 + m)
}

/// Parses a date as written by the sources: `YYYY-MM-DD` (ISO, optionally `T` or a space
/// and a time), `DD/MM/YYYY` (STATS19), `D/M/YYYY` (a STATS19 file saved through a
/// spreadsheet: `4/1/2015` is 4 January 2015; optionally a space and a time), or a bare
/// month `YYYY-MM` (no day).
///
/// # Errors
/// When the text is none of those forms or names no real day.
pub fn parse_when(s: &str) -> Result<When, DateError> {
    let s = s.trim();
    let bad = || DateError(s.to_owned());
    let b = s.as_bytes();
    // Digits by byte, so no slice can split a multi-byte character.
    let num = |d: &[u8]| -> Result<u32, DateError> {
        if d.is_empty() {
            return Err(bad());
        }
        d.iter().try_fold(0u32, |acc, &c| {
            if c.is_ascii_digit() {
                Ok(acc * 10 + u32::from(c - b'0'))
            } else {
                Err(bad())
            }
        })
    };
    let day_of = |y: u32, m: u32, d: u32| -> Result<(Month, i32), DateError> {
        let month = Month::new(y, m).map_err(|_| bad())?;
        if d == 0 || d > days_in_month(y, m) {
            return Err(bad());
        }
        Ok((month, days_from_civil(y as i32, m, d)))
    };
    // The time after a date, if any: `None` for no time, an error for a tail that is
    // not one.
    let time_after = |tail: &[u8]| -> Result<Option<u16>, DateError> {
        match tail {
            [] => Ok(None),
            [b' ' | b'T', rest @ ..] => {
                let t = std::str::from_utf8(rest).map_err(|_| bad())?;
                Ok(
                    parse_time(t.get(..t.len().min(8)).unwrap_or(t)).or_else(|| {
                        // ISO times may carry fractions and offsets; keep HH:MM.
                        t.get(..5).and_then(parse_time)
                    }),
                )
            }
            _ => Err(bad()),
        }
    };
    if let Some(slash) = b.iter().position(|&c| c == b'/') {
        let rest = &b[slash + 1..];
        let slash2 = rest.iter().position(|&c| c == b'/').ok_or_else(bad)?;
        let (dd, mm) = (&b[..slash], &rest[..slash2]);
        let after = &rest[slash2 + 1..];
        let year_len = after.iter().take_while(|c| c.is_ascii_digit()).count();
        if dd.len() > 2 || mm.len() > 2 || year_len != 4 {
            return Err(bad());
        }
        let (d, m, y) = (num(dd)?, num(mm)?, num(&after[..4])?);
        let (month, day) = day_of(y, m, d)?;
        let minute = time_after(&after[4..])?;
        return Ok(When {
            month,
            day: Some(day),
            minute,
        });
    }
    if b.len() >= 10 && b[4] == b'-' && b[7] == b'-' {
        let (y, m, d) = (num(&b[..4])?, num(&b[5..7])?, num(&b[8..10])?);
        let (month, day) = day_of(y, m, d)?;
        let minute = time_after(&b[10..])?;
        return Ok(When {
            month,
            day: Some(day),
            minute,
        });
    }
    let month = Month::parse_bytes(b).map_err(|_| bad())?;
    Ok(When {
        month,
        day: None,
        minute: None,
    })
}

impl FromStr for Month {
    type Err = MonthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Month::parse_bytes(s.trim().as_bytes())
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

macro_rules! crime_types {
    ($( $variant:ident = $code:expr, $label:expr, $slug:expr; )*) => {
        /// Incident category: the 14 police.uk crime types, road collisions (STATS19), the
        /// sensitive categories force extracts carry that police.uk merges away, and
        /// STATS19 road casualties by road-user group.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum CrimeType { $( $variant = $code, )* }

        impl CrimeType {
            /// Every category, in code order.
            pub const ALL: &'static [CrimeType] = &[$( CrimeType::$variant, )*];

            /// The label as police.uk (or the data source) writes it.
            pub fn label(self) -> &'static str {
                match self { $( CrimeType::$variant => $label, )* }
            }

            /// A short lower-case name for command lines and URLs.
            pub fn slug(self) -> &'static str {
                match self { $( CrimeType::$variant => $slug, )* }
            }

            /// The category with this code, if any.
            pub fn from_code(code: u8) -> Option<Self> {
                match code { $( $code => Some(CrimeType::$variant), )* _ => None }
            }

            /// Exact match on the police.uk label (hot path: no allocation).
            pub fn from_label_bytes(b: &[u8]) -> Option<Self> {
                match b { $( x if x == $label.as_bytes() => Some(CrimeType::$variant), )* _ => None }
            }
        }
    };
}

crime_types! {
    AntiSocialBehaviour = 0, "Anti-social behaviour", "anti-social-behaviour";
    BicycleTheft = 1, "Bicycle theft", "bicycle-theft";
    Burglary = 2, "Burglary", "burglary";
    CriminalDamageArson = 3, "Criminal damage and arson", "criminal-damage-arson";
    Drugs = 4, "Drugs", "drugs";
    OtherTheft = 5, "Other theft", "other-theft";
    PossessionOfWeapons = 6, "Possession of weapons", "possession-of-weapons";
    PublicOrder = 7, "Public order", "public-order";
    Robbery = 8, "Robbery", "robbery";
    Shoplifting = 9, "Shoplifting", "shoplifting";
    TheftFromThePerson = 10, "Theft from the person", "theft-from-the-person";
    VehicleCrime = 11, "Vehicle crime", "vehicle-crime";
    ViolenceAndSexualOffences = 12, "Violence and sexual offences", "violent-crime";
    OtherCrime = 13, "Other crime", "other-crime";
    RoadCollision = 14, "Road collision", "road-collision";
    SexualOffences = 15, "Sexual offences", "sexual-offences";
    DomesticAbuse = 16, "Domestic abuse", "domestic-abuse";
    Exploitation = 17, "Exploitation", "exploitation";
    RoadCasualtyPedestrian = 18, "Road casualty: pedestrian", "casualty-pedestrian";
    RoadCasualtyCyclist = 19, "Road casualty: cyclist", "casualty-cyclist";
    RoadCasualtyMotorcyclist = 20, "Road casualty: motorcyclist", "casualty-motorcyclist";
    RoadCasualtyCarOccupant = 21, "Road casualty: car occupant", "casualty-car-occupant";
    RoadCasualtyOther = 22, "Road casualty: other road user", "casualty-other";
}

impl CrimeType {
    /// Number of categories (codes are 0..COUNT).
    pub const COUNT: usize = Self::ALL.len();

    /// The 14 police.uk street-crime categories.
    pub fn police_uk() -> &'static [CrimeType] {
        &Self::ALL[..14]
    }

    /// STATS19 casualties by road-user group (each casualty of a collision, at its
    /// location, with the casualty severity): not incidents of their own, so totals over
    /// "every type" should leave them out or count them alone.
    pub fn road_casualties() -> &'static [CrimeType] {
        &Self::ALL[18..23]
    }

    /// True for the road casualty types.
    pub fn is_road_casualty(self) -> bool {
        Self::road_casualties().contains(&self)
    }

    /// Lenient match for user input and generic CSVs: label, slug, or police.uk's older
    /// names, ignoring case and surrounding space.
    pub fn parse_lenient(s: &str) -> Option<Self> {
        let t = s.trim();
        if let Some(c) = Self::ALL
            .iter()
            .find(|c| c.label().eq_ignore_ascii_case(t) || c.slug().eq_ignore_ascii_case(t))
        {
            return Some(*c);
        }
        let lower = t.to_ascii_lowercase();
        Some(match lower.as_str() {
            "asb" | "anti social behaviour" | "antisocial behaviour" => Self::AntiSocialBehaviour,
            "violent crime" | "violence" | "violence against the person" => {
                Self::ViolenceAndSexualOffences
            }
            "criminal damage" | "arson" | "criminal-damage" => Self::CriminalDamageArson,
            "weapons" | "knife crime" | "possession of a weapon" => Self::PossessionOfWeapons,
            "vehicle" | "vehicle offences" => Self::VehicleCrime,
            "road collision" | "collision" | "rtc" => Self::RoadCollision,
            "other" => Self::OtherCrime,
            _ => return None,
        })
    }
}

impl FromStr for CrimeType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CrimeType::parse_lenient(s).ok_or_else(|| {
            let known: Vec<&str> = CrimeType::ALL.iter().map(|c| c.slug()).collect();
            format!("unknown crime type '{s}' (known: {})", known.join(", "))
        })
    }
}

impl fmt::Display for CrimeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A set of crime types as a bit mask (fast filter in the aggregation scan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TypeSet(u32);

/// The bits of the five road casualty types.
const CASUALTY_BITS: u32 = (1u32 << CrimeType::RoadCasualtyPedestrian as u8)
    | (1u32 << CrimeType::RoadCasualtyCyclist as u8)
    | (1u32 << CrimeType::RoadCasualtyMotorcyclist as u8)
    | (1u32 << CrimeType::RoadCasualtyCarOccupant as u8)
    | (1u32 << CrimeType::RoadCasualtyOther as u8);

impl TypeSet {
    pub const fn all() -> Self {
        TypeSet((1u32 << CrimeType::COUNT) - 1)
    }
    pub const fn empty() -> Self {
        TypeSet(0)
    }
    /// Road collisions and the road casualty types (codes 14 and 18-22).
    pub const fn road_safety() -> Self {
        TypeSet((1u32 << CrimeType::RoadCollision as u8) | CASUALTY_BITS)
    }
    /// Every type but the road casualties: what "all types" counts (a casualty is a
    /// person hurt in a collision, already counted as the collision).
    pub const fn incidents() -> Self {
        TypeSet(((1u32 << CrimeType::COUNT) - 1) & !CASUALTY_BITS)
    }
    pub fn with(self, t: CrimeType) -> Self {
        TypeSet(self.0 | (1 << t as u8))
    }
    #[inline]
    pub fn contains_code(self, code: u8) -> bool {
        code < 32 && self.0 & (1 << code) != 0
    }
    pub fn contains(self, t: CrimeType) -> bool {
        self.contains_code(t as u8)
    }
    pub fn iter(self) -> impl Iterator<Item = CrimeType> {
        CrimeType::ALL
            .iter()
            .copied()
            .filter(move |t| self.contains(*t))
    }
    pub fn bits(self) -> u32 {
        self.0
    }
    /// The set with these bits (bits beyond the known types dropped).
    pub fn from_bits(bits: u32) -> Self {
        TypeSet(bits & Self::all().0)
    }
}

impl FromIterator<CrimeType> for TypeSet {
    fn from_iter<I: IntoIterator<Item = CrimeType>>(iter: I) -> Self {
        iter.into_iter().fold(TypeSet::empty(), TypeSet::with)
    }
}

/// STATS19 collision severity (0 where the source has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum Severity {
    #[default]
    None = 0,
    Fatal = 1,
    Serious = 2,
    Slight = 3,
}

impl Severity {
    /// Every severity, in code order.
    pub const ALL: [Severity; 4] = [
        Severity::None,
        Severity::Fatal,
        Severity::Serious,
        Severity::Slight,
    ];

    pub fn from_code(code: u8) -> Self {
        match code {
            1 => Severity::Fatal,
            2 => Severity::Serious,
            3 => Severity::Slight,
            _ => Severity::None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Severity::None => "",
            Severity::Fatal => "Fatal",
            Severity::Serious => "Serious",
            Severity::Slight => "Slight",
        }
    }

    /// A short lower-case name for command lines and URLs (`unknown` for a collision whose
    /// source left the severity blank).
    pub fn slug(self) -> &'static str {
        match self {
            Severity::None => "unknown",
            Severity::Fatal => "fatal",
            Severity::Serious => "serious",
            Severity::Slight => "slight",
        }
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Severity::ALL
            .into_iter()
            .find(|v| v.slug().eq_ignore_ascii_case(t) || v.label().eq_ignore_ascii_case(t))
            .filter(|_| !t.is_empty())
            .ok_or_else(|| {
                format!("unknown severity '{s}' (known: fatal, serious, slight, unknown)")
            })
    }
}

/// A set of collision severities as a bit mask (bit = `Severity` code). It narrows road
/// collisions only: every other type has no severity and is never dropped by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeveritySet(u8);

impl SeveritySet {
    pub const fn all() -> Self {
        SeveritySet(0b1111)
    }
    pub const fn empty() -> Self {
        SeveritySet(0)
    }
    pub fn with(self, s: Severity) -> Self {
        SeveritySet(self.0 | (1 << s as u8))
    }
    /// Codes outside 0..=3 count as `None` (unknown), as `Severity::from_code` reads them.
    #[inline]
    pub fn contains_code(self, code: u8) -> bool {
        self.contains(Severity::from_code(code))
    }
    pub fn contains(self, s: Severity) -> bool {
        self.0 & (1 << s as u8) != 0
    }
    pub fn is_all(self) -> bool {
        self == Self::all()
    }
    pub fn bits(self) -> u8 {
        self.0
    }
}

impl FromIterator<Severity> for SeveritySet {
    fn from_iter<I: IntoIterator<Item = Severity>>(iter: I) -> Self {
        iter.into_iter()
            .fold(SeveritySet::empty(), SeveritySet::with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_round_trips_and_rejects_nonsense() {
        let m: Month = "2023-07".parse().unwrap();
        assert_eq!((m.year(), m.month()), (2023, 7));
        assert_eq!(m.to_string(), "2023-07");
        assert_eq!(m.succ().to_string(), "2023-08");
        for bad in [
            "2023-13", "2023-00", "23-07", "2023/07", "", "1969-12", "abcd-ef",
        ] {
            assert!(bad.parse::<Month>().is_err(), "{bad}");
        }
        assert_eq!(
            Month::parse_date("31/01/2022").unwrap().to_string(),
            "2022-01"
        );
        assert_eq!(
            Month::parse_date("2022-03-04").unwrap().to_string(),
            "2022-03"
        );
        assert!(Month::parse_date("32/01/2022").is_err());
        assert_eq!(
            Month::parse_date("2022-03-04T10:00:00Z")
                .unwrap()
                .to_string(),
            "2022-03"
        );
        for bad in [
            "1é/01/2022",
            "01/é1/202",
            "2022-03-0é",
            "2022-03-04x",
            "ab/cd/efgh",
        ] {
            assert!(Month::parse_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_in_every_form_the_sources_write() {
        let when = |s: &str| parse_when(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let day = |y, m, d| Some(days_from_civil(y, m, d));
        // Spreadsheet-saved STATS19: day first, no leading zeros.
        let w = when("4/1/2015");
        assert_eq!(
            (w.month.to_string(), w.day, w.minute),
            ("2015-01".into(), day(2015, 1, 4), None)
        );
        assert_eq!(when("04/01/2015").day, day(2015, 1, 4));
        assert_eq!(when("2015-01-04").day, day(2015, 1, 4));
        assert_eq!(when("31/12/2024").month.to_string(), "2024-12");
        assert_eq!(when("29/2/2024").day, day(2024, 2, 29));
        assert_eq!(when("4/1/2015 17:05").minute, Some(17 * 60 + 5));
        assert_eq!(when("04/01/2015 00:00:00").minute, Some(0));
        assert_eq!(when("2022-03-04T10:20:00Z").minute, Some(620));
        assert_eq!(when("2022-03-04 08:15").minute, Some(495));
        let m = when("2023-07");
        assert_eq!((m.day, m.minute), (None, None));
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2015, 1, 4), 16_439);
        for d in [-1, 0, 59, 60, 16_439, 19_782, 84_000] {
            let (y, mo, da) = civil_from_days(d);
            assert_eq!(days_from_civil(y, mo, da), d);
        }
        for bad in [
            "29/2/2023",
            "31/04/2024",
            "0/1/2015",
            "4/13/2015",
            "4/1/15",
            "123/1/2015",
            "4/1/2015x",
            "2023-02-30",
            "4-1-2015",
            "1/1/1969",
            "",
        ] {
            let e = parse_when(bad).expect_err(bad).to_string();
            assert!(
                e.contains("expected YYYY-MM-DD, DD/MM/YYYY or D/M/YYYY"),
                "{e}"
            );
            assert!(!e.starts_with("not a month"), "{e}");
        }
        assert_eq!(parse_time("08:05"), Some(485));
        assert_eq!(parse_time("8:05"), Some(485));
        assert_eq!(parse_time("23:59:59"), Some(1439));
        for bad in ["24:00", "12:60", "1205", "", "12:5", "ab:cd"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn crime_type_codes_labels_and_slugs_are_consistent() {
        for (i, c) in CrimeType::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
            assert_eq!(CrimeType::from_code(i as u8), Some(*c));
            assert_eq!(CrimeType::from_label_bytes(c.label().as_bytes()), Some(*c));
            assert_eq!(c.slug().parse::<CrimeType>(), Ok(*c));
        }
        assert_eq!(CrimeType::police_uk().len(), 14);
        assert_eq!(CrimeType::road_casualties().len(), 5);
        assert!(
            CrimeType::road_casualties()
                .iter()
                .all(|c| c.is_road_casualty() && c.label().starts_with("Road casualty: "))
        );
        assert!(!CrimeType::RoadCollision.is_road_casualty());
        assert!("nonsense".parse::<CrimeType>().is_err());
        let s: TypeSet = [CrimeType::Drugs, CrimeType::Burglary]
            .into_iter()
            .collect();
        assert!(s.contains(CrimeType::Drugs) && !s.contains(CrimeType::Robbery));
        assert_eq!(TypeSet::all().iter().count(), CrimeType::COUNT);
    }
}
