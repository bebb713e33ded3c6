//! Live risk zones: where and until when the near-repeat table says risk is raised
//! around each recent incident.
//!
//! # The window
//! From a Knox table (`near_repeat`): a cell shows elevated risk when it holds more
//! pairs than the shuffled dates give (ratio above 1) at a pseudo p of at most `alpha`.
//! The risk window reaches as far in space as the run of such cells in the first time
//! band (same week, say) starting from the nearest distance band, and as long in time
//! as the run of such cells in the first distance band starting from the same-day band:
//! `--distance 100,200,300 --days 7,14,21` with 0-100 m x 0-7 d, 101-200 m x 0-7 d and
//! 0-100 m x 8-14 d raised (and 201-300 m x 0-7 d not) gives 200 m and 14 days. A table
//! whose nearest cell (0 m, same days) is not raised has no window: the data show no
//! near repeat at these bands, and there are no zones.
//!
//! # Zones
//! Each incident dated within the window's days before the as-of date (by default the
//! latest date under the filter) has a live zone: a circle of the window's distance
//! around it, live from its date to its date plus the window's days (the bands are
//! inclusive, so that last day too). The zones are a list and a GeoJSON layer
//! (`hotspot near-repeat --zones FILE`); the server does not publish them, since each is
//! drawn around one incident's point.
//!
//! This is the Near Repeat Calculator's reading of its own table (Ratcliffe 2009:
//! "risk is elevated for ... days within ... metres"), applied to the latest incidents
//! as Johnson et al. (2007) and Bowers, Johnson and Pease (2004) proposed for
//! prospective patrols.

use super::near_repeat::{DatedPoint, Knox, KnoxCell};

/// The raised space-time window: within `distance_m` and `days` of an incident.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskWindow {
    pub distance_m: f64,
    pub days: u32,
}

/// One incident's live zone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Zone {
    /// Index of the incident among the points.
    pub point: usize,
    /// Its date and the last day of the zone, days since 1970-01-01.
    pub day: i32,
    pub until: i32,
}

fn raised(c: &KnoxCell, alpha: f64) -> bool {
    c.ratio.is_some_and(|r| r > 1.0) && c.p <= alpha
}

/// The window `k` shows at level `alpha`, or None when its nearest cell is not raised.
pub fn window(k: &Knox, alpha: f64) -> Option<RiskWindow> {
    let first = k.cells.first()?;
    // Cells are distance-major: the first time band's row is every nt-th cell.
    let nt = k
        .cells
        .iter()
        .take_while(|c| c.distance == first.distance)
        .count();
    if nt == 0 || !raised(first, alpha) {
        return None;
    }
    let days = k.cells[..nt]
        .iter()
        .take_while(|c| raised(c, alpha))
        .last()
        .map_or(first.days.1, |c| c.days.1);
    let distance_m = k
        .cells
        .iter()
        .step_by(nt)
        .take_while(|c| raised(c, alpha))
        .last()
        .map_or(first.distance.1, |c| c.distance.1);
    Some(RiskWindow { distance_m, days })
}

/// The zones live on `as_of`: every incident dated from `as_of - w.days` to `as_of`,
/// newest first (ties by point order).
pub fn live(points: &[DatedPoint], w: RiskWindow, as_of: i32) -> Vec<Zone> {
    let span = i32::try_from(w.days).unwrap_or(i32::MAX);
    let mut zones: Vec<Zone> = points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.day <= as_of && as_of.saturating_sub(p.day) <= span)
        .map(|(i, p)| Zone {
            point: i,
            day: p.day,
            until: p.day.saturating_add(span),
        })
        .collect();
    zones.sort_by(|a, b| b.day.cmp(&a.day).then(a.point.cmp(&b.point)));
    zones
}

/// A circle of radius `r` around (x, y), as a closed counter-clockwise ring of `n`
/// vertices (plus the closing one) in the same plane coordinates.
pub fn circle(x: f64, y: f64, r: f64, n: usize) -> Vec<(f64, f64)> {
    let n = n.max(3);
    let mut ring: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let a = std::f64::consts::TAU * i as f64 / n as f64;
            (x + r * a.cos(), y + r * a.sin())
        })
        .collect();
    ring.push(ring[0]);
    ring
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::near_repeat::{KnoxOptions, knox};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn cell(d: (f64, f64), t: (u32, u32), ratio: f64, p: f64) -> KnoxCell {
        KnoxCell {
            distance: d,
            days: t,
            observed: 0,
            expected: 1.0,
            ratio: Some(ratio),
            p,
        }
    }

    /// 3 x 3 bands, raised where `r` is true (distance-major).
    fn table(r: [[bool; 3]; 3]) -> Knox {
        let d = [(0.0, 100.0), (100.0, 200.0), (200.0, 300.0)];
        let t = [(0, 7), (7, 14), (14, 21)];
        let mut cells = Vec::new();
        for (i, di) in d.iter().enumerate() {
            for (j, tj) in t.iter().enumerate() {
                let (ratio, p) = if r[i][j] { (1.8, 0.01) } else { (1.1, 0.3) };
                cells.push(cell(*di, *tj, ratio, p));
            }
        }
        Knox {
            points: 10,
            close_pairs: 10,
            permutations: 99,
            cells,
        }
    }

    #[test]
    fn the_window_is_the_runs_from_the_nearest_cell() {
        let (t, f) = (true, false);
        let w = |r| window(&table(r), 0.05);
        assert_eq!(
            w([[t, t, f], [t, f, f], [f, f, f]]),
            Some(RiskWindow {
                distance_m: 200.0,
                days: 14
            })
        );
        // A raised cell after a gap does not extend the run.
        assert_eq!(
            w([[t, f, t], [f, f, f], [t, f, f]]),
            Some(RiskWindow {
                distance_m: 100.0,
                days: 7
            })
        );
        // Nothing raised at the nearest cell: no window, whatever else is.
        assert_eq!(w([[f, t, t], [t, t, t], [t, t, t]]), None);
        // Raised means ratio above 1 as well as p at most alpha.
        let mut k = table([[t, t, t], [t, t, t], [t, t, t]]);
        k.cells[0].ratio = Some(0.6);
        assert_eq!(window(&k, 0.05), None);
        assert_eq!(window(&table([[t; 3]; 3]), 0.001), None);
    }

    /// Planted near repeats (a second incident within 60 m and 5 days of a fifth of
    /// the incidents, among incidents spread over 20 km and a year) give the nearest
    /// bands' window, and a process without them gives none.
    #[test]
    fn planted_repeats_give_their_window_and_none_without() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut points: Vec<DatedPoint> = (0..2000)
            .map(|_| DatedPoint {
                x: 350_000.0 + rng.random::<f64>() * 20_000.0,
                y: 430_000.0 + rng.random::<f64>() * 20_000.0,
                day: 18_628 + rng.random_range(0..365),
            })
            .collect();
        let o = KnoxOptions {
            distances: vec![100.0, 200.0, 300.0],
            days: vec![7, 14, 21],
            permutations: 199,
            seed: 1,
        };
        assert_eq!(window(&knox(&points, &o).unwrap(), 0.05), None);
        for i in 0..400 {
            let p = points[i];
            let a = rng.random::<f64>() * std::f64::consts::TAU;
            let r = rng.random::<f64>() * 60.0;
            points.push(DatedPoint {
                x: p.x + r * a.cos(),
                y: p.y + r * a.sin(),
                day: p.day + rng.random_range(0..=5),
            });
        }
        assert_eq!(
            window(&knox(&points, &o).unwrap(), 0.05),
            Some(RiskWindow {
                distance_m: 100.0,
                days: 7
            })
        );
    }

    #[test]
    fn live_zones_are_the_incidents_of_the_last_days_by_brute_force() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let points: Vec<DatedPoint> = (0..500)
            .map(|_| DatedPoint {
                x: 0.0,
                y: 0.0,
                day: rng.random_range(0..100),
            })
            .collect();
        let w = RiskWindow {
            distance_m: 200.0,
            days: 14,
        };
        for as_of in [0, 13, 14, 50, 99, 105, 200] {
            let zones = live(&points, w, as_of);
            let mut want: Vec<usize> = (0..points.len())
                .filter(|&i| {
                    let d = points[i].day;
                    (as_of - 14..=as_of).contains(&d)
                })
                .collect();
            let mut got: Vec<usize> = zones.iter().map(|z| z.point).collect();
            assert!(zones.windows(2).all(|z| z[0].day >= z[1].day));
            for z in &zones {
                assert_eq!(z.until, z.day + 14);
                assert!(z.day <= as_of && as_of <= z.until);
            }
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "as of {as_of}");
        }
    }

    #[test]
    fn circles_are_closed_counter_clockwise_and_round() {
        let ring = circle(100.0, 200.0, 50.0, 48);
        assert_eq!(ring.len(), 49);
        assert_eq!(ring[0], ring[48]);
        // Shoelace: positive area is counter-clockwise, close to pi r^2.
        let area: f64 = ring
            .windows(2)
            .map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1)
            .sum::<f64>()
            / 2.0;
        let disc = std::f64::consts::PI * 2500.0;
        assert!(area > 0.99 * disc && area < disc, "{area}");
        for (x, y) in ring {
            assert!(((x - 100.0).hypot(y - 200.0) - 50.0).abs() < 1e-9);
        }
    }
}
