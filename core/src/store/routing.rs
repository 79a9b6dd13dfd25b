//! The router's write: a batch of events and one delivery per subscribed endpoint,
//! idempotent, in as few round trips as the batch allows.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{NewDelivery, NewEvent, Result, RoutingEndpoint, Store};
use crate::event_type;
use crate::filter::{self, Filter};
use crate::ids::new_id;
use crate::model::Ordering;

/// Stores the events given, ignoring ids already stored (a redelivered ingest
/// message), and returns the ids it inserted. A macro, so statements can embed it.
macro_rules! insert_events {
    () => {
        "INSERT INTO events (id, tenant_id, event_type, payload, idempotency_key, created_at, request_id, traceparent, channels)
         SELECT id, tenant_id, event_type, payload, idempotency_key, created_at, request_id, traceparent,
                CASE WHEN channels = '' THEN NULL ELSE string_to_array(channels, ' ') END
         FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::text[], $9::text[])
           AS t(id, tenant_id, event_type, payload, idempotency_key, created_at, request_id, traceparent, channels)
         ON CONFLICT (id, created_at) DO NOTHING RETURNING id"
    };
}

/// The deliveries of a batch's fan-out, as parallel columns.
#[derive(Default)]
struct FanOut {
    ids: Vec<Uuid>,
    event_ids: Vec<Uuid>,
    endpoint_ids: Vec<Uuid>,
    tenant_ids: Vec<Uuid>,
    /// The event's acceptance time for a delivery of an ordered endpoint (held
    /// until its turn), `None` for the others (due at once).
    accepted_at: Vec<Option<DateTime<Utc>>>,
    /// The ordered endpoints among them.
    ordered: HashSet<Uuid>,
}

/// An endpoint as routing checks it, its filter parsed once per batch.
struct Route<'a> {
    endpoint: &'a RoutingEndpoint,
    filter: Option<Filter>,
}

impl Route<'_> {
    fn takes(&self, event: &NewEvent, payload: &mut Payload<'_>) -> bool {
        let ep = self.endpoint;
        event_type::subscribed(ep.event_types.as_deref(), &event.event_type)
            && filter::channels_match(ep.channels.as_deref(), event.channels.as_deref())
            && self
                .filter
                .as_ref()
                .is_none_or(|f| f.matches(&event.event_type, payload.get()))
    }
}

/// An event's payload, parsed the first time a filter needs it.
struct Payload<'a> {
    text: &'a str,
    parsed: Option<Value>,
}

impl Payload<'_> {
    fn get(&mut self) -> &Value {
        self.parsed
            .get_or_insert_with(|| serde_json::from_str(self.text).unwrap_or(Value::Null))
    }
}

impl FanOut {
    /// One delivery per event and endpoint of its tenant that takes it: subscribed
    /// to its type, to one of its channels (if the endpoint names channels), and
    /// passing its filter (if it has one).
    fn of(events: &[&NewEvent], endpoints: &[RoutingEndpoint]) -> Self {
        let mut by_tenant: HashMap<Uuid, Vec<Route<'_>>> = HashMap::new();
        for ep in endpoints {
            let filter = ep.filter.as_ref().map(|f| {
                Filter::parse(&f.0).unwrap_or_else(|e| {
                    // Checked when it was saved; a filter that no longer parses takes nothing.
                    tracing::warn!(endpoint = %ep.id, error = %e, "stored filter refused");
                    Filter::Any(Vec::new())
                })
            });
            by_tenant
                .entry(ep.tenant_id)
                .or_default()
                .push(Route { endpoint: ep, filter });
        }
        let mut out = Self::default();
        for event in events {
            let mut payload = Payload { text: &event.payload, parsed: None };
            for route in by_tenant.get(&event.tenant_id).into_iter().flatten() {
                if route.takes(event, &mut payload) {
                    let ep = route.endpoint;
                    let ordered = ep.ordering == Ordering::Strict;
                    out.ids.push(new_id());
                    out.event_ids.push(event.id);
                    out.endpoint_ids.push(ep.id);
                    out.tenant_ids.push(event.tenant_id);
                    out.accepted_at.push(ordered.then_some(event.accepted_at));
                    if ordered {
                        out.ordered.insert(ep.id);
                    }
                }
            }
        }
        out
    }

    /// The created deliveries to publish now: not those waiting their turn.
    fn to_publish(&self, created: Vec<NewDelivery>) -> Vec<NewDelivery> {
        if self.ordered.is_empty() {
            return created;
        }
        created
            .into_iter()
            .filter(|d| !self.ordered.contains(&d.endpoint_id))
            .collect()
    }
}

/// Each event once: a batch may hold one idempotency key twice, accepted apart.
fn once<'a>(events: impl Iterator<Item = &'a NewEvent>) -> Vec<&'a NewEvent> {
    let mut seen = HashSet::new();
    events.filter(|e| seen.insert(e.id)).collect()
}

/// Binds the events' columns, in `insert_events!`'s order, to a query.
macro_rules! bind_events {
    ($query:expr, $events:expr) => {
        $query
            .bind($events.iter().map(|e| e.id).collect::<Vec<_>>())
            .bind($events.iter().map(|e| e.tenant_id).collect::<Vec<_>>())
            .bind(
                $events
                    .iter()
                    .map(|e| e.event_type.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                $events
                    .iter()
                    .map(|e| e.payload.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                $events
                    .iter()
                    .map(|e| e.idempotency_key.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind($events.iter().map(|e| e.accepted_at).collect::<Vec<_>>())
            .bind(
                $events
                    .iter()
                    .map(|e| e.request_id.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(
                $events
                    .iter()
                    .map(|e| e.traceparent.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(channel_column(&$events))
    };
}

/// The events' channels as one text each (space-separated, '' for none: a
/// channel name holds no space), parameter `$9` of `insert_events!`.
fn channel_column(events: &[&NewEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            e.channels
                .as_deref()
                .map(|c| c.join(" "))
                .unwrap_or_default()
        })
        .collect()
}

impl Store {
    /// Stores a batch of events and, for each event not seen before, one delivery per
    /// endpoint subscribed right now. Events already stored (a repeated idempotency
    /// key, or a redelivered ingest message) add nothing. Returns the deliveries
    /// created.
    ///
    /// New deliveries are due `unsent_lease` from now: their message is published
    /// right after this commit, and should it be lost (queue purged, shard count
    /// lowered, dead-lettered), the scheduler sends them then. A sender that claims
    /// one moves nothing here; finishing it clears the due time.
    pub async fn route_events(
        &self,
        events: &[NewEvent],
        unsent_lease: std::time::Duration,
    ) -> Result<Vec<NewDelivery>> {
        match self.route_once(events, unsent_lease).await {
            // Accepted on a day that has no partition (a backlog older than every
            // day kept, a skewed clock): its day is made, then it is stored.
            Err(e) if e.is_missing_partition() => {
                let mut days: Vec<_> = events.iter().map(|e| e.accepted_at.date_naive()).collect();
                days.sort_unstable();
                days.dedup();
                for day in days {
                    self.ensure_partitions(day).await?;
                }
                self.route_once(events, unsent_lease).await
            }
            other => other,
        }
    }

    async fn route_once(
        &self,
        events: &[NewEvent],
        unsent_lease: std::time::Duration,
    ) -> Result<Vec<NewDelivery>> {
        if events.iter().any(|e| e.idempotency_key.is_some()) {
            self.route_keyed(events, unsent_lease).await
        } else {
            self.route_unkeyed(events, unsent_lease).await
        }
    }

    /// Without idempotency keys an event's id and time are its message's, so a
    /// redelivery conflicts on the primary key: the endpoints are read first, then
    /// the events and their deliveries are written by one statement (its own
    /// transaction), the deliveries only of the events it inserted.
    async fn route_unkeyed(
        &self,
        events: &[NewEvent],
        unsent_lease: std::time::Duration,
    ) -> Result<Vec<NewDelivery>> {
        let events = once(events.iter());
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let endpoints = routing_endpoints(&self.pool, &events).await?;
        let fan = FanOut::of(&events, &endpoints);
        let created: Vec<NewDelivery> = bind_events!(
            sqlx::query_as(concat!(
                "WITH inserted AS (",
                insert_events!(),
                ")
                 INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, next_attempt_at, accepted_at)
                 SELECT f.id, f.event_id, f.endpoint_id, f.tenant_id,
                        CASE WHEN f.accepted_at IS NULL THEN now() + make_interval(secs => $14) END, f.accepted_at
                 FROM UNNEST($10::uuid[], $11::uuid[], $12::uuid[], $13::uuid[], $15::timestamptz[])
                   AS f(id, event_id, endpoint_id, tenant_id, accepted_at)
                 WHERE f.event_id IN (SELECT id FROM inserted)
                 RETURNING id, endpoint_id, attempts"
            )),
            events
        )
        .bind(&fan.ids)
        .bind(&fan.event_ids)
        .bind(&fan.endpoint_ids)
        .bind(&fan.tenant_ids)
        .bind(unsent_lease.as_secs_f64())
        .bind(&fan.accepted_at)
        .fetch_all(&self.pool)
        .await?;
        self.with_heads(&fan, created, unsent_lease).await
    }

    /// Events are partitioned by acceptance time, so their key is (id, created_at):
    /// a redelivered ingest message (same id, same time) conflicts as above, but a
    /// producer's retry with the same idempotency key is a new acceptance. Keyed
    /// events are therefore looked up by id across the partitions first, in one
    /// transaction under a lock per id, so two routers cannot both miss the other's
    /// insert.
    async fn route_keyed(
        &self,
        events: &[NewEvent],
        unsent_lease: std::time::Duration,
    ) -> Result<Vec<NewDelivery>> {
        let mut tx = self.pool.begin().await?;
        let keyed: Vec<Uuid> = events
            .iter()
            .filter(|e| e.idempotency_key.is_some())
            .map(|e| e.id)
            .collect();
        sqlx::query(
            "SELECT pg_advisory_xact_lock(k) FROM (
               SELECT DISTINCT hashtextextended(id::text, 7) AS k FROM unnest($1::uuid[]) AS id ORDER BY k
             ) AS locks",
        )
        .bind(&keyed)
        .execute(&mut *tx)
        .await?;
        let seen: HashSet<Uuid> =
            sqlx::query_scalar::<_, Uuid>("SELECT id FROM events WHERE id = ANY($1)")
                .bind(&keyed)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
        let events = once(events.iter().filter(|e| !seen.contains(&e.id)));
        if events.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let inserted: HashSet<Uuid> = bind_events!(sqlx::query_scalar(insert_events!()), events)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let fresh: Vec<&NewEvent> = events
            .into_iter()
            .filter(|e| inserted.contains(&e.id))
            .collect();
        if fresh.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let endpoints = routing_endpoints(&mut *tx, &fresh).await?;
        let fan = FanOut::of(&fresh, &endpoints);
        let created: Vec<NewDelivery> = sqlx::query_as(
            "INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, next_attempt_at, accepted_at)
             SELECT f.id, f.event_id, f.endpoint_id, f.tenant_id,
                    CASE WHEN f.accepted_at IS NULL THEN now() + make_interval(secs => $5) END, f.accepted_at
             FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $6::timestamptz[])
               AS f(id, event_id, endpoint_id, tenant_id, accepted_at)
             RETURNING id, endpoint_id, attempts",
        )
        .bind(&fan.ids)
        .bind(&fan.event_ids)
        .bind(&fan.endpoint_ids)
        .bind(&fan.tenant_ids)
        .bind(unsent_lease.as_secs_f64())
        .bind(&fan.accepted_at)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        self.with_heads(&fan, created, unsent_lease).await
    }
}

impl Store {
    /// The created deliveries to publish: those of unordered endpoints, and the
    /// ordered endpoints' new heads (their others wait their turn, held).
    async fn with_heads(
        &self,
        fan: &FanOut,
        created: Vec<NewDelivery>,
        unsent_lease: std::time::Duration,
    ) -> Result<Vec<NewDelivery>> {
        let mut publish = fan.to_publish(created);
        if !fan.ordered.is_empty() {
            let ordered: Vec<Uuid> = fan.ordered.iter().copied().collect();
            publish.extend(self.advance_ordered(&ordered, unsent_lease).await?);
        }
        Ok(publish)
    }
}

/// The live endpoints of the events' tenants.
async fn routing_endpoints<'e>(
    db: impl sqlx::PgExecutor<'e>,
    events: &[&NewEvent],
) -> Result<Vec<RoutingEndpoint>> {
    let mut tenants: Vec<Uuid> = events.iter().map(|e| e.tenant_id).collect();
    tenants.sort_unstable();
    tenants.dedup();
    Ok(sqlx::query_as(
        "SELECT id, tenant_id, event_types, ordering, filter, channels FROM endpoints
         WHERE tenant_id = ANY($1) AND deleted_at IS NULL AND NOT disabled",
    )
    .bind(&tenants)
    .fetch_all(db)
    .await?)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::PgPool;

    use super::*;

    const LEASE: Duration = Duration::from_secs(60);

    /// A tenant with an endpoint for every event and one for `order.*` only.
    async fn tenant(store: &Store) -> (Uuid, Uuid, Uuid) {
        let (tenant, all, orders) = (new_id(), new_id(), new_id());
        sqlx::query("INSERT INTO tenants (id, name) VALUES ($1, 'routing')")
            .bind(tenant)
            .execute(store.pool())
            .await
            .expect("tenant");
        for (id, types) in [(all, None), (orders, Some(vec!["order.*".to_string()]))] {
            sqlx::query(
                "INSERT INTO endpoints (id, tenant_id, url, secret_ciphertext, event_types)
                 VALUES ($1, $2, 'http://127.0.0.1:9/hook', '\\x00', $3)",
            )
            .bind(id)
            .bind(tenant)
            .bind(types)
            .execute(store.pool())
            .await
            .expect("endpoint");
        }
        (tenant, all, orders)
    }

    fn event(tenant: Uuid, event_type: &str, key: Option<&str>) -> NewEvent {
        NewEvent {
            id: new_id(),
            tenant_id: tenant,
            event_type: event_type.into(),
            payload: "{}".into(),
            idempotency_key: key.map(str::to_string),
            accepted_at: chrono::Utc::now(),
            request_id: None,
            traceparent: None,
            channels: None,
        }
    }

    /// How many events and deliveries are stored.
    async fn counts(store: &Store) -> (i64, i64) {
        sqlx::query_as("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM deliveries)")
            .fetch_one(store.pool())
            .await
            .expect("count")
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn an_unkeyed_batch_fans_out_to_subscribed_endpoints_once(pool: PgPool) {
        let store = Store::from_pool(pool);
        let (tenant, all, orders) = tenant(&store).await;
        let first = event(tenant, "order.paid", None);
        let batch = vec![
            first.clone(),
            event(tenant, "user.created", None),
            first.clone(),
        ];
        let created = store.route_events(&batch, LEASE).await.expect("routed");
        assert_eq!(created.len(), 3, "order.paid to both, user.created to one");
        assert_eq!(
            created.iter().filter(|d| d.endpoint_id == orders).count(),
            1
        );
        assert_eq!(created.iter().filter(|d| d.endpoint_id == all).count(), 2);
        assert!(created.iter().all(|d| d.attempts == 0));
        let due: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM deliveries WHERE next_attempt_at > now() + interval '50 seconds'",
        )
        .fetch_one(store.pool())
        .await
        .expect("due");
        assert_eq!(due, 3, "every new delivery is due after the unsent lease");

        // The same message again (a redelivery): nothing new.
        let again = store.route_events(&batch, LEASE).await.expect("routed");
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(counts(&store).await, (2, 3));
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_repeated_idempotency_key_adds_nothing_beside_new_events(pool: PgPool) {
        let store = Store::from_pool(pool);
        let (tenant, _, _) = tenant(&store).await;
        let keyed = event(tenant, "order.paid", Some("k1"));
        let created = store
            .route_events(std::slice::from_ref(&keyed), LEASE)
            .await
            .expect("routed");
        assert_eq!(created.len(), 2);
        // The producer's retry is a new acceptance with the same id; beside it, an
        // unkeyed event routes as usual.
        let retry = NewEvent {
            accepted_at: chrono::Utc::now() + chrono::Duration::milliseconds(5),
            ..keyed.clone()
        };
        let fresh = event(tenant, "user.created", None);
        let created = store
            .route_events(&[retry, fresh.clone()], LEASE)
            .await
            .expect("routed");
        assert_eq!(created.len(), 1, "{created:?}");
        assert_eq!(counts(&store).await, (2, 3));
        let of_fresh: i64 =
            sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE event_id = $1")
                .bind(fresh.id)
                .fetch_one(store.pool())
                .await
                .expect("count");
        assert_eq!(of_fresh, 1);
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn an_event_of_a_tenant_without_endpoints_is_stored_with_no_deliveries(pool: PgPool) {
        let store = Store::from_pool(pool);
        let (tenant, _, _) = tenant(&store).await;
        let lonely = new_id();
        sqlx::query("INSERT INTO tenants (id, name) VALUES ($1, 'lonely')")
            .bind(lonely)
            .execute(store.pool())
            .await
            .expect("tenant");
        let batch = [
            event(lonely, "order.paid", None),
            event(tenant, "user.created", None),
        ];
        let created = store.route_events(&batch, LEASE).await.expect("routed");
        assert_eq!(created.len(), 1);
        assert_eq!(counts(&store).await, (2, 1));
    }
}
