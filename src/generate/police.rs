//! police.uk street-level crime, one CSV per month (`YYYY-MM/YYYY-MM-lancashire-street.csv`),
//! either as files or packed in one zip archive as the police.uk download ships them.
//!
//! Months are independent (own random stream, own row count), so they are generated in
//! parallel; each row is assembled from precomputed text (snap point, month prefix, labels)
//! into a large reused buffer, which keeps 10 million rows to a few seconds of CPU.

use std::fs::File;
use std::io::{self, Cursor, Write};
use std::path::PathBuf;

use rand::{Rng, RngCore};
use rayon::prelude::*;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use super::layout::Layout;
use super::{
    GenerateError, GenerateOptions, STREAM_MONTH_SIZES, STREAM_POLICE_MONTH, TYPE_SHARES, Weighted,
    apportion, month_at, planted_hotspots, stream_rng,
};
use crate::model::{CrimeType, Month};

/// The police.uk column header.
pub(super) const HEADER: &str = "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,\
Location,LSOA code,LSOA name,Crime type,Last outcome category,Context\n";

const FORCE: &str = "Lancashire Constabulary";
const UNLOCATED_SHARE: f64 = 0.01;
/// Summer months carry up to this much more crime than winter ones.
const SUMMER_UPLIFT: f64 = 0.15;
/// The last few months have more open investigations.
const RECENT_MONTHS: u32 = 3;
const FLUSH_AT: usize = 1 << 20;

/// Outcome categories with weights for settled and for recent months.
const OUTCOMES: &[(&str, f64, f64)] = &[
    ("Investigation complete; no suspect identified", 40.0, 15.0),
    ("Unable to prosecute suspect", 30.0, 15.0),
    ("Under investigation", 2.0, 45.0),
    ("Awaiting court outcome", 3.0, 8.0),
    ("Local resolution", 5.0, 3.0),
    ("Offender given a caution", 2.0, 1.0),
    ("Status update unavailable", 4.0, 4.0),
    ("Court result unavailable", 5.0, 2.0),
    ("Action to be taken by another organisation", 3.0, 2.0),
    (
        "Further investigation is not in the public interest",
        2.0,
        1.0,
    ),
    ("Formal action is not in the public interest", 1.0, 0.5),
    ("Offender given penalty notice", 1.0, 0.5),
    ("Suspect charged as part of another case", 1.0, 0.5),
];

/// Rows, unlocated rows and files written.
pub(super) struct PoliceOutput {
    pub rows: u64,
    pub unlocated: u64,
    pub files: Vec<PathBuf>,
}

/// What one month holds.
struct MonthPlan {
    /// Position in the run (0-based).
    index: u32,
    month: Month,
    rows: u64,
    /// Extra rows per planted hotspot (parallel to `planted_hotspots()`).
    extras: Vec<u64>,
}

/// The month's file name inside the police directory or archive.
fn entry_name(month: Month) -> String {
    format!("{month}/{month}-lancashire-street.csv")
}

pub(super) fn write(
    opts: &GenerateOptions,
    layout: &Layout,
) -> Result<PoliceOutput, GenerateError> {
    let plans = plan_months(opts);
    let months = opts.months;
    let seed = opts.seed;
    let mut out = PoliceOutput {
        rows: 0,
        unlocated: 0,
        files: Vec::new(),
    };
    if opts.zip {
        let path = opts.out.join("police-lancashire.zip");
        let file = File::create(&path).map_err(GenerateError::io(&path))?;
        let mut archive = ZipWriter::new(io::BufWriter::with_capacity(FLUSH_AT, file));
        let zip_err = |source| GenerateError::Zip {
            path: path.clone(),
            source,
        };
        // Compress a few months at a time in parallel, then copy the compressed entries
        // into the archive in month order (bounded memory, deterministic layout).
        for chunk in plans.chunks(rayon::current_num_threads().max(1)) {
            let entries: Vec<(Vec<u8>, u64)> = chunk
                .par_iter()
                .map(|plan| compressed_month(plan, months, layout, seed))
                .collect::<Result<_, _>>()
                .map_err(zip_err)?;
            for (bytes, unlocated) in entries {
                let mut one = ZipArchive::new(Cursor::new(bytes)).map_err(zip_err)?;
                let entry = one.by_index_raw(0).map_err(zip_err)?;
                archive.raw_copy_file(entry).map_err(zip_err)?;
                out.unlocated += unlocated;
            }
        }
        let mut inner = archive.finish().map_err(zip_err)?;
        inner.flush().map_err(GenerateError::io(&path))?;
        out.files.push(path);
    } else {
        let written: Vec<(PathBuf, u64)> = plans
            .par_iter()
            .map(|plan| {
                let dir = opts.out.join("police").join(plan.month.to_string());
                std::fs::create_dir_all(&dir).map_err(GenerateError::io(&dir))?;
                let path = opts.out.join("police").join(entry_name(plan.month));
                let mut file = File::create(&path).map_err(GenerateError::io(&path))?;
                let unlocated = write_month(&mut file, plan, months, layout, seed)
                    .map_err(GenerateError::io(&path))?;
                Ok((path, unlocated))
            })
            .collect::<Result<_, GenerateError>>()?;
        for (path, unlocated) in written {
            out.files.push(path);
            out.unlocated += unlocated;
        }
    }
    out.rows = plans.iter().map(|p| p.rows).sum();
    Ok(out)
}

/// A one-entry zip archive in memory holding the month, and its unlocated row count.
fn compressed_month(
    plan: &MonthPlan,
    months: u32,
    layout: &Layout,
    seed: u64,
) -> Result<(Vec<u8>, u64), zip::result::ZipError> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        // Level 1: several times faster than the default, and police.uk readers don't care.
        .compression_level(Some(1))
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644)
        .large_file(plan.rows.saturating_mul(400) > u64::from(u32::MAX));
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    zip.start_file(entry_name(plan.month), options)?;
    let unlocated = write_month(&mut zip, plan, months, layout, seed)?;
    Ok((zip.finish()?.into_inner(), unlocated))
}

/// Row counts per month (seasonal, exact total) and the planted extras of each month.
fn plan_months(opts: &GenerateOptions) -> Vec<MonthPlan> {
    let mut rng = stream_rng(opts.seed, STREAM_MONTH_SIZES);
    let weights: Vec<f64> = (0..opts.months)
        .map(|i| {
            let m = f64::from(month_at(opts, i).month());
            // 1 in winter, 1 + SUMMER_UPLIFT in July, +-2% noise.
            let season = 0.5 * (1.0 + ((m - 7.0) / 12.0 * std::f64::consts::TAU).cos());
            (1.0 + SUMMER_UPLIFT * season) * (0.98 + 0.04 * rng.random::<f64>())
        })
        .collect();
    let rows = apportion(opts.police_rows, &weights);
    rows.into_iter()
        .enumerate()
        .map(|(i, rows)| {
            let index = i as u32;
            let mut left = rows;
            let extras = planted_hotspots()
                .iter()
                .map(|h| {
                    let e = ((h.monthly_share(index, opts.months) * rows as f64).round() as u64)
                        .min(left);
                    left -= e;
                    e
                })
                .collect();
            MonthPlan {
                index,
                month: month_at(opts, index),
                rows,
                extras,
            }
        })
        .collect()
}

/// Writes the header and rows of one month; returns the number of unlocated rows.
fn write_month<W: Write>(
    w: &mut W,
    plan: &MonthPlan,
    months: u32,
    layout: &Layout,
    seed: u64,
) -> io::Result<u64> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    const NO_LOCATION: &[u8] = b",,No Location,,";
    let mut rng = stream_rng(seed, STREAM_POLICE_MONTH + u64::from(plan.month.index()));
    let types = Weighted::new(TYPE_SHARES.iter().map(|t| t.1));
    let recent = plan.index + RECENT_MONTHS >= months;
    let outcomes = Weighted::new(OUTCOMES.iter().map(|o| if recent { o.2 } else { o.1 }));
    let month_text = format!(",{},{FORCE},{FORCE},", plan.month);
    let hotspots = planted_hotspots();

    let mut buf: Vec<u8> = Vec::with_capacity(FLUSH_AT + 1024);
    buf.extend_from_slice(HEADER.as_bytes());
    let mut extras_left = plan.extras.clone();
    let mut extras_total: u64 = extras_left.iter().sum();
    let mut unlocated = 0;
    for row in 0..plan.rows {
        // Draw extras without replacement among the remaining rows: exact counts, spread
        // evenly through the file rather than bunched at the end.
        let pick = rng.random_range(0..plan.rows - row);
        let (point, crime) = if pick < extras_total {
            let mut h = 0;
            let mut acc = extras_left[0];
            while pick >= acc {
                h += 1;
                acc += extras_left[h];
            }
            extras_left[h] -= 1;
            extras_total -= 1;
            let spots = &layout.hotspots[h];
            let point = spots.points[spots.weights.sample(&mut rng)];
            let types = hotspots[h].types;
            (Some(point), types[rng.random_range(0..types.len())])
        } else {
            let crime = TYPE_SHARES[types.sample(&mut rng)].0;
            if rng.random_bool(UNLOCATED_SHARE) {
                (None, crime)
            } else {
                let range = &layout.lsoa_points[layout.lsoa_weights.sample(&mut rng)];
                (Some(rng.random_range(range.clone())), crime)
            }
        };
        let asb = crime == CrimeType::AntiSocialBehaviour;
        if !asb {
            for _ in 0..4 {
                let x = rng.next_u64();
                for shift in (0..16).rev() {
                    buf.push(HEX[((x >> (shift * 4)) & 15) as usize]);
                }
            }
        }
        buf.extend_from_slice(month_text.as_bytes());
        match point {
            Some(p) => buf.extend_from_slice(layout.points[p as usize].police_text.as_bytes()),
            None => {
                buf.extend_from_slice(NO_LOCATION);
                unlocated += 1;
            }
        }
        buf.push(b',');
        buf.extend_from_slice(crime.label().as_bytes());
        buf.push(b',');
        if !asb {
            buf.extend_from_slice(OUTCOMES[outcomes.sample(&mut rng)].0.as_bytes());
        }
        buf.extend_from_slice(b",\n");
        if buf.len() >= FLUSH_AT {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)?;
    Ok(unlocated)
}
