//! Watches: resuming from a resourceVersion, selectors, bookmarks, 410 Gone, timeouts, streaming lists,
//! and the kube-rs watcher, reflector and metadata watcher on top of them.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;
use tokio_stream::{Stream, StreamExt};

use crate::common::{self, eventually};

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"v": "0"}}),
    )
    .unwrap()
}

/// The next event of a watch, within the test's patience.
async fn next<S: Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin>(
    s: &mut S,
) -> WatchEvent<ConfigMap> {
    tokio::time::timeout(common::PATIENCE, s.next())
        .await
        .expect("an event in time")
        .expect("the watch is still open")
        .expect("a decodable event")
}

/// The next event that is not a bookmark.
async fn next_change<S: Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin>(
    s: &mut S,
) -> (String, String, String) {
    loop {
        let e = next(s).await;
        let (kind, obj) = match e {
            WatchEvent::Added(o) => ("ADDED", o),
            WatchEvent::Modified(o) => ("MODIFIED", o),
            WatchEvent::Deleted(o) => ("DELETED", o),
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Error(s) => panic!("watch error: {s:?}"),
        };
        let data = obj
            .data
            .unwrap_or_default()
            .get("v")
            .cloned()
            .unwrap_or_default();
        return (kind.to_string(), obj.metadata.name.unwrap(), data);
    }
}

fn change(kind: &str, name: &str, v: &str) -> (String, String, String) {
    (kind.into(), name.into(), v.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumes_after_the_resource_version_it_names() {
    let sim = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.admin_client().await.unwrap(), "default");
    let pp = PostParams::default();
    let a = api.create(&pp, &cm("a", json!({}))).await.unwrap();
    let from = a.metadata.resource_version.clone().unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "1"}})),
    )
    .await
    .unwrap();
    api.create(&pp, &cm("b", json!({}))).await.unwrap();

    // Everything after `from`, in order, and then what happens live.
    let mut w = Box::pin(api.watch(&WatchParams::default(), &from).await.unwrap());
    assert_eq!(next_change(&mut w).await, change("MODIFIED", "a", "1"));
    assert_eq!(next_change(&mut w).await, change("ADDED", "b", "0"));
    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(next_change(&mut w).await, change("DELETED", "a", "1"));

    // Without a resourceVersion (or with "0") the watch starts with the current objects as ADDED.
    let mut fresh = Box::pin(
        api.watch(&WatchParams::default().fields("metadata.name=b"), "0")
            .await
            .unwrap(),
    );
    assert_eq!(next_change(&mut fresh).await, change("ADDED", "b", "0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_watch_sees_objects_enter_and_leave_its_selection() {
    let sim = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.admin_client().await.unwrap(), "default");
    let list = api.list(&Default::default()).await.unwrap();
    let mut w = Box::pin(
        api.watch(
            &WatchParams::default().labels("team=a"),
            list.metadata.resource_version.as_deref().unwrap(),
        )
        .await
        .unwrap(),
    );
    api.create(&PostParams::default(), &cm("x", json!({"team": "b"})))
        .await
        .unwrap();
    let pp = PatchParams::default();
    api.patch(
        "x",
        &pp,
        &Patch::Merge(json!({"metadata": {"labels": {"team": "a"}}})),
    )
    .await
    .unwrap();
    // Entering the selection is an ADDED event; leaving it is a DELETED one.
    assert_eq!(next_change(&mut w).await, change("ADDED", "x", "0"));
    api.patch("x", &pp, &Patch::Merge(json!({"data": {"v": "2"}})))
        .await
        .unwrap();
    assert_eq!(next_change(&mut w).await, change("MODIFIED", "x", "2"));
    api.patch(
        "x",
        &pp,
        &Patch::Merge(json!({"metadata": {"labels": {"team": "c"}}})),
    )
    .await
    .unwrap();
    assert_eq!(next_change(&mut w).await, change("DELETED", "x", "2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookmarks_report_progress_when_asked_for() {
    let sim = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.admin_client().await.unwrap(), "default");
    let created = api
        .create(&PostParams::default(), &cm("b", json!({})))
        .await
        .unwrap();
    let rv: u64 = created.metadata.resource_version.unwrap().parse().unwrap();
    let mut w = Box::pin(
        api.watch(&WatchParams::default(), &rv.to_string())
            .await
            .unwrap(),
    );
    let WatchEvent::Bookmark(bookmark) = next(&mut w).await else {
        panic!("only bookmarks on a quiet watch");
    };
    assert_eq!(bookmark.types.kind, "ConfigMap");
    assert_eq!(bookmark.types.api_version, "v1");
    assert!(bookmark.metadata.resource_version.parse::<u64>().unwrap() >= rv);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_from_a_compacted_resource_version_is_410_gone() {
    let sim = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.admin_client().await.unwrap(), "default");
    let old = api
        .create(&PostParams::default(), &cm("old", json!({})))
        .await
        .unwrap();
    let new = api
        .create(&PostParams::default(), &cm("new", json!({})))
        .await
        .unwrap();
    let before: u64 = new.metadata.resource_version.unwrap().parse().unwrap();
    sim.compact();
    let list = api.list(&Default::default()).await.unwrap();
    let after: u64 = list.metadata.resource_version.unwrap().parse().unwrap();
    let old_rv = old.metadata.resource_version.unwrap();
    let mut w = Box::pin(api.watch(&WatchParams::default(), &old_rv).await.unwrap());
    match next(&mut w).await {
        WatchEvent::Error(s) => {
            assert_eq!((s.code, s.reason.as_str()), (410, "Expired"));
            // "(N)" is the oldest resourceVersion one may still resume from: where the history was
            // compacted, which the simulated controllers may have moved past `before` meanwhile.
            let prefix = format!("too old resource version: {old_rv} (");
            let oldest: u64 = s
                .message
                .strip_prefix(&prefix)
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or_else(|| panic!("{}", s.message))
                .parse()
                .unwrap();
            assert!(before <= oldest && oldest <= after, "{}", s.message);
        }
        other => panic!("expected 410 Gone, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(common::PATIENCE, w.next())
            .await
            .unwrap()
            .is_none(),
        "the watch ends after the error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_from_a_resource_version_the_store_has_not_reached_is_a_timeout() {
    let sim = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.admin_client().await.unwrap(), "default");
    let current: u64 = api
        .list(&Default::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap()
        .parse()
        .unwrap();
    let future = current + 1_000_000;
    let mut w = Box::pin(
        api.watch(&WatchParams::default(), &future.to_string())
            .await
            .unwrap(),
    );
    match next(&mut w).await {
        WatchEvent::Error(s) => {
            assert_eq!((s.code, s.reason.as_str()), (504, "Timeout"));
            assert!(
                s.message.starts_with(&format!(
                    "Timeout: Too large resource version: {future}, current: "
                )),
                "{}",
                s.message
            );
        }
        other => panic!("expected a 504, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_ends_after_its_timeout() {
    let sim = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.admin_client().await.unwrap(), "default");
    let mut w = Box::pin(
        api.watch(&WatchParams::default().timeout(1).disable_bookmarks(), "0")
            .await
            .unwrap(),
    );
    // The stream ends by itself (kube-sim's default watch timeout is half an hour).
    let ended = tokio::time::timeout(common::PATIENCE, async {
        while let Some(e) = w.next().await {
            e.expect("no error before the timeout");
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the watch did not end after timeoutSeconds=1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_timeout_is_no_timeout() {
    let sim = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.admin_client().await.unwrap(), "default");
    let mut w = Box::pin(
        api.watch(&WatchParams::default().timeout(0).disable_bookmarks(), "0")
            .await
            .unwrap(),
    );
    // Zero means "unset": the watch is still open well after it began.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    api.create(&PostParams::default(), &cm("late", json!({})))
        .await
        .unwrap();
    loop {
        let (kind, name, _) = next_change(&mut w).await;
        if name == "late" {
            assert_eq!(kind, "ADDED");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_watch_path_with_a_name_watches_that_object_only() {
    let sim = common::start().await;
    let client = sim.admin_client().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    let a = api.create(&pp, &cm("a", json!({}))).await.unwrap();
    api.create(&pp, &cm("b", json!({}))).await.unwrap();
    let rv = a.metadata.resource_version.unwrap();
    let request = axum::http::Request::get(format!(
        "/api/v1/watch/namespaces/default/configmaps/a?resourceVersion={rv}"
    ))
    .body(Vec::new())
    .unwrap();
    let mut w = Box::pin(client.request_events::<ConfigMap>(request).await.unwrap());
    let set = |v: &str| Patch::Merge(json!({"data": {"v": v}}));
    api.patch("b", &PatchParams::default(), &set("1"))
        .await
        .unwrap();
    api.patch("a", &PatchParams::default(), &set("2"))
        .await
        .unwrap();
    // b's creation and change are not in it.
    assert_eq!(next_change(&mut w).await, change("MODIFIED", "a", "2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_lists_send_the_state_then_an_initial_events_end_bookmark() {
    let sim = common::start().await;
    let c = sim.admin_client().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    api.create(&PostParams::default(), &cm("s1", json!({"s": "y"})))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("s2", json!({"s": "y"})))
        .await
        .unwrap();
    let mut w = Box::pin(
        api.watch(&WatchParams::streaming_lists().labels("s=y"), "")
            .await
            .unwrap(),
    );
    let mut initial = Vec::new();
    let end = loop {
        match next(&mut w).await {
            WatchEvent::Added(o) => initial.push(o.metadata.name.unwrap()),
            WatchEvent::Bookmark(b) => break b,
            other => panic!("unexpected {other:?}"),
        }
    };
    initial.sort();
    assert_eq!(initial, ["s1", "s2"]);
    assert_eq!(
        end.metadata
            .annotations
            .get("k8s.io/initial-events-end")
            .map(String::as_str),
        Some("true")
    );

    // The apiserver's list-option validation: sendInitialEvents needs resourceVersionMatch=NotOlderThan.
    common::get(&c, "/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true&allowWatchBookmarks=true")
        .await
        .assert_status(
            422,
            "Invalid",
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        );
    common::get(&c, "/api/v1/namespaces/default/configmaps?resourceVersionMatch=NotOlderThan")
        .await
        .assert_status(
            422,
            "Invalid",
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
        );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_watcher_and_reflector_follow_changes_and_survive_closed_watches() {
    let sim = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.admin_client().await.unwrap(), "default");
    api.create(&PostParams::default(), &cm("r1", json!({"r": "y"})))
        .await
        .unwrap();
    let (reader, writer) = reflector::store();
    let stream = reflector(
        writer,
        watcher(api.clone(), watcher::Config::default().labels("r=y")),
    )
    .default_backoff()
    .applied_objects();
    let task = tokio::spawn(async move {
        let mut s = Box::pin(stream);
        while s.next().await.is_some() {}
    });
    let names = |reader: &reflector::Store<ConfigMap>| {
        let mut n: Vec<String> = reader
            .state()
            .iter()
            .map(|o| o.metadata.name.clone().unwrap())
            .collect();
        n.sort();
        n
    };
    eventually("the reflector lists r1", || async {
        (names(&reader) == ["r1"]).then_some(())
    })
    .await;
    api.create(&PostParams::default(), &cm("r2", json!({"r": "y"})))
        .await
        .unwrap();
    eventually("the reflector sees r2", || async {
        (names(&reader) == ["r1", "r2"]).then_some(())
    })
    .await;

    // Closing every watch (a restart, a load balancer) is survived: the watcher re-establishes its watch.
    let watches = || {
        sim.requests()
            .iter()
            .filter(|r| r.verb == "watch" && r.resource == "configmaps")
            .count()
    };
    let before = watches();
    sim.close_watches();
    eventually("the watcher watches again", || async {
        (watches() > before).then_some(())
    })
    .await;
    api.delete("r1", &DeleteParams::default()).await.unwrap();
    api.create(&PostParams::default(), &cm("r3", json!({"r": "y"})))
        .await
        .unwrap();
    eventually(
        "the reflector catches up after the watch closed",
        || async { (names(&reader) == ["r2", "r3"]).then_some(()) },
    )
    .await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_streaming_list_watcher_and_metadata_watcher() {
    let sim = common::start().await;
    let api: Api<ConfigMap> = Api::namespaced(sim.admin_client().await.unwrap(), "default");
    api.create(&PostParams::default(), &cm("m1", json!({"m": "y"})))
        .await
        .unwrap();

    let mut streaming = Box::pin(
        watcher(
            api.clone(),
            watcher::Config::default().labels("m=y").streaming_lists(),
        )
        .default_backoff(),
    );
    let first = tokio::time::timeout(common::PATIENCE, async {
        loop {
            match streaming.next().await {
                Some(Ok(watcher::Event::InitApply(o))) => return o.metadata.name.unwrap(),
                Some(Ok(_)) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(first, "m1");
    // The streaming list did not LIST: it asked for initial events on a watch.
    assert!(
        !sim.requests()
            .iter()
            .any(|r| r.verb == "list" && r.resource == "configmaps")
    );

    // An Api over PartialObjectMeta makes metadata-only lists and watches.
    let metadata: Api<PartialObjectMeta<ConfigMap>> =
        Api::namespaced(sim.admin_client().await.unwrap(), "default");
    let mut meta = Box::pin(
        watcher(metadata, watcher::Config::default().labels("m=y"))
            .default_backoff()
            .applied_objects(),
    );
    let m = tokio::time::timeout(common::PATIENCE, meta.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(m.metadata.name.as_deref(), Some("m1"));
    api.patch(
        "m1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"seen": "yes"}}})),
    )
    .await
    .unwrap();
    let updated = tokio::time::timeout(common::PATIENCE, meta.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(updated.metadata.annotations.unwrap()["seen"], "yes");
}
