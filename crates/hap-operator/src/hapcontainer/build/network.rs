//! The NetworkPolicies that say who may connect to a workspace and its Spark executors (ingress only:
//! a notebook reaches S3 and the SQL stack as before).
//!
//! - `<name>-workspace-ingress`: Jupyter (8888) and the Spark UI (4040) from anywhere, as the Service
//!   publishes them; with executors, the driver's RPC and block-manager ports (7078, 7079, and up to
//!   7095 for further applications of the workspace) from this workspace's executors only. Nothing
//!   else reaches the pod.
//! - `<name>-spark-executors` (with executors): the executors from their driver and from each other
//!   (shuffle blocks) only.
//!
//! Executors are told apart by the label `hap.cloudian.com/workspace: <name>`, which Spark puts on them
//! (`spark.kubernetes.executor.label.*`) and which the admission policy lets a driver set to its own
//! workspace's name alone. Peers are pod selectors without a namespace selector: pods of this
//! namespace.

use hap_api::HapContainer;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::ResourceExt;

use super::parts::meta;
use crate::hapcontainer::names::{
    self, BLOCK_MANAGER_PORT, DRIVER_PORT, JUPYTER_PORT, LAST_DRIVER_PORT, SPARK_UI_PORT,
};
use crate::pipeline::network::{ingress_only, pods, range_rule, rule};

pub fn workspace(hc: &HapContainer, executors: bool) -> NetworkPolicy {
    let name = hc.name_any();
    let mut rules = vec![rule(vec![], &[JUPYTER_PORT, SPARK_UI_PORT])];
    if executors {
        // The first application's two ports by number as well, for an enforcer that does not know
        // `endPort` (and would otherwise admit 7078 alone).
        let executors = || vec![pods(names::executor_selector(&name))];
        rules.push(rule(executors(), &[DRIVER_PORT, BLOCK_MANAGER_PORT]));
        rules.push(range_rule(executors(), DRIVER_PORT, LAST_DRIVER_PORT));
    }
    ingress_only(
        meta(hc, &names::workspace_policy(&name)),
        names::pod_selector(&name),
        rules,
    )
}

pub fn executors(hc: &HapContainer) -> NetworkPolicy {
    let name = hc.name_any();
    ingress_only(
        meta(hc, &names::executors_policy(&name)),
        names::executor_selector(&name),
        vec![rule(
            vec![
                pods(names::pod_selector(&name)),
                pods(names::executor_selector(&name)),
            ],
            &[],
        )],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::network::rules_of;
    use crate::testing::hapcontainer;

    const WORKSPACE: &str = "app=w,app.kubernetes.io/component=workspace";
    const EXECUTORS: &str = "hap.cloudian.com/workspace=w,spark-role=executor";

    fn selects(policy: &NetworkPolicy) -> std::collections::BTreeMap<String, String> {
        let spec = policy.spec.as_ref().unwrap();
        spec.pod_selector.clone().unwrap().match_labels.unwrap()
    }

    #[test]
    fn the_workspace_takes_jupyter_and_the_ui_from_anyone_and_the_driver_ports_from_its_executors()
    {
        let hc = hapcontainer("{}");
        let alone = workspace(&hc, false);
        assert_eq!(alone.metadata.name.as_deref(), Some("w-workspace-ingress"));
        assert_eq!(selects(&alone), names::pod_selector("w"));
        assert_eq!(rules_of(&alone), vec![(vec![], vec![8888, 4040])]);
        assert_eq!(
            rules_of(&workspace(&hc, true)),
            vec![
                (vec![], vec![8888, 4040]),
                (vec![EXECUTORS.to_string()], vec![7078, 7079]),
                (vec![EXECUTORS.to_string()], (7078..=7095).collect()),
            ]
        );
    }

    #[test]
    fn executors_take_connections_from_their_driver_and_each_other_only() {
        let policy = executors(&hapcontainer("{}"));
        assert_eq!(policy.metadata.name.as_deref(), Some("w-spark-executors"));
        assert_eq!(selects(&policy), names::executor_selector("w"));
        assert_eq!(
            rules_of(&policy),
            vec![(vec![WORKSPACE.to_string(), EXECUTORS.to_string()], vec![])]
        );
    }
}
