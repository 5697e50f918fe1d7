//! `HapQuery` (hap.cloudian.com/v1alpha1): SQL and dashboards over the store's buckets. A metastore
//! database (MariaDB run by the operator, or an existing server), a Hive metastore, Trino (a
//! coordinator and workers) and a dashboard (Superset by default, Redash, or none).
//!
//! Every field but `s3` has a default, so `spec: {s3: {endpoint: ..., bucket: ...}}` is a whole stack.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bounds;
use crate::problem::{Component, Problem};
use crate::quantity;
use crate::s3::S3Spec;
use crate::validation::{outside, s3_problems};
use crate::versions;

pub const DEFAULT_SCHEMA: &str = "air_quality";
pub const DEFAULT_MARIADB_IMAGE: &str = versions::MARIADB_IMAGE;
pub const DEFAULT_STORAGE_SIZE: &str = "5Gi";
/// The project's metastore image: Hive's standalone metastore on the layout of `apache/hive`, with the
/// MariaDB, PostgreSQL and S3 (hadoop-aws) jars added.
pub const DEFAULT_METASTORE_IMAGE: &str = versions::METASTORE_IMAGE;
/// The Trino release whose property names the builders write (see docs/hapquery.md).
pub const DEFAULT_TRINO_VERSION: i32 = versions::TRINO_VERSION;
pub const MIN_TRINO_VERSION: i32 = 476;
pub const DEFAULT_GRACEFUL_SHUTDOWN_SECONDS: i32 = 60;
/// The project's Superset image: `apache/superset` with the Trino and MySQL drivers added.
pub const DEFAULT_SUPERSET_IMAGE: &str = versions::SUPERSET_IMAGE;
pub const DEFAULT_REDASH_IMAGE: &str = versions::REDASH_IMAGE;
pub const DEFAULT_USERNAME_KEY: &str = "username";
pub const DEFAULT_PASSWORD_KEY: &str = "password";
/// The database Superset keeps its own metadata in, on the metastore's database server.
pub const SUPERSET_DATABASE: &str = "superset";

pub const TRINO_VERSION_RULE_MESSAGE: &str = "trino.version must be 476 or later: the operator writes Trino's property names as of 476, and older releases name the S3 and catalog properties differently";
pub const BUCKET_RULE_MESSAGE: &str = "s3.bucket is required: the metastore's warehouse directory (s3a://BUCKET/warehouse) and the tables live in it";
pub const VERIFY_TLS_RULE_MESSAGE: &str = "s3.verifyTls cannot be false for a HapQuery: Trino's and the metastore's S3 clients always verify the endpoint's certificate; give the store a certificate the pods trust";
pub const SCHEMA_RULE_MESSAGE: &str = "schema must be a lower-case SQL name (a-z, 0-9, _; not starting with a digit), e.g. air_quality";

fn default_schema() -> String {
    DEFAULT_SCHEMA.into()
}

/// SQL and dashboards over an S3 store: a Hive metastore on a database, Trino and a dashboard.
// The printer columns repeat `type_ = "string"`, which the lint mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "hap.cloudian.com",
    version = "v1alpha1",
    kind = "HapQuery",
    plural = "hapqueries",
    singular = "hapquery",
    shortname = "hq",
    namespaced,
    status = "HapQueryStatus",
    derive = "PartialEq",
    printcolumn(
        name = "Phase",
        type_ = "string",
        description = "Pending, Running, Degraded or Failed",
        json_path = ".status.phase"
    ),
    printcolumn(
        name = "Trino URL",
        type_ = "string",
        description = "Where Trino answers inside the cluster",
        json_path = ".status.trinoUrl"
    ),
    printcolumn(
        name = "Dashboard URL",
        type_ = "string",
        description = "Where the dashboard answers (node IP and node port)",
        json_path = ".status.dashboardUrl"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[kube(validation = bounds::HAPQUERY_NAME.name_rule())]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.s3) || (has(self.s3.bucket) && size(self.s3.bucket) > 0)").message(BUCKET_RULE_MESSAGE))]
#[x_kube(validation = Rule::new("!has(self.s3) || !has(self.s3.verifyTls) || self.s3.verifyTls").message(VERIFY_TLS_RULE_MESSAGE))]
pub struct HapQuerySpec {
    /// The S3 store the tables are in (the same connection a HapContainer uses). `bucket` is required.
    pub s3: S3Spec,

    /// The metastore's database: MariaDB run by the operator (the default), or an existing server.
    #[serde(default)]
    pub database: DatabaseSpec,

    /// The Hive metastore.
    #[serde(default)]
    pub metastore: MetastoreSpec,

    /// Trino: one coordinator and `workers` workers, with the `hive` catalog over the store.
    #[serde(default)]
    pub trino: TrinoSpec,

    /// The dashboard over Trino.
    #[serde(default)]
    pub dashboard: DashboardSpec,

    /// The schema (in the `hive` catalog) the air-quality tables land in, and the dashboard's default.
    #[serde(default = "default_schema")]
    #[x_kube(validation = Rule::new("self.matches('^[a-z_][a-z0-9_]*$')").message(SCHEMA_RULE_MESSAGE))]
    pub schema: String,
}

/// Exactly one of `mariadb` and `external`; with neither, the operator runs MariaDB with defaults.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.mariadb) && has(self.external))").message("set database.mariadb (the operator runs MariaDB) or database.external (an existing server), not both"))]
pub struct DatabaseSpec {
    /// MariaDB run by the operator: a StatefulSet with a volume, and generated credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mariadb: Option<MariaDbSpec>,
    /// An existing MySQL, MariaDB or PostgreSQL server. Superset keeps its metadata there too, in a
    /// database named `superset` that the same user can use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalDatabaseSpec>,
}

fn default_mariadb_image() -> String {
    DEFAULT_MARIADB_IMAGE.into()
}

fn default_storage_size() -> Quantity {
    Quantity(DEFAULT_STORAGE_SIZE.into())
}

fn default_true() -> bool {
    true
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MariaDbSpec {
    /// The MariaDB image (the official image's entrypoint and layout).
    #[serde(default = "default_mariadb_image")]
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = bounds::IMAGE.rule("spec.database.mariadb.image"))]
    pub image: String,
    /// The size of the data volume.
    #[serde(default = "default_storage_size")]
    pub storage_size: Quantity,
    /// The StorageClass of the data volume; the cluster's default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = bounds::STORAGE_CLASS.rule("spec.database.mariadb.storageClassName"))]
    pub storage_class_name: Option<String>,
    /// Keep the data volume when the HapQuery is deleted (the default), so the tables' definitions
    /// survive; delete the PersistentVolumeClaim `data-<name>-mariadb-0` by hand to remove them.
    #[serde(default = "default_true")]
    pub keep_on_delete: bool,
    /// CPU and memory for MariaDB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

impl Default for MariaDbSpec {
    fn default() -> Self {
        MariaDbSpec {
            image: default_mariadb_image(),
            storage_size: default_storage_size(),
            storage_class_name: None,
            keep_on_delete: true,
            resources: None,
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseKind {
    Mysql,
    Mariadb,
    Postgres,
}

impl DatabaseKind {
    pub fn default_port(self) -> i32 {
        match self {
            DatabaseKind::Mysql | DatabaseKind::Mariadb => 3306,
            DatabaseKind::Postgres => 5432,
        }
    }
}

fn default_database_name() -> String {
    "metastore".into()
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.host) && size(self.host) > 0").message("database.external.host is required: the host name of the existing database server, e.g. mariadb.databases.svc"))]
#[x_kube(validation = Rule::new("has(self.credentialsSecret)").message("database.external.credentialsSecret is required: a Secret with the user name and password the metastore connects with"))]
pub struct ExternalDatabaseSpec {
    /// mysql, mariadb or postgres.
    pub kind: DatabaseKind,
    /// The server's host name.
    #[serde(default)]
    #[schemars(length(max = 253))]
    #[x_kube(validation = bounds::HOST.rule("spec.database.external.host"))]
    pub host: String,
    /// The server's port (1-65535); 3306 for MySQL and MariaDB, 5432 for PostgreSQL when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// The metastore's database on that server; it must exist.
    #[serde(default = "default_database_name")]
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = bounds::DATABASE.rule("spec.database.external.database"))]
    pub database: String,
    /// The Secret with the user name and password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<DatabaseCredentialsSecret>,
}

fn default_username_key() -> String {
    DEFAULT_USERNAME_KEY.into()
}

fn default_password_key() -> String {
    DEFAULT_PASSWORD_KEY.into()
}

/// A Secret in the HapQuery's namespace with a database user's name and password.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseCredentialsSecret {
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = bounds::SECRET_NAME.rule("spec.database.external.credentialsSecret.name"))]
    pub name: String,
    #[serde(default = "default_username_key")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = bounds::SECRET_KEY.rule("spec.database.external.credentialsSecret.usernameKey"))]
    pub username_key: String,
    #[serde(default = "default_password_key")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = bounds::SECRET_KEY.rule("spec.database.external.credentialsSecret.passwordKey"))]
    pub password_key: String,
}

fn default_metastore_image() -> String {
    DEFAULT_METASTORE_IMAGE.into()
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetastoreSpec {
    /// The metastore image (the layout of `apache/hive`: configuration in /opt/hive/conf, schematool).
    #[serde(default = "default_metastore_image")]
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = bounds::IMAGE.rule("spec.metastore.image"))]
    pub image: String,
    /// CPU and memory for the metastore. Defaults to requests of 250m CPU and 1Gi memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

impl Default for MetastoreSpec {
    fn default() -> Self {
        MetastoreSpec {
            image: default_metastore_image(),
            resources: None,
        }
    }
}

fn default_trino_version() -> i32 {
    DEFAULT_TRINO_VERSION
}

fn default_workers() -> i32 {
    1
}

fn default_grace() -> i32 {
    DEFAULT_GRACEFUL_SHUTDOWN_SECONDS
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrinoSpec {
    /// The Trino image (the layout of `trinodb/trino`); `trinodb/trino:<version>` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = bounds::IMAGE.rule("spec.trino.image"))]
    pub image: Option<String>,
    /// The Trino release the image holds: it selects the property names written (476 or later).
    #[serde(default = "default_trino_version")]
    #[x_kube(validation = Rule::new("self >= 476").message(TRINO_VERSION_RULE_MESSAGE))]
    pub version: i32,
    /// The coordinator, which plans queries; it runs tasks too when there are no workers.
    #[serde(default)]
    pub coordinator: TrinoNodeSpec,
    /// Worker pods (0-100). With 0, the coordinator runs the queries itself.
    #[serde(default = "default_workers")]
    #[schemars(range(min = 0, max = 100))]
    pub workers: i32,
    /// Each worker.
    #[serde(default)]
    pub worker: TrinoNodeSpec,
    /// How long a worker that is being stopped keeps taking no new tasks while it finishes its running
    /// ones (Trino's `shutdown.grace-period`, 1-3600 s); the pod gets twice that plus 30 s.
    #[serde(default = "default_grace")]
    #[schemars(range(min = 1, max = 3600))]
    pub graceful_shutdown_seconds: i32,
    /// Namespaces whose pods may connect to Trino, besides this namespace's workspaces and this
    /// HapQuery's dashboard (at most 32): its NetworkPolicy admits every pod of each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(max = 63)))]
    #[x_kube(validation = bounds::NAMESPACE.each_rule("spec.trino.allowedNamespaces"))]
    pub allowed_namespaces: Vec<String>,
}

impl Default for TrinoSpec {
    fn default() -> Self {
        TrinoSpec {
            image: None,
            version: DEFAULT_TRINO_VERSION,
            coordinator: TrinoNodeSpec::default(),
            workers: default_workers(),
            worker: TrinoNodeSpec::default(),
            graceful_shutdown_seconds: DEFAULT_GRACEFUL_SHUTDOWN_SECONDS,
            allowed_namespaces: Vec::new(),
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrinoNodeSpec {
    /// CPU and memory. The JVM heap is 80 % of the memory limit (else the request; 2Gi by default),
    /// and a query may use half the heap on a node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DashboardKind {
    #[default]
    Superset,
    Redash,
    None,
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.kind != 'none' || !has(self.nodePort)").message("dashboard.nodePort needs a dashboard: kind is none"))]
#[x_kube(validation = Rule::new("self.kind != 'redash' || has(self.redash)").message("dashboard.redash.connectionSecret is required with kind redash: Redash keeps its data in PostgreSQL and its queue in Redis, which the operator does not run"))]
pub struct DashboardSpec {
    /// superset (the default), redash or none.
    #[serde(default)]
    pub kind: DashboardKind,
    /// The dashboard image; when unset, the project's `hap-superset` or the upstream `redash/redash` image
    /// at the versions the operator was built with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    #[x_kube(validation = bounds::IMAGE.rule("spec.dashboard.image"))]
    pub image: Option<String>,
    /// A fixed node port for the dashboard's NodePort Service (30000-32767); allocated when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 30000, max = 32767))]
    pub node_port: Option<i32>,
    /// CPU and memory for the dashboard's web server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// What Redash needs besides its image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redash: Option<RedashSpec>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedashSpec {
    /// A Secret with `REDASH_DATABASE_URL` (PostgreSQL) and `REDASH_REDIS_URL`, passed to Redash as
    /// they are.
    pub connection_secret: RedashConnectionSecret,
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RedashConnectionSecret {
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = bounds::SECRET_NAME.rule("spec.dashboard.redash.connectionSecret.name"))]
    pub name: String,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum QueryPhase {
    /// Components are being created or started.
    Pending,
    /// Every component is ready: Trino answers and the dashboard serves.
    Running,
    /// Something ran and stopped working, or the latest spec could not be applied.
    Degraded,
    /// The stack cannot run until its configuration is fixed (e.g. a referenced Secret is missing).
    Failed,
}

/// What the operator observed, written through the status subresource.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HapQueryStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<QueryPhase>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// One per component (`Database`, `Metastore`, `Trino`, `Dashboard`), with reasons and messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Trino's URL inside the cluster, e.g. `https://<name>-trino-coordinator.<namespace>.svc:8443`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trino_url: Option<String>,
    /// The Secret with Trino's users and their passwords, one key per user (`admin`, `hap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trino_users_secret: Option<String>,
    /// The ConfigMap with the CA bundle (`ca.crt`) that Trino's certificate chains to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_config_map: Option<String>,
    /// The dashboard's URL at a node's IP and its node port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
}

/// The values of a HapQuery's spec that reach its configuration files and children, checked against
/// their bounds (with the component each concerns).
fn spec_bounds(spec: &HapQuerySpec) -> Vec<Problem> {
    use Component::{Dashboard, Database, Metastore, Trino};
    let external = spec.database.external.as_ref();
    let credentials = external.and_then(|e| e.credentials_secret.as_ref());
    let database = outside(&[
        (
            &bounds::IMAGE,
            "spec.database.mariadb.image".into(),
            spec.database.mariadb.as_ref().map(|m| m.image.as_str()),
        ),
        (
            &bounds::STORAGE_CLASS,
            "spec.database.mariadb.storageClassName".into(),
            spec.database
                .mariadb
                .as_ref()
                .and_then(|m| m.storage_class_name.as_deref()),
        ),
        (
            &bounds::HOST,
            "spec.database.external.host".into(),
            external.map(|e| e.host.as_str()).filter(|h| !h.is_empty()),
        ),
        (
            &bounds::DATABASE,
            "spec.database.external.database".into(),
            external.map(|e| e.database.as_str()),
        ),
        (
            &bounds::SECRET_NAME,
            "spec.database.external.credentialsSecret.name".into(),
            credentials.map(|c| c.name.as_str()),
        ),
        (
            &bounds::SECRET_KEY,
            "spec.database.external.credentialsSecret.usernameKey".into(),
            credentials.map(|c| c.username_key.as_str()),
        ),
        (
            &bounds::SECRET_KEY,
            "spec.database.external.credentialsSecret.passwordKey".into(),
            credentials.map(|c| c.password_key.as_str()),
        ),
    ]);
    let metastore = s3_problems(&spec.s3).into_iter().chain(outside(&[(
        &bounds::IMAGE,
        "spec.metastore.image".into(),
        Some(spec.metastore.image.as_str()),
    )]));
    let allowed = &spec.trino.allowed_namespaces;
    let trino = outside(&[(
        &bounds::IMAGE,
        "spec.trino.image".into(),
        spec.trino.image.as_deref(),
    )])
    .into_iter()
    .chain(allowed.iter().enumerate().filter_map(|(i, n)| {
        bounds::NAMESPACE.check(&format!("spec.trino.allowedNamespaces[{i}]"), n)
    }));
    let dashboard = outside(&[
        (
            &bounds::IMAGE,
            "spec.dashboard.image".into(),
            spec.dashboard.image.as_deref(),
        ),
        (
            &bounds::SECRET_NAME,
            "spec.dashboard.redash.connectionSecret.name".into(),
            spec.dashboard
                .redash
                .as_ref()
                .map(|r| r.connection_secret.name.as_str()),
        ),
    ]);
    let of = |c: Component| move |p: Problem| p.of(c);
    database
        .into_iter()
        .map(of(Database))
        .chain(metastore.map(of(Metastore)))
        .chain(trino.into_iter().map(of(Trino)))
        .chain(dashboard.into_iter().map(of(Dashboard)))
        .collect()
}

/// Every problem of a HapQuery's spec, each saying what to fix, with the component it concerns. The
/// CEL rules say the same at admission; this repeats them for `render`, which reads files no API
/// server admitted.
pub fn problems(name: &str, spec: &HapQuerySpec) -> Vec<Problem> {
    use Component::{Dashboard, Database, Metastore, Trino};
    let mut out = Vec::new();
    out.extend(bounds::HAPQUERY_NAME.check("metadata.name", name));
    out.extend(spec_bounds(spec));
    let mut push = |component: Component, field: &str, message: String| {
        out.push(Problem::new(field, message).of(component));
    };
    let s3 = &spec.s3;
    if s3.bucket.as_deref().is_none_or(str::is_empty) {
        push(Metastore, "spec.s3.bucket", BUCKET_RULE_MESSAGE.into());
    }
    if !s3.verify_tls {
        push(
            Metastore,
            "spec.s3.verifyTls",
            VERIFY_TLS_RULE_MESSAGE.into(),
        );
    }
    let db = &spec.database;
    if db.mariadb.is_some() && db.external.is_some() {
        push(Database, "spec.database", "set database.mariadb (the operator runs MariaDB) or database.external (an existing server), not both".into());
    }
    if let Some(m) = &db.mariadb
        && quantity::parse(&m.storage_size.0).is_none_or(|b| b <= 0.0)
    {
        push(
            Database,
            "spec.database.mariadb.storageSize",
            format!(
                "database.mariadb.storageSize {:?} is not a positive quantity such as 5Gi",
                m.storage_size.0
            ),
        );
    }
    if let Some(e) = &db.external {
        if e.host.is_empty() {
            push(Database, "spec.database.external.host", "database.external.host is required: the host name of the existing database server, e.g. mariadb.databases.svc".into());
        }
        if e.credentials_secret.is_none() {
            push(Database, "spec.database.external.credentialsSecret", "database.external.credentialsSecret is required: a Secret with the user name and password the metastore connects with".into());
        }
        if let Some(p) = e.port
            && !(1..=65535).contains(&p)
        {
            push(
                Database,
                "spec.database.external.port",
                format!("database.external.port {p} is not a port: use 1-65535"),
            );
        }
    }
    let t = &spec.trino;
    if t.version < MIN_TRINO_VERSION {
        push(
            Trino,
            "spec.trino.version",
            TRINO_VERSION_RULE_MESSAGE.into(),
        );
    }
    if !(0..=100).contains(&t.workers) {
        push(
            Trino,
            "spec.trino.workers",
            format!(
                "trino.workers is {}: use 0 (the coordinator runs queries itself) to 100",
                t.workers
            ),
        );
    }
    if !(1..=3600).contains(&t.graceful_shutdown_seconds) {
        push(
            Trino,
            "spec.trino.gracefulShutdownSeconds",
            format!(
                "trino.gracefulShutdownSeconds is {}: use 1 to 3600",
                t.graceful_shutdown_seconds
            ),
        );
    }
    let d = &spec.dashboard;
    if let Some(p) = d.node_port
        && !(30000..=32767).contains(&p)
    {
        push(
            Dashboard,
            "spec.dashboard.nodePort",
            format!("dashboard.nodePort {p} is outside the node port range 30000-32767"),
        );
    }
    if d.kind == DashboardKind::None && d.node_port.is_some() {
        push(
            Dashboard,
            "spec.dashboard.nodePort",
            "dashboard.nodePort needs a dashboard: kind is none".into(),
        );
    }
    if d.kind == DashboardKind::Redash && d.redash.is_none() {
        push(Dashboard, "spec.dashboard.redash", "dashboard.redash.connectionSecret is required with kind redash: Redash keeps its data in PostgreSQL and its queue in Redis, which the operator does not run".into());
    }
    if !schema_name_ok(&spec.schema) {
        push(
            Metastore,
            "spec.schema",
            format!("schema {:?}: {SCHEMA_RULE_MESSAGE}", spec.schema),
        );
    }
    out
}

/// The CEL rule's `^[a-z_][a-z0-9_]*$`, without a regex engine.
fn schema_name_ok(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    fn spec(json: &str) -> HapQuerySpec {
        serde_json::from_str(json).unwrap()
    }

    const MINIMAL: &str = r#"{"s3": {"endpoint": "http://s3.local:80", "bucket": "b"}}"#;

    /// The images are built from what versions.env names: the pom and the requirements take their
    /// versions from it, not a copy of their own.
    #[test]
    fn the_images_are_built_from_the_versions_file() {
        let pom = include_str!("../../../images/metastore/pom.xml");
        assert!(pom.contains("<hive.version>${env.HIVE_VERSION}</hive.version>"));
        let requirements = include_str!("../../../images/superset/requirements.txt");
        assert!(
            requirements
                .lines()
                .any(|l| l == "apache-superset==${SUPERSET_VERSION}")
        );
        assert_eq!(
            DEFAULT_METASTORE_IMAGE,
            format!("hap-metastore:{}", versions::HIVE_VERSION)
        );
        assert_eq!(
            DEFAULT_SUPERSET_IMAGE,
            format!("hap-superset:{}", versions::SUPERSET_VERSION)
        );
    }

    #[test]
    fn a_minimal_spec_is_a_whole_stack_with_defaults() {
        let s = spec(MINIMAL);
        assert!(problems("q", &s).is_empty(), "{:?}", problems("q", &s));
        assert_eq!(s.schema, "air_quality");
        assert_eq!(s.database, DatabaseSpec::default());
        assert_eq!(s.trino.version, 476);
        assert_eq!(s.trino.workers, 1);
        assert_eq!(s.trino.graceful_shutdown_seconds, 60);
        assert_eq!(s.dashboard.kind, DashboardKind::Superset);
        assert_eq!(s.metastore.image, DEFAULT_METASTORE_IMAGE);
        assert!(s.s3.path_style && s.s3.verify_tls);
    }

    #[test]
    fn problems_say_what_to_fix() {
        let s = spec(
            r#"{"s3": {"endpoint": "s3.local", "verifyTls": false},
                "database": {"mariadb": {"storageSize": "lots"}, "external": {"kind": "postgres", "port": 70000}},
                "trino": {"version": 450, "workers": -1, "gracefulShutdownSeconds": 0},
                "dashboard": {"kind": "none", "nodePort": 80},
                "schema": "Air-Quality"}"#,
        );
        let p = problems("q", &s);
        let wanted = [
            "must be an http:// or https:// URL",
            "s3.bucket is required",
            "always verify",
            "not both",
            "such as 5Gi",
            "database.external.host is required",
            "credentialsSecret is required",
            "use 1-65535",
            "476 or later",
            "use 0 (the coordinator runs queries itself) to 100",
            "use 1 to 3600",
            "30000-32767",
            "kind is none",
            "lower-case SQL name",
        ];
        assert_eq!(p.len(), wanted.len(), "{p:#?}");
        for (got, want) in p.iter().zip(wanted) {
            assert!(got.message.contains(want), "{want:?} not in {got:?}");
        }
        let components: Vec<_> = p.iter().filter_map(|p| p.component).collect();
        use Component::{Dashboard, Database, Metastore, Trino};
        assert_eq!(
            components,
            [
                Metastore, Metastore, Metastore, Database, Database, Database, Database, Database,
                Trino, Trino, Trino, Dashboard, Dashboard, Metastore
            ],
            "each problem is its component's"
        );
    }

    #[test]
    fn an_allowed_namespace_must_be_a_namespace_name() {
        let s = spec(
            r#"{"s3": {"endpoint": "http://s3:80", "bucket": "b"},
                "trino": {"allowedNamespaces": ["team-b", "Team_B", "a\nb"]}}"#,
        );
        let p = problems("q", &s);
        let fields: Vec<_> = p.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.trino.allowedNamespaces[1]",
                "spec.trino.allowedNamespaces[2]"
            ]
        );
        assert!(p.iter().all(|p| p.component == Some(Component::Trino)));
        assert!(
            p[1].message.contains("\\n"),
            "a control character is shown escaped: {p:?}"
        );
    }

    #[test]
    fn redash_needs_its_connection_secret() {
        let s = spec(
            r#"{"s3": {"endpoint": "http://s3:80", "bucket": "b"}, "dashboard": {"kind": "redash"}}"#,
        );
        let first = &problems("q", &s)[0];
        assert!(first.message.contains("REDASH") || first.message.contains("Redis"));
        assert_eq!(first.component, Some(Component::Dashboard));
    }

    #[test]
    fn schema_names_follow_the_pattern() {
        for ok in ["air_quality", "_x", "a1"] {
            assert!(schema_name_ok(ok), "{ok}");
        }
        for bad in ["", "1a", "Air", "air-quality", "air quality"] {
            assert!(!schema_name_ok(bad), "{bad}");
        }
    }

    #[test]
    fn the_crd_has_the_short_name_columns_rules_and_status() {
        let crd = serde_json::to_value(HapQuery::crd()).unwrap();
        assert_eq!(crd["metadata"]["name"], "hapqueries.hap.cloudian.com");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert_eq!(crd["spec"]["names"]["shortNames"][0], "hq");
        let v = &crd["spec"]["versions"][0];
        assert!(v["subresources"]["status"].is_object());
        let columns: Vec<&str> = v["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(columns, ["Phase", "Trino URL", "Dashboard URL", "Age"]);
        let text = crd.to_string();
        for message in [
            BUCKET_RULE_MESSAGE,
            TRINO_VERSION_RULE_MESSAGE,
            "not both",
            "database.external.host is required",
        ] {
            assert!(text.contains(message), "{message}");
        }
        let spec = &v["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(spec["required"], serde_json::json!(["s3"]));
        let workers = &spec["properties"]["trino"]["properties"]["workers"];
        assert_eq!(workers["minimum"].as_f64(), Some(0.0));
    }
}
