//! Teardown that can be proven: everything the ledger lists is removed in dependency order, each
//! removal is awaited, and what is still there afterwards is reported as a leftover. Only the
//! objects the run made are touched: each delete carries the ledger's uid as a precondition, and an
//! object of the same name with another uid is "not ours, left alone".
//!
//! A namespace the run made goes as a whole: one delete takes the recorded objects inside it along
//! (the API server's namespace controller removes them), and one watch per kind sees the deletions
//! finish, where a delete and a poll per object would cost a request each. Objects elsewhere are
//! deleted one by one.
//!
//! The same code serves the end of a run and `mtv-tests clean --ledger` after a crash; `clean` also
//! looks for objects that carry the session's label but missed the ledger ([`clean`]).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;
use mtv_providers::{ProviderSecret, Source, SourceProvider, SourceRef};
use serde_json::Value;

use kube::api::{DeleteParams, Preconditions, WatchEvent, WatchParams};

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

/// The logins teardown has for the sources: the run's source Provider Secrets it could read, and
/// why one could not be read (so a source it then cannot log in to is explained by that, not by a
/// Secret that seems to be missing).
#[derive(Default)]
struct SourceLogins {
    secrets: Vec<ProviderSecret>,
    unreadable: Option<String>,
}

/// The source Provider Secrets the ledger lists, decoded, when a recorded source VM needs a login to
/// be deleted: read before teardown deletes them, so this works for `clean --ledger` after a crash
/// too.
async fn provider_secrets(cluster: &Cluster, entries: &[LedgerEntry]) -> SourceLogins {
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
        return SourceLogins::default();
    }
    let mut logins = SourceLogins::default();
    for entry in entries {
        let LedgerEntry::Kube { resource, .. } = entry else {
            continue;
        };
        if kind_of(resource) != Some(kinds::SECRET) {
            continue;
        }
        let secret = match cluster
            .get(
                &kinds::SECRET,
                resource.namespace.as_deref(),
                &resource.name,
            )
            .await
        {
            Ok(Some(secret)) => secret,
            Ok(None) => continue,
            Err(error) => {
                logins.unreadable.get_or_insert_with(|| error.to_string());
                continue;
            }
        };
        let Some(provider_type) = secret["metadata"]["labels"][SOURCE_SECRET_LABEL].as_str() else {
            continue;
        };
        logins.secrets.push(ProviderSecret {
            provider_type: provider_type.to_string(),
            data: secret_data(&secret),
        });
    }
    logins
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
    // Deletions retry transient API failures for as long as teardown may take.
    let deadline = tokio::time::Instant::now() + timeout;
    settle_intents(cluster, deadline).await;
    let entries: Vec<LedgerEntry> = cluster
        .ledger()
        .entries()
        .into_iter()
        .filter(|e| !e.is_removed())
        .collect();
    cluster.events().emit(Event::TeardownStarted {
        resources: entries.len(),
    });
    // Read while the source Secrets still exist, before anything is deleted.
    let logins = provider_secrets(cluster, &entries).await;

    // Settings the run changed go back first, while the operator is still there to act on them.
    let mut leftovers = restore_settings(cluster, &entries).await;
    // The Plans first, so no migration reads a source clone as it goes; then the
    // source clones, while the Secrets that hold the source's credentials still exist (a teardown cut
    // short between the two leaves `clean` what it needs to log in to the source); then the rest,
    // the run's namespaces whole (one delete and one watch each).
    let run_namespaces = run_namespaces_of(&entries);
    let (readers, rest): (Vec<LedgerEntry>, Vec<LedgerEntry>) =
        entries.iter().cloned().partition(reads_source);
    let (requested, undeletable) =
        delete_objects(cluster, &readers, &run_namespaces, deadline).await;
    leftovers.extend(undeletable);
    leftovers.extend(wait_until_gone(cluster, requested, deadline).await);
    leftovers.extend(delete_source_vms(cluster, &entries, &logins, timeout).await);
    let (requested, undeletable) = delete_objects(cluster, &rest, &run_namespaces, deadline).await;
    leftovers.extend(undeletable);
    leftovers.extend(wait_until_gone(cluster, requested, deadline).await);

    cluster.events().emit(Event::TeardownFinished {
        leftovers: leftovers.clone(),
    });
    leftovers
}

/// The namespaces the run made among `entries` (recorded with their uid): each is deleted whole.
fn run_namespaces_of(entries: &[LedgerEntry]) -> HashSet<&str> {
    entries
        .iter()
        .filter_map(|e| match e {
            LedgerEntry::Kube { resource, .. }
                if kind_of(resource) == Some(kinds::NAMESPACE) && resource.uid.is_some() =>
            {
                Some(resource.name.as_str())
            }
            _ => None,
        })
        .collect()
}

/// Whether an entry is a Plan: what drives a migration that reads the source VMs. (Its Migrations
/// do nothing without it; they go with their namespace.)
fn reads_source(entry: &LedgerEntry) -> bool {
    match entry {
        LedgerEntry::Kube { resource, .. } => kind_of(resource) == Some(kinds::PLAN),
        _ => false,
    }
}

/// [`teardown`] for `mtv-tests clean --ledger`: first the objects that carry the ledger's session
/// label but that it does not list (a ledger of an older build, which wrote a create down only once
/// it was answered, or an object labelled by hand) go into the ledger, then all of it is removed.
pub async fn clean(cluster: &Cluster, timeout: Duration) -> Vec<ResourceRef> {
    adopt_unrecorded(cluster).await;
    teardown(cluster, timeout).await
}

/// Settles the creates the ledger wrote down whose answer it never saw (lost on the wire, or the run
/// stopped while it waited): an object of that name with this session's label is the run's, and its
/// uid goes into the ledger; no object, or someone else's, means nothing of the run's is there.
async fn settle_intents(cluster: &Cluster, deadline: tokio::time::Instant) {
    let ledger = cluster.ledger();
    let session = ledger.snapshot().session_id;
    for entry in ledger.entries() {
        let LedgerEntry::Kube {
            resource,
            scenario,
            removed: false,
        } = &entry
        else {
            continue;
        };
        let Some(kind) = kind_of(resource).filter(|_| resource.uid.is_none()) else {
            continue;
        };
        let namespace = resource.namespace.as_deref();
        let found =
            match retry_transient(deadline, || cluster.get(&kind, namespace, &resource.name)).await
            {
                Ok(found) => found,
                // Unreadable now: it stays unsettled, and delete_objects reports it.
                Err(_) => continue,
            };
        let ours = found.as_ref().filter(|object| {
            !session.is_empty()
                && object["metadata"]["labels"][SESSION_LABEL].as_str() == Some(session.as_str())
        });
        let settled = ours.and_then(uid_of).map(|uid| LedgerEntry::Kube {
            resource: ResourceRef {
                uid: Some(uid.to_string()),
                ..resource.clone()
            },
            scenario: scenario.clone(),
            removed: false,
        });
        if settled.is_none() {
            if let Some(object) = &found {
                let reason = format!(
                    "not ours, left alone: it does not carry this session's label (uid {})",
                    uid_of(object).unwrap_or("?")
                );
                left_alone(cluster, resource, reason);
            }
            mark_done(cluster, &entry);
            continue;
        }
        let _ = ledger.replace(|e| e == &entry, settled);
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
            LedgerEntry::Kube { resource, .. } => match resource.uid {
                Some(uid) => {
                    recorded.insert(uid);
                }
                // A create not settled yet: settle_intents finds it by its name.
                None => {
                    recorded.insert(intent_key(
                        &resource.kind,
                        resource.namespace.as_deref().unwrap_or_default(),
                        &resource.name,
                    ));
                }
            },
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
            if recorded.contains(uid)
                || recorded.contains(&format!("{namespace}/{name}"))
                || recorded.contains(&intent_key(kind.kind, namespace, name))
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

/// How [`adopt_unrecorded`] knows a create the ledger holds without its uid.
fn intent_key(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind}:{namespace}/{name}")
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

/// A recorded Kubernetes object of the ledger.
type Recorded<'a> = (&'a LedgerEntry, &'a ResourceRef);

/// A deletion that was asked for and is awaited.
struct Requested<'a> {
    kind: Kind,
    resource: &'a ResourceRef,
    entry: &'a LedgerEntry,
    /// The object as the delete's answer or the watch last showed it (being finalized); `None` once
    /// the API server said it is gone.
    seen: Option<Value>,
    /// For a namespace: the recorded objects inside it, which go with it.
    contents: Vec<Recorded<'a>>,
}

/// What a uid-guarded delete found.
enum Deletion {
    /// Deletion started; the object is still there (finalizers, a namespace's contents).
    Pending(Value),
    /// Deleted at once, or already gone.
    Gone,
    NotOurs {
        uid: String,
    },
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
            // The object while it is finalized (its deletionTimestamp set). An object deleted at
            // once is answered with its last state, without one (or with a Status): gone. Its
            // deletion's resourceVersion is the answer's, so a watch from there would never see it.
            Ok(answer) => match answer.left() {
                Some(object) if object.metadata.deletion_timestamp.is_some() => {
                    serde_json::to_value(object)
                        .map(Deletion::Pending)
                        .map_err(|e| ClusterError::Invalid {
                            resource: resource.to_string(),
                            message: e.to_string(),
                        })
                }
                _ => Ok(Deletion::Gone),
            },
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(Deletion::Gone),
            // The precondition failed: the name belongs to another object now.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                match cluster.get(kind, namespace, &resource.name).await? {
                    Some(object) => Ok(Deletion::NotOurs {
                        uid: uid_of(&object).unwrap_or_default().to_string(),
                    }),
                    None => Ok(Deletion::Gone),
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

/// Asks for one uid-guarded deletion: the deletion to wait for, `None` when the object is not the
/// run's any more, `Err` with what could not be deleted.
async fn request_deletion<'a>(
    cluster: &Cluster,
    kind: Kind,
    (entry, resource): Recorded<'a>,
    contents: Vec<Recorded<'a>>,
    deadline: tokio::time::Instant,
) -> Result<Option<Requested<'a>>, ResourceRef> {
    let Some(uid) = resource.uid.as_deref() else {
        // A create never settled (unreadable when teardown began): it cannot be told from someone
        // else's object of the same name.
        cluster.events().emit(Event::TeardownNote {
            message: format!("{resource}: the ledger has no uid for it; not deleted"),
        });
        return Err(resource.clone());
    };
    let seen = match delete_if_ours(cluster, &kind, resource, uid, deadline).await {
        Ok(Deletion::Pending(object)) => Some(object),
        Ok(Deletion::Gone) => None,
        Ok(Deletion::NotOurs { uid }) => {
            left_alone(cluster, resource, not_ours(&uid, resource));
            mark_done(cluster, entry);
            return Ok(None);
        }
        Err(_) => return Err(resource.clone()),
    };
    Ok(Some(Requested {
        kind,
        resource,
        entry,
        seen,
        contents,
    }))
}

/// Asks for the deletion of every recorded Kubernetes object: what Forklift made outside the run's
/// namespaces, then the run's namespaces (each with its contents), then the rest in dependency
/// order. Returns the deletions to wait for and what could not be deleted.
async fn delete_objects<'a>(
    cluster: &Cluster,
    entries: &'a [LedgerEntry],
    run_namespaces: &HashSet<&str>,
    deadline: tokio::time::Instant,
) -> (Vec<Requested<'a>>, Vec<ResourceRef>) {
    let kube: Vec<Recorded<'a>> = entries
        .iter()
        .filter_map(|e| match e {
            LedgerEntry::Kube { resource, .. } => Some((e, resource)),
            _ => None,
        })
        .collect();
    let is_namespace = |r: &ResourceRef| kind_of(r) == Some(kinds::NAMESPACE);
    // The namespaces the run made that are deleted now, whole.
    let owned = run_namespaces_of(entries);
    delete_plan_products_outside(cluster, &kube, run_namespaces, deadline).await;

    let mut requested = Vec::new();
    let mut leftovers = Vec::new();
    let mut one_by_one: Vec<Recorded<'a>> = Vec::new();
    for namespace in kube
        .iter()
        .filter(|(_, r)| is_namespace(r) && owned.contains(r.name.as_str()))
    {
        let contents: Vec<Recorded<'a>> = kube
            .iter()
            .copied()
            .filter(|(_, r)| r.namespace.as_deref() == Some(namespace.1.name.as_str()))
            .collect();
        let deletion = request_deletion(
            cluster,
            kinds::NAMESPACE,
            *namespace,
            contents.clone(),
            deadline,
        );
        match deletion.await {
            Ok(Some(deletion)) => requested.push(deletion),
            // Not ours after all: its contents go one by one.
            Ok(None) => one_by_one.extend(contents),
            Err(resource) => {
                leftovers.push(resource);
                one_by_one.extend(contents);
            }
        }
    }
    // Everything not handled with a namespace of the run above (the namespace itself, or inside it).
    let with_a_namespace = |r: &ResourceRef| {
        let inside = r
            .namespace
            .as_deref()
            .is_some_and(|namespace| owned.contains(namespace));
        inside || (is_namespace(r) && owned.contains(r.name.as_str()))
    };
    one_by_one.extend(kube.iter().copied().filter(|(_, r)| !with_a_namespace(r)));
    for kind in DELETE_ORDER {
        for recorded in one_by_one.iter().filter(|(_, r)| kind_of(r) == Some(*kind)) {
            match request_deletion(cluster, *kind, *recorded, Vec::new(), deadline).await {
                Ok(Some(deletion)) => requested.push(deletion),
                Ok(None) => {}
                Err(resource) => leftovers.push(resource),
            }
        }
    }
    // Kinds the engine does not know how to delete are leftovers by definition.
    for (_, resource) in kube.iter().filter(|(_, r)| kind_of(r).is_none()) {
        leftovers.push((*resource).clone());
    }
    (requested, leftovers)
}

/// What Forklift made for the run's Plans (VMs, DataVolumes, PVCs) in target namespaces the run does
/// not delete as a whole: the Plans of each run namespace come in one list, the others one by one,
/// and only a Plan that is still the run's (its uid) counts.
async fn delete_plan_products_outside(
    cluster: &Cluster,
    kube: &[Recorded<'_>],
    owned: &HashSet<&str>,
    deadline: tokio::time::Instant,
) {
    let plans: Vec<&ResourceRef> = kube
        .iter()
        .filter(|(_, r)| kind_of(r) == Some(kinds::PLAN))
        .map(|(_, r)| *r)
        .collect();
    let recorded = |plan: &Value| {
        plans
            .iter()
            .any(|r| r.uid.is_some() && r.uid.as_deref() == uid_of(plan))
    };
    let mut found: Vec<Value> = Vec::new();
    let mut listed: HashSet<&str> = HashSet::new();
    for plan in &plans {
        match plan.namespace.as_deref() {
            Some(namespace) if owned.contains(namespace) => {
                if listed.insert(namespace)
                    && let Ok(all) = retry_transient(deadline, || {
                        cluster.list(&kinds::PLAN, Some(namespace), None)
                    })
                    .await
                {
                    found.extend(all.into_iter().filter(|p| recorded(p)));
                }
            }
            namespace => {
                if let Ok(Some(object)) = retry_transient(deadline, || {
                    cluster.get(&kinds::PLAN, namespace, &plan.name)
                })
                .await
                    && recorded(&object)
                {
                    found.push(object);
                }
            }
        }
    }
    for plan in found {
        let target = plan["spec"]["targetNamespace"].as_str().unwrap_or_default();
        if !owned.contains(target) {
            delete_plan_products(cluster, &plan).await;
        }
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

/// Marks a recorded object removed and says so.
fn removed(cluster: &Cluster, entry: &LedgerEntry, resource: &ResourceRef) {
    mark_done(cluster, entry);
    cluster.events().emit(Event::ResourceDeleted {
        resource: resource.clone(),
    });
}

/// A deletion is done: the object, and what went with it, is gone.
fn finish(cluster: &Cluster, requested: &Requested<'_>) {
    for (entry, resource) in &requested.contents {
        removed(cluster, entry, resource);
    }
    removed(cluster, requested.entry, requested.resource);
}

/// Waits until every requested deletion is done (the object is gone, or another object has the
/// name now) or `deadline` passes; returns what is still there then.
async fn wait_until_gone(
    cluster: &Cluster,
    requested: Vec<Requested<'_>>,
    deadline: tokio::time::Instant,
) -> Vec<ResourceRef> {
    let (gone, pending): (Vec<_>, Vec<_>) = requested.into_iter().partition(|r| r.seen.is_none());
    for requested in &gone {
        finish(cluster, requested);
    }
    if pending.is_empty() {
        return Vec::new();
    }
    let mut next_note = tokio::time::Instant::now() + FIRST_WAITING_NOTE;
    let pending = watch_deletions(cluster, pending, deadline, &mut next_note).await;
    poll_deletions(cluster, pending, deadline, next_note).await
}

/// The pending deletions of one kind in one namespace (or cluster-wide), watched together.
struct WatchedGroup {
    kind: Kind,
    namespace: Option<String>,
    /// Where its watch starts: the resourceVersion of the group's first delete answer.
    from: String,
}

/// The watch groups of the pending deletions; `None` when a delete's answer had no resourceVersion.
fn watch_groups(pending: &[Requested<'_>]) -> Option<Vec<WatchedGroup>> {
    let mut groups: Vec<WatchedGroup> = Vec::new();
    for requested in pending {
        let version = requested
            .seen
            .as_ref()
            .and_then(|o| o.pointer("/metadata/resourceVersion"))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())?;
        let namespace = requested.resource.namespace.clone();
        if !groups
            .iter()
            .any(|g| g.kind == requested.kind && g.namespace == namespace)
        {
            groups.push(WatchedGroup {
                kind: requested.kind,
                namespace,
                from: version.to_string(),
            });
        }
    }
    Some(groups)
}

/// Sees the pending deletions end through one watch per kind and namespace, from the delete answers'
/// resourceVersion; returns what is still pending when a watch cannot go on (expired, ended, failed:
/// [`poll_deletions`] takes over) or the deadline passes.
async fn watch_deletions<'a>(
    cluster: &Cluster,
    mut pending: Vec<Requested<'a>>,
    deadline: tokio::time::Instant,
    next_note: &mut tokio::time::Instant,
) -> Vec<Requested<'a>> {
    let Some(groups) = watch_groups(&pending) else {
        return pending;
    };
    let mut streams = Vec::new();
    for (index, group) in groups.iter().enumerate() {
        let params = WatchParams::default().timeout(290);
        let Ok(stream) = cluster
            .api(&group.kind, group.namespace.as_deref())
            .watch(&params, &group.from)
            .await
        else {
            return pending;
        };
        // `None` marks the end of a group's stream.
        let tagged = stream
            .map(move |event| (index, Some(event)))
            .chain(futures_util::stream::once(async move { (index, None) }));
        streams.push(tagged.boxed());
    }
    let mut events = futures_util::stream::select_all(streams);
    while !pending.is_empty() {
        let event = tokio::select! {
            event = events.next() => event,
            _ = tokio::time::sleep_until((*next_note).min(deadline)) => {
                if tokio::time::Instant::now() >= deadline {
                    return pending;
                }
                emit_waiting_note(cluster, &pending).await;
                *next_note = tokio::time::Instant::now() + WAITING_NOTE_EVERY;
                continue;
            }
        };
        let (group, object, deleted) = match event {
            Some((index, Some(Ok(WatchEvent::Deleted(object))))) => (&groups[index], object, true),
            Some((index, Some(Ok(WatchEvent::Added(object) | WatchEvent::Modified(object))))) => {
                (&groups[index], object, false)
            }
            Some((_, Some(Ok(WatchEvent::Bookmark(_))))) => continue,
            // Expired, failed or ended: the rest is read again.
            _ => return pending,
        };
        let Ok(object) = serde_json::to_value(object) else {
            continue;
        };
        let Some(position) = pending.iter().position(|r| {
            r.kind == group.kind
                && r.resource.namespace == group.namespace
                && object["metadata"]["name"] == r.resource.name.as_str()
        }) else {
            continue;
        };
        // Gone, or the name belongs to another object now.
        if deleted || uid_of(&object) != pending[position].resource.uid.as_deref() {
            finish(cluster, &pending.remove(position));
        } else {
            pending[position].seen = Some(object);
        }
    }
    pending
}

async fn emit_waiting_note(cluster: &Cluster, pending: &[Requested<'_>]) {
    let mut waiting: Vec<String> = pending
        .iter()
        .map(|r| match &r.seen {
            Some(object) => still_there(r.resource, object),
            None => r.resource.to_string(),
        })
        .collect();
    waiting.extend(contents_waiting(cluster, pending).await);
    cluster.events().emit(Event::TeardownNote {
        message: waiting_note(&waiting),
    });
}

/// What holds the namespaces still being deleted: their recorded contents still there, with the
/// finalizers that keep them (read only once teardown has waited a while).
async fn contents_waiting(cluster: &Cluster, pending: &[Requested<'_>]) -> Vec<String> {
    let mut waiting = Vec::new();
    for (_, resource) in pending.iter().flat_map(|r| &r.contents) {
        let Some(kind) = kind_of(resource) else {
            continue;
        };
        if let Ok(Some(object)) = cluster
            .get(&kind, resource.namespace.as_deref(), &resource.name)
            .await
            && uid_of(&object) == resource.uid.as_deref()
        {
            waiting.push(still_there(resource, &object));
        }
    }
    waiting
}

/// Reads each pending object until it is gone or `deadline` passes; returns what is still there
/// then (for a namespace, also the recorded contents still in it).
async fn poll_deletions(
    cluster: &Cluster,
    mut pending: Vec<Requested<'_>>,
    deadline: tokio::time::Instant,
    mut next_note: tokio::time::Instant,
) -> Vec<ResourceRef> {
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
                Ok(_) => finish(cluster, &requested),
            }
        }
        pending = still;
        let now = tokio::time::Instant::now();
        if pending.is_empty() {
            return Vec::new();
        }
        if now >= deadline || now >= next_note {
            waiting.extend(contents_waiting(cluster, &pending).await);
        }
        if now >= deadline {
            cluster.events().emit(Event::TeardownNote {
                message: format!("gave up {}", waiting_note(&waiting)),
            });
            let mut leftovers = Vec::new();
            for requested in &pending {
                leftovers.extend(contents_still_there(cluster, requested).await);
                leftovers.push(requested.resource.clone());
            }
            return leftovers;
        }
        if now >= next_note {
            cluster.events().emit(Event::TeardownNote {
                message: waiting_note(&waiting),
            });
            next_note = now + WAITING_NOTE_EVERY;
        }
        // The last resort when no watch could see the deletions: a short poll to the deadline.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The recorded contents of a namespace that would not go away which are still there themselves
/// (the others are marked removed).
async fn contents_still_there(cluster: &Cluster, requested: &Requested<'_>) -> Vec<ResourceRef> {
    let mut still = Vec::new();
    for (entry, resource) in &requested.contents {
        let found = match kind_of(resource) {
            Some(kind) => {
                cluster
                    .get(&kind, resource.namespace.as_deref(), &resource.name)
                    .await
            }
            None => {
                still.push((*resource).clone());
                continue;
            }
        };
        match found {
            Ok(Some(object)) if uid_of(&object) != resource.uid.as_deref() => {
                removed(cluster, entry, resource)
            }
            Ok(None) => removed(cluster, entry, resource),
            _ => still.push((*resource).clone()),
        }
    }
    still
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
    logins: &SourceLogins,
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
                        "source VM {name} ({id}): the ledger's source {source:?} cannot be read \
                         ({why}); delete it on the source by hand"
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
            let adapter = adapter_for(cluster, &mut adapters, &reference, logins).await?;
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
    logins: &SourceLogins,
) -> Option<&'a Source> {
    let index = match adapters.iter().position(|(r, _)| r == reference) {
        Some(index) => index,
        None => {
            let reconnected =
                mtv_providers::reconnect(reference, cluster.client(), &logins.secrets).await;
            let adapter = match reconnected {
                Ok(adapter) => Some(adapter),
                Err(error) => {
                    let secrets_note = logins
                        .unreadable
                        .as_ref()
                        .map(|why| {
                            format!(" (the run's Provider Secrets could not be read: {why})")
                        })
                        .unwrap_or_default();
                    cluster.events().emit(Event::TeardownNote {
                        message: format!(
                            "cannot reach the source {}: {error}{secrets_note}",
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
