//! Queue names and declarations. Every queue is a durable quorum queue (replicated,
//! fsynced before a publisher confirm); delivery shards also use single active
//! consumer so exactly one dispatcher works an endpoint's deliveries at a time.
//!
//! Every queue carries an explicit `x-delivery-limit`: RabbitMQ 4 gives quorum
//! queues a default of 20, after which a message is dead-lettered. Consumers hold
//! and retry on transient failures instead of requeueing, so a message's delivery
//! count only grows when a consumer really dies with it; the limit then isolates a
//! message that keeps killing its consumer. The dead-letter queue's own limit is
//! far higher, since the operator's tools read it by taking and returning messages.

use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};

/// Default `x-delivery-limit` of the ingest and shard queues.
pub const DEFAULT_DELIVERY_LIMIT: u32 = 20;
/// `x-delivery-limit` of the dead-letter queue: listing it takes and returns messages.
const DEAD_DELIVERY_LIMIT: i64 = 1_000_000;

/// The two ingest queues: a tenant's events go to the bulk lane only while it sends
/// far more than its share and others are sending too (the gateway's `lanes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestLane {
    Priority,
    Bulk,
}

/// The names of one installation's queues, all under one prefix.
#[derive(Debug, Clone)]
pub struct Topology {
    prefix: String,
    shards: u16,
    delivery_limit: u32,
    /// `x-quorum-initial-group-size`; `None` leaves it to the broker.
    replicas: Option<u8>,
}

impl Topology {
    pub fn new(prefix: impl Into<String>, shards: u16) -> Self {
        Self {
            prefix: prefix.into(),
            shards: shards.max(1),
            delivery_limit: DEFAULT_DELIVERY_LIMIT,
            replicas: None,
        }
    }

    /// The same queues with another `x-delivery-limit` (`HOOKRELAY_QUEUE_DELIVERY_LIMIT`).
    pub fn with_delivery_limit(mut self, limit: u32) -> Self {
        self.delivery_limit = limit.max(1);
        self
    }

    /// Each queue's replica count across a cluster (`HOOKRELAY_QUORUM_REPLICAS`),
    /// applied when a queue is first declared.
    pub fn with_replicas(mut self, replicas: Option<u8>) -> Self {
        self.replicas = replicas;
        self
    }

    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// The fanout exchange on which access changes reach every gateway.
    pub fn access_exchange(&self) -> String {
        format!("{}.access", self.prefix)
    }

    /// Where the gateway publishes accepted events (the priority lane).
    pub fn ingest_queue(&self) -> String {
        format!("{}.ingest", self.prefix)
    }

    /// The ingest queue of `lane`.
    pub fn ingest_lane(&self, lane: IngestLane) -> String {
        match lane {
            IngestLane::Priority => self.ingest_queue(),
            IngestLane::Bulk => format!("{}.ingest.bulk", self.prefix),
        }
    }

    /// Both ingest queues, the priority lane first.
    pub fn ingest_queues(&self) -> [String; 2] {
        [self.ingest_queue(), self.ingest_lane(IngestLane::Bulk)]
    }

    /// Where the router publishes deliveries of endpoints hashed to `shard`.
    pub fn delivery_queue(&self, shard: u16) -> String {
        format!("{}.delivery.{shard}", self.prefix)
    }

    /// The shard a delivery queue's name stands for, if it is one of ours.
    pub fn shard_of_queue(&self, queue: &str) -> Option<u16> {
        queue
            .strip_prefix(&self.prefix)?
            .strip_prefix(".delivery.")?
            .parse()
            .ok()
    }

    /// Where messages no consumer can handle go, with their reason, instead of being dropped.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead", self.prefix)
    }

    fn quorum_args(&self, single_active_consumer: bool) -> FieldTable {
        let mut args = FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        // Messages over the delivery limit go to the dead-letter queue.
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(self.dead_letter_queue().into()),
        );
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(self.delivery_limit)),
        );
        self.add_replicas(&mut args);
        if single_active_consumer {
            args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        }
        args
    }

    fn add_replicas(&self, args: &mut FieldTable) {
        if let Some(n) = self.replicas {
            args.insert(
                "x-quorum-initial-group-size".into(),
                AMQPValue::LongLongInt(i64::from(n)),
            );
        }
    }

    fn dead_args(&self) -> FieldTable {
        let mut args = FieldTable::default();
        self.add_replicas(&mut args);
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(DEAD_DELIVERY_LIMIT),
        );
        args
    }

    /// Declares every queue; idempotent, so each process does it at start. A queue
    /// that already exists with other arguments (declared by an older version) is
    /// kept as it is, with a warning: the broker refuses to change a queue's
    /// arguments, and a policy (`delivery-limit`) can set the limit on it instead.
    pub async fn declare(&self, connection: &Connection) -> lapin::Result<()> {
        let mut queues = vec![(self.dead_letter_queue(), self.dead_args())];
        queues.extend(
            self.ingest_queues()
                .map(|name| (name, self.quorum_args(false))),
        );
        queues.extend((0..self.shards).map(|k| (self.delivery_queue(k), self.quorum_args(true))));
        let mut channel = connection.create_channel().await?;
        for (name, args) in queues {
            let durable = QueueDeclareOptions { durable: true, ..Default::default() };
            match channel
                .queue_declare(name.as_str().into(), durable, args)
                .await
            {
                Ok(_) => {}
                Err(e) if is_precondition_failed(&e) => {
                    tracing::warn!(queue = %name, "queue exists with other arguments (an older version declared it); keeping it: set its delivery limit with a policy");
                    // A refused declare closes the channel.
                    channel = connection.create_channel().await?;
                    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
                    channel
                        .queue_declare(name.as_str().into(), passive, FieldTable::default())
                        .await?;
                }
                Err(e) => return Err(e),
            }
        }
        let _ = channel.close(200, "declared".into()).await;
        super::access::declare(connection, self).await
    }

    /// Messages ready in each queue: the ingest queues, every shard queue in order,
    /// then the dead-letter queue.
    pub async fn depths(&self, channel: &Channel) -> lapin::Result<Vec<(String, u32)>> {
        let mut names = self.ingest_queues().to_vec();
        names.extend((0..self.shards).map(|k| self.delivery_queue(k)));
        names.push(self.dead_letter_queue());
        let passive = QueueDeclareOptions { passive: true, ..Default::default() };
        let mut depths = Vec::with_capacity(names.len());
        for name in names {
            let q = channel
                .queue_declare(name.as_str().into(), passive, FieldTable::default())
                .await?;
            depths.push((name, q.message_count()));
        }
        Ok(depths)
    }

    /// Deletes every queue and the access exchange (tests and uninstalls).
    pub async fn delete(&self, channel: &Channel) -> lapin::Result<()> {
        channel
            .exchange_delete(
                self.access_exchange().as_str().into(),
                lapin::options::ExchangeDeleteOptions::default(),
            )
            .await?;
        for queue in self.ingest_queues() {
            channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
        channel
            .queue_delete(
                self.dead_letter_queue().into(),
                QueueDeleteOptions::default(),
            )
            .await?;
        for shard in 0..self.shards {
            channel
                .queue_delete(
                    self.delivery_queue(shard).into(),
                    QueueDeleteOptions::default(),
                )
                .await?;
        }
        Ok(())
    }
}

/// AMQP 406 PRECONDITION_FAILED: a declare with arguments that differ from the queue's.
pub(crate) fn is_precondition_failed(e: &lapin::Error) -> bool {
    amqp_code(e) == Some(406)
}

/// The AMQP reply code of an error the broker sent (404 NOT_FOUND, 406, ...).
pub fn amqp_code(e: &lapin::Error) -> Option<u16> {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(amqp) => Some(amqp.get_id()),
        _ => None,
    }
}
impl crate::Config {
    /// The queues of this installation, as configured.
    pub fn topology(&self) -> Topology {
        Topology::new(self.broker.queue_prefix.clone(), self.broker.shards)
            .with_delivery_limit(self.broker.queue_delivery_limit)
            .with_replicas(self.broker.quorum_replicas)
    }
}
