//! Bearer-token authentication. The admin token is cluster-admin (system:masters); a ServiceAccount token
//! authenticates as that account only while the account exists, as bound tokens do on a real cluster.

use std::collections::HashMap;
use std::sync::RwLock;

use rand::Rng;
use rand::distr::Alphanumeric;

use crate::rbac::User;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    Admin,
    ServiceAccount { namespace: String, name: String },
}

impl Identity {
    pub fn user(&self) -> User {
        match self {
            Identity::Admin => User::admin(),
            Identity::ServiceAccount { namespace, name } => User::service_account(namespace, name),
        }
    }
}

#[derive(Default)]
pub struct Tokens {
    tokens: RwLock<HashMap<String, Identity>>,
}

pub fn random_string(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

impl Tokens {
    /// Issues a new token for `identity`.
    pub fn issue(&self, identity: Identity) -> String {
        let token = random_string(48);
        self.tokens
            .write()
            .expect("token table")
            .insert(token.clone(), identity);
        token
    }

    pub fn lookup(&self, token: &str) -> Option<Identity> {
        self.tokens.read().expect("token table").get(token).cloned()
    }
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, token) = h.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_map_to_identities() {
        let t = Tokens::default();
        let admin = t.issue(Identity::Admin);
        let sa = t.issue(Identity::ServiceAccount {
            namespace: "default".into(),
            name: "op".into(),
        });
        assert_ne!(admin, sa);
        assert_eq!(t.lookup(&admin), Some(Identity::Admin));
        assert_eq!(
            t.lookup(&sa).unwrap().user().name,
            "system:serviceaccount:default:op"
        );
        assert_eq!(t.lookup("nope"), None);
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
    }
}
