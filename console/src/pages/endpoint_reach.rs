//! An endpoint's request options in the console: its custom headers (secret
//! values as `***`), how it authenticates and its TLS settings, with forms to
//! replace the authentication and the TLS settings. Secrets are never shown;
//! the same rules as the API decide what is valid.

use axum::extract::{Path, State};
use axum::response::Response;
use hookrelay_core::actions::ActionError;
use hookrelay_core::model::Endpoint;
use hookrelay_core::request_options::{
    Auth, AuthInput, ClientAuth, Header, HeaderInput, OptionsChange, REDACTED, TlsInput,
};
use hookrelay_core::store::EndpointChanges;
use hookrelay_core::validation::Invalid;
use leptos::prelude::*;
use serde::Deserialize;

use crate::form::{bad_request, given};
use crate::page_errors::{self, or_page};
use crate::pages::endpoints::save;
use crate::session::{Posted, TenantSession};
use crate::state::ConsoleState;
use crate::view::{self, Nav};
use hookrelay_core::access::Permission;

/// `Name: value` lines as headers; a secret one shown as `***` keeps its value.
pub(super) fn header_lines(
    text: &Option<String>,
    secret: bool,
) -> Result<Vec<HeaderInput>, Invalid> {
    let mut out = Vec::new();
    for line in text.as_deref().unwrap_or_default().lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| Invalid(format!("Write each header as Name: value ({line:?}).")))?;
        let value = value.trim();
        out.push(HeaderInput {
            name: name.trim().to_string(),
            value: (!(secret && value == REDACTED)).then(|| value.to_string()),
            secret,
        });
    }
    Ok(out)
}

/// Headers as `Name: value` lines.
pub(super) fn lines<'a>(headers: impl Iterator<Item = &'a Header>) -> Option<String> {
    let text: Vec<String> = headers
        .map(|h| format!("{}: {}", h.name, h.value))
        .collect();
    (!text.is_empty()).then(|| text.join("\n"))
}

/// What the endpoint's requests carry, and (for writers) the forms that change it.
pub fn request_card(e: &Endpoint, csrf: &str, write: bool) -> AnyView {
    let headers: Vec<_> = e
        .headers
        .iter()
        .map(|h| view! { <li><code>{format!("{}: {}", h.name, h.value)}</code></li> })
        .collect();
    let auth = match e.auth.as_ref().map(|a| &a.0) {
        None => "signature only".to_string(),
        Some(Auth::Basic { username }) => {
            format!("HTTP basic as {username} (password stored encrypted)")
        }
        Some(Auth::Bearer {}) => "bearer token (stored encrypted)".to_string(),
        Some(Auth::Oauth2 { token_url, client_id, scope, .. }) => format!(
            "OAuth2 client credentials: {client_id} at {token_url}{}",
            scope
                .as_ref()
                .map(|s| format!(", scope {s}"))
                .unwrap_or_default()
        ),
    };
    let tls = match e.tls.as_ref().map(|t| &t.0) {
        None => "system roots, no client certificate".to_string(),
        Some(t) => [
            t.client_certificate
                .is_some()
                .then_some("client certificate (key stored encrypted)"),
            t.ca_bundle.is_some().then_some("its own CA bundle"),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", "),
    };
    let id = e.id;
    let forms = write.then(|| {
        view! {
            <details>
                <summary>"Change authentication"</summary>
                <form method="post" action=format!("/console/endpoints/{id}/auth") class="stack">
                    {view::csrf_field(csrf)}
                    <label>"Type"
                        <select name="kind" id="auth-kind">
                            <option value="none">"Signature only"</option>
                            <option value="basic">"HTTP basic"</option>
                            <option value="bearer">"Bearer token"</option>
                            <option value="oauth2">"OAuth2 client credentials"</option>
                        </select>
                    </label>
                    <label>"Username or client id" <input type="text" name="user" id="auth-user"/></label>
                    <label>"Password, token or client secret" <input type="password" name="secret" id="auth-secret" autocomplete="off"/></label>
                    <label>"Token URL (OAuth2)" <input type="url" name="token_url" id="auth-token-url"/></label>
                    <div class="row">
                        <label>"Scope" <input type="text" name="scope"/></label>
                        <label>"Audience" <input type="text" name="audience"/></label>
                    </div>
                    <button type="submit" class="primary">"Save authentication"</button>
                </form>
            </details>
            <details>
                <summary>"Change TLS"</summary>
                <form method="post" action=format!("/console/endpoints/{id}/tls") class="stack">
                    {view::csrf_field(csrf)}
                    <label>"Client certificate (PEM)" <textarea name="client_certificate" rows="4"></textarea></label>
                    <label>"Client key (PEM, stored encrypted)" <textarea name="client_key" rows="4"></textarea></label>
                    <label>"CA bundle (PEM)" <textarea name="ca_bundle" rows="4"></textarea></label>
                    <span class="muted small">"Leave all three empty to use the system roots without a client certificate."</span>
                    <button type="submit" class="primary">"Save TLS"</button>
                </form>
            </details>
        }
    });
    view! {
        <section class="card" id="request-options">
            <h2>"Requests"</h2>
            <dl class="facts">
                <dt>"Headers"</dt><dd>{if headers.is_empty() { None } else { Some(view! { <ul class="plain">{headers}</ul> }) }}</dd>
                <dt>"Authentication"</dt><dd id="auth">{auth}</dd>
                <dt>"TLS"</dt><dd id="tls">{tls}</dd>
            </dl>
            {forms}
        </section>
    }
    .into_any()
}

#[derive(Deserialize)]
pub struct AuthForm {
    kind: String,
    user: Option<String>,
    secret: Option<String>,
    token_url: Option<String>,
    scope: Option<String>,
    audience: Option<String>,
}

impl AuthForm {
    fn input(self) -> Result<Option<AuthInput>, &'static str> {
        let secret = self.secret.unwrap_or_default();
        Ok(Some(match self.kind.as_str() {
            "none" => return Ok(None),
            "basic" => AuthInput::Basic {
                username: self.user.unwrap_or_default(),
                password: secret,
            },
            "bearer" => AuthInput::Bearer { token: secret },
            "oauth2" => AuthInput::Oauth2 {
                token_url: self.token_url.unwrap_or_default(),
                client_id: self.user.unwrap_or_default(),
                client_secret: secret,
                scope: given(&self.scope),
                audience: given(&self.audience),
                client_auth: ClientAuth::Basic,
            },
            _ => return Err("Choose how requests authenticate."),
        }))
    }
}

/// Saves a change of the request options, or shows why it was refused.
async fn save_options(
    state: &ConsoleState,
    s: &TenantSession,
    id: uuid::Uuid,
    change: OptionsChange,
) -> Response {
    let mut changes = EndpointChanges::default();
    match state
        .actions
        .change_request_options(id, change, &state.targets, &mut changes)
        .await
    {
        Ok(()) => save(state, s, id, changes).await,
        Err(ActionError::Invalid(e)) => bad_request(&e.0, Nav::Tenant),
        Err(e) => page_errors::refused(e, Nav::Tenant),
    }
}

/// Replaces how the endpoint's requests authenticate.
pub async fn set_auth(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    Posted { session: s, form: f }: Posted<TenantSession, AuthForm>,
) -> Response {
    or_page!(s.require(Permission::EndpointsWrite));
    let id = or_page!(page_errors::id(&id, Nav::Tenant));
    let auth = match f.input() {
        Ok(a) => a,
        Err(why) => return bad_request(why, Nav::Tenant),
    };
    save_options(
        &state,
        &s,
        id,
        OptionsChange { auth: Some(auth), ..OptionsChange::default() },
    )
    .await
}

#[derive(Deserialize)]
pub struct TlsForm {
    client_certificate: Option<String>,
    client_key: Option<String>,
    ca_bundle: Option<String>,
}

/// Replaces the endpoint's client certificate and CA bundle.
pub async fn set_tls(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    Posted { session: s, form: f }: Posted<TenantSession, TlsForm>,
) -> Response {
    or_page!(s.require(Permission::EndpointsWrite));
    let id = or_page!(page_errors::id(&id, Nav::Tenant));
    let input = TlsInput {
        client_certificate: given(&f.client_certificate),
        client_key: given(&f.client_key),
        ca_bundle: given(&f.ca_bundle),
    };
    let empty = input.client_certificate.is_none()
        && input.client_key.is_none()
        && input.ca_bundle.is_none();
    let tls = (!empty).then_some(input);
    save_options(
        &state,
        &s,
        id,
        OptionsChange { tls: Some(tls), ..OptionsChange::default() },
    )
    .await
}
