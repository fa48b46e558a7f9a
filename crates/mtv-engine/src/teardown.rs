//! Teardown that can be proven: everything the ledger lists is removed in dependency order, each
//! removal is awaited, and what is still there afterwards is reported as a leftover. Only the
//! objects the run made are touched: each delete carries the ledger's uid as a precondition, and an
//! object of the same name with another uid is "not ours, left alone".
//!
//! The same code serves the end of a run and `mtv-tests clean --ledger` after a crash.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use base64::Engine;
use mtv_api::ProviderType;
use mtv_providers::SourceProvider;
use mtv_providers::lab::LabSource;
use mtv_providers::openshift::OpenShiftSource;
use mtv_providers::vsphere::{VsphereConfig, VsphereSource};
use serde_json::Value;

use kube::api::{DeleteParams, Preconditions};

use crate::cluster::{Cluster, ClusterError, Kind, kinds, retry_transient};
use crate::events::{Event, ResourceRef};
use crate::lease::{self, Released, Setting};
use crate::ledger::LedgerEntry;
use crate::session::SESSION_LABEL;

/// Kinds in the order they are deleted: what drives a migration first, namespaces last.
const DELETE_ORDER: &[Kind] = &[
    kinds::MIGRATION,
    kinds::PLAN,
    kinds::HOOK,
    kinds::NETWORK_MAP,
    kinds::STORAGE_MAP,
    kinds::NAD,
    kinds::PROVIDER,
    kinds::SECRET,
    kinds::CONFIG_MAP,
    kinds::VIRTUAL_MACHINE,
    kinds::NAMESPACE,
];

/// The known kind of a recorded resource.
pub fn kind_of(resource: &ResourceRef) -> Option<Kind> {
    DELETE_ORDER
        .iter()
        .chain(
            [
                kinds::POD,
                kinds::PVC,
                kinds::DATA_VOLUME,
                kinds::FORKLIFT_CONTROLLER,
                kinds::NODE,
            ]
            .iter(),
        )
        .find(|k| k.kind == resource.kind && k.api_version() == resource.api_version)
        .copied()
}

/// Deletes the objects Forklift created for a Plan in its target namespace (VMs, DataVolumes, PVCs);
/// they are not in the ledger because the suite did not create them.
async fn delete_plan_products(cluster: &Cluster, plan: &Value) {
    let (Some(uid), Some(target)) = (
        plan["metadata"]["uid"].as_str(),
        plan["spec"]["targetNamespace"].as_str(),
    ) else {
        return;
    };
    let selector = format!("plan={uid}");
    for kind in [kinds::VIRTUAL_MACHINE, kinds::DATA_VOLUME, kinds::PVC] {
        if let Ok(objects) = cluster.list(&kind, Some(target), Some(&selector)).await {
            for object in objects {
                if let Some(name) = object["metadata"]["name"].as_str() {
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                    let _ = cluster
                        .delete_until(&kind, Some(target), name, deadline)
                        .await;
                }
            }
        }
    }
}

/// How to log in to the vSphere sources whose clones the ledger lists: the source Provider Secrets
/// the ledger names (`url`, `user`, `password`, `insecureSkipVerify`, `cacert`), read before teardown
/// deletes them, so this works for `clean --ledger` after a crash too.
async fn vsphere_credentials(cluster: &Cluster, entries: &[LedgerEntry]) -> Vec<VsphereConfig> {
    let has_vsphere_vms = entries.iter().any(
        |e| matches!(e, LedgerEntry::SourceVm { source, .. } if source.starts_with("vsphere:")),
    );
    if !has_vsphere_vms {
        return Vec::new();
    }
    let mut configs = Vec::new();
    for entry in entries {
        let LedgerEntry::Kube { resource, .. } = entry else {
            continue;
        };
        if kind_of(resource) != Some(kinds::SECRET) {
            continue;
        }
        let Ok(Some(secret)) = cluster
            .get(
                &kinds::SECRET,
                resource.namespace.as_deref(),
                &resource.name,
            )
            .await
        else {
            continue;
        };
        if secret["metadata"]["labels"]["createdForProviderType"].as_str() != Some("vsphere") {
            continue;
        }
        let field = |key: &str| -> Option<String> {
            match secret["data"][key].as_str() {
                Some(encoded) => base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok()),
                None => secret["stringData"][key].as_str().map(str::to_string),
            }
        };
        let (Some(url), Some(user), Some(password)) =
            (field("url"), field("user"), field("password"))
        else {
            continue;
        };
        let mut config = VsphereConfig::new(url, user, password);
        config.insecure_skip_verify = field("insecureSkipVerify").as_deref() == Some("true");
        config.ca_certificate = field("cacert").filter(|pem| !pem.trim().is_empty());
        configs.push(config);
    }
    configs
}

/// Whether a Provider URL (`https://vc.example.com/sdk`) is the ledger's `vsphere:<server>`.
fn is_server(url: &str, server: &str) -> bool {
    let authority = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    url == server || authority == server || authority.split(':').next() == Some(server)
}

/// The logged-in adapter for a ledgered vSphere server, connecting once per server.
async fn vsphere_adapter<'a>(
    adapters: &'a mut BTreeMap<String, Option<VsphereSource>>,
    credentials: &[VsphereConfig],
    server: &str,
) -> Option<&'a VsphereSource> {
    if !adapters.contains_key(server) {
        let adapter = match credentials.iter().find(|c| is_server(&c.server, server)) {
            Some(config) => VsphereSource::connect(config.clone()).await.ok(),
            None => None,
        };
        adapters.insert(server.to_string(), adapter);
    }
    adapters.get(server).and_then(Option::as_ref)
}

/// Removes everything the ledger lists that is not removed yet, and only what is still the object
/// the run made (the ledger's uid): the rest is "not ours, left alone". Waits for each removal until
/// `timeout` has passed, saying what it waits for, and returns what is still there then.
pub async fn teardown(cluster: &Cluster, timeout: Duration) -> Vec<ResourceRef> {
    adopt_unrecorded(cluster).await;
    let entries: Vec<LedgerEntry> = cluster
        .ledger()
        .entries()
        .into_iter()
        .filter(|e| !e.is_removed())
        .collect();
    cluster.events().emit(Event::TeardownStarted {
        resources: entries.len(),
    });
    // Deletions retry transient API failures for as long as teardown may take.
    let deadline = tokio::time::Instant::now() + timeout;
    // Read while the source Secrets still exist: the source clones go last.
    let vsphere_credentials = vsphere_credentials(cluster, &entries).await;

    // Settings the run changed go back first, while the operator is still there to act on them.
    let mut leftovers = restore_settings(cluster, &entries).await;
    let (requested, undeletable) = delete_objects(cluster, &entries, deadline).await;
    leftovers.extend(undeletable);
    leftovers.extend(wait_until_gone(cluster, requested, deadline).await);
    // Source-side clones last: the migration no longer reads them.
    leftovers.extend(delete_source_vms(cluster, &entries, &vsphere_credentials, timeout).await);

    cluster.events().emit(Event::TeardownFinished {
        leftovers: leftovers.clone(),
    });
    leftovers
}

/// Puts into the ledger the objects labelled with the ledger's session that it does not list: a
/// create whose answer never came back (lost on the wire, or the run stopped while it waited) still
/// made the object, and it is the session's to remove.
async fn adopt_unrecorded(cluster: &Cluster) {
    let ledger = cluster.ledger();
    let session = ledger.snapshot().session_id;
    if session.is_empty() {
        return;
    }
    // What the ledger knows: objects by uid, source VMs by id and by where they live (an OpenShift
    // source's VMs are KubeVirt objects with the session label, deleted through their adapter).
    let mut recorded: HashSet<String> = HashSet::new();
    for entry in ledger.entries() {
        match entry {
            LedgerEntry::Kube { resource, .. } => recorded.extend(resource.uid),
            LedgerEntry::SourceVm {
                source, id, name, ..
            } => {
                recorded.insert(format!("{source}/{name}"));
                recorded.insert(id);
            }
            _ => {}
        }
    }
    let selector = format!("{SESSION_LABEL}={session}");
    for kind in DELETE_ORDER {
        // A cluster that does not let us list a kind everywhere just gets no adoption for it.
        let Ok(objects) = cluster.list(kind, None, Some(&selector)).await else {
            continue;
        };
        for object in objects {
            let Some(uid) = uid_of(&object) else {
                continue;
            };
            let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            if recorded.contains(uid) || recorded.contains(&format!("openshift:{namespace}/{name}"))
            {
                continue;
            }
            let resource = ResourceRef {
                api_version: kind.api_version(),
                kind: kind.kind.to_string(),
                namespace: object["metadata"]["namespace"].as_str().map(str::to_string),
                name: object["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                uid: Some(uid.to_string()),
            };
            cluster.events().emit(Event::TeardownNote {
                message: format!(
                    "{resource} carries this session's label but is not in the ledger (its create's answer never came back); deleting it too"
                ),
            });
            let _ = ledger.record(LedgerEntry::Kube {
                resource,
                scenario: None,
                removed: false,
            });
        }
    }
}

fn uid_of(object: &Value) -> Option<&str> {
    object["metadata"]["uid"].as_str()
}

/// Marks one ledger entry done (removed, released, or found not to be ours any more).
fn mark_done(cluster: &Cluster, entry: &LedgerEntry) {
    let _ = cluster.ledger().mark_removed(|e| e == entry);
}

fn left_alone(cluster: &Cluster, resource: &ResourceRef, reason: String) {
    cluster.events().emit(Event::ResourceLeftAlone {
        resource: resource.clone(),
        reason,
    });
}

/// Why an object of the recorded name is not the run's.
fn not_ours(found_uid: &str, resource: &ResourceRef) -> String {
    format!(
        "not ours, left alone: its uid is {found_uid}, the run made uid {}",
        resource.uid.as_deref().unwrap_or("?")
    )
}

/// Leaves the session's leases (the last holder restores the original value) and applies the
/// restore patches of older ledgers; returns what could not be put back.
async fn restore_settings(cluster: &Cluster, entries: &[LedgerEntry]) -> Vec<ResourceRef> {
    let mut leftovers = Vec::new();
    for entry in entries {
        let done = match entry {
            LedgerEntry::Lease {
                resource,
                setting,
                session,
                ..
            } => release_lease(cluster, resource, setting, session).await,
            LedgerEntry::Patch {
                resource, restore, ..
            } => restore_patch(cluster, resource, restore).await,
            _ => continue,
        };
        match done {
            Ok(()) => mark_done(cluster, entry),
            Err(resource) => leftovers.push(resource),
        }
    }
    leftovers
}

async fn release_lease(
    cluster: &Cluster,
    resource: &ResourceRef,
    setting: &str,
    session: &str,
) -> Result<(), ResourceRef> {
    let (Some(kind), Some(parsed)) = (kind_of(resource), Setting::parse(setting)) else {
        return Err(resource.clone());
    };
    match lease::release(cluster, &kind, resource, &parsed, session).await {
        Ok(Released::StillHeld { sessions }) => {
            let reason = format!(
                "{setting} stays: sessions {} still need it (the last of them restores it)",
                sessions.join(", ")
            );
            left_alone(cluster, resource, reason);
            Ok(())
        }
        Ok(Released::NotOurs { uid }) => {
            left_alone(cluster, resource, not_ours(&uid, resource));
            Ok(())
        }
        Ok(Released::Restored | Released::NotHeld | Released::Gone) => Ok(()),
        Err(_) => Err(resource.clone()),
    }
}

/// A restore patch of an older ledger, applied only to the object it was recorded for.
async fn restore_patch(
    cluster: &Cluster,
    resource: &ResourceRef,
    restore: &Value,
) -> Result<(), ResourceRef> {
    let Some(kind) = kind_of(resource) else {
        return Err(resource.clone());
    };
    let namespace = resource.namespace.as_deref();
    let object = match cluster.get(&kind, namespace, &resource.name).await {
        Ok(Some(object)) => object,
        Ok(None) => return Ok(()),
        Err(_) => return Err(resource.clone()),
    };
    let found = uid_of(&object).unwrap_or_default();
    if resource.uid.as_deref() != Some(found) {
        left_alone(cluster, resource, not_ours(found, resource));
        return Ok(());
    }
    match cluster
        .merge_patch(&kind, namespace, &resource.name, restore.clone())
        .await
    {
        Ok(_) => Ok(()),
        Err(error) if error.is_not_found() => Ok(()),
        Err(_) => Err(resource.clone()),
    }
}

/// A deletion that was asked for and is awaited.
struct Requested<'a> {
    kind: Kind,
    resource: &'a ResourceRef,
    entry: &'a LedgerEntry,
}

/// What a uid-guarded delete found.
enum Deletion {
    Requested,
    AlreadyGone,
    NotOurs { uid: String },
}

/// Deletes the object only if it still has `uid` (a delete precondition, so nothing of someone else
/// is deleted even if it is made again between a read and the delete).
async fn delete_if_ours(
    cluster: &Cluster,
    kind: &Kind,
    resource: &ResourceRef,
    uid: &str,
    deadline: tokio::time::Instant,
) -> Result<Deletion, ClusterError> {
    let namespace = resource.namespace.as_deref();
    let mut params = DeleteParams::background();
    params.preconditions = Some(Preconditions {
        uid: Some(uid.to_string()),
        resource_version: None,
    });
    retry_transient(deadline, || async {
        match cluster
            .api(kind, namespace)
            .delete(&resource.name, &params)
            .await
        {
            Ok(_) => Ok(Deletion::Requested),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(Deletion::AlreadyGone),
            // The precondition failed: the name belongs to another object now.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                match cluster.get(kind, namespace, &resource.name).await? {
                    Some(object) => Ok(Deletion::NotOurs {
                        uid: uid_of(&object).unwrap_or_default().to_string(),
                    }),
                    None => Ok(Deletion::AlreadyGone),
                }
            }
            Err(source) => Err(ClusterError::Api {
                action: "delete",
                resource: resource.to_string(),
                source,
            }),
        }
    })
    .await
}

/// Asks for the deletion of every recorded Kubernetes object in dependency order; returns the
/// deletions to wait for and what could not be deleted.
async fn delete_objects<'a>(
    cluster: &Cluster,
    entries: &'a [LedgerEntry],
    deadline: tokio::time::Instant,
) -> (Vec<Requested<'a>>, Vec<ResourceRef>) {
    let kube: Vec<(&LedgerEntry, &ResourceRef)> = entries
        .iter()
        .filter_map(|e| match e {
            LedgerEntry::Kube { resource, .. } => Some((e, resource)),
            _ => None,
        })
        .collect();
    let mut requested = Vec::new();
    let mut leftovers = Vec::new();
    for kind in DELETE_ORDER {
        for (entry, resource) in kube.iter().filter(|(_, r)| kind_of(r) == Some(*kind)) {
            let Some(uid) = resource.uid.as_deref() else {
                // Without a uid it cannot be told from someone else's object of the same name.
                cluster.events().emit(Event::TeardownNote {
                    message: format!("{resource}: the ledger has no uid for it; not deleted"),
                });
                leftovers.push((*resource).clone());
                continue;
            };
            if *kind == kinds::PLAN {
                delete_plan_products_if_ours(cluster, resource, uid, deadline).await;
            }
            match delete_if_ours(cluster, kind, resource, uid, deadline).await {
                Ok(Deletion::Requested | Deletion::AlreadyGone) => requested.push(Requested {
                    kind: *kind,
                    resource,
                    entry,
                }),
                Ok(Deletion::NotOurs { uid }) => {
                    left_alone(cluster, resource, not_ours(&uid, resource));
                    mark_done(cluster, entry);
                }
                Err(_) => leftovers.push((*resource).clone()),
            }
        }
    }
    // Kinds the engine does not know how to delete are leftovers by definition.
    for (_, resource) in kube.iter().filter(|(_, r)| kind_of(r).is_none()) {
        leftovers.push((*resource).clone());
    }
    (requested, leftovers)
}

/// What Forklift made for the recorded Plan, deleted only when the Plan there is the run's.
async fn delete_plan_products_if_ours(
    cluster: &Cluster,
    resource: &ResourceRef,
    uid: &str,
    deadline: tokio::time::Instant,
) {
    let namespace = resource.namespace.as_deref();
    if let Ok(Some(plan)) = retry_transient(deadline, || {
        cluster.get(&kinds::PLAN, namespace, &resource.name)
    })
    .await
        && uid_of(&plan) == Some(uid)
    {
        delete_plan_products(cluster, &plan).await;
    }
}

/// How long teardown waits quietly before it says what it is waiting for, and then how often.
const FIRST_WAITING_NOTE: Duration = Duration::from_secs(2);
const WAITING_NOTE_EVERY: Duration = Duration::from_secs(10);

/// An object still there, as the waiting note shows it: with its finalizers when it is being
/// deleted.
fn still_there(resource: &ResourceRef, object: &Value) -> String {
    let finalizers: Vec<&str> = object["metadata"]["finalizers"]
        .as_array()
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if finalizers.is_empty() {
        format!("{resource}")
    } else {
        format!("{resource} (finalizers: {})", finalizers.join(", "))
    }
}

/// Waits until every requested deletion is done (the object is gone, or another object has the
/// name now) or `deadline` passes; returns what is still there then.
async fn wait_until_gone(
    cluster: &Cluster,
    mut pending: Vec<Requested<'_>>,
    deadline: tokio::time::Instant,
) -> Vec<ResourceRef> {
    let mut next_note = tokio::time::Instant::now() + FIRST_WAITING_NOTE;
    loop {
        let reads = pending.iter().map(|requested| {
            cluster.get(
                &requested.kind,
                requested.resource.namespace.as_deref(),
                &requested.resource.name,
            )
        });
        let found = futures_util::future::join_all(reads).await;
        let mut waiting = Vec::new();
        let mut still = Vec::new();
        for (requested, found) in pending.into_iter().zip(found) {
            match found {
                Ok(Some(object)) if uid_of(&object) == requested.resource.uid.as_deref() => {
                    waiting.push(still_there(requested.resource, &object));
                    still.push(requested);
                }
                // A failed read says nothing; ask again until the deadline.
                Err(_) => {
                    waiting.push(format!("{} (cannot read it)", requested.resource));
                    still.push(requested);
                }
                Ok(_) => {
                    mark_done(cluster, requested.entry);
                    cluster.events().emit(Event::ResourceDeleted {
                        resource: requested.resource.clone(),
                    });
                }
            }
        }
        pending = still;
        let now = tokio::time::Instant::now();
        if pending.is_empty() {
            return Vec::new();
        }
        if now >= deadline {
            cluster.events().emit(Event::TeardownNote {
                message: format!("gave up {}", waiting_note(&waiting)),
            });
            return pending.iter().map(|r| r.resource.clone()).collect();
        }
        if now >= next_note {
            cluster.events().emit(Event::TeardownNote {
                message: waiting_note(&waiting),
            });
            next_note = now + WAITING_NOTE_EVERY;
        }
        // Deletion has no condition to watch for; a short poll bounded by the deadline.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `waiting for 2 objects to be deleted: Plan ns/p (finalizers: x), Namespace ns`, the first ten.
fn waiting_note(waiting: &[String]) -> String {
    const SHOWN: usize = 10;
    let noun = if waiting.len() == 1 {
        "object"
    } else {
        "objects"
    };
    let mut note = format!(
        "waiting for {} {noun} to be deleted: {}",
        waiting.len(),
        waiting[..waiting.len().min(SHOWN)].join(", ")
    );
    if waiting.len() > SHOWN {
        note.push_str(&format!(" and {} more", waiting.len() - SHOWN));
    }
    note
}

/// Deletes the recorded source-side VMs (by their id on the source); returns those still there.
async fn delete_source_vms(
    cluster: &Cluster,
    entries: &[LedgerEntry],
    vsphere_credentials: &[VsphereConfig],
    timeout: Duration,
) -> Vec<ResourceRef> {
    let mut vsphere_adapters = BTreeMap::new();
    let mut leftovers = Vec::new();
    for entry in entries {
        let LedgerEntry::SourceVm {
            provider_type,
            source,
            id,
            name,
            ..
        } = entry
        else {
            continue;
        };
        let reference = ResourceRef {
            api_version: format!("source/{provider_type}"),
            kind: "SourceVm".into(),
            namespace: Some(source.clone()),
            name: name.clone(),
            uid: Some(id.clone()),
        };
        let removed = if let Some(namespace) = source.strip_prefix("openshift:") {
            // Usually gone already with its namespace; deleting a missing VM is not an error.
            let adapter = OpenShiftSource::named(cluster.client().clone(), namespace);
            adapter.delete_vm(id).await.is_ok()
        } else if let Some(server) = source.strip_prefix("vsphere:") {
            let deletion = async {
                match vsphere_adapter(&mut vsphere_adapters, vsphere_credentials, server).await {
                    Some(adapter) => adapter.delete_vm(id).await.is_ok(),
                    None => false,
                }
            };
            tokio::time::timeout(timeout, deletion)
                .await
                .unwrap_or(false)
        } else {
            match (
                source.strip_prefix("lab:"),
                provider_type.parse::<ProviderType>(),
            ) {
                (Some(lab_source), Ok(provider_type)) => {
                    let adapter =
                        LabSource::named(cluster.client().clone(), provider_type, lab_source);
                    adapter.delete_vm(id).await.is_ok()
                }
                _ => false,
            }
        };
        if removed {
            mark_done(cluster, entry);
            cluster.events().emit(Event::ResourceDeleted {
                resource: reference,
            });
        } else {
            leftovers.push(reference);
        }
    }
    leftovers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_urls_match_ledgered_vsphere_servers() {
        assert!(is_server("https://vc.example.com/sdk", "vc.example.com"));
        assert!(is_server(
            "https://vc.example.com:8443/sdk",
            "vc.example.com"
        ));
        assert!(is_server(
            "https://vc.example.com:8443/sdk",
            "vc.example.com:8443"
        ));
        assert!(is_server("vc.example.com", "vc.example.com"));
        assert!(!is_server(
            "https://other.example.com/sdk",
            "vc.example.com"
        ));
    }

    #[test]
    fn migrations_go_first_and_namespaces_last() {
        assert_eq!(DELETE_ORDER.first(), Some(&kinds::MIGRATION));
        assert_eq!(DELETE_ORDER.last(), Some(&kinds::NAMESPACE));
        let position = |k: Kind| DELETE_ORDER.iter().position(|x| *x == k).unwrap();
        assert!(position(kinds::PLAN) < position(kinds::STORAGE_MAP));
        assert!(position(kinds::PROVIDER) < position(kinds::SECRET));
    }

    #[test]
    fn recorded_kinds_are_recognised_by_api_version_and_kind() {
        let plan = ResourceRef {
            api_version: "forklift.konveyor.io/v1beta1".into(),
            kind: "Plan".into(),
            namespace: Some("ns".into()),
            name: "p".into(),
            uid: None,
        };
        assert_eq!(kind_of(&plan), Some(kinds::PLAN));
        let unknown = ResourceRef {
            kind: "Widget".into(),
            ..plan
        };
        assert_eq!(kind_of(&unknown), None);
    }
}
