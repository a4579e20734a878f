//! Decodes `Transfer-Encoding: chunked` in place: chunk payloads leave the receive buffer as
//! frozen slices of it (no copy); sizes, extensions, CRLFs and trailers are parsed and dropped.
//!
//! httparse reads the size lines; the state machine around it is ours, because httparse has none
//! that hands out payload without copying, tolerates a bare LF, or bounds the trailers.

use bytes::{Buf, BytesMut};

/// The longest chunk-size line (size plus extensions) we accept.
const MAX_SIZE_LINE: usize = 4096;
/// The most trailer bytes we accept after the last chunk.
const MAX_TRAILERS: usize = 64 * 1024;

/// What one decoding step produced.
#[derive(Debug)]
pub(crate) enum Step {
    /// Payload bytes (a slice of the receive buffer).
    Data(BytesMut),
    /// The buffer holds no complete next element: read more, then call again.
    NeedMore,
    /// The last chunk and the trailers have been consumed.
    Done,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

/// A chunked-body decoder; feed it the receive buffer after each read.
#[derive(Debug)]
pub(crate) struct Chunked {
    state: State,
    trailer_bytes: usize,
    /// Bytes of the current line already searched for its end, so that a line arriving in
    /// small pieces is not rescanned from its start each time.
    scanned: usize,
}

impl Chunked {
    pub(crate) fn new() -> Chunked {
        Chunked {
            state: State::Size,
            trailer_bytes: 0,
            scanned: 0,
        }
    }

    /// Consumes framing from the front of `buf` and returns the next payload slice, if any.
    /// Bytes after the end of the body stay in `buf`.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Step, &'static str> {
        loop {
            match self.state {
                State::Size => {
                    let Some((line, used)) = take_line(buf, &mut self.scanned, MAX_SIZE_LINE)?
                    else {
                        return Ok(Step::NeedMore);
                    };
                    let size = parse_size(line, buf.get(..used).unwrap_or_default())?;
                    buf.advance(used);
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(remaining) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let take = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                    return Ok(Step::Data(buf.split_to(take)));
                }
                State::DataEnd => match buf.first() {
                    None => return Ok(Step::NeedMore),
                    // A bare LF is tolerated, as browsers do.
                    Some(b'\n') => {
                        buf.advance(1);
                        self.state = State::Size;
                    }
                    Some(b'\r') => match buf.get(1) {
                        None => return Ok(Step::NeedMore),
                        Some(b'\n') => {
                            buf.advance(2);
                            self.state = State::Size;
                        }
                        Some(_) => return Err("missing CRLF after chunk data"),
                    },
                    Some(_) => return Err("missing CRLF after chunk data"),
                },
                State::Trailers => {
                    let room = MAX_TRAILERS.saturating_sub(self.trailer_bytes);
                    let Some((line, used)) = take_line(buf, &mut self.scanned, room)
                        .map_err(|_| "trailers too large")?
                    else {
                        return Ok(Step::NeedMore);
                    };
                    let end = line.is_empty();
                    buf.advance(used);
                    self.trailer_bytes += used;
                    if end {
                        self.state = State::Done;
                    }
                }
                State::Done => return Ok(Step::Done),
            }
        }
    }
}

/// The line at the front of `buf` without its line ending, and the bytes it occupies with it.
/// `None` when no line ending has arrived yet; an error when the line is longer than `max`.
/// `scanned` carries the search position between calls for the same line.
fn take_line<'b>(
    buf: &'b BytesMut,
    scanned: &mut usize,
    max: usize,
) -> Result<Option<(&'b [u8], usize)>, &'static str> {
    let from = (*scanned).min(buf.len());
    let found = buf
        .get(from..)
        .unwrap_or_default()
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| from + i);
    *scanned = if found.is_some() { 0 } else { buf.len() };
    match found {
        Some(lf) if lf < max => {
            let line = buf.get(..lf).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            Ok(Some((line, lf + 1)))
        }
        Some(_) => Err("chunk size line too long"),
        None if buf.len() >= max => Err("chunk size line too long"),
        None => Ok(None),
    }
}

/// The size of a chunk-size line `HEX[ ]*[;extensions]`, given without and with its line ending;
/// extensions are ignored.
fn parse_size(line: &[u8], with_ending: &[u8]) -> Result<u64, &'static str> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    // httparse reads a line with no digits as size 0; RFC 9112 wants at least one.
    if digits == 0 {
        return Err("invalid chunk size");
    }
    let parsed = if with_ending.ends_with(b"\r\n") {
        httparse::parse_chunk_size(with_ending)
    } else {
        // A bare LF, which httparse refuses: rare enough that a copy does not matter.
        httparse::parse_chunk_size(&[line, b"\r\n"].concat())
    };
    let size = match parsed {
        Ok(httparse::Status::Complete((_, size))) => size,
        // httparse takes at most 16 digits, which is all a u64 holds.
        Err(_) if digits > 16 => return Err("chunk size overflows"),
        Ok(httparse::Status::Partial) | Err(_) => return Err("invalid chunk size"),
    };
    // httparse skips extensions unread; RFC 9112 allows no control character in them.
    let extensions = line.get(digits..).unwrap_or_default();
    if extensions
        .iter()
        .any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f))
    {
        return Err("control character in chunk extension");
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `split` bytes; returns the payload and whether the end was seen.
    fn decode_in_pieces(
        input: &[u8],
        split: usize,
    ) -> Result<(Vec<u8>, bool, BytesMut), &'static str> {
        let mut decoder = Chunked::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in input.chunks(split) {
            buf.extend_from_slice(piece);
            loop {
                match decoder.decode(&mut buf)? {
                    Step::Data(b) => {
                        assert!(!b.is_empty());
                        out.extend_from_slice(&b);
                    }
                    Step::NeedMore => break,
                    Step::Done => return Ok((out, true, buf)),
                }
            }
        }
        Ok((out, false, buf))
    }

    const BODY: &[u8] = b"5;name=value\r\nhello\r\n7 ; a=\"b c\"\r\n, world\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n\
        000\r\nX-Trailer: 1\r\nX-Other: two\r\n\r\nNEXT";

    #[test]
    fn decodes_every_split_including_byte_by_byte() {
        for split in 1..=BODY.len() {
            let (out, done, rest) = decode_in_pieces(BODY, split).unwrap();
            assert_eq!(
                out, b"hello, worldabcdefghijklmnopqrstuvwxyz",
                "split {split}"
            );
            assert!(done, "split {split}");
            // Bytes after the body are left for whoever reads next; the pieces after
            // `Done` are not fed, so only a prefix of NEXT may be there.
            assert!(b"NEXT".starts_with(&rest), "split {split}: {rest:?}");
        }
    }

    #[test]
    fn tolerates_bare_lf_and_uppercase_hex() {
        let (out, done, _) = decode_in_pieces(b"A\nabcdefghij\n0\n\n", 3).unwrap();
        assert_eq!(out, b"abcdefghij");
        assert!(done);
        let (out, done, _) = decode_in_pieces(b"3 ;x=y\nabc\n0;z\n\n", 1).unwrap();
        assert_eq!(out, b"abc");
        assert!(done);
    }

    #[test]
    fn incomplete_body_is_not_done() {
        let (out, done, _) = decode_in_pieces(b"5\r\nhel", 2).unwrap();
        assert_eq!(out, b"hel");
        assert!(!done);
        let (_, done, _) = decode_in_pieces(b"0\r\nTrailer: x\r\n", 1).unwrap();
        assert!(!done);
    }

    #[test]
    fn rejects_broken_chunking() {
        let long_ext = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(MAX_SIZE_LINE));
        let long_trailer = format!("0\r\nX: {}\r\n\r\n", "t".repeat(MAX_TRAILERS));
        let cases: &[(&[u8], &str)] = &[
            (b"zz\r\n", "invalid chunk size"),
            (b"\r\n", "invalid chunk size"),
            (b" 5\r\nhello\r\n", "invalid chunk size"),
            (b"5x\r\nhello\r\n", "invalid chunk size"),
            (b"-5\r\nhello\r\n", "invalid chunk size"),
            (b"5\r\nhelloXX0\r\n\r\n", "missing CRLF after chunk data"),
            (b"5\r\nhello\rX", "missing CRLF after chunk data"),
            (b"10000000000000000\r\n", "chunk size overflows"),
            (b"1;a\x01b\r\nx\r\n", "control character in chunk extension"),
            (b"1;a\rb\r\nx\r\n", "invalid chunk size"),
            (b";a\r\nx\r\n", "invalid chunk size"),
            (long_ext.as_bytes(), "chunk size line too long"),
            (long_trailer.as_bytes(), "trailers too large"),
        ];
        for (input, want) in cases {
            for split in [1, 2, 7, input.len()] {
                let got = decode_in_pieces(input, split).err();
                assert_eq!(
                    got,
                    Some(*want),
                    "{:?} split {split}",
                    String::from_utf8_lossy(input)
                );
            }
        }
        // A line with no end is rejected once it is longer than any valid one.
        let endless = vec![b'f'; MAX_SIZE_LINE];
        assert_eq!(
            decode_in_pieces(&endless, 100).err(),
            Some("chunk size line too long")
        );
    }

    #[test]
    fn largest_size_is_accepted() {
        let mut decoder = Chunked::new();
        let mut buf = BytesMut::from(&b"ffffffffffffffff\r\nabc"[..]);
        match decoder.decode(&mut buf).unwrap() {
            Step::Data(b) => assert_eq!(&b[..], b"abc"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(decoder.decode(&mut buf).unwrap(), Step::NeedMore));
    }

    #[test]
    fn payload_is_a_slice_of_the_buffer() {
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(b"4\r\nabcd\r\n");
        let start = buf.as_ptr() as usize;
        let mut decoder = Chunked::new();
        let Step::Data(b) = decoder.decode(&mut buf).unwrap() else {
            panic!("expected data")
        };
        assert_eq!(b.as_ptr() as usize, start + 3, "payload was copied");
    }
}
