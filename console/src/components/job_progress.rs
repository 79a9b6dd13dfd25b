//! A job's page: what it does and how far it got, live while it runs.

use axum::http::StatusCode;
use axum::response::Response;
use hookrelay_core::model::{Job, JobKind, JobStatus};
use leptos::prelude::*;

use crate::components::live::{job_snapshot, live};
use crate::view::{Nav, copy_id, page, when};

/// A job's progress, live while it runs (or reloading every two seconds).
pub fn job_page(job: Job, nav: Nav) -> Response {
    let done = job.status == JobStatus::Done;
    let title = if job.kind == JobKind::Recover {
        "Recovering failed deliveries"
    } else {
        "Replaying dead letters"
    };
    let poll_url = match nav {
        Nav::Admin => format!("/console/admin/jobs/{}/progress", job.id),
        _ => format!("/console/jobs/{}/progress", job.id),
    };
    let live = live(job_snapshot(&job), "re-sent so far", poll_url, false);
    let body = view! {
        <h1>{title}</h1>
        <section class="card">
            {live}
            <dl class="facts">
                <dt>"Job"</dt><dd>{copy_id(job.id.to_string())}</dd>
                <dt>"Started"</dt><dd>{when(job.created_at)}</dd>
            </dl>
        </section>
    }
    .into_any();
    page(StatusCode::OK, title, nav, (!done).then_some(2), body)
}
