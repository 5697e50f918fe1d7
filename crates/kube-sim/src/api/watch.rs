//! Watches: a chunked stream of events, resumable from a resourceVersion, with the apiserver's filtering
//! (an object leaving a selection is a DELETED event), bookmarks, initial events for streaming lists,
//! 410 Gone for compacted versions, and timeouts.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::reads::{Selection, metadata_only};
use super::{Ctx, Output, negotiate, options, present};
use crate::errors::ApiError;
use crate::registry::ResourceType;
use crate::store::{Event, EventType, StoreError, meta_str};
use crate::tables;

struct Filter {
    rt: ResourceType,
    namespace: Option<String>,
    selection: Selection,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.namespace
            .as_ref()
            .is_none_or(|ns| meta_str(obj, "namespace") == ns)
            && self.selection.matches(obj)
    }

    /// What a store event looks like through this watch's filter, if anything.
    fn translate(&self, e: &Event) -> Option<(&'static str, Value)> {
        if e.storage != self.rt.storage {
            return None;
        }
        let now = self.matches(&e.object);
        let before = e.old.as_ref().is_some_and(|o| self.matches(o));
        let kind = match e.kind {
            EventType::Added if now => "ADDED",
            EventType::Modified if now && before => "MODIFIED",
            EventType::Modified if now => "ADDED",
            EventType::Modified if before => "DELETED",
            EventType::Deleted if now || before => "DELETED",
            _ => return None,
        };
        Some((kind, e.object.clone()))
    }
}

struct Stream {
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
    output: Output,
    rt: ResourceType,
    sent_columns: bool,
}

impl Stream {
    async fn send_raw(&mut self, event: Value) -> bool {
        let mut line = event.to_string();
        line.push('\n');
        self.tx.send(Ok(Bytes::from(line))).await.is_ok()
    }

    async fn send(&mut self, kind: &str, obj: &Value) -> bool {
        let obj = present(&self.rt, obj);
        let body = match self.output {
            Output::Json => obj,
            Output::Metadata => metadata_only(&obj),
            Output::Table(include) => {
                let with_columns = !self.sent_columns;
                self.sent_columns = true;
                tables::table(
                    &self.rt,
                    std::slice::from_ref(&obj),
                    include,
                    with_columns,
                    json!({"resourceVersion": obj["metadata"]["resourceVersion"]}),
                )
            }
        };
        self.send_raw(json!({"type": kind, "object": body})).await
    }

    async fn bookmark(&mut self, rv: u64, initial_end: bool) -> bool {
        let (api_version, kind) = match self.output {
            Output::Metadata => (
                "meta.k8s.io/v1".to_string(),
                "PartialObjectMetadata".to_string(),
            ),
            _ => (self.rt.api_version(), self.rt.kind.clone()),
        };
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        self.send_raw(json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version, "metadata": meta}}))
            .await
    }
}

fn streaming_response(rx: mpsc::Receiver<Result<Bytes, Infallible>>) -> Response {
    let mut resp = Response::new(Body::from_stream(ReceiverStream::new(rx)));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

pub fn watch(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    options::list(ctx.req, true)?;
    let output = negotiate(ctx.req)?;
    let selection = Selection::from(ctx)?;
    let namespace =
        (ctx.rt.namespaced && !ctx.p.namespace.is_empty()).then(|| ctx.p.namespace.clone());
    let seconds: u64 = match ctx.req.q("timeoutSeconds") {
        Some(t) => t
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {t:?}")))?,
        None => 0,
    };
    // Zero is unset, as in the apiserver, which then picks its own (kube-sim: 30 minutes).
    let timeout = Duration::from_secs(if seconds == 0 { 1800 } else { seconds });
    let bookmarks = ctx.req.q("allowWatchBookmarks") == Some("true");
    let initial_events = ctx.req.q("sendInitialEvents");
    let send_initial = initial_events == Some("true");
    let filter = Filter {
        rt: ctx.rt.clone(),
        namespace: namespace.clone(),
        selection,
    };
    let rv_param = ctx.req.q("resourceVersion").unwrap_or_default();
    // Without sendInitialEvents, a watch from "" or "0" starts with the current state; with
    // sendInitialEvents=false it never does.
    let legacy_initial = initial_events.is_none() && (rv_param.is_empty() || rv_param == "0");
    let (initial, start_rv) = if send_initial || legacy_initial {
        let (items, rv) = ctx.core.store.list(&ctx.rt.storage, namespace.as_deref());
        (
            items
                .into_iter()
                .filter(|o| filter.matches(o))
                .collect::<Vec<_>>(),
            rv,
        )
    } else if rv_param.is_empty() || rv_param == "0" {
        (Vec::new(), ctx.core.store.current_rv())
    } else {
        let rv = rv_param
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version {rv_param:?}")))?;
        (Vec::new(), rv)
    };

    let (tx, rx) = mpsc::channel(256);
    let mut stream = Stream {
        tx,
        output,
        rt: ctx.rt.clone(),
        sent_columns: false,
    };
    let current = ctx.core.store.current_rv();
    if start_rv > current {
        // Nothing will ever make the store catch up while nobody writes: the watch cache gives up
        // waiting and ends the watch with its 504, as an ERROR event.
        let status = ApiError::too_large_resource_version(start_rv, current).to_status();
        tokio::spawn(async move {
            stream
                .send_raw(json!({"type": "ERROR", "object": status}))
                .await;
        });
        return Ok(streaming_response(rx));
    }
    let subscription = match ctx.core.store.watch_from(start_rv) {
        Ok(s) => s,
        Err(StoreError::Gone { requested, oldest }) => {
            // The apiserver reports an expired resourceVersion as an ERROR event on a started watch.
            let status = ApiError::gone(requested, oldest).to_status();
            tokio::spawn(async move {
                stream
                    .send_raw(json!({"type": "ERROR", "object": status}))
                    .await;
            });
            return Ok(streaming_response(rx));
        }
        Err(e) => return Err(ApiError::internal(format!("{e:?}"))),
    };
    let core = Arc::clone(ctx.core);
    let mut epoch = core.watch_epoch.subscribe();
    epoch.mark_unchanged();
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut last_rv = start_rv;
        for obj in &initial {
            if !stream.send("ADDED", obj).await {
                return;
            }
        }
        if send_initial && !stream.bookmark(start_rv, true).await {
            return;
        }
        for e in &subscription.backlog {
            last_rv = e.rv;
            if let Some((kind, obj)) = filter.translate(e)
                && !stream.send(kind, &obj).await
            {
                return;
            }
        }
        let mut live = subscription.live;
        let mut ticker = tokio::time::interval(core.timings.bookmark_interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = epoch.changed() => break,
                _ = ticker.tick(), if bookmarks => {
                    if !stream.bookmark(last_rv, false).await {
                        return;
                    }
                }
                received = live.recv() => match received {
                    Ok(e) => {
                        if e.rv <= last_rv {
                            continue;
                        }
                        last_rv = e.rv;
                        if let Some((kind, obj)) = filter.translate(&e)
                            && !stream.send(kind, &obj).await {
                                return;
                            }
                    }
                    // A watcher that falls behind is closed, as the apiserver does; the client resumes.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        }
        if bookmarks {
            stream.bookmark(last_rv, false).await;
        }
    });
    Ok(streaming_response(rx))
}
