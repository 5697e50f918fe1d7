//! Label and field selectors, with the syntax and the per-resource field sets of the real apiserver.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum LabelOp {
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

/// A parsed label selector: every requirement must hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector {
    requirements: Vec<(String, LabelOp)>,
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn parse_set(s: &str) -> Result<Vec<String>, String> {
    let inner = s
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            format!("unable to parse requirement: expected a set in parentheses, found '{s}'")
        })?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let req = if let Some(key) = part.strip_prefix('!') {
                (key.trim().to_string(), LabelOp::DoesNotExist)
            } else if let Some((k, v)) = part.split_once("!=") {
                (
                    k.trim().to_string(),
                    LabelOp::NotEquals(v.trim().to_string()),
                )
            } else if let Some((k, v)) = part.split_once("==") {
                (k.trim().to_string(), LabelOp::Equals(v.trim().to_string()))
            } else if let Some((k, v)) = part.split_once('=') {
                (k.trim().to_string(), LabelOp::Equals(v.trim().to_string()))
            } else if let Some((k, set)) = part.split_once(" notin ") {
                (k.trim().to_string(), LabelOp::NotIn(parse_set(set)?))
            } else if let Some((k, set)) = part.split_once(" in ") {
                (k.trim().to_string(), LabelOp::In(parse_set(set)?))
            } else if part.contains(char::is_whitespace) || part.contains(['(', ')']) {
                return Err(format!("unable to parse requirement: found '{part}'"));
            } else {
                (part.to_string(), LabelOp::Exists)
            };
            if req.0.is_empty() {
                return Err(format!(
                    "unable to parse requirement: empty key in '{part}'"
                ));
            }
            requirements.push(req);
        }
        Ok(LabelSelector { requirements })
    }

    /// A `metav1.LabelSelector` object (matchLabels and matchExpressions), as workloads carry.
    pub fn from_object(sel: &Value) -> Self {
        let mut requirements = Vec::new();
        if let Some(m) = sel["matchLabels"].as_object() {
            for (k, v) in m {
                requirements.push((
                    k.clone(),
                    LabelOp::Equals(v.as_str().unwrap_or_default().into()),
                ));
            }
        }
        for expr in sel["matchExpressions"].as_array().into_iter().flatten() {
            let key = expr["key"].as_str().unwrap_or_default().to_string();
            let values: Vec<String> = expr["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            let op = match expr["operator"].as_str() {
                Some("In") => LabelOp::In(values),
                Some("NotIn") => LabelOp::NotIn(values),
                Some("Exists") => LabelOp::Exists,
                _ => LabelOp::DoesNotExist,
            };
            requirements.push((key, op));
        }
        LabelSelector { requirements }
    }

    /// A service's `spec.selector` map.
    pub fn from_map(map: &Value) -> Self {
        let requirements = map
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                (
                    k.clone(),
                    LabelOp::Equals(v.as_str().unwrap_or_default().into()),
                )
            })
            .collect();
        LabelSelector { requirements }
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|(k, op)| {
            let v = labels.get(k);
            match op {
                LabelOp::Equals(want) => v == Some(want),
                LabelOp::NotEquals(want) => v != Some(want),
                LabelOp::In(set) => v.is_some_and(|v| set.contains(v)),
                LabelOp::NotIn(set) => v.is_none_or(|v| !set.contains(v)),
                LabelOp::Exists => v.is_some(),
                LabelOp::DoesNotExist => v.is_none(),
            }
        })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.matches_labels(&labels_of(obj))
    }
}

/// A `metav1.LabelSelector` object in the text form the apiserver prints it (`labels.Selector`'s
/// String: requirements sorted by key, set values sorted), as a Scale's status.selector shows it.
pub fn selector_text(sel: &Value) -> String {
    let mut parts: Vec<(String, String)> = Vec::new();
    for (k, v) in sel["matchLabels"].as_object().into_iter().flatten() {
        parts.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or_default())));
    }
    for expr in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = expr["key"].as_str().unwrap_or_default().to_string();
        let mut values: Vec<&str> = expr["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        values.dedup();
        let text = match expr["operator"].as_str() {
            Some("In") => format!("{key} in ({})", values.join(",")),
            Some("NotIn") => format!("{key} notin ({})", values.join(",")),
            Some("Exists") => key.clone(),
            _ => format!("!{key}"),
        };
        parts.push((key, text));
    }
    parts.sort_by(|a, b| a.0.cmp(&b.0));
    parts
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
}

pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// A parsed field selector: `field=value`, `field==value`, `field!=value`, comma-separated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSelector {
    requirements: Vec<(String, bool, String)>,
}

/// The fields a resource can be selected by. Kinds with their own field-label conversion list every field
/// they accept (not always both metadata fields); the others accept the two metadata fields, and word
/// their refusal differently.
enum Selectable {
    Own(&'static [&'static str]),
    MetadataOnly,
}

const META: &[&str] = &["metadata.name", "metadata.namespace"];

fn selectable_fields(group: &str, resource: &str, custom_resource: bool) -> Selectable {
    if custom_resource {
        // Custom resources without selectableFields: the two metadata fields, refused in the
        // apiextensions converter's words.
        return Selectable::Own(META);
    }
    Selectable::Own(match (group, resource) {
        ("", "pods") => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "events") | ("events.k8s.io", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "metadata.namespace",
            "metadata.name",
        ],
        ("", "secrets") => &["type", "metadata.namespace", "metadata.name"],
        ("", "namespaces") => &["status.phase", "metadata.name"],
        ("", "nodes") => &["metadata.name", "spec.unschedulable"],
        ("", "services") => &[
            "metadata.namespace",
            "metadata.name",
            "spec.clusterIP",
            "spec.type",
        ],
        ("apps", "replicasets") => &["metadata.name", "metadata.namespace", "status.replicas"],
        ("batch", "jobs") => &["metadata.name", "metadata.namespace", "status.successful"],
        _ => return Selectable::MetadataOnly,
    })
}

/// The value a field selector compares: JSON scalars as the apiserver's field set renders them.
fn field_value(obj: &Value, field: &str) -> String {
    let v = match field {
        "source" => &obj["source"]["component"],
        // A Job's field is named for its count of succeeded pods.
        "status.successful" => &obj["status"]["succeeded"],
        _ => field.split('.').fold(obj, |v, f| &v[f]),
    };
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        // Unset booleans and counts select as "false" and "0", as the apiserver's field sets render them.
        Value::Null if field == "spec.hostNetwork" || field == "spec.unschedulable" => {
            "false".into()
        }
        Value::Null if field == "status.replicas" || field == "status.successful" => "0".into(),
        _ => String::new(),
    }
}

impl FieldSelector {
    pub fn parse(
        s: &str,
        group: &str,
        resource: &str,
        custom_resource: bool,
    ) -> Result<Self, String> {
        let allowed = selectable_fields(group, resource, custom_resource);
        let mut requirements = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, eq, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                ));
            };
            let field = field.trim();
            // Old clients still send spec.host for a pod's node.
            let field = if field == "spec.host" && resource == "pods" && group.is_empty() {
                "spec.nodeName"
            } else {
                field
            };
            match &allowed {
                Selectable::Own(fields) if !fields.contains(&field) => {
                    return Err(format!("field label not supported: {field}"));
                }
                Selectable::MetadataOnly if !META.contains(&field) => {
                    return Err(format!(
                        "{field:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                    ));
                }
                _ => {}
            }
            requirements.push((field.to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector { requirements })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.requirements
            .iter()
            .all(|(field, eq, want)| (field_value(obj, field) == *want) == *eq)
    }

    /// The name a selector pins, if it pins exactly one (as `kubectl delete --wait` watches do).
    pub fn pinned_name(&self) -> Option<&str> {
        self.requirements
            .iter()
            .find(|(f, eq, _)| f == "metadata.name" && *eq)
            .map(|(_, _, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "labels": labels}, "status": {"phase": "Running"}})
    }

    #[test]
    fn label_selector_syntax() {
        let o = obj(json!({"app": "web", "tier": "front"}));
        let yes = [
            "app=web",
            "app==web",
            "app!=db",
            "app in (web, db)",
            "tier notin (back)",
            "app",
            "!missing",
            "app=web,tier in (front)",
        ];
        for s in yes {
            assert!(
                LabelSelector::parse(s).unwrap().matches(&o),
                "{s} should match"
            );
        }
        let no = [
            "app=db",
            "app notin (web)",
            "missing",
            "!app",
            "app=web,tier=back",
        ];
        for s in no {
            assert!(
                !LabelSelector::parse(s).unwrap().matches(&o),
                "{s} should not match"
            );
        }
        assert!(LabelSelector::parse("app in web").is_err());
    }

    #[test]
    fn selectors_print_sorted_by_key() {
        let sel = serde_json::json!({
            "matchLabels": {"tier": "web", "app": "a"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}, {"key": "zone", "operator": "DoesNotExist"}]
        });
        assert_eq!(
            selector_text(&sel),
            "app=a,env in (dev,prod),tier=web,!zone"
        );
    }

    #[test]
    fn workload_selectors() {
        let sel = LabelSelector::from_object(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]
        }));
        assert!(sel.matches(&obj(json!({"app": "web", "tier": "front"}))));
        assert!(!sel.matches(&obj(json!({"app": "web"}))));
    }

    #[test]
    fn field_selectors_are_limited_per_resource() {
        let o = obj(json!({}));
        let s = FieldSelector::parse("metadata.name=p,status.phase!=Pending", "", "pods", false)
            .unwrap();
        assert!(s.matches(&o));
        assert_eq!(s.pinned_name(), Some("p"));
        assert!(
            !FieldSelector::parse("status.phase=Pending", "", "pods", false)
                .unwrap()
                .matches(&o)
        );
        assert_eq!(
            FieldSelector::parse("status.phase=Running", "", "configmaps", false).unwrap_err(),
            "\"status.phase\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        let ev = json!({"involvedObject": {"name": "x", "uid": "u"}, "source": {"component": "kubelet"}});
        assert!(
            FieldSelector::parse(
                "involvedObject.name=x,involvedObject.uid=u,source=kubelet",
                "",
                "events",
                false
            )
            .unwrap()
            .matches(&ev)
        );
    }
}
