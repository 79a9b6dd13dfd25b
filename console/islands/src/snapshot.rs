//! What a progress URL answers: the state the `Live` island shows and polls for.

use serde::{Deserialize, Serialize};

/// What a progress URL answers, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub status: String,
    pub count: i64,
    /// Nothing more will change: polling stops.
    pub finished: bool,
    /// A short line shown beside the count (e.g. when the job finished).
    pub note: String,
}
