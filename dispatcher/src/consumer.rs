//! Opening and cancelling a queue consumer, the same for the router, the shard
//! senders and the orphan mover: a channel of its own with the consumer's
//! prefetch, a tag naming its role, and the stream of messages.

use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, Consumer};
use uuid::Uuid;

pub struct QueueConsumer {
    pub channel: Channel,
    pub stream: Consumer,
    tag: String,
}

impl QueueConsumer {
    /// Consumes `queue` on a new channel of `connection`, `prefetch` messages
    /// unacked at most; `role` starts the consumer tag ("router", "sender-3").
    pub async fn open(
        connection: &Connection,
        queue: &str,
        prefetch: u16,
        role: &str,
    ) -> lapin::Result<Self> {
        let channel = connection.create_channel().await?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        let tag = format!("{role}-{}", Uuid::new_v4());
        let stream = channel
            .basic_consume(
                queue.into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Self { channel, stream, tag })
    }

    /// Stops deliveries to this consumer; what it holds unacked stays its own.
    pub async fn cancel(&self) -> lapin::Result<()> {
        self.channel
            .basic_cancel(self.tag.as_str().into(), BasicCancelOptions::default())
            .await
    }
}
