//! The scenario model: one catalog file per family, each scenario a pytest-like class whose `config`
//! uses the Python suite's plan-config keys (`virtual_machines`, `warm_migration`, ...), so an entry of
//! its `config.py` ports nearly line for line. Unknown keys are rejected with file:line.

use std::collections::BTreeMap;
use std::fmt;

use mtv_api::ProviderType;
use serde::{Deserialize, Serialize};

/// The version of the catalog file format this build reads.
pub const CATALOG_FORMAT_VERSION: u32 = 1;

/// One catalog file as written on disk.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// Format version; must equal [`CATALOG_FORMAT_VERSION`].
    pub version: u32,
    /// The scenario family this file holds (Tier0, Warm, Remote, Comprehensive, Copy-offload, ...).
    pub family: String,
    #[serde(default)]
    pub description: Option<String>,
    pub scenarios: Vec<ScenarioEntry>,
}

/// A scenario as written in a catalog file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioEntry {
    /// The pytest class name, e.g. `TestSanityColdMtvMigration`.
    pub class: String,
    /// The parametrize id, e.g. `rhel8`; the item id is `Class[id]::step`.
    pub id: String,
    /// The Python suite's `tests_params` key this scenario ports, e.g. `test_sanity_cold_mtv_migration`.
    #[serde(default)]
    pub config_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// pytest markers (`tier0`, `warm`, `remote`, `copyoffload`, `incremental`, provider markers, ...).
    #[serde(default)]
    pub markers: Vec<String>,
    /// `min_mtv_version("X.Y.Z")`: skipped when the cluster's MTV version is known and older.
    #[serde(default)]
    pub min_mtv_version: Option<String>,
    /// Source provider types the scenario is meant for; other types skip it with a reason.
    /// Absent means every type.
    #[serde(default)]
    pub providers: Option<Vec<ProviderType>>,
    /// Issue/test-case references, e.g. `MTV-559`.
    #[serde(default)]
    pub references: Vec<String>,
    pub config: PlanConfig,
}

/// A plan config: the Python suite's `tests_params` entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlanConfig {
    pub virtual_machines: Vec<VmConfig>,
    #[serde(default)]
    pub warm_migration: bool,
    #[serde(default)]
    pub copyoffload: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_power_state: Option<TargetPowerState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_static_ips: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_nested_virtualization: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc_name_template: Option<PvcNameTemplate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pvc_name_template_use_generate_name: Option<bool>,
    /// Target namespace for the migrated VMs; `{rand4}` is replaced by 4 hex chars per session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_target_namespace: Option<String>,
    /// Namespace where the scenario's NetworkAttachmentDefinitions are created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multus_namespace: Option<String>,
    /// Exactly one label; a null value means "the session id".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_node_selector: Option<BTreeMap<String, Option<String>>>,
    /// A null value means "generated per session" (the session id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_labels: Option<BTreeMap<String, Option<String>>>,
    /// A core/v1 Affinity, passed through to `Plan.spec.targetAffinity` and compared deeply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_affinity: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate_shared_disks: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xfs_compatibility: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xfs_check: Option<XfsCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdm_as_lun: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_preflight_inspection: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_hook: Option<HookConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_hook: Option<HookConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_migration_result: Option<ExpectedResult>,
    /// Seconds; source guest-info wait and destination guest-agent wait (default 120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_agent_timeout: Option<u64>,
    /// Seconds; wait for clones to appear in the Forklift inventory (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory_timeout: Option<u64>,
    /// One NetworkMap entry per NIC instead of one per distinct network.
    #[serde(default, skip_serializing_if = "is_false")]
    pub per_nic_network_map: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_clone: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub clone_to_same_host: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub pin_to_non_dedicated_host: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_drs_for_vms: bool,
    /// Uses the remote destination OpenShift provider (`remote` scenarios).
    #[serde(default, skip_serializing_if = "is_false")]
    pub remote_destination: bool,
    /// Several Plans run at once (simultaneous copy-offload, concurrent XCOPY and VDDK). Each entry names
    /// the VMs of one Plan; VMs not named stay out. Not a Python key: the Python suite splits the VMs with
    /// dedicated fixtures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub concurrent_plans: Vec<ConcurrentPlan>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One VM of a plan config.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VmConfig {
    /// Source VM or template name (rewritten at run time to the clone's name).
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_vm_power: Option<Power>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub guest_agent: bool,
    /// A copy-offload clone: `default_vm_name` of the profile replaces `name`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub clone: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_name: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub preserve_name_format: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_type: Option<DiskProvisioning>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_disks: Vec<AddDisk>,
    /// Number of source snapshots to create before the migration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<u32>,
    /// Clone target datastore: a MoRef or `secondary_datastore_id` / `non_xcopy_datastore_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_datastore_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_esxi_host: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub luks: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub luks_passphrase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate_shared_disks: Option<bool>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub add_nic: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_nic_start_connected: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub win_os: Option<bool>,
    /// Legacy per-VM form of the plan-level key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_power_state: Option<TargetPowerState>,
}

/// A disk added to a clone before the migration.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AddDisk {
    /// Size of a new disk; absent (0) for an RDM disk, whose size is the LUN's.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size_gb: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provision_type: Option<DiskProvisioning>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_mode: Option<DiskMode>,
    /// A MoRef or `secondary_datastore_id` / `non_xcopy_datastore_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datastore_id: Option<String>,
    /// Folder on the datastore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datastore_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdm_type: Option<RdmType>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct XfsCheck {
    pub command: String,
    pub mount_point: String,
    pub expected_output: String,
}

/// A pre or post hook: exactly one of the three fields.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_result: Option<ExpectedResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aap_job_template_id: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurrentPlan {
    /// Names of VMs of `virtual_machines` that go into this Plan.
    pub virtual_machines: Vec<String>,
    /// Overrides the scenario's `copyoffload` for this Plan (a VDDK plan beside an XCOPY plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copyoffload: Option<bool>,
}

/// `pvc_name_template`: one template, or one per source provider type with an optional `default`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum PvcNameTemplate {
    Single(String),
    PerProvider(BTreeMap<String, String>),
}

impl PvcNameTemplate {
    /// The template for a source type: its own entry, else `default`, else none.
    pub fn for_provider(&self, provider: ProviderType) -> Option<&str> {
        match self {
            PvcNameTemplate::Single(t) => Some(t),
            PvcNameTemplate::PerProvider(map) => map
                .get(provider.as_str())
                .or_else(|| map.get("default"))
                .map(String::as_str),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Power {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetPowerState {
    On,
    Off,
    Auto,
}

impl TargetPowerState {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetPowerState::On => "on",
            TargetPowerState::Off => "off",
            TargetPowerState::Auto => "auto",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskProvisioning {
    Thin,
    ThickLazy,
    ThickEager,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskMode {
    Persistent,
    IndependentPersistent,
    IndependentNonpersistent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RdmType {
    Virtual,
    Physical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpectedResult {
    Succeed,
    Fail,
}

/// The hook step a migration is expected to fail at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HookStep {
    PreHook,
    PostHook,
}

impl fmt::Display for HookStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HookStep::PreHook => "PreHook",
            HookStep::PostHook => "PostHook",
        })
    }
}

impl PlanConfig {
    /// `warm` or `cold`: the migration mode as the Plan and Migration names carry it.
    pub fn migration_mode(&self) -> &'static str {
        if self.warm_migration { "warm" } else { "cold" }
    }

    /// Where the migration is expected to fail, if anywhere: a failing pre hook wins over a failing
    /// post hook, as in the Python suite's `validate_hook_failure_and_check_vms`.
    pub fn expected_failure_step(&self) -> Option<HookStep> {
        let fails = |h: &Option<HookConfig>| {
            h.as_ref()
                .is_some_and(|h| h.expected_result == Some(ExpectedResult::Fail))
        };
        if fails(&self.pre_hook) {
            Some(HookStep::PreHook)
        } else if fails(&self.post_hook) {
            Some(HookStep::PostHook)
        } else {
            None
        }
    }

    /// True when the migration itself is expected to fail.
    pub fn expects_migration_failure(&self) -> bool {
        self.expected_migration_result == Some(ExpectedResult::Fail)
            || self.expected_failure_step().is_some()
    }
}
