//! Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` asks for, with the columns and
//! cell rules of the apiserver's printers for each built-in kind, and printer columns for custom resources.

use serde_json::{Value, json};

use crate::clock::{age, human_duration, parse, seconds_since};
use crate::jsonpath;
use crate::registry::ResourceType;

/// What each row carries besides its cells (the `includeObject` query parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

struct Column {
    name: &'static str,
    kind: &'static str,
    priority: u8,
}

const fn col(name: &'static str, kind: &'static str, priority: u8) -> Column {
    Column {
        name,
        kind,
        priority,
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn or_none(v: &str) -> String {
    if v.is_empty() {
        "<none>".into()
    } else {
        v.to_string()
    }
}

fn int(v: &Value) -> Value {
    json!(v.as_i64().unwrap_or(0))
}

fn created(o: &Value) -> &str {
    s(&o["metadata"]["creationTimestamp"])
}

fn containers_and_images(template_spec: &Value) -> (String, String) {
    let cs = template_spec["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = cs.iter().map(|c| s(&c["name"])).collect();
    let images: Vec<&str> = cs.iter().map(|c| s(&c["image"])).collect();
    (names.join(","), images.join(","))
}

/// A workload's selector as kubectl's printers show it (metav1.FormatLabelSelector).
fn selector_text(sel: &Value) -> String {
    match crate::selectors::selector_text(sel) {
        t if t.is_empty() => "<none>".into(),
        t => t,
    }
}

fn map_selector_text(sel: &Value) -> String {
    let parts: Vec<String> = sel
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", s(v)))
        .collect();
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

/// The STATUS, READY and RESTARTS of a pod, by kubectl's printPod rules.
fn pod_cells(p: &Value) -> Vec<Value> {
    let phase = s(&p["status"]["phase"]);
    let mut reason = if s(&p["status"]["reason"]).is_empty() {
        phase.to_string()
    } else {
        s(&p["status"]["reason"]).to_string()
    };
    let total = p["spec"]["containers"].as_array().map_or(0, Vec::len);
    let mut ready = 0;
    let mut restarts = 0;
    let mut last_restart: Option<String> = None;
    let mut has_running = false;
    let statuses = p["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for c in statuses.iter().rev() {
        restarts += c["restartCount"].as_i64().unwrap_or(0);
        if let Some(t) = c["lastState"]["terminated"]["finishedAt"].as_str()
            && last_restart.as_deref().is_none_or(|l| parse(l) < parse(t))
        {
            last_restart = Some(t.to_string());
        }
        let state = &c["state"];
        if !s(&state["waiting"]["reason"]).is_empty() {
            reason = s(&state["waiting"]["reason"]).to_string();
        } else if !s(&state["terminated"]["reason"]).is_empty() {
            reason = s(&state["terminated"]["reason"]).to_string();
        } else if state["terminated"].is_object() {
            reason = match state["terminated"]["signal"].as_i64() {
                Some(sig) if sig != 0 => format!("Signal:{sig}"),
                _ => format!(
                    "ExitCode:{}",
                    state["terminated"]["exitCode"].as_i64().unwrap_or(0)
                ),
            };
        } else if c["ready"].as_bool() == Some(true) && state["running"].is_object() {
            has_running = true;
            ready += 1;
        }
    }
    if reason == "Completed" && has_running {
        let ready_cond = p["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        reason = if ready_cond {
            "Running".into()
        } else {
            "NotReady".into()
        };
    }
    let terminal = phase == "Succeeded" || phase == "Failed";
    if p["metadata"]["deletionTimestamp"].is_string() {
        if s(&p["status"]["reason"]) == "NodeLost" {
            reason = "Unknown".into();
        } else if !terminal {
            reason = "Terminating".into();
        }
    }
    let restarts_text = match (&last_restart, restarts) {
        (Some(t), r) if r != 0 => format!("{r} ({} ago)", age(t)),
        _ => restarts.to_string(),
    };
    vec![
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_text),
        json!(age(created(p))),
        json!(or_none(s(&p["status"]["podIP"]))),
        json!(or_none(s(&p["spec"]["nodeName"]))),
        json!(or_none(s(&p["status"]["nominatedNodeName"]))),
        json!("<none>"),
    ]
}

fn service_cells(svc: &Value) -> Vec<Value> {
    let spec = &svc["spec"];
    let svc_type = s(&spec["type"]);
    let cluster_ip = match s(&spec["clusterIP"]) {
        "" => "<none>".to_string(),
        ip => ip.to_string(),
    };
    let mut external: Vec<String> = spec["externalIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| s(v).to_string())
        .collect();
    if svc_type == "LoadBalancer" {
        let ingress: Vec<String> = svc["status"]["loadBalancer"]["ingress"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                if i["ip"].is_string() {
                    s(&i["ip"]).to_string()
                } else {
                    s(&i["hostname"]).to_string()
                }
            })
            .collect();
        external.extend(ingress);
    }
    let external_text = if !external.is_empty() {
        external.join(",")
    } else if svc_type == "LoadBalancer" {
        "<pending>".into()
    } else if svc_type == "ExternalName" {
        s(&spec["externalName"]).to_string()
    } else {
        "<none>".into()
    };
    let ports: Vec<String> = spec["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let proto = s(&p["protocol"]);
            match p["nodePort"].as_i64() {
                Some(np) if np != 0 => format!("{}:{np}/{proto}", p["port"]),
                _ => format!("{}/{proto}", p["port"]),
            }
        })
        .collect();
    vec![
        json!(svc_type),
        json!(cluster_ip),
        json!(external_text),
        json!(if ports.is_empty() {
            "<none>".to_string()
        } else {
            ports.join(",")
        }),
        json!(age(created(svc))),
        json!(map_selector_text(&spec["selector"])),
    ]
}

fn job_status(j: &Value) -> &'static str {
    let conds = j["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let has = |t: &str| {
        conds
            .iter()
            .any(|c| c["type"] == t && c["status"] == "True")
    };
    if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

fn event_object(e: &Value) -> String {
    let io = &e["involvedObject"];
    format!("{}/{}", s(&io["kind"]).to_lowercase(), s(&io["name"]))
}

fn event_last_seen(e: &Value) -> String {
    for field in ["lastTimestamp", "eventTime", "firstTimestamp"] {
        if let Some(t) = e[field].as_str() {
            return age(t);
        }
    }
    age(created(e))
}

fn node_status(n: &Value) -> String {
    let ready = n["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .map(|c| {
            if c["status"] == "True" {
                "Ready"
            } else {
                "NotReady"
            }
        })
        .unwrap_or("Unknown");
    if n["spec"]["unschedulable"].as_bool() == Some(true) {
        format!("{ready},SchedulingDisabled")
    } else {
        ready.to_string()
    }
}

fn node_roles(n: &Value) -> String {
    let roles: Vec<&str> = n["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/"))
        .collect();
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}

fn subjects_of(b: &Value, kind: &str) -> String {
    let names: Vec<String> = b["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|x| x["kind"] == kind)
        .map(|x| {
            if kind == "ServiceAccount" {
                format!("{}/{}", s(&x["namespace"]), s(&x["name"]))
            } else {
                s(&x["name"]).to_string()
            }
        })
        .collect();
    names.join(", ")
}

/// Columns (after Name) and cells for a built-in kind.
fn built_in(kind: &str, o: &Value) -> Option<(Vec<Column>, Vec<Value>)> {
    let st = &o["status"];
    let spec = &o["spec"];
    let a = json!(age(created(o)));
    let row = match kind {
        "Pod" => (
            vec![
                col("Ready", "string", 0),
                col("Status", "string", 0),
                col("Restarts", "string", 0),
                col("Age", "string", 0),
                col("IP", "string", 1),
                col("Node", "string", 1),
                col("Nominated Node", "string", 1),
                col("Readiness Gates", "string", 1),
            ],
            pod_cells(o),
        ),
        "Service" => (
            vec![
                col("Type", "string", 0),
                col("Cluster-IP", "string", 0),
                col("External-IP", "string", 0),
                col("Port(s)", "string", 0),
                col("Age", "string", 0),
                col("Selector", "string", 1),
            ],
            service_cells(o),
        ),
        "Deployment" => {
            let (c, i) = containers_and_images(&spec["template"]["spec"]);
            (
                vec![
                    col("Ready", "string", 0),
                    col("Up-to-date", "integer", 0),
                    col("Available", "integer", 0),
                    col("Age", "string", 0),
                    col("Containers", "string", 1),
                    col("Images", "string", 1),
                    col("Selector", "string", 1),
                ],
                vec![
                    json!(format!(
                        "{}/{}",
                        st["readyReplicas"].as_i64().unwrap_or(0),
                        spec["replicas"].as_i64().unwrap_or(0)
                    )),
                    int(&st["updatedReplicas"]),
                    int(&st["availableReplicas"]),
                    a,
                    json!(c),
                    json!(i),
                    json!(selector_text(&spec["selector"])),
                ],
            )
        }
        "ReplicaSet" => {
            let (c, i) = containers_and_images(&spec["template"]["spec"]);
            (
                vec![
                    col("Desired", "integer", 0),
                    col("Current", "integer", 0),
                    col("Ready", "integer", 0),
                    col("Age", "string", 0),
                    col("Containers", "string", 1),
                    col("Images", "string", 1),
                    col("Selector", "string", 1),
                ],
                vec![
                    int(&spec["replicas"]),
                    int(&st["replicas"]),
                    int(&st["readyReplicas"]),
                    a,
                    json!(c),
                    json!(i),
                    json!(selector_text(&spec["selector"])),
                ],
            )
        }
        "StatefulSet" => {
            let (c, i) = containers_and_images(&spec["template"]["spec"]);
            (
                vec![
                    col("Ready", "string", 0),
                    col("Age", "string", 0),
                    col("Containers", "string", 1),
                    col("Images", "string", 1),
                ],
                vec![
                    json!(format!(
                        "{}/{}",
                        st["readyReplicas"].as_i64().unwrap_or(0),
                        spec["replicas"].as_i64().unwrap_or(0)
                    )),
                    a,
                    json!(c),
                    json!(i),
                ],
            )
        }
        "Job" => {
            let (c, i) = containers_and_images(&spec["template"]["spec"]);
            let duration = match (st["startTime"].as_str(), st["completionTime"].as_str()) {
                (Some(start), Some(end)) => match (parse(start), parse(end)) {
                    (Some(a), Some(b)) => human_duration(b.as_second() - a.as_second()),
                    _ => String::new(),
                },
                (Some(start), None) => seconds_since(start).map(human_duration).unwrap_or_default(),
                _ => String::new(),
            };
            (
                vec![
                    col("Status", "string", 0),
                    col("Completions", "string", 0),
                    col("Duration", "string", 0),
                    col("Age", "string", 0),
                    col("Containers", "string", 1),
                    col("Images", "string", 1),
                    col("Selector", "string", 1),
                ],
                vec![
                    json!(job_status(o)),
                    json!(format!(
                        "{}/{}",
                        st["succeeded"].as_i64().unwrap_or(0),
                        spec["completions"].as_i64().unwrap_or(1)
                    )),
                    json!(duration),
                    a,
                    json!(c),
                    json!(i),
                    json!(selector_text(&spec["selector"])),
                ],
            )
        }
        "ConfigMap" => {
            let n = o["data"].as_object().map_or(0, |m| m.len())
                + o["binaryData"].as_object().map_or(0, |m| m.len());
            (
                vec![col("Data", "integer", 0), col("Age", "string", 0)],
                vec![json!(n), a],
            )
        }
        "Secret" => {
            let n = o["data"].as_object().map_or(0, |m| m.len());
            (
                vec![
                    col("Type", "string", 0),
                    col("Data", "integer", 0),
                    col("Age", "string", 0),
                ],
                vec![json!(s(&o["type"])), json!(n), a],
            )
        }
        "ServiceAccount" => (
            vec![col("Secrets", "integer", 0), col("Age", "string", 0)],
            vec![json!(o["secrets"].as_array().map_or(0, Vec::len)), a],
        ),
        "PersistentVolumeClaim" => {
            let modes: Vec<&str> = st["accessModes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(s)
                .map(|m| match m {
                    "ReadWriteOnce" => "RWO",
                    "ReadOnlyMany" => "ROX",
                    "ReadWriteMany" => "RWX",
                    "ReadWriteOncePod" => "RWOP",
                    other => other,
                })
                .collect();
            (
                vec![
                    col("Status", "string", 0),
                    col("Volume", "string", 0),
                    col("Capacity", "string", 0),
                    col("Access Modes", "string", 0),
                    col("StorageClass", "string", 0),
                    col("VolumeAttributesClass", "string", 0),
                    col("Age", "string", 0),
                    col("VolumeMode", "string", 1),
                ],
                vec![
                    json!(s(&st["phase"])),
                    json!(s(&spec["volumeName"])),
                    json!(s(&st["capacity"]["storage"])),
                    json!(modes.join(",")),
                    json!(s(&spec["storageClassName"])),
                    json!("<unset>"),
                    a,
                    json!(s(&spec["volumeMode"])),
                ],
            )
        }
        "Namespace" => (
            vec![col("Status", "string", 0), col("Age", "string", 0)],
            vec![json!(s(&st["phase"])), a],
        ),
        "Node" => {
            let ip = |t: &str| {
                st["addresses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|x| x["type"] == t)
                    .map(|x| s(&x["address"]).to_string())
                    .unwrap_or_else(|| "<none>".into())
            };
            let info = &st["nodeInfo"];
            (
                vec![
                    col("Status", "string", 0),
                    col("Roles", "string", 0),
                    col("Age", "string", 0),
                    col("Version", "string", 0),
                    col("Internal-IP", "string", 1),
                    col("External-IP", "string", 1),
                    col("OS-Image", "string", 1),
                    col("Kernel-Version", "string", 1),
                    col("Container-Runtime", "string", 1),
                ],
                vec![
                    json!(node_status(o)),
                    json!(node_roles(o)),
                    a,
                    json!(s(&info["kubeletVersion"])),
                    json!(ip("InternalIP")),
                    json!(ip("ExternalIP")),
                    json!(s(&info["osImage"])),
                    json!(s(&info["kernelVersion"])),
                    json!(s(&info["containerRuntimeVersion"])),
                ],
            )
        }
        "Endpoints" => {
            let mut eps = Vec::new();
            for subset in o["subsets"].as_array().into_iter().flatten() {
                for addr in subset["addresses"].as_array().into_iter().flatten() {
                    for port in subset["ports"].as_array().into_iter().flatten() {
                        eps.push(format!("{}:{}", s(&addr["ip"]), port["port"]));
                    }
                }
            }
            (
                vec![col("Endpoints", "string", 0), col("Age", "string", 0)],
                vec![json!(or_none(&eps.join(","))), a],
            )
        }
        "Event" => (
            vec![
                col("Last Seen", "string", 0),
                col("Type", "string", 0),
                col("Reason", "string", 0),
                col("Object", "string", 0),
                col("Message", "string", 0),
            ],
            vec![
                json!(event_last_seen(o)),
                json!(s(&o["type"])),
                json!(s(&o["reason"])),
                json!(event_object(o)),
                json!(s(&o["message"])),
            ],
        ),
        "RoleBinding" | "ClusterRoleBinding" => (
            vec![
                col("Role", "string", 0),
                col("Age", "string", 0),
                col("Users", "string", 1),
                col("Groups", "string", 1),
                col("ServiceAccounts", "string", 1),
            ],
            vec![
                json!(format!(
                    "{}/{}",
                    s(&o["roleRef"]["kind"]),
                    s(&o["roleRef"]["name"])
                )),
                a,
                json!(subjects_of(o, "User")),
                json!(subjects_of(o, "Group")),
                json!(subjects_of(o, "ServiceAccount")),
            ],
        ),
        "Lease" => (
            vec![col("Holder", "string", 0), col("Age", "string", 0)],
            vec![json!(s(&spec["holderIdentity"])), a],
        ),
        "EndpointSlice" => {
            let ports: Vec<String> = o["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p["port"].to_string())
                .collect();
            let addrs: Vec<&str> = o["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|e| e["addresses"].as_array().into_iter().flatten().map(s))
                .collect();
            (
                vec![
                    col("AddressType", "string", 0),
                    col("Ports", "string", 0),
                    col("Endpoints", "string", 0),
                    col("Age", "string", 0),
                ],
                vec![
                    json!(s(&o["addressType"])),
                    json!(or_none(&ports.join(","))),
                    json!(or_none(&addrs.join(","))),
                    a,
                ],
            )
        }
        _ => return None,
    };
    Some(row)
}

/// A printer column's cell as the apiextensions table converter makes it: the first JSONPath result,
/// printed as text for string columns and converted by type otherwise (null when the types disagree).
fn custom_resource_cell(kind: &str, found: Option<&Value>) -> Value {
    let Some(v) = found.filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match (kind, v) {
        ("string", Value::String(x)) => json!(x),
        ("string", other) => json!(other.to_string()),
        ("integer", Value::Number(n)) => n
            .as_i64()
            .map(|i| json!(i))
            .or_else(|| n.as_f64().map(|f| json!(f as i64)))
            .unwrap_or(Value::Null),
        ("number", Value::Number(n)) => n.as_f64().map(|f| json!(f)).unwrap_or(Value::Null),
        ("boolean", Value::Bool(b)) => json!(b),
        ("date", Value::String(t)) => match parse(t) {
            Some(_) => json!(age(t)),
            None => json!("<invalid>"),
        },
        _ => Value::Null,
    }
}

fn custom_resource_cells(columns: &[Value], o: &Value) -> (Vec<Value>, Vec<Value>) {
    let mut defs = Vec::new();
    let mut cells = Vec::new();
    for c in columns {
        let kind = s(&c["type"]);
        let path = s(&c["jsonPath"]);
        let description = match s(&c["description"]) {
            "" => format!("Custom resource definition column (in JSONPath format): {path}"),
            d => d.to_string(),
        };
        defs.push(json!({
            "name": s(&c["name"]),
            "type": kind,
            "format": s(&c["format"]),
            "description": description,
            "priority": c["priority"].as_i64().unwrap_or(0),
        }));
        let found = jsonpath::find(o, path).unwrap_or_default();
        cells.push(custom_resource_cell(kind, found.first().copied()));
    }
    (defs, cells)
}

fn row_object(o: &Value, include: IncludeObject) -> Option<Value> {
    match include {
        IncludeObject::None => None,
        IncludeObject::Object => Some(o.clone()),
        IncludeObject::Metadata => Some(json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": o["metadata"],
        })),
    }
}

/// A Table of `objects`. `with_columns` is false for the later events of a watch, which carry rows only.
pub fn table(
    rt: &ResourceType,
    objects: &[Value],
    include: IncludeObject,
    with_columns: bool,
    metadata: Value,
) -> Value {
    let name_col = json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0});
    let mut columns: Option<Vec<Value>> = None;
    let mut rows = Vec::new();
    for o in objects {
        let (defs, cells) = if let Some(crd) = &rt.crd {
            custom_resource_cells(&crd.printer_columns, o)
        } else if let Some((cols, cells)) = built_in(&rt.kind, o) {
            let defs = cols
                .iter()
                .map(|c| json!({"name": c.name, "type": c.kind, "format": "", "description": "", "priority": c.priority}))
                .collect();
            (defs, cells)
        } else {
            (
                vec![
                    json!({"name": "Created At", "type": "date", "format": "", "description": "", "priority": 0}),
                ],
                vec![json!(created(o))],
            )
        };
        columns.get_or_insert(defs);
        let mut all_cells = vec![json!(s(&o["metadata"]["name"]))];
        all_cells.extend(cells);
        let mut row = json!({"cells": all_cells});
        if let Some(obj) = row_object(o, include) {
            row["object"] = obj;
        }
        rows.push(row);
    }
    let columns = columns.unwrap_or_else(|| {
        // An empty list still needs its column headers; build them from an empty object.
        let empty = json!({"metadata": {}});
        if let Some(crd) = &rt.crd {
            custom_resource_cells(&crd.printer_columns, &empty).0
        } else if let Some((cols, _)) = built_in(&rt.kind, &empty) {
            cols.iter()
                .map(|c| json!({"name": c.name, "type": c.kind, "format": "", "description": "", "priority": c.priority}))
                .collect()
        } else {
            vec![json!({"name": "Created At", "type": "date", "format": "", "description": "", "priority": 0})]
        }
    });
    let mut all_columns = vec![name_col];
    all_columns.extend(columns);
    let mut t = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "rows": rows,
    });
    if with_columns {
        t["columnDefinitions"] = json!(all_columns);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::now;
    use crate::registry::{Registry, types_of_crd};

    fn pod(status: Value) -> Value {
        json!({
            "metadata": {"name": "web", "creationTimestamp": now()},
            "spec": {"containers": [{"name": "c", "image": "i"}], "nodeName": "node-1"},
            "status": status
        })
    }

    #[test]
    fn pod_rows_follow_kubectl_rules() {
        let r = Registry::default();
        let pods = r.find("", "v1", "pods").unwrap();
        let running = pod(
            json!({"phase": "Running", "podIP": "10.244.0.5", "containerStatuses": [
                {"name": "c", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": now()}}}
            ]}),
        );
        let t = table(&pods, &[running], IncludeObject::Metadata, true, json!({}));
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[0], "web");
        assert_eq!(cells[1], "1/1");
        assert_eq!(cells[2], "Running");
        assert_eq!(cells[3], "0");
        assert_eq!(cells[5], "10.244.0.5");
        assert_eq!(t["columnDefinitions"][1]["name"], "Ready");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");

        let pulling = pod(json!({"phase": "Pending", "containerStatuses": [
            {"name": "c", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ErrImagePull"}}}
        ]}));
        let t = table(&pods, &[pulling], IncludeObject::None, true, json!({}));
        assert_eq!(t["rows"][0]["cells"][1], "0/1");
        assert_eq!(t["rows"][0]["cells"][2], "ErrImagePull");
        assert!(t["rows"][0].get("object").is_none());

        let mut deleting = pod(json!({"phase": "Running"}));
        deleting["metadata"]["deletionTimestamp"] = json!(now());
        let t = table(&pods, &[deleting], IncludeObject::None, false, json!({}));
        assert_eq!(t["rows"][0]["cells"][2], "Terminating");
        assert!(t.get("columnDefinitions").is_none());
    }

    #[test]
    fn node_port_services_show_both_ports() {
        let r = Registry::default();
        let svcs = r.find("", "v1", "services").unwrap();
        let svc = json!({
            "metadata": {"name": "s", "creationTimestamp": now()},
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "ports": [
                {"port": 8888, "nodePort": 31000, "protocol": "TCP"},
                {"port": 4040, "nodePort": 31001, "protocol": "TCP"}
            ]}
        });
        let t = table(&svcs, &[svc], IncludeObject::None, true, json!({}));
        assert_eq!(t["rows"][0]["cells"][1], "NodePort");
        assert_eq!(t["rows"][0]["cells"][3], "<none>");
        assert_eq!(t["rows"][0]["cells"][4], "8888:31000/TCP,4040:31001/TCP");
    }

    #[test]
    fn custom_resources_use_printer_columns() {
        let crd = json!({
            "metadata": {"name": "things.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "things", "kind": "Thing"},
                "versions": [{"name": "v1", "served": true, "storage": true, "additionalPrinterColumns": [
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ]}]}
        });
        let rt = types_of_crd(&crd).remove(0);
        let o = json!({"metadata": {"name": "a", "creationTimestamp": now()}, "spec": {"size": 1}, "status": {"phase": "Running"}});
        let t = table(&rt, &[o], IncludeObject::Metadata, true, json!({}));
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[0], "a");
        assert_eq!(cells[1], "Running");
        assert_eq!(cells[2], 1);
        assert!(cells[3].as_str().unwrap().ends_with('s'));
        let empty = table(&rt, &[], IncludeObject::Metadata, true, json!({}));
        assert_eq!(empty["columnDefinitions"].as_array().unwrap().len(), 4);
    }
}
