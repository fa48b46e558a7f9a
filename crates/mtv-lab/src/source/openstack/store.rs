//! What the OpenStack APIs change in the one source model: volumes, snapshots, images and servers
//! booted from volumes, each under the model's write lock, announced like every other VM change so
//! the Forklift inventory sees it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::super::model::{
    Disk, Image, Nic, PowerState, SourceProviderSpec, Vm, Volume, VolumeGuest, VolumeSnapshot,
};
use super::super::mutate::{all_macs, fresh_mac};
use super::super::{SourceChange, SourceChangeKind, SourceError, SourceLab};
use crate::{clock, random};

/// A volume as Cinder shows it: its record (if any) and the server disk it is (if attached).
#[derive(Debug, Clone)]
pub struct VolumeView {
    pub id: String,
    pub name: String,
    pub size_gib: u64,
    /// Volume type id.
    pub volume_type: String,
    pub snapshot_id: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub created: String,
    /// The server it is attached to and its place in the server's boot order.
    pub attached: Option<(String, usize)>,
    pub bootable: bool,
}

/// What `POST /volumes` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewVolume {
    pub name: String,
    pub size_gib: Option<u64>,
    pub snapshot_id: Option<String>,
    /// Volume type id or name.
    pub volume_type: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// What `POST /servers` asks for, resolved to ids.
#[derive(Debug, Clone)]
pub struct NewServer {
    pub name: String,
    pub flavor: String,
    pub networks: Vec<String>,
    /// Volume ids in boot order, each with Nova's `delete_on_termination`.
    pub volumes: Vec<(String, bool)>,
    /// `nova:<host>` placement.
    pub host: Option<String>,
}

fn not_found(what: &str, id: &str) -> SourceError {
    SourceError::Invalid(format!("{what} {id} could not be found."))
}

/// Whether an error is a missing object (the API answers 404 for those).
pub fn is_not_found(error: &SourceError) -> bool {
    match error {
        SourceError::UnknownVm { .. } | SourceError::UnknownProvider(_) => true,
        SourceError::Invalid(message) => message.ends_with("could not be found."),
        _ => false,
    }
}

/// The volumes of a provider: attached ones (server disks, in boot order) first, then detached ones.
pub fn volumes(spec: &SourceProviderSpec) -> Vec<VolumeView> {
    let records: BTreeMap<&str, &Volume> = spec
        .openstack
        .volumes
        .iter()
        .map(|v| (v.id.as_str(), v))
        .collect();
    let mut out = Vec::new();
    let mut attached = BTreeSet::new();
    for vm in &spec.vms {
        for (index, disk) in vm.disks.iter().enumerate() {
            attached.insert(disk.file.as_str());
            let record = records.get(disk.file.as_str());
            out.push(VolumeView {
                id: disk.file.clone(),
                name: record.map_or_else(
                    // The name the Forklift inventory gives a volume it has no record of.
                    || format!("{}-volume-{index}", vm.name),
                    |r| r.name.clone(),
                ),
                size_gib: disk.capacity_gib,
                volume_type: disk.datastore.clone(),
                snapshot_id: record.and_then(|r| r.snapshot_id.clone()),
                metadata: record.map(|r| r.metadata.clone()).unwrap_or_default(),
                created: record.map(|r| r.created.clone()).unwrap_or_default(),
                attached: Some((vm.id.clone(), index)),
                bootable: index == 0 || record.is_some_and(|r| r.guest.is_some()),
            });
        }
    }
    for record in &spec.openstack.volumes {
        if attached.contains(record.id.as_str()) {
            continue;
        }
        out.push(VolumeView {
            id: record.id.clone(),
            name: record.name.clone(),
            size_gib: record.size_gib,
            volume_type: record.volume_type.clone(),
            snapshot_id: record.snapshot_id.clone(),
            metadata: record.metadata.clone(),
            created: record.created.clone(),
            attached: None,
            bootable: record.guest.is_some(),
        });
    }
    out
}

/// The volume type id `name_or_id` names.
fn volume_type(spec: &SourceProviderSpec, name_or_id: &str) -> Result<String, SourceError> {
    spec.datastores
        .iter()
        .find(|d| d.id == name_or_id || d.name == name_or_id)
        .map(|d| d.id.clone())
        .ok_or_else(|| not_found("Volume type", name_or_id))
}

/// The guest a volume holds: the boot disk of the server it is attached to, or its record's.
pub(super) fn guest_of(spec: &SourceProviderSpec, volume_id: &str) -> Option<VolumeGuest> {
    for vm in &spec.vms {
        if vm.disks.first().is_some_and(|d| d.file == volume_id) {
            return Some(VolumeGuest::of(vm));
        }
    }
    spec.openstack
        .volumes
        .iter()
        .find(|v| v.id == volume_id)
        .and_then(|v| v.guest.clone())
}

/// A snapshot of a volume, in the provider (no lock taken).
fn snapshot_volume(
    spec: &mut SourceProviderSpec,
    volume_id: &str,
    name: &str,
    metadata: BTreeMap<String, String>,
) -> Result<VolumeSnapshot, SourceError> {
    let volume = volumes(spec)
        .into_iter()
        .find(|v| v.id == volume_id)
        .ok_or_else(|| not_found("Volume", volume_id))?;
    let snapshot = VolumeSnapshot {
        id: random::uuid_v4(),
        name: name.to_string(),
        volume_id: volume_id.to_string(),
        size_gib: volume.size_gib,
        volume_type: volume.volume_type,
        metadata,
        created: clock::now_rfc3339(),
        guest: guest_of(spec, volume_id),
    };
    spec.openstack.snapshots.push(snapshot.clone());
    Ok(snapshot)
}

/// A new address on the network's subnet (the first address of the network's VMs names it).
fn fresh_ip(spec: &SourceProviderSpec, network: &str) -> Vec<super::super::model::GuestIp> {
    let used: BTreeSet<&str> = spec
        .vms
        .iter()
        .flat_map(|vm| vm.nics.iter())
        .flat_map(|nic| nic.ips.iter())
        .map(|ip| ip.ip.as_str())
        .collect();
    let Some(sample) = spec
        .vms
        .iter()
        .flat_map(|vm| vm.nics.iter())
        .filter(|nic| nic.network == network)
        .flat_map(|nic| nic.ips.iter())
        .find(|ip| ip.ip.parse::<std::net::Ipv4Addr>().is_ok())
    else {
        return Vec::new();
    };
    let Some((net, _)) = sample.ip.rsplit_once('.') else {
        return Vec::new();
    };
    (100..=250u32)
        .map(|host| format!("{net}.{host}"))
        .find(|candidate| !used.contains(candidate.as_str()))
        .map(|ip| {
            vec![super::super::model::GuestIp {
                ip,
                prefix: sample.prefix,
                gateway: sample.gateway.clone(),
                is_static: false,
            }]
        })
        .unwrap_or_default()
}

impl SourceLab {
    /// Runs `change` on one provider under the write lock; announces the VM change it reports.
    fn openstack_change<R>(
        &self,
        provider: &str,
        change: impl FnOnce(
            &mut SourceProviderSpec,
            &mut BTreeSet<String>,
        ) -> Result<(R, Option<(String, SourceChangeKind)>), SourceError>,
    ) -> Result<R, SourceError> {
        let (result, announce) = {
            let mut state = self.write();
            let mut macs = all_macs(&state.providers);
            let spec = state.provider_mut(provider)?;
            change(spec, &mut macs)?
        };
        if let Some((vm_id, kind)) = announce {
            let _ = self.changes.send(SourceChange {
                provider: provider.to_string(),
                vm_id,
                kind,
            });
        }
        Ok(result)
    }

    /// Cinder `POST /snapshots`.
    pub fn create_volume_snapshot(
        &self,
        provider: &str,
        volume_id: &str,
        name: &str,
        metadata: BTreeMap<String, String>,
    ) -> Result<VolumeSnapshot, SourceError> {
        self.openstack_change(provider, |spec, _| {
            Ok((snapshot_volume(spec, volume_id, name, metadata)?, None))
        })
    }

    /// Cinder `DELETE /snapshots/{id}`.
    pub fn delete_volume_snapshot(&self, provider: &str, id: &str) -> Result<(), SourceError> {
        self.openstack_change(provider, |spec, _| {
            let before = spec.openstack.snapshots.len();
            spec.openstack.snapshots.retain(|s| s.id != id);
            if spec.openstack.snapshots.len() == before {
                return Err(not_found("Snapshot", id));
            }
            Ok(((), None))
        })
    }

    /// Cinder `POST /volumes`: blank, or from a snapshot (its size at least, its type by default,
    /// its guest).
    pub fn create_volume(
        &self,
        provider: &str,
        request: &NewVolume,
    ) -> Result<Volume, SourceError> {
        self.openstack_change(provider, |spec, _| {
            let snapshot = match &request.snapshot_id {
                Some(id) => Some(
                    spec.openstack
                        .snapshots
                        .iter()
                        .find(|s| &s.id == id)
                        .cloned()
                        .ok_or_else(|| not_found("Snapshot", id))?,
                ),
                None => None,
            };
            let size_gib = match (request.size_gib, &snapshot) {
                (Some(size), Some(s)) if size < s.size_gib => {
                    return Err(SourceError::Invalid(format!(
                        "Invalid input received: Volume size '{size}'GB cannot be smaller than the \
                         snapshot size {}GB. They must be >= original snapshot size.",
                        s.size_gib
                    )));
                }
                (Some(size), _) if size > 0 => size,
                (None, Some(s)) => s.size_gib,
                _ => {
                    return Err(SourceError::Invalid(
                        "Invalid input received: a volume needs a size greater than 0 or a snapshot_id"
                            .into(),
                    ));
                }
            };
            let volume_type = match (&request.volume_type, &snapshot) {
                (Some(name), _) => volume_type(spec, name)?,
                (None, Some(s)) => s.volume_type.clone(),
                (None, None) => spec
                    .datastores
                    .first()
                    .map(|d| d.id.clone())
                    .ok_or_else(|| SourceError::Invalid("no volume type exists".into()))?,
            };
            let volume = Volume {
                id: random::uuid_v4(),
                name: request.name.clone(),
                size_gib,
                volume_type,
                snapshot_id: request.snapshot_id.clone(),
                metadata: request.metadata.clone(),
                created: clock::now_rfc3339(),
                delete_on_termination: false,
                guest: snapshot.and_then(|s| s.guest),
            };
            spec.openstack.volumes.push(volume.clone());
            Ok((volume, None))
        })
    }

    /// Cinder `DELETE /volumes/{id}`: only an available volume without snapshots.
    pub fn delete_volume(&self, provider: &str, id: &str) -> Result<(), SourceError> {
        self.openstack_change(provider, |spec, _| {
            let volume = volumes(spec)
                .into_iter()
                .find(|v| v.id == id)
                .ok_or_else(|| not_found("Volume", id))?;
            if volume.attached.is_some() {
                return Err(SourceError::Invalid(format!(
                    "Invalid volume: Volume status must be available or error or error_restoring or \
                     error_extending or error_managing and must not be migrating, attached, belong to \
                     a group, have snapshots, awaiting a transfer, or be disassociated from \
                     snapshots after volume transfer. (volume {id} is in-use)"
                )));
            }
            let dependents = spec
                .openstack
                .snapshots
                .iter()
                .filter(|s| s.volume_id == id)
                .count();
            if dependents > 0 {
                return Err(SourceError::Invalid(format!(
                    "Invalid volume: Volume {id} still has {dependents} dependent snapshots."
                )));
            }
            spec.openstack.volumes.retain(|v| v.id != id);
            Ok(((), None))
        })
    }

    /// Nova `POST /servers` booting from volumes: flavor's CPU and memory, the boot volume's guest,
    /// a NIC with a fresh MAC (and address) on each network; ACTIVE.
    pub fn boot_server(&self, provider: &str, request: &NewServer) -> Result<Vm, SourceError> {
        self.openstack_change(provider, |spec, macs| {
            let vm = build_server(spec, request, macs)?;
            for (volume_id, delete) in &request.volumes {
                match spec
                    .openstack
                    .volumes
                    .iter_mut()
                    .find(|v| &v.id == volume_id)
                {
                    Some(record) => record.delete_on_termination = *delete,
                    None => unreachable_record(volume_id)?,
                }
            }
            spec.vms.push(vm.clone());
            let id = vm.id.clone();
            Ok((vm, Some((id, SourceChangeKind::VmAdded))))
        })
    }

    /// Nova `DELETE /servers/{id}`: its volumes are deleted with it when marked so (and free of
    /// snapshots), else they stay, detached, with the guest of the boot disk.
    pub fn delete_server(&self, provider: &str, id: &str) -> Result<(), SourceError> {
        self.openstack_change(provider, |spec, _| {
            let index = spec
                .vms
                .iter()
                .position(|vm| vm.id == id && !vm.template)
                .ok_or_else(|| not_found("Instance", id))?;
            let vm = spec.vms.remove(index);
            for (position, disk) in vm.disks.iter().enumerate() {
                let guest = (position == 0).then(|| VolumeGuest::of(&vm));
                detach_disk(spec, disk, guest, true);
            }
            Ok(((), Some((id.to_string(), SourceChangeKind::VmRemoved))))
        })
    }

    /// Attaches an available volume as the server's next disk (Nova `os-volume_attachments`,
    /// Cinder `attachments`).
    pub fn attach_volume(
        &self,
        provider: &str,
        server_id: &str,
        volume_id: &str,
    ) -> Result<usize, SourceError> {
        self.openstack_change(provider, |spec, _| {
            let volume = volumes(spec)
                .into_iter()
                .find(|v| v.id == volume_id)
                .ok_or_else(|| not_found("Volume", volume_id))?;
            if volume.attached.is_some() {
                return Err(SourceError::Invalid(format!(
                    "Invalid volume: volume {volume_id} status must be available, but it is in-use"
                )));
            }
            let vm = spec
                .vms
                .iter_mut()
                .find(|vm| vm.id == server_id && !vm.template)
                .ok_or_else(|| not_found("Instance", server_id))?;
            let index = vm.disks.len();
            vm.disks.push(disk(
                &volume.id,
                &volume.volume_type,
                volume.size_gib,
                &vm.disks,
            )?);
            Ok((
                index,
                Some((server_id.to_string(), SourceChangeKind::VmUpdated)),
            ))
        })
    }

    /// Detaches a volume from its server; it stays as an available volume.
    pub fn detach_volume(
        &self,
        provider: &str,
        server_id: &str,
        volume_id: &str,
    ) -> Result<(), SourceError> {
        self.openstack_change(provider, |spec, _| {
            let vm = spec
                .vms
                .iter_mut()
                .find(|vm| vm.id == server_id)
                .ok_or_else(|| not_found("Instance", server_id))?;
            let position = vm
                .disks
                .iter()
                .position(|d| d.file == volume_id)
                .ok_or_else(|| {
                    not_found(
                        &format!("Volume attachment of server {server_id}, volume"),
                        volume_id,
                    )
                })?;
            let disk = vm.disks.remove(position);
            let guest = (position == 0).then(|| VolumeGuest::of(vm));
            detach_disk(spec, &disk, guest, false);
            Ok((
                (),
                Some((server_id.to_string(), SourceChangeKind::VmUpdated)),
            ))
        })
    }

    /// Nova `createImage` of a volume-backed server: a snapshot of each volume and an image naming
    /// them in boot order.
    pub fn create_server_image(
        &self,
        provider: &str,
        server_id: &str,
        name: &str,
        metadata: BTreeMap<String, String>,
    ) -> Result<Image, SourceError> {
        self.openstack_change(provider, |spec, _| {
            let vm = spec
                .vms
                .iter()
                .find(|vm| vm.id == server_id && !vm.template)
                .cloned()
                .ok_or_else(|| not_found("Instance", server_id))?;
            let mut snapshot_ids = Vec::new();
            for disk in &vm.disks {
                let snapshot = snapshot_volume(
                    spec,
                    &disk.file,
                    &format!("snapshot for {name}"),
                    BTreeMap::new(),
                )?;
                snapshot_ids.push(snapshot.id);
            }
            let image = Image {
                id: random::uuid_v4(),
                name: name.to_string(),
                created: clock::now_rfc3339(),
                min_disk_gib: vm.disks.first().map_or(0, |d| d.capacity_gib),
                instance_uuid: Some(vm.id.clone()),
                snapshot_ids,
                metadata,
            };
            spec.openstack.images.push(image.clone());
            Ok((image, None))
        })
    }

    /// Glance `DELETE /v2/images/{id}`.
    pub fn delete_image(&self, provider: &str, id: &str) -> Result<(), SourceError> {
        self.openstack_change(provider, |spec, _| {
            let before = spec.openstack.images.len();
            spec.openstack.images.retain(|i| i.id != id);
            if spec.openstack.images.len() == before {
                return Err(not_found("Image", id));
            }
            Ok(((), None))
        })
    }
}

/// A volume `boot_server` was told exists but has no record: cannot happen once `build_server`
/// checked every volume is a detached (recorded) one.
fn unreachable_record(volume_id: &str) -> Result<(), SourceError> {
    Err(not_found("Volume", volume_id))
}

/// A disk of a server, built through the model's own defaults so that fields the model gains later
/// take their default values here too.
fn disk(
    volume_id: &str,
    volume_type: &str,
    size_gib: u64,
    existing: &[Disk],
) -> Result<Disk, SourceError> {
    let unit = existing
        .iter()
        .map(|d| d.unit_number + 1)
        .max()
        .unwrap_or(0);
    let key = existing.iter().map(|d| d.key + 1).max().unwrap_or(1);
    serde_json::from_value(json!({
        "key": key,
        "file": volume_id,
        "datastore": volume_type,
        "capacity_gib": size_gib,
        "unit_number": unit,
    }))
    .map_err(|e| SourceError::Invalid(format!("volume {volume_id}: {e}")))
}

/// A disk leaving its server: deleted with it when marked so and free of snapshots, else kept as an
/// available volume with its size, type and (boot disk) guest.
fn detach_disk(
    spec: &mut SourceProviderSpec,
    disk: &Disk,
    guest: Option<VolumeGuest>,
    server_deleted: bool,
) {
    let has_snapshots = spec
        .openstack
        .snapshots
        .iter()
        .any(|s| s.volume_id == disk.file);
    let record = spec
        .openstack
        .volumes
        .iter()
        .position(|v| v.id == disk.file);
    let delete = server_deleted
        && !has_snapshots
        && record.is_some_and(|i| spec.openstack.volumes[i].delete_on_termination);
    match record {
        Some(index) if delete => {
            spec.openstack.volumes.remove(index);
        }
        Some(index) => {
            let record = &mut spec.openstack.volumes[index];
            record.size_gib = disk.capacity_gib;
            record.volume_type = disk.datastore.clone();
            record.delete_on_termination = false;
            if guest.is_some() {
                record.guest = guest;
            }
        }
        None => spec.openstack.volumes.push(Volume {
            id: disk.file.clone(),
            name: String::new(),
            size_gib: disk.capacity_gib,
            volume_type: disk.datastore.clone(),
            snapshot_id: None,
            metadata: BTreeMap::new(),
            created: clock::now_rfc3339(),
            delete_on_termination: false,
            guest,
        }),
    }
}

/// The VM a server booted from volumes is, checked against the provider (no lock taken).
fn build_server(
    spec: &SourceProviderSpec,
    request: &NewServer,
    macs: &mut BTreeSet<String>,
) -> Result<Vm, SourceError> {
    let name = request.name.trim();
    if name.is_empty() {
        return Err(SourceError::Invalid(
            "Invalid input: a server needs a name".into(),
        ));
    }
    let flavor = spec
        .flavors
        .iter()
        .find(|f| f.id == request.flavor)
        .ok_or_else(|| not_found("Flavor", &request.flavor))?;
    if request.volumes.is_empty() {
        return Err(SourceError::Invalid(
            "Invalid input: the lab boots servers from volumes only; give block_device_mapping_v2 \
             with a volume of boot_index 0"
                .into(),
        ));
    }
    let all = volumes(spec);
    let mut disks: Vec<Disk> = Vec::new();
    let mut guest = None;
    for (index, (volume_id, _)) in request.volumes.iter().enumerate() {
        let volume = all
            .iter()
            .find(|v| &v.id == volume_id)
            .ok_or_else(|| not_found("Volume", volume_id))?;
        if volume.attached.is_some() {
            return Err(SourceError::Invalid(format!(
                "Invalid volume: volume {volume_id} is in-use; a server boots from available volumes"
            )));
        }
        if index == 0 {
            guest = guest_of(spec, volume_id);
        }
        disks.push(disk(
            volume_id,
            &volume.volume_type,
            volume.size_gib,
            &disks,
        )?);
    }
    let host = match &request.host {
        Some(host) => spec
            .hosts
            .iter()
            .find(|h| &h.id == host || &h.name == host)
            .map(|h| h.id.clone())
            .ok_or_else(|| not_found("Compute host", host))?,
        None => spec.hosts.first().map(|h| h.id.clone()).unwrap_or_default(),
    };
    let mut nics = Vec::new();
    for network in &request.networks {
        if !spec.networks.iter().any(|n| &n.id == network) {
            return Err(not_found("Network", network));
        }
        let nic: Nic = serde_json::from_value(json!({
            "mac": fresh_mac(&spec.provider_type, macs),
            "network": network,
        }))
        .map_err(|e| SourceError::Invalid(format!("network {network}: {e}")))?;
        nics.push(Nic {
            ips: fresh_ip(spec, network),
            ..nic
        });
    }
    let guest = guest.unwrap_or(VolumeGuest {
        guest_os: "linux".into(),
        firmware: Default::default(),
        secure_boot: false,
        tpm: false,
        guest_agent: false,
        tools: Default::default(),
        guest_files: BTreeMap::new(),
    });
    let id = random::uuid_v4();
    let mut vm: Vm = serde_json::from_value(json!({
        "id": id,
        "name": name,
        "power_state": PowerState::On,
        "host": host,
        "cpu_sockets": flavor.vcpus,
        "cores_per_socket": 1,
        "memory_mib": flavor.ram_mib,
        "flavor": flavor.id,
        "guest_os": guest.guest_os,
        "uuid": id,
        "disks": [],
        "nics": [],
    }))
    .map_err(|e| SourceError::Invalid(format!("server {name}: {e}")))?;
    vm.disks = disks;
    vm.nics = nics;
    vm.firmware = guest.firmware;
    vm.secure_boot = guest.secure_boot;
    vm.tpm = guest.tpm;
    vm.guest_agent = guest.guest_agent;
    vm.tools = guest.tools;
    vm.guest_files = guest.guest_files;
    Ok(vm)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVIDER: &str = "openstack";

    fn rhel8(lab: &SourceLab) -> Vm {
        lab.vms_named(PROVIDER, "mtv-tests-rhel8")
            .unwrap()
            .remove(0)
    }

    /// A volume from a snapshot of the server's boot volume; the snapshot's id.
    fn copy_of_boot_volume(lab: &SourceLab, name: &str) -> (Volume, String) {
        let vm = rhel8(lab);
        let snapshot = lab
            .create_volume_snapshot(PROVIDER, &vm.disks[0].file, "s", BTreeMap::new())
            .unwrap();
        let volume = lab
            .create_volume(
                PROVIDER,
                &NewVolume {
                    name: name.into(),
                    snapshot_id: Some(snapshot.id.clone()),
                    ..NewVolume::default()
                },
            )
            .unwrap();
        (volume, snapshot.id)
    }

    fn boot(lab: &SourceLab, volume: &str, delete_on_termination: bool) -> Vm {
        let vm = rhel8(lab);
        lab.boot_server(
            PROVIDER,
            &NewServer {
                name: "copy".into(),
                flavor: vm.flavor.clone().unwrap(),
                networks: vec![vm.nics[0].network.clone()],
                volumes: vec![(volume.to_string(), delete_on_termination)],
                host: None,
            },
        )
        .unwrap()
    }

    #[test]
    fn a_volume_from_a_snapshot_holds_the_guest_and_boots_it() {
        let lab = SourceLab::builtin();
        let source = rhel8(&lab);
        let (volume, _) = copy_of_boot_volume(&lab, "copy-disk");
        assert_eq!(volume.size_gib, source.disks[0].capacity_gib);
        assert_eq!(volume.volume_type, source.disks[0].datastore);
        let server = boot(&lab, &volume.id, false);
        assert_eq!(server.guest_os, source.guest_os);
        assert_eq!(server.power_state, PowerState::On);
        assert_eq!(server.disks[0].file, volume.id);
        // A fresh address on the network's subnet.
        assert!(server.nics[0].ips[0].ip.starts_with("10.50.1."));
        assert_ne!(server.nics[0].ips[0].ip, source.nics[0].ips[0].ip);
        // An attached volume cannot boot a second server.
        let again = lab.boot_server(
            PROVIDER,
            &NewServer {
                name: "copy-2".into(),
                flavor: source.flavor.clone().unwrap(),
                networks: Vec::new(),
                volumes: vec![(volume.id.clone(), false)],
                host: None,
            },
        );
        assert!(matches!(again, Err(SourceError::Invalid(m)) if m.contains("in-use")));
    }

    #[test]
    fn deleting_a_server_keeps_or_deletes_its_volumes_as_marked() {
        let lab = SourceLab::builtin();
        let (kept, _) = copy_of_boot_volume(&lab, "kept");
        let server = boot(&lab, &kept.id, false);
        lab.delete_server(PROVIDER, &server.id).unwrap();
        let spec = lab.provider(PROVIDER).unwrap();
        let view = volumes(&spec)
            .into_iter()
            .find(|v| v.id == kept.id)
            .unwrap();
        assert!(view.attached.is_none() && view.bootable);

        let (gone, snapshot) = copy_of_boot_volume(&lab, "gone");
        let server = boot(&lab, &gone.id, true);
        lab.delete_server(PROVIDER, &server.id).unwrap();
        let spec = lab.provider(PROVIDER).unwrap();
        assert!(!volumes(&spec).iter().any(|v| v.id == gone.id));
        // The snapshot stays until deleted; the source volume cannot go while it has one.
        let source_volume = &rhel8(&lab).disks[0].file;
        assert!(spec.openstack.snapshots.iter().any(|s| s.id == snapshot));
        lab.detach_volume(PROVIDER, &rhel8(&lab).id, source_volume)
            .unwrap();
        let refused = lab.delete_volume(PROVIDER, source_volume);
        assert!(
            matches!(refused, Err(SourceError::Invalid(m)) if m.contains("dependent snapshots"))
        );
    }

    #[test]
    fn create_image_snapshots_every_volume_in_boot_order() {
        let lab = SourceLab::builtin();
        let vm = lab
            .vms_named(PROVIDER, "mtv-win2019-3disks")
            .unwrap()
            .remove(0);
        let image = lab
            .create_server_image(PROVIDER, &vm.id, "img", BTreeMap::new())
            .unwrap();
        let spec = lab.provider(PROVIDER).unwrap();
        let volumes: Vec<&str> = image
            .snapshot_ids
            .iter()
            .map(|id| {
                spec.openstack
                    .snapshots
                    .iter()
                    .find(|s| &s.id == id)
                    .unwrap()
                    .volume_id
                    .as_str()
            })
            .collect();
        let disks: Vec<&str> = vm.disks.iter().map(|d| d.file.as_str()).collect();
        assert_eq!(volumes, disks);
        assert_eq!(image.instance_uuid.as_deref(), Some(vm.id.as_str()));
    }
}
