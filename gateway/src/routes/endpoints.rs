//! Endpoints: a tenant's subscriber URLs, what they subscribe to, and their signing
//! secret (returned on creation and from `/secret`; stored encrypted).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hookrelay_core::actions::EndpointSettings;
use hookrelay_core::model::{Endpoint, Page};
use hookrelay_core::rules::{self, Description, EndpointUrl, EventTypes};
use hookrelay_core::store::{EndpointChanges, Limits};
use hookrelay_signature::Secret;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use crate::auth::Producer;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{Body, PageParams, Params, path_id};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/endpoints", get(list).post(create))
        .route(
            "/v1/tenants/{tenant}/endpoints/{id}",
            get(show).patch(update).delete(remove),
        )
        .route("/v1/tenants/{tenant}/endpoints/{id}/secret", get(secret))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateEndpoint {
    url: String,
    #[serde(default)]
    event_types: Option<Vec<String>>,
    #[serde(default)]
    description: Option<String>,
    /// Bring your own `whsec_` secret (e.g. when migrating); generated otherwise.
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    rate_limit_per_second: Option<i32>,
    #[serde(default)]
    rate_limit_burst: Option<i32>,
    #[serde(default)]
    max_in_flight: Option<i32>,
    #[serde(default)]
    timeout_ms: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateEndpoint {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    description: Option<String>,
    /// Absent: unchanged; `null`: every event type; a list: those.
    #[serde(default, deserialize_with = "present")]
    event_types: Option<Option<Vec<String>>>,
    #[serde(default)]
    disabled: Option<bool>,
    /// Each of these: absent leaves it, `null` removes it, a number sets it.
    #[serde(default, deserialize_with = "present")]
    rate_limit_per_second: Option<Option<i32>>,
    #[serde(default, deserialize_with = "present")]
    rate_limit_burst: Option<Option<i32>>,
    #[serde(default, deserialize_with = "present")]
    max_in_flight: Option<Option<i32>>,
    #[serde(default, deserialize_with = "present")]
    timeout_ms: Option<Option<i32>>,
}

/// Tells a present `null` (`Some(None)`) from an absent field (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Serialize)]
struct Created {
    #[serde(flatten)]
    endpoint: Endpoint,
    secret: String,
}

fn url(state: &AppState, url: &str) -> ApiResult<EndpointUrl> {
    Ok(EndpointUrl::parse(&state.targets, url)?)
}

fn limits(state: &AppState, l: Limits) -> ApiResult<Limits> {
    Ok(rules::limits(
        state.config.delivery.max_endpoint_timeout,
        l,
    )?)
}

async fn create(
    State(state): State<AppState>,
    _p: Producer,
    Path(tenant): Path<String>,
    Body(req): Body<CreateEndpoint>,
) -> ApiResult<(StatusCode, Json<Created>)> {
    let tenant = state.tenants.resolve(&state.store, &tenant).await?;
    let settings = EndpointSettings {
        url: url(&state, &req.url)?,
        event_types: EventTypes::parse_optional(req.event_types)?,
        description: Description::parse(req.description.as_deref().unwrap_or(""))?,
        limits: limits(
            &state,
            Limits {
                rate_limit_per_second: req.rate_limit_per_second,
                rate_limit_burst: req.rate_limit_burst,
                max_in_flight: req.max_in_flight,
                timeout_ms: req.timeout_ms,
            },
        )?,
    };
    let secret = rules::secret_or_new(req.secret.as_deref())?;
    let endpoint = state
        .actions
        .create_endpoint(tenant.id, settings, &secret)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            endpoint,
            secret: secret.to_whsec(),
        }),
    ))
}

async fn show(
    State(state): State<AppState>,
    _p: Producer,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<Json<Endpoint>> {
    let tenant = state.tenants.resolve(&state.store, &tenant).await?;
    let id = path_id(&id, "endpoint")?;
    state
        .store
        .get_endpoint(tenant.id, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("endpoint"))
}

async fn list(
    State(state): State<AppState>,
    _p: Producer,
    Path(tenant): Path<String>,
    Params(page): Params<PageParams>,
) -> ApiResult<Json<Page<Endpoint>>> {
    let tenant = state.tenants.resolve(&state.store, &tenant).await?;
    let limit = page.limit();
    let rows = state
        .store
        .list_endpoints(tenant.id, limit, page.after()?)
        .await?;
    Ok(Json(Page::from_rows(rows, limit as usize, |e| e.id)))
}

async fn update(
    State(state): State<AppState>,
    _p: Producer,
    Path((tenant, id)): Path<(String, String)>,
    Body(req): Body<UpdateEndpoint>,
) -> ApiResult<Json<Endpoint>> {
    let tenant = state.tenants.resolve(&state.store, &tenant).await?;
    let id = path_id(&id, "endpoint")?;
    limits(
        &state,
        Limits {
            rate_limit_per_second: req.rate_limit_per_second.flatten(),
            rate_limit_burst: req.rate_limit_burst.flatten(),
            max_in_flight: req.max_in_flight.flatten(),
            timeout_ms: req.timeout_ms.flatten(),
        },
    )?;
    let changes = EndpointChanges {
        url: req.url.as_deref().map(|u| url(&state, u)).transpose()?,
        description: req
            .description
            .as_deref()
            .map(Description::parse)
            .transpose()?,
        event_types: req
            .event_types
            .map(EventTypes::parse_optional)
            .transpose()?,
        disabled: req.disabled,
        rate_limit_per_second: req.rate_limit_per_second,
        rate_limit_burst: req.rate_limit_burst,
        max_in_flight: req.max_in_flight,
        timeout_ms: req.timeout_ms,
    };
    state
        .store
        .update_endpoint(tenant.id, id, changes)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("endpoint"))
}

async fn remove(
    State(state): State<AppState>,
    _p: Producer,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let tenant = state.tenants.resolve(&state.store, &tenant).await?;
    let id = path_id(&id, "endpoint")?;
    if state.store.delete_endpoint(tenant.id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("endpoint"))
    }
}

async fn secret(
    State(state): State<AppState>,
    _p: Producer,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let tenant = state.tenants.resolve(&state.store, &tenant).await?;
    let id = path_id(&id, "endpoint")?;
    let stored = state
        .store
        .endpoint_secret(tenant.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("endpoint"))?;
    let key = state.cipher.decrypt(&stored).map_err(|e| {
        tracing::error!(error = %e, endpoint = %id, "cannot decrypt endpoint secret");
        ApiError::new(
            ErrorCode::SecretUnreadable,
            "this endpoint's secret was encrypted with another key",
        )
    })?;
    let secret = Secret::from_bytes(key)
        .map_err(|_| ApiError::new(ErrorCode::SecretUnreadable, "stored secret is malformed"))?;
    Ok(Json(json!({ "secret": secret.to_whsec() })))
}
