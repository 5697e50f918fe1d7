//! The operator's connection to the API server: kube-rs's client, assembled here instead of by
//! `Client::try_from(config)` for two things that builder does not let a caller set.
//!
//! - **Dead connections are noticed within seconds.** A watch is one long HTTP response; when the
//!   path to the API server breaks without a reset (a network cut, a node gone), nothing arrives and
//!   nothing fails, and kube-rs's own idle timeout is the watch's timeout plus five seconds. TCP
//!   keepalive probes an idle connection after [`KEEPALIVE_IDLE`], [`KEEPALIVE_INTERVAL`] apart, and
//!   `TCP_USER_TIMEOUT` drops a connection whose probes or sent data go unacknowledged for
//!   [`UNACKNOWLEDGED_AFTER`] (on Linux it overrides the probe count, [`KEEPALIVE_PROBES`], so a
//!   silent dead connection goes after about 15 to 20 s). Keepalive
//!   rather than a read timeout: a healthy watch may rightly be silent for most of its timeout, and
//!   the API server speaks HTTP/1.1 to this client, so there are no HTTP/2 pings to use.
//! - **Every watch's answers are noted in [`Freshness`]**, bytes included, so that a watch that
//!   hears bookmarks but no events still counts as alive.
//!
//! - **Every refusal is counted and logged.** kube-rs retries 429, 503 and 504 answers by itself, out
//!   of sight of its caller; a layer inside those retries counts each refused attempt in
//!   `hap_operator_api_refusals_total{code}` and logs the first of a spell as a warning (the rest of
//!   the spell, up to [`REFUSALS_LOGGED_EVERY`], as debug lines).
//!
//! The layers are kube-rs's own, in its order: the base URI, retries of 429/503/504 answers (when
//! the config asks for them, as by default), authentication and extra headers. Left out is its
//! per-request tracing span, which the operator does not read.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt;
use kube::client::retry::RetryPolicy;
use kube::{Client, Config};
use tower::{BoxError, Layer, Service, ServiceBuilder};

use crate::freshness::Freshness;
use crate::pipeline::metrics::Metrics;

/// Idle time before the first keepalive probe.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
/// Time between unanswered probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
/// Unanswered probes before the connection is dropped.
pub const KEEPALIVE_PROBES: u32 = 3;
/// Sent data unacknowledged this long drops the connection.
pub const UNACKNOWLEDGED_AFTER: Duration = Duration::from_secs(15);

/// Refusals within this long of the last warning about them are logged as debug lines.
pub const REFUSALS_LOGGED_EVERY: Duration = Duration::from_secs(10);

/// A client for the API server `config` describes, with dead connections noticed, every watch's
/// answers noted in `metrics`' freshness and every refused request counted in `metrics`.
pub fn client(config: Config, metrics: Arc<Metrics>) -> anyhow::Result<Client> {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_keepalive(Some(KEEPALIVE_IDLE));
    tcp.set_keepalive_interval(Some(KEEPALIVE_INTERVAL));
    tcp.set_keepalive_retries(Some(KEEPALIVE_PROBES));
    tcp.set_tcp_user_timeout(Some(UNACKNOWLEDGED_AFTER));
    let tls = config.rustls_https_connector_with_connector(tcp)?;
    let mut timed = hyper_timeout::TimeoutConnector::new(tls);
    timed.set_connect_timeout(config.connect_timeout);
    timed.set_read_timeout(config.read_timeout);
    timed.set_write_timeout(config.write_timeout);
    timed.set_reset_reader_on_write(config.reset_reader_on_write);
    let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(timed);
    let retry = config
        .default_retry
        .then(|| tower::retry::RetryLayer::new(RetryPolicy::server_retry()));
    // Outermost, the activity layer sees each answer as the watcher does: after kube's retries.
    let service = ServiceBuilder::new()
        .layer(WatchActivityLayer(metrics.freshness()))
        .layer(config.base_uri_layer())
        .option_layer(retry)
        .layer(RefusalsLayer::new(metrics))
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(http);
    Ok(Client::new(service, config.default_namespace))
}

/// The resource a request watches (`pods` for `/api/v1/namespaces/a/pods?watch=true`), if it is a
/// watch.
pub fn watched_resource(uri: &Uri) -> Option<&str> {
    let watch = uri
        .query()?
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    watch.then(|| uri.path().rsplit('/').next()).flatten()
}

/// Notes, for each watch request, its answer and every piece of its body in [`Freshness`].
#[derive(Clone)]
struct WatchActivityLayer(Arc<Freshness>);

impl<S> Layer<S> for WatchActivityLayer {
    type Service = WatchActivity<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WatchActivity {
            inner,
            freshness: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct WatchActivity<S> {
    inner: S,
    freshness: Arc<Freshness>,
}

type BoxedBody<E> = UnsyncBoxBody<Bytes, E>;

impl<S, ReqBody, B> Service<Request<ReqBody>> for WatchActivity<S>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
{
    type Response = Response<BoxedBody<B::Error>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let watched = watched_resource(req.uri()).map(str::to_string);
        let freshness = self.freshness.clone();
        let answer = self.inner.call(req);
        Box::pin(async move {
            let response = answer.await?;
            // An error answer (403 after an RBAC change, 429, 5xx) is no sign of a live watch.
            let Some(resource) = watched.filter(|_| response.status().is_success()) else {
                return Ok(response.map(BodyExt::boxed_unsync));
            };
            freshness.heard(&resource, Instant::now());
            Ok(response.map(|body| {
                body.map_frame(move |frame| {
                    freshness.heard(&resource, Instant::now());
                    frame
                })
                .boxed_unsync()
            }))
        })
    }
}

/// Counts (and logs) each answer that refuses a request for now: 429, or 500 to 504.
#[derive(Clone)]
struct RefusalsLayer {
    metrics: Arc<Metrics>,
    /// When the last warning was logged, and how many refusals followed it as debug lines.
    warned: Arc<Mutex<(Option<Instant>, u64)>>,
}

impl RefusalsLayer {
    fn new(metrics: Arc<Metrics>) -> Self {
        RefusalsLayer {
            metrics,
            warned: Arc::default(),
        }
    }
}

/// Whether an answer with this status refuses a request for now (the same request may succeed later).
pub fn is_refusal(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || (500..=504).contains(&status.as_u16())
}

impl<S> Layer<S> for RefusalsLayer {
    type Service = Refusals<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Refusals {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
struct Refusals<S> {
    inner: S,
    layer: RefusalsLayer,
}

impl<S, ReqBody, B> Service<Request<ReqBody>> for Refusals<S>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let (method, path) = (req.method().clone(), req.uri().path().to_string());
        let layer = self.layer.clone();
        let answer = self.inner.call(req);
        Box::pin(async move {
            let response = answer.await?;
            let status = response.status();
            if is_refusal(status) {
                layer.metrics.refused(status.as_u16());
                let now = Instant::now();
                let mut warned = layer.warned.lock().expect("refusal log state");
                let (last, since) = &mut *warned;
                if last.is_none_or(|t| now.duration_since(t) >= REFUSALS_LOGGED_EVERY) {
                    tracing::warn!(
                        %status, %method, path, refused_since_last_warning = *since,
                        "API server refused a request for now (retried by the client, or by the next reconcile)"
                    );
                    (*last, *since) = (Some(now), 0);
                } else {
                    *since += 1;
                    tracing::debug!(%status, %method, path, "API server refused a request for now");
                }
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_refused_attempt_is_counted_by_its_code_and_other_answers_are_not() {
        let metrics = Arc::new(Metrics::default());
        let answers = [429u16, 429, 503, 200, 404, 409];
        let mut service = ServiceBuilder::new()
            .layer(RefusalsLayer::new(metrics.clone()))
            .service_fn(|code: Request<u16>| async move {
                let status = StatusCode::from_u16(*code.body()).unwrap();
                Ok::<_, std::convert::Infallible>(
                    Response::builder().status(status).body(()).unwrap(),
                )
            });
        for code in answers {
            let answer = tower::ServiceExt::ready(&mut service)
                .await
                .unwrap()
                .call(Request::new(code))
                .await
                .unwrap();
            assert_eq!(
                answer.status().as_u16(),
                code,
                "answers pass through unchanged"
            );
        }
        let text = metrics.render();
        assert!(
            text.contains("hap_operator_api_refusals_total{code=\"429\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("hap_operator_api_refusals_total{code=\"503\"} 1"),
            "{text}"
        );
        for not_refused in ["200", "404", "409"] {
            assert!(!text.contains(&format!("code=\"{not_refused}\"")), "{text}");
        }
    }

    #[test]
    fn a_watch_is_known_by_its_query_and_named_by_its_path() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(
            watched_resource(&uri(
                "https://10.0.0.1/api/v1/namespaces/a/pods?&watch=true&timeoutSeconds=60"
            )),
            Some("pods")
        );
        assert_eq!(
            watched_resource(&uri(
                "/apis/hap.cloudian.com/v1/hapcontainers?watch=1&resourceVersion=7"
            )),
            Some("hapcontainers")
        );
        assert_eq!(watched_resource(&uri("/api/v1/pods?limit=500")), None);
        assert_eq!(watched_resource(&uri("/api/v1/namespaces/a/pods/p")), None);
        assert_eq!(watched_resource(&uri("/api/v1/pods?watch=false")), None);
    }
}
