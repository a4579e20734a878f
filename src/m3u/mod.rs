//! Extended M3U playlists (PROTOCOLS §6), parsed leniently and incrementally. This module's one
//! job is turning playlist bytes into entries; it does no I/O, so it can be fed a download chunk
//! by chunk and keeps no more than one line and one pending entry, however large the playlist.
//!
//! Lenient on purpose (peers reject minimal playlists and drop `#EXTVLCOPT`, Threadfin #210 #242
//! #243): the `#EXTM3U` header may be missing, attributes may be quoted or not, lines may end in
//! CRLF, the file may start with a BOM, and a line that is not UTF-8 is read as Latin-1. A line
//! that makes no entry (a URL we cannot fetch, an `#EXTINF` with no URL after it, a line longer
//! than [`MAX_LINE`]) is skipped and counted, never fatal.

/// Longest line kept; longer ones are skipped (counted) without being buffered.
pub const MAX_LINE: usize = 64 * 1024;

/// One playable entry of a playlist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    /// The stream URL, `http://` or `https://`. May carry credentials: never print it.
    pub url: String,
    /// The title after the `#EXTINF` comma, else `tvg-name`; never empty.
    pub name: String,
    pub tvg_id: Option<String>,
    pub tvg_name: Option<String>,
    pub tvg_logo: Option<String>,
    pub tvg_chno: Option<String>,
    /// `group-title`, else the latest `#EXTGRP`.
    pub group: Option<String>,
    /// `#EXTVLCOPT:http-user-agent=`.
    pub user_agent: Option<String>,
    /// `#EXTVLCOPT:http-referrer=` (or `http-referer=`).
    pub referrer: Option<String>,
}

/// What a parse saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Lines read, blank ones included.
    pub lines: usize,
    pub entries: usize,
    /// Lines that made no entry though they were meant to (see the module doc).
    pub skipped: usize,
    /// Whether the playlist started with `#EXTM3U`.
    pub header: bool,
}

/// What an `#EXTINF` and its option lines said, waiting for the URL line.
#[derive(Debug, Default)]
struct Pending {
    extinf: bool,
    title: Option<String>,
    tvg_id: Option<String>,
    tvg_name: Option<String>,
    tvg_logo: Option<String>,
    tvg_chno: Option<String>,
    group_title: Option<String>,
    user_agent: Option<String>,
    referrer: Option<String>,
}

/// A push parser: feed it bytes with [`Parser::push`], then call [`Parser::finish`].
#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    /// The current line passed [`MAX_LINE`]: its rest is dropped up to the next newline.
    overlong: bool,
    pending: Pending,
    /// `#EXTGRP` applies to the entries after it until the next one.
    extgrp: Option<String>,
    counts: Counts,
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Parses `chunk`, handing each complete entry to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut impl FnMut(Entry)) {
        let mut rest = chunk;
        while !rest.is_empty() {
            match rest.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    self.take(&rest[..end]);
                    rest = &rest[end + 1..];
                    self.end_line(out);
                }
                None => {
                    self.take(rest);
                    rest = &[];
                }
            }
        }
    }

    /// Parses what is left (a last line without a newline) and returns the counts.
    pub fn finish(mut self, out: &mut impl FnMut(Entry)) -> Counts {
        if !self.line.is_empty() || self.overlong {
            self.end_line(out);
        }
        if self.pending.extinf {
            self.counts.skipped += 1;
        }
        self.counts
    }

    fn take(&mut self, bytes: &[u8]) {
        if self.overlong {
            return;
        }
        if self.line.len() + bytes.len() > MAX_LINE {
            self.overlong = true;
            self.line = Vec::new();
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    fn end_line(&mut self, out: &mut impl FnMut(Entry)) {
        self.counts.lines += 1;
        let first = self.counts.lines == 1;
        if std::mem::take(&mut self.overlong) {
            self.counts.skipped += 1;
            return;
        }
        let mut bytes = std::mem::take(&mut self.line);
        let mut start = 0;
        if first && bytes.starts_with(b"\xEF\xBB\xBF") {
            start = 3;
        }
        let text = decode(&bytes[start..]);
        bytes.clear();
        // Reuse the allocation for the next line.
        self.line = bytes;
        let line = text.trim();
        if line.is_empty() {
            return;
        }
        if let Some(directive) = line.strip_prefix('#') {
            self.directive(directive, first);
        } else {
            self.url_line(line, out);
        }
    }

    fn directive(&mut self, directive: &str, first: bool) {
        if starts_with_ignore_case(directive, "EXTM3U") {
            self.counts.header |= first;
        } else if let Some(info) = strip_prefix_ignore_case(directive, "EXTINF:") {
            if self.pending.extinf {
                // The previous #EXTINF never got its URL.
                self.counts.skipped += 1;
            }
            let options = (self.pending.user_agent.take(), self.pending.referrer.take());
            self.pending = extinf(info);
            (self.pending.user_agent, self.pending.referrer) = options;
        } else if let Some(option) = strip_prefix_ignore_case(directive, "EXTVLCOPT:") {
            let (key, value) = option.split_once('=').unwrap_or((option, ""));
            let value = clean(value);
            match key.trim().to_ascii_lowercase().as_str() {
                "http-user-agent" => self.pending.user_agent = value,
                "http-referrer" | "http-referer" => self.pending.referrer = value,
                _ => {}
            }
        } else if let Some(group) = strip_prefix_ignore_case(directive, "EXTGRP:") {
            self.extgrp = clean(group);
        }
        // Anything else is a comment or a directive we have no use for.
    }

    fn url_line(&mut self, line: &str, out: &mut impl FnMut(Entry)) {
        let pending = std::mem::take(&mut self.pending);
        let fetchable = ["http://", "https://"]
            .iter()
            .any(|scheme| starts_with_ignore_case(line, scheme))
            && !line.chars().any(|c| c.is_whitespace() || c.is_control());
        if !fetchable {
            self.counts.skipped += 1;
            return;
        }
        let name = pending
            .title
            .clone()
            .or_else(|| pending.tvg_name.clone())
            .unwrap_or_else(|| format!("Untitled {}", self.counts.entries + 1));
        self.counts.entries += 1;
        out(Entry {
            url: line.to_owned(),
            name,
            tvg_id: pending.tvg_id,
            tvg_name: pending.tvg_name,
            tvg_logo: pending.tvg_logo,
            tvg_chno: pending.tvg_chno,
            group: pending.group_title.or_else(|| self.extgrp.clone()),
            user_agent: pending.user_agent,
            referrer: pending.referrer,
        });
    }
}

/// Parses a whole playlist held in memory (tests, small files).
pub fn parse(bytes: &[u8]) -> (Vec<Entry>, Counts) {
    let mut entries = Vec::new();
    let mut parser = Parser::new();
    parser.push(bytes, &mut |e| entries.push(e));
    let counts = parser.finish(&mut |e| entries.push(e));
    (entries, counts)
}

/// UTF-8 if it is, else Latin-1 (every byte is that code point).
fn decode(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// `-1 tvg-id="x" group-title=News,Title`: the attributes and the title after the first comma
/// outside quotes.
fn extinf(info: &str) -> Pending {
    let mut pending = Pending {
        extinf: true,
        ..Pending::default()
    };
    let mut rest = info.trim_start();
    // The duration: everything up to the first space or comma.
    let duration_end = rest.find([' ', '\t', ',']).unwrap_or(rest.len());
    rest = &rest[duration_end..];
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return pending;
        }
        if let Some(title) = rest.strip_prefix(',') {
            pending.title = clean(title);
            return pending;
        }
        let key_end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        rest = &rest[key_end..];
        let Some(after_eq) = rest.strip_prefix('=') else {
            if key.is_empty() {
                // A stray character that starts no key: drop it.
                let mut chars = rest.chars();
                chars.next();
                rest = chars.as_str();
            }
            continue;
        };
        let (value, after) = attribute_value(after_eq);
        rest = after;
        let value = clean(value);
        let slot = match key.to_ascii_lowercase().as_str() {
            "tvg-id" => &mut pending.tvg_id,
            "tvg-name" => &mut pending.tvg_name,
            "tvg-logo" => &mut pending.tvg_logo,
            "tvg-chno" => &mut pending.tvg_chno,
            "group-title" => &mut pending.group_title,
            _ => continue,
        };
        *slot = value;
    }
}

/// A value quoted with `"` or `'` (an unclosed quote runs to the end of the line), or unquoted up
/// to the next space or comma; returns it and what follows.
fn attribute_value(text: &str) -> (&str, &str) {
    match text.chars().next() {
        Some(quote @ ('"' | '\'')) => {
            let inner = &text[1..];
            match inner.find(quote) {
                Some(end) => (&inner[..end], &inner[end + 1..]),
                None => (inner, ""),
            }
        }
        _ => {
            let end = text
                .find(|c: char| c == ',' || c.is_whitespace())
                .unwrap_or(text.len());
            text.split_at(end)
        }
    }
}

/// Trimmed, control characters dropped; `None` when nothing is left.
fn clean(value: &str) -> Option<String> {
    let value: String = value.trim().chars().filter(|c| !c.is_control()).collect();
    (!value.is_empty()).then_some(value)
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    // `prefix` is ASCII, so its length is a char boundary of any text it matches.
    starts_with_ignore_case(text, prefix).then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests;
