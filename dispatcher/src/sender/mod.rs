//! The sender: one consumer per delivery shard. Each message names deliveries of
//! that shard; the sender claims and loads them in one statement, sends each one
//! it claimed (signed), has every attempt recorded, and acks the message
//! only after that. A message no consumer can handle is dead-lettered with its
//! reason, never requeued in a loop.
//!
//! One file per job: `consume` (the shard's consumer and one message's life),
//! `claims` (claiming a message's deliveries), `handoff` (slow requests let go of
//! their message), `attempt` (one request through its endpoint's gate and the
//! dispatcher's fair share of request slots), `conclude` (storing what became of a
//! message's deliveries), `notices` (the operational events they raise),
//! `records` (the attempt records), `local` (deliveries the router hands
//! over in memory), `batcher` (the batching task claims and
//! records share), `measure` (the sender's metrics).

mod attempt;
mod batcher;
mod claims;
mod conclude;
mod consume;
mod handoff;
mod local;
mod measure;
mod notices;
mod records;

use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::Store;
use hookrelay_core::crypto::Cipher;
use hookrelay_core::operational::Notices;
use hookrelay_core::queue::{Publisher, Topology};
use hookrelay_core::retry::RetryPolicy;
use hookrelay_core::store::{AttemptRecord, SendJob};
use hookrelay_signature::Secret;
use tokio::sync::{Notify, Semaphore};

use crate::admission::{Admission, EndpointLimits, Gate};
use crate::client::WebhookClient;
use crate::reach::Profiles;
use crate::signing_keys::SigningKeys;
pub(crate) use claims::Claims;
pub(crate) use local::LocalShards;
pub(crate) use measure::{Outcomes, SenderMetrics};
pub(crate) use records::Records;

/// A claim's first length: far beyond a fast request, short enough that the
/// deliveries of a sender killed mid-request come back within a minute. A request
/// that turns slow has its claim extended with its lease (`handoff`).
pub(crate) const CLAIM: Duration = Duration::from_secs(30);

/// What the sender did with one delivery of a message.
pub(crate) enum Decision {
    /// Sent, or refused before sending (never unsigned, blocked address).
    Attempted {
        record: AttemptRecord,
        /// The endpoint answered `410 Gone`: it is disabled.
        endpoint_gone: bool,
    },
    /// Not sent now (rate limit, full in-flight cap, open breaker): due again after `wait`,
    /// plus `spacing` per place in line among this endpoint's parked deliveries.
    Parked { wait: Duration, spacing: Duration },
}

pub struct Sender {
    pub store: Store,
    pub retry: RetryPolicy,
    /// Told when a retry is scheduled, so the local scheduler can wake in time.
    pub scheduler_wake: Arc<Notify>,
    pub cipher: Cipher,
    pub client: WebhookClient,
    /// Dead-letters messages the sender cannot handle.
    pub publisher: Arc<Publisher>,
    /// The longest any request may take (the largest timeout an endpoint can have).
    pub max_request_time: Duration,
    /// How long a stopped shard consumer waits for its messages' handlers.
    pub drain_limit: Duration,
    /// Stores attempts, batched with other messages' records.
    pub records: Records,
    /// Claims each message's deliveries, batched with other messages' claims.
    pub claims: Claims,
    pub topology: Topology,
    /// Every endpoint's gate: rate limit, in-flight cap, breaker.
    pub admission: Admission,
    pub signing_keys: SigningKeys,
    /// Endpoints' headers, authentication and TLS clients.
    pub profiles: Profiles,
    /// Endpoints failing for this long are disabled.
    pub disable_failing_after: Duration,
    /// Consecutive failures that open a breaker (the failing levels' measure).
    pub opens_after: u32,
    /// Dead deliveries of a tenant in a window that raise `dead_letters.growing`.
    pub dead_letters_growing: u32,
    /// Raises operational events.
    pub notices: Notices,
    /// A head of an ordered endpoint published here is due again this long
    /// after, should its message be lost.
    pub unsent_after: Duration,
    /// Bounds concurrent outgoing requests across all shards of this process.
    pub permits: Arc<Semaphore>,
    /// Of those, what retries may hold (`HOOKRELAY_FIRST_ATTEMPT_SHARE` is kept
    /// for first attempts).
    pub retry_permits: Arc<Semaphore>,
    pub prefetch: u16,
    /// What this process holds loaded at once: deliveries (before they are
    /// claimed) and payload bytes (before the large ones are read).
    pub budget: LoadBudget,
    pub(crate) metrics: SenderMetrics,
    /// The shards consumed here, which the router hands deliveries to directly.
    pub(crate) local: LocalShards,
}

/// Where a batch of deliveries came from.
pub(crate) enum Source {
    /// A shard message, settled once the batch is done.
    Broker {
        message: Box<lapin::message::Delivery>,
        queue: Arc<str>,
    },
    /// Handed over by this process's router: nothing to settle.
    Local,
}

/// Bounds on loaded work, so memory follows the budget, not the queues' depth.
pub struct LoadBudget {
    deliveries: Arc<Semaphore>,
    max_deliveries: usize,
    bytes: Arc<Semaphore>,
    max_bytes: usize,
}

impl LoadBudget {
    pub fn new(max_deliveries: usize, max_bytes: usize) -> Self {
        let max_deliveries = max_deliveries.clamp(1, u32::MAX as usize);
        let max_bytes = max_bytes.clamp(1, u32::MAX as usize);
        Self {
            deliveries: Arc::new(Semaphore::new(max_deliveries)),
            max_deliveries,
            bytes: Arc::new(Semaphore::new(max_bytes)),
            max_bytes,
        }
    }

    /// Room for `n` deliveries (all of the budget if `n` is larger).
    async fn deliveries(&self, n: usize) -> tokio::sync::OwnedSemaphorePermit {
        self.deliveries
            .clone()
            .acquire_many_owned(n.clamp(1, self.max_deliveries) as u32)
            .await
            .expect("the budget is never closed")
    }

    /// Room for `n` deliveries if there is some now.
    fn try_deliveries(&self, n: usize) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.deliveries
            .clone()
            .try_acquire_many_owned(n.clamp(1, self.max_deliveries) as u32)
            .ok()
    }

    /// Room for `n` payload bytes (all of the budget if `n` is larger).
    async fn bytes(&self, n: usize) -> tokio::sync::OwnedSemaphorePermit {
        self.bytes
            .clone()
            .acquire_many_owned(n.min(self.max_bytes) as u32)
            .await
            .expect("the budget is never closed")
    }
}

impl Sender {
    /// An endpoint's secret from its ciphertext; `None` when it cannot be read.
    fn secret(&self, ciphertext: &[u8], endpoint: uuid::Uuid) -> Option<Secret> {
        self.cipher
            .decrypt(ciphertext, endpoint.as_bytes())
            .ok()
            .and_then(|key| Secret::from_bytes(key).ok())
    }

    fn gate_of(&self, job: &SendJob) -> Arc<Gate> {
        let limits = EndpointLimits::stored(
            job.rate_limit_per_second,
            job.rate_limit_burst,
            job.max_in_flight,
        );
        self.admission.gate(job.endpoint_id, limits)
    }
}
