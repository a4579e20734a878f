//! An Xtream panel's playlist URL (`…/get.php?username=U&password=P&type=m3u_plus…`) is an Xtream
//! account in disguise: added as one, it gets the panel's API (categories, subscription state,
//! its XMLTV) instead of a frozen list of URLs.

use crate::upstream::Url;

/// The login a `get.php` URL carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XtreamLogin {
    /// The panel's address: the URL's origin and any path before `/get.php`.
    pub server_url: String,
    pub username: String,
    pub password: String,
}

/// The panel login in `location`, if it is an Xtream `get.php` URL with a username and password.
pub fn xtream_login(location: &str) -> Option<XtreamLogin> {
    let url = Url::parse(location).ok()?;
    let (path, query) = url.path_and_query().split_once('?')?;
    let base = path.strip_suffix("get.php")?.strip_suffix('/')?;
    let mut username = None;
    let mut password = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "username" => username = Some(decode(value)),
            "password" => password = Some(decode(value)),
            _ => {}
        }
    }
    let (username, password) = (username?, password?);
    if username.is_empty() || password.is_empty() {
        return None;
    }
    Some(XtreamLogin {
        server_url: format!("{}{base}", url.origin()),
        username,
        password,
    })
}

/// Percent-decodes a query value (`+` is a space); malformed escapes stay as they are.
fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_php_urls_become_logins() {
        let login = xtream_login(
            "http://Panel.example:8080/get.php?username=al%20ice&password=p%40ss+w&type=m3u_plus&output=ts",
        )
        .expect("a get.php URL");
        assert_eq!(
            login,
            XtreamLogin {
                server_url: "http://panel.example:8080".into(),
                username: "al ice".into(),
                password: "p@ss w".into(),
            }
        );
        let nested = xtream_login("https://h/panel/get.php?password=p&username=u").expect("nested");
        assert_eq!(nested.server_url, "https://h:443/panel");
    }

    #[test]
    fn other_urls_are_not_logins() {
        for url in [
            "http://h/playlist.m3u?username=u&password=p",
            "http://h/get.php?username=u",
            "http://h/get.php?username=&password=p",
            "http://h/get.php",
            "http://h/xget.php?username=u&password=p",
            "/home/me/get.php?username=u&password=p",
        ] {
            assert_eq!(xtream_login(url), None, "{url}");
        }
    }

    #[test]
    fn malformed_escapes_stay() {
        assert_eq!(decode("a%2"), "a%2");
        assert_eq!(decode("%zz%41"), "%zzA");
        assert_eq!(decode("%"), "%");
    }
}
