//! Shared watches: one watch per kind and namespace for the whole run, which every wait on an object
//! of that kind there reads, instead of a watch per wait. Scenarios wait for their maps, Plans and
//! VMIs in the same few namespaces, so a run opens a handful of watches where it would open one per
//! wait; what a watch already delivered is not asked for again.
//!
//! A feed opens its watch without a resourceVersion (the API server starts it with the objects as they
//! are), keeps the latest version of each object it saw, and hands every change to the waits reading
//! it. When the watch ends (its timeout) it goes on from the last resourceVersion seen; when that
//! version expired (410) it starts over from the current state. A feed whose watch cannot be opened
//! closes, and its waits fall back to a watch of their own.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use kube::api::{WatchEvent, WatchParams};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::cluster::Kind;

/// A change a feed saw.
#[derive(Debug, Clone)]
pub enum Change {
    /// Added or modified: the object as it is now.
    Applied(Arc<Value>),
    /// Deleted: the object's last state.
    Deleted(Arc<Value>),
}

impl Change {
    pub fn object(&self) -> &Value {
        match self {
            Change::Applied(object) | Change::Deleted(object) => object,
        }
    }

    fn name(&self) -> &str {
        self.object()["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
    }
}

/// How many changes a wait may fall behind before it reads the latest state instead.
const BACKLOG: usize = 256;
/// The server ends a watch after this long; the feed then goes on from where it was.
const WATCH_SECONDS: u32 = 290;

/// The latest version of each object a feed saw, by name, and the names it ever saw (for those, no
/// latest version means deleted).
#[derive(Default)]
struct Seen {
    latest: HashMap<String, Arc<Value>>,
    ever: HashSet<String>,
}

/// One shared watch.
struct Feed {
    seen: Arc<Mutex<Seen>>,
    /// Weak: only the feed's task holds the channel open, so its waits see it close when it ends.
    changes: broadcast::WeakSender<Change>,
    task: JoinHandle<()>,
}

/// What a wait reads from a feed: the object's latest version when the feed has one, then every
/// change after it.
pub struct Subscription {
    pub current: Option<Arc<Value>>,
    /// The feed saw the object since it opened: no `current` then means it is gone.
    pub known_to_feed: bool,
    changes: broadcast::Receiver<Change>,
    seen: Arc<Mutex<Seen>>,
    name: String,
}

/// The next thing a wait learns about its object.
pub enum Next {
    Change(Change),
    /// The feed closed (its watch could not be opened again): the wait goes on by itself.
    Closed,
}

impl Subscription {
    /// The next change of the subscribed object. A wait that fell behind reads the latest version.
    pub async fn next(&mut self) -> Next {
        loop {
            match self.changes.recv().await {
                Ok(change) if change.name() == self.name => return Next::Change(change),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let latest = lock(&self.seen).latest.get(&self.name).cloned();
                    if let Some(object) = latest {
                        return Next::Change(Change::Applied(object));
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return Next::Closed,
            }
        }
    }
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|e| e.into_inner())
}

/// The shared watches of one connection; dropped with it, which ends them.
#[derive(Default)]
pub struct WatchHub {
    feeds: Mutex<HashMap<(String, Option<String>), Feed>>,
}

impl Drop for WatchHub {
    fn drop(&mut self) {
        let feeds = self.feeds.get_mut().unwrap_or_else(|e| e.into_inner());
        for feed in feeds.values() {
            feed.task.abort();
        }
    }
}

impl WatchHub {
    /// Reads the objects named `name` of `kind` in `namespace` through the shared watch there,
    /// opening it if this is its first reader.
    pub fn subscribe(
        &self,
        client: &kube::Client,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Subscription {
        let key = feed_key(kind, namespace);
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        let closed = feeds.get(&key).is_some_and(|feed| feed.task.is_finished());
        if closed {
            feeds.remove(&key);
        }
        let feed = feeds
            .entry(key)
            .or_insert_with(|| start_feed(client, kind, namespace));
        feed.subscription(name)
    }

    /// [`WatchHub::subscribe`] when a watch of the kind in the namespace is open already; `None`
    /// otherwise (nothing is opened).
    pub fn subscribe_open(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Subscription> {
        let feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        feeds
            .get(&feed_key(kind, namespace))
            .filter(|feed| !feed.task.is_finished())
            .map(|feed| feed.subscription(name))
    }
}

fn feed_key(kind: &Kind, namespace: Option<&str>) -> (String, Option<String>) {
    (
        format!("{}/{}", kind.api_version(), kind.plural),
        namespace.map(str::to_string),
    )
}

impl Feed {
    fn subscription(&self, name: &str) -> Subscription {
        // Under the feed's lock, so no change falls between the latest version and the stream.
        let seen = lock(&self.seen);
        // A feed that ended gives a subscription that is closed at once.
        let changes = match self.changes.upgrade() {
            Some(sender) => sender.subscribe(),
            None => broadcast::channel(1).1,
        };
        Subscription {
            current: seen.latest.get(name).cloned(),
            known_to_feed: seen.ever.contains(name),
            changes,
            seen: self.seen.clone(),
            name: name.to_string(),
        }
    }
}

fn start_feed(client: &kube::Client, kind: &Kind, namespace: Option<&str>) -> Feed {
    let resource = kind.api_resource();
    let api: kube::Api<kube::api::DynamicObject> = match (kind.namespaced, namespace) {
        (true, Some(ns)) => kube::Api::namespaced_with(client.clone(), ns, &resource),
        _ => kube::Api::all_with(client.clone(), &resource),
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (changes, _) = broadcast::channel(BACKLOG);
    let weak = changes.downgrade();
    let task = tokio::spawn(run_feed(api, seen.clone(), changes));
    Feed {
        seen,
        changes: weak,
        task,
    }
}

/// Keeps the feed's watch open: from the current state, then from the last version seen. Ends (and
/// with it the broadcast, so the waits go on by themselves) when a watch cannot be opened.
async fn run_feed(
    api: kube::Api<kube::api::DynamicObject>,
    seen: Arc<Mutex<Seen>>,
    changes: broadcast::Sender<Change>,
) {
    // Bookmarks (on by default) keep the version to go on from current.
    let params = WatchParams::default().timeout(WATCH_SECONDS);
    let mut version = String::new();
    let mut quick_ends = 0;
    loop {
        let opened = tokio::time::Instant::now();
        let Ok(stream) = api.watch(&params, &version).await else {
            return;
        };
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            let (change, object_version) = match event {
                Ok(WatchEvent::Added(object) | WatchEvent::Modified(object)) => {
                    let version = object.metadata.resource_version.clone();
                    (serde_json::to_value(object).ok().map(applied), version)
                }
                Ok(WatchEvent::Deleted(object)) => {
                    let version = object.metadata.resource_version.clone();
                    (serde_json::to_value(object).ok().map(deleted), version)
                }
                Ok(WatchEvent::Bookmark(bookmark)) => {
                    version = bookmark.metadata.resource_version;
                    continue;
                }
                // 410: the version expired; start over from the current state.
                Ok(WatchEvent::Error(_)) => {
                    version.clear();
                    let mut state = lock(&seen);
                    state.latest.clear();
                    state.ever.clear();
                    break;
                }
                Err(_) => break,
            };
            if let Some(v) = object_version {
                version = v;
            }
            let Some(change) = change else { continue };
            let mut state = lock(&seen);
            let name = change.name().to_string();
            state.ever.insert(name.clone());
            match &change {
                Change::Applied(object) => state.latest.insert(name, object.clone()),
                Change::Deleted(_) => state.latest.remove(&name),
            };
            // Nobody listening is fine: the latest version is kept for the next wait.
            let _ = changes.send(change);
        }
        // A watch that keeps ending at once is not worth keeping open: its waits go on by themselves.
        if opened.elapsed() < Duration::from_secs(1) {
            quick_ends += 1;
            if quick_ends >= 3 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        } else {
            quick_ends = 0;
        }
    }
}

fn applied(object: Value) -> Change {
    Change::Applied(Arc::new(object))
}

fn deleted(object: Value) -> Change {
    Change::Deleted(Arc::new(object))
}

/// Whether `object` is known to be older than `than` (both resourceVersions numbers, as etcd's
/// are); versions that are not numbers are never judged older.
pub fn older(object: &Value, than: &Value) -> bool {
    let version = |o: &Value| {
        o.pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|v| v.parse::<u64>().ok())
    };
    matches!((version(object), version(than)), (Some(a), Some(b)) if a < b)
}
