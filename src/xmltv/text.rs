//! Text in and out of XML: escaping, characters XML forbids, references, attribute values.

use std::borrow::Cow;

use quick_xml::XmlVersion;
use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::BytesStart;
use quick_xml::events::attributes::Attribute;

/// Whether `s` is only XML whitespace (space, tab, CR, LF).
pub(crate) fn is_space(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// `s` without leading and trailing XML whitespace.
pub(crate) fn trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\r', '\n'])
}

/// Whether `s` is safe to write as an element or attribute name. quick-xml takes anything up to
/// whitespace, `=`, `/` or `>` as a name, so `<actor <role="x">` would otherwise be copied into
/// broken XML. Conservative: ASCII name characters, and any non-ASCII letter.
pub(crate) fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| {
        c.is_ascii_alphabetic() || c == '_' || (!c.is_ascii() && c.is_alphabetic())
    }) && chars.all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(c, '-' | '.' | '_' | ':')
            || (!c.is_ascii() && c.is_alphanumeric())
    })
}

/// Appends `s` as element content: `& < >` escaped, characters XML forbids dropped.
pub(crate) fn push_text(out: &mut Vec<u8>, s: &str) {
    push_escaped(out, s, false);
}

/// Appends `s` as a double-quoted attribute value.
pub(crate) fn push_attr(out: &mut Vec<u8>, s: &str) {
    push_escaped(out, s, true);
}

fn push_escaped(out: &mut Vec<u8>, s: &str, attr: bool) {
    let bytes = s.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let next = bytes.get(i + 1).copied();
        let (len, with): (usize, &[u8]) = match b {
            b'&' => (1, b"&amp;"),
            b'<' => (1, b"&lt;"),
            b'>' => (1, b"&gt;"),
            b'"' if attr => (1, b"&quot;"),
            // Literal whitespace in attributes would be normalised to spaces by the reader.
            b'\t' if attr => (1, b"&#9;"),
            b'\n' if attr => (1, b"&#10;"),
            b'\r' if attr => (1, b"&#13;"),
            b'\t' | b'\n' | b'\r' => (0, b""),
            0x00..=0x1F => (1, b""),
            // C1 controls (U+0080–U+009F): legal but meaningless, mostly mis-decoded windows-1252.
            0xC2 if next.is_some_and(|n| (0x80..=0x9F).contains(&n)) => (2, b""),
            // U+FFFE and U+FFFF are not XML characters.
            0xEF if next == Some(0xBF) && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)) => (3, b""),
            _ => (0, b""),
        };
        if len == 0 {
            i += 1;
            continue;
        }
        out.extend_from_slice(bytes.get(run..i).unwrap_or_default());
        out.extend_from_slice(with);
        i += len;
        run = i;
    }
    out.extend_from_slice(bytes.get(run..).unwrap_or_default());
}

/// Appends the text a reference stands for: predefined entities and character references are
/// resolved (dropping characters XML forbids); an unknown entity such as `&nbsp;` is kept as the
/// literal text `&nbsp;`, since no DTD here defines it.
pub(crate) fn push_ref(out: &mut String, name: &str) {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => number.parse::<u32>().ok(),
        };
        if let Some(c) = code.and_then(char::from_u32).filter(|&c| is_xml_char(c)) {
            out.push(c);
        }
    } else if let Some(text) = resolve_xml_entity(name) {
        out.push_str(text);
    } else {
        out.push('&');
        out.push_str(name);
        out.push(';');
    }
}

/// Characters an XML 1.0 document may contain, minus the C1 controls (see [`push_text`]).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r')
        || (c >= ' ' && !('\u{80}'..='\u{9F}').contains(&c) && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// Appends `s` to `out` without letting `out` grow past `max` bytes (cut on a char boundary).
pub(crate) fn push_capped(out: &mut String, s: &str, max: usize) {
    let room = max.saturating_sub(out.len());
    let mut end = s.len().min(room);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.push_str(s.get(..end).unwrap_or_default());
}

/// An attribute's value with references resolved and whitespace normalised. A value quick-xml
/// cannot unescape (a bare `&`, an unknown entity) is taken literally rather than refused.
pub(crate) fn attr_value<'a>(attr: &Attribute<'a>) -> Cow<'a, str> {
    attr.normalized_value(XmlVersion::Implicit1_0)
        .unwrap_or_else(|_| attr.value.clone())
}

/// The values of the attributes `names` of `e`, in that order; `Err` for a malformed attribute
/// list (unquoted values, duplicates).
pub(crate) fn attrs<'a, const N: usize>(
    e: &'a BytesStart<'_>,
    names: [&str; N],
) -> Result<[Option<Cow<'a, str>>; N], String> {
    let mut values = [const { None }; N];
    for attr in e.attributes() {
        let attr =
            attr.map_err(|err| format!("bad attribute in <{}>: {err}", e.name().as_ref()))?;
        if let Some(slot) = names
            .iter()
            .position(|&n| n == attr.key.as_ref())
            .and_then(|i| values.get_mut(i))
        {
            *slot = Some(attr_value(&attr));
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        let mut out = Vec::new();
        push_text(&mut out, s);
        String::from_utf8(out).expect("utf-8")
    }

    fn attr(s: &str) -> String {
        let mut out = Vec::new();
        push_attr(&mut out, s);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn escapes_markup_characters() {
        assert_eq!(
            text(r#"Tom & Jerry <live> "x" 'y'"#),
            r#"Tom &amp; Jerry &lt;live&gt; "x" 'y'"#
        );
        assert_eq!(attr(r#"a&b<c>"d"'e'"#), "a&amp;b&lt;c&gt;&quot;d&quot;'e'");
        assert_eq!(text("plain é ✓"), "plain é ✓");
    }

    #[test]
    fn drops_characters_xml_forbids() {
        assert_eq!(text("a\u{0}b\u{1b}c\u{85}d\u{FFFF}e\u{FFFE}f"), "abcdef");
        assert_eq!(text("line\r\nnext\ttab"), "line\r\nnext\ttab");
        assert_eq!(attr("a\nb\tc"), "a&#10;b&#9;c");
        // Neighbours of the dropped ranges survive.
        assert_eq!(
            text("\u{A0}\u{7F}\u{FFFD}\u{EFFF}"),
            "\u{A0}\u{7F}\u{FFFD}\u{EFFF}"
        );
    }

    #[test]
    fn resolves_references() {
        let mut s = String::new();
        for name in [
            "amp", "lt", "#233", "#x263A", "#0", "#xFFFE", "nbsp", "#bogus",
        ] {
            push_ref(&mut s, name);
        }
        assert_eq!(s, "&<é☺&nbsp;");
    }

    #[test]
    fn names() {
        for good in ["actor", "star-rating", "x:lang", "_a.b", "née"] {
            assert!(is_name(good), "{good}");
        }
        for bad in ["", "<role", "rol/e", "1a", "-a", "a\"b", "a&b", "a b", "a>"] {
            assert!(!is_name(bad), "{bad}");
        }
    }

    #[test]
    fn caps_on_char_boundaries() {
        let mut s = String::from("ab");
        push_capped(&mut s, "cdé", 5);
        assert_eq!(s, "abcd");
        push_capped(&mut s, "zzz", 5);
        assert_eq!(s, "abcdz");
    }

    #[test]
    fn reads_attributes_leniently() {
        let e = BytesStart::from_content(r#"icon src="http://x/a.png?a=1&b=2" width="10""#, 4);
        let [src, width, missing] = attrs(&e, ["src", "width", "height"]).expect("attrs");
        assert_eq!(src.as_deref(), Some("http://x/a.png?a=1&b=2"));
        assert_eq!(width.as_deref(), Some("10"));
        assert_eq!(missing, None);
        let e = BytesStart::from_content(r#"p a="1" a="2""#, 1);
        assert!(attrs(&e, ["a"]).is_err());
        let e = BytesStart::from_content(r#"p t="&lt;x&gt; &amp; y""#, 1);
        assert_eq!(
            attrs(&e, ["t"]).expect("attrs")[0].as_deref(),
            Some("<x> & y")
        );
    }
}
