//! The core of structured-merge-diff (`merge/update.go`): who owns what after an update, and
//! what an apply produces.
//!
//! All managers are treated as using one schema: kube-sim serves one version per kind, so the
//! per-version conversions upstream performs here are identities.

use crate::fieldpath::Set;
use crate::managed::VersionedSet;
use crate::schema::Schema;
use crate::typed::{self, Comparison};
use crate::values;
use serde_json::Value;
use std::collections::BTreeMap;

pub(crate) type Managers = BTreeMap<String, VersionedSet>;

/// Fields other managers own that an apply would change, by manager identifier.
pub(crate) type ConflictSets = BTreeMap<String, VersionedSet>;

pub(crate) enum ApplyFailure {
    Conflicts(ConflictSets),
    /// Upstream returns these as plain errors (HTTP 500).
    Internal(String),
}

pub(crate) struct Updater<'s> {
    pub schema: &'s Schema,
    /// Fields the endpoint resets; they are neither owned nor compared.
    pub ignored: Set,
}

impl Updater<'_> {
    fn compare(&self, old: &Value, new: &Value) -> Comparison {
        typed::compare(self.schema, &self.schema.root, old, new).excluding(&self.ignored)
    }

    fn field_set(&self, value: &Value) -> Set {
        typed::to_field_set(self.schema, &self.schema.root, value)
    }

    fn named(&self, set: &Set) -> Set {
        typed::ensure_named_fields_are_members(set, self.schema, &self.schema.root)
    }

    /// Takes changed fields away from every manager but `workflow`: fields it modified or added
    /// are conflicts (taken only when `force`), removed fields are dropped unconditionally.
    fn update(
        &self,
        old: &Value,
        new: &Value,
        managers: &mut Managers,
        workflow: &str,
        force: bool,
    ) -> Result<Comparison, ConflictSets> {
        let compare = self.compare(old, new);
        let changed = compare.modified.union(&compare.added);
        let mut conflicts = ConflictSets::new();
        for (manager, owned) in managers.iter() {
            if manager == workflow {
                continue;
            }
            let conflict = owned.set.intersection(&changed);
            if !conflict.is_empty() {
                conflicts.insert(
                    manager.clone(),
                    VersionedSet {
                        set: conflict,
                        api_version: owned.api_version.clone(),
                        applied: false,
                    },
                );
            }
        }
        if !force && !conflicts.is_empty() {
            return Err(conflicts);
        }
        for (manager, owned) in managers.iter_mut() {
            if manager == workflow {
                continue;
            }
            if let Some(conflict) = conflicts.get(manager) {
                owned.set = owned.set.difference(&conflict.set);
            }
            owned.set = owned.set.difference(&compare.removed);
        }
        managers.retain(|_, vs| !vs.set.is_empty());
        Ok(compare)
    }

    /// After a create, update or non-apply patch: `manager` gains what changed.
    pub(crate) fn update_ownership(
        &self,
        live: &Value,
        new: &Value,
        version: &str,
        managers: &mut Managers,
        manager: &str,
    ) {
        let compare = match self.update(live, new, managers, manager, true) {
            Ok(c) => c,
            Err(_) => return, // unreachable with force
        };
        let previous = managers
            .get(manager)
            .map(|vs| vs.set.clone())
            .unwrap_or_default();
        let set = previous
            .difference(&compare.removed)
            .union(&compare.modified)
            .union(&compare.added)
            .recursive_difference(&self.ignored);
        if set.is_empty() {
            managers.remove(manager);
        } else {
            managers.insert(
                manager.to_string(),
                VersionedSet {
                    set,
                    api_version: version.to_string(),
                    applied: false,
                },
            );
        }
    }

    /// Server-side apply of `config` onto `live` by `manager`. Returns the new object, or `None`
    /// when nothing changed, and the new ownership.
    pub(crate) fn apply(
        &self,
        live: &Value,
        config: &Value,
        version: &str,
        managers: &mut Managers,
        manager: &str,
        force: bool,
    ) -> Result<Option<Value>, ApplyFailure> {
        let merged = typed::merge(self.schema, &self.schema.root, Some(live), Some(config))
            .map_err(|e| ApplyFailure::Internal(format!("failed to merge config: {e}")))?
            .unwrap_or(Value::Null);
        let last_applied = managers.get(manager).map(|vs| vs.set.clone());
        // The applier's set becomes exactly what its configuration specifies.
        let set = self.field_set(config).recursive_difference(&self.ignored);
        managers.insert(
            manager.to_string(),
            VersionedSet {
                set,
                api_version: version.to_string(),
                applied: true,
            },
        );
        let new = self.prune(&merged, managers, last_applied.as_ref());
        self.update(live, &new, managers, manager, force)
            .map_err(ApplyFailure::Conflicts)?;
        if values::equals(live, &new) {
            return Ok(None);
        }
        Ok(Some(new))
    }

    /// Removes what `manager` applied last time, no longer applies, and nobody else owns.
    fn prune(&self, merged: &Value, managers: &Managers, last_applied: Option<&Set>) -> Value {
        let Some(last) = last_applied.filter(|s| !s.is_empty()) else {
            return merged.clone();
        };
        let root = &self.schema.root;
        let pruned = typed::remove_items(self.schema, root, merged, &self.named(last));
        let pruned = self.add_back_owned_items(merged, &pruned, managers);
        self.add_back_dangling_items(merged, &pruned, last)
    }

    /// Restores removed fields that some manager (the applier's new set included) still owns.
    fn add_back_owned_items(&self, merged: &Value, pruned: &Value, managers: &Managers) -> Value {
        let owned = managers
            .values()
            .fold(Set::new(), |acc, vs| acc.union(&vs.set));
        let merged_set = self.named(&self.field_set(merged));
        let pruned_set = self.named(&self.field_set(pruned));
        let keep = pruned_set.union(&self.named(&owned));
        typed::remove_items(
            self.schema,
            &self.schema.root,
            merged,
            &merged_set.difference(&keep),
        )
    }

    /// Only fields the applier had applied may go: anything else removed along the way (unowned
    /// fields, or ones only update managers touched) comes back.
    fn add_back_dangling_items(&self, merged: &Value, pruned: &Value, last: &Set) -> Value {
        let pruned_set = self.named(&self.field_set(pruned));
        let merged_set = self.named(&self.field_set(merged));
        let to_remove = merged_set
            .difference(&pruned_set)
            .intersection(&self.named(last));
        typed::remove_items(self.schema, &self.schema.root, merged, &to_remove)
    }
}
