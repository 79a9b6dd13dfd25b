//! `hookrelay dlq …`: the operator's dead-letter tooling, straight against Postgres
//! (it works while the API is down). Replays reuse each delivery's `webhook-id`.

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use hookrelay_core::actions::{self, ActionError, DeadScope};
use hookrelay_core::store::DeadFilter;
use hookrelay_core::{Config, Store};
use uuid::Uuid;

#[derive(Debug, Clone, Default, Args)]
pub struct FilterArgs {
    /// Only this tenant (id).
    #[arg(long)]
    pub tenant: Option<Uuid>,
    /// Only this endpoint (id).
    #[arg(long)]
    pub endpoint: Option<Uuid>,
    /// Only this event type.
    #[arg(long)]
    pub event_type: Option<String>,
    /// Routed at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
    /// Routed before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<DateTime<Utc>>,
    /// The reason contains this text (e.g. `410`, `gave up`).
    #[arg(long)]
    pub reason: Option<String>,
}

impl FilterArgs {
    fn filter(&self) -> DeadFilter {
        DeadFilter {
            tenant_id: self.tenant,
            endpoint_id: self.endpoint,
            event_type: self.event_type.clone(),
            since: self.since,
            until: self.until,
            reason: self.reason.clone(),
        }
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum DlqCommand {
    /// List dead deliveries, newest first.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A delivery with its payload and every attempt (JSON).
    Show { id: Uuid },
    /// Send dead deliveries again: one by id, those matching filters, or `--all`.
    Replay {
        id: Option<Uuid>,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long)]
        all: bool,
    },
    /// Delete dead deliveries and their attempts; needs `--yes`.
    Purge {
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        yes: bool,
    },
    /// The broker's dead-letter queue: messages no consumer could handle.
    Broker {
        #[command(subcommand)]
        command: crate::dlq_broker::BrokerCommand,
    },
    /// Dead deliveries per endpoint.
    Stats {
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long)]
        json: bool,
    },
}

/// Runs a dead-letter command (Postgres's dead deliveries, or the broker's with
/// `dlq broker …`); returns what to print.
pub async fn run(config: &Config, store: &Store, cmd: DlqCommand) -> anyhow::Result<String> {
    match cmd {
        DlqCommand::Broker { command } => crate::dlq_broker::run(config, store, command).await,
        DlqCommand::List { filter, limit, json } => {
            let rows = store
                .list_dead(&filter.filter(), limit.clamp(1, 10_000))
                .await?;
            if json {
                return Ok(serde_json::to_string_pretty(&rows)?);
            }
            let mut out = format!(
                "{:<36}  {:<36}  {:<24}  {:>8}  {}\n",
                "delivery", "endpoint", "event type", "attempts", "reason"
            );
            for d in &rows {
                out += &format!(
                    "{:<36}  {:<36}  {:<24}  {:>8}  {}\n",
                    d.id,
                    d.endpoint_id,
                    d.event_type,
                    d.attempts,
                    d.last_error.as_deref().unwrap_or("")
                );
            }
            out += &format!("{} dead deliveries shown", rows.len());
            Ok(out)
        }
        DlqCommand::Show { id } => {
            let (delivery, event, attempts) = store
                .inspect_delivery(id)
                .await?
                .with_context(|| format!("no delivery {id}"))?;
            Ok(serde_json::to_string_pretty(
                &serde_json::json!({ "delivery": delivery, "event": event, "attempts": attempts }),
            )?)
        }
        DlqCommand::Replay { id: Some(id), .. } => {
            let (delivery, _, _) = store
                .inspect_delivery(id)
                .await?
                .with_context(|| format!("no delivery {id}"))?;
            store
                .replay_delivery(
                    delivery.tenant_id,
                    id,
                    &hookrelay_core::audit::Actor::command_line("dlq replay"),
                )
                .await?
                .context("its endpoint was deleted")?;
            Ok(format!("delivery {id} is due now"))
        }
        DlqCommand::Replay { id: None, filter, all } => {
            let Ok(scope) = DeadScope::new(filter.filter(), all) else {
                bail!("name a delivery, give filters, or pass --all");
            };
            // A durable job: should this command stop half-way, dispatchers finish it.
            let by = hookrelay_core::audit::Actor::command_line("dlq replay");
            let job = actions::replay_dead_matching(store, &scope, &by).await?;
            while store.work_job_chunk(Some(job.id)).await?.is_some() {}
            let done = store.get_job(job.id).await?.context("the job vanished")?;
            Ok(format!(
                "job {}: {} dead deliveries are due now",
                job.id, done.done_count
            ))
        }
        DlqCommand::Purge { filter, all, yes } => {
            let Ok(scope) = DeadScope::new(filter.filter(), all) else {
                bail!("give filters, or pass --all");
            };
            let by = hookrelay_core::audit::Actor::command_line("dlq purge");
            match actions::purge_dead(store, &scope, yes, &by).await {
                Ok(n) => Ok(format!("purged {n} dead deliveries")),
                Err(ActionError::Unconfirmed) => {
                    let stats = store.dead_stats(scope.filter()).await?;
                    let n: i64 = stats.iter().map(|s| s.dead).sum();
                    bail!(
                        "this would delete {n} dead deliveries and their attempts; add --yes to do it"
                    )
                }
                Err(e) => Err(e.into()),
            }
        }
        DlqCommand::Stats { filter, json } => {
            let stats = store.dead_stats(&filter.filter()).await?;
            if json {
                return Ok(serde_json::to_string_pretty(&stats)?);
            }
            let mut out = format!(
                "{:<36}  {:<36}  {:>8}  {:<20}  {}\n",
                "tenant", "endpoint", "dead", "oldest", "newest"
            );
            for s in &stats {
                out += &format!(
                    "{:<36}  {:<36}  {:>8}  {:<20}  {}\n",
                    s.tenant_id,
                    s.endpoint_id,
                    s.dead,
                    s.oldest.format("%Y-%m-%d %H:%M:%S"),
                    s.newest.format("%Y-%m-%d %H:%M:%S")
                );
            }
            out += &format!("{} dead in all", stats.iter().map(|s| s.dead).sum::<i64>());
            Ok(out)
        }
    }
}
