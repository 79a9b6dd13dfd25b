//! Console links: the signed, expiring, single-use token a producer hands its
//! customer to open the console for one tenant. The API issues them, the console
//! redeems them; both sign with a key derived from the installation's master keys.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access::{Permission, Permissions};
use crate::signed_token::Signer;

/// How long a console link may be opened.
pub const LINK_TTL: chrono::Duration = chrono::Duration::minutes(15);

/// Who issued a link: revoking a key or disabling an operator ends the sessions
/// its links opened; the operator can end any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issuer {
    ApiKey(Uuid),
    Operator(Uuid),
    AdminToken,
}

/// What a console link grants: one session for one tenant with these
/// permissions, if opened before `exp` (unix seconds). `id` makes it single-use.
#[derive(Debug, Serialize, Deserialize)]
pub struct LinkClaims {
    pub id: Uuid,
    pub tenant: Uuid,
    pub exp: i64,
    /// The API key that issued the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Uuid>,
    /// The operator that issued the link (neither: the admin token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<Uuid>,
    /// The session's permissions, by name (links from before carry none: read only).
    #[serde(default)]
    pub permissions: Vec<String>,
}

impl LinkClaims {
    pub fn issuer(&self) -> Issuer {
        match (self.key, self.operator) {
            (Some(k), _) => Issuer::ApiKey(k),
            (None, Some(o)) => Issuer::Operator(o),
            (None, None) => Issuer::AdminToken,
        }
    }

    /// What the session the link opens may do; reading is always among it.
    pub fn permissions(&self) -> Permissions {
        let mut p = Permissions::from_names(&self.permissions);
        p.insert(Permission::Read);
        p
    }
}

/// Issues and checks console links.
#[derive(Clone)]
pub struct ConsoleLinks {
    signer: Signer,
}

impl ConsoleLinks {
    pub fn new(keys: &crate::crypto::MasterKeys) -> Self {
        Self {
            signer: Signer::new(keys, "hookrelay console links"),
        }
    }

    /// A link for one tenant: the path to open (with its token) and its expiry.
    pub fn issue(
        &self,
        tenant: Uuid,
        issuer: Issuer,
        permissions: Permissions,
    ) -> (String, DateTime<Utc>) {
        let expires_at = Utc::now() + LINK_TTL;
        let (key, operator) = match issuer {
            Issuer::ApiKey(k) => (Some(k), None),
            Issuer::Operator(o) => (None, Some(o)),
            Issuer::AdminToken => (None, None),
        };
        let token = self.signer.sign(&LinkClaims {
            id: Uuid::new_v4(),
            tenant,
            exp: expires_at.timestamp(),
            key,
            operator,
            permissions: permissions.names().into_iter().map(String::from).collect(),
        });
        (format!("/console/open?token={token}"), expires_at)
    }

    /// The claims of an intact link that has not expired.
    pub fn verify(&self, token: &str) -> Option<LinkClaims> {
        self.signer
            .verify::<LinkClaims>(token)
            .filter(|link| link.exp > Utc::now().timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_verify_for_their_tenant_and_only_with_their_key() {
        let links = ConsoleLinks::new(&crate::crypto::MasterKeys::single(&[7; 32]));
        let tenant = Uuid::new_v4();
        let key = Uuid::new_v4();
        let (path, expires_at) = links.issue(
            tenant,
            Issuer::ApiKey(key),
            Permissions::from_names(&["replay"]),
        );
        let token = path.strip_prefix("/console/open?token=").expect("path");
        let claims = links.verify(token).expect("valid");
        assert_eq!(claims.tenant, tenant);
        assert_eq!(claims.issuer(), Issuer::ApiKey(key));
        assert_eq!(claims.permissions().names(), vec!["read", "replay"]);
        assert_eq!(claims.exp, expires_at.timestamp());
        assert!(
            ConsoleLinks::new(&crate::crypto::MasterKeys::single(&[8; 32]))
                .verify(token)
                .is_none()
        );
    }
}
