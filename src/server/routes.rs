//! What each path serves (SPEC §6). Documents come from the current snapshot; the EPG from the
//! rendered files on disk; the pages for people from the snapshot and the relay's status; stream
//! paths name a lineup channel.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::SystemTime;

use crate::config::ChannelIds;
use crate::http::{Body, Handler, Method, Request, Response};
use crate::relay::Relay;
use crate::web;

use super::snapshot::Snapshot;

pub struct Routes {
    pub snapshot: Rc<RefCell<Rc<Snapshot>>>,
    pub data_dir: PathBuf,
    pub channel_ids: ChannelIds,
    pub relay: Rc<Relay>,
    pub favicon: bytes::Bytes,
}

const JSON: &str = "application/json";
const XML: &str = "application/xml; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

impl Handler for Routes {
    fn handle(&self, request: &Request) -> Response {
        let response = self.route(request);
        // The path only: a query is the client's and is not ours to print.
        let (peer, path) = (request.peer, &request.path);
        let method = match request.method {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
        };
        match &response {
            Response::Full { status, .. } => log::debug!("{peer} {method} {path}: {status}"),
            Response::TakeOver(_) => log::debug!("{peer} {method} {path}: to the relay"),
        }
        response
    }
}

impl Routes {
    fn route(&self, request: &Request) -> Response {
        let snapshot = self.snapshot.borrow().clone();
        let path = request.path.as_str();
        if path == "/lineup.post" {
            // Plex POSTs `?scan=start` (as HTTP/1.0) while adding the tuner: the scan is always done.
            return Response::empty(200);
        }
        if request.method == Method::Post {
            return Response::full(405, vec![("Allow", "GET, HEAD".into())], Body::from(""));
        }
        let document = |content_type: &str, body: &bytes::Bytes| {
            Response::full(
                200,
                vec![("Content-Type", content_type.to_string())],
                body.clone(),
            )
        };
        match path {
            "/discover.json" => document(JSON, &snapshot.discover_json),
            "/lineup_status.json" => document(JSON, &snapshot.lineup_status_json),
            "/lineup.json" => document(JSON, &snapshot.lineup_json),
            "/lineup.xml" => document(XML, &snapshot.lineup_xml),
            "/device.xml" => document(XML, &snapshot.device_xml),
            "/playlist.m3u" | "/lineup.m3u" => document("audio/x-mpegurl", &snapshot.playlist_m3u),
            "/epg.xml" => self.file("epg.xml", XML),
            "/epg.xml.gz" => self.file("epg.xml.gz", "application/gzip"),
            "/" | "/index.html" => {
                let page = web::home(&web::Home {
                    device: &snapshot.device,
                    version: env!("CARGO_PKG_VERSION"),
                    overview: &snapshot.overview,
                    lineup: &snapshot.channels,
                    sessions: &self.relay.status(),
                    tuners: &self.relay.tuners().usage(),
                    now: SystemTime::now(),
                });
                Response::full(200, vec![("Content-Type", HTML.into())], page)
            }
            "/tuners.html" => {
                let page = web::tuners_html(&self.relay.status(), snapshot.device.tuner_count);
                Response::full(200, vec![("Content-Type", HTML.into())], page)
            }
            "/lineup.html" => Response::full(
                200,
                vec![("Content-Type", HTML.into())],
                web::lineup_html(&snapshot.channels),
            ),
            "/favicon.ico" => document("image/x-icon", &self.favicon),
            "/status" => {
                let status = serde_json::json!({
                    "sessions": self.relay.status(),
                    "tuners": { "in_use": self.relay.tuners().in_use(), "total": self.relay.tuners().total() },
                    "accounts": self.account_status(&snapshot),
                });
                Response::full(200, vec![("Content-Type", JSON.into())], status.to_string())
            }
            "/metrics" => Response::full(
                200,
                vec![("Content-Type", "text/plain; version=0.0.4".into())],
                self.relay.metrics_text(),
            ),
            _ => match stream_channel(path) {
                Some(reference) => match snapshot.channel(reference, self.channel_ids) {
                    // A HEAD proves nothing and must not take a tuner.
                    Some(_) if request.method == Method::Head => Response::full(
                        200,
                        vec![("Content-Type", "video/mp2t".into())],
                        Body::from(""),
                    ),
                    Some(channel) => self.relay.tune(channel.clone()),
                    None => Response::empty(404),
                },
                None => Response::empty(404),
            },
        }
    }

    /// Tuners in use per account, by name.
    fn account_status(&self, snapshot: &Snapshot) -> Vec<serde_json::Value> {
        let usage = self.relay.tuners().usage();
        snapshot
            .overview
            .accounts
            .iter()
            .map(|account| {
                let in_use = usage
                    .iter()
                    .find(|(id, _, _)| *id == account.id)
                    .map_or(0, |&(_, open, _)| open);
                serde_json::json!({
                    "name": account.name,
                    "enabled": account.enabled,
                    "tuners_in_use": in_use,
                    "max_connections": account.max_connections,
                    "subscription_status": account.subscription_status,
                    "expires_at": account.expires_at,
                })
            })
            .collect()
    }

    fn file(&self, name: &str, content_type: &str) -> Response {
        match std::fs::File::open(self.data_dir.join(name)).and_then(Body::file) {
            Ok(body) => Response::full(200, vec![("Content-Type", content_type.to_string())], body),
            Err(_) => Response::empty(404),
        }
    }
}

/// The channel reference of `/stream/{id}`, `/auto/v{number}` or `/tuner{N}/v{number}`.
pub fn stream_channel(path: &str) -> Option<&str> {
    if let Some(id) = path.strip_prefix("/stream/") {
        return (!id.is_empty() && !id.contains('/')).then_some(id);
    }
    let rest = path.strip_prefix("/auto/v").or_else(|| {
        let tuner = path.strip_prefix("/tuner")?;
        let (index, rest) = tuner.split_once('/')?;
        index.bytes().all(|b| b.is_ascii_digit()).then_some(())?;
        rest.strip_prefix('v')
    })?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::stream_channel;

    #[test]
    fn stream_paths() {
        assert_eq!(stream_channel("/stream/101"), Some("101"));
        assert_eq!(stream_channel("/auto/v4.1"), Some("4.1"));
        assert_eq!(stream_channel("/tuner0/v101"), Some("101"));
        assert_eq!(stream_channel("/tuner12/v7"), Some("7"));
        assert_eq!(stream_channel("/tunerx/v7"), None);
        assert_eq!(stream_channel("/auto/v"), None);
        assert_eq!(stream_channel("/stream/"), None);
        assert_eq!(stream_channel("/auto/v1/x"), None);
        assert_eq!(stream_channel("/lineup.json"), None);
    }
}
