//! The customer's delivery log (filtered, cursor-paged), one delivery with every
//! attempt, and replaying it.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use leptos::prelude::*;

use crate::components::deliveries_table::{Rows, deliveries_table};
use crate::components::delivery_detail::delivery_detail;
use crate::components::log_filters::LogQuery;
use crate::form::bad_request;
use crate::page_errors::{self, or_page};
use crate::session::{NoFields, Posted, TenantSession};
use crate::state::ConsoleState;
use crate::view::{self, Nav, page};
use hookrelay_core::access::Permission;

const PAGE: i64 = 50;

pub async fn deliveries(
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
            state.store.find_deliveries(s.tenant, &filter, PAGE, after),
            state.store.list_endpoints(s.tenant, 200, None)
        ),
        Nav::Tenant
    ));
    let next = q.page(&mut rows, PAGE, "/console/deliveries", |d| d.id);
    let body = view! {
        <h1>"Deliveries"</h1>
        {q.form("/console/deliveries", &filter, endpoints)}
        {deliveries_table(rows, Rows::Customer)}
        {next.map(|href| view! { <p class="pager"><a href=href>"Older →"</a></p> })}
    }
    .into_any();
    page(StatusCode::OK, "Deliveries", Nav::Tenant, None, body)
}

pub async fn delivery(
    State(state): State<ConsoleState>,
    s: TenantSession,
    Path(id): Path<String>,
) -> Response {
    let id = or_page!(page_errors::id(&id, Nav::Tenant));
    let d = or_page!(page_errors::row(
        state.store.get_delivery(s.tenant, id).await,
        Nav::Tenant
    ));
    let (event, attempts) = or_page!(page_errors::loaded(
        tokio::try_join!(
            state.store.get_event(s.tenant, d.event_id),
            state.store.all_attempts(s.tenant, id)
        ),
        Nav::Tenant
    ));
    let replay = if s.may(Permission::Replay) {
        let open = !d.status.is_final();
        view! {
            <form method="post" action=format!("/console/deliveries/{id}/replay") class="inline">
                {view::csrf_field(&s.csrf)}
                <button type="submit" class="primary" id="replay">"Replay"</button>
            </form>
            {open.then(|| view! {
                <form method="post" action=format!("/console/deliveries/{id}/cancel") class="inline">
                    {view::csrf_field(&s.csrf)}
                    <button type="submit" class="danger" id="cancel">"Cancel"</button>
                </form>
            })}
        }
        .into_any()
    } else {
        ().into_any()
    };
    let body = delivery_detail(d, event.map(|e| e.payload), attempts, replay, false);
    page(StatusCode::OK, "Delivery", Nav::Tenant, None, body)
}

pub async fn replay(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    posted: Posted<TenantSession, NoFields>,
) -> Response {
    or_page!(posted.session.require(Permission::Replay));
    let id = or_page!(page_errors::id(&id, Nav::Tenant));
    match state
        .actions
        .replay(posted.session.tenant, id, &posted.session.actor)
        .await
    {
        Ok(_) => Redirect::to(&format!("/console/deliveries/{id}")).into_response(),
        Err(e) => page_errors::refused(e, Nav::Tenant),
    }
}
