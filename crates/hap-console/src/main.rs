#![forbid(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use hap_console::oidc::{Provider, Registration, http_client};
use hap_console::serve::serve;
use hap_console::settings::Settings;
use hap_console::web::{Console, router};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let settings = Settings::parse();
    let transport = settings.transport().map_err(anyhow::Error::msg)?;
    let key_bytes = std::fs::read(&settings.session_key_file).with_context(|| {
        format!(
            "the session key file {}",
            settings.session_key_file.display()
        )
    })?;
    let key = hap_console::session::key(&key_bytes).map_err(anyhow::Error::msg)?;
    let ca = match &settings.issuer_ca_file {
        Some(file) => {
            Some(std::fs::read(file).with_context(|| format!("the CA file {}", file.display()))?)
        }
        None => None,
    };
    let http = http_client(ca.as_deref()).map_err(anyhow::Error::msg)?;
    let client_secret = settings.client_secret().map_err(anyhow::Error::msg)?;
    let provider = Provider::new(
        Registration {
            issuer: settings.issuer.clone(),
            client_id: settings.client_id.clone(),
            client_secret,
            redirect_url: settings.redirect_url(),
        },
        http,
    );
    let kube = kube::Client::try_default()
        .await
        .context("the Kubernetes API")?;
    let console = Console {
        kube,
        provider,
        mapping: settings.mapping(),
        key,
        namespace: settings.namespace.clone(),
        profiles_namespace: settings.profiles_namespace.clone(),
        signed_out: Default::default(),
    };
    serve(
        router(console),
        settings.listen,
        transport,
        settings.public_url.clone(),
    )
    .await
}
