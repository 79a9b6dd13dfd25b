//! `hookrelay-loadtest`: measure a running hookrelay end to end.
#![forbid(unsafe_code)]

use clap::Parser;
use hookrelay_loadtest::{Options, run};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "hookrelay-loadtest",
    version,
    about = "Send events to a hookrelay, receive and verify the deliveries, report throughput, latency, loss and duplicates. Exits 0 only when nothing is missing and every signature verified."
)]
struct Cli {
    #[command(flatten)]
    options: Options,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: stopping and summarising");
            on_signal.cancel();
        }
    });
    let json = cli.options.json;
    match run(cli.options, cancel).await {
        Ok(report) => {
            if json {
                println!("{}", serde_json::to_string(&report).unwrap_or_default());
            } else {
                println!("{}", report.table());
            }
            if report.passed() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("hookrelay-loadtest: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
