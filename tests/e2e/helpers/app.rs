//! The app under test: gateway and dispatcher in this process, on a database and
//! queue prefix of the test's own, torn down on drop (even after a panic).

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::StatusCode;
use hookrelay_core::{Config, Store, config::Sensitive};
use serde_json::Value;
use sqlx::Connection as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{ADMIN_TOKEN, admin_database_url, amqp_url, eventually};

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let root = &base[..base.rfind('/').expect("database URL has a path")];
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub config: Config,
    pub store: Store,
    /// The gateway's own pool, so a test can cut the gateway off from Postgres.
    gateway_store: Store,
    db_name: String,
    gateway: Option<(CancellationToken, JoinHandle<std::io::Result<()>>)>,
    dispatcher: Option<(CancellationToken, JoinHandle<()>)>,
    /// Further dispatchers, for fleet tests.
    extra_dispatchers: Vec<(CancellationToken, JoinHandle<()>)>,
    /// The shard count the test started with: a test that lowers `config.broker.shards`
    /// still has its higher shard queues removed.
    started_shards: u16,
}

/// What `TestApp::subscriber` made: a producer key, its tenant, and an endpoint.
pub struct Subscriber {
    pub key: String,
    pub tenant: String,
    pub endpoint: String,
}

/// A change to a test's settings before it starts.
type Tweak<'a> = Box<dyn FnOnce(&mut Config) + 'a>;

/// Settings and parts of a `TestApp` before it starts.
pub struct AppBuilder<'a> {
    tweaks: Vec<Tweak<'a>>,
    dispatcher: bool,
}

impl<'a> AppBuilder<'a> {
    /// Changes the test's settings before anything starts.
    pub fn config(mut self, tweak: impl FnOnce(&mut Config) + 'a) -> Self {
        self.tweaks.push(Box::new(tweak));
        self
    }

    /// The gateway alone: the test starts dispatchers itself, if any.
    pub fn without_dispatcher(mut self) -> Self {
        self.dispatcher = false;
        self
    }

    pub async fn start(self) -> TestApp {
        TestApp::start(self).await
    }
}

/// Settings for one test; `tweak` may change them before start.
pub fn test_config(db_url: String) -> Config {
    let mut c = Config::local_defaults();
    c.database.url = Sensitive::new(db_url);
    c.database.max_connections = 8;
    c.broker.amqp_url = Sensitive::new(amqp_url());
    c.broker.queue_prefix = format!("test-{}", Uuid::new_v4().simple());
    c.http.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    c.security.admin_token = Some(Sensitive::new(ADMIN_TOKEN.into()));
    c.security.encryption_key = Some(Sensitive::new(rand::random()));
    c.broker.shards = 2;
    c.http.max_payload_bytes = 64 * 1024;
    c.security.allow_private_targets = true;
    c.delivery.timeout = Duration::from_secs(5);
    c.dispatcher.shutdown_grace = Duration::from_secs(5);
    // The console islands' wasm build, as `deploy/local/test.sh` makes it.
    c.console.pkg = std::env::var("HOOKRELAY_CONSOLE_PKG").map_or_else(
        |_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/site/pkg").into(),
        Into::into,
    );
    // The API explorer's script, as `deploy/local/test.sh` installs it.
    c.console.docs = std::env::var("HOOKRELAY_DOCS_PKG").map_or_else(
        |_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/site/docs").into(),
        Into::into,
    );
    c
}

impl TestApp {
    /// Gateway and dispatcher, ready to use.
    pub async fn spawn() -> Self {
        Self::builder().start().await
    }

    /// A test app with settings of its own, or without a dispatcher.
    pub fn builder<'a>() -> AppBuilder<'a> {
        AppBuilder { tweaks: Vec::new(), dispatcher: true }
    }

    async fn start(builder: AppBuilder<'_>) -> Self {
        hookrelay_core::telemetry::init_from_env();
        hookrelay_dispatcher::client::install_tls_provider();
        let db_name = format!("hookrelay_test_{}", Uuid::new_v4().simple());
        let admin_url = admin_database_url();
        hookrelay_core::store::test_databases::create_migrated(&admin_url, &db_name)
            .await
            .expect("a migrated test database");

        let mut config = test_config(with_database(&admin_url, &db_name));
        for tweak in builder.tweaks {
            tweak(&mut config);
        }
        let store = Store::connect_lazy(config.database.url.expose(), 4).expect("pool");

        let listener = tokio::net::TcpListener::bind(config.http.listen)
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let gateway_store = Store::connect_lazy(
            config.database.url.expose(),
            config.database.max_connections,
        )
        .expect("pool");
        let state = hookrelay_gateway::build_state(config.clone(), gateway_store.clone()).await;
        let stop = CancellationToken::new();
        let task = tokio::spawn(hookrelay::serve_http(state, listener, stop.clone()));

        let mut app = Self {
            base,
            http: reqwest::Client::new(),
            config,
            store,
            gateway_store,
            db_name,
            gateway: Some((stop, task)),
            dispatcher: None,
            extra_dispatchers: Vec::new(),
            started_shards: 0,
        };
        app.started_shards = app.config.broker.shards;
        if builder.dispatcher {
            app.start_dispatcher();
        }
        app
    }

    pub fn start_dispatcher(&mut self) {
        assert!(self.dispatcher.is_none(), "dispatcher already running");
        self.dispatcher = Some(self.spawn_dispatcher());
    }

    /// Starts one more dispatcher process-alike, consuming the same queues.
    pub fn start_another_dispatcher(&mut self) {
        let d = self.spawn_dispatcher();
        self.extra_dispatchers.push(d);
    }

    fn spawn_dispatcher(&self) -> (CancellationToken, JoinHandle<()>) {
        let store = Store::connect_lazy(
            self.config.database.url.expose(),
            self.config.database.max_connections,
        )
        .expect("pool");
        let stop = CancellationToken::new();
        let d = hookrelay_dispatcher::Dispatcher::new(self.config.clone(), store);
        let token = stop.clone();
        let task = tokio::spawn(async move {
            d.run(token).await.expect("dispatcher runs");
        });
        (stop, task)
    }

    /// Graceful stop: the dispatcher finishes or requeues what it holds.
    pub async fn stop_dispatcher(&mut self) {
        let (stop, task) = self.dispatcher.take().expect("dispatcher running");
        stop.cancel();
        task.await.expect("dispatcher task ends cleanly");
    }

    /// From now on every database call of the gateway fails, as if Postgres were down.
    pub async fn cut_gateway_database(&self) {
        self.gateway_store.close().await;
    }

    /// Polls the API until `check` accepts the JSON at `path`, and returns it.
    pub async fn wait_for_json(
        &self,
        path: &str,
        key: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        eventually(what, || async {
            let (status, body) = self.get(path, key).await;
            if status == StatusCode::OK && check(&body) {
                Ok(body)
            } else {
                Err(format!("{status} {body}"))
            }
        })
        .await
    }

    /// Waits until every delivery of the event is out of `pending`; returns them.
    pub async fn settled_deliveries(
        &self,
        key: &str,
        tenant: &str,
        event: &str,
        expected: usize,
    ) -> Vec<Value> {
        let path = format!("/v1/tenants/{tenant}/events/{event}/deliveries");
        let body = self
            .wait_for_json(&path, key, "deliveries to settle", |b| {
                b["data"].as_array().is_some_and(|d| {
                    d.len() == expected && d.iter().all(|x| x["status"] != "pending")
                })
            })
            .await;
        body["data"].as_array().expect("data").clone()
    }

    /// Waits until `n` deliveries are `delivered` in the database.
    pub async fn wait_for_delivered(&self, n: i64) {
        eventually(format!("{n} deliveries delivered"), || async {
            let done: i64 =
                sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE status = 'delivered'")
                    .fetch_one(self.store.pool())
                    .await
                    .expect("count");
            if done >= n {
                Ok(())
            } else {
                Err(format!("{done} delivered"))
            }
        })
        .await
    }

    /// Waits until `sql` (a count taking one uuid, `$1`) gives `n`.
    pub async fn wait_for_count(&self, sql: &'static str, id: &str, n: i64) {
        let id = Uuid::parse_str(id).expect("uuid");
        self.wait_for_query(sql, Some(id), n).await;
    }

    /// Waits until `sql` (a count, with `$1` bound to `id` when given) gives `n`.
    pub async fn wait_for_query(&self, sql: &'static str, id: Option<Uuid>, n: i64) {
        eventually(format!("{n} for {sql}"), || async {
            let query = sqlx::query_scalar(sql);
            let query = match id {
                Some(id) => query.bind(id),
                None => query,
            };
            let got: i64 = query.fetch_one(self.store.pool()).await.expect("count");
            if got == n {
                Ok(())
            } else {
                Err(got.to_string())
            }
        })
        .await
    }

    /// A confirming publisher on this test's queues, as another process would have.
    pub fn publisher(&self) -> hookrelay_core::queue::Publisher {
        hookrelay_core::queue::Publisher::new(
            hookrelay_core::queue::Broker::new(&amqp_url()),
            "test",
            self.config.topology(),
        )
    }

    /// The operator's handle on this test's broker dead-letter queue.
    pub async fn broker_dead_letters(&self) -> hookrelay_core::queue::DeadLetters {
        hookrelay_core::queue::DeadLetters::open(
            &hookrelay_core::queue::Broker::new(&amqp_url()),
            self.config.topology(),
        )
        .await
        .expect("broker")
    }

    /// Waits until the broker's dead-letter queue holds `n` messages.
    pub async fn wait_for_broker_dead(&self, n: u32) {
        let dead = self.broker_dead_letters().await;
        eventually(format!("{n} broker dead letters"), || async {
            let got = dead.count().await.expect("count");
            if got == n {
                Ok(())
            } else {
                Err(got.to_string())
            }
        })
        .await
    }

    pub async fn count(&self, table: &'static str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(self.store.pool())
            .await
            .expect("count")
    }
}

impl Drop for TestApp {
    /// Stops the processes and removes this test's database and queues, even after a panic.
    fn drop(&mut self) {
        for (stop, task) in self
            .dispatcher
            .take()
            .into_iter()
            .chain(self.extra_dispatchers.drain(..))
        {
            stop.cancel();
            task.abort();
        }
        if let Some((stop, task)) = self.gateway.take() {
            stop.cancel();
            task.abort();
        }
        let db_name = self.db_name.clone();
        let mut config = self.config.clone();
        config.broker.shards = config.broker.shards.max(self.started_shards);
        let topology = config.topology();
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                // The pool's connections belong to the test's runtime, which is blocked
                // here; dropping the database with FORCE ends them.
                match lapin::Connection::connect(
                    &amqp_url(),
                    lapin::ConnectionProperties::default(),
                )
                .await
                {
                    Ok(conn) => {
                        match conn.create_channel().await {
                            Ok(channel) => {
                                if let Err(e) = topology.delete(&channel).await {
                                    eprintln!("cleanup: deleting queues: {e}");
                                }
                            }
                            Err(e) => eprintln!("cleanup: channel: {e}"),
                        }
                        let _ = conn.close(200, "bye".into()).await;
                    }
                    Err(e) => eprintln!("cleanup: broker: {e}"),
                }
                match sqlx::PgConnection::connect(&admin_database_url()).await {
                    Ok(mut admin) => {
                        let drop = format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)");
                        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(drop))
                            .execute(&mut admin)
                            .await
                        {
                            eprintln!("cleanup: dropping {db_name}: {e}");
                        }
                    }
                    Err(e) => eprintln!("cleanup: database: {e}"),
                }
            });
        });
        let _ = cleanup.join();
    }
}
