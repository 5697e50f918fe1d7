//! The shapes user values must have before they reach a configuration file, a name or a child: each
//! a pattern, a length and a message that says what to write instead. The same bound is a CEL rule of
//! the CRDs (the API server refuses the value) and a check of the operator (`validation`, which also
//! sees objects admitted under an older CRD and the files `render` reads). The CRDs' `maxLength` of
//! each field is kept equal to its bound's by a test.

use kube::core::Rule;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use regex::Regex;

use crate::problem::Problem;

/// The compiled form of a bound's pattern, compiled once per process: compiling costs far more than
/// matching, and every reconcile checks every bounded field of its resource (at a thousand
/// workspaces, a compile per check was a visible share of the operator's CPU).
fn compiled(pattern: &'static str) -> Regex {
    static COMPILED: LazyLock<Mutex<HashMap<&'static str, Regex>>> = LazyLock::new(Mutex::default);
    COMPILED
        .lock()
        .expect("compiled patterns")
        .entry(pattern)
        .or_insert_with(|| Regex::new(pattern).expect("the bounds' patterns are valid"))
        .clone()
}

/// A value's allowed shape.
pub struct Bound {
    /// An RE2 pattern (CEL's `matches`, the `regex` crate's syntax), anchored.
    pub pattern: &'static str,
    /// The most characters.
    pub max: usize,
    /// What a value must look like, for messages (`an S3 region such as us-east-1`).
    pub what: &'static str,
}

/// A DNS-1123 subdomain: the names of Secrets and StorageClasses.
const SUBDOMAIN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// An S3 endpoint: http(s):// and URL characters only (no spaces, quotes, backslashes, braces or
/// control characters, which would end a line or a quoted value in a configuration file).
pub const ENDPOINT: Bound = Bound {
    pattern: r"^https?://[-A-Za-z0-9._~:/?#\[\]@!$&()*+,;=%]+$",
    max: 2048,
    what: "an http:// or https:// URL of URL characters only (no spaces, quotes or control characters), e.g. http://s3-region1.hyperstore.example.com:80",
};

pub const REGION: Bound = Bound {
    pattern: r"^[A-Za-z0-9][-A-Za-z0-9._]*$",
    max: 64,
    what: "a region name of letters, digits, '-', '.' and '_', e.g. us-east-1",
};

/// An S3 bucket name's characters (S3 itself also asks for 3 characters at least; the store says so).
pub const BUCKET: Bound = Bound {
    pattern: r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
    max: 63,
    what: "a bucket name of at most 63 lower-case letters, digits, '-' and '.', e.g. air-quality",
};

pub const SECRET_NAME: Bound = Bound {
    pattern: SUBDOMAIN,
    max: 253,
    what: "the name of a Secret in this namespace (lower-case letters, digits, '-' and '.')",
};

/// A key of a Secret's data, as Kubernetes allows it.
pub const SECRET_KEY: Bound = Bound {
    pattern: r"^[-._a-zA-Z0-9]+$",
    max: 253,
    what: "a key of the Secret (letters, digits, '-', '_' and '.')",
};

pub const STORAGE_CLASS: Bound = Bound {
    pattern: SUBDOMAIN,
    max: 253,
    what: "the name of a StorageClass (lower-case letters, digits, '-' and '.')",
};

/// A container image reference: registry, path, tag and digest characters only.
pub const IMAGE: Bound = Bound {
    pattern: r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$",
    max: 512,
    what: "an image reference such as registry.example.com/hap-workspace:0.1.0",
};

/// A database server's host name or IPv4 address (or nothing, which its own rule says is required).
pub const HOST: Bound = Bound {
    pattern: r"^([A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?)?$",
    max: 253,
    what: "a host name or IPv4 address, e.g. mariadb.databases.svc",
};

/// A database name, as it goes into a JDBC URL and SQL.
pub const DATABASE: Bound = Bound {
    pattern: r"^[A-Za-z0-9_]+$",
    max: 64,
    what: "a database name of letters, digits and '_', e.g. metastore",
};

/// A HapContainer's name: a DNS-1035 label short enough that `<name>-spark-driver` (a Service, and
/// the workspace pod's subdomain) and `<name>-hapservice` stay within Kubernetes' 63 characters.
pub const HAPCONTAINER_NAME: Bound = Bound {
    pattern: r"^[a-z]([-a-z0-9]*[a-z0-9])?$",
    max: 50,
    what: "a name of at most 50 lower-case letters, digits and '-', starting with a letter (no dots): the operator names the workspace's Service <name>-hapservice and Spark's <name>-spark-driver, which Kubernetes limits to 63 characters",
};

/// A HapQuery's name: short enough that `<name>-trino-coordinator` (a Service) and the label
/// Kubernetes gives MariaDB's StatefulSet revisions (`<name>-mariadb-<hash>`) stay within 63.
pub const HAPQUERY_NAME: Bound = Bound {
    pattern: r"^[a-z]([-a-z0-9]*[a-z0-9])?$",
    max: 44,
    what: "a name of at most 44 lower-case letters, digits and '-', starting with a letter (no dots): the operator names Trino's Service <name>-trino-coordinator, and Kubernetes labels MariaDB's revisions <name>-mariadb-<hash>, both limited to 63 characters",
};

/// A duration as hours, minutes and seconds, as Kubernetes' CEL `duration()` and humantime both read it.
pub const DURATION: Bound = Bound {
    pattern: r"^([0-9]{1,5}[hms]){1,3}$",
    max: 18,
    what: "a duration of hours, minutes and seconds such as 30m, 2h or 1h30m",
};

/// A workspace profile's name, as `spec.profile` names it (see `profile`).
pub const PROFILE_NAME: Bound = Bound {
    pattern: r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
    max: 63,
    what: "a profile name of at most 63 lower-case letters, digits and '-'",
};

/// A namespace's name, as Kubernetes allows it (a DNS label).
pub const NAMESPACE: Bound = Bound {
    pattern: r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
    max: 63,
    what: "a namespace's name (at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit)",
};

impl Bound {
    /// The CEL rule of a list whose every item has this shape.
    pub fn each_rule(&self, field: &str) -> Rule {
        Rule::new(format!(
            "self.all(v, v.size() <= {} && v.matches('{}'))",
            self.max,
            self.pattern.replace('\\', "\\\\")
        ))
        .message(kube::core::Message::Message(format!(
            "each of {field} must be {}",
            self.what
        )))
    }

    /// The CEL rule of a field of this shape.
    pub fn rule(&self, field: &str) -> Rule {
        Rule::new(format!(
            "self.size() <= {} && self.matches('{}')",
            self.max,
            self.pattern.replace('\\', "\\\\")
        ))
        .message(kube::core::Message::Message(format!(
            "{field} must be {}",
            self.what
        )))
    }

    /// The CEL rule of the resource's own name (a rule at the root, where `self.metadata` is).
    pub fn name_rule(&self) -> Rule {
        Rule::new(format!(
            "self.metadata.name.size() <= {} && self.metadata.name.matches('{}')",
            self.max,
            self.pattern.replace('\\', "\\\\")
        ))
        .message(kube::core::Message::Message(format!(
            "metadata.name must be {}",
            self.what
        )))
    }

    pub fn holds(&self, value: &str) -> bool {
        value.chars().count() <= self.max && compiled(self.pattern).is_match(value)
    }

    /// A problem if `value`, at `field`, is not of this shape (its value quoted with Rust's escapes,
    /// so a control character shows as such and never reaches a message raw).
    pub fn check(&self, field: &str, value: &str) -> Option<Problem> {
        let shown: String = value.chars().take(80).collect();
        (!self.holds(value)).then(|| {
            Problem::new(
                field,
                format!("{field} is {shown:?}: it must be {}", self.what),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_would_break_a_configuration_file_are_refused() {
        assert!(ENDPOINT.holds("http://s3-region1.hyperstore.example.com:80"));
        assert!(ENDPOINT.holds("https://10.0.0.5:9000/path?x=1"));
        for bad in [
            "http://s3:80\nfs.s3a.secret.key=x",
            "http://s3:80 extra",
            "http://s3:80\"",
            "ftp://s3:80",
            "http://s3\\x",
            "http://s3:80\r",
        ] {
            assert!(!ENDPOINT.holds(bad), "{bad:?}");
        }
        assert!(REGION.holds("us-east-1") && !REGION.holds("us-east-1\nx=y"));
        assert!(BUCKET.holds("air-quality") && !BUCKET.holds("Air") && !BUCKET.holds("a-"));
        assert!(IMAGE.holds("registry.example.com:5000/hap/workspace:1.0@sha256:abc"));
        assert!(!IMAGE.holds("img:1\nspark.x=y") && !IMAGE.holds("img 1"));
        assert!(HOST.holds("mariadb.databases.svc") && !HOST.holds("db;drop"));
        assert!(DATABASE.holds("metastore") && !DATABASE.holds("meta-store"));
    }

    #[test]
    fn names_leave_room_for_the_childrens_suffixes() {
        let longest = "a".repeat(50);
        assert!(HAPCONTAINER_NAME.holds(&longest));
        assert!(format!("{longest}-spark-driver").len() <= 63);
        assert!(!HAPCONTAINER_NAME.holds(&"a".repeat(51)));
        assert!(!HAPCONTAINER_NAME.holds("my.workspace") && !HAPCONTAINER_NAME.holds("1st"));
        let longest = "a".repeat(44);
        assert!(format!("{longest}-trino-coordinator").len() <= 63);
        assert!(format!("{longest}-mariadb-6b8f9c7d5f").len() <= 63);
        assert!(!HAPQUERY_NAME.holds(&"a".repeat(45)));
    }

    #[test]
    fn a_refusal_names_the_field_and_never_prints_a_control_character() {
        let p = REGION.check("spec.s3.region", "us\neast").unwrap();
        assert_eq!(p.field, "spec.s3.region");
        assert!(
            p.message.contains("\\n") && !p.message.contains('\n'),
            "{}",
            p.message
        );
        let rule = serde_json::to_value(ENDPOINT.rule("spec.s3.endpoint")).unwrap();
        assert!(
            rule["rule"]
                .as_str()
                .unwrap()
                .contains("self.matches('^https?://")
        );
    }
}
