//! The checks on request options: header names and values a receiver can take and
//! that do not break the request, credentials in printable ASCII, an OAuth2 token
//! URL the address rules allow, and PEM that parses into a matching certificate
//! and key.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{Auth, AuthInput, Header, Secrets, Tls, TlsInput};
use crate::target_policy::TargetPolicy;
use crate::validation::Invalid;

pub const MAX_HEADERS: usize = 20;
const MAX_HEADER_NAME: usize = 64;
pub const MAX_HEADER_VALUE: usize = 1024;
pub const MAX_PEM_BYTES: usize = 64 * 1024;
const MAX_URL: usize = 2048;

/// Headers the request itself owns: hop-by-hop ones, framing, the signature's.
pub const FORBIDDEN_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "content-type",
    "content-encoding",
];

fn token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Printable ASCII (space included), at most `max` bytes.
fn printable(what: &str, text: &str, min: usize, max: usize) -> Result<(), Invalid> {
    if text.len() < min || text.len() > max {
        return Err(Invalid(format!("{what} must be {min} to {max} characters")));
    }
    if !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(Invalid(format!("{what} must be printable ASCII")));
    }
    Ok(())
}

/// The custom headers, with `authorization` refused when auth sets it.
pub(super) fn headers(list: &[Header], secrets: &Secrets, has_auth: bool) -> Result<(), Invalid> {
    if list.len() > MAX_HEADERS {
        return Err(Invalid(format!("at most {MAX_HEADERS} custom headers")));
    }
    let mut seen = std::collections::HashSet::new();
    for h in list {
        let name = h.name.to_ascii_lowercase();
        if h.name.is_empty() || h.name.len() > MAX_HEADER_NAME || !h.name.bytes().all(token_char) {
            return Err(Invalid(format!(
                "header name {:?} must be 1 to {MAX_HEADER_NAME} token characters",
                h.name
            )));
        }
        if FORBIDDEN_HEADERS.contains(&name.as_str()) || name.starts_with("webhook-") {
            return Err(Invalid(format!(
                "header {:?} is set by hookrelay and cannot be overridden",
                h.name
            )));
        }
        if name == "authorization" && has_auth {
            return Err(Invalid(
                "header \"authorization\" conflicts with the endpoint's auth".into(),
            ));
        }
        if !seen.insert(name) {
            return Err(Invalid(format!("header {:?} is given twice", h.name)));
        }
        let value = if h.secret {
            secrets
                .headers
                .get(&h.name)
                .map(String::as_str)
                .unwrap_or_default()
        } else {
            h.value.as_str()
        };
        printable(
            &format!("header {:?}'s value", h.name),
            value,
            0,
            MAX_HEADER_VALUE,
        )?;
        if value.starts_with(' ') || value.ends_with(' ') {
            return Err(Invalid(format!(
                "header {:?}'s value must not start or end with a space",
                h.name
            )));
        }
    }
    Ok(())
}

/// The shown part of the auth and its one secret value.
pub(super) fn auth(targets: &TargetPolicy, a: AuthInput) -> Result<(Auth, String), Invalid> {
    Ok(match a {
        AuthInput::Basic { username, password } => {
            printable("auth.username", &username, 1, 256)?;
            if username.contains(':') {
                return Err(Invalid("auth.username must not contain ':'".into()));
            }
            printable("auth.password", &password, 0, 256)?;
            (Auth::Basic { username }, password)
        }
        AuthInput::Bearer { token } => {
            printable("auth.token", &token, 1, 4096)?;
            if token.contains(' ') {
                return Err(Invalid("auth.token must not contain spaces".into()));
            }
            (Auth::Bearer {}, token)
        }
        AuthInput::Oauth2 {
            token_url,
            client_id,
            client_secret,
            scope,
            audience,
            client_auth,
        } => {
            if token_url.len() > MAX_URL {
                return Err(Invalid(format!(
                    "auth.token_url must be at most {MAX_URL} characters"
                )));
            }
            targets
                .check_url(&token_url)
                .map_err(|e| Invalid(format!("auth.token_url: {e}")))?;
            printable("auth.client_id", &client_id, 1, 256)?;
            printable("auth.client_secret", &client_secret, 1, 1024)?;
            for (what, v) in [("auth.scope", &scope), ("auth.audience", &audience)] {
                if let Some(v) = v {
                    printable(what, v, 0, 1024)?;
                }
            }
            let blank = |v: Option<String>| v.filter(|v| !v.is_empty());
            (
                Auth::Oauth2 {
                    token_url,
                    client_id,
                    scope: blank(scope),
                    audience: blank(audience),
                    client_auth,
                },
                client_secret,
            )
        }
    })
}

/// Certificates in a PEM text, at least one.
pub fn certificates(what: &str, pem: &str) -> Result<Vec<CertificateDer<'static>>, Invalid> {
    if pem.len() > MAX_PEM_BYTES {
        return Err(Invalid(format!(
            "{what} must be at most {MAX_PEM_BYTES} bytes"
        )));
    }
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Invalid(format!("{what} is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Invalid(format!("{what} holds no PEM certificate")));
    }
    Ok(certs)
}

/// A private key in PEM.
pub fn private_key(pem: &str) -> Result<PrivateKeyDer<'static>, Invalid> {
    if pem.len() > MAX_PEM_BYTES {
        return Err(Invalid(format!(
            "tls.client_key must be at most {MAX_PEM_BYTES} bytes"
        )));
    }
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| Invalid("tls.client_key holds no PEM private key".into()))
}

/// The shown part of the TLS settings and the client key.
pub(super) fn tls(t: TlsInput) -> Result<(Tls, Option<String>), Invalid> {
    match (&t.client_certificate, &t.client_key) {
        (Some(cert), Some(key)) => {
            let chain = certificates("tls.client_certificate", cert)?;
            let der = private_key(key)?;
            let provider = rustls::crypto::ring::default_provider();
            rustls::sign::CertifiedKey::from_der(chain, der, &provider).map_err(|e| {
                Invalid(format!(
                    "tls.client_key does not fit tls.client_certificate: {e}"
                ))
            })?;
        }
        (None, None) => {}
        _ => {
            return Err(Invalid(
                "tls.client_certificate and tls.client_key go together".into(),
            ));
        }
    }
    if let Some(ca) = &t.ca_bundle {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates("tls.ca_bundle", ca)? {
            roots
                .add(cert)
                .map_err(|e| Invalid(format!("tls.ca_bundle: {e}")))?;
        }
    }
    if t.client_certificate.is_none() && t.ca_bundle.is_none() {
        return Err(Invalid(
            "tls needs a client certificate, a CA bundle or both".into(),
        ));
    }
    Ok((
        Tls {
            client_key_set: t.client_key.is_some(),
            client_certificate: t.client_certificate,
            ca_bundle: t.ca_bundle,
        },
        t.client_key,
    ))
}
