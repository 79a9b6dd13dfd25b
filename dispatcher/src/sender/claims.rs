//! The senders' claims, batched (`batcher`): a claim waiting while another is in
//! flight joins the next statement, so the database plans, runs and commits one
//! claim per round instead of one per message, and the claims' cost follows the
//! load, not the count of small messages. Each message still gets exactly its own
//! deliveries back (and its events' payloads); claims with decisions (attempt
//! counts) and without never share a statement.
//!
//! Deliveries of the bulk ingest lane (a tenant far above its share) are claimed
//! by a worker of their own: their batches never hold anyone else's claim, and one
//! worker keeps the bulk lane to one claim statement at a time. While bulk claims
//! come fast, that worker waits a little for more (`BatchWindow::statements`), so
//! the bulk lane's deliveries cost the database fewer, larger statements.

use std::collections::HashMap;
use std::time::Duration;

use hookrelay_core::Store;
use hookrelay_core::store::{Claimed, SendJob, StoreError};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::batcher::{Batcher, Statement};
use crate::outcome::Outcome;
use crate::tasks::Tasks;

/// Claims in flight at once: one runs while the next batch gathers.
const WORKERS: usize = 2;
/// Claims of the bulk lane in flight at once.
const BULK_WORKERS: usize = 1;

/// One message's claim: its deliveries, and the attempt counts of its decision.
pub struct ClaimRequest {
    ids: Vec<Uuid>,
    attempts: Option<Vec<i32>>,
}

/// Claims deliveries for `claim_for` and loads them with their payloads.
struct ClaimStatement {
    store: Store,
    claim_for: Duration,
}

impl Statement for ClaimStatement {
    type Input = ClaimRequest;
    type Output = Claimed;
    const WHAT: &'static str = "claiming deliveries";

    fn ids(input: &ClaimRequest) -> impl Iterator<Item = Uuid> + '_ {
        input.ids.iter().copied()
    }

    fn joins(first: &ClaimRequest, next: &ClaimRequest) -> bool {
        first.attempts.is_some() == next.attempts.is_some()
    }

    async fn run(&self, batch: &[&ClaimRequest]) -> Result<Vec<Claimed>, StoreError> {
        let ids: Vec<Uuid> = batch.iter().flat_map(|r| r.ids.iter().copied()).collect();
        let attempts: Option<Vec<i32>> = batch
            .iter()
            .map(|r| r.attempts.as_deref())
            .collect::<Option<Vec<&[i32]>>>()
            .map(|a| a.concat());
        let claimed = self
            .store
            .claim_jobs(&ids, attempts.as_deref(), self.claim_for)
            .await?;
        Ok(split(claimed, batch))
    }
}

/// The senders' handle; clone freely.
#[derive(Clone)]
pub struct Claims {
    priority: Batcher<ClaimStatement>,
    bulk: Batcher<ClaimStatement>,
}

impl Claims {
    /// Starts the claim workers; each claim holds its deliveries for `claim_for`.
    /// `stop` ends them (after the senders are done); they join `tasks`.
    pub fn spawn(
        store: Store,
        claim_for: Duration,
        stop: CancellationToken,
        tasks: &mut Tasks,
    ) -> Self {
        let statement = || ClaimStatement { store: store.clone(), claim_for };
        Self {
            priority: Batcher::spawn(statement(), WORKERS, false, stop.clone(), tasks),
            bulk: Batcher::spawn(statement(), BULK_WORKERS, true, stop, tasks),
        }
    }

    /// Claims and loads the open deliveries among `ids` (see `Store::claim_jobs`);
    /// `bulk`: they came through the bulk ingest lane; `cancel`: the message's
    /// shard stopping.
    pub async fn claim(
        &self,
        ids: Vec<Uuid>,
        attempts: Option<Vec<i32>>,
        bulk: bool,
        cancel: &CancellationToken,
    ) -> Outcome<Claimed> {
        let batcher = if bulk { &self.bulk } else { &self.priority };
        batcher
            .submit(ClaimRequest { ids, attempts }, Some(cancel))
            .await
    }
}

/// Hands each request its own deliveries and their events' payloads.
fn split(claimed: Claimed, batch: &[&ClaimRequest]) -> Vec<Claimed> {
    let Claimed { jobs, payloads, large } = claimed;
    let large: HashMap<Uuid, usize> = large.into_iter().collect();
    let mut jobs: HashMap<Uuid, SendJob> = jobs.into_iter().map(|j| (j.delivery_id, j)).collect();
    batch
        .iter()
        .map(|request| {
            let mut own = Claimed::default();
            for id in &request.ids {
                let Some(job) = jobs.remove(id) else { continue };
                if let Some(p) = payloads.get(&job.event_id) {
                    own.payloads
                        .entry(job.event_id)
                        .or_insert_with(|| p.clone());
                } else if let Some(n) = large.get(&job.event_id)
                    && !own.large.iter().any(|(e, _)| *e == job.event_id)
                {
                    own.large.push((job.event_id, *n));
                }
                own.jobs.push(job);
            }
            own
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use hookrelay_core::ids::new_id;
    use hookrelay_core::store::NewEvent;
    use sqlx::PgPool;

    use super::*;

    /// A tenant with two endpoints and three events routed to both: six deliveries.
    async fn routed(store: &Store) -> (Vec<Uuid>, Vec<Uuid>, HashMap<Uuid, String>) {
        let tenant = new_id();
        sqlx::query("INSERT INTO tenants (id, name) VALUES ($1, 'claims')")
            .bind(tenant)
            .execute(store.pool())
            .await
            .expect("tenant");
        let endpoints = [new_id(), new_id()];
        for id in endpoints {
            sqlx::query(
                "INSERT INTO endpoints (id, tenant_id, url, secret_ciphertext)
                 VALUES ($1, $2, 'http://127.0.0.1:9/hook', '\\x00')",
            )
            .bind(id)
            .bind(tenant)
            .execute(store.pool())
            .await
            .expect("endpoint");
        }
        let events: Vec<NewEvent> = (0..3)
            .map(|i| NewEvent {
                id: new_id(),
                tenant_id: tenant,
                event_type: "order.paid".into(),
                payload: format!(r#"{{"n":{i}}}"#),
                idempotency_key: None,
                accepted_at: chrono::Utc::now(),
                request_id: None,
                traceparent: None,
                channels: None,
            })
            .collect();
        let payloads = events.iter().map(|e| (e.id, e.payload.clone())).collect();
        let deliveries = store
            .route_events(&events, Duration::from_secs(60))
            .await
            .expect("routed");
        assert_eq!(deliveries.len(), 6);
        let of = |endpoint: Uuid| -> Vec<Uuid> {
            deliveries
                .iter()
                .filter(|d| d.endpoint_id == endpoint)
                .map(|d| d.id)
                .collect()
        };
        (of(endpoints[0]), of(endpoints[1]), payloads)
    }

    /// Claims holding deliveries for 30 s, and what stops them.
    fn spawned(store: &Store) -> (Claims, CancellationToken) {
        let stop = CancellationToken::new();
        let claims = Claims::spawn(
            store.clone(),
            Duration::from_secs(30),
            stop.clone(),
            &mut Tasks::default(),
        );
        (claims, stop)
    }

    fn jobs(result: Outcome<Claimed>) -> Vec<hookrelay_core::store::SendJob> {
        match result {
            Outcome::Done(c) => c.into_jobs(Vec::new()),
            other => panic!("not claimed: {other:?}"),
        }
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn concurrent_claims_each_get_their_own_deliveries_with_payloads(pool: PgPool) {
        let store = Store::from_pool(pool);
        let (first, second, payloads) = routed(&store).await;
        let (claims, stop) = spawned(&store);
        let cancel = CancellationToken::new();
        // The third message names a delivery of the first: one of them sends it. The
        // second came through the bulk lane, whose worker claims it apart.
        let (a, b, c) = tokio::join!(
            claims.claim(first.clone(), Some(vec![0; 3]), false, &cancel),
            claims.claim(second.clone(), Some(vec![0; 3]), true, &cancel),
            claims.claim(vec![first[0]], Some(vec![0]), false, &cancel),
        );
        let (a, b, c) = (jobs(a), jobs(b), jobs(c));
        let ids = |j: &[hookrelay_core::store::SendJob]| {
            let mut v: Vec<Uuid> = j.iter().map(|j| j.delivery_id).collect();
            v.sort();
            v
        };
        let sorted = |mut v: Vec<Uuid>| {
            v.sort();
            v
        };
        let (a_ids, c_ids) = (ids(&a), ids(&c));
        assert_eq!(ids(&b), sorted(second));
        assert!(
            (a_ids == sorted(first.clone()) && c_ids.is_empty())
                || (c_ids == vec![first[0]] && a_ids == sorted(first[1..].to_vec())),
            "each delivery goes to exactly one message: {a_ids:?} / {c_ids:?}"
        );
        for job in a.iter().chain(&b).chain(&c) {
            assert_eq!(
                &*job.payload, payloads[&job.event_id],
                "payload of its event"
            );
        }
        let claimed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM deliveries WHERE claimed_until > now() + interval '20 seconds'",
        )
        .fetch_one(store.pool())
        .await
        .expect("count");
        assert_eq!(
            claimed, 6,
            "every delivery is claimed for the claim's length"
        );
        // A second claim of the same deliveries finds them held.
        let again = jobs(claims.claim(first, Some(vec![0; 3]), false, &cancel).await);
        assert!(again.is_empty());
        stop.cancel();
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn stopped_claims_answer_stopped(pool: PgPool) {
        let store = Store::from_pool(pool);
        let (first, _, _) = routed(&store).await;
        let (claims, stop) = spawned(&store);
        stop.cancel();
        let result = claims
            .claim(first, Some(vec![0; 3]), false, &CancellationToken::new())
            .await;
        assert!(matches!(result, Outcome::Stopped), "{result:?}");
        let claimed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE claimed_until IS NOT NULL")
                .fetch_one(store.pool())
                .await
                .expect("count");
        assert_eq!(claimed, 0, "nothing is claimed once the claims stopped");
    }
}
