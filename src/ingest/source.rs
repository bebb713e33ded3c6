//! Finding input files: plain files, directories (recursively) and zip archives, whose
//! CSV and GeoJSON entries (police.uk's `YYYY-MM/YYYY-MM-force-street.csv`) are read
//! one by one, each as its own file.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::IngestError;

/// Largest single file or archive entry read (bytes).
pub const MAX_FILE_BYTES: u64 = 4 << 30;

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
                buf.reserve(e.size().min(MAX_FILE_BYTES) as usize);
                e.by_ref()
                    .take(MAX_FILE_BYTES)
                    .read_to_end(buf)
                    .map_err(io)?;
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
