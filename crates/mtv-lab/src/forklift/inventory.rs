//! One view over the source inventories the controllers validate and migrate from: the lab file's
//! providers ([`SourceLab`]) and, for OpenShift sources, the KubeVirt VirtualMachines in the store.

use mtv_api::quantity::mib_rounded_up;
use serde_json::Value;

use crate::registry;
use crate::source::SourceLab;
use crate::source::model::{GuestIp, ToolsStatus};
use crate::store::{ListOptions, Store};

use super::{array_at, meta, text_at};

/// Where a Provider's inventory lives.
#[derive(Debug, Clone)]
pub enum Inventory {
    /// A lab-file source provider (its name).
    Lab { name: String, kind: String },
    /// The cluster itself (OpenShift provider).
    Cluster,
}

#[derive(Debug, Clone)]
pub struct InvDisk {
    /// vSphere `[ds] path.vmdk`, a disk id elsewhere, the PVC name on OpenShift.
    pub file: String,
    /// Datastore / storage domain / volume type id; storage class on OpenShift.
    pub storage: String,
    pub storage_name: String,
    pub capacity_mib: u64,
    pub xcopy: bool,
    /// A vSphere raw device mapping (a LUN on the target when the Plan says `rdmAsLun`).
    pub rdm: bool,
}

#[derive(Debug, Clone)]
pub struct InvNic {
    pub mac: String,
    /// Network id; `pod` or `ns/name` on OpenShift.
    pub network: String,
    pub connected: bool,
    pub ips: Vec<GuestIp>,
}

#[derive(Debug, Clone)]
pub struct InvVm {
    pub id: String,
    pub name: String,
    pub namespace: String,
    pub powered_on: bool,
    pub host: String,
    pub disks: Vec<InvDisk>,
    pub nics: Vec<InvNic>,
    pub cbt: bool,
    pub has_snapshots: bool,
    pub tools: ToolsStatus,
    pub guest_agent: bool,
    pub uuid: String,
    pub firmware: String,
    pub windows: bool,
    pub cpu_sockets: u32,
    pub cores_per_socket: u32,
    pub memory_mib: u64,
    pub guest_os: String,
    /// The source exposes hardware virtualization to the guest (vSphere `nestedHVEnabled`).
    pub nested_virtualization: bool,
    /// (label, category) of inventory concerns.
    pub concerns: Vec<(String, String)>,
}

/// Why a reference does not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    NotFound,
    Ambiguous,
}

impl Inventory {
    /// The inventory behind a Provider object (which should be Ready).
    pub fn of(source: &SourceLab, provider: &Value) -> Option<Inventory> {
        let kind = text_at(provider, "/spec/type");
        if kind == "openshift" {
            return Some(Inventory::Cluster);
        }
        source
            .endpoint(kind, text_at(provider, "/spec/url"))
            .map(|name| Inventory::Lab {
                name,
                kind: kind.to_string(),
            })
    }

    /// Resolves a VM ref (`id`, `name`, `namespace`) of a plan.
    pub fn find_vm(
        &self,
        source: &SourceLab,
        store: &Store,
        vm_ref: &Value,
    ) -> Result<InvVm, Lookup> {
        let id = text_at(vm_ref, "/id");
        let name = text_at(vm_ref, "/name");
        match self {
            Inventory::Lab { name: lab, kind } => {
                let vms = source
                    .with_provider(lab, |p| {
                        (p.vms.clone(), p.datastores.clone(), p.url.clone())
                    })
                    .map_err(|_| Lookup::NotFound)?;
                let (vms, datastores, source_url) = vms;
                let found: Vec<_> = if !id.is_empty() {
                    vms.iter().filter(|v| v.id == id).collect()
                } else {
                    // vSphere names may be inventory paths: match the last element too.
                    let last = name.rsplit('/').next().unwrap_or(name);
                    vms.iter()
                        .filter(|v| v.name == name || (kind == "vsphere" && v.name == last))
                        .collect()
                };
                if id.is_empty() && name.is_empty() {
                    return Err(Lookup::NotFound);
                }
                match found.as_slice() {
                    [] => Err(Lookup::NotFound),
                    [vm] => Ok(InvVm {
                        id: vm.id.clone(),
                        name: vm.name.clone(),
                        namespace: String::new(),
                        powered_on: vm.power_state == crate::source::PowerState::On,
                        host: vm.host.clone().unwrap_or_default(),
                        disks: vm
                            .disks
                            .iter()
                            .map(|d| {
                                let ds = datastores.iter().find(|x| x.id == d.datastore);
                                // An OVA's storages are its disk files, by the disk's id.
                                let storage = if kind == "ova" {
                                    crate::inventory::render::ova_disk_id(
                                        &source_url,
                                        &vm.name,
                                        &d.file,
                                    )
                                } else {
                                    d.datastore.clone()
                                };
                                InvDisk {
                                    file: d.file.clone(),
                                    storage,
                                    storage_name: ds.map(|x| x.name.clone()).unwrap_or_default(),
                                    capacity_mib: d.capacity_gib * 1024,
                                    xcopy: ds.is_some_and(|x| x.xcopy),
                                    rdm: d.rdm.is_some(),
                                }
                            })
                            .collect(),
                        nics: vm
                            .nics
                            .iter()
                            .map(|n| InvNic {
                                mac: n.mac.clone(),
                                network: n.network.clone(),
                                connected: n.start_connected,
                                ips: n.ips.clone(),
                            })
                            .collect(),
                        cbt: vm.cbt,
                        has_snapshots: !vm.snapshots.is_empty(),
                        tools: vm.tools,
                        guest_agent: vm.guest_agent,
                        uuid: vm.uuid.clone(),
                        firmware: match vm.firmware {
                            crate::source::model::Firmware::Bios => "bios".into(),
                            crate::source::model::Firmware::Efi => "efi".into(),
                        },
                        windows: vm.is_windows(),
                        cpu_sockets: vm.cpu_sockets,
                        cores_per_socket: vm.cores_per_socket,
                        memory_mib: vm.memory_mib,
                        guest_os: vm.guest_os.clone(),
                        nested_virtualization: vm.nested_virtualization,
                        concerns: vm
                            .concerns
                            .iter()
                            .map(|c| (c.label.clone(), c.category.clone()))
                            .collect(),
                    }),
                    _ => Err(Lookup::Ambiguous),
                }
            }
            Inventory::Cluster => {
                let (ns, short) = match name.split_once('/') {
                    Some((ns, n)) => (ns.to_string(), n.to_string()),
                    None => (text_at(vm_ref, "/namespace").to_string(), name.to_string()),
                };
                let list = store
                    .list(&registry::VIRTUAL_MACHINE, None, &ListOptions::default())
                    .map_err(|_| Lookup::NotFound)?;
                let found: Vec<&Value> = list
                    .items
                    .iter()
                    .filter(|vm| {
                        if !id.is_empty() {
                            meta(vm, "uid") == id
                        } else {
                            meta(vm, "name") == short
                                && (ns.is_empty() || meta(vm, "namespace") == ns)
                        }
                    })
                    .collect();
                match found.as_slice() {
                    [] => Err(Lookup::NotFound),
                    [vm] => Ok(kubevirt_vm(store, vm)),
                    _ => Err(Lookup::Ambiguous),
                }
            }
        }
    }

    /// Resolves a network ref of a NetworkMap to `(id, name)`.
    pub fn find_network(
        &self,
        source: &SourceLab,
        store: &Store,
        net: &Value,
    ) -> Result<(String, String), Lookup> {
        let id = text_at(net, "/id");
        let name = text_at(net, "/name");
        match self {
            Inventory::Lab { name: lab, .. } => {
                let nets = source
                    .with_provider(lab, |p| p.networks.clone())
                    .map_err(|_| Lookup::NotFound)?;
                let vlan = text_at(net, "/vlan");
                let found: Vec<_> = nets
                    .iter()
                    .filter(|n| {
                        (if !id.is_empty() {
                            n.id == id
                        } else {
                            n.name == name
                        }) && (vlan.is_empty()
                            || n.vlan.map(|v| v.to_string()).as_deref() == Some(vlan))
                    })
                    .collect();
                match found.as_slice() {
                    [] => Err(Lookup::NotFound),
                    [n] => Ok((n.id.clone(), n.name.clone())),
                    _ => Err(Lookup::Ambiguous),
                }
            }
            Inventory::Cluster => {
                if text_at(net, "/type") == "pod" {
                    return Ok(("pod".into(), "pod".into()));
                }
                let (ns, short) = match name.split_once('/') {
                    Some((ns, n)) => (ns.to_string(), n.to_string()),
                    None => (text_at(net, "/namespace").to_string(), name.to_string()),
                };
                if ns.is_empty() {
                    return Err(Lookup::Ambiguous);
                }
                store
                    .get(&registry::NETWORK_ATTACHMENT_DEFINITION, Some(&ns), &short)
                    .map(|n| (meta(&n, "uid").to_string(), format!("{ns}/{short}")))
                    .map_err(|_| Lookup::NotFound)
            }
        }
    }

    /// Resolves a storage ref of a StorageMap to `(id, name)`.
    pub fn find_storage(
        &self,
        source: &SourceLab,
        store: &Store,
        st: &Value,
    ) -> Result<(String, String), Lookup> {
        let id = text_at(st, "/id");
        let name = text_at(st, "/name");
        match self {
            Inventory::Lab { name: lab, kind } => {
                if kind == "openstack" && name == "glance" {
                    return Ok(("glance".into(), "glance".into()));
                }
                let (stores, disks) = source
                    .with_provider(lab, |p| {
                        (
                            p.datastores.clone(),
                            p.vms
                                .iter()
                                .flat_map(|v| {
                                    v.disks
                                        .iter()
                                        .map(|d| (d.file.clone(), d.datastore.clone()))
                                })
                                .collect::<Vec<_>>(),
                        )
                    })
                    .map_err(|_| Lookup::NotFound)?;
                let found: Vec<_> = stores
                    .iter()
                    .filter(|d| {
                        if !id.is_empty() {
                            d.id == id
                        } else {
                            d.name == name
                        }
                    })
                    .collect();
                match found.as_slice() {
                    [d] => Ok((d.id.clone(), d.name.clone())),
                    [] if kind == "ova" => disks
                        .iter()
                        .find(|(file, _)| *file == name || file.rsplit('/').next() == Some(name))
                        .map(|(_, ds)| (ds.clone(), name.to_string()))
                        .ok_or(Lookup::NotFound),
                    [] => Err(Lookup::NotFound),
                    _ => Err(Lookup::Ambiguous),
                }
            }
            Inventory::Cluster => {
                let key = if name.is_empty() { id } else { name };
                store
                    .get(&registry::STORAGE_CLASS, None, key)
                    .map(|sc| (meta(&sc, "name").to_string(), meta(&sc, "name").to_string()))
                    .map_err(|_| Lookup::NotFound)
            }
        }
    }
}

/// An OpenShift source VM read from its KubeVirt object and PVCs. Forklift builds the target from the
/// VM manifest of a VirtualMachineExport, in which KubeVirt has expanded the instancetype and preference
/// into the template (and dropped the references): the target gets their CPU and memory, not the
/// references, which need not exist on the destination.
fn kubevirt_vm(store: &Store, vm: &Value) -> InvVm {
    let get = |rt: &'static registry::ResourceType, ns: Option<&str>, name: &str| {
        store.get(rt, ns, name).ok()
    };
    let expanded = crate::kubevirt::instancetype::expanded_vm(vm, &get);
    let vm = &expanded;
    let ns = meta(vm, "namespace").to_string();
    let spec = vm
        .pointer("/spec/template/spec")
        .cloned()
        .unwrap_or(Value::Null);
    let interfaces = array_at(&spec, "/domain/devices/interfaces");
    let networks = array_at(&spec, "/networks");
    let nics = interfaces
        .iter()
        .map(|i| {
            let net = networks.iter().find(|n| n.get("name") == i.get("name"));
            let network = match net
                .and_then(|n| n.pointer("/multus/networkName"))
                .and_then(Value::as_str)
            {
                Some(m) if m.contains('/') => m.to_string(),
                Some(m) => format!("{ns}/{m}"),
                None => "pod".to_string(),
            };
            InvNic {
                mac: text_at(i, "/macAddress").to_string(),
                network,
                connected: text_at(i, "/state") != "down",
                ips: Vec::new(),
            }
        })
        .collect();
    let volumes = array_at(&spec, "/volumes");
    let disks = volumes
        .iter()
        .filter_map(|v| {
            let claim = v
                .pointer("/persistentVolumeClaim/claimName")
                .or_else(|| v.pointer("/dataVolume/name"))
                .and_then(Value::as_str)?;
            let pvc = store
                .get(&registry::PERSISTENT_VOLUME_CLAIM, Some(&ns), claim)
                .ok();
            let capacity = pvc
                .as_ref()
                .map(|p| text_at(p, "/spec/resources/requests/storage"))
                .and_then(mib_rounded_up)
                .unwrap_or(1024);
            let sc = pvc
                .as_ref()
                .map(|p| text_at(p, "/spec/storageClassName").to_string())
                .unwrap_or_default();
            Some(InvDisk {
                file: claim.to_string(),
                storage: sc.clone(),
                storage_name: sc,
                capacity_mib: capacity,
                xcopy: false,
                rdm: false,
            })
        })
        .collect();
    let run = text_at(vm, "/spec/runStrategy");
    let powered_on = run == "Always"
        || run == "RerunOnFailure"
        || vm.pointer("/spec/running").and_then(Value::as_bool) == Some(true);
    InvVm {
        id: meta(vm, "uid").to_string(),
        name: meta(vm, "name").to_string(),
        namespace: ns,
        powered_on,
        host: String::new(),
        disks,
        nics,
        cbt: false,
        has_snapshots: false,
        tools: ToolsStatus::Ok,
        guest_agent: true,
        uuid: text_at(vm, "/spec/template/spec/domain/firmware/uuid").to_string(),
        firmware: if spec.pointer("/domain/firmware/bootloader/efi").is_some() {
            "efi".into()
        } else {
            "bios".into()
        },
        windows: false,
        cpu_sockets: spec
            .pointer("/domain/cpu/sockets")
            .and_then(Value::as_u64)
            .unwrap_or(1) as u32,
        cores_per_socket: spec
            .pointer("/domain/cpu/cores")
            .and_then(Value::as_u64)
            .unwrap_or(1) as u32,
        memory_mib: mib_rounded_up(text_at(&spec, "/domain/memory/guest")).unwrap_or(2048),
        guest_os: String::new(),
        nested_virtualization: spec
            .pointer("/domain/cpu/features")
            .and_then(Value::as_array)
            .is_some_and(|features| {
                features.iter().any(|f| {
                    matches!(text_at(f, "/name"), "vmx" | "svm")
                        && text_at(f, "/policy") != "disable"
                })
            }),
        concerns: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::kubevirt_vm;
    use crate::registry;
    use crate::store::Store;
    use serde_json::json;

    #[test]
    fn an_openshift_source_vm_brings_its_instancetypes_cpu_and_memory() {
        let store = Store::new(100);
        store
            .create(
                &registry::VIRTUAL_MACHINE_CLUSTER_INSTANCETYPE,
                None,
                json!({"metadata": {"name": "u1.large"}, "spec": {"cpu": {"guest": 4}, "memory": {"guest": "8Gi"}}}),
            )
            .unwrap();
        let vm = json!({"metadata": {"name": "src", "namespace": "ns", "uid": "u"},
                        "spec": {"instancetype": {"name": "u1.large"}, "template": {"spec": {"domain": {"devices": {}}}}}});
        let inventory_vm = kubevirt_vm(&store, &vm);
        assert_eq!(
            (inventory_vm.cpu_sockets, inventory_vm.cores_per_socket),
            (4, 1)
        );
        assert_eq!(inventory_vm.memory_mib, 8192);
    }
}
