//! Teardown that can be proven: everything the ledger lists is removed in dependency order, each
//! removal is awaited, and what is still there afterwards is reported as a leftover.
//!
//! The same code serves the end of a run and `mtv-tests clean --ledger` after a crash.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use mtv_api::ProviderType;
use mtv_providers::SourceProvider;
use mtv_providers::lab::LabSource;
use mtv_providers::openshift::OpenShiftSource;
use mtv_providers::vsphere::{VsphereConfig, VsphereSource};
use serde_json::Value;

use crate::cluster::{Cluster, Kind, kinds, retry_transient};
use crate::events::{Event, ResourceRef};
use crate::ledger::LedgerEntry;

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

/// Removes everything the ledger lists that is not removed yet. Returns the leftovers.
pub async fn teardown(cluster: &Cluster, timeout: Duration) -> Vec<ResourceRef> {
    let entries: Vec<LedgerEntry> = cluster
        .ledger()
        .entries()
        .into_iter()
        .filter(|e| !e.is_removed())
        .collect();
    cluster.events().emit(Event::TeardownStarted {
        resources: entries.len(),
    });
    let mut leftovers = Vec::new();
    // Deletions retry transient API failures for as long as teardown may take.
    let deadline = tokio::time::Instant::now() + timeout;
    // Read while the source Secrets still exist: the source clones go last.
    let vsphere_credentials = vsphere_credentials(cluster, &entries).await;
    let mut vsphere_adapters = BTreeMap::new();

    // Settings the run changed go back first, while the operator is still there to act on them.
    for entry in &entries {
        if let LedgerEntry::Patch {
            resource, restore, ..
        } = entry
            && let Some(kind) = kind_of(resource)
        {
            match cluster
                .merge_patch(
                    &kind,
                    resource.namespace.as_deref(),
                    &resource.name,
                    restore.clone(),
                )
                .await
            {
                Ok(_) => {
                    let (kind, name) = (resource.kind.clone(), resource.name.clone());
                    let _ = cluster.ledger().mark_removed(|e| {
                        matches!(e, LedgerEntry::Patch { resource, .. } if resource.kind == kind && resource.name == name)
                    });
                }
                Err(error) if error.is_not_found() => {}
                Err(_) => leftovers.push(resource.clone()),
            }
        }
    }

    let kube: Vec<&ResourceRef> = entries
        .iter()
        .filter_map(|e| match e {
            LedgerEntry::Kube { resource, .. } => Some(resource),
            _ => None,
        })
        .collect();
    let mut deleted: Vec<(Kind, &ResourceRef)> = Vec::new();
    for kind in DELETE_ORDER {
        for resource in kube.iter().filter(|r| kind_of(r) == Some(*kind)) {
            let namespace = resource.namespace.as_deref();
            if *kind == kinds::PLAN
                && let Ok(Some(plan)) =
                    retry_transient(deadline, || cluster.get(kind, namespace, &resource.name)).await
            {
                delete_plan_products(cluster, &plan).await;
            }
            match cluster
                .delete_until(kind, namespace, &resource.name, deadline)
                .await
            {
                Ok(_) => deleted.push((*kind, resource)),
                Err(_) => leftovers.push((*resource).clone()),
            }
        }
    }
    // Kinds the engine does not know how to delete are leftovers by definition.
    for resource in kube.iter().filter(|r| kind_of(r).is_none()) {
        leftovers.push((*resource).clone());
    }

    // Wait for every deletion together; each has its own deadline.
    let waits = deleted.iter().map(|(kind, resource)| async move {
        let gone = cluster
            .wait_gone(kind, resource.namespace.as_deref(), &resource.name, timeout)
            .await
            .is_ok();
        (gone, *resource)
    });
    for (gone, resource) in futures_util::future::join_all(waits).await {
        if gone {
            let (kind, name, namespace) = (
                resource.kind.clone(),
                resource.name.clone(),
                resource.namespace.clone(),
            );
            let _ = cluster.ledger().mark_removed(|e| {
                matches!(e, LedgerEntry::Kube { resource, .. }
                    if resource.kind == kind && resource.name == name && resource.namespace == namespace)
            });
            cluster.events().emit(Event::ResourceDeleted {
                resource: resource.clone(),
            });
        } else {
            leftovers.push(resource.clone());
        }
    }

    // Source-side clones last: the migration no longer reads them.
    for entry in &entries {
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
                match vsphere_adapter(&mut vsphere_adapters, &vsphere_credentials, server).await {
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
            let id = id.clone();
            let _ = cluster.ledger().mark_removed(
                |e| matches!(e, LedgerEntry::SourceVm { id: other, .. } if *other == id),
            );
            cluster.events().emit(Event::ResourceDeleted {
                resource: reference,
            });
        } else {
            leftovers.push(reference);
        }
    }

    cluster.events().emit(Event::TeardownFinished {
        leftovers: leftovers.clone(),
    });
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
