//! The source model as vSphere's managed object tree: the root folder, one datacenter with its vm,
//! host, datastore and network folders, clusters (compute resources) with their resource pools and
//! hosts, datastores, networks and distributed port groups, VMs and their snapshots. Ids are the
//! model's (and so the lab's Forklift inventory's) ids.

use super::value::V;
use crate::source::model::{
    Disk, DiskMode, Firmware, PowerState, Provisioning, RdmMode, SourceProviderSpec, ToolsStatus,
    Vm,
};

pub(crate) const ROOT_FOLDER: &str = "group-d1";
pub(crate) const VM_FOLDER: &str = "group-v3";
pub(crate) const HOST_FOLDER: &str = "group-h4";
pub(crate) const NETWORK_FOLDER: &str = "group-n5";
pub(crate) const DATASTORE_FOLDER: &str = "group-s6";
/// The distributed switch every `dvportgroup-*` network belongs to.
const DVS: &str = "dvs-1";
/// PCI controller key (NICs) and the default SCSI controller key (disks).
const PCI_CONTROLLER: i64 = 100;
const NIC_KEY_BASE: i64 = 4000;

/// The datacenter's id: the lab inventory's (its name).
pub(crate) fn datacenter(spec: &SourceProviderSpec) -> &str {
    spec.datacenter.as_deref().unwrap_or("Datacenter")
}

/// The compute resource of a host: its cluster (named as the inventory names it), else a
/// standalone compute resource of its own.
fn compute_of(host: &crate::source::model::Host) -> (&'static str, String) {
    match &host.cluster {
        Some(cluster) => ("ClusterComputeResource", cluster.clone()),
        None => ("ComputeResource", format!("domain-s{}", host.id)),
    }
}

fn computes(spec: &SourceProviderSpec) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for host in &spec.hosts {
        let compute = compute_of(host);
        if !out.contains(&compute) {
            out.push(compute);
        }
    }
    out
}

fn pool_of(compute: &str) -> String {
    format!("resgroup-{compute}")
}

fn is_portgroup(network: &str) -> bool {
    network.starts_with("dvportgroup-")
}

fn network_kind(network: &str) -> &'static str {
    if is_portgroup(network) {
        "DistributedVirtualPortgroup"
    } else {
        "Network"
    }
}

/// The switch uuid (stable, in vSphere's spaced hex form).
pub(crate) fn dvs_uuid(spec: &SourceProviderSpec) -> String {
    let seed = spec
        .name
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31) ^ u64::from(b));
    let hex = format!("{seed:016x}{:016x}", seed.rotate_left(17));
    hex.as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a managed object of type `kind` is also a `wanted` (`ManagedEntity`, `Network`, ...).
pub(crate) fn is_a(kind: &str, wanted: &str) -> bool {
    if kind == wanted {
        return true;
    }
    let entity = matches!(
        kind,
        "Folder"
            | "Datacenter"
            | "ClusterComputeResource"
            | "ComputeResource"
            | "ResourcePool"
            | "HostSystem"
            | "Datastore"
            | "Network"
            | "DistributedVirtualPortgroup"
            | "VmwareDistributedVirtualSwitch"
            | "VirtualMachine"
    );
    match wanted {
        "ManagedEntity" => entity,
        "Network" => kind == "DistributedVirtualPortgroup",
        "ComputeResource" => kind == "ClusterComputeResource",
        "DistributedVirtualSwitch" => kind == "VmwareDistributedVirtualSwitch",
        "ManagedObject" => true,
        _ => false,
    }
}

/// The type of an inventory object by id, when it exists.
pub(crate) fn kind_of(spec: &SourceProviderSpec, id: &str) -> Option<&'static str> {
    if [
        ROOT_FOLDER,
        VM_FOLDER,
        HOST_FOLDER,
        NETWORK_FOLDER,
        DATASTORE_FOLDER,
    ]
    .contains(&id)
    {
        return Some("Folder");
    }
    if id == datacenter(spec) {
        return Some("Datacenter");
    }
    if let Some((kind, _)) = computes(spec).into_iter().find(|(_, c)| c == id) {
        return Some(kind);
    }
    if computes(spec).iter().any(|(_, c)| pool_of(c) == id) {
        return Some("ResourcePool");
    }
    if spec.hosts.iter().any(|h| h.id == id) {
        return Some("HostSystem");
    }
    if spec.datastores.iter().any(|d| d.id == id) {
        return Some("Datastore");
    }
    if let Some(network) = spec.networks.iter().find(|n| n.id == id) {
        return Some(network_kind(&network.id));
    }
    if id == DVS && spec.networks.iter().any(|n| is_portgroup(&n.id)) {
        return Some("VmwareDistributedVirtualSwitch");
    }
    if spec.vms.iter().any(|vm| vm.id == id) {
        return Some("VirtualMachine");
    }
    if spec
        .vms
        .iter()
        .flat_map(|vm| &vm.snapshots)
        .any(|s| s.id == id)
    {
        return Some("VirtualMachineSnapshot");
    }
    None
}

/// The direct children of an entity, as a container view walks them.
pub(crate) fn children(spec: &SourceProviderSpec, id: &str) -> Vec<(String, String)> {
    let folder = |kind: &str, id: &str| (kind.to_string(), id.to_string());
    match id {
        ROOT_FOLDER => vec![folder("Datacenter", datacenter(spec))],
        VM_FOLDER => spec
            .vms
            .iter()
            .map(|vm| folder("VirtualMachine", &vm.id))
            .collect(),
        HOST_FOLDER => computes(spec)
            .into_iter()
            .map(|(kind, id)| (kind.to_string(), id))
            .collect(),
        DATASTORE_FOLDER => spec
            .datastores
            .iter()
            .map(|d| folder("Datastore", &d.id))
            .collect(),
        NETWORK_FOLDER => {
            let mut out: Vec<(String, String)> = spec
                .networks
                .iter()
                .map(|n| folder(network_kind(&n.id), &n.id))
                .collect();
            if spec.networks.iter().any(|n| is_portgroup(&n.id)) {
                out.push(folder("VmwareDistributedVirtualSwitch", DVS));
            }
            out
        }
        _ if id == datacenter(spec) => vec![
            folder("Folder", VM_FOLDER),
            folder("Folder", HOST_FOLDER),
            folder("Folder", DATASTORE_FOLDER),
            folder("Folder", NETWORK_FOLDER),
        ],
        _ => {
            let mut out: Vec<(String, String)> = spec
                .hosts
                .iter()
                .filter(|h| compute_of(h).1 == id)
                .map(|h| folder("HostSystem", &h.id))
                .collect();
            if !out.is_empty() {
                out.push(folder("ResourcePool", &pool_of(id)));
            }
            out
        }
    }
}

/// Every descendant of an entity, depth first.
pub(crate) fn descendants(spec: &SourceProviderSpec, id: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for child in children(spec, id) {
        let below = descendants(spec, &child.1);
        out.push(child);
        out.extend(below);
    }
    out
}

fn vms_where(spec: &SourceProviderSpec, keep: impl Fn(&Vm) -> bool) -> V {
    V::refs(
        spec.vms
            .iter()
            .filter(|vm| keep(vm))
            .map(|vm| ("VirtualMachine".to_string(), vm.id.clone())),
    )
}

fn datastore_refs(spec: &SourceProviderSpec) -> V {
    V::refs(
        spec.datastores
            .iter()
            .map(|d| ("Datastore".to_string(), d.id.clone())),
    )
}

fn network_refs(spec: &SourceProviderSpec) -> V {
    V::refs(
        spec.networks
            .iter()
            .map(|n| (network_kind(&n.id).to_string(), n.id.clone())),
    )
}

/// The top-level properties of an inventory object, in vim25 names and types.
pub(crate) fn properties(
    spec: &SourceProviderSpec,
    kind: &str,
    id: &str,
) -> Option<Vec<(&'static str, V)>> {
    let dc = datacenter(spec);
    let props = match kind {
        "Folder" => {
            let (name, parent, child_type): (&str, Option<(&str, &str)>, &[&str]) = match id {
                ROOT_FOLDER => ("Datacenters", None, &["Folder", "Datacenter"]),
                VM_FOLDER => (
                    "vm",
                    Some(("Datacenter", dc)),
                    &["Folder", "VirtualMachine"],
                ),
                HOST_FOLDER => (
                    "host",
                    Some(("Datacenter", dc)),
                    &["Folder", "ComputeResource"],
                ),
                DATASTORE_FOLDER => (
                    "datastore",
                    Some(("Datacenter", dc)),
                    &["Folder", "Datastore"],
                ),
                NETWORK_FOLDER => ("network", Some(("Datacenter", dc)), &["Folder", "Network"]),
                _ => return None,
            };
            let mut props = vec![("name", V::s(name))];
            if let Some((kind, parent)) = parent {
                props.push(("parent", V::r(kind, parent)));
            }
            props.push(("childEntity", V::refs(children(spec, id))));
            props.push((
                "childType",
                V::strings(child_type.iter().map(|t| t.to_string())),
            ));
            props
        }
        "Datacenter" if id == dc => vec![
            ("name", V::s(dc)),
            ("parent", V::r("Folder", ROOT_FOLDER)),
            ("vmFolder", V::r("Folder", VM_FOLDER)),
            ("hostFolder", V::r("Folder", HOST_FOLDER)),
            ("datastoreFolder", V::r("Folder", DATASTORE_FOLDER)),
            ("networkFolder", V::r("Folder", NETWORK_FOLDER)),
            ("datastore", datastore_refs(spec)),
            ("network", network_refs(spec)),
            ("overallStatus", V::e("ManagedEntityStatus", "green")),
        ],
        "ClusterComputeResource" | "ComputeResource" => {
            let hosts: Vec<&crate::source::model::Host> = spec
                .hosts
                .iter()
                .filter(|h| compute_of(h).1 == id)
                .collect();
            if hosts.is_empty() {
                return None;
            }
            vec![
                ("name", V::s(id)),
                ("parent", V::r("Folder", HOST_FOLDER)),
                (
                    "host",
                    V::refs(
                        hosts
                            .iter()
                            .map(|h| ("HostSystem".to_string(), h.id.clone())),
                    ),
                ),
                ("resourcePool", V::r("ResourcePool", &pool_of(id))),
                ("datastore", datastore_refs(spec)),
                ("network", network_refs(spec)),
                ("overallStatus", V::e("ManagedEntityStatus", "green")),
            ]
        }
        "ResourcePool" => {
            let (compute_kind, compute) =
                computes(spec).into_iter().find(|(_, c)| pool_of(c) == id)?;
            let hosts: Vec<String> = spec
                .hosts
                .iter()
                .filter(|h| compute_of(h).1 == compute)
                .map(|h| h.id.clone())
                .collect();
            vec![
                ("name", V::s("Resources")),
                ("parent", V::r(compute_kind, &compute)),
                ("owner", V::r(compute_kind, &compute)),
                (
                    "vm",
                    vms_where(spec, |vm| {
                        !vm.template && vm.host.as_ref().is_some_and(|h| hosts.contains(h))
                    }),
                ),
                ("overallStatus", V::e("ManagedEntityStatus", "green")),
            ]
        }
        "HostSystem" => {
            let host = spec.hosts.iter().find(|h| h.id == id)?;
            let (compute_kind, compute) = compute_of(host);
            vec![
                ("name", V::s(&host.name)),
                ("parent", V::r(compute_kind, &compute)),
                (
                    "runtime",
                    V::Obj(
                        "HostRuntimeInfo",
                        vec![
                            (
                                "connectionState",
                                V::e("HostSystemConnectionState", "connected"),
                            ),
                            ("powerState", V::e("HostSystemPowerState", "poweredOn")),
                            ("inMaintenanceMode", V::b(host.in_maintenance)),
                        ],
                    ),
                ),
                ("vm", vms_where(spec, |vm| vm.host.as_deref() == Some(id))),
                ("datastore", datastore_refs(spec)),
                ("network", network_refs(spec)),
                ("overallStatus", V::e("ManagedEntityStatus", "green")),
            ]
        }
        "Datastore" => {
            let ds = spec.datastores.iter().find(|d| d.id == id)?;
            let gib = 1024i64 * 1024 * 1024;
            let ds_type = ds.kind.clone().unwrap_or_else(|| "VMFS".into());
            vec![
                ("name", V::s(&ds.name)),
                ("parent", V::r("Folder", DATASTORE_FOLDER)),
                (
                    "summary",
                    V::Obj(
                        "DatastoreSummary",
                        vec![
                            ("datastore", V::r("Datastore", &ds.id)),
                            ("name", V::s(&ds.name)),
                            ("url", V::s(format!("ds:///vmfs/volumes/{}/", ds.id))),
                            ("capacity", V::long(ds.capacity_gib as i64 * gib)),
                            ("freeSpace", V::long(ds.free_gib as i64 * gib)),
                            ("accessible", V::b(true)),
                            ("multipleHostAccess", V::b(true)),
                            ("type", V::s(ds_type)),
                        ],
                    ),
                ),
                (
                    "vm",
                    vms_where(spec, |vm| vm.disks.iter().any(|d| d.datastore == id)),
                ),
                ("overallStatus", V::e("ManagedEntityStatus", "green")),
            ]
        }
        "Network" | "DistributedVirtualPortgroup" => {
            let net = spec.networks.iter().find(|n| n.id == id)?;
            let mut props = vec![
                ("name", V::s(&net.name)),
                ("parent", V::r("Folder", NETWORK_FOLDER)),
                (
                    "summary",
                    V::Obj(
                        "NetworkSummary",
                        vec![
                            ("network", V::r(network_kind(id), id)),
                            ("name", V::s(&net.name)),
                            ("accessible", V::b(true)),
                        ],
                    ),
                ),
                (
                    "vm",
                    vms_where(spec, |vm| vm.nics.iter().any(|n| n.network == id)),
                ),
                (
                    "host",
                    V::refs(
                        spec.hosts
                            .iter()
                            .map(|h| ("HostSystem".to_string(), h.id.clone())),
                    ),
                ),
                ("overallStatus", V::e("ManagedEntityStatus", "green")),
            ];
            if is_portgroup(id) {
                props.push(("key", V::s(id)));
                props.push((
                    "config",
                    V::Obj(
                        "DVPortgroupConfigInfo",
                        vec![
                            ("key", V::s(id)),
                            ("name", V::s(&net.name)),
                            (
                                "distributedVirtualSwitch",
                                V::r("VmwareDistributedVirtualSwitch", DVS),
                            ),
                            ("type", V::s("earlyBinding")),
                        ],
                    ),
                ));
            }
            props
        }
        "VmwareDistributedVirtualSwitch" if id == DVS => vec![
            ("name", V::s("mtv-dvswitch")),
            ("parent", V::r("Folder", NETWORK_FOLDER)),
            ("uuid", V::s(dvs_uuid(spec))),
            (
                "portgroup",
                V::refs(
                    spec.networks
                        .iter()
                        .filter(|n| is_portgroup(&n.id))
                        .map(|n| ("DistributedVirtualPortgroup".to_string(), n.id.clone())),
                ),
            ),
            ("overallStatus", V::e("ManagedEntityStatus", "green")),
        ],
        "VirtualMachine" => vm_properties(spec, spec.vms.iter().find(|vm| vm.id == id)?),
        "VirtualMachineSnapshot" => {
            let vm = spec
                .vms
                .iter()
                .find(|vm| vm.snapshots.iter().any(|s| s.id == id))?;
            vec![("vm", V::r("VirtualMachine", &vm.id))]
        }
        _ => return None,
    };
    Some(props)
}

fn power_state(vm: &Vm) -> &'static str {
    match vm.power_state {
        PowerState::On => "poweredOn",
        PowerState::Off => "poweredOff",
    }
}

/// VMware Tools run in the guest: powered on, tools installed and running.
pub(crate) fn tools_running(vm: &Vm) -> bool {
    vm.power_state == PowerState::On && vm.tools == ToolsStatus::Ok
}

fn guest_full_name(vm: &Vm) -> String {
    let id = vm.guest_os.to_ascii_lowercase();
    if id.contains("rhel") {
        "Red Hat Enterprise Linux (64-bit)".into()
    } else if id.contains("win") {
        "Microsoft Windows Server (64-bit)".into()
    } else {
        "Other Linux (64-bit)".into()
    }
}

fn vm_properties(spec: &SourceProviderSpec, vm: &Vm) -> Vec<(&'static str, V)> {
    let host = vm
        .host
        .as_deref()
        .and_then(|h| spec.hosts.iter().find(|x| x.id == h));
    let mut runtime = vec![
        (
            "connectionState",
            V::e("VirtualMachineConnectionState", "connected"),
        ),
        (
            "powerState",
            V::e("VirtualMachinePowerState", power_state(vm)),
        ),
    ];
    if let Some(host) = host {
        runtime.insert(0, ("host", V::r("HostSystem", &host.id)));
    }
    let runtime = V::Obj("VirtualMachineRuntimeInfo", runtime);
    let config = vm_config(spec, vm);
    let guest = vm_guest(spec, vm);
    let mut props = vec![
        ("name", V::s(&vm.name)),
        ("parent", V::r("Folder", VM_FOLDER)),
    ];
    if let (false, Some(host)) = (vm.template, host) {
        props.push((
            "resourcePool",
            V::r("ResourcePool", &pool_of(&compute_of(host).1)),
        ));
    }
    props.extend([
        ("runtime", runtime.clone()),
        ("config", config),
        ("guest", guest),
        (
            "datastore",
            V::refs({
                let mut ids: Vec<String> = vm.disks.iter().map(|d| d.datastore.clone()).collect();
                ids.dedup();
                ids.into_iter().map(|id| ("Datastore".to_string(), id))
            }),
        ),
        (
            "network",
            V::refs(
                vm.nics
                    .iter()
                    .map(|n| (network_kind(&n.network).to_string(), n.network.clone())),
            ),
        ),
        (
            "summary",
            V::Obj(
                "VirtualMachineSummary",
                vec![
                    ("vm", V::r("VirtualMachine", &vm.id)),
                    ("runtime", runtime),
                    (
                        "config",
                        V::Obj(
                            "VirtualMachineConfigSummary",
                            vec![
                                ("name", V::s(&vm.name)),
                                ("template", V::b(vm.template)),
                                ("vmPathName", V::s(vmx_path(spec, vm))),
                                ("memorySizeMB", V::int(vm.memory_mib as i64)),
                                (
                                    "numCpu",
                                    V::int(i64::from(vm.cpu_sockets * vm.cores_per_socket)),
                                ),
                                ("numEthernetCards", V::int(vm.nics.len() as i64)),
                                ("numVirtualDisks", V::int(vm.disks.len() as i64)),
                                ("uuid", V::s(&vm.uuid)),
                                ("instanceUuid", V::s(instance_uuid(vm))),
                                ("guestId", V::s(&vm.guest_os)),
                                ("guestFullName", V::s(guest_full_name(vm))),
                            ],
                        ),
                    ),
                    ("overallStatus", V::e("ManagedEntityStatus", "green")),
                ],
            ),
        ),
        ("overallStatus", V::e("ManagedEntityStatus", "green")),
    ]);
    if let Some(snapshot) = snapshot_info(vm) {
        props.push(("snapshot", snapshot));
    }
    props
}

fn vmx_path(spec: &SourceProviderSpec, vm: &Vm) -> String {
    let datastore = vm
        .disks
        .first()
        .and_then(|d| spec.datastores.iter().find(|x| x.id == d.datastore))
        .map_or("datastore1", |d| d.name.as_str());
    format!("[{datastore}] {}/{}.vmx", vm.name, vm.name)
}

/// vCenter's instance uuid, derived from the BIOS uuid so it is stable.
fn instance_uuid(vm: &Vm) -> String {
    let mut chars: Vec<char> = vm.uuid.chars().collect();
    if let Some(first) = chars.first_mut() {
        *first = if *first == '5' { '6' } else { '5' };
    }
    chars.into_iter().collect()
}

fn vm_config(spec: &SourceProviderSpec, vm: &Vm) -> V {
    V::Obj(
        "VirtualMachineConfigInfo",
        vec![
            ("changeVersion", V::s(vm.events.len().to_string())),
            ("modified", V::time(crate::clock::now_rfc3339())),
            ("name", V::s(&vm.name)),
            ("guestFullName", V::s(guest_full_name(vm))),
            ("version", V::s("vmx-19")),
            ("uuid", V::s(&vm.uuid)),
            ("instanceUuid", V::s(instance_uuid(vm))),
            ("template", V::b(vm.template)),
            ("guestId", V::s(&vm.guest_os)),
            ("changeTrackingEnabled", V::b(vm.cbt)),
            (
                "firmware",
                V::s(match vm.firmware {
                    Firmware::Bios => "bios",
                    Firmware::Efi => "efi",
                }),
            ),
            ("nestedHVEnabled", V::b(vm.nested_virtualization)),
            (
                "hardware",
                V::Obj(
                    "VirtualHardware",
                    vec![
                        (
                            "numCPU",
                            V::int(i64::from(vm.cpu_sockets * vm.cores_per_socket)),
                        ),
                        ("numCoresPerSocket", V::int(i64::from(vm.cores_per_socket))),
                        ("memoryMB", V::int(vm.memory_mib as i64)),
                        ("device", V::Arr("VirtualDevice", devices(spec, vm))),
                    ],
                ),
            ),
        ],
    )
}

fn description(label: String, summary: String) -> V {
    V::Obj(
        "Description",
        vec![("label", V::s(label)), ("summary", V::s(summary))],
    )
}

fn disk_mode(mode: DiskMode) -> &'static str {
    match mode {
        DiskMode::Persistent => "persistent",
        DiskMode::IndependentPersistent => "independent_persistent",
        DiskMode::IndependentNonpersistent => "independent_nonpersistent",
    }
}

fn disk_device(vm: &Vm, index: usize, disk: &Disk) -> V {
    let kib = disk.capacity_gib as i64 * 1024 * 1024;
    let sharing = if disk.shared {
        "sharingMultiWriter"
    } else {
        "sharingNone"
    };
    let uuid = format!(
        "6000C29{:x}-{}",
        disk.key,
        &vm.uuid.chars().take(8).collect::<String>()
    );
    let backing = match disk.rdm {
        Some(mode) => V::Obj(
            "VirtualDiskRawDiskMappingVer1BackingInfo",
            vec![
                ("fileName", V::s(&disk.file)),
                ("datastore", V::r("Datastore", &disk.datastore)),
                ("lunUuid", V::s(disk.lun_uuid.clone().unwrap_or_default())),
                (
                    "deviceName",
                    V::s(format!(
                        "/vmfs/devices/disks/{}",
                        disk.lun_uuid.clone().unwrap_or_default()
                    )),
                ),
                (
                    "compatibilityMode",
                    V::s(match mode {
                        RdmMode::Physical => "physicalMode",
                        RdmMode::Virtual => "virtualMode",
                    }),
                ),
                ("diskMode", V::s(disk_mode(disk.mode))),
                ("uuid", V::s(uuid)),
                ("sharing", V::s(sharing)),
            ],
        ),
        None => V::Obj(
            "VirtualDiskFlatVer2BackingInfo",
            vec![
                ("fileName", V::s(&disk.file)),
                ("datastore", V::r("Datastore", &disk.datastore)),
                ("diskMode", V::s(disk_mode(disk.mode))),
                (
                    "thinProvisioned",
                    V::b(disk.provisioning == Provisioning::Thin),
                ),
                (
                    "eagerlyScrub",
                    V::b(disk.provisioning == Provisioning::ThickEager),
                ),
                ("uuid", V::s(uuid)),
                ("sharing", V::s(sharing)),
            ],
        ),
    };
    V::Obj(
        "VirtualDisk",
        vec![
            ("key", V::int(disk.key)),
            (
                "deviceInfo",
                description(format!("Hard disk {}", index + 1), format!("{kib} KB")),
            ),
            ("backing", backing),
            ("controllerKey", V::int(disk.controller_key)),
            ("unitNumber", V::int(disk.unit_number)),
            ("capacityInKB", V::long(kib)),
            ("capacityInBytes", V::long(kib * 1024)),
        ],
    )
}

fn nic_device_value(spec: &SourceProviderSpec, vm: &Vm, index: usize) -> V {
    let nic = &vm.nics[index];
    let network_name = spec
        .networks
        .iter()
        .find(|n| n.id == nic.network)
        .map_or(nic.network.as_str(), |n| n.name.as_str());
    let backing = if is_portgroup(&nic.network) {
        V::Obj(
            "VirtualEthernetCardDistributedVirtualPortBackingInfo",
            vec![(
                "port",
                V::Obj(
                    "DistributedVirtualSwitchPortConnection",
                    vec![
                        ("switchUuid", V::s(dvs_uuid(spec))),
                        ("portgroupKey", V::s(&nic.network)),
                    ],
                ),
            )],
        )
    } else {
        V::Obj(
            "VirtualEthernetCardNetworkBackingInfo",
            vec![
                ("deviceName", V::s(network_name)),
                ("network", V::r("Network", &nic.network)),
            ],
        )
    };
    V::Obj(
        "VirtualVmxnet3",
        vec![
            ("key", V::int(NIC_KEY_BASE + index as i64)),
            (
                "deviceInfo",
                description(
                    format!("Network adapter {}", index + 1),
                    network_name.to_string(),
                ),
            ),
            ("backing", backing),
            (
                "connectable",
                V::Obj(
                    "VirtualDeviceConnectInfo",
                    vec![
                        ("startConnected", V::b(nic.start_connected)),
                        ("allowGuestControl", V::b(true)),
                        (
                            "connected",
                            V::b(nic.start_connected && vm.power_state == PowerState::On),
                        ),
                        ("status", V::s("ok")),
                    ],
                ),
            ),
            ("controllerKey", V::int(PCI_CONTROLLER)),
            ("unitNumber", V::int(7 + index as i64)),
            ("addressType", V::s("assigned")),
            ("macAddress", V::s(&nic.mac)),
            ("wakeOnLanEnabled", V::b(true)),
        ],
    )
}

/// The device key of a VM's `index`-th NIC.
pub(crate) fn nic_key(index: usize) -> i64 {
    NIC_KEY_BASE + index as i64
}

fn devices(spec: &SourceProviderSpec, vm: &Vm) -> Vec<V> {
    let mut controllers: Vec<i64> = vm.disks.iter().map(|d| d.controller_key).collect();
    controllers.sort_unstable();
    controllers.dedup();
    if controllers.is_empty() {
        controllers.push(1000);
    }
    let mut out = vec![V::Obj(
        "VirtualPCIController",
        vec![
            ("key", V::int(PCI_CONTROLLER)),
            (
                "deviceInfo",
                description("PCI controller 0".into(), "PCI controller 0".into()),
            ),
            ("busNumber", V::int(0)),
        ],
    )];
    for (bus, key) in controllers.iter().enumerate() {
        let members: Vec<V> = vm
            .disks
            .iter()
            .filter(|d| d.controller_key == *key)
            .map(|d| V::int(d.key))
            .collect();
        let shared = vm
            .disks
            .iter()
            .any(|d| d.controller_key == *key && d.shared);
        out.push(V::Obj(
            "ParaVirtualSCSIController",
            vec![
                ("key", V::int(*key)),
                (
                    "deviceInfo",
                    description(
                        format!("SCSI controller {bus}"),
                        "VMware paravirtual SCSI".into(),
                    ),
                ),
                ("controllerKey", V::int(PCI_CONTROLLER)),
                ("unitNumber", V::int(3 + bus as i64)),
                ("busNumber", V::int(bus as i64)),
                ("device", V::Arr("int", members)),
                ("hotAddRemove", V::b(true)),
                (
                    "sharedBus",
                    V::e(
                        "VirtualSCSISharing",
                        if shared {
                            "physicalSharing"
                        } else {
                            "noSharing"
                        },
                    ),
                ),
                ("scsiCtlrUnitNumber", V::int(7)),
            ],
        ));
    }
    out.extend(
        vm.disks
            .iter()
            .enumerate()
            .map(|(i, d)| disk_device(vm, i, d)),
    );
    out.extend((0..vm.nics.len()).map(|i| nic_device_value(spec, vm, i)));
    out
}

fn vm_guest(spec: &SourceProviderSpec, vm: &Vm) -> V {
    let running = tools_running(vm);
    let tools_status = match (vm.tools, vm.power_state) {
        (ToolsStatus::NotInstalled, _) => "toolsNotInstalled",
        (ToolsStatus::Ok, PowerState::On) => "toolsOk",
        _ => "toolsNotRunning",
    };
    let mut fields = vec![
        (
            "toolsStatus",
            V::e("VirtualMachineToolsStatus", tools_status),
        ),
        (
            "toolsRunningStatus",
            V::s(if running {
                "guestToolsRunning"
            } else {
                "guestToolsNotRunning"
            }),
        ),
        ("guestId", V::s(&vm.guest_os)),
        ("guestFullName", V::s(guest_full_name(vm))),
        (
            "guestState",
            V::s(if running { "running" } else { "notRunning" }),
        ),
        ("guestOperationsReady", V::b(running)),
    ];
    if !running {
        return V::Obj("GuestInfo", fields);
    }
    fields.push(("hostName", V::s(&vm.name)));
    if let Some(ip) = vm.nics.iter().flat_map(|n| &n.ips).next() {
        fields.push(("ipAddress", V::s(&ip.ip)));
    }
    let net: Vec<V> = vm
        .nics
        .iter()
        .enumerate()
        .map(|(i, nic)| {
            let network_name = spec
                .networks
                .iter()
                .find(|n| n.id == nic.network)
                .map_or(nic.network.clone(), |n| n.name.clone());
            let addresses: Vec<V> = nic
                .ips
                .iter()
                .map(|ip| {
                    V::Obj(
                        "NetIpConfigInfoIpAddress",
                        vec![
                            ("ipAddress", V::s(&ip.ip)),
                            ("prefixLength", V::int(i64::from(ip.prefix))),
                            ("origin", V::s(if ip.is_static { "manual" } else { "dhcp" })),
                            ("state", V::s("preferred")),
                        ],
                    )
                })
                .collect();
            V::Obj(
                "GuestNicInfo",
                vec![
                    ("network", V::s(network_name)),
                    (
                        "ipAddress",
                        V::strings(nic.ips.iter().map(|ip| ip.ip.clone())),
                    ),
                    ("macAddress", V::s(&nic.mac)),
                    ("connected", V::b(nic.start_connected)),
                    ("deviceConfigId", V::int(nic_key(i))),
                    (
                        "ipConfig",
                        V::Obj(
                            "NetIpConfigInfo",
                            vec![("ipAddress", V::Arr("NetIpConfigInfoIpAddress", addresses))],
                        ),
                    ),
                ],
            )
        })
        .collect();
    fields.push(("net", V::Arr("GuestNicInfo", net)));
    let routes: Vec<V> = vm
        .nics
        .iter()
        .enumerate()
        .flat_map(|(i, nic)| {
            nic.ips.iter().filter_map(move |ip| {
                let gateway = ip.gateway.as_ref()?;
                Some(V::Obj(
                    "NetIpRouteConfigInfoIpRoute",
                    vec![
                        (
                            "network",
                            V::s(if ip.ip.contains(':') { "::" } else { "0.0.0.0" }),
                        ),
                        ("prefixLength", V::int(0)),
                        (
                            "gateway",
                            V::Obj(
                                "NetIpRouteConfigInfoGateway",
                                vec![
                                    ("ipAddress", V::s(gateway)),
                                    ("device", V::s(i.to_string())),
                                ],
                            ),
                        ),
                    ],
                ))
            })
        })
        .collect();
    fields.push((
        "ipStack",
        V::Arr(
            "GuestStackInfo",
            vec![V::Obj(
                "GuestStackInfo",
                vec![(
                    "ipRouteConfig",
                    V::Obj(
                        "NetIpRouteConfigInfo",
                        vec![("ipRoute", V::Arr("NetIpRouteConfigInfoIpRoute", routes))],
                    ),
                )],
            )],
        ),
    ));
    V::Obj("GuestInfo", fields)
}

/// The snapshot tree: the lab keeps a VM's snapshots as a chain, each the child of the one before.
fn snapshot_info(vm: &Vm) -> Option<V> {
    let current = vm.snapshots.last()?;
    let mut tree: Option<V> = None;
    for snapshot in vm.snapshots.iter().rev() {
        let number = snapshot
            .id
            .rsplit('-')
            .next()
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(0);
        let mut fields = vec![
            ("snapshot", V::r("VirtualMachineSnapshot", &snapshot.id)),
            ("vm", V::r("VirtualMachine", &vm.id)),
            ("name", V::s(&snapshot.name)),
            ("description", V::s("")),
            ("id", V::int(number)),
            ("createTime", V::time(&snapshot.created)),
            ("state", V::e("VirtualMachinePowerState", power_state(vm))),
            ("quiesced", V::b(false)),
        ];
        if let Some(child) = tree.take() {
            fields.push((
                "childSnapshotList",
                V::Arr("VirtualMachineSnapshotTree", vec![child]),
            ));
        }
        tree = Some(V::Obj("VirtualMachineSnapshotTree", fields));
    }
    Some(V::Obj(
        "VirtualMachineSnapshotInfo",
        vec![
            (
                "currentSnapshot",
                V::r("VirtualMachineSnapshot", &current.id),
            ),
            (
                "rootSnapshotList",
                V::Arr("VirtualMachineSnapshotTree", tree.into_iter().collect()),
            ),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_holds_every_entity_once_under_the_root() {
        let lab = crate::source::SourceLab::builtin();
        let spec = lab.provider("vsphere").unwrap();
        let all = descendants(&spec, ROOT_FOLDER);
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), all.len(), "no entity twice");
        for vm in &spec.vms {
            assert!(all.contains(&("VirtualMachine".to_string(), vm.id.clone())));
        }
        assert!(all.contains(&(
            "DistributedVirtualPortgroup".to_string(),
            "dvportgroup-21".to_string()
        )));
        assert_eq!(
            kind_of(&spec, "mtv-cluster"),
            Some("ClusterComputeResource")
        );
        assert_eq!(kind_of(&spec, "resgroup-mtv-cluster"), Some("ResourcePool"));
        assert!(is_a("DistributedVirtualPortgroup", "Network"));
        assert!(!is_a("Network", "DistributedVirtualPortgroup"));
    }

    #[test]
    fn a_powered_off_vm_reports_no_guest_addresses_and_a_running_one_does() {
        let lab = crate::source::SourceLab::builtin();
        let spec = lab.provider("vsphere").unwrap();
        let props = properties(&spec, "VirtualMachine", "vm-1001").unwrap();
        let guest = &props.iter().find(|(n, _)| *n == "guest").unwrap().1;
        assert!(guest.path("net").is_none());
        lab.set_power("vsphere", "vm-1001", crate::source::PowerAction::Start)
            .unwrap();
        let spec = lab.provider("vsphere").unwrap();
        let props = properties(&spec, "VirtualMachine", "vm-1001").unwrap();
        let guest = &props.iter().find(|(n, _)| *n == "guest").unwrap().1;
        let Some(V::Arr(_, nics)) = guest.path("net") else {
            panic!("no guest.net")
        };
        assert_eq!(nics.len(), 2);
    }
}
