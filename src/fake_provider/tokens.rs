//! Single-use `/sauth/<token>` URLs, the load-balancer step real panels put before every stream.
//! A token works once and only briefly, so clients must restart from `/live/…`.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};

use super::Fault;

/// An unused token expires after this.
const TOKEN_TTL: Duration = Duration::from_secs(30);

/// What a token grants: one stream for one account, with the fault armed at the `/live/` request.
#[derive(Debug, Clone)]
pub(super) struct Grant {
    pub stream_id: u64,
    pub username: String,
    pub fault: Option<Fault>,
}

#[derive(Default)]
pub(super) struct Tokens {
    issued: HashMap<String, (Grant, Instant)>,
    counter: u64,
}

impl Tokens {
    /// Issues a fresh random token for `grant`.
    pub(super) fn issue(&mut self, grant: Grant) -> String {
        let now = Instant::now();
        self.issued
            .retain(|_, (_, at)| now.duration_since(*at) < TOKEN_TTL);
        // Unguessable like a real panel's; the counter keeps tokens unique even if the RNG failed.
        let mut bytes = [0u8; 16];
        let _ = SystemRandom::new().fill(&mut bytes);
        self.counter += 1;
        let mut token = format!("{:x}", self.counter);
        for b in bytes {
            let _ = write!(token, "{b:02x}");
        }
        self.issued.insert(token.clone(), (grant, now));
        token
    }

    /// Uses up a token; `None` if unknown, already used or expired.
    pub(super) fn redeem(&mut self, token: &str) -> Option<Grant> {
        let (grant, at) = self.issued.remove(token)?;
        (at.elapsed() < TOKEN_TTL).then_some(grant)
    }
}
