//! The projections of both views gathered from every rank into the global batch
//! [a_0; …; a_{W−1}; b_0; …; b_{W−1}], with gradient (global negatives). The collective and the
//! placement of the rows are [`crate::comm::gather_views_placed`]; this op is only its tape
//! function, since the gather needs a communicator, which sits above the raw ops.

mod tape;
pub use tape::gather_views;
