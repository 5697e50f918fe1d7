//! Names of a HapQuery's children, `<name>-<component>[-<role>]`, and its `app.kubernetes.io/name`.

/// `app.kubernetes.io/name` of every child of a HapQuery.
pub const APP: &str = "hap-query";

/// `app.kubernetes.io/component` of each component's children and pods.
pub const DATABASE: &str = "database";
pub const METASTORE: &str = "metastore";
pub const TRINO_COORDINATOR: &str = "trino-coordinator";
pub const TRINO_WORKER: &str = "trino-worker";
pub const DASHBOARD: &str = "dashboard";

/// Keys of the dashboard's generated Secret (`<name>-superset` or `<name>-redash`).
pub const SECRET_KEY_KEY: &str = "secret-key";
pub const ADMIN_PASSWORD_KEY: &str = "admin-password";
pub const COOKIE_SECRET_KEY: &str = "cookie-secret";
pub const SUPERSET_GENERATED_KEYS: [&str; 2] = [SECRET_KEY_KEY, ADMIN_PASSWORD_KEY];
pub const REDASH_GENERATED_KEYS: [&str; 3] =
    [COOKIE_SECRET_KEY, SECRET_KEY_KEY, ADMIN_PASSWORD_KEY];

/// The NetworkPolicy of the pods of `server` (a component's main child's name).
pub fn policy(server: &str) -> String {
    format!("{server}-ingress")
}

pub fn mariadb(name: &str) -> String {
    format!("{name}-mariadb")
}
/// The claim a StatefulSet creates from its `data` template for its only pod.
pub fn mariadb_volume(name: &str) -> String {
    format!("data-{name}-mariadb-0")
}
/// The generated password of the dashboard's own database user.
pub fn mariadb_superset(name: &str) -> String {
    format!("{name}-mariadb-superset")
}
pub fn metastore(name: &str) -> String {
    format!("{name}-metastore")
}
pub fn metastore_schema(name: &str) -> String {
    format!("{name}-metastore-schema")
}
pub fn trino_coordinator(name: &str) -> String {
    format!("{name}-trino-coordinator")
}
pub fn trino_worker(name: &str) -> String {
    format!("{name}-trino-worker")
}
/// Trino's users and their generated passwords, one key per user.
pub fn trino_users(name: &str) -> String {
    format!("{name}-trino-users")
}
/// The password file Trino reads, made from the users' Secret.
pub fn trino_password_file(name: &str) -> String {
    format!("{name}-trino-password-file")
}
/// The secret Trino's nodes sign their calls to each other with.
pub fn trino_internal(name: &str) -> String {
    format!("{name}-trino-internal")
}
/// The coordinator's certificate, from the operator's CA.
pub fn trino_tls(name: &str) -> String {
    format!("{name}-trino-tls")
}
/// The CA bundle the HapQuery's clients trust (`ca.crt`).
pub fn ca(name: &str) -> String {
    format!("{name}-ca")
}
pub fn trino_catalog(name: &str) -> String {
    format!("{name}-trino-catalog")
}
pub fn superset(name: &str) -> String {
    format!("{name}-superset")
}
pub fn superset_init(name: &str) -> String {
    format!("{name}-superset-init")
}
pub fn redash(name: &str) -> String {
    format!("{name}-redash")
}
pub fn redash_worker(name: &str) -> String {
    format!("{name}-redash-worker")
}
pub fn redash_init(name: &str) -> String {
    format!("{name}-redash-init")
}
