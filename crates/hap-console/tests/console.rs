//! The console against a real IdP and a real API server: Keycloak on loopback
//! (testing/oidc/keycloak.sh: alice in group team-a, bob in team-b) and the local cluster. The
//! console runs in the test with a token of its own ServiceAccount, bound to exactly the rules of
//! deploy/multi-tenant/console_rbac.yaml; the users' rights are RoleBindings of the tenant role
//! (deploy/multi-tenant/tenant_roles.yaml) to their OIDC groups, as an admin would write them. The
//! requests are a browser's: the IdP's own login form filled in and posted, cookies kept and sent back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hap_api::HapContainer;
use hap_console::identity::ClaimMapping;
use hap_console::oidc::{Provider, Registration};
use hap_console::web::{Console, router};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::{ApiResource, Discovery, Scope};
use kube::{Client, ResourceExt};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The IdP's settings and the users' passwords: the file HAP_TEST_OIDC_ENV names, or the one
/// testing/oidc/keycloak.sh start prints (it starts Keycloak, or finds it running).
fn idp() -> BTreeMap<String, String> {
    let path = match std::env::var_os("HAP_TEST_OIDC_ENV") {
        Some(p) => PathBuf::from(p),
        None => {
            let out = std::process::Command::new(repo().join("testing/oidc/keycloak.sh"))
                .arg("start")
                .stderr(std::process::Stdio::inherit())
                .output()
                .expect("testing/oidc/keycloak.sh start");
            assert!(out.status.success(), "Keycloak did not start");
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        }
    };
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn admin() -> Client {
    let path = std::env::var("HAP_TEST_KUBECONFIG")
        .expect("HAP_TEST_KUBECONFIG: the cluster's admin kubeconfig (scripts/test.sh sets it)");
    let kubeconfig = kube::config::Kubeconfig::read_from(path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// Applies a manifest's documents as the admin, server-side, after `edit` has had its way with each.
async fn apply(client: &Client, yaml: &str, edit: impl Fn(&mut Value)) {
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    for mut doc in serde_saphyr::from_multiple::<Value>(yaml).unwrap() {
        if doc.is_null() {
            continue;
        }
        edit(&mut doc);
        let obj: DynamicObject = serde_json::from_value(doc).unwrap();
        let gvk = kube::core::GroupVersionKind::try_from(obj.types.as_ref().unwrap()).unwrap();
        let (ar, caps): (ApiResource, _) = discovery.resolve_gvk(&gvk).unwrap();
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => {
                Api::namespaced_with(client.clone(), &obj.namespace().unwrap(), &ar)
            }
            Scope::Cluster => Api::all_with(client.clone(), &ar),
        };
        api.patch(
            &obj.name_any(),
            &PatchParams::apply("hap-console-tests").force(),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap_or_else(|e| panic!("applying {} {}: {e}", gvk.kind, obj.name_any()));
    }
}

/// A browser as far as the console and the IdP can tell: no redirects followed unasked, cookies kept
/// (all on 127.0.0.1, where cookies do not tell ports apart) and sent back.
struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: StatusCode,
    location: String,
    body: String,
}

impl Browser {
    fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let response = request.header("cookie", cookie).send().await.unwrap();
        for set in response.headers().get_all("set-cookie") {
            let c = cookie::Cookie::parse(set.to_str().unwrap().to_string()).unwrap();
            let gone =
                c.max_age().is_some_and(|a| a.is_zero() || a.is_negative()) || c.value().is_empty();
            if gone {
                self.cookies.remove(c.name());
            } else {
                self.cookies.insert(c.name().into(), c.value().into());
            }
        }
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = response.text().await.unwrap();
        Page {
            status,
            location,
            body,
        }
    }

    async fn get(&mut self, url: &str) -> Page {
        let r = self.http.get(url);
        self.send(r).await
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let r = self.http.post(url).form(form);
        self.send(r).await
    }
}

/// The first match of `pattern`'s group 1 in `text`, HTML entities of URLs undone.
fn find(text: &str, pattern: &str) -> String {
    regex::Regex::new(pattern)
        .unwrap()
        .captures(text)
        .unwrap_or_else(|| panic!("no {pattern} in {text}"))[1]
        .replace("&amp;", "&")
}

struct World {
    admin: Client,
    console: String,
    idp: BTreeMap<String, String>,
    system: String,
    team_a: String,
    team_b: String,
}

impl World {
    /// Signs `user` in through the IdP's login form; the browser ends on the console's home page.
    async fn sign_in(&self, b: &mut Browser, user: &str, password: &str) -> Page {
        let start = b.get(&format!("{}/sign-in", self.console)).await;
        assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
        assert!(
            start
                .location
                .starts_with(&self.idp["HAP_TEST_OIDC_ISSUER"])
        );
        assert!(start.location.contains("code_challenge_method=S256"));
        let login = b.get(&start.location).await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.body);
        let action = find(&login.body, r#"id="kc-form-login"[^>]*action="([^"]+)""#);
        let back = b
            .post(&action, &[("username", user), ("password", password)])
            .await;
        assert_eq!(back.status, StatusCode::FOUND, "{}", back.body);
        assert!(
            back.location
                .starts_with(&format!("{}/callback?", self.console))
        );
        let signed = b.get(&back.location).await;
        assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
        b.get(&format!("{}{}", self.console, signed.location)).await
    }

    fn hapcontainers(&self, ns: &str) -> Api<HapContainer> {
        Api::namespaced(self.admin.clone(), ns)
    }

    async fn tenant_binding(&self, ns: &str, group: &str) {
        let binding: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": "analysts", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "hap-tenant-edit"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": format!("oidc:{group}")}]
        }))
        .unwrap();
        Api::<RoleBinding>::namespaced(self.admin.clone(), ns)
            .create(&PostParams::default(), &binding)
            .await
            .unwrap();
    }
}

/// The cluster side: three namespaces (the console's, tenant a's, tenant b's), the CRDs, the tenant
/// roles, the console's RBAC, its ConfigMaps, and a token of its ServiceAccount.
async fn world() -> (World, Client) {
    let admin = admin().await;
    let suffix = format!("{:08x}", rand_u32());
    let system = format!("hap-console-{suffix}");
    let (team_a, team_b) = (format!("{system}-a"), format!("{system}-b"));
    for ns in [&system, &team_a, &team_b] {
        let n: Namespace = serde_json::from_value(
            json!({"metadata": {"name": ns, "labels": {"hap.cloudian.com/test": "console"}}}),
        )
        .unwrap();
        Api::<Namespace>::all(admin.clone())
            .create(&PostParams::default(), &n)
            .await
            .unwrap();
    }
    for f in [
        "deploy/crds/hap.cloudian.com_hapcontainers_crd.yaml",
        "deploy/multi-tenant/tenant_roles.yaml",
    ] {
        apply(
            &admin,
            &std::fs::read_to_string(repo().join(f)).unwrap(),
            |_| {},
        )
        .await;
    }
    // The console's RBAC as shipped, in this test's namespace, its cluster-wide names made its own.
    let rbac =
        std::fs::read_to_string(repo().join("deploy/multi-tenant/console_rbac.yaml")).unwrap();
    let name = format!("hap-console-{suffix}");
    apply(&admin, &rbac, |doc| {
        let text = serde_json::to_string(doc)
            .unwrap()
            .replace("\"hap-system\"", &format!("\"{system}\""));
        *doc = serde_json::from_str(&text).unwrap();
        let kind = doc["kind"].as_str().unwrap().to_string();
        if kind.starts_with("Cluster") {
            doc["metadata"]["name"] = json!(name);
        }
        if kind == "ClusterRoleBinding" {
            doc["roleRef"]["name"] = json!(name);
        }
    })
    .await;
    let config_maps = format!(
        "apiVersion: v1
kind: ConfigMap
metadata: {{name: hap-console, namespace: {system}}}
data:
  tenants.yaml: |
    - {{group: team-a, namespaces: [{team_a}]}}
    - {{group: team-b, namespaces: [{team_b}]}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: hap-profiles, namespace: {system}}}
data:
  profiles.yaml: |
    - name: small
      displayName: Small
      resources: {{requests: {{cpu: 50m, memory: 256Mi}}, limits: {{cpu: '1', memory: 2Gi}}}}
      volume: {{size: 1Gi, maxSize: 5Gi}}
"
    );
    apply(&admin, &config_maps, |_| {}).await;

    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 3600}}))
            .unwrap();
    let token = Api::<ServiceAccount>::namespaced(admin.clone(), &system)
        .create_token_request("hap-console", &Default::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let path = std::env::var("HAP_TEST_KUBECONFIG").unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(path).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    config.auth_info = kube::config::AuthInfo {
        token: Some(token.into()),
        ..Default::default()
    };
    let console_client = Client::try_from(config).unwrap();
    let world = World {
        admin,
        console: String::new(),
        idp: idp(),
        system,
        team_a,
        team_b,
    };
    (world, console_client)
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).unwrap();
    u32::from_le_bytes(b)
}

/// Starts the console on a loopback port with this IdP; returns its URL.
async fn serve(w: &World, kube: Client, issuer: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let provider = Provider::new(
        Registration {
            issuer: issuer.into(),
            client_id: w.idp["HAP_TEST_OIDC_CLIENT_ID"].clone(),
            client_secret: w.idp["HAP_TEST_OIDC_CLIENT_SECRET"].clone(),
            redirect_url: format!("{url}/callback"),
        },
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    );
    let console = Console {
        kube,
        provider,
        mapping: ClaimMapping::default(),
        key: hap_console::session::key(&[42u8; 64]).unwrap(),
        namespace: w.system.clone(),
        profiles_namespace: w.system.clone(),
    };
    tokio::spawn(async move { axum::serve(listener, router(console)).await });
    url
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster and Keycloak, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn analysts_sign_in_and_see_and_change_only_what_the_api_server_allows() {
    let (mut w, console_client) = world().await;
    let issuer = w.idp["HAP_TEST_OIDC_ISSUER"].clone();
    w.console = serve(&w, console_client.clone(), &issuer).await;
    w.tenant_binding(&w.team_a, "team-a").await;
    w.tenant_binding(&w.team_b, "team-b").await;
    let (alice_pw, bob_pw) = (
        w.idp["HAP_TEST_OIDC_ALICE_PASSWORD"].clone(),
        w.idp["HAP_TEST_OIDC_BOB_PASSWORD"].clone(),
    );

    // Signed out: the sign-in page; a form without a session is refused.
    let mut alice = Browser::new();
    let home = alice.get(&w.console).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Sign in"), "{}", home.body);
    let stop = alice
        .post(
            &format!("{}/workspaces/{}/ws/stop", w.console, w.team_a),
            &[("csrf", "x")],
        )
        .await;
    assert_eq!(stop.status, StatusCode::UNAUTHORIZED);

    // Alice signs in through the IdP: her namespace, as oidc:alice.
    let home = w.sign_in(&mut alice, "alice", &alice_pw).await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(home.body.contains("oidc:alice"), "{}", home.body);
    assert!(home.body.contains(&format!("Namespace {}", w.team_a)));
    assert!(!home.body.contains(&w.team_b), "{}", home.body);
    let csrf = find(&home.body, r#"name="csrf" value="([0-9a-zA-Z_-]+)""#);

    // The form: its mistakes next to their fields, and nothing made.
    let new = format!("{}/workspaces/new", w.console);
    let form = alice.get(&new).await;
    assert!(
        form.body.contains(r#"<option value="small""#),
        "{}",
        form.body
    );
    let team_a = w.team_a.clone();
    let bad = alice
        .post(
            &new,
            &[
                ("csrf", &csrf),
                ("namespace", &team_a),
                ("name", "Bad_Name"),
                ("profile", "small"),
                ("size", "50Gi"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains(r#"id="name-error""#), "{}", bad.body);
    assert!(
        bad.body.contains(r#"id="size-error""#) || bad.body.contains("lower-case"),
        "{}",
        bad.body
    );
    let big = alice
        .post(
            &new,
            &[
                ("csrf", &csrf),
                ("namespace", &team_a),
                ("name", "ws"),
                ("profile", "small"),
                ("size", "50Gi"),
            ],
        )
        .await;
    assert_eq!(big.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        big.body.contains("5Gi"),
        "the profile's limit: {}",
        big.body
    );
    let tb = w.team_b.clone();
    let elsewhere = alice
        .post(
            &new,
            &[
                ("csrf", &csrf),
                ("namespace", &tb),
                ("name", "ws"),
                ("profile", "small"),
                ("size", ""),
            ],
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        w.hapcontainers(&w.team_a)
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        w.hapcontainers(&w.team_b)
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // A form posted without the session's token (another site's page) is refused.
    let forged = alice
        .post(
            &new,
            &[
                ("csrf", "not-it"),
                ("namespace", &team_a),
                ("name", "ws"),
                ("profile", "small"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // Made from the profile, by alice's name; a second of the same name is refused in words.
    let made = alice
        .post(
            &new,
            &[
                ("csrf", &csrf),
                ("namespace", &team_a),
                ("name", "ws"),
                ("profile", "small"),
                ("size", "2Gi"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let hc = w.hapcontainers(&w.team_a).get("ws").await.unwrap();
    assert_eq!(hc.spec.profile.as_deref(), Some("small"));
    assert_eq!(
        hc.annotations()["hap.cloudian.com/created-by"],
        "oidc:alice"
    );
    let again = alice
        .post(
            &new,
            &[
                ("csrf", &csrf),
                ("namespace", &team_a),
                ("name", "ws"),
                ("profile", "small"),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.body.contains("already exists"), "{}", again.body);
    let home = alice.get(&w.console).await;
    assert!(
        home.body.contains(&format!("id=\"ws-{}-ws\"", w.team_a)),
        "{}",
        home.body
    );

    // Stop and start: its size.
    let act = |verb: &str| format!("{}/workspaces/{}/ws/{verb}", w.console, w.team_a);
    assert_eq!(
        alice.post(&act("stop"), &[("csrf", &csrf)]).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        w.hapcontainers(&w.team_a)
            .get("ws")
            .await
            .unwrap()
            .spec
            .size,
        0
    );
    assert_eq!(
        alice.post(&act("start"), &[("csrf", &csrf)]).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        w.hapcontainers(&w.team_a)
            .get("ws")
            .await
            .unwrap()
            .spec
            .size,
        1
    );

    // Bob sees only his namespace; every URL to alice's workspace answers 404, and changes nothing.
    let mut bob = Browser::new();
    let home = w.sign_in(&mut bob, "bob", &bob_pw).await;
    assert!(
        home.body.contains(&format!("Namespace {}", w.team_b)),
        "{}",
        home.body
    );
    assert!(!home.body.contains(&w.team_a), "{}", home.body);
    let bob_csrf = find(&home.body, r#"name="csrf" value="([0-9a-zA-Z_-]+)""#);
    for verb in ["stop", "start", "delete"] {
        let r = bob.post(&act(verb), &[("csrf", &bob_csrf)]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{verb}: {}", r.body);
    }
    let r = bob
        .post(
            &new,
            &[
                ("csrf", &bob_csrf),
                ("namespace", &team_a),
                ("name", "bobs"),
                ("profile", "small"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        w.hapcontainers(&w.team_a)
            .get("ws")
            .await
            .unwrap()
            .spec
            .size,
        1
    );
    assert!(
        w.hapcontainers(&w.team_a)
            .get_opt("bobs")
            .await
            .unwrap()
            .is_none()
    );

    // Alice's RBAC removed mid-session: her next action is refused by the API server's answer.
    Api::<RoleBinding>::namespaced(w.admin.clone(), &w.team_a)
        .delete("analysts", &DeleteParams::default())
        .await
        .unwrap();
    let mut refused = None;
    // RBAC changes reach the authorizer's cache within a moment.
    for _ in 0..50 {
        let r = alice.post(&act("stop"), &[("csrf", &csrf)]).await;
        if r.status == StatusCode::FORBIDDEN {
            refused = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        // The stop went through: undo it, to see the refusal on the next try.
        w.hapcontainers(&w.team_a)
            .patch(
                "ws",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"size": 1}})),
            )
            .await
            .unwrap();
    }
    let refused = refused.expect("alice refused once her RoleBinding is gone");
    assert!(
        refused.body.contains(&format!(
            "you may not patch hapcontainers/ws in namespace {}",
            w.team_a
        )),
        "{}",
        refused.body
    );
    assert_eq!(
        w.hapcontainers(&w.team_a)
            .get("ws")
            .await
            .unwrap()
            .spec
            .size,
        1
    );
    let home = alice.get(&w.console).await;
    assert!(
        home.body.contains("you may not list hapcontainers"),
        "{}",
        home.body
    );

    // Back, she deletes it (the page said the home volume is kept).
    w.tenant_binding(&w.team_a, "team-a").await;
    let mut deleted = false;
    for _ in 0..50 {
        if alice.post(&act("delete"), &[("csrf", &csrf)]).await.status == StatusCode::SEE_OTHER {
            deleted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(deleted, "alice deletes her workspace once allowed again");

    // Signed out, the session is gone; the old cookie's forms are refused.
    let out = alice
        .post(&format!("{}/sign-out", w.console), &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!alice.cookies.contains_key("hap_session"));
    assert_eq!(alice.get(&new).await.status, StatusCode::UNAUTHORIZED);

    // An IdP that cannot be reached: the page says so, in words.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let down = serve(
        &w,
        console_client,
        &format!("http://127.0.0.1:{closed}/realms/hap"),
    )
    .await;
    let r = Browser::new().get(&format!("{down}/sign-in")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.body.contains("cannot be reached"), "{}", r.body);

    for ns in [&w.system, &w.team_a, &w.team_b] {
        let _ = Api::<Namespace>::all(w.admin.clone())
            .delete(ns, &DeleteParams::background())
            .await;
    }
    let own = w.system.clone();
    let _ = Api::<ClusterRoleBinding>::all(w.admin.clone())
        .delete(&own, &DeleteParams::default())
        .await;
    let _ = Api::<ClusterRole>::all(w.admin.clone())
        .delete(&own, &DeleteParams::default())
        .await;
}
