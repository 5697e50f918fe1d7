//! The Hive standalone metastore: its configuration (`metastore-site.xml`,
//! `metastore-log4j2.properties`, the files the loopback stack runs with too), the schema
//! initialisation Job (schematool), the Deployment and the Service on 9083.

use hap_api::HapQuery;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, EnvVar, ResourceRequirements, Service, ServiceSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;

use super::parts::{config_map, header, label_selector, meta, template_meta};
use crate::hapquery::children::Metastore;
use crate::hapquery::names::{self, METASTORE as COMPONENT};
use crate::hapquery::resolve::{Resolved, Username};
use crate::pipeline::kinds::Desired;
use crate::pipeline::objects::{
    Root, config_volume, env, mount, pod_spec, port, probes, secret_env, service_port, tcp_check,
    template,
};

pub const PORT: i32 = 9083;
pub const SITE: &str = "metastore-site.xml";
pub const LOG: &str = "metastore-log4j2.properties";
/// Where the image (the layout of `apache/hive`) reads its configuration.
pub const CONF_DIR: &str = "/opt/hive/conf";
const HIVE_BIN: &str = "/opt/hive/bin";
/// The `hive` user of that image.
const USER_ID: i64 = 1000;

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn property(name: &str, value: &str) -> String {
    format!(
        "  <property><name>{name}</name><value>{}</value></property>\n",
        xml_escape(value)
    )
}

/// `metastore-site.xml`. `${env.NAME}` is expanded by Hadoop's Configuration at run time, so the
/// credentials stay in the process environment, set from Secrets.
pub fn site_xml(hq: &HapQuery, r: &Resolved) -> String {
    let s3 = &r.s3;
    let db = &r.database;
    let bucket = s3.bucket.clone().unwrap_or_default();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out += &format!("<!--{}", header(hq, "").trim_end());
    out += " ${env.NAME} is expanded by Hadoop's\n     Configuration at run time: credentials stay in the process environment, not in this file. -->\n<configuration>\n";
    out += "  <!-- Thrift service: the port Trino connects to, on every address of the pod. -->\n";
    out += &property("metastore.thrift.port", &PORT.to_string());
    out += &property("metastore.thrift.bind.host", "0.0.0.0");
    out += "\n  <!-- The metastore database. -->\n";
    out += &property("javax.jdo.option.ConnectionURL", &db.jdbc_url());
    out += &property("javax.jdo.option.ConnectionDriverName", db.jdbc_driver());
    out += &property(
        "javax.jdo.option.ConnectionUserName",
        "${env.HAP_METASTORE_DB_USER}",
    );
    out += &property(
        "javax.jdo.option.ConnectionPassword",
        "${env.HAP_METASTORE_DB_PASSWORD}",
    );
    out += "\n  <!-- The schema is created before the first start (schematool in the cluster, DataNucleus\n       SchemaTool on loopback: docs/sql-stack.md), so the metastore creates nothing itself. Its VERSION\n       row is still written, so a later schematool upgrade knows where it starts from. -->\n";
    out += &property("datanucleus.schema.autoCreateAll", "false");
    out += &property("metastore.schema.verification", "false");
    out += &property("metastore.schema.verification.record.version", "true");
    out += "\n  <!-- Housekeeping: the default list also names HiveProtoEventsCleanerTask, which lives in Hive's\n       query engine, not in the standalone metastore, and whose absence stops all of them. -->\n";
    out += &property(
        "metastore.task.threads.always",
        "org.apache.hadoop.hive.metastore.events.EventCleanerTask,org.apache.hadoop.hive.metastore.RuntimeStatsCleanerTask",
    );
    out += "\n  <!-- Where schemas and managed tables without an explicit location go. -->\n";
    out += &property(
        "metastore.warehouse.dir",
        &format!("s3a://{bucket}/warehouse"),
    );
    out += "\n  <!-- s3a, for checking and creating those locations in the store. -->\n";
    out += &property("fs.s3a.endpoint", &s3.endpoint);
    out += &property("fs.s3a.endpoint.region", &s3.region);
    out += &property("fs.s3a.path.style.access", &s3.path_style.to_string());
    out += &property("fs.s3a.connection.ssl.enabled", &s3.tls().to_string());
    out += "  <!-- Keep the \"directory\" marker objects of parent paths rather than deleting them after each\n       write: where directories are real (a POSIX-backed store), a parent with children cannot be\n       deleted, and s3a would retry for minutes. -->\n";
    out += &property("fs.s3a.directory.marker.retention", "keep");
    let provider = if s3.credentials.is_some() {
        "  <!-- Keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the environment, nowhere else. -->\n"
    } else {
        "  <!-- No credentials Secret: anonymous requests. -->\n"
    };
    out += provider;
    out += &property(
        "fs.s3a.aws.credentials.provider",
        if s3.credentials.is_some() {
            "com.amazonaws.auth.EnvironmentVariableCredentialsProvider"
        } else {
            "org.apache.hadoop.fs.s3a.AnonymousAWSCredentialsProvider"
        },
    );
    out += "</configuration>\n";
    out
}

/// `metastore-log4j2.properties`: INFO and above to standard output, the container's log.
pub fn log_properties(hq: &HapQuery) -> String {
    header(hq, "#")
        + "status = WARN
name = MetastoreLog
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_OUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{ISO8601} %5p [%t] %c{2}: %m%n
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = console
"
}

/// The environment both the schema Job and the metastore get: the database user and password, and
/// the S3 keys, all from Secrets at container start.
pub fn environment(r: &Resolved) -> Vec<EnvVar> {
    let db = &r.database;
    let mut out = vec![
        env("HIVE_CONF_DIR", CONF_DIR),
        env("METASTORE_CONF_DIR", CONF_DIR),
        match &db.username {
            Username::Fixed(u) => env("HAP_METASTORE_DB_USER", u.clone()),
            Username::FromSecret(key) => secret_env("HAP_METASTORE_DB_USER", &db.secret, key),
        },
        secret_env("HAP_METASTORE_DB_PASSWORD", &db.secret, &db.password_key),
    ];
    out.extend(r.s3.credentials_env());
    out
}

fn resources(hq: &HapQuery) -> ResourceRequirements {
    hq.spec
        .metastore
        .resources
        .clone()
        .unwrap_or_else(|| ResourceRequirements {
            requests: Some(
                [
                    ("cpu".to_string(), Quantity("250m".into())),
                    ("memory".to_string(), Quantity("1Gi".into())),
                ]
                .into(),
            ),
            limits: Some([("memory".to_string(), Quantity("1Gi".into()))].into()),
            ..Default::default()
        })
}

/// The metastore's children: its files, the schema Job, its Service and its server.
pub fn build(hq: &HapQuery, r: &Resolved) -> Metastore<Desired> {
    let name = names::metastore(&hq.name_any());
    let config = config_map(
        hq,
        &name,
        COMPONENT,
        &[(SITE, site_xml(hq, r)), (LOG, log_properties(hq))],
    );
    let image = hq.spec.metastore.image.clone();
    let volumes = || vec![config_volume("conf", &name, &[])];
    // Creates the schema on an empty database and upgrades an older one; a rerun changes nothing.
    let init = Container {
        name: "schema".into(),
        image: Some(image.clone()),
        command: Some(vec![
            format!("{HIVE_BIN}/schematool"),
            "-dbType".into(),
            r.database.schematool_type().into(),
            "-initOrUpgradeSchema".into(),
        ]),
        env: Some(environment(r)),
        volume_mounts: Some(vec![mount("conf", CONF_DIR)]),
        ..Default::default()
    };
    let mut job_pod = pod_spec(USER_ID, USER_ID, vec![init], volumes(), Root::ReadOnly(&[]));
    job_pod.restart_policy = Some("OnFailure".into());
    let schema_job = Job {
        metadata: meta(hq, &names::metastore_schema(&hq.name_any()), COMPONENT),
        spec: Some(JobSpec {
            // A database that is not ready yet fails an attempt: retry for a few minutes. The status
            // reports each failed attempt at once, and says the Job retries.
            backoff_limit: Some(6),
            template: template(template_meta(hq, COMPONENT, &[&config]), job_pod),
            ..Default::default()
        }),
        status: None,
    };
    // Up to two minutes to start (the JVM, and the schema check against the database).
    let probes = probes(tcp_check("thrift"), 120);
    let server = Container {
        name: "metastore".into(),
        image: Some(image),
        command: Some(vec![
            format!("{HIVE_BIN}/hive"),
            "--skiphadoopversion".into(),
            "--skiphbasecp".into(),
            "--service".into(),
            "metastore".into(),
        ]),
        env: Some(environment(r)),
        ports: Some(vec![port("thrift", PORT)]),
        resources: Some(resources(hq)),
        volume_mounts: Some(vec![mount("conf", CONF_DIR)]),
        startup_probe: Some(probes.startup),
        readiness_probe: Some(probes.readiness),
        liveness_probe: Some(probes.liveness),
        ..Default::default()
    };
    let deployment = Deployment {
        metadata: meta(hq, &name, COMPONENT),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: label_selector(hq, COMPONENT),
            template: template(
                template_meta(hq, COMPONENT, &[&config]),
                pod_spec(
                    USER_ID,
                    USER_ID,
                    vec![server],
                    volumes(),
                    Root::ReadOnly(&[]),
                ),
            ),
            ..Default::default()
        }),
        status: None,
    };
    let service = Service {
        metadata: meta(hq, &name, COMPONENT),
        spec: Some(ServiceSpec {
            selector: Some(super::parts::selector(hq, COMPONENT)),
            ports: Some(vec![service_port("thrift", PORT, None)]),
            ..Default::default()
        }),
        status: None,
    };
    Metastore {
        policy: Some(super::network::metastore(hq)),
        config: Some(config),
        schema: Some(schema_job),
        service: Some(service),
        server: Some(deployment),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::hapquery as hq;
    use crate::testing::resolve_hapquery as resolve;

    const SPEC: &str =
        "{s3: {endpoint: 'http://s3.local:80', bucket: air, credentialsSecret: {name: keys}}}";

    #[test]
    fn the_site_file_points_at_the_database_service_and_the_store_with_no_secret() {
        let q = hq(SPEC);
        let xml = site_xml(&q, &resolve(&q));
        for want in [
            "<name>javax.jdo.option.ConnectionURL</name><value>jdbc:mariadb://q-mariadb:3306/metastore?useMysqlMetadata=true&amp;nullDatabaseMeansCurrent=true</value>",
            "<name>javax.jdo.option.ConnectionPassword</name><value>${env.HAP_METASTORE_DB_PASSWORD}</value>",
            "<name>metastore.thrift.port</name><value>9083</value>",
            "<name>metastore.warehouse.dir</name><value>s3a://air/warehouse</value>",
            "<name>fs.s3a.endpoint</name><value>http://s3.local:80</value>",
            "<name>fs.s3a.path.style.access</name><value>true</value>",
            "<name>fs.s3a.connection.ssl.enabled</name><value>false</value>",
            "<value>com.amazonaws.auth.EnvironmentVariableCredentialsProvider</value>",
        ] {
            assert!(xml.contains(want), "{want} not in\n{xml}");
        }
    }

    #[test]
    fn without_keys_s3a_is_anonymous() {
        let q = hq("{s3: {endpoint: 'https://s3.local', bucket: air}}");
        let xml = site_xml(&q, &resolve(&q));
        assert!(
            xml.contains("<value>org.apache.hadoop.fs.s3a.AnonymousAWSCredentialsProvider</value>")
        );
        assert!(xml.contains("<name>fs.s3a.connection.ssl.enabled</name><value>true</value>"));
    }

    #[test]
    fn the_schema_job_runs_schematool_with_the_metastores_config_and_credentials() {
        let q = hq(SPEC);
        let m = build(&q, &resolve(&q));
        let job = m.schema.unwrap().spec.unwrap().template.spec.unwrap();
        let c = &job.containers[0];
        assert_eq!(
            c.command.clone().unwrap(),
            [
                "/opt/hive/bin/schematool",
                "-dbType",
                "mysql",
                "-initOrUpgradeSchema"
            ]
        );
        let env = c.env.clone().unwrap();
        let names: Vec<&str> = env.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "HIVE_CONF_DIR",
                "METASTORE_CONF_DIR",
                "HAP_METASTORE_DB_USER",
                "HAP_METASTORE_DB_PASSWORD",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY"
            ]
        );
        assert!(env[3].value.is_none() && env[5].value.is_none());
        let svc = m.service.unwrap().spec.unwrap().ports.unwrap();
        assert_eq!(svc[0].port, 9083);
    }
}
