//! The metastore's database when the operator runs it: MariaDB as a StatefulSet with one volume, a
//! headless Service, its settings (`hap.cnf`, also used by the loopback stack), and the generated
//! credentials Secret `<name>-mariadb`. With Superset, Superset's database has a user of its own
//! (`superset`, its password in `<name>-mariadb-superset`), which a small container beside the server
//! makes on every start (see `dashboard_user`). With an external database there is nothing to build
//! here.

use std::collections::BTreeMap;

use hap_api::HapQuery;
use hap_api::hapquery::{DashboardKind, MariaDbSpec, SUPERSET_DATABASE};
use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ExecAction, PersistentVolumeClaim, PersistentVolumeClaimSpec, Probe,
    ResourceRequirements, Service, ServiceSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::parts::{config_map, generated_secret, header, label_selector, meta, template_meta};
use crate::hapquery::children::Database;
use crate::hapquery::names::{self, DATABASE as COMPONENT};
use crate::hapquery::resolve::{
    MARIADB_DATABASE, MARIADB_PORT, MARIADB_ROOT_PASSWORD_KEY, MARIADB_USER, Resolved,
};
use crate::pipeline::kinds::Desired;
use crate::pipeline::objects::{
    Root, config_volume, env, mount, pod_spec, port, probes, secret_env, service_port, tcp_check,
    template,
};

/// The settings file, in the image's `/etc/mysql/conf.d`.
pub const SETTINGS: &str = "hap.cnf";
/// The script that gives Superset its database and user, run beside the server.
pub const DASHBOARD_USER_SCRIPT: &str = "dashboard-user.sh";
/// Superset's own database user.
pub const DASHBOARD_USER: &str = "superset";
/// The key of `<name>-mariadb-superset` holding its password.
pub const DASHBOARD_PASSWORD_KEY: &str = "password";
/// The server's socket in both images (Debian's default), in the emptyDir both containers share.
const SOCKET: &str = "/run/mysqld/mysqld.sock";
/// Made once the dashboard's user is in place: the pod is ready only then.
const DASHBOARD_USER_DONE: &str = "/tmp/dashboard-user-done";
/// The official image's `mysql` user.
const USER_ID: i64 = 999;
const DATA_DIR: &str = "/var/lib/mysql";

/// `hap.cnf`: the server settings the metastore's schema depends on.
pub fn settings(hq: &HapQuery) -> String {
    header(hq, "#")
        + "[mariadbd]
# Clients are matched by address, never by a DNS look-up.
skip-name-resolve
# A small metastore needs little memory; the default pool is 128M.
innodb_buffer_pool_size = 64M
# Case-sensitive table names, and the single-byte character set Hive's MySQL schema assumes for
# its long indexed keys.
character-set-server = latin1
collation-server     = latin1_bin
"
}

/// `dashboard-user.sh`: Superset's metadata database on the same server, with a user of its own that
/// may use that database only. Run on every start of the pod (so a volume made before, whose
/// database the metastore's user held, gets it too, and a new password takes): it waits for the
/// server on its socket, signs in there as root (MYSQL_PWD, never an argument), sends its statements
/// on standard input, marks the container ready and sleeps.
pub fn dashboard_user(hq: &HapQuery) -> String {
    header(hq, "#")
        + &format!(
            r#"set -eu
quote() {{ printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g"; }}
export MYSQL_PWD="$MARIADB_ROOT_PASSWORD"
password=$(quote "$DASHBOARD_DB_PASSWORD")
statements="CREATE DATABASE IF NOT EXISTS {SUPERSET_DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '{DASHBOARD_USER}'@'%' IDENTIFIED BY '$password';
ALTER USER '{DASHBOARD_USER}'@'%' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON {SUPERSET_DATABASE}.* TO '{DASHBOARD_USER}'@'%';"
until printf '%s\n' "$statements" | mariadb --socket={SOCKET} -uroot; do
  echo "hap-mariadb: the server does not take {SUPERSET_DATABASE}'s user yet; again in 5 s" >&2
  sleep 5
done
# Volumes made before the dashboard had its own user granted the metastore's user this database.
printf '%s\n' "REVOKE ALL PRIVILEGES ON {SUPERSET_DATABASE}.* FROM '{MARIADB_USER}'@'%';" |
  mariadb --socket={SOCKET} -uroot 2>/dev/null || true
echo "hap-mariadb: {SUPERSET_DATABASE}'s user is in place" >&2
touch {DASHBOARD_USER_DONE}
exec sleep infinity
"#
        )
}

/// MariaDB's children, when the operator runs it.
pub fn build(hq: &HapQuery, r: &Resolved) -> Database<Desired> {
    let Some(spec) = &r.database.managed else {
        return Database::default();
    };
    let name = names::mariadb(&hq.name_any());
    let mut files = vec![(SETTINGS, settings(hq))];
    if r.dashboard == DashboardKind::Superset {
        files.push((DASHBOARD_USER_SCRIPT, dashboard_user(hq)));
    }
    let config = config_map(hq, &name, COMPONENT, &files);
    let service = Service {
        metadata: meta(hq, &name, COMPONENT),
        spec: Some(ServiceSpec {
            // Headless: the StatefulSet's own Service; clients reach its one pod by this name.
            cluster_ip: Some("None".into()),
            selector: Some(super::parts::selector(hq, COMPONENT)),
            ports: Some(vec![service_port("mysql", MARIADB_PORT, None)]),
            ..Default::default()
        }),
        status: None,
    };
    let stateful_set = stateful_set(hq, r, spec, &config, &name);
    // The passwords go with the volume: a kept volume's users keep theirs, so the Secret is not the
    // HapQuery's to take along when it is deleted (a HapQuery made again finds both).
    let mut secret = generated_secret(hq, &name, COMPONENT);
    if spec.keep_on_delete {
        secret.metadata.owner_references = None;
    }
    // The dashboard's password is set again on every start, so it may go with the HapQuery.
    let dashboard_secret = (r.dashboard == DashboardKind::Superset)
        .then(|| generated_secret(hq, &names::mariadb_superset(&hq.name_any()), COMPONENT));
    Database {
        policy: Some(super::network::database(hq)),
        secret: Some(secret),
        dashboard_secret,
        config: Some(config),
        service: Some(service),
        server: Some(stateful_set),
    }
}

fn stateful_set(
    hq: &HapQuery,
    r: &Resolved,
    spec: &MariaDbSpec,
    config: &ConfigMap,
    name: &str,
) -> StatefulSet {
    let secret = &r.database.secret;
    let has_superset = config
        .data
        .as_ref()
        .is_some_and(|d| d.contains_key(DASHBOARD_USER_SCRIPT));
    let mounts = vec![
        mount("config", "/etc/mysql/conf.d"),
        k8s_openapi::api::core::v1::VolumeMount {
            name: "data".into(),
            mount_path: DATA_DIR.into(),
            ..Default::default()
        },
    ];
    let mut volumes = vec![config_volume("config", name, &[SETTINGS])];
    let mut sidecars = Vec::new();
    if has_superset {
        volumes.push(config_volume("users", name, &[DASHBOARD_USER_SCRIPT]));
        sidecars.push(Container {
            name: "dashboard-user".into(),
            image: Some(spec.image.clone()),
            command: Some(vec![
                "/bin/sh".into(),
                format!("/etc/hap-mariadb/{DASHBOARD_USER_SCRIPT}"),
            ]),
            env: Some(vec![
                secret_env("MARIADB_ROOT_PASSWORD", secret, MARIADB_ROOT_PASSWORD_KEY),
                secret_env(
                    "DASHBOARD_DB_PASSWORD",
                    &names::mariadb_superset(&hq.name_any()),
                    DASHBOARD_PASSWORD_KEY,
                ),
            ]),
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([
                    ("cpu".to_string(), Quantity("10m".into())),
                    ("memory".to_string(), Quantity("16Mi".into())),
                ])),
                limits: Some(BTreeMap::from([(
                    "memory".to_string(),
                    Quantity("64Mi".into()),
                )])),
                ..Default::default()
            }),
            volume_mounts: Some(vec![mount("users", "/etc/hap-mariadb")]),
            readiness_probe: Some(Probe {
                exec: Some(ExecAction {
                    command: Some(vec!["test".into(), "-e".into(), DASHBOARD_USER_DONE.into()]),
                }),
                period_seconds: Some(2),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    // Up to 90 s to start, as long as a first start's initialisation takes on a busy node.
    let probes = probes(tcp_check("mysql"), 90);
    let container = Container {
        name: "mariadb".into(),
        image: Some(spec.image.clone()),
        // The image's entrypoint creates the database and the user on an empty volume from these.
        env: Some(vec![
            secret_env("MARIADB_ROOT_PASSWORD", secret, MARIADB_ROOT_PASSWORD_KEY),
            env("MARIADB_DATABASE", MARIADB_DATABASE),
            env("MARIADB_USER", MARIADB_USER),
            secret_env("MARIADB_PASSWORD", secret, &r.database.password_key),
        ]),
        ports: Some(vec![port("mysql", MARIADB_PORT)]),
        resources: spec.resources.clone(),
        volume_mounts: Some(mounts),
        startup_probe: Some(probes.startup),
        readiness_probe: Some(probes.readiness),
        liveness_probe: Some(probes.liveness),
        ..Default::default()
    };
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            labels: Some(super::parts::selector(hq, COMPONENT)),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: spec.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    spec.storage_size.clone(),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    };
    // The claim holds the tables' definitions: kept when the HapQuery goes unless the spec says not.
    let when_deleted = if spec.keep_on_delete {
        "Retain"
    } else {
        "Delete"
    };
    StatefulSet {
        metadata: meta(hq, name, COMPONENT),
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(name.into()),
            selector: label_selector(hq, COMPONENT),
            template: template(
                template_meta(hq, COMPONENT, &[config]),
                // The server's socket and pid file.
                pod_spec(
                    USER_ID,
                    USER_ID,
                    std::iter::once(container).chain(sidecars).collect(),
                    volumes,
                    Root::ReadOnly(&["/run/mysqld"]),
                ),
            ),
            volume_claim_templates: Some(vec![claim]),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some(when_deleted.into()),
                    when_scaled: Some("Retain".into()),
                },
            ),
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::hapquery as hq;
    use crate::testing::resolve_hapquery as resolve;

    fn built(spec: &str) -> Database<Desired> {
        let q = hq(spec);
        build(&q, &resolve(&q))
    }

    /// What becomes of the StatefulSet's claims when it is deleted.
    fn when_deleted(sts: &k8s_openapi::api::apps::v1::StatefulSetSpec) -> String {
        let policy = sts
            .persistent_volume_claim_retention_policy
            .as_ref()
            .unwrap();
        policy.when_deleted.clone().unwrap()
    }

    #[test]
    fn mariadb_keeps_its_volume_by_default_and_reads_passwords_from_the_generated_secret() {
        let d = built("{s3: {endpoint: 'http://s3:80', bucket: b}}");
        assert!(d.secret.unwrap().data.is_none());
        let sts = d.server.unwrap().spec.unwrap();
        assert_eq!(when_deleted(&sts), "Retain");
        let claim = &sts.volume_claim_templates.unwrap()[0];
        assert_eq!(
            claim
                .spec
                .as_ref()
                .unwrap()
                .resources
                .as_ref()
                .unwrap()
                .requests
                .as_ref()
                .unwrap()["storage"]
                .0,
            "5Gi"
        );
        let pod = sts.template.spec.unwrap();
        let env = pod.containers[0].env.clone().unwrap();
        for (var, key) in [
            ("MARIADB_ROOT_PASSWORD", "root-password"),
            ("MARIADB_PASSWORD", "password"),
        ] {
            let e = env.iter().find(|e| e.name == var).unwrap();
            assert!(e.value.is_none());
            let s = e
                .value_from
                .as_ref()
                .unwrap()
                .secret_key_ref
                .as_ref()
                .unwrap();
            assert_eq!((s.name.as_str(), s.key.as_str()), ("q-mariadb", key));
        }
        assert_eq!(pod.security_context.unwrap().run_as_user, Some(999));
    }

    #[test]
    fn keep_on_delete_false_lets_the_claim_go_with_the_stateful_set() {
        let d = built(
            "{s3: {endpoint: 'http://s3:80', bucket: b}, database: {mariadb: {keepOnDelete: false, storageSize: 1Gi, storageClassName: fast}}, dashboard: {kind: none}}",
        );
        let sts = d.server.unwrap().spec.unwrap();
        assert_eq!(when_deleted(&sts), "Delete");
        let claim = sts.volume_claim_templates.unwrap()[0].spec.clone().unwrap();
        assert_eq!(claim.storage_class_name.as_deref(), Some("fast"));
        assert!(
            !d.config
                .unwrap()
                .data
                .unwrap()
                .contains_key(DASHBOARD_USER_SCRIPT),
            "no Superset, no database for it"
        );
        assert!(d.dashboard_secret.is_none());
        assert_eq!(sts.template.spec.unwrap().containers.len(), 1);
    }

    #[test]
    fn superset_gets_a_database_user_of_its_own_with_no_password_in_any_file() {
        let d = built("{s3: {endpoint: 'http://s3:80', bucket: b}}");
        let script = d.config.unwrap().data.unwrap()[DASHBOARD_USER_SCRIPT].clone();
        for line in [
            "CREATE USER IF NOT EXISTS 'superset'@'%' IDENTIFIED BY '$password';",
            "GRANT ALL PRIVILEGES ON superset.* TO 'superset'@'%';\"",
        ] {
            assert!(script.lines().any(|l| l == line), "{line} not in\n{script}");
        }
        assert!(script.contains("REVOKE ALL PRIVILEGES ON superset.* FROM 'hive'@'%'"));
        assert!(!script.contains("-p"), "no password as an argument");
        let pod = d.server.unwrap().spec.unwrap().template.spec.unwrap();
        let sidecar = &pod.containers[1];
        assert_eq!(sidecar.name, "dashboard-user");
        let env = sidecar.env.clone().unwrap();
        let from = |var: &str| {
            let e = env.iter().find(|e| e.name == var).unwrap();
            assert!(e.value.is_none());
            let r = e.value_from.clone().unwrap().secret_key_ref.unwrap();
            (r.name, r.key)
        };
        assert_eq!(
            from("DASHBOARD_DB_PASSWORD"),
            ("q-mariadb-superset".into(), "password".into())
        );
        assert_eq!(
            from("MARIADB_ROOT_PASSWORD"),
            ("q-mariadb".into(), "root-password".into())
        );
        let shared = |c: &Container| {
            c.volume_mounts
                .iter()
                .flatten()
                .any(|m| m.mount_path == "/run/mysqld")
        };
        assert!(
            shared(&pod.containers[0]) && shared(sidecar),
            "the socket's directory"
        );
        assert!(d.dashboard_secret.unwrap().data.is_none());
    }

    /// The script's quote(), run by sh: a password with quotes and backslashes comes out as a
    /// MariaDB string literal's content.
    #[test]
    fn the_password_is_quoted_for_sql_by_the_shell() {
        let script = dashboard_user(&hq("{s3: {endpoint: 'http://s3:80', bucket: b}}"));
        let quote = script.lines().find(|l| l.starts_with("quote()")).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{quote}\nquote \"$1\""))
            .arg("sh")
            .arg(r"a'b\c")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), r"a\'b\\c");
    }

    #[test]
    fn settings_keep_hives_character_set() {
        let s = settings(&hq("{s3: {endpoint: 'http://s3:80', bucket: b}}"));
        assert!(s.starts_with("# Written by hap-operator for HapQuery ns/q"));
        assert!(s.lines().any(|l| l == "collation-server     = latin1_bin"));
    }
}
