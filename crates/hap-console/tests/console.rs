//! The console against a real IdP and a real API server: Keycloak on loopback
//! (testing/oidc/keycloak.sh: alice in group team-a, bob in team-b) and the local cluster. The
//! console runs in the test with a token of its own ServiceAccount, bound to exactly the rules of
//! deploy/multi-tenant/console_rbac.yaml; the users' rights are RoleBindings of the tenant role
//! (deploy/multi-tenant/tenant_roles.yaml) to their OIDC groups, as an admin would write them. The
//! requests are a browser's: the IdP's own login form filled in and posted, cookies kept and sent back.

mod common;

use std::time::Duration;

use common::{Browser, find, serve, world};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use reqwest::StatusCode;
use serde_json::json;

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
        bad.body.contains(r#"id="size-error""#) && bad.body.contains("5Gi"),
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
        home.body.contains(&format!("id=\"ws/{}/ws\"", w.team_a)),
        "{}",
        home.body
    );

    // Stop and start: its size.
    let act = |verb: &str| format!("{}/workspaces/{}/ws/{verb}", w.console, w.team_a);
    assert_eq!(
        alice.post(&act("stop"), &[("csrf", &csrf)]).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(w.size(&w.team_a, "ws").await, 0);
    assert_eq!(
        alice.post(&act("start"), &[("csrf", &csrf)]).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(w.size(&w.team_a, "ws").await, 1);

    // SQL stacks: each component's condition, the dashboard, and Trino's address for BI tools, with
    // where its password is but not the password.
    let at = "2026-01-01T00:00:00Z";
    w.hapquery_with_status(
        &w.team_a,
        "sql",
        json!({"phase": "Degraded",
            "conditions": [
                {"type": "Database", "status": "True", "reason": "Ready", "message": "MariaDB answers", "lastTransitionTime": at},
                {"type": "Trino", "status": "False", "reason": "NotReady", "message": "the coordinator <b>starts</b>", "lastTransitionTime": at}],
            "trinoUrl": "https://sql-trino-coordinator.ns.svc:8443",
            "trinoUsersSecret": "sql-trino-users",
            "caConfigMap": "sql-ca",
            "dashboardUrl": "http://198.18.0.2:31000/"}),
    )
    .await;
    w.hapquery_with_status(
        &w.team_a,
        "odd",
        json!({"dashboardUrl": "javascript:alert(1)"}),
    )
    .await;
    let sql = alice.get(&format!("{}/queries", w.console)).await;
    assert_eq!(sql.status, StatusCode::OK, "{}", sql.body);
    for shown in [
        "Degraded",
        "MariaDB answers",
        "the coordinator &lt;b&gt;starts&lt;/b&gt;",
        "https://sql-trino-coordinator.ns.svc:8443",
        "sql-trino-users",
        "sql-ca",
        r#"href="http://198.18.0.2:31000/""#,
        &format!(r#"id="hq/{}/odd""#, w.team_a),
    ] {
        assert!(sql.body.contains(shown), "{shown}: {}", sql.body);
    }
    assert!(!sql.body.contains("javascript:"), "{}", sql.body);

    // A name no workspace can have (decoded, it would be another API path) is no workspace.
    for odd in ["ws%2Fstatus", "..", "ws%2F..%2F..%2Fsecrets"] {
        let r = alice
            .post(
                &format!("{}/workspaces/{}/{odd}/stop", w.console, w.team_a),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{odd}: {}", r.body);
    }
    assert_eq!(w.size(&w.team_a, "ws").await, 1);

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
    let sql = bob.get(&format!("{}/queries", w.console)).await;
    assert!(sql.body.contains("No SQL stacks"), "{}", sql.body);
    assert!(!sql.body.contains(&w.team_a), "{}", sql.body);
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
    assert_eq!(w.size(&w.team_a, "ws").await, 1);
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
    // RBAC changes reach the authorizer's cache within a moment (a minute allowed, for a busy machine).
    for _ in 0..300 {
        let r = alice.post(&act("stop"), &[("csrf", &csrf)]).await;
        if r.status == StatusCode::FORBIDDEN {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
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
    assert_eq!(w.size(&w.team_a, "ws").await, 1);
    let home = alice.get(&w.console).await;
    assert!(
        home.body.contains("you may not list hapcontainers"),
        "{}",
        home.body
    );

    // Back, she deletes it (the page said the home volume is kept).
    w.tenant_binding(&w.team_a, "team-a").await;
    let mut deleted = false;
    for _ in 0..300 {
        let r = alice.post(&act("delete"), &[("csrf", &csrf)]).await;
        if r.status == StatusCode::SEE_OTHER {
            deleted = true;
            break;
        }
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(deleted, "alice deletes her workspace once allowed again");

    // Signed out, the session is gone, and a copy of its cookie taken before is no session either.
    let copy = alice.cookies.clone();
    let out = alice
        .post(&format!("{}/sign-out", w.console), &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!alice.cookies.contains_key(hap_console::session::SESSION));
    assert_eq!(alice.get(&new).await.status, StatusCode::UNAUTHORIZED);
    let mut thief = Browser::new();
    thief.cookies = copy;
    assert!(thief.cookies.contains_key(hap_console::session::SESSION));
    assert_eq!(thief.get(&new).await.status, StatusCode::UNAUTHORIZED);
    let replayed = thief.post(&act("stop"), &[("csrf", &csrf)]).await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED);

    // An answer from the IdP this browser did not ask for: refused in the console's own words, and
    // the text a link carries is not shown.
    let mut stranger = Browser::new();
    let r = stranger
        .get(&format!("{}/callback?code=x&state=y", w.console))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = stranger
        .get(&format!(
            "{}/callback?error=access_denied&error_description=Call+0800+now&state=y",
            w.console
        ))
        .await;
    assert!(
        r.body.contains("expired or was started elsewhere"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("0800"), "{}", r.body);
    // A sign-in started here, answered with another state: refused too.
    let start = stranger.get(&format!("{}/sign-in", w.console)).await;
    assert_eq!(start.status, StatusCode::SEE_OTHER);
    let r = stranger
        .get(&format!(
            "{}/callback?code=x&state=not-its-state",
            w.console
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

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
    assert!(
        !r.body.contains(&closed.to_string()),
        "no address on the page: {}",
        r.body
    );
}
