//! The customer's event log: newest first, filtered like the delivery log, each
//! event with how its deliveries stand; one event with its payload and deliveries.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use hookrelay_core::store::{DeliveryFilter, EventSummary};
use leptos::prelude::*;

use crate::components::deliveries_table::{Rows, deliveries_table};
use crate::components::log_filters::LogQuery;
use crate::form::bad_request;
use crate::page_errors::{self, or_page, unavailable};
use crate::session::TenantSession;
use crate::state::ConsoleState;
use crate::view::{self, Nav, copy_id, page, when};

const PAGE: i64 = 50;

pub async fn events(
    State(state): State<ConsoleState>,
    s: TenantSession,
    Query(q): Query<LogQuery>,
) -> Response {
    let (filter, after) = match q.parse() {
        Ok(v) => v,
        Err(e) => return bad_request(&e, Nav::Tenant),
    };
    let (mut rows, endpoints) = or_page!(page_errors::listed(
        tokio::try_join!(
            state.store.find_events(s.tenant, &filter, PAGE, after),
            state.store.list_endpoints(s.tenant, 200, None)
        ),
        Nav::Tenant
    ));
    let next = q.page(&mut rows, PAGE, "/console/events", |e| e.id);
    let body = view! {
        <h1>"Events"</h1>
        {q.form("/console/events", &filter, endpoints)}
        {event_table(rows)}
        {next.map(|href| view! { <p class="pager"><a href=href>"Older →"</a></p> })}
    }
    .into_any();
    page(StatusCode::OK, "Events", Nav::Tenant, None, body)
}

/// "2 of 3 delivered", "1 failing", "no endpoint subscribed".
fn outcome(e: &EventSummary) -> AnyView {
    if e.deliveries == 0 {
        return view! { <span class="muted">"no endpoint subscribed"</span> }.into_any();
    }
    let (class, text) = if e.failing > 0 {
        ("badge failed", format!("{} failing", e.failing))
    } else if e.delivered == e.deliveries {
        ("badge delivered", "delivered".to_string())
    } else {
        ("badge pending", "pending".to_string())
    };
    view! {
        <span class=class>{text}</span>
        <span class="muted small">{format!(" {} of {} delivered", e.delivered, e.deliveries)}</span>
    }
    .into_any()
}

fn event_table(rows: Vec<EventSummary>) -> AnyView {
    if rows.is_empty() {
        return view! { <p class="card empty">"No events match. Events your account sends appear here as soon as they are accepted."</p> }.into_any();
    }
    let rows = rows
        .into_iter()
        .map(|e| {
            let href = format!("/console/events/{}", e.id);
            view! {
                <tr>
                    <td><a href=href><code>{e.id.to_string()}</code></a></td>
                    <td>{e.event_type.clone()}</td>
                    <td>{outcome(&e)}</td>
                    <td class="small">{e.idempotency_key.clone().unwrap_or_default()}</td>
                    <td>{when(e.created_at)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="list" id="events">
            <thead><tr><th>"Event"</th><th>"Type"</th><th>"Deliveries"</th><th>"Idempotency key"</th><th>"Accepted"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

pub async fn event(
    State(state): State<ConsoleState>,
    s: TenantSession,
    Path(id): Path<String>,
) -> Response {
    let id = or_page!(page_errors::id(&id, Nav::Tenant));
    let of_event = DeliveryFilter { search: Some(id.to_string()), ..Default::default() };
    let (event, deliveries) = match tokio::try_join!(
        state.store.get_event(s.tenant, id),
        state.store.find_deliveries(s.tenant, &of_event, 200, None)
    ) {
        Ok((Some(e), d)) => (e, d),
        Ok((None, _)) => return view::not_found(Nav::Tenant),
        Err(e) => return unavailable(e, Nav::Tenant),
    };
    let payload = view::pretty(&event.payload);
    let body = view! {
        <h1>"Event"</h1>
        <section class="card">
            <dl class="facts">
                <dt>"Id"</dt><dd>{copy_id(event.id.to_string())}</dd>
                <dt>"Type"</dt><dd>{event.event_type.clone()}</dd>
                <dt>"Idempotency key"</dt><dd>{event.idempotency_key.clone().unwrap_or_else(|| "—".into())}</dd>
                <dt>"Accepted"</dt><dd>{when(event.created_at)}</dd>
            </dl>
            <details open=true>
                <summary>"Payload (the body every endpoint receives)"</summary>
                <pre>{payload}</pre>
            </details>
        </section>
        <h2>"Deliveries"</h2>
        {deliveries_table(deliveries, Rows::Customer)}
    }
    .into_any();
    page(StatusCode::OK, "Event", Nav::Tenant, None, body)
}
