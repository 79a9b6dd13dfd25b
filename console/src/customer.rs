//! Customer pages, scoped to the session's tenant: endpoints with their health,
//! the delivery log with filters, one delivery with every attempt, replay and
//! "recover everything failed since".

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDateTime, Utc};
use hookrelay_console_islands::{Live, Snapshot};
use hookrelay_core::ids::new_id;
use hookrelay_core::model::{Delivery, Endpoint};
use hookrelay_core::store::{DeliveryFilter, EndpointHealth};
use leptos::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

use crate::ConsoleState;
use crate::filters::LogQuery;
use crate::found::{self, or_page, unavailable};
use crate::session::{NoFields, Posted, TenantSession};
use crate::view::{self, Nav, badge, copy_id, maybe_when, page, rate, when};

const PAGE: i64 = 50;

/// Treats empty form fields as absent.
pub fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// RFC 3339, or the `datetime-local` form (taken as UTC).
pub fn parse_time(v: &Option<String>) -> Result<Option<DateTime<Utc>>, String> {
    let Some(s) = given(v) else { return Ok(None) };
    if let Ok(t) = DateTime::parse_from_rfc3339(&s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(&s, f).ok())
        .map(|t| Some(t.and_utc()))
        .ok_or_else(|| format!("\"{s}\" is not a date and time"))
}

pub fn bad_request(text: &str) -> Response {
    view::message(
        StatusCode::BAD_REQUEST,
        "Check the filters",
        text,
        Nav::Tenant,
    )
}

pub async fn endpoints(State(state): State<ConsoleState>, s: TenantSession) -> Response {
    let (list, health) = or_page!(found::loaded(
        tokio::try_join!(
            state.store.list_endpoints(s.tenant, 200, None),
            state.store.endpoint_health(s.tenant)
        ),
        Nav::Tenant
    ));
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
                <p><a class="button primary" href="/console/endpoints/new">"Add an endpoint"</a></p>
            </section>
        }
        .into_any()
    } else {
        let rows = list
            .into_iter()
            .map(|e| endpoint_row(e.clone(), health_of(e.id)))
            .collect_view();
        view! {
            <div class="title-row">
                <h1>"Endpoints"</h1>
                <a class="button primary" href="/console/endpoints/new" id="add-endpoint">"Add an endpoint"</a>
            </div>
            <table class="list">
                <thead><tr>
                    <th>"Endpoint"</th><th>"State"</th><th>"Circuit"</th>
                    <th>"Success 1 h"</th><th>"Success 24 h"</th><th>"Rate limit"</th><th>"Last error"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    page(StatusCode::OK, "Endpoints", Nav::Tenant, None, body)
}

fn endpoint_row(e: Endpoint, h: EndpointHealth) -> AnyView {
    let href = format!("/console/endpoints/{}", e.id);
    let state = view! {
        {view::enabled_badge(e.disabled)}
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
            <td>{badge(&e.circuit.state)}</td>
            <td>{rate(h.hour_ok, h.hour_total)}<span class="muted small">{format!(" of {}", h.hour_total)}</span></td>
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
    let id = or_page!(found::id(&id, Nav::Tenant));
    let e = or_page!(found::row(
        state.store.get_endpoint(s.tenant, id).await,
        Nav::Tenant
    ));
    let filter = DeliveryFilter {
        endpoint_id: Some(id),
        ..Default::default()
    };
    let recent = or_page!(found::loaded(
        state
            .store
            .find_deliveries(s.tenant, &filter, 20, None)
            .await,
        Nav::Tenant
    ));
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
                <dt>"Circuit"</dt><dd>{badge(&e.circuit.state)}
                    {e.circuit.next_probe_at.map(|t| view! { " next probe " {when(t)} })}</dd>
                <dt>"Rate limit"</dt><dd>{e.rate_limit_per_second.map_or("none".to_string(), |r| format!("{r}/s, burst {}", e.rate_limit_burst.unwrap_or(r)))}</dd>
                <dt>"In flight"</dt><dd>{e.max_in_flight.map_or("no cap".to_string(), |n| n.to_string())}</dd>
                <dt>"Timeout"</dt><dd>{e.timeout_ms.map_or("default".to_string(), |ms| format!("{ms} ms"))}</dd>
            </dl>
            <div class="actions">{crate::endpoint_forms::actions(id, &s.csrf)} {toggle}</div>
        </section>
        {crate::endpoint_forms::secret_card(&e, &s.csrf)}
        <section class="card">
            <h2>"Recover failed deliveries"</h2>
            <p class="muted">"Re-sends every delivery of this endpoint not delivered yet (pending, failed, dead or cancelled) created since the time you choose (UTC), with its original webhook-id."</p>
            <form method="post" action=action class="inline">
                {view::csrf_field(&s.csrf)}
                <label>"Since " <input type="datetime-local" name="since" required=true/></label>
                <button type="submit" class="primary">"Recover"</button>
            </form>
        </section>
        <h2>"Recent deliveries " <a class="small" href=all>"all"</a></h2>
        {deliveries_table(recent, Rows::Customer)}
    }
    .into_any();
    page(StatusCode::OK, "Endpoint", Nav::Tenant, None, body)
}

/// Who a delivery table is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Rows link to the customer's delivery page.
    Customer,
    /// Rows link to the operator's view, each with a checkbox of the form `pick`.
    Pickable,
}

pub fn deliveries_table(rows: Vec<Delivery>, kind: Rows) -> AnyView {
    if rows.is_empty() {
        return view! { <p class="card empty">"No deliveries match. Events sent to your endpoints appear here within a second."</p> }.into_any();
    }
    let pickable = kind == Rows::Pickable;
    let rows = rows
        .into_iter()
        .map(|d| {
            let href = if kind == Rows::Customer {
                format!("/console/deliveries/{}", d.id)
            } else {
                format!("/console/admin/deliveries/{}", d.id)
            };
            let status = d.status.as_str().to_string();
            let pick = pickable.then(|| {
                view! { <td class="select"><input type="checkbox" form="pick" name="id" value=d.id.to_string()/></td> }
            });
            view! {
                <tr>
                    {pick}
                    <td><a href=href><code>{d.id.to_string()}</code></a></td>
                    <td>{d.event_type.clone()}</td>
                    <td>{badge(&status)}</td>
                    <td>{d.attempts}</td>
                    <td>{d.last_response_status.map(|s| s.to_string()).unwrap_or_default()}</td>
                    <td>{when(d.created_at)}</td>
                    <td>{maybe_when(d.next_attempt_at)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="list">
            <thead><tr>
                {pickable.then(|| view! { <th class="select"></th> })}
                <th>"Delivery (webhook-id)"</th><th>"Event type"</th><th>"Status"</th><th>"Attempts"</th><th>"Last status"</th><th>"Created"</th><th>"Next attempt"</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

pub async fn deliveries(
    State(state): State<ConsoleState>,
    s: TenantSession,
    Query(q): Query<LogQuery>,
) -> Response {
    let (filter, after) = match q.parse() {
        Ok(v) => v,
        Err(e) => return bad_request(&e),
    };
    let (mut rows, endpoints) = or_page!(found::loaded(
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

/// `k=v&…`, percent-encoded.
pub fn encode(params: &[(&str, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| {
            let v: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub async fn delivery(
    State(state): State<ConsoleState>,
    s: TenantSession,
    Path(id): Path<String>,
) -> Response {
    let id = or_page!(found::id(&id, Nav::Tenant));
    let d = or_page!(found::row(
        state.store.get_delivery(s.tenant, id).await,
        Nav::Tenant
    ));
    let (event, attempts) = or_page!(found::loaded(
        tokio::try_join!(
            state.store.get_event(s.tenant, d.event_id),
            state.store.list_attempts(s.tenant, id)
        ),
        Nav::Tenant
    ));
    let replay = view! {
        <form method="post" action=format!("/console/deliveries/{id}/replay") class="inline">
            {view::csrf_field(&s.csrf)}
            <button type="submit" class="primary" id="replay">"Replay"</button>
        </form>
    }
    .into_any();
    let body = delivery_detail(d, event.map(|e| e.payload), attempts, replay, false);
    page(StatusCode::OK, "Delivery", Nav::Tenant, None, body)
}

/// One delivery: its facts, the payload, and every attempt with request and response.
pub fn delivery_detail(
    d: Delivery,
    payload: Option<String>,
    attempts: Vec<hookrelay_core::model::Attempt>,
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
    let snapshot = crate::progress::delivery_snapshot(&d);
    let live = if admin {
        live(
            Snapshot {
                finished: true,
                ..snapshot
            },
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

pub async fn replay(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    posted: Posted<TenantSession, NoFields>,
) -> Response {
    let id = or_page!(found::id(&id, Nav::Tenant));
    match state.store.replay_delivery(posted.session.tenant, id).await {
        Ok(Some(d)) => {
            state.publisher.send_now(&[d]).await;
            Redirect::to(&format!("/console/deliveries/{id}")).into_response()
        }
        Ok(None) => view::not_found(Nav::Tenant),
        Err(e) => unavailable(e, Nav::Tenant),
    }
}

#[derive(Deserialize)]
pub struct StateForm {
    disabled: String,
}

/// Disables or re-enables an endpoint (re-enabling clears the reason it was disabled).
pub async fn set_state(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    Posted {
        session: s,
        form: f,
    }: Posted<TenantSession, StateForm>,
) -> Response {
    let id = or_page!(found::id(&id, Nav::Tenant));
    let disabled = match f.disabled.as_str() {
        "true" => true,
        "false" => false,
        _ => return bad_request("Choose to enable or disable."),
    };
    let changes = hookrelay_core::store::EndpointChanges {
        disabled: Some(disabled),
        ..Default::default()
    };
    match state.store.update_endpoint(s.tenant, id, changes).await {
        Ok(Some(_)) => Redirect::to(&format!("/console/endpoints/{id}")).into_response(),
        Ok(None) => view::not_found(Nav::Tenant),
        Err(e) => unavailable(e, Nav::Tenant),
    }
}

#[derive(Deserialize)]
pub struct RecoverForm {
    since: Option<String>,
}

pub async fn recover(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    Posted {
        session: s,
        form: f,
    }: Posted<TenantSession, RecoverForm>,
) -> Response {
    let id = or_page!(found::id(&id, Nav::Tenant));
    let since = match parse_time(&f.since) {
        Ok(Some(t)) => t,
        Ok(None) => return bad_request("Choose since when to recover."),
        Err(e) => return bad_request(&e),
    };
    match state.store.get_endpoint(s.tenant, id).await {
        Ok(Some(_)) => {}
        Ok(None) => return view::not_found(Nav::Tenant),
        Err(e) => return unavailable(e, Nav::Tenant),
    }
    match state
        .store
        .create_recover_job(new_id(), s.tenant, id, since, None)
        .await
    {
        Ok(job) => Redirect::to(&format!("/console/jobs/{}", job.id)).into_response(),
        Err(e) => unavailable(e, Nav::Tenant),
    }
}

pub async fn job(
    State(state): State<ConsoleState>,
    s: TenantSession,
    Path(id): Path<String>,
) -> Response {
    let id = or_page!(found::id(&id, Nav::Tenant));
    match state.store.get_job(id).await {
        Ok(Some(job)) if job.tenant_id == Some(s.tenant) => job_page(job, Nav::Tenant),
        Ok(_) => view::not_found(Nav::Tenant),
        Err(e) => unavailable(e, Nav::Tenant),
    }
}

/// A job's progress, live while it runs (or reloading every two seconds).
pub fn job_page(job: hookrelay_core::model::Job, nav: Nav) -> Response {
    let done = job.status == "done";
    let title = if job.kind == "recover" {
        "Recovering failed deliveries"
    } else {
        "Replaying dead letters"
    };
    let poll_url = match nav {
        Nav::Admin => format!("/console/admin/jobs/{}/progress", job.id),
        _ => format!("/console/jobs/{}/progress", job.id),
    };
    let live = live(
        crate::progress::job_snapshot(&job),
        "re-sent so far",
        poll_url,
        false,
    );
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

/// The live status island for a snapshot.
pub fn live(s: Snapshot, count_label: &str, poll_url: String, reload_on_change: bool) -> AnyView {
    view! {
        <Live status=s.status count=s.count count_label=count_label.to_string()
              finished=s.finished note=s.note poll_url=poll_url reload_on_change=reload_on_change/>
    }
    .into_any()
}
