//! The plan step (pure): from a live child (as cached) and the desired one, what to do and which event
//! to send once it is done. Every resource plans its children with these functions, and the executor
//! (`apply`) only carries the steps out.

use std::time::Duration;

use hap_api::Component;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::{Resource, ResourceExt};

use super::authority::RENEW_AFTER;
use super::events::Note;
use super::hash::{hashed, same_hash};
use super::kinds::{Child, Object, kind};
use super::reason::Reason;

/// How long to wait before looking again at a pod that is going away.
pub const GONE_POLL: Duration = Duration::from_secs(2);

/// Where a copied Secret's values come from: a Secret of the same namespace, and what of it.
#[derive(Clone, Debug, PartialEq)]
pub struct CopyFrom {
    pub secret: String,
    pub values: CopyValues,
}

/// What a copied Secret holds of its source's values.
#[derive(Clone, Debug, PartialEq)]
pub enum CopyValues {
    /// For each key of the copy, the source's key: (the copy's key, the source's key).
    Keys(Vec<(String, String)>),
    /// One key, this one: a password file with a line `name:bcrypt-hash` for each key of the source
    /// (its name and password), as Trino's file authenticator reads it.
    PasswordFile(String),
}

/// The annotation that says which version of its source a copied Secret holds.
pub const COPIED_FROM: &str = "hap.cloudian.com/copied-from";

/// What to do about one child.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Nothing: it is as it should be, or it is not the operator's to touch.
    Keep,
    /// Server-side apply: it changed, or was edited.
    Apply(Object),
    /// Server-side apply of a child the cache does not have, once the executor has made sure that
    /// no object of someone else's holds its name (see `foreign`).
    Create(Object),
    /// Leave it, and report it: an object of the child's name that is not this owner's (see
    /// `foreign`). Nothing after it is written in this reconcile.
    Foreign(Object),
    /// Create this Secret once, with a fresh random value for each of these keys (drawn by
    /// `generated::fill` between the plan and the executor), and never write it again.
    CreateOnce(Secret, Vec<String>),
    /// Server-side apply of this Secret with a new certificate for these hosts, which the executor has
    /// the operator's CA sign (see `certificate`).
    Issue(Secret, Vec<String>),
    /// Server-side apply of this Secret with values the executor copies from another Secret of the
    /// namespace (never held in the plan); `new` when the cache does not have it (then as `Create`).
    Copy {
        secret: Secret,
        from: CopyFrom,
        new: bool,
    },
    /// Delete it: the spec no longer calls for it.
    Delete(Object),
    /// Delete it to create it anew once it is gone (a pod that failed, or whose spec changed).
    Replace(Object),
    /// Leave it for now and look again after this long.
    Wait(Duration),
    /// Not yet: this is what it will be once what it waits for is done (a server waits for its
    /// schema Job). Nothing is written now; `render` prints it in its place.
    Later(Object),
}

/// One child's action, the event to send once it is done, and the component it belongs to (whose
/// condition reports a failure to write it).
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub action: Action,
    pub note: Option<Note>,
    pub component: Option<Component>,
}

impl Step {
    pub fn keep() -> Self {
        Step {
            action: Action::Keep,
            note: None,
            component: None,
        }
    }

    fn new(action: Action, note: Note) -> Self {
        Step {
            action,
            note: Some(note),
            component: None,
        }
    }

    /// The same step, as part of `component`.
    pub fn of(self, component: Component) -> Self {
        Step {
            component: Some(component),
            ..self
        }
    }
}

/// The steps in the order they are carried out: as given (the apply order), except deletions, which
/// go last and in reverse, so that whatever refers to a child (a RoleBinding to its Role, a server to
/// the files it reads) goes before it.
pub fn in_order(in_apply_order: Vec<Step>) -> Vec<Step> {
    let (mut deletes, mut steps): (Vec<_>, Vec<_>) = in_apply_order
        .into_iter()
        .partition(|s| matches!(s.action, Action::Delete(_)));
    deletes.reverse();
    steps.extend(deletes);
    steps
}

/// The live child as a target for a delete: its kind, name and uid (the uid makes sure the delete
/// removes the child that was observed, not a successor of the same name).
pub fn target<K: Child>(meta: &ObjectMeta) -> Object {
    let mut obj = K::default();
    *obj.meta_mut() = ObjectMeta {
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        ..Default::default()
    };
    obj.into_object()
}

fn owned_by(meta: &ObjectMeta, owner_uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|r| r.uid == owner_uid)
}

/// An object's controller, by kind and uid (a reference naming the right uid under another kind is
/// not the same owner).
fn controller(meta: &ObjectMeta) -> Option<(&str, &str)> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .map(|r| (r.kind.as_str(), r.uid.as_str()))
}

/// Whether the live object of a child's name is someone else's: its controller is not the one the
/// child is built with. An object another tenant made ahead under a workspace's child's name (a
/// ConfigMap of Spark settings, a pod its Service would select) is never adopted: applying over it
/// would keep whatever fields its maker added. Claims are the exception: a home volume kept from an
/// earlier resource of the same name has no owner, and one being released to be kept
/// (`volume.keepOnDelete`) is built with none; only a claim another owner controls is foreign.
pub fn foreign<K: Child>(live: &ObjectMeta, desired: &K) -> bool {
    let (live, desired) = (controller(live), controller(desired.meta()));
    if kind::<K>() == "PersistentVolumeClaim" {
        return live.is_some() && desired.is_some() && live != desired;
    }
    live != desired
}

/// A child that should exist as built: created (stamped with the hash of its content) when it is
/// missing, applied when its hash differs or it was edited since; reported, not touched, when the
/// object of its name is not this owner's.
pub fn ensure<K: Child>(live: Option<&K::Live>, desired: &K) -> Step {
    let note = |verb: Reason| {
        Note::normal(
            verb,
            format!("{verb} {} {}", kind::<K>(), desired.name_any()),
        )
        .about(desired.object_ref(&()))
    };
    let Some(l) = live else {
        return Step::new(
            Action::Create(hashed(desired.clone()).into_object()),
            note(Reason::Created),
        );
    };
    if foreign(l.meta(), desired) {
        return Step {
            action: Action::Foreign(target::<K>(l.meta())),
            note: None,
            component: None,
        };
    }
    if same_hash(l, desired) && K::unchanged(l, desired) {
        return Step::keep();
    }
    Step::new(
        Action::Apply(hashed(desired.clone()).into_object()),
        note(Reason::Updated),
    )
}

/// A child the spec may stop calling for (Spark's RBAC after executors went to 0): ensured while it is
/// desired, deleted after, if it is the owner's.
pub fn ensure_or_remove<K: Child>(
    live: Option<&K::Live>,
    desired: Option<&K>,
    owner_uid: Option<&str>,
) -> Step {
    match (desired, live) {
        (Some(d), _) => ensure(live, d),
        (None, Some(l)) if owner_uid.is_some_and(|uid| owned_by(l.meta(), uid)) => Step::new(
            Action::Delete(target::<K>(l.meta())),
            Note::normal(
                Reason::Deleted,
                format!("Deleted {} {}: no longer needed", kind::<K>(), l.name_any()),
            )
            .about(l.object_ref(&())),
        ),
        (None, _) => Step::keep(),
    }
}

/// A child the spec may stop calling for, kept when it does (a volume holds the user's notebooks).
pub fn ensure_if_desired<K: Child>(live: Option<&K::Live>, desired: Option<&K>) -> Step {
    desired.map_or_else(Step::keep, |d| ensure(live, d))
}

/// A Secret created once with generated values (`generate` names their keys) and never rewritten:
/// rotating a generated token would log every user out. `what` says what was generated, for the event.
pub fn create_once(
    live: Option<&PartialObjectMeta<Secret>>,
    desired: Option<&Secret>,
    generate: &[&str],
    what: &str,
) -> Step {
    match (desired, live) {
        (Some(d), None) => {
            let note = Note::normal(
                Reason::Created,
                format!("Created Secret {} with {what}", d.name_any()),
            )
            .about(d.object_ref(&()));
            let keys = generate.iter().map(|k| k.to_string()).collect();
            Step::new(Action::CreateOnce(hashed(d.clone()), keys), note)
        }
        _ => Step::keep(),
    }
}

/// A Secret whose values are copied from another (see `Action::Copy`), while `runnable` (the source
/// was checked): written when it is missing, when the source changed (its resourceVersion, kept in
/// the `COPIED_FROM` annotation and so in the hash) or when the copy was edited; deleted, if it is
/// the owner's, when the spec stops calling for it (no keys are left lying about); kept as it is
/// while the source is not usable (running executors keep working until that is fixed).
pub fn copy(
    live: Option<&PartialObjectMeta<Secret>>,
    desired: Option<(&Secret, &CopyFrom)>,
    source: Option<&ObjectMeta>,
    runnable: bool,
    owner_uid: Option<&str>,
) -> Step {
    let Some((desired, from)) = desired else {
        return ensure_or_remove::<Secret>(live, None, owner_uid);
    };
    if !runnable {
        return Step::keep();
    }
    let mut desired = desired.clone();
    let version = source
        .and_then(|s| s.resource_version.clone())
        .unwrap_or_default();
    desired
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(COPIED_FROM.into(), format!("{}@{version}", from.secret));
    let step = ensure(live, &desired);
    let copy = |secret, new| Action::Copy {
        secret,
        from: from.clone(),
        new,
    };
    let action = match step.action {
        Action::Create(Object::Secret(secret)) => copy(secret, true),
        Action::Apply(Object::Secret(secret)) => copy(secret, false),
        other => other,
    };
    Step { action, ..step }
}

/// A Secret holding a server certificate the operator's CA signs for `hosts`: issued when missing,
/// issued again when its hash changed (another CA, other hosts: both are in its annotations) or when
/// its `RENEW_AFTER` annotation, set at issue, has passed (or cannot be read).
pub fn certificate(
    live: Option<&PartialObjectMeta<Secret>>,
    desired: &Secret,
    hosts: &[String],
    now: Timestamp,
) -> Step {
    let about = desired.object_ref(&());
    let issue = |reason, why: String| {
        Step::new(
            Action::Issue(hashed(desired.clone()), hosts.to_vec()),
            Note::normal(reason, why).about(about.clone()),
        )
    };
    let name = desired.name_any();
    let Some(live) = live else {
        return issue(
            Reason::Created,
            format!("Created Secret {name} with a certificate from the operator's CA"),
        );
    };
    if !same_hash(live, desired) {
        return issue(
            Reason::Updated,
            format!(
                "Issued the certificate in Secret {name} again: its CA or its host names changed"
            ),
        );
    }
    let renew_after = live
        .annotations()
        .get(RENEW_AFTER)
        .and_then(|t| t.parse::<Timestamp>().ok());
    match renew_after {
        Some(t) if t > now => Step::keep(),
        _ => issue(
            Reason::Updated,
            format!("Renewed the certificate in Secret {name} before it expires"),
        ),
    }
}

/// A run-to-completion child (a Job): created when missing, and, its template being immutable,
/// deleted to be created anew once its hash changes. One that finished is kept as it is: it is
/// the record that the work was done. Deleted when the spec stops calling for it, if it is the owner's.
pub fn job<K: Child>(live: Option<&K::Live>, desired: Option<&K>, owner_uid: Option<&str>) -> Step {
    match (desired, live) {
        (Some(d), Some(l)) if !same_hash(l, d) => Step::new(
            Action::Replace(target::<K>(l.meta())),
            Note::normal(
                Reason::Replacing,
                format!(
                    "Deleted {} {} to run its changed template; it is created again once gone",
                    kind::<K>(),
                    l.name_any()
                ),
            )
            .about(l.object_ref(&())),
        ),
        (Some(_), Some(_)) => Step::keep(),
        (desired, live) => ensure_or_remove(live, desired, owner_uid),
    }
}

/// A step that must wait for something else to be done first (a Job for its database, a server for
/// its Job): until `ready`, nothing is written; a child that exists is kept as it was, not changed to
/// what it will be, and one to create is held as `Later`.
pub fn after(ready: bool, step: Step) -> Step {
    if ready {
        return step;
    }
    match step.action {
        Action::Apply(obj) | Action::Create(obj) => Step {
            action: Action::Later(obj),
            note: None,
            component: step.component,
        },
        _ => Step::keep(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    /// The ConfigMap as built (no hash yet: the plan stamps what it applies).
    fn config_map(data: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("w-spark-conf".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            data: Some([("k".to_string(), data.to_string())].into()),
            ..Default::default()
        }
    }

    #[test]
    fn children_are_applied_when_missing_changed_or_edited() {
        let desired = config_map("a");
        let created = ensure::<ConfigMap>(None, &desired);
        assert!(matches!(
            created.action,
            Action::Create(Object::ConfigMap(_))
        ));
        assert_eq!(
            created.note.unwrap().message,
            "Created ConfigMap w-spark-conf"
        );
        let Action::Create(Object::ConfigMap(applied)) = created.action else {
            unreachable!()
        };
        assert_eq!(
            applied.metadata.annotations.as_ref().unwrap()[crate::pipeline::SPEC_HASH],
            crate::pipeline::hash::hash_of(&desired),
            "stamped with the hash of the content as built"
        );
        assert_eq!(ensure(Some(&applied), &desired), Step::keep());
        let mut edited = applied.clone();
        edited.data = Some([("k".to_string(), "edited".to_string())].into());
        let undone = ensure(Some(&edited), &desired);
        assert_eq!(undone.note.unwrap().reason, Reason::Updated);
        let changed = ensure(Some(&applied), &config_map("b"));
        assert!(matches!(changed.action, Action::Apply(_)));
    }

    fn controlled_by(
        uid: &str,
    ) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
        vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                uid: uid.into(),
                controller: Some(true),
                ..Default::default()
            },
        ]
    }

    #[test]
    fn an_object_of_a_childs_name_made_by_someone_else_is_left_and_reported() {
        let mut desired = config_map("a");
        desired.metadata.owner_references = Some(controlled_by("mine"));
        let mut theirs = config_map("spark-env.sh from someone else");
        theirs.metadata.uid = Some("t1".into());
        // Unowned, owned (not as controller) by another pod, or controlled by another owner.
        let mut merely_owned = controlled_by("other-pod");
        merely_owned[0].controller = None;
        for owners in [None, Some(merely_owned), Some(controlled_by("other"))] {
            theirs.metadata.owner_references = owners;
            let step = ensure(Some(&theirs), &desired);
            assert!(
                matches!(step.action, Action::Foreign(Object::ConfigMap(ref c)) if c.metadata.uid.as_deref() == Some("t1")),
                "{step:?}"
            );
            assert_eq!(step.note, None, "nothing was done, so no event says it was");
        }
        theirs.metadata.owner_references = Some(controlled_by("mine"));
        assert!(matches!(
            ensure(Some(&theirs), &desired).action,
            Action::Apply(_)
        ));
    }

    #[test]
    fn a_copied_secret_follows_its_source_and_goes_when_no_longer_called_for() {
        let desired = Secret {
            metadata: ObjectMeta {
                name: Some("w-spark-s3".into()),
                namespace: Some("ns".into()),
                owner_references: Some(controlled_by("mine")),
                ..Default::default()
            },
            ..Default::default()
        };
        let from = CopyFrom {
            secret: "keys".into(),
            values: CopyValues::Keys(vec![("AWS_ACCESS_KEY_ID".into(), "id".into())]),
        };
        let source = |version: &str| ObjectMeta {
            resource_version: Some(version.into()),
            ..Default::default()
        };
        // What the cache holds once the copy was written: its metadata, as applied.
        let live = |step: Step| -> PartialObjectMeta<Secret> {
            let Action::Copy { secret, .. } = step.action else {
                panic!("{step:?}")
            };
            serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "Secret", "metadata": secret.metadata
            }))
            .unwrap()
        };
        let first = copy(
            None,
            Some((&desired, &from)),
            Some(&source("7")),
            true,
            None,
        );
        let Action::Copy {
            ref secret,
            from: ref copied,
            new,
        } = first.action
        else {
            panic!("{first:?}")
        };
        assert!(new, "created when missing");
        assert_eq!(copied, &from);
        assert_eq!(
            secret.metadata.annotations.as_ref().unwrap()[COPIED_FROM],
            "keys@7"
        );
        assert_eq!(secret.data, None, "the values are never in the plan");
        let written = live(first.clone());
        let same = copy(
            Some(&written),
            Some((&desired, &from)),
            Some(&source("7")),
            true,
            None,
        );
        assert_eq!(
            same,
            Step::keep(),
            "nothing written while the source is unchanged"
        );
        let changed = copy(
            Some(&written),
            Some((&desired, &from)),
            Some(&source("8")),
            true,
            None,
        );
        assert!(
            matches!(changed.action, Action::Copy { new: false, .. }),
            "{changed:?}"
        );
        // The source not usable (missing, say): the copy is kept as it is.
        assert_eq!(
            copy(Some(&written), Some((&desired, &from)), None, false, None),
            Step::keep()
        );
        // Not called for (executors back to 0): deleted, if it is this owner's.
        let gone = copy(Some(&written), None, Some(&source("8")), true, Some("mine"));
        assert!(
            matches!(gone.action, Action::Delete(Object::Secret(_))),
            "{gone:?}"
        );
        let not_ours = copy(
            Some(&written),
            None,
            Some(&source("8")),
            true,
            Some("other"),
        );
        assert_eq!(not_ours, Step::keep());
    }

    #[test]
    fn a_kept_claim_is_taken_back_and_one_of_another_owner_is_not() {
        use k8s_openapi::api::core::v1::PersistentVolumeClaim;
        let claim = |owners: Option<&str>| PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("w-workspace".into()),
                owner_references: owners.map(controlled_by),
                ..Default::default()
            },
            ..Default::default()
        };
        // Kept (no owner) and desired kept or owned; owned and being released to be kept.
        assert!(!foreign(&claim(None).metadata, &claim(None)));
        assert!(!foreign(&claim(None).metadata, &claim(Some("mine"))));
        assert!(!foreign(&claim(Some("mine")).metadata, &claim(None)));
        assert!(!foreign(
            &claim(Some("mine")).metadata,
            &claim(Some("mine"))
        ));
        assert!(foreign(
            &claim(Some("other")).metadata,
            &claim(Some("mine"))
        ));
    }

    #[test]
    fn only_owned_children_are_removed() {
        let mut live = config_map("a");
        live.metadata.uid = Some("c1".into());
        live.metadata.owner_references = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                uid: "owner".into(),
                ..Default::default()
            },
        ]);
        let removed = ensure_or_remove::<ConfigMap>(Some(&live), None, Some("owner"));
        assert!(
            matches!(removed.action, Action::Delete(Object::ConfigMap(ref c)) if c.metadata.uid.as_deref() == Some("c1"))
        );
        assert_eq!(
            removed.note.unwrap().message,
            "Deleted ConfigMap w-spark-conf: no longer needed"
        );
        assert_eq!(
            ensure_or_remove::<ConfigMap>(Some(&live), None, Some("someone else")),
            Step::keep()
        );
        assert_eq!(
            ensure_if_desired::<ConfigMap>(Some(&live), None),
            Step::keep()
        );
    }
}

#[cfg(test)]
mod certificate_tests {
    use super::*;

    fn desired(issuer: &str) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("q-trino-tls".into()),
                namespace: Some("ns".into()),
                annotations: Some(
                    [(
                        super::super::authority::ISSUER.to_string(),
                        issuer.to_string(),
                    )]
                    .into(),
                ),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// What the cache holds once the issued Secret was applied, with its renewal time.
    fn live(step: &Step, renew_after: &str) -> PartialObjectMeta<Secret> {
        let Action::Issue(secret, _) = &step.action else {
            panic!("{step:?}")
        };
        let mut meta = secret.metadata.clone();
        meta.annotations
            .get_or_insert_with(Default::default)
            .insert(RENEW_AFTER.into(), renew_after.into());
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": meta
        }))
        .unwrap()
    }

    #[test]
    fn a_certificate_is_issued_when_missing_kept_until_renewal_and_issued_again_after() {
        let now: Timestamp = "2026-12-07T00:00:00Z".parse().unwrap();
        let hosts = vec!["q-trino".to_string()];
        let first = certificate(None, &desired("ca1"), &hosts, now);
        assert!(matches!(&first.action, Action::Issue(_, h) if h == &hosts));
        let issued = live(&first, "2027-02-01T00:00:00Z");
        assert_eq!(
            certificate(Some(&issued), &desired("ca1"), &hosts, now).action,
            Action::Keep
        );
        let later: Timestamp = "2027-02-02T00:00:00Z".parse().unwrap();
        let renewed = certificate(Some(&issued), &desired("ca1"), &hosts, later);
        assert!(matches!(renewed.action, Action::Issue(..)));
        assert!(renewed.note.unwrap().message.contains("Renewed"));
        let other_ca = certificate(Some(&issued), &desired("ca2"), &hosts, now);
        assert!(
            matches!(other_ca.action, Action::Issue(..)),
            "another CA signs now"
        );
        let unreadable = live(&first, "soon");
        assert!(matches!(
            certificate(Some(&unreadable), &desired("ca1"), &hosts, now).action,
            Action::Issue(..)
        ));
    }
}

#[cfg(test)]
mod order_tests {
    use super::*;

    #[test]
    fn deletions_go_last_in_reverse_and_held_children_are_written_later() {
        let del = |n: &str| Step {
            action: Action::Delete(Object::ConfigMap(ConfigMapNamed::named(n))),
            note: None,
            component: None,
        };
        let apply = |n: &str| Step {
            action: Action::Apply(Object::ConfigMap(ConfigMapNamed::named(n))),
            note: None,
            component: Some(Component::Trino),
        };
        let names = |steps: &[Step]| -> Vec<String> {
            steps
                .iter()
                .map(|s| match &s.action {
                    Action::Apply(Object::ConfigMap(c)) | Action::Delete(Object::ConfigMap(c)) => {
                        c.metadata.name.clone().unwrap()
                    }
                    _ => String::new(),
                })
                .collect()
        };
        let steps = in_order(vec![del("a"), apply("b"), del("c"), apply("d")]);
        assert_eq!(names(&steps), ["b", "d", "c", "a"]);
        let held = after(false, apply("e"));
        assert!(matches!(held.action, Action::Later(_)));
        assert_eq!(
            held.component,
            Some(Component::Trino),
            "still its component's"
        );
        assert_eq!(after(false, del("f")), Step::keep(), "a held child is kept");
        assert_eq!(after(true, apply("g")), apply("g"));
    }

    trait ConfigMapNamed {
        fn named(name: &str) -> Self;
    }
    impl ConfigMapNamed for k8s_openapi::api::core::v1::ConfigMap {
        fn named(name: &str) -> Self {
            let mut c = Self::default();
            c.metadata.name = Some(name.into());
            c
        }
    }
}
