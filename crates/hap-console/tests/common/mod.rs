//! What the console's cluster tests share: the cluster's admin, the IdP's settings, a corner of the
//! cluster set up as an admin would set it up for two tenants, the console serving on loopback with
//! its own ServiceAccount's token, and a browser-like HTTP client.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hap_api::HapContainer;
use hap_console::identity::ClaimMapping;
use hap_console::oidc::{Provider, Registration};
use hap_console::web::{Console, router};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::{ApiResource, Discovery, Scope};
use kube::{Client, ResourceExt};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The IdP's settings and the users' passwords: the file HAP_TEST_OIDC_ENV names, or the one
/// testing/oidc/keycloak.sh start prints (it starts Keycloak, again if it runs).
pub fn idp() -> BTreeMap<String, String> {
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

pub async fn admin() -> Client {
    let path = std::env::var("HAP_TEST_KUBECONFIG")
        .expect("HAP_TEST_KUBECONFIG: the cluster's admin kubeconfig (scripts/test.sh sets it)");
    let kubeconfig = kube::config::Kubeconfig::read_from(path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// Applies a manifest's documents as the admin, server-side, after `edit` has had its way with each.
pub async fn apply(client: &Client, yaml: &str, edit: impl Fn(&mut Value)) {
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
pub struct Browser {
    http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

pub struct Page {
    pub status: StatusCode,
    pub location: String,
    pub body: String,
}

impl Browser {
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
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

    pub async fn get(&mut self, url: &str) -> Page {
        let r = self.http.get(url);
        self.send(r).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let r = self.http.post(url).form(form);
        self.send(r).await
    }
}

/// The first match of `pattern`'s group 1 in `text`, HTML entities of URLs undone.
pub fn find(text: &str, pattern: &str) -> String {
    regex::Regex::new(pattern)
        .unwrap()
        .captures(text)
        .unwrap_or_else(|| panic!("no {pattern} in {text}"))[1]
        .replace("&amp;", "&")
}

pub struct World {
    pub admin: Client,
    pub console: String,
    pub idp: BTreeMap<String, String>,
    pub system: String,
    pub team_a: String,
    pub team_b: String,
}

impl World {
    /// Signs `user` in through the IdP's login form; the browser ends on the console's home page.
    pub async fn sign_in(&self, b: &mut Browser, user: &str, password: &str) -> Page {
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

    pub fn hapcontainers(&self, ns: &str) -> Api<HapContainer> {
        Api::namespaced(self.admin.clone(), ns)
    }

    /// Makes the HapQuery `name` in `ns` (as the admin) and writes `status` to it, as the operator
    /// would (no operator runs in these tests).
    pub async fn hapquery_with_status(&self, ns: &str, name: &str, status: Value) {
        let hq: hap_api::HapQuery = serde_json::from_value(json!({
            "apiVersion": "hap.cloudian.com/v1alpha1", "kind": "HapQuery",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"s3": {"endpoint": "http://s3.example:80", "bucket": "air-quality",
                "credentialsSecret": {"name": "keys"}}}
        }))
        .unwrap();
        let api: Api<hap_api::HapQuery> = Api::namespaced(self.admin.clone(), ns);
        api.create(&PostParams::default(), &hq).await.unwrap();
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .unwrap();
    }

    /// The workspace's `spec.size`, as the API server holds it.
    pub async fn size(&self, ns: &str, name: &str) -> i32 {
        self.hapcontainers(ns).get(name).await.unwrap().spec.size
    }

    pub async fn tenant_binding(&self, ns: &str, group: &str) {
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
pub async fn world() -> (World, Client) {
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
        "deploy/crds/hap.cloudian.com_hapqueries_crd.yaml",
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

pub fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).unwrap();
    u32::from_le_bytes(b)
}

/// Starts the console on a loopback port with this IdP; returns its URL.
pub async fn serve(w: &World, kube: Client, issuer: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let provider = Provider::new(
        Registration {
            issuer: issuer.into(),
            client_id: w.idp["HAP_TEST_OIDC_CLIENT_ID"].clone(),
            client_secret: w.idp["HAP_TEST_OIDC_CLIENT_SECRET"].clone(),
            redirect_url: format!("{url}/callback"),
        },
        hap_console::oidc::http_client(None).unwrap(),
    );
    let console = Console {
        kube,
        provider,
        mapping: ClaimMapping::default(),
        key: hap_console::session::key(&[42u8; 64]).unwrap(),
        namespace: w.system.clone(),
        profiles_namespace: w.system.clone(),
        signed_out: Default::default(),
    };
    tokio::spawn(async move { axum::serve(listener, router(console)).await });
    url
}

/// What a test made on the cluster goes when its World does, pass or fail: its namespaces (in the
/// background) and the console's cluster role, through kubectl (Drop cannot wait on the client).
impl Drop for World {
    fn drop(&mut self) {
        let kubectl = std::env::var_os("HAP_CACHE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/hap")))
            .map(|c| c.join("bin/kubectl"))
            .filter(|k| k.exists())
            .unwrap_or_else(|| PathBuf::from("kubectl"));
        let Ok(kubeconfig) = std::env::var("HAP_TEST_KUBECONFIG") else {
            return;
        };
        let run = |args: &[&str]| {
            let _ = std::process::Command::new(&kubectl)
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(args)
                .args(["--ignore-not-found", "--wait=false"])
                .stdout(std::process::Stdio::null())
                .status();
        };
        run(&[
            "delete",
            "namespace",
            &self.system,
            &self.team_a,
            &self.team_b,
        ]);
        run(&["delete", "clusterrolebinding,clusterrole", &self.system]);
    }
}
