//! The source model in the engine's shapes: data centers, clusters, hosts, templates, VMs, NICs, disks,
//! disk attachments, snapshots, vNIC profiles, networks, storage domains and events, with the engine's
//! `href`s and `link`s. Ids are the ones the lab's Forklift inventory hands out for the same objects.

use crate::inventory::render::{fnv, stable_uuid};
use crate::source::model::{
    Datastore, Disk, Firmware, Host, Network, PowerState, Provisioning, SourceProviderSpec, Vm,
    VmEvent,
};

use super::node::Node;

/// Where the engine's API lives on its host.
pub const API: &str = "/ovirt-engine/api";

const GIB: u64 = 1024 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

/// The engine's version the lab reports when the lab file names none.
const DEFAULT_VERSION: &str = "4.5";

pub fn href(collection: &str, id: &str) -> String {
    format!("{API}/{collection}/{id}")
}

/// A VM, its template, or one of their sub-objects: which collection the object is under.
pub fn owner_collection(vm: &Vm) -> &'static str {
    if vm.template { "templates" } else { "vms" }
}

/// One provider's inventory, as the engine shows it.
pub struct View<'a> {
    pub spec: &'a SourceProviderSpec,
}

impl View<'_> {
    /// The data center's id and name (the inventory uses the name as its id too).
    pub fn datacenter(&self) -> &str {
        self.spec.datacenter.as_deref().unwrap_or("Datacenter")
    }

    fn version(&self) -> (u32, u32) {
        let text = self.spec.version.as_deref().unwrap_or(DEFAULT_VERSION);
        let mut parts = text.split('.').map(|p| p.parse().unwrap_or(0));
        (parts.next().unwrap_or(4), parts.next().unwrap_or(5))
    }

    /// Cluster ids (their names, as in the inventory), sorted.
    pub fn clusters(&self) -> Vec<String> {
        let names = self.spec.cluster_names();
        if names.is_empty() {
            // Hosts that name no cluster stand in oVirt's `Default` one.
            return vec!["Default".into()];
        }
        names
    }

    pub fn cluster_of(&self, vm: &Vm) -> String {
        vm.host
            .as_deref()
            .and_then(|h| self.spec.hosts.iter().find(|x| x.id == h))
            .or_else(|| self.spec.hosts.first())
            .and_then(|h| h.cluster.clone())
            .unwrap_or_else(|| "Default".to_string())
    }

    /// The vNIC profile id of a network (its own profile, else the network id, as the inventory says).
    pub fn profile_id(network: &Network) -> String {
        network
            .profile
            .clone()
            .unwrap_or_else(|| network.id.clone())
    }

    pub fn network_of_profile(&self, profile: &str) -> Option<&Network> {
        self.spec
            .networks
            .iter()
            .find(|n| Self::profile_id(n) == profile)
    }

    pub fn api(&self) -> Node {
        let (major, minor) = self.version();
        let links = [
            "clusters",
            "datacenters",
            "disks",
            "events",
            "hosts",
            "networks",
            "storagedomains",
            "templates",
            "vms",
            "vnicprofiles",
        ]
        .map(|rel| Node::link(&format!("{API}/{rel}"), rel));
        let vms = self.spec.vms.iter().filter(|vm| !vm.template);
        let active = vms
            .clone()
            .filter(|vm| vm.power_state == PowerState::On)
            .count();
        let summary = Node::new("summary")
            .child(count("hosts", self.spec.hosts.len(), self.spec.hosts.len()))
            .child(count(
                "storage_domains",
                self.spec.datastores.len(),
                self.spec.datastores.len(),
            ))
            .child(count("vms", active, vms.count()));
        Node::new("api")
            .children(links)
            .child(
                Node::new("product_info")
                    .field("name", "oVirt Engine")
                    .field("vendor", "ovirt.org")
                    .child(
                        version_node(major, minor)
                            .field("full_version", format!("{major}.{minor}.0-1.el8")),
                    ),
            )
            .child(summary)
            .field("time", crate::clock::now_rfc3339())
    }

    pub fn data_center(&self) -> Node {
        let id = self.datacenter();
        let (major, minor) = self.version();
        let this = href("datacenters", id);
        Node::new("data_center")
            .attr("href", &this)
            .attr("id", id)
            .field("name", id)
            .field("description", "")
            .child(Node::link(&format!("{this}/clusters"), "clusters"))
            .child(Node::link(&format!("{this}/networks"), "networks"))
            .child(Node::link(
                &format!("{this}/storagedomains"),
                "storagedomains",
            ))
            .field("local", false)
            .field("quota_mode", "disabled")
            .field("status", "up")
            .field("storage_format", "v5")
            .child(Node::new("supported_versions").child(version_node(major, minor).listed()))
            .child(version_node(major, minor))
    }

    pub fn cluster(&self, id: &str) -> Node {
        let (major, minor) = self.version();
        Node::new("cluster")
            .attr("href", href("clusters", id))
            .attr("id", id)
            .field("name", id)
            .field("description", "")
            .child(
                Node::new("cpu")
                    .field("architecture", "x86_64")
                    .field("type", "Secure Intel Cascadelake Server Family"),
            )
            .child(version_node(major, minor))
            .child(self.data_center_ref())
    }

    fn data_center_ref(&self) -> Node {
        let id = self.datacenter();
        Node::reference("data_center", &href("datacenters", id), id)
    }

    fn cluster_ref(&self, vm: &Vm) -> Node {
        let cluster = self.cluster_of(vm);
        Node::reference("cluster", &href("clusters", &cluster), &cluster)
    }

    pub fn host(&self, host: &Host) -> Node {
        let cluster = host.cluster.clone().unwrap_or_else(|| "Default".into());
        Node::new("host")
            .attr("href", href("hosts", &host.id))
            .attr("id", &host.id)
            .field("name", &host.name)
            .field("address", &host.name)
            .field(
                "status",
                if host.in_maintenance {
                    "maintenance"
                } else {
                    "up"
                },
            )
            .field("type", "rhel")
            .child(Node::reference(
                "cluster",
                &href("clusters", &cluster),
                &cluster,
            ))
    }

    /// A VM or a template: the fields both share, then each one's own.
    pub fn vm(&self, vm: &Vm) -> Node {
        let collection = owner_collection(vm);
        let this = href(collection, &vm.id);
        let kind = if vm.template { "template" } else { "vm" };
        let mut node = Node::new(kind).attr("href", &this).attr("id", &vm.id);
        if !vm.template {
            let actions =
                ["start", "stop", "shutdown"].map(|rel| Node::link(&format!("{this}/{rel}"), rel));
            node = node.child(Node::new("actions").children(actions));
        }
        node = node
            .field("name", &vm.name)
            .field("description", "")
            .child(Node::link(
                &format!("{this}/diskattachments"),
                "diskattachments",
            ))
            .child(Node::link(&format!("{this}/nics"), "nics"));
        if !vm.template {
            node = node.child(Node::link(&format!("{this}/snapshots"), "snapshots"));
        }
        node = node
            .child(Node::new("bios").field("type", bios_type(vm)))
            .child(
                Node::new("cpu").field("architecture", "x86_64").child(
                    Node::new("topology")
                        .field("cores", vm.cores_per_socket)
                        .field("sockets", vm.cpu_sockets)
                        .field("threads", 1),
                ),
            )
            .field("memory", vm.memory_mib * MIB)
            .child(
                Node::new("memory_policy")
                    .field("guaranteed", vm.memory_mib * MIB)
                    .field("max", vm.memory_mib * MIB * 4),
            )
            .child(Node::new("os").field("type", &vm.guest_os))
            .field("stateless", false)
            .field("tpm_enabled", vm.tpm)
            .field("type", "server")
            .child(self.cluster_ref(vm));
        if vm.template {
            return node.field("status", "ok").child(
                Node::new("version")
                    .field("version_name", "base version")
                    .field("version_number", 1),
            );
        }
        let up = vm.power_state == PowerState::On;
        node = node
            .child(
                Node::new("serial_number")
                    .field("policy", "custom")
                    .field("value", &vm.uuid),
            )
            .field("status", if up { "up" } else { "down" });
        if up && vm.guest_agent {
            // What the guest agent reports while the VM runs.
            let family = if vm.is_windows() { "Windows" } else { "Linux" };
            node = node.child(Node::new("guest_operating_system").field("family", family));
        }
        match vm.host.as_deref().filter(|_| up) {
            Some(host) => node.child(Node::reference("host", &href("hosts", host), host)),
            None => node,
        }
    }

    pub fn nic_id(vm: &Vm, mac: &str) -> String {
        stable_uuid(&format!("{}/nic/{mac}", vm.id))
    }

    pub fn nics(&self, vm: &Vm) -> Vec<Node> {
        (0..vm.nics.len()).map(|i| self.nic(vm, i)).collect()
    }

    pub fn nic(&self, vm: &Vm, index: usize) -> Node {
        let nic = &vm.nics[index];
        let id = Self::nic_id(vm, &nic.mac);
        let owner = href(owner_collection(vm), &vm.id);
        let profile = self
            .spec
            .networks
            .iter()
            .find(|n| n.id == nic.network)
            .map_or_else(|| nic.network.clone(), Self::profile_id);
        let owner_ref =
            Node::reference(if vm.template { "template" } else { "vm" }, &owner, &vm.id);
        let node = Node::new("nic")
            .attr("href", format!("{owner}/nics/{id}"))
            .attr("id", &id)
            .field("name", format!("nic{}", index + 1))
            .field("interface", "virtio")
            .field("linked", true)
            .child(Node::new("mac").field("address", &nic.mac))
            .field("plugged", nic.start_connected)
            .child(Node::reference(
                "vnic_profile",
                &href("vnicprofiles", &profile),
                &profile,
            ))
            .child(owner_ref);
        let reporting = vm.power_state == PowerState::On && vm.guest_agent && !nic.ips.is_empty();
        if !reporting {
            return node;
        }
        let ips = nic.ips.iter().map(|ip| {
            let mut address = Node::new("ip")
                .field("address", &ip.ip)
                .field("netmask", netmask(ip.prefix))
                .field("version", if ip.ip.contains(':') { "v6" } else { "v4" });
            if let Some(gateway) = &ip.gateway {
                address = address.field("gateway", gateway);
            }
            address.listed()
        });
        let device = Node::new("reported_device")
            .field("name", nic.device.as_deref().unwrap_or("eth0"))
            .field("type", "network")
            .child(Node::new("mac").field("address", &nic.mac))
            .child(Node::new("ips").children(ips))
            .listed();
        node.child(Node::new("reported_devices").child(device))
    }

    pub fn disk_name(vm: &Vm, disk: &Disk) -> String {
        format!("{}_Disk{}", vm.name, disk.unit_number + 1)
    }

    pub fn disk(&self, vm: &Vm, disk: &Disk) -> Node {
        let size = disk.capacity_gib * GIB;
        let sparse = disk.provisioning == Provisioning::Thin;
        let lun = disk.rdm.is_some();
        Node::new("disk")
            .attr("href", href("disks", &disk.file))
            .attr("id", &disk.file)
            .field("name", Self::disk_name(vm, disk))
            .field("actual_size", if sparse { size / 4 } else { size })
            .field("alias", Self::disk_name(vm, disk))
            .field("backup", if vm.cbt { "incremental" } else { "none" })
            .field("content_type", "data")
            .field("format", if sparse { "cow" } else { "raw" })
            .field("provisioned_size", size)
            .field("shareable", disk.shared)
            .field("sparse", sparse)
            .field("status", "ok")
            .field("storage_type", if lun { "lun" } else { "image" })
            .field("total_size", if sparse { size / 4 } else { size })
            .field("wipe_after_delete", false)
            .child(
                Node::new("storage_domains").child(
                    Node::reference(
                        "storage_domain",
                        &href("storagedomains", &disk.datastore),
                        &disk.datastore,
                    )
                    .listed(),
                ),
            )
    }

    /// A disk attachment: its id is the disk's, as the engine's are.
    pub fn disk_attachment(&self, vm: &Vm, index: usize) -> Node {
        let disk = &vm.disks[index];
        let owner = href(owner_collection(vm), &vm.id);
        let owner_kind = if vm.template { "template" } else { "vm" };
        Node::new("disk_attachment")
            .attr("href", format!("{owner}/diskattachments/{}", disk.file))
            .attr("id", &disk.file)
            .field("active", true)
            .field("bootable", index == 0)
            .field("interface", "virtio_scsi")
            .field("pass_discard", false)
            .field("read_only", false)
            .field("uses_scsi_reservation", false)
            .child(Node::reference(
                "disk",
                &href("disks", &disk.file),
                &disk.file,
            ))
            .child(Node::reference(owner_kind, &owner, &vm.id))
    }

    pub fn active_snapshot_id(vm: &Vm) -> String {
        stable_uuid(&format!("{}/active", vm.id))
    }

    /// The VM's snapshots: the active one first, then the taken ones, oldest first.
    pub fn snapshots(&self, vm: &Vm) -> Vec<Node> {
        let owner = href("vms", &vm.id);
        let snapshot = |id: &str, description: &str, kind: &str, date: Option<&str>| {
            let node = Node::new("snapshot")
                .attr("href", format!("{owner}/snapshots/{id}"))
                .attr("id", id)
                .field("description", description);
            let node = match date {
                Some(date) => node.field("date", date),
                None => node,
            };
            node.field("persist_memorystate", false)
                .field("snapshot_status", "ok")
                .field("snapshot_type", kind)
                .child(Node::reference("vm", &owner, &vm.id))
        };
        std::iter::once(snapshot(
            &Self::active_snapshot_id(vm),
            "Active VM",
            "active",
            None,
        ))
        .chain(
            vm.snapshots
                .iter()
                .map(|s| snapshot(&s.id, &s.name, "regular", Some(&s.created))),
        )
        .collect()
    }

    pub fn vnic_profile(&self, network: &Network) -> Node {
        let id = Self::profile_id(network);
        Node::new("vnic_profile")
            .attr("href", href("vnicprofiles", &id))
            .attr("id", &id)
            .field("name", &network.name)
            .child(Node::new("pass_through").field("mode", "disabled"))
            .field("port_mirroring", false)
            .child(Node::reference(
                "network",
                &href("networks", &network.id),
                &network.id,
            ))
    }

    pub fn network(&self, network: &Network) -> Node {
        let this = href("networks", &network.id);
        let node = Node::new("network")
            .attr("href", &this)
            .attr("id", &network.id)
            .field("name", &network.name)
            .field("description", "")
            .child(Node::link(&format!("{this}/vnicprofiles"), "vnicprofiles"))
            .field("mtu", 0)
            .field("stp", false)
            .child(Node::new("usages").child(Node::text("usage", "vm").listed()))
            .child(self.data_center_ref());
        match network.vlan {
            Some(vlan) => node.child(Node::new("vlan").attr("id", vlan)),
            None => node,
        }
    }

    pub fn storage_domain(&self, datastore: &Datastore) -> Node {
        let this = href("storagedomains", &datastore.id);
        let used = datastore.capacity_gib - datastore.free_gib.min(datastore.capacity_gib);
        Node::new("storage_domain")
            .attr("href", &this)
            .attr("id", &datastore.id)
            .field("name", &datastore.name)
            .child(Node::link(&format!("{this}/disks"), "disks"))
            .field("available", datastore.free_gib * GIB)
            .field("used", used * GIB)
            .field("committed", used * GIB)
            .field("external_status", "ok")
            .field(
                "master",
                self.spec
                    .datastores
                    .first()
                    .is_some_and(|d| d.id == datastore.id),
            )
            .child(Node::new("storage").field("type", datastore.kind.as_deref().unwrap_or("nfs")))
            .field("storage_format", "v5")
            .field("type", "data")
            .child(Node::new("data_centers").child(self.data_center_ref().listed()))
    }

    /// An event's id: a number, the same for the same entry of the same VM's log, growing with the
    /// log as the engine's do (events of one second are told apart by it).
    pub fn event_id(vm: &Vm, index: usize) -> u64 {
        (1 + fnv(&vm.id) % 1_000_000) * 100_000 + index as u64
    }

    pub fn event(&self, vm: &Vm, index: usize) -> Node {
        let event = &vm.events[index];
        let id = Self::event_id(vm, index);
        let node = Node::new("event")
            .attr("href", href("events", &id.to_string()))
            .attr("id", id)
            .field("description", &event.description)
            .field("code", audit_code(event).map_or(-1, i64::from))
            .field("custom_id", -1)
            .field("flood_rate", 30)
            .field("origin", "oVirt")
            .field("severity", "normal")
            .field("time", &event.time)
            .child(self.cluster_ref(vm))
            .child(self.data_center_ref());
        node.child(Node::reference("vm", &href("vms", &vm.id), &vm.id))
    }
}

/// The audit-log code of an event: the model's own, else the engine's code for its type.
pub fn audit_code(event: &VmEvent) -> Option<u32> {
    event.code.or(match event.kind.as_str() {
        "USER_RUN_VM" => Some(32),
        "USER_STOP_VM" => Some(33),
        "USER_INITIATED_SHUTDOWN_VM" => Some(73),
        _ => None,
    })
}

fn count(name: &str, active: usize, total: usize) -> Node {
    Node::new(name)
        .field("active", active)
        .field("total", total)
}

fn version_node(major: u32, minor: u32) -> Node {
    Node::new("version")
        .field("major", major)
        .field("minor", minor)
}

fn bios_type(vm: &Vm) -> &'static str {
    match vm.firmware {
        Firmware::Efi if vm.secure_boot => "q35_secure_boot",
        Firmware::Efi => "q35_ovmf",
        Firmware::Bios => "q35_sea_bios",
    }
}

/// A prefix length as a dotted IPv4 mask (`24` → `255.255.255.0`); IPv6 keeps the length.
fn netmask(prefix: u8) -> String {
    if prefix > 32 {
        return prefix.to_string();
    }
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    };
    std::net::Ipv4Addr::from(mask).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_codes() {
        assert_eq!(netmask(24), "255.255.255.0");
        assert_eq!(netmask(0), "0.0.0.0");
        let event = |kind: &str, code| VmEvent {
            kind: kind.into(),
            code,
            description: String::new(),
            time: String::new(),
        };
        assert_eq!(audit_code(&event("USER_STOP_VM", Some(33))), Some(33));
        assert_eq!(audit_code(&event("USER_RUN_VM", None)), Some(32));
        assert_eq!(audit_code(&event("SOMETHING_ELSE", None)), None);
    }
}
