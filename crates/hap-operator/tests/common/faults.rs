//! A tower layer on the operator's kube-rs client that sees every request it makes to the real API
//! server: it records each one with the answer's status code (so tests count writes), and injects the
//! faults a test asks for: error answers, latency, and watch streams cut short.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use kube::client::Body;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The response body type of kube-rs's default service stack.
type DynBody = Box<dyn HttpBody<Data = Bytes, Error = BoxError> + Send + Unpin>;

/// One request the client made, and how it was answered (0: no answer, the connection failed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub method: Method,
    /// Path and query, e.g. `/api/v1/namespaces/x/pods/y?fieldManager=hap-operator`.
    pub uri: String,
    pub code: u16,
}

impl Call {
    /// Whether this call changed something (anything but GET).
    pub fn is_write(&self) -> bool {
        self.method != Method::GET
    }

    /// Whether it was a `method` on the object path's `resource` (`pods`, `hapcontainers/status`...):
    /// the collection or an object of it, with no further subresource unless `resource` names one.
    pub fn is(&self, method: Method, resource: &str) -> bool {
        if self.method != method {
            return false;
        }
        let path = self.uri.split('?').next().unwrap_or_default();
        let parts: Vec<&str> = path.split('/').collect();
        // .../namespaces/<ns>/<resource>[/<name>[/<subresource>]]
        let Some(at) = parts.iter().position(|p| *p == "namespaces") else {
            return false;
        };
        let rest = &parts[(at + 2).min(parts.len())..];
        match (rest, resource.split_once('/')) {
            ([r], None) | ([r, _], None) => *r == resource,
            ([r, _, s], Some((want_r, want_s))) => *r == want_r && *s == want_s,
            _ => false,
        }
    }
}

/// An error answer for the next `times` requests matching `method` on `resource`.
struct Rule {
    method: Method,
    resource: String,
    times: usize,
    code: u16,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    calls: Vec<Call>,
    latency: Duration,
    cut_watches_after: Option<Duration>,
}

/// What the layer does and has seen; shared by the test and the client.
#[derive(Clone, Default)]
pub struct Faults(Arc<Mutex<State>>);

impl Faults {
    /// Answers the next `times` requests `method` on `resource` with `code` and an API Status body
    /// (reason from the code, message "injected ..."), without passing them on.
    pub fn fail_next(&self, method: Method, resource: &str, times: usize, code: u16) {
        self.0.lock().unwrap().rules.push(Rule {
            method,
            resource: resource.into(),
            times,
            code,
        });
    }

    /// Delays every request by `latency` before it is sent.
    pub fn set_latency(&self, latency: Duration) {
        self.0.lock().unwrap().latency = latency;
    }

    /// Ends every watch stream `after` it opened, as an API server's restart would.
    pub fn cut_watches_after(&self, after: Option<Duration>) {
        self.0.lock().unwrap().cut_watches_after = after;
    }

    pub fn calls(&self) -> Vec<Call> {
        self.0.lock().unwrap().calls.clone()
    }

    /// How many calls were a `method` on `resource` answered with `code`.
    pub fn count(&self, method: Method, resource: &str, code: u16) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.is(method.clone(), resource) && c.code == code)
            .count()
    }

    pub fn writes(&self) -> Vec<Call> {
        self.calls().into_iter().filter(Call::is_write).collect()
    }

    pub fn reset_calls(&self) {
        self.0.lock().unwrap().calls.clear();
    }

    fn record(&self, method: &Method, uri: &str, code: u16) {
        self.0.lock().unwrap().calls.push(Call {
            method: method.clone(),
            uri: uri.to_string(),
            code,
        });
    }

    /// The code of the first rule this request meets, used up by one.
    fn injected(&self, method: &Method, uri: &str) -> Option<u16> {
        let mut state = self.0.lock().unwrap();
        let probe = Call {
            method: method.clone(),
            uri: uri.to_string(),
            code: 0,
        };
        let rule = state
            .rules
            .iter_mut()
            .find(|r| r.times > 0 && probe.is(r.method.clone(), &r.resource))?;
        rule.times -= 1;
        Some(rule.code)
    }
}

impl<S> tower::Layer<S> for Faults {
    type Service = FaultService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FaultService {
            inner,
            faults: self.clone(),
        }
    }
}

pub struct FaultService<S> {
    inner: S,
    faults: Faults,
}

/// The Status body the API server sends with an error.
fn status_response(code: u16) -> Response<DynBody> {
    let reason = match code {
        409 => "Conflict",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        429 => "TooManyRequests",
        _ => "Unknown",
    };
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("injected {}", reason.to_lowercase()),
        "reason": reason, "code": code,
    })
    .to_string();
    let body: DynBody =
        Box::new(http_body_util::Full::new(Bytes::from(body)).map_err(|never| match never {}));
    Response::builder()
        .status(StatusCode::from_u16(code).expect("a status code"))
        .header("content-type", "application/json")
        .body(body)
        .expect("a response")
}

impl<S> tower::Service<Request<Body>> for FaultService<S>
where
    S: tower::Service<Request<Body>, Response = Response<DynBody>, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<DynBody>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let method = req.method().clone();
        let uri = req
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let faults = self.faults.clone();
        if let Some(code) = faults.injected(&method, &uri) {
            faults.record(&method, &uri, code);
            return Box::pin(async move { Ok(status_response(code)) });
        }
        let (latency, cut) = {
            let state = faults.0.lock().unwrap();
            (state.latency, state.cut_watches_after)
        };
        let is_watch = uri.contains("watch=true") || uri.contains("watch=1");
        let sent = self.inner.call(req);
        Box::pin(async move {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            let answer = sent.await;
            let code = answer.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
            faults.record(&method, &uri, code);
            let response = answer?;
            match cut {
                Some(after) if is_watch => Ok(response.map(|body| -> DynBody {
                    Box::new(CutShort {
                        inner: body,
                        deadline: Box::pin(tokio::time::sleep(after)),
                        dropped: false,
                    })
                })),
                _ => Ok(response),
            }
        })
    }
}

/// A response body that ends once its deadline passes, as a watch does when the API server closes it
/// (a restart, a load balancer's idle timeout).
struct CutShort {
    inner: DynBody,
    deadline: Pin<Box<tokio::time::Sleep>>,
    dropped: bool,
}

impl HttpBody for CutShort {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.dropped || self.deadline.as_mut().poll(cx).is_ready() {
            self.dropped = true;
            return Poll::Ready(None);
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(method: Method, uri: &str) -> Call {
        Call {
            method,
            uri: uri.into(),
            code: 200,
        }
    }

    #[test]
    fn a_call_names_its_resource_and_subresource() {
        let status = call(
            Method::PATCH,
            "/apis/hap.cloudian.com/v1alpha1/namespaces/t/hapcontainers/w/status?fieldManager=x",
        );
        assert!(status.is(Method::PATCH, "hapcontainers/status"));
        assert!(!status.is(Method::PATCH, "hapcontainers"));
        let pod = call(
            Method::PATCH,
            "/api/v1/namespaces/t/pods/w-happod?force=true",
        );
        assert!(pod.is(Method::PATCH, "pods"));
        assert!(!pod.is(Method::DELETE, "pods"));
        assert!(call(Method::GET, "/api/v1/namespaces/t/pods?watch=true").is(Method::GET, "pods"));
        assert!(!call(Method::GET, "/api/v1/namespaces/t/pods/p/log").is(Method::GET, "pods"));
    }
}
