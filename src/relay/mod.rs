//! The live relay (SPEC §7): one shared upstream per channel, fanned out to every viewer, with
//! failover and the return to the better stream.
//!
//! - `session`: the pure, clock-driven state machine deciding which stream feeds a channel.
//! - `ts`: MPEG-TS alignment of one source: whole packets, from its first PAT, as slices.
//! - `ring`: a channel's fan-out buffer: shared slices, per-viewer positions, bounded backlog.

pub mod ring;
pub mod session;
pub mod ts;
