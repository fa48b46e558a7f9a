//! Teardown that can be proven: everything the ledger lists is removed in dependency order, each
//! removal is awaited, and what is still there afterwards is reported as a leftover. Only the
//! objects the run made are touched: each delete carries the ledger's uid as a precondition, and an
//! object of the same name with another uid is "not ours, left alone".
//!
//! The same code serves the end of a run and `mtv-tests clean --ledger` after a crash.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use base64::Engine;
use mtv_providers::{ProviderSecret, Source, SourceProvider, SourceRef};
use serde_json::Value;

use kube::api::{DeleteParams, Preconditions};

use crate::cluster::{Cluster, ClusterError, Kind, kinds, retry_transient};
use crate::events::{Event, ResourceRef};
use crate::lease::{self, Released, Setting};
use crate::ledger::LedgerEntry;
use crate::session::{SESSION_LABEL, SOURCE_SECRET_LABEL};

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

/// The source Provider Secrets the ledger lists, decoded, when a recorded source VM needs a login to
/// be deleted: read before teardown deletes them, so this works for `clean --ledger` after a crash
/// too.
async fn provider_secrets(cluster: &Cluster, entries: &[LedgerEntry]) -> Vec<ProviderSecret> {
    let needs_login = entries.iter().any(|e| match e {
        LedgerEntry::SourceVm {
            source,
            provider_type,
            ..
        } => source
            .resolve(provider_type)
            .is_ok_and(|r| r.needs_credentials()),
        _ => false,
    });
    if !needs_login {
        return Vec::new();
    }
    let mut secrets = Vec::new();
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
        let Some(provider_type) = secret["metadata"]["labels"][SOURCE_SECRET_LABEL].as_str() else {
            continue;
        };
        secrets.push(ProviderSecret {
            provider_type: provider_type.to_string(),
            data: secret_data(&secret),
        });
    }
    secrets
}

/// A Secret's `data` (base64) and `stringData`, decoded.
fn secret_data(secret: &Value) -> BTreeMap<String, String> {
    let mut data = BTreeMap::new();
    if let Some(encoded) = secret["data"].as_object() {
        for (key, value) in encoded {
            let decoded = value
                .as_str()
                .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                .and_then(|bytes| String::from_utf8(bytes).ok());
            if let Some(decoded) = decoded {
                data.insert(key.clone(), decoded);
            }
        }
    }
    if let Some(plain) = secret["stringData"].as_object() {
        for (key, value) in plain {
            if let Some(value) = value.as_str() {
                data.insert(key.clone(), value.to_string());
            }
        }
    }
    data
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
    let secrets = provider_secrets(cluster, &entries).await;

    // Settings the run changed go back first, while the operator is still there to act on them.
    let mut leftovers = restore_settings(cluster, &entries).await;
    // The source clones once nothing of the migration reads them, but while the Secrets and
    // Namespaces that hold the source's credentials still exist: a teardown cut short between
    // the two leaves what `clean` needs to log in to the source.
    let (credentials, migration): (Vec<LedgerEntry>, Vec<LedgerEntry>) =
        entries.iter().cloned().partition(holds_credentials);
    let (requested, undeletable) = delete_objects(cluster, &migration, deadline).await;
    leftovers.extend(undeletable);
    leftovers.extend(wait_until_gone(cluster, requested, deadline).await);
    leftovers.extend(delete_source_vms(cluster, &entries, &secrets, timeout).await);
    let (requested, undeletable) = delete_objects(cluster, &credentials, deadline).await;
    leftovers.extend(undeletable);
    leftovers.extend(wait_until_gone(cluster, requested, deadline).await);

    cluster.events().emit(Event::TeardownFinished {
        leftovers: leftovers.clone(),
    });
    leftovers
}

/// A Secret or Namespace of the run: what may hold a source's credentials, deleted after the
/// source clones.
fn holds_credentials(entry: &LedgerEntry) -> bool {
    match entry {
        LedgerEntry::Kube { resource, .. } => {
            kind_of(resource).is_some_and(|k| k == kinds::SECRET || k == kinds::NAMESPACE)
        }
        _ => false,
    }
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
                source,
                provider_type,
                id,
                name,
                ..
            } => {
                if let Some(namespace) = source
                    .resolve(&provider_type)
                    .ok()
                    .and_then(|r| r.cluster_namespace().map(str::to_string))
                {
                    recorded.insert(format!("{namespace}/{name}"));
                }
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
            if recorded.contains(uid) || recorded.contains(&format!("{namespace}/{name}")) {
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

/// Deletes the recorded source-side VMs (by their id on the source), reaching each source again
/// through `mtv_providers::reconnect` once; returns the VMs still there.
async fn delete_source_vms(
    cluster: &Cluster,
    entries: &[LedgerEntry],
    secrets: &[ProviderSecret],
    timeout: Duration,
) -> Vec<ResourceRef> {
    let mut adapters: Vec<(SourceRef, Option<Source>)> = Vec::new();
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
        let reference = match source.resolve(provider_type) {
            Ok(reference) => reference,
            Err(why) => {
                cluster.events().emit(Event::TeardownNote {
                    message: format!(
                        "source VM {name} ({id}): the ledger's source {source:?} cannot be read                          ({why}); delete it on the source by hand"
                    ),
                });
                leftovers.push(source_vm_ref(
                    provider_type,
                    &format!("{source:?}"),
                    id,
                    name,
                ));
                continue;
            }
        };
        let shown = source_vm_ref(provider_type, &reference.describe(), id, name);
        let deletion = async {
            let adapter = adapter_for(cluster, &mut adapters, &reference, secrets).await?;
            adapter.delete_vm(id).await.ok()
        };
        match tokio::time::timeout(timeout, deletion).await {
            Ok(Some(())) => {
                mark_done(cluster, entry);
                cluster
                    .events()
                    .emit(Event::ResourceDeleted { resource: shown });
            }
            _ => leftovers.push(shown),
        }
    }
    leftovers
}

/// A source VM as reports show it: `source/<type>` SourceVm `<name>` in `<source>`.
fn source_vm_ref(provider_type: &str, source: &str, id: &str, name: &str) -> ResourceRef {
    ResourceRef {
        api_version: format!("source/{provider_type}"),
        kind: "SourceVm".into(),
        namespace: Some(source.to_string()),
        name: name.to_string(),
        uid: Some(id.to_string()),
    }
}

/// The adapter for `reference`, reconnecting once per source; a source that cannot be reached is
/// said once, and its VMs are leftovers.
async fn adapter_for<'a>(
    cluster: &Cluster,
    adapters: &'a mut Vec<(SourceRef, Option<Source>)>,
    reference: &SourceRef,
    secrets: &[ProviderSecret],
) -> Option<&'a Source> {
    let index = match adapters.iter().position(|(r, _)| r == reference) {
        Some(index) => index,
        None => {
            let adapter = match mtv_providers::reconnect(reference, cluster.client(), secrets).await
            {
                Ok(adapter) => Some(adapter),
                Err(error) => {
                    cluster.events().emit(Event::TeardownNote {
                        message: format!(
                            "cannot reach the source {}: {error}",
                            reference.describe()
                        ),
                    });
                    None
                }
            };
            adapters.push((reference.clone(), adapter));
            adapters.len() - 1
        }
    };
    adapters[index].1.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

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
