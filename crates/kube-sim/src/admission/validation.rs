//! Validation of built-in objects: the checks of the apiserver's `Validate*` functions that clients of
//! this project can trip over, with apimachinery's field paths and wording.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::errors::FieldError;
use crate::quantity;
use crate::selectors::LabelSelector;

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn is_dns1035_label(s: &str) -> bool {
    is_dns_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// A label or annotation key: an optional DNS subdomain prefix and a name part (IsQualifiedName).
pub fn qualified_name_errors(key: &str) -> Vec<String> {
    let parts: Vec<&str> = key.split('/').collect();
    let mut errs = Vec::new();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".into());
            } else {
                if prefix.len() > 253 {
                    errs.push("prefix part must be no more than 253 characters".into());
                }
                if !prefix.split('.').all(is_dns_label) {
                    errs.push(format!("prefix part {DNS1123_SUBDOMAIN_MSG}"));
                }
            }
            name
        }
        _ => {
            let regex = QUALIFIED_NAME_MSG.trim_start_matches("name part ");
            return vec![format!(
                "a qualified name {regex} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".into());
    }
    if !name_part_ok(name) {
        errs.push(QUALIFIED_NAME_MSG.into());
    }
    errs
}

/// The name part's pattern, whatever its length.
fn name_part_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A label value (IsValidLabelValue).
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".into());
    }
    if !value.is_empty() && !name_part_ok(value) {
        errs.push(LABEL_VALUE_MSG.into());
    }
    errs
}

/// Which rule an object's name must follow.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    Subdomain,
    Label,
    Dns1035,
    PathSegment,
}

pub fn name_rule(group: &str, kind: &str) -> NameRule {
    match (group, kind) {
        ("", "Namespace") => NameRule::Label,
        ("", "Service") => NameRule::Dns1035,
        ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    }
}

pub fn validate_name(name: &str, rule: NameRule, field: &str) -> Option<FieldError> {
    let msg = match rule {
        NameRule::Subdomain if !is_dns_subdomain(name) => DNS1123_SUBDOMAIN_MSG.to_string(),
        NameRule::Label if !is_dns_label(name) => DNS1123_LABEL_MSG.to_string(),
        NameRule::Dns1035 if !is_dns1035_label(name) => DNS1035_LABEL_MSG.to_string(),
        NameRule::PathSegment if name == "." || name == ".." => format!("may not be '{name}'"),
        NameRule::PathSegment if name.contains('/') => "may not contain '/'".into(),
        NameRule::PathSegment if name.contains('%') => "may not contain '%'".into(),
        _ => return None,
    };
    Some(FieldError::invalid(field, json!(name), msg))
}

/// ObjectMeta checks shared by every kind.
pub fn object_meta(obj: &Value, rule: NameRule) -> Vec<FieldError> {
    let meta = &obj["metadata"];
    let mut errs = Vec::new();
    match meta["name"].as_str() {
        None | Some("") => errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        )),
        Some(name) => errs.extend(validate_name(name, rule, "metadata.name")),
    }
    for (k, v) in meta["labels"].as_object().into_iter().flatten() {
        for e in qualified_name_errors(k) {
            errs.push(FieldError::invalid("metadata.labels", json!(k), e));
        }
        let value = v.as_str().unwrap_or_default();
        if !is_label_value(value) {
            errs.push(FieldError::invalid(
                "metadata.labels",
                json!(value),
                LABEL_VALUE_MSG,
            ));
        }
    }
    for k in meta["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        for e in qualified_name_errors(&k.to_lowercase()) {
            errs.push(FieldError::invalid("metadata.annotations", json!(k), e));
        }
    }
    let refs = meta["ownerReferences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (i, r) in refs.iter().enumerate() {
        for f in ["apiVersion", "kind", "name", "uid"] {
            if r[f].as_str().is_none_or(str::is_empty) {
                errs.push(FieldError::required(
                    format!("metadata.ownerReferences[{i}].{f}"),
                    "",
                ));
            }
        }
    }
    let controllers: Vec<String> = refs
        .iter()
        .filter(|r| r["controller"].as_bool() == Some(true))
        .map(|r| {
            format!(
                "{}/{}",
                r["kind"].as_str().unwrap_or_default(),
                r["name"].as_str().unwrap_or_default()
            )
        })
        .collect();
    if controllers.len() > 1 {
        errs.push(FieldError::invalid(
            "metadata.ownerReferences",
            json!(refs),
            format!("Only one reference can have Controller set to true. Found \"true\" in references for {}", controllers.join(" and ")),
        ));
    }
    errs
}

/// An IANA service name, as named container ports and string target ports must be.
fn port_name_errors(name: &str) -> Vec<&'static str> {
    let mut errs = Vec::new();
    if name.len() > 15 {
        errs.push("must be no more than 15 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || name.is_empty()
    {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)");
    }
    if name.contains("--") {
        errs.push("must not contain consecutive hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') {
        errs.push("must not begin or end with a hyphen");
    }
    errs
}

fn port_errors(port: &Value, field: &str) -> Option<FieldError> {
    let p = port.as_i64().unwrap_or(0);
    (!(1..=65535).contains(&p)).then(|| {
        FieldError::invalid(
            field,
            port.clone(),
            "must be between 1 and 65535, inclusive",
        )
    })
}

fn resources(c: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let requests = &c["resources"]["requests"];
    let limits = &c["resources"]["limits"];
    for (name, req) in requests.as_object().into_iter().flatten() {
        let (Some(r), Some(l)) = (
            req.as_str().and_then(quantity::parse),
            limits[name].as_str().and_then(quantity::parse),
        ) else {
            continue;
        };
        if r > l {
            errs.push(FieldError::invalid(
                format!("{path}.resources.requests"),
                req.clone(),
                format!(
                    "must be less than or equal to {name} limit of {}",
                    limits[name].as_str().unwrap_or_default()
                ),
            ));
        }
    }
}

/// The volume sources of core/v1 Volume; a volume must name one.
const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

/// A PodSpec at `path` (`spec`, or `spec.template.spec` in workloads).
pub fn pod_spec(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let volumes: BTreeSet<&str> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .collect();
    let mut seen_volumes = BTreeSet::new();
    for (i, v) in spec["volumes"].as_array().into_iter().flatten().enumerate() {
        let name = v["name"].as_str().unwrap_or_default();
        let f = format!("{path}.volumes[{i}].name");
        if name.is_empty() {
            errs.push(FieldError::required(f, ""));
        } else if !seen_volumes.insert(name) {
            errs.push(FieldError::duplicate(f, json!(name)));
        } else if let Some(e) = validate_name(name, NameRule::Label, &f) {
            errs.push(e);
        }
        let vp = format!("{path}.volumes[{i}]");
        if !VOLUME_SOURCES.iter().any(|s| v[*s].is_object()) {
            errs.push(FieldError::required(
                vp.clone(),
                "must specify a volume type",
            ));
        }
        for (source, field) in [
            ("secret", "secretName"),
            ("configMap", "name"),
            ("persistentVolumeClaim", "claimName"),
        ] {
            if v[source].is_object() && v[source][field].as_str().is_none_or(str::is_empty) {
                errs.push(FieldError::required(format!("{vp}.{source}.{field}"), ""));
            }
        }
    }
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    if containers.is_empty() {
        errs.push(FieldError::required(format!("{path}.containers"), ""));
    }
    let mut names = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let cp = format!("{path}.containers[{i}]");
        match c["name"].as_str() {
            None | Some("") => errs.push(FieldError::required(format!("{cp}.name"), "")),
            Some(n) if !names.insert(n.to_string()) => {
                errs.push(FieldError::duplicate(format!("{cp}.name"), json!(n)))
            }
            Some(n) => errs.extend(validate_name(n, NameRule::Label, &format!("{cp}.name"))),
        }
        if c["image"].as_str().is_none_or(|s| s.trim().is_empty()) {
            errs.push(FieldError::required(format!("{cp}.image"), ""));
        }
        for (j, p) in c["ports"].as_array().into_iter().flatten().enumerate() {
            errs.extend(port_errors(
                &p["containerPort"],
                &format!("{cp}.ports[{j}].containerPort"),
            ));
            if let Some(name) = p["name"].as_str() {
                for msg in port_name_errors(name) {
                    errs.push(FieldError::invalid(
                        format!("{cp}.ports[{j}].name"),
                        json!(name),
                        msg,
                    ));
                }
            }
        }
        for (j, m) in c["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let name = m["name"].as_str().unwrap_or_default();
            if !volumes.contains(name) {
                errs.push(FieldError::not_found(
                    format!("{cp}.volumeMounts[{j}].name"),
                    json!(name),
                ));
            }
            if m["mountPath"].as_str().is_none_or(str::is_empty) {
                errs.push(FieldError::required(
                    format!("{cp}.volumeMounts[{j}].mountPath"),
                    "",
                ));
            }
        }
        for (j, e) in c["env"].as_array().into_iter().flatten().enumerate() {
            let ep = format!("{cp}.env[{j}]");
            match e["name"].as_str() {
                None | Some("") => errs.push(FieldError::required(format!("{ep}.name"), "")),
                // Relaxed environment variable names (GA since 1.34): printable ASCII but '='.
                Some(n) if !n.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b'=') => errs.push(FieldError::invalid(
                    format!("{ep}.name"),
                    json!(n),
                    "a valid environment variable name must consist only of printable ASCII characters other than '='",
                )),
                Some(_) => {}
            }
            let from = &e["valueFrom"];
            if from.is_object() && e["value"].as_str().is_some_and(|v| !v.is_empty()) {
                errs.push(FieldError::invalid(
                    format!("{ep}.valueFrom"),
                    json!(""),
                    "may not be specified when `value` is not empty",
                ));
            }
            for selector in ["secretKeyRef", "configMapKeyRef"] {
                if from[selector].is_object() {
                    for field in ["name", "key"] {
                        if from[selector][field].as_str().is_none_or(str::is_empty) {
                            errs.push(FieldError::required(
                                format!("{ep}.valueFrom.{selector}.{field}"),
                                "",
                            ));
                        }
                    }
                }
            }
        }
        resources(c, &cp, errs);
    }
    let restart = spec["restartPolicy"].as_str().unwrap_or("Always");
    if !["Always", "OnFailure", "Never"].contains(&restart) {
        errs.push(FieldError::not_supported(
            format!("{path}.restartPolicy"),
            json!(restart),
            &["Always", "OnFailure", "Never"],
        ));
    }
}

/// The pod fields that may change after creation; everything else in spec is immutable.
fn mutable_pod_view(spec: &Value) -> Value {
    let mut s = spec.clone();
    if let Some(o) = s.as_object_mut() {
        o.remove("activeDeadlineSeconds");
        o.remove("tolerations");
        o.remove("terminationGracePeriodSeconds");
        for list in ["containers", "initContainers"] {
            if let Some(cs) = o.get_mut(list).and_then(Value::as_array_mut) {
                for c in cs {
                    if let Some(c) = c.as_object_mut() {
                        c.remove("image");
                    }
                }
            }
        }
    }
    s
}

pub fn pod_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    if mutable_pod_view(&new["spec"]) != mutable_pod_view(&old["spec"]) {
        errs.push(FieldError::forbidden(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        ));
    }
}

fn service(svc: &Value, errs: &mut Vec<FieldError>) {
    let spec = &svc["spec"];
    let svc_type = spec["type"].as_str().unwrap_or("ClusterIP");
    const TYPES: &[&str] = &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];
    if !TYPES.contains(&svc_type) {
        errs.push(FieldError::not_supported(
            "spec.type",
            json!(svc_type),
            TYPES,
        ));
    }
    let ports = spec["ports"].as_array().cloned().unwrap_or_default();
    let headless = spec["clusterIP"].as_str() == Some("None");
    if ports.is_empty() && svc_type != "ExternalName" && !headless {
        errs.push(FieldError::required("spec.ports", ""));
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = format!("spec.ports[{i}]");
        let name = p["name"].as_str().unwrap_or_default();
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(format!("{pp}.name"), ""));
        } else if !name.is_empty() {
            errs.extend(validate_name(name, NameRule::Label, &format!("{pp}.name")));
            if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(format!("{pp}.name"), json!(name)));
            }
        }
        errs.extend(port_errors(&p["port"], &format!("{pp}.port")));
        match &p["targetPort"] {
            Value::String(t) => {
                for msg in port_name_errors(t) {
                    errs.push(FieldError::invalid(
                        format!("{pp}.targetPort"),
                        json!(t),
                        msg,
                    ));
                }
            }
            Value::Number(_) => {
                errs.extend(port_errors(&p["targetPort"], &format!("{pp}.targetPort")))
            }
            _ => {}
        }
        let proto = p["protocol"].as_str().unwrap_or("TCP");
        if !["TCP", "UDP", "SCTP"].contains(&proto) {
            errs.push(FieldError::not_supported(
                format!("{pp}.protocol"),
                json!(proto),
                &["SCTP", "TCP", "UDP"],
            ));
        }
        if p["nodePort"].as_i64().is_some_and(|n| n != 0) && svc_type == "ClusterIP" {
            errs.push(FieldError::forbidden(
                format!("{pp}.nodePort"),
                "may not be used when `type` is 'ClusterIP'",
            ));
        }
    }
}

fn selector_matches_template(kind: &str, obj: &Value, errs: &mut Vec<FieldError>) {
    let sel = &obj["spec"]["selector"];
    if !sel.is_object() {
        errs.push(FieldError::required("spec.selector", ""));
        return;
    }
    let selector = LabelSelector::from_object(sel);
    if selector.is_empty() {
        // ReplicaSets share the Deployment wording in the apiserver's validation.
        let noun = if kind == "StatefulSet" {
            "statefulset"
        } else {
            "deployment"
        };
        errs.push(FieldError::invalid(
            "spec.selector",
            sel.clone(),
            format!("empty selector is invalid for {noun}"),
        ));
        return;
    }
    let labels: BTreeMap<String, String> = crate::selectors::labels_of(&obj["spec"]["template"]);
    if !selector.matches_labels(&labels) {
        // The labels map is the bad value, which the apiserver prints as JSON.
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            json!(labels),
            "`selector` does not match template `labels`",
        ));
    }
}

fn config_keys(obj: &Value, field: &str, errs: &mut Vec<FieldError>) {
    for k in obj[field].as_object().into_iter().flatten().map(|(k, _)| k) {
        let ok = !k.is_empty()
            && k.len() <= 253
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !ok {
            errs.push(FieldError::invalid(
                format!("{field}[{k}]"),
                json!(k),
                CONFIG_KEY_MSG,
            ));
        }
    }
}

fn strings_of(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

/// An RBAC rule: verbs, and either resources with their groups or non-resource URLs.
fn policy_rule(rule: &Value, namespaced: bool, path: &str, errs: &mut Vec<FieldError>) {
    if strings_of(&rule["verbs"]).is_empty() {
        errs.push(FieldError::required(
            format!("{path}.verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = strings_of(&rule["nonResourceURLs"]);
    if !urls.is_empty() {
        if namespaced {
            errs.push(FieldError::invalid(
                format!("{path}.nonResourceURLs"),
                json!(urls),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        let resourceful = ["apiGroups", "resources", "resourceNames"]
            .iter()
            .any(|f| !strings_of(&rule[*f]).is_empty());
        if resourceful {
            errs.push(FieldError::invalid(
                format!("{path}.nonResourceURLs"),
                json!(urls),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return;
    }
    if strings_of(&rule["apiGroups"]).is_empty() {
        errs.push(FieldError::required(
            format!("{path}.apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if strings_of(&rule["resources"]).is_empty() {
        errs.push(FieldError::required(
            format!("{path}.resources"),
            "resource rules must supply at least one resource",
        ));
    }
}

/// A binding's subject: a ServiceAccount (in the core group), or a User or Group (in the RBAC group).
fn binding_subject(subject: &Value, in_role_binding: bool, path: &str, errs: &mut Vec<FieldError>) {
    let name = subject["name"].as_str().unwrap_or_default();
    if name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    }
    let group = subject["apiGroup"].as_str().unwrap_or_default();
    match subject["kind"].as_str().unwrap_or_default() {
        "ServiceAccount" => {
            if !group.is_empty() {
                errs.push(FieldError::not_supported(
                    format!("{path}.apiGroup"),
                    json!(group),
                    &[""],
                ));
            }
            if !in_role_binding && subject["namespace"].as_str().is_none_or(str::is_empty) {
                errs.push(FieldError::required(format!("{path}.namespace"), ""));
            }
        }
        "User" | "Group" => {
            if group != "rbac.authorization.k8s.io" {
                errs.push(FieldError::not_supported(
                    format!("{path}.apiGroup"),
                    json!(group),
                    &["rbac.authorization.k8s.io"],
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            format!("{path}.kind"),
            json!(other),
            &["ServiceAccount", "User", "Group"],
        )),
    }
}

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// A claim needs access modes and a storage request; after creation only its requests (and volume
/// attributes class) may change, and the binder may fill in the volume name.
fn persistent_volume_claim(pvc: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let spec = &pvc["spec"];
    let modes = spec["accessModes"].as_array().cloned().unwrap_or_default();
    if modes.is_empty() && spec["dataSource"].is_null() && spec["dataSourceRef"].is_null() {
        errs.push(FieldError::required(
            "spec.accessModes",
            "at least 1 access mode is required",
        ));
    }
    for m in &modes {
        if !m.as_str().is_some_and(|m| ACCESS_MODES.contains(&m)) {
            errs.push(FieldError::not_supported(
                "spec.accessModes",
                m.clone(),
                ACCESS_MODES,
            ));
        }
    }
    if spec["resources"]["requests"]["storage"].is_null() {
        errs.push(FieldError::required("spec.resources[storage]", ""));
    }
    if let Some(old) = old {
        let comparable = |s: &Value, volume_name: &Value| {
            let mut s = s.clone();
            if let Some(o) = s.as_object_mut() {
                o.remove("volumeAttributesClassName");
                if let Some(r) = o.get_mut("resources").and_then(Value::as_object_mut) {
                    r.remove("requests");
                }
                o.insert("volumeName".into(), volume_name.clone());
            }
            s
        };
        // The binder may set the volume name of a claim that had none.
        let volume_name = if old["spec"]["volumeName"].as_str().is_none_or(str::is_empty) {
            spec["volumeName"].clone()
        } else {
            old["spec"]["volumeName"].clone()
        };
        if comparable(spec, &spec["volumeName"]) != comparable(&old["spec"], &volume_name) {
            errs.push(FieldError::forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
            ));
        }
    }
}

/// Kind-specific checks. `old` is the stored object on update.
pub fn validate(group: &str, kind: &str, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = object_meta(obj, name_rule(group, kind));
    match (group, kind) {
        ("", "Pod") => {
            pod_spec(&obj["spec"], "spec", &mut errs);
            if let Some(old) = old {
                pod_update(obj, old, &mut errs);
            }
        }
        ("", "Service") => service(obj, &mut errs),
        ("", "PersistentVolumeClaim") => persistent_volume_claim(obj, old, &mut errs),
        ("", "ConfigMap") => {
            config_keys(obj, "data", &mut errs);
            config_keys(obj, "binaryData", &mut errs);
        }
        ("", "Secret") => config_keys(obj, "data", &mut errs),
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet") => {
            selector_matches_template(kind, obj, &mut errs);
            if kind == "StatefulSet" {
                // The apiserver leaves a StatefulSet's pod template unvalidated (its volumes come partly
                // from volumeClaimTemplates); the pods are validated when they are created.
                if !obj["spec"]["template"]["spec"]["activeDeadlineSeconds"].is_null() {
                    errs.push(FieldError::forbidden(
                        "spec.template.spec.activeDeadlineSeconds",
                        "activeDeadlineSeconds in StatefulSet is not Supported",
                    ));
                }
            } else {
                pod_spec(
                    &obj["spec"]["template"]["spec"],
                    "spec.template.spec",
                    &mut errs,
                );
            }
            let restart = obj["spec"]["template"]["spec"]["restartPolicy"]
                .as_str()
                .unwrap_or("Always");
            if restart != "Always" {
                errs.push(FieldError::not_supported(
                    "spec.template.spec.restartPolicy",
                    json!(restart),
                    &["Always"],
                ));
            }
            if let Some(old) = old
                && old["spec"]["selector"] != obj["spec"]["selector"]
            {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    obj["spec"]["selector"].clone(),
                    "field is immutable",
                ));
            }
        }
        ("batch", "Job") => {
            pod_spec(
                &obj["spec"]["template"]["spec"],
                "spec.template.spec",
                &mut errs,
            );
            let restart = obj["spec"]["template"]["spec"]["restartPolicy"]
                .as_str()
                .unwrap_or_default();
            if restart != "Never" && restart != "OnFailure" {
                errs.push(FieldError::required(
                    "spec.template.spec.restartPolicy",
                    "valid values: \"OnFailure\", \"Never\"",
                ));
            }
        }
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole") => {
            for (i, rule) in obj["rules"].as_array().into_iter().flatten().enumerate() {
                policy_rule(rule, kind == "Role", &format!("rules[{i}]"), &mut errs);
            }
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            for (i, subject) in obj["subjects"].as_array().into_iter().flatten().enumerate() {
                binding_subject(
                    subject,
                    kind == "RoleBinding",
                    &format!("subjects[{i}]"),
                    &mut errs,
                );
            }
            let role_ref = &obj["roleRef"];
            let allowed: &[&str] = if kind == "RoleBinding" {
                &["Role", "ClusterRole"]
            } else {
                &["ClusterRole"]
            };
            let rk = role_ref["kind"].as_str().unwrap_or_default();
            if !allowed.contains(&rk) {
                errs.push(FieldError::not_supported(
                    "roleRef.kind",
                    json!(rk),
                    allowed,
                ));
            }
            if role_ref["apiGroup"].as_str() != Some("rbac.authorization.k8s.io") {
                errs.push(FieldError::not_supported(
                    "roleRef.apiGroup",
                    role_ref["apiGroup"].clone(),
                    &["rbac.authorization.k8s.io"],
                ));
            }
            if role_ref["name"].as_str().is_none_or(str::is_empty) {
                errs.push(FieldError::required("roleRef.name", ""));
            }
            if let Some(old) = old
                && old["roleRef"] != obj["roleRef"]
            {
                errs.push(FieldError::invalid(
                    "roleRef",
                    role_ref.clone(),
                    "cannot change roleRef",
                ));
            }
        }
        _ => {}
    }
    if let Some(old) = old
        && (kind == "ConfigMap" || kind == "Secret")
        && group.is_empty()
        && old["immutable"].as_bool() == Some(true)
    {
        for f in ["data", "binaryData"] {
            if old[f] != obj[f] {
                errs.push(FieldError::forbidden(
                    f,
                    "field is immutable when `immutable` is set",
                ));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(FieldError::message).collect()
    }

    #[test]
    fn names_follow_their_kind() {
        assert!(validate_name("web-1.example", NameRule::Subdomain, "metadata.name").is_none());
        assert!(validate_name("Web", NameRule::Subdomain, "metadata.name").is_some());
        assert!(validate_name("1svc", NameRule::Dns1035, "metadata.name").is_some());
        assert!(validate_name("a.b", NameRule::Label, "metadata.name").is_some());
        assert!(
            validate_name("system:discovery", NameRule::PathSegment, "metadata.name").is_none()
        );
        let e = validate(
            "",
            "Service",
            &json!({"metadata": {"name": "9lives"}, "spec": {"ports": [{"port": 80}]}}),
            None,
        );
        assert_eq!(e.len(), 1);
        assert!(
            e[0].message()
                .starts_with("metadata.name: Invalid value: \"9lives\": a DNS-1035 label")
        );
    }

    #[test]
    fn pods_need_containers_with_images_and_known_volumes() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "", "volumeMounts": [{"name": "data", "mountPath": "/d"}]},
            {"name": "a", "image": "x", "ports": [{"containerPort": 70000}]}
        ]}});
        assert_eq!(
            msgs(&validate("", "Pod", &pod, None)),
            vec![
                "spec.containers[0].image: Required value",
                "spec.containers[0].volumeMounts[0].name: Not found: \"data\"",
                "spec.containers[1].name: Duplicate value: \"a\"",
                "spec.containers[1].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            ]
        );
    }

    #[test]
    fn pod_specs_are_immutable_but_images() {
        let old = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "x"}]}});
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("y");
        assert!(validate("", "Pod", &new, Some(&old)).is_empty());
        new["spec"]["containers"][0]["env"] = json!([{"name": "A", "value": "1"}]);
        let errs = validate("", "Pod", &new, Some(&old));
        assert!(
            errs[0]
                .message()
                .starts_with("spec: Forbidden: pod updates may not change fields")
        );
    }

    #[test]
    fn deployments_selector_must_match_template() {
        let d = json!({"metadata": {"name": "d"}, "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "y"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
        }});
        let errs = validate("apps", "Deployment", &d, None);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .message()
                .ends_with("`selector` does not match template `labels`")
        );
    }

    #[test]
    fn role_ref_cannot_change() {
        let old = json!({"metadata": {"name": "b"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "a"}});
        let mut new = old.clone();
        new["roleRef"]["name"] = json!("b");
        let errs = validate("rbac.authorization.k8s.io", "RoleBinding", &new, Some(&old));
        assert!(errs[0].message().ends_with("cannot change roleRef"));
    }

    #[test]
    fn requests_may_not_exceed_limits() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "x",
            "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]}});
        let errs = validate("", "Pod", &pod, None);
        assert_eq!(
            msgs(&errs),
            vec![
                "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"
            ]
        );
    }
}
