//! Source inventories rendered in each provider type's own JSON shape (forklift-api.md §7.4).

use serde_json::{Map, Value, json};

use crate::source::model::{
    Datastore, Disk, DiskMode, Firmware, Host, Network, PowerState, SourceProviderSpec,
    ToolsStatus, Vm,
};

const GIB: u64 = 1024 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

/// How much of an object a list shows (`detail=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Detail {
    Summary,
    Full,
}

/// The provider a rendering is for: its inventory and the self links it hands out.
pub struct SourceView<'a> {
    pub spec: &'a SourceProviderSpec,
    /// `providers/<type>/<uid>`.
    pub base: String,
}

impl SourceView<'_> {
    fn link(&self, collection: &str, id: &str) -> String {
        format!("{}/{collection}/{id}", self.base)
    }

    fn datacenter(&self) -> &str {
        self.spec.datacenter.as_deref().unwrap_or("Datacenter")
    }

    fn network(&self, id: &str) -> Option<&Network> {
        self.spec.networks.iter().find(|n| n.id == id)
    }

    fn datastore(&self, id: &str) -> Option<&Datastore> {
        self.spec.datastores.iter().find(|d| d.id == id)
    }

    fn host(&self, id: &str) -> Option<&Host> {
        self.spec.hosts.iter().find(|h| h.id == id)
    }

    fn cluster_of(&self, vm: &Vm) -> String {
        vm.host
            .as_deref()
            .and_then(|h| self.host(h))
            .or_else(|| self.spec.hosts.first())
            .and_then(|h| h.cluster.clone())
            .unwrap_or_else(|| "Default".to_string())
    }

    /// The VMs a type's `vms` collection lists (oVirt and OpenStack inventories hold no templates).
    pub fn listed_vms(&self) -> impl Iterator<Item = &Vm> {
        let with_templates = matches!(self.spec.provider_type.as_str(), "vsphere");
        self.spec
            .vms
            .iter()
            .filter(move |vm| with_templates || !vm.template)
    }

    /// Whether `query` (`name=`) names this VM; vSphere also matches a trailing inventory path.
    pub fn vm_matches(&self, vm: &Vm, query: &str) -> bool {
        if vm.name == query {
            return true;
        }
        if self.spec.provider_type == "vsphere" {
            let path = self.vsphere_path(vm);
            let query = query.trim_start_matches('/');
            return path.ends_with(&format!("/{query}"));
        }
        false
    }

    fn vsphere_path(&self, vm: &Vm) -> String {
        format!("/{}/vm/{}", self.datacenter(), vm.name)
    }

    /// One VM: the type's full shape, or the summary lists show by default.
    pub fn vm(&self, vm: &Vm, detail: Detail) -> Value {
        let kind = self.spec.provider_type.as_str();
        if detail == Detail::Summary && kind != "vsphere" {
            return json!({
                "id": vm.id,
                "parent": self.vm_parent(vm),
                "revision": 1,
                "name": vm.name,
                "selfLink": self.link("vms", &vm.id),
            });
        }
        match kind {
            "vsphere" => self.vsphere_vm(vm),
            "ovirt" => self.ovirt_vm(vm),
            "openstack" => self.openstack_vm(vm),
            _ => self.ova_vm(vm),
        }
    }

    fn vm_parent(&self, vm: &Vm) -> Value {
        match self.spec.provider_type.as_str() {
            "ovirt" => json!({"kind": "Cluster", "id": self.cluster_of(vm)}),
            "openstack" => json!({"kind": "Project", "id": self.spec.project}),
            _ => json!({"kind": "Folder", "id": "group-v3"}),
        }
    }

    /// `workloads/{id}`: the VM with its references expanded, what a hook's `workload.yml` holds.
    pub fn workload(&self, vm: &Vm) -> Value {
        let mut value = self.vm(vm, Detail::Full);
        let Value::Object(map) = &mut value else {
            return value;
        };
        map.insert("selfLink".into(), json!(self.link("workloads", &vm.id)));
        match self.spec.provider_type.as_str() {
            "vsphere" => {
                if let Some(host) = vm.host.as_deref().and_then(|h| self.host(h)) {
                    let mut host_value = self.vsphere_host(host);
                    if let Value::Object(h) = &mut host_value {
                        h.insert(
                            "cluster".into(),
                            json!({
                                "id": host.cluster,
                                "name": host.cluster,
                                "datacenter": {"id": self.datacenter(), "name": self.datacenter()},
                            }),
                        );
                    }
                    map.insert("host".into(), host_value);
                }
            }
            "ovirt" => {
                let cluster = self.cluster_of(vm);
                map.insert(
                    "cluster".into(),
                    json!({
                        "id": cluster,
                        "name": cluster,
                        "dataCenter": {"id": self.datacenter(), "name": self.datacenter()},
                    }),
                );
                if let Some(host) = vm.host.as_deref().and_then(|h| self.host(h)) {
                    map.insert("host".into(), self.ovirt_host(host));
                }
            }
            "openstack" => {
                if let Some(flavor) = vm
                    .flavor
                    .as_deref()
                    .and_then(|f| self.spec.flavors.iter().find(|x| x.id == f))
                {
                    map.insert("flavor".into(), self.flavor(flavor));
                }
                let volumes: Vec<Value> = vm
                    .disks
                    .iter()
                    .enumerate()
                    .map(|(i, d)| self.openstack_volume(vm, d, i))
                    .collect();
                map.insert("volumes".into(), Value::Array(volumes));
            }
            _ => {}
        }
        value
    }

    fn vsphere_vm(&self, vm: &Vm) -> Value {
        let on = vm.power_state == PowerState::On;
        let (tools_status, tools_running, tools_version) = match (vm.tools, on) {
            (ToolsStatus::Ok, true) => ("toolsOk", "guestToolsRunning", "guestToolsCurrent"),
            (ToolsStatus::Ok, false) => (
                "toolsNotRunning",
                "guestToolsNotRunning",
                "guestToolsCurrent",
            ),
            (ToolsStatus::NotRunning, _) => (
                "toolsNotRunning",
                "guestToolsNotRunning",
                "guestToolsCurrent",
            ),
            (ToolsStatus::NotInstalled, _) => (
                "toolsNotInstalled",
                "guestToolsNotRunning",
                "guestToolsNotInstalled",
            ),
        };
        let reporting = on && vm.tools == ToolsStatus::Ok;
        let disks: Vec<Value> = vm.disks.iter().map(|d| self.vsphere_disk(vm, d)).collect();
        let nics: Vec<Value> = vm
            .nics
            .iter()
            .enumerate()
            .map(|(i, nic)| {
                json!({
                    "network": {"kind": "Network", "id": nic.network},
                    "mac": nic.mac,
                    "order": i,
                    "deviceKey": 4000 + i as i64,
                    "pciAddress": "",
                    "startConnected": nic.start_connected,
                })
            })
            .collect();
        let mut networks: Vec<Value> = Vec::new();
        for nic in &vm.nics {
            let reference = json!({"kind": "Network", "id": nic.network});
            if !networks.contains(&reference) {
                networks.push(reference);
            }
        }
        let mut guest_networks = Vec::new();
        let mut guest_ip_stacks = Vec::new();
        if reporting {
            for (i, nic) in vm.nics.iter().enumerate() {
                let network_name = self.network(&nic.network).map(|n| n.name.as_str());
                for ip in &nic.ips {
                    guest_networks.push(json!({
                        "device": nic.device.clone().unwrap_or_else(|| i.to_string()),
                        "deviceConfigId": 4000 + i as i64,
                        "mac": nic.mac,
                        "ip": ip.ip,
                        "origin": if ip.is_static { "manual" } else { "dhcp" },
                        "prefix": ip.prefix,
                        "dns": ["10.10.0.2"],
                        "network": network_name,
                    }));
                    if let Some(gateway) = &ip.gateway {
                        guest_ip_stacks.push(json!({
                            "device": i.to_string(),
                            "gateway": gateway,
                            "network": "0.0.0.0",
                            "prefix": 0,
                            "dns": ["10.10.0.2"],
                        }));
                    }
                }
            }
        }
        let guest_disks: Vec<Value> = if reporting {
            vm.disks
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let path = if vm.is_windows() {
                        format!("{}:\\", (b'C' + (i as u8).min(23)) as char)
                    } else if i == 0 {
                        "/".to_string()
                    } else {
                        format!("/data{i}")
                    };
                    json!({
                        "key": d.key,
                        "diskPath": path,
                        "capacity": d.capacity_gib * GIB,
                        "freeSpace": d.capacity_gib * GIB / 2,
                        "filesystemType": if vm.is_windows() { "NTFS" } else { "xfs" },
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        let first_ip = vm
            .nics
            .iter()
            .flat_map(|n| n.ips.iter())
            .next()
            .map(|ip| ip.ip.clone());
        let head = json!({
            "id": vm.id,
            "parent": {"kind": "Folder", "id": "group-v3"},
            "path": self.vsphere_path(vm),
            "revision": 1,
            "name": vm.name,
            "selfLink": self.link("vms", &vm.id),
            "uuid": vm.uuid,
            "firmware": firmware(vm.firmware),
            "powerState": if on { "poweredOn" } else { "poweredOff" },
            "connectionState": "connected",
            "snapshot": {
                "kind": "VirtualMachineSnapshot",
                "id": vm.snapshots.last().map_or("", |s| s.id.as_str()),
            },
            "changeTrackingEnabled": vm.cbt,
            "cpuAffinity": [],
            "cpuHotAddEnabled": false,
            "cpuHotRemoveEnabled": false,
            "memoryHotAddEnabled": false,
            "faultToleranceEnabled": false,
        });
        let rest = json!({
            "cpuCount": vm.cpu_sockets * vm.cores_per_socket,
            "coresPerSocket": vm.cores_per_socket,
            "memoryMB": vm.memory_mib,
            "guestName": guest_name(&vm.guest_os),
            "guestNameFromVmwareTools": if reporting { guest_name(&vm.guest_os) } else { String::new() },
            "hostName": if reporting { vm.name.clone() } else { String::new() },
            "guestId": vm.guest_os,
            "balloonedMemory": 0,
            "ipAddress": if reporting { first_ip.unwrap_or_default() } else { String::new() },
            "storageUsed": vm.disks.iter().map(|d| d.capacity_gib * GIB).sum::<u64>(),
            "numaNodeAffinity": [],
            "devices": vm.nics.iter().map(|_| json!({"kind": "VirtualVmxnet3"})).collect::<Vec<_>>(),
            "nestedHVEnabled": vm.nested_virtualization,
            "secureBoot": vm.secure_boot,
            "tpmEnabled": vm.tpm,
            "toolsStatus": tools_status,
            "toolsRunningStatus": tools_running,
            "toolsVersionStatus2": tools_version,
            "instanceUuid": format!("50{}", vm.uuid.get(2..).unwrap_or_default()),
            "consolidationNeeded": false,
            "isTemplate": vm.template,
            "host": vm.host,
            "disks": disks,
            "nics": nics,
            "networks": networks,
            "guestNetworks": guest_networks,
            "guestIpStacks": guest_ip_stacks,
            "guestDisks": guest_disks,
            "customDef": [],
            "customValues": [],
            "tags": [],
            "concerns": vm.concerns,
            "revisionValidated": 1,
        });
        merged(head, rest)
    }

    fn vsphere_disk(&self, vm: &Vm, d: &Disk) -> Value {
        json!({
            "key": d.key,
            "unitNumber": d.unit_number,
            "controllerKey": d.controller_key,
            "file": d.file,
            "datastore": {"kind": "Datastore", "id": d.datastore},
            "capacity": d.capacity_gib * GIB,
            "shared": d.shared,
            "rdm": d.rdm.is_some(),
            "physicalMode": matches!(d.rdm, Some(crate::source::model::RdmMode::Physical)),
            "bus": "scsi",
            "mode": disk_mode(d.mode),
            "serial": format!("6000c29{:013x}", d.key as u64 ^ fnv(&vm.uuid)),
            "winDriveLetter": "",
            "changeTrackingEnabled": vm.cbt,
            "parent": "",
            "deviceName": "",
            "vvolId": "",
            "lunUuid": d.lun_uuid.clone().unwrap_or_default(),
        })
    }

    fn ovirt_vm(&self, vm: &Vm) -> Value {
        let up = vm.power_state == PowerState::On;
        let reporting = up && vm.guest_agent;
        let nics: Vec<Value> = vm
            .nics
            .iter()
            .enumerate()
            .map(|(i, nic)| {
                let addresses: Vec<Value> = if reporting {
                    nic.ips
                        .iter()
                        .map(|ip| json!({"address": ip.ip, "version": ip_version(&ip.ip)}))
                        .collect()
                } else {
                    Vec::new()
                };
                json!({
                    "id": stable_uuid(&format!("{}/nic/{}", vm.id, nic.mac)),
                    "name": format!("nic{}", i + 1),
                    "interface": "virtio",
                    "plugged": nic.start_connected,
                    "ipAddress": addresses,
                    "profile": self.network(&nic.network)
                        .and_then(|n| n.profile.clone())
                        .unwrap_or_else(|| nic.network.clone()),
                    "mac": nic.mac,
                })
            })
            .collect();
        let attachments: Vec<Value> = vm
            .disks
            .iter()
            .enumerate()
            .map(|(i, d)| {
                json!({
                    "id": format!("{}-{}", vm.id, d.file),
                    "interface": "virtio_scsi",
                    "scsiReservation": false,
                    "disk": d.file,
                    "bootable": i == 0,
                })
            })
            .collect();
        let snapshots: Vec<Value> = std::iter::once(json!({
            "id": stable_uuid(&format!("{}/active", vm.id)),
            "description": "Active VM",
            "type": "active",
            "persistMemory": false,
        }))
        .chain(vm.snapshots.iter().map(|s| {
            json!({
                "id": s.id,
                "description": s.name,
                "type": "regular",
                "persistMemory": false,
                "date": s.created,
            })
        }))
        .collect();
        let (distribution, full_version) = ovirt_guest(&vm.guest_os);
        let head = json!({
            "id": vm.id,
            "parent": {"kind": "Cluster", "id": self.cluster_of(vm)},
            "revision": 1,
            "name": vm.name,
            "selfLink": self.link("vms", &vm.id),
            "path": format!("/{}/{}", self.datacenter(), vm.name),
            "description": "",
            "cluster": self.cluster_of(vm),
            "host": if up { vm.host.clone().unwrap_or_default() } else { String::new() },
            "status": if up { "up" } else { "down" },
            "osType": vm.guest_os,
            "guest": {
                "distribution": if reporting { distribution } else { "" },
                "fullVersion": if reporting { full_version } else { "" },
            },
            "bios": match vm.firmware {
                Firmware::Efi if vm.secure_boot => "q35_secure_boot",
                Firmware::Efi => "q35_ovmf",
                Firmware::Bios => "q35_sea_bios",
            },
        });
        let rest = json!({
            "cpuSockets": vm.cpu_sockets,
            "cpuCores": vm.cores_per_socket,
            "cpuThreads": 1,
            "cpuShares": 0,
            "cpuAffinity": [],
            "memory": vm.memory_mib * MIB,
            "balloonedMemory": false,
            "ioThreads": 0,
            "stateless": "",
            "haEnabled": false,
            "usbEnabled": false,
            "bootMenuEnabled": false,
            "placementPolicyAffinity": "migratable",
            "timezone": "",
            "customCpuModel": "",
            "serialNumber": vm.uuid,
            "hasIllegalImages": false,
            "numaNodeAffinity": [],
            "leaseStorageDomain": "",
            "storageErrorResumeBehaviour": "auto_resume",
            "display": "vnc",
            "nics": nics,
            "diskAttachments": attachments,
            "hostDevices": [],
            "cdroms": [],
            "watchDogs": [],
            "properties": [],
            "snapshots": snapshots,
            "guestName": vm.name,
            "concerns": vm.concerns,
            "revisionValidated": 1,
        });
        merged(head, rest)
    }

    fn openstack_vm(&self, vm: &Vm) -> Value {
        let mut addresses = Map::new();
        for nic in &vm.nics {
            let name = self
                .network(&nic.network)
                .map_or(nic.network.clone(), |n| n.name.clone());
            let entry = addresses
                .entry(name)
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = entry {
                if nic.ips.is_empty() {
                    list.push(json!({
                        "OS-EXT-IPS-MAC:mac_addr": nic.mac,
                        "OS-EXT-IPS:type": "fixed",
                        "addr": "",
                        "version": 4,
                    }));
                }
                for ip in &nic.ips {
                    list.push(json!({
                        "OS-EXT-IPS-MAC:mac_addr": nic.mac,
                        "OS-EXT-IPS:type": "fixed",
                        "addr": ip.ip,
                        "version": ip_version(&ip.ip),
                    }));
                }
            }
        }
        let attached: Vec<Value> = vm.disks.iter().map(|d| json!({"ID": d.file})).collect();
        let on = vm.power_state == PowerState::On;
        json!({
            "id": vm.id,
            "parent": {"kind": "Project", "id": self.spec.project},
            "revision": 1,
            "name": vm.name,
            "selfLink": self.link("vms", &vm.id),
            "tenantID": self.spec.project,
            "userID": "",
            "status": if on { "ACTIVE" } else { "SHUTOFF" },
            "hostID": vm.host.as_deref().map(|h| format!("{:x}", fnv(h))).unwrap_or_default(),
            "imageID": "",
            "flavorID": vm.flavor,
            "flavor": {"id": vm.flavor},
            "addresses": addresses,
            "accessIPv4": "",
            "accessIPv6": "",
            "metadata": {},
            "securityGroups": [{"name": "default"}],
            "attachedVolumes": attached,
            "fault": {"code": 0, "message": "", "details": ""},
            "tags": [],
            "keyName": "",
            "created": "2026-01-01T00:00:00Z",
            "updated": "2026-01-01T00:00:00Z",
            "concerns": vm.concerns,
            "revisionValidated": 1,
        })
    }

    fn ova_vm(&self, vm: &Vm) -> Value {
        let disks: Vec<Value> = vm
            .disks
            .iter()
            .enumerate()
            .map(|(i, d)| self.ova_disk(vm, d, i))
            .collect();
        let nics: Vec<Value> = vm
            .nics
            .iter()
            .enumerate()
            .map(|(i, nic)| {
                json!({
                    "Name": format!("Ethernet {}", i + 1),
                    "MAC": nic.mac,
                    "Network": self.network(&nic.network).map_or(nic.network.as_str(), |n| n.name.as_str()),
                    "Config": [],
                })
            })
            .collect();
        let mut networks: Vec<Value> = Vec::new();
        for nic in &vm.nics {
            if let Some(n) = self.network(&nic.network) {
                let value = json!({"ID": n.id, "Name": n.name, "Description": ""});
                if !networks.contains(&value) {
                    networks.push(value);
                }
            }
        }
        let head = json!({
            "id": vm.id,
            "parent": {"kind": "Folder", "id": ""},
            "revision": 1,
            "name": vm.name,
            "selfLink": self.link("vms", &vm.id),
            "ovfPath": self.ova_path(vm),
            "exportSource": "VMware",
            "osType": vm.guest_os,
            "uuid": vm.uuid,
            "firmware": firmware(vm.firmware),
            "secureBoot": vm.secure_boot,
            "cpuAffinity": [],
            "cpuHotAddEnabled": false,
            "cpuHotRemoveEnabled": false,
            "memoryHotAddEnabled": false,
            "faultToleranceEnabled": false,
        });
        let rest = json!({
            "cpuCount": vm.cpu_sockets * vm.cores_per_socket,
            "coresPerSocket": vm.cores_per_socket,
            "memoryMB": vm.memory_mib,
            "memoryUnits": "byte * 2^20",
            "cpuUnits": "hertz * 10^6",
            "balloonedMemory": 0,
            "ipAddress": "",
            "numaNodeAffinity": [],
            "storageUsed": vm.disks.iter().map(|d| d.capacity_gib * GIB).sum::<u64>(),
            "changeTrackingEnabled": false,
            "devices": [],
            "disks": disks,
            "nics": nics,
            "networks": networks,
            "concerns": vm.concerns,
            "revisionValidated": 1,
        });
        merged(head, rest)
    }

    /// The OVA file of a VM on the export (`/ova/<name>.ova`, as the provider server mounts it).
    fn ova_path(&self, vm: &Vm) -> String {
        ova_path(&self.spec.url, &vm.name)
    }

    fn ova_disk(&self, vm: &Vm, d: &Disk, index: usize) -> Value {
        json!({
            "ID": ova_disk_id(&self.spec.url, &vm.name, &d.file),
            "Name": d.file,
            "FilePath": self.ova_path(vm),
            "Capacity": d.capacity_gib * GIB,
            "CapacityAllocationUnits": "byte",
            "DiskId": format!("vmdisk{}", index + 1),
            "FileRef": format!("file{}", index + 1),
            "Format": "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized",
            "PopulatedSize": d.capacity_gib * GIB / 4,
        })
    }

    /// `networks`.
    pub fn networks(&self) -> Vec<Value> {
        self.spec
            .networks
            .iter()
            .map(|n| self.network_value(n))
            .collect()
    }

    pub fn network_value(&self, n: &Network) -> Value {
        match self.spec.provider_type.as_str() {
            "vsphere" => {
                let variant = if n.id.starts_with("dvportgroup-") {
                    "DvPortGroup"
                } else {
                    "Standard"
                };
                json!({
                    "id": n.id,
                    "parent": {"kind": "Folder", "id": "group-n5"},
                    "revision": 1,
                    "name": n.name,
                    "selfLink": self.link("networks", &n.id),
                    "path": format!("/{}/network/{}", self.datacenter(), n.name),
                    "variant": variant,
                    "vlanId": n.vlan.map(|v| v.to_string()).unwrap_or_default(),
                    "dvSwitch": if variant == "DvPortGroup" { json!({"kind": "DVSwitch", "id": "dvs-20"}) } else { Value::Null },
                    "key": if variant == "DvPortGroup" { n.id.clone() } else { String::new() },
                    "tag": "",
                    "host": self.spec.hosts.iter().map(|h| json!({"Host": h.id})).collect::<Vec<_>>(),
                })
            }
            "ovirt" => json!({
                "id": n.id,
                "parent": {"kind": "DataCenter", "id": self.datacenter()},
                "revision": 1,
                "name": n.name,
                "selfLink": self.link("networks", &n.id),
                "path": format!("/{}/{}", self.datacenter(), n.name),
                "dataCenter": self.datacenter(),
                "vlan": n.vlan.map(|v| v.to_string()).unwrap_or_default(),
                "usages": ["vm"],
                "profiles": [n.profile.clone().unwrap_or_else(|| n.id.clone())],
            }),
            "openstack" => json!({
                "id": n.id,
                "revision": 1,
                "name": n.name,
                "selfLink": self.link("networks", &n.id),
                "status": "ACTIVE",
                "adminStateUp": true,
                "shared": false,
                "tenantID": self.spec.project,
                "projectID": self.spec.project,
                "subnets": [stable_uuid(&format!("{}/subnet", n.id))],
                "tags": [],
            }),
            _ => json!({
                "id": n.id,
                "revision": 1,
                "name": n.name,
                "selfLink": self.link("networks", &n.id),
                "description": "",
            }),
        }
    }

    /// oVirt `nicprofiles`: one vNIC profile per network.
    pub fn nic_profiles(&self) -> Vec<Value> {
        self.spec
            .networks
            .iter()
            .map(|n| {
                let id = n.profile.clone().unwrap_or_else(|| n.id.clone());
                json!({
                    "id": id,
                    "revision": 1,
                    "name": n.name,
                    "selfLink": self.link("nicprofiles", &id),
                    "network": n.id,
                    "networkFilter": "",
                    "portMirroring": false,
                    "passThrough": false,
                    "qos": "",
                    "properties": [],
                })
            })
            .collect()
    }

    /// `hosts`.
    pub fn hosts(&self) -> Vec<Value> {
        self.spec
            .hosts
            .iter()
            .map(|h| match self.spec.provider_type.as_str() {
                "ovirt" => self.ovirt_host(h),
                "vsphere" => self.vsphere_host(h),
                // OpenStack compute nodes and OVA have no host objects of their own in Forklift.
                _ => json!({
                    "id": h.id,
                    "revision": 1,
                    "name": h.name,
                    "selfLink": self.link("hosts", &h.id),
                }),
            })
            .collect()
    }

    fn vsphere_host(&self, h: &Host) -> Value {
        let vms: Vec<Value> = self
            .spec
            .vms
            .iter()
            .filter(|vm| vm.host.as_deref() == Some(h.id.as_str()))
            .map(|vm| json!({"kind": "VM", "id": vm.id}))
            .collect();
        json!({
            "id": h.id,
            "parent": {"kind": "Cluster", "id": h.cluster},
            "revision": 1,
            "name": h.name,
            "selfLink": self.link("hosts", &h.id),
            "path": format!("/{}/host/{}/{}", self.datacenter(), h.cluster.as_deref().unwrap_or_default(), h.name),
            "cluster": h.cluster,
            "status": "green",
            "inMaintenance": h.in_maintenance,
            "managementServerIp": "",
            "thumbprint": thumbprint(&h.id),
            "timezone": "UTC",
            "cpuSockets": 2,
            "cpuCores": 32,
            "productName": "VMware ESXi",
            "productVersion": self.spec.version.clone().unwrap_or_default(),
            "networking": {},
            "networks": self.spec.networks.iter().map(|n| json!({"kind": "Network", "id": n.id})).collect::<Vec<_>>(),
            "networkAdapters": [{"name": "vmk0", "ipAddress": "", "subnetMask": "255.255.255.0", "linkSpeed": 10000, "mtu": 1500}],
            "datastores": self.spec.datastores.iter().map(|d| json!({"kind": "Datastore", "id": d.id})).collect::<Vec<_>>(),
            "vms": vms,
        })
    }

    fn ovirt_host(&self, h: &Host) -> Value {
        json!({
            "id": h.id,
            "parent": {"kind": "Cluster", "id": h.cluster},
            "revision": 1,
            "name": h.name,
            "selfLink": self.link("hosts", &h.id),
            "path": format!("/{}/{}/{}", self.datacenter(), h.cluster.as_deref().unwrap_or_default(), h.name),
            "cluster": h.cluster,
            "status": if h.in_maintenance { "maintenance" } else { "up" },
            "productName": "RHEL",
            "productVersion": self.spec.version.clone().unwrap_or_default(),
            "inMaintenance": h.in_maintenance,
            "cpuSockets": 2,
            "cpuCores": 32,
            "networkAttachments": [],
            "nics": [],
        })
    }

    /// vSphere `datastores`, oVirt `storagedomains`, OpenStack `volumetypes`.
    pub fn storage(&self) -> Vec<Value> {
        self.spec
            .datastores
            .iter()
            .map(|d| self.storage_value(d))
            .collect()
    }

    pub fn storage_value(&self, d: &Datastore) -> Value {
        match self.spec.provider_type.as_str() {
            "vsphere" => json!({
                "id": d.id,
                "parent": {"kind": "Folder", "id": "group-s6"},
                "revision": 1,
                "name": d.name,
                "selfLink": self.link("datastores", &d.id),
                "path": format!("/{}/datastore/{}", self.datacenter(), d.name),
                "type": d.kind.clone().unwrap_or_else(|| "VMFS".to_string()),
                "capacity": d.capacity_gib * GIB,
                "free": d.free_gib * GIB,
                "maintenance": "normal",
                "backingDevicesNames": [format!("naa.{:032x}", u128::from(fnv(&d.id)))],
                "nasRemoteHost": "",
                "nasRemotePath": "",
            }),
            "ovirt" => json!({
                "id": d.id,
                "parent": {"kind": "DataCenter", "id": self.datacenter()},
                "revision": 1,
                "name": d.name,
                "selfLink": self.link("storagedomains", &d.id),
                "path": format!("/{}/{}", self.datacenter(), d.name),
                "dataCenter": self.datacenter(),
                "type": "data",
                "storage": {"type": d.kind.clone().unwrap_or_else(|| "nfs".to_string())},
                "available": d.free_gib * GIB,
                "used": (d.capacity_gib - d.free_gib.min(d.capacity_gib)) * GIB,
            }),
            "openstack" => json!({
                "id": d.id,
                "revision": 1,
                "name": d.name,
                "selfLink": self.link("volumetypes", &d.id),
                "description": format!("{} volumes", d.name),
                "isPublic": true,
                "extraSpecs": {"volume_backend_name": d.kind.clone().unwrap_or_default()},
                "qosSpecID": "",
            }),
            _ => json!({
                "id": d.id,
                "revision": 1,
                "name": d.name,
                "selfLink": self.link("storages", &d.id),
            }),
        }
    }

    /// oVirt `disks`: one per disk of every VM and template.
    pub fn ovirt_disks(&self) -> Vec<Value> {
        self.spec
            .vms
            .iter()
            .flat_map(|vm| vm.disks.iter().map(move |d| self.ovirt_disk(vm, d)))
            .collect()
    }

    pub fn ovirt_disk(&self, vm: &Vm, d: &Disk) -> Value {
        let lun = d.rdm.is_some();
        json!({
            "id": d.file,
            "revision": 1,
            "name": format!("{}_Disk{}", vm.name, d.unit_number + 1),
            "selfLink": self.link("disks", &d.file),
            "shared": d.shared,
            "storageDomain": d.datastore,
            "profile": "",
            "provisionedSize": d.capacity_gib * GIB,
            "actualSize": match d.provisioning {
                crate::source::model::Provisioning::Thin => d.capacity_gib * GIB / 4,
                _ => d.capacity_gib * GIB,
            },
            "storageType": if lun { "lun" } else { "image" },
            "status": "ok",
            "backup": if vm.cbt { "incremental" } else { "none" },
            "lun": if lun { json!({"logicalUnits": {"logicalUnit": [{"id": d.lun_uuid}]}}) } else { json!({}) },
        })
    }

    /// OpenStack `volumes`: one per disk of every server.
    pub fn openstack_volumes(&self) -> Vec<Value> {
        self.spec
            .vms
            .iter()
            .flat_map(|vm| {
                vm.disks
                    .iter()
                    .enumerate()
                    .map(move |(i, d)| self.openstack_volume(vm, d, i))
            })
            .collect()
    }

    pub fn openstack_volume(&self, vm: &Vm, d: &Disk, index: usize) -> Value {
        json!({
            "id": d.file,
            "revision": 1,
            "name": format!("{}-volume-{}", vm.name, index),
            "selfLink": self.link("volumes", &d.file),
            "status": "in-use",
            "size": d.capacity_gib,
            "availabilityZone": "nova",
            "volumeType": self.datastore(&d.datastore).map_or(d.datastore.as_str(), |t| t.name.as_str()),
            "bootable": if index == 0 { "true" } else { "false" },
            "multiattach": d.shared,
            "encrypted": false,
            "attachments": [{"serverID": vm.id, "device": format!("/dev/vd{}", (b'a' + (index as u8).min(25)) as char), "attachmentID": stable_uuid(&format!("{}/{}", vm.id, d.file)), "volumeID": d.file}],
            "metadata": {},
            "tenantID": self.spec.project,
        })
    }

    pub fn flavors(&self) -> Vec<Value> {
        self.spec.flavors.iter().map(|f| self.flavor(f)).collect()
    }

    fn flavor(&self, f: &crate::source::model::Flavor) -> Value {
        json!({
            "id": f.id,
            "revision": 1,
            "name": f.name,
            "selfLink": self.link("flavors", &f.id),
            "vcpus": f.vcpus,
            "ram": f.ram_mib,
            "disk": f.disk_gib,
            "swap": 0,
            "rxtxFactor": 1.0,
            "isPublic": true,
            "ephemeral": 0,
            "extraSpecs": {},
        })
    }

    /// OVA `disks` and `storages`: the disk files of every VM (the storage map names them).
    pub fn ova_disks(&self) -> Vec<Value> {
        self.spec
            .vms
            .iter()
            .flat_map(|vm| {
                vm.disks.iter().enumerate().map(move |(i, d)| {
                    let mut value = self.ova_disk(vm, d, i);
                    if let Value::Object(map) = &mut value {
                        let id = map.get("ID").cloned().unwrap_or(Value::Null);
                        map.insert("id".into(), id.clone());
                        map.insert("name".into(), json!(d.file));
                        map.insert(
                            "selfLink".into(),
                            json!(self.link("disks", id.as_str().unwrap_or_default())),
                        );
                    }
                    value
                })
            })
            .collect()
    }

    pub fn ova_storages(&self) -> Vec<Value> {
        self.ova_disks()
            .into_iter()
            .map(|d| {
                let id = d.get("id").and_then(Value::as_str).unwrap_or_default();
                json!({
                    "id": id,
                    "revision": 1,
                    "name": d.get("name"),
                    "selfLink": self.link("storages", id),
                })
            })
            .collect()
    }

    /// Per-type counts shown on the provider in `/providers`.
    pub fn counts(&self) -> Map<String, Value> {
        let vms = self.listed_vms().count();
        let mut map = Map::new();
        map.insert("vmCount".into(), json!(vms));
        map.insert("networkCount".into(), json!(self.spec.networks.len()));
        match self.spec.provider_type.as_str() {
            "vsphere" => {
                map.insert("hostCount".into(), json!(self.spec.hosts.len()));
                map.insert("datastoreCount".into(), json!(self.spec.datastores.len()));
                map.insert(
                    "clusterCount".into(),
                    json!(self.spec.cluster_names().len()),
                );
                map.insert("datacenterCount".into(), json!(1));
            }
            "ovirt" => {
                map.insert("hostCount".into(), json!(self.spec.hosts.len()));
                map.insert(
                    "storageDomainCount".into(),
                    json!(self.spec.datastores.len()),
                );
                map.insert(
                    "clusterCount".into(),
                    json!(self.spec.cluster_names().len()),
                );
                map.insert("datacenterCount".into(), json!(1));
            }
            "openstack" => {
                map.insert("volumeTypeCount".into(), json!(self.spec.datastores.len()));
                map.insert("volumeCount".into(), json!(self.openstack_volumes().len()));
                map.insert("flavorCount".into(), json!(self.spec.flavors.len()));
                map.insert("projectCount".into(), json!(1));
                map.insert("regionCount".into(), json!(1));
            }
            _ => {
                map.insert("diskCount".into(), json!(self.ova_disks().len()));
                map.insert("storageCount".into(), json!(self.ova_disks().len()));
            }
        }
        map
    }

    /// vSphere/oVirt `clusters`.
    pub fn clusters(&self) -> Vec<Value> {
        self.spec.cluster_names()
            .into_iter()
            .map(|c| {
                json!({
                    "id": c,
                    "revision": 1,
                    "name": c,
                    "selfLink": self.link("clusters", &c),
                    "dataCenter": self.datacenter(),
                    "hosts": self.spec.hosts.iter().filter(|h| h.cluster.as_deref() == Some(c.as_str())).map(|h| json!({"kind": "Host", "id": h.id})).collect::<Vec<_>>(),
                })
            })
            .collect()
    }

    /// vSphere/oVirt `datacenters`.
    pub fn datacenters(&self) -> Vec<Value> {
        let dc = self.datacenter();
        vec![json!({
            "id": dc,
            "revision": 1,
            "name": dc,
            "selfLink": self.link("datacenters", dc),
        })]
    }
}

/// One object with the keys of `head`, then those of `rest` (json! literals this long overflow the macro
/// recursion limit, so the big shapes are written in two halves).
fn merged(head: Value, rest: Value) -> Value {
    match (head, rest) {
        (Value::Object(mut a), Value::Object(b)) => {
            a.extend(b);
            Value::Object(a)
        }
        (a, _) => a,
    }
}

fn firmware(firmware: Firmware) -> &'static str {
    match firmware {
        Firmware::Bios => "bios",
        Firmware::Efi => "efi",
    }
}

fn disk_mode(mode: DiskMode) -> &'static str {
    match mode {
        DiskMode::Persistent => "persistent",
        DiskMode::IndependentPersistent => "independent_persistent",
        DiskMode::IndependentNonpersistent => "independent_nonpersistent",
    }
}

fn ip_version(ip: &str) -> &'static str {
    if ip.contains(':') { "v6" } else { "v4" }
}

/// vSphere's display name of a guest id.
fn guest_name(guest_id: &str) -> String {
    let known = [
        ("rhel8_64Guest", "Red Hat Enterprise Linux 8 (64-bit)"),
        ("rhel9_64Guest", "Red Hat Enterprise Linux 9 (64-bit)"),
        (
            "windows2019srv_64Guest",
            "Microsoft Windows Server 2019 (64-bit)",
        ),
        (
            "windows2019srvNext_64Guest",
            "Microsoft Windows Server 2022 (64-bit)",
        ),
    ];
    known
        .iter()
        .find(|(id, _)| *id == guest_id)
        .map_or_else(|| guest_id.to_string(), |(_, name)| name.to_string())
}

fn ovirt_guest(os_type: &str) -> (&'static str, &'static str) {
    if os_type.starts_with("rhel_8") {
        ("Red Hat Enterprise Linux", "8.10")
    } else if os_type.starts_with("rhel_9") {
        ("Red Hat Enterprise Linux", "9.4")
    } else if os_type.contains("2022") {
        ("Windows Server 2022", "10.0.20348")
    } else if os_type.contains("windows") {
        ("Windows Server 2019", "10.0.17763")
    } else {
        ("", "")
    }
}

/// FNV-1a of a string: stable ids derived from lab data (not security relevant).
pub(crate) fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A UUID-shaped id that is always the same for the same text.
/// The OVA file of VM `vm` on the export of NFS URL `url` (`/ova/<name>.ova`, as the provider
/// server mounts it).
fn ova_path(url: &str, vm: &str) -> String {
    let export = url
        .rsplit_once(':')
        .map_or("/ova", |(_, path)| path)
        .trim_end_matches('/');
    format!("{export}/{vm}.ova")
}

/// The inventory id of a disk of an OVA VM: also the id of the storage a StorageMap names for it.
pub(crate) fn ova_disk_id(url: &str, vm: &str, file: &str) -> String {
    stable_uuid(&format!("{}/{file}", ova_path(url, vm)))
}

pub(crate) fn stable_uuid(text: &str) -> String {
    let hi = fnv(text);
    let lo = fnv(&format!("{text}#"));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xfff,
        lo >> 52,
        lo & 0xffff_ffff_ffff
    )
}

fn thumbprint(seed: &str) -> String {
    let a = fnv(seed);
    let b = fnv(&format!("{seed}/thumb"));
    let c = fnv(&format!("{seed}/print"));
    let bytes: Vec<u8> = a
        .to_be_bytes()
        .into_iter()
        .chain(b.to_be_bytes())
        .chain(c.to_be_bytes().into_iter().take(4))
        .collect();
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
