//! The simulated controllers: scheduler, kubelet, services and endpoints, Deployments, ReplicaSets,
//! StatefulSets, Jobs, and switching each off.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube_sim::{Controller, PodFault};
use serde_json::json;

use crate::common::{self, eventually};

fn pod(name: &str, image: &str) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [{"name": "main", "image": image, "ports": [{"containerPort": 8080, "name": "http"}]}]}}))
    .unwrap()
}

fn condition(p: &Pod, kind: &str) -> Option<String> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.clone())
}

async fn running(api: &Api<Pod>, name: &str) -> Pod {
    eventually(&format!("pod {name} is running and ready"), || async {
        let p = api.get(name).await.ok()?;
        let phase = p.status.as_ref()?.phase.clone()?;
        (phase == "Running" && condition(&p, "Ready").as_deref() == Some("True")).then_some(p)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_binds_pods_to_a_node_that_fits() {
    let sim = common::start().await;
    sim.set_controller(Controller::Kubelet, false);
    let c = sim.admin_client().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    pods.create(&PostParams::default(), &pod("p", "busybox:1.36"))
        .await
        .unwrap();
    let bound = eventually("the pod is bound", || async {
        let p = pods.get("p").await.unwrap();
        p.spec.as_ref()?.node_name.clone().map(|n| (n, p))
    })
    .await;
    assert_eq!(bound.0, "kube-sim-node-1");
    assert_eq!(condition(&bound.1, "PodScheduled").as_deref(), Some("True"));
    let node = Api::<Node>::all(c.clone())
        .get("kube-sim-node-1")
        .await
        .unwrap();
    let addresses = node.status.unwrap().addresses.unwrap();
    assert!(
        addresses
            .iter()
            .any(|a| a.type_ == "InternalIP" && a.address == "172.18.0.2"),
        "{addresses:?}"
    );

    // A pod no node fits stays Pending with the scheduler's reason.
    let mut picky = pod("picky", "busybox:1.36");
    picky.spec.as_mut().unwrap().node_selector =
        Some([("disk".to_string(), "ssd".to_string())].into());
    pods.create(&PostParams::default(), &picky).await.unwrap();
    let message = eventually("the pod is unschedulable", || async {
        let p = pods.get("picky").await.unwrap();
        let cond = p
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
        assert_eq!(cond.reason.as_deref(), Some("Unschedulable"));
        cond.message
    })
    .await;
    assert_eq!(
        message,
        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    );
    // A cordoned node (kubectl cordon) takes no new pods.
    common::patch(
        &c,
        "/api/v1/nodes/kube-sim-node-1",
        "application/merge-patch+json",
        &json!({"spec": {"unschedulable": true}}),
    )
    .await;
    pods.create(&PostParams::default(), &pod("late", "busybox:1.36"))
        .await
        .unwrap();
    let message = eventually("the pod finds no schedulable node", || async {
        let p = pods.get("late").await.unwrap();
        p.status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")?
            .message
    })
    .await;
    assert!(
        message.starts_with("0/1 nodes are available: 1 node(s) were unschedulable."),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubelet_runs_bound_pods_and_reports_their_status() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    pods.create(&PostParams::default(), &pod("web", "nginx:1.27"))
        .await
        .unwrap();
    let p = running(&pods, "web").await;
    for cond in ["Initialized", "ContainersReady", "PodScheduled"] {
        assert_eq!(condition(&p, cond).as_deref(), Some("True"), "{cond}");
    }
    let status = p.status.unwrap();
    assert_eq!(
        status.host_ip.as_deref(),
        Some("172.18.0.2"),
        "hostIP is the node's InternalIP"
    );
    let ip = status.pod_ip.unwrap();
    assert!(ip.starts_with("10.244."), "{ip}");
    assert!(status.start_time.is_some());
    let cs = &status.container_statuses.unwrap()[0];
    assert_eq!(cs.name, "main");
    assert!(cs.ready && cs.started == Some(true));
    assert_eq!(cs.restart_count, 0);
    assert!(cs.state.as_ref().unwrap().running.is_some());
    assert!(
        cs.container_id
            .as_ref()
            .unwrap()
            .starts_with("containerd://")
    );
    // A second pod gets another IP.
    pods.create(&PostParams::default(), &pod("web2", "nginx:1.27"))
        .await
        .unwrap();
    let p2 = running(&pods, "web2").await;
    assert_ne!(p2.status.unwrap().pod_ip.unwrap(), ip);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_matching_a_fault_pattern_fail_as_configured() {
    let sim = common::start().await;
    sim.add_pod_fault("broken-registry", PodFault::ImagePull);
    sim.add_pod_fault("crashy", PodFault::Crash);
    let pods: Api<Pod> = Api::namespaced(sim.admin_client().await.unwrap(), "default");
    pods.create(
        &PostParams::default(),
        &pod("pull", "broken-registry/app:1"),
    )
    .await
    .unwrap();
    pods.create(&PostParams::default(), &pod("crash", "crashy:1"))
        .await
        .unwrap();
    let waiting = eventually("the image pull fails", || async {
        let p = pods.get("pull").await.unwrap();
        let status = p.status?;
        let w = status.container_statuses?.first()?.state.clone()?.waiting?;
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        Some(w)
    })
    .await;
    assert_eq!(waiting.reason.as_deref(), Some("ErrImagePull"));
    assert!(waiting.message.unwrap().contains("broken-registry/app:1"));
    let restarts = eventually("the container crash-loops", || async {
        let p = pods.get("crash").await.unwrap();
        let cs = p.status?.container_statuses?.first()?.clone();
        let reason = cs.state?.waiting?.reason?;
        (reason == "CrashLoopBackOff" && cs.restart_count >= 2).then_some(cs.restart_count)
    })
    .await;
    assert!(restarts >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_running_pod_is_graceful() {
    let sim = common::start().await;
    let pods: Api<Pod> = Api::namespaced(sim.admin_client().await.unwrap(), "default");
    pods.create(&PostParams::default(), &pod("g", "nginx:1.27"))
        .await
        .unwrap();
    running(&pods, "g").await;
    sim.set_controller(Controller::Kubelet, false);
    let marked = pods
        .delete("g", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("the pod waits for its kubelet");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(
        marked.metadata.deletion_grace_period_seconds,
        Some(30),
        "the pod's terminationGracePeriodSeconds"
    );
    // A second delete may shorten the grace period.
    let shorter = pods
        .delete(
            "g",
            &DeleteParams {
                grace_period_seconds: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(shorter.metadata.deletion_grace_period_seconds, Some(5));
    assert!(
        pods.get_opt("g").await.unwrap().is_some(),
        "still there while its kubelet is away"
    );
    sim.set_controller(Controller::Kubelet, true);
    eventually("the kubelet stops the pod", || async {
        pods.get_opt("g").await.unwrap().is_none().then_some(())
    })
    .await;

    // grace period 0 deletes at once.
    pods.create(&PostParams::default(), &pod("h", "nginx:1.27"))
        .await
        .unwrap();
    running(&pods, "h").await;
    let gone = pods
        .delete(
            "h",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(gone.is_left(), "a pod delete answers with the pod");
    assert!(pods.get_opt("h").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_get_a_cluster_ip_node_ports_and_endpoints() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let svc = |name: &str| {
        json!({"metadata": {"name": name}, "spec": {"type": "NodePort", "selector": {"app": "web"},
            "ports": [{"name": "jupyter", "port": 8888}, {"name": "spark-ui", "port": 4040, "targetPort": "http"}]}})
    };
    let mut ports = BTreeSet::new();
    for name in ["s1", "s2"] {
        let r = common::post(&c, "/api/v1/namespaces/default/services", &svc(name)).await;
        assert_eq!(r.code, 201, "{}", r.text);
        let s = r.json();
        // The default service range, 10.96.0.0/12.
        let ip: Vec<u8> = s["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .split('.')
            .map(|o| o.parse().unwrap())
            .collect();
        assert!(ip[0] == 10 && (96..=111).contains(&ip[1]), "{ip:?}");
        assert_eq!(s["spec"]["clusterIPs"], json!([s["spec"]["clusterIP"]]));
        for p in s["spec"]["ports"].as_array().unwrap() {
            let n = p["nodePort"].as_i64().unwrap();
            assert!((30000..=32767).contains(&n), "{n}");
            assert!(ports.insert(n), "node port {n} allocated twice");
            assert_eq!(p["protocol"], "TCP");
        }
    }
    // Asking for a taken port is refused with the apiserver's message.
    let taken = ports.iter().next().copied().unwrap();
    let mut clash = svc("s3");
    clash["spec"]["ports"] = json!([{"port": 80, "nodePort": taken}]);
    common::post(&c, "/api/v1/namespaces/default/services", &clash).await.assert_status(
        422,
        "Invalid",
        &format!("Service \"s3\" is invalid: spec.ports[0].nodePort: Invalid value: {taken}: provided port is already allocated"),
    );

    // Endpoints list the ready pods the selector matches, with named target ports resolved.
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let mut web = pod("web", "nginx:1.27");
    web.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
    pods.create(&PostParams::default(), &web).await.unwrap();
    let ip = running(&pods, "web").await.status.unwrap().pod_ip.unwrap();
    let endpoints: Api<Endpoints> = Api::namespaced(c.clone(), "default");
    let subset = eventually("the endpoints list the pod", || async {
        let ep = endpoints.get_opt("s1").await.unwrap()?;
        let subset = ep.subsets?.into_iter().next()?;
        subset.addresses.is_some().then_some(subset)
    })
    .await;
    assert_eq!(subset.addresses.unwrap()[0].ip, ip);
    let mut got: Vec<(String, i32)> = subset
        .ports
        .unwrap()
        .into_iter()
        .map(|p| (p.name.unwrap(), p.port))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("jupyter".to_string(), 8888),
            ("spark-ui".to_string(), 8080)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_make_replica_sets_that_make_pods_with_hashed_names() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}}))
    .unwrap();
    let created = deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let ready = eventually("the deployment is available", || async {
        let d = deployments.get("web").await.unwrap();
        let s = d.status.clone()?;
        (s.ready_replicas == Some(2)
            && s.available_replicas == Some(2)
            && s.observed_generation == Some(1))
        .then_some(d)
    })
    .await;
    let conds = ready.status.unwrap().conditions.unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Available" && c.status == "True")
    );

    let sets: Api<ReplicaSet> = Api::namespaced(c.clone(), "default");
    let rs = sets
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items;
    assert_eq!(rs.len(), 1);
    let rs = &rs[0];
    let hash = rs.metadata.labels.as_ref().unwrap()["pod-template-hash"].clone();
    assert_eq!(
        rs.metadata.name.as_deref(),
        Some(format!("web-{hash}").as_str())
    );
    let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        (
            "Deployment",
            created.metadata.uid.as_deref().unwrap(),
            Some(true)
        )
    );

    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let list = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items;
    assert_eq!(list.len(), 2);
    for p in &list {
        let name = p.metadata.name.clone().unwrap();
        let suffix = name
            .strip_prefix(&format!("web-{hash}-"))
            .unwrap_or_else(|| panic!("{name}"));
        assert_eq!(suffix.len(), 5, "{name}");
        assert_eq!(
            p.metadata.owner_references.as_ref().unwrap()[0].name,
            format!("web-{hash}")
        );
    }

    // A new template rolls out as a new ReplicaSet; the old one scales to zero.
    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.28"}]}}}})))
        .await
        .unwrap();
    eventually("the rollout replaces the pods", || async {
        let pods = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items;
        let images: Vec<String> = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| {
                p.spec.as_ref().unwrap().containers[0]
                    .image
                    .clone()
                    .unwrap()
            })
            .collect();
        (images.len() == 2 && images.iter().all(|i| i == "nginx:1.28")).then_some(())
    })
    .await;
    let all = sets
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items;
    assert_eq!(all.len(), 2);
    assert!(all.iter().any(
        |r| r.metadata.name.as_deref() == Some(&format!("web-{hash}"))
            && r.spec.as_ref().unwrap().replicas == Some(0)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateful_sets_make_ordinal_pods_one_at_a_time_with_their_claims() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"}, "spec": {
        "replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "postgres:16",
            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
    }});
    let r = common::post(&c, "/apis/apps/v1/namespaces/default/statefulsets", &sts).await;
    assert_eq!(r.code, 201, "{}", r.text);
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    for i in 0..3 {
        let p = running(&pods, &format!("db-{i}")).await;
        assert_eq!(
            p.spec.as_ref().unwrap().hostname.as_deref(),
            Some(format!("db-{i}").as_str())
        );
        assert_eq!(
            p.metadata.labels.as_ref().unwrap()["statefulset.kubernetes.io/pod-name"],
            format!("db-{i}")
        );
    }
    let pod_names: BTreeSet<String> = pods
        .list(&ListParams::default().labels("app=db"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| p.metadata.name.unwrap())
        .collect();
    assert_eq!(
        pod_names,
        ["db-0", "db-1", "db-2"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    let claim = eventually("the claim of db-0 is bound", || async {
        let pvc = common::get(
            &c,
            "/api/v1/namespaces/default/persistentvolumeclaims/data-db-0",
        )
        .await
        .json();
        (pvc["status"]["phase"] == "Bound").then_some(pvc)
    })
    .await;
    assert_eq!(claim["status"]["capacity"]["storage"], "1Gi");
    // The ordinal order shows in the creation order of the pods.
    let events = common::get(&c, "/api/v1/namespaces/default/events?fieldSelector=involvedObject.kind%3DStatefulSet,reason%3DSuccessfulCreate").await.json();
    assert_eq!(events["items"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_their_pods_to_success() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"}, "spec": {
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1.36"}]}}}});
    let r = common::post(&c, "/apis/batch/v1/namespaces/default/jobs", &job).await;
    assert_eq!(r.code, 201, "{}", r.text);
    let created = r.json();
    let uid = created["metadata"]["uid"].as_str().unwrap().to_string();
    assert_eq!(
        created["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid.as_str()
    );
    let done = eventually("the job completes", || async {
        let j = common::get(&c, "/apis/batch/v1/namespaces/default/jobs/once")
            .await
            .json();
        j["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Complete" && c["status"] == "True")
            .then_some(j)
    })
    .await;
    assert_eq!(done["status"]["succeeded"], 1);
    assert!(done["status"]["completionTime"].is_string());
    let pods = common::get(&c, &format!("/api/v1/namespaces/default/pods?labelSelector=batch.kubernetes.io/controller-uid%3D{uid}")).await.json();
    let pod = &pods["items"][0];
    assert_eq!(pod["status"]["phase"], "Succeeded");
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
    assert!(
        pod["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("once-")
    );

    // batch/v1 Jobs orphan their pods unless told otherwise, with the apiserver's warning.
    let r = common::delete(&c, "/apis/batch/v1/namespaces/default/jobs/once", None).await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert!(
        r.header("warning")
            .contains("child pods are preserved by default when jobs are deleted"),
        "{:?}",
        r.headers
    );
    let pod_name = pod["metadata"]["name"].as_str().unwrap();
    eventually("the job is gone", || async {
        (common::get(&c, "/apis/batch/v1/namespaces/default/jobs/once")
            .await
            .code
            == 404)
            .then_some(())
    })
    .await;
    let orphan = common::get(&c, &format!("/api/v1/namespaces/default/pods/{pod_name}")).await;
    assert_eq!(orphan.code, 200, "the pod is orphaned, not deleted");

    // A pod whose container fails and never restarts fails; past its back-off limit, so does the Job.
    sim.add_pod_fault("crashy", PodFault::Crash);
    let doomed = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "doomed"}, "spec": {"backoffLimit": 1,
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "crashy:1"}]}}}});
    assert_eq!(
        common::post(&c, "/apis/batch/v1/namespaces/default/jobs", &doomed)
            .await
            .code,
        201
    );
    let failed = eventually("the job fails", || async {
        let j = common::get(&c, "/apis/batch/v1/namespaces/default/jobs/doomed")
            .await
            .json();
        j["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Failed" && c["status"] == "True")
            .cloned()
            .map(|c| (c, j))
    })
    .await;
    assert_eq!(failed.0["reason"], "BackoffLimitExceeded");
    assert_eq!(failed.1["status"]["failed"], 2, "one try and one retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_controller_can_be_switched_off_and_on() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");

    sim.set_controller(Controller::Scheduler, false);
    pods.create(&PostParams::default(), &pod("wait", "nginx:1.27"))
        .await
        .unwrap();
    sim.set_controller(Controller::Workloads, false);
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "idle"}, "spec": {"replicas": 1,
        "selector": {"matchLabels": {"app": "idle"}}, "template": {"metadata": {"labels": {"app": "idle"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    assert_eq!(
        common::post(&c, "/apis/apps/v1/namespaces/default/deployments", &deploy)
            .await
            .code,
        201
    );
    sim.set_controller(Controller::GarbageCollector, false);
    let owner = common::post(
        &c,
        "/api/v1/namespaces/default/configmaps",
        &json!({"metadata": {"name": "owner"}}),
    )
    .await
    .json();
    let dep = json!({"metadata": {"name": "dep", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}]}});
    assert_eq!(
        common::post(&c, "/api/v1/namespaces/default/configmaps", &dep)
            .await
            .code,
        201
    );
    assert_eq!(
        common::delete(&c, "/api/v1/namespaces/default/configmaps/owner", None)
            .await
            .code,
        200
    );
    sim.set_controller(Controller::Namespaces, false);
    assert_eq!(
        common::post(
            &c,
            "/api/v1/namespaces",
            &json!({"metadata": {"name": "quiet"}})
        )
        .await
        .code,
        201
    );

    // Other controllers keep working meanwhile: a marker that time has passed for everyone.
    pods.create(&PostParams::default(), &{
        let mut p = pod("marker", "nginx:1.27");
        p.spec.as_mut().unwrap().node_name = Some("kube-sim-node-1".into());
        p
    })
    .await
    .unwrap();
    running(&pods, "marker").await;
    let unscheduled = pods.get("wait").await.unwrap();
    assert!(
        unscheduled.spec.unwrap().node_name.is_none(),
        "the scheduler is off"
    );
    let rs = common::get(&c, "/apis/apps/v1/namespaces/default/replicasets")
        .await
        .json();
    assert_eq!(rs["items"], json!([]), "the workload controllers are off");
    assert_eq!(
        common::get(&c, "/api/v1/namespaces/default/configmaps/dep")
            .await
            .code,
        200,
        "the garbage collector is off"
    );
    assert_eq!(
        common::get(&c, "/api/v1/namespaces/quiet/serviceaccounts/default")
            .await
            .code,
        404,
        "namespace housekeeping is off"
    );

    // Switched back on, each catches up.
    for ctl in [
        Controller::Scheduler,
        Controller::Workloads,
        Controller::GarbageCollector,
        Controller::Namespaces,
    ] {
        sim.set_controller(ctl, true);
    }
    running(&pods, "wait").await;
    eventually("the deployment's pod runs", || async {
        let l = pods
            .list(&ListParams::default().labels("app=idle"))
            .await
            .unwrap()
            .items;
        (l.len() == 1).then_some(())
    })
    .await;
    eventually("the dependent is collected", || async {
        (common::get(&c, "/api/v1/namespaces/default/configmaps/dep")
            .await
            .code
            == 404)
            .then_some(())
    })
    .await;
    eventually("the namespace gets its default ServiceAccount", || async {
        (common::get(&c, "/api/v1/namespaces/quiet/serviceaccounts/default")
            .await
            .code
            == 200)
            .then_some(())
    })
    .await;

    // The kubelet and the endpoints controller: a bound pod stays Pending, a service gets no Endpoints.
    sim.set_controller(Controller::Kubelet, false);
    sim.set_controller(Controller::Endpoints, false);
    let mut bound = pod("bound", "nginx:1.27");
    bound.spec.as_mut().unwrap().node_name = Some("kube-sim-node-1".into());
    pods.create(&PostParams::default(), &bound).await.unwrap();
    let svc = json!({"metadata": {"name": "lonely"}, "spec": {"selector": {"app": "marker"}, "ports": [{"port": 80}]}});
    assert_eq!(
        common::post(&c, "/api/v1/namespaces/default/services", &svc)
            .await
            .code,
        201
    );
    // The scheduler still works, which shows time passed for every controller.
    pods.create(&PostParams::default(), &pod("probe", "nginx:1.27"))
        .await
        .unwrap();
    eventually("the scheduler binds another pod", || async {
        pods.get("probe").await.ok()?.spec?.node_name.map(|_| ())
    })
    .await;
    assert_eq!(
        pods.get("bound")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Pending"),
        "the kubelet is off"
    );
    assert_eq!(
        common::get(&c, "/api/v1/namespaces/default/endpoints/lonely")
            .await
            .code,
        404,
        "the endpoints controller is off"
    );
    sim.set_controller(Controller::Kubelet, true);
    sim.set_controller(Controller::Endpoints, true);
    running(&pods, "bound").await;
    eventually("the endpoints appear", || async {
        (common::get(&c, "/api/v1/namespaces/default/endpoints/lonely")
            .await
            .code
            == 200)
            .then_some(())
    })
    .await;
}
