//! The live relay (SPEC §7): one shared upstream per channel, fanned out to every viewer, with
//! failover and the return to the better stream.
//!
//! - `session`: the pure, clock-driven state machine deciding which stream feeds a channel.
//! - `channel`: a channel being relayed: the session's I/O edge, feeding the ring.
//! - `source`: one upstream attempt: connect, check and align the TS, report to the channel.
//! - `viewer`: one viewer: response head once, then the ring's shared slices.
//! - `tuners`: connections per account against `max_connections`.
//! - `manager`: the relay itself: channels by number, tuners, events, metrics, `/status`.
//! - `metrics`: counters and the start-latency histogram for `/metrics`.
//! - `ts`: MPEG-TS alignment of one source: whole packets, from its first PAT, as slices.
//! - `ring`: a channel's fan-out buffer: shared slices, per-viewer positions, bounded backlog.

pub mod channel;
pub mod manager;
pub mod metrics;
pub mod ring;
pub mod session;
pub mod source;
pub mod ts;
pub mod tuners;
pub mod viewer;

pub use channel::ChannelInfo;
pub use manager::{EventSink, Relay, SessionStatus};
pub use source::StreamSource;
