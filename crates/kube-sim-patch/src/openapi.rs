//! Converts a CRD version's `openAPIV3Schema` into a [`Schema`] the way the apiserver does:
//! apiextensions adds `apiVersion`, `kind` and a full `ObjectMeta` for `metadata` (also inside
//! `x-kubernetes-embedded-resource` objects), then kube-openapi's `schemaconv` maps the
//! `x-kubernetes-*` extensions onto structured-merge-diff types.

use crate::builtin;
use crate::schema::{
    Atom, FieldDef, ListDef, MapDef, Scalar, Schema, Smp, SmpStrategy, TypeRef, Types,
    UNTYPED_ATOMIC, UNTYPED_DEDUCED,
};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

pub(crate) fn schema_from_openapi_v3(root: &Value) -> Schema {
    let mut types = Types::with_common();
    builtin::object_meta(&mut types);
    let root_atom = match root.as_object() {
        Some(obj) => {
            let mut with_meta = obj.clone();
            add_type_meta(&mut with_meta);
            convert(&with_meta, false)
        }
        None => Atom::default(),
    };
    types.insert("__root_", root_atom);
    Schema {
        types: Arc::new(types),
        root: TypeRef::named("__root_"),
        skeleton: None,
        drops_nulls: true,
        kind: None,
    }
}

/// `apiVersion`, `kind` and `metadata` are implicit on the root and on embedded resources.
fn add_type_meta(obj: &mut Map<String, Value>) {
    let props = obj
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(props) = props {
        props.insert("apiVersion".into(), serde_json::json!({"type": "string"}));
        props.insert("kind".into(), serde_json::json!({"type": "string"}));
        props.insert("metadata".into(), serde_json::json!({"$ref": "ObjectMeta"}));
    }
}

fn ext_bool(obj: &Map<String, Value>, key: &str) -> bool {
    obj.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// One schema node; `preserve_unknown` is inherited from ancestors, as in `schemaconv`.
fn convert(obj: &Map<String, Value>, preserve_unknown: bool) -> Atom {
    let preserve_unknown =
        preserve_unknown || ext_bool(obj, "x-kubernetes-preserve-unknown-fields");
    let ty = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts.first().and_then(Value::as_str).unwrap_or(""),
        _ => "",
    };
    match ty {
        "object" => Atom {
            map: Some(object(obj, preserve_unknown)),
            ..Atom::default()
        },
        "array" => Atom {
            list: Some(list(obj, preserve_unknown)),
            ..Atom::default()
        },
        "integer" | "number" => scalar(Scalar::Numeric),
        "boolean" => scalar(Scalar::Boolean),
        "string" => match obj.get("format").and_then(Value::as_str).unwrap_or("") {
            "" | "byte" => scalar(Scalar::String),
            _ => scalar(Scalar::Untyped),
        },
        "" => Atom {
            scalar: Some(Scalar::Untyped),
            list: Some(list(obj, preserve_unknown)),
            map: Some(object(obj, preserve_unknown)),
        },
        _ => scalar(Scalar::Untyped),
    }
}

fn scalar(kind: Scalar) -> Atom {
    Atom {
        scalar: Some(kind),
        ..Atom::default()
    }
}

fn type_ref(obj: &Value, preserve_unknown: bool) -> TypeRef {
    match obj {
        Value::Object(o) if o.get("$ref").and_then(Value::as_str) == Some("ObjectMeta") => {
            TypeRef::named("ObjectMeta")
        }
        Value::Object(o) => {
            let mut o = o.clone();
            if ext_bool(&o, "x-kubernetes-embedded-resource") {
                add_type_meta(&mut o);
            }
            TypeRef::Inline(Arc::new(convert(&o, preserve_unknown)))
        }
        _ => TypeRef::Inline(Arc::new(Atom::default())),
    }
}

fn object(obj: &Map<String, Value>, preserve_unknown: bool) -> MapDef {
    let mut fields = BTreeMap::new();
    if let Some(Value::Object(props)) = obj.get("properties") {
        for (name, prop) in props {
            let prop_obj = prop.as_object();
            fields.insert(
                name.clone(),
                FieldDef {
                    ty: type_ref(prop, preserve_unknown),
                    default: prop_obj.and_then(|p| p.get("default")).cloned(),
                    nullable: prop_obj.is_some_and(|p| ext_bool(p, "nullable")),
                    smp: smp(prop_obj),
                },
            );
        }
    }
    let element = match obj.get("additionalProperties") {
        None if preserve_unknown || fields.is_empty() => Some(TypeRef::named(UNTYPED_DEDUCED)),
        None => None,
        Some(Value::Object(schema)) => {
            Some(type_ref(&Value::Object(schema.clone()), preserve_unknown))
        }
        Some(Value::Bool(true)) => Some(TypeRef::named(UNTYPED_DEDUCED)),
        Some(_) => None,
    };
    MapDef {
        fields,
        element,
        atomic: obj.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic"),
        open: false,
    }
}

fn list(obj: &Map<String, Value>, preserve_unknown: bool) -> ListDef {
    let (associative, keys) = match obj.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => (true, vec![]),
        Some("map") => (true, string_list(obj.get("x-kubernetes-list-map-keys"))),
        Some(_) => (false, vec![]),
        // Without a list type a merge patch strategy still makes the list associative.
        None => match obj
            .get("x-kubernetes-patch-strategy")
            .and_then(Value::as_str)
        {
            Some("merge" | "merge,retainKeys") => match obj
                .get("x-kubernetes-patch-merge-key")
                .and_then(Value::as_str)
            {
                Some(key) => (true, vec![key.to_string()]),
                None => (true, vec![]),
            },
            _ => (false, vec![]),
        },
    };
    let element = match obj.get("items") {
        Some(items @ Value::Object(_)) => type_ref(items, preserve_unknown),
        _ => TypeRef::named(UNTYPED_ATOMIC),
    };
    ListDef {
        element,
        associative,
        keys,
    }
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn smp(prop: Option<&Map<String, Value>>) -> Smp {
    let Some(prop) = prop else {
        return Smp::default();
    };
    let strategy = match prop
        .get("x-kubernetes-patch-strategy")
        .and_then(Value::as_str)
    {
        Some(s) if s.split(',').any(|p| p == "merge") => SmpStrategy::Merge,
        Some(s) if s.split(',').any(|p| p == "replace") => SmpStrategy::Replace,
        _ => SmpStrategy::Default,
    };
    Smp {
        strategy,
        merge_key: prop
            .get("x-kubernetes-patch-merge-key")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Shape;
    use serde_json::json;

    #[test]
    fn list_types_and_preserve_unknown_fields_are_honoured() {
        let s = Schema::from_openapi_v3(&json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "items": {
                            "type": "array",
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["name", "port"],
                            "items": {"type": "object", "properties": {
                                "name": {"type": "string"}, "port": {"type": "integer", "default": 80}
                            }}
                        },
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "tags": {"type": "array", "items": {"type": "string"}}
                    }
                }
            }
        }));
        let root = s.resolve(&s.root).unwrap().map.as_ref().unwrap();
        assert!(root.find_field("apiVersion").is_some() && root.find_field("metadata").is_some());
        let spec_tr = root.child_type("spec");
        let Shape::Map(spec) = s.shape(&spec_tr, None) else {
            panic!()
        };
        assert!(
            spec.element.is_none(),
            "declared properties close the object"
        );
        let items_tr = spec.child_type("items");
        let Shape::List(items) = s.shape(&items_tr, Some(&json!([]))) else {
            panic!()
        };
        assert_eq!(items.keys, vec!["name", "port"]);
        let pe = crate::typed::list_item_element(&s, items, &json!({"name": "a"})).unwrap();
        assert_eq!(pe.to_string(), r#"[name="a",port=80]"#);
        let tags_tr = spec.child_type("tags");
        let Shape::List(tags) = s.shape(&tags_tr, Some(&json!([]))) else {
            panic!()
        };
        assert!(!tags.associative, "lists default to atomic");
        let free_tr = spec.child_type("free");
        let Shape::Map(free) = s.shape(&free_tr, Some(&json!({}))) else {
            panic!()
        };
        assert!(free.element.is_some());
    }
}
