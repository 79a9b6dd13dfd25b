//! What customers and operators do besides reading and editing rows, implemented
//! once for the API and the console: replay a delivery, recover an endpoint's
//! failures, send a test event, add an endpoint, rotate its secret, replay picked
//! dead letters, replay or purge the dead letters a filter matches, create and
//! revoke API keys. Re-sends are made due in the database
//! first and then published at once, so a failed publish only delays them.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use hookrelay_signature::Secret;
use uuid::Uuid;

use crate::Store;
use crate::access::Grant;
use crate::audit::Actor;
use crate::crypto::Cipher;
use crate::ids::new_id;
use crate::key_cache::KeyCache;
use crate::model::{ApiKey, DeliveryStatus, Endpoint, Job};
use crate::operational::{EndpointNotice, EndpointPaused, Notice, Notices};
use crate::queue::Publisher;
use crate::request_options::{self, OptionsChange, RequestOptions};
use crate::store::{
    Cancelled, Controls, DeadFilter, EndpointChanges, Limits, NewDelivery, NewEndpoint, NewKey,
    StoreError, StoredOptions,
};
use crate::target_policy::TargetPolicy;
use crate::validation::{self, Description, EndpointUrl, EventTypes, Grace, Invalid, KeyName};

/// Why an action was not done.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The tenant has no such row (or it belongs to another tenant).
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("this endpoint is disabled: enable it to send it a test event")]
    EndpointDisabled,
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The tenant already has as many endpoints as it may.
    #[error(
        "this tenant has as many endpoints as its quota allows: delete one, or ask the operator to raise max_endpoints"
    )]
    TooManyEndpoints,
    /// A bulk dead-letter action named no filter and did not ask for all.
    #[error("give a filter, or ask for all of them")]
    Unscoped,
    /// A purge was not confirmed.
    #[error("purging deletes dead deliveries and their attempts for good: confirm it")]
    Unconfirmed,
    /// Only undelivered deliveries can be cancelled.
    #[error("this delivery is {0} already: only pending and failed deliveries can be cancelled")]
    NotCancellable(DeliveryStatus),
    /// Stored request secrets this installation's keys cannot open.
    #[error("this endpoint's request secrets were encrypted with another key")]
    SecretUnreadable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The dead deliveries a bulk action means: those a filter matches, or every one
/// when asked for explicitly. An empty filter alone is refused, so a forgotten
/// filter never replays or purges them all.
pub struct DeadScope(DeadFilter);

impl DeadScope {
    pub fn new(filter: DeadFilter, all: bool) -> Result<Self, ActionError> {
        if filter.is_empty() && !all {
            return Err(ActionError::Unscoped);
        }
        Ok(Self(filter))
    }

    pub fn filter(&self) -> &DeadFilter {
        &self.0
    }
}

/// Starts a durable job that makes every dead delivery of `scope` due again
/// (dispatchers work it; the command line may work it itself). Needs only the
/// database, so the command line runs it without a broker.
pub async fn replay_dead_matching(
    store: &Store,
    scope: &DeadScope,
    by: &Actor,
) -> Result<Job, ActionError> {
    Ok(store.create_dead_replay_job(new_id(), &scope.0, by).await?)
}

/// Deletes the dead deliveries of `scope` and their attempts, once confirmed;
/// returns how many.
pub async fn purge_dead(
    store: &Store,
    scope: &DeadScope,
    confirmed: bool,
    by: &Actor,
) -> Result<u64, ActionError> {
    if !confirmed {
        return Err(ActionError::Unconfirmed);
    }
    Ok(store.purge_dead(&scope.0, by).await?)
}

/// A new endpoint's settings, each already checked.
pub struct EndpointSettings {
    pub url: EndpointUrl,
    pub description: Description,
    pub event_types: Option<EventTypes>,
    pub limits: Limits,
    pub controls: Controls,
    /// Checked request options, their secret values still in the clear.
    pub request: RequestOptions,
}

/// A secret made for an endpoint, to be shown once.
pub struct Rotated {
    pub secret: Secret,
    /// Until when the previous secret still signs beside it (`None`: it stopped now).
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

/// The parts the actions work with; the API and the console hold the same ones
/// when they run in one process.
#[derive(Clone)]
pub struct Actions {
    store: Store,
    publisher: Arc<Publisher>,
    cipher: Cipher,
    keys: Arc<KeyCache>,
    /// Endpoints a tenant may have when it has no limit of its own.
    max_endpoints: i64,
    /// Raises `endpoint.paused` and `endpoint.resumed`.
    notices: Notices,
}

impl Actions {
    /// The actions as `config` sets them up: its master keys, its endpoint quota.
    pub fn configured(
        config: &crate::Config,
        store: Store,
        publisher: Arc<Publisher>,
        keys: Arc<KeyCache>,
    ) -> Self {
        let mut actions = Self::new(
            store,
            publisher,
            Cipher::with_keys(&config.security.master_keys()),
            keys,
            i64::from(config.quotas.max_endpoints),
        );
        actions.notices = Notices::new(
            actions.store.clone(),
            actions.publisher.clone(),
            config.delivery.operations_tenant,
        );
        actions
    }

    pub fn new(
        store: Store,
        publisher: Arc<Publisher>,
        cipher: Cipher,
        keys: Arc<KeyCache>,
        max_endpoints: i64,
    ) -> Self {
        let notices = Notices::new(store.clone(), publisher.clone(), None);
        Self {
            store,
            publisher,
            cipher,
            keys,
            max_endpoints,
            notices,
        }
    }

    /// The process's publisher, whose connection the actions use.
    pub fn publisher(&self) -> &Arc<Publisher> {
        &self.publisher
    }

    /// Sends one delivery again, with its original `webhook-id`.
    pub async fn replay(
        &self,
        tenant: Uuid,
        delivery: Uuid,
        by: &Actor,
    ) -> Result<NewDelivery, ActionError> {
        let d = self
            .store
            .replay_delivery(tenant, delivery, by)
            .await?
            .ok_or(ActionError::NotFound("delivery"))?;
        self.publisher.send_now(&[d]).await;
        Ok(d)
    }

    /// Starts the durable job that re-sends an endpoint's undelivered deliveries
    /// created in [`since`, `until`).
    pub async fn recover(
        &self,
        tenant: Uuid,
        endpoint: Uuid,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
        by: &Actor,
    ) -> Result<Job, ActionError> {
        if until.is_some_and(|u| u <= since) {
            return Err(Invalid("until must be after since".into()).into());
        }
        self.endpoint(tenant, endpoint).await?;
        Ok(self
            .store
            .create_recover_job(new_id(), tenant, endpoint, since, until, by)
            .await?)
    }

    /// Sends a `hookrelay.test` event to this endpoint only, whatever it subscribes
    /// to (like any delivery, it waits while the endpoint's circuit is open).
    pub async fn send_test(
        &self,
        tenant: Uuid,
        endpoint: Uuid,
    ) -> Result<NewDelivery, ActionError> {
        if self.endpoint(tenant, endpoint).await?.disabled {
            return Err(ActionError::EndpointDisabled);
        }
        let payload = validation::test_payload(endpoint, Utc::now());
        let d = self
            .store
            .insert_test_delivery(tenant, endpoint, validation::TEST_EVENT_TYPE, &payload)
            .await?
            .ok_or(ActionError::NotFound("endpoint"))?;
        self.publisher.send_now(&[d]).await;
        Ok(d)
    }

    /// Adds an endpoint signing with `secret` (stored encrypted).
    pub async fn create_endpoint(
        &self,
        tenant: Uuid,
        settings: EndpointSettings,
        secret: &Secret,
        by: &Actor,
    ) -> Result<Endpoint, ActionError> {
        let id = new_id();
        self.store
            .insert_endpoint(
                NewEndpoint {
                    id,
                    tenant_id: tenant,
                    url: &settings.url,
                    description: &settings.description,
                    event_types: settings.event_types.as_ref(),
                    secret_ciphertext: &self.cipher.encrypt(secret.as_bytes(), id.as_bytes()),
                    limits: settings.limits,
                    controls: &settings.controls,
                    request: &self.stored_options(id, settings.request),
                },
                self.max_endpoints,
                by,
            )
            .await?
            .ok_or(ActionError::TooManyEndpoints)
    }

    /// Request options as the store keeps them, the secret values sealed to `endpoint`.
    fn stored_options(&self, endpoint: Uuid, o: RequestOptions) -> StoredOptions {
        StoredOptions {
            sealed: request_options::seal(&self.cipher, endpoint, &o.secrets),
            headers: o.headers,
            auth: o.auth,
            tls: o.tls,
        }
    }

    /// Adds a change of an endpoint's request options to `changes`: the options
    /// as stored now with `change` applied and checked (a secret header given
    /// without a value keeps its stored one), sealed again.
    pub async fn change_request_options(
        &self,
        endpoint: Uuid,
        change: OptionsChange,
        targets: &TargetPolicy,
        changes: &mut EndpointChanges,
    ) -> Result<(), ActionError> {
        if change.is_empty() {
            return Ok(());
        }
        let stored = self
            .store
            .request_options(endpoint)
            .await?
            .ok_or(ActionError::NotFound("endpoint"))?;
        let secrets =
            request_options::open(&self.cipher, endpoint, stored.request_secrets.as_deref())
                .map_err(|e| {
                    tracing::error!(error = %e, %endpoint, "cannot open request secrets");
                    ActionError::SecretUnreadable
                })?;
        let current = RequestOptions {
            headers: stored.headers.0,
            auth: stored.auth.map(|a| a.0),
            tls: stored.tls.map(|t| t.0),
            secrets,
        };
        changes.request_fields = change.fields().collect();
        let next = change.apply(targets, &current)?;
        changes.request = Some((self.stored_options(endpoint, next), stored.request_rev));
        Ok(())
    }

    /// Makes `secret` the endpoint's signing secret; the old one keeps signing
    /// through `grace`, so subscribers switch without missing a message.
    pub async fn rotate_secret(
        &self,
        tenant: Uuid,
        endpoint: Uuid,
        secret: Secret,
        grace: Grace,
        by: &Actor,
    ) -> Result<Rotated, ActionError> {
        let ciphertext = self.cipher.encrypt(secret.as_bytes(), endpoint.as_bytes());
        let e = self
            .store
            .rotate_endpoint_secret(tenant, endpoint, &ciphertext, grace.duration(), by)
            .await?
            .ok_or(ActionError::NotFound("endpoint"))?;
        Ok(Rotated {
            secret,
            previous_secret_expires_at: e.previous_secret_expires_at,
        })
    }

    /// Re-sends the picked dead deliveries (at most `MAX_PICKED`); returns those
    /// that were still dead.
    pub async fn replay_dead(
        &self,
        ids: &[Uuid],
        by: &Actor,
    ) -> Result<Vec<NewDelivery>, StoreError> {
        let replayed = self.store.replay_dead_ids(ids, by).await?;
        self.publisher.send_now(&replayed).await;
        Ok(replayed)
    }

    /// Creates a producer key; returns it as listed and the key itself (shown once).
    pub async fn create_api_key(
        &self,
        new: &NewKey<'_>,
        by: &Actor,
    ) -> Result<(ApiKey, String), StoreError> {
        let seen = self.keys.revocations();
        let (row, key, hash, grant): (_, _, _, Grant) = self.store.create_api_key(new, by).await?;
        self.keys.insert(hash, grant, seen);
        Ok((row, key))
    }

    /// A key with every permission over every tenant (what the console creates).
    pub async fn create_full_api_key(
        &self,
        name: &KeyName,
        by: &Actor,
    ) -> Result<(ApiKey, String), StoreError> {
        let new = NewKey {
            name,
            tenants: None,
            permissions: crate::access::Permissions::all(),
            expires_at: None,
        };
        self.create_api_key(&new, by).await
    }

    /// Revokes a key: refused at once by this process, and by the others as soon as
    /// they hear it on the access fanout. `false` if no active key has this id.
    pub async fn revoke_api_key(&self, id: Uuid, by: &Actor) -> Result<bool, StoreError> {
        match self.store.revoke_api_key(id, by).await? {
            Some(hash) => {
                self.keys.remove(&hash);
                crate::queue::access::announce(
                    &self.publisher,
                    &crate::queue::access::AccessChange::key_revoked(&hash),
                )
                .await;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Changes an endpoint; a resume sends its held deliveries, oldest first at
    /// its pace (an ordered endpoint's next in line).
    pub async fn update_endpoint(
        &self,
        tenant: Uuid,
        id: Uuid,
        changes: EndpointChanges,
        by: &Actor,
    ) -> Result<Endpoint, ActionError> {
        let updated = self
            .store
            .update_endpoint(tenant, id, changes, by)
            .await?
            .ok_or(ActionError::NotFound("endpoint"))?;
        self.publisher.send_now(&updated.released).await;
        if updated.resumed_ordered {
            self.advance(&[id]).await;
        }
        if let Some(paused) = updated.paused_now {
            let (tenant_id, endpoint_id) = (tenant, id);
            let notice = if paused {
                Notice::endpoint_paused(
                    EndpointPaused { tenant_id, endpoint_id, reason: None },
                    Utc::now(),
                )
            } else {
                Notice::endpoint_resumed(EndpointNotice { tenant_id, endpoint_id }, Utc::now())
            };
            self.notices.raise(vec![notice]).await;
        }
        Ok(updated.endpoint)
    }

    /// Cancels one undelivered delivery; an ordered endpoint's order moves on.
    pub async fn cancel_delivery(
        &self,
        tenant: Uuid,
        id: Uuid,
        by: &Actor,
    ) -> Result<(), ActionError> {
        match self.store.cancel_delivery(tenant, id, by).await? {
            None => Err(ActionError::NotFound("delivery")),
            Some(Cancelled::Final(status)) => Err(ActionError::NotCancellable(status)),
            Some(Cancelled::Now { endpoint_id }) => {
                self.advance(&[endpoint_id]).await;
                Ok(())
            }
        }
    }

    /// Cancels every undelivered delivery of one event; returns how many.
    pub async fn cancel_event(
        &self,
        tenant: Uuid,
        event: Uuid,
        by: &Actor,
    ) -> Result<usize, ActionError> {
        if self.store.get_event(tenant, event).await?.is_none() {
            return Err(ActionError::NotFound("event"));
        }
        let mut endpoints = self
            .store
            .cancel_event_deliveries(tenant, event, by)
            .await?;
        let n = endpoints.len();
        endpoints.sort_unstable();
        endpoints.dedup();
        self.advance(&endpoints).await;
        Ok(n)
    }

    /// Starts the durable job that cancels an endpoint's whole backlog.
    pub async fn cancel_backlog(
        &self,
        tenant: Uuid,
        endpoint: Uuid,
        by: &Actor,
    ) -> Result<Job, ActionError> {
        self.endpoint(tenant, endpoint).await?;
        Ok(self
            .store
            .create_cancel_job(new_id(), tenant, endpoint, by)
            .await?)
    }

    /// Moves ordered endpoints on to their next delivery and publishes it. A
    /// failure only delays it: the dispatchers' sweep moves them on too.
    async fn advance(&self, endpoints: &[Uuid]) {
        let lease = std::time::Duration::from_secs_f64(crate::store::PUBLISH_FALLBACK_SECS);
        match self.store.advance_ordered(endpoints, lease).await {
            Ok(heads) => self.publisher.send_now(&heads).await,
            Err(e) => {
                tracing::warn!(error = %e, "could not move ordered endpoints on; the sweep will")
            }
        }
    }

    async fn endpoint(&self, tenant: Uuid, id: Uuid) -> Result<Endpoint, ActionError> {
        self.store
            .get_endpoint(tenant, id)
            .await?
            .ok_or(ActionError::NotFound("endpoint"))
    }
}
