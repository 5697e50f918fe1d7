//! Trino: a coordinator Deployment and a worker Deployment (replicas = `workers`, 0 allowed), their
//! Services, and one builder per file Trino reads: `node.properties`, `jvm.config`,
//! `config.properties`, `log.properties` per role, and the `hive` catalog shared by both. A changed
//! file changes the pod template's config hash, so the pods roll. The S3 keys reach Trino through
//! the environment (`${ENV:...}` in the catalog), set from the credentials Secret.
//!
//! Access: clients reach the coordinator over HTTPS (`HTTPS_PORT`) with a user and password from the
//! generated Secret `<name>-trino-users` (`admin`, and `hap` for analysts and the dashboard), which
//! the operator turns into the bcrypt password file Trino reads (`<name>-trino-password-file`). The
//! certificate comes from the operator's CA (`<name>-trino-tls`), and Trino reloads it when it is
//! renewed. Nodes talk to each other over HTTP on `PORT`, each call signed with the generated shared
//! secret (`<name>-trino-internal`); Trino refuses everything else there, since a password is never
//! taken over HTTP. The probes read `/v1/info`, which Trino serves to anyone.
//!
//! Property names are Trino 476's (the CRD admits 476 and later). Trino refuses to start on a
//! property nothing binds, so a release that renames one needs its own row here, checked by
//! starting that release (docs/sql-stack.md).

use hap_api::HapQuery;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EmptyDirVolumeSource, ExecAction, Lifecycle, LifecycleHandler, Secret,
    Service, ServiceSpec, Volume, VolumeMount,
};
use kube::ResourceExt;

use super::metastore;
use super::parts::{config_map, generated_secret, header, label_selector, meta, template_meta};
use crate::hapquery::children::Trino;
use crate::hapquery::names::{self, TRINO_COORDINATOR as COORDINATOR, TRINO_WORKER as WORKER};
use crate::hapquery::resolve::{Resolved, TrinoNode};
use crate::pipeline::authority::{ISSUER, bundle_data};
use crate::pipeline::kinds::Desired;
use crate::pipeline::objects::{
    Root, config_volume, http_check, mount, pod_spec, port, probes, secret_env, secret_volume,
    service_port, template,
};

/// The annotation of `<name>-trino-tls` listing the host names its certificate is for.
pub const HOSTS: &str = "hap.cloudian.com/hosts";

/// The nodes' own port: HTTP, calls signed with the shared secret.
pub const PORT: i32 = 8080;
/// The clients' port: HTTPS, with passwords.
pub const HTTPS_PORT: i32 = 8443;
pub const NODE: &str = "node.properties";
pub const PASSWORD_AUTHENTICATOR: &str = "password-authenticator.properties";
pub const ACCESS_CONTROL: &str = "access-control.properties";
pub const RULES: &str = "rules.json";
/// The users of `<name>-trino-users`: the administrator, and the analysts' and dashboard's user.
pub const ADMIN_USER: &str = "admin";
pub const USER: &str = "hap";
pub const USERS: [&str; 2] = [ADMIN_USER, USER];
pub const PASSWORD_FILE_KEY: &str = "password.db";
pub const SHARED_SECRET_KEY: &str = "shared-secret";
const SHARED_SECRET_ENV: &str = "TRINO_SHARED_SECRET";
/// The key of `<name>-trino-tls` with the key and certificate in one file, as Trino reads them.
const KEYSTORE_KEY: &str = "tls.pem";
/// The key of the `<name>-ca` ConfigMap clients mount.
pub const CA_KEY: &str = "ca.crt";
const TLS_DIR: &str = "/etc/trino/tls";
const AUTH_DIR: &str = "/etc/trino/auth";
pub const JVM: &str = "jvm.config";
pub const CONFIG: &str = "config.properties";
pub const LOG: &str = "log.properties";
pub const CATALOG: &str = "hive.properties";
/// The layout of the `trinodb/trino` image.
const ETC: &str = "/etc/trino";
const DATA_DIR: &str = "/data/trino";
const USER_ID: i64 = 1000;

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Coordinator,
    Worker,
}

/// Nodes that should find each other share an environment name: the HapQuery's, as Trino wants it
/// (lower-case letters, digits and underscores).
fn environment_name(hq: &HapQuery) -> String {
    hq.name_any()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

pub fn node_properties(hq: &HapQuery) -> String {
    header(hq, "#")
        + &format!(
            "# Nodes that should form one cluster share an environment name. node.id is the pod's name,
# which the image's entrypoint passes when this file names none.
node.environment={}
# Logs and spill files.
node.data-dir={DATA_DIR}
",
            environment_name(hq)
        )
}

pub fn jvm_config(hq: &HapQuery, node: &TrinoNode) -> String {
    header(hq, "#")
        + &format!(
            "-server
-Xmx{}M
-XX:InitialRAMPercentage=10
-XX:+UseG1GC
-XX:+ExitOnOutOfMemoryError
-XX:+HeapDumpOnOutOfMemoryError
-XX:HeapDumpPath={DATA_DIR}
-XX:ReservedCodeCacheSize=256M
-XX:PerMethodRecompilationCutoff=10000
-XX:PerBytecodeRecompilationCutoff=10000
-Djdk.attach.allowAttachSelf=true
-Djdk.nio.maxCachedBufferSize=2000000
-XX:+EnableDynamicAgentLoading
-Dfile.encoding=UTF-8
",
            node.heap_mib
        )
}

/// Half the heap per query on a node, within Trino's default 30 % headroom.
fn per_node_mb(node: &TrinoNode) -> u64 {
    node.heap_mib / 2
}

/// One query's memory across the cluster: every node that runs tasks.
fn cluster_mb(hq: &HapQuery, r: &Resolved) -> u64 {
    match hq.spec.trino.workers {
        w if w > 0 => per_node_mb(&r.worker) * w as u64,
        _ => per_node_mb(&r.coordinator),
    }
}

fn config_properties(hq: &HapQuery, r: &Resolved, role: Role) -> String {
    let name = hq.name_any();
    let workers = hq.spec.trino.workers;
    let mut out = header(hq, "#");
    let node = match role {
        Role::Coordinator => {
            out += &format!(
                "coordinator=true
# With no workers the coordinator runs query tasks itself.
node-scheduler.include-coordinator={}
http-server.http.port={PORT}
# Clients: HTTPS, with the certificate from the operator's CA (reloaded when it is renewed).
http-server.https.enabled=true
http-server.https.port={HTTPS_PORT}
http-server.https.keystore.path={TLS_DIR}/{KEYSTORE_KEY}
# The coordinator announces itself to its own discovery service.
discovery.uri=http://localhost:{PORT}
",
                workers == 0
            );
            &r.coordinator
        }
        Role::Worker => {
            out += &format!(
                "coordinator=false
http-server.http.port={PORT}
discovery.uri=http://{}:{PORT}
# A worker asked to stop takes no new tasks, finishes its running ones, and waits this long on
# either side (the pod's termination grace period is longer).
shutdown.grace-period={}s
",
                names::trino_coordinator(&name),
                hq.spec.trino.graceful_shutdown_seconds
            );
            &r.worker
        }
    };
    out += &format!(
        "# Every caller authenticates: clients with a password (over HTTPS only), nodes by signing their
# calls with the shared secret, from the environment.
http-server.authentication.type=PASSWORD
internal-communication.shared-secret=${{ENV:{SHARED_SECRET_ENV}}}
# Only the catalogs in etc/catalog.
catalog.management=static
# Memory for one query, per node (half the heap of jvm.config) and in all.
query.max-memory={}MB
query.max-memory-per-node={}MB
",
        cluster_mb(hq, r),
        per_node_mb(node)
    );
    out
}

pub fn coordinator_config(hq: &HapQuery, r: &Resolved) -> String {
    config_properties(hq, r, Role::Coordinator)
}

pub fn worker_config(hq: &HapQuery, r: &Resolved) -> String {
    config_properties(hq, r, Role::Worker)
}

/// `password-authenticator.properties`: the users of the password file, which Trino reads again
/// when it changes.
pub fn password_authenticator(hq: &HapQuery) -> String {
    header(hq, "#")
        + &format!(
            "password-authenticator.name=file
file.password-file={AUTH_DIR}/{PASSWORD_FILE_KEY}
"
        )
}

/// `access-control.properties` (the coordinator's): the rules of `rules.json`.
pub fn access_control(hq: &HapQuery) -> String {
    header(hq, "#")
        + &format!(
            "access-control.name=file
security.config-file={ETC}/{RULES}
"
        )
}

/// `rules.json`: every user may use the catalogs (the S3 keys' reach is the limit) and the hive
/// catalog's procedures; only the administrator may change the cluster's state (`PUT /v1/info/state`
/// stops a node: without this any authenticated user could stop the coordinator) or see and kill
/// another user's queries.
pub fn rules() -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "catalogs": [{"allow": "all"}],
        // Without procedure rules only Trino's built-in ones may run; tables.sql calls the hive
        // catalog's (sync_partition_metadata).
        "procedures": [{"catalog": "hive", "schema": "system", "privileges": ["EXECUTE"]}],
        // Each user runs queries and sees and kills its own; admin sees and kills them all.
        "queries": [
            {"user": ADMIN_USER, "allow": ["execute", "view", "kill"]},
            {"allow": ["execute"]}
        ],
        "system_information": [
            {"user": ADMIN_USER, "allow": ["read", "write"]},
            {"allow": ["read"]}
        ]
    }))
    .unwrap_or_default()
        + "\n"
}

pub fn log_properties(hq: &HapQuery) -> String {
    header(hq, "#") + "io.trino=INFO\n"
}

/// `catalog/hive.properties`: tables described in the metastore, data read by Trino's own S3 client.
pub fn catalog(hq: &HapQuery, r: &Resolved) -> String {
    let s3 = &r.s3;
    let mut out = header(hq, "#");
    out += &format!(
        "connector.name=hive
hive.metastore.uri=thrift://{}:{}
# The metastore's first calls can take longer than the default 10s on a busy node; a timed-out
# call would be retried while the first still runs.
hive.metastore-timeout=60s
# Trino's native S3 file system (the legacy Hadoop one is off).
fs.native-s3.enabled=true
s3.endpoint={}
s3.region={}
s3.path-style-access={}
",
        names::metastore(&hq.name_any()),
        metastore::PORT,
        s3.endpoint,
        s3.region,
        s3.path_style
    );
    if r.s3.credentials.is_some() {
        out +=
            "# Replaced by Trino at start from its environment, so the keys are never in this file.
s3.aws-access-key=${ENV:AWS_ACCESS_KEY_ID}
s3.aws-secret-key=${ENV:AWS_SECRET_ACCESS_KEY}
";
    }
    out
}

fn role_files(hq: &HapQuery, r: &Resolved, role: Role) -> Vec<(&'static str, String)> {
    let node = match role {
        Role::Coordinator => &r.coordinator,
        Role::Worker => &r.worker,
    };
    let mut files = vec![
        (NODE, node_properties(hq)),
        (JVM, jvm_config(hq, node)),
        (CONFIG, config_properties(hq, r, role)),
        (PASSWORD_AUTHENTICATOR, password_authenticator(hq)),
        (LOG, log_properties(hq)),
    ];
    // Workers take only the coordinator's signed calls, which no rule applies to.
    if role == Role::Coordinator {
        files.push((ACCESS_CONTROL, access_control(hq)));
        files.push((RULES, rules()));
    }
    files
}

/// The worker's preStop: ask Trino to shut down gracefully, then wait until it has, so the kubelet's
/// SIGTERM only comes once the running tasks are done. The request is signed as the nodes sign
/// theirs (a JWT, HS256, keyed with the SHA-256 of the shared secret, valid five minutes), so that
/// no caller without the secret can stop a worker. The token goes to curl on its standard input, not
/// its command line.
const SHUTDOWN_SCRIPT: &str = r#"set -eu
command -v openssl >/dev/null || { echo "preStop: no openssl in this image: the shutdown request cannot be signed, so the worker stops without draining" >&2; exit 1; }
b64() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
key=$(printf %s "$TRINO_SHARED_SECRET" | openssl dgst -sha256 -binary | od -An -v -tx1 | tr -d ' \n')
head=$(printf '{"alg":"HS256","typ":"JWT"}' | b64)
body=$(printf '{"sub":"%s-prestop","exp":%s}' "$(hostname)" "$(($(date +%s) + 300))" | b64)
sig=$(printf %s "$head.$body" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | b64)
printf 'X-Trino-Internal-Bearer: %s\n' "$head.$body.$sig" |
  curl -sf -X PUT -H @- -H 'Content-Type: application/json' -d '"SHUTTING_DOWN"' http://localhost:PORT/v1/info/state
while curl -sf -o /dev/null http://localhost:PORT/v1/info; do sleep 1; done
"#;

pub fn shutdown_command() -> Vec<String> {
    vec![
        "/bin/sh".into(),
        "-c".into(),
        SHUTDOWN_SCRIPT.replace("PORT", &PORT.to_string()),
    ]
}

fn deployment(
    hq: &HapQuery,
    r: &Resolved,
    role: Role,
    config: &ConfigMap,
    catalog: &ConfigMap,
) -> Deployment {
    let name = hq.name_any();
    let (component, deployment_name, node, replicas) = match role {
        Role::Coordinator => (
            COORDINATOR,
            names::trino_coordinator(&name),
            &r.coordinator,
            1,
        ),
        Role::Worker => (
            WORKER,
            names::trino_worker(&name),
            &r.worker,
            hq.spec.trino.workers,
        ),
    };
    let config_name = config.metadata.name.clone().unwrap_or_default();
    let mut env = r.s3.credentials_env();
    env.push(secret_env(
        SHARED_SECRET_ENV,
        &names::trino_internal(&name),
        SHARED_SECRET_KEY,
    ));
    let mut ports = vec![port("http", PORT)];
    let mut mounts = vec![
        mount("config", ETC),
        mount("catalog", &format!("{ETC}/catalog")),
        mount("auth", AUTH_DIR),
        VolumeMount {
            name: "data".into(),
            mount_path: DATA_DIR.into(),
            ..Default::default()
        },
    ];
    let mut volumes = vec![
        config_volume("config", &config_name, &[]),
        config_volume("catalog", &names::trino_catalog(&name), &[]),
        secret_volume("auth", &names::trino_password_file(&name), &[]),
        Volume {
            name: "data".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
    ];
    // Only the coordinator serves clients, so only it holds the certificate's key.
    if role == Role::Coordinator {
        ports.push(port("https", HTTPS_PORT));
        mounts.push(mount("tls", TLS_DIR));
        volumes.push(secret_volume(
            "tls",
            &names::trino_tls(&name),
            &[KEYSTORE_KEY, CA_KEY],
        ));
        // The CLI in this container (`trino --user hap --password`, its truststore the CA in
        // TLS_DIR) signs in as the analysts' user: whoever may exec here may read that Secret too.
        env.push(secret_env(
            "TRINO_PASSWORD",
            &names::trino_users(&name),
            USER,
        ));
    }
    // Up to two minutes to start (the JVM, the plugins and, on a coordinator, the catalogs).
    let probes = probes(http_check("/v1/info", "http"), 120);
    let mut container = Container {
        name: "trino".into(),
        image: Some(r.trino_image.clone()),
        env: Some(env),
        ports: Some(ports),
        resources: Some(node.resources.clone()),
        volume_mounts: Some(mounts),
        startup_probe: Some(probes.startup),
        readiness_probe: Some(probes.readiness),
        liveness_probe: Some(probes.liveness),
        ..Default::default()
    };
    let grace = hq.spec.trino.graceful_shutdown_seconds as i64;
    if role == Role::Worker {
        container.lifecycle = Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                exec: Some(ExecAction {
                    command: Some(shutdown_command()),
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let mut pod = pod_spec(
        USER_ID,
        USER_ID,
        vec![container],
        volumes,
        Root::ReadOnly(&[]),
    );
    // A worker waits the grace period before and after its tasks finish: twice that, and a margin.
    pod.termination_grace_period_seconds = Some(match role {
        Role::Worker => 2 * grace + 30,
        Role::Coordinator => 30,
    });
    Deployment {
        metadata: meta(hq, &deployment_name, component),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: label_selector(hq, component),
            // Two coordinators at once would split the cluster: the old one goes first.
            strategy: (role == Role::Coordinator).then(|| DeploymentStrategy {
                type_: Some("Recreate".into()),
                ..Default::default()
            }),
            template: template(template_meta(hq, component, &[config, catalog]), pod),
            ..Default::default()
        }),
        status: None,
    }
}

fn service(hq: &HapQuery, component: &str, name: String, headless: bool) -> Service {
    let mut ports = vec![service_port("http", PORT, None)];
    if component == COORDINATOR {
        ports.push(service_port("https", HTTPS_PORT, None));
    }
    Service {
        metadata: meta(hq, &name, component),
        spec: Some(ServiceSpec {
            cluster_ip: headless.then(|| "None".into()),
            selector: Some(super::parts::selector(hq, component)),
            ports: Some(ports),
            ..Default::default()
        }),
        status: None,
    }
}

/// Trino's URL inside the cluster, for the status and clients.
pub fn url(hq: &HapQuery) -> String {
    format!(
        "https://{}.{}.svc:{HTTPS_PORT}",
        names::trino_coordinator(&hq.name_any()),
        hq.namespace().unwrap_or_default()
    )
}

/// The host names the coordinator's certificate is for: its Service's, qualified with the namespace
/// (what `url` and the dashboard use), and the loopback's.
pub fn hosts(hq: &HapQuery) -> Vec<String> {
    let service = names::trino_coordinator(&hq.name_any());
    let ns = hq.namespace().unwrap_or_default();
    // Qualified names only: a short name, the same in every namespace, would let one tenant's
    // certificate pass for another's coordinator. Not under the cluster domain either: the CA may
    // sign `*.svc` names only (see `pipeline::authority`).
    vec![
        format!("{service}.{ns}.svc"),
        // A port-forward's, and the CLI's in the coordinator's own container.
        "localhost".into(),
        "127.0.0.1".into(),
    ]
}

/// `<name>-trino-tls`, as the plan compares it: which CA signs it and for which hosts (its values
/// come at issue, see `plan::certificate`).
fn certificate_secret(hq: &HapQuery, r: &Resolved) -> Secret {
    let mut secret = Secret {
        metadata: meta(hq, &names::trino_tls(&hq.name_any()), COORDINATOR),
        // Opaque, not kubernetes.io/tls: its values come at issue, and the API refuses a TLS Secret
        // without them (as `render` prints it).
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    let annotations = secret
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    annotations.insert(
        ISSUER.into(),
        r.trust.as_ref().map(|t| t.id.clone()).unwrap_or_default(),
    );
    annotations.insert(HOSTS.into(), r.trino_hosts.join(","));
    secret
}

/// `<name>-ca`: the CA bundle that signs Trino's certificate, for clients to mount (`ca.crt`).
pub fn ca_config_map(hq: &HapQuery, r: &Resolved) -> ConfigMap {
    let mut cm = config_map(hq, &names::ca(&hq.name_any()), COORDINATOR, &[]);
    cm.data = Some(r.trust.as_ref().map_or_else(
        || {
            let placeholder = "# The operator's CA certificates, added when it runs.\n";
            [(CA_KEY.to_string(), placeholder.to_string())].into()
        },
        bundle_data,
    ));
    cm
}

/// Trino's children: its Secrets, the catalog, each role's files, Services and Deployment.
pub fn build(hq: &HapQuery, r: &Resolved) -> Trino<Desired> {
    let name = hq.name_any();
    let catalog = config_map(
        hq,
        &names::trino_catalog(&name),
        COORDINATOR,
        &[(CATALOG, catalog(hq, r))],
    );
    let coordinator_config = config_map(
        hq,
        &names::trino_coordinator(&name),
        COORDINATOR,
        &role_files(hq, r, Role::Coordinator),
    );
    let worker_config = config_map(
        hq,
        &names::trino_worker(&name),
        WORKER,
        &role_files(hq, r, Role::Worker),
    );
    Trino {
        users: Some(generated_secret(
            hq,
            &names::trino_users(&name),
            COORDINATOR,
        )),
        password_file: Some(Secret {
            metadata: meta(hq, &names::trino_password_file(&name), COORDINATOR),
            type_: Some("Opaque".into()),
            ..Default::default()
        }),
        internal: Some(generated_secret(
            hq,
            &names::trino_internal(&name),
            COORDINATOR,
        )),
        certificate: Some(certificate_secret(hq, r)),
        ca: Some(ca_config_map(hq, r)),
        coordinator_policy: Some(super::network::trino_coordinator(hq)),
        worker_policy: Some(super::network::trino_workers(hq)),
        coordinator: Some(deployment(
            hq,
            r,
            Role::Coordinator,
            &coordinator_config,
            &catalog,
        )),
        worker: Some(deployment(hq, r, Role::Worker, &worker_config, &catalog)),
        coordinator_service: Some(service(
            hq,
            COORDINATOR,
            names::trino_coordinator(&name),
            false,
        )),
        // Headless: workers need no virtual IP, only names the coordinator's discovery does not use.
        worker_service: Some(service(hq, WORKER, names::trino_worker(&name), true)),
        catalog: Some(catalog),
        coordinator_config: Some(coordinator_config),
        worker_config: Some(worker_config),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hapquery::build::parts::CONFIG_HASH;
    use crate::testing::hapquery as hq;
    use crate::testing::resolve_hapquery as resolve;

    const SPEC: &str = "{s3: {endpoint: 'http://s3.local:80', bucket: air, credentialsSecret: {name: keys}}, trino: {workers: 2, gracefulShutdownSeconds: 90, worker: {resources: {limits: {memory: 4Gi}}}}}";

    fn built(spec: &str) -> Trino<Desired> {
        let q = hq(spec);
        build(&q, &resolve(&q))
    }

    /// The script of the pod's preStop hook (`sh -c SCRIPT`).
    fn pre_stop(pod: &k8s_openapi::api::core::v1::PodSpec) -> String {
        let hook = pod.containers[0]
            .lifecycle
            .clone()
            .unwrap()
            .pre_stop
            .unwrap();
        hook.exec.unwrap().command.unwrap()[2].clone()
    }

    fn file(cm: &Option<ConfigMap>, key: &str) -> String {
        cm.as_ref().unwrap().data.as_ref().unwrap()[key].clone()
    }

    #[test]
    fn the_catalog_uses_native_s3_with_path_style_and_keys_from_the_environment() {
        let hive = file(&built(SPEC).catalog, CATALOG);
        for line in [
            "connector.name=hive",
            "hive.metastore.uri=thrift://q-metastore:9083",
            "fs.native-s3.enabled=true",
            "s3.endpoint=http://s3.local:80",
            "s3.region=us-east-1",
            "s3.path-style-access=true",
            "s3.aws-access-key=${ENV:AWS_ACCESS_KEY_ID}",
            "s3.aws-secret-key=${ENV:AWS_SECRET_ACCESS_KEY}",
        ] {
            assert!(hive.lines().any(|l| l == line), "{line} not in\n{hive}");
        }
    }

    #[test]
    fn workers_shut_down_gracefully_within_a_longer_termination_grace() {
        let t = built(SPEC);
        let conf = file(&t.worker_config, CONFIG);
        assert!(conf.lines().any(|l| l == "shutdown.grace-period=90s"));
        assert!(
            conf.lines()
                .any(|l| l == "discovery.uri=http://q-trino-coordinator:8080")
        );
        assert!(
            conf.lines()
                .any(|l| l == "query.max-memory-per-node=1638MB")
        );
        assert!(conf.lines().any(|l| l == "query.max-memory=3276MB"));
        let spec = t.worker.unwrap().spec.unwrap();
        assert_eq!(spec.replicas, Some(2));
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.termination_grace_period_seconds, Some(210));
        let c = &pod.containers[0];
        let stop = pre_stop(&pod);
        assert!(
            stop.contains("-X PUT")
                && stop.contains("\"SHUTTING_DOWN\"")
                && stop.contains("/v1/info/state")
        );
        assert_eq!(
            c.liveness_probe
                .clone()
                .unwrap()
                .http_get
                .unwrap()
                .path
                .as_deref(),
            Some("/v1/info")
        );
        let coordinator = file(&t.coordinator_config, CONFIG);
        assert!(
            coordinator
                .lines()
                .any(|l| l == "node-scheduler.include-coordinator=false")
        );
    }

    #[test]
    fn without_workers_the_coordinator_runs_tasks_and_the_worker_deployment_is_scaled_to_zero() {
        let t = built(
            "{s3: {endpoint: 'http://s3:80', bucket: b}, trino: {workers: 0, coordinator: {resources: {limits: {memory: 1280Mi}}}}}",
        );
        let conf = file(&t.coordinator_config, CONFIG);
        assert!(
            conf.lines()
                .any(|l| l == "node-scheduler.include-coordinator=true")
        );
        assert!(conf.lines().any(|l| l == "query.max-memory=512MB"));
        assert!(
            file(&t.coordinator_config, JVM)
                .lines()
                .any(|l| l == "-Xmx1024M")
        );
        assert_eq!(t.worker.unwrap().spec.unwrap().replicas, Some(0));
        assert!(
            !file(&t.catalog, CATALOG).contains("aws-access-key"),
            "no Secret, no keys"
        );
    }

    #[test]
    fn a_changed_file_changes_the_pod_templates_config_hash() {
        let hash = |t: &Trino<Desired>| {
            t.coordinator
                .as_ref()
                .unwrap()
                .spec
                .as_ref()
                .unwrap()
                .template
                .metadata
                .as_ref()
                .unwrap()
                .annotations
                .as_ref()
                .unwrap()[CONFIG_HASH]
                .clone()
        };
        let a = built(SPEC);
        let b = built(&SPEC.replace("s3.local:80", "s3.other:80"));
        assert_eq!(hash(&a), hash(&built(SPEC)));
        assert_ne!(hash(&a), hash(&b), "the catalog changed");
        let env = a
            .coordinator
            .unwrap()
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .containers[0]
            .env
            .clone()
            .unwrap();
        assert!(
            env.iter().all(|e| e.value.is_none()),
            "keys come from the Secret"
        );
    }

    #[test]
    fn every_caller_authenticates_and_only_the_coordinator_serves_https() {
        let t = built(SPEC);
        let coordinator = file(&t.coordinator_config, CONFIG);
        let worker = file(&t.worker_config, CONFIG);
        for conf in [&coordinator, &worker] {
            for line in [
                "http-server.authentication.type=PASSWORD",
                "internal-communication.shared-secret=${ENV:TRINO_SHARED_SECRET}",
            ] {
                assert!(conf.lines().any(|l| l == line), "{line} not in\n{conf}");
            }
        }
        assert!(
            coordinator
                .lines()
                .any(|l| l == "http-server.https.keystore.path=/etc/trino/tls/tls.pem")
        );
        assert!(!worker.contains("https"), "workers serve the nodes only");
        let rules: serde_json::Value =
            serde_json::from_str(&file(&t.coordinator_config, RULES)).unwrap();
        assert_eq!(
            rules["system_information"],
            serde_json::json!([{"user": "admin", "allow": ["read", "write"]}, {"allow": ["read"]}]),
            "only the administrator changes a node's state"
        );
        assert_eq!(
            rules["procedures"][0]["catalog"], "hive",
            "tables.sql's CALL"
        );
        assert_eq!(
            rules["queries"][1],
            serde_json::json!({"allow": ["execute"]})
        );
        assert!(
            file(&t.coordinator_config, ACCESS_CONTROL)
                .lines()
                .any(|l| l == "security.config-file=/etc/trino/rules.json")
        );
        assert!(
            file(&t.worker_config, PASSWORD_AUTHENTICATOR)
                .lines()
                .any(|l| l == "file.password-file=/etc/trino/auth/password.db")
        );
        let pod = |d: Option<Deployment>| d.unwrap().spec.unwrap().template.spec.unwrap();
        let (c, w) = (pod(t.coordinator), pod(t.worker));
        let secrets = |p: &k8s_openapi::api::core::v1::PodSpec| -> Vec<String> {
            p.volumes
                .iter()
                .flatten()
                .filter_map(|v| v.secret.as_ref()?.secret_name.clone())
                .collect()
        };
        assert_eq!(secrets(&c), ["q-trino-password-file", "q-trino-tls"]);
        assert_eq!(secrets(&w), ["q-trino-password-file"], "no certificate key");
        let env = |p: &k8s_openapi::api::core::v1::PodSpec| p.containers[0].env.clone().unwrap();
        let shared = env(&w)
            .into_iter()
            .find(|e| e.name == "TRINO_SHARED_SECRET")
            .unwrap();
        assert!(shared.value.is_none(), "from the Secret, never a value");
        assert_eq!(
            shared.value_from.unwrap().secret_key_ref.unwrap().name,
            "q-trino-internal"
        );
        let ports = |p: &k8s_openapi::api::core::v1::PodSpec| -> Vec<i32> {
            p.containers[0]
                .ports
                .iter()
                .flatten()
                .map(|p| p.container_port)
                .collect()
        };
        assert_eq!((ports(&c), ports(&w)), (vec![8080, 8443], vec![8080]));
        let stop = pre_stop(&w);
        assert!(stop.contains("X-Trino-Internal-Bearer") && stop.contains("curl -sf -X PUT -H @-"));
        assert!(
            !stop.contains("X-Trino-User"),
            "an unsigned request would be refused"
        );
        let cert = t.certificate.unwrap();
        assert_eq!(cert.type_.as_deref(), Some("Opaque"));
        assert!(
            cert.data.is_none() && cert.string_data.is_none(),
            "values come at issue"
        );
        assert!(
            cert.metadata.annotations.unwrap()[HOSTS]
                .starts_with("q-trino-coordinator.ns.svc,localhost,127.0.0.1")
        );
    }

    #[test]
    fn node_environment_is_a_trino_name() {
        let q: HapQuery = serde_saphyr::from_str(
            "apiVersion: hap.cloudian.com/v1alpha1\nkind: HapQuery\nmetadata: {name: Example-HQ.1}\nspec: {s3: {endpoint: 'http://s3:80', bucket: b}}\n",
        )
        .unwrap();
        assert!(
            node_properties(&q)
                .lines()
                .any(|l| l == "node.environment=example_hq_1")
        );
        assert_eq!(
            url(&hq("{s3: {endpoint: 'http://s3:80', bucket: b}}")),
            "https://q-trino-coordinator.ns.svc:8443"
        );
    }
}
