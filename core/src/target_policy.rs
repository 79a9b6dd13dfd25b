//! Where deliveries may go. Endpoint URLs must be http(s) without credentials, and
//! their addresses must pass the `TargetPolicy`: a deny list of non-public ranges
//! (data, from config), an allow list that overrides it, or the operator's switch
//! that allows everything. Literal addresses are checked when an endpoint is saved;
//! the dispatcher checks the addresses DNS returns at connect time, so a name that
//! later resolves to a private address (DNS rebinding) is refused too.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use url::{Host, Url};

pub const MAX_URL_LEN: usize = 2048;

/// Non-public ranges refused by default (`HOOKRELAY_DENY_CIDRS` replaces the list).
pub const DEFAULT_DENY: &[&str] = &[
    "0.0.0.0/8",       // "this network", RFC 791
    "10.0.0.0/8",      // private, RFC 1918
    "100.64.0.0/10",   // CGNAT, RFC 6598
    "127.0.0.0/8",     // loopback
    "169.254.0.0/16",  // link-local (cloud metadata lives here)
    "172.16.0.0/12",   // private, RFC 1918
    "192.0.0.0/24",    // IETF protocol assignments, RFC 6890
    "192.0.2.0/24",    // documentation, RFC 5737
    "192.88.99.0/24",  // 6to4 relay anycast, RFC 7526
    "192.168.0.0/16",  // private, RFC 1918
    "198.18.0.0/15",   // benchmarking, RFC 2544
    "198.51.100.0/24", // documentation
    "203.0.113.0/24",  // documentation
    "224.0.0.0/4",     // multicast
    "240.0.0.0/4",     // reserved, and broadcast
    "::/96",           // unspecified, loopback and IPv4-compatible (deprecated), RFC 4291
    "::ffff:0:0:0/96", // IPv4-translated, RFC 2765
    "64:ff9b::/96",    // NAT64, RFC 6052
    "64:ff9b:1::/48",  // local NAT64, RFC 8215
    "100::/64",        // discard, RFC 6666
    "2001::/23",       // IETF protocol assignments
    "2001:db8::/32",   // documentation, RFC 3849
    "2002::/16",       // 6to4
    "fc00::/7",        // unique local, RFC 4193
    "fe80::/10",       // link-local
    "fec0::/10",       // site-local (deprecated), RFC 3879
    "ff00::/8",        // multicast
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("url is not a valid absolute URL")]
    Invalid,
    #[error("url must use http or https")]
    Scheme,
    #[error("url's host name may hold only letters, digits, '-', '_' and '.'")]
    HostName,
    #[error("url must not carry credentials")]
    Credentials,
    #[error("url is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error(
        "url points to a private, loopback or reserved address, which this installation does not allow"
    )]
    Private,
}

/// Which addresses deliveries may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPolicy {
    /// `HOOKRELAY_ALLOW_PRIVATE_TARGETS`: no address checks at all.
    pub allow_all: bool,
    /// `HOOKRELAY_DENY_CIDRS`
    pub deny: Vec<IpNet>,
    /// `HOOKRELAY_ALLOW_CIDRS`: exceptions to `deny`.
    pub allow: Vec<IpNet>,
}

impl Default for TargetPolicy {
    fn default() -> Self {
        Self {
            allow_all: false,
            deny: DEFAULT_DENY
                .iter()
                .map(|c| c.parse().expect("valid built-in CIDR"))
                .collect(),
            allow: Vec::new(),
        }
    }
}

impl TargetPolicy {
    pub fn allow_everything() -> Self {
        Self { allow_all: true, ..Self::default() }
    }

    /// Whether a delivery may connect to `ip`. IPv4-mapped IPv6 is judged as IPv4.
    pub fn permits(&self, ip: IpAddr) -> bool {
        if self.allow_all {
            return true;
        }
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        self.allow.iter().any(|n| n.contains(&ip)) || !self.deny.iter().any(|n| n.contains(&ip))
    }

    /// Parses and checks an endpoint URL (literal addresses and `localhost` names).
    pub fn check_url(&self, raw: &str) -> Result<Url, TargetError> {
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
        let permitted = match url.host() {
            None => return Err(TargetError::Invalid),
            Some(Host::Ipv4(ip)) => self.permits(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.permits(IpAddr::V6(ip)),
            Some(Host::Domain(d)) => {
                // No name can be resolved that holds other characters ('*', '!', ...).
                let plain = d
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
                if !plain {
                    return Err(TargetError::HostName);
                }
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                // `localhost` names are loopback by definition (RFC 6761).
                self.allow_all
                    || !(d == "localhost" || d.ends_with(".localhost"))
                    || self.permits(IpAddr::V4(Ipv4Addr::LOCALHOST))
            }
        };
        if permitted {
            Ok(url)
        } else {
            Err(TargetError::Private)
        }
    }
}

/// A URL with its user info, query and fragment replaced by `redacted`, for
/// records that cannot be removed later (the audit log).
pub fn redacted_url(raw: &str) -> String {
    let Ok(mut url) = Url::parse(raw) else {
        return "redacted".to_string();
    };
    if !url.username().is_empty() || url.password().is_some() {
        let _ = url.set_username("redacted");
        let _ = url.set_password(None);
    }
    if url.query().is_some() {
        url.set_query(Some("redacted"));
    }
    if url.fragment().is_some() {
        url.set_fragment(Some("redacted"));
    }
    url.into()
}

/// Whether a host name or address is this machine (`localhost` names and loopback
/// addresses), for warnings about plaintext connections that leave it.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Parses a comma-separated CIDR list (for config).
pub fn parse_cidrs(list: &str) -> Result<Vec<IpNet>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{s:?} is not a CIDR range"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_public_http_urls() {
        let p = TargetPolicy::default();
        for ok in [
            "https://example.com/hook",
            "http://93.184.216.34:8080/x",
            "https://[2606:4700::1111]/",
        ] {
            assert!(p.check_url(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_host_names_no_resolver_could_look_up() {
        let p = TargetPolicy::allow_everything();
        for bad in [
            "https://a.b.f*/",
            "https://ex!ample.com/",
            "https://a$b.example/",
        ] {
            assert_eq!(p.check_url(bad).err(), Some(TargetError::HostName), "{bad}");
        }
        assert!(p.check_url("https://internal_api.example.com/").is_ok());
    }

    #[test]
    fn refuses_private_targets_unless_allowed() {
        let p = TargetPolicy::default();
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
            "http://198.18.0.1/",
            "http://[2001:db8::1]/",
            "http://255.255.255.255/",
            "http://[::127.0.0.1]/",
            "http://[::10.0.0.1]/",
            "http://[::]/",
            "http://[fec0::1]/",
            "http://[::ffff:0:127.0.0.1]/",
            "http://[::ffff:0:a00:1]/",
        ] {
            assert_eq!(p.check_url(bad), Err(TargetError::Private), "{bad}");
            assert!(
                TargetPolicy::allow_everything().check_url(bad).is_ok(),
                "{bad} allowed"
            );
        }
    }

    #[test]
    fn an_allow_list_opens_chosen_ranges_only() {
        let p = TargetPolicy {
            allow: parse_cidrs("10.1.0.0/16, 127.0.0.1").expect("cidrs"),
            ..Default::default()
        };
        assert!(p.permits("10.1.2.3".parse().expect("ip")));
        assert!(p.permits("127.0.0.1".parse().expect("ip")));
        assert!(!p.permits("10.2.0.1".parse().expect("ip")));
        assert!(p.check_url("http://localhost/").is_ok());
        assert!(parse_cidrs("10.0.0.0/33").is_err());
    }

    #[test]
    fn redacted_urls_keep_where_they_point_and_drop_what_may_be_secret() {
        assert_eq!(
            redacted_url("https://hooks.example.com/in/abc?token=s3cret&x=1#frag"),
            "https://hooks.example.com/in/abc?redacted#redacted"
        );
        assert_eq!(
            redacted_url("https://user:pw@example.com:8443/p"),
            "https://redacted@example.com:8443/p"
        );
        assert_eq!(
            redacted_url("https://example.com/p"),
            "https://example.com/p"
        );
        assert_eq!(redacted_url("not a url"), "redacted");
    }

    #[test]
    fn refuses_malformed_urls() {
        let p = TargetPolicy::allow_everything();
        assert_eq!(p.check_url("not a url"), Err(TargetError::Invalid));
        assert_eq!(p.check_url("ftp://example.com/"), Err(TargetError::Scheme));
        assert_eq!(
            p.check_url("https://u:p@example.com/"),
            Err(TargetError::Credentials)
        );
        assert_eq!(
            p.check_url(&format!("https://e.com/{}", "a".repeat(3000))),
            Err(TargetError::TooLong)
        );
    }
}
