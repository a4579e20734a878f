//! Absolute http(s) URLs: parsing, resolving a redirect's `Location`, and the origin, the only
//! part that is safe to print (paths and queries carry Xtream credentials).

use std::fmt;
use std::net::Ipv6Addr;

use super::UpstreamError;

/// An absolute `http` or `https` URL, ready to be requested.
///
/// Deliberately has no `Display`, and its `Debug` shows only the origin: the path and query hold
/// credentials (`/live/USER/PASS/1.ts`, `?username=..&password=..`).
#[derive(Clone, PartialEq, Eq)]
pub struct Url {
    https: bool,
    /// Lower case; an IPv6 literal without its brackets.
    host: String,
    port: u16,
    /// Starts with `/`; no fragment; printable ASCII only (spaces and non-ASCII percent-encoded).
    path_and_query: String,
}

impl Url {
    /// Parses an absolute `http://` or `https://` URL. The error never quotes the input.
    pub fn parse(s: &str) -> Result<Url, UpstreamError> {
        let s = s.trim();
        let colon = match scheme_end(s) {
            Some(i) => i,
            None => return Err(invalid("missing scheme (http:// or https://)")),
        };
        let (scheme, rest) = s.split_at(colon);
        let https = if scheme.eq_ignore_ascii_case("http") {
            false
        } else if scheme.eq_ignore_ascii_case("https") {
            true
        } else {
            return Err(invalid("unsupported scheme (only http and https)"));
        };
        let after_colon = rest.get(1..).unwrap_or("");
        let Some(hier) = after_colon.strip_prefix("//") else {
            return Err(invalid("expected // after the scheme"));
        };
        Url::from_authority(https, hier)
    }

    /// Resolves a redirect's `Location` against this URL: absolute, scheme-relative (`//h/p`),
    /// absolute-path (`/p`), query-only (`?q`) and relative (`../p`) references.
    pub fn join(&self, location: &str) -> Result<Url, UpstreamError> {
        let location = location.trim();
        if scheme_end(location).is_some() {
            return Url::parse(location);
        }
        if let Some(hier) = location.strip_prefix("//") {
            return Url::from_authority(self.https, hier);
        }
        let location = strip_fragment(location);
        let target = if location.is_empty() {
            self.path_and_query.clone()
        } else if location.starts_with('/') {
            location.to_owned()
        } else if location.starts_with('?') {
            format!("{}{location}", self.path())
        } else {
            let path = self.path();
            let dir = path.rfind('/').map_or("/", |i| path.split_at(i + 1).0);
            format!("{dir}{location}")
        };
        Ok(Url {
            https: self.https,
            host: self.host.clone(),
            port: self.port,
            path_and_query: normalize_target(&target)?,
        })
    }

    /// `scheme://host:port`: the only form of a URL that may be printed or logged.
    pub fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.bracketed_host(), self.port)
    }

    /// The host: a lower-case DNS name, an IPv4 literal, or an IPv6 literal without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, 80 or 443 when the URL names none.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn is_https(&self) -> bool {
        self.https
    }

    /// The request target (`/path?query`). Carries credentials: never log it.
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// The `Host` header value: brackets around IPv6, the port only when not the default.
    pub(crate) fn host_header(&self) -> String {
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            self.bracketed_host()
        } else {
            format!("{}:{}", self.bracketed_host(), self.port)
        }
    }

    fn bracketed_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    fn path(&self) -> &str {
        self.path_and_query
            .split('?')
            .next()
            .unwrap_or(&self.path_and_query)
    }

    /// Parses `authority[/path][?query][#fragment]` (what follows `scheme://`).
    fn from_authority(https: bool, hier: &str) -> Result<Url, UpstreamError> {
        let end = hier.find(['/', '?', '#']).unwrap_or(hier.len());
        let (authority, target) = hier.split_at(end);
        if authority.contains('@') {
            return Err(invalid("user info (user@host) is not supported"));
        }
        let (host, port) = parse_authority(authority, https)?;
        let target = strip_fragment(target);
        let target = if target.starts_with('/') {
            target.to_owned()
        } else {
            format!("/{target}")
        };
        Ok(Url {
            https,
            host,
            port,
            path_and_query: normalize_target(&target)?,
        })
    }
}

impl fmt::Debug for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Url({}/…)", self.origin())
    }
}

fn invalid(why: &'static str) -> UpstreamError {
    UpstreamError::InvalidUrl(why)
}

/// The index of the `:` ending a URI scheme (`[A-Za-z][A-Za-z0-9+.-]*:`), if `s` starts with one.
fn scheme_end(s: &str) -> Option<usize> {
    let colon = s.find(':')?;
    let scheme = s.split_at(colon).0;
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (first_ok && rest_ok).then_some(colon)
}

fn strip_fragment(s: &str) -> &str {
    s.split('#').next().unwrap_or(s)
}

fn parse_authority(authority: &str, https: bool) -> Result<(String, u16), UpstreamError> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return Err(invalid("unclosed [ in the host"));
        };
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(invalid("invalid IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or(invalid("unexpected characters after the IPv6 address"))?,
            ),
        };
        (addr.to_ascii_lowercase(), port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err(invalid("missing host"));
        }
        let valid = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !valid {
            return Err(invalid(
                "invalid character in the host (non-ASCII names must be punycode)",
            ));
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None | Some("") => {
            if https {
                443
            } else {
                80
            }
        }
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(invalid("port out of range")),
            Ok(port) => port,
        },
        Some(_) => return Err(invalid("port is not a number")),
    };
    Ok((host, port))
}

/// Removes `.` and `..` segments from the path (RFC 3986 §5.2.4) and percent-encodes spaces and
/// non-ASCII, so that the target can go on the request line as is. `target` starts with `/`.
fn normalize_target(target: &str) -> Result<String, UpstreamError> {
    let (path, query) = match target.find('?') {
        Some(i) => target.split_at(i),
        None => (target, ""),
    };
    let mut segments: Vec<&str> = Vec::new();
    let mut iter = path.split('/').skip(1).peekable();
    while let Some(segment) = iter.next() {
        let last = iter.peek().is_none();
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            s => {
                segments.push(s);
                continue;
            }
        }
        // A trailing `.` or `..` names a directory.
        if last {
            segments.push("");
        }
    }
    let mut out = String::with_capacity(target.len() + 1);
    for segment in segments {
        out.push('/');
        push_encoded(&mut out, segment)?;
    }
    if out.is_empty() {
        out.push('/');
    }
    push_encoded(&mut out, query)?;
    Ok(out)
}

fn push_encoded(out: &mut String, s: &str) -> Result<(), UpstreamError> {
    for b in s.bytes() {
        match b {
            0x21..=0x7e => out.push(char::from(b)),
            b' ' | 0x80..=0xff => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
            _ => return Err(invalid("control character in the path or query")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(u: &Url) -> (bool, &str, u16, &str) {
        (u.is_https(), u.host(), u.port(), u.path_and_query())
    }

    #[test]
    fn parses_hosts_ports_and_targets() {
        let u = Url::parse("http://example.com").unwrap();
        assert_eq!(parts(&u), (false, "example.com", 80, "/"));
        assert_eq!(u.origin(), "http://example.com:80");
        assert_eq!(u.host_header(), "example.com");

        let u = Url::parse("  HTTPS://Example.COM:8443/a/b?c=d&e=f#frag ").unwrap();
        assert_eq!(parts(&u), (true, "example.com", 8443, "/a/b?c=d&e=f"));
        assert_eq!(u.host_header(), "example.com:8443");

        let u = Url::parse("https://h").unwrap();
        assert_eq!(parts(&u), (true, "h", 443, "/"));
        let u = Url::parse("http://h:/x").unwrap();
        assert_eq!(u.port(), 80);
        let u = Url::parse("http://h?x=1").unwrap();
        assert_eq!(u.path_and_query(), "/?x=1");
        let u = Url::parse("http://10.0.0.1:5004/live/u/p/1.ts").unwrap();
        assert_eq!(parts(&u), (false, "10.0.0.1", 5004, "/live/u/p/1.ts"));
        let u = Url::parse("http://a_b.example/a b/é?q=x y").unwrap();
        assert_eq!(u.path_and_query(), "/a%20b/%C3%A9?q=x%20y");
        let u = Url::parse("http://h/a/./b/../c/").unwrap();
        assert_eq!(u.path_and_query(), "/a/c/");
    }

    #[test]
    fn parses_ipv6_literals() {
        let u = Url::parse("http://[::1]:8080/x").unwrap();
        assert_eq!(parts(&u), (false, "::1", 8080, "/x"));
        assert_eq!(u.origin(), "http://[::1]:8080");
        assert_eq!(u.host_header(), "[::1]:8080");
        let u = Url::parse("https://[2001:DB8::1]/").unwrap();
        assert_eq!(parts(&u), (true, "2001:db8::1", 443, "/"));
        assert_eq!(u.host_header(), "[2001:db8::1]");
    }

    #[test]
    fn rejects_garbage_without_quoting_it() {
        for bad in [
            "",
            "example.com/x",
            "ftp://h/",
            "http:h/",
            "http://",
            "http:///path",
            "http://h:0/",
            "http://h:65536/",
            "http://h:8x/",
            "http://h:-1/",
            "http://[::1/",
            "http://[zz]/",
            "http://[::1]x/",
            "http://::1/",
            "http://ho st/",
            "http://hôst/",
            "http://user:secret@h/",
            "http://h/a\r\nX-Injected: 1",
            "http://h/\0",
        ] {
            let err = Url::parse(bad).err();
            assert!(
                matches!(err, Some(UpstreamError::InvalidUrl(_))),
                "{bad:?} gave {err:?}"
            );
            assert!(!err.unwrap().to_string().contains("secret"));
        }
    }

    #[test]
    fn debug_shows_only_the_origin() {
        let u = Url::parse("http://h:81/live/user/secret/1.ts?password=secret").unwrap();
        let debug = format!("{u:?}");
        assert!(debug.contains("http://h:81"), "{debug}");
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn joins_locations() {
        let base = Url::parse("http://h:8080/live/u/p/1.ts?x=1").unwrap();
        let j = |loc: &str| base.join(loc).unwrap();
        assert_eq!(parts(&j("http://other/x")), (false, "other", 80, "/x"));
        assert_eq!(parts(&j("HTTPS://h2:9443")), (true, "h2", 9443, "/"));
        assert_eq!(
            parts(&j("//cdn.example/y?z")),
            (false, "cdn.example", 80, "/y?z")
        );
        assert_eq!(parts(&j("/abs/path?q")), (false, "h", 8080, "/abs/path?q"));
        assert_eq!(j("seg.ts").path_and_query(), "/live/u/p/seg.ts");
        assert_eq!(
            j("../x/final.ts?token=1").path_and_query(),
            "/live/u/x/final.ts?token=1"
        );
        assert_eq!(j("../../../../../a").path_and_query(), "/a");
        assert_eq!(j("./").path_and_query(), "/live/u/p/");
        assert_eq!(j("..").path_and_query(), "/live/u/");
        assert_eq!(j("?y=2").path_and_query(), "/live/u/p/1.ts?y=2");
        assert_eq!(j("").path_and_query(), "/live/u/p/1.ts?x=1");
        assert_eq!(j("#top").path_and_query(), "/live/u/p/1.ts?x=1");
        assert_eq!(j("a b").path_and_query(), "/live/u/p/a%20b");

        let https = Url::parse("https://h/a").unwrap();
        assert_eq!(
            parts(&https.join("//[::1]:99/z").unwrap()),
            (true, "::1", 99, "/z")
        );

        for bad in ["ftp://x/", "mailto:a@b", "//", "//h:99999/", "/a\nb"] {
            assert!(base.join(bad).is_err(), "{bad:?}");
        }
    }
}
