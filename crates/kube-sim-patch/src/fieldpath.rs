//! Field paths and sets of field paths (structured-merge-diff's `fieldpath` package).
//!
//! A [`Set`] is a trie: `members` are the paths that end at this node, `children` the subtrees
//! below it. Both are kept sorted in SMD's path-element order, which drives the order of
//! `fieldsV1` keys and of conflicts in error messages.

use crate::values;
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One step of a path into an object.
#[derive(Clone, Debug)]
pub enum PathElement {
    /// A field of a struct or an entry of a map: `f:<name>`.
    Field(String),
    /// An associative-list item selected by its key fields, sorted by name: `k:{...}`.
    Key(Vec<(String, Value)>),
    /// A set member selected by its value: `v:<json>`.
    Value(Value),
    /// A list item selected by position: `i:<n>`.
    Index(i64),
}

impl PathElement {
    pub fn field(name: impl Into<String>) -> Self {
        PathElement::Field(name.into())
    }

    fn kind_rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.as_bytes().cmp(b.as_bytes()),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b.iter()) {
                    let c = an.as_bytes().cmp(bn.as_bytes());
                    if c != Ordering::Equal {
                        return c;
                    }
                    let c = values::compare(av, bv);
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => values::compare(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.kind_rank().cmp(&other.kind_rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(n, v)| format!("{n}={}", values::to_display(v)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", values::to_display(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the root of an object; displays as the apiserver prints it, e.g.
/// `.spec.template.spec.containers[name="nginx"].image`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Path(pub Vec<PathElement>);

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pe in &self.0 {
            write!(f, "{pe}")?;
        }
        Ok(())
    }
}

impl Path {
    /// A path made of field names only, e.g. `Path::fields(&["spec", "replicas"])`.
    pub fn fields(names: &[&str]) -> Path {
        Path(names.iter().map(|n| PathElement::field(*n)).collect())
    }
}

/// A set of paths, stored as a trie.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Set {
    pub(crate) members: BTreeSet<PathElement>,
    pub(crate) children: BTreeMap<PathElement, Set>,
}

impl Set {
    pub fn new() -> Set {
        Set::default()
    }

    pub fn from_paths<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Set {
        let mut set = Set::new();
        for p in paths {
            set.insert(&p.0);
        }
        set
    }

    /// Adds a path. The empty path (the whole object) is never a member.
    pub fn insert(&mut self, path: &[PathElement]) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut node = self;
        for pe in parents {
            node = node.children.entry(pe.clone()).or_default();
        }
        node.members.insert(last.clone());
    }

    pub fn has(&self, path: &[PathElement]) -> bool {
        let Some((last, parents)) = path.split_last() else {
            return false;
        };
        let mut node = self;
        for pe in parents {
            match node.children.get(pe) {
                Some(child) => node = child,
                None => return false,
            }
        }
        node.members.contains(last)
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(Set::is_empty)
    }

    /// The subtree under `pe`, without the prefix.
    pub fn with_prefix(&self, pe: &PathElement) -> Set {
        self.children.get(pe).cloned().unwrap_or_default()
    }

    pub(crate) fn child(&self, pe: &PathElement) -> Option<&Set> {
        self.children.get(pe)
    }

    pub fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    pub fn intersection(&self, other: &Set) -> Set {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    children.insert(pe.clone(), both);
                }
            }
        }
        Set { members, children }
    }

    /// Paths in `self` not in `other` (a removed member does not take its children with it).
    pub fn difference(&self, other: &Set) -> Set {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            match other.children.get(pe) {
                Some(theirs) => {
                    let rest = child.difference(theirs);
                    if !rest.is_empty() {
                        children.insert(pe.clone(), rest);
                    }
                }
                None => {
                    children.insert(pe.clone(), child.clone());
                }
            }
        }
        Set { members, children }
    }

    /// Like [`Set::difference`], but a member of `other` also removes everything below it.
    pub fn recursive_difference(&self, other: &Set) -> Set {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if other.members.contains(pe) {
                continue;
            }
            match other.children.get(pe) {
                Some(theirs) => {
                    let rest = child.recursive_difference(theirs);
                    if !rest.is_empty() {
                        children.insert(pe.clone(), rest);
                    }
                }
                None => {
                    children.insert(pe.clone(), child.clone());
                }
            }
        }
        Set { members, children }
    }

    /// Every path, in SMD's iteration order: a node's members, then its children's subtrees.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        self.collect_paths(&mut prefix, &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        for pe in &self.members {
            let mut p = prefix.clone();
            p.push(pe.clone());
            out.push(Path(p));
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// Drops child nodes that hold nothing, so structural equality means set equality.
    #[cfg(test)]
    pub(crate) fn normalized(mut self) -> Set {
        let children = std::mem::take(&mut self.children);
        self.children = children
            .into_iter()
            .map(|(pe, c)| (pe, c.normalized()))
            .filter(|(_, c)| !c.is_empty())
            .collect();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(names: &[&str]) -> Path {
        Path::fields(names)
    }

    #[test]
    fn recursive_difference_removes_whole_subtrees() {
        let s = Set::from_paths(&[p(&["spec", "replicas"]), p(&["status", "ready"])]);
        let ignore = Set::from_paths(&[p(&["status"])]);
        assert_eq!(
            s.recursive_difference(&ignore).normalized(),
            Set::from_paths(&[p(&["spec", "replicas"])])
        );
        // A plain difference keeps the children of a removed member.
        assert_eq!(s.difference(&ignore).normalized(), s);
    }

    #[test]
    fn paths_iterate_members_before_children() {
        let s = Set::from_paths(&[
            p(&["spec", "template", "x"]),
            p(&["spec", "replicas"]),
            p(&["metadata", "labels", "app"]),
        ]);
        let rendered: Vec<String> = s.paths().iter().map(|p| p.to_string()).collect();
        assert_eq!(
            rendered,
            vec![".metadata.labels.app", ".spec.replicas", ".spec.template.x"]
        );
    }

    #[test]
    fn key_elements_display_like_the_apiserver() {
        let path = Path(vec![
            PathElement::field("spec"),
            PathElement::field("ports"),
            PathElement::Key(vec![
                ("port".into(), json!(80)),
                ("protocol".into(), json!("TCP")),
            ]),
            PathElement::field("finalizers"),
            PathElement::Value(json!("a")),
        ]);
        assert_eq!(
            path.to_string(),
            r#".spec.ports[port=80,protocol="TCP"].finalizers[="a"]"#
        );
    }
}
