//! The customer's endpoints: the list with their health, one endpoint with its
//! recent deliveries, enabling or disabling it, recovering its failures.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use hookrelay_core::model::Endpoint;
use hookrelay_core::store::{DeliveryFilter, EndpointChanges, EndpointHealth, Scope};
use leptos::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

use crate::components::chart::{DAY, HOUR, Range, attempt_charts, sparkline};
use crate::components::deliveries_table::{Rows, deliveries_table};
use crate::components::endpoint_cards;
use crate::form::{bad_request, parse_time};
use crate::page_errors::{self, or_page};
use crate::session::{Posted, TenantSession};
use crate::state::ConsoleState;
use crate::view::{self, Nav, badge, copy_id, page, rate, when};
use hookrelay_core::access::Permission;

pub async fn endpoints(State(state): State<ConsoleState>, s: TenantSession) -> Response {
    let (list, health, recent) = or_page!(page_errors::loaded(
        tokio::try_join!(
            state.store.list_endpoints(s.tenant, 200, None),
            state.store.endpoint_health(s.tenant),
            state
                .store
                .success_bins(s.tenant, SPARK.span_minutes, SPARK.bin_minutes)
        ),
        Nav::Tenant
    ));
    let writes = s.may(Permission::EndpointsWrite);
    let health_of = |id: Uuid| {
        health
            .iter()
            .find(|h| h.endpoint_id == id)
            .cloned()
            .unwrap_or_default()
    };
    let body = if list.is_empty() {
        view! {
            <section class="card empty">
                <h1>"No endpoints yet"</h1>
                <p>"Add the URL where you want to receive webhooks; the events you subscribe it to will show up here with every delivery attempt."</p>
                {writes.then(|| view! { <p><a class="button primary" href="/console/endpoints/new">"Add an endpoint"</a></p> })}
            </section>
        }
        .into_any()
    } else {
        let rows = list
            .into_iter()
            .map(|e| endpoint_row(e.clone(), health_of(e.id), sparkline(SPARK, e.id, &recent)))
            .collect_view();
        view! {
            <div class="title-row">
                <h1>"Endpoints"</h1>
                {writes.then(|| view! { <a class="button primary" href="/console/endpoints/new" id="add-endpoint">"Add an endpoint"</a> })}
            </div>
            <table class="list">
                <thead><tr>
                    <th>"Endpoint"</th><th>"State"</th><th>"Circuit"</th>
                    <th>"Success 1 h"</th><th>"Last hour"</th><th>"Success 24 h"</th><th>"Rate limit"</th><th>"Last error"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    page(StatusCode::OK, "Endpoints", Nav::Tenant, None, body)
}

/// The endpoints list's sparklines: success per five minutes over the last hour.
const SPARK: Range = Range {
    label: "last hour, per 5 minutes",
    span_minutes: 60,
    bin_minutes: 5,
};

fn endpoint_row(e: Endpoint, h: EndpointHealth, spark: AnyView) -> AnyView {
    let href = format!("/console/endpoints/{}", e.id);
    let state = view! {
        {view::enabled_badge(e.disabled)}
        {e.paused.then(|| view! { " " {badge("paused")} })}
        " " <span class="muted small">{e.disabled_reason.clone().unwrap_or_default()}</span>
    };
    let limit = match e.rate_limit_per_second {
        Some(r) => format!("{r}/s"),
        None => "none".into(),
    };
    view! {
        <tr>
            <td><a href=href>{e.url.clone()}</a><div class="muted small">{e.description.clone()}</div></td>
            <td>{state}</td>
            <td>{badge(e.circuit.state.as_str())}</td>
            <td>{rate(h.hour_ok, h.hour_total)}<span class="muted small">{format!(" of {}", h.hour_total)}</span></td>
            <td>{spark}</td>
            <td>{rate(h.day_ok, h.day_total)}<span class="muted small">{format!(" of {}", h.day_total)}</span></td>
            <td>{limit}</td>
            <td class="error-text">{h.last_error.unwrap_or_default()}</td>
        </tr>
    }
    .into_any()
}

pub async fn endpoint(
    State(state): State<ConsoleState>,
    s: TenantSession,
    Path(id): Path<String>,
) -> Response {
    let id = or_page!(page_errors::id(&id, Nav::Tenant));
    let e = or_page!(page_errors::row(
        state.store.get_endpoint(s.tenant, id).await,
        Nav::Tenant
    ));
    let filter = DeliveryFilter { endpoint_id: Some(id), ..Default::default() };
    let scope = Scope::Endpoint { tenant: s.tenant, endpoint: id };
    let (recent, hour, day, backlog) = or_page!(page_errors::loaded(
        tokio::try_join!(
            state.store.find_deliveries(s.tenant, &filter, 20, None),
            state
                .store
                .attempt_bins(scope, HOUR.span_minutes, HOUR.bin_minutes),
            state
                .store
                .attempt_bins(scope, DAY.span_minutes, DAY.bin_minutes),
            state.store.endpoint_backlog(s.tenant, id),
        ),
        Nav::Tenant
    ));
    let controls = backlog.map(|b| {
        let may = endpoint_cards::May {
            write: s.may(Permission::EndpointsWrite),
            cancel: s.may(Permission::Replay),
        };
        endpoint_cards::controls_card(&e, &b, &s.csrf, may)
    });
    let action = format!("/console/endpoints/{id}/recover");
    let toggle = view! {
        <form method="post" action=format!("/console/endpoints/{id}/state") class="inline">
            {view::csrf_field(&s.csrf)}
            <input type="hidden" name="disabled" value=(!e.disabled).to_string()/>
            <button type="submit" id="toggle" class=if e.disabled { "primary" } else { "danger" }>
                {if e.disabled { "Enable" } else { "Disable" }}
            </button>
        </form>
    };
    let all = format!("/console/deliveries?endpoint={id}");
    let writes = s.may(Permission::EndpointsWrite);
    let types = e
        .event_types
        .clone()
        .map_or("every event type".to_string(), |t| t.join(", "));
    let body = view! {
        <h1>"Endpoint"</h1>
        <section class="card">
            <dl class="facts">
                <dt>"URL"</dt><dd><code>{e.url.clone()}</code></dd>
                {(!e.description.is_empty()).then(|| view! { <dt>"Description"</dt><dd>{e.description.clone()}</dd> })}
                <dt>"Id"</dt><dd>{copy_id(e.id.to_string())}</dd>
                <dt>"Events"</dt><dd>{types}</dd>
                <dt>"State"</dt><dd>{view::enabled_badge(e.disabled)} " " {e.disabled_reason.clone().unwrap_or_default()}</dd>
                <dt>"Circuit"</dt><dd>{badge(e.circuit.state.as_str())}
                    {e.circuit.next_probe_at.map(|t| view! { " next probe " {when(t)} })}</dd>
                <dt>"Rate limit"</dt><dd>{e.rate_limit_per_second.map_or("none".to_string(), |r| format!("{r}/s, burst {}", e.rate_limit_burst.unwrap_or(r)))}</dd>
                <dt>"In flight"</dt><dd>{e.max_in_flight.map_or("no cap".to_string(), |n| n.to_string())}</dd>
                <dt>"Timeout"</dt><dd>{e.timeout_ms.map_or("default".to_string(), |ms| format!("{ms} ms"))}</dd>
            </dl>
            {writes.then(|| view! { <div class="actions">{endpoint_cards::actions(id, &s.csrf)} {toggle}</div> })}
        </section>
        {controls}
        {super::endpoint_reach::request_card(&e, &s.csrf, writes)}
        {writes.then(|| endpoint_cards::secret_card(&e, &s.csrf))}
        {s.may(Permission::Replay).then(|| view! {
        <section class="card">
            <h2>"Recover failed deliveries"</h2>
            <p class="muted">"Re-sends every delivery of this endpoint not delivered yet (pending, failed, dead or cancelled) created since the time you choose (UTC), with its original webhook-id."</p>
            <form method="post" action=action class="inline">
                {view::csrf_field(&s.csrf)}
                <label>"Since " <input type="datetime-local" name="since" required=true/></label>
                <button type="submit" class="primary">"Recover"</button>
            </form>
        </section>
        })}
        <h2>"Last hour"</h2>
        <div class="charts" id="endpoint-hour">{attempt_charts(HOUR, &hour)}</div>
        <h2>"Last day"</h2>
        <div class="charts" id="endpoint-day">{attempt_charts(DAY, &day)}</div>
        <h2>"Recent deliveries " <a class="small" href=all>"all"</a></h2>
        {deliveries_table(recent, Rows::Customer)}
    }
    .into_any();
    page(StatusCode::OK, "Endpoint", Nav::Tenant, None, body)
}

#[derive(Deserialize)]
pub struct StateForm {
    disabled: String,
}

/// Disables or re-enables an endpoint (re-enabling clears the reason it was disabled).
pub async fn set_state(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    Posted { session: s, form: f }: Posted<TenantSession, StateForm>,
) -> Response {
    or_page!(s.require(Permission::EndpointsWrite));
    let id = or_page!(page_errors::id(&id, Nav::Tenant));
    let disabled = match f.disabled.as_str() {
        "true" => true,
        "false" => false,
        _ => return bad_request("Choose to enable or disable.", Nav::Tenant),
    };
    let changes = EndpointChanges { disabled: Some(disabled), ..Default::default() };
    save(&state, &s, id, changes).await
}

/// Applies `changes` to the tenant's endpoint and goes back to its page.
pub async fn save(
    state: &ConsoleState,
    s: &TenantSession,
    id: Uuid,
    changes: EndpointChanges,
) -> Response {
    match state
        .actions
        .update_endpoint(s.tenant, id, changes, &s.actor)
        .await
    {
        Ok(_) => Redirect::to(&format!("/console/endpoints/{id}")).into_response(),
        Err(e) => page_errors::refused(e, Nav::Tenant),
    }
}

#[derive(Deserialize)]
pub struct RecoverForm {
    since: Option<String>,
}

pub async fn recover(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    Posted { session: s, form: f }: Posted<TenantSession, RecoverForm>,
) -> Response {
    or_page!(s.require(Permission::Replay));
    let id = or_page!(page_errors::id(&id, Nav::Tenant));
    let since = match parse_time(&f.since) {
        Ok(Some(t)) => t,
        Ok(None) => return bad_request("Choose since when to recover.", Nav::Tenant),
        Err(e) => return bad_request(&e, Nav::Tenant),
    };
    match state
        .actions
        .recover(s.tenant, id, since, None, &s.actor)
        .await
    {
        Ok(job) => Redirect::to(&format!("/console/jobs/{}", job.id)).into_response(),
        Err(e) => page_errors::refused(e, Nav::Tenant),
    }
}
