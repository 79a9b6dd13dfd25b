//! Delivery controls in the console: pause and resume an endpoint, cancel its
//! backlog (a job) or one delivery, and try its filter on a stored event ("would
//! this endpoint receive it?"). The same actions and rules as the API.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use hookrelay_core::filter;
use hookrelay_core::store::EndpointChanges;
use leptos::prelude::*;
use serde::Deserialize;

use crate::form::{bad_request, given};
use crate::page_errors::{self, or_page};
use crate::pages::endpoints::save;
use crate::session::{NoFields, Posted, TenantSession};
use crate::state::ConsoleState;
use crate::view::{self, Nav, page};
use hookrelay_core::access::Permission;

#[derive(Deserialize)]
pub struct PauseForm {
    paused: String,
}

/// Pauses (deliveries wait, no attempt is used) or resumes (what waited goes out).
pub async fn pause(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    Posted { session: s, form: f }: Posted<TenantSession, PauseForm>,
) -> Response {
    or_page!(s.require(Permission::EndpointsWrite));
    let id = or_page!(page_errors::id(&id, Nav::Tenant));
    let paused = match f.paused.as_str() {
        "true" => true,
        "false" => false,
        _ => return bad_request("Choose to pause or resume.", Nav::Tenant),
    };
    let changes = EndpointChanges { paused: Some(paused), ..Default::default() };
    save(&state, &s, id, changes).await
}

/// Starts the job that cancels the endpoint's whole backlog; shows its progress.
pub async fn cancel_backlog(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    posted: Posted<TenantSession, NoFields>,
) -> Response {
    let s = posted.session;
    or_page!(s.require(Permission::Replay));
    let id = or_page!(page_errors::id(&id, Nav::Tenant));
    match state.actions.cancel_backlog(s.tenant, id, &s.actor).await {
        Ok(job) => Redirect::to(&format!("/console/jobs/{}", job.id)).into_response(),
        Err(e) => page_errors::refused(e, Nav::Tenant),
    }
}

/// Cancels one delivery not delivered yet.
pub async fn cancel_delivery(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    posted: Posted<TenantSession, NoFields>,
) -> Response {
    let s = posted.session;
    or_page!(s.require(Permission::Replay));
    let id = or_page!(page_errors::id(&id, Nav::Tenant));
    match state.actions.cancel_delivery(s.tenant, id, &s.actor).await {
        Ok(()) => Redirect::to(&format!("/console/deliveries/{id}")).into_response(),
        Err(e) => page_errors::refused(e, Nav::Tenant),
    }
}

#[derive(Deserialize)]
pub struct FilterTestForm {
    event_id: Option<String>,
    /// A filter to try instead of the saved one; empty for the saved one.
    filter: Option<String>,
}

/// Would this endpoint receive that event? Its types, channels and filter, each.
pub async fn test_filter(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    Posted { session: s, form: f }: Posted<TenantSession, FilterTestForm>,
) -> Response {
    let id = or_page!(page_errors::id(&id, Nav::Tenant));
    let Some(event_id) = given(&f.event_id) else {
        return bad_request("Enter the id of a stored event.", Nav::Tenant);
    };
    let event_id = or_page!(page_errors::id(&event_id, Nav::Tenant));
    let tried = match given(&f.filter)
        .map(|t| serde_json::from_str(&t))
        .transpose()
    {
        Ok(v) => v,
        Err(e) => return bad_request(&format!("The filter is not JSON: {e}."), Nav::Tenant),
    };
    let (endpoint, event) = or_page!(page_errors::loaded(
        tokio::try_join!(
            state.store.get_endpoint(s.tenant, id),
            state.store.get_event(s.tenant, event_id)
        ),
        Nav::Tenant
    ));
    let (Some(endpoint), Some(event)) = (endpoint, event) else {
        return view::not_found(Nav::Tenant);
    };
    let verdict = match filter::judge(&endpoint, &event, tried.as_ref()) {
        Ok(v) => v,
        Err(e) => return bad_request(&e.to_string(), Nav::Tenant),
    };
    let mark = |ok: bool| if ok { "yes" } else { "no" };
    let heading = if verdict.receives {
        "This endpoint would receive the event"
    } else {
        "This endpoint would not receive the event"
    };
    let back = format!("/console/endpoints/{id}");
    let body = view! {
        <h1>{heading}</h1>
        <section class="card narrow" id="filter-verdict">
            <dl class="facts">
                <dt>"Event"</dt><dd><code>{event.id.to_string()}</code> " " <span class="muted">{event.event_type.clone()}</span></dd>
                <dt>"Subscribed to its type"</dt><dd id="verdict-type">{mark(verdict.event_type)}</dd>
                <dt>"On one of its channels"</dt><dd id="verdict-channels">{mark(verdict.channels)}</dd>
                <dt>{if tried.is_some() { "Matches the filter tried" } else { "Matches its filter" }}</dt>
                <dd id="verdict-filter">{mark(verdict.filter)}</dd>
            </dl>
            <p><a class="button" href=back>"Back to the endpoint"</a></p>
        </section>
    }
    .into_any();
    page(StatusCode::OK, "Filter test", Nav::Tenant, None, body)
}
