//! Customer forms that change endpoints: add one (its secret shown once), edit its
//! URL, event types, limits, order, channels, filter and headers, rotate its secret with a grace period, send it a
//! test event. The same rules as the API decide what is valid.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use hookrelay_core::actions::{ActionError, EndpointSettings};
use hookrelay_core::model::Endpoint;
use hookrelay_core::request_options::{HeaderInput, OptionsChange};

use super::endpoint_reach::{header_lines, lines};
use hookrelay_core::store::{Controls, EndpointChanges, Limits};
use hookrelay_core::validation::{
    self, Channels, Description, EndpointUrl, EventTypes, Grace, Invalid,
};
use leptos::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

use crate::form::given;
use crate::page_errors::{self, or_page, unavailable};
use crate::pages::endpoints::save;
use crate::session::{NoFields, Posted, TenantSession};
use crate::state::ConsoleState;
use crate::view::{self, Nav, copy_id, page};
use hookrelay_core::access::Permission;

/// The endpoint form's fields, as typed.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct EndpointForm {
    url: Option<String>,
    description: Option<String>,
    /// Comma, space or newline separated; empty for every event type.
    event_types: Option<String>,
    rate_limit_per_second: Option<String>,
    rate_limit_burst: Option<String>,
    timeout_ms: Option<String>,
    /// `none` or `strict`.
    ordering: Option<String>,
    /// `release` or `stop`.
    on_dead: Option<String>,
    /// Comma, space or newline separated; empty for every channel.
    channels: Option<String>,
    /// A JSON filter; empty for none.
    filter: Option<String>,
    /// `Name: value`, one a line.
    headers: Option<String>,
    /// `Name: value`, one a line; `Name: ***` keeps the stored value.
    secret_headers: Option<String>,
}

/// A choice among a state's names; empty for none.
fn choice<T: std::str::FromStr>(v: &Option<String>, what: &str) -> Result<Option<T>, Invalid> {
    given(v)
        .map(|s| s.parse().map_err(|_| Invalid(format!("Choose {what}."))))
        .transpose()
}

/// Words from a comma, space or newline separated field.
fn words(v: &Option<String>) -> Vec<String> {
    v.as_deref()
        .unwrap_or_default()
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

fn number(v: &Option<String>, label: &str) -> Result<Option<i32>, Invalid> {
    given(v)
        .map(|s| {
            s.parse::<i32>()
                .map_err(|_| Invalid(format!("{label} must be a whole number.")))
        })
        .transpose()
}

impl EndpointForm {
    fn of(e: &Endpoint) -> Self {
        let text = |v: Option<i32>| v.map(|n| n.to_string());
        Self {
            url: Some(e.url.clone()),
            description: Some(e.description.clone()),
            event_types: e.event_types.as_ref().map(|t| t.join(", ")),
            rate_limit_per_second: text(e.rate_limit_per_second),
            rate_limit_burst: text(e.rate_limit_burst),
            timeout_ms: text(e.timeout_ms),
            ordering: Some(e.ordering.to_string()),
            on_dead: Some(e.on_dead.to_string()),
            channels: e.channels.as_ref().map(|c| c.join(", ")),
            filter: e
                .filter
                .as_ref()
                .map(|f| serde_json::to_string_pretty(&f.0).unwrap_or_default()),
            headers: lines(e.headers.iter().filter(|h| !h.secret)),
            secret_headers: lines(e.headers.iter().filter(|h| h.secret)),
        }
    }

    /// The custom headers the form gives, plain and secret.
    fn headers(&self) -> Result<Vec<HeaderInput>, Invalid> {
        let mut all = header_lines(&self.headers, false)?;
        all.extend(header_lines(&self.secret_headers, true)?);
        Ok(all)
    }

    /// The ordering, channels and filter, checked like the API's.
    fn controls(&self) -> Result<Controls, Invalid> {
        let channels = words(&self.channels);
        let filter = match given(&self.filter) {
            None => None,
            Some(text) => {
                let doc = serde_json::from_str(&text)
                    .map_err(|e| Invalid(format!("The filter is not JSON: {e}.")))?;
                Some(validation::filter(doc)?)
            }
        };
        Ok(Controls {
            paused: false,
            ordering: choice(&self.ordering, "an ordering")?,
            on_dead: choice(&self.on_dead, "what happens when the head dies")?,
            filter,
            channels: Channels::parse_optional((!channels.is_empty()).then_some(channels))?,
        })
    }

    /// The form's settings, checked by the same rules as the API's.
    fn check(&self, state: &ConsoleState) -> Result<EndpointSettings, Invalid> {
        let url =
            given(&self.url).ok_or_else(|| Invalid("Enter the URL to send webhooks to.".into()))?;
        let types = words(&self.event_types);
        let limits = Limits {
            rate_limit_per_second: number(&self.rate_limit_per_second, "The rate limit")?,
            rate_limit_burst: number(&self.rate_limit_burst, "The burst")?,
            max_in_flight: None,
            timeout_ms: number(&self.timeout_ms, "The timeout")?,
        };
        Ok(EndpointSettings {
            url: EndpointUrl::parse(&state.targets, &url)?,
            description: Description::parse(self.description.as_deref().unwrap_or_default())?,
            event_types: EventTypes::parse_optional((!types.is_empty()).then_some(types))?,
            limits: validation::limits(state.max_endpoint_timeout, limits)?,
            controls: self.controls()?,
            request: OptionsChange {
                headers: Some(Some(self.headers()?)),
                ..OptionsChange::default()
            }
            .new_options(&state.targets)?,
        })
    }
}

impl EndpointForm {
    /// An edit's settings and its headers (a secret one may keep its value, so
    /// they are merged with the stored ones, not checked alone).
    fn check_change(
        &self,
        state: &ConsoleState,
    ) -> Result<(EndpointSettings, Vec<HeaderInput>), Invalid> {
        let plain = Self {
            headers: None,
            secret_headers: None,
            ..self.clone()
        };
        Ok((plain.check(state)?, self.headers()?))
    }
}

/// The add/edit form, filled with `f`, with `error` above it.
fn form_page(
    status: StatusCode,
    title: &str,
    action: String,
    f: EndpointForm,
    error: Option<String>,
    csrf: &str,
) -> Response {
    let heading = title.to_string();
    let body = view! {
        <h1>{heading}</h1>
        <section class="card narrow wide">
            {error.map(|e| view! { <p class="error" id="form-error">{e}</p> })}
            <form method="post" action=action class="stack">
                {view::csrf_field(csrf)}
                <label>"URL" <input type="url" name="url" required=true placeholder="https://example.com/webhooks" value=f.url/></label>
                <label>"Description" <input type="text" name="description" value=f.description/></label>
                <label>"Event types"
                    <input type="text" name="event_types" placeholder="order.created, invoice.*" value=f.event_types/>
                    <span class="muted small">"Leave empty to receive every event type; a pattern ending in .* matches a family; hookrelay.* receives hookrelay's operational events about this tenant's endpoints (failing, disabled, dead deliveries…)."</span>
                </label>
                <div class="row">
                    <label>"Rate limit (requests/s)" <input type="number" name="rate_limit_per_second" min="1" value=f.rate_limit_per_second/></label>
                    <label>"Burst" <input type="number" name="rate_limit_burst" min="1" value=f.rate_limit_burst/></label>
                    <label>"Timeout (ms)" <input type="number" name="timeout_ms" min="100" step="100" value=f.timeout_ms/></label>
                </div>
                <span class="muted small">"Empty limits mean no rate limit and the installation's default timeout."</span>
                <div class="row">
                    <label>"Order"
                        <select name="ordering" id="ordering">
                            <option value="none" selected=f.ordering.as_deref() != Some("strict")>"As fast as possible"</option>
                            <option value="strict" selected=f.ordering.as_deref() == Some("strict")>"Strict: in acceptance order, one at a time"</option>
                        </select>
                    </label>
                    <label>"When the first in line dies"
                        <select name="on_dead" id="on_dead">
                            <option value="release" selected=f.on_dead.as_deref() != Some("stop")>"Send the next"</option>
                            <option value="stop" selected=f.on_dead.as_deref() == Some("stop")>"Pause the endpoint"</option>
                        </select>
                    </label>
                </div>
                <label>"Channels"
                    <input type="text" name="channels" id="channels" placeholder="billing, eu" value=f.channels/>
                    <span class="muted small">"Leave empty to receive events of every channel; otherwise only events published on one of these."</span>
                </label>
                <label>"Filter"
                    <textarea name="filter" id="filter" rows="5" placeholder=r#"{"data.amount": {"$gte": 100}}"#>{f.filter}</textarea>
                    <span class="muted small">"JSON: paths into the payload (or $event_type) with a value or operators ($eq $ne $gt $gte $lt $lte $in $nin $exists $prefix), combined with $and, $or, $not. Empty: every event."</span>
                </label>
                <label>"Headers"
                    <textarea name="headers" id="headers" rows="3" placeholder="X-Team: payments">{f.headers}</textarea>
                    <span class="muted small">"Sent with every request, one Name: value a line."</span>
                </label>
                <label>"Secret headers"
                    <textarea name="secret_headers" id="secret_headers" rows="2" placeholder="X-Api-Key: value">{f.secret_headers}</textarea>
                    <span class="muted small">"Stored encrypted and shown as ***; leave *** to keep a stored value."</span>
                </label>
                <button type="submit" class="primary">"Save"</button>
            </form>
        </section>
    }
    .into_any();
    page(status, title, Nav::Tenant, None, body)
}

pub async fn new_form(s: TenantSession) -> Response {
    or_page!(s.require(Permission::EndpointsWrite));
    form_page(
        StatusCode::OK,
        "Add an endpoint",
        "/console/endpoints".into(),
        EndpointForm::default(),
        None,
        &s.csrf,
    )
}

pub async fn create(
    State(state): State<ConsoleState>,
    Posted { session: s, form: f }: Posted<TenantSession, EndpointForm>,
) -> Response {
    or_page!(s.require(Permission::EndpointsWrite));
    let settings = match f.check(&state) {
        Ok(v) => v,
        Err(e) => {
            let action = "/console/endpoints".to_string();
            return form_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Add an endpoint",
                action,
                f,
                Some(e.0),
                &s.csrf,
            );
        }
    };
    let secret = validation::new_secret();
    let created = state
        .actions
        .create_endpoint(s.tenant, settings, &secret, &s.actor)
        .await;
    match created {
        Ok(e) => secret_page(
            "Endpoint added",
            e.id,
            secret.to_whsec(),
            "Use this secret to verify the webhook-signature header of every request. It is shown only this once.".into(),
        ),
        Err(e) => page_errors::refused(e, Nav::Tenant),
    }
}

pub async fn edit_form(
    State(state): State<ConsoleState>,
    s: TenantSession,
    Path(id): Path<String>,
) -> Response {
    or_page!(s.require(Permission::EndpointsWrite));
    let id = or_page!(page_errors::id(&id, Nav::Tenant));
    match state.store.get_endpoint(s.tenant, id).await {
        Ok(Some(e)) => form_page(
            StatusCode::OK,
            "Edit endpoint",
            format!("/console/endpoints/{id}/edit"),
            EndpointForm::of(&e),
            None,
            &s.csrf,
        ),
        Ok(None) => view::not_found(Nav::Tenant),
        Err(e) => unavailable(e, Nav::Tenant),
    }
}

pub async fn update(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    Posted { session: s, form: f }: Posted<TenantSession, EndpointForm>,
) -> Response {
    or_page!(s.require(Permission::EndpointsWrite));
    let id = or_page!(page_errors::id(&id, Nav::Tenant));
    let settings = match f.check_change(&state) {
        Ok(v) => v,
        Err(e) => {
            let action = format!("/console/endpoints/{id}/edit");
            return form_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Edit endpoint",
                action,
                f,
                Some(e.0),
                &s.csrf,
            );
        }
    };
    let (settings, headers) = settings;
    let mut changes = EndpointChanges {
        url: Some(settings.url),
        description: Some(settings.description),
        event_types: Some(settings.event_types),
        rate_limit_per_second: Some(settings.limits.rate_limit_per_second),
        rate_limit_burst: Some(settings.limits.rate_limit_burst),
        timeout_ms: Some(settings.limits.timeout_ms),
        ordering: settings.controls.ordering,
        on_dead: settings.controls.on_dead,
        filter: Some(settings.controls.filter),
        channels: Some(settings.controls.channels),
        ..Default::default()
    };
    let options = OptionsChange {
        headers: Some(Some(headers)),
        ..OptionsChange::default()
    };
    if let Err(e) = state
        .actions
        .change_request_options(id, options, &state.targets, &mut changes)
        .await
    {
        return match e {
            ActionError::Invalid(e) => form_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Edit endpoint",
                format!("/console/endpoints/{id}/edit"),
                f,
                Some(e.0),
                &s.csrf,
            ),
            e => page_errors::refused(e, Nav::Tenant),
        };
    }
    save(&state, &s, id, changes).await
}

#[derive(Deserialize)]
pub struct RotateForm {
    /// Seconds the old secret keeps signing.
    grace: String,
}

pub async fn rotate(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    Posted { session: s, form: f }: Posted<TenantSession, RotateForm>,
) -> Response {
    or_page!(s.require(Permission::EndpointsWrite));
    let id = or_page!(page_errors::id(&id, Nav::Tenant));
    let Ok(grace) = f
        .grace
        .parse::<u64>()
        .map_err(drop)
        .and_then(|g| Grace::from_secs(Some(g)).map_err(drop))
    else {
        return view::message(
            StatusCode::BAD_REQUEST,
            "Check the form",
            "Choose how long the old secret stays valid.",
            Nav::Tenant,
        );
    };
    let rotated = state
        .actions
        .rotate_secret(s.tenant, id, validation::new_secret(), grace, &s.actor)
        .await;
    match rotated {
        Ok(r) => {
            let note = match r.previous_secret_expires_at {
                Some(t) => format!(
                    "Requests are signed with both the old and the new secret until {} UTC: switch your verifier to the new one before then. It is shown only this once.",
                    t.format("%Y-%m-%d %H:%M")
                ),
                None => {
                    "The old secret no longer signs requests. This secret is shown only this once."
                        .into()
                }
            };
            secret_page("Secret rotated", id, r.secret.to_whsec(), note)
        }
        Err(e) => page_errors::refused(e, Nav::Tenant),
    }
}

/// Sends a test event to this endpoint only and shows its delivery.
pub async fn test(
    State(state): State<ConsoleState>,
    Path(id): Path<String>,
    posted: Posted<TenantSession, NoFields>,
) -> Response {
    or_page!(posted.session.require(Permission::EndpointsWrite));
    let id = or_page!(page_errors::id(&id, Nav::Tenant));
    match state.actions.send_test(posted.session.tenant, id).await {
        Ok(d) => Redirect::to(&format!("/console/deliveries/{}", d.id)).into_response(),
        Err(e) => page_errors::refused(e, Nav::Tenant),
    }
}

/// A freshly made secret, shown once (the response is never cached).
fn secret_page(title: &str, endpoint: Uuid, secret: String, note: String) -> Response {
    let href = format!("/console/endpoints/{endpoint}");
    let heading = title.to_string();
    let body = view! {
        <h1>{heading}</h1>
        <section class="card narrow wide">
            <p>{note}</p>
            <p class="secret" id="secret">{copy_id(secret)}</p>
            <p><a class="button" href=href>"Go to the endpoint"</a></p>
        </section>
    }
    .into_any();
    page(StatusCode::OK, title, Nav::Tenant, None, body)
}
