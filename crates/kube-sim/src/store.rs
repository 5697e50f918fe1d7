//! The object store: what etcd is to the real apiserver.
//!
//! One global resourceVersion counter orders every write, as etcd's revision does. Each write appends an
//! event to a bounded history, so watches can resume from a resourceVersion until it is compacted away
//! (then they get 410 Gone), and is broadcast to the running watches.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::registry::StorageKey;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One write, as watches see it.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub storage: StorageKey,
    pub kind: EventType,
    /// The object after the write; for a deletion, its last state carrying the deletion's resourceVersion.
    pub object: Value,
    /// The object before the write, so that filtered watches can tell when an object enters or leaves
    /// their selection.
    pub old: Option<Value>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum StoreError {
    NotFound,
    AlreadyExists,
    /// The object's resourceVersion is not the expected one.
    Conflict,
    /// The requested resourceVersion has been compacted away; `oldest` is the oldest one a watch can
    /// still resume from.
    Gone {
        requested: u64,
        oldest: u64,
    },
}

/// Where a watch starts: the events after `from_rv` that are still in history, then the live stream.
pub struct Subscription {
    pub backlog: Vec<Arc<Event>>,
    pub live: broadcast::Receiver<Arc<Event>>,
}

type Objects = BTreeMap<(String, String), Value>;

struct State {
    rv: u64,
    objects: HashMap<StorageKey, Objects>,
    history: VecDeque<Arc<Event>>,
    history_cap: usize,
    /// Every event at or below this resourceVersion is gone from history.
    compacted: u64,
}

pub struct Store {
    state: Mutex<State>,
    events: broadcast::Sender<Arc<Event>>,
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or_default()
}

pub fn resource_version(obj: &Value) -> Option<u64> {
    meta_str(obj, "resourceVersion").parse().ok()
}

fn key_of(obj: &Value) -> (String, String) {
    (
        meta_str(obj, "namespace").to_string(),
        meta_str(obj, "name").to_string(),
    )
}

fn set_rv(obj: &mut Value, rv: u64) {
    obj["metadata"]["resourceVersion"] = Value::String(rv.to_string());
}

/// Equal apart from resourceVersion: a write that changes nothing is not a write.
fn same_content(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v["metadata"].as_object_mut() {
            m.remove("resourceVersion");
        }
        v
    };
    strip(a) == strip(b)
}

impl Store {
    pub fn new(history_cap: usize) -> Self {
        let (events, _) = broadcast::channel(8192);
        Store {
            state: Mutex::new(State {
                rv: 1,
                objects: HashMap::new(),
                history: VecDeque::new(),
                history_cap: history_cap.max(1),
                compacted: 1,
            }),
            events,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock would be a kube-sim bug; keep serving what is there.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, key: &StorageKey, namespace: &str, name: &str) -> Option<Value> {
        let state = self.lock();
        state
            .objects
            .get(key)?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// The objects of one resource, sorted by namespace and name (as etcd keys sort), and the
    /// resourceVersion of the snapshot.
    pub fn list(&self, key: &StorageKey, namespace: Option<&str>) -> (Vec<Value>, u64) {
        let state = self.lock();
        let items = match state.objects.get(key) {
            None => Vec::new(),
            Some(objects) => match namespace {
                None => objects.values().cloned().collect(),
                Some(ns) => objects
                    .range((ns.to_string(), String::new())..)
                    .take_while(|((n, _), _)| n == ns)
                    .map(|(_, v)| v.clone())
                    .collect(),
            },
        };
        (items, state.rv)
    }

    /// The objects of one resource as they were at resourceVersion `at`, rebuilt from the current ones
    /// by undoing the newer events; Gone once `at` has been compacted away. This is what lets
    /// continued lists and exact-version lists read one consistent snapshot, as etcd's MVCC does.
    pub fn list_at(
        &self,
        key: &StorageKey,
        namespace: Option<&str>,
        at: u64,
    ) -> Result<Vec<Value>, StoreError> {
        let state = self.lock();
        if at < state.compacted {
            return Err(StoreError::Gone {
                requested: at,
                oldest: state.compacted,
            });
        }
        let mut objects = state.objects.get(key).cloned().unwrap_or_default();
        for e in state.history.iter().rev().take_while(|e| e.rv > at) {
            if &e.storage != key {
                continue;
            }
            match (e.kind, &e.old) {
                (EventType::Added, _) => {
                    objects.remove(&key_of(&e.object));
                }
                (EventType::Modified | EventType::Deleted, Some(old)) => {
                    objects.insert(key_of(old), old.clone());
                }
                _ => {}
            }
        }
        Ok(objects
            .into_iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| v)
            .collect())
    }

    /// Every stored object of every resource: the garbage collector's view of the world.
    pub fn snapshot(&self) -> Vec<(StorageKey, Value)> {
        let state = self.lock();
        state
            .objects
            .iter()
            .flat_map(|(k, objs)| objs.values().map(move |v| (k.clone(), v.clone())))
            .collect()
    }

    fn commit(&self, state: &mut State, event: Event) {
        let event = Arc::new(event);
        state.history.push_back(event.clone());
        while state.history.len() > state.history_cap {
            if let Some(old) = state.history.pop_front() {
                state.compacted = old.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(event);
    }

    /// The stored object `id`, checked against `expected_rv` when one is given.
    fn current(
        state: &State,
        key: &StorageKey,
        id: &(String, String),
        expected_rv: Option<u64>,
    ) -> Result<Value, StoreError> {
        let current = state
            .objects
            .get(key)
            .and_then(|o| o.get(id))
            .cloned()
            .ok_or(StoreError::NotFound)?;
        if expected_rv.is_some_and(|rv| Some(rv) != resource_version(&current)) {
            return Err(StoreError::Conflict);
        }
        Ok(current)
    }

    /// Records one write under the next resourceVersion: the object (kept unless it is a deletion)
    /// and its event. Returns the object as written.
    fn write(
        &self,
        state: &mut State,
        key: &StorageKey,
        kind: EventType,
        mut obj: Value,
        old: Option<Value>,
    ) -> Value {
        state.rv += 1;
        let rv = state.rv;
        set_rv(&mut obj, rv);
        let objects = state.objects.entry(key.clone()).or_default();
        if kind == EventType::Deleted {
            objects.remove(&key_of(&obj));
        } else {
            objects.insert(key_of(&obj), obj.clone());
        }
        self.commit(
            state,
            Event {
                rv,
                storage: key.clone(),
                kind,
                object: obj.clone(),
                old,
            },
        );
        obj
    }

    pub fn create(&self, key: &StorageKey, obj: Value) -> Result<Value, StoreError> {
        let mut state = self.lock();
        if state
            .objects
            .get(key)
            .is_some_and(|o| o.contains_key(&key_of(&obj)))
        {
            return Err(StoreError::AlreadyExists);
        }
        Ok(self.write(&mut state, key, EventType::Added, obj, None))
    }

    /// Replaces an object. With `expected_rv`, fails with Conflict unless the stored object still has
    /// that resourceVersion. A write that changes nothing keeps the resourceVersion and sends no event.
    pub fn update(
        &self,
        key: &StorageKey,
        obj: Value,
        expected_rv: Option<u64>,
    ) -> Result<Value, StoreError> {
        let mut state = self.lock();
        let current = Self::current(&state, key, &key_of(&obj), expected_rv)?;
        if same_content(&current, &obj) {
            return Ok(current);
        }
        Ok(self.write(&mut state, key, EventType::Modified, obj, Some(current)))
    }

    /// Removes an object for good. With `expected_rv`, fails with Conflict if it changed meanwhile.
    /// Returns its last state, carrying the deletion's resourceVersion.
    pub fn delete(
        &self,
        key: &StorageKey,
        namespace: &str,
        name: &str,
        expected_rv: Option<u64>,
    ) -> Result<Value, StoreError> {
        let mut state = self.lock();
        let id = (namespace.to_string(), name.to_string());
        let current = Self::current(&state, key, &id, expected_rv)?;
        let last = current.clone();
        Ok(self.write(&mut state, key, EventType::Deleted, last, Some(current)))
    }

    /// Starts a watch after `from_rv`: the retained events after it, then everything live.
    pub fn watch_from(&self, from_rv: u64) -> Result<Subscription, StoreError> {
        let state = self.lock();
        if from_rv < state.compacted {
            // Worded as the watch cache does: the oldest resourceVersion a watch could still resume
            // from, one before the oldest event kept.
            return Err(StoreError::Gone {
                requested: from_rv,
                oldest: state.compacted,
            });
        }
        let backlog = state
            .history
            .iter()
            .filter(|e| e.rv > from_rv)
            .cloned()
            .collect();
        // Subscribing under the lock means no event falls between the backlog and the live stream.
        let live = self.events.subscribe();
        Ok(Subscription { backlog, live })
    }

    /// Forgets the whole history, as an etcd compaction does: watches resuming from any earlier
    /// resourceVersion get 410 Gone.
    pub fn compact(&self) {
        let mut state = self.lock();
        state.history.clear();
        state.compacted = state.rv;
    }

    /// Subscribes to every future write (the simulated controllers' informer).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pods() -> StorageKey {
        StorageKey::new("", "pods")
    }

    fn pod(ns: &str, name: &str) -> Value {
        json!({"metadata": {"namespace": ns, "name": name}, "spec": {}})
    }

    #[test]
    fn resource_versions_are_global_and_increasing() {
        let s = Store::new(100);
        let a = s.create(&pods(), pod("a", "p")).unwrap();
        let b = s
            .create(&StorageKey::new("", "services"), pod("a", "s"))
            .unwrap();
        assert!(resource_version(&b) > resource_version(&a));
        assert_eq!(s.current_rv(), resource_version(&b).unwrap());
    }

    #[test]
    fn stale_update_conflicts_and_noop_update_keeps_rv() {
        let s = Store::new(100);
        let created = s.create(&pods(), pod("a", "p")).unwrap();
        let rv = resource_version(&created).unwrap();
        let same = s.update(&pods(), created.clone(), Some(rv)).unwrap();
        assert_eq!(
            resource_version(&same),
            Some(rv),
            "a no-op write is not a write"
        );
        let mut changed = created.clone();
        changed["spec"]["x"] = json!(1);
        let updated = s.update(&pods(), changed.clone(), Some(rv)).unwrap();
        assert!(resource_version(&updated).unwrap() > rv);
        changed["spec"]["x"] = json!(2);
        assert_eq!(
            s.update(&pods(), changed, Some(rv)),
            Err(StoreError::Conflict)
        );
    }

    #[test]
    fn list_is_scoped_and_sorted() {
        let s = Store::new(100);
        for (ns, n) in [("b", "x"), ("a", "z"), ("a", "y"), ("ab", "w")] {
            s.create(&pods(), pod(ns, n)).unwrap();
        }
        let (items, _) = s.list(&pods(), Some("a"));
        let names: Vec<_> = items.iter().map(|o| meta_str(o, "name")).collect();
        assert_eq!(names, vec!["y", "z"]);
        assert_eq!(s.list(&pods(), None).0.len(), 4);
    }

    #[test]
    fn watch_resumes_from_history_until_compacted() {
        let s = Store::new(2);
        let first = s.create(&pods(), pod("a", "1")).unwrap();
        let rv1 = resource_version(&first).unwrap();
        s.create(&pods(), pod("a", "2")).unwrap();
        let sub = s.watch_from(rv1).unwrap();
        assert_eq!(sub.backlog.len(), 1);
        assert_eq!(meta_str(&sub.backlog[0].object, "name"), "2");
        s.create(&pods(), pod("a", "3")).unwrap();
        // History holds 2 events; resuming from before the oldest one is Gone.
        assert!(matches!(
            s.watch_from(rv1 - 1),
            Err(StoreError::Gone { .. })
        ));
        s.compact();
        assert!(matches!(s.watch_from(rv1), Err(StoreError::Gone { .. })));
        assert!(s.watch_from(s.current_rv()).is_ok());
    }

    #[test]
    fn lists_at_past_versions_undo_later_events() {
        let s = Store::new(100);
        let a = s.create(&pods(), pod("n", "a")).unwrap();
        let at = resource_version(&a).unwrap();
        let mut changed = a.clone();
        changed["spec"]["x"] = json!(1);
        s.update(&pods(), changed, None).unwrap();
        s.create(&pods(), pod("n", "b")).unwrap();
        s.delete(&pods(), "n", "a", None).unwrap();
        let then = s.list_at(&pods(), Some("n"), at).unwrap();
        assert_eq!(then, vec![a], "a as it was, b not yet there");
        assert_eq!(
            s.list_at(&pods(), None, s.current_rv()).unwrap(),
            s.list(&pods(), None).0
        );
        s.compact();
        assert!(matches!(
            s.list_at(&pods(), None, at),
            Err(StoreError::Gone { .. })
        ));
    }

    #[test]
    fn delete_emits_last_state_with_new_rv() {
        let s = Store::new(10);
        let created = s.create(&pods(), pod("a", "p")).unwrap();
        let mut sub = s.watch_from(s.current_rv()).unwrap();
        let gone = s.delete(&pods(), "a", "p", None).unwrap();
        assert!(resource_version(&gone) > resource_version(&created));
        let ev = sub.live.try_recv().unwrap();
        assert_eq!(ev.kind, EventType::Deleted);
        assert_eq!(s.get(&pods(), "a", "p"), None);
        assert_eq!(s.delete(&pods(), "a", "p", None), Err(StoreError::NotFound));
    }
}
