//! RabbitMQ: connections, the queue topology, message formats, a confirming
//! publisher and the access-change fanout.

pub mod access;
mod broker;
mod dead_letters;
mod messages;
mod publisher;
mod shards;
mod topology;

pub use broker::Broker;
pub use dead_letters::{
    DEAD_AT_HEADER, DeadLetter, DeadLetters, Pick, REASON_HEADER, Refusal, RequeueReport,
    SOURCE_HEADER,
};
pub use messages::{DeliveryMessage, IngestEvent, IngestMessage};
pub use publisher::{PublishError, Publisher, persistent_json};
pub use shards::{delivery_messages, lane_delivery_messages};
pub use topology::{DEFAULT_DELIVERY_LIMIT, IngestLane, Topology, amqp_code};
