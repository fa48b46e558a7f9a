//! The lab file: source inventories of each provider type (vSphere, oVirt, OpenStack, OVA), as a
//! versioned YAML document. OpenShift sources are not described here: they are real KubeVirt
//! VirtualMachines in the lab's own API.
//!
//! One model serves every type; the inventory service renders it in each type's own shape
//! (forklift-api.md §7.4).

use serde::{Deserialize, Serialize};

/// The lab file format version this build reads.
pub const LAB_FILE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LabFile {
    pub version: u32,
    #[serde(default)]
    pub description: Option<String>,
    pub providers: Vec<SourceProviderSpec>,
}

/// One source endpoint (a vCenter, an oVirt engine, a Keystone, an NFS export of OVAs).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceProviderSpec {
    /// A key of the lab file, e.g. `vsphere`.
    pub name: String,
    /// `vsphere`, `ovirt`, `openstack` or `ova`.
    #[serde(rename = "type")]
    pub provider_type: String,
    /// The URL a Provider must carry to reach this source (`spec.url`).
    pub url: String,
    /// Credentials the connection test accepts (`user`/`username` and `password` of the Secret).
    /// Absent for OVA, which has no credentials.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Product version the inventory reports, e.g. `8.0.3`.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub datacenter: Option<String>,
    #[serde(default)]
    pub hosts: Vec<Host>,
    #[serde(default)]
    pub networks: Vec<Network>,
    /// vSphere datastores, oVirt storage domains, OpenStack volume types, OVA storages.
    #[serde(default)]
    pub datastores: Vec<Datastore>,
    #[serde(default)]
    pub vms: Vec<Vm>,
    /// OpenStack flavors (CPU and memory of servers come from them).
    #[serde(default)]
    pub flavors: Vec<Flavor>,
    /// OpenStack project (tenant) id the servers belong to.
    #[serde(default)]
    pub project: Option<String>,
    /// OpenStack region name.
    #[serde(default)]
    pub region: Option<String>,
    /// OpenStack project name (Keystone scope; default `admin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    /// OpenStack block storage and images beyond the volumes attached to servers.
    #[serde(default, skip_serializing_if = "OpenstackStorage::is_empty")]
    pub openstack: OpenstackStorage,
    /// The certificate the source's HTTPS endpoint presents; absent: one from the lab's CA for the
    /// URL's host, 127.0.0.1 and localhost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<SourceTls>,
}

impl SourceProviderSpec {
    /// The clusters its hosts name, each once, sorted (vSphere and oVirt group hosts by them).
    pub fn cluster_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .hosts
            .iter()
            .filter_map(|h| h.cluster.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// How a source's serving certificate is made, so that trust and mismatch can be tested.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceTls {
    /// Signed by a CA of the source's own instead of the lab's (the lab's CA does not verify it).
    #[serde(default)]
    pub own_ca: bool,
    /// The names the certificate is valid for instead of the URL's host, 127.0.0.1 and localhost
    /// (a name the URL does not use makes a host-name mismatch).
    #[serde(default)]
    pub names: Option<Vec<String>>,
}

/// What OpenStack's Cinder and Glance hold besides the servers: the volumes attached to a server are
/// its `disks` (volume id = `file`, volume type = `datastore`, boot order = order); a [`Volume`]
/// record adds what Cinder keeps of a volume (name, origin, metadata), and is the whole volume while
/// no server has it attached.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpenstackStorage {
    #[serde(default)]
    pub volumes: Vec<Volume>,
    #[serde(default)]
    pub snapshots: Vec<VolumeSnapshot>,
    #[serde(default)]
    pub images: Vec<Image>,
}

impl OpenstackStorage {
    pub fn is_empty(&self) -> bool {
        self.volumes.is_empty() && self.snapshots.is_empty() && self.images.is_empty()
    }
}

/// A Cinder volume's record. Size and type are the volume's own while it is detached; attached, the
/// server's disk says them.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub size_gib: u64,
    /// Volume type id (a `datastores` entry).
    pub volume_type: String,
    /// The snapshot the volume was created from.
    #[serde(default)]
    pub snapshot_id: Option<String>,
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, String>,
    /// RFC 3339.
    pub created: String,
    /// Nova deletes the volume with the server it is attached to.
    #[serde(default)]
    pub delete_on_termination: bool,
    /// The guest whose boot disk the volume's bytes are, when it holds one.
    #[serde(default)]
    pub guest: Option<VolumeGuest>,
}

/// A Cinder snapshot of a volume.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeSnapshot {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub volume_id: String,
    pub size_gib: u64,
    pub volume_type: String,
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, String>,
    pub created: String,
    #[serde(default)]
    pub guest: Option<VolumeGuest>,
}

/// The guest a boot volume holds: what a server booted from it runs (the image metadata and the
/// files of its disk).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeGuest {
    pub guest_os: String,
    #[serde(default)]
    pub firmware: Firmware,
    #[serde(default)]
    pub secure_boot: bool,
    #[serde(default)]
    pub tpm: bool,
    #[serde(default)]
    pub guest_agent: bool,
    #[serde(default)]
    pub tools: ToolsStatus,
    #[serde(default)]
    pub guest_files: std::collections::BTreeMap<String, String>,
}

impl VolumeGuest {
    /// The guest of a VM's boot disk.
    pub fn of(vm: &Vm) -> VolumeGuest {
        VolumeGuest {
            guest_os: vm.guest_os.clone(),
            firmware: vm.firmware,
            secure_boot: vm.secure_boot,
            tpm: vm.tpm,
            guest_agent: vm.guest_agent,
            tools: vm.tools,
            guest_files: vm.guest_files.clone(),
        }
    }
}

/// A Glance image; Nova's `createImage` of a volume-backed server makes one whose block device
/// mapping names a snapshot of each of the server's volumes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub created: String,
    #[serde(default)]
    pub min_disk_gib: u64,
    /// The server the image is a snapshot of.
    #[serde(default)]
    pub instance_uuid: Option<String>,
    /// Volume snapshot ids, in the server's boot order.
    #[serde(default)]
    pub snapshot_ids: Vec<String>,
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// An OpenStack flavor.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub vcpus: u32,
    pub ram_mib: u64,
    #[serde(default)]
    pub disk_gib: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub in_maintenance: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub vlan: Option<u16>,
    /// oVirt vNIC profile id of this network (NICs reference the profile, maps the network).
    #[serde(default)]
    pub profile: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Datastore {
    pub id: String,
    pub name: String,
    /// `VMFS`, `NFS`, `vsan`, `VVOL` (vSphere); `data` (oVirt); the volume type (OpenStack).
    #[serde(default)]
    pub kind: Option<String>,
    pub capacity_gib: u64,
    pub free_gib: u64,
    /// Backed by an array whose copy-offload (XCOPY/VAAI) works with the lab's storage class.
    #[serde(default)]
    pub xcopy: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerState {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    #[default]
    Bios,
    Efi,
}

/// vSphere guest tools state, which Forklift's `GuestToolsIssue` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ToolsStatus {
    #[default]
    Ok,
    NotInstalled,
    NotRunning,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Vm {
    /// vSphere MoRef (`vm-1001`), oVirt/OpenStack UUID, OVA id.
    pub id: String,
    pub name: String,
    /// A template (oVirt clones from templates; vSphere may too).
    #[serde(default)]
    pub template: bool,
    pub power_state: PowerState,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default = "one")]
    pub cpu_sockets: u32,
    #[serde(default = "one")]
    pub cores_per_socket: u32,
    pub memory_mib: u64,
    #[serde(default)]
    pub firmware: Firmware,
    #[serde(default)]
    pub secure_boot: bool,
    #[serde(default)]
    pub tpm: bool,
    /// e.g. `rhel8_64Guest`, `windows2019srv_64Guest`.
    pub guest_os: String,
    /// The BIOS UUID (vSphere serial, oVirt firmware uuid).
    pub uuid: String,
    #[serde(default)]
    pub tools: ToolsStatus,
    /// The guest runs an agent (qemu-guest-agent / VMware tools) that reports IPs once migrated.
    #[serde(default)]
    pub guest_agent: bool,
    /// Changed block tracking (vSphere warm migrations need it).
    #[serde(default)]
    pub cbt: bool,
    #[serde(default)]
    pub nested_virtualization: bool,
    /// OpenStack flavor id.
    #[serde(default)]
    pub flavor: Option<String>,
    pub disks: Vec<Disk>,
    pub nics: Vec<Nic>,
    #[serde(default)]
    pub snapshots: Vec<Snapshot>,
    /// Inventory concerns (`{id, label, category, assessment}`); Critical ones block a Plan.
    #[serde(default)]
    pub concerns: Vec<Concern>,
    /// Files in the guest (path → content), written by the suite through the lab's guest-file API;
    /// a clone starts with its source's files, a migrated VM carries them over.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub guest_files: std::collections::BTreeMap<String, String>,
    /// The hypervisor's event log for this VM (power actions), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<VmEvent>,
}

/// One entry of a source VM's event log, as oVirt's audit log names them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VmEvent {
    /// `USER_RUN_VM`, `USER_STOP_VM` (oVirt code 33, a hard power-off), `USER_INITIATED_SHUTDOWN_VM`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
    pub description: String,
    pub time: String,
}

/// How a VM's power changes, which decides the event it leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    Start,
    /// A hard power-off (oVirt `USER_STOP_VM`).
    Stop,
    /// A guest shutdown through the hypervisor (oVirt `USER_INITIATED_SHUTDOWN_VM`).
    Shutdown,
}

impl PowerAction {
    pub fn state(self) -> PowerState {
        match self {
            PowerAction::Start => PowerState::On,
            PowerAction::Stop | PowerAction::Shutdown => PowerState::Off,
        }
    }

    /// The event the action leaves on the VM.
    pub fn event(self, vm: &str, time: String) -> VmEvent {
        let (kind, code, description) = match self {
            PowerAction::Start => ("USER_RUN_VM", None, format!("VM {vm} started")),
            PowerAction::Stop => (
                "USER_STOP_VM",
                Some(33),
                format!("VM {vm} powered off by user"),
            ),
            PowerAction::Shutdown => (
                "USER_INITIATED_SHUTDOWN_VM",
                None,
                format!("VM shutdown initiated on VM {vm}"),
            ),
        };
        VmEvent {
            kind: kind.to_string(),
            code,
            description,
            time,
        }
    }
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Provisioning {
    #[default]
    Thin,
    ThickLazy,
    ThickEager,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DiskMode {
    #[default]
    Persistent,
    IndependentPersistent,
    IndependentNonpersistent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RdmMode {
    Virtual,
    Physical,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    /// vSphere device key (2000, 2001, ...); the disk's id elsewhere.
    pub key: i64,
    /// vSphere `[datastore] folder/file.vmdk`; the disk id or file name elsewhere.
    pub file: String,
    /// Id of the datastore / storage domain / volume type holding the disk.
    pub datastore: String,
    pub capacity_gib: u64,
    #[serde(default)]
    pub provisioning: Provisioning,
    #[serde(default)]
    pub mode: DiskMode,
    #[serde(default)]
    pub rdm: Option<RdmMode>,
    #[serde(default)]
    pub shared: bool,
    #[serde(default = "default_controller")]
    pub controller_key: i64,
    pub unit_number: i64,
    /// The LUN behind an RDM disk (`naa.…`).
    #[serde(default)]
    pub lun_uuid: Option<String>,
}

fn default_controller() -> i64 {
    1000
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Nic {
    pub mac: String,
    /// Id of the network.
    pub network: String,
    #[serde(default = "yes")]
    pub start_connected: bool,
    /// Guest NIC name (`eth0`, `Ethernet0`).
    #[serde(default)]
    pub device: Option<String>,
    #[serde(default)]
    pub ips: Vec<GuestIp>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GuestIp {
    pub ip: String,
    pub prefix: u8,
    #[serde(default)]
    pub gateway: Option<String>,
    /// Statically configured in the guest (vSphere `origin: manual`).
    #[serde(rename = "static", default)]
    pub is_static: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub id: String,
    pub name: String,
    /// RFC 3339.
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Concern {
    pub id: String,
    pub label: String,
    /// `Critical`, `Warning` or `Information`.
    pub category: String,
    pub assessment: String,
}

impl Vm {
    /// Total disk capacity in MiB, the unit of Forklift's disk-transfer progress.
    pub fn capacity_mib(&self) -> u64 {
        self.disks.iter().map(|d| d.capacity_gib * 1024).sum()
    }

    pub fn is_windows(&self) -> bool {
        self.guest_os.to_ascii_lowercase().contains("win")
    }
}
