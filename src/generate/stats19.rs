//! DfT STATS19 road collisions, one CSV per calendar year, in the vintage DfT used for
//! that year: `accident` files and column names before 2023, `collision` ones after (plus
//! the `enhanced_severity_collision` column), and from 2024 the 44-column file; on
//! request the casualty file of each year, joined to its collisions. Missing coordinates are written the three
//! ways real files do: empty, `-1` and `NULL`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use rand::Rng;
use rayon::prelude::*;

use super::layout::Layout;
use super::{
    GenerateError, GenerateOptions, STREAM_STATS19_CASUALTIES, STREAM_STATS19_YEAR, apportion,
    month_at, point_in_disc, stream_rng,
};

/// First year DfT published under the "collision" names.
pub(super) const FIRST_NEW_VINTAGE_YEAR: u32 = 2023;

const COMMON_COLUMNS: &str = "location_easting_osgr,location_northing_osgr,longitude,\
latitude,police_force";
const COMMON_TAIL: &str = "number_of_vehicles,number_of_casualties,date,day_of_week,time,\
local_authority_district,local_authority_ons_district,local_authority_highway,\
first_road_class,first_road_number,road_type,speed_limit,junction_detail,junction_control,\
second_road_class,second_road_number,pedestrian_crossing_human_control,\
pedestrian_crossing_physical_facilities,light_conditions,weather_conditions,\
road_surface_conditions,special_conditions_at_site,carriageway_hazards,urban_or_rural_area,\
did_police_officer_attend_scene_of_accident,trunk_road_flag,lsoa_of_accident_location";

/// First year of the 44-column collision file (`*_historic` columns,
/// `local_authority_highway_current`, `collision_injury_based`,
/// `collision_adjusted_severity_*`).
pub(super) const FIRST_44_COLUMN_YEAR: u32 = 2024;

/// The 2024 collision header, in DfT's order.
const HEADER_2024: &str = "collision_index,collision_year,collision_ref_no,\
location_easting_osgr,location_northing_osgr,longitude,latitude,police_force,\
collision_severity,number_of_vehicles,number_of_casualties,date,day_of_week,time,\
local_authority_district,local_authority_ons_district,local_authority_highway,\
local_authority_highway_current,first_road_class,first_road_number,road_type,speed_limit,\
junction_detail_historic,junction_detail,junction_control,second_road_class,\
second_road_number,pedestrian_crossing_human_control_historic,\
pedestrian_crossing_physical_facilities_historic,pedestrian_crossing,light_conditions,\
weather_conditions,road_surface_conditions,special_conditions_at_site,\
carriageway_hazards_historic,carriageway_hazards,urban_or_rural_area,\
did_police_officer_attend_scene_of_accident,trunk_road_flag,lsoa_of_accident_location,\
enhanced_severity_collision,collision_injury_based,collision_adjusted_severity_serious,\
collision_adjusted_severity_slight";

/// The 37 fields of a 2023-layout row rearranged into the 44 of the 2024 layout: the
/// `_historic` columns repeat the code, the new combined `pedestrian_crossing` takes the
/// physical facility, and Lancashire records by injury (CRASH), so the adjusted
/// severities are the recorded ones.
fn to_2024(f: &[&str]) -> String {
    let (severity, physical) = (f[8], f[26]);
    let (serious, slight) = match severity {
        "2" => ("1", "0"),
        "3" => ("0", "1"),
        _ => ("0", "0"),
    };
    let mut out: Vec<&str> = Vec::with_capacity(44);
    out.extend(&f[..17]); // .. local_authority_highway
    out.push(f[16]); // local_authority_highway_current
    out.extend(&f[17..21]); // first_road_class .. speed_limit
    out.push(f[21]); // junction_detail_historic
    out.extend(&f[21..25]); // junction_detail .. second_road_number
    out.push(f[25]); // pedestrian_crossing_human_control_historic
    out.push(physical); // pedestrian_crossing_physical_facilities_historic
    out.push(physical); // pedestrian_crossing
    out.extend(&f[27..31]); // light .. special_conditions_at_site
    out.push(f[31]); // carriageway_hazards_historic
    out.extend(&f[31..37]); // carriageway_hazards .. enhanced_severity_collision
    out.extend(["1", serious, slight]);
    out.join(",")
}

/// The column header of a year's file.
pub(super) fn header(year: u32) -> String {
    if year >= FIRST_44_COLUMN_YEAR {
        format!("{HEADER_2024}\n")
    } else if year < FIRST_NEW_VINTAGE_YEAR {
        format!(
            "accident_index,accident_year,accident_reference,{COMMON_COLUMNS},\
             accident_severity,{COMMON_TAIL}\n"
        )
    } else {
        format!(
            "collision_index,collision_year,collision_ref_no,{COMMON_COLUMNS},\
             collision_severity,{COMMON_TAIL},enhanced_severity_collision\n"
        )
    }
}

/// The file name of a year's file.
pub(super) fn file_name(year: u32) -> String {
    let kind = if year < FIRST_NEW_VINTAGE_YEAR {
        "accident"
    } else {
        "collision"
    };
    format!("dft-road-casualty-statistics-{kind}-{year}.csv")
}

const POLICE_FORCE: u32 = 4;
const MISSING_SHARE: f64 = 0.005;
const JITTER_M: f64 = 50.0;
const LANCASHIRE_COUNTY: &str = "E10000017";

/// One collision before its remaining columns are drawn.
struct Collision {
    month: u32,
    day: u32,
    minute_of_day: u32,
    lon: f64,
    lat: f64,
    lsoa: u32,
}

pub(super) fn write(
    opts: &GenerateOptions,
    layout: &Layout,
) -> Result<(u64, Vec<PathBuf>), GenerateError> {
    // Calendar years covered, with the months of each.
    let mut years: Vec<(u32, Vec<u32>)> = Vec::new();
    for i in 0..opts.months {
        let m = month_at(opts, i);
        match years.last_mut() {
            Some((y, ms)) if *y == m.year() => ms.push(m.month()),
            _ => years.push((m.year(), vec![m.month()])),
        }
    }
    let weights: Vec<f64> = years.iter().map(|(_, ms)| ms.len() as f64).collect();
    let counts = apportion(opts.stats19_rows, &weights);
    let dir = opts.out.join("stats19");
    std::fs::create_dir_all(&dir).map_err(GenerateError::io(&dir))?;
    // DfT's old numeric district codes: stand-ins numbered in ONS code order.
    let lad_codes: BTreeSet<&str> = layout.lsoas.iter().map(|l| l.lad_code.as_str()).collect();
    let lad_codes: Vec<&str> = lad_codes.into_iter().collect();

    let files = years
        .par_iter()
        .zip(counts.par_iter())
        .map(|((year, months), &rows)| {
            let path = dir.join(file_name(*year));
            let mut file = File::create(&path).map_err(GenerateError::io(&path))?;
            write_year(
                &mut file, *year, months, rows, layout, &lad_codes, opts.seed,
            )
            .map_err(GenerateError::io(&path))?;
            Ok(path)
        })
        .collect::<Result<Vec<_>, GenerateError>>()?;
    Ok((counts.iter().sum(), files))
}

/// What the casualty file of a year needs to know about each collision.
pub(super) struct CollisionFacts {
    index: String,
    severity: i32,
    vehicles: i32,
    casualties: i32,
}

/// The file name of a year's casualty file.
pub(super) fn casualty_file_name(year: u32) -> String {
    format!("dft-road-casualty-statistics-casualty-{year}.csv")
}

/// The casualty header of a year: the index columns of the year's vintage, and from 2024
/// the injury-based flag and the adjusted severity probabilities.
pub(super) fn casualty_header(year: u32) -> String {
    let kind = if year < FIRST_NEW_VINTAGE_YEAR {
        "accident_index,accident_year,accident_reference"
    } else {
        "collision_index,collision_year,collision_ref_no"
    };
    let tail = if year >= FIRST_44_COLUMN_YEAR {
        ",casualty_injury_based,casualty_adjusted_severity_serious,casualty_adjusted_severity_slight"
    } else {
        ""
    };
    format!(
        "{kind},vehicle_reference,casualty_reference,casualty_class,sex_of_casualty,\
         age_of_casualty,age_band_of_casualty,casualty_severity,casualty_type,\
         casualty_imd_decile{tail}\n"
    )
}

/// DfT's age band of an age in years.
fn age_band(age: i32) -> i32 {
    match age {
        0..=5 => 1,
        6..=10 => 2,
        11..=15 => 3,
        16..=20 => 4,
        21..=25 => 5,
        26..=35 => 6,
        36..=45 => 7,
        46..=55 => 8,
        56..=65 => 9,
        66..=75 => 10,
        _ => 11,
    }
}

/// Writes a casualty file per year beside the collision files (`stats19/`), for the
/// collisions `write` makes with the same options: each collision's
/// `number_of_casualties` casualties, the first with the collision's severity (a
/// collision is as severe as its worst casualty), the others that or milder.
pub(super) fn write_casualties(
    opts: &GenerateOptions,
    layout: &Layout,
) -> Result<(u64, Vec<PathBuf>), GenerateError> {
    let mut years: Vec<(u32, Vec<u32>)> = Vec::new();
    for i in 0..opts.months {
        let m = month_at(opts, i);
        match years.last_mut() {
            Some((y, ms)) if *y == m.year() => ms.push(m.month()),
            _ => years.push((m.year(), vec![m.month()])),
        }
    }
    let weights: Vec<f64> = years.iter().map(|(_, ms)| ms.len() as f64).collect();
    let counts = apportion(opts.stats19_rows, &weights);
    let dir = opts.out.join("stats19");
    std::fs::create_dir_all(&dir).map_err(GenerateError::io(&dir))?;
    let lad_codes: BTreeSet<&str> = layout.lsoas.iter().map(|l| l.lad_code.as_str()).collect();
    let lad_codes: Vec<&str> = lad_codes.into_iter().collect();
    let mut total = 0;
    let mut files = Vec::new();
    for ((year, months), &rows) in years.iter().zip(&counts) {
        let path = dir.join(casualty_file_name(*year));
        let facts = write_year(
            &mut io::sink(),
            *year,
            months,
            rows,
            layout,
            &lad_codes,
            opts.seed,
        )
        .map_err(GenerateError::io(&path))?;
        let mut rng = stream_rng(opts.seed, STREAM_STATS19_CASUALTIES + u64::from(*year));
        let mut out = casualty_header(*year);
        for c in &facts {
            let reference = &c.index[4..];
            for k in 0..c.casualties {
                let severity = if k == 0 {
                    c.severity
                } else {
                    match c.severity {
                        1 => pick(&mut rng, &[(1, 1.0), (2, 3.0), (3, 6.0)]),
                        2 => pick(&mut rng, &[(2, 3.0), (3, 7.0)]),
                        _ => 3,
                    }
                };
                let ctype = pick(
                    &mut rng,
                    &[
                        (9, 58.0),
                        (0, 13.0),
                        (1, 10.0),
                        (3, 3.0),
                        (5, 3.0),
                        (2, 1.0),
                        (4, 1.0),
                        (8, 2.0),
                        (11, 2.0),
                        (19, 4.0),
                        (90, 3.0),
                    ],
                );
                let class = match ctype {
                    0 => 3,
                    _ if k == 0 => 1,
                    _ => pick(&mut rng, &[(1, 1.0), (2, 2.0)]),
                };
                let vehicle = rng.random_range(1..=c.vehicles.max(1));
                let sex = pick(&mut rng, &[(1, 55.0), (2, 44.0), (-1, 1.0)]);
                let age = if rng.random_bool(0.02) {
                    -1
                } else if rng.random_bool(0.11) {
                    rng.random_range(0..16)
                } else {
                    rng.random_range(16..90)
                };
                let band = if age < 0 { -1 } else { age_band(age) };
                let imd = rng.random_range(1..=10);
                let _ = write!(
                    out,
                    "{},{year},{reference},{vehicle},{},{class},{sex},{age},{band},{severity},{ctype},{imd}",
                    c.index,
                    k + 1
                );
                if *year >= FIRST_44_COLUMN_YEAR {
                    // Injury-based recording (CRASH): the adjusted severity is the recorded one.
                    let (serious, slight) = match severity {
                        2 => (1, 0),
                        3 => (0, 1),
                        _ => (0, 0),
                    };
                    let _ = write!(out, ",1,{serious},{slight}");
                }
                out.push('\n');
                total += 1;
            }
        }
        std::fs::write(&path, out).map_err(GenerateError::io(&path))?;
        files.push(path);
    }
    Ok((total, files))
}

/// Collisions per hour of day: rush hours and afternoons busiest.
const HOUR_WEIGHTS: [f64; 24] = [
    1.5, 1.0, 0.8, 0.6, 0.6, 1.0, 2.0, 4.5, 6.5, 4.5, 4.0, 4.5, 5.0, 5.5, 6.0, 7.0, 7.5, 7.5, 6.0,
    4.5, 3.5, 3.0, 2.5, 2.0,
];

/// Writes the file of one year.
fn write_year<W: Write>(
    w: &mut W,
    year: u32,
    months: &[u32],
    rows: u64,
    layout: &Layout,
    lad_codes: &[&str],
    seed: u64,
) -> io::Result<Vec<CollisionFacts>> {
    let mut rng = stream_rng(seed, STREAM_STATS19_YEAR + u64::from(year));
    let hours = super::Weighted::new(HOUR_WEIGHTS);
    let month_days = super::Weighted::new(months.iter().map(|&m| f64::from(days_in(year, m))));
    let mut collisions: Vec<Collision> = (0..rows)
        .map(|_| {
            let month = months[month_days.sample(&mut rng)];
            let day = rng.random_range(1..=days_in(year, month));
            let mut minute = rng.random_range(0..60);
            if rng.random_bool(0.4) {
                minute -= minute % 5; // reporting officers round times
            }
            let minute_of_day = hours.sample(&mut rng) as u32 * 60 + minute;
            let lsoa = rng.random_range(0..layout.lsoa_points.len());
            let point = &layout.points[rng.random_range(layout.lsoa_points[lsoa].clone()) as usize];
            let (lon, lat) = point_in_disc(&mut rng, point.lon, point.lat, JITTER_M);
            Collision {
                month,
                day,
                minute_of_day,
                lon,
                lat,
                lsoa: lsoa as u32,
            }
        })
        .collect();
    // References run in date order, as a force numbers its reports.
    collisions.sort_by_key(|c| (c.month, c.day, c.minute_of_day));

    let new = year >= FIRST_NEW_VINTAGE_YEAR;
    let mut out = header(year);
    let mut facts = Vec::with_capacity(collisions.len());
    for (serial, c) in collisions.iter().enumerate() {
        let row_start = out.len();
        let lsoa = &layout.lsoas[c.lsoa as usize];
        let reference = format!("{POLICE_FORCE:02}{:07}", serial + 1);
        let _ = write!(out, "{year}{reference},{year},{reference},");
        let bng = lonlat_bng::convert_osgb36(c.lon, c.lat).ok();
        match bng {
            Some((e, n)) if !rng.random_bool(MISSING_SHARE) => {
                let _ = write!(out, "{e:.0},{n:.0},{:.6},{:.6},", c.lon, c.lat);
            }
            _ => {
                let missing = ["", "-1", "NULL"][rng.random_range(0..3)];
                let _ = write!(out, "{missing},{missing},{missing},{missing},");
            }
        }
        let severity = pick(&mut rng, &[(1, 1.5), (2, 22.0), (3, 76.5)]);
        let vehicles = pick(&mut rng, &[(1, 30.0), (2, 58.0), (3, 9.0), (4, 3.0)]);
        let casualties = pick(&mut rng, &[(1, 78.0), (2, 15.0), (3, 5.0), (4, 2.0)]);
        let hour = c.minute_of_day / 60;
        let _ = write!(
            out,
            "{POLICE_FORCE},{severity},{vehicles},{casualties},{:02}/{:02}/{year},{},{hour:02}:{:02},",
            c.day,
            c.month,
            day_of_week(year, c.month, c.day),
            c.minute_of_day % 60
        );
        let district = if new {
            -1
        } else {
            340 + lad_codes.partition_point(|&x| x < lsoa.lad_code.as_str()) as i32
        };
        let highway = if lsoa.lad_code.starts_with("E06") {
            lsoa.lad_code.as_str()
        } else {
            LANCASHIRE_COUNTY
        };
        let _ = write!(out, "{district},{},{highway},", lsoa.lad_code);
        road_columns(&mut out, &mut rng, lsoa.area_km2 < 2.0, hour);
        out.push_str(&lsoa.code);
        if new {
            let enhanced = match severity {
                1 => 1,
                2 => pick(&mut rng, &[(5, 1.0), (6, 2.0), (7, 3.0), (-1, 0.5)]),
                _ => pick(&mut rng, &[(3, 9.0), (-1, 1.0)]),
            };
            let _ = write!(out, ",{enhanced}");
        }
        if year >= FIRST_44_COLUMN_YEAR {
            let row = to_2024(&out[row_start..].split(',').collect::<Vec<_>>());
            out.truncate(row_start);
            out.push_str(&row);
        }
        out.push('\n');
        facts.push(CollisionFacts {
            index: format!("{year}{reference}"),
            severity,
            vehicles,
            casualties,
        });
        if out.len() >= 1 << 20 {
            w.write_all(out.as_bytes())?;
            out.clear();
        }
    }
    w.write_all(out.as_bytes())?;
    Ok(facts)
}

/// `first_road_class` through `trunk_road_flag`, with a trailing comma.
fn road_columns<R: Rng>(out: &mut String, rng: &mut R, urban: bool, hour: u32) {
    let class = pick(
        rng,
        &[
            (1, 3.0),
            (2, 0.5),
            (3, 45.0),
            (4, 10.0),
            (5, 8.0),
            (6, 33.5),
        ],
    );
    let number = road_number(rng, class);
    let road_type = pick(
        rng,
        &[(1, 7.0), (2, 2.0), (3, 14.0), (6, 73.0), (7, 1.0), (9, 3.0)],
    );
    let speed = if urban {
        pick(
            rng,
            &[
                (20, 15.0),
                (30, 70.0),
                (40, 10.0),
                (50, 3.0),
                (60, 1.0),
                (70, 1.0),
            ],
        )
    } else {
        pick(
            rng,
            &[(30, 25.0), (40, 15.0), (50, 10.0), (60, 40.0), (70, 10.0)],
        )
    };
    let junction = pick(
        rng,
        &[
            (0, 40.0),
            (1, 8.0),
            (2, 2.0),
            (3, 30.0),
            (5, 2.0),
            (6, 10.0),
            (7, 2.0),
            (8, 4.0),
            (9, 2.0),
        ],
    );
    let (control, class2, number2) = if junction == 0 {
        (-1, -1, -1)
    } else {
        let control = pick(rng, &[(1, 0.5), (2, 20.0), (3, 1.5), (4, 76.0), (9, 2.0)]);
        let class2 = pick(rng, &[(3, 25.0), (4, 10.0), (5, 10.0), (6, 55.0)]);
        (control, class2, road_number(rng, class2))
    };
    let human = pick(rng, &[(0, 96.0), (1, 1.0), (2, 2.0), (-1, 1.0)]);
    let physical = pick(
        rng,
        &[(0, 84.0), (1, 3.0), (4, 2.0), (5, 7.0), (7, 1.0), (8, 3.0)],
    );
    let light = if (7..19).contains(&hour) {
        pick(rng, &[(1, 95.0), (4, 5.0)])
    } else {
        pick(rng, &[(1, 15.0), (4, 60.0), (5, 5.0), (6, 15.0), (7, 5.0)])
    };
    let weather = pick(
        rng,
        &[
            (1, 80.0),
            (2, 12.0),
            (3, 1.0),
            (4, 1.5),
            (5, 2.0),
            (6, 0.3),
            (7, 0.5),
            (8, 1.7),
            (9, 1.0),
        ],
    );
    let surface = match weather {
        2 | 5 => 2,
        3 | 6 => pick(rng, &[(3, 2.0), (4, 1.0)]),
        _ => pick(rng, &[(1, 85.0), (2, 12.0), (4, 2.0), (9, 1.0)]),
    };
    let special = pick(
        rng,
        &[(0, 97.0), (1, 0.5), (4, 1.0), (5, 0.5), (6, 0.5), (7, 0.5)],
    );
    let hazards = pick(rng, &[(0, 98.0), (2, 1.0), (7, 0.5), (9, 0.5)]);
    let area = if urban { 1 } else { 2 };
    let attended = pick(rng, &[(1, 75.0), (2, 20.0), (3, 5.0)]);
    let trunk = match class {
        1 | 2 => 1,
        3 => pick(rng, &[(1, 20.0), (2, 79.0), (-1, 1.0)]),
        _ => pick(rng, &[(2, 99.0), (-1, 1.0)]),
    };
    let _ = write!(
        out,
        "{class},{number},{road_type},{speed},{junction},{control},{class2},{number2},\
         {human},{physical},{light},{weather},{surface},{special},{hazards},{area},\
         {attended},{trunk},"
    );
}

/// A road number for a road class: Lancashire's motorways and A roads, else a B number,
/// else 0 (C and unclassified roads have none).
fn road_number<R: Rng>(rng: &mut R, class: i32) -> i32 {
    const MOTORWAYS: &[i32] = &[6, 55, 58, 61, 65];
    const A_ROADS: &[i32] = &[
        6, 49, 56, 59, 582, 583, 584, 585, 587, 588, 666, 675, 677, 682,
    ];
    match class {
        1 => MOTORWAYS[rng.random_range(0..MOTORWAYS.len())],
        2 => 601,
        3 => A_ROADS[rng.random_range(0..A_ROADS.len())],
        4 => rng.random_range(5200..6300),
        _ => 0,
    }
}

/// One value of a small weighted table (linear scan: tables have a handful of entries).
fn pick<R: Rng>(rng: &mut R, table: &[(i32, f64)]) -> i32 {
    let total: f64 = table.iter().map(|t| t.1).sum();
    let mut x = rng.random::<f64>() * total;
    for &(value, weight) in table {
        if x < weight {
            return value;
        }
        x -= weight;
    }
    table.last().map_or(0, |t| t.0)
}

fn days_in(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// DfT day of week: 1 = Sunday .. 7 = Saturday.
pub(super) fn day_of_week(year: u32, month: u32, day: u32) -> u32 {
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil), which was a Thursday.
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days + 4).rem_euclid(7) + 1) as u32
}
