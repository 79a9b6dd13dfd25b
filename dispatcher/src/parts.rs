//! Building the dispatcher's parts from its settings: the publishers, the router,
//! the sender with its claim and record batchers, and the maintenance tasks
//! (scheduler, job worker, gauges, housekeeping). Running them is `lib.rs`'s job.

use std::sync::Arc;

use hookrelay_core::crypto::Cipher;
use hookrelay_core::queue::{self, Publisher};
use hookrelay_core::{Config, Store};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::DispatchError;
use crate::admission::{Admission, share_of};
use crate::client::WebhookClient;
use crate::jobs::JobWorker;
use crate::reach::Profiles;
use crate::reach::egress::{self, ProxyAddr};
use crate::router::Router;
use crate::scheduler::Scheduler;
use crate::sender::{self, Claims, LoadBudget, Records, Sender, SenderMetrics};
use crate::tasks::Tasks;
use hookrelay_core::operational::Notices;

/// What consumes and sends, and what it needs to stop cleanly.
pub struct Parts {
    pub router: Arc<Router>,
    pub sender: Arc<Sender>,
    /// Publishes deliveries, retries and dead letters (a broker connection of its own).
    pub publisher: Arc<Publisher>,
    /// Publishes the bulk ingest lane's deliveries (another connection).
    pub bulk_publisher: Arc<Publisher>,
    /// Wakes the scheduler when a retry is set.
    pub scheduler_wake: Arc<Notify>,
    /// Stops the claim and record batchers: only once no sender needs them.
    pub batchers_stop: CancellationToken,
    pub batchers: Tasks,
}

impl Parts {
    pub fn build(
        config: &Config,
        store: &Store,
        broker: &queue::Broker,
    ) -> Result<Self, DispatchError> {
        let c = config;
        let topology = c.topology();
        let publisher = Arc::new(Publisher::new(
            broker.clone(),
            "dispatcher-publisher",
            topology.clone(),
        ));
        let bulk_publisher = Arc::new(Publisher::new(
            broker.clone(),
            "dispatcher-bulk-publisher",
            topology.clone(),
        ));
        let scheduler_wake = Arc::new(Notify::new());
        let batchers_stop = CancellationToken::new();
        let mut batchers = Tasks::default();
        let slots = c.delivery.max_in_flight;
        let egress = match &c.delivery.egress_proxy {
            Some(url) => {
                let proxy = ProxyAddr::parse(url.expose()).map_err(DispatchError::Egress)?;
                let relay = egress::start(proxy, Arc::new(c.target_policy()))
                    .map_err(|e| DispatchError::Egress(format!("egress relay: {e}")))?;
                Some(relay.url)
            }
            None => None,
        };
        let cipher = Cipher::with_keys(&c.security.master_keys());
        let sender = Arc::new(Sender {
            store: store.clone(),
            retry: c.retry.policy(),
            scheduler_wake: scheduler_wake.clone(),
            profiles: Profiles::new(store.clone(), cipher.clone()),
            cipher,
            client: WebhookClient::new(c.delivery.timeout, c.target_policy(), egress)?,
            publisher: publisher.clone(),
            max_request_time: c.delivery.timeout.max(c.delivery.max_endpoint_timeout),
            drain_limit: c.dispatcher.shutdown_grace,
            records: Records::spawn(store.clone(), batchers_stop.clone(), &mut batchers),
            claims: Claims::spawn(
                store.clone(),
                sender::CLAIM,
                batchers_stop.clone(),
                &mut batchers,
            ),
            admission: Admission::new(
                c.breaker.clone(),
                c.delivery.endpoint_max_slow_requests,
                share_of(slots, c.delivery.endpoint_slot_share),
                share_of(slots, c.delivery.tenant_slot_share),
            ),
            signing_keys: Default::default(),
            disable_failing_after: c.delivery.disable_failing_after,
            opens_after: c.breaker.consecutive_failures,
            dead_letters_growing: c.delivery.dead_letters_growing,
            notices: Notices::new(
                store.clone(),
                publisher.clone(),
                c.delivery.operations_tenant,
            ),
            unsent_after: c.delivery.unsent_after,
            topology: topology.clone(),
            permits: Arc::new(Semaphore::new(slots)),
            retry_permits: Arc::new(Semaphore::new(retry_slots(
                slots,
                c.delivery.first_attempt_share,
            ))),
            prefetch: c.broker.delivery_prefetch,
            // Loaded deliveries: a few rounds of requests' worth, so slots never idle.
            budget: LoadBudget::new((4 * slots).max(2048), c.delivery.payload_budget_bytes),
            metrics: SenderMetrics::new(),
            local: Default::default(),
        });
        let router = Arc::new(Router {
            store: store.clone(),
            sender: sender.clone(),
            publisher: publisher.clone(),
            bulk_publisher: bulk_publisher.clone(),
            prefetch: c.broker.ingest_prefetch,
            unsent_after: c.delivery.unsent_after,
        });
        Ok(Self {
            router,
            sender,
            publisher,
            bulk_publisher,
            scheduler_wake,
            batchers_stop,
            batchers,
        })
    }

    /// Starts the scheduler, the job worker, the gauges and housekeeping; `stop`
    /// ends them all.
    pub fn maintenance(
        &self,
        config: &Config,
        broker: &queue::Broker,
        stop: &CancellationToken,
    ) -> Tasks {
        let store = &self.sender.store;
        let mut tasks = Tasks::default();
        let jobs = JobWorker {
            store: store.clone(),
            scheduler_wake: self.scheduler_wake.clone(),
        };
        tasks.spawn("job worker", jobs.run(stop.clone()));
        let scheduler = Scheduler {
            store: store.clone(),
            publisher: self.publisher.clone(),
            wake: self.scheduler_wake.clone(),
            lease: config.delivery.unsent_after,
        };
        tasks.spawn("scheduler", scheduler.run(stop.clone()));
        let gauges = hookrelay_core::gauges::sample_until(
            store.clone(),
            config.topology(),
            broker.clone(),
            stop.clone(),
        );
        tasks.spawn("gauges", gauges);
        let chores = crate::housekeeping::run(
            self.sender.clone(),
            self.publisher.clone(),
            broker.clone(),
            config.retention.clone(),
            stop.clone(),
        );
        tasks.spawn("housekeeping", chores);
        tasks
    }
}

/// The request slots retries may hold: all but the first attempts' share, at least one.
fn retry_slots(slots: usize, first_attempt_share: f64) -> usize {
    let kept = (slots as f64 * first_attempt_share).ceil() as usize;
    slots.saturating_sub(kept).max(1)
}
