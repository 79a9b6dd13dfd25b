//! Who may do what: the permissions an API key can hold, the tenants it reaches,
//! and the `Grant` a validated key carries (what the key cache keeps per key).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One thing a key may do. A key holds any set of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Ingest events (single and batch).
    EventsWrite,
    /// Read tenants, endpoints, events, deliveries, attempts, jobs and the tenant's audit log.
    Read,
    /// Create, change and delete endpoints; rotate their secrets; send test events.
    EndpointsWrite,
    /// Read an endpoint's signing secret.
    SecretsRead,
    /// Issue console links that open the console for a tenant.
    ConsoleLinks,
    /// Replay deliveries, recover an endpoint's failures, cancel deliveries.
    Replay,
    /// Create tenants (a key reaching every tenant only) and delete them.
    TenantsWrite,
}

impl Permission {
    pub const ALL: [Self; 7] = [
        Self::EventsWrite,
        Self::Read,
        Self::EndpointsWrite,
        Self::SecretsRead,
        Self::ConsoleLinks,
        Self::Replay,
        Self::TenantsWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EventsWrite => "events:write",
            Self::Read => "read",
            Self::EndpointsWrite => "endpoints:write",
            Self::SecretsRead => "secrets:read",
            Self::ConsoleLinks => "console-links",
            Self::Replay => "replay",
            Self::TenantsWrite => "tenants:write",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of permissions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Permissions(u8);

impl Permissions {
    pub fn all() -> Self {
        Self::ALL_BITS
    }

    const ALL_BITS: Self = Self((1 << Permission::ALL.len()) - 1);

    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn insert(&mut self, p: Permission) {
        self.0 |= p.bit();
    }

    /// Reads stored names; names this version does not know grant nothing.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Self {
        let mut set = Self::default();
        for p in names.iter().filter_map(|n| Permission::parse(n.as_ref())) {
            set.insert(p);
        }
        set
    }

    pub fn names(self) -> Vec<&'static str> {
        Permission::ALL
            .into_iter()
            .filter(|p| self.contains(*p))
            .map(Permission::as_str)
            .collect()
    }
}

/// What a valid API key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub key_id: Uuid,
    pub name: String,
    /// `None`: every tenant.
    pub tenants: Option<Arc<[Uuid]>>,
    pub permissions: Permissions,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Grant {
    /// Whether the key reaches this tenant (out of its scope, the tenant is not
    /// revealed to exist).
    pub fn reaches(&self, tenant: Uuid) -> bool {
        self.tenants.as_ref().is_none_or(|t| t.contains(&tenant))
    }

    pub fn allows(&self, p: Permission) -> bool {
        self.permissions.contains(p)
    }

    /// Whether the key reaches every tenant, present and future.
    pub fn is_global(&self) -> bool {
        self.tenants.is_none()
    }

    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_grant_nothing() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
        let set = Permissions::from_names(&["read", "bogus", "replay"]);
        assert_eq!(set.names(), vec!["read", "replay"]);
        assert!(!set.contains(Permission::EventsWrite));
        assert_eq!(Permissions::all().names().len(), Permission::ALL.len());
    }

    #[test]
    fn a_scoped_grant_reaches_only_its_tenants() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let grant = Grant {
            key_id: Uuid::new_v4(),
            name: String::new(),
            tenants: Some(vec![a].into()),
            permissions: Permissions::from_names(&["read"]),
            expires_at: Some(Utc::now() - chrono::Duration::seconds(1)),
        };
        assert!(grant.reaches(a) && !grant.reaches(b) && !grant.is_global());
        assert!(grant.allows(Permission::Read) && !grant.allows(Permission::Replay));
        assert!(grant.expired(Utc::now()));
    }
}
