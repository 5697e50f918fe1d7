//! Fault injection and observation: failing requests, latency, closing watches, and the request log,
//! in-process and through the `/kube-sim/v1` admin endpoints.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ListParams, PostParams, WatchEvent, WatchParams};
use kube_sim::Matcher;
use serde_json::json;
use tokio_stream::StreamExt;

use crate::common::{self, eventually};

const CM: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_n_matching_requests_fail_with_the_chosen_code() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    assert_eq!(
        common::post(&c, CM, &json!({"metadata": {"name": "x"}}))
            .await
            .code,
        201
    );
    sim.faults()
        .fail_next(Matcher::new("get", "configmaps"), 2, 500);
    for _ in 0..2 {
        common::get(&c, &format!("{CM}/x")).await.assert_status(
            500,
            "InternalError",
            "Internal error occurred: injected failure",
        );
    }
    assert_eq!(
        common::get(&c, &format!("{CM}/x")).await.code,
        200,
        "only N fail"
    );
    // Other verbs and resources are not affected.
    sim.faults()
        .fail_next(Matcher::new("patch", "configmaps"), 1, 409);
    assert_eq!(common::get(&c, &format!("{CM}/x")).await.code, 200);
    assert_eq!(
        common::get(&c, "/api/v1/namespaces/default/secrets")
            .await
            .code,
        200
    );
    let conflict = common::patch(
        &c,
        &format!("{CM}/x"),
        "application/merge-patch+json",
        &json!({}),
    )
    .await;
    assert_eq!(
        (conflict.code, conflict.json()["reason"].as_str()),
        (409, Some("Conflict"))
    );
    // A matcher can name a subresource and a user.
    let mut m = Matcher::new("get", "pods/status");
    m.user = Some("system:serviceaccount:default:nobody".into());
    sim.faults().fail_next(m, 1, 503);
    assert_eq!(
        common::get(&c, "/api/v1/namespaces/default/pods")
            .await
            .code,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_retries_injected_unavailability() {
    let sim = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.admin_client().await.unwrap(), "default");
    sim.faults()
        .fail_next(Matcher::new("list", "configmaps"), 2, 503);
    sim.reset_requests();
    api.list(&ListParams::default())
        .await
        .expect("kube-rs retries 503");
    let codes: Vec<u16> = sim
        .requests()
        .iter()
        .filter(|r| r.verb == "list")
        .map(|r| r.code)
        .collect();
    assert_eq!(codes, [503, 503, 200]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_matching_requests() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let delay = Duration::from_millis(400);
    sim.faults()
        .add_latency(Matcher::new("list", "secrets"), delay);
    let started = Instant::now();
    assert_eq!(
        common::get(&c, "/api/v1/namespaces/default/secrets")
            .await
            .code,
        200
    );
    assert!(
        started.elapsed() >= delay,
        "the request was delayed by at least {delay:?}"
    );
    sim.faults().clear();
    let r = common::get(&c, "/api/v1/namespaces/default/secrets").await;
    assert_eq!(r.code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_watches_ends_every_open_watch() {
    let sim = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.admin_client().await.unwrap(), "default");
    let mut a = Box::pin(
        api.watch(&WatchParams::default().disable_bookmarks(), "0")
            .await
            .unwrap(),
    );
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(sim.admin_client().await.unwrap());
    let mut b = Box::pin(
        nodes
            .watch(&WatchParams::default().disable_bookmarks(), "0")
            .await
            .unwrap(),
    );
    // Both watches are live: each delivers its initial ADDED events.
    assert!(matches!(
        tokio::time::timeout(common::PATIENCE, b.next())
            .await
            .unwrap(),
        Some(Ok(WatchEvent::Added(_)))
    ));
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "w"}})).unwrap(),
    )
    .await
    .unwrap();
    sim.close_watches();
    let ended_a = tokio::time::timeout(common::PATIENCE, async {
        while a.next().await.is_some() {}
    })
    .await;
    let ended_b = tokio::time::timeout(common::PATIENCE, async {
        while b.next().await.is_some() {}
    })
    .await;
    assert!(ended_a.is_ok() && ended_b.is_ok(), "every watch ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_log_counts_requests_by_user_verb_and_resource() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    assert_eq!(
        common::post(&c, CM, &json!({"metadata": {"name": "x"}}))
            .await
            .code,
        201
    );
    sim.reset_requests();
    // A resync that only reads: zero writes.
    common::get(&c, &format!("{CM}/x")).await;
    common::get(&c, CM).await;
    common::get(&c, &format!("{CM}/missing")).await;
    let log = sim.requests();
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|r| !r.is_write()), "{log:?}");
    assert!(log.iter().all(|r| r.user == "kubernetes-admin"), "{log:?}");
    assert_eq!(
        (
            log[0].verb.as_str(),
            log[0].resource.as_str(),
            log[0].name.as_str(),
            log[0].code
        ),
        ("get", "configmaps", "x", 200)
    );
    assert_eq!(
        (log[1].verb.as_str(), log[1].namespace.as_str()),
        ("list", "default")
    );
    assert_eq!(log[2].code, 404);
    // One write shows up as one.
    common::patch(
        &c,
        &format!("{CM}/x/status"),
        "application/merge-patch+json",
        &json!({}),
    )
    .await;
    common::patch(
        &c,
        &format!("{CM}/x"),
        "application/merge-patch+json",
        &json!({"data": {"a": "b"}}),
    )
    .await;
    let writes: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.is_write())
        .collect();
    assert_eq!(writes.len(), 2);
    assert_eq!(writes[0].resource_with_sub(), "configmaps/status");
    assert_eq!(writes[0].code, 404, "configmaps have no status subresource");
    assert_eq!((writes[1].verb.as_str(), writes[1].code), ("patch", 200));
    // The simulated controllers' own writes are not in the log: it records API requests only.
    sim.reset_requests();
    assert!(sim.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_control_a_running_simulator() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    assert_eq!(
        common::request(
            &c,
            axum::http::Method::DELETE,
            "/kube-sim/v1/requests",
            &[],
            None
        )
        .await
        .code,
        200
    );
    let fault =
        json!({"matcher": {"verb": "create", "resource": "configmaps"}, "count": 1, "code": 429});
    assert_eq!(
        common::post(&c, "/kube-sim/v1/faults", &fault).await.code,
        200
    );
    // kube-rs retries a 429, so the create succeeds on its second attempt; the log shows both.
    let r = common::post(&c, CM, &json!({"metadata": {"name": "x"}})).await;
    assert_eq!(r.code, 201, "{}", r.text);
    let log = common::get(&c, "/kube-sim/v1/requests").await.json();
    let codes: Vec<u64> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["verb"] == "create" && e["resource"] == "configmaps")
        .map(|e| e["code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [429, 201], "{log}");

    let latency = json!({"matcher": {"verb": "get"}, "millis": 1});
    assert_eq!(
        common::post(&c, "/kube-sim/v1/latency", &latency)
            .await
            .code,
        200
    );
    let pending =
        json!({"matcher": {"verb": "create", "resource": "configmaps"}, "count": 1, "code": 500});
    assert_eq!(
        common::post(&c, "/kube-sim/v1/faults", &pending).await.code,
        200
    );
    assert_eq!(
        common::request(
            &c,
            axum::http::Method::DELETE,
            "/kube-sim/v1/faults",
            &[],
            None
        )
        .await
        .code,
        200
    );
    assert_eq!(
        common::post(&c, CM, &json!({"metadata": {"name": "y"}}))
            .await
            .code,
        201,
        "faults were cleared"
    );

    assert_eq!(
        common::put(
            &c,
            "/kube-sim/v1/controllers/scheduler",
            &json!({"enabled": false})
        )
        .await
        .code,
        200
    );
    let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "bad-image"}]}});
    assert_eq!(
        common::post(
            &c,
            "/kube-sim/v1/pod-faults",
            &json!({"imageContains": "bad-image", "fault": "ImagePull"})
        )
        .await
        .code,
        200
    );
    assert_eq!(
        common::post(&c, "/api/v1/namespaces/default/pods", &pod)
            .await
            .code,
        201
    );
    assert_eq!(
        common::put(
            &c,
            "/kube-sim/v1/controllers/scheduler",
            &json!({"enabled": true})
        )
        .await
        .code,
        200
    );
    eventually("the pod fails to pull its image", || async {
        let p = common::get(&c, "/api/v1/namespaces/default/pods/p")
            .await
            .json();
        (p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImagePull")
            .then_some(())
    })
    .await;
    assert_eq!(
        common::post(&c, "/kube-sim/v1/compact", &json!({}))
            .await
            .code,
        200
    );
    assert_eq!(
        common::post(&c, "/kube-sim/v1/close-watches", &json!({}))
            .await
            .code,
        200
    );
    common::put(
        &c,
        "/kube-sim/v1/controllers/nonsense",
        &json!({"enabled": false}),
    )
    .await
    .assert_status(400, "BadRequest", "no controller \"nonsense\"");
}
