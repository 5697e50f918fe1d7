//! The dashboard over Trino.
//!
//! Superset (the default): its configuration and first-start script (`superset_config.py`,
//! `superset-init.sh`, which the loopback stack runs too), a generated Secret (`SECRET_KEY`, the admin's
//! password), an init Job (schema, admin, roles, the Trino database), the web Deployment and a NodePort
//! Service. Its metadata lives in a `superset` database on the metastore's database server.
//!
//! Redash: the server and worker Deployments, an init Job (tables, the root user, the Trino data
//! source) and a NodePort Service, with PostgreSQL and Redis given by the user's Secret. Rendered and
//! schema-checked only: Redash ships as an image, which this project cannot run outside a cluster.

use hap_api::HapQuery;
use hap_api::hapquery::{DashboardKind, SUPERSET_DATABASE};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVar, KeyToPath, SecretVolumeSource, Service, ServiceSpec, Volume,
};
use kube::ResourceExt;

use super::parts::{config_map, generated_secret, header, label_selector, meta, template_meta};
use super::{database, trino};
use crate::hapquery::children::Dashboard;
use crate::hapquery::names::{
    self, ADMIN_PASSWORD_KEY, COOKIE_SECRET_KEY, DASHBOARD as COMPONENT, SECRET_KEY_KEY,
};
use crate::hapquery::resolve::{Resolved, Username};
use crate::pipeline::kinds::Desired;
use crate::pipeline::objects::{
    Root, config_volume, env, http_check, mount, pod_spec, port, probes, secret_env, service_port,
    template,
};

pub const SUPERSET_PORT: i32 = 8088;
pub const SUPERSET_CONFIG: &str = "superset_config.py";
pub const SUPERSET_INIT: &str = "superset-init.sh";
/// Where the ConfigMap is mounted in Superset's pods.
const SUPERSET_HAP_DIR: &str = "/app/hap";
/// Where the web pod holds the admin's password, for `hap-air-quality-dashboard` run in it with
/// `kubectl exec`: a file, so that no process's environment carries it.
const SUPERSET_ADMIN_DIR: &str = "/app/hap-admin";
pub const ADMIN_USER: &str = "admin";
/// The database name Superset registers Trino under.
pub const TRINO_DATABASE: &str = "trino";

pub const REDASH_PORT: i32 = 5000;
/// `app.kubernetes.io/component` of Redash's background worker's pods.
pub const WORKER_COMPONENT: &str = "dashboard-worker";
pub const REDASH_INIT: &str = "redash-init.sh";
const REDASH_HAP_DIR: &str = "/hap";
/// The users of the `apache/superset` and `redash/redash` images.
const USER_ID: i64 = 1000;

/// The Trino coordinator's address inside the cluster, as `host:port`: its HTTPS port, by the
/// namespace-qualified name its certificate is for.
fn trino_address(hq: &HapQuery) -> String {
    format!("{}:{}", trino_host(hq), trino::HTTPS_PORT)
}

fn trino_host(hq: &HapQuery) -> String {
    format!(
        "{}.{}.svc",
        names::trino_coordinator(&hq.name_any()),
        hq.namespace().unwrap_or_default()
    )
}

/// Where the dashboard's containers find the CA bundle Trino's certificate chains to.
const CA_DIR: &str = "/etc/hap-ca";
/// The dashboard's Trino user's password, from `<name>-trino-users`.
const TRINO_PASSWORD_ENV: &str = "TRINO_PASSWORD";

/// What every dashboard container needs to reach Trino: the `hap` user's password, and the CA
/// bundle, which Python's `requests` (under the Trino client) trusts through REQUESTS_CA_BUNDLE.
fn trino_client_environment(hq: &HapQuery) -> Vec<EnvVar> {
    vec![
        secret_env(
            TRINO_PASSWORD_ENV,
            &names::trino_users(&hq.name_any()),
            trino::USER,
        ),
        env("REQUESTS_CA_BUNDLE", format!("{CA_DIR}/{}", trino::CA_KEY)),
    ]
}

fn ca_volume(hq: &HapQuery) -> Volume {
    config_volume("ca", &names::ca(&hq.name_any()), &[])
}

/// `superset_config.py`, loaded through SUPERSET_CONFIG_PATH. Secrets come from the environment.
pub fn superset_config(hq: &HapQuery, r: &Resolved) -> String {
    header(hq, "#")
        + &format!(
            r#"# Loaded through SUPERSET_CONFIG_PATH; secrets come from the environment, set from Secrets.
import os
from urllib.parse import quote

# Signs session cookies and encrypts stored database passwords.
SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]
# Superset's own metadata (users, databases, charts): the {SUPERSET_DATABASE} database on the metastore's
# database server. Without a server (HAP_SUPERSET_DB_HOST unset, as in the loopback stack), SQLite in
# SUPERSET_HOME.
if os.environ.get("HAP_SUPERSET_DB_HOST"):
    SQLALCHEMY_DATABASE_URI = "{dialect}://%s:%s@%s:%s/{SUPERSET_DATABASE}" % (
        quote(os.environ["HAP_SUPERSET_DB_USER"], safe=""),
        quote(os.environ["HAP_SUPERSET_DB_PASSWORD"], safe=""),
        os.environ["HAP_SUPERSET_DB_HOST"],
        os.environ["HAP_SUPERSET_DB_PORT"],
    )
else:
    SQLALCHEMY_DATABASE_URI = "sqlite:///" + os.path.join(os.environ["SUPERSET_HOME"], "superset.db")
# Query results are returned in the HTTP response, without a Celery worker.
RESULTS_BACKEND = None
# Rate limits kept in the web process; no Redis.
RATELIMIT_STORAGE_URI = "memory://"
"#,
            dialect = r.database.sqlalchemy_dialect()
        )
        + if r.database.sqlalchemy_dialect().starts_with("mysql") {
            MARIADB_SEQUENCES
        } else {
            ""
        }
}

/// MariaDB spells a sequence's "no cycle" `NOCYCLE`; SQLAlchemy 1.4, which Superset 6.1 runs on,
/// writes `NO CYCLE`, so `superset db upgrade` fails on Flask-AppBuilder's first sequence. A compiler
/// hook (SQLAlchemy's own extension point) corrects the statement; MySQL has no sequences, so the hook
/// changes nothing there. Superset fixed this after 6.1.0 (apache/superset#37582).
const MARIADB_SEQUENCES: &str = r#"
# MariaDB takes NOCYCLE where SQLAlchemy 1.4 writes NO CYCLE (fixed in Superset after 6.1.0).
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateSequence


@compiles(CreateSequence, "mysql")
@compiles(CreateSequence, "mariadb")
def _create_sequence_as_mariadb_spells_it(element, compiler, **kw):
    return compiler.visit_create_sequence(element, **kw).replace(" NO CYCLE", " NOCYCLE")
"#;

/// `superset-init.sh`: Superset's first start, run by the init Job; each step may run again.
pub fn superset_init(hq: &HapQuery) -> String {
    header(hq, "#")
        + &format!(
            r#"# Superset's first start: its tables, the admin (password from SUPERSET_ADMIN_PASSWORD), roles and
# permissions, and Trino registered as the database "{TRINO_DATABASE}". Every step may run again.
set -eu
superset db upgrade
superset fab create-admin --username {ADMIN_USER} --password "$SUPERSET_ADMIN_PASSWORD" \
  --firstname HAP --lastname Admin --email admin@localhost
superset init
# Trino as the user {user}; Superset keeps the password encrypted with its SECRET_KEY.
superset set-database-uri --database_name {TRINO_DATABASE} --uri "trino://{user}:${TRINO_PASSWORD_ENV}@{}/hive/{}"
# The trino dialect speaks HTTP unless the connection's extra says HTTPS (a URI cannot say it).
python3 - <<'EOF'
import json
from superset.app import create_app
with create_app().app_context():
    from superset import db
    from superset.models.core import Database
    database = db.session.query(Database).filter_by(database_name="{TRINO_DATABASE}").one()
    extra = json.loads(database.extra or "{{}}")
    extra.setdefault("engine_params", {{}}).setdefault("connect_args", {{}})["http_scheme"] = "https"
    database.extra = json.dumps(extra)
    db.session.commit()
EOF
"#,
            trino_address(hq),
            hq.spec.schema,
            user = trino::USER,
        )
}

/// The environment of Superset's containers: its key, and its metadata database's connection.
fn superset_environment(hq: &HapQuery, r: &Resolved) -> Vec<EnvVar> {
    let secret = names::superset(&hq.name_any());
    let db = &r.database;
    vec![
        env(
            "SUPERSET_CONFIG_PATH",
            format!("{SUPERSET_HAP_DIR}/{SUPERSET_CONFIG}"),
        ),
        secret_env("SUPERSET_SECRET_KEY", &secret, SECRET_KEY_KEY),
        env("HAP_SUPERSET_DB_HOST", db.host.clone()),
        env("HAP_SUPERSET_DB_PORT", db.port.to_string()),
    ]
    .into_iter()
    // On the operator's MariaDB, Superset's own user, which may use its database only; on an
    // external database, the user the spec names.
    .chain(match (&db.managed, &db.username) {
        (Some(_), _) => vec![
            env("HAP_SUPERSET_DB_USER", database::DASHBOARD_USER),
            secret_env(
                "HAP_SUPERSET_DB_PASSWORD",
                &names::mariadb_superset(&hq.name_any()),
                database::DASHBOARD_PASSWORD_KEY,
            ),
        ],
        (None, Username::Fixed(u)) => vec![
            env("HAP_SUPERSET_DB_USER", u.clone()),
            secret_env("HAP_SUPERSET_DB_PASSWORD", &db.secret, &db.password_key),
        ],
        (None, Username::FromSecret(key)) => vec![
            secret_env("HAP_SUPERSET_DB_USER", &db.secret, key),
            secret_env("HAP_SUPERSET_DB_PASSWORD", &db.secret, &db.password_key),
        ],
    })
    .chain(trino_client_environment(hq))
    .collect()
}

fn node_port_service(hq: &HapQuery, name: &str, port_name: &str, port: i32) -> Service {
    Service {
        metadata: meta(hq, name, COMPONENT),
        spec: Some(ServiceSpec {
            type_: Some("NodePort".into()),
            selector: Some(super::parts::selector(hq, COMPONENT)),
            ports: Some(vec![service_port(
                port_name,
                port,
                hq.spec.dashboard.node_port,
            )]),
            ..Default::default()
        }),
        status: None,
    }
}

/// Superset writes its home (SUPERSET_HOME: uploads, caches) besides /tmp.
const SUPERSET_ROOT: Root = Root::ReadOnly(&["/app/superset_home"]);
/// Redash's images are not run by this project's tests, so what they write is not known (Celery's
/// beat, for one, writes its schedule in the working directory): their root stays writable.
const REDASH_ROOT: Root = Root::Writable;

fn init_job(
    hq: &HapQuery,
    name: &str,
    container: Container,
    config: &ConfigMap,
    config_name: &str,
    root: Root,
) -> Job {
    let mut pod = pod_spec(
        USER_ID,
        USER_ID,
        vec![container],
        vec![config_volume("hap", config_name, &[]), ca_volume(hq)],
        root,
    );
    pod.restart_policy = Some("OnFailure".into());
    Job {
        metadata: meta(hq, name, COMPONENT),
        spec: Some(JobSpec {
            // Trino or the database may still be starting: retry for a few minutes. The status
            // reports each failed attempt at once, and says the Job retries.
            backoff_limit: Some(6),
            template: template(template_meta(hq, COMPONENT, &[config]), pod),
            ..Default::default()
        }),
        status: None,
    }
}

fn web_deployment(
    hq: &HapQuery,
    name: &str,
    component: &str,
    container: Container,
    config: &ConfigMap,
    volumes: Vec<Volume>,
    root: Root,
) -> Deployment {
    Deployment {
        metadata: meta(hq, name, component),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: label_selector(hq, component),
            template: template(
                template_meta(hq, component, &[config]),
                pod_spec(USER_ID, USER_ID, vec![container], volumes, root),
            ),
            ..Default::default()
        }),
        status: None,
    }
}

/// The admin's password of the generated Secret, as a file: the kubelet makes it root's, so the
/// pod's group (fsGroup) is what may read it; no one else may.
fn admin_password_volume(secret: &str) -> Volume {
    Volume {
        name: "admin".into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.into()),
            items: Some(vec![KeyToPath {
                key: ADMIN_PASSWORD_KEY.into(),
                path: ADMIN_PASSWORD_KEY.into(),
                ..Default::default()
            }]),
            default_mode: Some(0o440),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The init Job's container: the dashboard's environment and its admin's password, running the
/// init script from the dashboard's ConfigMap, mounted at `dir`.
fn init_container(
    image: &str,
    environment: &[EnvVar],
    admin_password: EnvVar,
    dir: &str,
    script: &str,
) -> Container {
    let mut env = environment.to_vec();
    env.push(admin_password);
    Container {
        name: "init".into(),
        image: Some(image.into()),
        command: Some(vec!["/bin/sh".into(), format!("{dir}/{script}")]),
        env: Some(env),
        volume_mounts: Some(vec![mount("hap", dir), mount("ca", CA_DIR)]),
        ..Default::default()
    }
}

fn superset(hq: &HapQuery, r: &Resolved, image: &str) -> Dashboard<Desired> {
    let name = names::superset(&hq.name_any());
    let config = config_map(
        hq,
        &name,
        COMPONENT,
        &[
            (SUPERSET_CONFIG, superset_config(hq, r)),
            (SUPERSET_INIT, superset_init(hq)),
        ],
    );
    let environment = superset_environment(hq, r);
    let init = init_container(
        image,
        &environment,
        secret_env("SUPERSET_ADMIN_PASSWORD", &name, ADMIN_PASSWORD_KEY),
        SUPERSET_HAP_DIR,
        SUPERSET_INIT,
    );
    // The image's own command serves the web application with gunicorn on 8088.
    let mut web_env = environment;
    web_env.push(env(
        "SUPERSET_ADMIN_PASSWORD_FILE",
        format!("{SUPERSET_ADMIN_DIR}/{ADMIN_PASSWORD_KEY}"),
    ));
    // Up to three minutes to start: the web application loads slowly on a busy node.
    let probes = probes(http_check("/health", "http"), 180);
    let web = Container {
        name: "superset".into(),
        image: Some(image.into()),
        env: Some(web_env),
        ports: Some(vec![port("http", SUPERSET_PORT)]),
        resources: hq.spec.dashboard.resources.clone(),
        volume_mounts: Some(vec![
            mount("hap", SUPERSET_HAP_DIR),
            mount("admin", SUPERSET_ADMIN_DIR),
            mount("ca", CA_DIR),
        ]),
        startup_probe: Some(probes.startup),
        readiness_probe: Some(probes.readiness),
        liveness_probe: Some(probes.liveness),
        ..Default::default()
    };
    Dashboard {
        policy: super::network::dashboard(hq, DashboardKind::Superset),
        secret: Some(generated_secret(hq, &name, COMPONENT)),
        init: Some(init_job(
            hq,
            &names::superset_init(&hq.name_any()),
            init,
            &config,
            &name,
            SUPERSET_ROOT,
        )),
        service: Some(node_port_service(hq, &name, "http", SUPERSET_PORT)),
        server: Some(web_deployment(
            hq,
            &name,
            COMPONENT,
            web,
            &config,
            vec![
                config_volume("hap", &name, &[]),
                admin_password_volume(&name),
                ca_volume(hq),
            ],
            SUPERSET_ROOT,
        )),
        worker: None,
        config: Some(config),
    }
}

/// `redash-init.sh`: the steps of Redash's set-up guide, each safe to run again.
pub fn redash_init(hq: &HapQuery) -> String {
    let (host, port) = (trino_host(hq), trino::HTTPS_PORT);
    header(hq, "#")
        + &format!(
            r#"# Redash's first start: its tables, the root user (password from REDASH_ADMIN_PASSWORD), and Trino
# as the data source "trino". Every step may run again.
set -eu
/app/manage.py database create_tables
/app/manage.py users list | grep -q 'admin@localhost' ||
  /app/manage.py users create_root admin@localhost {ADMIN_USER} --password "$REDASH_ADMIN_PASSWORD" --org HAP
/app/manage.py ds list | grep -qx 'Name: trino' ||
  /app/manage.py ds new trino --type trino \
    --options "{{\"protocol\": \"https\", \"host\": \"{host}\", \"port\": {port}, \"username\": \"{user}\", \"password\": \"${TRINO_PASSWORD_ENV}\", \"catalog\": \"hive\", \"schema\": \"{schema}\"}}"
"#,
            schema = hq.spec.schema,
            user = trino::USER,
        )
}

fn redash_environment(hq: &HapQuery) -> Vec<EnvVar> {
    let generated = names::redash(&hq.name_any());
    let connection = hq
        .spec
        .dashboard
        .redash
        .as_ref()
        .map(|r| r.connection_secret.name.clone())
        .unwrap_or_default();
    vec![
        secret_env("REDASH_DATABASE_URL", &connection, "REDASH_DATABASE_URL"),
        secret_env("REDASH_REDIS_URL", &connection, "REDASH_REDIS_URL"),
        secret_env("REDASH_COOKIE_SECRET", &generated, COOKIE_SECRET_KEY),
        secret_env("REDASH_SECRET_KEY", &generated, SECRET_KEY_KEY),
        env("REDASH_LOG_LEVEL", "INFO"),
        env("PYTHONUNBUFFERED", "0"),
    ]
    .into_iter()
    .chain(trino_client_environment(hq))
    .collect()
}

fn redash(hq: &HapQuery, image: &str) -> Dashboard<Desired> {
    let name = names::redash(&hq.name_any());
    let config = config_map(hq, &name, COMPONENT, &[(REDASH_INIT, redash_init(hq))]);
    let environment = redash_environment(hq);
    let init = init_container(
        image,
        &environment,
        secret_env("REDASH_ADMIN_PASSWORD", &name, ADMIN_PASSWORD_KEY),
        REDASH_HAP_DIR,
        REDASH_INIT,
    );
    let probes = probes(http_check("/ping", "http"), 180);
    let server = Container {
        name: "server".into(),
        image: Some(image.into()),
        args: Some(vec!["server".into()]),
        env: Some(environment.clone()),
        ports: Some(vec![port("http", REDASH_PORT)]),
        resources: hq.spec.dashboard.resources.clone(),
        volume_mounts: Some(vec![mount("ca", CA_DIR)]),
        startup_probe: Some(probes.startup),
        readiness_probe: Some(probes.readiness),
        liveness_probe: Some(probes.liveness),
        ..Default::default()
    };
    let mut worker_env = environment;
    worker_env.push(env(
        "QUEUES",
        "queries,scheduled_queries,schemas,periodic,emails,default",
    ));
    worker_env.push(env("WORKERS_COUNT", "2"));
    let worker = Container {
        name: "worker".into(),
        image: Some(image.into()),
        args: Some(vec!["worker".into()]),
        env: Some(worker_env),
        volume_mounts: Some(vec![mount("ca", CA_DIR)]),
        ..Default::default()
    };
    let worker_component = WORKER_COMPONENT;
    Dashboard {
        policy: super::network::dashboard(hq, DashboardKind::Redash),
        secret: Some(generated_secret(hq, &name, COMPONENT)),
        init: Some(init_job(
            hq,
            &names::redash_init(&hq.name_any()),
            init,
            &config,
            &name,
            REDASH_ROOT,
        )),
        service: Some(node_port_service(hq, &name, "http", REDASH_PORT)),
        server: Some(web_deployment(
            hq,
            &name,
            COMPONENT,
            server,
            &config,
            vec![config_volume("hap", &name, &[]), ca_volume(hq)],
            REDASH_ROOT,
        )),
        worker: Some(web_deployment(
            hq,
            &names::redash_worker(&hq.name_any()),
            worker_component,
            worker,
            &config,
            vec![config_volume("hap", &name, &[]), ca_volume(hq)],
            REDASH_ROOT,
        )),
        config: Some(config),
    }
}

pub fn build(hq: &HapQuery, r: &Resolved) -> Dashboard<Desired> {
    match (r.dashboard, &r.dashboard_image) {
        (DashboardKind::Superset, Some(image)) => superset(hq, r, image),
        (DashboardKind::Redash, Some(image)) => redash(hq, image),
        _ => Dashboard::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::hapquery as hq;
    use crate::testing::resolve_hapquery as resolve;

    const SPEC: &str =
        "{s3: {endpoint: 'http://s3:80', bucket: b}, schema: air, dashboard: {nodePort: 30088}}";

    fn built(spec: &str) -> Dashboard<Desired> {
        let q = hq(spec);
        build(&q, &resolve(&q))
    }

    #[test]
    fn superset_is_initialised_by_a_job_that_registers_trino() {
        let d = built(SPEC);
        let data = d.config.unwrap().data.unwrap();
        let init = &data[SUPERSET_INIT];
        for step in [
            "superset db upgrade",
            "superset fab create-admin --username admin --password \"$SUPERSET_ADMIN_PASSWORD\"",
            "superset init",
            "superset set-database-uri --database_name trino --uri \"trino://hap:$TRINO_PASSWORD@q-trino-coordinator.ns.svc:8443/hive/air\"",
            r#"extra.setdefault("engine_params", {}).setdefault("connect_args", {})["http_scheme"] = "https""#,
        ] {
            assert!(init.contains(step), "{step} not in\n{init}");
        }
        let job = d.init.unwrap().spec.unwrap().template.spec.unwrap();
        let env = job.containers[0].env.clone().unwrap();
        let admin = env
            .iter()
            .find(|e| e.name == "SUPERSET_ADMIN_PASSWORD")
            .unwrap();
        let key = admin.value_from.clone().unwrap().secret_key_ref.unwrap();
        assert_eq!(
            (key.name.as_str(), key.key.as_str()),
            ("q-superset", "admin-password")
        );
        assert_eq!(job.restart_policy.as_deref(), Some("OnFailure"));
        let conf = &data[SUPERSET_CONFIG];
        assert!(conf.contains("SECRET_KEY = os.environ[\"SUPERSET_SECRET_KEY\"]"));
        assert!(conf.contains("\"mysql+pymysql://%s:%s@%s:%s/superset\""));
        assert!(conf.contains(".replace(\" NO CYCLE\", \" NOCYCLE\")"));
    }

    #[test]
    fn superset_is_a_node_port_service_with_the_fixed_port() {
        let d = built(SPEC);
        let svc = d.service.unwrap().spec.unwrap();
        assert_eq!(svc.type_.as_deref(), Some("NodePort"));
        let p = &svc.ports.unwrap()[0];
        assert_eq!((p.port, p.node_port), (8088, Some(30088)));
        let web = d.server.unwrap().spec.unwrap().template.spec.unwrap();
        let env = web.containers[0].env.clone().unwrap();
        assert!(
            env.iter().all(|e| e.name != "SUPERSET_ADMIN_PASSWORD"),
            "no process of the web server has the admin password in its environment"
        );
        // hap-air-quality-dashboard, run in the pod, reads it from a file only the pod's group reads.
        let file = env
            .iter()
            .find(|e| e.name == "SUPERSET_ADMIN_PASSWORD_FILE")
            .and_then(|e| e.value.clone());
        assert_eq!(file.as_deref(), Some("/app/hap-admin/admin-password"));
        let admin = web.volumes.unwrap().into_iter().find(|v| v.name == "admin");
        let secret = admin.unwrap().secret.unwrap();
        assert_eq!(secret.secret_name.as_deref(), Some("q-superset"));
        assert_eq!(secret.default_mode, Some(0o440));
        assert_eq!(secret.items.unwrap()[0].key, "admin-password");
        assert!(d.worker.is_none());
    }

    #[test]
    fn redash_has_a_server_a_worker_and_an_init_job_with_trino_as_its_data_source() {
        let d = built(
            "{s3: {endpoint: 'http://s3:80', bucket: b}, dashboard: {kind: redash, redash: {connectionSecret: {name: redash-conn}}}}",
        );
        let init = d.config.unwrap().data.unwrap()[REDASH_INIT].clone();
        assert!(init.contains("/app/manage.py database create_tables"));
        assert!(init.contains("users create_root admin@localhost admin"));
        assert!(init.contains("ds new trino --type trino"));
        assert!(init.contains(
            r#"\"protocol\": \"https\", \"host\": \"q-trino-coordinator.ns.svc\", \"port\": 8443"#
        ));
        assert!(init.contains(r#"\"password\": \"$TRINO_PASSWORD\""#));
        let server = d.server.unwrap().spec.unwrap().template.spec.unwrap();
        assert_eq!(server.containers[0].args.clone().unwrap(), ["server"]);
        let env = server.containers[0].env.clone().unwrap();
        let url = env
            .iter()
            .find(|e| e.name == "REDASH_DATABASE_URL")
            .unwrap();
        assert_eq!(
            url.value_from.clone().unwrap().secret_key_ref.unwrap().name,
            "redash-conn"
        );
        let worker = d.worker.unwrap();
        assert_eq!(worker.metadata.name.as_deref(), Some("q-redash-worker"));
        assert_eq!(
            worker.spec.unwrap().template.spec.unwrap().containers[0]
                .args
                .clone()
                .unwrap(),
            ["worker"]
        );
        assert_eq!(
            d.service.unwrap().spec.unwrap().ports.unwrap()[0].port,
            5000
        );
    }

    #[test]
    fn no_dashboard_builds_nothing() {
        let d = built("{s3: {endpoint: 'http://s3:80', bucket: b}, dashboard: {kind: none}}");
        assert!(d.secret.is_none() && d.server.is_none() && d.init.is_none());
    }
}
