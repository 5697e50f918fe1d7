//! SMD `EnsureNamedFieldsAreMembers`: field sets list a struct field only through its contents;
//! pruning needs the struct fields themselves as members so that a field emptied of everything
//! an applier owned can be removed as a whole.

use crate::fieldpath::{PathElement, Set};
use crate::schema::{Schema, TypeRef};

pub(crate) fn ensure_named_fields_are_members(set: &Set, schema: &Schema, tr: &TypeRef) -> Set {
    let atom = schema.resolve(tr);
    let map = atom.and_then(|a| a.map.as_ref());
    let list = atom.and_then(|a| a.list.as_ref());
    let mut out = Set {
        members: set.members.clone(),
        children: Default::default(),
    };
    for (pe, child) in &set.children {
        let child_tr = match (pe, map, list) {
            (PathElement::Field(name), Some(m), _) => {
                if m.find_field(name).is_some() {
                    out.members.insert(pe.clone());
                }
                m.child_type(name)
            }
            (PathElement::Key(_), _, Some(l)) => l.element.clone(),
            _ => TypeRef::Missing,
        };
        out.children.insert(
            pe.clone(),
            ensure_named_fields_are_members(child, schema, &child_tr),
        );
    }
    out
}
