//! The console's pages, rendered on the server (maud escapes every value): they work without
//! JavaScript, and every form carries the session's CSRF token.

use hap_api::profile::Profile;
use hap_api::{HapContainer, HapQuery};
use maud::{DOCTYPE, Markup, html};

use crate::workspaces::{FieldErrors, NewWorkspace};

/// A signed-in page's frame.
pub struct Frame<'a> {
    pub title: &'a str,
    /// The signed-in user's name, and the token the sign-out form carries.
    pub user: Option<(&'a str, &'a str)>,
}

pub fn page(frame: &Frame, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (frame.title) " · HAP" }
                style { (STYLE) }
            }
            body {
                header {
                    a.brand href="/" { "HAP" }
                    @if let Some((user, csrf)) = frame.user {
                        a href="/" { "Workspaces" }
                        a href="/queries" { "SQL and dashboards" }
                        span.user { (user) }
                        form.inline method="post" action="/sign-out" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { h1 { (frame.title) } (body) }
            }
        }
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1d2430}\
header{display:flex;gap:1em;align-items:center;padding:.6em 1.2em;background:#1d3557;color:#fff}\
header a{color:#fff;text-decoration:none;font-weight:bold}.user{margin-left:auto}\
main{padding:1em 1.2em;max-width:70em}table{border-collapse:collapse;width:100%}\
td,th{text-align:left;padding:.4em .6em;border-bottom:1px solid #dde}\
.inline{display:inline}.error{color:#b00020}.note{color:#555}\
label{display:block;margin-top:.8em}input,select{font-size:1em}";

pub fn signed_out(message: Option<&str>) -> Markup {
    page(
        &Frame {
            title: "Sign in",
            user: None,
        },
        html! {
            @if let Some(m) = message { p.error { (m) } }
            p { "HAP gives you Jupyter, Spark and SQL next to your S3 store." }
            p { a href="/sign-in" { "Sign in with your organisation's account" } }
        },
    )
}

/// A problem in words, with a way back; never a stack trace.
pub fn problem(frame: &Frame, message: &str) -> Markup {
    page(
        frame,
        html! {
            p.error { (message) }
            p { a href="/" { "Back to your workspaces" } }
        },
    )
}

/// One namespace's workspaces, as the page lists them.
pub struct Listing<'a> {
    pub namespace: &'a str,
    /// The workspaces, or why they could not be listed.
    pub workspaces: Result<Vec<HapContainer>, String>,
}

pub fn workspaces(frame: &Frame, csrf: &str, listings: &[Listing], now: jiff::Timestamp) -> Markup {
    page(
        frame,
        html! {
            @if listings.is_empty() {
                p { "None of your groups has a namespace here yet: ask an administrator to map one." }
            } @else {
                p { a href="/workspaces/new" { "New workspace" } }
            }
            @for listing in listings {
                h2 { "Namespace " (listing.namespace) }
                @match &listing.workspaces {
                    Err(why) => p.error { (why) },
                    Ok(list) if list.is_empty() => p.note { "No workspaces." },
                    Ok(list) => table {
                        thead { tr { th { "Name" } th { "Profile" } th { "Phase" } th { "Status" }
                            th { "Age" } th { "Last activity" } th { "" } } }
                        tbody { @for hc in list { (row(listing.namespace, hc, csrf, now)) } }
                    },
                }
            }
        },
    )
}

fn row(namespace: &str, hc: &HapContainer, csrf: &str, now: jiff::Timestamp) -> Markup {
    let name = hc.metadata.name.as_deref().unwrap_or_default();
    let status = hc.status.as_ref();
    let phase = status
        .and_then(|s| s.phase)
        .map_or("Pending".to_string(), |p| p.as_str().to_string());
    // What a person needs to know: the conditions that are not as they should be, in words.
    let words: Vec<String> = status
        .map(|s| {
            s.conditions
                .iter()
                .filter(|c| (c.status == "False") != (c.type_ == "Culled"))
                .map(|c| format!("{}: {}", c.type_, c.message))
                .collect()
        })
        .unwrap_or_default();
    let age = hc
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| since(t.0, now))
        .unwrap_or_default();
    let activity = status
        .and_then(|s| s.last_activity.as_ref())
        .map(|t| format!("{} ago", since(t.0, now)))
        .unwrap_or_else(|| "—".into());
    let base = format!("/workspaces/{namespace}/{name}");
    html! {
        tr id=(row_id(namespace, name)) {
            td { (name) }
            td { (hc.spec.profile.as_deref().unwrap_or("—")) }
            td.phase { (phase) }
            td { @for w in &words { div { (w) } } }
            td { (age) }
            td { (activity) }
            td {
                @if hc.spec.size == 0 {
                    (action(&base, "start", "Start", csrf))
                } @else {
                    (action(&base, "stop", "Stop", csrf))
                }
                " "
                (action(&base, "delete", "Delete (the home volume is kept)", csrf))
            }
        }
    }
}

/// A workspace's row: `/` cannot be in a namespace's or a workspace's name, so no two rows share one.
pub fn row_id(namespace: &str, name: &str) -> String {
    format!("ws/{namespace}/{name}")
}

fn action(base: &str, verb: &str, label: &str, csrf: &str) -> Markup {
    html! {
        form.inline method="post" action=(format!("{base}/{verb}")) {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" name="do" value=(verb) { (label) }
        }
    }
}

/// One namespace's SQL stacks (HapQueries).
pub struct QueryListing<'a> {
    pub namespace: &'a str,
    pub queries: Result<Vec<HapQuery>, String>,
}

/// The HapQueries of the user's namespaces: each component's condition in words, the dashboard, and
/// what a BI tool needs to reach Trino (the password stays in its Secret: where it is, not what).
pub fn queries(frame: &Frame, listings: &[QueryListing]) -> Markup {
    page(
        frame,
        html! {
            @for listing in listings {
                h2 { "Namespace " (listing.namespace) }
                @match &listing.queries {
                    Err(why) => p.error { (why) },
                    Ok(list) if list.is_empty() => p.note { "No SQL stacks (HapQueries)." },
                    Ok(list) => @for q in list { (query(listing.namespace, q)) },
                }
            }
        },
    )
}

fn query(namespace: &str, q: &HapQuery) -> Markup {
    let name = q.metadata.name.as_deref().unwrap_or_default();
    let status = q.status.as_ref();
    let phase = status
        .and_then(|s| s.phase.as_ref())
        .map_or("Pending".to_string(), |p| format!("{p:?}"));
    // Only a web address is a link: a status is the operator's, but a link is a link.
    let dashboard = status
        .and_then(|s| s.dashboard_url.as_deref())
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"));
    html! {
        section.query id=(format!("hq/{namespace}/{name}")) {
            h3 { (name) " " span.note { (phase) } }
            table {
                @for c in status.map(|s| s.conditions.as_slice()).unwrap_or_default() {
                    tr { th { (c.type_) } td { (if c.status == "True" { "ready" } else { "not ready" }) }
                        td { (c.message) } }
                }
            }
            @if let Some(url) = dashboard { p { a href=(url) { "Open the dashboard" } } }
            @if let Some(trino) = status.and_then(|s| s.trino_url.as_deref()) {
                p { "Trino for BI tools: " code { (trino) } ", user " code { "hap" } }
                @if let Some(secret) = status.and_then(|s| s.trino_users_secret.as_deref()) {
                    p.note { "The password is in the Secret " code { (secret) } ", key " code { "hap" } "." }
                }
                @if let Some(ca) = status.and_then(|s| s.ca_config_map.as_deref()) {
                    p.note { "Trust the CA in the ConfigMap " code { (ca) } ", key " code { "ca.crt" } "." }
                }
            }
        }
    }
}

/// A time span as a person reads it: 45s, 12m, 3h, 2d.
fn since(then: jiff::Timestamp, now: jiff::Timestamp) -> String {
    let s = now.duration_since(then).as_secs().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

pub fn new_workspace(
    frame: &Frame,
    csrf: &str,
    namespaces: &[String],
    profiles: Result<&[Profile], &str>,
    form: &NewWorkspace,
    errors: &FieldErrors,
) -> Markup {
    let error = |field: &str| {
        html! { @if let Some(e) = errors.get(field) { span.error id=(format!("{field}-error")) { (e) } } }
    };
    page(
        frame,
        html! {
            (error("form"))
            @match profiles {
                Err(why) => p.error { (why) },
                Ok(profiles) => form method="post" action="/workspaces/new" {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "Namespace " select name="namespace" {
                        @for ns in namespaces { option value=(ns) selected[*ns == form.namespace] { (ns) } }
                    } }
                    (error("namespace"))
                    label { "Name " input type="text" name="name" value=(form.name) required; }
                    (error("name"))
                    label { "Profile " select name="profile" {
                        @for p in profiles {
                            option value=(p.name) selected[p.name == form.profile] {
                                (p.display_name.as_deref().unwrap_or(&p.name))
                                @if let Some(d) = &p.description { " — " (d) }
                            }
                        }
                    } }
                    (error("profile"))
                    label { "Home volume size " input type="text" name="size" value=(form.size) placeholder="the profile's"; }
                    (error("size"))
                    p { button type="submit" { "Create" } }
                },
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_every_form_carries_the_token() {
        let hc: HapContainer = serde_json::from_value(serde_json::json!({
            "apiVersion": "hap.cloudian.com/v1alpha1", "kind": "HapContainer",
            "metadata": {"name": "ws", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"profile": "<script>x</script>"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False",
                "reason": "NotReady", "message": "the pod <b>waits</b>",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .unwrap();
        let now: jiff::Timestamp = "2026-01-01T02:00:00Z".parse().unwrap();
        let frame = Frame {
            title: "Workspaces",
            user: Some(("oidc:alice", "tok")),
        };
        let html = workspaces(
            &frame,
            "tok",
            &[Listing {
                namespace: "team-a",
                workspaces: Ok(vec![hc]),
            }],
            now,
        )
        .into_string();
        assert!(!html.contains("<script>x"), "{html}");
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(html.contains("Ready: the pod &lt;b&gt;waits&lt;/b&gt;"));
        assert!(html.contains("<td>2h</td>"));
        let forms = html.matches("<form").count();
        assert_eq!(html.matches(r#"name="csrf" value="tok""#).count(), forms);
        assert!(html.contains(r#"action="/workspaces/team-a/ws/stop""#));
    }
}
