//! A guide as a checked stream of the XML events inside `<tv>`.
//!
//! quick-xml reads through a [`Guard`] that caps every token (one tag, or one run of text) and
//! counts lines, so memory stays bounded whatever the input and every error names its line.
//! On top, the document rules: a single `<tv>` root, bounded nesting, nothing after `</tv>`.

use std::borrow::Cow;
use std::io::{self, BufRead, Read};

use quick_xml::Reader;
use quick_xml::events::{BytesEnd, BytesStart, Event};

use super::Limits;
use super::error::{InputFault, XmltvError, from_io};
use super::input::{self, Input};
use super::source::{GuideReader, decompress};
use super::text::is_space;

/// Element names longer than this are refused: quick-xml keeps open names for end-tag checks.
const MAX_NAME: usize = 256;
/// After a token larger than this, the event buffer is shrunk back.
const KEEP_BUFFER: usize = 64 * 1024;

/// One event inside `<tv>`.
pub(crate) enum Tok<'a> {
    Start(BytesStart<'a>),
    Empty(BytesStart<'a>),
    End(BytesEnd<'a>),
    /// Character data as written (escaped, but references come separately as [`Tok::Ref`]).
    Text(Cow<'a, str>),
    /// An entity or character reference, without `&` and `;`.
    Ref(Cow<'a, str>),
    CData(Cow<'a, str>),
    /// Comments, processing instructions and whitespace outside elements.
    Skip,
    /// After `</tv>` and the end of the input.
    Eof,
}

impl Tok<'_> {
    /// The size of the token as read, before any escaping on output.
    pub(crate) fn raw_len(&self) -> usize {
        match self {
            Tok::Start(e) | Tok::Empty(e) => e.len(),
            Tok::End(e) => e.len(),
            Tok::Text(t) | Tok::Ref(t) | Tok::CData(t) => t.len(),
            Tok::Skip | Tok::Eof => 0,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Prolog,
    Root,
    Epilog,
    Done,
}

/// A guide being read, event by event.
pub(crate) struct XmlStream<R: BufRead> {
    reader: Reader<Guard<Input<GuideReader<R>>>>,
    buf: Vec<u8>,
    state: State,
    depth: usize,
    max_depth: usize,
    line: u64,
    seen_markup: bool,
}

impl<R: BufRead> XmlStream<R> {
    /// Starts reading the guide in `reader` (gunzipped if need be); fails at once on unsupported
    /// encodings and HTML pages.
    pub(crate) fn new(reader: R, limits: &Limits) -> Result<Self, XmltvError> {
        let input = input::prepare(decompress(reader, limits)?)?;
        let mut reader = Reader::from_reader(Guard {
            inner: input,
            newlines: 0,
            used: 0,
            limit: limits.max_token_bytes,
        });
        // Bare `&` ("AT&T") is common in provider guides; taken as literal text, escaped on output.
        reader.config_mut().allow_dangling_amp = true;
        Ok(XmlStream {
            reader,
            buf: Vec::new(),
            state: State::Prolog,
            depth: 0,
            max_depth: limits.max_depth,
            line: 1,
            seen_markup: false,
        })
    }

    /// Elements open inside `<tv>`: 0 between top-level elements, 1 inside a `<programme>`.
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    /// The line the last event started on (1-based).
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// A malformed-XML error at the current line.
    pub(crate) fn malformed(&self, reason: impl Into<String>) -> XmltvError {
        XmltvError::Malformed {
            line: self.line,
            reason: reason.into(),
        }
    }

    /// The next event inside `<tv>`.
    pub(crate) fn next(&mut self) -> Result<Tok<'_>, XmltvError> {
        if self.state == State::Done {
            return Ok(Tok::Eof);
        }
        self.buf.clear();
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf.shrink_to(KEEP_BUFFER);
        }
        let guard = self.reader.get_mut();
        guard.used = 0;
        self.line = guard.newlines + 1;
        let event = match self.reader.read_event_into(&mut self.buf) {
            Ok(event) => event,
            Err(err) => {
                // The line where reading stopped: the error is in the token just read.
                let line = self.reader.get_ref().newlines + 1;
                return Err(map_error(err, line));
            }
        };
        let line = self.line;
        let malformed = |reason: &str| XmltvError::Malformed {
            line,
            reason: reason.to_owned(),
        };
        match self.state {
            State::Prolog => match event {
                Event::Start(e) if e.name().as_ref() == "tv" => {
                    self.state = State::Root;
                    Ok(Tok::Skip)
                }
                Event::Empty(e) if e.name().as_ref() == "tv" => {
                    self.state = State::Epilog;
                    Ok(Tok::Skip)
                }
                Event::Start(e) | Event::Empty(e) => {
                    let root = e.name().as_ref().to_owned();
                    if root.eq_ignore_ascii_case("html") {
                        Err(XmltvError::Html { line })
                    } else {
                        Err(XmltvError::NotXmltv {
                            line,
                            root: root.chars().take(64).collect(),
                        })
                    }
                }
                Event::DocType(d) => {
                    let name = d.split_ascii_whitespace().next().unwrap_or_default();
                    if name.eq_ignore_ascii_case("html") {
                        return Err(XmltvError::Html { line });
                    }
                    self.seen_markup = true;
                    Ok(Tok::Skip)
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {
                    self.seen_markup = true;
                    Ok(Tok::Skip)
                }
                Event::Text(t) if is_space(&t) => Ok(Tok::Skip),
                Event::Text(_) | Event::GeneralRef(_) | Event::CData(_) => {
                    Err(XmltvError::NotXml {
                        line,
                        reason: "text where the first element should be".into(),
                    })
                }
                Event::End(_) => Err(malformed("an end tag before any element")),
                Event::Eof if self.seen_markup => Err(XmltvError::NotXml {
                    line,
                    reason: "no root element".into(),
                }),
                Event::Eof => Err(XmltvError::Empty),
            },
            State::Root => match event {
                Event::Start(e) => {
                    if e.name().as_ref().len() > MAX_NAME {
                        return Err(malformed("an element name longer than 256 bytes"));
                    }
                    if self.depth >= self.max_depth {
                        return Err(XmltvError::Limit {
                            line,
                            what: format!("elements nested deeper than {}", self.max_depth),
                        });
                    }
                    self.depth += 1;
                    Ok(Tok::Start(e))
                }
                Event::Empty(e) => Ok(Tok::Empty(e)),
                Event::End(_) if self.depth == 0 => {
                    self.state = State::Epilog;
                    Ok(Tok::Skip)
                }
                Event::End(e) => {
                    self.depth -= 1;
                    Ok(Tok::End(e))
                }
                Event::Text(t) => Ok(Tok::Text(t.into_inner())),
                Event::GeneralRef(r) => Ok(Tok::Ref(r.into_inner())),
                Event::CData(c) => Ok(Tok::CData(c.into_inner())),
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {
                    Ok(Tok::Skip)
                }
                Event::Eof => Err(XmltvError::Truncated { line }),
            },
            State::Epilog => match event {
                Event::Text(t) if is_space(&t) => Ok(Tok::Skip),
                Event::PI(_) | Event::Comment(_) => Ok(Tok::Skip),
                Event::Eof => {
                    self.state = State::Done;
                    Ok(Tok::Eof)
                }
                _ => Err(malformed("content after the end of the </tv> root")),
            },
            State::Done => Ok(Tok::Eof),
        }
    }

    /// Reads past the element whose start tag was just returned.
    pub(crate) fn skip_element(&mut self) -> Result<(), XmltvError> {
        let open = self.depth;
        while self.depth >= open {
            if let Tok::Eof = self.next()? {
                break;
            }
        }
        Ok(())
    }
}

fn map_error(err: quick_xml::Error, line: u64) -> XmltvError {
    match err {
        quick_xml::Error::Io(io) => from_io(&io, line),
        quick_xml::Error::Encoding(_) => XmltvError::InvalidUtf8 { line },
        other => XmltvError::Malformed {
            line,
            reason: other.to_string(),
        },
    }
}

/// Caps each token at `limit` bytes and counts the lines consumed.
///
/// quick-xml copies a whole token into its buffer before returning it; without the cap a 10 MB
/// display-name would cost 10 MB. Refusing to hand out more bytes makes it fail instead.
pub(crate) struct Guard<R> {
    inner: R,
    newlines: u64,
    used: usize,
    limit: usize,
}

impl<R: BufRead> Read for Guard<R> {
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

impl<R: BufRead> BufRead for Guard<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let room = self.limit.saturating_sub(self.used);
        let limit = self.limit;
        let available = self.inner.fill_buf()?;
        if available.is_empty() {
            return Ok(available);
        }
        if room == 0 {
            return Err(InputFault::TokenTooLarge { limit_bytes: limit }.into_io());
        }
        Ok(available.get(..room).unwrap_or(available))
    }

    fn consume(&mut self, amount: usize) {
        // Bytes handed out by fill_buf are still buffered, so this peek does no I/O.
        if let Ok(available) = self.inner.fill_buf() {
            let seen = available
                .iter()
                .take(amount)
                .filter(|&&b| b == b'\n')
                .count();
            self.newlines += seen as u64;
        }
        self.used = self.used.saturating_add(amount);
        self.inner.consume(amount);
    }
}
