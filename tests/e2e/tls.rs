//! TLS to the database and the broker: the real `hookrelay` against a PostgreSQL
//! cluster and a RabbitMQ node that accept only TLS (the broker also demands a
//! client certificate), both signed by a throwaway CA that `deploy/local/test.sh`
//! makes (`deploy/local/tls-services.sh`); a CA that did not sign them is refused.

use std::path::PathBuf;
use std::process::Output;
use std::str::FromStr;

use serde_json::{Value, json};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use uuid::Uuid;

use crate::helpers::{ADMIN_TOKEN, Receiver, b64, run_to_end, spawn_ready, stderr};

/// The TLS-only servers the test script started.
struct TlsServices {
    dir: PathBuf,
    /// `postgres://…@localhost:PORT/postgres` (no sslmode: each test picks one).
    database_url: String,
    amqp_url: String,
}

impl TlsServices {
    fn get() -> Self {
        hookrelay_dispatcher::client::install_tls_provider();
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is unset: run deploy/local/test.sh, which starts the TLS services")
            })
        };
        Self {
            dir: var("HOOKRELAY_TEST_TLS_DIR").into(),
            database_url: var("HOOKRELAY_TEST_TLS_DATABASE_URL"),
            amqp_url: var("HOOKRELAY_TEST_TLS_AMQP_URL"),
        }
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// A fresh database on the TLS cluster; returns its URL with `sslmode`.
    async fn database(&self, sslmode: &str) -> String {
        let name = format!("hookrelay_tls_{}", Uuid::new_v4().simple());
        let options = PgConnectOptions::from_str(&self.database_url)
            .expect("url")
            .ssl_mode(PgSslMode::VerifyFull)
            .ssl_root_cert(self.file("ca.pem"));
        let mut admin = sqlx::PgConnection::connect_with(&options)
            .await
            .expect("connect to the TLS PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create database");
        let root = self.database_url.rsplit_once('/').expect("path").0;
        format!("{root}/{name}?sslmode={sslmode}")
    }

    /// `hookrelay ROLE` with TLS settings for both servers (the right CA and the
    /// client certificate); a test overrides what it means to break.
    fn command(&self, role: &str, database_url: &str, prefix: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"));
        cmd.arg(role)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOOKRELAY_DATABASE_URL", database_url)
            .env("HOOKRELAY_DATABASE_CA_FILE", self.file("ca.pem"))
            .env("HOOKRELAY_AMQP_URL", &self.amqp_url)
            .env("HOOKRELAY_AMQP_CA_FILE", self.file("ca.pem"))
            .env("HOOKRELAY_AMQP_CLIENT_CERT", self.file("client.pem"))
            .env("HOOKRELAY_AMQP_CLIENT_KEY", self.file("client.key"))
            .env("HOOKRELAY_QUEUE_PREFIX", prefix)
            .env("HOOKRELAY_SHARDS", "2")
            .env("HOOKRELAY_ENCRYPTION_KEY", b64(&[7u8; 32]))
            .env("HOOKRELAY_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "true")
            .env("HOOKRELAY_LOG", "warn")
            .kill_on_drop(true);
        cmd
    }
}

fn prefix() -> String {
    format!("tls-{}", Uuid::new_v4().simple())
}

async fn run(mut cmd: tokio::process::Command) -> Output {
    run_to_end(&mut cmd).await
}

async fn api(http: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    let res = http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    assert!(status.is_success(), "{status}: {body}");
    body
}

#[tokio::test]
async fn delivers_with_tls_to_the_database_and_the_broker() {
    let tls = TlsServices::get();
    let db = tls.database("verify-full").await;
    let prefix = prefix();
    let migrated = run(tls.command("migrate", &db, &prefix)).await;
    assert!(migrated.status.success(), "{}", stderr(&migrated));

    // Ready means both servers answered over TLS.
    let (_serve, base) = spawn_ready(tls.command("serve", &db, &prefix)).await;
    let http = reqwest::Client::new();

    let receiver = Receiver::start().await;
    let key = api(
        &http,
        format!("{base}/v1/api-keys"),
        ADMIN_TOKEN,
        json!({ "name": "tls" }),
    )
    .await;
    let key = key["key"].as_str().expect("key").to_string();
    let tenant = api(
        &http,
        format!("{base}/v1/tenants"),
        &key,
        json!({ "name": "Acme" }),
    )
    .await;
    let tenant = tenant["id"].as_str().expect("tenant").to_string();
    api(
        &http,
        format!("{base}/v1/tenants/{tenant}/endpoints"),
        &key,
        json!({ "url": receiver.url }),
    )
    .await;
    let event = api(
        &http,
        format!("{base}/v1/tenants/{tenant}/events"),
        &key,
        json!({ "event_type": "order.created", "payload": { "over": "tls" } }),
    )
    .await;
    let got = receiver.wait_for(1).await;
    let body: Value = serde_json::from_slice(&got[0].body).expect("json body");
    assert_eq!(body, json!({ "over": "tls" }));
    assert!(event["id"].is_string(), "{event}");

    // Every connection hookrelay holds to its database is encrypted.
    let options = PgConnectOptions::from_str(&db)
        .expect("url")
        .ssl_root_cert(tls.file("ca.pem"));
    let mut conn = sqlx::PgConnection::connect_with(&options)
        .await
        .expect("connect");
    let (all, encrypted): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE s.ssl)
           FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
          WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()",
    )
    .fetch_one(&mut conn)
    .await
    .expect("pg_stat_ssl");
    assert!(all > 0, "hookrelay holds database connections");
    assert_eq!(all, encrypted, "all of them over TLS");
}

#[tokio::test]
async fn a_database_server_signed_by_another_ca_is_refused() {
    let tls = TlsServices::get();
    let db = tls.database("verify-full").await;
    let mut migrate = tls.command("migrate", &db, &prefix());
    migrate.env("HOOKRELAY_DATABASE_CA_FILE", tls.file("wrong-ca.pem"));
    let out = run(migrate).await;
    assert!(!out.status.success(), "a wrong CA must not connect");
    let err = stderr(&out);
    assert!(err.contains("HOOKRELAY_DATABASE_URL"), "{err}");
    assert!(
        err.to_lowercase().contains("certificate"),
        "names the cause: {err}"
    );

    // And this server refuses plaintext, so sslmode=disable cannot connect at all.
    let plain = tls.database("disable").await;
    let out = run(tls.command("migrate", &plain, &prefix())).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no encryption"), "{}", stderr(&out));
}

#[tokio::test]
async fn a_broker_signed_by_another_ca_or_without_a_client_certificate_is_refused() {
    let tls = TlsServices::get();
    let db = tls.database("verify-full").await;
    let migrated = run(tls.command("migrate", &db, &prefix())).await;
    assert!(migrated.status.success(), "{}", stderr(&migrated));

    // A command that connects to the broker once: the dead-letter listing.
    let list = |tweak: &dyn Fn(&mut tokio::process::Command)| {
        let mut cmd = tls.command("dlq", &db, &prefix());
        cmd.args(["broker", "list"]);
        tweak(&mut cmd);
        run(cmd)
    };
    let ok = list(&|_| {}).await;
    assert!(
        ok.status.success(),
        "the right CA and certificate connect: {}",
        stderr(&ok)
    );

    let wrong_ca = list(&|c| {
        c.env("HOOKRELAY_AMQP_CA_FILE", tls.file("wrong-ca.pem"));
    })
    .await;
    assert!(!wrong_ca.status.success());
    let err = stderr(&wrong_ca);
    assert!(err.contains("HOOKRELAY_AMQP_URL"), "{err}");
    assert!(
        err.to_lowercase().contains("certificate"),
        "names the cause: {err}"
    );

    let no_client_cert = list(&|c| {
        c.env_remove("HOOKRELAY_AMQP_CLIENT_CERT")
            .env_remove("HOOKRELAY_AMQP_CLIENT_KEY");
    })
    .await;
    assert!(
        !no_client_cert.status.success(),
        "the broker demands a client certificate"
    );
}
