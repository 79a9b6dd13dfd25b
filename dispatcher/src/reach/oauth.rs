//! OAuth2 client credentials: the token is fetched from the token endpoint (by
//! the same address rules and egress as deliveries), cached until shortly before
//! it expires, shared by every delivery of the endpoint, and fetched again once
//! when the receiver answers `401` to it.

use std::sync::Arc;
use std::time::Duration;

use hookrelay_core::request_options::ClientAuth;
use hookrelay_core::target_policy::TargetPolicy;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use tokio::time::Instant;

/// Token responses are read up to this size.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;
/// A token is fetched again this long before it expires (or a quarter of its
/// life, when that is shorter).
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);

/// The client's registration at the token endpoint.
pub struct Client {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub client_auth: ClientAuth,
}

/// A token as the token endpoint gave it.
#[derive(Debug, Deserialize)]
pub struct Fetched {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

struct Cached {
    /// `Bearer <token>`, sensitive.
    value: Arc<HeaderValue>,
    /// `None`: no lifetime given; kept until a `401`.
    refresh_at: Option<Instant>,
}

/// One endpoint's token.
pub struct TokenSource {
    client: Client,
    cached: tokio::sync::Mutex<Option<Cached>>,
}

impl TokenSource {
    pub fn new(client: Client) -> Self {
        Self { client, cached: tokio::sync::Mutex::new(None) }
    }

    /// The token to send, and whether it was fetched just now. Deliveries that
    /// need one while it is being fetched wait for that fetch.
    pub async fn token<'s, F, Fut>(&'s self, fetch: F) -> Result<(Arc<HeaderValue>, bool), String>
    where
        F: FnOnce(&'s Client) -> Fut,
        Fut: Future<Output = Result<Fetched, String>>,
    {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached
            .as_ref()
            .filter(|c| c.refresh_at.is_none_or(|at| Instant::now() < at))
        {
            return Ok((c.value.clone(), false));
        }
        let fetched = fetch(&self.client).await?;
        let mut value = HeaderValue::from_str(&format!("Bearer {}", fetched.access_token))
            .map_err(|_| {
                "the token endpoint gave a token that cannot be sent in a header".to_string()
            })?;
        value.set_sensitive(true);
        let value = Arc::new(value);
        let refresh_at = fetched.expires_in.map(|secs| {
            let life = Duration::from_secs(secs);
            Instant::now() + life - EXPIRY_MARGIN.min(life / 4)
        });
        *cached = Some(Cached { value: value.clone(), refresh_at });
        Ok((value, true))
    }

    /// Forgets the token the receiver refused, unless another one replaced it already.
    pub async fn refused(&self, used: &Arc<HeaderValue>) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| Arc::ptr_eq(&c.value, used)) {
            *cached = None;
        }
    }
}

/// Asks the token endpoint for a token with the client credentials grant.
pub async fn fetch(
    http: &reqwest::Client,
    targets: &TargetPolicy,
    timeout: Duration,
    c: &Client,
) -> Result<Fetched, String> {
    targets
        .check_url(&c.token_url)
        .map_err(|e| format!("token endpoint blocked: {e}"))?;
    let body = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if let Some(scope) = &c.scope {
            form.append_pair("scope", scope);
        }
        if let Some(audience) = &c.audience {
            form.append_pair("audience", audience);
        }
        if c.client_auth == ClientAuth::Body {
            form.append_pair("client_id", &c.client_id);
            form.append_pair("client_secret", &c.client_secret);
        }
        form.finish()
    };
    let mut request = http
        .post(&c.token_url)
        .timeout(timeout)
        .header("accept", "application/json")
        .header("content-type", "application/x-www-form-urlencoded");
    if c.client_auth == ClientAuth::Basic {
        let encode =
            |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        request = request.basic_auth(encode(&c.client_id), Some(encode(&c.client_secret)));
    }
    let mut response = request
        .body(body)
        .send()
        .await
        .map_err(|e| format!("token request failed: {}", crate::client::describe(&e)))?;
    let status = response.status();
    let mut body = Vec::new();
    while body.len() < MAX_TOKEN_RESPONSE {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => {
                return Err(format!(
                    "token response unreadable: {}",
                    crate::client::describe(&e)
                ));
            }
        }
    }
    if !status.is_success() {
        return Err(format!("token endpoint answered HTTP {}", status.as_u16()));
    }
    serde_json::from_slice::<Fetched>(&body)
        .map_err(|_| "token endpoint answered without an access_token".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn source() -> TokenSource {
        TokenSource::new(Client {
            token_url: "https://auth.example.com/token".into(),
            client_id: "id".into(),
            client_secret: "secret".into(),
            scope: None,
            audience: None,
            client_auth: ClientAuth::Basic,
        })
    }

    async fn token(
        s: &TokenSource,
        fetches: &AtomicU32,
        life: Option<u64>,
    ) -> (Arc<HeaderValue>, bool) {
        s.token(|_| async {
            let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(Fetched { access_token: format!("t{n}"), expires_in: life })
        })
        .await
        .expect("token")
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_serves_until_shortly_before_it_expires() {
        let (s, fetches) = (source(), AtomicU32::new(0));
        let (first, fresh) = token(&s, &fetches, Some(300)).await;
        assert!(fresh);
        tokio::time::advance(Duration::from_secs(269)).await;
        let (again, fresh) = token(&s, &fetches, Some(300)).await;
        assert!(!fresh && Arc::ptr_eq(&first, &again));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // 30 s before expiry it is fetched again, once.
        tokio::time::advance(Duration::from_secs(2)).await;
        let (renewed, fresh) = token(&s, &fetches, Some(300)).await;
        assert!(fresh);
        assert_eq!(renewed.to_str().expect("ascii"), "Bearer t2");
        token(&s, &fetches, Some(300)).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_token_is_fetched_again_once() {
        let (s, fetches) = (source(), AtomicU32::new(0));
        let (used, _) = token(&s, &fetches, None).await;
        tokio::time::advance(Duration::from_secs(86_400)).await;
        assert!(!token(&s, &fetches, None).await.1, "no lifetime: kept");
        // Two deliveries are refused with the same token: one new fetch.
        s.refused(&used).await;
        let (new, fresh) = token(&s, &fetches, None).await;
        assert!(fresh);
        s.refused(&used).await;
        let (still, fresh) = token(&s, &fetches, None).await;
        assert!(!fresh && Arc::ptr_eq(&new, &still));
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_fetch_is_not_cached() {
        let s = source();
        let failed = s
            .token(|_| async { Err::<Fetched, _>("down".to_string()) })
            .await;
        assert_eq!(failed.err().as_deref(), Some("down"));
        let fetches = AtomicU32::new(0);
        assert!(token(&s, &fetches, Some(60)).await.1);
    }
}
