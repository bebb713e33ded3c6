//! Writing features: RFC 7946 GeoJSON (WGS84, counter-clockwise exterior rings, at most
//! 7 decimals, no `crs`) and CSV (id, a representative lon/lat, then the properties),
//! or either in the CRS `crs` asks for (OGC API - Features Part 2: EPSG:4326 in its
//! latitude, longitude order, British National Grid in metres); and the bbox test, on
//! the real geometry.

use std::fmt::Write as _;

use geo::{
    BoundingRect, InteriorPoint, Intersects, LineString, MultiPolygon, Point, Polygon, Rect, coord,
};

use super::build::{Column, FeatureId, Geom, Items, Style};
use super::query::{Area, Crs};
use crate::analysis::AnalysisStore;
use crate::model::Month;
use crate::spatial::geojson_out::{push_multipolygon_with, push_num, push_str_lit};

/// The polygon of a grid cell or boundary.
fn polygon(store: &AnalysisStore, g: Geom) -> Option<MultiPolygon<f64>> {
    let geo = &store.geography;
    match g {
        Geom::Cell(c) => {
            let ring: Vec<(f64, f64)> =
                c.boundary().iter().map(|ll| (ll.lng(), ll.lat())).collect();
            let mut ring = LineString::from(ring);
            ring.close();
            Some(MultiPolygon(vec![Polygon::new(ring, vec![])]))
        }
        Geom::Lsoa(i) => geo.lsoas.polygons.get(i as usize).cloned(),
        Geom::District(i) => geo.districts.polygons.get(i as usize).cloned(),
        Geom::Point(..) => None,
    }
}

/// Whether the feature's geometry intersects the box (boundary included): its WGS84
/// envelope, and the grid rectangle itself when the box was given in British National
/// Grid.
pub fn intersects(store: &AnalysisStore, g: Geom, a: &Area) -> bool {
    let b = &a.envelope;
    let rect = Rect::new(
        coord! { x: b.west, y: b.south },
        coord! { x: b.east, y: b.north },
    );
    if let Geom::Point(x, y) = g {
        let p = Point::new(f64::from(x) / 1e7, f64::from(y) / 1e7);
        return p.intersects(&rect) && a.exact.as_ref().is_none_or(|e| p.intersects(e));
    }
    polygon(store, g).is_some_and(|p| {
        p.bounding_rect().is_some_and(|r| r.intersects(&rect))
            && p.intersects(&rect)
            && a.exact.as_ref().is_none_or(|e| p.intersects(e))
    })
}

/// The polygon in the CRS's coordinates, or None when a point of it is outside the
/// CRS's reach (the OSTN15 grid).
fn polygon_in(p: &MultiPolygon<f64>, crs: Crs) -> Option<MultiPolygon<f64>> {
    let ring = |r: &LineString<f64>| -> Option<LineString<f64>> {
        r.0.iter()
            .map(|c| crs.from_wgs84(c.x, c.y).map(|(x, y)| coord! { x: x, y: y }))
            .collect::<Option<Vec<_>>>()
            .map(LineString)
    };
    p.0.iter()
        .map(|poly| {
            Some(Polygon::new(
                ring(poly.exterior())?,
                poly.interiors().iter().map(ring).collect::<Option<_>>()?,
            ))
        })
        .collect::<Option<Vec<_>>>()
        .map(MultiPolygon)
}

fn push_multipolygon_in(out: &mut String, p: &MultiPolygon<f64>, crs: Crs) {
    match crs {
        Crs::Crs84 => push_multipolygon_with(out, p, 7, true),
        _ => match polygon_in(p, crs) {
            // Latitude first mirrors the rings: clockwise as written is counter-clockwise
            // on the ground, the winding of the CRS84 answer.
            Some(q) => push_multipolygon_with(out, &q, crs.decimals(), crs != Crs::Epsg4326),
            None => out.push_str("null"),
        },
    }
}

fn push_geometry(out: &mut String, store: &AnalysisStore, g: Geom, crs: Crs) {
    match (g, polygon(store, g)) {
        (Geom::Point(x, y), _) => match crs.from_wgs84(f64::from(x) / 1e7, f64::from(y) / 1e7) {
            Some((x, y)) => {
                out.push_str(r#"{"type":"Point","coordinates":["#);
                push_num(out, x, crs.decimals());
                out.push(',');
                push_num(out, y, crs.decimals());
                out.push_str("]}");
            }
            None => out.push_str("null"),
        },
        (Geom::Cell(_), Some(p)) => push_multipolygon_in(out, &p, crs),
        (_, Some(p)) if !p.0.is_empty() => push_always_multi(out, &p, crs),
        _ => out.push_str("null"),
    }
}

/// Boundaries are always MultiPolygons, so a layer has one geometry type.
fn push_always_multi(out: &mut String, p: &MultiPolygon<f64>, crs: Crs) {
    let mut g = String::new();
    push_multipolygon_in(&mut g, p, crs);
    match g
        .strip_prefix(r#"{"type":"Polygon","coordinates":"#)
        .and_then(|rest| rest.strip_suffix('}'))
    {
        Some(rings) => {
            out.push_str(r#"{"type":"MultiPolygon","coordinates":["#);
            out.push_str(rings);
            out.push_str("]}");
        }
        None => out.push_str(&g),
    }
}

fn push_id(out: &mut String, id: &FeatureId) {
    match id {
        FeatureId::Num(n) => {
            let _ = write!(out, "{n}");
        }
        FeatureId::Text(s) => push_str_lit(out, s),
    }
}

/// A number as JSON (null when not finite).
fn push_value_num(out: &mut String, v: f64, style: Style) {
    if !v.is_finite() {
        out.push_str("null");
        return;
    }
    match style {
        Style::Fixed(d) => push_num(out, v, d),
        Style::Significant => {
            let rounded: f64 = format!("{v:.5e}").parse().unwrap_or(v);
            out.push_str(
                &serde_json::Number::from_f64(rounded).map_or("null".to_owned(), |n| n.to_string()),
            );
        }
    }
}

fn push_value(out: &mut String, c: &Column, row: usize) {
    match c {
        Column::Int(v) => {
            let _ = write!(out, "{}", v[row]);
        }
        Column::OptInt(v) => match v[row] {
            Some(n) => {
                let _ = write!(out, "{n}");
            }
            None => out.push_str("null"),
        },
        Column::Num(v, style) => push_value_num(out, v[row], *style),
        Column::Bool(v) => out.push_str(if v[row] { "true" } else { "false" }),
        Column::Text(v) => match &v[row] {
            Some(s) => push_str_lit(out, s),
            None => out.push_str("null"),
        },
        Column::Month(v) => push_str_lit(out, &Month::from_index(v[row]).to_string()),
    }
}

/// One feature object, its geometry in `crs` (`links` are written into it when given,
/// already as JSON).
pub fn push_feature(
    out: &mut String,
    store: &AnalysisStore,
    items: &Items,
    row: usize,
    links: Option<&str>,
    crs: Crs,
) {
    push_feature_with(out, Some(store), items, row, links, crs);
}

/// [`push_feature`], with a null geometry when `store` is None (`skipGeometry=true`).
fn push_feature_with(
    out: &mut String,
    store: Option<&AnalysisStore>,
    items: &Items,
    row: usize,
    links: Option<&str>,
    crs: Crs,
) {
    out.push_str(r#"{"type":"Feature","id":"#);
    push_id(out, &items.ids[row]);
    out.push_str(r#","geometry":"#);
    match store {
        Some(store) => push_geometry(out, store, items.geoms[row], crs),
        None => out.push_str("null"),
    }
    out.push_str(r#","properties":{"#);
    for (k, (name, col)) in items.columns.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        push_str_lit(out, name);
        out.push(':');
        push_value(out, col, row);
    }
    out.push('}');
    if let Some(l) = links {
        out.push_str(r#","links":"#);
        out.push_str(l);
    }
    out.push('}');
}

/// A property's value as a filter compares it: a number as the feature writes it, text
/// as itself, a month as `YYYY-MM`; None for null (a withheld count matches nothing).
pub fn value_text(c: &Column, row: usize) -> Option<String> {
    match c {
        Column::Text(v) => v[row].as_deref().map(str::to_owned),
        Column::Month(v) => Some(Month::from_index(v[row]).to_string()),
        Column::OptInt(v) => v[row].map(|n| n.to_string()),
        _ => {
            let mut s = String::new();
            push_value(&mut s, c, row);
            (s != "null").then_some(s)
        }
    }
}

/// Paging facts of a FeatureCollection.
pub struct Page<'a> {
    pub matched: usize,
    pub rows: &'a [usize],
    pub time_stamp: &'a str,
    /// The `links` array as JSON.
    pub links: &'a str,
    /// What the server changed in the request (a capped `limit`, a clamped `bbox`), as
    /// the `notes` member; empty for none.
    pub notes: &'a [String],
    /// The `disclosure` member below analyst (`disclosure::metadata`, as JSON): what was
    /// withheld and perturbed, so a partner's client can say so. None from analyst up.
    pub disclosure: Option<&'a str>,
    /// `skipGeometry=true`: every feature's geometry is null.
    pub skip_geometry: bool,
    /// The CRS of the geometries.
    pub crs: Crs,
}

/// A FeatureCollection of the given rows.
pub fn feature_collection(store: &AnalysisStore, items: &Items, page: &Page<'_>) -> String {
    let mut out = String::with_capacity(256 + page.rows.len() * 512);
    let _ = write!(
        out,
        r#"{{"type":"FeatureCollection","numberMatched":{},"numberReturned":{},"timeStamp":"#,
        page.matched,
        page.rows.len()
    );
    push_str_lit(&mut out, page.time_stamp);
    out.push_str(r#","links":"#);
    out.push_str(page.links);
    if !page.notes.is_empty() {
        out.push_str(r#","notes":["#);
        for (k, n) in page.notes.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            push_str_lit(&mut out, n);
        }
        out.push(']');
    }
    if let Some(d) = page.disclosure {
        out.push_str(r#","disclosure":"#);
        out.push_str(d);
    }
    out.push_str(r#","features":["#);
    for (k, &row) in page.rows.iter().enumerate() {
        out.push_str(if k > 0 { ",\n" } else { "\n" });
        let store = (!page.skip_geometry).then_some(store);
        push_feature_with(&mut out, store, items, row, None, page.crs);
    }
    out.push_str("\n]}\n");
    out
}

fn csv_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// A point for the CSV: the point itself, a cell's centre, a boundary's interior point.
fn representative(store: &AnalysisStore, g: Geom) -> Option<(f64, f64)> {
    match g {
        Geom::Point(x, y) => Some((f64::from(x) / 1e7, f64::from(y) / 1e7)),
        Geom::Cell(c) => {
            let ll = h3o::LatLng::from(c);
            Some((ll.lng(), ll.lat()))
        }
        _ => polygon(store, g)
            .and_then(|p| p.interior_point())
            .map(|p| (p.x(), p.y())),
    }
}

/// `id,lon,lat,<properties>` for the given rows, or the representative point in `crs`
/// (`id,lat,lon` for EPSG:4326, `id,easting,northing` for British National Grid).
pub fn csv(store: &AnalysisStore, items: &Items, rows: &[usize], crs: Crs) -> String {
    let [a, b] = crs.axes();
    let mut out = format!("id,{a},{b}");
    for (name, _) in &items.columns {
        out.push(',');
        out.push_str(name);
    }
    out.push('\n');
    for &row in rows {
        csv_field(&mut out, &items.ids[row].as_text());
        out.push(',');
        let point = representative(store, items.geoms[row]).and_then(|(x, y)| crs.from_wgs84(x, y));
        if let Some((x, y)) = point {
            push_num(&mut out, x, crs.decimals());
            out.push(',');
            push_num(&mut out, y, crs.decimals());
        } else {
            out.push(',');
        }
        for (_, col) in &items.columns {
            out.push(',');
            let mut v = String::new();
            match col {
                Column::Text(t) => v.push_str(t[row].as_deref().unwrap_or("")),
                Column::Month(m) => v.push_str(&Month::from_index(m[row]).to_string()),
                Column::Num(n, _) if !n[row].is_finite() => {}
                Column::OptInt(n) if n[row].is_none() => {}
                _ => push_value(&mut v, col, row),
            }
            csv_field(&mut out, &v);
        }
        out.push('\n');
    }
    out
}
