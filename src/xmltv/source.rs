//! A cached guide source as a byte stream: gunzipped when its first bytes are the gzip magic
//! (whatever the file is called), with the decompressed size capped against gzip bombs.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;

use super::Limits;
use super::error::{InputFault, XmltvError};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const READ_BUFFER: usize = 64 * 1024;

/// The bytes of a guide, decompressed if they were gzipped.
pub struct GuideReader<R: BufRead = BufReader<File>> {
    inner: Inner<R>,
}

enum Inner<R: BufRead> {
    Plain(R),
    // Multi-member: `cat a.gz b.gz` is a valid gzip file and some tools write guides that way.
    Gzip(Box<BufReader<Capped<MultiGzDecoder<R>>>>),
}

/// Opens the guide at `path`, gunzipping it if it starts with the gzip magic bytes.
pub fn open_source(path: &Path, limits: &Limits) -> Result<GuideReader, XmltvError> {
    let io_error = |source| XmltvError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);
    // Surface an unreadable file (a directory, EIO) here, with its path.
    reader.fill_buf().map_err(io_error)?;
    decompress(reader, limits)
}

/// Wraps `reader` in a capped gzip decoder if its first bytes are the gzip magic.
///
/// The magic is looked for in what the first `fill_buf` returns, so that must hold at least two
/// bytes when the stream has them (a `BufReader` over a file or a memory buffer does).
pub fn decompress<R: BufRead>(
    mut reader: R,
    limits: &Limits,
) -> Result<GuideReader<R>, XmltvError> {
    let head = reader
        .fill_buf()
        .map_err(|e| super::error::from_io(&e, 1))?;
    let inner = if head.starts_with(&GZIP_MAGIC) {
        let capped = Capped {
            inner: MultiGzDecoder::new(reader),
            produced: 0,
            limit: limits.max_decompressed_bytes,
        };
        Inner::Gzip(Box::new(BufReader::with_capacity(READ_BUFFER, capped)))
    } else {
        Inner::Plain(reader)
    };
    Ok(GuideReader { inner })
}

impl<R: BufRead> GuideReader<R> {
    /// Whether the source was gzipped.
    #[cfg(test)]
    pub fn is_gzip(&self) -> bool {
        matches!(self.inner, Inner::Gzip(_))
    }
}

impl<R: BufRead> Read for GuideReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(r) => r.read(buf),
            Inner::Gzip(r) => r.read(buf),
        }
    }
}

impl<R: BufRead> BufRead for GuideReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match &mut self.inner {
            Inner::Plain(r) => r.fill_buf(),
            Inner::Gzip(r) => r.fill_buf(),
        }
    }

    fn consume(&mut self, amount: usize) {
        match &mut self.inner {
            Inner::Plain(r) => r.consume(amount),
            Inner::Gzip(r) => r.consume(amount),
        }
    }
}

/// A decoder that fails once it has produced more than `limit` bytes, and labels its own
/// errors as gzip corruption so they are not mistaken for a disk fault.
struct Capped<D> {
    inner: D,
    produced: u64,
    limit: u64,
}

impl<D: Read> Read for Capped<D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Ask for at most one byte past the limit: enough to tell "exactly at" from "over".
        let room = self.limit.saturating_sub(self.produced).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let Some(window) = buf.get_mut(..want) else {
            return Ok(0);
        };
        let n = match self.inner.read(window) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => return Err(InputFault::Gzip(e.to_string()).into_io()),
        };
        self.produced = self.produced.saturating_add(n as u64);
        if self.produced > self.limit {
            return Err(InputFault::DecompressedTooLarge {
                limit_bytes: self.limit,
            }
            .into_io());
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::{Cursor, Write};

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data).expect("gzip into memory");
        enc.finish().expect("finish gzip")
    }

    fn read_all(r: &mut impl Read) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn gzip_is_detected_by_magic_not_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let doc = b"<?xml version=\"1.0\"?><tv></tv>";
        // A gzipped guide named like plain XML, and a plain guide named like gzip.
        let gz_path = dir.path().join("guide.xml");
        std::fs::write(&gz_path, gzip(doc)).expect("write");
        let plain_path = dir.path().join("guide.xml.gz");
        std::fs::write(&plain_path, doc).expect("write");

        let mut gz = open_source(&gz_path, &Limits::default()).expect("open gz");
        assert!(gz.is_gzip());
        assert_eq!(read_all(&mut gz).expect("read gz"), doc);

        let mut plain = open_source(&plain_path, &Limits::default()).expect("open plain");
        assert!(!plain.is_gzip());
        assert_eq!(read_all(&mut plain).expect("read plain"), doc);
    }

    #[test]
    fn concatenated_gzip_members_are_read_whole() {
        let mut data = gzip(b"<tv>");
        data.extend(gzip(b"</tv>"));
        let mut r = decompress(Cursor::new(data), &Limits::default()).expect("decompress");
        assert_eq!(read_all(&mut r).expect("read"), b"<tv></tv>");
    }

    #[test]
    fn gzip_bomb_is_capped_with_a_clear_error() {
        // 8 MiB of zeros compresses to a few KiB.
        let bomb = gzip(&vec![0u8; 8 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024);
        let limits = Limits {
            max_decompressed_bytes: 1024 * 1024,
            ..Limits::default()
        };
        let mut r = decompress(Cursor::new(bomb), &limits).expect("decompress");
        let err = read_all(&mut r).expect_err("must hit the cap");
        let err = super::super::error::from_io(&err, 1);
        assert!(
            matches!(err, XmltvError::DecompressedTooLarge { limit_bytes } if limit_bytes == 1024 * 1024)
        );
        assert_eq!(
            err.to_string(),
            "decompressed guide exceeds 1 MiB (a gzip bomb?)"
        );
    }

    #[test]
    fn exactly_the_cap_is_allowed() {
        let data = vec![b'x'; 4096];
        let limits = Limits {
            max_decompressed_bytes: 4096,
            ..Limits::default()
        };
        let mut r = decompress(Cursor::new(gzip(&data)), &limits).expect("decompress");
        assert_eq!(read_all(&mut r).expect("read").len(), 4096);
    }

    #[test]
    fn corrupt_gzip_is_reported_as_such() {
        let mut data = gzip(&vec![b'a'; 10_000]);
        let len = data.len();
        data.truncate(len / 2);
        let mut r = decompress(Cursor::new(data), &Limits::default()).expect("decompress");
        let err = read_all(&mut r).expect_err("truncated gzip");
        let err = super::super::error::from_io(&err, 3);
        assert!(matches!(err, XmltvError::Gzip { line: 3, .. }), "{err:?}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = open_source(Path::new("/nonexistent/guide.xml"), &Limits::default())
            .err()
            .expect("missing file");
        assert!(err.to_string().contains("/nonexistent/guide.xml"), "{err}");
    }
}
