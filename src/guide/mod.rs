//! The guide side of the appliance, on top of the store: fetching and refreshing XMLTV sources,
//! auto-mapping guide channels to provider streams, deciding the lineup, and rendering the EPG
//! that is served. The CLI calls it now; the server will call it for its periodic refreshes.

pub(crate) mod automap;
pub(crate) mod lineup;
pub(crate) mod sources;

pub use lineup::{LineupChannel, lineup, render_epg};
