//! The `hookrelay` command line: read the command and its settings, run it.
#![forbid(unsafe_code)]

use hookrelay::cli::{self, Invocation};

// Many small, short-lived allocations across threads (requests, rows, messages):
// mimalloc measured clearly faster than the system allocator under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match cli::invocation()? {
        Invocation::Openapi => print!("{}", hookrelay_gateway::openapi_json()),
        Invocation::Config(parsed, config) => hookrelay::print_config(&parsed, &config),
        Invocation::Run(role, config) => return hookrelay::run(role, *config).await,
    }
    Ok(())
}
