//! `hookrelay dlq broker …`: the broker's dead-letter queue (`<prefix>.dead`),
//! messages no consumer could handle, each with its reason. Requeue checks a
//! message again as its consumer would before putting it back; nothing leaves the
//! queue any other way than requeue or a confirmed purge.

use anyhow::{Context as _, bail};
use clap::Subcommand;
use hookrelay_core::queue::{Broker, DeadLetters, Pick, Publisher};
use hookrelay_core::{Config, Store};

#[derive(Debug, Clone, Subcommand)]
pub enum BrokerCommand {
    /// List dead-lettered messages, oldest first (they stay in the queue).
    List {
        /// Show at most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One message with its reason and body (JSON).
    Show {
        /// A message id, as `list` shows it.
        id: String,
    },
    /// Put messages back on the queue they came from, checked again first.
    Requeue {
        /// Message ids, as `list` shows them.
        ids: Vec<String>,
        /// Every message in the queue.
        #[arg(long)]
        all: bool,
    },
    /// Delete messages for good; needs `--yes`.
    Purge {
        /// Message ids, as `list` shows them.
        ids: Vec<String>,
        /// Every message in the queue.
        #[arg(long)]
        all: bool,
        /// Really delete them.
        #[arg(long)]
        yes: bool,
    },
}

fn pick(ids: Vec<String>, all: bool) -> anyhow::Result<Pick> {
    match (all, ids.is_empty()) {
        (true, true) => Ok(Pick::All),
        (false, false) => Ok(Pick::Ids(ids)),
        (true, false) => bail!("give ids or --all, not both"),
        (false, true) => bail!("give message ids, or --all"),
    }
}

/// Runs a command; returns what to print.
pub async fn run(config: &Config, store: &Store, cmd: BrokerCommand) -> anyhow::Result<String> {
    let topology = config.topology();
    let broker = Broker::from_settings(&config.broker);
    let dead = DeadLetters::open(&broker, topology.clone())
        .await
        .context("connecting to RabbitMQ (HOOKRELAY_AMQP_URL)")?;
    match cmd {
        BrokerCommand::List { limit, json } => {
            let count = dead.count().await?;
            let letters = dead.list(limit.clamp(1, 100_000)).await?;
            if json {
                let rows: Vec<_> = letters
                    .iter()
                    .map(|l| {
                        let mut v = serde_json::json!(l);
                        v["body"] = serde_json::json!(l.body_text());
                        v
                    })
                    .collect();
                return Ok(serde_json::to_string_pretty(&rows)?);
            }
            let mut out = format!(
                "{:<36}  {:<28}  {:<20}  {:>8}  {}\n",
                "message", "from", "dead at", "bytes", "reason"
            );
            for l in &letters {
                out += &format!(
                    "{:<36}  {:<28}  {:<20}  {:>8}  {}\n",
                    l.id,
                    l.source.as_deref().unwrap_or("?"),
                    l.dead_at
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default(),
                    l.bytes,
                    l.reason
                );
            }
            out += &format!(
                "{} shown of {count} in {}",
                letters.len(),
                topology.dead_letter_queue()
            );
            Ok(out)
        }
        BrokerCommand::Show { id } => {
            let letter = dead
                .find(&id)
                .await?
                .with_context(|| format!("no message {id} in {}", topology.dead_letter_queue()))?;
            let body = serde_json::from_slice::<serde_json::Value>(&letter.body)
                .unwrap_or_else(|_| serde_json::json!(letter.body_text()));
            let mut v = serde_json::json!(letter);
            v["body"] = body;
            Ok(serde_json::to_string_pretty(&v)?)
        }
        BrokerCommand::Requeue { ids, all } => {
            let publisher = Publisher::new(broker, "dlq", topology);
            let report = dead.requeue(&pick(ids, all)?, store, &publisher).await?;
            publisher.close().await;
            let mut out = format!("requeued {}", report.requeued.len());
            for r in &report.refused {
                out += &format!("\nkept {}: {}", r.id, r.reason);
            }
            Ok(out)
        }
        BrokerCommand::Purge { ids, all, yes } => {
            let pick = pick(ids, all)?;
            if !yes {
                let n = match &pick {
                    Pick::All => dead.count().await? as usize,
                    Pick::Ids(ids) => ids.len(),
                };
                bail!("this would delete up to {n} messages for good; add --yes to do it");
            }
            let purged = dead.purge(&pick).await?;
            Ok(format!("purged {}", purged.len()))
        }
    }
}
