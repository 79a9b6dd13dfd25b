//! The client's address behind trusted proxies (`HOOKRELAY_TRUSTED_PROXIES`): when
//! the TCP peer is a trusted proxy, the request's recorded address becomes the
//! nearest `X-Forwarded-For` entry that is not one, so the failed-authentication
//! limits, the operator sign-in limit and the audit log see the real client.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// `app`, seeing clients through `trusted` proxies (unchanged when there are none).
pub fn behind(app: axum::Router, trusted: &[IpNet]) -> axum::Router {
    if trusted.is_empty() {
        return app;
    }
    app.layer(axum::middleware::from_fn_with_state(
        Arc::<[IpNet]>::from(trusted),
        resolve,
    ))
}

/// Rewrites the request's `ConnectInfo` to the client's address.
async fn resolve(
    State(trusted): State<Arc<[IpNet]>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if let Some(peer) = peer {
        let client = client_of(peer.ip(), request.headers(), &trusted);
        if client != peer.ip() {
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(client, peer.port())));
        }
    }
    next.run(request).await
}

/// Walks `X-Forwarded-For` from the nearest hop while each hop is trusted. An entry
/// that is not an address ends the walk at the last hop that was.
fn client_of(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |a: &IpAddr| trusted.iter().any(|n| n.contains(a));
    let mut client = peer;
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.iter().rev() {
        if !is_trusted(&client) {
            break;
        }
        match parse_hop(hop.trim()) {
            Some(a) => client = a,
            None => break,
        }
    }
    client
}

/// An address, with or without a port (`203.0.113.7`, `[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().expect("header value"));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn a_trusted_proxy_hands_over_the_nearest_untrusted_forwarded_address() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("cidr")];
        let lb = ip("10.1.2.3");
        // The client's own claim (first) is not believed past an untrusted hop.
        let h = headers(&["198.51.100.9, 203.0.113.7", "10.9.9.9"]);
        assert_eq!(client_of(lb, &h, &trusted), ip("203.0.113.7"));
        assert_eq!(
            client_of(lb, &headers(&["[2001:db8::1]:443"]), &trusted),
            ip("2001:db8::1")
        );
        // Garbage ends the walk at the last trusted hop.
        assert_eq!(
            client_of(lb, &headers(&["203.0.113.7, nonsense"]), &trusted),
            lb
        );
        assert_eq!(client_of(lb, &HeaderMap::new(), &trusted), lb);
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("cidr")];
        let peer = ip("203.0.113.50");
        let h = headers(&["198.51.100.9"]);
        assert_eq!(client_of(peer, &h, &trusted), peer);
        assert_eq!(client_of(ip("10.0.0.1"), &h, &[]), ip("10.0.0.1"));
    }
}
