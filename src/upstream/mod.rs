//! Our HTTP/1.1 client for provider streams and the Xtream API: GET over TCP or TLS on
//! tokio-uring, redirects, and bodies handed out as shared, zero-copy `Bytes`.
//!
//! Paths and queries carry Xtream credentials, so nothing here prints a URL beyond its origin.

pub(crate) mod chunked;
mod conn;
mod error;
pub(crate) mod head;
mod response;
mod tls;
mod url;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use conn::Closer;
pub use error::{ErrorKind, UpstreamError};
pub use response::Response;
pub use url::Url;

use conn::Conn;
use head::Head;

/// How a [`Client`] is set up.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// PEM certificates trusted as roots besides webpki-roots.
    pub extra_ca_file: Option<PathBuf>,
}

/// Per-request settings.
#[derive(Debug, Clone)]
pub struct RequestOptions {
    /// Sent as `User-Agent`; must not be empty.
    pub user_agent: String,
    /// Connect + TLS handshake + response head, for the whole redirect chain (one deadline:
    /// SPEC §7's "per attempt" budget is what the caller waits, however many hops it takes).
    pub head_timeout: Duration,
    /// Body: no bytes for this long shuts the socket down and fails with `Stalled`.
    pub idle_timeout: Option<Duration>,
    /// Redirects followed before `TooManyRedirects`.
    pub max_redirects: u8,
    /// Sent as `Referer` when set (a playlist's `#EXTVLCOPT:http-referrer`).
    pub referrer: Option<String>,
}

impl RequestOptions {
    /// SPEC defaults: 1 s head timeout, no idle timeout, 5 redirects.
    pub fn new(user_agent: impl Into<String>) -> RequestOptions {
        RequestOptions {
            user_agent: user_agent.into(),
            head_timeout: Duration::from_secs(1),
            idle_timeout: None,
            max_redirects: 5,
            referrer: None,
        }
    }
}

/// The upstream HTTP/1.1 client; cheap to clone (the TLS configuration is shared).
#[derive(Clone)]
pub struct Client {
    tls: Arc<rustls::ClientConfig>,
}

impl Client {
    /// Builds the client; fails naming the extra CA file when it is unreadable or invalid.
    pub fn new(opts: &ClientOptions) -> Result<Client, UpstreamError> {
        Ok(Client {
            tls: tls::client_config(opts.extra_ca_file.as_deref())?,
        })
    }

    /// GETs `url`, following 301/302/303/307/308 redirects (a redirect's body is never read).
    /// Any final status, 2xx or not, is returned as a `Response`. Nothing is remembered between
    /// calls: each attempt starts again from `url`.
    pub async fn get(&self, url: &Url, opts: &RequestOptions) -> Result<Response, UpstreamError> {
        check_header("User-Agent", &opts.user_agent)?;
        if let Some(referrer) = &opts.referrer {
            check_header("Referer", referrer)?;
        }
        // Capped so that an absurd setting cannot overflow `Instant`.
        let head_timeout = opts.head_timeout.min(Duration::from_secs(86_400));
        let deadline = Instant::now() + head_timeout;
        let mut url = url.clone();
        let mut redirects = 0u8;
        loop {
            let (conn, head) = self.exchange(&url, opts, deadline, head_timeout).await?;
            let location = match head.status {
                301 | 302 | 303 | 307 | 308 => head.header("location"),
                _ => None,
            };
            if let Some(location) = location {
                let next = url.join(location).map_err(|_| UpstreamError::Malformed {
                    origin: url.origin(),
                    reason: "redirect Location is not a valid http(s) URL".to_owned(),
                })?;
                drop(conn);
                if redirects >= opts.max_redirects {
                    return Err(UpstreamError::TooManyRedirects {
                        origin: url.origin(),
                        max: opts.max_redirects,
                    });
                }
                redirects += 1;
                url = next;
                continue;
            }
            let framing = head::framing(&head).map_err(|reason| UpstreamError::Malformed {
                origin: url.origin(),
                reason: reason.to_owned(),
            })?;
            return Ok(Response::new(url, head, conn, framing, opts.idle_timeout));
        }
    }

    /// One hop: connect, TLS, request, response head, all before `deadline`.
    async fn exchange(
        &self,
        url: &Url,
        opts: &RequestOptions,
        deadline: Instant,
        head_timeout: Duration,
    ) -> Result<(Conn, Head), UpstreamError> {
        let origin = url.origin();
        let stream = crate::net::connect(url.host(), url.port(), deadline)
            .await
            .map_err(|e| match e {
                crate::net::ConnectError::Resolve(source) => UpstreamError::Resolve {
                    origin: origin.clone(),
                    source,
                },
                crate::net::ConnectError::Timeout => UpstreamError::ConnectTimeout {
                    origin: origin.clone(),
                },
                crate::net::ConnectError::Connect(source) => UpstreamError::Connect {
                    origin: origin.clone(),
                    source,
                },
            })?;
        let tls = url.is_https().then(|| (self.tls.clone(), url.host()));
        let mut conn = Conn::new(stream, tls, origin.clone())?;
        let referrer = match &opts.referrer {
            Some(referrer) => format!("Referer: {referrer}\r\n"),
            None => String::new(),
        };
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\n{referrer}Accept: */*\r\nConnection: close\r\n\r\n",
            url.path_and_query(),
            url.host_header(),
            opts.user_agent,
        );
        let head = async {
            conn.send_request(request.into_bytes()).await?;
            loop {
                let parsed = head::parse_final_head(&mut conn.buf).map_err(|reason| {
                    UpstreamError::Malformed {
                        origin: origin.clone(),
                        reason,
                    }
                })?;
                if let Some(head) = parsed {
                    return Ok(head);
                }
                if conn.fill().await? == 0 {
                    return Err(UpstreamError::UnexpectedEof {
                        origin: origin.clone(),
                    });
                }
            }
        };
        // On timeout the dropped future may leave a read in flight: `conn`'s drop shuts it down.
        match tokio::time::timeout_at(deadline.into(), head).await {
            Ok(Ok(head)) => Ok((conn, head)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(UpstreamError::HeadTimeout {
                origin,
                after: head_timeout,
            }),
        }
    }
}

/// A header value we send must be there and must not break the request head.
fn check_header(header: &'static str, value: &str) -> Result<(), UpstreamError> {
    if value.trim().is_empty() {
        return Err(UpstreamError::InvalidHeader(header, "it is empty"));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(UpstreamError::InvalidHeader(
            header,
            "it contains control characters",
        ));
    }
    Ok(())
}
