//! HapQuery: SQL and dashboards over the store (MariaDB for the metastore, a Hive metastore, Trino
//! and a dashboard), through the shared pipeline. Its steps: `resolve`, `build` (one builder per
//! component and per configuration file), `children` (the typed set by component, observed and
//! planned), `status` (a condition per component); `names` gives its children's names. Beyond the
//! API, it checks that an external database answers.

pub mod build;
pub mod children;
pub mod names;
pub mod resolve;
pub mod status;

use std::time::Duration;

use hap_api::hapquery::{DashboardKind, HapQueryStatus};
use hap_api::{Component, HapQuery};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;

use crate::pipeline::caches::Caches;
use crate::pipeline::conditions::Verdicts;
use crate::pipeline::config::BuildConfig;
use crate::pipeline::kinds::{Desired, Kind};
use crate::pipeline::problem::Problem;
use crate::pipeline::references::{self, SecretReference};
use crate::pipeline::{Plan, Planning, Reconciled, Seen};
use children::{Children, Live};
use resolve::{Database, Resolved};

/// How long the external database may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How soon to look again while something is on its way (a database starting, a Job running).
const PROGRESS_POLL: Duration = Duration::from_secs(30);

/// Whether the external database accepts TCP connections from the operator. Credentials are the
/// metastore's to try: a wrong password shows as its schema Job failing.
async fn reachable(db: &Database) -> Result<(), String> {
    let address = format!("{}:{}", db.host, db.port);
    match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&address)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "the external database at {address} refused or failed the connection ({e}): check spec.database.external.host and port, and that the server runs"
        )),
        Err(_) => Err(format!(
            "the external database at {address} did not answer within {}s: check spec.database.external.host and port, and the network between the operator and it",
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

impl Reconciled for HapQuery {
    const PLURAL: &'static str = "hapqueries";
    const APP: &'static str = names::APP;
    const ANNOUNCED: &'static [&'static str] = &[
        Component::Database.as_str(),
        Component::Metastore.as_str(),
        Component::Trino.as_str(),
        Component::Dashboard.as_str(),
    ];

    const CHILDREN: &'static [Kind] = &[
        Kind::Pod,
        Kind::Service,
        Kind::ConfigMap,
        Kind::Secret,
        Kind::StatefulSet,
        Kind::Deployment,
        Kind::Job,
        Kind::NetworkPolicy,
    ];

    type Resolved = Resolved;
    type Desired = Children<Desired>;
    type Observed = Live;
    type Memory = ();
    /// For a database the operator does not run: whether it answered (checked only when runnable).
    type Checked = Option<Result<(), String>>;
    type Status = HapQueryStatus;

    fn resolve(&self, cfg: &BuildConfig, _: &hap_api::profile::Catalog) -> Resolved {
        resolve::resolve(self, cfg)
    }

    fn problems(r: &Resolved) -> Vec<Problem> {
        r.problems.clone()
    }

    fn secrets(r: &Resolved) -> Vec<SecretReference> {
        r.user_secrets()
    }

    /// The generated Secrets must be this HapQuery's own: the dashboard's (its admin password and
    /// the key its sessions are signed with) and the database's when it goes with the HapQuery. A
    /// kept database's Secret outlives its HapQuery on purpose, with the volume, and is taken over
    /// by the HapQuery made again under the same name.
    fn conflicts(&self, r: &Resolved, caches: &Caches) -> Vec<Problem> {
        let name = self.name_any();
        let dashboard = match r.dashboard {
            DashboardKind::Superset => Some(names::superset(&name)),
            DashboardKind::Redash => Some(names::redash(&name)),
            DashboardKind::None => None,
        };
        let database = r
            .database
            .managed
            .as_ref()
            .filter(|m| !m.keep_on_delete)
            .map(|_| names::mariadb(&name));
        let dashboard_db = (r.database.managed.is_some() && r.dashboard == DashboardKind::Superset)
            .then(|| names::mariadb_superset(&name));
        // Trino's: a planted users' or shared secret would be known to whoever planted it, and a
        // planted certificate would keep their key in use.
        let trino = [
            names::trino_users(&name),
            names::trino_internal(&name),
            names::trino_password_file(&name),
            names::trino_tls(&name),
        ];
        let of = |secrets: Vec<String>, component| {
            secrets
                .into_iter()
                .filter_map(move |s| references::foreign(caches, self, &s, Some(component)))
        };
        of(dashboard.into_iter().collect(), Component::Dashboard)
            .chain(of(
                database.into_iter().chain(dashboard_db).collect(),
                Component::Database,
            ))
            .chain(of(trino.to_vec(), Component::Trino))
            .collect()
    }

    fn build(&self, r: &Resolved, _: &BuildConfig) -> Children<Desired> {
        build::build(self, r)
    }

    fn observe(&self, r: &Resolved, caches: &Caches) -> Live {
        children::observe(caches, self, r)
    }

    /// Nothing is created or changed on a spec whose Secrets are missing or were not checked.
    fn plan(&self, p: Planning<'_, Self>) -> Plan {
        let steps = if p.runnable {
            children::plan(
                &p.observed.children,
                p.desired,
                p.resolved,
                self.uid().as_deref(),
                p.now,
            )
        } else {
            Vec::new()
        };
        Plan {
            steps,
            requeue: None,
        }
    }

    async fn check(
        &self,
        _: &kube::Client,
        r: &Resolved,
        _: &Self::Observed,
        runnable: bool,
    ) -> Option<Result<(), String>> {
        match r.database.managed {
            None if runnable => Some(reachable(&r.database).await),
            _ => None,
        }
    }

    fn status(&self, seen: Seen<'_, Self>) -> (HapQueryStatus, Verdicts) {
        let observed = status::Observed {
            children: &seen.observed.children,
            pods: &seen.observed.pods,
            desired: seen.desired,
            problems: seen.problems,
            dashboard: seen.resolved.dashboard,
            external_database: seen.checked.as_ref(),
        };
        status::compute(self, &observed, seen.now)
    }

    fn status_now(&self) -> Option<&HapQueryStatus> {
        self.status.as_ref()
    }

    fn conditions(status: &HapQueryStatus) -> &[Condition] {
        &status.conditions
    }

    /// The children's watches bring most changes; a poll catches what they cannot (the external
    /// database coming up).
    fn poll(&self, _: &Resolved, status: &HapQueryStatus) -> Option<Duration> {
        let settled = status.conditions.iter().all(|c| c.status == "True");
        (!settled).then_some(PROGRESS_POLL)
    }

    /// The component's server, so that two components' events of one reason stay apart.
    fn about(&self, condition: &str) -> Option<ObjectReference> {
        use k8s_openapi::Resource as _;
        use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
        let name = self.name_any();
        let component = Component::ALL
            .into_iter()
            .find(|c| c.as_str() == condition)?;
        let (api_version, kind, object) = match component {
            Component::Database => (
                StatefulSet::API_VERSION,
                StatefulSet::KIND,
                names::mariadb(&name),
            ),
            Component::Metastore => (
                Deployment::API_VERSION,
                Deployment::KIND,
                names::metastore(&name),
            ),
            Component::Trino => (
                Deployment::API_VERSION,
                Deployment::KIND,
                names::trino_coordinator(&name),
            ),
            Component::Dashboard => {
                let server = match self.spec.dashboard.kind {
                    DashboardKind::Redash => names::redash(&name),
                    _ => names::superset(&name),
                };
                (Deployment::API_VERSION, Deployment::KIND, server)
            }
        };
        Some(ObjectReference {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
            name: Some(object),
            namespace: self.namespace(),
            ..Default::default()
        })
    }
}
