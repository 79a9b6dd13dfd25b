//! `Live`: a status badge and a counter that follow the server while something is
//! under way (a recovery or dead-letter replay job, a delivery's attempts).

use leptos::prelude::*;

use crate::snapshot::Snapshot;

/// Shows `status` and `count`, polling `poll_url` every second until the snapshot
/// says it is finished. With `reload_on_change`, a new count reloads the page (to
/// show, say, a new attempt in full).
#[island]
pub fn Live(
    status: String,
    count: i64,
    count_label: String,
    finished: bool,
    note: String,
    poll_url: String,
    reload_on_change: bool,
) -> impl IntoView {
    let snapshot = RwSignal::new(Snapshot { status, count, finished, note });
    #[cfg(feature = "hydrate")]
    if !finished {
        crate::poll::follow(poll_url, snapshot, reload_on_change);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (poll_url, reload_on_change);
    view! {
        <div class="live">
            <span id="live-status" class=move || format!("badge {}", snapshot.get().status)>
                {move || snapshot.get().status.replace('_', " ")}
            </span>
            <span id="live-count" class="live-count">{move || snapshot.get().count}</span>
            <span class="muted">{count_label}</span>
            <span id="live-note" class="muted small">{move || snapshot.get().note}</span>
        </div>
    }
}
