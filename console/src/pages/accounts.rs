//! Operator pages for who may use the gateway: tenants (list, create) and producer
//! API keys (list, create with the key shown once, revoke).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use hookrelay_core::ids::new_id;
use hookrelay_core::model::{ApiKey, Tenant};
use hookrelay_core::validation::{KeyName, TenantName, TenantUid};
use leptos::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

use crate::form::{encode, given};
use crate::page_errors::{self, or_page, unavailable};
use crate::session::{AdminSession, NoFields, Posted};
use crate::state::ConsoleState;
use crate::view::{self, Nav, copy_id, maybe_when, page, when};

const TENANTS_PAGE: i64 = 100;

#[derive(Debug, Default, Deserialize)]
pub struct TenantsQuery {
    after: Option<String>,
    error: Option<String>,
    name: Option<String>,
    uid: Option<String>,
}

pub async fn tenants(
    State(state): State<ConsoleState>,
    s: AdminSession,
    Query(q): Query<TenantsQuery>,
) -> Response {
    let after = given(&q.after).and_then(|a| Uuid::parse_str(&a).ok());
    let mut rows = or_page!(page_errors::listed(
        state.store.list_tenants(TENANTS_PAGE, after, None).await,
        Nav::Admin
    ));
    let more = rows.len() as i64 > TENANTS_PAGE;
    rows.truncate(TENANTS_PAGE as usize);
    let next = more
        .then(|| {
            rows.last()
                .map(|t| format!("/console/admin/tenants?after={}", t.id))
        })
        .flatten();
    let list = if rows.is_empty() && after.is_none() {
        view! { <section class="card empty"><h2>"No tenants yet"</h2><p>"A tenant is one of your customers: create one here or with POST /v1/tenants, then add its endpoints."</p></section> }.into_any()
    } else {
        tenant_table(rows)
    };
    let error = given(&q.error).map(|e| view! { <p class="error" id="form-error">{e}</p> });
    let body = view! {
        <h1>"Tenants"</h1>
        <section class="card">
            <h2>"New tenant"</h2>
            {error}
            <form method="post" action="/console/admin/tenants" class="inline">
                {view::csrf_field(&s.csrf)}
                <label>"Name" <input type="text" name="name" required=true value=given(&q.name)/></label>
                <label>"Your id for it (optional)" <input type="text" name="uid" placeholder="acme-corp" value=given(&q.uid)/></label>
                <button type="submit" class="primary" id="create-tenant">"Create"</button>
            </form>
        </section>
        {list}
        {next.map(|href| view! { <p class="pager"><a href=href>"Older tenants →"</a></p> })}
    }
    .into_any();
    page(StatusCode::OK, "Tenants", Nav::Admin, None, body)
}

fn tenant_table(rows: Vec<Tenant>) -> AnyView {
    let rows = rows
        .into_iter()
        .map(|t| {
            let dead = format!("/console/admin/dead?tenant={}", t.id);
            view! {
                <tr>
                    <td>{t.name.clone()}</td>
                    <td>{t.uid.clone().unwrap_or_default()}</td>
                    <td>{copy_id(t.id.to_string())}</td>
                    <td>{when(t.created_at)}</td>
                    <td><a href=dead>"dead letters"</a></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="list" id="tenants">
            <thead><tr><th>"Name"</th><th>"Uid"</th><th>"Id"</th><th>"Created"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

#[derive(Deserialize)]
pub struct TenantForm {
    name: Option<String>,
    uid: Option<String>,
}

pub async fn create_tenant(
    State(state): State<ConsoleState>,
    Posted { session: s, form: f, .. }: Posted<AdminSession, TenantForm>,
) -> Response {
    let name = given(&f.name).unwrap_or_default();
    let uid = given(&f.uid);
    let back = |error: String| {
        let mut params = vec![("error", error), ("name", name.clone())];
        params.extend(uid.clone().map(|u| ("uid", u)));
        Redirect::to(&format!("/console/admin/tenants?{}", encode(&params))).into_response()
    };
    let checked = TenantName::parse(&name).and_then(|n| {
        let u = uid.as_deref().map(TenantUid::parse).transpose()?;
        Ok((n, u))
    });
    let (checked_name, checked_uid) = match checked {
        Ok(v) => v,
        Err(e) => return back(e.0),
    };
    match state
        .store
        .insert_tenant(new_id(), checked_uid.as_ref(), &checked_name, &s.actor)
        .await
    {
        Ok(_) => Redirect::to("/console/admin/tenants").into_response(),
        Err(hookrelay_core::store::StoreError::Conflict(_)) => {
            back("Another tenant already has this uid.".into())
        }
        Err(e) => unavailable(e, Nav::Admin),
    }
}

pub async fn api_keys(State(state): State<ConsoleState>, s: AdminSession) -> Response {
    let keys = or_page!(page_errors::loaded(
        state.store.list_api_keys().await,
        Nav::Admin
    ));
    let list = if keys.is_empty() {
        view! { <section class="card empty"><h2>"No API keys yet"</h2><p>"Producers send events with an API key. Create one and hand it to the service that publishes events."</p></section> }.into_any()
    } else {
        key_table(keys, &s.csrf)
    };
    let body = view! {
        <h1>"API keys"</h1>
        <section class="card">
            <h2>"New key"</h2>
            <form method="post" action="/console/admin/api-keys" class="inline">
                {view::csrf_field(&s.csrf)}
                <label>"Name" <input type="text" name="name" placeholder="billing service" maxlength="256"/></label>
                <button type="submit" class="primary" id="create-key">"Create key"</button>
            </form>
        </section>
        {list}
    }
    .into_any();
    page(StatusCode::OK, "API keys", Nav::Admin, None, body)
}

fn key_table(keys: Vec<ApiKey>, csrf: &str) -> AnyView {
    let rows = keys
        .into_iter()
        .map(|k| {
            let action = format!("/console/admin/api-keys/{}/revoke", k.id);
            let state = match k.revoked_at {
                Some(_) => view! { <span class="badge dead">"revoked"</span> }.into_any(),
                None => view! {
                    <span class="badge delivered">"active"</span>
                    <details class="inline">
                        <summary>"revoke…"</summary>
                        <form method="post" action=action class="inline">
                            {view::csrf_field(csrf)}
                            <button type="submit" class="danger">"Revoke now: producers using it get 401"</button>
                        </form>
                    </details>
                }
                .into_any(),
            };
            view! {
                <tr>
                    <td>{if k.name.is_empty() { "(unnamed)".to_string() } else { k.name.clone() }}</td>
                    <td><code>{k.hint.clone()}</code></td>
                    <td>{when(k.created_at)}</td>
                    <td>{maybe_when(k.revoked_at)}</td>
                    <td>{state}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="list" id="api-keys">
            <thead><tr><th>"Name"</th><th>"Key"</th><th>"Created"</th><th>"Revoked"</th><th>"State"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}

#[derive(Deserialize)]
pub struct KeyForm {
    name: Option<String>,
}

/// Creates a key and shows it this once.
pub async fn create_key(
    State(state): State<ConsoleState>,
    Posted { session: s, form: f, .. }: Posted<AdminSession, KeyForm>,
) -> Response {
    let name = given(&f.name).unwrap_or_default();
    let name = match KeyName::parse(&name) {
        Ok(n) => n,
        Err(e) => {
            return view::message(StatusCode::BAD_REQUEST, "Check the form", &e.0, Nav::Admin);
        }
    };
    match state.actions.create_full_api_key(&name, &s.actor).await {
        Ok((_, key)) => {
            let body = view! {
                <h1>"API key created"</h1>
                <section class="card narrow wide">
                    <p>"Producers send it as "<code>"Authorization: Bearer …"</code>". Only its hash is kept: it is shown only this once."</p>
                    <p class="secret" id="secret">{copy_id(key)}</p>
                    <p><a class="button" href="/console/admin/api-keys">"Back to API keys"</a></p>
                </section>
            }
            .into_any();
            page(StatusCode::OK, "API key created", Nav::Admin, None, body)
        }
        Err(e) => unavailable(e, Nav::Admin),
    }
}

pub async fn revoke_key(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    posted: Posted<AdminSession, NoFields>,
) -> Response {
    let id = or_page!(page_errors::id(&id, Nav::Admin));
    match state
        .actions
        .revoke_api_key(id, &posted.session.actor)
        .await
    {
        Ok(true) => Redirect::to("/console/admin/api-keys").into_response(),
        Ok(false) => view::not_found(Nav::Admin),
        Err(e) => unavailable(e, Nav::Admin),
    }
}
