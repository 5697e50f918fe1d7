//! The console's settings: flags, each with an environment variable, so a Deployment sets them from
//! its ConfigMap and Secrets. The client secret and the session key are read from files (mounted
//! Secrets) or the environment, never from a flag that `ps` would show.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::identity::ClaimMapping;
use crate::serve::Transport;

#[derive(Debug, Clone, Parser)]
#[command(name = "hap-console", version, about)]
pub struct Settings {
    /// Where to serve HTTPS (or HTTP with --tls-offloaded).
    #[arg(long, env = "HAP_CONSOLE_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Where plain HTTP is answered with a redirect to the public HTTPS address.
    #[arg(
        long,
        env = "HAP_CONSOLE_REDIRECT_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    pub redirect_listen: SocketAddr,
    /// The certificate (PEM, with its chain) and key: a mounted kubernetes.io/tls Secret.
    #[arg(long, env = "HAP_CONSOLE_TLS_CERT_FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    #[arg(long, env = "HAP_CONSOLE_TLS_KEY_FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// TLS ends before the console (an ingress with its own certificate): serve HTTP on --listen.
    #[arg(
        long,
        env = "HAP_CONSOLE_TLS_OFFLOADED",
        conflicts_with = "tls_cert_file"
    )]
    pub tls_offloaded: bool,
    /// The console's address as browsers reach it, https://; the IdP sends them back to
    /// <URL>/callback.
    #[arg(long, env = "HAP_CONSOLE_URL")]
    pub public_url: String,
    /// The OpenID Connect issuer (its discovery document is <ISSUER>/.well-known/openid-configuration).
    #[arg(long, env = "HAP_OIDC_ISSUER")]
    pub issuer: String,
    #[arg(long, env = "HAP_OIDC_CLIENT_ID")]
    pub client_id: String,
    /// A file holding the client secret (a mounted Secret); without it, the environment variable
    /// HAP_OIDC_CLIENT_SECRET (set from a Secret). Never a flag: `ps` would show it.
    #[arg(long, env = "HAP_OIDC_CLIENT_SECRET_FILE")]
    pub client_secret_file: Option<PathBuf>,
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

    /// The client secret: the file's first line, or the environment's.
    pub fn client_secret(&self) -> Result<String, String> {
        let secret = match &self.client_secret_file {
            Some(f) => std::fs::read_to_string(f)
                .map_err(|e| format!("the client secret file {}: {e}", f.display()))?,
            None => std::env::var("HAP_OIDC_CLIENT_SECRET").map_err(|_| {
                "give --client-secret-file, or set HAP_OIDC_CLIENT_SECRET (from a Secret)"
                    .to_string()
            })?,
        };
        let secret = secret.lines().next().unwrap_or_default().trim().to_string();
        if secret.is_empty() {
            return Err("the client secret is empty".into());
        }
        Ok(secret)
    }

    /// How to serve, or what to set.
    pub fn transport(&self) -> Result<Transport, String> {
        if let Some(problem) = crate::oidc::issuer_problem(&self.issuer) {
            return Err(format!("--issuer: {problem}"));
        }
        if !self.public_url.starts_with("https://") {
            return Err(format!(
                "--public-url is {:?}: it must be the https:// address browsers reach the console at (its session cookies are Secure)",
                self.public_url
            ));
        }
        match (&self.tls_cert_file, &self.tls_key_file, self.tls_offloaded) {
            (Some(cert), Some(key), false) => Ok(Transport::Tls {
                cert: cert.clone(),
                key: key.clone(),
                redirect_from: self.redirect_listen,
            }),
            (None, None, true) => Ok(Transport::Offloaded),
            _ => Err("give --tls-cert-file and --tls-key-file (a kubernetes.io/tls Secret), or --tls-offloaded when an ingress ends TLS before the console".into()),
        }
    }

    pub fn redirect_url(&self) -> String {
        format!("{}/callback", self.public_url.trim_end_matches('/'))
    }
}
