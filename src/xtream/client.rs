//! Talking to one Xtream panel: builds `player_api.php` URLs, fetches them through the upstream
//! client, and turns every way a panel can fail into one clear error that names the server by
//! origin only (paths and queries carry the credentials).

use std::time::Duration;

use crate::upstream::{self, RequestOptions, Url};

use super::api::{self, Category, LiveStreams, Login, ParseError};

/// Bounds memory against a hostile or broken panel; real listings are a few tens of MB.
const MAX_REPLY_BYTES: usize = 256 * 1024 * 1024;

/// A panel we can call, with the credentials of one account. `timeout` bounds the wait for each
/// reply and any silence within it (config `upstream.api_timeout`): panels can take seconds to
/// build a 20,000-stream listing, so this is not the relay's 1 s deadline.
pub struct XtreamClient {
    http: upstream::Client,
    base: String,
    origin: String,
    username: String,
    password: String,
    user_agent: String,
    timeout: Duration,
}

/// A failed call, naming the panel by origin (never by full URL).
#[derive(Debug, thiserror::Error)]
pub enum XtreamError {
    #[error("invalid server URL: {0}")]
    InvalidUrl(String),
    // Upstream errors already name the origin.
    #[error("{0}")]
    Unreachable(upstream::UpstreamError),
    #[error("{origin} answered HTTP {status}: {}", status_hint(*.status))]
    Status { origin: String, status: u16 },
    #[error("{origin} refused the login (auth: 0): check the username and password")]
    LoginRefused { origin: String },
    #[error("{origin}: the account is {status}, not Active")]
    AccountInactive { origin: String, status: String },
    #[error("{origin}: {reply}")]
    Reply { origin: String, reply: ParseError },
    #[error("{origin}: reply larger than {} MiB, refusing it", MAX_REPLY_BYTES / (1024 * 1024))]
    TooLarge { origin: String },
}

/// What a panel's HTTP status most likely means.
fn status_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => "check the username, password and user agent",
        404 => "wrong server URL, a blocked user agent, or bad credentials",
        429 => "rate limited by the panel; try again later",
        458 | 509 => "the panel says the connection limit is reached",
        500.. => "the panel has a server error",
        _ => "unexpected status",
    }
}

impl XtreamClient {
    pub fn new(
        http: upstream::Client,
        server_url: &str,
        username: &str,
        password: &str,
        user_agent: &str,
        timeout: Duration,
    ) -> Result<XtreamClient, XtreamError> {
        let base = server_url.trim().trim_end_matches('/').to_owned();
        let parsed = Url::parse(&base).map_err(|e| XtreamError::InvalidUrl(e.to_string()))?;
        Ok(XtreamClient {
            http,
            origin: parsed.origin(),
            base,
            username: username.to_owned(),
            password: password.to_owned(),
            user_agent: user_agent.to_owned(),
            timeout,
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Logs in; a refused login or an account that is not Active is an error.
    pub async fn login(&self) -> Result<Login, XtreamError> {
        let body = self.fetch(&self.api_url(None)?, &mut |_| {}).await?;
        let login = api::parse_login(&body).map_err(|e| self.reply_error(e))?;
        if !login.user_info.auth {
            return Err(XtreamError::LoginRefused {
                origin: self.origin.clone(),
            });
        }
        match login.user_info.status.as_deref() {
            None | Some("Active") => Ok(login),
            Some(other) => Err(XtreamError::AccountInactive {
                origin: self.origin.clone(),
                status: other.to_owned(),
            }),
        }
    }

    pub async fn live_categories(&self) -> Result<Vec<Category>, XtreamError> {
        let url = self.api_url(Some("get_live_categories"))?;
        let body = self.fetch(&url, &mut |_| {}).await?;
        api::parse_categories(&body).map_err(|e| self.reply_error(e))
    }

    /// Downloads and parses the live stream listing; `on_bytes` sees the running byte count.
    pub async fn live_streams(
        &self,
        on_bytes: &mut dyn FnMut(u64),
    ) -> Result<LiveStreams, XtreamError> {
        let url = self.api_url(Some("get_live_streams"))?;
        let body = self.fetch(&url, on_bytes).await?;
        api::parse_live_streams(&body).map_err(|e| self.reply_error(e))
    }

    /// The panel's full XMLTV guide.
    pub fn xmltv_url(&self) -> Result<Url, XtreamError> {
        self.url(&format!(
            "{}/xmltv.php?username={}&password={}",
            self.base,
            encode(&self.username),
            encode(&self.password)
        ))
    }

    fn api_url(&self, action: Option<&str>) -> Result<Url, XtreamError> {
        let mut text = format!(
            "{}/player_api.php?username={}&password={}",
            self.base,
            encode(&self.username),
            encode(&self.password)
        );
        if let Some(action) = action {
            text.push_str("&action=");
            text.push_str(action);
        }
        self.url(&text)
    }

    fn url(&self, text: &str) -> Result<Url, XtreamError> {
        Url::parse(text).map_err(|e| XtreamError::InvalidUrl(e.to_string()))
    }

    async fn fetch(
        &self,
        url: &Url,
        on_bytes: &mut dyn FnMut(u64),
    ) -> Result<Vec<u8>, XtreamError> {
        let options = RequestOptions {
            user_agent: self.user_agent.clone(),
            head_timeout: self.timeout,
            idle_timeout: Some(self.timeout),
            max_redirects: 5,
            referrer: None,
        };
        let mut response = self
            .http
            .get(url, &options)
            .await
            .map_err(XtreamError::Unreachable)?;
        if response.status != 200 {
            let status = response.status;
            response.close();
            return Err(XtreamError::Status {
                origin: self.origin.clone(),
                status,
            });
        }
        let mut body = Vec::new();
        loop {
            match response.next_chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_REPLY_BYTES {
                        response.close();
                        return Err(XtreamError::TooLarge {
                            origin: self.origin.clone(),
                        });
                    }
                    body.extend_from_slice(&chunk);
                    on_bytes(body.len() as u64);
                }
                Ok(None) => break,
                Err(e) => {
                    response.close();
                    return Err(XtreamError::Unreachable(e));
                }
            }
        }
        Ok(body)
    }

    fn reply_error(&self, reply: ParseError) -> XtreamError {
        XtreamError::Reply {
            origin: self.origin.clone(),
            reply,
        }
    }
}

/// Where a live stream starts: always the panel's `/live/…` URL, never a cached redirect (tokens
/// are single-use and may be IP-bound).
pub fn live_url(
    server_url: &str,
    username: &str,
    password: &str,
    stream_id: i64,
) -> Result<Url, upstream::UpstreamError> {
    Url::parse(&format!(
        "{}/live/{}/{}/{stream_id}.ts",
        server_url.trim().trim_end_matches('/'),
        encode(username),
        encode(password)
    ))
}

/// Percent-encodes a query value or path segment: only RFC 3986 unreserved bytes stay as they are.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_urls_encode_credentials() {
        let url = live_url("http://panel:8080/", "me", "p@ss/1", 42).unwrap();
        assert_eq!(url.path_and_query(), "/live/me/p%40ss%2F1/42.ts");
        assert_eq!(url.origin(), "http://panel:8080");
    }

    #[test]
    fn encodes_reserved_characters() {
        assert_eq!(encode("abc-XYZ_0.9~"), "abc-XYZ_0.9~");
        assert_eq!(encode("p@ss/w&rd=1 2"), "p%40ss%2Fw%26rd%3D1%202");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn errors_name_the_panel_by_origin_and_say_what_to_check() {
        let origin = || "http://panel:8080".to_owned();
        let cases = [
            (
                XtreamError::Status {
                    origin: origin(),
                    status: 404,
                },
                "http://panel:8080 answered HTTP 404: wrong server URL, a blocked user agent, \
                 or bad credentials",
            ),
            (
                XtreamError::Status {
                    origin: origin(),
                    status: 503,
                },
                "http://panel:8080 answered HTTP 503: the panel has a server error",
            ),
            (
                XtreamError::AccountInactive {
                    origin: origin(),
                    status: "Expired".into(),
                },
                "http://panel:8080: the account is Expired, not Active",
            ),
            (
                XtreamError::TooLarge { origin: origin() },
                "http://panel:8080: reply larger than 256 MiB, refusing it",
            ),
        ];
        for (error, want) in cases {
            assert_eq!(error.to_string(), want);
        }
    }
}
