//! The HTTP API: one handler that authenticates, routes, authorizes, applies injected faults, and hands
//! the request to the verb's implementation.

pub mod discovery;
mod jsonpatch;
pub mod openapi;
mod options;
pub mod path;
mod protobuf;
mod reads;
mod scale;
mod watch;
mod writes;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::auth::{Identity, bearer};
use crate::core::Core;
use crate::errors::ApiError;
use crate::faults::RequestRecord;
use crate::rbac::{Attributes, User, forbidden_message};
use crate::registry::{ResourceType, StorageKey};
use crate::tables::IncludeObject;
use path::{ResourcePath, Target};

/// A request, read whole.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Req {
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn accept(&self) -> &str {
        self.header(header::ACCEPT)
    }

    pub fn content_type(&self) -> &str {
        self.header(header::CONTENT_TYPE)
    }

    /// The default field manager: the User-Agent up to its first '/', as the apiserver derives it.
    pub fn default_manager(&self) -> String {
        let ua = self.header(header::USER_AGENT);
        let prefix = ua.split('/').next().unwrap_or_default();
        if prefix.is_empty() {
            "unknown".into()
        } else {
            prefix.chars().take(128).collect()
        }
    }

    /// The body as JSON (or YAML, which kubectl never sends but the apiserver accepts).
    pub fn json_body(&self) -> Result<Value, ApiError> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        let media = self
            .content_type()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim();
        if media == "application/vnd.kubernetes.protobuf"
            && let Some(v) = protobuf::decode(&self.body)
        {
            return Ok(v);
        }
        let decodable = media.is_empty() || media.ends_with("json") || media.ends_with("yaml");
        if !decodable {
            // Other protobuf and all CBOR bodies are not decoded: kube-sim speaks JSON (and YAML).
            return Err(ApiError::unsupported_media_type(&[
                "application/json",
                "application/yaml",
            ]));
        }
        serde_json::from_slice(&self.body).or_else(|json_err| {
            let text = std::str::from_utf8(&self.body)
                .map_err(|_| ApiError::bad_request(json_err.to_string()))?;
            serde_saphyr::from_str::<Value>(text).map_err(|_| {
                ApiError::bad_request(format!(
                    "couldn't get version/kind; json parse error: {json_err}"
                ))
            })
        })
    }
}

/// What form a read answers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    Table(IncludeObject),
    Metadata,
}

/// Content negotiation on the Accept header: the first acceptable media type wins.
pub fn negotiate(req: &Req) -> Result<Output, ApiError> {
    let accept = req.accept();
    if accept.trim().is_empty() {
        return Ok(Output::Json);
    }
    for part in accept.split(',') {
        let mut params = part.split(';').map(str::trim);
        let media = params.next().unwrap_or_default();
        let params: Vec<&str> = params.collect();
        if !matches!(
            media,
            "application/json" | "*/*" | "application/*" | "application/yaml"
        ) {
            continue;
        }
        let as_ = params.iter().find_map(|p| p.strip_prefix("as="));
        let group = params.iter().find_map(|p| p.strip_prefix("g="));
        match (as_, group) {
            (None, _) => return Ok(Output::Json),
            (Some("Table"), Some("meta.k8s.io")) => {
                return Ok(Output::Table(IncludeObject::parse(req.q("includeObject"))));
            }
            (Some("PartialObjectMetadata" | "PartialObjectMetadataList"), Some("meta.k8s.io")) => {
                return Ok(Output::Metadata);
            }
            _ => continue,
        }
    }
    Err(ApiError::not_acceptable())
}

pub fn json_response(code: u16, body: &Value, warnings: &[String]) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for w in warnings {
        let value = format!("299 - {:?}", w);
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

pub fn error_response(e: &ApiError) -> Response {
    let status = e.to_status();
    let mut resp = json_response(e.code, &status, &[]);
    // As the apiserver does, a Status that asks for a retry says when in a header too.
    if let Some(seconds) = status["details"]["retryAfterSeconds"]
        .as_u64()
        .filter(|s| *s > 0)
    {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    resp
}

/// An object as the served type presents it.
pub fn present(rt: &ResourceType, obj: &Value) -> Value {
    let mut o = match rt.view {
        crate::registry::View::EventsV1 => crate::events_view::to_v1(obj),
        crate::registry::View::Plain => obj.clone(),
    };
    o["apiVersion"] = json!(rt.api_version());
    o["kind"] = json!(rt.kind);
    o
}

pub fn router(core: Arc<Core>) -> Router {
    Router::new().fallback(handle).with_state(core)
}

async fn handle(State(core): State<Arc<Core>>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => return error_response(&ApiError::bad_request(format!("reading the body: {e}"))),
    };
    let query = parts
        .uri
        .query()
        .map(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default())
        .unwrap_or_default();
    let req = Req {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query,
        headers: parts.headers,
        body,
    };
    if matches!(req.path.as_str(), "/healthz" | "/livez" | "/readyz") {
        let mut resp = Response::new(Body::from("ok"));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return resp;
    }
    // No credentials at all is the anonymous user, as with the apiserver's default --anonymous-auth;
    // credentials that do not check out are a 401.
    let user = match bearer(
        req.headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    ) {
        None => User::anonymous(),
        Some(token) => {
            let identity = core.tokens.lookup(token).filter(|id| match id {
                Identity::Admin => true,
                // A ServiceAccount token is valid only while its account exists.
                Identity::ServiceAccount { namespace, name } => core
                    .get(&StorageKey::new("", "serviceaccounts"), namespace, name)
                    .is_some(),
            });
            match identity {
                Some(identity) => identity.user(),
                None => return error_response(&ApiError::unauthorized()),
            }
        }
    };
    let user = match crate::impersonation::acting_user(&core.policy(), user, &req.headers) {
        Ok(u) => u,
        Err(e) => return error_response(&e),
    };
    match path::parse(&req.path) {
        (Target::Resource(p), legacy_watch) => resource(&core, &user, &req, p, legacy_watch).await,
        (Target::NonResource, _) => non_resource(&core, &user, &req).await,
    }
}

fn authorize(core: &Core, user: &User, attrs: &Attributes) -> Result<(), ApiError> {
    core.policy().authorize(user, attrs).map_err(|reason| {
        let msg = forbidden_message(user, attrs, &reason);
        let details = if attrs.resource_request {
            let mut d = json!({"kind": attrs.resource});
            if !attrs.name.is_empty() {
                d["name"] = json!(attrs.name);
            }
            if !attrs.group.is_empty() {
                d["group"] = json!(attrs.group);
            }
            Some(d)
        } else {
            None
        };
        ApiError::forbidden(msg, details)
    })
}

async fn non_resource(core: &Core, user: &User, req: &Req) -> Response {
    let attrs = Attributes {
        verb: req.method.as_str().to_lowercase(),
        path: req.path.clone(),
        ..Default::default()
    };
    if let Err(e) = authorize(core, user, &attrs) {
        return error_response(&e);
    }
    if req.path.starts_with("/kube-sim/") {
        return crate::control::handle(core, req);
    }
    if req.method != Method::GET {
        return error_response(&ApiError::no_route());
    }
    let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let aggregated = discovery::aggregated_version_requested(req.accept());
    let discovery_response = |v: Value, as_: &str, version: &str| {
        let mut resp = json_response(200, &v, &[]);
        let ct = format!("application/json;g=apidiscovery.k8s.io;v={version};as={as_}");
        if let Ok(h) = HeaderValue::from_str(&ct) {
            resp.headers_mut().insert(header::CONTENT_TYPE, h);
        }
        resp
    };
    match parts.as_slice() {
        ["version"] => json_response(200, &discovery::version(), &[]),
        ["api"] => match aggregated {
            Some(v) => discovery_response(
                discovery::aggregated(&core.registry, true, &format!("apidiscovery.k8s.io/{v}")),
                "APIGroupDiscoveryList",
                v,
            ),
            None => json_response(
                200,
                &discovery::core_versions(&core.address.read().expect("address")),
                &[],
            ),
        },
        ["apis"] => match aggregated {
            Some(v) => discovery_response(
                discovery::aggregated(&core.registry, false, &format!("apidiscovery.k8s.io/{v}")),
                "APIGroupDiscoveryList",
                v,
            ),
            None => json_response(200, &discovery::group_list(&core.registry), &[]),
        },
        ["apis", group] => match discovery::group(&core.registry, group) {
            Some(g) => json_response(200, &g, &[]),
            None => error_response(&ApiError::no_route()),
        },
        ["api", version] => match discovery::resource_list(&core.registry, "", version) {
            Some(l) => json_response(200, &l, &[]),
            None => error_response(&ApiError::no_route()),
        },
        ["apis", group, version] => {
            match discovery::resource_list(&core.registry, group, version) {
                Some(l) => json_response(200, &l, &[]),
                None => error_response(&ApiError::no_route()),
            }
        }
        ["openapi", "v2"] => {
            if req.accept().contains("protobuf") {
                let mut resp = Response::new(Body::from(openapi::v2_protobuf()));
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                    ),
                );
                resp
            } else {
                json_response(200, &openapi::v2_json(), &[])
            }
        }
        ["openapi", "v3"] => json_response(200, &openapi::v3_index(&core.registry), &[]),
        ["openapi", "v3", rest @ ..] => {
            let gv = rest.join("/");
            match openapi::v3_documents(&core.registry).get(&gv) {
                Some(doc) => json_response(200, doc, &[]),
                None => error_response(&ApiError::no_route()),
            }
        }
        _ => error_response(&ApiError::no_route()),
    }
}

fn verb_of(req: &Req, p: &ResourcePath, legacy_watch: bool) -> Option<&'static str> {
    let watch = legacy_watch || matches!(req.q("watch"), Some("true" | "1"));
    Some(match req.method {
        Method::GET if watch => "watch",
        Method::GET if p.name.is_empty() => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if p.name.is_empty() => "deletecollection",
        Method::DELETE => "delete",
        _ => return None,
    })
}

/// The name a list or watch asks for, as the apiserver's RequestInfo finds it: a field selector term
/// `metadata.name=X` (or `==`), X being a valid path segment. Then RBAC resourceNames apply to it.
fn selected_name(req: &Req) -> Option<String> {
    let selector = req.q("fieldSelector")?;
    let mut found = None;
    for term in selector.split(',').filter(|t| !t.is_empty()) {
        // The first operator in the term splits it, as apimachinery's splitTerm reads it; a term
        // without one makes the selector unparsable, and then no name is taken from it.
        let at = term.find('=')?;
        let (field, op_len) = match term[..at].strip_suffix('!') {
            Some(field) => (field, 0),
            None if term[at..].starts_with("==") => (&term[..at], 2),
            None => (&term[..at], 1),
        };
        if op_len > 0 && field == "metadata.name" && found.is_none() {
            found = Some(term[at + op_len..].to_string());
        }
    }
    found.filter(|n| !matches!(n.as_str(), "" | "." | "..") && !n.contains('/') && !n.contains('%'))
}

/// Serves a request for an API resource and records it in the request log, whatever its outcome.
async fn resource(
    core: &Arc<Core>,
    user: &User,
    req: &Req,
    p: ResourcePath,
    legacy_watch: bool,
) -> Response {
    let verb = verb_of(req, &p, legacy_watch);
    let mut record = RequestRecord {
        user: user.name.clone(),
        verb: verb
            .map(str::to_string)
            .unwrap_or_else(|| req.method.as_str().to_lowercase()),
        group: p.group.clone(),
        resource: p.resource.clone(),
        subresource: p.subresource.clone(),
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        code: 0,
    };
    let response = serve_resource(core, user, req, &p, verb, &record).await;
    record.code = response.status().as_u16();
    core.faults.record(record);
    response
}

/// In the apiserver's order: authorization first (so a request for a type that is not served, or with
/// a method that has no route, is still a 403 for those who may not make it), then routing (404, 405).
async fn serve_resource(
    core: &Arc<Core>,
    user: &User,
    req: &Req,
    p: &ResourcePath,
    verb: Option<&'static str>,
    record: &RequestRecord,
) -> Response {
    let name = if p.name.is_empty() && matches!(verb, Some("list" | "watch")) {
        selected_name(req).unwrap_or_default()
    } else {
        p.name.clone()
    };
    let attrs = Attributes {
        verb: record.verb.clone(),
        resource_request: true,
        group: p.group.clone(),
        resource: p.resource.clone(),
        subresource: p.subresource.clone(),
        namespace: p.namespace.clone(),
        name,
        path: req.path.clone(),
    };
    if let Err(e) = authorize(core, user, &attrs) {
        return error_response(&e);
    }
    let Some(rt) = core.find(&p.group, &p.version, &p.resource) else {
        return error_response(&ApiError::no_route());
    };
    let sub_ok = p.subresource.is_empty() || rt.subresources.contains(&p.subresource.as_str());
    let scope_ok = if rt.namespaced {
        !p.namespace.is_empty() || (p.name.is_empty() && matches!(req.method, Method::GET))
    } else {
        p.namespace.is_empty() || rt.plural == "namespaces"
    };
    if !sub_ok || !scope_ok {
        return error_response(&ApiError::no_route());
    }
    // Collections take GET, POST and DELETE; objects GET, PUT, PATCH and DELETE; subresources what
    // they serve. Anything else has no route.
    let Some(verb) = verb else {
        return error_response(&ApiError::no_method());
    };
    let routed = match (p.name.is_empty(), verb) {
        (true, "update" | "patch") => false,
        (false, "create") => !p.subresource.is_empty(),
        _ => true,
    };
    let verb_allowed = routed
        && if p.subresource.is_empty() {
            rt.verbs.contains(&verb)
        } else {
            matches!(
                (p.subresource.as_str(), verb),
                ("status" | "scale", "get" | "update" | "patch")
                    | ("binding" | "eviction", "create")
                    | ("finalize", "update")
            )
        };
    if !verb_allowed {
        return error_response(&ApiError::no_method());
    }
    let delay = core.faults.delay_for(record);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(code) = core.faults.take_failure(record) {
        return error_response(&ApiError::injected(code));
    }
    let ctx = Ctx {
        core,
        user,
        req,
        rt: &rt,
        p,
    };
    match verb {
        "get" => reads::get(&ctx),
        "list" => reads::list(&ctx),
        "watch" => watch::watch(&ctx),
        "create" => writes::create(&ctx).await,
        "update" => writes::update(&ctx).await,
        "patch" => writes::patch(&ctx).await,
        "delete" => writes::delete(&ctx),
        _ => writes::delete_collection(&ctx),
    }
    .unwrap_or_else(|e| error_response(&e))
}

/// Everything a verb implementation needs.
pub struct Ctx<'a> {
    pub core: &'a Arc<Core>,
    pub user: &'a User,
    pub req: &'a Req,
    pub rt: &'a ResourceType,
    pub p: &'a ResourcePath,
}
