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

use crate::reach::{Credentials, Profile, oauth};
use crate::resolver::GuardedResolver;
use hookrelay_core::request_options::{REDACTED, Tls};
use reqwest::header::HeaderValue;

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
    /// The endpoint's headers, authentication and TLS client, when it has any.
    pub profile: Option<&'a Profile>,
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
    timeout: Duration,
    /// The egress relay every request goes through, when there is a proxy.
    egress: Option<String>,
}

/// The `authorization` a request carries: its value, how it is shown, and the
/// OAuth2 token it is (to forget it on a `401`).
struct Authorization {
    value: HeaderValue,
    shown: String,
    token: Option<(Arc<HeaderValue>, bool)>,
}

impl WebhookClient {
    /// `egress`: the relay's URL (`reach::egress`), when requests go through a proxy.
    pub fn new(
        timeout: Duration,
        targets: TargetPolicy,
        egress: Option<String>,
    ) -> Result<Self, reqwest::Error> {
        install_tls_provider();
        let targets = Arc::new(targets);
        let http = Self::builder(&targets, timeout, egress.as_deref())?.build()?;
        Ok(Self { http, targets, timeout, egress })
    }

    /// What every client towards receivers shares.
    fn builder(
        targets: &Arc<TargetPolicy>,
        timeout: Duration,
        egress: Option<&str>,
    ) -> Result<reqwest::ClientBuilder, reqwest::Error> {
        let builder = reqwest::Client::builder()
            // Every name is resolved through the guard; literal addresses are checked below.
            .dns_resolver(Arc::new(GuardedResolver::new(targets.clone())))
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            // Keep every connection a burst opened: re-dialling costs more than the idle socket.
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("hookrelay/", env!("CARGO_PKG_VERSION")));
        Ok(match egress {
            Some(relay) => builder.proxy(reqwest::Proxy::all(relay)?),
            None => builder.no_proxy(),
        })
    }

    /// A client of an endpoint's own, when it presents a client certificate or
    /// trusts its own CAs (`None`: the shared one serves).
    pub fn for_tls(
        &self,
        tls: Option<&Tls>,
        client_key: Option<&str>,
    ) -> Result<Option<reqwest::Client>, String> {
        let Some(tls) = tls else {
            return Ok(None);
        };
        let mut builder = Self::builder(&self.targets, self.timeout, self.egress.as_deref())
            .map_err(|e| e.to_string())?;
        if let (Some(cert), Some(key)) = (&tls.client_certificate, client_key) {
            let pem = format!("{key}\n{cert}");
            let identity = reqwest::Identity::from_pem(pem.as_bytes())
                .map_err(|e| format!("client certificate: {e}"))?;
            builder = builder.identity(identity);
        }
        if let Some(ca) = &tls.ca_bundle {
            let roots = reqwest::Certificate::from_pem_bundle(ca.as_bytes())
                .map_err(|e| format!("CA bundle: {e}"))?;
            builder = builder.tls_certs_only(roots);
        }
        builder.build().map(Some).map_err(|e| e.to_string())
    }

    /// Sends one attempt; never fails, every outcome becomes an `AttemptRecord`
    /// (status `Delivered` or `Failed`; the retry policy refines it). Also returns a
    /// `Retry-After` the endpoint sent with a 429 or 503.
    pub async fn send(&self, out: Outgoing<'_>) -> (AttemptRecord, Option<Duration>) {
        let id = out.delivery_id.to_string();
        let timestamp = Utc::now().timestamp();
        let signature = sign_header(out.secrets, &id, timestamp, out.payload.as_bytes());
        let mut shown = serde_json::Map::new();
        shown.insert("content-type".into(), "application/json".into());
        shown.insert(headers::ID.into(), id.clone().into());
        shown.insert(headers::TIMESTAMP.into(), timestamp.to_string().into());
        shown.insert(headers::SIGNATURE.into(), signature.clone().into());
        for (name, _, value) in out
            .profile
            .map(|p| p.headers.as_slice())
            .unwrap_or_default()
        {
            shown.insert(name.as_str().into(), value.clone().into());
        }
        let started = Instant::now();
        let mut record = AttemptRecord {
            delivery_id: out.delivery_id,
            status: DeliveryStatus::Failed,
            next_attempt_at: None,
            request_headers: serde_json::Value::Null,
            response_status: None,
            response_headers: None,
            response_body: None,
            duration_ms: 0,
            error: None,
            at: Utc::now(),
            out_of_band: false,
        };
        let http = out
            .profile
            .and_then(|p| p.client.as_ref())
            .unwrap_or(&self.http);
        let checked = self
            .targets
            .check_url(out.url)
            .map_err(|e| format!("blocked: {e}"));
        let result = match checked {
            Err(e) => Err(e),
            Ok(_) => self.authorization(&out).await,
        };
        let mut auth = match result {
            Ok(auth) => auth,
            Err(e) => {
                record.error = Some(e);
                record.request_headers = serde_json::Value::Object(shown);
                record.duration_ms = elapsed_ms(started);
                return (record, None);
            }
        };
        if let Some(a) = &auth {
            shown.insert("authorization".into(), a.shown.clone().into());
        }
        record.request_headers = serde_json::Value::Object(shown);
        let post = |auth: Option<&Authorization>| {
            let mut request = http.post(out.url);
            if let Some(t) = out.timeout {
                request = request.timeout(t);
            }
            for (name, value, _) in out
                .profile
                .map(|p| p.headers.as_slice())
                .unwrap_or_default()
            {
                request = request.header(name, value);
            }
            if let Some(a) = auth {
                request = request.header(reqwest::header::AUTHORIZATION, &a.value);
            }
            request
                .header("content-type", "application/json")
                .header(headers::ID, &id)
                .header(headers::TIMESTAMP, timestamp.to_string())
                .header(headers::SIGNATURE, &signature)
                .body(bytes::Bytes::from_owner(SharedPayload(out.payload.clone())))
                .send()
        };
        let mut result = post(auth.as_ref()).await;
        // A cached token refused: fetched again once, and the request made again.
        let refused = matches!(&result, Ok(r) if r.status() == reqwest::StatusCode::UNAUTHORIZED);
        if let (true, Some(Authorization { token: Some((used, false)), .. })) = (refused, &auth) {
            if let Some(Credentials::OAuth2(source)) =
                out.profile.and_then(|p| p.credentials.as_ref())
            {
                source.refused(used).await;
            }
            match self.authorization(&out).await {
                Ok(again) => {
                    auth = again;
                    result = post(auth.as_ref()).await;
                }
                Err(e) => {
                    record.error = Some(e);
                    record.duration_ms = elapsed_ms(started);
                    return (record, None);
                }
            }
        }
        let mut retry_after = None;
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
        record.duration_ms = elapsed_ms(started);
        (record, retry_after)
    }

    /// The request's `authorization`, fetching an OAuth2 token when none is
    /// cached; a token endpoint that fails fails the attempt, with its reason.
    /// The token endpoint is reached with the shared client (system roots, no
    /// client certificate): an endpoint's TLS settings are for its receiver.
    async fn authorization(&self, out: &Outgoing<'_>) -> Result<Option<Authorization>, String> {
        match out.profile.and_then(|p| p.credentials.as_ref()) {
            None => Ok(None),
            Some(Credentials::Static { value, shown }) => Ok(Some(Authorization {
                value: value.clone(),
                shown: shown.clone(),
                token: None,
            })),
            Some(Credentials::OAuth2(source)) => {
                let timeout = out.timeout.unwrap_or(self.timeout);
                let (token, fresh) = source
                    .token(|c| oauth::fetch(&self.http, &self.targets, timeout, c))
                    .await
                    .map_err(|e| format!("oauth2 token: {e}"))?;
                Ok(Some(Authorization {
                    value: (*token).clone(),
                    shown: format!("Bearer {REDACTED}"),
                    token: Some((token, fresh)),
                }))
            }
        }
    }
}

fn elapsed_ms(started: Instant) -> i32 {
    i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX)
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
pub(crate) fn describe(e: &reqwest::Error) -> String {
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
