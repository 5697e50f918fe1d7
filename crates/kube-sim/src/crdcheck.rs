//! Custom resource admission through `crdcheck serve`: the apiserver's own apiextensions code (pruning,
//! defaulting, OpenAPI schema and CEL validation) in one long-running process, spoken to in JSON lines.
//! kube-sim therefore returns the apiserver's own 422 messages instead of an imitation of them.

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

/// What admission made of a custom resource.
#[derive(Debug)]
pub enum Verdict {
    /// Valid: the pruned and defaulted object, and the paths of the unknown fields that were pruned.
    Allowed { object: Value, pruned: Vec<String> },
    /// Invalid: the apiserver's 422 Status.
    Denied(Value),
}

struct Process {
    // Held so the child lives (and is killed on drop) as long as the client.
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

pub struct CrdCheck {
    path: PathBuf,
    process: Mutex<Option<Process>>,
}

/// Where the set-up script leaves crdcheck: `$KUBE_SIM_CRDCHECK`, else `$HAP_CACHE/bin/crdcheck`
/// (default `~/.cache/hap/bin/crdcheck`), else crdcheck's own build cache.
pub fn locate() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KUBE_SIM_CRDCHECK") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let hap_cache = std::env::var_os("HAP_CACHE")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".cache/hap")));
    let crdcheck_cache = std::env::var_os("CRDCHECK_CACHE")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".cache/hap-crdcheck")));
    [
        hap_cache.map(|c| c.join("bin/crdcheck")),
        crdcheck_cache.map(|c| c.join("crdcheck")),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_file())
}

impl CrdCheck {
    pub fn new(path: PathBuf) -> Self {
        CrdCheck {
            path,
            process: Mutex::new(None),
        }
    }

    fn spawn(&self) -> std::io::Result<Process> {
        let mut child = Command::new(&self.path)
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Ok(Process {
            _child: child,
            stdin,
            stdout,
        })
    }

    /// One request, one response line. A crashed process is restarted once per request.
    async fn call(&self, request: &Value) -> Result<Value, String> {
        let mut guard = self.process.lock().await;
        let mut line = request.to_string();
        line.push('\n');
        for attempt in 0..2 {
            if guard.is_none() {
                *guard = Some(
                    self.spawn()
                        .map_err(|e| format!("cannot start {}: {e}", self.path.display()))?,
                );
            }
            let p = guard.as_mut().expect("just started");
            let mut response = String::new();
            let sent =
                p.stdin.write_all(line.as_bytes()).await.is_ok() && p.stdin.flush().await.is_ok();
            if sent && p.stdout.read_line(&mut response).await.unwrap_or(0) > 0 {
                return serde_json::from_str(&response)
                    .map_err(|e| format!("crdcheck answered {response:?}: {e}"));
            }
            *guard = None;
            if attempt == 1 {
                break;
            }
        }
        Err("crdcheck serve stopped answering".into())
    }

    /// Validates a CRD as the apiserver does on create. Err carries the apiserver's error text.
    pub async fn validate_crd(&self, crd: &Value) -> Result<Result<(), String>, String> {
        let resp = self.call(&json!({"crd": crd})).await?;
        if resp["allowed"].as_bool() == Some(true) {
            return Ok(Ok(()));
        }
        let err = resp["error"].as_str().unwrap_or("invalid crd");
        Ok(Err(err
            .strip_prefix("invalid crd: ")
            .unwrap_or(err)
            .to_string()))
    }

    /// Admits a custom resource on create (`old` None) or update.
    pub async fn admit(
        &self,
        crd: &Value,
        object: &Value,
        old: Option<&Value>,
    ) -> Result<Verdict, String> {
        let resp = self
            .call(&json!({"crd": crd, "object": object, "oldObject": old}))
            .await?;
        if let Some(err) = resp["error"].as_str() {
            return Err(err.to_string());
        }
        if resp["allowed"].as_bool() == Some(true) {
            let pruned = resp["pruned"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect();
            return Ok(Verdict::Allowed {
                object: resp["object"].clone(),
                pruned,
            });
        }
        let mut status = resp["status"].clone();
        status["kind"] = json!("Status");
        status["apiVersion"] = json!("v1");
        Ok(Verdict::Denied(status))
    }
}
