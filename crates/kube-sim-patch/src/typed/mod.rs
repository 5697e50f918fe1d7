//! Walks over objects guided by a [`Schema`](crate::Schema), mirroring structured-merge-diff's
//! `typed` package: validation, field sets, comparison, merging and removal.

mod compare;
mod fieldset;
mod items;
mod merge;
mod named;
mod remove;
mod validate;

pub(crate) use compare::{Comparison, compare};
pub(crate) use fieldset::to_field_set;
#[cfg(test)]
pub(crate) use items::list_item_element;
pub(crate) use merge::merge;
pub(crate) use named::ensure_named_fields_are_members;
pub(crate) use remove::remove_items;
pub(crate) use validate::validate;

use std::fmt;

/// One problem found at a path of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ValidationError {
    pub path: String,
    pub message: String,
}

/// Problems found in an object, rendered the way SMD's `ValidationErrors.Error()` does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    pub(crate) fn one(message: impl Into<String>) -> Self {
        ValidationErrors(vec![ValidationError {
            path: String::new(),
            message: message.into(),
        }])
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn extend(&mut self, other: ValidationErrors) {
        self.0.extend(other.0);
    }

    /// Prefixes every error's path, as errors bubble up from a child.
    pub(crate) fn with_prefix(mut self, prefix: &str) -> Self {
        for e in &mut self.0 {
            e.path = format!("{prefix}{}", e.path);
        }
        self
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = self.0.as_slice() {
            return write!(f, "{only}");
        }
        write!(f, "errors:")?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}
