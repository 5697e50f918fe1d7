//! Checks an object against its schema before it takes part in an apply (SMD `Validate`).
//!
//! Applied configurations must not contain duplicate list keys; live objects may (they can be
//! created by plain updates), so the caller chooses.

use super::{ValidationErrors, items};
use crate::fieldpath::PathElement;
use crate::gofmt;
use crate::schema::{Scalar, Schema, Shape, TypeRef};
use serde_json::Value;
use std::collections::BTreeSet;

pub(crate) fn validate(
    schema: &Schema,
    tr: &TypeRef,
    value: &Value,
    allow_duplicates: bool,
) -> ValidationErrors {
    Validator {
        schema,
        allow_duplicates,
    }
    .walk(tr, value)
}

struct Validator<'s> {
    schema: &'s Schema,
    allow_duplicates: bool,
}

impl Validator<'_> {
    fn walk(&self, tr: &TypeRef, value: &Value) -> ValidationErrors {
        match self.schema.shape(tr, Some(value)) {
            Shape::Scalar(kind) => validate_scalar(kind, value, ""),
            Shape::List(list) => {
                let Value::Array(items) = value else {
                    return match value {
                        Value::Null => ValidationErrors::default(),
                        other => {
                            ValidationErrors::one(format!("expected list, got {}", go_value(other)))
                        }
                    };
                };
                let mut errs = ValidationErrors::default();
                let mut seen = BTreeSet::new();
                for (i, item) in items.iter().enumerate() {
                    let pe = if list.associative {
                        match items::list_item_element(self.schema, list, item) {
                            Ok(pe) => pe,
                            Err(e) => {
                                // Without an identity nothing deeper can be reported.
                                errs.extend(ValidationErrors::one(format!("element {i}: {e}")));
                                return errs;
                            }
                        }
                    } else {
                        PathElement::Index(i as i64)
                    };
                    if list.associative && !seen.insert(pe.clone()) && !self.allow_duplicates {
                        errs.extend(ValidationErrors::one(format!(
                            "duplicate entries for key {pe}"
                        )));
                    }
                    errs.extend(self.walk(&list.element, item).with_prefix(&pe.to_string()));
                }
                errs
            }
            Shape::Map(map) => {
                let Value::Object(entries) = value else {
                    return match value {
                        Value::Null => ValidationErrors::default(),
                        other => {
                            ValidationErrors::one(format!("expected map, got {}", go_value(other)))
                        }
                    };
                };
                let mut errs = ValidationErrors::default();
                for (key, child) in entries {
                    let prefix = PathElement::field(key.clone()).to_string();
                    if map.find_field(key).is_none() && map.element.is_none() {
                        errs.extend(
                            ValidationErrors::one("field not declared in schema")
                                .with_prefix(&prefix),
                        );
                        break;
                    }
                    errs.extend(self.walk(&map.child_type(key), child).with_prefix(&prefix));
                }
                errs
            }
            Shape::Invalid => {
                ValidationErrors::one("schema error: no type found matching: inlined type")
            }
        }
    }
}

/// How SMD prints a `value.Value` with `%v` (a pointer to a wrapper struct).
fn go_value(v: &Value) -> String {
    format!("&{{{}}}", gofmt::value_v(v))
}

fn validate_scalar(kind: Scalar, value: &Value, prefix: &str) -> ValidationErrors {
    let ok = matches!(
        (kind, value),
        (_, Value::Null)
            | (Scalar::Numeric, Value::Number(_))
            | (Scalar::String, Value::String(_))
            | (Scalar::Boolean, Value::Bool(_))
            | (
                Scalar::Untyped,
                Value::Number(_) | Value::String(_) | Value::Bool(_)
            )
    );
    if ok {
        return ValidationErrors::default();
    }
    let message = match kind {
        Scalar::Numeric => format!(
            "{prefix}expected numeric (int or float), got {}",
            gofmt::type_name(Some(value))
        ),
        Scalar::String => format!(
            "{prefix}expected string, got &value.valueUnstructured{{Value:{}}}",
            gofmt::value_v(value)
        ),
        Scalar::Boolean => format!("{prefix}expected boolean, got {}", go_value(value)),
        Scalar::Untyped => format!("{prefix}expected any scalar, got {}", go_value(value)),
    };
    ValidationErrors::one(message)
}

/// Validation of one side of a merge or comparison: errors only when both sides are invalid.
pub(super) fn scalar_side_ok(kind: Scalar, value: Option<&Value>) -> bool {
    value.is_none_or(|v| validate_scalar(kind, v, "").is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Schema;
    use serde_json::json;

    #[test]
    fn duplicate_keys_are_reported_with_their_path() {
        let schema = Schema::builtin("apps", "v1", "Deployment");
        let config = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "c", "env": [{"name": "FOO", "value": "x"}, {"name": "FOO", "value": "y"}]}
        ]}}}});
        let errs = validate(&schema, &schema.root, &config, false);
        assert_eq!(
            errs.to_string(),
            r#".spec.template.spec.containers[name="c"].env: duplicate entries for key [name="FOO"]"#
        );
        assert!(validate(&schema, &schema.root, &config, true).is_empty());
    }

    #[test]
    fn missing_keys_are_reported() {
        let schema = Schema::builtin("", "v1", "Pod");
        let config = json!({"spec": {"containers": [{"image": "nginx"}]}});
        let errs = validate(&schema, &schema.root, &config, false);
        assert_eq!(
            errs.to_string(),
            r#".spec.containers: element 0: associative list with keys has an element that omits all key fields ["name"] (and doesn't have default values for any key fields)"#
        );
    }
}
