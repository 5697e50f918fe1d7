//! Reads a running workspace's activity (I/O): Jupyter's own API with the workspace's token, and the
//! Spark UI's REST API. The culling decision made from it is pure (`culling`).
//!
//! Every Jupyter request carries `no_track_activity=1`, so that reading the activity is not itself
//! activity (Jupyter counts any other authenticated API request as some).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::culling::{Activity, Ongoing};
use super::names::{JUPYTER_PORT, SPARK_UI_PORT};
use super::resolve::TokenSource;

/// How long the whole read may take (its requests run side by side); a workspace that answers
/// slower is not culled this time. It bounds how long a reconcile worker waits on a tenant's pod.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The most bytes one answer may have, and the most Spark applications looked at: what a workspace
/// pod answers is its user's to choose.
const MAX_ANSWER: usize = 64 << 10;
const MAX_APPLICATIONS: usize = 2;

/// Jupyter's `/api/status`.
#[derive(Deserialize)]
struct ServerStatus {
    started: Timestamp,
    last_activity: Timestamp,
    /// Open connections to kernels (a notebook open in a browser holds one).
    #[serde(default)]
    connections: u32,
}

/// An entry of `/api/kernels`.
#[derive(Deserialize)]
struct Kernel {
    #[serde(default)]
    execution_state: String,
    last_activity: Option<Timestamp>,
}

/// An entry of `/api/terminals`: its last input or output.
#[derive(Deserialize)]
struct Terminal {
    last_activity: Option<Timestamp>,
}

/// An entry of the Spark UI's `/api/v1/applications`.
#[derive(Deserialize)]
struct Application {
    id: String,
}

/// What made a request fail, in words for the `Culled` condition (never the token).
type Failure = String;

struct Http {
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Http {
    fn new() -> Self {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// GETs `url` and reads its JSON; `Ok(None)` when nothing listens there, or nothing is served
    /// at that path (a Jupyter without terminals). What fails is said without the answer's text,
    /// which the tenant chooses.
    async fn get<T: DeserializeOwned>(
        &self,
        url: &str,
        token: Option<&str>,
    ) -> Result<Option<T>, Failure> {
        let mut request = http::Request::get(url);
        if let Some(token) = token {
            request = request.header(http::header::AUTHORIZATION, format!("token {token}"));
        }
        let request = request
            .body(Empty::new())
            .map_err(|e| format!("{url}: {e}"))?;
        let response = match self.client.request(request).await {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Ok(None),
            Err(e) => return Err(format!("{url}: {e}")),
        };
        let status = response.status();
        if status == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        {
            // The pod is the tenant's: what it answers is bounded before it is read.
            let body = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|_| format!("{url} answered more than {MAX_ANSWER} bytes, or broke off"))?
                .to_bytes();
            if !status.is_success() {
                return Err(format!("{url} answered {status}"));
            }
            serde_json::from_slice(&body).map(Some).map_err(|e| {
                format!(
                    "{url} answered what is not its API's JSON ({:?} at line {} column {})",
                    e.classify(),
                    e.line(),
                    e.column()
                )
            })
        }
    }
}

/// The workspace's activity as its pod at `pod_ip` shows it. The token is read from its Secret here,
/// at the edge, and goes nowhere but into the request header.
pub async fn read(
    client: &kube::Client,
    namespace: &str,
    token: &TokenSource,
    pod_ip: &str,
) -> Result<Activity, Failure> {
    tokio::time::timeout(READ_TIMEOUT, read_within(client, namespace, token, pod_ip))
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "the workspace did not answer within {}s",
                READ_TIMEOUT.as_secs()
            ))
        })
}

async fn read_within(
    client: &kube::Client,
    namespace: &str,
    token: &TokenSource,
    pod_ip: &str,
) -> Result<Activity, Failure> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get(&token.secret)
        .await
        .map_err(|e| format!("the token's Secret {} could not be read: {e}", token.secret))?;
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&token.key))
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
        .ok_or_else(|| {
            format!(
                "the Secret {} has no key {} to read Jupyter with",
                token.secret, token.key
            )
        })?;
    let http = Http::new();
    let jupyter = format!("http://{}:{JUPYTER_PORT}/api", host(pod_ip));
    let quiet = "no_track_activity=1";
    let token = Some(value.trim());
    let missing = || format!("Jupyter does not answer on {}:{JUPYTER_PORT}", host(pod_ip));
    let url = |what: &str| format!("{jupyter}/{what}?{quiet}");
    let (status_url, kernels_url, terminals_url) =
        (url("status"), url("kernels"), url("terminals"));
    let (status, kernels, terminals, spark_jobs) = futures::join!(
        http.get::<ServerStatus>(&status_url, token),
        http.get::<Vec<Kernel>>(&kernels_url, token),
        http.get::<Vec<Terminal>>(&terminals_url, token),
        running_spark_jobs(&http, pod_ip),
    );
    let status = status?.ok_or_else(missing)?;
    let kernels = kernels?.ok_or_else(missing)?;
    let terminals = terminals?.unwrap_or_default();
    let spark_jobs = spark_jobs?;

    let last = [status.started, status.last_activity]
        .into_iter()
        .chain(kernels.iter().filter_map(|k| k.last_activity))
        .chain(terminals.iter().filter_map(|t| t.last_activity))
        .max()
        .unwrap_or(status.started);
    let ongoing = if kernels.iter().any(|k| k.execution_state == "busy") {
        Some(Ongoing::BusyKernel)
    } else if spark_jobs > 0 {
        Some(Ongoing::SparkJob)
    } else if status.connections > 0 {
        Some(Ongoing::Connection)
    } else {
        None
    };
    Ok(Activity { last, ongoing })
}

/// Jobs running in the Spark application whose UI the workspace serves, if one does.
async fn running_spark_jobs(http: &Http, pod_ip: &str) -> Result<usize, Failure> {
    let ui = format!(
        "http://{}:{SPARK_UI_PORT}/api/v1/applications",
        host(pod_ip)
    );
    let Some(applications) = http.get::<Vec<Application>>(&ui, None).await? else {
        return Ok(0);
    };
    let mut running = 0;
    // Application ids are Spark's own (`local-1700000000000`, `spark-0123abcd`); anything else is
    // not looked up.
    let ids = applications.into_iter().filter(|a| {
        !a.id.is_empty()
            && a.id.len() <= 128
            && a.id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    for app in ids.take(MAX_APPLICATIONS) {
        let jobs: Option<Vec<serde::de::IgnoredAny>> = http
            .get(&format!("{ui}/{}/jobs?status=running", app.id), None)
            .await?;
        running += jobs.map_or(0, |j| j.len());
    }
    Ok(running)
}

/// An IP address as a URL's host (an IPv6 address in brackets).
fn host(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}
