//! Helpers for the image tests: the docker CLI, an S3 server on loopback, and a workspace container
//! started the way the operator's pod starts it (user, groups, capabilities, env and mounts read from
//! `hap-operator render`, run from the operator image itself).
//!
//! The images are built beforehand by `scripts/images.sh` (`scripts/test.sh` does it); a missing image
//! fails the test with that instruction.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};
use serde_json::Value;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const ACCESS_KEY: &str = "hap-image-access";
/// Distinctive, so a leak into a log is easy to find.
pub const SECRET_KEY: &str = "hap-image-secret-7d41c9a2";
pub const BUCKET: &str = "air";

pub fn workspace_image() -> String {
    image("hap-workspace")
}

pub fn operator_image() -> String {
    image("hap-operator")
}

/// `name:<workspace version>`, which must exist on the local engine.
fn image(name: &str) -> String {
    let tag = format!("{name}:{VERSION}");
    let found = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &tag])
        .output()
        .expect("the docker CLI runs");
    assert!(
        found.status.success(),
        "image {tag} is missing: run scripts/images.sh first ({})",
        String::from_utf8_lossy(&found.stderr).trim()
    );
    tag
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs docker with `args`, returning its output whatever the exit status.
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the docker CLI runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A name no other test (or parallel run) uses, for containers.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "hap-test-{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes a container when dropped, so a failing test leaves none behind.
pub struct Container(pub String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

/// s3s-fs, with one fix for Hadoop's S3A client: s3s-fs stores "directory" keys (`a/b/`) as
/// directories and answers HEAD or GET on such a path with a 500, where S3 answers 404 (or, for the
/// marker key `a/b/` itself, an empty object). S3A probes directories exactly that way.
///
/// And one guard: s3s-fs keeps an object's metadata in a single file named after the base64 of its
/// bucket and key (`.bucket-<b64>.object-<b64>[.upload-<uuid>].metadata.json`), so in the bucket
/// `air` a key over 165 bytes (`key_fits`) makes a name over the file system's 255-byte limit, and
/// the write fails with a bare 500 `InternalError` that S3A retries for minutes. Spark's task-attempt
/// paths (`<prefix>/_temporary/0/_temporary/attempt_<33 digits>_<job>_m_<task>_<tid>/part-<uuid>…`)
/// come close. Such writes are refused at once with S3's `KeyTooLongError`, naming the key and limit.
struct Store {
    fs: s3s_fs::FileSystem,
    root: PathBuf,
}

impl Store {
    fn is_directory(&self, bucket: &str, key: &str) -> bool {
        !key.contains("..") && self.root.join(bucket).join(key).is_dir()
    }
}

/// The longest file name s3s-fs can create (NAME_MAX on Linux).
const NAME_MAX: usize = 255;

/// Whether s3s-fs can store the metadata file of `bucket`/`key` (with `upload` for a multipart
/// upload's, which adds `.upload-<uuid>`): its name holds both in unpadded base64. A directory
/// marker (`a/b/`) becomes a directory and has no such file.
fn key_fits(bucket: &str, key: &str, upload: bool) -> S3Result<()> {
    if key.ends_with('/') {
        return Ok(());
    }
    let base64 = |bytes: usize| (4 * bytes).div_ceil(3);
    let name = ".bucket-".len()
        + base64(bucket.len())
        + ".object-".len()
        + base64(key.len())
        + if upload { ".upload-".len() + 36 } else { 0 }
        + ".metadata.json".len();
    if name > NAME_MAX {
        return Err(s3_error!(
            KeyTooLongError,
            "the test S3 server (s3s-fs) cannot store key {key:?} ({} bytes): its metadata file name would be {name} bytes, over {NAME_MAX}; use a shorter prefix",
            key.len()
        ));
    }
    Ok(())
}

/// Implements `S3` for `Store` by forwarding each listed operation to s3s-fs, plus the given methods.
macro_rules! forward {
    ($($op:ident: $input:ident => $output:ident),* $(,)?; $($extra:item)*) => {
        #[async_trait::async_trait]
        impl S3 for Store {
            $(async fn $op(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                self.fs.$op(req).await
            })*
            $($extra)*
        }
    };
}

forward! {
    create_bucket: CreateBucketInput => CreateBucketOutput,
    delete_bucket: DeleteBucketInput => DeleteBucketOutput,
    delete_object: DeleteObjectInput => DeleteObjectOutput,
    delete_objects: DeleteObjectsInput => DeleteObjectsOutput,
    get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput,
    head_bucket: HeadBucketInput => HeadBucketOutput,
    list_buckets: ListBucketsInput => ListBucketsOutput,
    list_objects: ListObjectsInput => ListObjectsOutput,
    list_objects_v2: ListObjectsV2Input => ListObjectsV2Output,
    upload_part: UploadPartInput => UploadPartOutput,
    upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput,
    list_parts: ListPartsInput => ListPartsOutput,
    complete_multipart_upload: CompleteMultipartUploadInput => CompleteMultipartUploadOutput,
    abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput;

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        key_fits(&req.input.bucket, &req.input.key, false)?;
        self.fs.put_object(req).await
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        key_fits(&req.input.bucket, &req.input.key, false)?;
        self.fs.copy_object(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        key_fits(&req.input.bucket, &req.input.key, true)?;
        self.fs.create_multipart_upload(req).await
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        if self.is_directory(&req.input.bucket, &req.input.key) {
            if req.input.key.ends_with('/') {
                return Ok(S3Response::new(HeadObjectOutput {
                    content_length: Some(0),
                    ..Default::default()
                }));
            }
            return Err(s3_error!(NoSuchKey));
        }
        self.fs.head_object(req).await
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        if self.is_directory(&req.input.bucket, &req.input.key) {
            return Err(s3_error!(NoSuchKey));
        }
        self.fs.get_object(req).await
    }
}

/// s3s-fs serving a temporary directory on 127.0.0.1 with signature checks on; buckets are its
/// subdirectories. It stops when dropped.
pub struct S3Server {
    pub address: SocketAddr,
    pub root: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

impl S3Server {
    pub fn start() -> S3Server {
        let root = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir(root.path().join(BUCKET)).expect("the bucket directory");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s-fs opens its root");
        let mut builder = S3ServiceBuilder::new(Store {
            fs,
            root: root.path().to_owned(),
        });
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a loopback port");
        let address = listener.local_addr().unwrap();
        runtime.spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        S3Server {
            address,
            root,
            _runtime: runtime,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The server's file for an object of the test bucket.
    pub fn object(&self, key: &str) -> PathBuf {
        self.root.path().join(BUCKET).join(key)
    }
}

/// What `hap-operator render` produces for one HapContainer, rendered by the operator image.
pub struct Rendered {
    pub objects: Vec<Value>,
}

impl Rendered {
    /// Renders `yaml` with `hap-operator render -f`, in the operator image under its own user.
    pub fn render(yaml: &str) -> Rendered {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("hapcontainer.yaml");
        std::fs::write(&file, yaml).unwrap();
        // Readable by the image's unprivileged user.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mount = format!("{}:/input/hapcontainer.yaml:ro", file.display());
        let out = docker(&[
            "run",
            "--rm",
            "--read-only",
            "--network",
            "none",
            "-v",
            &mount,
            &operator_image(),
            "render",
            "-f",
            "/input/hapcontainer.yaml",
        ]);
        assert!(
            out.status.success(),
            "hap-operator render failed: {}",
            text(&out.stderr)
        );
        let objects: Vec<Value> =
            serde_saphyr::from_multiple(&text(&out.stdout)).expect("render prints YAML");
        Rendered { objects }
    }

    pub fn find(&self, kind: &str) -> &Value {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind)
            .unwrap_or_else(|| panic!("render printed no {kind}"))
    }

    pub fn pod(&self) -> &Value {
        self.find("Pod")
    }

    pub fn spark_defaults(&self) -> String {
        let cm = self.find("ConfigMap");
        cm["data"]["spark-defaults.conf"]
            .as_str()
            .expect("the ConfigMap holds spark-defaults.conf")
            .to_string()
    }
}

/// A HapContainer wired to `endpoint` with a credentials Secret, as a user would write it.
pub fn hapcontainer_yaml(name: &str, endpoint: &str) -> String {
    format!(
        "apiVersion: hap.cloudian.com/v1alpha1
kind: HapContainer
metadata:
  name: {name}
  namespace: default
spec:
  size: 1
  image: hap-workspace:{VERSION}
  s3:
    endpoint: {endpoint}
    region: us-east-1
    bucket: {BUCKET}
    credentialsSecret:
      name: store-keys
"
    )
}

/// `docker run` arguments for the workspace container as the rendered pod describes it: user, group
/// and fsGroup, dropped capabilities, no privilege escalation, a read-only root file system, the env
/// (Secret values from `secrets`, passed by name so they stay off the command line) and the volumes
/// (the Spark ConfigMap read-only; the home directory and /tmp writable by the fsGroup, as a claim or
/// an emptyDir with fsGroup is).
pub struct PodRun {
    pub args: Vec<String>,
    pub envs: BTreeMap<String, String>,
    /// The home directory's volume, on the host.
    pub home: tempfile::TempDir,
    /// The notebooks directory (the home directory's `work`), on the host.
    pub work: std::path::PathBuf,
    _conf: tempfile::TempDir,
    _tmp: tempfile::TempDir,
}

impl PodRun {
    pub fn new(rendered: &Rendered, secrets: &BTreeMap<&str, &str>) -> PodRun {
        let pod = rendered.pod();
        let spec = &pod["spec"];
        let container = &spec["containers"][0];
        let pod_security = &spec["securityContext"];
        let security = &container["securityContext"];
        let mut args: Vec<String> = Vec::new();
        let mut push = |a: &str, b: String| {
            args.push(a.to_string());
            args.push(b);
        };
        let user = pod_security["runAsUser"].as_i64().expect("runAsUser");
        let group = pod_security["runAsGroup"].as_i64().expect("runAsGroup");
        push("--user", format!("{user}:{group}"));
        if let Some(fs_group) = pod_security["fsGroup"].as_i64() {
            push("--group-add", fs_group.to_string());
        }
        for cap in security["capabilities"]["drop"]
            .as_array()
            .into_iter()
            .flatten()
        {
            push("--cap-drop", cap.as_str().unwrap().to_string());
        }
        if security["allowPrivilegeEscalation"] == false {
            push("--security-opt", "no-new-privileges".into());
        }
        // As the pod's root file system: read-only (added after the other arguments).
        let read_only = security["readOnlyRootFilesystem"] == true;
        // RuntimeDefault seccomp is Docker's default profile: nothing to add.
        assert_eq!(pod_security["seccompProfile"]["type"], "RuntimeDefault");

        let mut envs = BTreeMap::new();
        for var in container["env"].as_array().expect("env") {
            let name = var["name"].as_str().unwrap().to_string();
            let value = if let Some(v) = var["value"].as_str() {
                v.to_string()
            } else if var["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP" {
                "127.0.0.1".to_string()
            } else if var["valueFrom"]["secretKeyRef"].is_object() {
                secrets
                    .get(name.as_str())
                    .unwrap_or_else(|| panic!("the test has no value for Secret-backed {name}"))
                    .to_string()
            } else {
                panic!("unhandled env source for {name}: {var}")
            };
            push("-e", name.clone());
            envs.insert(name, value);
        }

        let conf = tempfile::tempdir().expect("a temporary directory");
        let home = tempfile::tempdir().expect("a temporary directory");
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let cm = rendered.find("ConfigMap");
        for (file, content) in cm["data"].as_object().expect("ConfigMap data") {
            std::fs::write(conf.path().join(file), content.as_str().unwrap()).unwrap();
            std::fs::set_permissions(
                conf.path().join(file),
                std::fs::Permissions::from_mode(0o644),
            )
            .unwrap();
        }
        std::fs::set_permissions(conf.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // A claim or an emptyDir with fsGroup: group-owned by the fsGroup, group-writable, setgid.
        let fs_group = pod_security["fsGroup"].as_i64().unwrap_or(group) as u32;
        for dir in [home.path(), tmp.path()] {
            std::os::unix::fs::chown(dir, None, Some(fs_group)).expect("chgrp (tests run as root)");
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o2775)).unwrap();
        }
        let mut home_path = None;
        for mount in container["volumeMounts"].as_array().expect("volumeMounts") {
            let path = mount["mountPath"].as_str().unwrap();
            let source = match mount["name"].as_str().unwrap() {
                "spark-conf" => format!("{}:{path}:ro", conf.path().display()),
                "home" => {
                    home_path = Some(path.to_string());
                    format!("{}:{path}", home.path().display())
                }
                "tmp" => format!("{}:{path}", tmp.path().display()),
                other => panic!("unhandled volume {other}"),
            };
            push("-v", source);
        }
        assert_eq!(
            home_path.as_deref(),
            Some("/home/jovyan"),
            "the home volume"
        );
        if read_only {
            args.push("--read-only".into());
        }
        PodRun {
            args,
            envs,
            work: home.path().join("work"),
            home,
            _conf: conf,
            _tmp: tmp,
        }
    }

    /// `docker run --rm` of `command` in the workspace image, on the host's network (the S3 server
    /// listens on loopback). Returns the output whatever the exit status.
    pub fn run(&self, command: &[&str]) -> Output {
        let mut cmd = Command::new("docker");
        cmd.args(["run", "--rm", "--network", "host"])
            .args(&self.args)
            .arg(workspace_image())
            .args(command)
            .envs(&self.envs)
            .stdin(Stdio::null());
        cmd.output().expect("the docker CLI runs")
    }

    /// As `run`, failing the test with both streams when the command fails.
    pub fn run_ok(&self, command: &[&str]) -> Output {
        let out = self.run(command);
        assert!(
            out.status.success(),
            "{command:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    }
}

/// The secrets a test pod gets: the Jupyter token and the store's key pair.
pub fn secrets(token: &str) -> BTreeMap<&str, &str> {
    BTreeMap::from([
        ("JUPYTER_TOKEN", token),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
    ])
}

#[cfg(test)]
mod tests {
    use super::key_fits;

    /// The key Spark's task attempt used when notebook 01 wrote to `spark/daily_pm25/`: 166 bytes,
    /// one over what s3s-fs can store in the bucket `air`.
    const ATTEMPT: &str = "spark/daily_pm25/_temporary/0/_temporary/attempt_202612030935243368306266147568007_0011_m_000000_8/part-00000-b33c171a-36c2-4ef1-bd31-59521a98a686-c000.snappy.parquet";

    #[test]
    fn keys_longer_than_s3s_fs_stores_are_refused() {
        assert_eq!(ATTEMPT.len(), 166);
        let err = key_fits("air", ATTEMPT, false).unwrap_err();
        assert_eq!(err.code(), &s3s::S3ErrorCode::KeyTooLongError);
        assert!(key_fits("air", &ATTEMPT[..165], false).is_ok());
        assert!(key_fits("air", &ATTEMPT.replace("daily_pm25", "daily"), false).is_ok());
        // A multipart upload's metadata name also holds the upload id.
        assert!(key_fits("air", &ATTEMPT[..140], true).is_err());
        assert!(key_fits("air", &ATTEMPT[..132], true).is_ok());
        // Directory markers become directories: no metadata file.
        assert!(key_fits("air", &format!("{ATTEMPT}/"), false).is_ok());
    }
}
