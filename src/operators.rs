//! `hookrelay operators …`: named operator accounts. `add NAME` prints the new
//! operator's token once (`hro_…`; only its hash is kept); it works wherever the
//! admin token does, and the audit log names the operator. `list` shows them;
//! `disable NAME` ends an operator's token and console sessions at once.

use anyhow::Context as _;
use clap::Subcommand;
use hookrelay_core::Store;
use hookrelay_core::audit::Actor;

#[derive(Debug, Subcommand)]
pub enum OperatorsCommand {
    /// Add an operator; prints its token (shown once).
    Add {
        /// 1 to 64 letters, digits, `.`, `_`, `-` or `@`.
        name: String,
    },
    /// Every operator, oldest first.
    List,
    /// Disable an operator: its token stops working and its console sessions end.
    Disable {
        /// The operator's name.
        name: String,
    },
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_@".contains(&b))
}

pub async fn run(store: &Store, cmd: OperatorsCommand) -> anyhow::Result<String> {
    match cmd {
        OperatorsCommand::Add { name } => {
            anyhow::ensure!(
                valid_name(&name),
                "an operator's name is 1 to 64 letters, digits, '.', '_', '-' or '@'"
            );
            let (id, token) = store
                .add_operator(&name, &Actor::command_line("operators add"))
                .await
                .map_err(|e| match e {
                    hookrelay_core::store::StoreError::Conflict(_) => {
                        anyhow::anyhow!("an operator named {name:?} already exists")
                    }
                    e => anyhow::Error::new(e),
                })
                .context("adding the operator")?;
            Ok(format!(
                "operator {name} ({id}) added; its token, shown only now:\n{token}"
            ))
        }
        OperatorsCommand::Disable { name } => {
            let disabled = store
                .disable_operator(&name, &Actor::command_line("operators disable"))
                .await
                .context("disabling the operator")?;
            anyhow::ensure!(
                disabled,
                "no operator named {name:?} is enabled (see `hookrelay operators list`)"
            );
            Ok(format!(
                "operator {name} disabled; its token and console sessions no longer work"
            ))
        }
        OperatorsCommand::List => {
            let rows = store.list_operators().await?;
            if rows.is_empty() {
                return Ok("no operators (the admin token still works)".into());
            }
            Ok(rows
                .into_iter()
                .map(|(id, name, at, disabled)| {
                    format!(
                        "{name}\t{id}\tadded {}{}",
                        at.format("%Y-%m-%d %H:%M"),
                        if disabled { "\tdisabled" } else { "" }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"))
        }
    }
}
