//! The planted hotspots: ground truth for testing the analysis.
//!
//! Each sits on a real Lancashire town centre and adds incidents of a few types, on top of
//! the background, to the snap points within its radius. The kinds cover the three
//! trajectories an analyst asks about: always there, newly appearing, going away.

use crate::model::CrimeType;

/// How a planted hotspot behaves over the months of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HotspotKind {
    /// Extra incidents every month at a constant share.
    Persistent,
    /// Nothing for the first two thirds of the run, then a share growing month by month.
    Emerging,
    /// Extra incidents in the first half of the run (tapering), none after.
    Fading,
}

/// A hotspot the generator plants in the police.uk data.
#[derive(Debug, Clone, PartialEq)]
pub struct PlantedHotspot {
    pub name: &'static str,
    pub lon: f64,
    pub lat: f64,
    pub radius_m: f64,
    pub kind: HotspotKind,
    /// The crime types of the extra incidents (chosen uniformly among these).
    pub types: &'static [CrimeType],
}

/// Peak share of a month's police rows that one hotspot adds.
const PERSISTENT_SHARE: f64 = 0.03;
const EMERGING_PEAK_SHARE: f64 = 0.04;
const FADING_PEAK_SHARE: f64 = 0.03;

impl PlantedHotspot {
    /// The share of month `i` (0-based) of a run of `months` months that this hotspot adds
    /// as extra rows (0 when it is inactive that month).
    pub fn monthly_share(&self, i: u32, months: u32) -> f64 {
        if i >= months {
            return 0.0;
        }
        match self.kind {
            HotspotKind::Persistent => PERSISTENT_SHARE,
            HotspotKind::Emerging => {
                let active = (months / 3).max(1);
                let first = months - active;
                if i < first {
                    0.0
                } else {
                    EMERGING_PEAK_SHARE * f64::from(i - first + 1) / f64::from(active)
                }
            }
            HotspotKind::Fading => {
                let active = (months / 2).max(1);
                if i < active {
                    FADING_PEAK_SHARE * (1.0 - 0.5 * f64::from(i) / f64::from(active))
                } else {
                    0.0
                }
            }
        }
    }
}

/// The planted hotspots, in a fixed order.
pub fn planted_hotspots() -> &'static [PlantedHotspot] {
    use CrimeType::*;
    static HOTSPOTS: [PlantedHotspot; 6] = [
        PlantedHotspot {
            name: "Blackpool town centre night-time economy",
            lon: -3.0535,
            lat: 53.8175,
            radius_m: 400.0,
            kind: HotspotKind::Persistent,
            types: &[ViolenceAndSexualOffences, PublicOrder],
        },
        PlantedHotspot {
            name: "Preston city centre retail",
            lon: -2.7006,
            lat: 53.7590,
            radius_m: 400.0,
            kind: HotspotKind::Persistent,
            types: &[Shoplifting, OtherTheft],
        },
        PlantedHotspot {
            name: "Blackburn town centre county lines",
            lon: -2.4840,
            lat: 53.7486,
            radius_m: 400.0,
            kind: HotspotKind::Emerging,
            types: &[Drugs, PossessionOfWeapons],
        },
        PlantedHotspot {
            name: "Burnley burglary series",
            lon: -2.2428,
            lat: 53.7893,
            radius_m: 400.0,
            kind: HotspotKind::Fading,
            types: &[Burglary],
        },
        PlantedHotspot {
            name: "Lancaster city centre anti-social behaviour",
            lon: -2.8007,
            lat: 54.0466,
            radius_m: 400.0,
            kind: HotspotKind::Emerging,
            types: &[AntiSocialBehaviour, CriminalDamageArson],
        },
        PlantedHotspot {
            name: "Morecambe seafront vehicle crime",
            lon: -2.8660,
            lat: 54.0720,
            radius_m: 400.0,
            kind: HotspotKind::Fading,
            types: &[VehicleCrime, TheftFromThePerson],
        },
    ];
    &HOTSPOTS
}
