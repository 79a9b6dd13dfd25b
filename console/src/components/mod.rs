//! Pieces several pages draw: the delivery table and detail, the log filters,
//! job progress, the live status island and the endpoint page's cards.

pub mod chart;
pub mod deliveries_table;
pub mod delivery_detail;
pub mod endpoint_cards;
pub mod job_progress;
pub mod live;
pub mod log_filters;
