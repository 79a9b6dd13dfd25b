//! Egress through the operator's proxy (`HOOKRELAY_EGRESS_PROXY`, HTTP `CONNECT`)
//! without letting the proxy choose where to connect. Requests go to a relay on
//! loopback inside this process; it resolves each target by the address rules
//! and asks the proxy for a tunnel to that checked address only, so the proxy
//! never resolves a name (and can never be a way into private networks).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use hookrelay_core::target_policy::TargetPolicy;
use http_body_util::{BodyExt as _, Empty, combinators::BoxBody};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::resolver::GuardedResolver;

/// A proxy's answer to `CONNECT` is read up to this size.
const MAX_CONNECT_RESPONSE: usize = 8 * 1024;
/// How long the proxy may take to open a tunnel.
const TUNNEL_TIMEOUT: Duration = Duration::from_secs(10);

/// The operator's proxy: where it listens, and its credentials if it wants some.
#[derive(Clone, Debug)]
pub struct ProxyAddr {
    host: String,
    port: u16,
    /// `Basic <base64>` when the URL carries a user.
    authorization: Option<String>,
}

impl ProxyAddr {
    /// An `http://[user:password@]host:port` URL.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = url::Url::parse(raw).map_err(|e| format!("HOOKRELAY_EGRESS_PROXY: {e}"))?;
        if url.scheme() != "http" {
            return Err(
                "HOOKRELAY_EGRESS_PROXY must be an http:// proxy URL (HTTP CONNECT)".into(),
            );
        }
        let host = url
            .host_str()
            .ok_or("HOOKRELAY_EGRESS_PROXY names no host")?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let authorization = (!url.username().is_empty()).then(|| {
            let pair = format!(
                "{}:{}",
                decode(url.username()),
                decode(url.password().unwrap_or(""))
            );
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        Ok(Self {
            host,
            port: url.port().unwrap_or(3128),
            authorization,
        })
    }

    /// A tunnel through the proxy to `target`, an address already checked.
    async fn tunnel(&self, target: SocketAddr) -> Result<TcpStream, String> {
        let open = async {
            let mut stream = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| format!("egress proxy unreachable: {e}"))?;
            let _ = stream.set_nodelay(true);
            let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
            if let Some(auth) = &self.authorization {
                head.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
            }
            head.push_str("\r\n");
            stream
                .write_all(head.as_bytes())
                .await
                .map_err(|e| format!("egress proxy: {e}"))?;
            // Byte by byte up to the blank line: nothing of the tunnel is read.
            let mut answer = Vec::with_capacity(128);
            while !answer.ends_with(b"\r\n\r\n") {
                if answer.len() >= MAX_CONNECT_RESPONSE {
                    return Err("egress proxy: answer to CONNECT too long".to_string());
                }
                let b = stream
                    .read_u8()
                    .await
                    .map_err(|e| format!("egress proxy closed: {e}"))?;
                answer.push(b);
            }
            let line = String::from_utf8_lossy(&answer);
            let status = line.split_whitespace().nth(1).unwrap_or_default();
            if status != "200" {
                let first = line.lines().next().unwrap_or_default().to_string();
                return Err(format!("egress proxy refused the tunnel: {first}"));
            }
            Ok(stream)
        };
        tokio::time::timeout(TUNNEL_TIMEOUT, open)
            .await
            .map_err(|_| "egress proxy: no tunnel in time".to_string())?
    }
}

type Body = BoxBody<Bytes, hyper::Error>;

fn answer(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(
        http_body_util::Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|e| match e {})
            .boxed(),
    );
    *r.status_mut() = status;
    r
}

/// Plain-HTTP connections through tunnels, kept per checked address for the
/// next request to the same receiver (at most `POOLED_PER_TARGET` each).
type Pool = std::sync::Mutex<std::collections::HashMap<SocketAddr, Vec<Sender>>>;
type Sender = hyper::client::conn::http1::SendRequest<hyper::body::Incoming>;
const POOLED_PER_TARGET: usize = 64;

struct RelayState {
    proxy: ProxyAddr,
    targets: Arc<TargetPolicy>,
    pool: Pool,
}

/// The relay's loopback address, to give reqwest as its proxy.
pub struct Relay {
    pub url: String,
}

/// Starts the relay in front of `proxy`; it lives as long as the runtime.
pub fn start(proxy: ProxyAddr, targets: Arc<TargetPolicy>) -> std::io::Result<Relay> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let url = format!("http://{}", listener.local_addr()?);
    let relay = Arc::new(RelayState { proxy, targets, pool: Pool::default() });
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let relay = relay.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let relay = relay.clone();
                    async move { Ok::<_, std::convert::Infallible>(relay_one(&relay, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Ok(Relay { url })
}

/// The target's address, resolved and checked here.
async fn checked(targets: &TargetPolicy, host: &str, port: u16) -> Option<SocketAddr> {
    let host = host.trim_matches(|c| c == '[' || c == ']');
    let ip = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => targets.permits(ip).then_some(ip)?,
        Err(_) => GuardedResolver::lookup(targets, host)
            .await
            .ok()?
            .first()?
            .ip(),
    };
    Some(SocketAddr::new(ip, port))
}

async fn relay_one(relay: &RelayState, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let Some(authority) = req.uri().authority().cloned() else {
        return answer(StatusCode::BAD_REQUEST, "absolute URI or CONNECT expected");
    };
    let https = req.method() == Method::CONNECT;
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let Some(target) = checked(&relay.targets, authority.host(), port).await else {
        tracing::info!(target = %authority, "egress refused: the target is not permitted");
        return answer(StatusCode::FORBIDDEN, "target not permitted");
    };
    if !https {
        return forward(relay, target, req).await;
    }
    let tunnel = match relay.proxy.tunnel(target).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(target = %authority, error = %e, "egress proxy gave no tunnel");
            return answer(StatusCode::BAD_GATEWAY, "egress proxy gave no tunnel");
        }
    };
    tokio::spawn(async move {
        if let Ok(upgraded) = hyper::upgrade::on(req).await {
            let mut upgraded = TokioIo::new(upgraded);
            let mut tunnel = tunnel;
            let _ = tokio::io::copy_bidirectional(&mut upgraded, &mut tunnel).await;
        }
    });
    Response::new(Empty::new().map_err(|e| match e {}).boxed())
}

/// A plain-HTTP request through a tunnel to `target`, in origin form: one kept
/// from an earlier request when one is free, else a new one.
async fn forward(
    relay: &RelayState,
    target: SocketAddr,
    mut req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let pooled = {
        let mut pool = relay.pool.lock().unwrap_or_else(|p| p.into_inner());
        let list = pool.entry(target).or_default();
        list.retain(|s| !s.is_closed());
        list.pop()
    };
    // A kept connection the receiver has closed meanwhile gives way to a new one.
    let pooled = match pooled {
        Some(mut s) => s.ready().await.is_ok().then_some(s),
        None => None,
    };
    let mut sender = match pooled {
        Some(s) => s,
        None => match open(relay, target).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%target, error = %e, "egress proxy gave no tunnel");
                return answer(StatusCode::BAD_GATEWAY, "egress proxy gave no tunnel");
            }
        },
    };
    if sender.ready().await.is_err() {
        return answer(StatusCode::BAD_GATEWAY, "egress tunnel failed");
    }
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    *req.uri_mut() = path.parse().unwrap_or_default();
    req.headers_mut().remove("proxy-connection");
    req.headers_mut().remove("proxy-authorization");
    let response = sender.send_request(req).await;
    // Free for the next request once this response's body is read.
    {
        let mut pool = relay.pool.lock().unwrap_or_else(|p| p.into_inner());
        let list = pool.entry(target).or_default();
        if list.len() < POOLED_PER_TARGET && !sender.is_closed() {
            list.push(sender);
        }
    }
    match response {
        Ok(response) => response.map(|b| b.boxed()),
        Err(_) => answer(StatusCode::BAD_GATEWAY, "egress tunnel failed"),
    }
}

/// A new HTTP/1.1 connection through a new tunnel.
async fn open(relay: &RelayState, target: SocketAddr) -> Result<Sender, String> {
    let tunnel = relay.proxy.tunnel(target).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tunnel))
        .await
        .map_err(|e| format!("egress tunnel: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_url_gives_its_address_and_credentials() {
        let p = ProxyAddr::parse("http://us%40er:p%3Ass+w@proxy.internal:3129").expect("valid");
        assert_eq!((p.host.as_str(), p.port), ("proxy.internal", 3129));
        let pair = base64::engine::general_purpose::STANDARD.encode("us@er:p:ss+w");
        assert_eq!(p.authorization, Some(format!("Basic {pair}")));
        let plain = ProxyAddr::parse("http://127.0.0.1").expect("valid");
        assert_eq!((plain.port, plain.authorization), (3128, None));
        assert!(ProxyAddr::parse("socks5://127.0.0.1:1080").is_err());
    }
}
