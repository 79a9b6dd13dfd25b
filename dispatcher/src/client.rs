//! The webhook HTTP client: signs a delivery (Standard Webhooks), POSTs it with a
//! timeout and without following redirects, and reports what happened as an attempt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use hookrelay_core::model::DeliveryStatus;
use hookrelay_core::retry;
use hookrelay_core::store::AttemptRecord;
use hookrelay_core::target_policy::TargetPolicy;
use hookrelay_signature::{Secret, headers, sign_header};
use serde_json::json;
use uuid::Uuid;

use crate::resolver::GuardedResolver;

/// Response bodies are kept up to this size in the attempt log.
pub const MAX_RESPONSE_BODY: usize = 16 * 1024;

/// One signed request to make.
pub struct Outgoing<'a> {
    pub delivery_id: Uuid,
    pub url: &'a str,
    /// Shared with the event's other deliveries: sent without a copy.
    pub payload: &'a Arc<str>,
    pub secrets: &'a [Secret],
    /// The endpoint's own timeout, if it set one.
    pub timeout: Option<Duration>,
}

/// reqwest is built without a bundled TLS crypto provider (to keep the build lean);
/// installs ring as the process default. Idempotent.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[derive(Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    targets: Arc<TargetPolicy>,
}

impl WebhookClient {
    pub fn new(timeout: Duration, targets: TargetPolicy) -> Result<Self, reqwest::Error> {
        install_tls_provider();
        let targets = Arc::new(targets);
        let http = reqwest::Client::builder()
            // Every name is resolved through the guard; literal addresses are checked below.
            .dns_resolver(Arc::new(GuardedResolver::new(targets.clone())))
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            // Keep every connection a burst opened: re-dialling costs more than the idle socket.
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("hookrelay/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, targets })
    }

    /// Sends one attempt; never fails, every outcome becomes an `AttemptRecord`
    /// (status `Delivered` or `Failed`; the retry policy refines it). Also returns a
    /// `Retry-After` the endpoint sent with a 429 or 503.
    pub async fn send(&self, out: Outgoing<'_>) -> (AttemptRecord, Option<Duration>) {
        let id = out.delivery_id.to_string();
        let timestamp = Utc::now().timestamp();
        let signature = sign_header(out.secrets, &id, timestamp, out.payload.as_bytes());
        let request_headers = json!({
            "content-type": "application/json",
            headers::ID: id,
            headers::TIMESTAMP: timestamp.to_string(),
            headers::SIGNATURE: signature,
        });
        let started = Instant::now();
        let mut record = AttemptRecord {
            delivery_id: out.delivery_id,
            status: DeliveryStatus::Failed,
            next_attempt_at: None,
            request_headers,
            response_status: None,
            response_headers: None,
            response_body: None,
            duration_ms: 0,
            error: None,
            at: Utc::now(),
            out_of_band: false,
        };
        if let Err(e) = self.targets.check_url(out.url) {
            record.error = Some(format!("blocked: {e}"));
            return (record, None);
        }
        let mut retry_after = None;
        let mut request = self.http.post(out.url);
        if let Some(t) = out.timeout {
            request = request.timeout(t);
        }
        let result = request
            .header("content-type", "application/json")
            .header(headers::ID, &id)
            .header(headers::TIMESTAMP, timestamp.to_string())
            .header(headers::SIGNATURE, &signature)
            .body(bytes::Bytes::from_owner(SharedPayload(out.payload.clone())))
            .send()
            .await;
        match result {
            Ok(mut response) => {
                let status = response.status();
                record.response_status = Some(i32::from(status.as_u16()));
                record.response_headers = Some(headers_json(response.headers()));
                if matches!(status.as_u16(), 429 | 503) {
                    retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| retry::parse_retry_after(v, Utc::now()));
                }
                let (body, read_error) = read_truncated(&mut response).await;
                record.response_body = Some(body);
                if status.is_success() {
                    record.status = DeliveryStatus::Delivered;
                } else {
                    record.error = Some(format!("HTTP {}", status.as_u16()));
                }
                if let Some(e) = read_error.filter(|_| !status.is_success()) {
                    record.error = Some(format!("HTTP {}; reading body: {e}", status.as_u16()));
                }
            }
            Err(e) => record.error = Some(describe(&e)),
        }
        record.duration_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        (record, retry_after)
    }
}

/// A payload as request body bytes, without copying it.
struct SharedPayload(Arc<str>);

impl AsRef<[u8]> for SharedPayload {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// A failed attempt for a request that was never made, with the reason.
pub fn not_sent(delivery_id: Uuid, reason: &str) -> AttemptRecord {
    AttemptRecord {
        delivery_id,
        status: DeliveryStatus::Failed,
        next_attempt_at: None,
        request_headers: json!({}),
        response_status: None,
        response_headers: None,
        response_body: None,
        duration_ms: 0,
        error: Some(reason.to_string()),
        at: Utc::now(),
        out_of_band: false,
    }
}

/// Response headers kept in the attempt log, and how long each value may be.
const MAX_RESPONSE_HEADERS: usize = 50;
const MAX_HEADER_VALUE: usize = 512;
const MAX_HEADER_NAME: usize = 128;

/// The response headers as a JSON object (repeated names joined with ", "), capped.
fn headers_json(headers: &reqwest::header::HeaderMap) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for name in headers.keys().take(MAX_RESPONSE_HEADERS) {
        if name.as_str().len() > MAX_HEADER_NAME {
            continue;
        }
        // The subscriber's cookies are its own business, not the delivery log's.
        if name == reqwest::header::SET_COOKIE {
            out.insert(name.as_str().into(), "(not recorded)".into());
            continue;
        }
        let joined = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        let value: String = joined.chars().take(MAX_HEADER_VALUE).collect();
        out.insert(name.as_str().to_string(), serde_json::Value::String(value));
    }
    serde_json::Value::Object(out)
}

/// Reads at most `MAX_RESPONSE_BODY` bytes of the body, as (lossy) text.
async fn read_truncated(response: &mut reqwest::Response) -> (String, Option<String>) {
    let mut buf = Vec::new();
    let mut error = None;
    while buf.len() < MAX_RESPONSE_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => {
                error = Some(describe(&e));
                break;
            }
        }
    }
    buf.truncate(MAX_RESPONSE_BODY);
    // PostgreSQL text cannot hold NUL: an endpoint answering with one must not stop
    // its attempt (and the batch it is recorded with) from being stored.
    let text = String::from_utf8_lossy(&buf).replace('\0', "\u{FFFD}");
    (text, error)
}

/// A short, operator-readable cause.
fn describe(e: &reqwest::Error) -> String {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(blocked) = s.downcast_ref::<crate::resolver::Blocked>() {
            return blocked.to_string();
        }
        source = s.source();
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_redirect() {
        "redirect refused"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    }
}
