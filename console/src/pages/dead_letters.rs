//! The operator's dead letters (admin session): the list with filters, replay of
//! the ticked rows or of everything matching (as a job), purge with confirmation,
//! and one dead delivery with its attempts.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use hookrelay_core::actions::{self, DeadScope};
use hookrelay_core::store::{DeadFilter, MAX_PICKED};
use leptos::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

use crate::components::deliveries_table::{Rows, deliveries_table};
use crate::components::delivery_detail::delivery_detail;
use crate::form::{encode, given, parse_time};
use crate::page_errors::{self, or_page, refused, unavailable};
use crate::session::{AdminSession, check_csrf};
use crate::state::ConsoleState;
use crate::view::{self, Nav, page};

fn bad_request(text: &str) -> Response {
    crate::form::bad_request(text, Nav::Admin)
}

#[derive(Debug, Default, Deserialize)]
pub struct DeadQuery {
    tenant: Option<String>,
    endpoint: Option<String>,
    event_type: Option<String>,
    reason: Option<String>,
    since: Option<String>,
    until: Option<String>,
    csrf: Option<String>,
    confirm: Option<String>,
    done: Option<String>,
}

impl DeadQuery {
    fn filter(&self) -> Result<DeadFilter, String> {
        let id = |v: &Option<String>, what: &str| match given(v) {
            Some(s) => Uuid::parse_str(&s)
                .map(Some)
                .map_err(|_| format!("The {what} filter is not an id.")),
            None => Ok(None),
        };
        Ok(DeadFilter {
            tenant_id: id(&self.tenant, "tenant")?,
            endpoint_id: id(&self.endpoint, "endpoint")?,
            event_type: given(&self.event_type),
            since: parse_time(&self.since)?,
            until: parse_time(&self.until)?,
            reason: given(&self.reason),
        })
    }

    /// The forms act on everything the list shows: all that matches, even with no
    /// filter (the buttons say so).
    fn scope(&self) -> Result<DeadScope, String> {
        DeadScope::new(self.filter()?, true).map_err(|e| e.to_string())
    }

    fn params(&self) -> Vec<(&'static str, String)> {
        [
            ("tenant", &self.tenant),
            ("endpoint", &self.endpoint),
            ("event_type", &self.event_type),
            ("reason", &self.reason),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .into_iter()
        .filter_map(|(k, v)| given(v).map(|v| (k, v)))
        .collect()
    }
}

/// The filter again as hidden fields, so a form acts on exactly what is shown.
fn hidden_filter(q: &DeadQuery) -> AnyView {
    q.params()
        .into_iter()
        .map(|(k, v)| view! { <input type="hidden" name=k value=v/> })
        .collect_view()
        .into_any()
}

pub async fn dead(
    State(state): State<ConsoleState>,
    s: AdminSession,
    Query(q): Query<DeadQuery>,
) -> Response {
    let filter = match q.filter() {
        Ok(f) => f,
        Err(e) => return bad_request(&e),
    };
    let (rows, stats) = or_page!(page_errors::loaded(
        tokio::try_join!(
            state.store.list_dead(&filter, 100),
            state.store.dead_stats(&filter)
        ),
        Nav::Admin
    ));
    let total: i64 = stats.iter().map(|s| s.dead).sum();
    let field =
        |name: &'static str, label: &'static str, v: &Option<String>, kind: &'static str| {
            let value = given(v).unwrap_or_default();
            view! { <label>{label} " " <input type=kind name=name value=value/></label> }
        };
    let notice = given(&q.done).map(|d| view! { <p class="notice">{d}</p> });
    let body = view! {
        <h1>"Dead letters " <span class="count" id="dead-total">{total}</span></h1>
        {notice}
        <form method="get" action="/console/admin/dead" class="filters">
            {field("tenant", "Tenant", &q.tenant, "text")}
            {field("endpoint", "Endpoint", &q.endpoint, "text")}
            {field("event_type", "Event type", &q.event_type, "text")}
            {field("reason", "Reason contains", &q.reason, "text")}
            {field("since", "Since", &q.since, "datetime-local")}
            {field("until", "Until", &q.until, "datetime-local")}
            <button type="submit">"Filter"</button>
            <a href="/console/admin/dead" class="small">"clear"</a>
        </form>
        {(total > 0).then(|| view! {
            <section class="card actions-row">
                <form method="post" action="/console/admin/dead/replay-picked" class="inline" id="pick">
                    {view::csrf_field(&s.csrf)}
                    <button type="submit" id="replay-picked">"Replay selected"</button>
                </form>
                <form method="post" action="/console/admin/dead/replay" class="inline">
                    {view::csrf_field(&s.csrf)}
                    {hidden_filter(&q)}
                    <button type="submit" class="primary" id="replay-all">{format!("Replay all {total} matching")}</button>
                </form>
                <form method="post" action="/console/admin/dead/purge" class="inline">
                    {view::csrf_field(&s.csrf)}
                    {hidden_filter(&q)}
                    <label class="small"><input type="checkbox" name="confirm" value="yes" required=true/> " delete them and their attempts for good"</label>
                    <button type="submit" class="danger">{format!("Purge {total}")}</button>
                </form>
            </section>
        })}
        {if total == 0 {
            view! { <section class="card empty"><h2>"Nothing dead"</h2><p>"Deliveries that run out of attempts land here with their reason. Nothing matches right now."</p></section> }.into_any()
        } else {
            deliveries_table(rows, Rows::Pickable)
        }}
    }
    .into_any();
    page(StatusCode::OK, "Dead letters", Nav::Admin, None, body)
}

pub async fn replay(
    State(state): State<ConsoleState>,
    s: AdminSession,
    Form(q): Form<DeadQuery>,
) -> Response {
    if let Err(r) = check_csrf(&s.csrf, q.csrf.as_deref().unwrap_or_default()) {
        return r;
    }
    let scope = match q.scope() {
        Ok(scope) => scope,
        Err(e) => return bad_request(&e),
    };
    match actions::replay_dead_matching(&state.store, &scope, &s.actor).await {
        Ok(job) => Redirect::to(&format!("/console/admin/jobs/{}", job.id)).into_response(),
        Err(e) => refused(e, Nav::Admin),
    }
}

/// Replays the dead deliveries ticked on the list (`id` repeated, one per row).
pub async fn replay_picked(
    State(state): State<ConsoleState>,
    s: AdminSession,
    body: axum::body::Bytes,
) -> Response {
    let mut csrf = String::new();
    let mut ids = Vec::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "csrf" => csrf = v.into_owned(),
            "id" => match Uuid::parse_str(&v) {
                Ok(id) => ids.push(id),
                Err(_) => return bad_request("A selected row is not a delivery id."),
            },
            _ => {}
        }
    }
    if let Err(r) = check_csrf(&s.csrf, &csrf) {
        return r;
    }
    if ids.is_empty() {
        return bad_request("Tick the dead letters to replay first.");
    }
    if ids.len() > MAX_PICKED {
        return bad_request(&format!(
            "Pick at most {MAX_PICKED}; replay all matching for more."
        ));
    }
    match state.actions.replay_dead(&ids, &s.actor).await {
        Ok(replayed) => {
            let done = format!(
                "Replaying {} of the {} selected.",
                replayed.len(),
                ids.len()
            );
            Redirect::to(&format!(
                "/console/admin/dead?{}",
                encode(&[("done", done)])
            ))
            .into_response()
        }
        Err(e) => unavailable(e, Nav::Admin),
    }
}

pub async fn purge(
    State(state): State<ConsoleState>,
    s: AdminSession,
    Form(q): Form<DeadQuery>,
) -> Response {
    if let Err(r) = check_csrf(&s.csrf, q.csrf.as_deref().unwrap_or_default()) {
        return r;
    }
    let scope = match q.scope() {
        Ok(scope) => scope,
        Err(e) => return bad_request(&e),
    };
    let confirmed = given(&q.confirm).as_deref() == Some("yes");
    match actions::purge_dead(&state.store, &scope, confirmed, &s.actor).await {
        Ok(n) => {
            let mut params = q.params();
            params.push(("done", format!("Purged {n} dead deliveries.")));
            Redirect::to(&format!("/console/admin/dead?{}", encode(&params))).into_response()
        }
        Err(e) => refused(e, Nav::Admin),
    }
}

pub async fn delivery(
    State(state): State<ConsoleState>,
    _s: AdminSession,
    Path(id): Path<String>,
) -> Response {
    let id = or_page!(page_errors::id(&id, Nav::Admin));
    match state.store.inspect_delivery(id).await {
        Ok(Some((d, event, attempts))) => {
            let body = delivery_detail(d, Some(event.payload), attempts, ().into_any(), true);
            page(StatusCode::OK, "Delivery", Nav::Admin, None, body)
        }
        Ok(None) => view::not_found(Nav::Admin),
        Err(e) => unavailable(e, Nav::Admin),
    }
}
