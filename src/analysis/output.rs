//! Writing aggregations as CSV and RFC 7946 GeoJSON, and the district x type summary.

use std::fmt::Write as _;

use geo::{LineString, MultiPolygon, Polygon};

use super::AnalysisStore;
use super::aggregate::{Aggregation, Count, Unit, UnitKey};
use crate::model::CrimeType;
use crate::spatial::geojson_out::{push_multipolygon, push_str_lit};

/// Code and name of a unit.
pub fn unit_label(store: &AnalysisStore, unit: &Unit, key: UnitKey) -> (String, String) {
    let g = &store.geography;
    match (unit, key) {
        (_, UnitKey::Cell(c)) => (c.to_string(), String::new()),
        (Unit::Lsoa(v), UnitKey::Index(i)) => (
            g.lsoa_set(*v).codes[i as usize].clone(),
            g.lsoa_set(*v).names[i as usize].clone(),
        ),
        (Unit::District, UnitKey::Index(i)) => (
            g.districts.codes[i as usize].clone(),
            g.districts.names[i as usize].clone(),
        ),
        (Unit::Boundary(b), UnitKey::Index(i)) => (
            b.set.codes[i as usize].clone(),
            b.set.names[i as usize].clone(),
        ),
        (Unit::H3(_), UnitKey::Index(i)) => (i.to_string(), String::new()),
    }
}

/// The polygon of a unit.
pub fn unit_geometry(store: &AnalysisStore, unit: &Unit, key: UnitKey) -> MultiPolygon<f64> {
    let g = &store.geography;
    match (unit, key) {
        (_, UnitKey::Cell(c)) => {
            let ring: Vec<(f64, f64)> =
                c.boundary().iter().map(|ll| (ll.lng(), ll.lat())).collect();
            let mut ring = LineString::from(ring);
            ring.close();
            MultiPolygon(vec![Polygon::new(ring, vec![])])
        }
        (Unit::Lsoa(v), UnitKey::Index(i)) => g.lsoa_set(*v).polygons[i as usize].clone(),
        (Unit::District, UnitKey::Index(i)) => g.districts.polygons[i as usize].clone(),
        (Unit::Boundary(b), UnitKey::Index(i)) => b.set.polygons[i as usize].clone(),
        (Unit::H3(_), UnitKey::Index(_)) => MultiPolygon(vec![]),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn month_text(c: &Count) -> String {
    c.month.map_or_else(|| "all".to_owned(), |m| m.to_string())
}

fn type_text(c: &Count) -> &'static str {
    c.ctype.map_or("all", CrimeType::label)
}

/// `unit,name,month,type,count`, one row per non-zero count.
pub fn to_csv(store: &AnalysisStore, agg: &Aggregation) -> String {
    let mut out = String::from("unit,name,month,type,count\n");
    for c in &agg.counts {
        let (code, name) = unit_label(store, &agg.unit, c.unit);
        let _ = writeln!(
            out,
            "{},{},{},{},{}",
            code,
            csv_field(&name),
            month_text(c),
            type_text(c),
            c.count
        );
    }
    out
}

/// A FeatureCollection with one feature per non-zero count.
pub fn to_geojson(store: &AnalysisStore, agg: &Aggregation) -> String {
    let mut out = String::from(r#"{"type":"FeatureCollection","features":["#);
    let mut last: Option<(UnitKey, String)> = None;
    for (i, c) in agg.counts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let (code, name) = unit_label(store, &agg.unit, c.unit);
        out.push_str("\n{\"type\":\"Feature\",\"properties\":{\"unit\":");
        push_str_lit(&mut out, &code);
        out.push_str(",\"name\":");
        push_str_lit(&mut out, &name);
        out.push_str(",\"month\":");
        push_str_lit(&mut out, &month_text(c));
        out.push_str(",\"type\":");
        push_str_lit(&mut out, type_text(c));
        let _ = write!(out, ",\"count\":{}}},\"geometry\":", c.count);
        // Consecutive rows of one unit share the geometry text.
        let geom = match &last {
            Some((k, g)) if *k == c.unit => g.clone(),
            _ => {
                let mut g = String::new();
                push_multipolygon(&mut g, &unit_geometry(store, &agg.unit, c.unit));
                last = Some((c.unit, g.clone()));
                g
            }
        };
        out.push_str(&geom);
        out.push('}');
    }
    out.push_str("\n]}\n");
    out
}

/// Short column headings for the summary table.
fn short(t: CrimeType) -> &'static str {
    use CrimeType::*;
    match t {
        AntiSocialBehaviour => "ASB",
        BicycleTheft => "Bike",
        Burglary => "Burg",
        CriminalDamageArson => "CD&A",
        Drugs => "Drugs",
        OtherTheft => "OthTh",
        PossessionOfWeapons => "Weap",
        PublicOrder => "PubOrd",
        Robbery => "Robb",
        Shoplifting => "Shop",
        TheftFromThePerson => "TFP",
        VehicleCrime => "Veh",
        ViolenceAndSexualOffences => "V&SO",
        OtherCrime => "Other",
        RoadCollision => "Road",
        SexualOffences => "Sex",
        DomesticAbuse => "DomA",
        Exploitation => "Expl",
        RoadCasualtyPedestrian => "CasPed",
        RoadCasualtyCyclist => "CasCyc",
        RoadCasualtyMotorcyclist => "CasMC",
        RoadCasualtyCarOccupant => "CasCar",
        RoadCasualtyOther => "CasOth",
    }
}

/// A readable district x type table from a `district` x type aggregation.
pub fn summary_table(store: &AnalysisStore, agg: &Aggregation) -> String {
    let g = &store.geography;
    let mut types: Vec<CrimeType> = agg.counts.iter().filter_map(|c| c.ctype).collect();
    types.sort_unstable();
    types.dedup();
    let nd = g.districts.len();
    let mut cells = vec![vec![0u64; types.len()]; nd];
    for c in &agg.counts {
        if let (UnitKey::Index(d), Some(t)) = (c.unit, c.ctype)
            && let Ok(j) = types.binary_search(&t)
        {
            cells[d as usize][j] += c.count;
        }
    }
    let name_w = g
        .districts
        .names
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(8)
        .max(8);
    let mut out = String::new();
    let _ = write!(out, "{:<name_w$}", "District");
    for t in &types {
        let _ = write!(out, " {:>7}", short(*t));
    }
    let _ = writeln!(out, " {:>8}", "Total");
    let mut col_tot = vec![0u64; types.len()];
    let mut order: Vec<usize> = (0..nd).collect();
    order.sort_by(|a, b| g.districts.names[*a].cmp(&g.districts.names[*b]));
    for d in order {
        let _ = write!(out, "{:<name_w$}", g.districts.names[d]);
        for (j, v) in cells[d].iter().enumerate() {
            let _ = write!(out, " {v:>7}");
            col_tot[j] += v;
        }
        let _ = writeln!(out, " {:>8}", cells[d].iter().sum::<u64>());
    }
    let _ = write!(out, "{:<name_w$}", "Total");
    for v in &col_tot {
        let _ = write!(out, " {v:>7}");
    }
    let _ = writeln!(out, " {:>8}", col_tot.iter().sum::<u64>());
    // Records the table cannot place, per type (all months: they carry no unit).
    for (label, by_type) in [
        ("No location", &store.unlocated_by_type),
        ("Outside area", &store.outside_by_type),
    ] {
        let _ = write!(out, "{label:<name_w$}");
        let mut sum = 0;
        for t in &types {
            let v = by_type.get(*t as usize).copied().unwrap_or(0);
            sum += v;
            let _ = write!(out, " {v:>7}");
        }
        let _ = writeln!(out, " {sum:>8}");
    }
    let legend: Vec<String> = types
        .iter()
        .map(|t| format!("{} = {}", short(*t), t.label()))
        .collect();
    let _ = writeln!(out, "\n{}", legend.join("; "));
    if let (Some(f), Some(t)) = (agg.from, agg.to) {
        let _ = writeln!(
            out,
            "Period {f} to {t}; {} located incidents in the study area; in the store, {} without a location and {} located outside the study area (all months, never counted in a unit).",
            agg.total(),
            store.unlocated,
            store.outside()
        );
    }
    out
}
