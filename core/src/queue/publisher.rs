//! A publisher that only reports success once the broker has confirmed the message
//! (for quorum queues: written to a majority of replicas). It reconnects on demand
//! after a broker failure and fails fast while the broker stays unreachable, so
//! callers can answer `503` quickly instead of hanging.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::Mutex;

use super::{Broker, Topology};
use crate::metrics;

/// After a failed connect, calls fail at once for about this long (jittered, so a
/// fleet of gateways does not reconnect in step) instead of retrying.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);
/// Covers trying every node of a three-node cluster (each has its own limit).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    #[error("message broker unavailable: {0}")]
    Unavailable(String),
    #[error("message broker refused the message")]
    Nacked,
    #[error("no queue for routing key {0}")]
    Unroutable(String),
}

/// Persistent JSON: how every hookrelay message is published.
pub fn persistent_json() -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2) // persistent
        .with_content_type("application/json".into())
}

/// Between half and one and a half times `pause`.
fn jittered(pause: Duration) -> Duration {
    pause.mul_f64(rand::random_range(0.5..1.5))
}

struct Link {
    connection: Connection,
    channel: Channel,
}

#[derive(Default)]
struct State {
    link: Option<Link>,
    /// When the last connect failed, and how long to pause after it.
    last_failure: Option<(Instant, Duration)>,
}

pub struct Publisher {
    broker: Broker,
    role: &'static str,
    topology: Topology,
    state: Mutex<State>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("role", &self.role)
            .finish()
    }
}

impl Publisher {
    /// Does not connect yet; the first publish (or `channel`) does.
    pub fn new(broker: Broker, role: &'static str, topology: Topology) -> Self {
        // Present from the start, so a rate over it is 0 rather than missing.
        ::metrics::counter!(metrics::PUBLISH_FAILURES, "role" => role).increment(0);
        Self {
            broker,
            role,
            topology,
            state: Mutex::new(State::default()),
        }
    }

    /// The nodes this publisher connects to, for other connections of the same process.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    async fn open(&self) -> lapin::Result<Link> {
        let connection = self.broker.connect(self.role).await?;
        self.topology.declare(&connection).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Link { connection, channel })
    }

    /// A live confirming channel, reconnecting if needed.
    pub async fn channel(&self) -> Result<Channel, PublishError> {
        let mut state = self.state.lock().await;
        if let Some(link) = &state.link {
            if link.connection.status().connected() && link.channel.status().connected() {
                return Ok(link.channel.clone());
            }
            state.link = None;
        }
        if state
            .last_failure
            .is_some_and(|(t, pause)| t.elapsed() < pause)
        {
            return Err(PublishError::Unavailable("reconnecting".into()));
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, self.open()).await {
            Ok(Ok(link)) => {
                let channel = link.channel.clone();
                state.link = Some(link);
                state.last_failure = None;
                Ok(channel)
            }
            Ok(Err(e)) => {
                state.last_failure = Some((Instant::now(), jittered(RECONNECT_PAUSE)));
                tracing::warn!(error = %e, role = self.role, "cannot connect to the message broker");
                Err(PublishError::Unavailable(e.to_string()))
            }
            Err(_) => {
                state.last_failure = Some((Instant::now(), jittered(RECONNECT_PAUSE)));
                Err(PublishError::Unavailable("connect timed out".into()))
            }
        }
    }

    /// A plain channel of its own on the publisher's connection, for reads such as
    /// queue depths (a refused passive declare closes only this channel).
    pub async fn side_channel(&self) -> Result<Channel, PublishError> {
        self.channel().await?;
        let state = self.state.lock().await;
        let link = state
            .link
            .as_ref()
            .ok_or_else(|| PublishError::Unavailable("reconnecting".into()))?;
        link.connection
            .create_channel()
            .await
            .map_err(|e| PublishError::Unavailable(e.to_string()))
    }

    async fn invalidate(&self) {
        self.state.lock().await.link = None;
    }

    /// Publishes persistent messages and waits until the broker confirmed all of them.
    /// Confirms are pipelined: every message is sent before the first is awaited.
    pub async fn publish_all(&self, messages: &[(String, Vec<u8>)]) -> Result<(), PublishError> {
        self.publish_with(messages, persistent_json()).await
    }

    /// Like `publish_all`, every message with these properties (headers, id).
    pub async fn publish_with(
        &self,
        messages: &[(String, Vec<u8>)],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        self.publish_each_with(messages, properties)
            .await
            .into_iter()
            .collect()
    }

    /// Publishes persistent messages (pipelined) and tells each one's own outcome,
    /// so one refused message does not fail the others.
    pub async fn publish_each(
        &self,
        messages: &[(String, Vec<u8>)],
    ) -> Vec<Result<(), PublishError>> {
        self.publish_each_with(messages, persistent_json()).await
    }

    async fn publish_each_with(
        &self,
        messages: &[(String, Vec<u8>)],
        properties: BasicProperties,
    ) -> Vec<Result<(), PublishError>> {
        if messages.is_empty() {
            return Vec::new();
        }
        let channel = match self.channel().await {
            Ok(c) => c,
            Err(e) => return vec![Err(e); messages.len()],
        };
        let started = Instant::now();
        let results = tokio::time::timeout(
            CONFIRM_TIMEOUT,
            Self::publish_on(&channel, messages, properties),
        )
        .await
        .unwrap_or_else(|_| {
            vec![Err(PublishError::Unavailable("confirm timed out".into())); messages.len()]
        });
        ::metrics::histogram!(metrics::PUBLISH_CONFIRM, "role" => self.role)
            .record(started.elapsed().as_secs_f64());
        let failed = results.iter().filter(|r| r.is_err()).count();
        if failed > 0 {
            ::metrics::counter!(metrics::PUBLISH_FAILURES, "role" => self.role)
                .increment(failed as u64);
        }
        // Any refusal starts the next publish on a new link: a connection that failed,
        // a queue gone (declared again on reconnect), or a channel a full quorum queue
        // keeps refusing (`reject-publish` state that outlives the cause).
        if results.iter().any(Result::is_err) {
            self.invalidate().await;
        }
        results
    }

    pub async fn publish(&self, routing_key: String, body: Vec<u8>) -> Result<(), PublishError> {
        self.publish_all(&[(routing_key, body)]).await
    }

    /// Publishes deliveries to their shards so they are sent at once (one message per
    /// shard). The caller has made them due soon in the database, so a failed publish
    /// is only logged: the scheduler sends them then.
    pub async fn send_now(&self, deliveries: &[crate::store::NewDelivery]) {
        let messages = super::delivery_messages(&self.topology, deliveries);
        if let Err(e) = self.publish_all(&messages).await {
            tracing::warn!(error = %e, count = deliveries.len(), "publish failed; the scheduler will send them");
        }
    }

    async fn publish_on(
        channel: &Channel,
        messages: &[(String, Vec<u8>)],
        properties: BasicProperties,
    ) -> Vec<Result<(), PublishError>> {
        let unavailable = |e: lapin::Error| PublishError::Unavailable(e.to_string());
        // `mandatory`: a message no queue takes comes back instead of vanishing.
        let options = BasicPublishOptions { mandatory: true, ..Default::default() };
        let mut confirms = Vec::with_capacity(messages.len());
        for (routing_key, body) in messages {
            match channel
                .basic_publish(
                    "".into(),
                    routing_key.as_str().into(),
                    options,
                    body,
                    properties.clone(),
                )
                .await
            {
                Ok(confirm) => confirms.push(confirm),
                // The channel is gone: this and every later message failed.
                Err(e) => {
                    let mut results: Vec<Result<(), PublishError>> =
                        Vec::with_capacity(messages.len());
                    let confirmed = join_all(confirms).await;
                    results.extend(
                        confirmed
                            .into_iter()
                            .zip(messages)
                            .map(|(c, (key, _))| judge(c, key)),
                    );
                    let error = unavailable(e);
                    results.resize(messages.len(), Err(error));
                    return results;
                }
            }
        }
        join_all(confirms)
            .await
            .into_iter()
            .zip(messages)
            .map(|(c, (key, _))| judge(c, key))
            .collect()
    }

    pub async fn close(&self) {
        if let Some(link) = self.state.lock().await.link.take() {
            // A connection the broker already dropped may never answer the close.
            let _ = tokio::time::timeout(
                CONNECT_TIMEOUT,
                link.connection.close(200, "shutdown".into()),
            )
            .await;
        }
    }
}

/// What the broker's answer to one publish means.
fn judge(confirmation: lapin::Result<Confirmation>, routing_key: &str) -> Result<(), PublishError> {
    match confirmation {
        Err(e) => Err(PublishError::Unavailable(e.to_string())),
        Ok(Confirmation::Ack(None)) => Ok(()),
        Ok(Confirmation::Ack(Some(_))) => Err(PublishError::Unroutable(routing_key.to_string())),
        Ok(Confirmation::Nack(_)) => Err(PublishError::Nacked),
        Ok(Confirmation::NotRequested) => Err(PublishError::Unavailable(
            "channel lost confirm mode".into(),
        )),
    }
}
