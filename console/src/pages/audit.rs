//! The operator's audit log page: who did what, when, from where, newest first,
//! filtered by action, tenant or actor, a page at a time.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use hookrelay_core::store::{AuditEntry, AuditFilter};
use leptos::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

use crate::form::{encode, given};
use crate::page_errors::{self, or_page};
use crate::session::AdminSession;
use crate::state::ConsoleState;
use crate::view::{self, Nav, page, when};

const PAGE: i64 = 100;

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    action: Option<String>,
    tenant: Option<String>,
    actor: Option<String>,
    after: Option<String>,
}

fn uuid_of(v: &Option<String>) -> Result<Option<Uuid>, String> {
    match given(v) {
        None => Ok(None),
        Some(s) => Uuid::parse_str(&s)
            .map(Some)
            .map_err(|_| format!("{s:?} is not an id")),
    }
}

pub async fn audit(
    State(state): State<ConsoleState>,
    _s: AdminSession,
    Query(q): Query<AuditQuery>,
) -> Response {
    let ids = (|| Ok::<_, String>((uuid_of(&q.tenant)?, uuid_of(&q.actor)?, uuid_of(&q.after)?)))();
    let (tenant, actor, after) = match ids {
        Ok(v) => v,
        Err(e) => return crate::form::bad_request(&e, Nav::Admin),
    };
    let action = given(&q.action).filter(|a| a.len() <= 64);
    let filter = AuditFilter {
        tenant_id: tenant,
        action: action.clone(),
        actor_id: actor,
        since: None,
        until: None,
    };
    let mut rows = or_page!(page_errors::loaded(
        state.store.list_audit(&filter, PAGE, after).await,
        Nav::Admin
    ));
    let more = rows.len() > PAGE as usize;
    rows.truncate(PAGE as usize);
    let next = more.then(|| {
        let mut params = vec![(
            "after",
            rows.last().map(|r| r.id.to_string()).unwrap_or_default(),
        )];
        params.extend(action.clone().map(|a| ("action", a)));
        params.extend(tenant.map(|t| ("tenant", t.to_string())));
        params.extend(actor.map(|a| ("actor", a.to_string())));
        format!("/console/admin/audit?{}", encode(&params))
    });
    let body = view! {
        <h1>"Audit log"</h1>
        <form method="get" action="/console/admin/audit" class="inline card">
            <label>"Action" <input type="text" name="action" placeholder="endpoint.secret_read" value=action.clone().unwrap_or_default()/></label>
            <label>"Tenant id" <input type="text" name="tenant" value=tenant.map(|t| t.to_string()).unwrap_or_default()/></label>
            <label>"Actor id" <input type="text" name="actor" value=actor.map(|a| a.to_string()).unwrap_or_default()/></label>
            <button type="submit">"Filter"</button>
        </form>
        {table(rows)}
        {next.map(|href| view! { <p><a href=href id="audit-next">"Older entries"</a></p> })}
    }
    .into_any();
    page(StatusCode::OK, "Audit log", Nav::Admin, None, body)
}

fn table(rows: Vec<AuditEntry>) -> AnyView {
    if rows.is_empty() {
        return view! { <section class="card empty"><h2>"Nothing recorded"</h2><p>"Changes to endpoints, keys, secrets, replays and sign-ins appear here."</p></section> }.into_any();
    }
    view! {
        <table class="audit">
            <thead><tr><th>"When"</th><th>"Who"</th><th>"What"</th><th>"Tenant"</th><th>"Target"</th><th>"Details"</th><th>"From"</th></tr></thead>
            <tbody>
                {rows.into_iter().map(|e| view! {
                    <tr>
                        <td>{when(e.at)}</td>
                        <td>{format!("{} {}", e.actor_kind, e.actor_name)}</td>
                        <td><code>{e.action}</code></td>
                        <td>{e.tenant_id.map(|t| view::copy_id(t.to_string()))}</td>
                        <td>{e.target_id.map(|t| view::copy_id(t.to_string()))}</td>
                        <td><code>{e.details.to_string()}</code></td>
                        <td>{e.address.unwrap_or_default()}" "<span class="muted">{e.request_id.unwrap_or_default()}</span></td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
