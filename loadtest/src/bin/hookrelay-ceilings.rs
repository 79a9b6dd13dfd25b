//! `hookrelay-ceilings`: measures, on this machine, the limits hookrelay works under —
//! RabbitMQ confirmed publishes/s (quorum queue, persistent 512-byte messages, 256
//! confirms in flight), PostgreSQL rows/s in 100-row batched inserts, and an HTTP
//! hello-world's requests/s with client and server co-located.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};

const MESSAGES: usize = 50_000;
const ROWS: usize = 200_000;

async fn rabbitmq(url: &str) -> anyhow::Result<f64> {
    let conn = Connection::connect(url, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    let queue = format!("ceiling-{}", uuid::Uuid::new_v4().simple());
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    ch.queue_declare(
        queue.as_str().into(),
        QueueDeclareOptions { durable: true, ..Default::default() },
        args,
    )
    .await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let body = vec![b'x'; 512];
    let props = BasicProperties::default().with_delivery_mode(2);
    let mut window = VecDeque::new();
    let start = Instant::now();
    for _ in 0..MESSAGES {
        if window.len() >= 256 {
            let confirm: lapin::PublisherConfirm = window.pop_front().context("window")?;
            confirm.await?;
        }
        window.push_back(
            ch.basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                props.clone(),
            )
            .await?,
        );
    }
    for c in window {
        c.await?;
    }
    let rate = MESSAGES as f64 / start.elapsed().as_secs_f64();
    ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await?;
    conn.close(200, "bye".into()).await?;
    Ok(rate)
}

async fn postgres(url: &str) -> anyhow::Result<f64> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(url)
        .await?;
    let table = format!("ceiling_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {table} (id uuid PRIMARY KEY, body text NOT NULL)"
    )))
    .execute(&pool)
    .await?;
    let insert = format!("INSERT INTO {table} SELECT * FROM UNNEST($1::uuid[], $2::text[])");
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let (pool, insert) = (pool.clone(), insert.clone());
        tasks.spawn(async move {
            let body = "x".repeat(512);
            for _ in (worker..ROWS / 100).step_by(4) {
                let ids: Vec<uuid::Uuid> = (0..100).map(|_| uuid::Uuid::now_v7()).collect();
                let bodies = vec![body.as_str(); 100];
                sqlx::query(sqlx::AssertSqlSafe(insert.clone()))
                    .bind(ids)
                    .bind(bodies)
                    .execute(&pool)
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let rate = ROWS as f64 / start.elapsed().as_secs_f64();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
        .execute(&pool)
        .await?;
    Ok(rate)
}

async fn http() -> anyhow::Result<f64> {
    let app = axum::Router::new().route("/", axum::routing::post(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let client = reqwest::Client::new();
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(5);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (client, url, done) = (client.clone(), url.clone(), done.clone());
        tasks.spawn(async move {
            while Instant::now() < until {
                if client.post(&url).body("{}").send().await.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    server.abort();
    Ok(done.load(Ordering::Relaxed) as f64 / 5.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let amqp = std::env::var("HOOKRELAY_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let db = std::env::var("HOOKRELAY_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://hookrelay:hookrelay@127.0.0.1:5432/hookrelay".into());
    let mq = rabbitmq(&amqp).await.context("RabbitMQ")?;
    let pg = postgres(&db).await.context("PostgreSQL")?;
    let web = http().await.context("HTTP")?;
    println!("rabbitmq_confirmed_publishes_per_s {mq:.0}");
    println!("postgres_batched_rows_per_s {pg:.0}");
    println!("http_hello_world_requests_per_s {web:.0}");
    Ok(())
}
