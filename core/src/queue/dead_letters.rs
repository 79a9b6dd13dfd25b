//! The broker's dead-letter queue (`<prefix>.dead`): messages no consumer could
//! handle, each kept with its original body, the queue it came from and why
//! (`x-hookrelay-reason`), and the operator's tools over it: list, show, requeue
//! (re-validated first) and purge. Nothing leaves it except by requeue or purge.
//!
//! Listing takes messages without acking them and closes the channel, which
//! returns them in order (the queue has no single active consumer, so `basic.get`
//! works on it); the queue's high delivery limit (see `topology`) keeps
//! that from ever dead-lettering them again.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};
use serde::Serialize;
use uuid::Uuid;

use super::{DeliveryMessage, IngestMessage, PublishError, Publisher, Topology};
use crate::ids::new_id;
use crate::store::Store;

/// Why the message was dead-lettered.
pub const REASON_HEADER: &str = "x-hookrelay-reason";
/// The queue it was consumed from.
pub const SOURCE_HEADER: &str = "x-hookrelay-source";
/// When (unix seconds).
pub const DEAD_AT_HEADER: &str = "x-hookrelay-dead-at";

/// Most messages one listing or requeue walks through.
pub const MAX_SCAN: usize = 100_000;

impl Publisher {
    /// Moves a message to the dead-letter queue with its original body, the queue
    /// it came from and the reason. Confirmed like every publish: the caller acks
    /// the original only after this returns `Ok`.
    pub async fn dead_letter(
        &self,
        source: &str,
        body: &[u8],
        reason: &str,
    ) -> Result<(), PublishError> {
        let mut headers = FieldTable::default();
        let reason: String = reason.chars().take(2000).collect();
        headers.insert(REASON_HEADER.into(), AMQPValue::LongString(reason.into()));
        headers.insert(SOURCE_HEADER.into(), AMQPValue::LongString(source.into()));
        headers.insert(
            DEAD_AT_HEADER.into(),
            AMQPValue::Timestamp(Utc::now().timestamp().max(0) as u64),
        );
        let properties = super::publisher::persistent_json()
            .with_message_id(new_id().to_string().into())
            .with_headers(headers);
        self.publish_with(
            &[(self.topology().dead_letter_queue(), body.to_vec())],
            properties,
        )
        .await
    }
}

/// One message in the dead-letter queue.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    /// The message id hookrelay gave it; `pos-N` (its place in the queue) for a
    /// message that came without one.
    pub id: String,
    /// The queue it came from, when known.
    pub source: Option<String>,
    pub reason: String,
    pub dead_at: Option<DateTime<Utc>>,
    /// Body size in bytes.
    pub bytes: usize,
    #[serde(skip)]
    pub body: Vec<u8>,
}

impl DeadLetter {
    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn read(position: usize, message: &lapin::message::Delivery) -> Self {
        let props = &message.properties;
        let headers = props.headers().as_ref();
        let text = |name: &str| match headers.and_then(|h| h.inner().get(name)) {
            Some(AMQPValue::LongString(s)) => Some(s.to_string()),
            Some(AMQPValue::ShortString(s)) => Some(s.to_string()),
            _ => None,
        };
        // Messages the broker dead-lettered itself (delivery limit) say so in `x-death`.
        let death = match headers.and_then(|h| h.inner().get("x-death")) {
            Some(AMQPValue::FieldArray(a)) => match a.as_slice().first() {
                Some(AMQPValue::FieldTable(t)) => Some(t.clone()),
                _ => None,
            },
            _ => None,
        };
        let death_text = |name: &str| match death.as_ref().and_then(|t| t.inner().get(name)) {
            Some(AMQPValue::LongString(s)) => Some(s.to_string()),
            Some(AMQPValue::ShortString(s)) => Some(s.to_string()),
            _ => None,
        };
        let reason = text(REASON_HEADER).unwrap_or_else(|| match death_text("reason").as_deref() {
            Some("delivery_limit") => {
                "redelivered past the queue's delivery limit (its consumer kept failing)".into()
            }
            Some(r) => format!("dead-lettered by the broker ({r})"),
            None => "no reason recorded".into(),
        });
        let dead_at = match headers.and_then(|h| h.inner().get(DEAD_AT_HEADER)) {
            Some(AMQPValue::Timestamp(t)) => DateTime::from_timestamp(*t as i64, 0),
            _ => None,
        };
        Self {
            id: props
                .message_id()
                .as_ref()
                .map_or_else(|| format!("pos-{position}"), |id| id.to_string()),
            source: text(SOURCE_HEADER).or_else(|| death_text("queue")),
            reason,
            dead_at,
            bytes: message.data.len(),
            body: message.data.clone(),
        }
    }
}

/// What a requeue did.
#[derive(Debug, Default, Clone, Serialize, utoipa::ToSchema)]
pub struct RequeueReport {
    pub requeued: Vec<String>,
    /// Messages that failed validation again: still in the queue, with why.
    pub refused: Vec<Refusal>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Refusal {
    pub id: String,
    pub reason: String,
}

/// Which messages an operation applies to.
#[derive(Debug, Clone)]
pub enum Pick {
    All,
    Ids(Vec<String>),
}

impl Pick {
    fn matches(&self, letter: &DeadLetter) -> bool {
        match self {
            Self::All => true,
            Self::Ids(ids) => ids.contains(&letter.id),
        }
    }
}

/// The operator's handle on the dead-letter queue: on a connection of its own
/// (the command line), or on the process's publisher connection (the API and the
/// console, which read it often); each use takes a channel of its own.
pub struct DeadLetters {
    source: Source,
    topology: Topology,
}

enum Source {
    Own(Box<Connection>),
    Shared(Arc<Publisher>),
}

impl DeadLetters {
    pub async fn open(broker: &super::Broker, topology: Topology) -> lapin::Result<Self> {
        let connection = broker.connect("dead-letters").await?;
        Ok(Self {
            source: Source::Own(Box::new(connection)),
            topology,
        })
    }

    /// On `publisher`'s connection, for its topology.
    pub fn shared(publisher: Arc<Publisher>) -> Self {
        let topology = publisher.topology().clone();
        Self { source: Source::Shared(publisher), topology }
    }

    async fn channel(&self) -> lapin::Result<Channel> {
        match &self.source {
            Source::Own(connection) => connection.create_channel().await,
            Source::Shared(publisher) => publisher
                .side_channel()
                .await
                .map_err(|e| std::io::Error::other(e.to_string()).into()),
        }
    }

    /// Messages in the queue (0 when it does not exist yet).
    pub async fn count(&self) -> lapin::Result<u32> {
        let channel = self.channel().await?;
        let passive = QueueDeclareOptions { passive: true, ..Default::default() };
        let result = channel
            .queue_declare(
                self.topology.dead_letter_queue().as_str().into(),
                passive,
                FieldTable::default(),
            )
            .await;
        match result {
            Ok(q) => {
                let _ = channel.close(200, "counted".into()).await;
                Ok(q.message_count())
            }
            Err(e) if super::topology::amqp_code(&e) == Some(404) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// The first `limit` messages, oldest first, left in the queue.
    pub async fn list(&self, limit: usize) -> lapin::Result<Vec<DeadLetter>> {
        let mut scan = self.scan().await?;
        let mut seen = Vec::new();
        while seen.len() < limit {
            let Some((letter, _)) = scan.next().await? else {
                break;
            };
            seen.push(letter);
        }
        scan.finish().await;
        Ok(seen)
    }

    /// The newest message among the first `limit` (the newest of all when the
    /// queue holds no more than that).
    pub async fn latest(&self, limit: usize) -> lapin::Result<Option<DeadLetter>> {
        let mut scan = self.scan().await?;
        let mut last = None;
        for _ in 0..limit {
            let Some((letter, _)) = scan.next().await? else {
                break;
            };
            last = Some(letter);
        }
        scan.finish().await;
        Ok(last)
    }

    pub async fn find(&self, id: &str) -> lapin::Result<Option<DeadLetter>> {
        let mut scan = self.scan().await?;
        let mut found = None;
        while let Some((letter, _)) = scan.next().await? {
            if letter.id == id {
                found = Some(letter);
                break;
            }
        }
        scan.finish().await;
        Ok(found)
    }

    /// Removes the picked messages for good; returns their ids.
    pub async fn purge(&self, pick: &Pick) -> lapin::Result<Vec<String>> {
        let mut scan = self.scan().await?;
        let mut purged = Vec::new();
        let result = async {
            while let Some((letter, acker)) = scan.next().await? {
                if pick.matches(&letter) {
                    scan.remove(&acker).await?;
                    purged.push(letter.id);
                }
            }
            Ok(())
        }
        .await;
        scan.finish().await;
        result.map(|()| purged)
    }

    /// Puts the picked messages back on their queue after checking them again as
    /// their consumer would (the body parses, its tenant or deliveries exist);
    /// a message that fails stays here, and the report says why. Deliveries go to
    /// their endpoint's shard under today's shard count.
    pub async fn requeue(
        &self,
        pick: &Pick,
        store: &Store,
        publisher: &Publisher,
    ) -> lapin::Result<RequeueReport> {
        let mut scan = self.scan().await?;
        let mut report = RequeueReport::default();
        let result = async {
            while let Some((letter, acker)) = scan.next().await? {
                if !pick.matches(&letter) {
                    continue;
                }
                match requeue_one(&self.topology, &letter, store, publisher).await {
                    Ok(()) => {
                        scan.remove(&acker).await?;
                        report.requeued.push(letter.id);
                    }
                    Err(reason) => report.refused.push(Refusal { id: letter.id, reason }),
                }
            }
            Ok(())
        }
        .await;
        scan.finish().await;
        result.map(|()| report)
    }

    async fn scan(&self) -> lapin::Result<Scan<'_>> {
        Ok(Scan {
            owner: self,
            before: self.count().await?,
            removed: 0,
            channel: self.channel().await?,
            queue: self.topology.dead_letter_queue(),
            position: 0,
        })
    }
}

/// Takes the queue's messages one by one (up to `MAX_SCAN`) without acking them;
/// `finish` returns every one not acked, in order, by closing the channel, and
/// waits until the broker has them back, so the next command sees them.
struct Scan<'a> {
    owner: &'a DeadLetters,
    before: u32,
    removed: u32,
    channel: Channel,
    queue: String,
    position: usize,
}

impl Scan<'_> {
    async fn remove(&mut self, acker: &lapin::Acker) -> lapin::Result<()> {
        acker.ack(BasicAckOptions::default()).await?;
        self.removed += 1;
        Ok(())
    }

    async fn next(&mut self) -> lapin::Result<Option<(DeadLetter, lapin::Acker)>> {
        if self.position >= MAX_SCAN {
            return Ok(None);
        }
        let got = match self
            .channel
            .basic_get(
                self.queue.as_str().into(),
                BasicGetOptions { no_ack: false },
            )
            .await
        {
            Ok(got) => got,
            Err(e) if super::topology::amqp_code(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(message) = got else { return Ok(None) };
        let letter = DeadLetter::read(self.position, &message.delivery);
        self.position += 1;
        Ok(Some((letter, message.delivery.acker)))
    }

    async fn finish(self) {
        let _ = self.channel.close(200, "scanned".into()).await;
        let back = self.before.saturating_sub(self.removed);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
        while tokio::time::Instant::now() < deadline {
            match self.owner.count().await {
                Ok(n) if n < back => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                _ => return,
            }
        }
    }
}

async fn requeue_one(
    topology: &Topology,
    letter: &DeadLetter,
    store: &Store,
    publisher: &Publisher,
) -> Result<(), String> {
    let source = letter
        .source
        .as_deref()
        .ok_or("the message does not say which queue it came from")?;
    if topology.ingest_queues().iter().any(|q| q == source) {
        let message: IngestMessage = serde_json::from_slice(&letter.body)
            .map_err(|e| format!("not an ingest message: {e}"))?;
        let tenant = store
            .tenant_exists(message.tenant_id)
            .await
            .map_err(|e| format!("cannot check the tenant: {e}"))?;
        if !tenant {
            return Err(format!("tenant {} does not exist", message.tenant_id));
        }
        return publisher
            .publish(source.to_string(), letter.body.clone())
            .await
            .map_err(|e| e.to_string());
    }
    if topology.shard_of_queue(source).is_some() {
        let message: DeliveryMessage = serde_json::from_slice(&letter.body)
            .map_err(|e| format!("not a delivery message: {e}"))?;
        let ids: Vec<Uuid> = message.deliveries;
        let known = store
            .delivery_endpoints(&ids)
            .await
            .map_err(|e| format!("cannot look the deliveries up: {e}"))?;
        if known.is_empty() {
            return Err("none of its deliveries exist".into());
        }
        if known.len() < ids.len() {
            tracing::warn!(id = %letter.id, unknown = ids.len() - known.len(), "requeue leaves out deliveries that no longer exist");
        }
        let messages = super::delivery_messages(topology, &known);
        return publisher
            .publish_all(&messages)
            .await
            .map_err(|e| e.to_string());
    }
    Err(format!("{source} is not one of this installation's queues"))
}
