//! Our HTTP/1.1 server on tokio-uring + httparse: generic, it knows nothing of HDHomeRun or the
//! relay; the caller gives a `Handler`.
//!
//! - HTTP/1.0 and 1.1, keep-alive where the client allows it, pipelining (answered in order),
//!   HEAD (same headers as GET, no body), query strings split off the path.
//! - A full response always carries `Content-Length`; nothing is ever sent chunked.
//! - Limits (`ServerConfig`): head size (431), body size (413), head deadline (408, against
//!   slowloris), keep-alive idle time, stalled writes, open connections.
//! - Refused before the handler: methods other than GET/HEAD/POST (405 with `Allow`), malformed
//!   requests (400 and close), chunked request bodies (411 and close).
//! - A handler answers in memory (`Response::Full`) or takes the socket over
//!   (`Response::TakeOver`, for the live relay's close-delimited streams).

mod conn;
pub(crate) mod request;
mod response;
mod server;
mod shutdown;

#[cfg(test)]
mod tests;

pub use conn::Connection;
// The sans-IO head parser is public for the criterion benches.
pub use request::{Method, Parse, Request, Version, parse_head};
pub use response::{Body, Response};
pub use server::{Server, ServerConfig};
pub use shutdown::{Shutdown, ShutdownTrigger, fire_on_signals};

/// Answers requests. Synchronous: answers come from in-memory snapshots or open files; anything
/// that must wait (a tune) takes the connection over.
pub trait Handler: 'static {
    fn handle(&self, request: &Request) -> Response;
}

impl<F> Handler for F
where
    F: Fn(&Request) -> Response + 'static,
{
    fn handle(&self, request: &Request) -> Response {
        self(request)
    }
}
