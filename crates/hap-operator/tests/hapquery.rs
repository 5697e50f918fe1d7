//! HapQuery on the real local cluster: the operator's controller (with its ServiceAccount's token)
//! creates each component's objects in order, holds what must wait, reports each component in its
//! own condition, turns missing Secrets and an unreachable database into conditions and events,
//! replaces a Job whose template changed, writes nothing on a resync, and leaves the database's
//! volume behind when the HapQuery goes (unless told not to).
//!
//! The components' images are not in the node here, so their pods do not start: what is checked is
//! the operator's side, with the kubelet's and the controllers' real answers.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Harness, eventually};
use hap_api::HapQuery;
use hap_api::hapquery::HapQueryStatus;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Event, PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;

/// Small requests, so that the tests' pods fit on a two-core node side by side.
const SMALL: &str = "{requests: {cpu: 10m, memory: 64Mi}, limits: {memory: 512Mi}}";

fn query(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: hap.cloudian.com/v1alpha1
kind: HapQuery
metadata: {{name: {name}}}
spec:
  s3: {{endpoint: 'http://198.18.0.1:9000', bucket: air}}
  schema: air
  metastore: {{resources: {SMALL}}}
  trino: {{workers: 1, coordinator: {{resources: {SMALL}}}, worker: {{resources: {SMALL}}}}}
{extra}"
    )
}

const MANAGED: &str = "  database: {mariadb: {storageSize: 1Gi, resources: {requests: {cpu: 10m, memory: 64Mi}}}}\n  dashboard: {resources: {requests: {cpu: 10m, memory: 64Mi}}}\n";

async fn create(h: &Harness, yaml: &str) -> HapQuery {
    let hq: HapQuery = serde_saphyr::from_str(yaml).expect("HapQuery YAML");
    h.api::<HapQuery>()
        .create(&Default::default(), &hq)
        .await
        .expect("HapQuery admitted")
}

async fn wait_query<F>(h: &Harness, name: &str, what: &str, check: F) -> HapQuery
where
    F: Fn(&HapQueryStatus) -> bool,
{
    let api = h.api::<HapQuery>();
    eventually(Duration::from_secs(120), what, || {
        let api = api.clone();
        let check = &check;
        async move {
            let hq = api.get(name).await.map_err(|e| e.to_string())?;
            match &hq.status {
                Some(s) if check(s) => Ok(hq),
                other => Err(format!("{other:#?}")),
            }
        }
    })
    .await
}

fn condition(hq: &HapQuery, kind: &str) -> Condition {
    hq.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == kind).cloned())
        .unwrap_or_else(|| panic!("no {kind} condition in {:#?}", hq.status))
}

fn reason_of(s: &HapQueryStatus, kind: &str) -> String {
    s.conditions
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.reason.clone())
        .unwrap_or_default()
}

/// The events about HapQuery `name`, as "type reason: note".
async fn events(h: &Harness, name: &str) -> Vec<String> {
    let api = kube::Api::<Event>::namespaced(h.admin.clone(), &h.ns);
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .map(|e| {
            format!(
                "{} {}: {}",
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default()
            )
        })
        .collect()
}

async fn wait_event(h: &Harness, name: &str, wanted: &str) -> String {
    eventually(Duration::from_secs(60), wanted, || async {
        let all = events(h, name).await;
        all.iter()
            .find(|e| e.contains(wanted))
            .cloned()
            .ok_or(format!("{all:#?}"))
    })
    .await
}

fn owned_by(meta: &kube::api::ObjectMeta, hq: &HapQuery) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|r| Some(&r.uid) == hq.metadata.uid.as_ref() && r.controller == Some(true))
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn components_come_in_order_and_each_has_its_condition() {
    let h = Harness::start().await;
    create(&h, &query("q", MANAGED)).await;
    // MariaDB's image is not in the node: the database never gets ready, so everything that needs
    // it waits, while Trino (which needs only the metastore's address) is created.
    let hq = wait_query(&h, "q", "the database's image failing", |s| {
        reason_of(s, "Database") == "ContainerNotRunning"
    })
    .await;
    let status = hq.status.clone().unwrap();
    assert_eq!(status.observed_generation, hq.metadata.generation);
    assert_eq!(
        status.trino_url.as_deref(),
        Some(format!("https://q-trino-coordinator.{}.svc:8443", h.ns).as_str())
    );
    let database = condition(&hq, "Database");
    assert!(
        database
            .message
            .contains("of pod q-mariadb-0 is not running (ImagePullBackOff")
            // Either of the pod's containers (the server, the dashboard's user beside it): both
            // use the image that cannot be pulled.
            && ["mariadb", "dashboard-user"].iter().any(|c| {
                database
                    .message
                    .contains(&format!("kubectl logs -n {} q-mariadb-0 -c {c}", h.ns))
            }),
        "{}",
        database.message
    );
    assert_eq!(condition(&hq, "Metastore").reason, "WaitingForDatabase");
    assert_eq!(condition(&hq, "Dashboard").reason, "WaitingForDatabase");
    assert_eq!(
        status.phase.map(|p| format!("{p:?}")).as_deref(),
        Some("Degraded")
    );

    for name in ["q-mariadb"] {
        let sts = h.api::<StatefulSet>().get(name).await.unwrap();
        assert!(owned_by(&sts.metadata, &hq), "{name} is the HapQuery's");
    }
    for name in ["q-trino-coordinator", "q-trino-worker"] {
        // Made while the database fails, though perhaps by a later reconcile than the status that
        // first told the failure (a busy machine showed it).
        let d = eventually(Duration::from_secs(60), name, || async {
            h.api::<Deployment>()
                .get(name)
                .await
                .map_err(|e| e.to_string())
        })
        .await;
        assert!(owned_by(&d.metadata, &hq), "{name} is the HapQuery's");
    }
    for held in ["q-metastore", "q-superset"] {
        assert!(
            !h.exists::<Deployment>(held).await,
            "{held} waits for its Job"
        );
    }
    for held in ["q-metastore-schema", "q-superset-init"] {
        assert!(
            !h.exists::<Job>(held).await,
            "{held} waits for the database"
        );
    }
    // The generated passwords: in their Secrets, and nowhere in the status or the events.
    let secret = h.api::<Secret>().get("q-mariadb").await.unwrap();
    let data = secret.data.unwrap();
    let mut values = Vec::new();
    for key in ["password", "root-password"] {
        let value = String::from_utf8(data[key].0.clone()).unwrap();
        assert!(value.len() >= 20, "{key} is a generated value");
        values.push(value);
    }
    let superset = h.api::<Secret>().get("q-superset").await.unwrap();
    for v in superset.data.unwrap().values() {
        values.push(String::from_utf8(v.0.clone()).unwrap());
    }
    values.extend(trino_secrets(&h).await);
    let said = format!("{:?} {:?}", status, events(&h, "q").await);
    for v in &values {
        assert!(!said.contains(v.as_str()), "a generated secret leaked");
    }
    // The children made at once are told in one event, their notes joined.
    let created = wait_event(&h, "q", "Created StatefulSet q-mariadb").await;
    assert!(created.starts_with("Normal Created: "), "{created}");
    let told = wait_event(&h, "q", "Warning ContainerNotRunning: Database: container ").await;
    assert!(told.contains("of pod q-mariadb-0 is not running"), "{told}");
}

/// A Secret's values as text, once it has all of `keys`.
async fn secret_values(h: &Harness, name: &str, keys: &[&str]) -> BTreeMap<String, String> {
    eventually(
        Duration::from_secs(60),
        &format!("Secret {name}"),
        || async {
            let s = h
                .api::<Secret>()
                .get_opt(name)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("missing")?;
            let data: BTreeMap<String, String> = s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect();
            match keys.iter().find(|k| !data.contains_key(**k)) {
                Some(k) => Err(format!("no key {k}")),
                None => Ok(data),
            }
        },
    )
    .await
}

/// Trino's generated Secrets: the users' passwords in a bcrypt password file, the shared secret, and
/// a certificate for the coordinator's Service that the CA in `<name>-ca` (the operator's, kept in
/// `hap-ca`) signed. Returns every secret value, for the leak checks.
async fn trino_secrets(h: &Harness) -> Vec<String> {
    let users = secret_values(h, "q-trino-users", &["admin", "hap"]).await;
    let file = secret_values(h, "q-trino-password-file", &["password.db"]).await;
    let lines: Vec<&str> = file["password.db"].lines().collect();
    assert_eq!(lines.len(), 2, "one line per user");
    for (line, user) in lines.iter().zip(["admin", "hap"]) {
        let hash = line.strip_prefix(&format!("{user}:")).expect("name:hash");
        assert!(
            hash.starts_with("$2y$10$"),
            "bcrypt as Trino reads it: {hash}"
        );
        assert!(
            bcrypt::verify(&users[user], hash).unwrap(),
            "{user}'s password"
        );
        assert!(!bcrypt::verify(format!("x{}", users[user]), hash).unwrap());
    }
    let internal = secret_values(h, "q-trino-internal", &["shared-secret"]).await;
    let tls = secret_values(
        h,
        "q-trino-tls",
        &["tls.crt", "tls.key", "tls.pem", "ca.crt"],
    )
    .await;
    let ca = h
        .api::<ConfigMap>()
        .get("q-ca")
        .await
        .unwrap()
        .data
        .unwrap()["ca.crt"]
        .clone();
    assert_eq!(
        tls["ca.crt"], ca,
        "the bundle clients get is the one the Secret names"
    );
    let kept = h
        .api::<Secret>()
        .get("hap-ca")
        .await
        .expect("the CA beside the operator");
    let kept_cert = String::from_utf8(kept.data.unwrap()["ca.crt"].0.clone()).unwrap();
    assert!(
        ca.starts_with(&kept_cert),
        "the published bundle starts with the operator's CA"
    );
    let der = |pem_text: &str| pem::parse(pem_text).unwrap().into_contents();
    let (ca_der, cert_der) = (der(&kept_cert), der(&tls["tls.crt"]));
    let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&cert_der).unwrap();
    cert.verify_signature(Some(ca_cert.public_key()))
        .expect("signed by the operator's CA");
    let names = format!(
        "{:?}",
        cert.subject_alternative_name().unwrap().unwrap().value
    );
    assert!(
        names.contains(&format!("q-trino-coordinator.{}.svc", h.ns)),
        "{names}"
    );
    assert!(tls["tls.pem"].contains("PRIVATE KEY") && tls["tls.pem"].contains(&tls["tls.crt"]));
    vec![
        users["admin"].clone(),
        users["hap"].clone(),
        internal["shared-secret"].clone(),
        tls["tls.key"].clone(),
    ]
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn a_resync_of_a_settled_hapquery_writes_nothing() {
    let h = Harness::start().await;
    create(&h, &query("still", MANAGED)).await;
    wait_query(&h, "still", "the database's image failing", |s| {
        reason_of(s, "Database") == "ContainerNotRunning"
    })
    .await;
    // Settled: every pod of the stack is in the state the kubelet keeps retrying it in, and the
    // status no longer changes. A fixed pause was not enough on a busy machine: a second component's
    // pod could still be on its way to its image failure.
    eventually(
        Duration::from_secs(120),
        "every pod in its retried state",
        || async {
            let pods = h
                .api::<Pod>()
                .list(&ListParams::default().labels("app.kubernetes.io/instance=still"))
                .await
                .map_err(|e| e.to_string())?;
            let unsettled: Vec<String> = pods
                .items
                .iter()
                .filter(|p| !retried(p))
                .map(|p| p.name_any())
                .collect();
            if unsettled.is_empty() {
                Ok(())
            } else {
                Err(format!("still on their way: {unsettled:?}"))
            }
        },
    )
    .await;
    let api = h.api::<HapQuery>();
    let (mut previous, deadline) = (
        String::new(),
        std::time::Instant::now() + Duration::from_secs(60),
    );
    loop {
        let version = api
            .get("still")
            .await
            .unwrap()
            .resource_version()
            .unwrap_or_default();
        if version == previous {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the status kept changing for a minute"
        );
        previous = version;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let settled = api.get("still").await.unwrap().status;
    h.faults.reset_calls();
    let before = h.successful_reconciles();
    eventually(Duration::from_secs(60), "three more reconciles", || async {
        let n = h.successful_reconciles();
        if n >= before + 3 {
            Ok(())
        } else {
            Err(format!("{n}"))
        }
    })
    .await;
    let writes = h.operator_writes();
    let after = api.get("still").await.unwrap().status;
    assert!(
        writes.is_empty(),
        "a resync wrote: {writes:#?}\nthe status settled: {settled:#?}\nthe status after: {after:#?}"
    );
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn a_missing_s3_secret_is_a_condition_and_creating_it_heals() {
    let h = Harness::start().await;
    let with_keys = query("keyed", MANAGED).replace(
        "bucket: air}",
        "bucket: air, credentialsSecret: {name: s3-keys}}",
    );
    create(&h, &with_keys).await;
    let hq = wait_query(&h, "keyed", "the Secret reported missing", |s| {
        reason_of(s, "Metastore") == "S3CredentialsSecretNotFound"
    })
    .await;
    assert_eq!(
        condition(&hq, "Trino").reason,
        "S3CredentialsSecretNotFound"
    );
    assert_eq!(
        hq.status
            .as_ref()
            .and_then(|s| s.phase)
            .map(|p| format!("{p:?}"))
            .as_deref(),
        Some("Failed")
    );
    assert!(
        condition(&hq, "Metastore")
            .message
            .contains("create it with the keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        "{}",
        condition(&hq, "Metastore").message
    );
    assert!(
        !h.exists::<StatefulSet>("keyed-mariadb").await,
        "nothing is created meanwhile"
    );
    wait_event(&h, "keyed", "Warning S3CredentialsSecretNotFound").await;

    h.create_secret(
        "s3-keys",
        &[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "b")],
    )
    .await;
    wait_query(&h, "keyed", "the Secret found", |s| {
        reason_of(s, "Metastore") == "WaitingForDatabase"
            && reason_of(s, "Trino") != "S3CredentialsSecretNotFound"
    })
    .await;
    assert!(h.exists::<StatefulSet>("keyed-mariadb").await);
}

const EXTERNAL: &str = "  database:
    external: {kind: mariadb, host: 127.0.0.1, port: 1, database: metastore, credentialsSecret: {name: db}}
  dashboard: {kind: none}
";

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn an_unreachable_external_database_is_a_condition_and_a_changed_job_is_replaced() {
    let h = Harness::start().await;
    h.create_secret("db", &[("username", "hive"), ("password", "p")])
        .await;
    create(&h, &query("ext", EXTERNAL)).await;
    let hq = wait_query(&h, "ext", "the database reported unreachable", |s| {
        reason_of(s, "Database") == "Unreachable"
    })
    .await;
    let database = condition(&hq, "Database");
    assert!(
        database
            .message
            .contains("127.0.0.1:1 refused or failed the connection")
            && database.message.contains("spec.database.external.host"),
        "{}",
        database.message
    );
    assert_eq!(condition(&hq, "Dashboard").reason, "NotRequested");
    assert!(
        !h.exists::<StatefulSet>("ext-mariadb").await,
        "no MariaDB for an external database"
    );
    wait_event(
        &h,
        "ext",
        "Warning Unreachable: Database: the external database at 127.0.0.1:1",
    )
    .await;

    // The schema Job is not held for a database the operator does not run; a new metastore image
    // changes its template, which a Job cannot take: it is replaced.
    let first = eventually(Duration::from_secs(60), "the schema Job", || async {
        h.api::<Job>()
            .get_opt("ext-metastore-schema")
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no Job".to_string())
    })
    .await;
    h.api::<HapQuery>()
        .patch(
            "ext",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"metastore": {"image": "hap.local/metastore:2"}}})),
        )
        .await
        .unwrap();
    let second = eventually(
        Duration::from_secs(60),
        "the schema Job replaced",
        || async {
            match h.api::<Job>().get_opt("ext-metastore-schema").await {
                Ok(Some(j)) if j.uid() != first.uid() => Ok(j),
                other => Err(format!("{:?}", other.map(|j| j.map(|j| j.uid())))),
            }
        },
    )
    .await;
    let image = second.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("hap.local/metastore:2"));
    wait_event(
        &h,
        "ext",
        "Normal Replacing: Deleted Job ext-metastore-schema",
    )
    .await;
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn the_database_volume_stays_when_the_hapquery_goes_unless_told_otherwise() {
    let h = Harness::start().await;
    let discard = MANAGED.replace(
        "storageSize: 1Gi,",
        "storageSize: 1Gi, keepOnDelete: false,",
    );
    create(&h, &query("kept", MANAGED)).await;
    create(&h, &query("dropped", &discard)).await;
    // The StatefulSet controller makes each claim for its pod.
    for claim in ["data-kept-mariadb-0", "data-dropped-mariadb-0"] {
        eventually(Duration::from_secs(90), claim, || async {
            h.api::<PersistentVolumeClaim>()
                .get_opt(claim)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("no claim".to_string())
        })
        .await;
    }
    for name in ["kept", "dropped"] {
        h.api::<HapQuery>()
            .delete(name, &DeleteParams::foreground())
            .await
            .unwrap();
    }
    for sts in ["kept-mariadb", "dropped-mariadb"] {
        eventually(Duration::from_secs(90), "the StatefulSet gone", || async {
            match h.api::<StatefulSet>().get_opt(sts).await {
                Ok(None) => Ok(()),
                other => Err(format!("{:?}", other.map(|s| s.is_some()))),
            }
        })
        .await;
    }
    eventually(
        Duration::from_secs(90),
        "the discarded claim gone",
        || async {
            match h
                .api::<PersistentVolumeClaim>()
                .get_opt("data-dropped-mariadb-0")
                .await
            {
                Ok(None) => Ok(()),
                Ok(Some(c)) if c.metadata.deletion_timestamp.is_some() => Ok(()),
                other => Err(format!("{:?}", other.map(|c| c.map(|c| c.name_any())))),
            }
        },
    )
    .await;
    let kept = h
        .api::<PersistentVolumeClaim>()
        .get_opt("data-kept-mariadb-0")
        .await
        .unwrap()
        .expect("the kept claim is still there");
    assert!(
        kept.metadata.deletion_timestamp.is_none(),
        "and not being deleted"
    );
}

async fn mariadb_ready(h: &Harness, name: &str) -> HapQuery {
    wait_query(h, name, "MariaDB ready", |s| {
        reason_of(s, "Database") == "Ready"
    })
    .await
}

/// MariaDB for real (the `hap-mariadb` image): the Database condition turns `Ready`, the schema Job
/// starts only then, and a table written into the metastore database survives a spec change that
/// rolls MariaDB's pod, and the HapQuery's deletion and creation again (the claim and the generated
/// passwords are kept together).
#[tokio::test]
#[ignore = "needs a Kubernetes cluster, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn the_metastore_database_keeps_its_tables_across_spec_changes_and_deletion() {
    let h = Harness::start().await;
    let spec = |memory: &str| {
        query(
            "db",
            &format!(
                "  database: {{mariadb: {{image: '{}', storageSize: 1Gi, resources: {{requests: {{cpu: 10m, memory: 64Mi}}, limits: {{memory: {memory}}}}}}}}}\n  dashboard: {{kind: none}}\n",
                common::MARIADB_IMAGE
            ),
        )
    };
    create(&h, &spec("512Mi")).await;
    let hq = mariadb_ready(&h, "db").await;
    assert_ne!(
        condition(&hq, "Metastore").reason,
        "WaitingForDatabase",
        "the schema Job goes once the database is ready"
    );
    assert!(h.exists::<Job>("db-metastore-schema").await);
    let sql = |statement: &str| {
        h.kubectl(&[
            "exec",
            "db-mariadb-0",
            "--",
            "sh",
            "-c",
            &format!("mariadb -uhive -p\"$MARIADB_PASSWORD\" -N metastore -e '{statement}'"),
        ])
    };
    sql("CREATE TABLE kept (v INT); INSERT INTO kept VALUES (42)");
    assert_eq!(sql("SELECT v FROM kept").trim(), "42");

    // A new memory limit changes the pod template: the StatefulSet replaces MariaDB's pod.
    let first = h
        .api::<k8s_openapi::api::core::v1::Pod>()
        .get("db-mariadb-0")
        .await
        .unwrap()
        .uid();
    let changed: HapQuery = serde_saphyr::from_str(&spec("640Mi")).unwrap();
    h.api::<HapQuery>()
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"database": changed.spec.database}})),
        )
        .await
        .unwrap();
    eventually(
        Duration::from_secs(120),
        "MariaDB's pod replaced and ready",
        || async {
            let pod = h
                .api::<k8s_openapi::api::core::v1::Pod>()
                .get_opt("db-mariadb-0")
                .await
                .map_err(|e| e.to_string())?
                .ok_or("no pod")?;
            let ready = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if pod.uid() != first && ready {
                Ok(())
            } else {
                Err(format!("uid changed {}, ready {ready}", pod.uid() != first))
            }
        },
    )
    .await;
    assert_eq!(
        sql("SELECT v FROM kept").trim(),
        "42",
        "after the pod was replaced"
    );

    // Deleted and made again: the claim and the passwords were kept, so the tables are there.
    h.api::<HapQuery>()
        .delete("db", &DeleteParams::foreground())
        .await
        .unwrap();
    eventually(Duration::from_secs(120), "the HapQuery gone", || async {
        match h.api::<HapQuery>().get_opt("db").await {
            Ok(None) => Ok(()),
            other => Err(format!("{:?}", other.map(|q| q.is_some()))),
        }
    })
    .await;
    assert!(
        h.exists::<Secret>("db-mariadb").await,
        "the passwords stay with the volume"
    );
    create(&h, &spec("640Mi")).await;
    mariadb_ready(&h, "db").await;
    assert_eq!(
        sql("SELECT v FROM kept").trim(),
        "42",
        "after the HapQuery was made again"
    );
}

/// Whether the pod is where the kubelet keeps it: each container running, or waiting for a reason
/// other than its creation (an image it cannot pull, a crash loop), and each init container done,
/// running, or waiting likewise.
fn retried(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    let settled = |c: &k8s_openapi::api::core::v1::ContainerStatus| {
        c.state.as_ref().is_some_and(|s| {
            s.running.is_some()
                || s.terminated.is_some()
                || s.waiting.as_ref().is_some_and(|w| {
                    !matches!(
                        w.reason.as_deref(),
                        None | Some("ContainerCreating" | "PodInitializing")
                    )
                })
        })
    };
    let containers = status.container_statuses.as_deref().unwrap_or_default();
    let init = status
        .init_container_statuses
        .as_deref()
        .unwrap_or_default();
    !containers.is_empty() && containers.iter().chain(init).all(settled)
}
