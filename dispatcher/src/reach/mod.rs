//! What reaches a receiver besides the signed body: each endpoint's custom
//! headers, authentication and TLS client, loaded and decrypted once per change
//! (a claim carries the options' revision), and its OAuth2 token, shared by all of
//! the endpoint's deliveries on this dispatcher.

pub mod egress;
pub(crate) mod oauth;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookrelay_core::Store;
use hookrelay_core::crypto::Cipher;
use hookrelay_core::request_options::{self, Auth, Header, REDACTED, Secrets, Tls};
use reqwest::header::{HeaderName, HeaderValue};
use uuid::Uuid;

pub use oauth::{Fetched, TokenSource};

/// How a request authenticates.
pub enum Credentials {
    /// Basic or bearer: one `authorization` value, and how it is shown.
    Static {
        value: HeaderValue,
        shown: String,
    },
    OAuth2(TokenSource),
}

/// One endpoint's request options, ready to use.
pub struct Profile {
    rev: i32,
    /// Custom headers, with the value each is shown as in the attempt log.
    pub headers: Vec<(HeaderName, HeaderValue, String)>,
    pub credentials: Option<Credentials>,
    /// A client of its own when it presents a certificate or trusts its own CAs.
    pub client: Option<reqwest::Client>,
    used: Mutex<Instant>,
}

/// Why an endpoint's options could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("request options cannot be read: {0}")]
    Unreadable(String),
    #[error("request options are not usable: {0}")]
    Unusable(String),
    #[error("request options cannot be loaded: {0}")]
    Store(#[from] hookrelay_core::store::StoreError),
}

/// The profiles of the endpoints this dispatcher sends to.
pub struct Profiles {
    store: Store,
    cipher: Cipher,
    endpoints: Mutex<HashMap<Uuid, Arc<Profile>>>,
}

impl Profiles {
    pub fn new(store: Store, cipher: Cipher) -> Self {
        Self { store, cipher, endpoints: Mutex::default() }
    }

    /// `endpoint`'s profile at revision `rev` (`None`: it has no options), loaded
    /// only when the revision is not the one held. `client` makes its TLS client.
    pub async fn get(
        &self,
        endpoint: Uuid,
        rev: i32,
        client: impl FnOnce(Option<&Tls>, Option<&str>) -> Result<Option<reqwest::Client>, String>,
    ) -> Result<Option<Arc<Profile>>, ProfileError> {
        if rev == 0 {
            return Ok(None);
        }
        if let Some(p) = self.held(endpoint, rev) {
            return Ok(Some(p));
        }
        let Some(stored) = self.store.request_options(endpoint).await? else {
            return Ok(None);
        };
        let secrets =
            request_options::open(&self.cipher, endpoint, stored.request_secrets.as_deref())
                .map_err(|e| ProfileError::Unreadable(e.to_string()))?;
        let tls = stored.tls.map(|t| t.0);
        let client =
            client(tls.as_ref(), secrets.client_key.as_deref()).map_err(ProfileError::Unusable)?;
        let profile = Arc::new(Profile {
            rev: stored.request_rev,
            headers: headers(&stored.headers.0, &secrets)?,
            credentials: stored
                .auth
                .map(|a| credentials(a.0, &secrets))
                .transpose()?,
            client,
            used: Mutex::new(Instant::now()),
        });
        // Deliveries that loaded it at once keep the first one made: one token
        // cache per endpoint.
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        match endpoints.get(&endpoint) {
            Some(held) if held.rev >= profile.rev => Ok(Some(held.clone())),
            _ => {
                endpoints.insert(endpoint, profile.clone());
                Ok(Some(profile))
            }
        }
    }

    fn held(&self, endpoint: Uuid, rev: i32) -> Option<Arc<Profile>> {
        let endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        let p = endpoints.get(&endpoint).filter(|p| p.rev >= rev)?;
        *p.used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        Some(p.clone())
    }

    /// Forgets the profiles (and tokens) of endpoints not sent to for `idle`.
    pub fn evict_idle(&self, idle: Duration) -> usize {
        let mut endpoints = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        let before = endpoints.len();
        endpoints.retain(|_, p| p.used.lock().unwrap_or_else(|p| p.into_inner()).elapsed() < idle);
        before - endpoints.len()
    }
}

fn headers(
    list: &[Header],
    secrets: &Secrets,
) -> Result<Vec<(HeaderName, HeaderValue, String)>, ProfileError> {
    list.iter()
        .map(|h| {
            let bad = |e: String| ProfileError::Unusable(format!("header {:?}: {e}", h.name));
            let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|e| bad(e.to_string()))?;
            let (raw, shown) = if h.secret {
                let v = secrets
                    .headers
                    .get(&h.name)
                    .ok_or_else(|| bad("its value is missing".into()))?;
                (v.as_str(), REDACTED.to_string())
            } else {
                (h.value.as_str(), h.value.clone())
            };
            let mut value = HeaderValue::from_str(raw).map_err(|e| bad(e.to_string()))?;
            value.set_sensitive(h.secret);
            Ok((name, value, shown))
        })
        .collect()
}

fn credentials(auth: Auth, secrets: &Secrets) -> Result<Credentials, ProfileError> {
    let secret = secrets
        .credential
        .clone()
        .ok_or_else(|| ProfileError::Unusable("the auth's secret is missing".into()))?;
    let shown = request_options::redacted_authorization(&auth);
    let fixed = |text: String| -> Result<Credentials, ProfileError> {
        let mut value =
            HeaderValue::from_str(&text).map_err(|e| ProfileError::Unusable(e.to_string()))?;
        value.set_sensitive(true);
        Ok(Credentials::Static { value, shown })
    };
    match auth {
        Auth::Basic { username } => {
            use base64::Engine as _;
            let pair =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{secret}"));
            fixed(format!("Basic {pair}"))
        }
        Auth::Bearer {} => fixed(format!("Bearer {secret}")),
        Auth::Oauth2 { token_url, client_id, scope, audience, client_auth } => {
            Ok(Credentials::OAuth2(TokenSource::new(oauth::Client {
                token_url,
                client_id,
                client_secret: secret,
                scope,
                audience,
                client_auth,
            })))
        }
    }
}
