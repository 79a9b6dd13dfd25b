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
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::Producer;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, PageParams, Params, path_id};
use crate::request_id::RequestId;
use crate::state::AppState;

pub const MAX_BATCH: usize = 1000;
const MAX_IDEMPOTENCY_KEY: usize = 255;
/// A batch may be this many times the single-event limit.
const BATCH_BODY_FACTOR: usize = 16;

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventIn {
    event_type: String,
    payload: Box<RawValue>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchIn {
    events: Vec<EventIn>,
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
    if e.payload.get().len() > max_payload {
        return Err(ApiError::too_large(format!(
            "{at}payload is larger than {max_payload} bytes"
        )));
    }
    if let Some(key) = &e.idempotency_key {
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
            return Err(ApiError::invalid(format!(
                "{at}idempotency_key must be 1 to {MAX_IDEMPOTENCY_KEY} bytes"
            )));
        }
        if key.chars().any(char::is_control) {
            return Err(ApiError::invalid(format!(
                "{at}idempotency_key must not contain control characters"
            )));
        }
    }
    Ok(IngestEvent {
        id: ids::event_id(tenant_id, e.idempotency_key.as_deref()),
        event_type: e.event_type,
        payload: e.payload,
        idempotency_key: e.idempotency_key,
        accepted_at: Utc::now(),
        request_id: Some(request_id.0.clone()),
    })
}

#[tracing::instrument(level = "debug", name = "ingest", skip_all, fields(tenant, event))]
async fn ingest(
    State(state): State<AppState>,
    _p: Producer,
    Extension(request_id): Extension<RequestId>,
    Path(tenant): Path<String>,
    Body(req): Body<EventIn>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let tenant = state.tenants.resolve(&state.store, &tenant).await?;
    tracing::Span::current().record("tenant", tracing::field::display(tenant.id));
    let max = state.config.http.max_payload_bytes;
    let event = accept(tenant.id, req, max, &request_id, "")?;
    tracing::Span::current().record("event", tracing::field::display(event.id));
    let id = event.id;
    state.ingest.submit(tenant.id, vec![event]).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))))
}

#[tracing::instrument(
    level = "debug",
    name = "ingest_batch",
    skip_all,
    fields(tenant, events)
)]
async fn ingest_batch(
    State(state): State<AppState>,
    _p: Producer,
    Extension(request_id): Extension<RequestId>,
    Path(tenant): Path<String>,
    Body(req): Body<BatchIn>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let tenant = state.tenants.resolve(&state.store, &tenant).await?;
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
    // The batch travels in one message: all of it is accepted, or none.
    state.ingest.submit(tenant.id, events).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "ids": ids }))))
}

async fn show(
    State(state): State<AppState>,
    _p: Producer,
    Path((tenant, id)): Path<(String, String)>,
) -> ApiResult<Json<Event>> {
    let tenant = state.tenants.resolve(&state.store, &tenant).await?;
    let id = path_id(&id, "event")?;
    state
        .store
        .get_event(tenant.id, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("event"))
}

async fn list(
    State(state): State<AppState>,
    _p: Producer,
    Path(tenant): Path<String>,
    Params(page): Params<PageParams>,
) -> ApiResult<Json<Page<Event>>> {
    let tenant = state.tenants.resolve(&state.store, &tenant).await?;
    let limit = page.limit();
    let rows = state
        .store
        .list_events(tenant.id, limit, page.after()?)
        .await?;
    Ok(Json(Page::from_rows(rows, limit as usize, |e| e.id)))
}

async fn deliveries(
    State(state): State<AppState>,
    _p: Producer,
    Path((tenant, id)): Path<(String, String)>,
    Params(page): Params<PageParams>,
) -> ApiResult<Json<Page<Delivery>>> {
    let tenant = state.tenants.resolve(&state.store, &tenant).await?;
    let id = path_id(&id, "event")?;
    if state.store.get_event(tenant.id, id).await?.is_none() {
        return Err(ApiError::not_found("event"));
    }
    let limit = page.limit();
    let rows = state
        .store
        .list_deliveries(tenant.id, Some(id), None, limit, page.after()?)
        .await?;
    Ok(Json(Page::from_rows(rows, limit as usize, |d| d.id)))
}
