//! Console links: the signed, expiring, single-use token a producer hands its
//! customer to open the console for one tenant. The API issues them, the console
//! redeems them; both sign with a key derived from the installation's master keys.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::signed::Signer;

/// How long a console link may be opened.
pub const LINK_TTL: chrono::Duration = chrono::Duration::minutes(15);

/// What a console link grants: one session for one tenant, if opened before `exp`
/// (unix seconds). `id` makes it single-use.
#[derive(Debug, Serialize, Deserialize)]
pub struct LinkClaims {
    pub id: Uuid,
    pub tenant: Uuid,
    pub exp: i64,
    /// The API key that issued the link (`None`: the operator): revoking it ends
    /// the sessions the link opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Uuid>,
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
    pub fn issue(&self, tenant: Uuid, key: Option<Uuid>) -> (String, DateTime<Utc>) {
        let expires_at = Utc::now() + LINK_TTL;
        let token = self.signer.sign(&LinkClaims {
            id: Uuid::new_v4(),
            tenant,
            exp: expires_at.timestamp(),
            key,
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
        let (path, expires_at) = links.issue(tenant, None);
        let token = path.strip_prefix("/console/open?token=").expect("path");
        let claims = links.verify(token).expect("valid");
        assert_eq!(claims.tenant, tenant);
        assert_eq!(claims.exp, expires_at.timestamp());
        assert!(
            ConsoleLinks::new(&crate::crypto::MasterKeys::single(&[8; 32]))
                .verify(token)
                .is_none()
        );
    }
}
