//! An endpoint's request options: custom headers, authentication (HTTP basic, a
//! bearer token, OAuth2 client credentials) and TLS (a client certificate, a CA
//! bundle to trust instead of the system roots). The public parts are stored and
//! shown as they are; every secret value lives apart in one encrypted document and
//! is shown as `***`.

#[cfg(test)]
mod tests;
mod validate;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use validate::{FORBIDDEN_HEADERS, MAX_HEADER_VALUE, MAX_HEADERS, MAX_PEM_BYTES};

use crate::crypto::{Cipher, CryptoError};
use crate::target_policy::TargetPolicy;
use crate::validation::Invalid;

/// What a secret value is shown as, wherever it is shown.
pub const REDACTED: &str = "***";

/// A custom header as the API takes it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderInput {
    /// A token; not one the request owns (hop-by-hop headers, `host`,
    /// `content-*`, `webhook-*`), not given twice, and not `authorization`
    /// when the endpoint has `auth`.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^(?!([Cc][Oo][Nn][Nn][Ee][Cc][Tt][Ii][Oo][Nn]|[Kk][Ee][Ee][Pp]-[Aa][Ll][Ii][Vv][Ee]|[Pp][Rr][Oo][Xx][Yy]-[Aa][Uu][Tt][Hh][Ee][Nn][Tt][Ii][Cc][Aa][Tt][Ee]|[Pp][Rr][Oo][Xx][Yy]-[Aa][Uu][Tt][Hh][Oo][Rr][Ii][Zz][Aa][Tt][Ii][Oo][Nn]|[Pp][Rr][Oo][Xx][Yy]-[Cc][Oo][Nn][Nn][Ee][Cc][Tt][Ii][Oo][Nn]|[Tt][Ee]|[Tt][Rr][Aa][Ii][Ll][Ee][Rr]|[Tt][Rr][Aa][Nn][Ss][Ff][Ee][Rr]-[Ee][Nn][Cc][Oo][Dd][Ii][Nn][Gg]|[Uu][Pp][Gg][Rr][Aa][Dd][Ee]|[Hh][Oo][Ss][Tt]|[Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[Ll][Ee][Nn][Gg][Tt][Hh]|[Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[Tt][Yy][Pp][Ee]|[Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[Ee][Nn][Cc][Oo][Dd][Ii][Nn][Gg])$)(?![Ww][Ee][Bb][Hh][Oo][Oo][Kk]-)[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$"
    )]
    pub name: String,
    /// Printable ASCII. With `secret: true` on a change, leaving it out keeps the
    /// value stored under the same name.
    #[serde(default)]
    #[schema(max_length = 1024, pattern = "^([!-~]([ -~]*[!-~])?)?$")]
    pub value: Option<String>,
    /// Stored encrypted and shown as `***` from now on.
    #[serde(default)]
    pub secret: bool,
}

/// A custom header as stored and shown: a secret one's value is `***`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Header {
    pub name: String,
    pub value: String,
    pub secret: bool,
}

/// How OAuth2 client credentials are presented to the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP basic with the client id and secret (RFC 6749 2.3.1).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Body,
}

/// Endpoint authentication as the API takes it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthInput {
    Basic {
        #[schema(min_length = 1, max_length = 256, pattern = "^[ -9;-~]+$")]
        username: String,
        #[schema(max_length = 256, pattern = "^[ -~]*$")]
        password: String,
    },
    Bearer {
        #[schema(min_length = 1, max_length = 4096, pattern = "^[!-~]+$")]
        token: String,
    },
    /// OAuth2 client credentials: a token is fetched from `token_url`, cached until
    /// shortly before it expires, and fetched again once on a `401`.
    Oauth2 {
        /// Checked by the same address rules as endpoint URLs.
        #[schema(
            max_length = 2048,
            pattern = "^(?!https?://[^/]*[xX][nN]--)https?://([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~!$&()*+,;=:@/-]*)?$",
            example = "https://auth.example.com/oauth/token"
        )]
        token_url: String,
        #[schema(min_length = 1, max_length = 256, pattern = "^[ -~]+$")]
        client_id: String,
        #[schema(min_length = 1, max_length = 1024, pattern = "^[ -~]+$")]
        client_secret: String,
        #[serde(default)]
        #[schema(max_length = 1024, pattern = "^[ -~]*$")]
        scope: Option<String>,
        #[serde(default)]
        #[schema(max_length = 1024, pattern = "^[ -~]*$")]
        audience: Option<String>,
        #[serde(default)]
        client_auth: ClientAuth,
    },
}

/// Endpoint authentication as stored and shown (no secret in it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Auth {
    /// HTTP basic; the password is stored encrypted.
    Basic { username: String },
    /// A static bearer token, stored encrypted.
    Bearer {},
    /// OAuth2 client credentials; the client secret is stored encrypted.
    Oauth2 {
        token_url: String,
        client_id: String,
        scope: Option<String>,
        audience: Option<String>,
        client_auth: ClientAuth,
    },
}

/// TLS towards the endpoint as the API takes it.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsInput {
    /// PEM: the client certificate (and its chain) presented to the receiver.
    #[serde(default)]
    #[schema(max_length = 65536)]
    pub client_certificate: Option<String>,
    /// PEM: its private key (PKCS#8, PKCS#1 or SEC1), stored encrypted.
    #[serde(default)]
    #[schema(max_length = 65536)]
    pub client_key: Option<String>,
    /// PEM: the CAs to trust for this endpoint instead of the system roots.
    #[serde(default)]
    #[schema(max_length = 65536)]
    pub ca_bundle: Option<String>,
}

/// TLS towards the endpoint as stored and shown: the key is never shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tls {
    pub client_certificate: Option<String>,
    /// Whether a client key is stored (it is never shown).
    pub client_key_set: bool,
    pub ca_bundle: Option<String>,
}

/// The secret values, stored encrypted as one JSON document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    /// Secret headers' values, by the header's name as given.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The basic password, bearer token or OAuth2 client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
}

impl Secrets {
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.credential.is_none() && self.client_key.is_none()
    }
}

/// Everything an endpoint's requests carry beyond body and signature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOptions {
    pub headers: Vec<Header>,
    pub auth: Option<Auth>,
    pub tls: Option<Tls>,
    pub secrets: Secrets,
}

/// A change to the options: each part absent leaves it, `Some(None)` removes it.
#[derive(Debug, Default)]
pub struct OptionsChange {
    pub headers: Option<Option<Vec<HeaderInput>>>,
    pub auth: Option<Option<AuthInput>>,
    pub tls: Option<Option<TlsInput>>,
}

impl OptionsChange {
    pub fn is_empty(&self) -> bool {
        self.headers.is_none() && self.auth.is_none() && self.tls.is_none()
    }

    /// The names of the parts it changes (for the audit log).
    pub fn fields(&self) -> impl Iterator<Item = &'static str> {
        [
            ("headers", self.headers.is_some()),
            ("auth", self.auth.is_some()),
            ("tls", self.tls.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
    }

    /// The options after this change to `current`, every part checked: a
    /// secret header given without a value keeps the one stored under its name.
    pub fn apply(
        self,
        targets: &TargetPolicy,
        current: &RequestOptions,
    ) -> Result<RequestOptions, Invalid> {
        let mut next = current.clone();
        if let Some(headers) = self.headers {
            next.secrets.headers.clear();
            next.headers.clear();
            for h in headers.unwrap_or_default() {
                let value = match h.value {
                    Some(v) => v,
                    None if h.secret => {
                        current
                            .secrets
                            .headers
                            .get(&h.name)
                            .cloned()
                            .ok_or_else(|| {
                                Invalid(format!("header {:?}: a value is required", h.name))
                            })?
                    }
                    None => {
                        return Err(Invalid(format!("header {:?}: a value is required", h.name)));
                    }
                };
                if h.secret {
                    next.secrets.headers.insert(h.name.clone(), value);
                    next.headers.push(Header {
                        name: h.name,
                        value: REDACTED.into(),
                        secret: true,
                    });
                } else {
                    next.headers
                        .push(Header { name: h.name, value, secret: false });
                }
            }
        }
        if let Some(auth) = self.auth {
            let (shown, credential) = match auth {
                None => (None, None),
                Some(a) => {
                    let (shown, credential) = validate::auth(targets, a)?;
                    (Some(shown), Some(credential))
                }
            };
            next.auth = shown;
            next.secrets.credential = credential;
        }
        if let Some(tls) = self.tls {
            let (shown, key) = match tls {
                None => (None, None),
                Some(t) => {
                    let (shown, key) = validate::tls(t)?;
                    (Some(shown), key)
                }
            };
            next.tls = shown;
            next.secrets.client_key = key;
        }
        validate::headers(&next.headers, &next.secrets, next.auth.is_some())?;
        Ok(next)
    }

    /// The options a new endpoint starts with.
    pub fn new_options(self, targets: &TargetPolicy) -> Result<RequestOptions, Invalid> {
        self.apply(targets, &RequestOptions::default())
    }
}

/// Additional data that binds an endpoint's encrypted options to its row and
/// keeps them apart from its signing secrets.
fn aad(endpoint: uuid::Uuid) -> Vec<u8> {
    let mut aad = endpoint.as_bytes().to_vec();
    aad.extend_from_slice(b"/request");
    aad
}

/// Encrypts the secret values (`None` when there are none).
pub fn seal(cipher: &Cipher, endpoint: uuid::Uuid, secrets: &Secrets) -> Option<Vec<u8>> {
    if secrets.is_empty() {
        return None;
    }
    let plain = serde_json::to_vec(secrets).expect("secrets serialize");
    Some(cipher.encrypt(&plain, &aad(endpoint)))
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("stored request secrets are malformed")]
    Malformed,
}

/// Decrypts what `seal` made.
pub fn open(
    cipher: &Cipher,
    endpoint: uuid::Uuid,
    sealed: Option<&[u8]>,
) -> Result<Secrets, OpenError> {
    let Some(sealed) = sealed else {
        return Ok(Secrets::default());
    };
    let plain = cipher.decrypt(sealed, &aad(endpoint))?;
    serde_json::from_slice(&plain).map_err(|_| OpenError::Malformed)
}

/// Re-encrypts sealed options under the current key; `None` when already current.
pub fn reseal(
    cipher: &Cipher,
    endpoint: uuid::Uuid,
    sealed: &[u8],
) -> Result<Option<Vec<u8>>, CryptoError> {
    if cipher.is_current(sealed) {
        return Ok(None);
    }
    let plain = cipher.decrypt(sealed, &aad(endpoint))?;
    Ok(Some(cipher.encrypt(&plain, &aad(endpoint))))
}

/// The value shown for an `authorization` header this auth sends.
pub fn redacted_authorization(auth: &Auth) -> String {
    match auth {
        Auth::Basic { .. } => format!("Basic {REDACTED}"),
        Auth::Bearer {} | Auth::Oauth2 { .. } => format!("Bearer {REDACTED}"),
    }
}
