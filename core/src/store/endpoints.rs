//! Endpoints: a tenant's subscriber URLs, their subscriptions and encrypted secrets.
//! Deleting is a soft delete so past deliveries keep their endpoint.

use serde_json::json;
use uuid::Uuid;

use super::NewDelivery;
use super::audit::{Pending, audited, audited_after};
use super::{Result, Store, StoreError};
use crate::audit::{Actor, action};
use crate::model::{Endpoint, OnDead, Ordering};
use crate::request_options::{Auth, Header, Tls};
use crate::validation::{Channels, Description, EndpointUrl, EventTypes, Limits};

/// Secrets rotated out that may still sign at once, besides the current one.
const MAX_PREVIOUS_SECRETS: i64 = 5;

const COLUMNS: &str = "id, tenant_id, url, description, event_types, disabled, disabled_reason,
    rate_limit_per_second, rate_limit_burst, max_in_flight, timeout_ms,
    paused, paused_at, paused_reason, ordering, on_dead, filter, channels,
    headers, auth, tls, circuit_state, circuit_opened_at, circuit_next_probe_at,
    (SELECT max(x) FROM unnest(previous_secrets_expire_at) AS x WHERE x > now()) AS previous_secret_expires_at,
    created_at, updated_at";

pub struct NewEndpoint<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub url: &'a EndpointUrl,
    pub description: &'a Description,
    pub event_types: Option<&'a EventTypes>,
    pub secret_ciphertext: &'a [u8],
    pub limits: Limits,
    pub controls: &'a Controls,
    pub request: &'a StoredOptions,
}

/// Request options as the store keeps them: the shown parts, and the secret
/// values sealed (`request_options::seal`).
#[derive(Debug, Clone, Default)]
pub struct StoredOptions {
    pub headers: Vec<Header>,
    pub auth: Option<Auth>,
    pub tls: Option<Tls>,
    pub sealed: Option<Vec<u8>>,
}

/// An endpoint's request options as stored, with the revision they are at.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LoadedOptions {
    pub headers: sqlx::types::Json<Vec<Header>>,
    pub auth: Option<sqlx::types::Json<Auth>>,
    pub tls: Option<sqlx::types::Json<Tls>>,
    pub request_secrets: Option<Vec<u8>>,
    pub request_rev: i32,
}

/// How an endpoint's deliveries flow: paused, ordered, filtered, by channel.
#[derive(Debug, Clone, Default)]
pub struct Controls {
    pub paused: bool,
    pub ordering: Option<Ordering>,
    pub on_dead: Option<OnDead>,
    /// A filter checked by `filter::Filter::parse`.
    pub filter: Option<serde_json::Value>,
    pub channels: Option<Channels>,
}

/// A partial update; `None` leaves a field alone. `event_types: Some(None)` means "all".
#[derive(Default)]
pub struct EndpointChanges {
    pub url: Option<EndpointUrl>,
    pub description: Option<Description>,
    pub event_types: Option<Option<EventTypes>>,
    pub disabled: Option<bool>,
    /// Each: absent leaves it, `Some(None)` clears it, `Some(Some(n))` sets it.
    pub rate_limit_per_second: Option<Option<i32>>,
    pub rate_limit_burst: Option<Option<i32>>,
    pub max_in_flight: Option<Option<i32>>,
    pub timeout_ms: Option<Option<i32>>,
    pub paused: Option<bool>,
    pub ordering: Option<Ordering>,
    pub on_dead: Option<OnDead>,
    /// `Some(None)` removes the filter.
    pub filter: Option<Option<serde_json::Value>>,
    /// `Some(None)`: every channel.
    pub channels: Option<Option<Channels>>,
    /// The whole request options after the change, when it changes them, with the
    /// revision they were read at: a change made meanwhile fails the update.
    pub request: Option<(StoredOptions, i32)>,
    /// The parts of them it changes (for the audit log).
    pub request_fields: Vec<&'static str>,
}

/// What an update did beyond the row: deliveries a resume released, for the
/// caller to publish, and whether an ordered endpoint may move on.
#[derive(Debug)]
pub struct Updated {
    pub endpoint: Endpoint,
    pub released: Vec<NewDelivery>,
    pub resumed_ordered: bool,
    /// `Some(true)`: paused by this change; `Some(false)`: resumed.
    pub paused_now: Option<bool>,
}

/// What the router needs to fan an event out.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoutingEndpoint {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub event_types: Option<Vec<String>>,
    pub ordering: Ordering,
    pub filter: Option<sqlx::types::Json<serde_json::Value>>,
    pub channels: Option<Vec<String>>,
}

impl EndpointChanges {
    /// The names of the fields this update sets (for the audit log).
    pub fn fields(&self) -> Vec<&'static str> {
        [
            ("url", self.url.is_some()),
            ("description", self.description.is_some()),
            ("event_types", self.event_types.is_some()),
            ("disabled", self.disabled.is_some()),
            (
                "rate_limit_per_second",
                self.rate_limit_per_second.is_some(),
            ),
            ("rate_limit_burst", self.rate_limit_burst.is_some()),
            ("max_in_flight", self.max_in_flight.is_some()),
            ("timeout_ms", self.timeout_ms.is_some()),
            ("paused", self.paused.is_some()),
            ("ordering", self.ordering.is_some()),
            ("on_dead", self.on_dead.is_some()),
            ("filter", self.filter.is_some()),
            ("channels", self.channels.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .chain(self.request_fields.iter().copied())
        .collect()
    }
}

impl Store {
    /// Adds an endpoint unless the tenant already has `max_endpoints` (its own
    /// limit, or `default_max` when it has none): `Ok(None)` then. Creations for
    /// one tenant take turns on its row, so concurrent ones never pass the limit.
    pub async fn insert_endpoint(
        &self,
        e: NewEndpoint<'_>,
        default_max: i64,
        by: &Actor,
    ) -> Result<Option<Endpoint>> {
        let mut tx = self.pool.begin().await?;
        // NO KEY UPDATE: the turn does not block routing, whose inserts only check
        // that the tenant exists (a key-share lock). A deletion holds the row until
        // it commits, and the lock then re-reads it: a deleted tenant gets nothing.
        let live: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM tenants WHERE id = $1 AND deleted_at IS NULL FOR NO KEY UPDATE",
        )
        .bind(e.tenant_id)
        .fetch_optional(&mut *tx)
        .await?;
        if live.is_none() {
            return Err(StoreError::Missing("tenant deleted".into()));
        }
        // A statement of its own, so its snapshot sees the creations that held the
        // turn before.
        let created = sqlx::query_as(sqlx::AssertSqlSafe(audited(
            &format!(
                "INSERT INTO endpoints (id, tenant_id, url, description, event_types, secret_ciphertext,
                                        rate_limit_per_second, rate_limit_burst, max_in_flight, timeout_ms,
                                        paused, paused_at, ordering, on_dead, filter, channels,
                                        headers, auth, tls, request_secrets, request_rev)
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                        $13, CASE WHEN $13 THEN now() END, COALESCE($14, 'none'), COALESCE($15, 'release'), $16, $17,
                        $18, $19, $20, $21, CASE WHEN $18::jsonb = '[]' AND $19::jsonb IS NULL AND $20::jsonb IS NULL THEN 0 ELSE 1 END
                 WHERE (SELECT count(*) FROM endpoints WHERE tenant_id = $2 AND deleted_at IS NULL)
                       < COALESCE((SELECT max_endpoints FROM tenants WHERE id = $2), $11)
                 RETURNING {COLUMNS}"
            ),
            12,
            "changed.tenant_id",
            "changed.id",
        )))
        .bind(e.id)
        .bind(e.tenant_id)
        .bind(e.url.as_str())
        .bind(e.description.as_str())
        .bind(e.event_types.map(EventTypes::as_slice))
        .bind(e.secret_ciphertext)
        .bind(e.limits.rate_limit_per_second)
        .bind(e.limits.rate_limit_burst)
        .bind(e.limits.max_in_flight)
        .bind(e.limits.timeout_ms)
        .bind(default_max)
        .bind(Pending::new(
            by,
            action::ENDPOINT_CREATED,
            json!({
                "url": e.url.redacted(),
                "event_types": e.event_types.map(EventTypes::as_slice),
                "paused": e.controls.paused,
                "ordering": e.controls.ordering,
                "filter": e.controls.filter,
                "channels": e.controls.channels.as_ref().map(Channels::as_slice),
                "headers": e.request.headers,
                "auth": e.request.auth,
                "tls": e.request.tls.as_ref().map(|_| "set"),
            }),
        ))
        .bind(e.controls.paused)
        .bind(e.controls.ordering)
        .bind(e.controls.on_dead)
        .bind(e.controls.filter.as_ref().map(sqlx::types::Json))
        .bind(e.controls.channels.as_ref().map(Channels::as_slice))
        .bind(sqlx::types::Json(&e.request.headers))
        .bind(e.request.auth.as_ref().map(sqlx::types::Json))
        .bind(e.request.tls.as_ref().map(sqlx::types::Json))
        .bind(e.request.sealed.as_deref())
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from_write)?;
        tx.commit().await?;
        Ok(created)
    }

    pub async fn get_endpoint(&self, tenant_id: Uuid, id: Uuid) -> Result<Option<Endpoint>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM endpoints WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
        )))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The endpoint's current secret, encrypted; the read is recorded in the audit log.
    pub async fn endpoint_secret(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        by: &Actor,
    ) -> Result<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(audited(
            "SELECT secret_ciphertext, tenant_id, id FROM endpoints
             WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
            3,
            "changed.tenant_id",
            "changed.id",
        )))
        .bind(tenant_id)
        .bind(id)
        .bind(Pending::new(by, action::SECRET_READ, json!({})))
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn list_endpoints(
        &self,
        tenant_id: Uuid,
        limit: i64,
        after: Option<Uuid>,
    ) -> Result<Vec<Endpoint>> {
        self.check_cursor(super::Listed::Endpoints, tenant_id, after)
            .await?;
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM endpoints
             WHERE tenant_id = $1 AND deleted_at IS NULL
               AND ($2::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM endpoints WHERE id = $2 AND tenant_id = $1))
             ORDER BY created_at DESC, id DESC LIMIT $3"
        )))
        .bind(tenant_id)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Changes an endpoint. Resuming it releases its held deliveries (returned for
    /// the caller to publish; an ordered endpoint's order moves on instead), ending
    /// strict ordering releases the ones waiting in line, and disabling it cancels
    /// the held ones. Pausing and resuming are audited apart from the other fields.
    pub async fn update_endpoint(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        c: EndpointChanges,
        by: &Actor,
    ) -> Result<Option<Updated>> {
        let mut tx = self.pool.begin().await?;
        let before: Option<(bool, Ordering)> = sqlx::query_as(
            "SELECT paused, ordering FROM endpoints
             WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((was_paused, was_ordering)) = before else {
            return Ok(None);
        };
        let details = json!({
            "fields": c.fields(),
            "url": c.url.as_ref().map(EndpointUrl::redacted),
            "filter": c.filter,
            "channels": c.channels.as_ref().map(|c| c.as_ref().map(Channels::as_slice)),
            "ordering": c.ordering,
            "on_dead": c.on_dead,
            "headers": c.request.as_ref().map(|(o, _)| &o.headers),
            "auth": c.request.as_ref().map(|(o, _)| &o.auth),
        });
        let disabling = c.disabled == Some(true);
        let pausing = c.paused;
        let request = c.request;
        let endpoint: Option<Endpoint> = sqlx::query_as(sqlx::AssertSqlSafe(audited(
            &format!(
                "UPDATE endpoints SET
                url = COALESCE($3, url),
                description = COALESCE($4, description),
                event_types = CASE WHEN $5 THEN $6 ELSE event_types END,
                disabled = COALESCE($7, disabled),
                disabled_reason = CASE WHEN $7 IS NULL THEN disabled_reason ELSE NULL END,
                rate_limit_per_second = CASE WHEN $8 THEN $9 ELSE rate_limit_per_second END,
                rate_limit_burst = CASE WHEN $10 THEN $11 ELSE rate_limit_burst END,
                max_in_flight = CASE WHEN $12 THEN $13 ELSE max_in_flight END,
                timeout_ms = CASE WHEN $14 THEN $15 ELSE timeout_ms END,
                paused_at = CASE WHEN $17 AND NOT paused THEN now() WHEN NOT $17 THEN NULL ELSE paused_at END,
                paused_reason = CASE WHEN $17 IS NULL THEN paused_reason ELSE NULL END,
                paused = COALESCE($17, paused),
                ordering = COALESCE($18, ordering),
                on_dead = COALESCE($19, on_dead),
                filter = CASE WHEN $20 THEN $21 ELSE filter END,
                channels = CASE WHEN $22 THEN $23 ELSE channels END,
                headers = CASE WHEN $24 THEN $25 ELSE headers END,
                auth = CASE WHEN $24 THEN $26 ELSE auth END,
                tls = CASE WHEN $24 THEN $27 ELSE tls END,
                request_secrets = CASE WHEN $24 THEN $28 ELSE request_secrets END,
                request_rev = CASE WHEN $24 THEN request_rev + 1 ELSE request_rev END,
                updated_at = now()
             WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL
               AND (NOT $24 OR request_rev = $29)
             RETURNING {COLUMNS}"
            ),
            16,
            "changed.tenant_id",
            "changed.id",
        )))
        .bind(tenant_id)
        .bind(id)
        .bind(c.url.map(EndpointUrl::into_string))
        .bind(c.description.map(Description::into_string))
        .bind(c.event_types.is_some())
        .bind(c.event_types.flatten().map(EventTypes::into_vec))
        .bind(c.disabled)
        .bind(c.rate_limit_per_second.is_some())
        .bind(c.rate_limit_per_second.flatten())
        .bind(c.rate_limit_burst.is_some())
        .bind(c.rate_limit_burst.flatten())
        .bind(c.max_in_flight.is_some())
        .bind(c.max_in_flight.flatten())
        .bind(c.timeout_ms.is_some())
        .bind(c.timeout_ms.flatten())
        .bind(Pending::new(by, action::ENDPOINT_UPDATED, details))
        .bind(c.paused)
        .bind(c.ordering)
        .bind(c.on_dead)
        .bind(c.filter.is_some())
        .bind(c.filter.flatten().map(sqlx::types::Json))
        .bind(c.channels.is_some())
        .bind(c.channels.flatten().map(Channels::into_vec))
        .bind(request.is_some())
        .bind(request.as_ref().map(|(o, _)| sqlx::types::Json(&o.headers)))
        .bind(request.as_ref().and_then(|(o, _)| o.auth.as_ref().map(sqlx::types::Json)))
        .bind(request.as_ref().and_then(|(o, _)| o.tls.as_ref().map(sqlx::types::Json)))
        .bind(request.as_ref().and_then(|(o, _)| o.sealed.as_deref()))
        .bind(request.as_ref().map(|(_, rev)| *rev))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(endpoint) = endpoint else {
            // Its request options changed since they were read.
            return Err(StoreError::Conflict(
                "the endpoint's request options changed meanwhile; read it again".into(),
            ));
        };
        let mut released = Vec::new();
        if disabling {
            Self::cancel_held(&mut tx, id).await?;
        } else {
            let resumed = was_paused && !endpoint.paused;
            let unordered = was_ordering == Ordering::Strict && endpoint.ordering == Ordering::None;
            if (resumed || unordered) && !endpoint.paused {
                released = Self::release_held(&mut tx, id).await?;
            }
        }
        let paused_now = pausing.filter(|p| *p != was_paused);
        if let Some(now_paused) = paused_now {
            let what = if now_paused {
                action::ENDPOINT_PAUSED
            } else {
                action::ENDPOINT_RESUMED
            };
            super::audit::record_target_in(&mut tx, by, what, Some(tenant_id), Some(id), json!({}))
                .await?;
        }
        tx.commit().await?;
        let resumed_ordered = !endpoint.paused && endpoint.ordering == Ordering::Strict;
        Ok(Some(Updated {
            endpoint,
            released,
            resumed_ordered,
            paused_now,
        }))
    }

    /// Replaces the signing secret. With a grace period the old secret keeps signing
    /// beside the new one until it ends; secrets rotated out earlier keep their own
    /// grace periods (at most `MAX_PREVIOUS_SECRETS` are kept). A zero grace period
    /// ends every old secret at once (say, after a leak).
    pub async fn rotate_endpoint_secret(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        secret_ciphertext: &[u8],
        grace: std::time::Duration,
        by: &Actor,
    ) -> Result<Option<Endpoint>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(audited_after(&format!(
            "old AS (
                SELECT u.secret, u.expires_at
                FROM endpoints e,
                     unnest(array_prepend(e.secret_ciphertext, e.previous_secrets),
                            array_prepend(now() + make_interval(secs => $4), e.previous_secrets_expire_at))
                         AS u(secret, expires_at)
                WHERE e.tenant_id = $1 AND e.id = $2 AND e.deleted_at IS NULL
                  AND $4 > 0 AND u.expires_at > now()
                ORDER BY u.expires_at DESC LIMIT {MAX_PREVIOUS_SECRETS}
             ),"), &format!(
            "UPDATE endpoints SET
                previous_secrets = ARRAY(SELECT secret FROM old ORDER BY expires_at DESC),
                previous_secrets_expire_at = ARRAY(SELECT expires_at FROM old ORDER BY expires_at DESC),
                secret_ciphertext = $3,
                updated_at = now()
             WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL
             RETURNING {COLUMNS}"
        ), 5, "changed.tenant_id", "changed.id")))
        .bind(tenant_id)
        .bind(id)
        .bind(secret_ciphertext)
        .bind(grace.as_secs_f64())
        .bind(Pending::new(
            by,
            action::SECRET_ROTATED,
            json!({ "grace_seconds": grace.as_secs() }),
        ))
        .fetch_optional(&self.pool)
        .await?)
    }

    /// An endpoint's request options, sealed secrets and revision (deleted
    /// endpoints' too: a replay may still be sent to one).
    pub async fn request_options(&self, id: Uuid) -> Result<Option<LoadedOptions>> {
        Ok(sqlx::query_as(
            "SELECT headers, auth, tls, request_secrets, request_rev FROM endpoints WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Soft-deletes; returns whether the endpoint existed.
    pub async fn delete_endpoint(&self, tenant_id: Uuid, id: Uuid, by: &Actor) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done: Option<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(audited(
            "UPDATE endpoints SET deleted_at = now(), updated_at = now()
             WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING id, tenant_id",
            3,
            "changed.tenant_id",
            "changed.id",
        )))
        .bind(tenant_id)
        .bind(id)
        .bind(Pending::new(by, action::ENDPOINT_DELETED, json!({})))
        .fetch_optional(&mut *tx)
        .await?;
        if done.is_some() {
            Self::cancel_held(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok(done.is_some())
    }
}
