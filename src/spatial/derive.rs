//! Derives the committed `boundaries/` from the ONS files: the LSOAs of both vintages
//! (2011 and 2021), the exact-fit lookup between them, the 14 districts dissolved from
//! their 2011 LSOAs, and the county outline.
//!
//! The dissolve is a polygon union (`geo::unary_union`). Generalised boundaries do not
//! always share vertices exactly, so a union can leave slivers (tiny separate parts) and
//! pin-holes (interior rings no LSOA fills). A hole is kept only when some LSOA of
//! another unit lies inside it (an enclave); a part is kept only when it holds the interior
//! point of one of its own LSOAs. The result is checked: valid polygons, and each
//! district's area equal to the sum of its LSOAs within 0.1%.

use std::collections::BTreeMap;
use std::path::Path;

use geo::{Contains, InteriorPoint, MultiPolygon, Point, Polygon, Validation, unary_union};

use super::boundaries::{BoundaryError, BoundarySet, area_m2};
use super::geojson_out::{push_multipolygon, push_num, push_str_lit};

/// Largest relative difference allowed between a district's area and the sum of its LSOAs.
pub const AREA_TOLERANCE: f64 = 0.001;

/// What the derivation did, per district.
#[derive(Debug, Clone)]
pub struct DistrictReport {
    pub code: String,
    pub name: String,
    pub lsoas: usize,
    pub area_km2: f64,
    pub lsoa_area_sum_km2: f64,
    pub parts: usize,
    pub holes_filled: usize,
    pub slivers_dropped: usize,
}

/// The ONS exact-fit lookup LSOA 2011 -> LSOA 2021 -> LAD 2022, as committed in
/// `boundaries/` (columns `LSOA11CD,LSOA11NM,CHGIND,LSOA21CD,LSOA21NM,LAD22CD,LAD22NM`).
pub const LOOKUP_FILE: &str = "lsoa11_lsoa21_lad22.csv";

/// One row of the lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupRow {
    pub lsoa11: String,
    /// `U` unchanged, `S` split, `M` merged, `X` redrawn (ONS CHGIND).
    pub change: char,
    pub lsoa21: String,
    pub district_code: String,
    pub district_name: String,
}

/// Parses the lookup CSV text; `path` names it in errors.
///
/// # Errors
/// A missing column, or a row with too few fields.
pub fn parse_lookup(text: &str, path: &Path) -> Result<Vec<LookupRow>, BoundaryError> {
    let bad = |line: usize, reason: String| BoundaryError::Invalid {
        path: path.to_owned(),
        reason: format!("line {line}: {reason}"),
    };
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, h)| {
            h.trim_start_matches('\u{feff}')
                .split(',')
                .map(str::trim)
                .collect()
        })
        .unwrap_or_default();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .ok_or_else(|| bad(1, format!("no column {name}")))
    };
    let (c11, cch, c21, cd, cdn) = (
        col("LSOA11CD")?,
        col("CHGIND")?,
        col("LSOA21CD")?,
        col("LAD22CD")?,
        col("LAD22NM")?,
    );
    let mut rows = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |c: usize| {
            f.get(c)
                .copied()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| bad(i + 1, format!("field {} missing", header[c])))
        };
        rows.push(LookupRow {
            lsoa11: get(c11)?.to_owned(),
            change: get(cch)?.chars().next().unwrap_or('U'),
            lsoa21: get(c21)?.to_owned(),
            district_code: get(cd)?.to_owned(),
            district_name: get(cdn)?.to_owned(),
        });
    }
    Ok(rows)
}

/// Reads the ONS LSOA 2011 and 2021 GeoJSON (properties `LSOA11CD`/`LSOA11NM` and
/// `LSOA21CD`/`LSOA21NM`) and the ONS lookup (which gives each LSOA its district), and
/// writes `lsoa11.geojson`, `lsoa21.geojson`, the lookup, `districts.geojson` (dissolved
/// from the 2011 LSOAs) and `county.geojson` into `out_dir`.
///
/// # Errors
/// When a source cannot be read, an LSOA is missing from the lookup, a district dissolves
/// to an invalid polygon, or its area differs from the sum of its LSOAs by more than
/// [`AREA_TOLERANCE`].
pub fn derive_boundaries(
    lsoa11_source: &Path,
    lsoa21_source: &Path,
    lookup_source: &Path,
    out_dir: &Path,
) -> Result<Vec<DistrictReport>, BoundaryError> {
    let lookup_text =
        std::fs::read_to_string(lookup_source).map_err(|source| BoundaryError::Io {
            path: lookup_source.to_owned(),
            source,
        })?;
    let lookup = parse_lookup(&lookup_text, lookup_source)?;
    let district11: BTreeMap<&str, (&str, &str)> = lookup
        .iter()
        .map(|r| {
            (
                r.lsoa11.as_str(),
                (r.district_code.as_str(), r.district_name.as_str()),
            )
        })
        .collect();
    let district21: BTreeMap<&str, (&str, &str)> = lookup
        .iter()
        .map(|r| {
            (
                r.lsoa21.as_str(),
                (r.district_code.as_str(), r.district_name.as_str()),
            )
        })
        .collect();
    let lsoas = BoundarySet::from_geojson_file(lsoa11_source, "LSOA11CD", Some("LSOA11NM"))?;
    let lsoas21 = BoundarySet::from_geojson_file(lsoa21_source, "LSOA21CD", Some("LSOA21NM"))?;
    let district_of = |set: &BoundarySet,
                       map: &BTreeMap<&str, (&str, &str)>,
                       source: &Path|
     -> Result<Vec<(String, String)>, BoundaryError> {
        (0..set.len())
            .map(|i| {
                map.get(set.codes[i].as_str())
                    .map(|(c, n)| ((*c).to_owned(), (*n).to_owned()))
                    .ok_or_else(|| BoundaryError::Feature {
                        path: source.to_owned(),
                        index: i,
                        reason: format!("LSOA {} is not in the lookup", set.codes[i]),
                    })
            })
            .collect()
    };
    let d11 = district_of(&lsoas, &district11, lsoa11_source)?;
    let d21 = district_of(&lsoas21, &district21, lsoa21_source)?;
    let invalid = |reason: String| BoundaryError::Invalid {
        path: lsoa11_source.to_owned(),
        reason,
    };
    let mut groups: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, d) in d11.iter().enumerate() {
        groups.entry(d.clone()).or_default().push(i);
    }
    let interior: Vec<Point<f64>> = lsoas
        .polygons
        .iter()
        .map(|mp| {
            mp.interior_point()
                .ok_or_else(|| invalid("an LSOA has no interior point".into()))
        })
        .collect::<Result<_, _>>()?;
    // One interior point per polygon part, so that islands of an LSOA are kept.
    let part_points: Vec<Vec<Point<f64>>> = lsoas
        .polygons
        .iter()
        .map(|mp| {
            mp.0.iter()
                .filter_map(InteriorPoint::interior_point)
                .collect()
        })
        .collect();
    let lsoa_area: Vec<f64> = lsoas.polygons.iter().map(area_m2).collect();

    let mut reports = Vec::new();
    let mut district_polys = Vec::new();
    for ((code, name), members) in &groups {
        let polys: Vec<&MultiPolygon<f64>> = members.iter().map(|&i| &lsoas.polygons[i]).collect();
        let own: Vec<Point<f64>> = members
            .iter()
            .flat_map(|&i| part_points[i].iter().copied())
            .collect();
        let others: Vec<Point<f64>> = (0..lsoas.len())
            .filter(|i| !members.contains(i))
            .map(|i| interior[i])
            .collect();
        let (mp, holes_filled, slivers_dropped) = clean(unary_union(polys), &own, &others);
        if !mp.is_valid() {
            return Err(invalid(format!(
                "district {name} dissolves to an invalid polygon"
            )));
        }
        let area = area_m2(&mp);
        let sum: f64 = members.iter().map(|&i| lsoa_area[i]).sum();
        if ((area - sum) / sum).abs() > AREA_TOLERANCE {
            return Err(invalid(format!(
                "district {name}: area {area:.0} m2 differs from its LSOAs' sum {sum:.0} m2 by more than 0.1%"
            )));
        }
        reports.push(DistrictReport {
            code: code.clone(),
            name: name.clone(),
            lsoas: members.len(),
            area_km2: area / 1e6,
            lsoa_area_sum_km2: sum / 1e6,
            parts: mp.0.len(),
            holes_filled,
            slivers_dropped,
        });
        district_polys.push(mp);
    }
    let all_parts: Vec<Point<f64>> = part_points.iter().flatten().copied().collect();
    let (county, _, _) = clean(unary_union(district_polys.iter()), &all_parts, &[]);
    if !county.is_valid() {
        return Err(invalid("the county outline is not a valid polygon".into()));
    }

    std::fs::create_dir_all(out_dir).map_err(|source| BoundaryError::Io {
        path: out_dir.to_owned(),
        source,
    })?;
    let write_lsoas = |set: &BoundarySet, districts: &[(String, String)], file: &str| {
        let features = (0..set.len()).map(|i| {
            let (dc, dn) = &districts[i];
            let props = format!(
                r#""code":{},"name":{},"district_code":{},"district_name":{},"area_km2":{}"#,
                lit(&set.codes[i]),
                lit(&set.names[i]),
                lit(dc),
                lit(dn),
                num(area_m2(&set.polygons[i]) / 1e6, 6)
            );
            (props, &set.polygons[i])
        });
        write_collection(
            &out_dir.join(file),
            file.trim_end_matches(".geojson"),
            features,
        )
    };
    write_lsoas(&lsoas, &d11, "lsoa11.geojson")?;
    write_lsoas(&lsoas21, &d21, "lsoa21.geojson")?;
    std::fs::write(out_dir.join(LOOKUP_FILE), &lookup_text).map_err(|source| {
        BoundaryError::Io {
            path: out_dir.join(LOOKUP_FILE),
            source,
        }
    })?;
    let district_features = reports.iter().zip(&district_polys).map(|(r, mp)| {
        let props = format!(
            r#""code":{},"name":{},"lsoas":{},"area_km2":{}"#,
            lit(&r.code),
            lit(&r.name),
            r.lsoas,
            num(r.area_km2, 6)
        );
        (props, mp)
    });
    write_collection(
        &out_dir.join("districts.geojson"),
        "districts",
        district_features,
    )?;
    let county_props = format!(
        r#""code":"lancashire","name":"Lancashire (with Blackburn with Darwen and Blackpool)","districts":{},"area_km2":{}"#,
        reports.len(),
        num(area_m2(&county) / 1e6, 6)
    );
    write_collection(
        &out_dir.join("county.geojson"),
        "county",
        std::iter::once((county_props, &county)),
    )?;
    Ok(reports)
}

/// Drops parts that hold none of `own` (slivers) and holes that hold none of `others`
/// (gaps left by the union). Returns the cleaned polygon and the counts of each.
fn clean(
    mp: MultiPolygon<f64>,
    own: &[Point<f64>],
    others: &[Point<f64>],
) -> (MultiPolygon<f64>, usize, usize) {
    let (mut holes_filled, mut slivers) = (0, 0);
    let mut parts = Vec::new();
    for p in mp.0 {
        let (exterior, interiors) = p.into_inner();
        let kept: Vec<_> = interiors
            .into_iter()
            .filter(|ring| {
                let hole = Polygon::new(ring.clone(), vec![]);
                let keep = others.iter().any(|pt| hole.contains(pt));
                holes_filled += usize::from(!keep);
                keep
            })
            .collect();
        let poly = Polygon::new(exterior, kept);
        let outer = Polygon::new(poly.exterior().clone(), vec![]);
        if own.iter().any(|pt| outer.contains(pt)) {
            parts.push(poly);
        } else {
            slivers += 1;
        }
    }
    (MultiPolygon(parts), holes_filled, slivers)
}

fn lit(s: &str) -> String {
    let mut out = String::new();
    push_str_lit(&mut out, s);
    out
}

fn num(v: f64, decimals: usize) -> String {
    let mut out = String::new();
    push_num(&mut out, v, decimals);
    out
}

fn write_collection<'a>(
    path: &Path,
    name: &str,
    features: impl Iterator<Item = (String, &'a MultiPolygon<f64>)>,
) -> Result<(), BoundaryError> {
    let mut out = format!(r#"{{"type":"FeatureCollection","name":"{name}","features":["#);
    for (i, (props, mp)) in features.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("\n{\"type\":\"Feature\",\"properties\":{");
        out.push_str(&props);
        out.push_str("},\"geometry\":");
        push_multipolygon(&mut out, mp);
        out.push('}');
    }
    out.push_str("\n]}\n");
    std::fs::write(path, out).map_err(|source| BoundaryError::Io {
        path: path.to_owned(),
        source,
    })
}
