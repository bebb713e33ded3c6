//! The collections this service offers: identifiers, titles, descriptions and extents.

use geo::BoundingRect;
use h3o::Resolution;

use crate::analysis::AnalysisStore;
use crate::model::Month;
use crate::serve::auth::Role;

use super::datetime::days_in_month;

/// One collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CollectionId {
    Districts,
    Lsoas,
    /// The study grid at an H3 resolution (7 to 10).
    H3(Resolution),
    Hotspots,
    Emerging,
    Patrol,
    Incidents,
}

/// H3 resolution of the `hotspots` and `patrol` collections.
pub const HOTSPOT_RES: Resolution = Resolution::Nine;
/// H3 resolution of the `emerging` collection.
pub const EMERGING_RES: Resolution = Resolution::Eight;
/// Places in the `patrol` collection.
pub const PATROL_TOP: usize = 20;

impl CollectionId {
    /// Every collection, in the order `/collections` lists them.
    pub const ALL: [CollectionId; 10] = [
        CollectionId::Districts,
        CollectionId::Lsoas,
        CollectionId::H3(Resolution::Seven),
        CollectionId::H3(Resolution::Eight),
        CollectionId::H3(Resolution::Nine),
        CollectionId::H3(Resolution::Ten),
        CollectionId::Hotspots,
        CollectionId::Emerging,
        CollectionId::Patrol,
        CollectionId::Incidents,
    ];

    /// The properties the API definition declares as filters of this collection's items
    /// (name, JSON type): the ones equality suits (codes, names, counts, bins,
    /// categories). `/queryables` lists them all as the caller gets them; this fixed list
    /// is what GDAL reads to send a `-where name = 'x'` to the server (it looks for them as
    /// query parameters of `/collections/{name}/items`). `tests/ogc_http.rs` checks each is
    /// a property of the collection. `district` and `severity` are the incident filter's.
    pub fn filter_properties(self) -> &'static [(&'static str, &'static str)] {
        match self {
            CollectionId::Districts => {
                &[("code", "string"), ("name", "string"), ("count", "integer")]
            }
            CollectionId::Lsoas => &[("code", "string"), ("name", "string"), ("count", "integer")],
            CollectionId::H3(_) | CollectionId::Hotspots => &[
                ("cell", "string"),
                ("count", "integer"),
                ("gi_bin", "integer"),
            ],
            CollectionId::Emerging => &[
                ("cell", "string"),
                ("count", "integer"),
                ("category", "string"),
                ("category_code", "integer"),
            ],
            CollectionId::Patrol => &[
                ("cell", "string"),
                ("rank", "integer"),
                ("lsoa_code", "string"),
                ("lsoa_name", "string"),
                ("gi_bin", "integer"),
                ("trend", "string"),
            ],
            CollectionId::Incidents => &[("type", "string"), ("month", "string")],
        }
    }

    /// The path segment.
    pub fn id(self) -> &'static str {
        match self {
            CollectionId::Districts => "districts",
            CollectionId::Lsoas => "lsoas",
            CollectionId::H3(Resolution::Seven) => "h3-7",
            CollectionId::H3(Resolution::Eight) => "h3-8",
            CollectionId::H3(Resolution::Nine) => "h3-9",
            CollectionId::H3(_) => "h3-10",
            CollectionId::Hotspots => "hotspots",
            CollectionId::Emerging => "emerging",
            CollectionId::Patrol => "patrol",
            CollectionId::Incidents => "incidents",
        }
    }

    /// The collection with this identifier.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.id() == s)
    }

    pub fn title(self) -> String {
        match self {
            CollectionId::Districts => "Districts".into(),
            CollectionId::Lsoas => "Lower layer super output areas (2011)".into(),
            CollectionId::H3(r) => format!("H3 grid, resolution {}", u8::from(r)),
            CollectionId::Hotspots => "Hot spots (Gi*, H3 resolution 9)".into(),
            CollectionId::Emerging => "Emerging hot spots (H3 resolution 8)".into(),
            CollectionId::Patrol => format!("Top {PATROL_TOP} places to patrol"),
            CollectionId::Incidents => "Incidents".into(),
        }
    }

    pub fn description(self) -> String {
        let filter = "Counts follow the filter: datetime (months), types, severity (road collisions), district.";
        let gi = "Getis-Ord Gi* over the study grid (zero cells included), one ring of \
                  neighbours, Benjamini-Hochberg false discovery rate control: gi_z, gi_p, \
                  gi_bin (-3..3 for 99/95/90% cold/hot).";
        match self {
            CollectionId::Districts => {
                format!("District polygons with count and per_km2. {filter}")
            }
            CollectionId::Lsoas => format!("LSOA polygons with count and per_km2. {filter}"),
            CollectionId::H3(_) => {
                format!("Every cell covering the study area with count, per_km2 and {gi} {filter}")
            }
            CollectionId::Hotspots => {
                format!("The significantly hot cells (gi_bin > 0) at resolution 9. {gi} {filter}")
            }
            CollectionId::Emerging => format!(
                "Cells with an emerging hot spot pattern (space-time Gi* and Mann-Kendall \
                 trend over the months): category, category_code, trend_z, trend_p. Cells \
                 with no pattern are left out; fewer than 3 months give none. {filter}"
            ),
            CollectionId::Patrol => format!(
                "The {PATROL_TOP} places to patrol at resolution 9, ranked by Gi* among the \
                 hot cells, then by count. {filter}"
            ),
            CollectionId::Incidents => format!(
                "Located incidents as points: month, type, and severity for road collisions. \
                 {filter}"
            ),
        }
    }

    /// The lowest role that may read the collection (its metadata, items and CSV alike).
    /// Aggregates are open to all (with disclosure control below analyst); the patrol
    /// list and emerging patterns are operational, for partners up; incident points for
    /// analysts.
    pub fn role(self) -> Role {
        match self {
            CollectionId::Incidents => Role::Analyst,
            CollectionId::Patrol | CollectionId::Emerging => Role::Partner,
            CollectionId::Districts
            | CollectionId::Lsoas
            | CollectionId::H3(_)
            | CollectionId::Hotspots => Role::Public,
        }
    }

    /// The H3 resolution of a cell collection.
    pub fn resolution(self) -> Option<Resolution> {
        match self {
            CollectionId::H3(r) => Some(r),
            CollectionId::Hotspots | CollectionId::Patrol => Some(HOTSPOT_RES),
            CollectionId::Emerging => Some(EMERGING_RES),
            _ => None,
        }
    }
}

/// The role of the collection a decoded `{id}` names (the handlers' parse), for the
/// route policy; None for no such collection.
pub fn role_of(id: &str) -> Option<Role> {
    CollectionId::parse(id).map(CollectionId::role)
}

/// West, south, east, north.
pub type Bounds = [f64; 4];

/// Spatial extent of a collection: the boundaries' box, grown by two cell edges for a
/// grid (cells cover the edge), or the incidents' box.
pub fn spatial_extent(id: CollectionId, store: &AnalysisStore) -> Bounds {
    let g = &store.geography;
    let mut b = g
        .districts
        .polygons
        .iter()
        .chain(std::iter::once(&g.county))
        .filter_map(BoundingRect::bounding_rect)
        .fold(None, |acc: Option<Bounds>, r| {
            let r = [r.min().x, r.min().y, r.max().x, r.max().y];
            Some(acc.map_or(r, |a| union(a, r)))
        })
        .unwrap_or([-180.0, -90.0, 180.0, 90.0]);
    if id == CollectionId::Incidents {
        let l = &store.locations;
        if let (Some(x0), Some(x1), Some(y0), Some(y1)) = (
            l.lon_e7.iter().min(),
            l.lon_e7.iter().max(),
            l.lat_e7.iter().min(),
            l.lat_e7.iter().max(),
        ) {
            let e = |v: &i32| f64::from(*v) / 1e7;
            b = [e(x0), e(y0), e(x1), e(y1)];
        }
    } else if let Some(res) = id.resolution() {
        // Degrees of longitude are shortest at the north edge; 60 km is safe below 57N.
        let pad = 2.0 * res.edge_length_km() / 60.0;
        b = [b[0] - pad, b[1] - pad, b[2] + pad, b[3] + pad];
    }
    [
        b[0].max(-180.0),
        b[1].max(-90.0),
        b[2].min(180.0),
        b[3].min(90.0),
    ]
}

fn union(a: Bounds, b: Bounds) -> Bounds {
    [
        a[0].min(b[0]),
        a[1].min(b[1]),
        a[2].max(b[2]),
        a[3].max(b[3]),
    ]
}

/// The data's months as an RFC 3339 interval: the first instant of the first month to
/// the last second of the last.
pub fn temporal_extent(store: &AnalysisStore) -> [Option<String>; 2] {
    match store.month_range() {
        Some((a, b)) => [Some(month_start(a)), Some(month_end(b))],
        None => [None, None],
    }
}

fn month_start(m: Month) -> String {
    format!("{:04}-{:02}-01T00:00:00Z", m.year(), m.month())
}

fn month_end(m: Month) -> String {
    format!(
        "{:04}-{:02}-{:02}T23:59:59Z",
        m.year(),
        m.month(),
        days_in_month(m.year(), m.month())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for c in CollectionId::ALL {
            assert_eq!(CollectionId::parse(c.id()), Some(c));
        }
        assert_eq!(CollectionId::parse("h3-11"), None);
        assert_eq!(
            month_end("2024-02".parse().unwrap()),
            "2024-02-29T23:59:59Z"
        );
    }
}
