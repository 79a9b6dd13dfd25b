//! The operator's console sessions page: every open session, who opened it or
//! issued its link, what it may do, and a button that ends it at once.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use hookrelay_core::store::ConsoleSession;
use leptos::prelude::*;

use crate::page_errors::{self, or_page, unavailable};
use crate::session::{AdminSession, NoFields, Posted};
use crate::state::ConsoleState;
use crate::view::{self, Nav, copy_id, page, when};

/// At most this many sessions are shown, newest first.
const SHOWN: i64 = 500;

pub async fn sessions(State(state): State<ConsoleState>, s: AdminSession) -> Response {
    let rows = or_page!(page_errors::loaded(
        state.store.list_console_sessions(None, SHOWN).await,
        Nav::Admin
    ));
    let body = if rows.is_empty() {
        view! { <h1>"Console sessions"</h1><section class="card empty"><h2>"No open sessions"</h2></section> }
            .into_any()
    } else {
        let rows = rows
            .into_iter()
            .map(|r| session_row(r, &s.csrf))
            .collect_view();
        view! {
            <h1>"Console sessions"</h1>
            <p class="muted">"Open sessions: customers' (opened by console links) and operators'. Ending one refuses its next request."</p>
            <table class="list" id="console-sessions">
                <thead><tr><th>"Session"</th><th>"Kind"</th><th>"Tenant"</th><th>"Issued by"</th><th>"May"</th><th>"Opened"</th><th>"Expires"</th><th></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    page(StatusCode::OK, "Console sessions", Nav::Admin, None, body)
}

fn session_row(r: ConsoleSession, csrf: &str) -> AnyView {
    let action = format!("/console/admin/sessions/{}/end", r.id);
    let may = r
        .permissions
        .clone()
        .map_or_else(|| "everything".to_string(), |p| p.join(", "));
    view! {
        <tr>
            <td>{copy_id(r.id.to_string())}</td>
            <td>{r.kind.as_str()}</td>
            <td>{r.tenant_id.map(|t| t.to_string()).unwrap_or_default()}</td>
            <td>{r.issued_by.clone()} " " <span class="muted small">{r.issuer_id.map(|i| i.to_string()).unwrap_or_default()}</span></td>
            <td>{may}</td>
            <td>{when(r.created_at)}</td>
            <td>{when(r.expires_at)}</td>
            <td>
                <form method="post" action=action class="inline">
                    {view::csrf_field(csrf)}
                    <button type="submit" class="danger">"End"</button>
                </form>
            </td>
        </tr>
    }
    .into_any()
}

pub async fn end(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    posted: Posted<AdminSession, NoFields>,
) -> Response {
    let id = or_page!(page_errors::id(&id, Nav::Admin));
    match state
        .store
        .end_console_session(id, &posted.session.actor)
        .await
    {
        Ok(true) => Redirect::to("/console/admin/sessions").into_response(),
        Ok(false) => view::not_found(Nav::Admin),
        Err(e) => unavailable(e, Nav::Admin),
    }
}
