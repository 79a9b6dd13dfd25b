//! The operator's fleet page: dispatchers and their shards, queue depths, the
//! broker's dead-letter queue and the database's numbers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use hookrelay_core::queue::{DeadLetter, DeadLetters};
use hookrelay_core::store::Scope;
use leptos::prelude::*;

use crate::components::chart::{DAY, HOUR, attempt_charts, lag_chart};
use crate::page_errors::{self, or_page};
use crate::session::AdminSession;
use crate::state::ConsoleState;
use crate::view::{self, Nav, page};

/// Messages waiting in each queue, read on the process's own broker connection;
/// why not, when the broker cannot be read.
async fn queue_depths(state: &ConsoleState) -> Result<Vec<(String, u32)>, String> {
    let read = async {
        let channel = state
            .actions
            .publisher()
            .side_channel()
            .await
            .map_err(|e| e.to_string())?;
        let depths = state.topology.depths(&channel).await;
        let _ = channel.close(200, "read".into()).await;
        depths.map_err(|e| e.to_string())
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

/// How many messages sit in the broker's dead-letter queue and the latest one
/// (among the first `LATEST_SCAN`), read on the process's broker connection; why
/// not, when the broker cannot be read.
async fn broker_dead(state: &ConsoleState) -> Result<(u32, Option<DeadLetter>), String> {
    const LATEST_SCAN: usize = 1000;
    let work = async {
        let dead = DeadLetters::shared(state.actions.publisher().clone());
        let count = dead.count().await?;
        let latest = if count > 0 {
            dead.latest(LATEST_SCAN).await?
        } else {
            None
        };
        Ok::<_, lapin::Error>((count, latest))
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), work).await {
        Ok(read) => read.map_err(|e| e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

pub async fn fleet(State(state): State<ConsoleState>, _s: AdminSession) -> Response {
    let (numbers, depths, broker_dead) = tokio::join!(
        state.store.fleet_numbers(),
        queue_depths(&state),
        broker_dead(&state)
    );
    let n = or_page!(page_errors::loaded(numbers, Nav::Admin));
    let store = &state.store;
    let (hour, day, hour_lag, day_lag) = or_page!(page_errors::loaded(
        tokio::try_join!(
            store.attempt_bins(Scope::Fleet, HOUR.span_minutes, HOUR.bin_minutes),
            store.attempt_bins(Scope::Fleet, DAY.span_minutes, DAY.bin_minutes),
            store.lag_bins(HOUR.span_minutes, HOUR.bin_minutes),
            store.lag_bins(DAY.span_minutes, DAY.bin_minutes),
        ),
        Nav::Admin
    ));
    let failure = view::rate(
        n.failed_last_minute,
        n.delivered_last_minute + n.failed_last_minute,
    );
    let tile = |label: &'static str, value: String, class: &'static str| {
        view! { <div class=format!("tile {class}")><div class="value">{value}</div><div class="label">{label}</div></div> }
    };
    let queues = match depths {
        Ok(d) => d
            .into_iter()
            .map(|(name, count)| view! { <tr><td><code>{name}</code></td><td class="num">{count}</td></tr> })
            .collect_view()
            .into_any(),
        Err(e) => {
            tracing::warn!(error = %e, "the fleet page cannot read the queue depths");
            view! { <tr><td colspan="2" class="error-text">"The broker cannot be reached: " {e}</td></tr> }.into_any()
        }
    };
    let broker_dead = match broker_dead {
        Err(e) => {
            tracing::warn!(error = %e, "the fleet page cannot read the broker's dead letters");
            view! { <p class="error-text">"The broker cannot be reached: " {e}</p> }.into_any()
        }
        Ok((0, _)) => view! { <p>"No message is dead-lettered on the broker."</p> }.into_any(),
        Ok((count, latest)) => {
            let latest = latest.map(|l| {
                let when = l
                    .dead_at
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default();
                let from = l.source.unwrap_or_default();
                view! {
                    <p>"Latest: " <strong>{l.reason}</strong> " (" {when} ", from " <code>{from}</code> ")"</p>
                }
            });
            view! {
                <p class="error-text">{format!("{count} messages no consumer could handle are in the broker's dead-letter queue.")}</p>
                {latest}
                <p class="muted">"List, inspect, requeue (checked again) or purge them with " <code>"hookrelay dlq broker"</code> " or " <code>"/v1/admin/broker-dead"</code> "."</p>
            }
            .into_any()
        }
    };
    let body = view! {
        <h1>"Fleet"</h1>
        <div class="tiles">
            {tile("delivered in the last full minute", n.delivered_last_minute.to_string(), "")}
            {tile("failure rate, last full minute", failure, if n.failed_last_minute > 0 { "warn" } else { "" })}
            {tile("open breakers", n.open_breakers.to_string(), if n.open_breakers > 0 { "warn" } else { "" })}
            {tile("disabled endpoints", n.disabled_endpoints.to_string(), if n.disabled_endpoints > 0 { "warn" } else { "" })}
            {tile("dead deliveries", n.dead.to_string(), if n.dead > 0 { "bad" } else { "" })}
            {tile("dispatchers connected", n.dispatchers.to_string(), if n.dispatchers == 0 { "bad" } else { "" })}
        </div>
        <h2>"Last hour"</h2>
        <div class="charts" id="fleet-hour">{attempt_charts(HOUR, &hour)} {lag_chart(HOUR, &hour_lag)}</div>
        <h2>"Last day"</h2>
        <div class="charts" id="fleet-day">{attempt_charts(DAY, &day)} {lag_chart(DAY, &day_lag)}</div>
        <h2>"Broker dead letters"</h2>
        {broker_dead}
        <h2>"Queues"</h2>
        <table class="list narrow">
            <thead><tr><th>"Queue"</th><th class="num">"Ready messages"</th></tr></thead>
            <tbody>{queues}</tbody>
        </table>
    }
    .into_any();
    page(StatusCode::OK, "Fleet", Nav::Admin, Some(10), body)
}
