//! Merge semantics of the built-in kinds kube-sim serves, transcribed from the Go struct tags
//! (`patchStrategy`, `patchMergeKey`) and list/map annotations (`+listType`, `+listMapKey`,
//! `+mapType`, `+structType`) of k8s.io/api.
//!
//! Every struct is *open*: a field not written here is a plain struct field whose maps nest as
//! structs and whose lists are atomic, which is what an unannotated Go field is. So the table
//! only lists what differs from that: granular maps (`map`), atomic structs and maps (`atomic`),
//! sets (`set`), list-maps (`keyed(k1, k2="default")`), and the strategic-merge-patch strategy
//! (`merge`, `merge(key)`) where it exists. `{ ... }` is an inline open struct.

use crate::schema::{
    Atom, FieldDef, ListDef, MapDef, OPEN_STRUCT, Schema, Smp, SmpStrategy, TypeRef, Types,
    UNTYPED_ATOMIC,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

const TYPES: &str = r#"
ObjectMeta {
  labels: map
  annotations: map
  ownerReferences: merge(uid) keyed(uid) atomic
  finalizers: merge set
}

ResourceRequirements { limits: map, requests: map, claims: keyed(name) {} }

PodTemplateSpec { metadata: ObjectMeta, spec: PodSpec }

PodSpec {
  volumes: merge(name) keyed(name) Volume
  initContainers: merge(name) keyed(name) Container
  containers: merge(name) keyed(name) Container
  ephemeralContainers: merge(name) keyed(name) Container
  nodeSelector: atomic
  imagePullSecrets: merge(name) keyed(name) atomic
  affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: atomic } }
  hostAliases: merge(ip) keyed(ip) {}
  overhead: map
  topologySpreadConstraints: merge(topologyKey) keyed(topologyKey, whenUnsatisfiable) { labelSelector: atomic }
  schedulingGates: merge(name) keyed(name) {}
  resourceClaims: merge(name) keyed(name) {}
  resources: ResourceRequirements
  evictionResponders: merge(name) keyed(name) atomic
}

Volume {
  iscsi: { secretRef: atomic }
  rbd: { secretRef: atomic }
  flexVolume: { secretRef: atomic, options: map }
  cinder: { secretRef: atomic }
  cephfs: { secretRef: atomic }
  scaleIO: { secretRef: atomic }
  storageos: { secretRef: atomic }
  csi: { volumeAttributes: map, nodePublishSecretRef: atomic }
  projected: { sources: atomic }
  ephemeral: { volumeClaimTemplate: { metadata: ObjectMeta, spec: PersistentVolumeClaimSpec } }
}

Container {
  ports: merge(containerPort) keyed(containerPort, protocol="TCP") {}
  env: merge(name) keyed(name) EnvVar
  resources: ResourceRequirements
  volumeMounts: merge(mountPath) keyed(mountPath) { bindMountOptions: set }
  volumeDevices: merge(devicePath) keyed(devicePath) {}
}

EnvVar {
  valueFrom: { fieldRef: atomic, resourceFieldRef: atomic, configMapKeyRef: atomic, secretKeyRef: atomic, fileKeyRef: atomic }
}

PodStatus {
  conditions: merge(type) keyed(type) {}
  hostIPs: merge(ip) atomic
  podIPs: merge(ip) keyed(ip) {}
  resourceClaimStatuses: merge(name) keyed(name) {}
  allocatedResources: map
  resources: ResourceRequirements
  nodeAllocatableResourceClaimStatuses: merge(resourceClaimName) keyed(resourceClaimName) {
    containers: set
    mapping: merge(name) keyed(name) {}
    overhead: merge(name) keyed(name) {}
  }
  volumeHealth: keyed(name) { healthConditions: merge(status) keyed(status, reason) {} }
}

ServiceSpec { ports: merge(port) keyed(port, protocol="TCP") {}, selector: atomic }
ServiceStatus { conditions: merge(type) keyed(type) {} }

PersistentVolumeClaimSpec { selector: atomic, resources: { limits: map, requests: map }, dataSource: atomic }
PersistentVolumeClaimStatus {
  capacity: map
  conditions: merge(type) keyed(type) {}
  allocatedResources: map
  allocatedResourceStatuses: map
  healthStatus: { healthConditions: merge(status) keyed(status, reason) {} }
}

NodeSpec { podCIDRs: merge set, podPreemptionPolicy: { disableResizePreemption: set } }
NodeStatus {
  capacity: map
  allocatable: map
  conditions: merge(type) keyed(type) {}
  addresses: merge(type) keyed(type) {}
}

Conditions { conditions: merge(type) keyed(type) {} }

Pod { metadata: ObjectMeta, spec: PodSpec, status: PodStatus }
Service { metadata: ObjectMeta, spec: ServiceSpec, status: ServiceStatus }
Endpoints { metadata: ObjectMeta }
Secret { metadata: ObjectMeta, data: map, stringData: map }
ConfigMap { metadata: ObjectMeta, data: map, binaryData: map }
ServiceAccount { metadata: ObjectMeta, secrets: merge(name) keyed(name) atomic }
PersistentVolumeClaim { metadata: ObjectMeta, spec: PersistentVolumeClaimSpec, status: PersistentVolumeClaimStatus }
CoreEvent { metadata: ObjectMeta, involvedObject: atomic, related: atomic }
Namespace { metadata: ObjectMeta, status: Conditions }
Node { metadata: ObjectMeta, spec: NodeSpec, status: NodeStatus }

Deployment {
  metadata: ObjectMeta
  spec: { selector: atomic, template: PodTemplateSpec }
  status: Conditions
}
ReplicaSet { metadata: ObjectMeta, spec: { selector: atomic, template: PodTemplateSpec }, status: Conditions }
StatefulSet { metadata: ObjectMeta, spec: { selector: atomic, template: PodTemplateSpec }, status: Conditions }
Job {
  metadata: ObjectMeta
  spec: { selector: atomic, template: PodTemplateSpec, scheduling: { resourceClaims: merge(name) keyed(name) {} } }
  status: { conditions: merge(type) atomic, uncountedTerminatedPods: { succeeded: set, failed: set } }
}

Role { metadata: ObjectMeta }
RoleBinding { metadata: ObjectMeta, roleRef: atomic }
Lease { metadata: ObjectMeta }
EventsEvent { metadata: ObjectMeta, regarding: atomic, related: atomic }
EndpointSlice { metadata: ObjectMeta }
CustomResourceDefinition { metadata: ObjectMeta, status: { conditions: keyed(type) {} } }
Scale { metadata: ObjectMeta }
"#;

/// Zero values as the apiserver serialises a freshly constructed Go object of each kind
/// (non-pointer structs appear as `{}`, non-omitempty slices as `null`).
const EMPTY_META: &str = r#""metadata":{"creationTimestamp":null}"#;
const EMPTY_TEMPLATE: &str =
    r#""template":{"metadata":{"creationTimestamp":null},"spec":{"containers":null}}"#;

struct Kind {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    root: &'static str,
    /// Fields of the zero value besides `metadata`.
    zero: &'static str,
}

const KINDS: &[Kind] = &[
    Kind {
        group: "",
        version: "v1",
        kind: "Pod",
        root: "Pod",
        zero: r#""spec":{"containers":null},"status":{}"#,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "Service",
        root: "Service",
        zero: r#""spec":{},"status":{"loadBalancer":{}}"#,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "Endpoints",
        root: "Endpoints",
        zero: "",
    },
    Kind {
        group: "",
        version: "v1",
        kind: "Secret",
        root: "Secret",
        zero: "",
    },
    Kind {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        root: "ConfigMap",
        zero: "",
    },
    Kind {
        group: "",
        version: "v1",
        kind: "ServiceAccount",
        root: "ServiceAccount",
        zero: "",
    },
    Kind {
        group: "",
        version: "v1",
        kind: "PersistentVolumeClaim",
        root: "PersistentVolumeClaim",
        zero: r#""spec":{"resources":{}},"status":{}"#,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "Event",
        root: "CoreEvent",
        zero: r#""involvedObject":{},"source":{},"firstTimestamp":null,"lastTimestamp":null,"eventTime":null,"reportingComponent":"","reportingInstance":"""#,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "Namespace",
        root: "Namespace",
        zero: r#""spec":{},"status":{}"#,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "Node",
        root: "Node",
        zero: r#""spec":{},"status":{"daemonEndpoints":{"kubeletEndpoint":{"Port":0}},"nodeInfo":{"machineID":"","systemUUID":"","bootID":"","kernelVersion":"","osImage":"","containerRuntimeVersion":"","kubeletVersion":"","kubeProxyVersion":"","operatingSystem":"","architecture":""}}"#,
    },
    Kind {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        root: "Deployment",
        zero: r#""spec":{"selector":null,TEMPLATE,"strategy":{}},"status":{}"#,
    },
    Kind {
        group: "apps",
        version: "v1",
        kind: "ReplicaSet",
        root: "ReplicaSet",
        zero: r#""spec":{"selector":null,TEMPLATE},"status":{"replicas":0}"#,
    },
    Kind {
        group: "apps",
        version: "v1",
        kind: "StatefulSet",
        root: "StatefulSet",
        zero: r#""spec":{"selector":null,TEMPLATE,"serviceName":"","updateStrategy":{}},"status":{"replicas":0,"availableReplicas":0}"#,
    },
    Kind {
        group: "batch",
        version: "v1",
        kind: "Job",
        root: "Job",
        zero: r#""spec":{TEMPLATE},"status":{}"#,
    },
    Kind {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "Role",
        root: "Role",
        zero: r#""rules":null"#,
    },
    Kind {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "ClusterRole",
        root: "Role",
        zero: r#""rules":null"#,
    },
    Kind {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "RoleBinding",
        root: "RoleBinding",
        zero: r#""roleRef":{"apiGroup":"","kind":"","name":""}"#,
    },
    Kind {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "ClusterRoleBinding",
        root: "RoleBinding",
        zero: r#""roleRef":{"apiGroup":"","kind":"","name":""}"#,
    },
    Kind {
        group: "coordination.k8s.io",
        version: "v1",
        kind: "Lease",
        root: "Lease",
        zero: r#""spec":{}"#,
    },
    Kind {
        group: "events.k8s.io",
        version: "v1",
        kind: "Event",
        root: "EventsEvent",
        zero: r#""eventTime":null,"regarding":{},"deprecatedSource":{},"deprecatedFirstTimestamp":null,"deprecatedLastTimestamp":null"#,
    },
    Kind {
        group: "discovery.k8s.io",
        version: "v1",
        kind: "EndpointSlice",
        root: "EndpointSlice",
        zero: r#""addressType":"","endpoints":null,"ports":null"#,
    },
    Kind {
        group: "apiextensions.k8s.io",
        version: "v1",
        kind: "CustomResourceDefinition",
        root: "CustomResourceDefinition",
        zero: r#""spec":{"group":"","names":{"plural":"","kind":""},"scope":"","versions":null},"status":{"conditions":null,"acceptedNames":{"plural":"","kind":""},"storedVersions":null}"#,
    },
    Kind {
        group: "autoscaling",
        version: "v1",
        kind: "Scale",
        root: "Scale",
        zero: r#""spec":{},"status":{"replicas":0}"#,
    },
];

fn table() -> Option<&'static Arc<Types>> {
    static TABLE: OnceLock<Option<Arc<Types>>> = OnceLock::new();
    TABLE
        .get_or_init(|| parse(TYPES).ok().map(Arc::new))
        .as_ref()
}

pub(crate) fn schema_for(group: &str, version: &str, kind: &str) -> Option<Schema> {
    let k = KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind)?;
    let types = table()?.clone();
    let zero = k.zero.replace("TEMPLATE", EMPTY_TEMPLATE);
    let sep = if zero.is_empty() { "" } else { "," };
    let skeleton: Value = serde_json::from_str(&format!("{{{EMPTY_META}{sep}{zero}}}")).ok()?;
    Some(Schema {
        types,
        root: TypeRef::named(k.root),
        skeleton: Some(skeleton),
        drops_nulls: true,
        kind: Some(k.kind.to_string()),
    })
}

/// The ObjectMeta definition, shared with CRD schemas.
pub(crate) fn object_meta(types: &mut Types) {
    if let Some(table) = table()
        && let Some(atom) = table.resolve(&TypeRef::named("ObjectMeta"))
    {
        types.insert("ObjectMeta", atom.clone());
    }
}

// --- The table's little language -------------------------------------------------------------

struct Parser<'a> {
    tokens: Vec<&'a str>,
    pos: usize,
}

/// Splits into words and the punctuation `{ } ( ) , : = < >`, dropping `#` comments.
fn tokenize(src: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in src.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut start = None;
        for (i, c) in line.char_indices() {
            let punct = "{}(),:=<>".contains(c);
            if c.is_whitespace() || punct {
                if let Some(s) = start.take() {
                    out.push(&line[s..i]);
                }
                if punct {
                    out.push(&line[i..i + 1]);
                }
            } else if start.is_none() {
                start = Some(i);
            }
        }
        if let Some(s) = start {
            out.push(&line[s..]);
        }
    }
    out
}

fn parse(src: &str) -> Result<Types, String> {
    let mut p = Parser {
        tokens: tokenize(src),
        pos: 0,
    };
    let mut types = Types::with_common();
    while let Some(name) = p.next() {
        p.expect("{")?;
        let atom = p.struct_body()?;
        types.insert(name, atom);
    }
    // Every named reference must resolve.
    for name in &p.references() {
        if !types.contains(name) {
            return Err(format!("undefined type {name}"));
        }
    }
    Ok(types)
}

impl<'a> Parser<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let t = self.tokens.get(self.pos).copied();
        self.pos += 1;
        t
    }

    fn peek(&self) -> Option<&'a str> {
        self.tokens.get(self.pos).copied()
    }

    fn expect(&mut self, tok: &str) -> Result<(), String> {
        match self.next() {
            Some(t) if t == tok => Ok(()),
            other => Err(format!("expected {tok}, found {other:?}")),
        }
    }

    fn references(&self) -> Vec<&'a str> {
        self.tokens
            .windows(2)
            .filter(|w| w[0] == ":" || w[0] == ")")
            .map(|w| w[1])
            .filter(|t| t.starts_with(|c: char| c.is_ascii_uppercase()))
            .collect()
    }

    /// Fields up to the closing brace, as an open struct.
    fn struct_body(&mut self) -> Result<Atom, String> {
        let mut fields = BTreeMap::new();
        loop {
            match self.next() {
                Some("}") => break,
                Some(",") => continue,
                Some(name) => {
                    self.expect(":")?;
                    let (ty, smp) = self.field_spec()?;
                    fields.insert(
                        name.to_string(),
                        FieldDef {
                            ty,
                            default: None,
                            nullable: false,
                            smp,
                        },
                    );
                }
                None => return Err("unclosed {".into()),
            }
        }
        Ok(open_struct(fields))
    }

    fn field_spec(&mut self) -> Result<(TypeRef, Smp), String> {
        let mut smp = Smp::default();
        loop {
            match self.peek() {
                Some("merge") => {
                    self.pos += 1;
                    smp.strategy = SmpStrategy::Merge;
                    if self.peek() == Some("(") {
                        self.pos += 1;
                        smp.merge_key = self.next().map(str::to_string);
                        self.expect(")")?;
                    }
                }
                Some("replace") => {
                    self.pos += 1;
                    smp.strategy = SmpStrategy::Replace;
                }
                _ => break,
            }
        }
        Ok((self.type_spec()?, smp))
    }

    fn type_spec(&mut self) -> Result<TypeRef, String> {
        match self.next() {
            Some("atomic") => Ok(TypeRef::named(UNTYPED_ATOMIC)),
            Some("map") => Ok(inline(Atom {
                map: Some(MapDef {
                    element: Some(TypeRef::named(UNTYPED_ATOMIC)),
                    ..MapDef::default()
                }),
                ..Atom::default()
            })),
            Some("set") => Ok(inline(Atom {
                list: Some(ListDef {
                    element: TypeRef::named(UNTYPED_ATOMIC),
                    associative: true,
                    keys: vec![],
                }),
                ..Atom::default()
            })),
            Some("keyed") => {
                self.expect("(")?;
                let mut keys = Vec::new();
                let mut defaults = Vec::new();
                loop {
                    match self.next() {
                        Some(")") => break,
                        Some(",") => continue,
                        Some(key) => {
                            if self.peek() == Some("=") {
                                self.pos += 1;
                                let raw = self.next().ok_or("missing default")?;
                                let v: Value =
                                    serde_json::from_str(raw).map_err(|e| e.to_string())?;
                                defaults.push((key.to_string(), v));
                            }
                            keys.push(key.to_string());
                        }
                        None => return Err("unclosed keyed(".into()),
                    }
                }
                let element = self.type_spec()?;
                let element = with_key_defaults(element, defaults);
                Ok(inline(Atom {
                    list: Some(ListDef {
                        element,
                        associative: true,
                        keys,
                    }),
                    ..Atom::default()
                }))
            }
            Some("{") => Ok(inline(self.struct_body()?)),
            Some(name) if name.starts_with(|c: char| c.is_ascii_uppercase()) => {
                Ok(TypeRef::named(name))
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

fn inline(atom: Atom) -> TypeRef {
    TypeRef::Inline(Arc::new(atom))
}

fn open_struct(fields: BTreeMap<String, FieldDef>) -> Atom {
    Atom {
        map: Some(MapDef {
            fields,
            open: true,
            ..MapDef::default()
        }),
        ..Atom::default()
    }
}

/// Declares key defaults (e.g. `protocol: "TCP"`) on an inline element struct.
fn with_key_defaults(element: TypeRef, defaults: Vec<(String, Value)>) -> TypeRef {
    if defaults.is_empty() {
        return element;
    }
    let TypeRef::Inline(atom) = &element else {
        return element;
    };
    let mut atom = (**atom).clone();
    if let Some(map) = &mut atom.map {
        for (key, value) in defaults {
            map.fields.insert(
                key,
                FieldDef {
                    ty: TypeRef::named(OPEN_STRUCT),
                    default: Some(value),
                    nullable: false,
                    smp: Smp::default(),
                },
            );
        }
    }
    inline(atom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Shape;
    use serde_json::json;

    #[test]
    fn the_table_parses_and_every_kind_has_a_zero_value() {
        assert!(parse(TYPES).is_ok(), "{:?}", parse(TYPES).err());
        for k in KINDS {
            let s = schema_for(k.group, k.version, k.kind).expect(k.kind);
            assert!(
                s.skeleton.as_ref().is_some_and(Value::is_object),
                "{}",
                k.kind
            );
        }
    }

    #[test]
    fn container_ports_are_keyed_by_port_and_protocol_with_a_default() {
        let s = Schema::builtin("", "v1", "Pod");
        let spec = s
            .resolve(&s.root)
            .unwrap()
            .map
            .as_ref()
            .unwrap()
            .child_type("spec");
        let containers = s
            .resolve(&spec)
            .unwrap()
            .map
            .as_ref()
            .unwrap()
            .find_field("containers")
            .unwrap();
        assert_eq!(containers.smp.merge_key.as_deref(), Some("name"));
        let Shape::List(list) = s.shape(&containers.ty, Some(&json!([]))) else {
            panic!()
        };
        let Shape::Map(container) = s.shape(&list.element, Some(&json!({}))) else {
            panic!()
        };
        let ports = container.find_field("ports").unwrap();
        assert_eq!(ports.smp.merge_key.as_deref(), Some("containerPort"));
        let Shape::List(ports_list) = s.shape(&ports.ty, Some(&json!([]))) else {
            panic!()
        };
        assert_eq!(ports_list.keys, vec!["containerPort", "protocol"]);
        let pe =
            crate::typed::list_item_element(&s, ports_list, &json!({"containerPort": 80})).unwrap();
        assert_eq!(pe.to_string(), r#"[containerPort=80,protocol="TCP"]"#);
    }

    #[test]
    fn unknown_kinds_are_untyped() {
        let s = Schema::builtin("example.com", "v1", "Widget");
        assert!(s.skeleton.is_none());
    }
}
