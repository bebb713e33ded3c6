//! RFC 7946 GeoJSON writing: WGS84, exterior rings counter-clockwise, holes clockwise, at
//! most 7 decimals (about 1 cm), no `crs` member.

use std::fmt::Write as _;

use geo::{LineString, MultiPolygon, Polygon};

/// Writes a number with at most `decimals` decimals and no trailing zeros.
pub fn push_num(out: &mut String, v: f64, decimals: usize) {
    let start = out.len();
    let _ = write!(out, "{v:.decimals$}");
    if out[start..].contains('.') {
        while out.ends_with('0') {
            out.pop();
        }
        if out.ends_with('.') {
            out.pop();
        }
    }
    if &out[start..] == "-0" {
        out.truncate(start);
        out.push('0');
    }
}

fn signed_area(ring: &LineString<f64>) -> f64 {
    ring.0
        .windows(2)
        .map(|w| w[0].x * w[1].y - w[1].x * w[0].y)
        .sum::<f64>()
        / 2.0
}

fn push_ring(out: &mut String, ring: &LineString<f64>, ccw: bool, decimals: usize) {
    let reverse = (signed_area(ring) > 0.0) != ccw;
    out.push('[');
    let n = ring.0.len();
    for i in 0..n {
        let c = if reverse {
            ring.0[n - 1 - i]
        } else {
            ring.0[i]
        };
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        push_num(out, c.x, decimals);
        out.push(',');
        push_num(out, c.y, decimals);
        out.push(']');
    }
    out.push(']');
}

fn push_polygon_rings(out: &mut String, p: &Polygon<f64>, decimals: usize, ccw: bool) {
    out.push('[');
    push_ring(out, p.exterior(), ccw, decimals);
    for hole in p.interiors() {
        out.push(',');
        push_ring(out, hole, !ccw, decimals);
    }
    out.push(']');
}

/// Appends a GeoJSON geometry object for a (multi)polygon, RFC 7946 winding.
pub fn push_multipolygon(out: &mut String, mp: &MultiPolygon<f64>) {
    push_multipolygon_with(out, mp, 7, true);
}

/// [`push_multipolygon`] with `decimals` decimals, for coordinates of another CRS:
/// exteriors counter-clockwise in the coordinates written when `ccw`, clockwise when not
/// (axes written latitude first, so that the rings still run counter-clockwise on the
/// ground, as RFC 7946 asks).
pub fn push_multipolygon_with(
    out: &mut String,
    mp: &MultiPolygon<f64>,
    decimals: usize,
    ccw: bool,
) {
    if mp.0.len() == 1 {
        out.push_str(r#"{"type":"Polygon","coordinates":"#);
        push_polygon_rings(out, &mp.0[0], decimals, ccw);
    } else {
        out.push_str(r#"{"type":"MultiPolygon","coordinates":["#);
        for (i, p) in mp.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_polygon_rings(out, p, decimals, ccw);
        }
        out.push(']');
    }
    out.push('}');
}

/// Appends a JSON string literal.
pub fn push_str_lit(out: &mut String, s: &str) {
    out.push_str(&serde_json::Value::String(s.to_owned()).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;

    #[test]
    fn numbers_are_trimmed_to_seven_decimals() {
        let mut s = String::new();
        push_num(&mut s, -2.123456789, 7);
        s.push(' ');
        push_num(&mut s, 53.5, 7);
        s.push(' ');
        push_num(&mut s, -0.00000001, 7);
        assert_eq!(s, "-2.1234568 53.5 0");
    }

    #[test]
    fn exterior_rings_come_out_counter_clockwise() {
        // clockwise input
        let p = polygon![(x: 0.0, y: 0.0), (x: 0.0, y: 1.0), (x: 1.0, y: 1.0), (x: 1.0, y: 0.0)];
        let mut s = String::new();
        push_multipolygon(&mut s, &MultiPolygon(vec![p]));
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        let ring: Vec<(f64, f64)> = v["coordinates"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c[0].as_f64().unwrap(), c[1].as_f64().unwrap()))
            .collect();
        let area: f64 = ring
            .windows(2)
            .map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1)
            .sum();
        assert!(area > 0.0, "{s}");
    }
}
