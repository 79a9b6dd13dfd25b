//! Queue names and declarations. Every queue is a durable quorum queue (replicated,
//! fsynced before a publisher confirm); delivery shards also use single active
//! consumer so exactly one dispatcher works an endpoint's deliveries at a time.

use lapin::Channel;
use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable};

/// The names of one installation's queues, all under one prefix.
#[derive(Debug, Clone)]
pub struct Topology {
    prefix: String,
    shards: u16,
}

impl Topology {
    pub fn new(prefix: impl Into<String>, shards: u16) -> Self {
        Self {
            prefix: prefix.into(),
            shards: shards.max(1),
        }
    }

    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// Where the gateway publishes accepted events.
    pub fn ingest_queue(&self) -> String {
        format!("{}.ingest", self.prefix)
    }

    /// Where the router publishes deliveries of endpoints hashed to `shard`.
    pub fn delivery_queue(&self, shard: u16) -> String {
        format!("{}.delivery.{shard}", self.prefix)
    }

    /// Where rejected (unparseable) messages go instead of being dropped.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead", self.prefix)
    }

    fn quorum_args(&self, single_active_consumer: bool) -> FieldTable {
        let mut args = FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        // Rejected messages go to the dead-letter queue through the default exchange.
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(self.dead_letter_queue().into()),
        );
        if single_active_consumer {
            args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        }
        args
    }

    /// Declares every queue; idempotent, so each process does it at start.
    pub async fn declare(&self, channel: &Channel) -> lapin::Result<()> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let mut dead_args = FieldTable::default();
        dead_args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        channel
            .queue_declare(self.dead_letter_queue().into(), durable, dead_args)
            .await?;
        channel
            .queue_declare(self.ingest_queue().into(), durable, self.quorum_args(false))
            .await?;
        for shard in 0..self.shards {
            channel
                .queue_declare(
                    self.delivery_queue(shard).into(),
                    durable,
                    self.quorum_args(true),
                )
                .await?;
        }
        Ok(())
    }

    /// Deletes every queue (tests and uninstalls).
    pub async fn delete(&self, channel: &Channel) -> lapin::Result<()> {
        channel
            .queue_delete(self.ingest_queue().into(), QueueDeleteOptions::default())
            .await?;
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
