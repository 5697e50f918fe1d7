//! How the console is served: HTTPS with a certificate from files (a mounted `kubernetes.io/tls`
//! Secret, read again every few minutes so a renewed certificate is picked up), plain HTTP only to
//! redirect to it, and the headers that keep browsers on HTTPS and the pages out of frames. Behind a
//! TLS-terminating ingress, `--tls-offloaded` serves plain HTTP on the main port instead.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum_server::tls_rustls::RustlsConfig;

/// How often the certificate files are read again.
const RELOAD: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub enum Transport {
    Tls {
        cert: PathBuf,
        key: PathBuf,
        /// Where plain HTTP is answered with a redirect to HTTPS.
        redirect_from: SocketAddr,
    },
    /// TLS ends before the console (an ingress); browsers still see HTTPS.
    Offloaded,
}

/// The headers every answer carries: HSTS (browsers reach the console over HTTPS only, from their
/// first visit on), no MIME sniffing, no framing of the console's pages, no referrer to other sites.
pub fn with_security_headers(app: Router) -> Router {
    app.layer(middleware::from_fn(security_headers))
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    // The console's pages load nothing but their own inline style, post forms only to the console,
    // and are never kept in a cache (a shared computer's Back button after sign-out).
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; connect-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The HTTPS address of `uri`'s path on the console's public origin. The request's Host header is
/// not used: a forged one must not send the browser elsewhere.
fn to_https(public_origin: &str, uri: &Uri) -> String {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    format!("{}{path}", public_origin.trim_end_matches('/'))
}

/// A router that answers everything with a permanent redirect to the public HTTPS origin.
pub fn redirector(public_origin: String) -> Router {
    Router::new().fallback(move |uri: Uri| {
        let to = to_https(&public_origin, &uri);
        async move { Redirect::permanent(&to).into_response() }
    })
}

/// Serves `app` on `listen` as `transport` says, until the process ends.
pub async fn serve(
    app: Router,
    listen: SocketAddr,
    transport: Transport,
    public_origin: String,
) -> anyhow::Result<()> {
    let app = with_security_headers(app);
    match transport {
        Transport::Offloaded => {
            let listener = tokio::net::TcpListener::bind(listen).await?;
            tracing::info!(%listen, "serving HTTP (TLS ends before the console)");
            axum::serve(listener, app).await?;
        }
        Transport::Tls {
            cert,
            key,
            redirect_from,
        } => {
            let config = RustlsConfig::from_pem_file(&cert, &key)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "the certificate {} and key {}: {e}",
                        cert.display(),
                        key.display()
                    )
                })?;
            let reload = config.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(RELOAD).await;
                    if let Err(e) = reload.reload_from_pem_file(&cert, &key).await {
                        tracing::warn!(error = %e, "the certificate could not be read again; the one in use stays");
                    }
                }
            });
            let redirect = tokio::net::TcpListener::bind(redirect_from).await?;
            tokio::spawn(async move {
                let _ = axum::serve(redirect, redirector(public_origin)).await;
            });
            tracing::info!(%listen, %redirect_from, "serving HTTPS, and redirecting HTTP to it");
            axum_server::bind_rustls(listen, config)
                .serve(app.into_make_service())
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redirect_goes_to_the_public_origin_whatever_the_host_header_says() {
        let uri: Uri = "/workspaces/new?x=1".parse().unwrap();
        assert_eq!(
            to_https("https://console.example/", &uri),
            "https://console.example/workspaces/new?x=1"
        );
        assert_eq!(
            to_https("https://console.example", &"/".parse().unwrap()),
            "https://console.example/"
        );
    }
}
