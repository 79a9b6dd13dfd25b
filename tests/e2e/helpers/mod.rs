//! Test harness: `TestApp` (gateway + dispatcher on a fresh database and queue
//! prefix, torn down on drop) and `Receiver` (an in-process webhook endpoint).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use hookrelay_core::{Config, Store, config::Sensitive};
use serde_json::{Value, json};
use sqlx::Connection as _;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// Upper bound for conditions a test waits for; reached only when something is broken.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Where tests create their databases (a role allowed to).
pub fn admin_database_url() -> String {
    std::env::var("HOOKRELAY_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://hookrelay:hookrelay@127.0.0.1:5432/postgres".into())
}

pub fn amqp_url() -> String {
    std::env::var("HOOKRELAY_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A connection and channel of the test's own on the broker, for faults.
pub async fn broker_channel() -> (lapin::Connection, lapin::Channel) {
    let connection =
        lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
            .await
            .expect("broker");
    let channel = connection.create_channel().await.expect("channel");
    (connection, channel)
}

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
    /// `hookrelay dispatcher` (the real binary) for this test's database, queues
    /// and key, delivering to loopback; killed when dropped. Add settings, then spawn.
    pub fn dispatcher_command(&self) -> tokio::process::Command {
        self.hookrelay_command("dispatcher")
    }

    /// `hookrelay ROLE` (the real binary) with this test's settings, as
    /// `dispatcher_command` describes.
    pub fn hookrelay_command(&self, role: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"));
        cmd.arg(role)
            .env("HOOKRELAY_DATABASE_URL", self.config.database.url.expose())
            .env("HOOKRELAY_AMQP_URL", amqp_url())
            .env("HOOKRELAY_QUEUE_PREFIX", &self.config.broker.queue_prefix)
            .env("HOOKRELAY_SHARDS", self.config.broker.shards.to_string())
            .env("HOOKRELAY_ENCRYPTION_KEYS", encryption_keys(&self.config))
            .env("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "true")
            .env("HOOKRELAY_LOG", "warn")
            .kill_on_drop(true);
        cmd
    }

    /// Gateway and dispatcher, ready to use.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}, true).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config), dispatcher: bool) -> Self {
        hookrelay_core::telemetry::init_from_env();
        hookrelay_dispatcher::client::install_tls_provider();
        let db_name = format!("hookrelay_test_{}", Uuid::new_v4().simple());
        let admin_url = admin_database_url();
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect to the test Postgres");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db_name}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        admin.close().await.ok();

        let mut config = test_config(with_database(&admin_url, &db_name));
        tweak(&mut config);
        let store = Store::connect_lazy(config.database.url.expose(), 4).expect("pool");
        store.migrate().await.expect("migrate");

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
        if dispatcher {
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

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let res = req.send().await.expect("request reaches the gateway");
        let status = StatusCode::from_u16(res.status().as_u16()).expect("status");
        let text = res.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.http
                .post(self.url(path))
                .bearer_auth(token)
                .json(&body),
        )
        .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.http
                .patch(self.url(path))
                .bearer_auth(token)
                .json(&body),
        )
        .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.http.put(self.url(path)).bearer_auth(token).json(&body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(self.http.delete(self.url(path)).bearer_auth(token))
            .await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(self.http.get(self.url(path)).bearer_auth(token))
            .await
    }

    /// A fresh producer key.
    pub async fn producer_key(&self) -> String {
        let (status, body) = self
            .post("/v1/api-keys", ADMIN_TOKEN, json!({ "name": "tests" }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["key"].as_str().expect("key").to_string()
    }

    /// A producer key and a tenant (returns key, tenant id).
    pub async fn tenant(&self) -> (String, String) {
        let key = self.producer_key().await;
        let (status, body) = self
            .post("/v1/tenants", &key, json!({ "name": "Acme" }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (key, body["id"].as_str().expect("id").to_string())
    }

    /// A producer key, a tenant, and one endpoint for every event at `url`:
    /// returns (key, tenant id, endpoint id).
    pub async fn subscriber(&self, url: &str) -> (String, String, String) {
        let (key, tenant) = self.tenant().await;
        let (endpoint, _) = self.endpoint(&key, &tenant, url, None).await;
        (key, tenant, endpoint)
    }

    /// Creates an endpoint; returns (id, secret).
    pub async fn endpoint(
        &self,
        key: &str,
        tenant: &str,
        url: &str,
        event_types: Option<&[&str]>,
    ) -> (String, String) {
        let mut body = json!({ "url": url });
        if let Some(types) = event_types {
            body["event_types"] = json!(types);
        }
        let (status, body) = self
            .post(&format!("/v1/tenants/{tenant}/endpoints"), key, body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["id"].as_str().expect("id").into(),
            body["secret"].as_str().expect("secret").into(),
        )
    }

    /// Posts one event; returns its id.
    pub async fn event(&self, key: &str, tenant: &str, body: Value) -> String {
        let (status, res) = self
            .post(&format!("/v1/tenants/{tenant}/events"), key, body)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{res}");
        res["id"].as_str().expect("id").into()
    }

    /// Polls the API until `check` accepts the JSON at `path`, and returns it.
    pub async fn wait_for_json(
        &self,
        path: &str,
        key: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let (status, body) = self.get(path, key).await;
            if status == StatusCode::OK && check(&body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; last: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
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
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let done: i64 =
                sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE status = 'delivered'")
                    .fetch_one(self.store.pool())
                    .await
                    .expect("count");
            if done >= n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out: {done} of {n} deliveries delivered"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until `sql` (a count taking one uuid, `$1`) gives `n`.
    pub async fn wait_for_count(&self, sql: &'static str, id: &str, n: i64) {
        let id = Uuid::parse_str(id).expect("uuid");
        self.wait_for_query(sql, Some(id), n).await;
    }

    /// Waits until `sql` (a count, with `$1` bound to `id` when given) gives `n`.
    pub async fn wait_for_query(&self, sql: &'static str, id: Option<Uuid>, n: i64) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let query = sqlx::query_scalar(sql);
            let query = match id {
                Some(id) => query.bind(id),
                None => query,
            };
            let got: i64 = query.fetch_one(self.store.pool()).await.expect("count");
            if got == n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out: {got}, not {n}, for {sql}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
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
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let got = dead.count().await.expect("count");
            if got == n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{got} broker dead letters, not {n}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
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

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: std::time::Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// Whether `secret` verifies the request's Standard Webhooks signature.
pub fn verifies(secret: &str, got: &Received) -> bool {
    hookrelay_signature::Verifier::new(vec![
        hookrelay_signature::Secret::from_whsec(secret).expect("secret"),
    ])
    .verify(
        got.header("webhook-id"),
        got.header("webhook-timestamp"),
        got.header("webhook-signature"),
        &got.body,
    )
    .is_ok()
}

/// A scripted answer: status and an optional `Retry-After`.
pub type Scripted = (StatusCode, Option<&'static str>);

#[derive(Clone)]
struct Inbox {
    got: Arc<Mutex<Vec<Received>>>,
    notify: Arc<Notify>,
    status: StatusCode,
    reply: &'static str,
    /// Answers for the first requests, in order; then `status`.
    script: Arc<Mutex<std::collections::VecDeque<Scripted>>>,
    /// How long each answer takes.
    delay: Duration,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    max_in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// Requests begun, answered or not.
    started: Arc<std::sync::atomic::AtomicUsize>,
}

/// An in-process webhook endpoint on a loopback port that records every request.
pub struct Receiver {
    pub url: String,
    inbox: Inbox,
    task: JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::replying(StatusCode::OK, "ok").await
    }

    pub async fn replying(status: StatusCode, reply: &'static str) -> Self {
        Self::scripted(Vec::new(), status, reply).await
    }

    /// Answers the first requests from `script`, then `status` with `reply`.
    pub async fn scripted(script: Vec<Scripted>, status: StatusCode, reply: &'static str) -> Self {
        Self::build(script, status, reply, Duration::ZERO).await
    }

    /// Answers `500` to the first `n` requests, then `200 ok`.
    pub async fn failing_first(n: usize) -> Self {
        Self::scripted(
            vec![(StatusCode::INTERNAL_SERVER_ERROR, None); n],
            StatusCode::OK,
            "ok",
        )
        .await
    }

    /// Answers 200 after `delay`, and measures how many requests overlap.
    pub async fn slow(delay: Duration) -> Self {
        Self::build(Vec::new(), StatusCode::OK, "ok", delay).await
    }

    async fn build(
        script: Vec<Scripted>,
        status: StatusCode,
        reply: &'static str,
        delay: Duration,
    ) -> Self {
        let inbox = Inbox {
            got: Arc::default(),
            notify: Arc::default(),
            status,
            reply,
            script: Arc::new(Mutex::new(script.into())),
            delay,
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
            started: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::post(record))
            .with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, inbox, task }
    }

    /// The most requests this receiver had open at once.
    pub fn max_concurrency(&self) -> usize {
        self.inbox
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Requests begun so far, including those still open.
    pub fn started(&self) -> usize {
        self.inbox.started.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until `n` requests are open at once.
    pub async fn wait_for_open(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self
            .inbox
            .in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
            < n
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "receiver never had {n} requests open"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.inbox.got.lock().expect("lock").clone()
    }

    /// Waits until at least `n` requests arrived; returns all of them.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let wait = async {
            loop {
                let notified = self.inbox.notify.notified();
                if self.inbox.got.lock().expect("lock").len() >= n {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(PATIENCE, wait).await.is_err() {
            panic!("receiver got {} of {n} requests", self.received().len());
        }
        self.received()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(
    State(inbox): State<Inbox>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use std::sync::atomic::Ordering;
    inbox.started.fetch_add(1, Ordering::SeqCst);
    let now_open = inbox.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    inbox.max_in_flight.fetch_max(now_open, Ordering::SeqCst);
    if !inbox.delay.is_zero() {
        tokio::time::sleep(inbox.delay).await;
    }
    inbox.in_flight.fetch_sub(1, Ordering::SeqCst);
    let at = std::time::Instant::now();
    inbox
        .got
        .lock()
        .expect("lock")
        .push(Received { headers, body, at });
    inbox.notify.notify_waiters();
    let next = inbox.script.lock().expect("lock").pop_front();
    match next {
        Some((status, Some(retry_after))) => {
            (status, [("retry-after", retry_after)], "scripted").into_response()
        }
        Some((status, None)) => (status, "scripted").into_response(),
        None => (inbox.status, inbox.reply).into_response(),
    }
}

/// Runs a command of the real binary to its end (within `PATIENCE`).
pub async fn run_to_end(cmd: &mut tokio::process::Command) -> std::process::Output {
    tokio::time::timeout(PATIENCE, cmd.output())
        .await
        .expect("the command ends by itself")
        .expect("the command runs")
}

/// What a finished command wrote to stderr.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Starts an HTTP role of the real binary (`serve`, `gateway`) on a free port and
/// waits until it is ready; returns the process (killed when dropped) and its URL.
pub async fn spawn_ready(mut cmd: tokio::process::Command) -> (tokio::process::Child, String) {
    let port = free_port();
    cmd.env("HOOKRELAY_LISTEN", format!("127.0.0.1:{port}"));
    let child = cmd.spawn().expect("start hookrelay");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status())
        .ok()
        != Some(StatusCode::OK)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "hookrelay never got ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, base)
}

/// `HOOKRELAY_ENCRYPTION_KEYS` for the keys a test's config holds.
pub fn encryption_keys(config: &Config) -> String {
    config
        .security
        .master_keys()
        .iter()
        .map(|(id, key)| format!("{id}:{}", b64(key)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Base64 helper for tests that build secrets.
/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
