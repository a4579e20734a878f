//! One programme's children, buffered (bounded) so they can be checked and written in DTD order.
//!
//! Children known to the DTD are kept with the attributes the DTD allows, then stably sorted
//! into its order; unknown children, repeats of at-most-once children, empty titles and
//! descriptions and malformed `xmltv_ns` episode numbers are dropped. A programme left without
//! a title is not written. Inside structured children (credits, video, rating, ...) elements
//! are copied re-escaped, but not reordered or checked against the DTD beyond their names.

use std::io::BufRead;

use quick_xml::events::BytesStart;

use super::Limits;
use super::error::XmltvError;
use super::stream::{Tok, XmlStream};
use super::text::{attr_value, is_name, is_space, push_attr, push_ref, push_text};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Content {
    /// Text only: nested elements are dropped.
    Text,
    /// `EMPTY` in the DTD: any content is dropped.
    Empty,
    /// Element content, copied through.
    Nested,
}

struct Child {
    name: &'static str,
    once: bool,
    content: Content,
    /// Allowed attributes and, for enumerated ones, their values.
    attrs: &'static [(&'static str, &'static [&'static str])],
    required: Option<&'static str>,
}

const fn child(
    name: &'static str,
    once: bool,
    content: Content,
    attrs: &'static [(&'static str, &'static [&'static str])],
) -> Child {
    Child {
        name,
        once,
        content,
        attrs,
        required: None,
    }
}

const LANG: &[(&str, &[&str])] = &[("lang", &[])];

/// The children of `<programme>`, in the order `xmltv.dtd` requires.
const CHILDREN: [Child; 25] = [
    child("title", false, Content::Text, LANG),
    child("sub-title", false, Content::Text, LANG),
    child("desc", false, Content::Text, LANG),
    child("credits", true, Content::Nested, &[]),
    child("date", true, Content::Text, &[]),
    child("category", false, Content::Text, LANG),
    child("keyword", false, Content::Text, LANG),
    child("language", true, Content::Text, LANG),
    child("orig-language", true, Content::Text, LANG),
    Child {
        required: Some("units"),
        ..child(
            "length",
            true,
            Content::Text,
            &[("units", &["seconds", "minutes", "hours"])],
        )
    },
    Child {
        required: Some("src"),
        ..child(
            "icon",
            false,
            Content::Empty,
            &[("src", &[]), ("width", &[]), ("height", &[])],
        )
    },
    child("url", false, Content::Text, &[("system", &[])]),
    child("country", false, Content::Text, LANG),
    child("episode-num", false, Content::Text, &[("system", &[])]),
    child("video", true, Content::Nested, &[]),
    child("audio", true, Content::Nested, &[]),
    child(
        "previously-shown",
        true,
        Content::Empty,
        &[("start", &[]), ("channel", &[])],
    ),
    child("premiere", true, Content::Text, LANG),
    child("last-chance", true, Content::Text, LANG),
    child("new", true, Content::Empty, &[]),
    child(
        "subtitles",
        false,
        Content::Nested,
        &[("type", &["teletext", "onscreen", "deaf-signed"])],
    ),
    child("rating", false, Content::Nested, &[("system", &[])]),
    child("star-rating", false, Content::Nested, &[("system", &[])]),
    Child {
        required: Some("type"),
        ..child(
            "review",
            false,
            Content::Text,
            &[
                ("type", &["text", "url"]),
                ("source", &[]),
                ("reviewer", &[]),
                ("lang", &[]),
            ],
        )
    },
    child(
        "image",
        false,
        Content::Text,
        &[
            (
                "type",
                &["poster", "backdrop", "still", "person", "character"],
            ),
            ("size", &["1", "2", "3"]),
            ("orient", &["P", "L"]),
            ("system", &[]),
        ],
    ),
];

/// Children kept per programme; more make it "too large" (each costs an index entry).
const MAX_CHILDREN: usize = 256;

const TITLE: usize = 0;
const DESC: usize = 2;
const EPISODE_NUM: usize = 13;

/// Why a programme is not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unusable {
    NoTitle,
    TooLarge,
}

/// The serialised children of the programme being read, reused from one programme to the next.
#[derive(Default)]
pub(crate) struct Programme {
    body: Vec<u8>,
    parts: Vec<Part>,
    seen_once: u32,
    too_large: bool,
    scratch: String,
}

struct Part {
    rank: usize,
    start: usize,
    end: usize,
}

impl Programme {
    /// Reads the children of the `<programme>` whose start tag was just returned.
    pub(crate) fn read<R: BufRead>(
        &mut self,
        xml: &mut XmlStream<R>,
        limits: &Limits,
    ) -> Result<(), XmltvError> {
        self.body.clear();
        self.parts.clear();
        self.seen_once = 0;
        self.too_large = false;
        loop {
            let child_level = xml.depth() == 1;
            let start = self.body.len();
            let (rank, empty) = match xml.next()? {
                Tok::End(_) if child_level => return Ok(()),
                Tok::Eof => return Ok(()),
                Tok::Start(e) if child_level => (self.open_child(&e), false),
                Tok::Empty(e) if child_level => (self.open_child(&e), true),
                _ => continue,
            };
            let Some(rank) = rank else {
                if !empty {
                    xml.skip_element()?;
                }
                continue;
            };
            let Some(spec) = CHILDREN.get(rank) else {
                continue;
            };
            if empty && spec.content != Content::Empty {
                // `<category/>`: the start tag written must close itself, or the EPG is broken.
                self.body.pop();
                self.body.extend_from_slice(b"/>");
            }
            let has_text = !empty && self.copy_content(xml, spec.content, limits)?;
            if self.body.len() > limits.max_programme_bytes {
                self.too_large = true;
            }
            let part = self.body.get(start..).unwrap_or_default();
            let invalid = match rank {
                TITLE | DESC => !has_text,
                EPISODE_NUM => !episode_num_ok(part),
                _ => false,
            };
            if self.too_large || invalid {
                self.body.truncate(start);
                continue;
            }
            if spec.once {
                self.seen_once |= 1 << rank;
            }
            self.parts.push(Part {
                rank,
                start,
                end: self.body.len(),
            });
        }
    }

    /// Whether the programme just read can be written.
    pub(crate) fn check(&self) -> Result<(), Unusable> {
        if self.too_large {
            Err(Unusable::TooLarge)
        } else if !self.parts.iter().any(|p| p.rank == TITLE) {
            Err(Unusable::NoTitle)
        } else {
            Ok(())
        }
    }

    /// Appends the children, in DTD order, one per indented line.
    pub(crate) fn write_children(&mut self, out: &mut Vec<u8>) {
        // Stable: children of one kind keep their source order.
        self.parts.sort_by_key(|p| p.rank);
        for part in &self.parts {
            out.extend_from_slice(b"\n  ");
            out.extend_from_slice(self.body.get(part.start..part.end).unwrap_or_default());
        }
    }

    /// Writes the start tag of a known child and returns its rank; `None` to drop the child.
    fn open_child(&mut self, e: &BytesStart<'_>) -> Option<usize> {
        let rank = CHILDREN.iter().position(|c| c.name == e.name().as_ref())?;
        let spec = CHILDREN.get(rank)?;
        if self.parts.len() >= MAX_CHILDREN {
            self.too_large = true;
        }
        if self.too_large || (spec.once && self.seen_once & (1 << rank) != 0) {
            return None;
        }
        let start = self.body.len();
        self.body.push(b'<');
        self.body.extend_from_slice(spec.name.as_bytes());
        let mut has_required = spec.required.is_none();
        for attr in e.attributes().flatten() {
            let key = attr.key.as_ref();
            let Some((_, allowed)) = spec.attrs.iter().find(|(name, _)| *name == key) else {
                continue;
            };
            let value = attr_value(&attr);
            if !allowed.is_empty() && !allowed.contains(&value.as_ref()) {
                continue;
            }
            has_required |= spec.required == Some(key);
            self.body.push(b' ');
            self.body.extend_from_slice(key.as_bytes());
            self.body.extend_from_slice(b"=\"");
            push_attr(&mut self.body, &value);
            self.body.push(b'"');
        }
        if !has_required {
            self.body.truncate(start);
            return None;
        }
        if spec.content == Content::Empty {
            self.body.extend_from_slice(b"/>");
        } else {
            self.body.push(b'>');
        }
        Some(rank)
    }

    /// Copies the content of the child whose start tag was just read, closing it; returns
    /// whether it held any non-whitespace text. Past the size limit it only reads.
    fn copy_content<R: BufRead>(
        &mut self,
        xml: &mut XmlStream<R>,
        content: Content,
        limits: &Limits,
    ) -> Result<bool, XmltvError> {
        let open = xml.depth();
        let mut has_text = false;
        // Whitespace between tags is layout, not content: dropped so our own layout applies.
        let mut after_tag = true;
        let mut dropping_depth = None;
        while xml.depth() >= open {
            let depth = xml.depth();
            let tok = xml.next()?;
            // Checked before writing, so the body never grows much past the limit.
            if self.body.len() + tok.raw_len() > limits.max_programme_bytes {
                self.too_large = true;
            }
            if self.too_large {
                continue;
            }
            let closing_child = matches!(tok, Tok::End(_)) && depth == open;
            if closing_child {
                if content != Content::Empty {
                    self.body.extend_from_slice(b"</");
                    if let Tok::End(e) = &tok {
                        self.body.extend_from_slice(e.name().as_ref().as_bytes());
                    }
                    self.body.push(b'>');
                }
                break;
            }
            if let Some(d) = dropping_depth {
                if matches!(tok, Tok::End(_)) && depth == d {
                    dropping_depth = None;
                }
                continue;
            }
            match tok {
                // Elements inside text-only children, and names that would not be XML.
                Tok::Start(e) | Tok::Empty(e)
                    if content != Content::Nested || !is_name(e.name().as_ref()) =>
                {
                    if xml.depth() > depth {
                        dropping_depth = Some(depth + 1);
                    }
                }
                Tok::Start(e) => {
                    push_tag(&mut self.body, &e, false);
                    after_tag = true;
                }
                Tok::Empty(e) => {
                    push_tag(&mut self.body, &e, true);
                    after_tag = true;
                }
                Tok::End(e) => {
                    self.body.extend_from_slice(b"</");
                    self.body.extend_from_slice(e.name().as_ref().as_bytes());
                    self.body.push(b'>');
                    after_tag = true;
                }
                _ if content == Content::Empty => {}
                // Structured children (credits, video, rating, ...) hold elements, not text.
                Tok::Text(_) | Tok::CData(_) | Tok::Ref(_)
                    if content == Content::Nested && depth == open => {}
                Tok::Text(t) | Tok::CData(t) => {
                    if !(after_tag && is_space(&t)) {
                        has_text |= !is_space(&t);
                        push_text(&mut self.body, &t);
                        after_tag = false;
                    }
                }
                Tok::Ref(name) => {
                    self.scratch.clear();
                    push_ref(&mut self.scratch, &name);
                    has_text |= !is_space(&self.scratch);
                    push_text(&mut self.body, &self.scratch);
                    after_tag = false;
                }
                Tok::Skip | Tok::Eof => {}
            }
        }
        Ok(has_text)
    }
}

/// Whether a serialised `<episode-num>` is valid: any text for other systems, and for
/// `xmltv_ns` the `season.episode.part` form (each `N` or `N/M`, may be empty) that
/// tv_validate_file checks. The text is as written, so `&` or `<` make it invalid, as they should.
fn episode_num_ok(part: &[u8]) -> bool {
    let Some(open_end) = part.iter().position(|&b| b == b'>') else {
        return false;
    };
    let (tag, rest) = part.split_at(open_end);
    if !tag.ends_with(b"system=\"xmltv_ns\"") {
        return true;
    }
    let text = rest
        .get(1..)
        .and_then(|r| r.strip_suffix(b"</episode-num>"))
        .unwrap_or_default();
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let fields: Vec<&str> = text.split('.').collect();
    fields.len() == 3
        && fields
            .iter()
            .all(|field| match field.trim().split_once('/') {
                None => digits(field.trim()),
                Some((number, total)) => {
                    digits(number.trim()) && !total.trim().is_empty() && digits(total.trim())
                }
            })
}

/// Appends a nested start (or empty) tag with all its attributes re-escaped.
fn push_tag(out: &mut Vec<u8>, e: &BytesStart<'_>, empty: bool) {
    out.push(b'<');
    out.extend_from_slice(e.name().as_ref().as_bytes());
    for attr in e.attributes().flatten() {
        if !is_name(attr.key.as_ref()) {
            continue;
        }
        out.push(b' ');
        out.extend_from_slice(attr.key.as_ref().as_bytes());
        out.extend_from_slice(b"=\"");
        push_attr(out, &attr_value(&attr));
        out.push(b'"');
    }
    out.extend_from_slice(if empty { b"/>" } else { b">" });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_ranks_match_the_table() {
        assert_eq!(CHILDREN[TITLE].name, "title");
        assert_eq!(CHILDREN[DESC].name, "desc");
        assert_eq!(CHILDREN[EPISODE_NUM].name, "episode-num");
    }

    #[test]
    fn xmltv_ns_episode_numbers_are_checked() {
        let ok = |text: &str| {
            episode_num_ok(
                format!("<episode-num system=\"xmltv_ns\">{text}</episode-num>").as_bytes(),
            )
        };
        for good in ["0.1.0/1", "1.2.", "..", " 2 / 10 . 4 . ", "/5..", "0.0.0"] {
            assert!(ok(good), "{good}");
        }
        for bad in [
            "",
            "1.2",
            "1.2.3.4",
            "1 2..",
            "a.b.c",
            "1/..",
            "1.2&amp;.0",
            "S01E02",
        ] {
            assert!(!ok(bad), "{bad}");
        }
        assert!(episode_num_ok(
            b"<episode-num system=\"onscreen\">S01E02</episode-num>"
        ));
        assert!(episode_num_ok(b"<episode-num>anything</episode-num>"));
    }
}
