//! A problem the user fixes: a spec field, a missing Secret or key, a child the API refused. Not an
//! error to retry blindly: it becomes a condition (of its component, where the resource has
//! components) and one Warning event, and is looked at again at growing intervals.

use hap_api::Component;

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
