//! Helpers shared by the conformance tests: finding the tools `scripts/setup.sh` installs, starting a
//! simulated cluster with test timings, raw HTTP requests, bounded polling and running kubectl.
#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::{HeaderMap, Method, Request};
use kube_sim::{CrdValidation, Sim, SimConfig, Timings};
use serde_json::Value;

/// Where `scripts/setup.sh` links its tools: `$HAP_CACHE/bin`, else `~/.cache/hap/bin`.
pub fn tool_dir() -> PathBuf {
    match std::env::var_os("HAP_CACHE") {
        Some(cache) => PathBuf::from(cache).join("bin"),
        None => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/hap/bin")
        }
    }
}

/// A tool `scripts/setup.sh` installs. A missing tool fails the test: it is never skipped.
pub fn tool(name: &str) -> PathBuf {
    let path = tool_dir().join(name);
    assert!(
        path.is_file(),
        "{name} not found at {}: run scripts/setup.sh to install the tools the kube-sim tests need",
        path.display()
    );
    path
}

/// The two kubectl versions the suite drives: the current one and Debian's `kubernetes-client`.
pub fn kubectls() -> Vec<(&'static str, PathBuf)> {
    vec![
        ("kubectl", tool("kubectl")),
        ("kubectl-debian", tool("kubectl-debian")),
    ]
}

/// Timings short enough for tests, long enough that every state is observable.
pub fn test_timings() -> Timings {
    Timings {
        container_start: Duration::from_millis(50),
        container_stop: Duration::from_millis(50),
        job_run: Duration::from_millis(200),
        bookmark_interval: Duration::from_millis(500),
        crash_backoff: Duration::from_millis(200),
    }
}

pub fn test_config() -> SimConfig {
    SimConfig {
        crd_validation: CrdValidation::Binary(tool("crdcheck")),
        timings: test_timings(),
        ..SimConfig::default()
    }
}

/// A fresh cluster on a random loopback port.
pub async fn start() -> Sim {
    start_with(test_config()).await
}

pub async fn start_with(config: SimConfig) -> Sim {
    Sim::start(config).await.expect("kube-sim starts")
}

/// An admin client that does not retry 429, 503 and 504 answers (kube-rs does by default), for tests
/// that look at those answers themselves.
pub async fn admin_without_retries(sim: &Sim) -> kube::Client {
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(&sim.admin_kubeconfig()).expect("a kubeconfig");
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("a client config");
    config.default_retry = false;
    kube::Client::try_from(config).expect("a client")
}

/// How long a condition may take on a loaded machine before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `check` until it returns `Some`, failing the test with `what` after [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A response read whole.
#[derive(Debug)]
pub struct Response {
    pub code: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Response {
    /// The body as JSON (Null if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Asserts a failure Status with this code, reason and message, and returns the Status.
    #[track_caller]
    pub fn assert_status(&self, code: u16, reason: &str, message: &str) -> Value {
        let s = self.json();
        assert_eq!(self.code, code, "HTTP code; body: {}", self.text);
        assert_eq!(s["kind"], "Status", "{}", self.text);
        assert_eq!(s["apiVersion"], "v1", "{}", self.text);
        assert_eq!(s["status"], "Failure", "{}", self.text);
        assert_eq!(s["code"], code, "{}", self.text);
        assert_eq!(
            s["reason"].as_str().unwrap_or_default(),
            reason,
            "{}",
            self.text
        );
        assert_eq!(s["message"], message, "{}", self.text);
        s
    }
}

/// One HTTP request with the client's credentials. `headers` are (name, value) pairs.
pub async fn request(
    client: &kube::Client,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Response {
    let mut builder = Request::builder().method(method).uri(path);
    let has_content_type = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    if body.is_some() && !has_content_type {
        builder = builder.header("content-type", "application/json");
    }
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let req = builder
        .body(kube::client::Body::from(bytes))
        .expect("a valid request");
    let resp = client
        .send(req)
        .await
        .expect("the request reaches kube-sim");
    let code = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect_bytes()
        .await
        .expect("the body is read");
    Response {
        code,
        headers,
        text: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub async fn get(client: &kube::Client, path: &str) -> Response {
    request(client, Method::GET, path, &[], None).await
}

pub async fn post(client: &kube::Client, path: &str, body: &Value) -> Response {
    request(client, Method::POST, path, &[], Some(body)).await
}

pub async fn put(client: &kube::Client, path: &str, body: &Value) -> Response {
    request(client, Method::PUT, path, &[], Some(body)).await
}

pub async fn patch(
    client: &kube::Client,
    path: &str,
    content_type: &str,
    body: &Value,
) -> Response {
    request(
        client,
        Method::PATCH,
        path,
        &[("content-type", content_type)],
        Some(body),
    )
    .await
}

pub async fn delete(client: &kube::Client, path: &str, body: Option<&Value>) -> Response {
    request(client, Method::DELETE, path, &[], body).await
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let name = format!(
            "kube-sim-{label}-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, contents).expect("write temp file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a kubectl run produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "kubectl failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// One kubectl binary pointed at a cluster, with a discovery cache of its own.
pub struct Kubectl {
    pub label: &'static str,
    bin: PathBuf,
    kubeconfig: PathBuf,
    cache: PathBuf,
    _dir: TempDir,
}

impl Kubectl {
    pub fn new(label: &'static str, bin: PathBuf, kubeconfig_yaml: &str) -> Self {
        let dir = TempDir::new(label);
        let kubeconfig = dir.write("kubeconfig", kubeconfig_yaml);
        let cache = dir.path().join("cache");
        Kubectl {
            label,
            bin,
            kubeconfig,
            cache,
            _dir: dir,
        }
    }

    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// Runs kubectl with `args`, feeding `stdin` if given, and waits for it (at most two minutes).
    pub async fn run_with_input(&self, args: &[&str], stdin: Option<&str>) -> Run {
        use tokio::io::AsyncWriteExt;
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.bin.display()));
        let mut input = child.stdin.take().expect("piped stdin");
        if let Some(text) = stdin {
            input
                .write_all(text.as_bytes())
                .await
                .expect("kubectl stdin");
        }
        drop(input);
        let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{} {args:?} did not finish in two minutes", self.label))
            .expect("kubectl runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_with_input(args, None).await
    }
}

/// The rows of `kubectl get` output, split on runs of spaces (header first).
pub fn table_rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect()
        })
        .collect()
}
