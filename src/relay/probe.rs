//! One stream probed on purpose (`streamforge probe`): read for a few seconds through the
//! upstream client, scanned as the relay scans a source ([`SourceStream`]), and what was learnt
//! returned. Nothing is kept of the bytes. The caller decides whether a connection is free.

use std::time::Duration;

use tokio::time::Instant;

use crate::measure::Measurement;
use crate::upstream::{self, RequestOptions, Url};

use super::program::input::SourceStream;
use super::source::reason_of;
use super::ts::Aligner;

/// How long a probe may take.
#[derive(Debug, Clone, Copy)]
pub struct ProbeTime {
    /// Connect, TLS and the response head.
    pub connect: Duration,
    /// Reading the body, at most: a probe ends sooner once its measurement is settled.
    pub read: Duration,
}

/// Reads `url` until what can be learnt of it is (or `time.read` has passed); the error says
/// why nothing usable came, without the URL (it carries credentials).
pub async fn probe(
    http: &upstream::Client,
    url: &Url,
    user_agent: &str,
    referrer: Option<String>,
    time: ProbeTime,
) -> Result<Measurement, String> {
    let options = RequestOptions {
        head_timeout: time.connect,
        idle_timeout: Some(time.read),
        referrer,
        ..RequestOptions::new(user_agent)
    };
    let mut response = http
        .get(url, &options)
        .await
        .map_err(|e| reason_of(&e).to_string())?;
    if !(200..300).contains(&response.status) {
        let status = response.status;
        response.close();
        return Err(format!("the panel answered HTTP {status}"));
    }
    let deadline = Instant::now() + time.read;
    let mut aligner = Aligner::new();
    let mut source = SourceStream::default();
    let mut settled = None;
    while settled.is_none() {
        let Ok(next) = tokio::time::timeout_at(deadline, response.next_chunk()).await else {
            break;
        };
        let chunk = match next {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                response.close();
                return Err(reason_of(&e).to_string());
            }
        };
        let aligned = aligner.push(chunk, &mut |packets| source.push(packets));
        if aligned.is_err() {
            response.close();
            return Err("the body is not MPEG-TS".into());
        }
        source.discard_until(source.end());
        settled = source.take_settled();
    }
    response.close();
    settled.or_else(|| source.take_unreported()).ok_or_else(|| {
        format!(
            "no picture learnt in {}: no keyframe with a sequence header came",
            humantime::format_duration(time.read)
        )
    })
}
