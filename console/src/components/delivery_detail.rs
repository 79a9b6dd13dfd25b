//! One delivery: its facts, the payload, and every attempt with request and response.

use hookrelay_console_islands::Snapshot;
use hookrelay_core::model::{Attempt, Delivery};
use leptos::prelude::*;

use crate::components::live::{delivery_snapshot, live};
use crate::view::{self, copy_id, maybe_when, when};

/// One delivery: its facts, the payload, and every attempt with request and response.
pub fn delivery_detail(
    d: Delivery,
    payload: Option<String>,
    attempts: Vec<Attempt>,
    actions: AnyView,
    admin: bool,
) -> AnyView {
    let endpoint_href = if admin {
        format!("/console/admin/dead?endpoint={}", d.endpoint_id)
    } else {
        format!("/console/endpoints/{}", d.endpoint_id)
    };
    let attempt_list = if attempts.is_empty() {
        view! { <p class="card empty">"No attempt yet: it goes out as soon as its endpoint's lane allows."</p> }.into_any()
    } else {
        attempts
            .into_iter()
            .rev()
            .map(|a| {
                let ok = a.response_status.is_some_and(|s| (200..300).contains(&s));
                let class = if ok { "attempt ok" } else { "attempt failed" };
                let status = a.response_status.map_or("no response".to_string(), |s| format!("HTTP {s}"));
                let headers = serde_json::to_string_pretty(&a.request_headers).unwrap_or_default();
                let response_headers = a
                    .response_headers
                    .as_ref()
                    .and_then(|h| serde_json::to_string_pretty(h).ok());
                view! {
                    <article class=class>
                        <header>
                            <strong>{format!("Attempt {}", a.attempt)}</strong>
                            {a.out_of_band.then(|| view! { <span class="badge" title="sent outside the endpoint's order (a replay by hand)">"out of band"</span> })}
                            <span class="status">{status}</span>
                            <span class="muted">{format!("{} ms", a.duration_ms)}</span>
                            {when(a.created_at)}
                        </header>
                        {a.error.map(|e| view! { <p class="error-text">{e}</p> })}
                        <details>
                            <summary>"Request headers"</summary>
                            <pre>{headers}</pre>
                        </details>
                        {response_headers.map(|h| view! {
                            <details>
                                <summary>"Response headers"</summary>
                                <pre>{h}</pre>
                            </details>
                        })}
                        <details open=!ok>
                            <summary>"Response body"</summary>
                            <pre>{a.response_body.as_deref().map(view::pretty).unwrap_or_else(|| "(none)".into())}</pre>
                        </details>
                    </article>
                }
            })
            .collect_view()
            .into_any()
    };
    // Customers see new attempts arrive; the operator's view is a snapshot.
    let snapshot = delivery_snapshot(&d);
    let live = if admin {
        live(
            Snapshot { finished: true, ..snapshot },
            "attempts",
            String::new(),
            false,
        )
    } else {
        live(
            snapshot,
            "attempts",
            format!("/console/deliveries/{}/progress", d.id),
            true,
        )
    };
    view! {
        <h1>"Delivery"</h1>
        <section class="card">
            {live}
            <dl class="facts">
                <dt>"webhook-id"</dt><dd>{copy_id(d.id.to_string())}</dd>
                <dt>"Event"</dt><dd>{copy_id(d.event_id.to_string())} " " <span class="muted">{d.event_type.clone()}</span></dd>
                <dt>"Endpoint"</dt><dd><a href=endpoint_href>{d.endpoint_id.to_string()}</a></dd>
                <dt>"Created"</dt><dd>{when(d.created_at)}</dd>
                <dt>"Next attempt"</dt><dd>{maybe_when(d.next_attempt_at)}</dd>
                {d.held.then(|| view! {
                    <dt>"Waiting"</dt>
                    <dd id="held">{match d.blocked_by {
                        Some(head) => view! { "its turn, behind " <a href=format!("/console/deliveries/{head}")>{head.to_string()}</a> }.into_any(),
                        None => view! { "its endpoint is paused, or its turn in line" }.into_any(),
                    }}</dd>
                })}
                {d.cancelled_by.clone().map(|by| view! { <dt>"Cancelled by"</dt><dd id="cancelled-by">{by}</dd> })}
                <dt>"Last error"</dt><dd class="error-text">{d.last_error.clone().unwrap_or_default()}</dd>
            </dl>
            <div class="actions">{actions}</div>
        </section>
        <details class="card">
            <summary>"Request body (the event payload)"</summary>
            <pre>{payload.as_deref().map(view::pretty).unwrap_or_default()}</pre>
        </details>
        <h2>"Attempts"</h2>
        <div class="attempts">{attempt_list}</div>
    }
    .into_any()
}
