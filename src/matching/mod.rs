//! Guide-to-stream matching (SPEC §7 Selection, issue 3 "Matching"): normalises channel names,
//! scores guide names against stream names, and plans which streams carry which guide channel
//! and in which order. Pure logic: the caller loads the guide and the catalog and stores the plan.
//!
//! - `vocab`: the words that mean something (labels, number words, feeds, countries).
//! - `normalize`: names and XMLTV ids to comparable tokens.
//! - `score`: how well two normalised names agree.
//! - `index`: which guide names a stream is worth scoring against.
//! - `plan`: the mappings, priorities and what is reported instead of taken.

mod index;
mod normalize;
mod plan;
mod score;
mod vocab;

#[cfg(test)]
mod fixture_test;
#[cfg(test)]
mod scale_test;

pub use plan::{GuideChannel, PlanOptions, StreamCandidate, plan, quality_order};
