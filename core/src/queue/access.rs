//! Access changes on a broker fanout exchange: a revoked key, a deleted tenant or
//! a tenant's new quotas, announced by the process that made the change (after its
//! commit) and heard by every gateway, so each refuses or applies it within
//! moments, even while it cannot reach PostgreSQL. Each gateway listens on a queue
//! of its own (exclusive, gone with its connection); one that was disconnected may
//! have missed messages, so it reloads everything when it (re)connects, and the
//! periodic reload stays the backstop.

use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ExchangeKind};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Broker, PublishError, Publisher, Topology, persistent_json};

/// One change of who may do what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccessChange {
    /// An API key was revoked; `hash` is its SHA-256, hex.
    KeyRevoked { hash: String },
    /// A tenant was deleted: it is not found from now on.
    TenantDeleted { tenant: Uuid },
    /// A tenant's own settings (quotas) changed: read it again.
    TenantChanged { tenant: Uuid },
}

impl AccessChange {
    pub fn key_revoked(hash: &[u8]) -> Self {
        Self::KeyRevoked {
            hash: hash.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    /// The revoked key's hash, if this is a revocation with a well-formed one.
    pub fn revoked_hash(&self) -> Option<[u8; 32]> {
        let Self::KeyRevoked { hash } = self else {
            return None;
        };
        if hash.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hash.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(out)
    }
}

/// Declares the fanout exchange (durable; idempotent).
pub async fn declare(connection: &Connection, topology: &Topology) -> lapin::Result<()> {
    let channel = connection.create_channel().await?;
    channel
        .exchange_declare(
            topology.access_exchange().as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions { durable: true, ..Default::default() },
            FieldTable::default(),
        )
        .await?;
    let _ = channel.close(200, "declared".into()).await;
    Ok(())
}

/// Tells every gateway, waiting for the broker's confirm. A change that cannot be
/// announced is logged: other gateways then apply it at their next reload.
pub async fn announce(publisher: &Publisher, change: &AccessChange) {
    if let Err(e) = try_announce(publisher, change).await {
        tracing::warn!(error = %e, ?change, "cannot announce an access change; other gateways apply it at their next reload");
    }
}

async fn try_announce(publisher: &Publisher, change: &AccessChange) -> Result<(), PublishError> {
    let unavailable = |e: lapin::Error| PublishError::Unavailable(e.to_string());
    let body = serde_json::to_vec(change).map_err(|e| PublishError::Unavailable(e.to_string()))?;
    let channel = publisher.channel().await?;
    let confirm = channel
        .basic_publish(
            publisher.topology().access_exchange().as_str().into(),
            "".into(),
            BasicPublishOptions::default(),
            &body,
            persistent_json(),
        )
        .await
        .map_err(unavailable)?;
    confirm.await.map_err(unavailable)?;
    Ok(())
}

/// What a listener does with what it hears.
pub trait AccessListener: Send + Sync {
    /// Connected (again): anything may have been missed, so reload everything.
    fn reload(&self) -> impl std::future::Future<Output = ()> + Send;
    fn apply(&self, change: AccessChange) -> impl std::future::Future<Output = ()> + Send;
}

/// Hears access changes until `cancel` fires, reconnecting after a pause when the
/// broker goes away.
pub async fn listen(
    broker: Broker,
    topology: Topology,
    listener: impl AccessListener,
    cancel: CancellationToken,
) {
    let mut pause = std::time::Duration::from_millis(500);
    loop {
        let heard = tokio::select! {
            _ = cancel.cancelled() => return,
            heard = hear(&broker, &topology, &listener, &cancel) => heard,
        };
        if let Err(e) = heard {
            tracing::warn!(error = %e, "access changes: broker connection lost; reconnecting");
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(std::time::Duration::from_secs(10));
    }
}

async fn hear(
    broker: &Broker,
    topology: &Topology,
    listener: &impl AccessListener,
    cancel: &CancellationToken,
) -> lapin::Result<()> {
    let connection = broker.connect("gateway-access").await?;
    declare(&connection, topology).await?;
    let channel = connection.create_channel().await?;
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            queue.name().as_str().into(),
            topology.access_exchange().as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut consumer = channel
        .basic_consume(
            queue.name().as_str().into(),
            "access".into(),
            BasicConsumeOptions { no_ack: true, ..Default::default() },
            FieldTable::default(),
        )
        .await?;
    // Bound before reloading: nothing announced from here on is missed.
    listener.reload().await;
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            next = consumer.next() => next,
        };
        let Some(delivery) = next else {
            return Err(lapin::Error::from(
                lapin::ErrorKind::InvalidConnectionState(lapin::ConnectionState::Closed),
            ));
        };
        let delivery = delivery?;
        match serde_json::from_slice::<AccessChange>(&delivery.data) {
            Ok(change) => listener.apply(change).await,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring an access change this version cannot read")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_carries_its_hash_there_and_back() {
        let hash = [0xab_u8; 32];
        let change = AccessChange::key_revoked(&hash);
        let text = serde_json::to_string(&change).expect("json");
        assert!(text.contains("\"kind\":\"key_revoked\""), "{text}");
        let back: AccessChange = serde_json::from_str(&text).expect("parse");
        assert_eq!(back.revoked_hash(), Some(hash));
        let bad = AccessChange::KeyRevoked { hash: "zz".into() };
        assert_eq!(bad.revoked_hash(), None);
    }
}
