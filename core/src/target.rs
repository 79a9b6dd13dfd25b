//! Endpoint URL rules: http(s) only, and no private, loopback, link-local or other
//! non-public literal addresses unless the operator allows them
//! (`HOOKRELAY_ALLOW_PRIVATE_TARGETS`). Hostnames are checked again on every send.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

pub const MAX_URL_LEN: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("url is not a valid absolute URL")]
    Invalid,
    #[error("url must use http or https")]
    Scheme,
    #[error("url must not carry credentials")]
    Credentials,
    #[error("url is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error(
        "url points to a private, loopback or reserved address, which this installation does not allow"
    )]
    Private,
}

/// Parses and checks an endpoint URL.
pub fn check_url(raw: &str, allow_private: bool) -> Result<Url, TargetError> {
    if raw.len() > MAX_URL_LEN {
        return Err(TargetError::TooLong);
    }
    let url = Url::parse(raw).map_err(|_| TargetError::Invalid)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    let private = match url.host() {
        None => return Err(TargetError::Invalid),
        Some(Host::Ipv4(ip)) => is_non_public(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => is_non_public(IpAddr::V6(ip)),
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
    };
    if private && !allow_private {
        return Err(TargetError::Private);
    }
    Ok(url)
}

/// Whether an address is anything but a public unicast address.
pub fn is_non_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_non_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_non_public_v4(v4),
            None => is_non_public_v6(v6),
        },
    }
}

fn is_non_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT, RFC 6598
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, RFC 6890
        || (a == 198 && (18..20).contains(&b)) // benchmarking, RFC 2544
        || a >= 240 // reserved, RFC 1112
}

fn is_non_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local, RFC 4193
        || (first & 0xffc0) == 0xfe80 // link-local
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation, RFC 3849
        || first == 0x0064 && ip.segments()[1] == 0xff9b // NAT64, RFC 6052
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_public_http_urls() {
        for ok in [
            "https://example.com/hook",
            "http://93.184.216.34:8080/x",
            "https://[2606:4700::1111]/",
        ] {
            assert!(check_url(ok, false).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_private_targets_unless_allowed() {
        for bad in [
            "http://127.0.0.1/",
            "http://localhost:8080/",
            "http://api.localhost/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://224.0.0.1/",
            "http://2130706433/",
        ] {
            assert_eq!(check_url(bad, false), Err(TargetError::Private), "{bad}");
            assert!(check_url(bad, true).is_ok(), "{bad} allowed");
        }
    }

    #[test]
    fn refuses_malformed_urls() {
        assert_eq!(check_url("not a url", true), Err(TargetError::Invalid));
        assert_eq!(
            check_url("ftp://example.com/", true),
            Err(TargetError::Scheme)
        );
        assert_eq!(
            check_url("https://u:p@example.com/", true),
            Err(TargetError::Credentials)
        );
        assert_eq!(
            check_url(&format!("https://e.com/{}", "a".repeat(3000)), true),
            Err(TargetError::TooLong)
        );
    }
}
