//! HTTP, both ends: the heads of requests we serve, the heads of upstream responses, and the
//! chunked bodies panels send.

use bytes::BytesMut;

use super::Splits;
use crate::http::request::{Parse, parse_head};
use crate::upstream::chunked::{Chunked, Step};
use crate::upstream::head::{HEAD_LIMIT, framing, parse_final_head};

/// A request head under limits the first byte picks: never a panic; a complete head lies within
/// the buffer and the limits, parses the same from exactly its own bytes, and not from fewer.
pub fn http_request(data: &[u8]) {
    let Some((&selector, buf)) = data.split_first() else {
        return;
    };
    let max_head = 16 + usize::from(selector) * 16;
    let max_body = usize::from(selector);
    match parse_head(buf, max_head, max_body) {
        Parse::Partial => assert!(buf.len() <= max_head, "partial past the limit"),
        Parse::Reject(reject) => assert!(matches!(reject.status(), 400 | 411 | 413 | 431)),
        Parse::Complete(head) => {
            assert!(head.len <= buf.len() && head.len <= max_head, "{head:?}");
            assert!(head.body_len <= max_body, "{head:?}");
            assert!(head.path.starts_with('/'), "{head:?}");
            head.keep_alive();
            match parse_head(&buf[..head.len], max_head, max_body) {
                Parse::Complete(again) => assert_eq!(
                    (again.len, &again.path, &again.query, &again.headers),
                    (head.len, &head.path, &head.query, &head.headers)
                ),
                other => panic!("the head alone parsed as {other:?}"),
            }
            let short = parse_head(&buf[..head.len - 1], max_head, max_body);
            assert!(!matches!(short, Parse::Complete(_)), "{short:?}");
        }
    }
}

/// What parsing a response head left: the outcome and the bytes left in the buffer.
type HeadOutcome = Result<Option<(u16, Vec<(String, String)>)>, ()>;

fn parse_response_pieces(pieces: &[&[u8]]) -> (HeadOutcome, Vec<u8>) {
    let mut buf = BytesMut::new();
    for (i, piece) in pieces.iter().enumerate() {
        buf.extend_from_slice(piece);
        match parse_final_head(&mut buf) {
            Ok(None) => continue,
            Ok(Some(head)) => {
                let _ = framing(&head);
                let mut rest = buf.to_vec();
                rest.extend(pieces[i + 1..].concat());
                return (Ok(Some((head.status, head.headers))), rest);
            }
            Err(message) => {
                assert!(!message.is_empty());
                return (Err(()), Vec::new());
            }
        }
    }
    (Ok(None), buf.to_vec())
}

/// An upstream response head, read whole or in two reads split where the first byte says:
/// never a panic, never a 1xx as the final head, the body bytes that came with it kept, and the
/// same outcome either way.
pub fn response_head(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let (whole, rest) = parse_response_pieces(&[bytes]);
    match &whole {
        Ok(Some((status, _))) => {
            assert!(
                !(100..200).contains(status),
                "interim {status} taken as final"
            );
            assert!(bytes.ends_with(&rest), "body bytes lost");
        }
        Ok(None) => assert!(bytes.len() < HEAD_LIMIT, "incomplete past the limit"),
        Err(()) => {}
    }
    let at = usize::from(selector) * bytes.len() / 256;
    let (split, split_rest) = parse_response_pieces(&[&bytes[..at], &bytes[at..]]);
    assert_eq!(whole, split, "split at {at}");
    if whole.is_ok() {
        assert_eq!(rest, split_rest, "split at {at}");
    }
}

/// How a chunked decode ended, what it produced, and the bytes after the body.
#[derive(Debug, PartialEq, Eq)]
struct Decoded {
    payload: Vec<u8>,
    end: Result<bool, &'static str>,
    after: Vec<u8>,
}

fn decode_pieces(pieces: &[&[u8]]) -> Decoded {
    let mut decoder = Chunked::new();
    let mut buf = BytesMut::new();
    let mut payload = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Step::Data(data)) => {
                    assert!(!data.is_empty(), "an empty payload slice");
                    payload.extend_from_slice(&data);
                }
                Ok(Step::NeedMore) => break,
                Ok(Step::Done) => {
                    let mut after = buf.to_vec();
                    after.extend(pieces[i + 1..].concat());
                    return Decoded {
                        payload,
                        end: Ok(true),
                        after,
                    };
                }
                Err(e) => {
                    return Decoded {
                        payload,
                        end: Err(e),
                        after: Vec::new(),
                    };
                }
            }
        }
    }
    Decoded {
        payload,
        end: Ok(false),
        after: Vec::new(),
    }
}

/// A chunked body fed whole and in random splits the first byte seeds: never a panic, the same
/// payload, the same end and the same bytes after the body, whatever the split.
pub fn chunked(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let whole = decode_pieces(&[body]);
    let split = decode_pieces(&Splits::new(selector).cut(body));
    assert_eq!(whole, split);
    if whole.end == Ok(true) {
        assert!(whole.payload.len() + whole.after.len() < body.len().max(1));
    }
}
