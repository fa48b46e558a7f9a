//! The lab's simulated guests of migrated VMs. When the simulated Forklift creates a VirtualMachine it
//! records the guest its disks carry ([`GuestImage`]: network configuration by MAC, files, block
//! devices, host key), taken from the source VM as migrated, wrong where a `misbehave` point says so.
//! A running VMI answers SSH on port 22 through the port-forward subresource ([`sshd`]), and its guest
//! answers the commands the checks run ([`shell`]).

pub mod shell;
pub mod sshd;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::faults::Misbehaviour;
use crate::source::model;

/// The password of every lab guest account (the built-in profiles' `guest_vm_*_password`).
pub const LAB_GUEST_PASSWORD: &str = "lab-guest-password";
/// The account of Linux guests (the built-in profiles' `guest_vm_linux_user`); `root` logs in too.
pub const LAB_LINUX_USER: &str = "cloud-user";
/// The account of Windows guests (`guest_vm_win_user`).
pub const LAB_WINDOWS_USER: &str = "Administrator";

/// The operating-system family of a guest, which decides its commands and accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestOs {
    Linux,
    Windows,
}

impl GuestOs {
    /// From a source guest id (`rhel8_64Guest`, `windows2019srv_64Guest`, `windows_2019x64`).
    pub fn from_guest_id(guest_id: &str) -> GuestOs {
        if guest_id.to_ascii_lowercase().contains("win") {
            GuestOs::Windows
        } else {
            GuestOs::Linux
        }
    }
}

/// One IPv4 address configured on a guest interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestAddress {
    pub ip: String,
    pub prefix: u8,
    pub gateway: Option<String>,
    /// Configured in the guest (else leased by DHCP).
    pub is_static: bool,
}

/// One network interface of the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestNic {
    pub name: String,
    pub mac: String,
    pub addresses: Vec<GuestAddress>,
}

/// A block device of the guest (`vda`, `vdb`, …) and what is on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDevice {
    pub name: String,
    pub size_bytes: u64,
    /// `xfs`, `crypto_LUKS`, … (`None`: no filesystem signature).
    pub fstype: Option<String>,
    pub uuid: Option<String>,
    /// Shared between VMs (a shared source disk).
    pub shared: bool,
}

/// What a migrated VM's guest holds.
#[derive(Debug, Clone)]
pub struct GuestImage {
    pub os: GuestOs,
    pub hostname: String,
    pub nics: Vec<GuestNic>,
    pub files: BTreeMap<String, String>,
    pub devices: Vec<BlockDevice>,
    /// Mount point → device (`/` is on the first disk's filesystem).
    pub mounts: BTreeMap<String, String>,
    /// The SSH daemon runs (off under `misbehave=…@ssh`: the port refuses connections).
    pub sshd: bool,
    /// The guest's SSH host key, made once per guest so every session sees the same.
    pub host_key: Arc<russh::keys::PrivateKey>,
}

/// The guests of the lab's migrated VMs, by VirtualMachine uid; shared by the Forklift controllers
/// (which record them) and the port-forward subresource (which serves them).
#[derive(Debug, Clone, Default)]
pub struct GuestImages {
    images: Arc<Mutex<HashMap<String, Arc<Mutex<GuestImage>>>>>,
}

impl GuestImages {
    pub fn insert(&self, vm_uid: &str, image: GuestImage) {
        self.lock()
            .insert(vm_uid.to_string(), Arc::new(Mutex::new(image)));
    }

    /// The guest of a VirtualMachine; every session to it shares (and changes) the same state.
    pub fn get(&self, vm_uid: &str) -> Option<Arc<Mutex<GuestImage>>> {
        self.lock().get(vm_uid).cloned()
    }

    pub fn remove(&self, vm_uid: &str) {
        self.lock().remove(vm_uid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Mutex<GuestImage>>>> {
        self.images.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the migration produced that the guest will see: the source VM (when it came from a lab
/// source), the target VM's interfaces, and the addresses each network gives the guest.
pub struct Migrated<'a> {
    pub source: Option<&'a model::Vm>,
    pub name: &'a str,
    pub guest_os: &'a str,
    /// The VirtualMachine's `domain.devices.interfaces` (name, macAddress).
    pub interfaces: &'a [Value],
    /// Interface name (`net-0`) → the addresses the guest shows on it.
    pub addresses: &'a BTreeMap<String, Vec<String>>,
}

impl GuestImage {
    /// The guest as migrated; `wrong` says which `misbehave` points are in force for the VM.
    pub fn migrated(migrated: &Migrated<'_>, wrong: &dyn Fn(Misbehaviour) -> bool) -> GuestImage {
        let os = GuestOs::from_guest_id(migrated.guest_os);
        let mut nics: Vec<GuestNic> = migrated
            .interfaces
            .iter()
            .enumerate()
            .map(|(index, iface)| guest_nic(migrated, os, index, iface))
            .collect();
        apply_network_faults(&mut nics, os, wrong);
        let mut files = migrated
            .source
            .map(|vm| vm.guest_files.clone())
            .unwrap_or_default();
        if wrong(Misbehaviour::GuestFiles) {
            files.clear();
        }
        let devices = block_devices(migrated.source);
        let mut mounts = BTreeMap::new();
        if let Some(root) = devices.first() {
            mounts.insert("/".to_string(), format!("/dev/{}1", root.name));
        }
        GuestImage {
            os,
            hostname: migrated.name.to_string(),
            nics,
            files,
            devices,
            mounts,
            sshd: !wrong(Misbehaviour::Ssh),
            host_key: Arc::new(sshd::new_host_key()),
        }
    }

    /// Whether `user` logs in with `password`: the account of the guest's OS (and root on Linux).
    pub fn accepts_password(&self, user: &str, password: &str) -> bool {
        let user_ok = match self.os {
            GuestOs::Linux => user == LAB_LINUX_USER || user == "root",
            GuestOs::Windows => user == LAB_WINDOWS_USER,
        };
        self.sshd && user_ok && password == LAB_GUEST_PASSWORD
    }

    /// Whether `key` (OpenSSH `type base64`) is in the user's `~/.ssh/authorized_keys`.
    pub fn accepts_key(&self, user: &str, key: &str) -> bool {
        let home = if user == "root" {
            "/root".to_string()
        } else {
            format!("/home/{user}")
        };
        let wanted: Vec<&str> = key.split_whitespace().take(2).collect();
        self.sshd
            && self
                .files
                .get(&format!("{home}/.ssh/authorized_keys"))
                .is_some_and(|keys| {
                    keys.lines()
                        .any(|line| line.split_whitespace().take(2).collect::<Vec<_>>() == wanted)
                })
    }
}

/// The guest's view of one target interface: its name and static configuration come from the source
/// NIC with the same MAC (a guest configures NICs by MAC); a NIC it does not know gets a default name.
fn guest_nic(migrated: &Migrated<'_>, os: GuestOs, index: usize, iface: &Value) -> GuestNic {
    let mac = iface["macAddress"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let source_nic = migrated
        .source
        .and_then(|vm| vm.nics.iter().find(|n| n.mac.eq_ignore_ascii_case(&mac)));
    let name = source_nic
        .and_then(|n| n.device.clone())
        .unwrap_or_else(|| default_nic_name(os, index));
    let net = iface["name"].as_str().unwrap_or_default();
    let addresses = migrated
        .addresses
        .get(net)
        .into_iter()
        .flatten()
        .map(|ip| {
            let configured = source_nic.and_then(|n| n.ips.iter().find(|s| s.ip == *ip));
            match configured {
                Some(source) => GuestAddress {
                    ip: ip.clone(),
                    prefix: source.prefix,
                    gateway: source.gateway.clone(),
                    is_static: source.is_static,
                },
                None => GuestAddress {
                    ip: ip.clone(),
                    prefix: 24,
                    gateway: lease_gateway(ip),
                    is_static: false,
                },
            }
        })
        .collect();
    GuestNic {
        name,
        mac,
        addresses,
    }
}

/// What a guest calls a NIC it has no configuration for.
fn default_nic_name(os: GuestOs, index: usize) -> String {
    match os {
        GuestOs::Linux => format!("eth{index}"),
        GuestOs::Windows if index == 0 => "Ethernet".to_string(),
        GuestOs::Windows => format!("Ethernet {}", index + 1),
    }
}

/// A DHCP lease's router: the `.1` of its /24.
fn lease_gateway(ip: &str) -> Option<String> {
    let (network, _) = ip.rsplit_once('.')?;
    Some(format!("{network}.1"))
}

/// The guest-side network faults: the first static address's mask or gateway, the first NIC's name.
fn apply_network_faults(nics: &mut [GuestNic], os: GuestOs, wrong: &dyn Fn(Misbehaviour) -> bool) {
    if let Some(address) = nics
        .iter_mut()
        .flat_map(|n| n.addresses.iter_mut())
        .find(|a| a.is_static)
    {
        if wrong(Misbehaviour::StaticMask) {
            address.prefix = if address.prefix >= 16 {
                address.prefix - 8
            } else {
                address.prefix + 8
            };
        }
        if wrong(Misbehaviour::StaticGateway) {
            address.gateway = Some(
                match address.gateway.as_deref().and_then(|g| g.rsplit_once('.')) {
                    Some((network, last)) if last != "254" => format!("{network}.254"),
                    Some((network, _)) => format!("{network}.253"),
                    None => "192.0.2.254".to_string(),
                },
            );
        }
    }
    if wrong(Misbehaviour::NicName)
        && let Some(first) = nics.first_mut()
    {
        let renamed = default_nic_name(os, 9);
        first.name = if first.name == renamed {
            default_nic_name(os, 8)
        } else {
            renamed
        };
    }
}

/// The guest's disks in source order: the first carries the root XFS filesystem.
fn block_devices(source: Option<&model::Vm>) -> Vec<BlockDevice> {
    let disks = source.map(|vm| vm.disks.as_slice()).unwrap_or_default();
    let sizes: Vec<(u64, bool)> = if disks.is_empty() {
        vec![(30, false)]
    } else {
        disks.iter().map(|d| (d.capacity_gib, d.shared)).collect()
    };
    sizes
        .iter()
        .enumerate()
        .map(|(index, (gib, shared))| BlockDevice {
            name: format!("vd{}", (b'a' + (index % 26) as u8) as char),
            size_bytes: gib * 1024 * 1024 * 1024,
            fstype: (index == 0).then(|| "xfs".to_string()),
            uuid: (index == 0).then(|| format!("6f1c2a3e-0000-4000-8000-{:012x}", index + 1)),
            shared: *shared,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source() -> model::Vm {
        serde_json::from_value(json!({
            "id": "vm-1", "name": "rhel8", "power_state": "on", "memory_mib": 1024,
            "guest_os": "rhel8_64Guest", "uuid": "u",
            "disks": [{"key": 2000, "file": "[ds] a.vmdk", "datastore": "ds", "capacity_gib": 30, "unit_number": 0}],
            "nics": [{"mac": "00:50:56:A1:10:01", "network": "n1", "device": "ens192",
                      "ips": [{"ip": "10.10.1.21", "prefix": 24, "gateway": "10.10.1.1", "static": true}]}],
            "guest_files": {"/root/marker": "m1"}
        }))
        .unwrap()
    }

    fn image(wrong: &dyn Fn(Misbehaviour) -> bool, ips: &[&str]) -> GuestImage {
        let vm = source();
        let interfaces = vec![json!({"name": "net-0", "macAddress": "00:50:56:a1:10:01"})];
        let addresses = BTreeMap::from([(
            "net-0".to_string(),
            ips.iter().map(|s| s.to_string()).collect(),
        )]);
        GuestImage::migrated(
            &Migrated {
                source: Some(&vm),
                name: "rhel8",
                guest_os: &vm.guest_os,
                interfaces: &interfaces,
                addresses: &addresses,
            },
            wrong,
        )
    }

    #[test]
    fn the_guest_keeps_what_the_source_had() {
        let guest = image(&|_| false, &["10.10.1.21"]);
        assert_eq!(guest.os, GuestOs::Linux);
        assert_eq!(guest.nics[0].name, "ens192");
        assert_eq!(
            guest.nics[0].addresses,
            vec![GuestAddress {
                ip: "10.10.1.21".into(),
                prefix: 24,
                gateway: Some("10.10.1.1".into()),
                is_static: true
            }]
        );
        assert_eq!(guest.files["/root/marker"], "m1");
        assert_eq!(guest.devices[0].fstype.as_deref(), Some("xfs"));
        assert!(guest.sshd);
        assert!(guest.accepts_password(LAB_LINUX_USER, LAB_GUEST_PASSWORD));
        assert!(!guest.accepts_password(LAB_LINUX_USER, "wrong"));
        assert!(!guest.accepts_password(LAB_WINDOWS_USER, LAB_GUEST_PASSWORD));
    }

    #[test]
    fn each_guest_fault_changes_one_fact() {
        let only = |point| move |p| p == point;
        let lost = image(&|_| false, &["10.128.0.9"]);
        assert_eq!(lost.nics[0].addresses[0].prefix, 24);
        assert!(!lost.nics[0].addresses[0].is_static);
        let mask = image(&only(Misbehaviour::StaticMask), &["10.10.1.21"]);
        assert_eq!(mask.nics[0].addresses[0].prefix, 16);
        assert_eq!(
            mask.nics[0].addresses[0].gateway.as_deref(),
            Some("10.10.1.1")
        );
        let gateway = image(&only(Misbehaviour::StaticGateway), &["10.10.1.21"]);
        assert_eq!(
            gateway.nics[0].addresses[0].gateway.as_deref(),
            Some("10.10.1.254")
        );
        assert_eq!(gateway.nics[0].addresses[0].prefix, 24);
        let renamed = image(&only(Misbehaviour::NicName), &["10.10.1.21"]);
        assert_eq!(renamed.nics[0].name, "eth9");
        let marker = image(&only(Misbehaviour::GuestFiles), &["10.10.1.21"]);
        assert!(marker.files.is_empty());
        let refused = image(&only(Misbehaviour::Ssh), &["10.10.1.21"]);
        assert!(!refused.sshd);
        assert!(!refused.accepts_password(LAB_LINUX_USER, LAB_GUEST_PASSWORD));
    }
}
