//! The console's transport, on loopback: HTTPS with a certificate from files, plain HTTP answered
//! only with a redirect to the public HTTPS origin (whatever Host the request names), and the
//! security headers on every answer.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use clap::Parser;
use hap_console::serve::{Transport, serve};
use hap_console::settings::Settings;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn https_serves_with_hsts_and_http_only_redirects_to_the_public_origin() {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("hap-console-https-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_file, key_file) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();

    let (https, http) = (free_port(), free_port());
    let app = Router::new().route("/healthz", get(|| async { "ok" }));
    let transport = Transport::Tls {
        cert: cert_file,
        key: key_file,
        redirect_from: format!("127.0.0.1:{http}").parse().unwrap(),
    };
    let listen = format!("127.0.0.1:{https}").parse().unwrap();
    tokio::spawn(serve(
        app,
        listen,
        transport,
        "https://console.example".into(),
    ));

    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{https}/healthz");
    let mut answer = None;
    for _ in 0..100 {
        if let Ok(r) = trusting.get(&url).send().await {
            answer = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = answer.expect("the console answers over HTTPS");
    assert_eq!(answer.status(), 200);
    let h = answer.headers();
    assert_eq!(h["strict-transport-security"], "max-age=31536000");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");

    // A client that does not trust the certificate gets no answer: it is TLS, with this certificate.
    let strict = reqwest::Client::new();
    assert!(strict.get(&url).send().await.is_err());

    // Plain HTTP: a permanent redirect to the public origin, the forged Host header ignored.
    let redirect = trusting
        .get(format!("http://127.0.0.1:{http}/workspaces/new?x=1"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(
        redirect.headers()["location"],
        "https://console.example/workspaces/new?x=1"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn settings(extra: &[&str]) -> Settings {
    let mut args = vec![
        "hap-console",
        "--issuer=https://idp.example/realms/hap",
        "--client-id=hap-console",
        "--session-key-file=/dev/null",
        "--namespace=hap-system",
    ];
    args.extend_from_slice(extra);
    Settings::try_parse_from(args).unwrap()
}

#[test]
fn a_console_without_https_or_with_half_a_certificate_does_not_start() {
    let plain = settings(&["--public-url=http://console.example", "--tls-offloaded"]);
    assert!(
        plain
            .transport()
            .unwrap_err()
            .contains("must be the https://")
    );
    let neither = settings(&["--public-url=https://console.example"]);
    assert!(neither.transport().unwrap_err().contains("--tls-cert-file"));
    let plain_idp = Settings::try_parse_from([
        "hap-console",
        "--issuer=http://idp.example/realms/hap",
        "--client-id=c",
        "--session-key-file=/dev/null",
        "--namespace=n",
        "--public-url=https://console.example",
        "--tls-offloaded",
    ])
    .unwrap();
    assert!(
        plain_idp
            .transport()
            .unwrap_err()
            .contains("must be an https:// URL")
    );
    let offloaded = settings(&["--public-url=https://console.example", "--tls-offloaded"]);
    assert!(matches!(offloaded.transport(), Ok(Transport::Offloaded)));
    let half = Settings::try_parse_from([
        "hap-console",
        "--issuer=i",
        "--client-id=c",
        "--session-key-file=/dev/null",
        "--namespace=n",
        "--public-url=https://console.example",
        "--tls-cert-file=/tls.crt",
    ]);
    assert!(half.unwrap_err().to_string().contains("--tls-key-file"));
}
