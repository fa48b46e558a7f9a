//! Typed `forklift.konveyor.io/v1beta1` specs, as the suite writes them.
//!
//! Optional fields are `Option`s that serialise only when set, and booleans are `Option<bool>` so an
//! explicit `false` reaches the API server: several Plan fields default to `true` in the CRD
//! (`preserveStaticIPs`, `migrateSharedDisks`, `runPreflightInspection`, `deleteVmOnFailMigration`,
//! `useCompatibilityMode`) and a skipped `false` would silently become `true`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const GROUP: &str = "forklift.konveyor.io";
pub const VERSION: &str = "v1beta1";
pub const API_VERSION: &str = "forklift.konveyor.io/v1beta1";

/// A `core.ObjectReference` as Forklift reads it: name and namespace only.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ObjectRef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

impl ObjectRef {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectRef {
            name: name.into(),
            namespace: namespace.into(),
        }
    }
}

/// An inventory reference (`ref.Ref`): at least one of id, name or type.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InventoryRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl InventoryRef {
    pub fn id(id: impl Into<String>) -> Self {
        InventoryRef {
            id: Some(id.into()),
            ..InventoryRef::default()
        }
    }

    pub fn name(name: impl Into<String>) -> Self {
        InventoryRef {
            name: Some(name.into()),
            ..InventoryRef::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderPair {
    pub source: ObjectRef,
    pub destination: ObjectRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderSpec {
    #[serde(rename = "type")]
    pub provider_type: String,
    pub url: String,
    pub secret: ObjectRef,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageMapSpec {
    pub provider: ProviderPair,
    pub map: Vec<StoragePair>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoragePair {
    pub source: InventoryRef,
    pub destination: StorageDestination,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload_plugin: Option<OffloadPlugin>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageDestination {
    pub storage_class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_mode: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OffloadPlugin {
    pub vsphere_xcopy_config: VsphereXcopyConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VsphereXcopyConfig {
    pub secret_ref: String,
    pub storage_vendor_product: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dedicated_migration_hosts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkMapSpec {
    pub provider: ProviderPair,
    pub map: Vec<NetworkPair>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkPair {
    pub source: InventoryRef,
    pub destination: NetworkDestination,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDestination {
    /// `pod`, `multus` or `ignored`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl NetworkDestination {
    pub fn pod() -> Self {
        NetworkDestination {
            kind: "pod".into(),
            name: None,
            namespace: None,
        }
    }

    pub fn multus(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        NetworkDestination {
            kind: "multus".into(),
            name: Some(name.into()),
            namespace: Some(namespace.into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanMaps {
    pub network: ObjectRef,
    pub storage: ObjectRef,
}

/// `Plan.spec`, with only the fields the suite sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanSpec {
    pub provider: ProviderPair,
    pub map: PlanMaps,
    pub target_namespace: String,
    pub warm: bool,
    pub vms: Vec<PlanVm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_power_state: Option<String>,
    #[serde(
        default,
        rename = "preserveStaticIPs",
        skip_serializing_if = "Option::is_none"
    )]
    pub preserve_static_ips: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_nested_virtualization: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc_name_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc_name_template_use_generate_name: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_node_selector: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_affinity: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate_shared_disks: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xfs_compatibility: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdm_as_lun: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_preflight_inspection: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_vm_on_fail_migration: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanVm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<PlanHookRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate_shared_disks: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub luks: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_power_state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanHookRef {
    pub hook: ObjectRef,
    /// `PreHook` or `PostHook`.
    pub step: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationSpec {
    pub plan: ObjectRef,
    /// RFC 3339, UTC; warm migrations only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutover: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Base64 of an Ansible playbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aap: Option<HookAap>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookAap {
    pub job_template_id: u64,
}

/// The hook-runner image the Python suite uses for local hooks.
pub const HOOK_RUNNER_IMAGE: &str = "quay.io/konveyor/hook-runner:latest";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan() -> PlanSpec {
        PlanSpec {
            provider: ProviderPair {
                source: ObjectRef::new("ns", "src"),
                destination: ObjectRef::new("ns", "dst"),
            },
            map: PlanMaps {
                network: ObjectRef::new("ns", "net"),
                storage: ObjectRef::new("ns", "sto"),
            },
            target_namespace: "ns".into(),
            warm: false,
            vms: vec![PlanVm {
                id: Some("vm-1".into()),
                name: None,
                target_name: None,
                hooks: vec![],
                migrate_shared_disks: None,
                luks: None,
                target_power_state: None,
            }],
            target_power_state: None,
            preserve_static_ips: Some(false),
            enable_nested_virtualization: None,
            pvc_name_template: None,
            pvc_name_template_use_generate_name: None,
            target_labels: None,
            target_node_selector: None,
            target_affinity: None,
            migrate_shared_disks: None,
            xfs_compatibility: None,
            rdm_as_lun: None,
            run_preflight_inspection: None,
            delete_vm_on_fail_migration: None,
        }
    }

    #[test]
    fn explicit_false_reaches_the_wire_and_unset_fields_do_not() {
        let value = serde_json::to_value(plan()).unwrap();
        assert_eq!(value["preserveStaticIPs"], json!(false));
        assert!(value.get("migrateSharedDisks").is_none());
        assert!(value.get("targetPowerState").is_none());
        assert_eq!(value["vms"], json!([{"id": "vm-1"}]));
    }

    #[test]
    fn network_destinations_use_forklift_spelling() {
        assert_eq!(
            serde_json::to_value(NetworkDestination::multus("default", "cb-1")).unwrap(),
            json!({"type": "multus", "name": "cb-1", "namespace": "default"})
        );
        assert_eq!(
            serde_json::to_value(NetworkDestination::pod()).unwrap(),
            json!({"type": "pod"})
        );
    }
}
