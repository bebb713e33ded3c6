//! Derives the committed `boundaries/` from the ONS LSOA file: the LSOAs themselves, the
//! 14 districts dissolved from their LSOAs, and the county outline.
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

/// Reads the ONS LSOA GeoJSON (properties LSOA11CD, LSOA11NM, LAD_CODE, LAD_NAME) and
/// writes `lsoa.geojson`, `districts.geojson` and `county.geojson` into `out_dir`.
///
/// # Errors
/// When the source cannot be read, a district dissolves to an invalid polygon, or its
/// area differs from the sum of its LSOAs by more than [`AREA_TOLERANCE`].
pub fn derive_boundaries(
    source: &Path,
    out_dir: &Path,
) -> Result<Vec<DistrictReport>, BoundaryError> {
    let lsoas = BoundarySet::from_geojson_file(source, "LSOA11CD", Some("LSOA11NM"))?;
    let invalid = |reason: String| BoundaryError::Invalid {
        path: source.to_owned(),
        reason,
    };
    let prop = |i: usize, key: &str| -> Result<String, BoundaryError> {
        lsoas.properties[i]
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| BoundaryError::Feature {
                path: source.to_owned(),
                index: i,
                reason: format!("no string property '{key}'"),
            })
    };
    let mut groups: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for i in 0..lsoas.len() {
        groups
            .entry((prop(i, "LAD_CODE")?, prop(i, "LAD_NAME")?))
            .or_default()
            .push(i);
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
    let district_of: BTreeMap<usize, &(String, String)> = groups
        .iter()
        .flat_map(|(k, v)| v.iter().map(move |&i| (i, k)))
        .collect();
    let lsoa_features = (0..lsoas.len()).map(|i| {
        let (dc, dn) = district_of[&i];
        let props = format!(
            r#""code":{},"name":{},"district_code":{},"district_name":{},"area_km2":{}"#,
            lit(&lsoas.codes[i]),
            lit(&lsoas.names[i]),
            lit(dc),
            lit(dn),
            num(lsoa_area[i] / 1e6, 6)
        );
        (props, &lsoas.polygons[i])
    });
    write_collection(&out_dir.join("lsoa.geojson"), "lsoa", lsoa_features)?;
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
