//! The resolve step (pure) for a HapQuery: the spec read once into what the builders need (the
//! database connection, the Secrets and their keys, the images, Trino's heap sizes), so no builder
//! works them out on its own.

use hap_api::hapquery::{
    self, DEFAULT_PASSWORD_KEY, DashboardKind, DatabaseKind, MariaDbSpec, TrinoNodeSpec,
};
use hap_api::{Component, HapQuery};
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;

use super::names;
use crate::pipeline::authority::Trust;
use crate::pipeline::config::BuildConfig;
use crate::pipeline::problem::Problem;
use crate::pipeline::reason::Reason;
use crate::pipeline::references::SecretReference;
use crate::pipeline::s3::S3;

/// The metastore database's user when the operator runs MariaDB.
pub const MARIADB_USER: &str = "hive";
pub const MARIADB_DATABASE: &str = "metastore";
pub const MARIADB_PORT: i32 = 3306;
/// The generated Secret `<name>-mariadb`: the metastore user's password and MariaDB's root password.
pub const MARIADB_ROOT_PASSWORD_KEY: &str = "root-password";
pub const MARIADB_GENERATED_KEYS: [&str; 2] = [DEFAULT_PASSWORD_KEY, MARIADB_ROOT_PASSWORD_KEY];

/// A Trino node's memory when its resources name none.
const DEFAULT_TRINO_MEMORY: &str = "2Gi";

#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub database: Database,
    /// The store the tables are in.
    pub s3: S3,
    pub trino_image: String,
    pub coordinator: TrinoNode,
    pub worker: TrinoNode,
    pub dashboard: DashboardKind,
    /// The dashboard's image, when there is a dashboard.
    pub dashboard_image: Option<String>,
    /// Redash's connection Secret (its PostgreSQL and Redis URLs), with kind redash.
    pub redash_secret: Option<String>,
    /// The spec's own problems, each saying what to fix, with its component.
    pub problems: Vec<Problem>,
    /// The operator's CA, which signs Trino's certificate (None in `render`).
    pub trust: Option<Trust>,
    /// The host names Trino's certificate is for.
    pub trino_hosts: Vec<String>,
}

/// Where the metastore (and Superset) keep their tables.
#[derive(Clone, Debug, PartialEq)]
pub struct Database {
    /// The MariaDB the operator runs; None for an existing server.
    pub managed: Option<MariaDbSpec>,
    pub kind: DatabaseKind,
    pub host: String,
    pub port: i32,
    pub name: String,
    /// The user: a fixed name, or a key of `secret`.
    pub username: Username,
    pub secret: String,
    pub password_key: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Username {
    Fixed(String),
    FromSecret(String),
}

/// A Trino node's resources and the memory settings derived from them.
#[derive(Clone, Debug, PartialEq)]
pub struct TrinoNode {
    pub resources: ResourceRequirements,
    /// 80 % of the container's memory: the rest is the JVM's own and the OS's.
    pub heap_mib: u64,
}

impl Resolved {
    /// The Secrets the user supplies, each with the components whose conditions report it when it
    /// or a key is missing, in the order their problems are reported.
    pub fn user_secrets(&self) -> Vec<SecretReference> {
        let mut out = Vec::new();
        if self.database.managed.is_none() && !self.database.secret.is_empty() {
            let mut keys = vec![self.database.password_key.clone()];
            if let Username::FromSecret(k) = &self.database.username {
                keys.insert(0, k.clone());
            }
            out.push(SecretReference {
                name: self.database.secret.clone(),
                keys,
                field: "spec.database.external.credentialsSecret".into(),
                missing: Reason::DatabaseSecretNotFound,
                key_missing: Reason::DatabaseSecretKeyMissing,
                components: vec![Component::Database],
            });
        }
        // The metastore and Trino both read the S3 keys.
        out.extend(self.s3.reference(&[Component::Metastore, Component::Trino]));
        if let Some(name) = &self.redash_secret {
            out.push(SecretReference {
                name: name.clone(),
                keys: Vec::new(),
                field: "spec.dashboard.redash.connectionSecret".into(),
                missing: Reason::RedashSecretNotFound,
                key_missing: Reason::RedashSecretKeyMissing,
                components: vec![Component::Dashboard],
            });
        }
        out
    }
}

impl Database {
    /// The JDBC URL the metastore connects with. `useMysqlMetadata` makes the MariaDB driver report
    /// "MySQL", which is how Hive and DataNucleus pick their MySQL dialect; `nullDatabaseMeansCurrent`
    /// keeps metadata look-ups inside this database (information_schema has a PARTITIONS table too).
    pub fn jdbc_url(&self) -> String {
        match self.kind {
            DatabaseKind::Mysql | DatabaseKind::Mariadb => format!(
                "jdbc:mariadb://{}:{}/{}?useMysqlMetadata=true&nullDatabaseMeansCurrent=true",
                self.host, self.port, self.name
            ),
            DatabaseKind::Postgres => {
                format!(
                    "jdbc:postgresql://{}:{}/{}",
                    self.host, self.port, self.name
                )
            }
        }
    }

    pub fn jdbc_driver(&self) -> &'static str {
        match self.kind {
            DatabaseKind::Mysql | DatabaseKind::Mariadb => "org.mariadb.jdbc.Driver",
            DatabaseKind::Postgres => "org.postgresql.Driver",
        }
    }

    /// schematool's `-dbType`.
    pub fn schematool_type(&self) -> &'static str {
        match self.kind {
            DatabaseKind::Mysql | DatabaseKind::Mariadb => "mysql",
            DatabaseKind::Postgres => "postgres",
        }
    }

    /// The SQLAlchemy dialect Superset reaches this server with.
    pub fn sqlalchemy_dialect(&self) -> &'static str {
        match self.kind {
            DatabaseKind::Mysql | DatabaseKind::Mariadb => "mysql+pymysql",
            DatabaseKind::Postgres => "postgresql+psycopg2",
        }
    }
}

fn default_resources(memory: &str, cpu: &str) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(
            [
                ("cpu".to_string(), Quantity(cpu.into())),
                ("memory".to_string(), Quantity(memory.into())),
            ]
            .into(),
        ),
        limits: Some([("memory".to_string(), Quantity(memory.into()))].into()),
        ..Default::default()
    }
}

fn trino_node(spec: &TrinoNodeSpec) -> TrinoNode {
    let resources = spec
        .resources
        .clone()
        .unwrap_or_else(|| default_resources(DEFAULT_TRINO_MEMORY, "500m"));
    let memory = [&resources.limits, &resources.requests]
        .into_iter()
        .flatten()
        .find_map(|m| m.get("memory"))
        .and_then(|q| hap_api::quantity::mebibytes(&q.0))
        .filter(|m| *m > 0)
        .or_else(|| hap_api::quantity::mebibytes(DEFAULT_TRINO_MEMORY))
        .expect("the default is a quantity");
    TrinoNode {
        resources,
        heap_mib: memory * 4 / 5,
    }
}

pub fn resolve(hq: &HapQuery, cfg: &BuildConfig) -> Resolved {
    let limits = &cfg.limits;
    let name = hq.name_any();
    let spec = &hq.spec;
    let mut problems = hapquery::problems(&name, spec);
    if spec.trino.workers > limits.trino_workers {
        problems.push(
            hap_api::Problem::new(
                "spec.trino.workers",
                format!(
                    "spec.trino.workers is {}, above this installation's limit of {} (the operator's --max-trino-workers): ask for fewer, or ask an administrator to raise the limit",
                    spec.trino.workers, limits.trino_workers
                ),
            )
            .of(Component::Trino),
        );
    }
    let database = match &spec.database.external {
        Some(e) => {
            let (secret, username_key, password_key) = match &e.credentials_secret {
                Some(c) => (
                    c.name.clone(),
                    c.username_key.clone(),
                    c.password_key.clone(),
                ),
                // Admission requires the Secret; a file given to `render` may lack it.
                None => (
                    String::new(),
                    hapquery::DEFAULT_USERNAME_KEY.into(),
                    DEFAULT_PASSWORD_KEY.into(),
                ),
            };
            Database {
                managed: None,
                kind: e.kind,
                host: e.host.clone(),
                port: e.port.unwrap_or(e.kind.default_port()),
                name: e.database.clone(),
                username: Username::FromSecret(username_key),
                secret,
                password_key,
            }
        }
        None => Database {
            managed: Some(spec.database.mariadb.clone().unwrap_or_default()),
            kind: DatabaseKind::Mariadb,
            host: names::mariadb(&name),
            port: MARIADB_PORT,
            name: MARIADB_DATABASE.into(),
            username: Username::Fixed(MARIADB_USER.into()),
            secret: names::mariadb(&name),
            password_key: DEFAULT_PASSWORD_KEY.into(),
        },
    };
    let dashboard_image = match spec.dashboard.kind {
        DashboardKind::None => None,
        DashboardKind::Superset => Some(hapquery::DEFAULT_SUPERSET_IMAGE.to_string()),
        DashboardKind::Redash => Some(hapquery::DEFAULT_REDASH_IMAGE.to_string()),
    }
    .map(|default| spec.dashboard.image.clone().unwrap_or(default));
    Resolved {
        database,
        s3: S3::resolve(&spec.s3),
        trino_image: spec
            .trino
            .image
            .clone()
            .unwrap_or_else(|| format!("trinodb/trino:{}", spec.trino.version)),
        coordinator: trino_node(&spec.trino.coordinator),
        worker: trino_node(&spec.trino.worker),
        dashboard: spec.dashboard.kind,
        dashboard_image,
        redash_secret: match (spec.dashboard.kind, &spec.dashboard.redash) {
            (DashboardKind::Redash, Some(r)) => Some(r.connection_secret.name.clone()),
            _ => None,
        },
        problems: Problem::from_spec(problems),
        trust: cfg.trust.clone(),
        trino_hosts: super::build::trino::hosts(hq),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{hapquery as hq, resolve_hapquery as resolve};

    #[test]
    fn the_operator_runs_mariadb_unless_told_otherwise() {
        let r = resolve(&hq("{s3: {endpoint: 'http://s3:80', bucket: b}}"));
        let db = &r.database;
        assert!(db.managed.as_ref().is_some_and(|m| m.keep_on_delete));
        assert_eq!(
            db.jdbc_url(),
            "jdbc:mariadb://q-mariadb:3306/metastore?useMysqlMetadata=true&nullDatabaseMeansCurrent=true"
        );
        assert_eq!(db.username, Username::Fixed("hive".into()));
        assert_eq!(
            (db.secret.as_str(), db.password_key.as_str()),
            ("q-mariadb", "password")
        );
        assert_eq!(
            r.trino_image,
            format!("trinodb/trino:{}", hap_api::versions::TRINO_VERSION)
        );
        assert_eq!(r.coordinator.heap_mib, 1638, "80 % of the 2Gi default");
        assert_eq!(
            r.dashboard_image.as_deref(),
            Some(hap_api::versions::SUPERSET_IMAGE)
        );
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }

    #[test]
    fn an_external_postgres_takes_its_port_driver_and_user_from_the_spec() {
        let r = resolve(&hq(
            "{s3: {endpoint: 'http://s3:80', bucket: b}, database: {external: {kind: postgres, host: pg.db, database: hive, credentialsSecret: {name: pg, usernameKey: user}}}, dashboard: {kind: none}}",
        ));
        let db = &r.database;
        assert!(db.managed.is_none());
        assert_eq!(db.jdbc_url(), "jdbc:postgresql://pg.db:5432/hive");
        assert_eq!(db.jdbc_driver(), "org.postgresql.Driver");
        assert_eq!(db.schematool_type(), "postgres");
        assert_eq!(db.username, Username::FromSecret("user".into()));
        assert_eq!(db.secret, "pg");
        assert_eq!(r.dashboard_image, None);
    }

    #[test]
    fn more_workers_than_the_installation_allows_is_a_problem_of_trino() {
        let spec = hq("{s3: {endpoint: 'http://s3:80', bucket: b}, trino: {workers: 20}}");
        let cfg = BuildConfig {
            limits: crate::pipeline::config::Limits {
                trino_workers: 4,
                ..Default::default()
            },
            ..Default::default()
        };
        let r = super::resolve(&spec, &cfg);
        let p = &r.problems[0];
        assert_eq!(p.component, Some(Component::Trino));
        assert!(p.message.contains("limit of 4") && p.message.contains("--max-trino-workers"));
    }

    #[test]
    fn the_heap_follows_the_memory_limit_then_the_request() {
        let r = resolve(&hq(
            "{s3: {endpoint: 'http://s3:80', bucket: b}, trino: {coordinator: {resources: {limits: {memory: 1280Mi}}}, worker: {resources: {requests: {memory: 4Gi}}}}}",
        ));
        assert_eq!(r.coordinator.heap_mib, 1024);
        assert_eq!(r.worker.heap_mib, 3276);
    }
}
