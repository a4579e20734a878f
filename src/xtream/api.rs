//! The Xtream API's JSON documents and their lenient parsing, kept free of I/O so every quirk of
//! real panels can be tested on bytes.

use serde::Deserialize;
use serde_json::Value;

use super::lenient::{flag, opt_i64, opt_string};

/// `player_api.php` without an action: who we are and what the panel allows.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Login {
    #[serde(default)]
    pub user_info: UserInfo,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserInfo {
    #[serde(default, deserialize_with = "flag")]
    pub auth: bool,
    #[serde(default, deserialize_with = "opt_string")]
    pub status: Option<String>,
    /// Unix time; null for accounts that never expire.
    #[serde(default, deserialize_with = "opt_i64")]
    pub exp_date: Option<i64>,
    #[serde(default, deserialize_with = "flag")]
    pub is_trial: bool,
    #[serde(default, deserialize_with = "opt_i64")]
    pub active_cons: Option<i64>,
    #[serde(default, deserialize_with = "opt_i64")]
    pub max_connections: Option<i64>,
}

impl UserInfo {
    /// When the subscription ends; `None` when it never does (null, 0 or negative on panels).
    pub fn expires_at(&self) -> Option<std::time::SystemTime> {
        let seconds = u64::try_from(self.exp_date?).ok().filter(|&s| s > 0)?;
        std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(seconds))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Category {
    #[serde(default, deserialize_with = "opt_string")]
    pub category_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub category_name: Option<String>,
}

/// One entry of `get_live_streams`, before validation.
#[derive(Debug, Clone, Deserialize)]
struct RawLiveStream {
    #[serde(default, deserialize_with = "opt_i64")]
    stream_id: Option<i64>,
    #[serde(default, deserialize_with = "opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    stream_icon: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    epg_channel_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    category_id: Option<String>,
    #[serde(default)]
    category_ids: Option<Value>,
}

/// A live stream with the fields we rely on present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveStream {
    pub stream_id: i64,
    pub name: String,
    pub icon: Option<String>,
    pub epg_channel_id: Option<String>,
    pub category_id: Option<String>,
}

/// The streams that parsed, and how many entries were unusable (no id or no name).
#[derive(Debug, Clone, Default)]
pub struct LiveStreams {
    pub streams: Vec<LiveStream>,
    pub skipped: usize,
}

/// Why a body is not the JSON document we asked for. Never quotes the body: a panel's error page
/// may echo the request URL, credentials included.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

pub fn parse_login(body: &[u8]) -> Result<Login, ParseError> {
    match parse_json(body)? {
        // serde's message may quote a field's value, which can be a credential: keep it out.
        value @ Value::Object(_) => serde_json::from_value(value)
            .map_err(|_| ParseError("unexpected login reply: user_info is not an object".into())),
        _ => Err(ParseError(
            "unexpected login reply: not a JSON object".into(),
        )),
    }
}

pub fn parse_categories(body: &[u8]) -> Result<Vec<Category>, ParseError> {
    Ok(entries(parse_json(body)?, "categories")?
        .into_iter()
        .filter_map(|entry| serde_json::from_value(entry).ok())
        .collect())
}

pub fn parse_live_streams(body: &[u8]) -> Result<LiveStreams, ParseError> {
    let mut out = LiveStreams::default();
    for entry in entries(parse_json(body)?, "live streams")? {
        match serde_json::from_value::<RawLiveStream>(entry) {
            Ok(RawLiveStream {
                stream_id: Some(stream_id),
                name: Some(name),
                stream_icon,
                epg_channel_id,
                category_id,
                category_ids,
            }) => out.streams.push(LiveStream {
                stream_id,
                name,
                icon: stream_icon,
                epg_channel_id,
                category_id: category_id.or_else(|| first_category(category_ids)),
            }),
            _ => out.skipped += 1,
        }
    }
    Ok(out)
}

fn first_category(ids: Option<Value>) -> Option<String> {
    match ids? {
        Value::Array(items) => items.into_iter().find_map(|v| match v {
            Value::Number(n) => Some(n.to_string()),
            Value::String(s) if !s.is_empty() => Some(s),
            _ => None,
        }),
        _ => None,
    }
}

fn parse_json(body: &[u8]) -> Result<Value, ParseError> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        return Err(ParseError("empty reply where JSON was expected".into()));
    };
    if body[start] == b'<' {
        return Err(ParseError(
            "an HTML or XML page where JSON was expected (wrong URL, or the panel is showing an error page)"
                .into(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| ParseError(format!("invalid JSON: {e}")))
}

/// A listing is an array; some panels send an object keyed by id instead, and an empty listing is
/// sometimes `{}` or null. A login object in place of a listing means the credentials were refused.
fn entries(value: Value, what: &str) -> Result<Vec<Value>, ParseError> {
    match value {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        Value::Object(map) if map.contains_key("user_info") => Err(ParseError(format!(
            "the panel answered the {what} request with a login reply: credentials refused"
        ))),
        Value::Object(map) => Ok(map.into_iter().map(|(_, v)| v).collect()),
        _ => Err(ParseError(format!(
            "unexpected {what} reply: not a JSON array"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_with_real_panel_types() {
        let body = br#"{"user_info":{"username":"U","password":"P","message":"","auth":1,
            "status":"Active","exp_date":"1550619710","is_trial":"0","active_cons":"0",
            "created_at":"1519083710","max_connections":"2","allowed_output_formats":["m3u8","ts"]},
            "server_info":{"url":"example.net","port":"8080","timezone":"Europe/London",
            "timestamp_now":1535230020,"process":false}}"#;
        let login = parse_login(body).unwrap();
        assert!(login.user_info.auth);
        assert_eq!(login.user_info.status.as_deref(), Some("Active"));
        assert_eq!(login.user_info.exp_date, Some(1550619710));
        assert_eq!(
            login
                .user_info
                .expires_at()
                .map(crate::time::rfc3339)
                .as_deref(),
            Some("2019-02-19T23:41:50Z")
        );
        assert_eq!(login.user_info.max_connections, Some(2));
        assert_eq!(login.user_info.active_cons, Some(0));
        assert!(!login.user_info.is_trial);
    }

    #[test]
    fn login_with_nulls_and_bools() {
        let body =
            br#"{"user_info":{"auth":true,"exp_date":null,"max_connections":1,"is_trial":true}}"#;
        let login = parse_login(body).unwrap();
        assert!(login.user_info.auth);
        assert_eq!(login.user_info.exp_date, None);
        assert!(login.user_info.is_trial);
    }

    #[test]
    fn refused_login() {
        let login = parse_login(br#"{"user_info":{"auth":0}}"#).unwrap();
        assert!(!login.user_info.auth);
        let login = parse_login(br#"{"user_info":{"auth":"0"}}"#).unwrap();
        assert!(!login.user_info.auth);
        let login = parse_login(br#"{}"#).unwrap();
        assert!(!login.user_info.auth);
    }

    #[test]
    fn html_and_garbage_are_clear_errors() {
        let err = parse_login(b"  <html><body>404 Not Found</body></html>").unwrap_err();
        assert!(err.0.contains("HTML"), "{err}");
        let err = parse_live_streams(b"{\"broken\": [1, 2").unwrap_err();
        assert!(err.0.starts_with("invalid JSON"), "{err}");
        let err = parse_categories(b"").unwrap_err();
        assert!(err.0.contains("empty"), "{err}");
        let err = parse_live_streams(b"\"a string\"").unwrap_err();
        assert!(err.0.contains("not a JSON array"), "{err}");
        let err = parse_login(b"[1,2]").unwrap_err();
        assert!(err.0.contains("not a JSON object"), "{err}");
    }

    #[test]
    fn errors_never_quote_the_body() {
        let err = parse_login(b"<html>password=hunter2</html>").unwrap_err();
        assert!(!err.0.contains("hunter2"));
        let err = parse_live_streams(b"[{\"name\": \"hunter2").unwrap_err();
        assert!(!err.0.contains("hunter2"));
    }

    #[test]
    fn odd_login_shape_does_not_quote_values() {
        let err = parse_login(br#"{"user_info":"hunter2"}"#).unwrap_err();
        assert!(!err.0.contains("hunter2"), "{err}");
    }

    #[test]
    fn categories_lenient() {
        let body = br#"[{"category_id":"36","category_name":"ENTERTAINMENT UK","parent_id":0},
                        {"category_id":7,"category_name":"NEWS"},
                        "junk"]"#;
        let categories = parse_categories(body).unwrap();
        assert_eq!(categories.len(), 2);
        assert_eq!(categories[0].category_id.as_deref(), Some("36"));
        assert_eq!(categories[1].category_id.as_deref(), Some("7"));
    }

    #[test]
    fn live_streams_lenient() {
        let body = br#"[
          {"num":1,"name":"UK: BBC ONE (HD)","stream_type":"live","stream_id":101,
           "stream_icon":"http://x/y.png","epg_channel_id":"bbc1.uk","added":"1500000000",
           "category_id":"36","custom_sid":null,"tv_archive":0,"direct_source":""},
          {"num":"2","name":"UK: ITV","stream_id":"102","stream_icon":"","epg_channel_id":null,
           "category_id":null,"category_ids":[37]},
          {"num":3,"name":"no id"},
          {"num":4,"stream_id":104},
          {"num":5,"name":"bad id","stream_id":"x"},
          null
        ]"#;
        let parsed = parse_live_streams(body).unwrap();
        assert_eq!(parsed.skipped, 4);
        assert_eq!(
            parsed.streams,
            vec![
                LiveStream {
                    stream_id: 101,
                    name: "UK: BBC ONE (HD)".into(),
                    icon: Some("http://x/y.png".into()),
                    epg_channel_id: Some("bbc1.uk".into()),
                    category_id: Some("36".into()),
                },
                LiveStream {
                    stream_id: 102,
                    name: "UK: ITV".into(),
                    icon: None,
                    epg_channel_id: None,
                    category_id: Some("37".into()),
                },
            ]
        );
    }

    #[test]
    fn listing_as_object_or_null() {
        let body = br#"{"101":{"name":"A","stream_id":101},"102":{"name":"B","stream_id":102}}"#;
        assert_eq!(parse_live_streams(body).unwrap().streams.len(), 2);
        assert!(parse_live_streams(b"null").unwrap().streams.is_empty());
        let err = parse_live_streams(br#"{"user_info":{"auth":0}}"#).unwrap_err();
        assert!(err.0.contains("credentials refused"), "{err}");
    }
}
