//! `hookrelay keys …`: the master keys against the database. `rotate` re-encrypts
//! every endpoint secret under the current key (the first of
//! HOOKRELAY_ENCRYPTION_KEYS) as a durable job: interrupted, run it again and it
//! goes on from where it stopped. `status` tells how far the latest one got.

use std::io::Write as _;

use anyhow::Context as _;
use clap::Subcommand;
use hookrelay_core::crypto::Cipher;
use hookrelay_core::states::JobStatus;
use hookrelay_core::store::KeyRotation;
use hookrelay_core::{Config, Store};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Re-encrypt every endpoint secret under the current key (resumes a rotation
    /// that was interrupted); afterwards the other keys can be removed.
    Rotate,
    /// The keys configured, the key check, and the latest rotation's progress.
    Status,
}

fn line(job: &KeyRotation) -> String {
    format!(
        "rotation {} to key {:?}: {} of {} endpoints looked at, {} re-encrypted{}",
        job.id,
        job.key_id,
        job.done_count,
        job.total,
        job.rewritten,
        if job.status == JobStatus::Done {
            ", done"
        } else {
            ""
        }
    )
}

pub async fn run(config: &Config, store: &Store, cmd: KeysCommand) -> anyhow::Result<String> {
    let cipher = Cipher::with_keys(&config.security.master_keys());
    let ids: Vec<&str> = cipher.key_ids().collect();
    match cmd {
        KeysCommand::Rotate => {
            hookrelay_core::master_keys::check(store, &cipher)
                .await
                .context("checking the master keys before rotating")?;
            let job = hookrelay_core::master_keys::rotate(store, &cipher, |job| {
                eprint!("\r{}", line(job));
                let _ = std::io::stderr().flush();
            })
            .await?;
            eprintln!();
            Ok(format!(
                "{}\nevery endpoint secret is encrypted under {:?}; keys {:?} can be removed",
                line(&job),
                job.key_id,
                ids.iter().skip(1).collect::<Vec<_>>()
            ))
        }
        KeysCommand::Status => {
            let check = match hookrelay_core::master_keys::check(store, &cipher).await {
                Ok(0) => "the keys read the stored secrets".to_string(),
                Ok(n) => format!("{n} sampled secrets do not decrypt"),
                Err(e) => e.to_string(),
            };
            let latest = store.latest_key_rotation().await?;
            Ok(format!(
                "keys: {} (current {:?})\ncheck: {check}\n{}",
                ids.join(", "),
                cipher.current_id(),
                latest.as_ref().map_or("no rotation yet".to_string(), line)
            ))
        }
    }
}
