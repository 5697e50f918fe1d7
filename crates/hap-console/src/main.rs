#![forbid(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use hap_console::oidc::{Provider, Registration};
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
    // The IdP's redirects are not followed: a sign-in's requests go where discovery says, no further.
    let mut http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if let Some(file) = &settings.issuer_ca_file {
        let pem = std::fs::read(file).with_context(|| format!("the CA file {}", file.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem).context("the IdP's CA file")? {
            http = http.add_root_certificate(cert);
        }
    }
    let provider = Provider::new(
        Registration {
            issuer: settings.issuer.clone(),
            client_id: settings.client_id.clone(),
            client_secret: settings.client_secret.clone(),
            redirect_url: settings.redirect_url(),
        },
        http.build()?,
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
    };
    serve(
        router(console),
        settings.listen,
        transport,
        settings.public_url.clone(),
    )
    .await
}
