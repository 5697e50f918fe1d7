//! The NetworkPolicies of a HapQuery's servers: each admits only the components that use it.
//!
//! | Pods | Port | From |
//! |---|---|---|
//! | MariaDB | 3306 | the metastore (and its schema Job), Superset (and its init Job) |
//! | metastore | 9083 | Trino's coordinator and workers |
//! | Trino coordinator | 8443 (HTTPS, passwords) | the dashboard (Redash's worker too), the namespace's workspace pods, and every pod of `spec.trino.allowedNamespaces` |
//! | Trino coordinator | 8080 (HTTP, the shared secret) | Trino's coordinator and workers |
//! | Trino workers | 8080 (HTTP, the shared secret) | Trino's coordinator and workers |
//! | dashboard | 8088 (Superset) or 5000 (Redash) | anyone, as its Service publishes it |
//!
//! The servers' own names for one another go through Services, but a NetworkPolicy judges the pods
//! behind them; peers are pod selectors of this namespace unless a namespace is named.

use hap_api::HapQuery;
use hap_api::hapquery::DashboardKind;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::ResourceExt;

use super::dashboard::{REDASH_PORT, SUPERSET_PORT, WORKER_COMPONENT};
use super::parts::{meta, selector};
use super::{metastore, trino};
use crate::hapquery::names::{
    self, DASHBOARD, DATABASE, METASTORE, TRINO_COORDINATOR, TRINO_WORKER,
};
use crate::hapquery::resolve::MARIADB_PORT;
use crate::pipeline::network::{ingress_only, namespaces, pods, rule, workspace_pods};

/// A policy on `component`'s pods, named after `server`.
fn on(
    hq: &HapQuery,
    component: &str,
    server: &str,
    rules: Vec<k8s_openapi::api::networking::v1::NetworkPolicyIngressRule>,
) -> NetworkPolicy {
    ingress_only(
        meta(hq, &names::policy(server), component),
        selector(hq, component),
        rules,
    )
}

pub fn database(hq: &HapQuery) -> NetworkPolicy {
    // Superset keeps its own database in MariaDB; Redash's is its PostgreSQL, never this one.
    let from = vec![pods(selector(hq, METASTORE)), pods(selector(hq, DASHBOARD))];
    on(
        hq,
        DATABASE,
        &names::mariadb(&hq.name_any()),
        vec![rule(from, &[MARIADB_PORT])],
    )
}

pub fn metastore(hq: &HapQuery) -> NetworkPolicy {
    let from = vec![
        pods(selector(hq, TRINO_COORDINATOR)),
        pods(selector(hq, TRINO_WORKER)),
    ];
    on(
        hq,
        METASTORE,
        &names::metastore(&hq.name_any()),
        vec![rule(from, &[metastore::PORT])],
    )
}

pub fn trino_coordinator(hq: &HapQuery) -> NetworkPolicy {
    // Clients on the HTTPS port; Redash's worker runs the dashboard's queries.
    let mut clients = vec![
        pods(selector(hq, DASHBOARD)),
        pods(selector(hq, WORKER_COMPONENT)),
        pods(workspace_pods()),
    ];
    clients.extend(namespaces(&hq.spec.trino.allowed_namespaces));
    // The nodes on the internal port: the coordinator itself too, for an enforcer that sees its calls
    // to its own Service as its own (kube-proxy masquerades them to the node's address, which
    // kube-router lets through anyway).
    let nodes = vec![
        pods(selector(hq, TRINO_COORDINATOR)),
        pods(selector(hq, TRINO_WORKER)),
    ];
    on(
        hq,
        TRINO_COORDINATOR,
        &names::trino_coordinator(&hq.name_any()),
        vec![
            rule(clients, &[trino::HTTPS_PORT]),
            rule(nodes, &[trino::PORT]),
        ],
    )
}

pub fn trino_workers(hq: &HapQuery) -> NetworkPolicy {
    let from = vec![
        pods(selector(hq, TRINO_COORDINATOR)),
        pods(selector(hq, TRINO_WORKER)),
    ];
    on(
        hq,
        TRINO_WORKER,
        &names::trino_worker(&hq.name_any()),
        vec![rule(from, &[trino::PORT])],
    )
}

/// The dashboard's web port, open as its Service publishes it (None without a dashboard).
pub fn dashboard(hq: &HapQuery, kind: DashboardKind) -> Option<NetworkPolicy> {
    let name = hq.name_any();
    let (server, port) = match kind {
        DashboardKind::Superset => (names::superset(&name), SUPERSET_PORT),
        DashboardKind::Redash => (names::redash(&name), REDASH_PORT),
        DashboardKind::None => return None,
    };
    Some(on(hq, DASHBOARD, &server, vec![rule(vec![], &[port])]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::network::rules_of;
    use crate::testing::hapquery;

    fn of(component: &str) -> String {
        format!(
            "app.kubernetes.io/component={component},app.kubernetes.io/instance=q,app.kubernetes.io/name=hap-query"
        )
    }

    #[test]
    fn each_server_admits_only_the_components_that_use_it() {
        let hq = hapquery("{s3: {endpoint: 'http://s3:80'}}");
        assert_eq!(
            database(&hq).metadata.name.as_deref(),
            Some("q-mariadb-ingress")
        );
        assert_eq!(
            rules_of(&database(&hq)),
            vec![(vec![of(METASTORE), of(DASHBOARD)], vec![3306])]
        );
        assert_eq!(
            rules_of(&metastore(&hq)),
            vec![(vec![of(TRINO_COORDINATOR), of(TRINO_WORKER)], vec![9083])]
        );
        assert_eq!(
            rules_of(&trino_workers(&hq)),
            vec![(vec![of(TRINO_COORDINATOR), of(TRINO_WORKER)], vec![8080])]
        );
        assert_eq!(
            rules_of(&trino_coordinator(&hq)),
            vec![
                (
                    vec![
                        of(DASHBOARD),
                        of(WORKER_COMPONENT),
                        "app.kubernetes.io/component=workspace,app.kubernetes.io/name=hap-workspace"
                            .into()
                    ],
                    vec![8443]
                ),
                (vec![of(TRINO_COORDINATOR), of(TRINO_WORKER)], vec![8080])
            ]
        );
        let superset = dashboard(&hq, DashboardKind::Superset).unwrap();
        assert_eq!(
            superset.metadata.name.as_deref(),
            Some("q-superset-ingress")
        );
        assert_eq!(rules_of(&superset), vec![(vec![], vec![8088])]);
        assert_eq!(
            rules_of(&dashboard(&hq, DashboardKind::Redash).unwrap()),
            vec![(vec![], vec![5000])]
        );
        assert!(dashboard(&hq, DashboardKind::None).is_none());
    }

    #[test]
    fn the_namespaces_the_spec_names_may_reach_trino() {
        let hq =
            hapquery("{s3: {endpoint: 'http://s3:80'}, trino: {allowedNamespaces: [team-b, bi]}}");
        let coordinator = rules_of(&trino_coordinator(&hq));
        assert_eq!(coordinator[0].0.last().unwrap(), "namespaces: team-b,bi");
        assert_eq!(coordinator[0].1, [8443], "on the HTTPS port only");
        assert_eq!(coordinator[1].0.len(), 2, "the internal port: Trino's own");
        assert_eq!(
            rules_of(&trino_workers(&hq))[0].0.len(),
            2,
            "the workers stay the coordinator's and each other's"
        );
    }
}
