//! events.k8s.io/v1 Events are a second view of core/v1 Events, as in the real apiserver: one storage,
//! with fields renamed between the two versions.

use serde_json::{Map, Value, json};

/// (events.k8s.io/v1 field, core/v1 field)
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(obj: &Value, from_v1: bool, api_version: &str) -> Value {
    let mut out = Map::new();
    for (k, v) in obj.as_object().into_iter().flatten() {
        let renamed = RENAMES.iter().find_map(|(v1, core)| {
            if from_v1 && k == v1 {
                Some(*core)
            } else if !from_v1 && k == core {
                Some(*v1)
            } else {
                None
            }
        });
        out.insert(renamed.unwrap_or(k).to_string(), v.clone());
    }
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!("Event"));
    Value::Object(out)
}

/// An events.k8s.io/v1 Event in core/v1 form, for storage.
pub fn to_core(v1: &Value) -> Value {
    rename(v1, true, "v1")
}

/// A stored core/v1 Event as events.k8s.io/v1 serves it.
pub fn to_v1(core: &Value) -> Value {
    rename(core, false, "events.k8s.io/v1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_round_trip() {
        let v1 = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e"}, "regarding": {"kind": "Pod", "name": "p"},
            "note": "Created pod", "reportingController": "hap-operator", "reason": "Created", "type": "Normal"
        });
        let core = to_core(&v1);
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "Created pod");
        assert_eq!(core["reportingComponent"], "hap-operator");
        assert_eq!(to_v1(&core), v1);
    }
}
