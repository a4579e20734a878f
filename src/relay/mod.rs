//! The live relay (SPEC §7): one shared upstream per channel, fanned out to every viewer, with
//! failover and the return to the better stream.
//!
//! - `session`: the pure, clock-driven state machine deciding which stream feeds a channel.

pub mod session;
