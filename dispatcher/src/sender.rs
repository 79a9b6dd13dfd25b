//! The sender: one consumer per delivery shard. Each message names deliveries of
//! that shard; the sender loads them, sends each still-pending one (signed), has
//! the recorder store every attempt, and acks the message only after that. A
//! request that turns slow is leased in Postgres and finished apart from its
//! message, so one slow endpoint never keeps a shard's messages unacked.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hookrelay_core::Store;
use hookrelay_core::crypto::Cipher;
use hookrelay_core::model::DeliveryStatus;
use hookrelay_core::queue::{DeliveryMessage, Topology};
use hookrelay_core::retry::{AttemptResult, RetryPolicy, Verdict};
use hookrelay_core::store::{AttemptRecord, SendJob};
use hookrelay_signature::Secret;
use lapin::Connection;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions,
};
use lapin::types::FieldTable;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::breaker::Permit;
use crate::client::{Outgoing, WebhookClient, not_sent};
use crate::lanes::{Lanes, MAX_LANE_WAIT};
use crate::recorder::Recorder;
use crate::{DispatchError, db_retry};

/// Acks towards a connection that died may never complete: the broker requeues
/// those messages anyway, so give up after a while instead of holding the task.
const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

async fn settle(ack: impl std::future::Future<Output = lapin::Result<bool>>) {
    match tokio::time::timeout(SETTLE_TIMEOUT, ack).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "could not settle a delivery message; the broker redelivers it")
        }
        Err(_) => {
            tracing::debug!("settling a delivery message timed out; the broker redelivers it")
        }
    }
}

/// A request open this long is slow: it no longer holds its shard message (the
/// delivery is leased in Postgres instead) and it counts against its endpoint's
/// allowance of slow requests.
const SLOW_AFTER: Duration = Duration::from_secs(1);
/// How long a delivery waits when its endpoint has its fill of slow requests.
const SLOW_PARK: Duration = Duration::from_secs(5);
/// A leased delivery is due again this long after its request must have ended.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// Counts the slow requests among one message's deliveries.
#[derive(Default)]
struct SlowWatch {
    slow: AtomicUsize,
    changed: Notify,
}

impl SlowWatch {
    fn enter(&self) -> SlowGuard<'_> {
        self.slow.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_one();
        SlowGuard(self)
    }
}

struct SlowGuard<'a>(&'a SlowWatch);

impl Drop for SlowGuard<'_> {
    fn drop(&mut self) {
        self.0.slow.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What became of one delivery in a message.
enum Outcome {
    /// Sent (or refused before sending); `true` when the endpoint answered 410.
    Attempted(AttemptRecord, bool),
    /// Not sent now: due again after the wait plus this endpoint's spacing per place in line.
    Parked(Duration, Duration),
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

pub struct Sender {
    pub store: Store,
    pub retry: RetryPolicy,
    /// Told when a retry is scheduled, so the local scheduler can wake in time.
    pub scheduler_wake: Arc<Notify>,
    pub cipher: Cipher,
    pub client: WebhookClient,
    /// The longest any request may take (the largest timeout an endpoint can have).
    pub max_request_time: Duration,
    /// How long a stopped shard consumer waits for its messages' handlers.
    pub drain_limit: Duration,
    pub recorder: Recorder,
    pub topology: Topology,
    pub lanes: Lanes,
    /// Endpoints failing for this long are disabled.
    pub disable_failing_after: Duration,
    /// Bounds concurrent outgoing requests across all shards of this process.
    pub permits: Arc<Semaphore>,
    pub prefetch: u16,
}

impl Sender {
    /// Consumes one shard until `cancel` fires or the channel fails. Message handling
    /// runs on `tracker`, so shutdown can wait for it; after `cancel` the shard's
    /// handlers are waited for (up to `drain_limit`) before the channel closes.
    pub async fn run_shard(
        self: Arc<Self>,
        connection: Arc<Connection>,
        shard: u16,
        cancel: CancellationToken,
        tracker: TaskTracker,
    ) -> Result<(), DispatchError> {
        let channel = connection.create_channel().await?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await?;
        let tag = format!("sender-{shard}-{}", Uuid::new_v4());
        let mut consumer = channel
            .basic_consume(
                self.topology.delivery_queue(shard).into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        // This shard's handlers, so a shard given up is drained before it is released.
        let local = TaskTracker::new();
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                next = consumer.next() => match next {
                    Some(message) => {
                        let message = message?;
                        let handler = self.clone().handle(message, cancel.clone(), tracker.clone());
                        tracker.spawn(local.track_future(handler));
                    }
                    None => return Err(DispatchError::ConsumerEnded),
                },
            }
        }
        let _ = channel
            .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
            .await;
        local.close();
        if tokio::time::timeout(self.drain_limit, local.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                shard,
                "shard not drained in time; its unfinished messages are requeued"
            );
        }
        // Requeues whatever was prefetched but not handled.
        let _ = channel.close(200, "shard released".into()).await;
        Ok(())
    }

    async fn handle(
        self: Arc<Self>,
        message: Delivery,
        cancel: CancellationToken,
        tracker: TaskTracker,
    ) {
        let requeue = BasicNackOptions {
            multiple: false,
            requeue: true,
        };
        let ids = match serde_json::from_slice::<DeliveryMessage>(&message.data) {
            Ok(m) => m.deliveries,
            Err(e) => {
                tracing::error!(error = %e, "unparseable delivery message; dead-lettering it");
                settle(message.acker.reject(BasicRejectOptions { requeue: false })).await;
                return;
            }
        };
        let Some(jobs) =
            db_retry::until_ok("loading deliveries", &cancel, || self.store.send_jobs(&ids)).await
        else {
            settle(message.acker.nack(requeue)).await;
            return;
        };
        // Only open deliveries are sent: a duplicate message for a finished one is a no-op.
        let (inactive, due): (Vec<SendJob>, Vec<SendJob>) = jobs
            .into_iter()
            .filter(|j| matches!(j.status, DeliveryStatus::Pending | DeliveryStatus::Failed))
            .partition(|j| j.endpoint_inactive);
        if !inactive.is_empty() {
            let ids: Vec<Uuid> = inactive.iter().map(|j| j.delivery_id).collect();
            let cancelled = db_retry::until_ok("cancelling deliveries", &cancel, || {
                self.store
                    .cancel_deliveries(&ids, "endpoint deleted or disabled")
            })
            .await;
            if cancelled.is_none() {
                settle(message.acker.nack(requeue)).await;
                return;
            }
        }
        let watch = Arc::new(SlowWatch::default());
        let mut open: HashSet<Uuid> = due.iter().map(|j| j.delivery_id).collect();
        let mut running: FuturesUnordered<_> = due
            .into_iter()
            .map(|job| {
                let (this, watch) = (self.clone(), watch.clone());
                async move {
                    let outcome = this.attempt(&job, &watch).await;
                    (job, outcome)
                }
            })
            .collect();
        let mut finished = Vec::with_capacity(running.len());
        let mut may_hand_off = true;
        while !running.is_empty() {
            // Only slow requests hold the message: lease them in Postgres and let go of
            // it, so the shard's prefetch never waits on one endpoint.
            if may_hand_off && watch.slow.load(Ordering::SeqCst) >= running.len() {
                let open: Vec<Uuid> = open.iter().copied().collect();
                if self.lease(&open, &cancel).await {
                    let rest = std::mem::take(&mut running);
                    let (this, cancel) = (self.clone(), cancel.clone());
                    tracker.spawn(async move {
                        let outcomes: Vec<_> = rest.collect().await;
                        // A failure here is covered by the lease: the scheduler re-sends.
                        this.conclude(outcomes, &cancel).await;
                    });
                    break;
                }
                may_hand_off = false;
            }
            tokio::select! {
                Some(done) = running.next() => {
                    open.remove(&done.0.delivery_id);
                    finished.push(done);
                }
                _ = watch.changed.notified() => {}
            }
        }
        if self.conclude(finished, &cancel).await {
            settle(message.acker.ack(BasicAckOptions::default())).await;
        } else {
            settle(message.acker.nack(requeue)).await;
        }
    }

    /// Schedules these in-flight deliveries for a re-send after their requests could
    /// have ended: should this process die, the scheduler sends them again.
    async fn lease(&self, ids: &[Uuid], cancel: &CancellationToken) -> bool {
        let until = Utc::now() + to_chrono(self.max_request_time + LEASE_MARGIN);
        let leases: Vec<(Uuid, chrono::DateTime<Utc>)> =
            ids.iter().map(|id| (*id, until)).collect();
        db_retry::until_ok("leasing slow deliveries", cancel, || {
            self.store.park(&leases)
        })
        .await
        .is_some()
    }

    /// Stores what became of these deliveries; `false` when that could not be saved.
    async fn conclude(
        &self,
        outcomes: Vec<(SendJob, Outcome)>,
        cancel: &CancellationToken,
    ) -> bool {
        let mut records = Vec::with_capacity(outcomes.len());
        let mut gone = Vec::new();
        let mut parked = Vec::new();
        let mut queued: HashMap<Uuid, u32> = HashMap::new();
        let (mut healthy, mut failing) = (HashSet::new(), HashSet::new());
        let mut endpoints = HashMap::new();
        let now = Utc::now();
        for (job, outcome) in outcomes {
            match outcome {
                Outcome::Attempted(record, is_gone) => {
                    if is_gone {
                        gone.push(job.endpoint_id);
                    }
                    if record.response_status.is_none_or(|s| s >= 500) {
                        failing.insert(job.endpoint_id);
                    } else if !healthy.contains(&job.endpoint_id)
                        && self.lane_of(&job).breaker.take_failing_mark()
                    {
                        // Only an endpoint with failures on record needs them cleared.
                        healthy.insert(job.endpoint_id);
                    }
                    records.push(record);
                }
                Outcome::Parked(wait, spacing) => {
                    // Spread an endpoint's parked deliveries at its own pace.
                    let k = queued.entry(job.endpoint_id).or_default();
                    let until = now + to_chrono(wait + spacing * *k);
                    *k += 1;
                    parked.push((job.delivery_id, until));
                }
            }
            endpoints.entry(job.endpoint_id).or_insert(job);
        }
        if !parked.is_empty()
            && db_retry::until_ok("parking deliveries", cancel, || self.store.park(&parked))
                .await
                .is_none()
        {
            return false;
        }
        if !parked.is_empty() || records.iter().any(|r| r.next_attempt_at.is_some()) {
            self.scheduler_wake.notify_one();
        }
        let recorded = self.recorder.record(records).await;
        self.report_circuits(endpoints.values()).await;
        self.note_health(healthy, failing).await;
        for endpoint in gone {
            let reason = format!(
                "the endpoint answered 410 Gone on {}",
                Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
            );
            if let Err(e) = self.store.disable_endpoint(endpoint, &reason).await {
                tracing::warn!(error = %e, %endpoint, "could not disable a gone endpoint");
            }
        }
        recorded
    }

    /// An endpoint secret from its ciphertext; `None` when it cannot be read.
    fn secret(&self, ciphertext: &[u8]) -> Option<Secret> {
        self.cipher
            .decrypt(ciphertext)
            .ok()
            .and_then(|key| Secret::from_bytes(key).ok())
    }

    fn lane_of(&self, job: &SendJob) -> Arc<crate::lanes::Lane> {
        self.lanes.get(
            job.endpoint_id,
            (
                job.rate_limit_per_second,
                job.rate_limit_burst,
                job.max_in_flight,
            ),
        )
    }

    /// Tracks endpoints' runs of failures; one failing for too long is disabled.
    async fn note_health(&self, healthy: HashSet<Uuid>, failing: HashSet<Uuid>) {
        if healthy.is_empty() && failing.is_empty() {
            return;
        }
        let healthy: Vec<Uuid> = healthy.into_iter().collect();
        let failing: Vec<Uuid> = failing.into_iter().collect();
        match self
            .store
            .note_health(&healthy, &failing, self.disable_failing_after)
            .await
        {
            Ok(disabled) => {
                for endpoint in disabled {
                    tracing::warn!(%endpoint, "endpoint disabled: every attempt failed for too long");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not record endpoint health"),
        }
    }

    /// Saves breaker transitions of these jobs' endpoints, so the API can show them.
    async fn report_circuits(&self, jobs: impl Iterator<Item = &SendJob>) {
        for job in jobs {
            let lane = self.lane_of(job);
            if let Some(view) = lane.breaker.take_change()
                && let Err(e) = self
                    .store
                    .set_circuit(
                        job.endpoint_id,
                        view.state,
                        view.opened_at,
                        view.next_probe_at,
                    )
                    .await
            {
                tracing::warn!(error = %e, endpoint = %job.endpoint_id, "could not save the circuit state");
            }
        }
    }

    /// One attempt within the endpoint's lane, judged by the retry policy; or parked,
    /// without an attempt, when the lane is full or over its rate.
    async fn attempt(&self, job: &SendJob, watch: &SlowWatch) -> Outcome {
        let lane = self.lane_of(job);
        if lane.slow_full() {
            return Outcome::Parked(SLOW_PARK, lane.spacing());
        }
        loop {
            match lane.admit() {
                Ok(()) => break,
                Err(wait) if wait <= MAX_LANE_WAIT => tokio::time::sleep(wait).await,
                Err(wait) => return Outcome::Parked(wait, lane.spacing()),
            }
        }
        let Ok(_slot) = lane.slot().await else {
            return Outcome::Parked(MAX_LANE_WAIT, lane.spacing());
        };
        let probe = match lane.breaker.permit() {
            Permit::Go => false,
            Permit::Probe => true,
            // Open: wait for the probe time without using an attempt.
            Permit::Wait(wait) => return Outcome::Parked(wait, lane.spacing()),
        };
        let timeout = job
            .timeout_ms
            .and_then(|ms| u64::try_from(ms).ok())
            .map(Duration::from_millis);
        let (mut record, retry_after) = {
            let _permit = self.permits.acquire().await;
            // During a rotation's grace period the old secrets sign too.
            match lane.signing_keys(&job.secret_ciphertext, &job.previous_secrets, |c| {
                self.secret(c)
            }) {
                Some(secrets) => {
                    let send = self.client.send(Outgoing {
                        delivery_id: job.delivery_id,
                        url: &job.url,
                        payload: &job.payload,
                        secrets: &secrets,
                        timeout,
                    });
                    tokio::pin!(send);
                    match tokio::time::timeout(SLOW_AFTER, &mut send).await {
                        Ok(done) => done,
                        Err(_) => {
                            let _lane = lane.slow_request();
                            let _message = watch.enter();
                            send.await
                        }
                    }
                }
                // Never send unsigned.
                None => (
                    not_sent(
                        job.delivery_id,
                        "endpoint secret cannot be decrypted with the configured key",
                    ),
                    None,
                ),
            }
        };
        // 5xx or no answer counts against the endpoint; 4xx shows it is up.
        let failed = record.response_status.is_none_or(|s| s >= 500);
        lane.breaker.done(failed, probe);
        let result = AttemptResult {
            status: record.response_status.and_then(|s| u16::try_from(s).ok()),
            retry_after,
        };
        let verdict = self.retry.after_attempt(
            job.attempts as u32 + 1,
            job.routed_at,
            result,
            Utc::now(),
            rand::random(),
        );
        let mut gone = false;
        match verdict {
            Verdict::Delivered => record.status = DeliveryStatus::Delivered,
            Verdict::RetryAt(at) => {
                record.status = DeliveryStatus::Failed;
                record.next_attempt_at = Some(at);
            }
            Verdict::Dead(reason) => {
                record.status = DeliveryStatus::Dead;
                record.error = Some(join(record.error.take(), &reason));
            }
            Verdict::Gone => {
                record.status = DeliveryStatus::Dead;
                record.error = Some(join(
                    record.error.take(),
                    "endpoint gone (410); it is now disabled",
                ));
                gone = true;
            }
        }
        Outcome::Attempted(record, gone)
    }
}

fn join(error: Option<String>, reason: &str) -> String {
    match error {
        Some(e) => format!("{e}; {reason}"),
        None => reason.to_string(),
    }
}
