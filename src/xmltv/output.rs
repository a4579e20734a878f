//! `epg.xml` and `epg.xml.gz`, written side by side into temporary files and renamed over the
//! served ones only when complete: a failed render leaves the previous EPG in place.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::error::XmltvError;

/// The served file names.
pub const EPG_XML: &str = "epg.xml";
pub const EPG_XML_GZ: &str = "epg.xml.gz";

const WRITE_BUFFER: usize = 64 * 1024;

/// Distinguishes temporary files of renders running at the same time in one process.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// The pair of files being written. Dropped without [`EpgFiles::commit`], it removes them.
pub(crate) struct EpgFiles {
    dir: PathBuf,
    plain_temp: PathBuf,
    gz_temp: PathBuf,
    writers: Option<(BufWriter<File>, GzEncoder<BufWriter<File>>)>,
}

impl EpgFiles {
    /// Creates the temporary files in `dir`.
    pub(crate) fn create(dir: &Path) -> Result<Self, XmltvError> {
        remove_stale_temps(dir);
        let tag = format!(
            "{}.{}",
            std::process::id(),
            NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
        );
        let mut files = EpgFiles {
            dir: dir.to_owned(),
            plain_temp: dir.join(format!(".{EPG_XML}.{tag}.tmp")),
            gz_temp: dir.join(format!(".{EPG_XML_GZ}.{tag}.tmp")),
            writers: None,
        };
        let plain = create_temp(&files.plain_temp)?;
        let gz = match create_temp(&files.gz_temp) {
            Ok(gz) => gz,
            Err(e) => {
                let _ = fs::remove_file(&files.plain_temp);
                return Err(e);
            }
        };
        files.writers = Some((
            BufWriter::with_capacity(WRITE_BUFFER, plain),
            GzEncoder::new(
                BufWriter::with_capacity(WRITE_BUFFER, gz),
                Compression::default(),
            ),
        ));
        Ok(files)
    }

    /// Appends `bytes` to both files.
    pub(crate) fn write_all(&mut self, bytes: &[u8]) -> Result<(), XmltvError> {
        let Some((plain, gz)) = self.writers.as_mut() else {
            return Ok(());
        };
        plain
            .write_all(bytes)
            .map_err(|e| output_error(&self.dir, EPG_XML, e))?;
        gz.write_all(bytes)
            .map_err(|e| output_error(&self.dir, EPG_XML_GZ, e))
    }

    /// Flushes both files to disk and renames them over the served ones.
    pub(crate) fn commit(mut self) -> Result<(), XmltvError> {
        let Some((plain, gz)) = self.writers.take() else {
            return Ok(());
        };
        let dir = self.dir.clone();
        let plain = plain
            .into_inner()
            .map_err(|e| output_error(&dir, EPG_XML, e.into_error()))?;
        plain
            .sync_all()
            .map_err(|e| output_error(&dir, EPG_XML, e))?;
        let gz = gz
            .finish()
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .map_err(|e| output_error(&dir, EPG_XML_GZ, e))?;
        gz.sync_all()
            .map_err(|e| output_error(&dir, EPG_XML_GZ, e))?;
        fs::rename(&self.gz_temp, dir.join(EPG_XML_GZ))
            .map_err(|e| output_error(&dir, EPG_XML_GZ, e))?;
        fs::rename(&self.plain_temp, dir.join(EPG_XML))
            .map_err(|e| output_error(&dir, EPG_XML, e))?;
        // Best effort: the new files are in place either way; this makes the renames durable.
        let _ = File::open(&dir).and_then(|d| d.sync_all());
        Ok(())
    }
}

impl Drop for EpgFiles {
    fn drop(&mut self) {
        // After a successful commit the temporary names no longer exist; errors are moot.
        let _ = fs::remove_file(&self.plain_temp);
        let _ = fs::remove_file(&self.gz_temp);
    }
}

/// Creates (or, if a crashed process with our pid left it, truncates) a temporary file: no live
/// process but us uses our pid, and the counter keeps our own renders apart.
fn create_temp(path: &Path) -> Result<File, XmltvError> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|source| XmltvError::Output {
            path: path.to_owned(),
            source,
        })
}

/// Removes temporary files left by renders of processes that are gone (a power cut mid-render
/// would otherwise leave up to two guides' worth of junk on the SD card for good).
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let ours = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&format!(".{EPG_XML}.")))
            .and_then(|n| n.strip_suffix(".tmp"))
            .map(|n| n.trim_start_matches("gz."))
            .and_then(|n| n.split('.').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != ours && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn output_error(dir: &Path, name: &str, source: io::Error) -> XmltvError {
    XmltvError::Output {
        path: dir.join(name),
        source,
    }
}
