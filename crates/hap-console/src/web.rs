//! The console's routes: sign-in and out, the workspaces page, and the actions on workspaces. Every
//! action checks the session, the form's CSRF token, the tenant mapping and then asks the API server
//! (a SubjectAccessReview) before the console's own ServiceAccount carries it out.

use std::sync::Arc;

use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::cookie::{Key, PrivateCookieJar};
use hap_api::HapQuery;
use hap_api::profile::{self, Catalog};
use k8s_openapi::api::core::v1::ConfigMap;
use maud::Markup;
use serde::Deserialize;

use crate::access::{self, Action, Refusal, Resource};
use crate::identity::{self, ClaimMapping};
use crate::oidc::{Provider, SignInError};
use crate::pages::{self, Frame, Listing, QueryListing};
use crate::session::{self, Session};
use crate::tenants::{self, Tenants};
use crate::workspaces::{self, FieldErrors, NewWorkspace};

pub struct Console {
    pub kube: kube::Client,
    pub provider: Provider,
    pub mapping: ClaimMapping,
    pub key: Key,
    /// Where the tenant mapping (ConfigMap hap-console) is: the console's own namespace.
    pub namespace: String,
    /// Where the profiles (ConfigMap hap-profiles) are: the operator's namespace.
    pub profiles_namespace: String,
    /// Sessions signed out before their end: a copy of the cookie is no session either.
    pub signed_out: SignedOut,
}

#[derive(Clone)]
pub struct Shared(pub Arc<Console>);

impl FromRef<Shared> for Key {
    fn from_ref(s: &Shared) -> Key {
        s.0.key.clone()
    }
}

pub fn router(console: Console) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/sign-in", get(sign_in))
        .route("/callback", get(callback))
        .route("/sign-out", post(sign_out))
        .route("/workspaces/new", get(new_form).post(create))
        .route("/queries", get(queries))
        .route("/workspaces/{namespace}/{name}/{verb}", post(act))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(Shared(Arc::new(console)))
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A page and its status, before it is a response.
type Page = (StatusCode, Markup);

/// A page with its status.
fn answer(status: StatusCode, page: Markup) -> Response {
    (status, page).into_response()
}

fn frame<'a>(title: &'a str, s: &'a Session) -> Frame<'a> {
    Frame {
        title,
        user: Some((&s.identity.username, &s.csrf)),
    }
}

/// The session, or the answer for a request that has none (or one that has ended).
fn signed_in(c: &Console, jar: &PrivateCookieJar) -> Result<Session, Page> {
    let now = now();
    let live = session::current(jar, now).filter(|s| !c.signed_out.holds(&s.csrf, now));
    live.ok_or_else(|| {
        (
            StatusCode::UNAUTHORIZED,
            pages::signed_out(Some(
                "Your session has ended or you are not signed in: sign in again.",
            )),
        )
    })
}

/// The session of a form's request, its CSRF token checked.
fn signed_form(c: &Console, jar: &PrivateCookieJar, csrf: &str) -> Result<Session, Page> {
    let s = signed_in(c, jar)?;
    if s.csrf.is_empty() || csrf != s.csrf {
        return Err((
            StatusCode::FORBIDDEN,
            pages::problem(
                &frame("Refused", &s),
                "This form did not come from your console page: go back, reload it and try again.",
            ),
        ));
    }
    Ok(s)
}

impl Console {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, String> {
        kube::Api::<ConfigMap>::namespaced(self.kube.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| format!("the ConfigMap {name} in {namespace} could not be read: {e}"))
    }

    /// The namespaces the user's groups map to.
    async fn namespaces(&self, s: &Session) -> Result<Vec<String>, String> {
        let mapping = self
            .config_map(&self.namespace, tenants::CONFIG_MAP)
            .await?;
        let tenants = Tenants::from_config_map(mapping.as_ref())?;
        Ok(tenants
            .namespaces_for(&s.identity.groups)
            .into_iter()
            .collect())
    }

    async fn catalog(&self) -> Result<Catalog, String> {
        Ok(self
            .config_map(&self.profiles_namespace, profile::CONFIG_MAP)
            .await?
            .and_then(|cm| cm.data)
            .and_then(|d| d.get(profile::KEY).cloned())
            .map_or(Catalog::Absent, |text| Catalog::parse(&text)))
    }

    async fn may(&self, s: &Session, action: &Action<'_>) -> Result<(), Refusal> {
        access::ask(&self.kube, &s.identity, &self.mapping, action).await
    }
}

async fn home(State(c): State<Shared>, jar: PrivateCookieJar) -> Response {
    let c = &c.0;
    let Ok(s) = signed_in(c, &jar) else {
        return answer(StatusCode::OK, pages::signed_out(None));
    };
    let namespaces = match c.namespaces(&s).await {
        Ok(n) => n,
        Err(why) => {
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::problem(&frame("Workspaces", &s), &why),
            );
        }
    };
    let mut listings = Vec::new();
    for namespace in &namespaces {
        let action = Action {
            verb: "list",
            resource: Resource::HapContainers,
            namespace,
            name: None,
        };
        let workspaces = match c.may(&s, &action).await {
            Ok(()) => workspaces::list(&c.kube, namespace)
                .await
                .map_err(|e| api_words(&e)),
            Err(refusal) => Err(refusal.to_string()),
        };
        listings.push(Listing {
            namespace,
            workspaces,
        });
    }
    let page = pages::workspaces(
        &frame("Workspaces", &s),
        &s.csrf,
        &listings,
        jiff::Timestamp::now(),
    );
    answer(StatusCode::OK, page)
}

async fn queries(State(c): State<Shared>, jar: PrivateCookieJar) -> Response {
    let c = &c.0;
    let s = match signed_in(c, &jar) {
        Ok(s) => s,
        Err(page) => return page.into_response(),
    };
    let f = frame("SQL and dashboards", &s);
    let namespaces = match c.namespaces(&s).await {
        Ok(n) => n,
        Err(why) => return answer(StatusCode::SERVICE_UNAVAILABLE, pages::problem(&f, &why)),
    };
    let mut listings = Vec::new();
    for namespace in &namespaces {
        let action = Action {
            verb: "list",
            resource: Resource::HapQueries,
            namespace,
            name: None,
        };
        let queries = match c.may(&s, &action).await {
            Ok(()) => kube::Api::<HapQuery>::namespaced(c.kube.clone(), namespace)
                .list(&Default::default())
                .await
                .map(|l| l.items)
                .map_err(|e| api_words(&e)),
            Err(refusal) => Err(refusal.to_string()),
        };
        listings.push(QueryListing { namespace, queries });
    }
    answer(StatusCode::OK, pages::queries(&f, &listings))
}

#[derive(Deserialize)]
struct SignInQuery {
    then: Option<String>,
}

async fn sign_in(
    State(c): State<Shared>,
    jar: PrivateCookieJar,
    Query(q): Query<SignInQuery>,
) -> Response {
    let then = session::return_path(q.then);
    match c.0.provider.begin(then, now()).await {
        Ok((url, flight)) => match session::begin_sign_in(jar, &flight) {
            Ok(jar) => (jar, Redirect::to(&url)).into_response(),
            Err(why) => answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                pages::signed_out(Some(&why)),
            ),
        },
        Err(e) => {
            // The details (the IdP's address, the network's error) go to the log, not to the page.
            tracing::warn!(error = %e, "sign-in could not start");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::signed_out(Some(
                    "The sign-in service cannot be reached right now: try again in a moment.",
                )),
            )
        }
    }
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(
    State(c): State<Shared>,
    jar: PrivateCookieJar,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let refuse = |status, why: &str| answer(status, pages::signed_out(Some(why)));
    let stale = "This sign-in has expired or was started elsewhere: sign in again.";
    let flight = session::sign_in_in_flight(&jar, now());
    // Only an answer to the sign-in this browser started is told, and only in the console's own
    // words: a link anyone can make must not put its text on the console's page.
    let ours = flight
        .as_ref()
        .is_some_and(|f| q.state.as_deref() == Some(f.state.as_str()));
    if let Some(error) = q.error {
        tracing::warn!(%error, description = ?q.error_description, ours, "the IdP answered a sign-in with an error");
        let why = match error.as_str() {
            _ if !ours => stale,
            "access_denied" => "The sign-in service refused you access to this console.",
            "login_required" | "interaction_required" | "consent_required" => {
                "The sign-in service needs you to sign in again."
            }
            _ => "The sign-in service could not sign you in: try again, or ask an administrator.",
        };
        return refuse(StatusCode::UNAUTHORIZED, why);
    }
    let (Some(code), Some(state), Some(flight)) = (q.code, q.state, flight) else {
        return refuse(StatusCode::BAD_REQUEST, stale);
    };
    let claims = match c.0.provider.finish(&flight, code, &state).await {
        Ok(claims) => claims,
        Err(SignInError::Stale) => return refuse(StatusCode::BAD_REQUEST, stale),
        Err(e) => {
            tracing::warn!(error = %e, "sign-in refused");
            return refuse(
                StatusCode::UNAUTHORIZED,
                "The sign-in could not be completed: sign in again.",
            );
        }
    };
    let identity = match identity::identify(&claims, &c.0.mapping) {
        Ok(id) => id,
        Err(e) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                &format!("Your account cannot be used here: {e}."),
            );
        }
    };
    tracing::info!(user = %identity.username, "signed in");
    let s = Session {
        identity,
        csrf: random_token(),
        ends: now() + session::SESSION_SECONDS,
    };
    match session::start(jar, &s) {
        Ok(jar) => (jar, Redirect::to(&flight.then)).into_response(),
        Err(why) => refuse(StatusCode::UNAUTHORIZED, &why),
    }
}

/// 32 random bytes as hex, from the operating system's generator (through openidconnect's, which
/// the sign-in's state and nonce come from too).
fn random_token() -> String {
    openidconnect::CsrfToken::new_random_len(32)
        .secret()
        .clone()
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
    State(c): State<Shared>,
    jar: PrivateCookieJar,
    Form(f): Form<CsrfForm>,
) -> Response {
    let s = match signed_form(&c.0, &jar, &f.csrf) {
        Ok(s) => s,
        Err(page) => return page.into_response(),
    };
    c.0.signed_out.add(&s.csrf, s.ends, now());
    (session::end(jar), Redirect::to("/")).into_response()
}

async fn new_form(State(c): State<Shared>, jar: PrivateCookieJar) -> Response {
    let s = match signed_in(&c.0, &jar) {
        Ok(s) => s,
        Err(page) => return page.into_response(),
    };
    form_page(
        &c.0,
        &s,
        &NewWorkspace::default(),
        FieldErrors::new(),
        StatusCode::OK,
    )
    .await
}

async fn form_page(
    c: &Console,
    s: &Session,
    form: &NewWorkspace,
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    let f = frame("New workspace", s);
    let (namespaces, catalog) = match (c.namespaces(s).await, c.catalog().await) {
        (Ok(n), Ok(cat)) => (n, cat),
        (Err(why), _) | (_, Err(why)) => {
            return answer(StatusCode::SERVICE_UNAVAILABLE, pages::problem(&f, &why));
        }
    };
    let profiles = match &catalog {
        Catalog::Listed(p) if !p.is_empty() => Ok(p.as_slice()),
        Catalog::Invalid(why) => Err(format!(
            "The profiles are invalid ({why}): an administrator must fix them."
        )),
        _ => Err("There are no workspace profiles yet: an administrator defines them.".to_string()),
    };
    let page = pages::new_workspace(
        &f,
        &s.csrf,
        &namespaces,
        profiles.as_deref().map_err(String::as_str),
        form,
        &errors,
    );
    answer(status, page)
}

async fn create(
    State(c): State<Shared>,
    jar: PrivateCookieJar,
    Form(form): Form<NewWorkspace>,
) -> Response {
    let s = match signed_form(&c.0, &jar, &form.csrf) {
        Ok(s) => s,
        Err(page) => return page.into_response(),
    };
    let c = &c.0;
    let refused = |errors: FieldErrors, status| form_page(c, &s, &form, errors, status);
    let (namespaces, catalog) = match (c.namespaces(&s).await, c.catalog().await) {
        (Ok(n), Ok(cat)) => (n, cat),
        (Err(why), _) | (_, Err(why)) => {
            return refused(
                FieldErrors::from([("form", why)]),
                StatusCode::SERVICE_UNAVAILABLE,
            )
            .await;
        }
    };
    let hc = match workspaces::build(&form, &catalog, &namespaces, &s.identity.username) {
        Ok(hc) => hc,
        Err(errors) => return refused(errors, StatusCode::UNPROCESSABLE_ENTITY).await,
    };
    let action = Action {
        verb: "create",
        resource: Resource::HapContainers,
        namespace: &form.namespace,
        name: None,
    };
    if let Err(refusal) = c.may(&s, &action).await {
        return refused(
            FieldErrors::from([("form", refusal.to_string())]),
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    match workspaces::create(&c.kube, &hc).await {
        Ok(_) => {
            tracing::info!(user = %s.identity.username, namespace = %form.namespace, name = %form.name, "workspace created");
            Redirect::to("/").into_response()
        }
        Err(e) => {
            let (field, status) = match &e {
                kube::Error::Api(a) if a.code == 409 => ("name", StatusCode::CONFLICT),
                kube::Error::Api(a) if a.code == 422 && a.message.contains("metadata.name") => {
                    ("name", StatusCode::UNPROCESSABLE_ENTITY)
                }
                kube::Error::Api(a) if a.code == 422 && a.message.contains("spec.volume") => {
                    ("size", StatusCode::UNPROCESSABLE_ENTITY)
                }
                kube::Error::Api(a) => (
                    "form",
                    StatusCode::from_u16(a.code).unwrap_or(StatusCode::BAD_GATEWAY),
                ),
                _ => ("form", StatusCode::BAD_GATEWAY),
            };
            refused(FieldErrors::from([(field, api_words(&e))]), status).await
        }
    }
}

/// An API error in words for the page: the API server's own message, which names the field or the
/// quota, and never the console's internals.
fn api_words(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(a) if a.code == 409 => {
            "a workspace of that name already exists there: choose another name".into()
        }
        // The API server's own words about the user's request: the field at fault, the quota.
        kube::Error::Api(a) if a.code == 422 || a.message.contains("exceeded quota") => {
            format!("the cluster refused: {}", a.message)
        }
        // Anything else is about the console itself (its RBAC, the API server's health): logged, and
        // told without the console's internals.
        _ => {
            tracing::warn!(error = %e, "an API request of the console failed");
            "the cluster could not do this just now: try again in a moment, or ask an administrator"
                .into()
        }
    }
}

async fn act(
    State(c): State<Shared>,
    jar: PrivateCookieJar,
    Path((namespace, name, verb)): Path<(String, String, String)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let s = match signed_form(&c.0, &jar, &f.csrf) {
        Ok(s) => s,
        Err(page) => return page.into_response(),
    };
    let c = &c.0;
    let fail = |status, why: String| answer(status, pages::problem(&frame("Refused", &s), &why));
    let api_verb = match verb.as_str() {
        "start" | "stop" => "patch",
        "delete" => "delete",
        _ => return fail(StatusCode::NOT_FOUND, "There is no such action.".into()),
    };
    // Names as Kubernetes allows them, nothing else: a decoded `ws/status` or `..` must never become
    // part of an API path.
    if !hap_api::bounds::HAPCONTAINER_NAME.holds(&name)
        || !hap_api::bounds::NAMESPACE.holds(&namespace)
    {
        return fail(StatusCode::NOT_FOUND, "There is no such workspace.".into());
    }
    // A namespace none of the user's groups maps to is not the console's to show: 404, as for a
    // workspace that does not exist.
    match c.namespaces(&s).await {
        Ok(mine) if mine.contains(&namespace) => {}
        Ok(_) => {
            return fail(
                StatusCode::NOT_FOUND,
                format!("There is no workspace {name} in a namespace of yours."),
            );
        }
        Err(why) => return fail(StatusCode::SERVICE_UNAVAILABLE, why),
    }
    let action = Action {
        verb: api_verb,
        resource: Resource::HapContainers,
        namespace: &namespace,
        name: Some(&name),
    };
    if let Err(refusal) = c.may(&s, &action).await {
        let status = match refusal {
            Refusal::Denied(_) => StatusCode::FORBIDDEN,
            Refusal::Unanswered { .. } => StatusCode::SERVICE_UNAVAILABLE,
        };
        return fail(status, refusal.to_string());
    }
    let done = match verb.as_str() {
        "start" => workspaces::set_size(&c.kube, &namespace, &name, 1)
            .await
            .map(|_| ()),
        "stop" => workspaces::set_size(&c.kube, &namespace, &name, 0)
            .await
            .map(|_| ()),
        _ => workspaces::delete(&c.kube, &namespace, &name).await,
    };
    match done {
        Ok(()) => {
            tracing::info!(user = %s.identity.username, %namespace, %name, %verb, "workspace changed");
            Redirect::to("/").into_response()
        }
        Err(kube::Error::Api(a)) if a.code == 404 => fail(
            StatusCode::NOT_FOUND,
            format!("There is no workspace {name} in {namespace}."),
        ),
        Err(e) => fail(StatusCode::BAD_GATEWAY, api_words(&e)),
    }
}

/// The sessions signed out before their end, kept until that end (one console replica's memory: a
/// cookie copied before sign-out is refused here too).
#[derive(Default)]
pub struct SignedOut(std::sync::Mutex<std::collections::BTreeMap<String, i64>>);

impl SignedOut {
    fn add(&self, id: &str, ends: i64, now: i64) {
        let mut gone = self.0.lock().unwrap_or_else(|e| e.into_inner());
        gone.retain(|_, end| *end > now);
        gone.insert(id.to_string(), ends);
    }

    fn holds(&self, id: &str, now: i64) -> bool {
        let gone = self.0.lock().unwrap_or_else(|e| e.into_inner());
        gone.get(id).is_some_and(|end| *end > now)
    }
}
