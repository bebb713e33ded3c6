//! Finding input files: plain files, directories (recursively) and zip archives, whose
//! CSV and GeoJSON entries (police.uk's `YYYY-MM/YYYY-MM-force-street.csv`) are read
//! one by one, each as its own file.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::IngestError;

/// Largest single file or archive entry read (bytes).
pub const MAX_FILE_BYTES: u64 = 4 << 30;

/// Limits on what a zip archive may inflate to, checked while it inflates: the sizes a
/// zip's headers declare are never trusted (bytes are counted as they come out of the
/// inflater), so a zip bomb or a lying header is refused after at most the limit's
/// worth of output, and memory stays bounded whatever the input.
///
/// The defaults are generous (the command line: a big STATS19 archive must go through);
/// the server applies its own, tighter ones to uploads (`[limits]` `zip_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipLimits {
    /// Largest uncompressed entry.
    pub max_entry_bytes: u64,
    /// Largest uncompressed total of the data entries of one archive.
    pub max_total_bytes: u64,
    /// Most entries in one archive (any kind).
    pub max_entries: usize,
    /// Largest uncompressed / compressed size of an entry, checked once an entry has
    /// inflated past [`RATIO_FLOOR`] bytes (small files may compress very well).
    pub max_ratio: u64,
}

/// Output below which the compression ratio is not checked.
pub const RATIO_FLOOR: u64 = 1 << 20;

impl Default for ZipLimits {
    fn default() -> Self {
        ZipLimits {
            max_entry_bytes: MAX_FILE_BYTES,
            max_total_bytes: u64::MAX,
            max_entries: 100_000,
            // Deflate cannot do better than about 1030:1 (runs of one byte); CSVs are
            // 5-20:1.
            max_ratio: 500,
        }
    }
}

/// Streams `r` (an inflating entry of `compressed` bytes) into `out` (or nowhere),
/// refusing as soon as it passes a limit. Returns the bytes read.
fn inflate_limited(
    r: &mut dyn Read,
    compressed: u64,
    limits: &ZipLimits,
    total_left: u64,
    mut out: Option<&mut Vec<u8>>,
) -> Result<u64, Refused> {
    let mut chunk = vec![0u8; 64 << 10];
    let mut n: u64 = 0;
    loop {
        let k = match r.read(&mut chunk) {
            Ok(0) => return Ok(n),
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Refused::Io(e)),
        };
        n += k as u64;
        if n > limits.max_entry_bytes {
            return Err(Refused::Limit(format!(
                "an entry inflates to more than {} bytes (zip_max_entry_bytes)",
                limits.max_entry_bytes
            )));
        }
        if n > total_left {
            return Err(Refused::Limit(format!(
                "the archive inflates to more than {} bytes in all (zip_max_total_bytes)",
                limits.max_total_bytes
            )));
        }
        if n > RATIO_FLOOR && n / compressed.max(1) > limits.max_ratio {
            return Err(Refused::Limit(format!(
                "an entry inflates to more than {} times its compressed size ({compressed} \
                 bytes; zip_max_ratio): a zip bomb?",
                limits.max_ratio
            )));
        }
        if let Some(out) = out.as_deref_mut() {
            out.extend_from_slice(&chunk[..k]);
        }
    }
}

enum Refused {
    Io(std::io::Error),
    Limit(String),
}

/// Inflates every data entry of the zip archive at `path` without keeping it, checking
/// `limits` (entry count, each entry's size and ratio, the total): what an upload goes
/// through before any of it is ingested, so an archive over a limit changes nothing.
///
/// # Errors
/// `Format` naming the limit passed (or why the archive cannot be read).
pub fn check_zip(path: &Path, shown: &str, limits: &ZipLimits) -> Result<(), IngestError> {
    let format = |reason: String| IngestError::Format {
        file: shown.to_owned(),
        reason,
    };
    let f = std::fs::File::open(path).map_err(|error| IngestError::Io {
        file: shown.to_owned(),
        error,
    })?;
    let mut zip =
        zip::ZipArchive::new(f).map_err(|e| format(format!("unreadable zip archive: {e}")))?;
    if zip.len() > limits.max_entries {
        return Err(format(format!(
            "refused: {} entries, more than {} (zip_max_entries)",
            zip.len(),
            limits.max_entries
        )));
    }
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let mut e = zip
            .by_index(i)
            .map_err(|e| format(format!("unreadable zip archive: {e}")))?;
        if !wanted(e.name()) {
            continue;
        }
        let name = e.name().to_owned();
        let compressed = e.compressed_size();
        let left = limits.max_total_bytes.saturating_sub(total);
        match inflate_limited(&mut e, compressed, limits, left, None) {
            Ok(n) => total += n,
            Err(Refused::Limit(why)) => return Err(format(format!("refused at {name}: {why}"))),
            Err(Refused::Io(err)) => {
                return Err(format(format!("unreadable zip entry {name}: {err}")));
            }
        }
    }
    Ok(())
}

/// One readable input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    ZipEntry { archive: PathBuf, entry: String },
}

impl Source {
    /// How the source is named in reports: the path, or `archive.zip!entry`.
    pub fn name(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::ZipEntry { archive, entry } => format!("{}!{entry}", archive.display()),
        }
    }

    /// Reads the whole source.
    ///
    /// # Errors
    /// When the file or archive cannot be read.
    pub fn read(&self) -> Result<Vec<u8>, IngestError> {
        let mut buf = Vec::new();
        self.read_into(&mut buf)?;
        Ok(buf)
    }

    /// Reads the whole source into `buf` (cleared first), reusing its allocation.
    ///
    /// # Errors
    /// When the file or archive cannot be read.
    pub fn read_into(&self, buf: &mut Vec<u8>) -> Result<(), IngestError> {
        self.read_into_limited(buf, &ZipLimits::default())
    }

    /// Reads the whole source, an archive entry under `limits` (its size and ratio).
    ///
    /// # Errors
    /// When the file or archive cannot be read, or the entry passes a limit.
    pub fn read_limited(&self, limits: &ZipLimits) -> Result<Vec<u8>, IngestError> {
        let mut buf = Vec::new();
        self.read_into_limited(&mut buf, limits)?;
        Ok(buf)
    }

    fn read_into_limited(&self, buf: &mut Vec<u8>, limits: &ZipLimits) -> Result<(), IngestError> {
        let io = |error| IngestError::Io {
            file: self.name(),
            error,
        };
        buf.clear();
        match self {
            Source::File(p) => {
                let f = std::fs::File::open(p).map_err(io)?;
                let len = f.metadata().map_err(io)?.len().min(MAX_FILE_BYTES);
                buf.reserve(len as usize);
                f.take(MAX_FILE_BYTES).read_to_end(buf).map_err(io)?;
            }
            Source::ZipEntry { archive, entry } => {
                let f = std::fs::File::open(archive).map_err(io)?;
                let mut zip = zip::ZipArchive::new(f).map_err(|e| self.format(e))?;
                let mut e = zip.by_name(entry).map_err(|e| self.format(e))?;
                // The declared size is a hint only (it may lie): reserve little for it.
                let hint = e.size().min(limits.max_entry_bytes).min(64 << 20);
                buf.reserve(usize::try_from(hint).unwrap_or(0));
                let compressed = e.compressed_size();
                match inflate_limited(&mut e, compressed, limits, u64::MAX, Some(buf)) {
                    Ok(_) => {}
                    Err(Refused::Io(error)) => return Err(io(error)),
                    Err(Refused::Limit(why)) => {
                        buf.clear();
                        buf.shrink_to(64 << 20);
                        return Err(IngestError::Format {
                            file: self.name(),
                            reason: format!("refused: {why}"),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs `f` on the source's bytes: a plain file is memory-mapped (no copy; the
    /// analysis loader's path), an archive entry is read into `buf`.
    ///
    /// A mapped file must not be truncated by another process while it is read (the
    /// usual caveat of mapping, as in ripgrep); ingest into the store reads instead.
    ///
    /// # Errors
    /// When the source cannot be opened or read, or `f` fails.
    pub fn with_bytes<T>(
        &self,
        buf: &mut Vec<u8>,
        f: impl FnOnce(&[u8]) -> Result<T, IngestError>,
    ) -> Result<T, IngestError> {
        if let Source::File(p) = self {
            let io = |error| IngestError::Io {
                file: self.name(),
                error,
            };
            let file = std::fs::File::open(p).map_err(io)?;
            if file.metadata().map_err(io)?.len() > 0 {
                // SAFETY: the map is read-only and dropped before returning; see the caveat above.
                let map =
                    unsafe { memmap2::MmapOptions::new().populate().map(&file) }.map_err(io)?;
                return f(&map);
            }
        }
        self.read_into(buf)?;
        f(buf)
    }

    fn format(&self, e: zip::result::ZipError) -> IngestError {
        IngestError::Format {
            file: self.name(),
            reason: format!("unreadable zip archive: {e}"),
        }
    }
}

/// Data files: CSV and GeoJSON. A police.uk download's `-outcomes.csv` and
/// `-stop-and-search.csv` files are data too (outcomes update stored crimes; searches are
/// their own dataset), read by their own parsers.
fn wanted(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with(".csv") || n.ends_with(".geojson") || n.ends_with(".json")
}

/// When a file must be read relative to the others: files that update or join rows of
/// other files (police.uk outcomes name crimes of earlier street files; STATS19
/// casualties join collisions) come after every other file, whatever their names sort
/// as (`-outcomes` sorts before `-street`, `casualty` before `collision`).
fn rank(name: &str) -> u8 {
    let n = name.to_ascii_lowercase();
    let base = n.rsplit(['/', '\\', '!']).next().unwrap_or(&n);
    if base.ends_with("-outcomes.csv") {
        1
    } else if base.contains("casualty") && !base.contains("collision") && !base.contains("accident")
    {
        2
    } else {
        0
    }
}

/// Expands paths into sources, in a stable order: sorted by path, except that outcomes
/// and casualty files come after the files they update (see `rank`).
///
/// # Errors
/// When a path does not exist or an archive cannot be listed.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<Source>, IngestError> {
    let mut out = Vec::new();
    for p in paths {
        visit(p, &mut out, true)?;
    }
    // Stable: the order within a rank is the order found.
    out.sort_by_key(|s| rank(&s.name()));
    Ok(out)
}

fn visit(p: &Path, out: &mut Vec<Source>, explicit: bool) -> Result<(), IngestError> {
    let io = |error| IngestError::Io {
        file: p.display().to_string(),
        error,
    };
    let meta = std::fs::metadata(p).map_err(io)?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            visit(&e, out, false)?;
        }
        return Ok(());
    }
    let name = p.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".zip") {
        let f = std::fs::File::open(p).map_err(io)?;
        let zip = zip::ZipArchive::new(f).map_err(|e| IngestError::Format {
            file: p.display().to_string(),
            reason: format!("unreadable zip archive: {e}"),
        })?;
        let most = ZipLimits::default().max_entries;
        if zip.len() > most {
            return Err(IngestError::Format {
                file: p.display().to_string(),
                reason: format!("refused: {} entries, more than {most}", zip.len()),
            });
        }
        let mut names: Vec<String> = zip
            .file_names()
            .filter(|n| wanted(n))
            .map(str::to_owned)
            .collect();
        names.sort();
        out.extend(names.into_iter().map(|entry| Source::ZipEntry {
            archive: p.to_owned(),
            entry,
        }));
    } else if explicit || wanted(&name) {
        out.push(Source::File(p.to_owned()));
    }
    Ok(())
}
