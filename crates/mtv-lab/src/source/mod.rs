//! The simulated source providers: the inventories a lab file describes, mutable at run time (clones,
//! power, disks, snapshots), observed by the Forklift inventory service and controllers.

pub mod api;
pub mod endpoints;
pub mod guest;
pub mod model;
mod mutate;
pub mod openstack;
pub mod ovirt;
pub mod vsphere;

use std::path::Path;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::broadcast;

pub use api::source_router;
pub use endpoints::ServedSource;
pub use model::{
    LAB_FILE_VERSION, LabFile, PowerAction, PowerState, SourceProviderSpec, SourceTls, Vm,
};
pub use mutate::{CloneSpec, NewDisk, NewNic};

/// File name the built-in lab reports in diagnostics.
pub const BUILTIN_LAB_FILE_NAME: &str = "default-lab.yaml";

/// The built-in default lab: every VM the scenario catalog names, on every provider type that can run it.
pub const BUILTIN_LAB_YAML: &str = include_str!("../../lab/default-lab.yaml");

/// What changed in a source inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceChangeKind {
    VmAdded,
    VmUpdated,
    VmRemoved,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceChange {
    /// The lab file's provider name.
    pub provider: String,
    pub vm_id: String,
    pub kind: SourceChangeKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("{file}: {message}")]
    InvalidLabFile { file: String, message: String },
    #[error("no source provider `{0}` in the lab")]
    UnknownProvider(String),
    #[error("no VM `{vm}` in source provider `{provider}`")]
    UnknownVm { provider: String, vm: String },
    #[error("{0}")]
    Conflict(String),
    /// A request the source rejects (unknown datastore, host or network, missing size, ...).
    #[error("{0}")]
    Invalid(String),
}

impl SourceError {
    /// No VM `vm_id` in `provider`.
    pub fn unknown_vm(provider: &str, vm_id: &str) -> SourceError {
        SourceError::UnknownVm {
            provider: provider.to_string(),
            vm: vm_id.to_string(),
        }
    }
}

/// Why a connection test against a source fails, as Forklift reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// No source answers at this URL: `ConnectionTestFailed`.
    #[error("dial tcp: lookup {host}: no such host")]
    Unreachable { host: String },
    /// Wrong user or password: `ConnectionAuthFailed` (HTTP 401).
    #[error("401 Unauthorized: Cannot complete login due to an incorrect user name or password.")]
    AuthFailed,
}

#[derive(Debug)]
struct State {
    providers: Vec<SourceProviderSpec>,
}

impl State {
    /// A provider's inventory, for changing it.
    fn provider_mut(&mut self, provider: &str) -> Result<&mut SourceProviderSpec, SourceError> {
        self.providers
            .iter_mut()
            .find(|p| p.name == provider)
            .ok_or_else(|| SourceError::UnknownProvider(provider.to_string()))
    }
}

/// Shared handle on the source inventories.
#[derive(Debug, Clone)]
pub struct SourceLab {
    state: Arc<RwLock<State>>,
    changes: broadcast::Sender<SourceChange>,
    /// The HTTPS endpoints the sources answer on, by provider name (once the lab serves them).
    served: Arc<RwLock<std::collections::BTreeMap<String, ServedSource>>>,
    /// Requests made of the lab-only source API (`/lab/v1/sources`).
    api_requests: Arc<std::sync::atomic::AtomicU64>,
}

fn host_of(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    rest.split(['/', ':']).next().unwrap_or(rest).to_string()
}

impl SourceLab {
    /// Validates a lab file and makes it live.
    pub fn new(file: LabFile, file_name: &str) -> Result<Self, SourceError> {
        validate(&file, file_name)?;
        let (changes, _) = broadcast::channel(1024);
        Ok(SourceLab {
            state: Arc::new(RwLock::new(State {
                providers: file.providers,
            })),
            changes,
            served: Arc::default(),
            api_requests: Arc::default(),
        })
    }

    /// How many requests the lab-only source API (`/lab/v1/sources`) has answered: a run, which
    /// reaches the sources through their real protocols, makes none.
    pub fn source_api_requests(&self) -> u64 {
        self.api_requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The built-in default lab ([`BUILTIN_LAB_YAML`]).
    pub fn builtin() -> Self {
        // The embedded file is a constant of this build; a test proves it parses and validates.
        SourceLab::parse(BUILTIN_LAB_FILE_NAME, BUILTIN_LAB_YAML)
            .expect("the built-in lab file is valid")
    }

    /// Reads and parses a lab file from disk.
    pub fn load(path: &Path) -> Result<Self, SourceError> {
        let file_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SourceError::InvalidLabFile {
            file: file_name.clone(),
            message: format!("cannot read the lab file: {e}"),
        })?;
        SourceLab::parse(&file_name, &text)
    }

    /// Parses a lab file's YAML text; unknown keys are errors with line and column.
    pub fn parse(file_name: &str, text: &str) -> Result<Self, SourceError> {
        let file: LabFile =
            serde_saphyr::from_str(text).map_err(|e| SourceError::InvalidLabFile {
                file: file_name.to_string(),
                message: e.to_string(),
            })?;
        SourceLab::new(file, file_name)
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave the inventory half-written in a way that matters
        // to a test; keep serving.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells the subscribers (the Forklift inventory, the source APIs' watchers) that a VM changed.
    fn announce(&self, provider: &str, vm_id: &str, kind: SourceChangeKind) {
        // No subscriber is no error: nothing is watching yet.
        let _ = self.changes.send(SourceChange {
            provider: provider.to_string(),
            vm_id: vm_id.to_string(),
            kind,
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<SourceChange> {
        self.changes.subscribe()
    }

    /// Names and types of the source providers.
    pub fn provider_names(&self) -> Vec<(String, String)> {
        self.read()
            .providers
            .iter()
            .map(|p| (p.name.clone(), p.provider_type.clone()))
            .collect()
    }

    /// A copy of one provider's current inventory.
    pub fn provider(&self, provider: &str) -> Result<SourceProviderSpec, SourceError> {
        self.with_provider(provider, SourceProviderSpec::clone)
    }

    /// Copies of every provider's current inventory, in lab-file order.
    pub fn providers(&self) -> Vec<SourceProviderSpec> {
        self.read().providers.clone()
    }

    /// The provider named `name_or_type`, or else the first one of that type.
    pub fn resolve_provider(&self, name_or_type: &str) -> Option<String> {
        let state = self.read();
        state
            .providers
            .iter()
            .find(|p| p.name == name_or_type)
            .or_else(|| {
                state
                    .providers
                    .iter()
                    .find(|p| p.provider_type == name_or_type)
            })
            .map(|p| p.name.clone())
    }

    /// Runs `f` on a provider's current inventory.
    pub fn with_provider<R>(
        &self,
        provider: &str,
        f: impl FnOnce(&SourceProviderSpec) -> R,
    ) -> Result<R, SourceError> {
        let state = self.read();
        let spec = state
            .providers
            .iter()
            .find(|p| p.name == provider)
            .ok_or_else(|| SourceError::UnknownProvider(provider.to_string()))?;
        Ok(f(spec))
    }

    /// The source provider a Forklift Provider of this type and URL reaches, if any.
    pub fn endpoint(&self, provider_type: &str, url: &str) -> Option<String> {
        if let Some(name) = self.served_at(provider_type, url) {
            return Some(name);
        }
        let state = self.read();
        let exact = state
            .providers
            .iter()
            .find(|p| p.provider_type == provider_type && p.url == url);
        let by_host = || {
            let host = host_of(url);
            state
                .providers
                .iter()
                .find(|p| p.provider_type == provider_type && host_of(&p.url) == host)
        };
        exact.or_else(by_host).map(|p| p.name.clone())
    }

    /// Forklift's connection test: the URL must reach a source and the credentials must match.
    pub fn connect(
        &self,
        provider_type: &str,
        url: &str,
        username: Option<&str>,
        password: Option<&str>,
    ) -> Result<String, ConnectError> {
        let name = self
            .endpoint(provider_type, url)
            .ok_or_else(|| ConnectError::Unreachable { host: host_of(url) })?;
        let state = self.read();
        let spec = state
            .providers
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| ConnectError::Unreachable { host: host_of(url) })?;
        let user_ok = spec.username.as_deref().is_none_or(|u| username == Some(u));
        let password_ok = spec.password.as_deref().is_none_or(|p| password == Some(p));
        if user_ok && password_ok {
            Ok(name)
        } else {
            Err(ConnectError::AuthFailed)
        }
    }

    pub fn vm(&self, provider: &str, vm_id: &str) -> Result<Vm, SourceError> {
        self.with_provider(provider, |p| {
            p.vms.iter().find(|vm| vm.id == vm_id).cloned()
        })?
        .ok_or_else(|| SourceError::unknown_vm(provider, vm_id))
    }

    /// The VMs (and templates) named `name`; several means the name is ambiguous.
    pub fn vms_named(&self, provider: &str, name: &str) -> Result<Vec<Vm>, SourceError> {
        self.with_provider(provider, |p| {
            p.vms.iter().filter(|vm| vm.name == name).cloned().collect()
        })
    }

    /// Applies `change` to one provider's inventory under the write lock, then announces the VM
    /// change it reports.
    fn edit_provider<R>(
        &self,
        provider: &str,
        change: impl FnOnce(&mut SourceProviderSpec) -> Result<(R, SourceChangeKind), SourceError>,
        vm_id: &str,
    ) -> Result<R, SourceError> {
        let (result, kind) = change(self.write().provider_mut(provider)?)?;
        self.announce(provider, vm_id, kind);
        Ok(result)
    }

    /// Changes one VM and announces it.
    pub fn update_vm(
        &self,
        provider: &str,
        vm_id: &str,
        change: impl FnOnce(&mut Vm),
    ) -> Result<Vm, SourceError> {
        let update = |spec: &mut SourceProviderSpec| {
            let index = vm_index(spec, provider, vm_id)?;
            let vm = &mut spec.vms[index];
            change(vm);
            Ok((vm.clone(), SourceChangeKind::VmUpdated))
        };
        self.edit_provider(provider, update, vm_id)
    }

    /// Powers a VM on or off; a change of state leaves the action's event in the VM's log.
    pub fn set_power(
        &self,
        provider: &str,
        vm_id: &str,
        action: model::PowerAction,
    ) -> Result<Vm, SourceError> {
        self.update_vm(provider, vm_id, |vm| {
            if vm.power_state != action.state() {
                vm.power_state = action.state();
                let event = action.event(&vm.name, crate::clock::now_rfc3339());
                vm.events.push(event);
            }
        })
    }

    /// Adds a VM (a clone); its id must be new in the provider.
    pub fn add_vm(&self, provider: &str, vm: Vm) -> Result<Vm, SourceError> {
        let id = vm.id.clone();
        let add = |spec: &mut SourceProviderSpec| {
            if spec.vms.iter().any(|v| v.id == vm.id) {
                return Err(SourceError::Conflict(format!(
                    "a VM with id `{}` already exists in `{provider}`",
                    vm.id
                )));
            }
            spec.vms.push(vm.clone());
            Ok((vm, SourceChangeKind::VmAdded))
        };
        self.edit_provider(provider, add, &id)
    }

    pub fn remove_vm(&self, provider: &str, vm_id: &str) -> Result<Vm, SourceError> {
        let remove = |spec: &mut SourceProviderSpec| {
            let index = vm_index(spec, provider, vm_id)?;
            Ok((spec.vms.remove(index), SourceChangeKind::VmRemoved))
        };
        self.edit_provider(provider, remove, vm_id)
    }
}

/// Where VM `vm_id` stands in `provider`'s list of VMs.
fn vm_index(spec: &SourceProviderSpec, provider: &str, vm_id: &str) -> Result<usize, SourceError> {
    spec.vms
        .iter()
        .position(|vm| vm.id == vm_id)
        .ok_or_else(|| SourceError::unknown_vm(provider, vm_id))
}

/// Structural checks a YAML schema cannot express: unique names and ids, references that resolve.
fn validate(file: &LabFile, file_name: &str) -> Result<(), SourceError> {
    let invalid = |message: String| SourceError::InvalidLabFile {
        file: file_name.to_string(),
        message,
    };
    if file.version != LAB_FILE_VERSION {
        return Err(invalid(format!(
            "version {} is not supported; this build reads version {LAB_FILE_VERSION}",
            file.version
        )));
    }
    let mut names = std::collections::BTreeSet::new();
    let mut macs = std::collections::BTreeMap::new();
    for provider in &file.providers {
        if !names.insert(&provider.name) {
            return Err(invalid(format!(
                "source provider `{}` is defined twice",
                provider.name
            )));
        }
        if !matches!(
            provider.provider_type.as_str(),
            "vsphere" | "ovirt" | "openstack" | "ova"
        ) {
            return Err(invalid(format!(
                "source provider `{}` has type `{}`; expected vsphere, ovirt, openstack or ova \
                 (OpenShift sources are KubeVirt VMs in the lab's API)",
                provider.name, provider.provider_type
            )));
        }
        unique_ids(provider.hosts.iter().map(|h| &h.id), "host", &provider.name)
            .map_err(invalid)?;
        unique_ids(
            provider.networks.iter().map(|n| &n.id),
            "network",
            &provider.name,
        )
        .map_err(invalid)?;
        unique_ids(
            provider.datastores.iter().map(|d| &d.id),
            "datastore",
            &provider.name,
        )
        .map_err(invalid)?;
        unique_ids(
            provider.flavors.iter().map(|f| &f.id),
            "flavor",
            &provider.name,
        )
        .map_err(invalid)?;
        let mut ids = std::collections::BTreeSet::new();
        for vm in &provider.vms {
            if !ids.insert(&vm.id) {
                return Err(invalid(format!(
                    "VM id `{}` appears twice in `{}`",
                    vm.id, provider.name
                )));
            }
            let mut keys = std::collections::BTreeSet::new();
            for disk in &vm.disks {
                if !keys.insert(disk.key) {
                    return Err(invalid(format!(
                        "disk key {} appears twice in VM `{}` of `{}`",
                        disk.key, vm.name, provider.name
                    )));
                }
            }
            for nic in &vm.nics {
                let mac = nic.mac.to_ascii_lowercase();
                if !mutate::is_mac(&mac) {
                    return Err(invalid(format!(
                        "NIC `{}` of VM `{}` is not a MAC address (expected six hex pairs like 00:50:56:01:02:03)",
                        nic.mac, vm.name
                    )));
                }
                if let Some(owner) = macs.insert(mac, (provider.name.clone(), vm.name.clone())) {
                    return Err(invalid(format!(
                        "MAC {} of VM `{}` in `{}` is already used by VM `{}` in `{}`; MACs are unique lab-wide",
                        nic.mac, vm.name, provider.name, owner.1, owner.0
                    )));
                }
            }
            if let Some(flavor) = &vm.flavor
                && !provider.flavors.iter().any(|f| &f.id == flavor)
            {
                return Err(invalid(format!(
                    "VM `{}` uses flavor `{flavor}`, which `{}` does not define",
                    vm.name, provider.name
                )));
            }
            for disk in &vm.disks {
                if !provider.datastores.iter().any(|d| d.id == disk.datastore) {
                    return Err(invalid(format!(
                        "disk `{}` of VM `{}` is on datastore `{}`, which `{}` does not define",
                        disk.file, vm.name, disk.datastore, provider.name
                    )));
                }
            }
            for nic in &vm.nics {
                if !provider.networks.iter().any(|n| n.id == nic.network) {
                    return Err(invalid(format!(
                        "NIC {} of VM `{}` is on network `{}`, which `{}` does not define",
                        nic.mac, vm.name, nic.network, provider.name
                    )));
                }
            }
            if let Some(host) = &vm.host
                && !provider.hosts.iter().any(|h| &h.id == host)
            {
                return Err(invalid(format!(
                    "VM `{}` runs on host `{host}`, which `{}` does not define",
                    vm.name, provider.name
                )));
            }
        }
    }
    Ok(())
}

/// The first id that appears twice, as an error message.
fn unique_ids<'a>(
    ids: impl Iterator<Item = &'a String>,
    what: &str,
    provider: &str,
) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(format!("{what} id `{id}` appears twice in `{provider}`"));
        }
    }
    Ok(())
}
