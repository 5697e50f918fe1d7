//! The apply step: carries out a plan's steps with the API (server-side apply with the operator's
//! field manager, after a read of the name when the child is new; create-once for generated Secrets;
//! deletes with the observed uid as a precondition), sends each step's event once it is done, and
//! writes a status that changed. It decides nothing but whether a new child's name is taken.

use std::collections::BTreeMap;
use std::fmt::Debug;

use jiff::Timestamp;
use k8s_openapi::ByteString;

use hap_api::Component;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::MANAGER;
use super::authority::{Authority, RENEW_AFTER};
use super::error::{StatusError, WriteError};
use super::events::{Events, merged};
use super::hash::hash_on;
use super::kinds::{Child, Object, kind};
use super::plan::{self, Action, CopyFrom, CopyValues, Step};

/// What carrying out the steps left behind.
#[derive(Default)]
pub struct Outcome {
    /// The objects applied, as the API returned them.
    pub written: Vec<Object>,
    /// The children deleted (or already gone), by kind and name.
    pub removed: Vec<(String, String)>,
    /// The children whose step found it done already (a delete of one gone, a create of one that
    /// exists): no event follows, and nothing is counted.
    pub found_done: Vec<(String, String)>,
    /// The children whose step failed, by kind and name, and every failure with the component of
    /// the child it failed on.
    pub failed: Vec<(String, String)>,
    pub errors: Vec<(Option<Component>, WriteError)>,
    /// The objects holding a child's name that are not this owner's (kind, name), with the
    /// component of the child; and the steps not carried out after the first of them.
    pub foreign: Vec<(Option<Component>, String, String)>,
    pub skipped: Vec<(String, String)>,
}

impl Outcome {
    /// Keeps what a create (or a copy made as one) wrote or found made already, or the name it found
    /// taken (then None: the step is done, and nothing after it is written).
    fn record_create(
        &mut self,
        component: Option<Component>,
        key: (String, String),
        created: Result<Created, WriteError>,
    ) -> Option<((String, String), Result<bool, WriteError>)> {
        match created {
            Ok(Created::Written(w)) => {
                self.written.push(w);
                Some((key, Ok(true)))
            }
            Ok(Created::Found(live)) => {
                self.written.push(live);
                Some((key, Ok(false)))
            }
            Ok(Created::Foreign) => {
                self.foreign.push((component, key.0, key.1));
                None
            }
            Err(e) => Some((key, Err(e))),
        }
    }

    /// The child of kind K named `name` as written now, if it was.
    pub fn written<K: Child>(&self, name: &str) -> Option<&K> {
        self.written
            .iter()
            .filter_map(K::from_object)
            .find(|o| o.name_any() == name)
    }

    pub fn removed<K: Child>(&self, name: &str) -> bool {
        self.removed.contains(&(kind::<K>(), name.to_string()))
    }

    pub fn failed<K: Child>(&self, name: &str) -> bool {
        self.failed.contains(&(kind::<K>(), name.to_string()))
    }

    /// Whether the step for the child of kind K named `name` changed something.
    pub fn took_effect<K: Child>(&self, name: &str) -> bool {
        let key = (kind::<K>(), name.to_string());
        !self.failed.contains(&key)
            && !self.found_done.contains(&key)
            && !self.skipped.contains(&key)
    }
}

fn api<K>(client: &Client, obj: &K) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
{
    Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default())
}

/// Runs `$body` with `$o` bound to the typed object inside an `Object`, whatever its kind.
macro_rules! with_kind {
    ($obj:expr, $o:ident => $body:expr) => {
        match $obj {
            Object::Secret($o) => $body,
            Object::ServiceAccount($o) => $body,
            Object::Role($o) => $body,
            Object::RoleBinding($o) => $body,
            Object::ConfigMap($o) => $body,
            Object::PersistentVolumeClaim($o) => $body,
            Object::Service($o) => $body,
            Object::Pod($o) => $body,
            Object::StatefulSet($o) => $body,
            Object::Deployment($o) => $body,
            Object::Job($o) => $body,
            Object::NetworkPolicy($o) => $body,
        }
    };
}

async fn apply<K: Child>(client: &Client, desired: K) -> Result<Object, WriteError> {
    let name = desired.name_any();
    api(client, &desired)
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&desired),
        )
        .await
        .map(Child::into_object)
        .map_err(|source| WriteError::Apply {
            kind: kind::<K>(),
            name,
            source,
        })
}

/// Whether a step changed something (true), or found it done already (false).
type Done = bool;

/// What a create of a child the cache did not have came to.
enum Created {
    /// Written now, as the API returned it.
    Written(Object),
    /// Made already from the same desired state by an earlier reconcile whose write the cache has
    /// not seen yet: nothing written, and no second event.
    Found(Object),
    /// The name is held by an object that is not this owner's.
    Foreign,
}

/// Creates a child the cache does not have, by server-side apply, once a read shows its name free,
/// or held by this owner's child built from another desired state. The children's watches see only
/// labelled objects, so the read is what finds an object someone else made under the child's name.
/// (A create that raced in between the read and the apply would be adopted: a window of one round
/// trip, against a name the attacker would have had to leave free until then.)
async fn create<K: Child>(client: &Client, desired: K) -> Result<Created, WriteError> {
    let name = desired.name_any();
    let live = api(client, &desired)
        .get_opt(&name)
        .await
        .map_err(|source| WriteError::Create {
            kind: kind::<K>(),
            name,
            source,
        })?;
    match live {
        Some(l) if plan::foreign(l.meta(), &desired) => Ok(Created::Foreign),
        Some(l) if made_already(&l, &desired) => Ok(Created::Found(l.into_object())),
        _ => apply(client, desired).await.map(Created::Written),
    }
}

/// Whether a live object of this owner's (not foreign) is the desired one as it was written: the
/// same spec hash, and not going away.
fn made_already<K: Child>(live: &K, desired: &K) -> bool {
    live.meta().deletion_timestamp.is_none()
        && hash_on(live).is_some()
        && hash_on(live) == hash_on(desired)
}

/// Fills a copied Secret with its source's values, read now (they are never in the plan). A key the
/// source lost since it was checked is left out: the next reconcile's check reports it.
async fn fill_copy(
    client: &Client,
    mut secret: Secret,
    from: &CopyFrom,
) -> Result<Secret, WriteError> {
    let source = api(client, &secret)
        .get(&from.secret)
        .await
        .map_err(|source| WriteError::Create {
            kind: "Secret".into(),
            name: secret.name_any(),
            source,
        })?;
    let values = source.data.unwrap_or_default();
    secret.data = Some(match &from.values {
        CopyValues::Keys(keys) => keys
            .iter()
            .filter_map(|(key, source_key)| Some((key.clone(), values.get(source_key)?.clone())))
            .collect(),
        CopyValues::PasswordFile(key) => {
            let file = password_file(&values).map_err(|reason| WriteError::Issue {
                name: secret.name_any(),
                reason,
            })?;
            BTreeMap::from([(key.clone(), ByteString(file.into_bytes()))])
        }
    });
    Ok(secret)
}

/// A password file: `name:hash` for each (name, password), hashed with bcrypt (`$2y$`, as Trino
/// wants it, cost 10; Trino takes 8 and up). A fresh salt each time: the file is written again only
/// when its source changes.
fn password_file(users: &BTreeMap<String, ByteString>) -> Result<String, String> {
    let mut out = String::new();
    for (name, password) in users {
        let hash = bcrypt::hash_with_result(&password.0, 10)
            .map_err(|e| format!("cannot hash the password of {name}: {e}"))?
            .format_for_version(bcrypt::Version::TwoY);
        out.push_str(&format!("{name}:{hash}\n"));
    }
    Ok(out)
}

/// The Secret with a new certificate for `hosts` from the operator's CA: `tls.crt` and `tls.key` (the
/// names `kubernetes.io/tls` Secrets use), `ca.crt` (the CA bundle), and `tls.pem`, the key and the
/// certificate in one file for servers that read them so (Trino). Its `RENEW_AFTER` annotation says
/// when the plan issues it again.
fn issue(
    mut secret: Secret,
    hosts: &[String],
    authority: Option<&Authority>,
) -> Result<Secret, WriteError> {
    let name = secret.name_any();
    let failed = |reason: String| WriteError::Issue {
        name: name.clone(),
        reason,
    };
    let authority = authority.ok_or_else(|| failed("the operator has no CA".into()))?;
    let issued = authority
        .issue(hosts, Timestamp::now())
        .map_err(|e| failed(e.to_string()))?;
    let bytes = |s: String| ByteString(s.into_bytes());
    secret.data = Some(BTreeMap::from([
        ("tls.crt".to_string(), bytes(issued.cert_pem.clone())),
        ("tls.key".to_string(), bytes(issued.key_pem.clone())),
        (
            "tls.pem".to_string(),
            bytes(issued.key_pem + &issued.cert_pem),
        ),
        (
            "ca.crt".to_string(),
            bytes(authority.trust().bundle.clone()),
        ),
    ]));
    secret
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(RENEW_AFTER.into(), issued.renew_after.to_string());
    Ok(secret)
}

/// Creates the Secret as given (its generated values drawn already, by `generated::fill`). One that
/// exists already (the cache had not caught up with an earlier create) is left as it is, which is
/// all that is needed.
async fn create_once(client: &Client, secret: Secret) -> Result<Done, WriteError> {
    let name = secret.name_any();
    let params = PostParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    };
    match api(client, &secret).create(&params, &secret).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(source) => Err(WriteError::Create {
            kind: "Secret".into(),
            name,
            source,
        }),
    }
}

/// Deletes the child the target names, if it is still the one observed (same uid).
async fn delete<K: Child>(client: &Client, target: K) -> Result<Done, WriteError> {
    let name = target.name_any();
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: target.uid(),
            resource_version: None,
        }),
        // A Job's pods go with it (the API orphans them by default, for Jobs alone).
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    match api(client, &target).delete(&name, &params).await {
        Ok(_) => Ok(true),
        // Already gone, or replaced by someone else: either way the observed child is no more, but
        // this delete did nothing.
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(false),
        Err(source) => Err(WriteError::Delete {
            kind: kind::<K>(),
            name,
            source,
        }),
    }
}

fn key_of(obj: &Object) -> (String, String) {
    with_kind!(obj, o => (kind_of(o), o.name_any()))
}

fn kind_of<K: Resource<DynamicType = ()>>(_: &K) -> String {
    kind::<K>()
}

/// Carries out every step, in order. A failed step does not stop the others: the pod keeps healing
/// and the status keeps being written while one child cannot be.
pub async fn execute<O>(
    client: &Client,
    events: &Events,
    authority: Option<&Authority>,
    owner: &O,
    steps: Vec<Step>,
) -> Outcome
where
    O: Resource<DynamicType = ()>,
{
    let mut out = Outcome::default();
    // The notes of the steps that took effect, sent once all are done (see `events::merged`).
    let mut notes = Vec::new();
    for Step {
        action,
        note,
        component,
    } in steps
    {
        // After a foreign object, nothing more is written: the children after it refer to it (a pod
        // mounts the ConfigMap, a Service selects the pod).
        if !out.foreign.is_empty() {
            match &action {
                Action::Keep | Action::Wait(_) | Action::Later(_) => {}
                Action::Apply(obj)
                | Action::Create(obj)
                | Action::Foreign(obj)
                | Action::Delete(obj)
                | Action::Replace(obj) => out.skipped.push(key_of(obj)),
                Action::CreateOnce(secret, _)
                | Action::Copy { secret, .. }
                | Action::Issue(secret, _) => {
                    out.skipped.push(("Secret".to_string(), secret.name_any()))
                }
            }
            continue;
        }
        let result = match action {
            Action::Keep | Action::Wait(_) | Action::Later(_) => continue,
            Action::Foreign(obj) => {
                let (kind, name) = key_of(&obj);
                out.foreign.push((component, kind, name));
                continue;
            }
            Action::Copy { secret, from, new } => {
                let key = ("Secret".to_string(), secret.name_any());
                let written = match fill_copy(client, secret, &from).await {
                    Ok(filled) if new => create(client, filled).await,
                    Ok(filled) => apply(client, filled).await.map(Created::Written),
                    Err(e) => Err(e),
                };
                let Some(result) = out.record_create(component, key, written) else {
                    continue;
                };
                result
            }
            Action::Create(obj) => {
                let key = key_of(&obj);
                let written = with_kind!(obj, o => create(client, o).await);
                let Some(result) = out.record_create(component, key, written) else {
                    continue;
                };
                result
            }
            Action::Apply(obj) => {
                let key = key_of(&obj);
                (
                    key,
                    with_kind!(obj, o => apply(client, o).await).map(|w| {
                        out.written.push(w);
                        true
                    }),
                )
            }
            Action::CreateOnce(secret, _) => {
                let key = ("Secret".to_string(), secret.name_any());
                (key, create_once(client, secret).await)
            }
            Action::Issue(secret, hosts) => {
                let key = ("Secret".to_string(), secret.name_any());
                let written = match issue(secret, &hosts, authority) {
                    Ok(filled) => apply(client, filled).await.map(|w| {
                        out.written.push(w);
                        true
                    }),
                    Err(e) => Err(e),
                };
                (key, written)
            }
            Action::Delete(obj) | Action::Replace(obj) => {
                let key = key_of(&obj);
                let result = with_kind!(obj, o => delete(client, o).await);
                if result.is_ok() {
                    out.removed.push(key.clone());
                }
                (key, result)
            }
        };
        match result {
            (_, Ok(true)) => notes.extend(note),
            (key, Ok(false)) => out.found_done.push(key),
            (key, Err(e)) => {
                out.failed.push(key);
                out.errors.push((component, e));
            }
        }
    }
    for note in merged(notes) {
        events.publish(owner, &note).await;
    }
    out
}

/// Writes `status` through the status subresource, unless it is what the object already says.
pub async fn write_status<K, S>(
    client: &Client,
    obj: &K,
    current: Option<&S>,
    status: &S,
) -> Result<(), StatusError>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
    S: Serialize + PartialEq,
{
    if current == Some(status) {
        return Ok(());
    }
    let body = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api(client, obj)
        .patch_status(
            &obj.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|source| StatusError {
            kind: K::kind(&()).to_string(),
            name: obj.name_any(),
            source,
        })?;
    Ok(())
}

/// Applies a change to the object itself and tells it with the change's event. A `test` that failed
/// (the object changed meanwhile) leaves the object as it is; the next reconcile decides again.
pub async fn change_itself<K>(
    client: &Client,
    events: &Events,
    obj: &K,
    change: super::Change,
) -> Result<(), String>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let patched = api(client, obj)
        .patch(
            &obj.name_any(),
            &PatchParams {
                field_manager: Some(MANAGER.into()),
                ..Default::default()
            },
            &Patch::<()>::Json(change.patch),
        )
        .await;
    match patched {
        Ok(_) => {
            events.publish(obj, &change.note).await;
            Ok(())
        }
        Err(e) => Err(super::error::chain(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::hash::hashed;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn config_map(value: &str) -> ConfigMap {
        hashed(
            serde_json::from_value(json!({
                "metadata": {"name": "c", "namespace": "n"},
                "data": {"k": value}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn a_child_is_made_already_only_if_built_from_the_same_state_and_staying() {
        let desired = config_map("1");
        assert!(made_already(&desired.clone(), &desired));
        assert!(!made_already(&config_map("2"), &desired), "another state");
        let mut going = desired.clone();
        going.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
        assert!(!made_already(&going, &desired), "going away");
        let mut unhashed = desired.clone();
        unhashed.metadata.annotations = None;
        let mut desired_unhashed = desired.clone();
        desired_unhashed.metadata.annotations = None;
        assert!(
            !made_already(&unhashed, &desired_unhashed),
            "no hash on either side proves nothing"
        );
    }
}
