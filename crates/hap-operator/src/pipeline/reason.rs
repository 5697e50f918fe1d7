//! Every reason the operator gives, as one type: the reasons of conditions, of events and of
//! failures. A condition's `reason`, an event's reason and a failure metric's label all come from a
//! `Reason`, so no reason is spelled anywhere else.

use std::fmt;

/// Declares the reasons with their text, and which of them each question answers yes to.
macro_rules! reasons {
    ($($variant:ident),* $(,)?) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($variant),*
        }

        impl Reason {
            /// Every reason, for the tests that hold the lists below against the text.
            pub const ALL: &[Reason] = &[$(Reason::$variant),*];

            /// The reason as conditions and events spell it (the variant's name).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$variant => stringify!($variant)),*
                }
            }
        }
    };
}

reasons!(
    // What the plan did to a child (Normal events).
    Created,
    Updated,
    Deleted,
    Suspended,
    Replacing,
    PodFailed,
    // A step that failed (Warning events; `error`).
    ReadFailed,
    ApplyFailed,
    CreateFailed,
    DeleteFailed,
    StatusUpdateFailed,
    // Configuration problems.
    Valid,
    InvalidSpec,
    ChildRejected,
    NodePortsExhausted,
    ServiceAddressesExhausted,
    S3CredentialsSecretNotFound,
    S3CredentialsKeyMissing,
    JupyterTokenSecretNotFound,
    JupyterTokenKeyMissing,
    EnvSecretNotFound,
    EnvSecretKeyMissing,
    SecretNotShared,
    NameConflict,
    NamespaceNotRestricted,
    VolumePending,
    DatabaseSecretNotFound,
    DatabaseSecretKeyMissing,
    RedashSecretNotFound,
    RedashSecretKeyMissing,
    // A workspace's pod.
    NotConfigured,
    PodMissing,
    PodReady,
    PodNotReady,
    Unschedulable,
    SchedulingGated,
    // Why the kubelet does not run a container (its waiting reasons, as it spells them).
    CrashLoopBackOff,
    ErrImagePull,
    ErrImageNeverPull,
    ImagePullBackOff,
    InvalidImageName,
    CreateContainerConfigError,
    CreateContainerError,
    // A HapQuery's components.
    Ready,
    Reachable,
    Unreachable,
    NotRequested,
    Creating,
    Starting,
    WaitingForDatabase,
    InitializingSchema,
    SchemaInitFailed,
    Initializing,
    InitFailed,
    WorkersStarting,
    ContainerNotRunning,
    // A workspace's profile, and its idle culling.
    ProfileNotFound,
    Culled,
    CullFailed,
    Active,
    ActivityUnknown,
    NotRunning,
);

impl Reason {
    /// The kubelet's waiting reasons that mean a container is broken, not merely starting.
    const BROKEN: &[Reason] = &[
        Reason::CrashLoopBackOff,
        Reason::ErrImagePull,
        Reason::ErrImageNeverPull,
        Reason::ImagePullBackOff,
        Reason::InvalidImageName,
        Reason::CreateContainerConfigError,
        Reason::CreateContainerError,
    ];

    /// A container's waiting reason, if it says the container is broken.
    pub fn broken_container(waiting: &str) -> Option<Reason> {
        Self::BROKEN.iter().copied().find(|r| r.as_str() == waiting)
    }

    /// Whether something ran and broke (a failed Job, a crash loop, an image that cannot be pulled,
    /// a refused child), rather than is on its way or waits for the user.
    pub fn is_breakage(self) -> bool {
        Self::BROKEN.contains(&self)
            || matches!(
                self,
                Reason::SchemaInitFailed
                    | Reason::InitFailed
                    | Reason::Unreachable
                    | Reason::ChildRejected
                    | Reason::NodePortsExhausted
                    | Reason::ServiceAddressesExhausted
                    | Reason::ContainerNotRunning
            )
    }

    /// Whether a condition False for this reason is only on its way (creating, starting, waiting for
    /// another component): nothing a person needs to hear about.
    pub fn is_progress(self) -> bool {
        matches!(
            self,
            Reason::Creating
                | Reason::Starting
                | Reason::WaitingForDatabase
                | Reason::InitializingSchema
                | Reason::Initializing
                | Reason::WorkersStarting
                | Reason::PodMissing
                | Reason::PodNotReady
        )
    }

    /// The scheduler's reason for not placing a pod, as one of ours.
    pub fn unscheduled(scheduler: Option<&str>) -> Reason {
        match scheduler {
            Some("SchedulingGated") => Reason::SchedulingGated,
            _ => Reason::Unschedulable,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_is_spelled_as_its_name_and_once() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.as_str()), "{r} twice");
            assert!(r.as_str().chars().next().unwrap().is_ascii_uppercase());
        }
        assert_eq!(Reason::CrashLoopBackOff.as_str(), "CrashLoopBackOff");
    }

    #[test]
    fn the_kubelets_waiting_reasons_are_told_apart() {
        assert_eq!(
            Reason::broken_container("ImagePullBackOff"),
            Some(Reason::ImagePullBackOff)
        );
        assert_eq!(Reason::broken_container("ContainerCreating"), None);
        assert!(Reason::ImagePullBackOff.is_breakage());
        assert!(Reason::SchemaInitFailed.is_breakage());
        assert!(!Reason::S3CredentialsSecretNotFound.is_breakage());
        assert!(Reason::Starting.is_progress() && !Reason::Starting.is_breakage());
        assert_eq!(Reason::unscheduled(None), Reason::Unschedulable);
    }
}
