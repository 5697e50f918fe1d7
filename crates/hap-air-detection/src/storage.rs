//! Where data lives: `s3://bucket/prefix/` URLs or local paths, each resolved
//! to an object store and a prefix inside it.
//!
//! S3 credentials come from the standard AWS environment variables, read by
//! object_store itself; they are never logged or written anywhere.

use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use tracing::warn;
use url::Url;

/// How to reach an S3-compatible store. Unset fields fall back to the AWS
/// environment variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, ...).
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Address buckets as `endpoint/bucket/key` instead of
    /// `bucket.endpoint/key`; most on-premises stores need this.
    pub path_style: bool,
}

/// A prefix inside an object store.
#[derive(Debug, Clone)]
pub struct Location {
    /// `s3://bucket/prefix/` or `file:///abs/dir/`, always ending in `/`
    /// unless it names a single local file.
    pub url: Url,
    pub store: Arc<dyn ObjectStore>,
    pub prefix: Path,
    pub kind: LocationKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationKind {
    S3 { bucket: String },
    Local,
}

/// Whether a location will be read or written; local inputs must exist,
/// local outputs are created by the first write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Location {
    /// Resolves `text`, an `s3://` URL or a local path.
    pub fn resolve(text: &str, access: Access, s3: &S3Options) -> Result<Location> {
        let text = text.trim();
        if text.is_empty() {
            bail!("the location is empty; pass s3://bucket/prefix/ or a local path");
        }
        match text.split_once("://") {
            Some(("s3" | "s3a", _)) => resolve_s3(text, s3),
            Some(("file", _)) => {
                let url = Url::parse(text).with_context(|| format!("{text} is not a valid URL"))?;
                let path = url
                    .to_file_path()
                    .map_err(|()| anyhow::anyhow!("{text} is not a local file URL"))?;
                resolve_local(&path, access)
            }
            Some((scheme, _)) => bail!(
                "{text}: unsupported scheme {scheme}://; use s3://bucket/prefix/ or a local path"
            ),
            None => resolve_local(FsPath::new(text), access),
        }
    }

    /// The store path of `relative` (slash-separated) under this prefix.
    pub fn child(&self, relative: &str) -> Path {
        let mut path = self.prefix.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            path = path.join(part);
        }
        path
    }

    /// The URL the store is registered under in DataFusion: scheme and host.
    pub fn store_url(&self) -> Url {
        let mut url = self.url.clone();
        url.set_path("/");
        url
    }

    /// A readable name for an object in this store, for messages.
    pub fn describe(&self, path: &Path) -> String {
        match &self.kind {
            LocationKind::S3 { bucket } => format!("s3://{bucket}/{path}"),
            LocationKind::Local => format!("/{path}"),
        }
    }

    /// The URL of one object in this store.
    pub fn object_url(&self, path: &Path) -> String {
        match &self.kind {
            LocationKind::S3 { bucket } => format!("s3://{bucket}/{path}"),
            LocationKind::Local => format!("file:///{path}"),
        }
    }

    /// Whether `self` and `other` are the same prefix or one holds the other;
    /// writing outputs inside the input would feed them back in.
    pub fn overlaps(&self, other: &Location) -> bool {
        if self.kind != other.kind {
            return false;
        }
        let a: Vec<_> = self.prefix.parts().collect();
        let b: Vec<_> = other.prefix.parts().collect();
        let shorter = a.len().min(b.len());
        a[..shorter] == b[..shorter]
    }

    /// The location as the Hive connector spells it: `s3a://` for S3,
    /// `file://` for local paths.
    pub fn hive_location(&self, relative: &str) -> String {
        let path = self.child(relative);
        let path = if path.as_ref().is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        match &self.kind {
            LocationKind::S3 { bucket } => format!("s3a://{bucket}/{path}"),
            LocationKind::Local => format!("file:///{path}"),
        }
    }
}

fn resolve_local(path: &FsPath, access: Access) -> Result<Location> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("cannot read the current directory")?
            .join(path)
    };
    let canonical = match access {
        Access::Read => absolute.canonicalize().with_context(|| {
            format!(
                "{} does not exist; pass an existing directory or file",
                absolute.display()
            )
        })?,
        // Outputs may not exist yet; writing creates them.
        Access::Write => canonical_output(&absolute)?,
    };
    if access == Access::Write && canonical.is_file() {
        bail!("output {} is a file; pass a directory", canonical.display());
    }
    let is_dir = canonical.is_dir() || access == Access::Write;
    let mut url = Url::from_file_path(&canonical).map_err(|()| {
        anyhow::anyhow!("{} cannot be expressed as a file URL", canonical.display())
    })?;
    if is_dir && !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    let prefix = Path::from_absolute_path(&canonical)
        .with_context(|| format!("{} is not a valid store path", canonical.display()))?;
    Ok(Location {
        url,
        store: Arc::new(LocalFileSystem::new()),
        prefix,
        kind: LocationKind::Local,
    })
}

/// The canonical form of a path that may not exist yet: its deepest
/// existing ancestor resolved (symbolic links included), plus the rest.
fn canonical_output(absolute: &FsPath) -> Result<std::path::PathBuf> {
    let mut existing = absolute;
    let mut rest = Vec::new();
    while !existing.exists() {
        let Some(parent) = existing.parent() else {
            break;
        };
        rest.push(existing.file_name().unwrap_or_default().to_owned());
        existing = parent;
    }
    let mut canonical = existing
        .canonicalize()
        .with_context(|| format!("cannot resolve output path {}", absolute.display()))?;
    for part in rest.iter().rev() {
        if part == ".." || part == "." {
            bail!(
                "output path {} must not contain . or ..",
                absolute.display()
            );
        }
        canonical.push(part);
    }
    Ok(canonical)
}

fn resolve_s3(text: &str, options: &S3Options) -> Result<Location> {
    let url = Url::parse(text).with_context(|| format!("{text} is not a valid URL"))?;
    let bucket = url
        .host_str()
        .filter(|b| !b.is_empty())
        .with_context(|| format!("{text} has no bucket; use s3://bucket/prefix/"))?
        .to_string();
    let key_prefix = url.path().trim_matches('/');
    let prefix = Path::parse(key_prefix)
        .with_context(|| format!("{text}: {key_prefix:?} is not a valid object key prefix"))?;
    let mut normalized = Url::parse(&format!("s3://{bucket}/"))
        .with_context(|| format!("{bucket} is not a valid bucket name"))?;
    if !key_prefix.is_empty() {
        normalized.set_path(&format!("/{key_prefix}/"));
    }
    Ok(Location {
        url: normalized,
        store: s3_store(&bucket, options)?,
        prefix,
        kind: LocationKind::S3 { bucket },
    })
}

/// Credential sources object_store can use without instance metadata.
const CREDENTIAL_VARIABLES: [&str; 4] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];

/// Whether any credential source is configured in the environment.
pub fn has_credentials() -> bool {
    CREDENTIAL_VARIABLES
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| !v.is_empty()))
}

/// The workspace pod sets `HAP_S3_VERIFY_TLS=false` for stores whose
/// certificate it should not check.
fn skip_tls_verification() -> bool {
    std::env::var("HAP_S3_VERIFY_TLS").is_ok_and(|v| v.eq_ignore_ascii_case("false"))
}

fn s3_store(bucket: &str, options: &S3Options) -> Result<Arc<dyn ObjectStore>> {
    let endpoint = options.endpoint.clone().or_else(endpoint_from_env);
    let mut client = ClientOptions::new().with_connect_timeout(Duration::from_secs(5));
    if skip_tls_verification() {
        warn!("HAP_S3_VERIFY_TLS=false: the S3 endpoint's TLS certificate is not checked");
        client = client.with_allow_invalid_certificates(true);
    }
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(RetryConfig {
            // Fail within seconds on an unreachable store rather than
            // retrying for the default three minutes.
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
            ..RetryConfig::default()
        })
        .with_client_options(client);
    if !has_credentials() {
        // A workspace without a credentials Secret uses the store
        // anonymously. Without this, object_store would wait on the EC2
        // instance metadata service, which a pod does not have.
        warn!("no AWS credentials in the environment: sending unsigned (anonymous) S3 requests");
        builder = builder.with_skip_signature(true);
    }
    if let Some(region) = &options.region {
        builder = builder.with_region(region);
    }
    builder = match (&endpoint, options.path_style) {
        (Some(endpoint), true) => builder
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false),
        // object_store expects a virtual-hosted endpoint to name the bucket.
        (Some(endpoint), false) => builder
            .with_endpoint(bucket_endpoint(endpoint, bucket)?)
            .with_virtual_hosted_style_request(true),
        (None, path_style) => builder.with_virtual_hosted_style_request(!path_style),
    };
    if let Some(endpoint) = &endpoint {
        builder = builder.with_allow_http(endpoint.starts_with("http://"));
    }
    let store = builder.build().map_err(|e| {
        // The builder's errors name missing settings, never their values.
        anyhow::anyhow!("cannot configure S3 access to bucket {bucket}: {e}")
    })?;
    Ok(Arc::new(store))
}

fn endpoint_from_env() -> Option<String> {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

/// `https://store.example` → `https://bucket.store.example`.
fn bucket_endpoint(endpoint: &str, bucket: &str) -> Result<String> {
    let mut url = Url::parse(endpoint)
        .with_context(|| format!("S3 endpoint {} is not a URL", redact_endpoint(endpoint)))?;
    let host = url
        .host_str()
        .with_context(|| format!("S3 endpoint {} has no host", redact_endpoint(endpoint)))?
        .to_string();
    url.set_host(Some(&format!("{bucket}.{host}")))
        .with_context(|| {
            format!(
                "cannot address bucket {bucket} as a subdomain of {host} (virtual-hosted \
                 style); pass --s3-path-style (or set HAP_S3_PATH_STYLE=true) to address it \
                 as {host}/{bucket}"
            )
        })?;
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// An endpoint for messages: any user:password part is removed.
pub fn redact_endpoint(endpoint: &str) -> String {
    match Url::parse(endpoint) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        Err(_) => "(unparsable endpoint)".to_string(),
    }
}

/// The endpoint in effect for messages, or a note that AWS is used.
pub fn describe_endpoint(options: &S3Options) -> String {
    match options.endpoint.clone().or_else(endpoint_from_env) {
        Some(endpoint) => redact_endpoint(&endpoint),
        None => "the AWS default endpoint".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_redacted() {
        assert_eq!(
            redact_endpoint("http://user:secret@127.0.0.1:9000"),
            "http://127.0.0.1:9000/"
        );
        assert!(!redact_endpoint("not a url with secret").contains("secret"));
    }

    #[test]
    fn virtual_hosted_endpoints_gain_the_bucket() {
        assert_eq!(
            bucket_endpoint("https://s3.example.internal:8443/", "air").unwrap(),
            "https://air.s3.example.internal:8443"
        );
    }

    #[test]
    fn local_paths_resolve_and_overlap() {
        let dir = tempfile::tempdir().unwrap();
        let canonical = dir.path().canonicalize().unwrap();
        let input = Location::resolve(
            dir.path().to_str().unwrap(),
            Access::Read,
            &S3Options::default(),
        )
        .unwrap();
        assert_eq!(
            input.url.as_str(),
            format!("file://{}/", canonical.display())
        );
        // An output that does not exist yet resolves without being created.
        let nested = dir.path().join("out/run1");
        let output = Location::resolve(
            nested.to_str().unwrap(),
            Access::Write,
            &S3Options::default(),
        )
        .unwrap();
        assert!(!nested.exists());
        assert!(input.overlaps(&output) && output.overlaps(&input));
        assert_eq!(
            output.hive_location("hourly"),
            format!("file://{}/out/run1/hourly/", canonical.display())
        );
        let sibling = Location::resolve(
            dir.path().join("other").to_str().unwrap(),
            Access::Write,
            &S3Options::default(),
        )
        .unwrap();
        assert!(!sibling.overlaps(&output));
    }

    #[test]
    fn rejects_unknown_schemes_and_missing_buckets() {
        let err = Location::resolve("gs://b/p", Access::Read, &S3Options::default()).unwrap_err();
        assert!(err.to_string().contains("unsupported scheme"), "{err}");
        let err = Location::resolve(
            "/definitely/not/here/hap",
            Access::Read,
            &S3Options::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
