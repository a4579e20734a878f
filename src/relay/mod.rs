//! The live relay (SPEC §7): one shared upstream per channel, fanned out to every viewer, with
//! failover and the return to the better stream.
//!
//! From the top down (each uses only those below it):
//! - `manager`: the relay itself: the registry of channels by number, tune, `/status`, `/metrics`.
//! - `viewer`: one viewer: response head once, then the ring's shared slices.
//! - `channel`: a channel being relayed: the session's I/O edge, feeding the ring.
//! - `events`: how the session's events read in the event log (pure).
//! - `services`: what every channel draws on: connector, deadlines, tuners, clock, events, metrics.
//! - `source`: the upstream connector, and one attempt: connect, check and align the TS, report.
//! - `session`: the pure, clock-driven state machine deciding which stream feeds a channel.
//! - `tuners`: connections per account against `max_connections`.
//! - `metrics`: counters and the start-latency histogram for `/metrics`.
//! - `probe`: one stream read on purpose for a few seconds, to measure it (`streamforge probe`).
//! - `program`: the output program: every source scanned, spliced in at random-access points,
//!   rewritten onto one continuous program (pure).
//! - `ts`: MPEG-TS alignment of one source: whole packets, from its first PAT, as slices.
//! - `bitrate`: a session's incoming bit rate, measured when someone looks (pure).
//! - `ring`: a channel's fan-out buffer: shared slices, per-viewer positions, bounded backlog,
//!   new viewers at the latest start.

pub(crate) mod bitrate;
pub(crate) mod channel;
pub(crate) mod events;
pub(crate) mod manager;
pub(crate) mod metrics;
pub(crate) mod probe;
pub mod program;
pub mod ring;
pub(crate) mod services;
pub(crate) mod session;
pub(crate) mod source;
#[cfg(test)]
mod testing;
pub mod ts;
pub(crate) mod tuners;
pub(crate) mod viewer;

pub(crate) use channel::SessionStatus;
pub(crate) use manager::Relay;
pub(crate) use services::{EventSink, Services};
pub(crate) use source::{ChannelInfo, StreamSource, UpstreamConnector};
