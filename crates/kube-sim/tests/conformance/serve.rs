//! Starting kube-sim: in-process with `Sim::start`, and as the `kube-sim serve` binary.

use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod, ServiceAccount};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::{self, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_sims_listen_on_their_own_loopback_ports() {
    let a = common::start().await;
    let b = common::start().await;
    assert!(a.address().ip().is_loopback());
    assert_ne!(a.address().port(), 0);
    assert_ne!(a.address().port(), b.address().port());
    assert_eq!(a.url(), format!("https://{}", a.address()));
    // Two clusters share nothing: a namespace made in one is absent from the other.
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "only-in-a"}});
    let admin_a = a.admin_client().await.unwrap();
    common::post(&admin_a, "/api/v1/namespaces", &ns).await;
    let admin_b = b.admin_client().await.unwrap();
    assert_eq!(
        common::get(&admin_b, "/api/v1/namespaces/only-in-a")
            .await
            .code,
        404
    );
    assert_eq!(
        common::get(&admin_a, "/api/v1/namespaces/only-in-a")
            .await
            .code,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_client_is_cluster_admin_and_service_account_client_is_that_account() {
    let sim = common::start().await;
    let admin = sim.admin_client().await.unwrap();
    let nodes: Api<Node> = Api::all(admin.clone());
    assert_eq!(
        nodes
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), "default");
    accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "op"}})).unwrap(),
        )
        .await
        .unwrap();
    let sa = sim.service_account_client("default", "op").await.unwrap();
    let pods: Api<Pod> = Api::namespaced(sa, "default");
    let err = pods.list(&ListParams::default()).await.unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("expected an API error, got {err:?}")
    };
    assert_eq!(status.code, 403);
    assert_eq!(
        status.message,
        "pods is forbidden: User \"system:serviceaccount:default:op\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfigs_name_the_server_its_ca_and_a_default_namespace() {
    let sim = common::start().await;
    let yaml = sim.admin_kubeconfig();
    let kc = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
    let cluster = kc.clusters[0].cluster.as_ref().unwrap();
    assert_eq!(cluster.server.as_deref(), Some(sim.url().as_str()));
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(cluster.certificate_authority_data.as_deref().unwrap())
        .unwrap();
    assert_eq!(String::from_utf8(ca).unwrap(), sim.ca_pem());
    assert_eq!(
        kc.contexts[0]
            .context
            .as_ref()
            .unwrap()
            .namespace
            .as_deref(),
        Some("default")
    );
    // The token is what authenticates: without it, a client is the anonymous user.
    let mut anonymous = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    anonymous.auth_info = Default::default();
    let client = Client::try_from(anonymous).unwrap();
    common::get(&client, "/api/v1/namespaces").await.assert_status(
        403,
        "Forbidden",
        "namespaces is forbidden: User \"system:anonymous\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope",
    );
}

/// The binary, with its stdout read line by line.
struct Served {
    child: tokio::process::Child,
    first_line: String,
}

async fn serve(dir: &TempDir, extra: &[&str]) -> Served {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-sim"))
        .arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--kubeconfig")
        .arg(dir.path().join("admin.yaml"))
        .arg("--crdcheck")
        .arg(common::tool("crdcheck"))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("kube-sim starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first_line = tokio::time::timeout(common::PATIENCE, lines.next_line())
        .await
        .expect("kube-sim prints its address")
        .unwrap()
        .expect("a line");
    Served { child, first_line }
}

async fn client_from(path: &std::path::Path) -> Client {
    let kc = kube::config::Kubeconfig::read_from(path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

async fn signal_and_wait(served: &mut Served, signal: &str) -> std::process::ExitStatus {
    let pid = served.child.id().expect("running").to_string();
    let sent = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    tokio::time::timeout(common::PATIENCE, served.child.wait())
        .await
        .unwrap_or_else(|_| panic!("kube-sim did not stop on {signal}"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_writes_kubeconfigs_prints_its_address_and_stops_on_sigterm() {
    let dir = TempDir::new("serve");
    let sa_path = dir.path().join("sa.yaml");
    let mut served = serve(
        &dir,
        &[
            "--sa-kubeconfig",
            &format!("default/op={}", sa_path.display()),
        ],
    )
    .await;
    let url = served
        .first_line
        .split_whitespace()
        .find(|w| w.starts_with("https://127.0.0.1:"))
        .expect("the address")
        .to_string();
    assert!(!url.ends_with(":0"), "{}", served.first_line);

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("admin.yaml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "kubeconfigs hold tokens");
    let admin = client_from(&dir.path().join("admin.yaml")).await;
    assert_eq!(common::get(&admin, "/version").await.json()["major"], "1");
    let kc = kube::config::Kubeconfig::read_from(&sa_path).unwrap();
    assert_eq!(
        kc.clusters[0].cluster.as_ref().unwrap().server.as_deref(),
        Some(url.as_str())
    );

    // The ServiceAccount token authenticates once the account exists, then is authorized by RBAC.
    let sa = client_from(&sa_path).await;
    assert_eq!(
        common::get(&sa, "/api/v1/namespaces/default/pods")
            .await
            .code,
        401
    );
    let created = common::post(
        &admin,
        "/api/v1/namespaces/default/serviceaccounts",
        &json!({"metadata": {"name": "op"}}),
    )
    .await;
    assert_eq!(created.code, 201, "{}", created.text);
    common::get(&sa, "/api/v1/namespaces/default/pods").await.assert_status(
        403,
        "Forbidden",
        "pods is forbidden: User \"system:serviceaccount:default:op\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"",
    );

    let status = signal_and_wait(&mut served, "-TERM").await;
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stops_on_sigint() {
    let dir = TempDir::new("serve-int");
    let mut served = serve(&dir, &[]).await;
    assert!(
        served.first_line.contains("https://127.0.0.1:"),
        "{}",
        served.first_line
    );
    let status = signal_and_wait(&mut served, "-INT").await;
    assert!(status.success(), "{status:?}");
    // Stopped means stopped: the port no longer answers.
    let admin = client_from(&dir.path().join("admin.yaml")).await;
    let req = axum::http::Request::get("/version")
        .body(kube::client::Body::from(Vec::new()))
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(10), admin.send(req))
            .await
            .unwrap()
            .is_err()
    );
}
