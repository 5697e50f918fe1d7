//! The type model that drives merging: structured-merge-diff's schema atoms plus the
//! strategic-merge-patch metadata (`patchStrategy`/`patchMergeKey`) kept on struct fields.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

/// How lists and maps in an object merge. Built from a CRD's `openAPIV3Schema` or taken from the
/// built-in table for kinds kube-sim serves.
#[derive(Clone, Debug)]
pub struct Schema {
    pub(crate) types: Arc<Types>,
    pub(crate) root: TypeRef,
    /// The kind's Go zero value as the apiserver serialises it; it stands in for the "old"
    /// object on create, which decides where `".": {}` appears in the creator's fields.
    pub(crate) skeleton: Option<Value>,
    /// Nulls in typed objects do not survive the apiserver's conversion to Go structs (built-ins)
    /// or its null pruning (CRD schemas); deduced objects keep them.
    pub(crate) drops_nulls: bool,
    /// The kind's name, when known, to reject applied configurations of another kind.
    pub(crate) kind: Option<String>,
}

/// Named type definitions; recursion goes through names.
#[derive(Debug, Default)]
pub(crate) struct Types {
    defs: HashMap<String, Atom>,
}

pub(crate) const UNTYPED_ATOMIC: &str = "__untyped_atomic_";
pub(crate) const UNTYPED_DEDUCED: &str = "__untyped_deduced_";
/// A struct of the built-in table whose undeclared fields are struct fields of the same open
/// type: maps nest as structs, lists are atomic, scalars are leaves. This is what every Go struct
/// without list/map annotations looks like to structured-merge-diff.
pub(crate) const OPEN_STRUCT: &str = "__open_struct_";

#[derive(Clone, Debug)]
pub(crate) enum TypeRef {
    Named(Arc<str>),
    Inline(Arc<Atom>),
    /// No type: the field is not declared and the map has no element type.
    Missing,
}

impl TypeRef {
    pub(crate) fn named(name: &str) -> TypeRef {
        TypeRef::Named(Arc::from(name))
    }
}

/// The possible shapes of a value at one position (a type may accept several, e.g. untyped).
#[derive(Clone, Debug, Default)]
pub(crate) struct Atom {
    pub scalar: Option<Scalar>,
    pub list: Option<ListDef>,
    pub map: Option<MapDef>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scalar {
    Numeric,
    String,
    Boolean,
    Untyped,
}

#[derive(Clone, Debug)]
pub(crate) struct ListDef {
    pub element: TypeRef,
    /// `false` means atomic: the list is replaced and owned as a whole.
    pub associative: bool,
    /// Key fields of an associative list of maps; empty for a set of scalars.
    pub keys: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct MapDef {
    pub fields: BTreeMap<String, FieldDef>,
    pub element: Option<TypeRef>,
    pub atomic: bool,
    /// Undeclared keys are struct fields of [`OPEN_STRUCT`] type (built-in table only).
    pub open: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct FieldDef {
    pub ty: TypeRef,
    pub default: Option<Value>,
    pub nullable: bool,
    pub smp: Smp,
}

/// Strategic-merge-patch metadata of a struct field (`patchStrategy`, `patchMergeKey`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Smp {
    pub strategy: SmpStrategy,
    pub merge_key: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum SmpStrategy {
    /// Maps merge, lists are replaced.
    #[default]
    Default,
    Merge,
    Replace,
}

/// What a value turned out to be once its type and its actual shape are considered
/// (SMD's `deduceAtom` followed by `handleAtom`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Shape<'a> {
    Scalar(Scalar),
    List(&'a ListDef),
    Map(&'a MapDef),
    /// The type accepts nothing (an undeclared field).
    Invalid,
}

impl Shape<'_> {
    pub(crate) fn same_kind(&self, other: &Shape<'_>) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

impl Atom {
    fn untyped_atomic() -> Atom {
        Atom {
            scalar: Some(Scalar::Untyped),
            list: Some(ListDef {
                element: TypeRef::named(UNTYPED_ATOMIC),
                associative: false,
                keys: vec![],
            }),
            map: Some(MapDef {
                element: Some(TypeRef::named(UNTYPED_ATOMIC)),
                atomic: true,
                ..MapDef::default()
            }),
        }
    }

    fn untyped_deduced() -> Atom {
        Atom {
            map: Some(MapDef {
                element: Some(TypeRef::named(UNTYPED_DEDUCED)),
                ..MapDef::default()
            }),
            ..Atom::untyped_atomic()
        }
    }

    fn open_struct() -> Atom {
        Atom {
            map: Some(MapDef {
                open: true,
                ..MapDef::default()
            }),
            ..Atom::untyped_atomic()
        }
    }

    /// Picks the shape matching `value`, falling back to the type's preferred shape
    /// (map, then scalar, then list) when nothing matches or the value is absent or null.
    pub(crate) fn shape_for(&self, value: Option<&Value>) -> Shape<'_> {
        match value {
            Some(Value::Bool(_) | Value::Number(_) | Value::String(_)) if self.scalar.is_some() => {
                return Shape::Scalar(self.scalar.unwrap_or(Scalar::Untyped));
            }
            Some(Value::Array(_)) if self.list.is_some() => {
                if let Some(l) = &self.list {
                    return Shape::List(l);
                }
            }
            Some(Value::Object(_)) if self.map.is_some() => {
                if let Some(m) = &self.map {
                    return Shape::Map(m);
                }
            }
            _ => {}
        }
        if let Some(m) = &self.map {
            Shape::Map(m)
        } else if let Some(s) = self.scalar {
            Shape::Scalar(s)
        } else if let Some(l) = &self.list {
            Shape::List(l)
        } else {
            Shape::Invalid
        }
    }
}

fn open_field() -> &'static FieldDef {
    static OPEN: OnceLock<FieldDef> = OnceLock::new();
    OPEN.get_or_init(|| FieldDef {
        ty: TypeRef::named(OPEN_STRUCT),
        default: None,
        nullable: false,
        smp: Smp::default(),
    })
}

impl MapDef {
    /// The declared field, or for open structs the implicit one.
    pub(crate) fn find_field(&self, name: &str) -> Option<&FieldDef> {
        match self.fields.get(name) {
            Some(f) => Some(f),
            None if self.open => Some(open_field()),
            None => None,
        }
    }

    /// The type of the value under `name`: its field type, else the element type.
    pub(crate) fn child_type(&self, name: &str) -> TypeRef {
        match self.find_field(name) {
            Some(f) => f.ty.clone(),
            None => self.element.clone().unwrap_or(TypeRef::Missing),
        }
    }
}

impl Types {
    pub(crate) fn with_common() -> Types {
        let mut defs = HashMap::new();
        defs.insert(UNTYPED_ATOMIC.to_string(), Atom::untyped_atomic());
        defs.insert(UNTYPED_DEDUCED.to_string(), Atom::untyped_deduced());
        defs.insert(OPEN_STRUCT.to_string(), Atom::open_struct());
        Types { defs }
    }

    pub(crate) fn insert(&mut self, name: &str, atom: Atom) {
        self.defs.insert(name.to_string(), atom);
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.defs.contains_key(name)
    }

    pub(crate) fn resolve<'a>(&'a self, tr: &'a TypeRef) -> Option<&'a Atom> {
        match tr {
            TypeRef::Named(name) => self.defs.get(&**name),
            TypeRef::Inline(atom) => Some(atom),
            TypeRef::Missing => None,
        }
    }
}

impl Schema {
    /// Schema for a built-in kind served by kube-sim. Unknown kinds get [`Schema::untyped`].
    pub fn builtin(group: &str, version: &str, kind: &str) -> Schema {
        crate::builtin::schema_for(group, version, kind).unwrap_or_else(Schema::untyped)
    }

    /// From a CRD version's `openAPIV3Schema`.
    pub fn from_openapi_v3(schema: &Value) -> Schema {
        crate::openapi::schema_from_openapi_v3(schema)
    }

    /// Every list atomic, every map granular: structured-merge-diff's deduced type.
    pub fn untyped() -> Schema {
        Schema {
            types: Arc::new(Types::with_common()),
            root: TypeRef::named(UNTYPED_DEDUCED),
            skeleton: None,
            drops_nulls: false,
            kind: None,
        }
    }

    pub(crate) fn resolve<'a>(&'a self, tr: &'a TypeRef) -> Option<&'a Atom> {
        self.types.resolve(tr)
    }

    /// The shape of `value` at a position of type `tr`.
    pub(crate) fn shape<'a>(&'a self, tr: &'a TypeRef, value: Option<&Value>) -> Shape<'a> {
        match self.resolve(tr) {
            Some(atom) => atom.shape_for(value),
            None => Shape::Invalid,
        }
    }

    /// The object the apiserver compares against on create.
    pub(crate) fn empty_object(&self) -> Value {
        self.skeleton
            .clone()
            .unwrap_or_else(|| Value::Object(Default::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn untyped_values_pick_their_own_shape() {
        let s = Schema::untyped();
        let tr = s.root.clone();
        assert!(matches!(s.shape(&tr, Some(&json!({}))), Shape::Map(m) if !m.atomic));
        assert!(matches!(s.shape(&tr, Some(&json!([]))), Shape::List(l) if !l.associative));
        assert!(matches!(
            s.shape(&tr, Some(&json!(1))),
            Shape::Scalar(Scalar::Untyped)
        ));
        // Absent and null values take the preferred shape, a map.
        assert!(matches!(s.shape(&tr, None), Shape::Map(_)));
        assert!(matches!(s.shape(&tr, Some(&json!(null))), Shape::Map(_)));
    }
}
