//! Changes the lab source API makes to source inventories, the way each hypervisor's SDK does them:
//! clones (new id in the provider's id style, fresh MACs, disk files under the clone's folder), added
//! disks and NICs, snapshots.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::model::{
    Disk, DiskMode, GuestIp, Nic, PowerState, Provisioning, RdmMode, Snapshot, SourceProviderSpec,
    Vm,
};
use super::{SourceChangeKind, SourceError, SourceLab};
use crate::{clock, random};

/// How to clone a VM or template (the Python suite's clone options, in the lab's words).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CloneSpec {
    /// The clone's name; must be new in the provider.
    pub name: String,
    /// Power state after the clone (default off).
    #[serde(default)]
    pub power_state: Option<PowerState>,
    /// Turn changed block tracking on (warm migrations) or off.
    #[serde(default)]
    pub cbt: Option<bool>,
    /// Provisioning of every copied disk.
    #[serde(default)]
    pub disk_type: Option<Provisioning>,
    /// Datastore (id) the clone's disks land on; default: where the source's disks are.
    #[serde(default)]
    pub target_datastore: Option<String>,
    /// Host (id) the clone runs on; default: the source's host.
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub add_disks: Vec<NewDisk>,
    /// Give the clone's NICs fresh MACs (what vCenter does with `addressType=generated`).
    #[serde(default = "yes")]
    pub regenerate_macs: bool,
}

impl CloneSpec {
    /// A plain clone named `name`: powered off, fresh MACs, disks as the source's.
    pub fn named(name: &str) -> Self {
        CloneSpec {
            name: name.to_string(),
            power_state: None,
            cbt: None,
            disk_type: None,
            target_datastore: None,
            host: None,
            add_disks: Vec::new(),
            regenerate_macs: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// A disk to add to a VM (or to a clone).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewDisk {
    /// Required unless the disk is an RDM (whose size is the LUN's).
    #[serde(default)]
    pub size_gib: Option<u64>,
    #[serde(default)]
    pub provisioning: Provisioning,
    #[serde(default)]
    pub mode: DiskMode,
    /// Datastore id; default: the VM's first disk's datastore.
    #[serde(default)]
    pub datastore: Option<String>,
    /// Folder of the datastore the disk file goes to (vSphere `datastore_path`).
    #[serde(default)]
    pub folder: Option<String>,
    #[serde(default)]
    pub rdm: Option<RdmMode>,
    #[serde(default)]
    pub lun_uuid: Option<String>,
}

/// A NIC to add to a VM.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewNic {
    /// Network id or name.
    pub network: String,
    #[serde(default = "yes")]
    pub start_connected: bool,
    /// A MAC to use; default: a fresh one.
    #[serde(default)]
    pub mac: Option<String>,
}

/// The capacity of an RDM disk when the request does not say (the lab's LUNs are this size).
const RDM_CAPACITY_GIB: u64 = 10;
/// vSphere reserves SCSI unit 7 for the controller itself.
const SCSI_CONTROLLER_UNIT: i64 = 7;

pub(crate) fn is_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The OUI the provider type's MACs carry.
fn mac_prefix(provider_type: &str) -> &'static [u8] {
    match provider_type {
        "ovirt" => &[0x56, 0x6f],
        "openstack" => &[0xfa, 0x16, 0x3e],
        _ => &[0x00, 0x50, 0x56],
    }
}

pub(super) fn fresh_mac(provider_type: &str, used: &mut BTreeSet<String>) -> String {
    let prefix = mac_prefix(provider_type);
    loop {
        let random = random::next_u64().to_be_bytes();
        let mut bytes = prefix.to_vec();
        bytes.extend_from_slice(&random[..6 - prefix.len()]);
        let mac = bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        if used.insert(mac.clone()) {
            return mac;
        }
    }
}

pub(super) fn all_macs(providers: &[SourceProviderSpec]) -> BTreeSet<String> {
    providers
        .iter()
        .flat_map(|p| p.vms.iter())
        .flat_map(|vm| vm.nics.iter())
        .map(|nic| nic.mac.to_ascii_lowercase())
        .collect()
}

/// A new VM id in the provider's style: `vm-<n>` for vSphere, a UUID elsewhere.
fn next_vm_id(spec: &SourceProviderSpec) -> String {
    if spec.provider_type == "vsphere" {
        let max = spec
            .vms
            .iter()
            .filter_map(|vm| vm.id.strip_prefix("vm-")?.parse::<u64>().ok())
            .max()
            .unwrap_or(1000);
        format!("vm-{}", max + 1)
    } else {
        random::uuid_v4()
    }
}

fn next_snapshot_id(spec: &SourceProviderSpec) -> String {
    if spec.provider_type == "vsphere" {
        let max = spec
            .vms
            .iter()
            .flat_map(|vm| vm.snapshots.iter())
            .filter_map(|s| s.id.strip_prefix("snapshot-")?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        format!("snapshot-{}", max + 1)
    } else {
        random::uuid_v4()
    }
}

fn datastore_name<'a>(spec: &'a SourceProviderSpec, id: &'a str) -> &'a str {
    spec.datastores
        .iter()
        .find(|d| d.id == id)
        .map_or(id, |d| d.name.as_str())
}

/// The file of a VM's `index`-th disk, named as the provider type names disk files.
fn disk_file(
    spec: &SourceProviderSpec,
    vm_name: &str,
    datastore: &str,
    folder: Option<&str>,
    index: usize,
) -> String {
    let suffix = if index == 0 {
        String::new()
    } else {
        format!("_{index}")
    };
    match spec.provider_type.as_str() {
        "vsphere" => format!(
            "[{}] {}/{vm_name}{suffix}.vmdk",
            datastore_name(spec, datastore),
            folder.unwrap_or(vm_name)
        ),
        "ova" => format!("{vm_name}-disk{}.vmdk", index + 1),
        _ => random::uuid_v4(),
    }
}

fn next_unit_number(disks: &[Disk], controller_key: i64) -> i64 {
    (0..)
        .find(|unit| {
            *unit != SCSI_CONTROLLER_UNIT
                && !disks
                    .iter()
                    .any(|d| d.controller_key == controller_key && d.unit_number == *unit)
        })
        .unwrap_or(0)
}

fn next_disk_key(disks: &[Disk]) -> i64 {
    disks
        .iter()
        .map(|d| d.key + 1)
        .max()
        .unwrap_or(2000)
        .max(2000)
}

/// Builds the disk `request` asks for as the next disk of `vm` (not yet attached).
fn build_disk(
    spec: &SourceProviderSpec,
    vm: &Vm,
    request: &NewDisk,
    default_datastore: Option<&str>,
) -> Result<Disk, SourceError> {
    let datastore = request
        .datastore
        .as_deref()
        .or(default_datastore)
        .or_else(|| vm.disks.first().map(|d| d.datastore.as_str()))
        .or_else(|| spec.datastores.first().map(|d| d.id.as_str()))
        .ok_or_else(|| SourceError::Invalid(format!("`{}` has no datastore", spec.name)))?
        .to_string();
    if !spec.datastores.iter().any(|d| d.id == datastore) {
        return Err(SourceError::Invalid(format!(
            "datastore `{datastore}` does not exist in `{}`",
            spec.name
        )));
    }
    let capacity_gib = match (request.size_gib, request.rdm) {
        (Some(size), _) if size > 0 => size,
        (None, Some(_)) => RDM_CAPACITY_GIB,
        _ => {
            return Err(SourceError::Invalid(
                "a new disk needs size_gib greater than 0 (or rdm)".to_string(),
            ));
        }
    };
    let mode = match request.rdm {
        // A physical-mode RDM cannot be snapshotted, so vSphere makes it independent.
        Some(RdmMode::Physical) => DiskMode::IndependentPersistent,
        _ => request.mode,
    };
    let mut index = vm.disks.len();
    let mut file = disk_file(spec, &vm.name, &datastore, request.folder.as_deref(), index);
    while vm.disks.iter().any(|d| d.file == file) {
        index += 1;
        file = disk_file(spec, &vm.name, &datastore, request.folder.as_deref(), index);
    }
    let controller_key = vm.disks.first().map_or(1000, |d| d.controller_key);
    Ok(Disk {
        key: next_disk_key(&vm.disks),
        file,
        datastore,
        capacity_gib,
        provisioning: request.provisioning,
        mode,
        rdm: request.rdm,
        shared: false,
        controller_key,
        unit_number: next_unit_number(&vm.disks, controller_key),
        lun_uuid: request
            .rdm
            .map(|_| request.lun_uuid.clone().unwrap_or_else(|| lun_uuid(&vm.id))),
    })
}

/// A LUN id for an RDM disk the request did not name.
fn lun_uuid(seed: &str) -> String {
    let hash = seed.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("naa.600a0980{hash:016x}{:08x}", random::next_u64() as u32)
}

/// A new address for a DHCP lease of a clone: same subnet, a host part no other VM of the provider has.
fn fresh_dhcp_ip(ip: &str, used: &mut BTreeSet<String>) -> String {
    let Some((net, _)) = ip.rsplit_once('.') else {
        return ip.to_string();
    };
    for host in 100..=250u32 {
        let candidate = format!("{net}.{host}");
        if used.insert(candidate.clone()) {
            return candidate;
        }
    }
    ip.to_string()
}

impl SourceLab {
    /// Applies `change` to one provider under the write lock, then announces what it reports.
    fn change_provider<R>(
        &self,
        provider: &str,
        change: impl FnOnce(
            &mut SourceProviderSpec,
            &mut BTreeSet<String>,
        ) -> Result<(R, String, SourceChangeKind), SourceError>,
    ) -> Result<R, SourceError> {
        let (result, vm_id, kind) = {
            let mut state = self.write();
            let mut macs = all_macs(&state.providers);
            let spec = state.provider_mut(provider)?;
            change(spec, &mut macs)?
        };
        self.announce(provider, &vm_id, kind);
        Ok(result)
    }

    /// Clones a VM or template into a new, never-template VM: new id, fresh MACs, disk files under the
    /// clone's folder, no snapshots.
    pub fn clone_vm(
        &self,
        provider: &str,
        source_id: &str,
        request: &CloneSpec,
    ) -> Result<Vm, SourceError> {
        self.change_provider(provider, |spec, macs| {
            let name = request.name.trim();
            if name.is_empty() {
                return Err(SourceError::Invalid("a clone needs a name".to_string()));
            }
            let source = spec
                .vms
                .iter()
                .find(|vm| vm.id == source_id)
                .cloned()
                .ok_or_else(|| SourceError::unknown_vm(&spec.name, source_id))?;
            if spec.vms.iter().any(|vm| vm.name == name) {
                return Err(SourceError::Conflict(format!(
                    "a VM named `{name}` already exists in `{}`",
                    spec.name
                )));
            }
            if let Some(host) = &request.host
                && !spec.hosts.iter().any(|h| &h.id == host || &h.name == host)
            {
                return Err(SourceError::Invalid(format!(
                    "host `{host}` does not exist in `{}`",
                    spec.name
                )));
            }
            if let Some(datastore) = &request.target_datastore
                && !spec.datastores.iter().any(|d| &d.id == datastore)
            {
                return Err(SourceError::Invalid(format!(
                    "datastore `{datastore}` does not exist in `{}`",
                    spec.name
                )));
            }
            let mut used_ips: BTreeSet<String> = spec
                .vms
                .iter()
                .flat_map(|vm| vm.nics.iter())
                .flat_map(|nic| nic.ips.iter())
                .map(|ip| ip.ip.clone())
                .collect();
            let mut clone = source.clone();
            clone.id = next_vm_id(spec);
            clone.name = name.to_string();
            clone.template = false;
            clone.uuid = random::uuid_v4();
            clone.power_state = request.power_state.unwrap_or(PowerState::Off);
            clone.snapshots.clear();
            clone.events.clear();
            if let Some(cbt) = request.cbt {
                clone.cbt = cbt;
            }
            if let Some(host) = &request.host {
                let host = spec
                    .hosts
                    .iter()
                    .find(|h| &h.id == host || &h.name == host)
                    .map(|h| h.id.clone());
                clone.host = host;
            }
            clone.disks = Vec::with_capacity(source.disks.len());
            for (index, disk) in source.disks.iter().enumerate() {
                let mut copy = disk.clone();
                if let Some(datastore) = &request.target_datastore {
                    copy.datastore = datastore.clone();
                }
                if let Some(provisioning) = request.disk_type {
                    copy.provisioning = provisioning;
                }
                copy.file = disk_file(spec, name, &copy.datastore, None, index);
                clone.disks.push(copy);
            }
            for nic in &mut clone.nics {
                if request.regenerate_macs {
                    nic.mac = fresh_mac(&spec.provider_type, macs);
                }
                nic.ips = nic
                    .ips
                    .iter()
                    .map(|ip| GuestIp {
                        ip: if ip.is_static {
                            ip.ip.clone()
                        } else {
                            fresh_dhcp_ip(&ip.ip, &mut used_ips)
                        },
                        ..ip.clone()
                    })
                    .collect();
            }
            for added in &request.add_disks {
                let disk = build_disk(spec, &clone, added, request.target_datastore.as_deref())?;
                clone.disks.push(disk);
            }
            spec.vms.push(clone.clone());
            let id = clone.id.clone();
            Ok((clone, id, SourceChangeKind::VmAdded))
        })
    }

    /// Attaches a new disk to a VM.
    pub fn add_disk(
        &self,
        provider: &str,
        vm_id: &str,
        request: &NewDisk,
    ) -> Result<Disk, SourceError> {
        self.change_provider(provider, |spec, _| {
            let vm = find_vm(spec, vm_id)?.clone();
            let disk = build_disk(spec, &vm, request, None)?;
            find_vm_mut(spec, vm_id)?.disks.push(disk.clone());
            Ok((disk, vm_id.to_string(), SourceChangeKind::VmUpdated))
        })
    }

    /// Attaches a new NIC (fresh MAC unless one is given) on a network given by id or name.
    pub fn add_nic(
        &self,
        provider: &str,
        vm_id: &str,
        request: &NewNic,
    ) -> Result<Nic, SourceError> {
        self.change_provider(provider, |spec, macs| {
            let network = spec
                .networks
                .iter()
                .find(|n| n.id == request.network || n.name == request.network)
                .map(|n| n.id.clone())
                .ok_or_else(|| {
                    SourceError::Invalid(format!(
                        "network `{}` does not exist in `{}`",
                        request.network, spec.name
                    ))
                })?;
            let mac = match &request.mac {
                Some(mac) => {
                    let mac = mac.to_ascii_lowercase();
                    if !is_mac(&mac) {
                        return Err(SourceError::Invalid(format!(
                            "`{mac}` is not a MAC address"
                        )));
                    }
                    if !macs.insert(mac.clone()) {
                        return Err(SourceError::Conflict(format!(
                            "MAC {mac} is already in use"
                        )));
                    }
                    mac
                }
                None => fresh_mac(&spec.provider_type, macs),
            };
            let vm = find_vm_mut(spec, vm_id)?;
            let nic = Nic {
                mac,
                network,
                start_connected: request.start_connected,
                device: None,
                ips: Vec::new(),
            };
            vm.nics.push(nic.clone());
            Ok((nic, vm_id.to_string(), SourceChangeKind::VmUpdated))
        })
    }

    /// Takes a snapshot (the VM's current snapshot from now on).
    pub fn create_snapshot(
        &self,
        provider: &str,
        vm_id: &str,
        name: &str,
    ) -> Result<Snapshot, SourceError> {
        self.change_provider(provider, |spec, _| {
            if name.trim().is_empty() {
                return Err(SourceError::Invalid("a snapshot needs a name".to_string()));
            }
            let id = next_snapshot_id(spec);
            let vm = find_vm_mut(spec, vm_id)?;
            if vm.template {
                return Err(SourceError::Invalid(format!(
                    "`{}` is a template; templates have no snapshots",
                    vm.name
                )));
            }
            let snapshot = Snapshot {
                id,
                name: name.to_string(),
                created: clock::now_rfc3339(),
            };
            vm.snapshots.push(snapshot.clone());
            Ok((snapshot, vm_id.to_string(), SourceChangeKind::VmUpdated))
        })
    }
}

fn find_vm<'a>(spec: &'a SourceProviderSpec, vm_id: &str) -> Result<&'a Vm, SourceError> {
    spec.vms
        .iter()
        .find(|vm| vm.id == vm_id)
        .ok_or_else(|| SourceError::unknown_vm(&spec.name, vm_id))
}

fn find_vm_mut<'a>(
    spec: &'a mut SourceProviderSpec,
    vm_id: &str,
) -> Result<&'a mut Vm, SourceError> {
    let provider = spec.name.clone();
    spec.vms
        .iter_mut()
        .find(|vm| vm.id == vm_id)
        .ok_or_else(|| SourceError::unknown_vm(&provider, vm_id))
}
