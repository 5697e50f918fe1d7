//! The console in a real browser: headless Chromium (Debian's chromium and chromium-driver) driven
//! through WebDriver, against Keycloak on loopback and the local cluster, set up as in
//! tests/console.rs. Alice signs in on Keycloak's own page, makes a workspace from a profile (a
//! mistake first, shown next to its field), stops, starts and deletes it; bob, in another browser
//! session, sees none of it, and his requests to her workspace's URLs answer 404.
//!
//! Each page is saved as a screenshot under the test's target directory, and with
//! HAP_UPDATE_SCREENSHOTS=1 into docs/console/, where the docs show them.

mod common;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{World, repo, serve, world};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

/// The create form's button (the header's sign-out form has one too).
const CREATE: &str = "form[action='/workspaces/new'] button[type=submit]";

/// chromedriver on a loopback port, stopped when dropped, with the browsers it started and their
/// profiles (Chromium leaves them behind when it is killed).
struct Driver {
    child: Child,
    url: String,
    profiles: PathBuf,
    browsers: std::sync::atomic::AtomicUsize,
}

impl Driver {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // In a process group of its own: the Chromium processes it starts go with it (Drop).
        let child = Command::new("chromedriver")
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian: chromium-driver; scripts/setup.sh installs it)");
        // Made at once, so that a failure below still stops it (Drop).
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profiles: std::env::temp_dir().join(format!("hap-browser-test-{port}")),
            browsers: Default::default(),
        };
        for _ in 0..100 {
            if reqwest::get(format!("{}/status", driver.url)).await.is_ok() {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not answer on {}", driver.url);
    }

    /// A new browser, with a profile of its own (its own cookies).
    async fn browser(&self) -> Client {
        let n = self
            .browsers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--window-size=1200,800",
                format!("--user-data-dir={}", self.profiles.join(n.to_string()).display())]}),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profiles);
    }
}

/// Saves what the browser shows as `name`.png.
async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
    if std::env::var_os("HAP_UPDATE_SCREENSHOTS").is_some() {
        let docs = repo().join("docs/console");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join(format!("{name}.png")), &png).unwrap();
    }
}

/// The page's text, read in one step (a page that is being replaced has none yet).
async fn text(c: &Client) -> String {
    c.execute(
        "return document.body ? document.body.innerText : '';",
        vec![],
    )
    .await
    .ok()
    .and_then(|v| v.as_str().map(str::to_string))
    .unwrap_or_default()
}

/// Waits until the page's text contains `what`.
async fn wait_for(c: &Client, what: &str) -> String {
    // A minute allowed, for a busy machine.
    for _ in 0..600 {
        let t = text(c).await;
        if t.contains(what) {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no {what:?} on {}: {}",
        c.current_url().await.unwrap(),
        text(c).await
    );
}

/// Signs in on Keycloak's own page, as a person would.
async fn sign_in(w: &World, c: &Client, user: &str, password: &str, shot: Option<&str>) {
    c.goto(&w.console).await.unwrap();
    c.find(Locator::LinkText(
        "Sign in with your organisation's account",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let form = c
        .wait()
        .for_element(Locator::Id("kc-form-login"))
        .await
        .unwrap();
    form.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys(user)
        .await
        .unwrap();
    form.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    if let Some(name) = shot {
        screenshot(c, name).await;
    }
    c.find(Locator::Id("kc-login"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(c, &format!("oidc:{user}")).await;
}

async fn click_button(c: &Client, row: &str, label: &str) {
    let row = c.find(Locator::Id(row)).await.unwrap();
    row.find(Locator::XPath(&format!(
        ".//button[starts-with(normalize-space(.), '{label}')]"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
}

#[tokio::test]
#[ignore = "needs a Kubernetes cluster, Keycloak and Chromium, as root: scripts/test.sh runs it (docs/testing.md)"]
async fn an_analyst_signs_in_makes_stops_starts_and_deletes_a_workspace_in_a_browser() {
    let (mut w, console_client) = world().await;
    let issuer = w.idp["HAP_TEST_OIDC_ISSUER"].clone();
    w.console = serve(&w, console_client, &issuer).await;
    w.tenant_binding(&w.team_a, "team-a").await;
    w.tenant_binding(&w.team_b, "team-b").await;
    let driver = Driver::start().await;

    let alice = driver.browser().await;
    alice.goto(&w.console).await.unwrap();
    wait_for(&alice, "Sign in").await;
    screenshot(&alice, "1-signed-out").await;
    let password = w.idp["HAP_TEST_OIDC_ALICE_PASSWORD"].clone();
    sign_in(&w, &alice, "alice", &password, Some("2-keycloak-sign-in")).await;
    let home = wait_for(&alice, &format!("Namespace {}", w.team_a)).await;
    assert!(home.contains("No workspaces."), "{home}");
    assert!(!home.contains(&w.team_b), "{home}");
    screenshot(&alice, "3-workspaces-empty").await;

    // The form: a mistake shown next to its field, then a workspace from the profile.
    alice
        .find(Locator::LinkText("New workspace"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let name = alice
        .wait()
        .for_element(Locator::Css("input[name=name]"))
        .await
        .unwrap();
    name.send_keys("Notebooks").await.unwrap();
    alice
        .find(Locator::Css("input[name=size]"))
        .await
        .unwrap()
        .send_keys("50Gi")
        .await
        .unwrap();
    alice
        .find(Locator::Css(CREATE))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let errors = wait_for(&alice, "lower-case").await;
    assert!(
        errors.contains("5Gi") && alice.find(Locator::Id("size-error")).await.is_ok(),
        "{errors}"
    );
    screenshot(&alice, "4-new-workspace-mistakes").await;
    let name = alice.find(Locator::Css("input[name=name]")).await.unwrap();
    name.clear().await.unwrap();
    name.send_keys("notebooks").await.unwrap();
    let size = alice.find(Locator::Css("input[name=size]")).await.unwrap();
    size.clear().await.unwrap();
    size.send_keys("2Gi").await.unwrap();
    screenshot(&alice, "5-new-workspace").await;
    alice
        .find(Locator::Css(CREATE))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let row = hap_console::pages::row_id(&w.team_a, "notebooks");
    alice.wait().for_element(Locator::Id(&row)).await.unwrap();
    let hc = w.hapcontainers(&w.team_a).get("notebooks").await.unwrap();
    assert_eq!(hc.spec.profile.as_deref(), Some("small"));
    screenshot(&alice, "6-workspaces").await;

    // Stop, then start: the buttons follow the workspace's size.
    click_button(&alice, &row, "Stop").await;
    alice
        .wait()
        .for_element(Locator::XPath(&format!(
            "//tr[@id='{row}']//button[normalize-space(.)='Start']"
        )))
        .await
        .unwrap();
    assert_eq!(w.size(&w.team_a, "notebooks").await, 0);
    screenshot(&alice, "7-workspace-stopped").await;
    click_button(&alice, &row, "Start").await;
    alice
        .wait()
        .for_element(Locator::XPath(&format!(
            "//tr[@id='{row}']//button[normalize-space(.)='Stop']"
        )))
        .await
        .unwrap();
    assert_eq!(w.size(&w.team_a, "notebooks").await, 1);

    // Her SQL stack (its status as the operator writes it): reached from the page's header.
    let at = "2026-01-01T00:00:00Z";
    let ready = |t: &str, m: &str| json!({"type": t, "status": "True", "reason": "Ready", "message": m, "lastTransitionTime": at});
    w.hapquery_with_status(
        &w.team_a,
        "air-quality",
        json!({"phase": "Running",
            "conditions": [ready("Database", "MariaDB answers"), ready("Metastore", "the metastore answers"),
                ready("Trino", "the coordinator answers with 1 worker"), ready("Dashboard", "Superset answers")],
            "trinoUrl": format!("https://air-quality-trino-coordinator.{}.svc:8443", w.team_a),
            "trinoUsersSecret": "air-quality-trino-users",
            "caConfigMap": "air-quality-ca",
            "dashboardUrl": "http://198.18.0.2:31000/"}),
    )
    .await;
    alice
        .find(Locator::LinkText("SQL and dashboards"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&alice, "Trino for BI tools").await;
    screenshot(&alice, "9-sql-and-dashboards").await;
    alice
        .find(Locator::LinkText("Workspaces"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    alice.wait().for_element(Locator::Id(&row)).await.unwrap();

    // Bob, in a browser of his own, sees none of it; his requests to her workspace answer 404.
    let bob = driver.browser().await;
    let password = w.idp["HAP_TEST_OIDC_BOB_PASSWORD"].clone();
    sign_in(&w, &bob, "bob", &password, None).await;
    let home = wait_for(&bob, &format!("Namespace {}", w.team_b)).await;
    assert!(
        !home.contains(&w.team_a) && !home.contains("notebooks"),
        "{home}"
    );
    screenshot(&bob, "8-another-tenant").await;
    for verb in ["stop", "start", "delete"] {
        let status = bob
            .execute(
                "const csrf = document.querySelector('input[name=csrf]').value;
                 return fetch(arguments[0], {method: 'POST', body: new URLSearchParams({csrf})})
                     .then(r => r.status);",
                vec![json!(format!("/workspaces/{}/notebooks/{verb}", w.team_a))],
            )
            .await
            .unwrap();
        assert_eq!(status, json!(404), "{verb}");
    }
    assert_eq!(w.size(&w.team_a, "notebooks").await, 1);
    bob.close().await.unwrap();

    // Deleted: gone from her page.
    click_button(&alice, &row, "Delete").await;
    wait_for(&alice, "No workspaces.").await;
    assert!(
        w.hapcontainers(&w.team_a)
            .get_opt("notebooks")
            .await
            .unwrap()
            .is_none()
    );
    alice
        .find(Locator::XPath("//button[normalize-space(.)='Sign out']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&alice, "Sign in with your organisation's account").await;
    alice.close().await.unwrap();
}
