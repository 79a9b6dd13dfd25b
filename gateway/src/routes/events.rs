//! Ingest and reading of events. Ingest validates, then publishes to the ingest
//! queue and answers `202` only once the broker has confirmed the message; it never
//! touches Postgres (the router stores events moments later).

use axum::Extension;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use hookrelay_core::event_type;
use hookrelay_core::ids;
use hookrelay_core::model::{Delivery, Event, Page};
use hookrelay_core::queue::IngestEvent;
use hookrelay_core::validation::{Channels, Invalid};
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use super::bodies::{AcceptedBatch, AcceptedEvent};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{EventBody, PageParams, Params, path_id};
use crate::request_id::RequestId;
use crate::state::AppState;
use hookrelay_core::access::Permission;

pub const MAX_BATCH: usize = 1000;
const MAX_IDEMPOTENCY_KEY: usize = 255;
/// A batch may be this many times the single-event limit.
pub const BATCH_BODY_FACTOR: usize = 16;

pub fn router(max_payload_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/v1/tenants/{tenant}/events", get(list).post(ingest))
        .route(
            "/v1/tenants/{tenant}/events/batch",
            post(ingest_batch).layer(DefaultBodyLimit::max(
                max_payload_bytes.saturating_mul(BATCH_BODY_FACTOR),
            )),
        )
        .route("/v1/tenants/{tenant}/events/{id}", get(show))
        .route(
            "/v1/tenants/{tenant}/events/{id}/deliveries",
            get(deliveries),
        )
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EventIn {
    /// Dot-separated segments of letters, digits, `_` or `-`, e.g. `order.created`;
    /// not starting with `hookrelay.` (hookrelay's own operational events).
    #[schema(
        max_length = 255,
        pattern = "^(?!hookrelay\\.)[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$",
        example = "order.created"
    )]
    event_type: String,
    /// Any JSON; delivered byte for byte.
    #[schema(value_type = Value)]
    payload: Box<RawValue>,
    /// Repeats of a key within a tenant are accepted once: 1 to 255 characters,
    /// no control characters.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    idempotency_key: Option<String>,
    /// Channels it is published on (1 to 10): endpoints that subscribe to
    /// channels receive it only through one of these.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 10, inline)]
    channels: Option<Vec<ChannelName>>,
}

/// A channel: 1 to 128 letters, digits, `.`, `_`, `:` or `-`.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub(super) struct ChannelName(pub(super) String);

impl utoipa::PartialSchema for ChannelName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[A-Za-z0-9._:-]{1,128}$"))
            .min_length(Some(1))
            .max_length(Some(128))
            .into()
    }
}

impl utoipa::ToSchema for ChannelName {}

/// Channel names as given, checked.
pub(super) fn channels(list: Option<Vec<ChannelName>>) -> Result<Option<Channels>, Invalid> {
    Channels::parse_optional(list.map(|l| l.into_iter().map(|c| c.0).collect()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BatchIn {
    #[schema(min_items = 1, max_items = 1000)]
    events: Vec<EventIn>,
}

/// The status a single-event body alone earns from the reader and the checks
/// (before tenant, quota and broker): `202`, or the error's. For the fuzz target,
/// which holds that no input earns a 5xx.
pub fn event_body_status(body: &[u8], max_payload: usize) -> u16 {
    let request_id = RequestId("fuzz".into());
    let status = serde_json::from_slice::<EventIn>(body)
        .map_err(|e| ApiError::invalid(e.to_string()))
        .and_then(|e| accept(Uuid::nil(), e, max_payload, &request_id, ""));
    status.map_or_else(|e| e.status.as_u16(), |_| 202)
}

/// `event_body_status` for a batch body.
pub fn batch_body_status(body: &[u8], max_payload: usize) -> u16 {
    let request_id = RequestId("fuzz".into());
    let status = serde_json::from_slice::<BatchIn>(body)
        .map_err(|e| ApiError::invalid(e.to_string()))
        .and_then(|b| {
            if b.events.is_empty() || b.events.len() > MAX_BATCH {
                return Err(ApiError::invalid("events must hold 1 to 1000 events"));
            }
            b.events
                .into_iter()
                .enumerate()
                .map(|(n, e)| {
                    accept(
                        Uuid::nil(),
                        e,
                        max_payload,
                        &request_id,
                        &format!("events[{n}]: "),
                    )
                })
                .collect::<ApiResult<Vec<_>>>()
        });
    status.map_or_else(|e| e.status.as_u16(), |_| 202)
}

/// Checks one event and gives it its id; `at` names it in errors (batch position).
fn accept(
    tenant_id: Uuid,
    e: EventIn,
    max_payload: usize,
    request_id: &RequestId,
    at: &str,
) -> ApiResult<IngestEvent> {
    if !event_type::is_valid_name(&e.event_type) {
        return Err(ApiError::invalid(format!(
            "{at}event_type {:?} must be dot-separated segments of letters, digits, '_' or '-' (at most {} bytes)",
            e.event_type,
            event_type::MAX_LEN
        )));
    }
    if hookrelay_core::operational::is_operational(&e.event_type) {
        return Err(ApiError::invalid(format!(
            "{at}event_type {:?}: types starting with \"hookrelay.\" are hookrelay's own operational events",
            e.event_type
        )));
    }
    if e.payload.get().len() > max_payload {
        return Err(ApiError::too_large(format!(
            "{at}payload is larger than {max_payload} bytes"
        )));
    }
    if let Some(key) = &e.idempotency_key {
        if key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY {
            return Err(ApiError::invalid(format!(
                "{at}idempotency_key must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
            )));
        }
        if key.chars().any(char::is_control) {
            return Err(ApiError::invalid(format!(
                "{at}idempotency_key must not contain control characters"
            )));
        }
    }
    let channels = channels(e.channels)
        .map_err(|bad| ApiError::invalid(format!("{at}{bad}")))?
        .map(Channels::into_vec);
    Ok(IngestEvent {
        channels,
        id: ids::event_id(tenant_id, e.idempotency_key.as_deref()),
        event_type: e.event_type,
        payload: e.payload,
        idempotency_key: e.idempotency_key,
        accepted_at: Utc::now(),
        request_id: Some(request_id.0.clone()),
        traceparent: hookrelay_core::telemetry::traceparent_of(&tracing::Span::current()),
    })
}

#[tracing::instrument(level = "debug", name = "ingest", skip_all, fields(tenant, event))]
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/events",
    tag = "events",
    summary = "Send an event",
    params(("tenant" = String, Path, description = "The tenant's id or its uid")),
    request_body = EventIn,
    responses((status = 202, description = "Accepted: confirmed by the broker", body = AcceptedEvent)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    Extension(request_id): Extension<RequestId>,
    Path(tenant): Path<String>,
    EventBody(req): EventBody<EventIn>,
) -> ApiResult<(StatusCode, Json<AcceptedEvent>)> {
    let tenant = caller
        .tenant(&state, &tenant, Permission::EventsWrite)
        .await?;
    tracing::Span::current().record("tenant", tracing::field::display(tenant.id));
    let max = state.config.http.max_payload_bytes;
    let event = accept(tenant.id, req, max, &request_id, "")?;
    tracing::Span::current().record("event", tracing::field::display(event.id));
    let id = event.id;
    state.quotas.take(&tenant, 1)?;
    state.ingest.submit(tenant.id, vec![event]).await?;
    Ok((StatusCode::ACCEPTED, Json(AcceptedEvent { id })))
}

#[tracing::instrument(
    level = "debug",
    name = "ingest_batch",
    skip_all,
    fields(tenant, events)
)]
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/events/batch",
    tag = "events",
    summary = "Send up to 1,000 events at once (all or none)",
    params(("tenant" = String, Path, description = "The tenant's id or its uid")),
    request_body = BatchIn,
    responses((status = 202, description = "Accepted: confirmed by the broker", body = AcceptedBatch)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn ingest_batch(
    State(state): State<AppState>,
    caller: Caller,
    Extension(request_id): Extension<RequestId>,
    Path(tenant): Path<String>,
    EventBody(req): EventBody<BatchIn>,
) -> ApiResult<(StatusCode, Json<AcceptedBatch>)> {
    let tenant = caller
        .tenant(&state, &tenant, Permission::EventsWrite)
        .await?;
    let span = tracing::Span::current();
    span.record("tenant", tracing::field::display(tenant.id));
    span.record("events", req.events.len());
    if req.events.is_empty() || req.events.len() > MAX_BATCH {
        return Err(ApiError::invalid(format!(
            "events must hold 1 to {MAX_BATCH} events"
        )));
    }
    let max = state.config.http.max_payload_bytes;
    let events = req
        .events
        .into_iter()
        .enumerate()
        .map(|(i, e)| accept(tenant.id, e, max, &request_id, &format!("events[{i}]: ")))
        .collect::<ApiResult<Vec<_>>>()?;
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    state.quotas.take(&tenant, events.len())?;
    // The batch travels in one message: all of it is accepted, or none.
    state.ingest.submit(tenant.id, events).await?;
    Ok((StatusCode::ACCEPTED, Json(AcceptedBatch { ids })))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/events/{id}",
    tag = "events",
    summary = "Show an event",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), ("id" = String, Path, description = "The event's id")),
    responses((status = 200, description = "The event", body = Event)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<Json<Event>> {
    let tenant = caller.tenant(&state, &tenant, Permission::Read).await?;
    let id = path_id(&id, "event")?;
    state
        .store
        .get_event(tenant.id, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("event"))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/events",
    tag = "events",
    summary = "List a tenant's events",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), crate::extract::PageParams),
    responses((status = 200, description = "A page of events", body = Page<Event>)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant): Path<String>,
    Params(page): Params<PageParams>,
) -> ApiResult<Json<Page<Event>>> {
    let tenant = caller.tenant(&state, &tenant, Permission::Read).await?;
    let limit = page.limit()?;
    let rows = state
        .store
        .list_events(tenant.id, limit, page.after()?)
        .await?;
    Ok(Json(Page::from_rows(rows, limit as usize, |e| e.id)))
}

#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/events/{id}/deliveries",
    tag = "events",
    summary = "List an event's deliveries",
    params(("tenant" = String, Path, description = "The tenant's id or its uid"), ("id" = String, Path, description = "The event's id"), crate::extract::PageParams),
    responses((status = 200, description = "A page of deliveries", body = Page<Delivery>)),
    security(("producer_key" = []), ("admin_token" = [])),
)]
pub(super) async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path((tenant, id)): Path<(String, String)>,
    Params(page): Params<PageParams>,
) -> ApiResult<Json<Page<Delivery>>> {
    let tenant = caller.tenant(&state, &tenant, Permission::Read).await?;
    let id = path_id(&id, "event")?;
    if state.store.get_event(tenant.id, id).await?.is_none() {
        return Err(ApiError::not_found("event"));
    }
    let limit = page.limit()?;
    let rows = state
        .store
        .list_deliveries(tenant.id, Some(id), None, limit, page.after()?)
        .await?;
    Ok(Json(Page::from_rows(rows, limit as usize, |d| d.id)))
}
