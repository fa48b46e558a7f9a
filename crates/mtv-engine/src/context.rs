//! What the engine knows about a session before it touches a cluster: the selected profile, the
//! storage class and the runtime settings, reduced to plain values (no secrets).

use mtv_api::ProviderType;
use mtv_config::{CopyOffload, Env, EsxiCloneMethod, RunConfig};

/// Copy-offload facts the engine needs; credentials stay in the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOffloadContext {
    pub storage_vendor_product: String,
    pub datastore_id: String,
    pub secondary_datastore_id: Option<String>,
    pub non_xcopy_datastore_id: Option<String>,
    pub default_vm_name: Option<String>,
    /// The LUN (NAA id) the scenarios' RDM disks map.
    pub rdm_lun_uuid: Option<String>,
    pub dedicated_migration_hosts: Vec<String>,
    pub esxi_clone_method_ssh: bool,
    /// Names of the keys of the storage Secret (values are never copied here).
    pub storage_secret_keys: Vec<String>,
}

impl CopyOffloadContext {
    pub fn from_config(copy_offload: &CopyOffload) -> Self {
        CopyOffloadContext {
            storage_vendor_product: copy_offload.storage_vendor_product.as_str().to_string(),
            datastore_id: copy_offload.datastore_id.clone(),
            secondary_datastore_id: copy_offload.secondary_datastore_id.clone(),
            non_xcopy_datastore_id: copy_offload.non_xcopy_datastore_id.clone(),
            default_vm_name: copy_offload.default_vm_name.clone(),
            rdm_lun_uuid: copy_offload.rdm_lun_uuid.clone(),
            dedicated_migration_hosts: copy_offload.dedicated_migration_hosts.clone(),
            esxi_clone_method_ssh: copy_offload.esxi_clone_method == EsxiCloneMethod::Ssh,
            storage_secret_keys: copy_offload.storage_secret_data().into_keys().collect(),
        }
    }

    /// Resolves a symbolic datastore id of the catalog (`secondary_datastore_id`,
    /// `non_xcopy_datastore_id`) to the profile's MoRef; other values are MoRefs already.
    pub fn resolve_datastore<'a>(&'a self, id: &'a str) -> Option<&'a str> {
        match id {
            "secondary_datastore_id" => self.secondary_datastore_id.as_deref(),
            "non_xcopy_datastore_id" => self.non_xcopy_datastore_id.as_deref(),
            "datastore_id" => Some(&self.datastore_id),
            other => Some(other),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionContext {
    pub provider_type: ProviderType,
    /// The profile key (`source_provider`).
    pub source_provider: String,
    pub provider_version: String,
    pub provider_url: String,
    pub storage_class: String,
    pub target_namespace_prefix: String,
    pub mtv_namespace: String,
    pub snapshots_interval: u64,
    pub mins_before_cutover: u64,
    pub plan_wait_timeout: u64,
    pub target_ocp_version: Option<String>,
    pub remote_ocp_cluster: Option<String>,
    /// The Forklift inventory's URL when given (`inventory_url`); else the Route is looked up.
    pub inventory_url: Option<String>,
    pub source_provider_insecure_skip_verify: bool,
    pub vddk_init_image: Option<String>,
    pub sdk_endpoint: Option<String>,
    /// Present when the profile has a valid copy-offload section.
    pub copy_offload: Option<CopyOffloadContext>,
    /// The profile's guest accounts, for SSH into migrated VMs.
    pub guest_logins: crate::guest::GuestLogins,
}

impl SessionContext {
    /// Builds the context from a resolved configuration. A copy-offload section that does not resolve
    /// is left out here; selection reports it (see `mtv_catalog::CopyOffloadGate`).
    pub fn from_run_config(config: &RunConfig, env: &dyn Env) -> Self {
        let profile = &config.profile;
        let settings = &config.settings;
        let copy_offload = profile
            .copyoffload(env)
            .ok()
            .flatten()
            .map(|c| CopyOffloadContext::from_config(&c));
        SessionContext {
            provider_type: profile.provider_type,
            source_provider: config.source_provider.clone(),
            provider_version: profile.version.clone().unwrap_or_default(),
            provider_url: profile.api_url.clone().unwrap_or_default(),
            storage_class: config.storage_class.clone(),
            target_namespace_prefix: settings.target_namespace_prefix.clone(),
            mtv_namespace: settings.mtv_namespace.clone(),
            snapshots_interval: settings.snapshots_interval,
            mins_before_cutover: settings.mins_before_cutover,
            plan_wait_timeout: settings.plan_wait_timeout,
            target_ocp_version: settings.target_ocp_version.clone(),
            remote_ocp_cluster: settings.remote_ocp_cluster.clone(),
            inventory_url: settings.inventory_url.clone(),
            source_provider_insecure_skip_verify: settings.source_provider_insecure_skip_verify,
            vddk_init_image: profile.field_str("vddk_init_image").map(str::to_string),
            sdk_endpoint: profile.field_str("endpoint_type").map(str::to_string),
            copy_offload,
            guest_logins: crate::guest::GuestLogins::from_profile(profile),
        }
    }

    /// Keys of the source provider Secret for this type (inventory §2.2); values come from the profile.
    pub fn source_secret_keys(&self) -> Vec<&'static str> {
        let mut keys = match self.provider_type {
            ProviderType::Vsphere | ProviderType::Ovirt => {
                vec!["url", "insecureSkipVerify", "user", "password"]
            }
            ProviderType::Openstack => vec![
                "url",
                "insecureSkipVerify",
                "username",
                "password",
                "regionName",
                "projectName",
                "domainName",
            ],
            ProviderType::Openshift => vec!["token", "insecureSkipVerify"],
            ProviderType::Ova => vec!["url", "insecureSkipVerify"],
        };
        // oVirt always carries the CA (imageio needs it); the others only when verifying TLS.
        let needs_ca = match self.provider_type {
            ProviderType::Ovirt => true,
            ProviderType::Vsphere | ProviderType::Openstack => {
                !self.source_provider_insecure_skip_verify
            }
            ProviderType::Openshift | ProviderType::Ova => false,
        };
        if needs_ca {
            keys.push("cacert");
        }
        keys
    }
}
