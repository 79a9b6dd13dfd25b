//! The live status island and the snapshots it shows: a job's progress, a
//! delivery's attempts.

use hookrelay_console_islands::{Live, Snapshot};
use hookrelay_core::model::{Delivery, Job, JobStatus};
use leptos::prelude::*;

use crate::view::ago;

pub fn job_snapshot(job: &Job) -> Snapshot {
    Snapshot {
        status: job.status.to_string(),
        count: i64::from(job.done_count),
        finished: job.status == JobStatus::Done,
        note: job.finished_at.map_or_else(
            || "updates until the job is done".to_string(),
            |t| format!("finished {}", t.format("%H:%M:%S UTC")),
        ),
    }
}

pub fn delivery_snapshot(d: &Delivery) -> Snapshot {
    Snapshot {
        status: d.status.to_string(),
        count: i64::from(d.attempts),
        finished: d.status.is_final(),
        note: d
            .next_attempt_at
            .map(|t| format!("next attempt {}", ago(t)))
            .unwrap_or_default(),
    }
}

/// The live status island for a snapshot.
pub fn live(s: Snapshot, count_label: &str, poll_url: String, reload_on_change: bool) -> AnyView {
    view! {
        <Live status=s.status count=s.count count_label=count_label.to_string()
              finished=s.finished note=s.note poll_url=poll_url reload_on_change=reload_on_change/>
    }
    .into_any()
}
