//! The kinds of value settings hold, each parsed and checked once when the
//! settings are read: URLs, PEM files, names, keys, ranges, durations; and
//! `Sensitive`, which keeps secrets out of logs.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::target_policy::parse_cidrs;

/// A value that must never reach logs (passwords in URLs, tokens, keys).
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> std::fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

pub(super) fn postgres_url(v: &str) -> Result<Sensitive<String>, String> {
    if v.starts_with("postgres://") || v.starts_with("postgresql://") {
        Ok(Sensitive::new(v.to_string()))
    } else {
        Err("must be a postgres:// URL".into())
    }
}

pub(super) fn amqp_url(v: &str) -> Result<Sensitive<String>, String> {
    let nodes: Vec<&str> = v.split(',').map(str::trim).collect();
    for node in &nodes {
        if !(node.starts_with("amqp://") || node.starts_with("amqps://")) {
            return Err(
                "must be an amqp:// or amqps:// URL, or a comma-separated list of them".into(),
            );
        }
        if let Err(e) = node.parse::<lapin::uri::AMQPUri>() {
            return Err(format!("a node's URL does not parse: {e}"));
        }
    }
    Ok(Sensitive::new(nodes.join(",")))
}

/// A PEM file, read and checked when the settings are: a missing or garbled file
/// stops the process at start rather than at its first connection.
#[derive(Clone)]
pub struct PemFile {
    path: PathBuf,
    pem: std::sync::Arc<[u8]>,
}

impl PemFile {
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
    pub fn pem(&self) -> &[u8] {
        &self.pem
    }
}

impl std::fmt::Debug for PemFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PemFile({})", self.path.display())
    }
}

pub(super) fn pem_file(v: &str) -> Result<PemFile, String> {
    let path = PathBuf::from(v);
    let pem = std::fs::read(&path).map_err(|e| format!("cannot read {v}: {e}"))?;
    if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(format!("{v} holds no PEM block (-----BEGIN ...)"));
    }
    Ok(PemFile { path, pem: pem.into() })
}

pub(super) fn queue_prefix(v: &str) -> Result<String, String> {
    let ok = v.len() <= 64
        && v.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch));
    if ok {
        Ok(v.to_string())
    } else {
        Err("use at most 64 letters, digits, '-', '_' or '.'".into())
    }
}

pub(super) fn admin_token(v: &str) -> Result<Sensitive<String>, String> {
    if v.len() >= 16 {
        Ok(Sensitive::new(v.to_string()))
    } else {
        Err("must be at least 16 characters".into())
    }
}

pub(super) fn public_url(v: &str) -> Result<String, String> {
    let url = url::Url::parse(v).map_err(|e| e.to_string())?;
    let origin_only = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if origin_only {
        Ok(url.origin().ascii_serialization())
    } else {
        Err("must be an http or https origin such as https://hooks.example.com (no path)".into())
    }
}

pub(super) fn key_entry(v: &str) -> Result<Sensitive<(String, [u8; 32])>, String> {
    let (id, key) = v
        .trim()
        .split_once(':')
        .ok_or_else(|| "each key is id:base64, e.g. k2:BASE64".to_string())?;
    if !crate::crypto::valid_key_id(id) {
        return Err(format!(
            "key id {id:?} must be 1 to {} of A-Z a-z 0-9 _ -",
            crate::crypto::MAX_KEY_ID_LEN
        ));
    }
    Ok(Sensitive::new((
        id.to_string(),
        *encryption_key(key)?.expose(),
    )))
}

pub(super) fn encryption_key(v: &str) -> Result<Sensitive<[u8; 32]>, String> {
    let bytes = BASE64.decode(v).map_err(|_| "must be base64".to_string())?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "must decode to exactly 32 bytes (openssl rand -base64 32)".to_string())?;
    Ok(Sensitive::new(key))
}

pub(super) fn cidr(v: &str) -> Result<ipnet::IpNet, String> {
    let mut list = parse_cidrs(v)?;
    match (list.pop(), list.is_empty()) {
        (Some(net), true) => Ok(net),
        _ => Err(format!("{v:?} is not a CIDR range")),
    }
}

/// An `http://[user:password@]host[:port]` proxy URL.
pub(super) fn proxy_url(v: &str) -> Result<Sensitive<String>, String> {
    match url::Url::parse(v) {
        Ok(u) if u.scheme() == "http" && u.host_str().is_some() && u.path() == "/" => {
            Ok(Sensitive::new(v.to_string()))
        }
        Ok(_) => Err("expected http://[user:password@]host:port (an HTTP CONNECT proxy)".into()),
        Err(e) => Err(format!("not a URL: {e}")),
    }
}

pub(super) fn fraction(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err(format!(
            "expected a fraction above 0 and at most 1, got {v:?}"
        )),
    }
}

/// A parser for durations such as `15s` or `2m` within [`min`, `max`].
pub(super) fn duration_in(
    min: Duration,
    max: Duration,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |v: &str| {
        let d = humantime::parse_duration(v.trim())
            .map_err(|_| format!("expected a duration such as 15s or 2m, got {v:?}"))?;
        if d < min || d > max {
            return Err(format!(
                "must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ));
        }
        Ok(d)
    }
}
