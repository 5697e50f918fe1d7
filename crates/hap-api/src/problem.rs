//! A problem with a spec: the field, what is wrong and what to do, and the component whose condition
//! reports it (for a resource that has components). The operator turns each into a condition and an
//! event; `hap-operator render` prints them as warnings.

use std::fmt;

/// The parts of a HapQuery, each with a condition of its own (its `type` is the component's name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Component {
    Database,
    Metastore,
    Trino,
    Dashboard,
}

impl Component {
    /// Every component, in the order the operator brings them up.
    pub const ALL: [Component; 4] = [
        Component::Database,
        Component::Metastore,
        Component::Trino,
        Component::Dashboard,
    ];

    /// The condition type that reports it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Component::Database => "Database",
            Component::Metastore => "Metastore",
            Component::Trino => "Trino",
            Component::Dashboard => "Dashboard",
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The field at fault, as a path from the resource (`spec.s3.endpoint`).
    pub field: String,
    /// What is wrong and what to do, in full (it names the field too).
    pub message: String,
    /// The component whose condition reports it, where the resource has components.
    pub component: Option<Component>,
}

impl Problem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            message: message.into(),
            component: None,
        }
    }

    pub fn of(self, component: Component) -> Self {
        Problem {
            component: Some(component),
            ..self
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
