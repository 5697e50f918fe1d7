//! The console's settings: flags, each with an environment variable, so a Deployment sets them from
//! its ConfigMap and Secrets. The client secret and the session key are read from files (mounted
//! Secrets) or the environment, never from a flag that `ps` would show.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::identity::ClaimMapping;

#[derive(Debug, Clone, Parser)]
#[command(name = "hap-console", version, about)]
pub struct Settings {
    /// Where to serve.
    #[arg(long, env = "HAP_CONSOLE_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// The console's address as browsers reach it; the IdP sends them back to <URL>/callback.
    #[arg(long, env = "HAP_CONSOLE_URL")]
    pub public_url: String,
    /// The OpenID Connect issuer (its discovery document is <ISSUER>/.well-known/openid-configuration).
    #[arg(long, env = "HAP_OIDC_ISSUER")]
    pub issuer: String,
    #[arg(long, env = "HAP_OIDC_CLIENT_ID")]
    pub client_id: String,
    /// The client secret (from a Secret, through the environment).
    #[arg(
        long = "client-secret-env",
        hide = true,
        env = "HAP_OIDC_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub client_secret: String,
    /// A PEM file of CA certificates to trust for the IdP, besides the system's.
    #[arg(long, env = "HAP_OIDC_CA_FILE")]
    pub issuer_ca_file: Option<PathBuf>,
    /// A file of at least 64 random bytes that seals the session cookies (a mounted Secret).
    #[arg(long, env = "HAP_CONSOLE_SESSION_KEY_FILE")]
    pub session_key_file: PathBuf,
    /// The console's own namespace, where its ConfigMap hap-console maps groups to namespaces.
    #[arg(long, env = "POD_NAMESPACE")]
    pub namespace: String,
    /// The operator's namespace, where the ConfigMap hap-profiles lists the profiles.
    #[arg(long, env = "HAP_PROFILES_NAMESPACE", default_value = "hap-system")]
    pub profiles_namespace: String,
    /// As the API server's --oidc-username-claim.
    #[arg(
        long,
        env = "HAP_OIDC_USERNAME_CLAIM",
        default_value = "preferred_username"
    )]
    pub username_claim: String,
    /// As the API server's --oidc-username-prefix.
    #[arg(long, env = "HAP_OIDC_USERNAME_PREFIX", default_value = "oidc:")]
    pub username_prefix: String,
    /// As the API server's --oidc-groups-claim.
    #[arg(long, env = "HAP_OIDC_GROUPS_CLAIM", default_value = "groups")]
    pub groups_claim: String,
    /// As the API server's --oidc-groups-prefix.
    #[arg(long, env = "HAP_OIDC_GROUPS_PREFIX", default_value = "oidc:")]
    pub groups_prefix: String,
}

impl Settings {
    pub fn mapping(&self) -> ClaimMapping {
        ClaimMapping {
            username_claim: self.username_claim.clone(),
            username_prefix: self.username_prefix.clone(),
            groups_claim: self.groups_claim.clone(),
            groups_prefix: self.groups_prefix.clone(),
        }
    }

    pub fn redirect_url(&self) -> String {
        format!("{}/callback", self.public_url.trim_end_matches('/'))
    }
}
