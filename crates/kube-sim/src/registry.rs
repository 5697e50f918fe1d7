//! The resource types kube-sim serves: the built-in ones, and those that CRDs add at run time.
//!
//! Discovery, routing, RBAC messages and the OpenAPI documents all read from here, so a type exists
//! everywhere at once or nowhere.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

/// Where objects of a resource live in the store. Two served types can share one storage: core/v1
/// events and events.k8s.io/v1 events are two views of the same objects, as in the real apiserver.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorageKey {
    pub group: String,
    pub resource: String,
}

impl StorageKey {
    pub fn new(group: &str, resource: &str) -> Self {
        StorageKey {
            group: group.to_string(),
            resource: resource.to_string(),
        }
    }
}

/// How a served type presents its stored objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum View {
    /// Objects are served as stored (only apiVersion is set to the requested version).
    Plain,
    /// events.k8s.io/v1 Event over core/v1 Event storage.
    EventsV1,
}

/// Where a type keeps what its `scale` subresource shows, as field paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas: Vec<String>,
    pub status_replicas: Vec<String>,
    /// A CRD's labelSelectorPath (a string field); None for the built-ins, whose selector is
    /// spec.selector.
    pub label_selector: Option<Vec<String>>,
}

fn json_path_fields(path: &str) -> Vec<String> {
    path.split('.')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// What a CRD version adds to a served custom resource type.
#[derive(Clone, Debug)]
pub struct CrdInfo {
    /// The whole CRD object, as sent to `crdcheck serve` for admission.
    pub crd: Arc<Value>,
    /// `additionalPrinterColumns` of this version (with the default Age column when it has none).
    pub printer_columns: Vec<Value>,
    /// The version's `openAPIV3Schema`, for the OpenAPI v3 document and patch semantics.
    pub schema: Option<Value>,
    /// The version objects are stored in.
    pub storage_version: String,
    /// The version's scale subresource, if it declares one.
    pub scale: Option<ScalePaths>,
}

#[derive(Clone, Debug)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<&'static str>,
    /// Subresources served under this type, e.g. "status".
    pub subresources: Vec<&'static str>,
    pub storage: StorageKey,
    pub view: View,
    pub crd: Option<CrdInfo>,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods`, or `deployments.apps`: how the apiserver names a resource in error messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn has_status(&self) -> bool {
        self.subresources.contains(&"status")
    }

    /// Where the scale subresource reads and writes, for types that serve one.
    pub fn scale_paths(&self) -> Option<ScalePaths> {
        if !self.subresources.contains(&"scale") {
            return None;
        }
        match &self.crd {
            Some(crd) => crd.scale.clone(),
            None => Some(ScalePaths {
                spec_replicas: vec!["spec".into(), "replicas".into()],
                status_replicas: vec!["status".into(), "replicas".into()],
                label_selector: None,
            }),
        }
    }

    /// The etcd key the apiserver would store an object under, which some of its errors quote.
    pub fn etcd_key(&self, namespace: &str, name: &str) -> String {
        let prefix = match (self.storage.group.as_str(), self.storage.resource.as_str()) {
            ("", "services") => "services/specs".to_string(),
            ("", "endpoints") => "services/endpoints".to_string(),
            ("", "nodes") => "minions".to_string(),
            ("", resource) => resource.to_string(),
            (
                "apps"
                | "batch"
                | "rbac.authorization.k8s.io"
                | "coordination.k8s.io"
                | "discovery.k8s.io",
                resource,
            ) => resource.to_string(),
            (group, resource) => format!("{group}/{resource}"),
        };
        if self.namespaced {
            format!("/registry/{prefix}/{namespace}/{name}")
        } else {
            format!("/registry/{prefix}/{name}")
        }
    }
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

struct BuiltIn {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [&'static str],
    verbs: &'static [&'static str],
}

// One row of the BUILT_INS table: positional arguments keep the table readable as a table.
#[allow(clippy::too_many_arguments)]
const fn b(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [&'static str],
) -> BuiltIn {
    BuiltIn {
        group,
        version,
        kind,
        plural,
        namespaced,
        short_names,
        categories,
        subresources,
        verbs: ALL_VERBS,
    }
}

const NAMESPACED: bool = true;
const CLUSTER: bool = false;
const NONE: &[&str] = &[];
const ALL: &[&str] = &["all"];
const STATUS: &[&str] = &["status"];
const SCALE_STATUS: &[&str] = &["scale", "status"];

/// The built-in types, with the short names, categories and subresources the real apiserver lists.
#[rustfmt::skip]
const BUILT_INS: &[BuiltIn] = &[
    b("", "v1", "ConfigMap", "configmaps", NAMESPACED, &["cm"], NONE, NONE),
    b("", "v1", "Endpoints", "endpoints", NAMESPACED, &["ep"], NONE, NONE),
    b("", "v1", "Event", "events", NAMESPACED, &["ev"], NONE, NONE),
    b("", "v1", "Namespace", "namespaces", CLUSTER, &["ns"], NONE, &["finalize", "status"]),
    b("", "v1", "Node", "nodes", CLUSTER, &["no"], NONE, STATUS),
    b("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", NAMESPACED, &["pvc"], NONE, STATUS),
    b("", "v1", "Pod", "pods", NAMESPACED, &["po"], ALL, &["binding", "eviction", "status"]),
    b("", "v1", "Secret", "secrets", NAMESPACED, NONE, NONE, NONE),
    b("", "v1", "ServiceAccount", "serviceaccounts", NAMESPACED, &["sa"], NONE, NONE),
    b("", "v1", "Service", "services", NAMESPACED, &["svc"], ALL, STATUS),
    b("apps", "v1", "Deployment", "deployments", NAMESPACED, &["deploy"], ALL, SCALE_STATUS),
    b("apps", "v1", "ReplicaSet", "replicasets", NAMESPACED, &["rs"], ALL, SCALE_STATUS),
    b("apps", "v1", "StatefulSet", "statefulsets", NAMESPACED, &["sts"], ALL, SCALE_STATUS),
    b("batch", "v1", "Job", "jobs", NAMESPACED, NONE, ALL, STATUS),
    b("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", CLUSTER, NONE, NONE, NONE),
    b("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", CLUSTER, NONE, NONE, NONE),
    b("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", NAMESPACED, NONE, NONE, NONE),
    b("rbac.authorization.k8s.io", "v1", "Role", "roles", NAMESPACED, NONE, NONE, NONE),
    b("coordination.k8s.io", "v1", "Lease", "leases", NAMESPACED, NONE, NONE, NONE),
    b("events.k8s.io", "v1", "Event", "events", NAMESPACED, &["ev"], NONE, NONE),
    b("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", NAMESPACED, NONE, NONE, NONE),
    b("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", CLUSTER, &["crd", "crds"], &["api-extensions"], STATUS),
    BuiltIn {
        group: "authorization.k8s.io",
        version: "v1",
        kind: "SelfSubjectAccessReview",
        plural: "selfsubjectaccessreviews",
        namespaced: CLUSTER,
        short_names: NONE,
        categories: NONE,
        subresources: NONE,
        verbs: &["create"],
    },
];

fn built_in(def: &BuiltIn) -> ResourceType {
    // core/v1 events and events.k8s.io/v1 events share one storage, as in the real apiserver.
    let (storage, view) = if def.group == "events.k8s.io" {
        (StorageKey::new("", "events"), View::EventsV1)
    } else {
        (StorageKey::new(def.group, def.plural), View::Plain)
    };
    ResourceType {
        group: def.group.to_string(),
        version: def.version.to_string(),
        kind: def.kind.to_string(),
        list_kind: format!("{}List", def.kind),
        plural: def.plural.to_string(),
        singular: def.kind.to_lowercase(),
        namespaced: def.namespaced,
        short_names: def.short_names.iter().map(|s| s.to_string()).collect(),
        categories: def.categories.iter().map(|s| s.to_string()).collect(),
        verbs: def.verbs.to_vec(),
        subresources: def.subresources.to_vec(),
        storage,
        view,
        crd: None,
    }
}

/// The default printer column of a CRD version that declares none.
fn age_column() -> Value {
    serde_json::json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})
}

/// The types a CRD serves: one per served version.
pub fn types_of_crd(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = names["plural"].as_str().unwrap_or_default();
    let kind = names["kind"].as_str().unwrap_or_default();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v["storage"].as_bool() == Some(true))
        .and_then(|v| v["name"].as_str())
        .unwrap_or_default()
        .to_string();
    let crd = Arc::new(crd.clone());
    versions
        .iter()
        .filter(|v| v["served"].as_bool() != Some(false))
        .map(|v| {
            let mut subresources = Vec::new();
            let scale_spec = &v["subresources"]["scale"];
            let scale = scale_spec.is_object().then(|| ScalePaths {
                spec_replicas: json_path_fields(
                    scale_spec["specReplicasPath"].as_str().unwrap_or_default(),
                ),
                status_replicas: json_path_fields(
                    scale_spec["statusReplicasPath"]
                        .as_str()
                        .unwrap_or_default(),
                ),
                label_selector: scale_spec["labelSelectorPath"]
                    .as_str()
                    .map(json_path_fields),
            });
            if scale.is_some() {
                subresources.push("scale");
            }
            if v["subresources"]["status"].is_object() {
                subresources.push("status");
            }
            let printer_columns = match v["additionalPrinterColumns"].as_array() {
                Some(cols) if !cols.is_empty() => cols.clone(),
                _ => vec![age_column()],
            };
            ResourceType {
                group: group.to_string(),
                version: v["name"].as_str().unwrap_or_default().to_string(),
                kind: kind.to_string(),
                list_kind: names["listKind"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{kind}List")),
                plural: plural.to_string(),
                singular: names["singular"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| kind.to_lowercase()),
                namespaced: spec["scope"].as_str() != Some("Cluster"),
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                verbs: ALL_VERBS.to_vec(),
                subresources,
                storage: StorageKey::new(group, plural),
                view: View::Plain,
                crd: Some(CrdInfo {
                    crd: crd.clone(),
                    printer_columns,
                    schema: v["schema"].get("openAPIV3Schema").cloned(),
                    storage_version: storage_version.clone(),
                    scale,
                }),
            }
        })
        .collect()
}

/// The served types: the fixed built-ins plus those of established CRDs, keyed by CRD name.
pub struct Registry {
    built_ins: Vec<ResourceType>,
    crds: RwLock<BTreeMap<String, Vec<ResourceType>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            built_ins: BUILT_INS.iter().map(built_in).collect(),
            crds: RwLock::new(BTreeMap::new()),
        }
    }
}

impl Registry {
    /// Every served type, built-ins first, in a stable order.
    pub fn all(&self) -> Vec<ResourceType> {
        let mut all = self.built_ins.clone();
        let crds = self.crds.read().expect("registry lock");
        all.extend(crds.values().flatten().cloned());
        all
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        let hit = |t: &ResourceType| t.group == group && t.version == version && t.plural == plural;
        if let Some(t) = self.built_ins.iter().find(|t| hit(t)) {
            return Some(t.clone());
        }
        let crds = self.crds.read().expect("registry lock");
        crds.values().flatten().find(|t| hit(t)).cloned()
    }

    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<ResourceType> {
        self.all()
            .into_iter()
            .find(|t| t.api_version() == api_version && t.kind == kind)
    }

    /// The type whose objects live in `storage`, in the form they are stored in.
    pub fn by_storage(&self, storage: &StorageKey) -> Option<ResourceType> {
        self.all()
            .into_iter()
            .find(|t| &t.storage == storage && t.view == View::Plain)
    }

    /// Serves (or re-serves, after an update) the types of a CRD.
    pub fn serve_crd(&self, crd: &Value) {
        let name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let types = types_of_crd(crd);
        self.crds
            .write()
            .expect("registry lock")
            .insert(name, types);
    }

    pub fn unserve_crd(&self, name: &str) {
        self.crds.write().expect("registry lock").remove(name);
    }

    /// Whether a group is served at all (for discovery 404s).
    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in self.all() {
            let versions = groups.entry(t.group.clone()).or_default();
            if !versions.contains(&t.version) {
                versions.push(t.version.clone());
            }
        }
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_share_storage_across_groups() {
        let r = Registry::default();
        let core = r.find("", "v1", "events").unwrap();
        let v1 = r.find("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(core.storage, v1.storage);
        assert_eq!(v1.view, View::EventsV1);
    }

    #[test]
    fn crd_types_follow_the_crd() {
        let crd = json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}},
                    {"name": "v0", "served": false, "storage": false}
                ]
            }
        });
        let r = Registry::default();
        r.serve_crd(&crd);
        let t = r.find("example.com", "v1", "widgets").unwrap();
        assert!(t.namespaced && t.has_status());
        assert_eq!(t.short_names, vec!["wd"]);
        assert_eq!(t.list_kind, "WidgetList");
        assert_eq!(t.crd.as_ref().unwrap().printer_columns, vec![age_column()]);
        assert!(
            r.find("example.com", "v0", "widgets").is_none(),
            "unserved versions are not served"
        );
        r.unserve_crd("widgets.example.com");
        assert!(r.find("example.com", "v1", "widgets").is_none());
    }
}
