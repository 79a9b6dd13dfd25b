//! Endpoints: a tenant's subscriber URLs, what they subscribe to, and their signing
//! secret (returned on creation and from `/secret`; stored encrypted).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hookrelay_core::actions::EndpointSettings;
use hookrelay_core::model::{Endpoint, OnDead, Ordering, Page};
use hookrelay_core::request_options::{AuthInput, HeaderInput, OptionsChange, TlsInput};
use hookrelay_core::store::{Controls, EndpointChanges, Limits};
use hookrelay_core::validation::{self, Description, EndpointUrl, EventTypes};
use hookrelay_signature::Secret;
use serde::{Deserialize, Deserializer, Serialize};

use super::bodies::{ErrorBody, SecretOut};
use super::events::{ChannelName, channels};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{Body, PageParams, Params, path_id};
use crate::state::AppState;
use hookrelay_core::access::Permission;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/endpoints", get(list).post(create))
        .route(
            "/v1/tenants/{tenant}/endpoints/{id}",
            get(show).patch(update).delete(remove),
        )
        .route("/v1/tenants/{tenant}/endpoints/{id}/secret", get(secret))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateEndpoint {
    /// An http(s) URL; private and loopback addresses are refused unless the
    /// installation allows them.
    #[schema(
        max_length = 2048,
        pattern = "^(?!https?://[^/]*[xX][nN]--)https?://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~!$&()*+,;=:@/-]*)?$",
        example = "https://example.com/webhooks"
    )]
    url: String,
    /// Event types or patterns (`order.*`, `*`); absent or `null`: every event type.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 100, inline)]
    event_types: Option<Vec<EventPattern>>,
    #[serde(default)]
    #[schema(max_length = 1024, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    description: Option<String>,
    /// Bring your own `whsec_` secret (24 to 64 bytes; e.g. when migrating);
    /// generated otherwise.
    #[serde(default)]
    #[schema(
        pattern = "^whsec_((?:[A-Za-z0-9+/]{4}){8}|(?:[A-Za-z0-9+/]{4}){8,20}(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)|(?:[A-Za-z0-9+/]{4}){21}[A-Za-z0-9+/][AQgw]==)$"
    )]
    secret: Option<String>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100000)]
    rate_limit_per_second: Option<i32>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100000)]
    rate_limit_burst: Option<i32>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10000)]
    max_in_flight: Option<i32>,
    /// At most HOOKRELAY_MAX_ENDPOINT_TIMEOUT (60 s by default).
    #[serde(default)]
    #[schema(minimum = 100, maximum = 60000)]
    timeout_ms: Option<i32>,
    /// Start paused: deliveries wait until it is resumed.
    #[serde(default)]
    paused: Option<bool>,
    /// `strict`: deliveries arrive in the order their events were accepted, one
    /// request in flight at a time.
    #[serde(default)]
    ordering: Option<Ordering>,
    /// With strict ordering: when the delivery at the head dies, `release` the
    /// next (default) or `stop` (pause the endpoint).
    #[serde(default)]
    on_dead: Option<OnDead>,
    /// A payload filter (see the README's filter language): only events it
    /// matches are delivered. At most 4 KiB, 8 levels, 64 conditions.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    filter: Option<serde_json::Value>,
    /// Channels it subscribes to: it receives only events published on one of them.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 10, inline)]
    channels: Option<Vec<ChannelName>>,
    /// Headers sent with every request (at most 20); a `secret` one is stored
    /// encrypted and shown as `***`.
    #[serde(default)]
    #[schema(max_items = 20)]
    headers: Option<Vec<HeaderInput>>,
    /// How requests authenticate besides the signature.
    #[serde(default)]
    auth: Option<AuthInput>,
    /// A client certificate to present, and CAs to trust instead of the system roots.
    #[serde(default)]
    tls: Option<TlsInput>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateEndpoint {
    #[serde(default)]
    #[schema(
        max_length = 2048,
        pattern = "^(?!https?://[^/]*[xX][nN]--)https?://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~!$&()*+,;=:@/-]*)?$"
    )]
    url: Option<String>,
    #[serde(default)]
    #[schema(max_length = 1024, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    description: Option<String>,
    /// Absent: unchanged; `null`: every event type; a list: those.
    #[serde(default, deserialize_with = "present")]
    #[schema(min_items = 1, max_items = 100, inline)]
    event_types: Option<Option<Vec<EventPattern>>>,
    #[serde(default)]
    disabled: Option<bool>,
    /// Each of these: absent leaves it, `null` removes it, a number sets it.
    #[serde(default, deserialize_with = "present")]
    #[schema(minimum = 1, maximum = 100000)]
    rate_limit_per_second: Option<Option<i32>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(minimum = 1, maximum = 100000)]
    rate_limit_burst: Option<Option<i32>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(minimum = 1, maximum = 10000)]
    max_in_flight: Option<Option<i32>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(minimum = 100, maximum = 60000)]
    timeout_ms: Option<Option<i32>>,
    /// `true` pauses (deliveries wait, no attempt is used); `false` resumes and
    /// sends what waited, oldest first at the endpoint's rate limit.
    #[serde(default)]
    paused: Option<bool>,
    #[serde(default)]
    ordering: Option<Ordering>,
    #[serde(default)]
    on_dead: Option<OnDead>,
    /// Absent: unchanged; `null`: no filter; an object: this filter.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    filter: Option<Option<serde_json::Value>>,
    /// Absent: unchanged; `null`: every channel; a list: those.
    #[serde(default, deserialize_with = "present")]
    #[schema(min_items = 1, max_items = 10, inline)]
    channels: Option<Option<Vec<ChannelName>>>,
    /// Absent: unchanged; `null` or `[]`: none; a list replaces them all (a
    /// `secret` header without a `value` keeps the value stored under its name).
    #[serde(default, deserialize_with = "present")]
    #[schema(max_items = 20)]
    headers: Option<Option<Vec<HeaderInput>>>,
    /// Absent: unchanged; `null`: none; an object replaces it, secret included.
    #[serde(default, deserialize_with = "present")]
    auth: Option<Option<AuthInput>>,
    /// Absent: unchanged; `null`: none; an object replaces it, key included.
    #[serde(default, deserialize_with = "present")]
    tls: Option<Option<TlsInput>>,
}

fn patterns(list: Option<Vec<EventPattern>>) -> Option<Vec<String>> {
    list.map(|l| l.into_iter().map(|p| p.0).collect())
}

/// An event type or a pattern: `order.created`, `order.*`, `*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub(super) struct EventPattern(String);

impl utoipa::PartialSchema for EventPattern {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^(\\*|[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*(\\.\\*)?)$"))
            .max_length(Some(255))
            .description(Some(
                "An event type or a pattern: `order.created`, `order.*`, `*`",
            ))
            .into()
    }
}

impl utoipa::ToSchema for EventPattern {}

/// Tells a present `null` (`Some(None)`) from an absent field (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A new endpoint and its signing secret.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct CreatedEndpoint {
    #[serde(flatten)]
    endpoint: Endpoint,
    /// The `whsec_` secret that signs its requests.
    secret: String,
}

fn url(state: &AppState, url: &str) -> ApiResult<EndpointUrl> {
    Ok(EndpointUrl::parse(&state.targets, url)?)
}

fn limits(state: &AppState, l: Limits) -> ApiResult<Limits> {
    Ok(validation::limits(
        state.config.delivery.max_endpoint_timeout,
        l,
    )?)
}

#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/endpoints",
    tag = "endpoints",
    summary = "Add an endpoint",
    params(("tenant" = String, Path, description = "The tenant's id or its uid")),
    request_body = CreateEndpoint,
    responses(
        (status = 201, description = "Created, with its signing secret (shown here and at /secret)", body = CreatedEndpoint),
        (status = 409, description = "The tenant is at its endpoint limit (`quota_exceeded`)", body = ErrorBody),
    ),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Body(req): Body<CreateEndpoint>,
) -> ApiResult<(StatusCode, Json<CreatedEndpoint>)> {
    let tenant = caller
        .tenant(&state, &tenant, Permission::EndpointsWrite)
        .await?;
    let settings = EndpointSettings {
        url: url(&state, &req.url)?,
        event_types: EventTypes::parse_optional(patterns(req.event_types))?,
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
        controls: Controls {
            paused: req.paused.unwrap_or(false),
            ordering: req.ordering,
            on_dead: req.on_dead,
            filter: req.filter.map(validation::filter).transpose()?,
            channels: channels(req.channels)?,
        },
        request: OptionsChange {
            headers: req.headers.map(Some),
            auth: req.auth.map(Some),
            tls: req.tls.map(Some),
        }
        .new_options(&state.targets)?,
    };
    let secret = validation::secret_or_new(req.secret.as_deref())?;
    let endpoint = state
        .actions
        .create_endpoint(tenant.id, settings, &secret, &caller.actor)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEndpoint { endpoint, secret: secret.to_whsec() }),
    ))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/endpoints/{id}",
    tag = "endpoints",
    summary = "Show an endpoint",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), ("id" = String, Path, description = "The endpoint's id")),
    responses((status = 200, description = "The endpoint", body = Endpoint)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<Json<Endpoint>> {
    let tenant = caller.tenant(&state, &tenant, Permission::Read).await?;
    let id = path_id(&id, "endpoint")?;
    state
        .store
        .get_endpoint(tenant.id, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("endpoint"))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/endpoints",
    tag = "endpoints",
    summary = "List a tenant's endpoints",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), crate::extract::PageParams),
    responses((status = 200, description = "A page of endpoints", body = Page<Endpoint>)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Params(page): Params<PageParams>,
) -> ApiResult<Json<Page<Endpoint>>> {
    let tenant = caller.tenant(&state, &tenant, Permission::Read).await?;
    let limit = page.limit()?;
    let rows = state
        .store
        .list_endpoints(tenant.id, limit, page.after()?)
        .await?;
    Ok(Json(Page::from_rows(rows, limit as usize, |e| e.id)))
}

#[utoipa::path(
    patch,
    path = "/v1/tenants/{tenant}/endpoints/{id}",
    tag = "endpoints",
    summary = "Change an endpoint",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), ("id" = String, Path, description = "The endpoint's id")),
    request_body = UpdateEndpoint,
    responses(
        (status = 200, description = "Changed; a resume sends what waited, oldest first", body = Endpoint),
        (status = 409, description = "The request options changed meanwhile (`conflict`): read the endpoint and try again", body = ErrorBody),
        (status = 422, description = "A field is out of range, or the filter is invalid (`validation_failed` says where)", body = ErrorBody),
    ),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    Body(req): Body<UpdateEndpoint>,
) -> ApiResult<Json<Endpoint>> {
    let tenant = caller
        .tenant(&state, &tenant, Permission::EndpointsWrite)
        .await?;
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
    let mut changes = EndpointChanges {
        url: req.url.as_deref().map(|u| url(&state, u)).transpose()?,
        description: req
            .description
            .as_deref()
            .map(Description::parse)
            .transpose()?,
        event_types: req
            .event_types
            .map(|t| EventTypes::parse_optional(patterns(t)))
            .transpose()?,
        disabled: req.disabled,
        rate_limit_per_second: req.rate_limit_per_second,
        rate_limit_burst: req.rate_limit_burst,
        max_in_flight: req.max_in_flight,
        timeout_ms: req.timeout_ms,
        paused: req.paused,
        ordering: req.ordering,
        on_dead: req.on_dead,
        filter: req
            .filter
            .map(|f| f.map(validation::filter).transpose())
            .transpose()?,
        channels: req.channels.map(channels).transpose()?,
        ..EndpointChanges::default()
    };
    let options = OptionsChange { headers: req.headers, auth: req.auth, tls: req.tls };
    state
        .actions
        .change_request_options(id, options, &state.targets, &mut changes)
        .await?;
    Ok(Json(
        state
            .actions
            .update_endpoint(tenant.id, id, changes, &caller.actor)
            .await?,
    ))
}

#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}/endpoints/{id}",
    tag = "endpoints",
    summary = "Delete an endpoint",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), ("id" = String, Path, description = "The endpoint's id")),
    responses((status = 204, description = "Deleted; its pending deliveries are cancelled")),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let tenant = caller
        .tenant(&state, &tenant, Permission::EndpointsWrite)
        .await?;
    let id = path_id(&id, "endpoint")?;
    if state
        .store
        .delete_endpoint(tenant.id, id, &caller.actor)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("endpoint"))
    }
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/endpoints/{id}/secret",
    tag = "endpoints",
    summary = "Read an endpoint's signing secret",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), ("id" = String, Path, description = "The endpoint's id")),
    responses((status = 200, description = "The whsec_ secret", body = SecretOut), (status = 409, description = "The secret cannot be decrypted with this installation's key", body = ErrorBody)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn secret(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<Json<SecretOut>> {
    let tenant = caller
        .tenant(&state, &tenant, Permission::SecretsRead)
        .await?;
    let id = path_id(&id, "endpoint")?;
    let stored = state
        .store
        .endpoint_secret(tenant.id, id, &caller.actor)
        .await?
        .ok_or_else(|| ApiError::not_found("endpoint"))?;
    let key = state.cipher.decrypt(&stored, id.as_bytes()).map_err(|e| {
        tracing::error!(error = %e, endpoint = %id, "cannot decrypt endpoint secret");
        ApiError::new(
            ErrorCode::SecretUnreadable,
            "this endpoint's secret was encrypted with another key",
        )
    })?;
    let secret = Secret::from_bytes(key)
        .map_err(|_| ApiError::new(ErrorCode::SecretUnreadable, "stored secret is malformed"))?;
    Ok(Json(SecretOut { secret: secret.to_whsec() }))
}
