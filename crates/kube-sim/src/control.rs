//! `/kube-sim/v1/...`: the simulator's own endpoints, for tests that drive it as a separate process.
//! Only the admin may call them (RBAC grants no one else these paths).
//!
//! - `GET /kube-sim/v1/requests`, `DELETE /kube-sim/v1/requests`: the request log.
//! - `POST /kube-sim/v1/faults` `{"matcher": {...}, "count": N, "code": C}`, `DELETE` clears all faults.
//! - `POST /kube-sim/v1/latency` `{"matcher": {...}, "millis": M}`.
//! - `POST /kube-sim/v1/close-watches`, `POST /kube-sim/v1/compact`.
//! - `POST /kube-sim/v1/pod-faults` `{"imageContains": "...", "fault": "ImagePull|Crash|Evict"}`.
//! - `PUT /kube-sim/v1/controllers/NAME` `{"enabled": bool}`.

use std::time::Duration;

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use crate::api::{Req, error_response, json_response};
use crate::core::{Controller, Core, FaultRule, PodFault};
use crate::errors::ApiError;
use crate::faults::Matcher;

pub fn parse_controller(name: &str) -> Option<Controller> {
    Some(match name {
        "scheduler" => Controller::Scheduler,
        "kubelet" => Controller::Kubelet,
        "endpoints" => Controller::Endpoints,
        "workloads" => Controller::Workloads,
        "garbage-collector" => Controller::GarbageCollector,
        "namespaces" => Controller::Namespaces,
        _ => return None,
    })
}

pub fn parse_pod_fault(name: &str) -> Option<PodFault> {
    Some(match name {
        "ImagePull" => PodFault::ImagePull,
        "Crash" => PodFault::Crash,
        "Evict" => PodFault::Evict,
        _ => return None,
    })
}

fn matcher(body: &Value) -> Result<Matcher, ApiError> {
    serde_json::from_value(body["matcher"].clone())
        .map_err(|e| ApiError::bad_request(format!("matcher: {e}")))
}

pub fn handle(core: &Core, req: &Req) -> Response {
    let result = (|| -> Result<Value, ApiError> {
        let body = req.json_body()?;
        let path = req.path.trim_start_matches("/kube-sim/v1/");
        match (&req.method, path) {
            (&Method::GET, "requests") => {
                Ok(serde_json::to_value(core.faults.requests()).unwrap_or_default())
            }
            (&Method::DELETE, "requests") => {
                core.faults.reset_requests();
                Ok(json!({}))
            }
            (&Method::POST, "faults") => {
                let count = body["count"].as_u64().unwrap_or(1) as u32;
                let code = body["code"].as_u64().unwrap_or(500) as u16;
                core.faults.fail_next(matcher(&body)?, count, code);
                Ok(json!({}))
            }
            (&Method::DELETE, "faults") => {
                core.faults.clear();
                Ok(json!({}))
            }
            (&Method::POST, "latency") => {
                let millis = body["millis"].as_u64().unwrap_or(0);
                core.faults
                    .add_latency(matcher(&body)?, Duration::from_millis(millis));
                Ok(json!({}))
            }
            (&Method::POST, "close-watches") => {
                core.close_watches();
                Ok(json!({}))
            }
            (&Method::POST, "compact") => {
                core.store.compact();
                Ok(json!({}))
            }
            (&Method::POST, "pod-faults") => {
                let fault = body["fault"]
                    .as_str()
                    .and_then(parse_pod_fault)
                    .ok_or_else(|| {
                        ApiError::bad_request("fault must be ImagePull, Crash or Evict")
                    })?;
                let image_contains = body["imageContains"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                core.pod_faults
                    .write()
                    .expect("pod faults")
                    .push(FaultRule {
                        image_contains,
                        fault,
                    });
                Ok(json!({}))
            }
            (&Method::PUT, p) if p.starts_with("controllers/") => {
                let name = p.trim_start_matches("controllers/");
                let c = parse_controller(name)
                    .ok_or_else(|| ApiError::bad_request(format!("no controller {name:?}")))?;
                core.switches
                    .set(c, body["enabled"].as_bool().unwrap_or(true));
                Ok(json!({}))
            }
            _ => Err(ApiError::no_route()),
        }
    })();
    match result {
        Ok(v) => json_response(200, &v, &[]),
        Err(e) => error_response(&e),
    }
}
