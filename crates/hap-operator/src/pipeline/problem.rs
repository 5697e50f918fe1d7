//! A problem the user fixes: a spec field, a missing Secret or key, a child the API refused. Not an
//! error to retry blindly: it becomes a condition (of its component, where the resource has
//! components) and one Warning event, and is looked at again at growing intervals.

use hap_api::Component;

use super::error::{Exhausted, WriteError, chain};
use super::reason::Reason;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The condition's reason.
    pub reason: Reason,
    pub message: String,
    /// Whether it stops the resource from running (a missing Secret) or only keeps the last change
    /// from being applied (a child the API refused), while it runs as it was.
    pub blocking: bool,
    /// The component whose condition reports it, where the resource has components.
    pub component: Option<Component>,
}

impl Problem {
    /// The spec's own problems (what admission would have refused), as blocking problems.
    pub fn from_spec(problems: Vec<hap_api::Problem>) -> Vec<Problem> {
        problems
            .into_iter()
            .map(|p| Problem {
                reason: Reason::InvalidSpec,
                message: p.message,
                blocking: true,
                component: p.component,
            })
            .collect()
    }
}

impl Problem {
    /// The failure to write a child, if it is a problem for a person rather than an error to retry:
    /// a child the API refused as it stands (400, 422), or a Service the cluster has no node port or
    /// address left for. It does not stop what runs already.
    pub fn from_write(e: &WriteError, component: Option<Component>) -> Option<Problem> {
        let (reason, message) = match e.exhausted() {
            Some(Exhausted::NodePorts) => (
                Reason::NodePortsExhausted,
                format!(
                    "{}: the cluster has no free node port (every port of the API server's \
                     --service-node-port-range is taken). Use a ClusterIP Service \
                     (spec.service.type: ClusterIP on a HapContainer) and reach it with \
                     kubectl port-forward or a proxy, or ask the cluster's admin to widen \
                     --service-node-port-range; the operator tries again meanwhile, and \
                     succeeds once a port is free",
                    e
                ),
            ),
            Some(Exhausted::ServiceAddresses) => (
                Reason::ServiceAddressesExhausted,
                format!(
                    "{}: the cluster has no free Service address (its Service CIDR is full). Ask \
                     the cluster's admin to add a ServiceCIDR or widen \
                     --service-cluster-ip-range; the operator tries again meanwhile",
                    e
                ),
            ),
            None if e.is_rejection() => (Reason::ChildRejected, chain(e)),
            None => return None,
        };
        Some(Problem {
            reason,
            message,
            blocking: false,
            component,
        })
    }
}
