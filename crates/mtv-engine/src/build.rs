//! Builders of the Forklift objects a scenario creates, shared by the preview (`mtv-tests plan`) and
//! the run, so what the preview shows is what the run sends.

use std::collections::BTreeMap;

use mtv_api::ProviderType;
use mtv_api::forklift::{
    InventoryRef, OffloadPlugin, PlanMaps, PlanSpec, PlanVm, ProviderPair, StorageDestination,
    StoragePair, VsphereXcopyConfig,
};
use mtv_catalog::model::PlanConfig;

use crate::context::CopyOffloadContext;

/// A label value the catalog leaves null: the session id.
fn session_value(value: &Option<String>, session: &str) -> String {
    value.clone().unwrap_or_else(|| session.to_string())
}

/// A catalog label map as the run sends it: null values become the session id, and `key` names each
/// entry (given the catalog's key and value).
fn with_session_values(
    labels: Option<&BTreeMap<String, Option<String>>>,
    session: &str,
    key: impl Fn(&str, &Option<String>) -> String,
) -> Option<BTreeMap<String, String>> {
    labels.map(|labels| {
        labels
            .iter()
            .map(|(k, v)| (key(k, v), session_value(v, session)))
            .collect()
    })
}

/// The node-selector label a scenario asks for, as the run sets it on a worker node: a null value
/// means "this session", and then the key carries the session too so parallel sessions do not collide.
pub fn node_selector(config: &PlanConfig, session: &str) -> Option<BTreeMap<String, String>> {
    with_session_values(config.target_node_selector.as_ref(), session, |k, v| {
        if v.is_none() {
            format!("{k}-{session}")
        } else {
            k.to_string()
        }
    })
}

/// `targetLabels` as the run sends them: null values become the session id.
pub fn target_labels(config: &PlanConfig, session: &str) -> Option<BTreeMap<String, String>> {
    with_session_values(config.target_labels.as_ref(), session, |k, _| k.to_string())
}

/// `Plan.spec` for a scenario: only the optional fields the scenario sets, explicit `false` included.
#[allow(clippy::too_many_arguments)]
pub fn plan_spec(
    provider_type: ProviderType,
    session: &str,
    config: &PlanConfig,
    provider: ProviderPair,
    map: PlanMaps,
    target_namespace: &str,
    vms: Vec<PlanVm>,
    copy_offload: bool,
) -> PlanSpec {
    let pvc_name_template = if copy_offload {
        // The Python suite forces "pvc" for copy-offload; Forklift then adds a deterministic suffix.
        Some("pvc".to_string())
    } else {
        config
            .pvc_name_template
            .as_ref()
            .and_then(|t| t.for_provider(provider_type))
            .map(str::to_string)
    };
    PlanSpec {
        provider,
        map,
        target_namespace: target_namespace.to_string(),
        warm: config.warm_migration,
        vms,
        target_power_state: config.target_power_state.map(|p| p.as_str().to_string()),
        preserve_static_ips: config.preserve_static_ips,
        enable_nested_virtualization: config.enable_nested_virtualization,
        pvc_name_template,
        pvc_name_template_use_generate_name: config.pvc_name_template_use_generate_name,
        target_labels: target_labels(config, session),
        target_node_selector: node_selector(config, session),
        target_affinity: config.target_affinity.clone(),
        migrate_shared_disks: config.migrate_shared_disks,
        xfs_compatibility: config.xfs_compatibility.filter(|x| *x),
        rdm_as_lun: config.rdm_as_lun,
        run_preflight_inspection: config.run_preflight_inspection,
        delete_vm_on_fail_migration: None,
    }
}

/// A StorageMap entry to the storage class, without offload.
pub fn plain_storage_pair(source: &str, storage_class: &str) -> StoragePair {
    StoragePair {
        source: InventoryRef::id(source),
        destination: StorageDestination {
            storage_class: storage_class.to_string(),
            volume_mode: None,
            access_mode: None,
        },
        offload_plugin: None,
    }
}

/// A copy-offload StorageMap entry: Block volume mode and the XCOPY plugin with the storage Secret.
pub fn offload_storage_pair(
    datastore: &str,
    storage_class: &str,
    copy_offload: &CopyOffloadContext,
    storage_secret: &str,
) -> StoragePair {
    StoragePair {
        source: InventoryRef::id(datastore),
        destination: StorageDestination {
            storage_class: storage_class.to_string(),
            volume_mode: Some("Block".into()),
            access_mode: None,
        },
        offload_plugin: Some(OffloadPlugin {
            vsphere_xcopy_config: VsphereXcopyConfig {
                secret_ref: storage_secret.to_string(),
                storage_vendor_product: copy_offload.storage_vendor_product.clone(),
                dedicated_migration_hosts: copy_offload.dedicated_migration_hosts.clone(),
            },
        }),
    }
}
