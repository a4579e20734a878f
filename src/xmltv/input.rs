//! The first kilobyte of a guide decides how the rest is read: byte order marks, the declared
//! encoding (UTF-8 as is, Latin-1 transcoded, anything else refused) and HTML pages.

use std::io::{self, BufRead, Chain, Cursor, Read};

use super::error::{XmltvError, from_io};

/// How much of the start is examined; the XML declaration and an HTML doctype fit easily.
const PREFIX: usize = 1024;
const UTF8_BOM: &[u8] = &[0xEF, 0xBB, 0xBF];

type Rest<R> = Chain<Cursor<Vec<u8>>, R>;

/// The guide as UTF-8 bytes.
pub(crate) enum Input<R: BufRead> {
    Utf8(Rest<R>),
    Latin1(Latin1<Rest<R>>),
}

/// Examines the start of `reader` and returns the guide as UTF-8 bytes, or why it cannot be read.
pub(crate) fn prepare<R: BufRead>(mut reader: R) -> Result<Input<R>, XmltvError> {
    let mut prefix = Vec::with_capacity(PREFIX);
    while prefix.len() < PREFIX {
        let chunk = reader.fill_buf().map_err(|e| from_io(&e, 1))?;
        if chunk.is_empty() {
            break;
        }
        let take = chunk.len().min(PREFIX - prefix.len());
        prefix.extend_from_slice(chunk.get(..take).unwrap_or_default());
        reader.consume(take);
    }
    if prefix.starts_with(UTF8_BOM) {
        prefix.drain(..UTF8_BOM.len());
    } else if let Some(name) = utf16_name(&prefix) {
        return Err(XmltvError::UnsupportedEncoding { name: name.into() });
    }
    if let Some(at) = html_start(&prefix) {
        let line = 1 + prefix.iter().take(at).filter(|&&b| b == b'\n').count() as u64;
        return Err(XmltvError::Html { line });
    }
    let latin1 = match declared_encoding(&prefix) {
        None => false,
        Some(name) => match name.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" | "us-ascii" | "ascii" => false,
            "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "latin1" | "latin-1" | "l1"
            | "windows-1252" | "cp1252" | "x-cp1252" => true,
            _ => return Err(XmltvError::UnsupportedEncoding { name }),
        },
    };
    let rest = Cursor::new(prefix).chain(reader);
    Ok(if latin1 {
        Input::Latin1(Latin1::new(rest))
    } else {
        Input::Utf8(rest)
    })
}

impl<R: BufRead> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Utf8(r) => r.read(buf),
            Input::Latin1(r) => r.read(buf),
        }
    }
}

impl<R: BufRead> BufRead for Input<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self {
            Input::Utf8(r) => r.fill_buf(),
            Input::Latin1(r) => r.fill_buf(),
        }
    }

    fn consume(&mut self, amount: usize) {
        match self {
            Input::Utf8(r) => r.consume(amount),
            Input::Latin1(r) => r.consume(amount),
        }
    }
}

/// UTF-16 (by byte order mark, or by `<` and `?` interleaved with zeros) is not read.
fn utf16_name(prefix: &[u8]) -> Option<&'static str> {
    if prefix.starts_with(&[0xFF, 0xFE]) || prefix.starts_with(&[0x3C, 0x00, 0x3F, 0x00]) {
        Some("UTF-16LE")
    } else if prefix.starts_with(&[0xFE, 0xFF]) || prefix.starts_with(&[0x00, 0x3C, 0x00, 0x3F]) {
        Some("UTF-16BE")
    } else {
        None
    }
}

/// Where an HTML page starts (`<!doctype html` or `<html`, any case), also after an XML
/// declaration. HTML is rarely well-formed, so this is caught before the XML parser trips on it.
fn html_start(prefix: &[u8]) -> Option<usize> {
    let mut at = skip_space(prefix, 0);
    if prefix.get(at..)?.starts_with(b"<?xml") {
        let end = find(prefix.get(at..)?, b"?>")?;
        at = skip_space(prefix, at + end + 2);
    }
    let rest = prefix.get(at..)?;
    let is_html = starts_with_ignore_case(rest, b"<!doctype html")
        || (starts_with_ignore_case(rest, b"<html")
            && rest
                .get(5)
                .is_none_or(|b| b.is_ascii_whitespace() || *b == b'>'));
    is_html.then_some(at)
}

/// The `encoding` pseudo-attribute of an XML declaration at the very start, if any.
fn declared_encoding(prefix: &[u8]) -> Option<String> {
    let decl = prefix.strip_prefix(b"<?xml")?;
    let decl = decl.get(..find(decl, b"?>")?)?;
    let at = find(decl, b"encoding")?;
    let rest = decl.get(at + b"encoding".len()..)?;
    let rest = rest.get(skip_space(rest, 0)..)?.strip_prefix(b"=")?;
    let rest = rest.get(skip_space(rest, 0)..)?;
    let (&quote, value) = rest.split_first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let value = value.get(..value.iter().position(|&b| b == quote)?)?;
    Some(String::from_utf8_lossy(value).trim().to_owned())
}

fn skip_space(bytes: &[u8], from: usize) -> usize {
    let skipped = bytes.get(from..).map_or(0, |b| {
        b.iter().take_while(|c| c.is_ascii_whitespace()).count()
    });
    from + skipped
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn starts_with_ignore_case(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Transcodes a Latin-1 labelled guide to UTF-8. Like browsers, the ISO-8859-1 label is read as
/// windows-1252: its 0x80–0x9F are the printable characters (€, “, ”, …) such files really hold.
pub(crate) struct Latin1<R> {
    inner: R,
    out: Vec<u8>,
    pos: usize,
}

/// Bytes consumed per refill; each becomes at most three UTF-8 bytes.
const LATIN1_CHUNK: usize = 8 * 1024;

impl<R: BufRead> Latin1<R> {
    fn new(inner: R) -> Self {
        Latin1 {
            inner,
            out: Vec::with_capacity(LATIN1_CHUNK * 3),
            pos: 0,
        }
    }
}

impl<R: BufRead> Read for Latin1<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), available.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Latin1<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.out.len() {
            self.out.clear();
            self.pos = 0;
            let chunk = self.inner.fill_buf()?;
            let n = chunk.len().min(LATIN1_CHUNK);
            let mut utf8 = [0u8; 4];
            for &b in chunk.iter().take(n) {
                let c = windows_1252(b);
                self.out
                    .extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
            self.inner.consume(n);
        }
        Ok(self.out.get(self.pos..).unwrap_or_default())
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.out.len());
    }
}

/// The character a windows-1252 byte stands for; the five unassigned bytes map to the C1
/// controls of the same value, as the WHATWG decoder does.
fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž',
        '\u{8F}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}',
        'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9F => HIGH
            .get(usize::from(b - 0x80))
            .copied()
            .unwrap_or(char::REPLACEMENT_CHARACTER),
        _ => char::from(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: Result<Input<&[u8]>, XmltvError>) -> Result<String, XmltvError> {
        let mut out = Vec::new();
        match input? {
            Input::Utf8(mut r) => r.read_to_end(&mut out),
            Input::Latin1(mut r) => r.read_to_end(&mut out),
        }
        .expect("read from memory");
        Ok(String::from_utf8(out).expect("utf-8 out"))
    }

    #[test]
    fn utf8_passes_through_and_bom_is_dropped() {
        let doc = "\u{FEFF}<?xml version=\"1.0\" encoding=\"UTF-8\"?><tv>é</tv>";
        let out = read_all(prepare(doc.as_bytes())).expect("utf-8");
        assert_eq!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><tv>é</tv>");
    }

    #[test]
    fn latin1_is_transcoded() {
        let mut doc = b"<?xml version='1.0' encoding='ISO-8859-1'?><tv>caf".to_vec();
        doc.extend_from_slice(&[0xE9, b' ', 0x80, b' ', 0x93, b'x', 0x94]);
        doc.extend_from_slice(b"</tv>");
        let out = read_all(prepare(doc.as_slice())).expect("latin-1");
        assert!(out.ends_with("<tv>café € “x”</tv>"), "{out}");
    }

    #[test]
    fn long_latin1_input_crosses_chunks() {
        let mut doc = b"<?xml version=\"1.0\" encoding=\"latin1\"?>".to_vec();
        doc.extend(std::iter::repeat_n(0xE9u8, 3 * LATIN1_CHUNK + 7));
        let out = read_all(prepare(doc.as_slice())).expect("latin-1");
        assert_eq!(
            out.chars().filter(|&c| c == 'é').count(),
            3 * LATIN1_CHUNK + 7
        );
    }

    #[test]
    fn other_encodings_are_refused_by_name() {
        let doc = b"<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><tv/>";
        let err = read_all(prepare(doc.as_slice())).expect_err("sjis");
        assert_eq!(
            err.to_string(),
            "unsupported encoding Shift_JIS (guides must be UTF-8, US-ASCII, ISO-8859-1 or windows-1252)"
        );
        let utf16: Vec<u8> = "<?xml version=\"1.0\"?>"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let err = read_all(prepare(utf16.as_slice())).expect_err("utf-16");
        assert!(matches!(err, XmltvError::UnsupportedEncoding { name } if name == "UTF-16LE"));
    }

    #[test]
    fn html_pages_are_recognised() {
        for page in [
            "<!DOCTYPE html><html><head><title>404</title>",
            "\n\n  <html lang=\"en\"><body>Not Found",
            "<?xml version=\"1.0\"?>\n<!doctype HTML>",
            "<HTML>",
        ] {
            let err = read_all(prepare(page.as_bytes())).expect_err(page);
            assert!(matches!(err, XmltvError::Html { .. }), "{page}: {err:?}");
        }
        let err = read_all(prepare("\n\n<html>".as_bytes())).expect_err("html");
        assert_eq!(err.to_string(), "an HTML page, not an XMLTV guide (line 3)");
        // An element that merely starts with "html" is not a page.
        assert!(read_all(prepare("<htmlish/>".as_bytes())).is_ok());
    }
}
